//! `harness`: run scenario specs against the platform and report.
//!
//! `harness run` runs every suite in MOCK mode on embedded defaults; `harness list` lists the specs,
//! and `harness list --matrix` maps requirement ids to them.

use clap::{Parser, Subcommand};
use harness::runner::{self, Outcome, RunConfig, Status};
use harness::spec::{self, Mode};
use harness::target::TargetSpec;
use harness::{infra, matrix, report};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "harness",
    about = "Runs scenario specs against the AI support platform"
)]
struct Cli {
    /// The directory of specs (default: ./scenarios, else the workspace's).
    #[arg(long, global = true, env = "HARNESS_SCENARIOS")]
    scenarios: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run specs (all suites in MOCK mode by default).
    Run(RunArgs),
    /// List specs, or the requirement matrix.
    List(ListArgs),
}

#[derive(Parser)]
struct RunArgs {
    /// Only these suites (comma-separated).
    #[arg(long, value_delimiter = ',')]
    suite: Vec<String>,
    /// mock, golden or live_smoke.
    #[arg(long, default_value = "mock", env = "TEST_MODE")]
    mode: String,
    /// Only these spec ids (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The seed behind fixtures, the scripted model and tenant names.
    #[arg(long, env = "HARNESS_SEED", default_value_t = harness::DEFAULT_SEED)]
    seed: u64,
    /// Scenarios run at once (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Where report.json and junit.xml go.
    #[arg(long, default_value = "target/harness")]
    report: PathBuf,
    /// Run against a deployment at this URL instead of an in-process platform.
    #[arg(long)]
    target: Option<String>,
    /// The deployment's operator key (with --target).
    #[arg(long, env = "HARNESS_OPERATOR_KEY")]
    operator_key: Option<String>,
}

#[derive(Parser)]
struct ListArgs {
    /// Print the requirement matrix instead.
    #[arg(long)]
    matrix: bool,
    /// The requirement catalogue (for --matrix).
    #[arg(long, default_value = "../shared/requirements")]
    requirements: PathBuf,
    /// Write the matrix to this file instead of printing it.
    #[arg(long)]
    write: Option<PathBuf>,
}

fn scenarios_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        let here = PathBuf::from("scenarios");
        if here.is_dir() {
            here
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = scenarios_dir(cli.scenarios);
    // No subcommand means `run` with its own defaults (and environment), declared once above.
    match cli
        .cmd
        .unwrap_or_else(|| Cmd::Run(RunArgs::parse_from(["harness-run"])))
    {
        Cmd::Run(a) => run(&dir, a),
        Cmd::List(a) => list(&dir, a),
    }
}

