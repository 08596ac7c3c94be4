//! Every scenario spec under `scenarios/` as its own test cases: `e2e::E2E-01` in MOCK mode and
//! `e2e::E2E-01::golden` in GOLDEN mode (real Postgres, NATS and Redis; see `harness::infra`; the
//! model answers only from `golden/cassettes/`), so
//! that `cargo test` lists every requirement by id. A file that does not load is a failing case named
//! after the file; a pending spec is an ignored case. `HARNESS_SEED` changes the seed (default 42).
//!
//! One spec: `cargo test --test specs -- e2e::E2E-07 --exact`.

use harness::infra::{self, GoldenEnv, Services};
use harness::runner::{self, RunConfig, Status};
use harness::spec::{self, Mode, Spec};
use harness::target::{ModelPlan, TargetSpec};
use libtest_mimic::{Arguments, Failed, Trial};
use platform::llm::cassette::CassetteSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The GOLDEN services and the run's isolated share, set up by the first GOLDEN case that runs
/// (so a filtered run of MOCK cases never touches a service).
static GOLDEN: OnceLock<Result<(Services, Arc<GoldenEnv>), String>> = OnceLock::new();

/// The recorded cassettes, loaded once; a corrupted or edited file fails every GOLDEN case, naming it.
static CASSETTES: OnceLock<Result<Arc<CassetteSet>, String>> = OnceLock::new();

fn runtime() -> Result<tokio::runtime::Runtime, Failed> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed::from(e.to_string()))
}

fn verdict(s: &Spec, cfg: &RunConfig) -> Result<(), Failed> {
    let o = runtime()?.block_on(runner::run_spec(s, cfg));
    match (o.status, o.failure) {
        (Status::Failed, Some(f)) => Err(Failed::from(f.to_string())),
        (Status::Failed, None) => Err(Failed::from("failed without a reason")),
        _ => Ok(()),
    }
}

/// Runs `s` in GOLDEN: fails when the services are missing and CI requires them; otherwise a
/// missing service makes the case pass vacuously with the reason printed (libtest has no runtime
/// "skip"; `HARNESS_REQUIRE_SERVICES=1` turns it into a failure).
fn golden_case(s: &Spec, seed: u64) -> Result<(), Failed> {
    let g = GOLDEN.get_or_init(|| {
        runtime()
            .map_err(|e| format!("{e:?}"))
            .and_then(|rt| rt.block_on(infra::golden()).map_err(|e| e.to_string()))
    });
    match g {
        Ok((_, env)) => {
            let cassettes = CASSETTES
                .get_or_init(|| {
                    CassetteSet::load(&runner::default_golden_dir().join("cassettes"))
                        .map(Arc::new)
                        .map_err(|e| e.to_string())
                })
                .clone()
                .map_err(Failed::from)?;
            let cfg = RunConfig {
                mode: Mode::Golden,
                target: TargetSpec::Golden(env.clone()),
                model: ModelPlan::Replay(cassettes),
                ..RunConfig::mock(seed)
            };
            verdict(s, &cfg)
        }
        Err(e) if infra::services_required() => Err(Failed::from(format!(
            "GOLDEN needs Postgres, NATS and Redis (HARNESS_REQUIRE_SERVICES=1): {e}"
        ))),
        Err(e) => {
            eprintln!(
                "{}::{}::golden skipped: no real services: {e}",
                s.suite, s.id
            );
            Ok(())
        }
    }
}

fn main() {
    let args = Arguments::from_args();
    let seed = std::env::var("HARNESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(harness::DEFAULT_SEED);
    let loaded = spec::load_dir(Path::new("scenarios"));
    let mut trials = vec![];
    for s in loaded.specs {
        let s = Arc::new(s);
        let name = format!("{}::{}", s.suite, s.id);
        let skip = s.skip_reason(Mode::Mock).is_some();
        let mock = s.clone();
        trials.push(
            Trial::test(name.clone(), move || verdict(&mock, &RunConfig::mock(seed)))
                .with_ignored_flag(skip),
        );
        let skip = s.skip_reason(Mode::Golden).is_some();
        trials.push(
            Trial::test(format!("{name}::golden"), move || golden_case(&s, seed))
                .with_ignored_flag(skip),
        );
    }
    for e in loaded.errors {
        trials.push(Trial::test(
            format!("load::{}", e.file.display()),
            move || Err(Failed::from(e.to_string())),
        ));
    }
    let catalogue = Path::new("../shared/requirements");
    trials.push(
        Trial::test("matrix::up_to_date", move || {
            let reqs = harness::matrix::requirements(catalogue).map_err(|e| Failed::from(e.to_string()))?;
            let specs = spec::load_dir(Path::new("scenarios")).specs;
            let want = harness::matrix::markdown(&reqs, &specs);
            let have = std::fs::read_to_string("scenarios/MATRIX.md").unwrap_or_default();
            if want == have {
                Ok(())
            } else {
                Err(Failed::from(
                    "scenarios/MATRIX.md is stale: run `cargo run -p harness -- list --matrix --write scenarios/MATRIX.md`",
                ))
            }
        })
        // Without the catalogue beside the project there is nothing to compare against.
        .with_ignored_flag(!catalogue.is_dir()),
    );
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(Ok((services, env))) = GOLDEN.get() {
        if let Ok(rt) = runtime() {
            rt.block_on(env.cleanup());
        }
        // Stop what this run spawned (statics are not dropped at exit).
        services.stop_spawned();
    }
    conclusion.exit();
}
