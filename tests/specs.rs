//! Every scenario spec under `scenarios/` as its own test case (`e2e::E2E-01`), run in MOCK mode, so
//! that `cargo test` lists every requirement by id. A file that does not load is a failing case named
//! after the file; a pending spec is an ignored case. `HARNESS_SEED` changes the seed (default 42).
//!
//! One spec: `cargo test --test specs -- e2e::E2E-07 --exact`.

use harness::runner::{self, RunConfig, Status};
use harness::spec::{self, Mode};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::Path;

fn main() {
    let args = Arguments::from_args();
    let seed = std::env::var("HARNESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(harness::DEFAULT_SEED);
    let loaded = spec::load_dir(Path::new("scenarios"));
    let mut trials = vec![];
    for s in loaded.specs {
        let name = format!("{}::{}", s.suite, s.id);
        let skip = s.skip_reason(Mode::Mock).is_some();
        trials.push(
            Trial::test(name, move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| Failed::from(e.to_string()))?;
                let o = rt.block_on(runner::run_spec(&s, &RunConfig::mock(seed)));
                match (o.status, o.failure) {
                    (Status::Failed, Some(f)) => Err(Failed::from(f.to_string())),
                    (Status::Failed, None) => Err(Failed::from("failed without a reason")),
                    _ => Ok(()),
                }
            })
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
    libtest_mimic::run(&args, trials).exit();
}