fn list(dir: &Path, a: ListArgs) -> ExitCode {
    let loaded = spec::load_dir(dir);
    for e in &loaded.errors {
        eprintln!("{e}");
    }
    if a.matrix {
        let reqs = match matrix::requirements(&a.requirements) {
            Ok(r) => r,
            Err(e) => {
                eprintln!(
                    "cannot read the requirement catalogue at {}: {e}",
                    a.requirements.display()
                );
                return ExitCode::from(2);
            }
        };
        let md = matrix::markdown(&reqs, &loaded.specs);
        match a.write {
            Some(f) => {
                if let Err(e) = std::fs::write(&f, md) {
                    eprintln!("cannot write {}: {e}", f.display());
                    return ExitCode::from(2);
                }
                println!("wrote {}", f.display());
            }
            None => print!("{md}"),
        }
    } else {
        for s in &loaded.specs {
            let modes: Vec<&str> = s.modes.iter().map(|m| m.as_str()).collect();
            let pending = s
                .pending
                .as_ref()
                .map(|p| format!("  [pending: {p}]"))
                .unwrap_or_default();
            println!(
                "{:<14} {:<10} {:<26} {}{pending}",
                s.id,
                s.suite,
                modes.join(","),
                s.title
            );
        }
    }
    if loaded.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(dir: &Path, a: RunArgs) -> ExitCode {
    let Some(mode) = Mode::parse(&a.mode) else {
        eprintln!("unknown mode `{}`: use mock, golden or live_smoke", a.mode);
        return ExitCode::from(2);
    };
    if mode == Mode::LiveSmoke {
        eprintln!(
            "mode live_smoke needs spawned platform processes and a model endpoint, which arrive with the cassette and live-smoke issues; mock and golden run today"
        );
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    if a.target.is_some() && a.operator_key.is_none() {
        eprintln!(
            "--target needs the deployment's operator key (--operator-key or HARNESS_OPERATOR_KEY)"
        );
        return ExitCode::from(2);
    }
    let loaded = spec::load_dir(dir);
    let mut specs = loaded.specs;
    // A filter that names nothing is a mistake, not a vacuous pass.
    let suites: std::collections::BTreeSet<&str> = specs.iter().map(|s| s.suite.as_str()).collect();
    let unknown_suites: Vec<&String> = a
        .suite
        .iter()
        .filter(|x| !suites.contains(x.as_str()))
        .collect();
    let unknown_ids: Vec<&String> = a
        .only
        .iter()
        .filter(|x| !specs.iter().any(|s| &s.id == *x))
        .collect();
    if !unknown_suites.is_empty() || !unknown_ids.is_empty() {
        for e in &loaded.errors {
            eprintln!("{e}");
        }
        if !unknown_suites.is_empty() {
            eprintln!(
                "no suite {:?} in {}; suites: {}",
                unknown_suites,
                dir.display(),
                suites.iter().copied().collect::<Vec<_>>().join(", ")
            );
        }
        if !unknown_ids.is_empty() {
            eprintln!(
                "no spec with id {unknown_ids:?} in {} (`harness list` lists them)",
                dir.display()
            );
        }
        return ExitCode::from(2);
    }
    specs.retain(|s| {
        (a.suite.is_empty() || a.suite.contains(&s.suite))
            && (a.only.is_empty() || a.only.contains(&s.id))
    });
    // Only now, with the selection valid, take services: every later path cleans them up.
    // GOLDEN: the run's services and its isolated share of them (kept alive until the end).
    let mut golden: Option<(infra::Services, std::sync::Arc<infra::GoldenEnv>)> = None;
    let mut golden_skip: Option<String> = None;
    if mode == Mode::Golden && a.target.is_none() {
        match rt.block_on(infra::golden()) {
            Ok(g) => golden = Some(g),
            Err(e) if infra::services_required() => {
                eprintln!(
                    "GOLDEN needs Postgres, NATS and Redis (HARNESS_REQUIRE_SERVICES=1): {e}"
                );
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("GOLDEN specs skipped: {e}");
                golden_skip = Some(format!("no real services: {e}"));
            }
        }
    }
    let target = match a.target {
        None => match &golden {
            Some((_, env)) => TargetSpec::Golden(env.clone()),
            None => TargetSpec::Mock,
        },
        Some(url) => match a.operator_key {
            Some(operator_key) => TargetSpec::Remote { url, operator_key },
            None => {
                eprintln!("--target needs the deployment's operator key (--operator-key or HARNESS_OPERATOR_KEY)");
                return ExitCode::from(2);
            }
        },
    };
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let cfg = RunConfig {
        seed: a.seed,
        mode,
        target,
        jobs,
        events_timeout: Duration::from_secs(2),
    };
    println!(
        "harness: {} specs from {} in {} mode against {}, seed {}, {} jobs",
        specs.len(),
        dir.display(),
        mode.as_str(),
        cfg.target.describe(),
        cfg.seed,
        jobs
    );
    let bar = ProgressBar::new(specs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut outcomes: Vec<Outcome> = match &golden_skip {
        Some(reason) => specs
            .iter()
            .map(|s| runner::skipped(s, &cfg, reason))
            .collect(),
        None => rt.block_on(runner::run_all(&specs, &cfg, &|o: &Outcome| {
            bar.inc(1);
            bar.set_message(format!("{} {:?}", o.id, o.status));
        })),
    };
    bar.finish_and_clear();
    if let Some((_, env)) = &golden {
        rt.block_on(env.cleanup());
    }
    // Files that did not load are failures too, so that CI and the reports show them.
    for e in &loaded.errors {
        let suite = e
            .file
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if !a.suite.is_empty() && !a.suite.contains(&suite) {
            continue;
        }
        outcomes.push(Outcome {
            id: e.file.display().to_string(),
            suite,
            title: "does not load".into(),
            mode: mode.as_str().into(),
            status: Status::Failed,
            duration_ms: 0,
            seed: cfg.seed,
            failure: Some(runner::Failure {
                location: format!("{}:{}", e.file.display(), e.line),
                step: "load".into(),
                message: e.message.clone(),
                seed: cfg.seed,
                reproduce: "cargo run -p harness -- list".into(),
            }),
            skip_reason: None,
            transcript: vec![],
        });
    }
    print!(
        "{}",
        report::terminal(&outcomes, started.elapsed().as_millis())
    );
    if let Err(e) = report::write(&a.report, &outcomes) {
        eprintln!("cannot write the reports to {}: {e}", a.report.display());
        return ExitCode::from(2);
    }
    println!(
        "reports: {0}/report.json, {0}/junit.xml, {0}/transcripts/",
        a.report.display()
    );
    if outcomes.iter().any(|o| o.status == Status::Failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
