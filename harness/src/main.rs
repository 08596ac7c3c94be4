//! `harness`: run scenario specs against the platform and report.
//!
//! `harness run` runs every suite in MOCK mode on embedded defaults; `harness list` lists the specs,
//! and `harness list --matrix` maps requirement ids to them; `harness record` records the model
//! cassettes GOLDEN replays; `harness replay` replays recorded episodes.

use clap::{Parser, Subcommand};
use harness::record::episode::Episode;
use harness::record::replay::{self, ReplayMode, Verdict};
use harness::runner::{self, Outcome, RunConfig, Status};
use harness::spec::{self, Mode, Spec};
use harness::target::{ModelPlan, TargetSpec};
use harness::{infra, matrix, report};
use indicatif::{ProgressBar, ProgressStyle};
use platform::llm::cassette::CassetteSet;
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
    /// Record the model cassettes that GOLDEN replays: runs the selection on real services with the
    /// scripted model and writes each model exchange to the cassette directory.
    Record(RecordArgs),
    /// Replay recorded episodes and compare them with what the platform does now.
    Replay(ReplayArgs),
}

/// Which specs, with which seed, how many at once: shared by `run` and `record`.
#[derive(clap::Args)]
struct Selection {
    /// Only these suites (comma-separated).
    #[arg(long, value_delimiter = ',')]
    suite: Vec<String>,
    /// Only these spec ids (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The seed behind fixtures, the scripted model and tenant names.
    #[arg(long, env = "HARNESS_SEED", default_value_t = harness::DEFAULT_SEED)]
    seed: u64,
    /// Scenarios run at once (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
}

#[derive(Parser)]
struct RecordArgs {
    #[command(flatten)]
    sel: Selection,
    /// The cassette directory (default: golden/cassettes).
    #[arg(long)]
    cassettes: Option<PathBuf>,
    /// Delete cassettes this recording did not use (only with the whole selection).
    #[arg(long)]
    prune: bool,
}

#[derive(Parser)]
struct ReplayArgs {
    /// An episode file, or a directory of them.
    path: PathBuf,
    /// exact (recorded model outputs, frozen versions) or similar (current components, scores).
    #[arg(long, default_value = "exact")]
    mode: String,
    /// Where replay.json goes.
    #[arg(long, default_value = "target/harness")]
    report: PathBuf,
    /// Load the platform's workflows from this directory instead of the embedded ones.
    #[arg(long)]
    workflows: Option<PathBuf>,
}

#[derive(Parser)]
struct RunArgs {
    #[command(flatten)]
    sel: Selection,
    /// mock, golden or live_smoke.
    #[arg(long, default_value = "mock", env = "TEST_MODE")]
    mode: String,
    /// Where report.json and junit.xml go.
    #[arg(long, default_value = "target/harness")]
    report: PathBuf,
    /// Run against a deployment at this URL instead of an in-process platform.
    #[arg(long)]
    target: Option<String>,
    /// The deployment's operator key (with --target).
    #[arg(long, env = "HARNESS_OPERATOR_KEY")]
    operator_key: Option<String>,
    /// Start this many `platform serve` processes (the binary is built first) and run the specs
    /// against them over HTTP, as against a deployment: on embedded backends in MOCK (then only
    /// 1), on the run's Postgres, NATS and Redis in GOLDEN. Their model is the scripted one of
    /// the seed; their channels deliver to the harness's sink.
    #[arg(long)]
    spawn: Option<usize>,
    /// Write each scenario's episode to `<golden>/episodes/<suite>/<id>.json`.
    #[arg(long)]
    record_episodes: bool,
    /// Rewrite golden snapshots instead of comparing with them (review them in the diff).
    #[arg(long, env = "UPDATE_GOLDEN", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    update_golden: bool,
    /// Run each spec twice with the same seed and fail on any difference between the episodes.
    #[arg(long)]
    check_determinism: bool,
    /// The golden directory: cassettes/, snapshots/, episodes/ (default: ./golden, else the
    /// workspace's).
    #[arg(long)]
    golden: Option<PathBuf>,
    /// Load the platform's workflows from this directory instead of the embedded ones.
    #[arg(long)]
    workflows: Option<PathBuf>,
}

#[derive(Parser)]
struct ListArgs {
    /// Print the requirement matrix instead.
    #[arg(long)]
    matrix: bool,
    /// Print every fixture instead: its tenants, users, API keys, products, orders, documents.
    #[arg(long)]
    fixtures: bool,
    /// Print the configuration of an in-process platform instead (YAML): every key a spec's
    /// `platform:` section may override, with the value it has unless overridden.
    #[arg(long)]
    platform_config: bool,
    /// The requirement catalogue (for --matrix).
    #[arg(long, default_value = "../shared/requirements")]
    requirements: PathBuf,
    /// Write the matrix to this file instead of printing it.
    #[arg(long)]
    write: Option<PathBuf>,
}

/// Starts `n` platform processes for `--spawn`: MOCK's configuration (operator surface, fault
/// injection, a movable clock) on embedded backends, or GOLDEN's on the run's services; every
/// channel delivers to a sink of the run's. Returns the processes, the sink and the operator key.
async fn spawn_platform(
    n: usize,
    mode: Mode,
    seed: u64,
    golden: Option<std::sync::Arc<infra::GoldenEnv>>,
) -> Result<
    (
        harness::target::spawned::Spawned,
        std::sync::Arc<harness::target::sink::Sink>,
        String,
    ),
    String,
> {
    use harness::target::{golden_config, mock_config, sink::Sink, spawned};
    let mut cfg = match (&golden, mode) {
        (Some(env), Mode::Golden) => golden_config(seed, "spawned", env),
        (None, Mode::Mock) if n == 1 => mock_config(seed),
        (None, Mode::Mock) => {
            return Err(
                "more than one process on embedded backends would be separate deployments; use --mode golden".into(),
            )
        }
        _ => return Err("GOLDEN services are not available".into()),
    };
    let sink = std::sync::Arc::new(Sink::start().await);
    cfg.channels.endpoint = Some(sink.url());
    cfg.manual_clock = true;
    let key = cfg.operator_key.clone().unwrap_or_default();
    let mut opts = spawned::SpawnOptions::new(cfg);
    opts.instances = n;
    let procs = spawned::Spawned::start(opts)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "spawned {n} platform process(es): {} (pids {:?})",
        procs.base_urls().join(", "),
        procs.pids()
    );
    Ok((procs, sink, key))
}

/// The flags of `harness run` that a `reproduce:` line must repeat besides mode, selection, seed
/// and target: where the specs, golden files and workflows came from, and the determinism check.
fn run_flags(scenarios: &Path, a: &RunArgs) -> Vec<String> {
    let mut out = vec![];
    if let Some(n) = a.spawn {
        out.push(format!("--spawn {n}"));
    }
    if scenarios != scenarios_dir(None) {
        out.push(format!("--scenarios {}", scenarios.display()));
    }
    if let Some(g) = &a.golden {
        out.push(format!("--golden {}", g.display()));
    }
    if let Some(w) = &a.workflows {
        out.push(format!("--workflows {}", w.display()));
    }
    if a.check_determinism {
        out.push("--check-determinism".into());
    }
    out
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
        Cmd::Record(a) => record(&dir, a),
        Cmd::Replay(a) => replay_cmd(a),
    }
}

/// Loads the specs of `dir` and keeps the selection; a filter that names nothing is an error.
fn select(
    dir: &Path,
    suite: &[String],
    only: &[String],
) -> Result<(Vec<Spec>, Vec<spec::LoadError>), ExitCode> {
    let loaded = spec::load_dir(dir);
    let mut specs = loaded.specs;
    let suites: std::collections::BTreeSet<&str> = specs.iter().map(|s| s.suite.as_str()).collect();
    let unknown_suites: Vec<&String> = suite
        .iter()
        .filter(|x| !suites.contains(x.as_str()))
        .collect();
    let unknown_ids: Vec<&String> = only
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
        return Err(ExitCode::from(2));
    }
    specs.retain(|s| {
        (suite.is_empty() || suite.contains(&s.suite)) && (only.is_empty() || only.contains(&s.id))
    });
    Ok((specs, loaded.errors))
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("cannot start the async runtime: {e}");
        ExitCode::from(2)
    })
}

/// The cassettes of `dir` for replay; a corrupted or edited file is reported by name.
fn load_cassettes(dir: &Path) -> Result<std::sync::Arc<CassetteSet>, ExitCode> {
    match CassetteSet::load(dir) {
        Ok(s) => Ok(std::sync::Arc::new(s)),
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn record(dir: &Path, a: RecordArgs) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    let (specs, _) = match select(dir, &a.sel.suite, &a.sel.only) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let cassettes = a
        .cassettes
        .unwrap_or_else(|| runner::default_golden_dir().join("cassettes"));
    let (services, env) = match rt.block_on(infra::golden()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("recording runs on real Postgres, NATS and Redis: {e}");
            return ExitCode::FAILURE;
        }
    };
    let specs: Vec<Spec> = specs
        .into_iter()
        .filter(|s| s.skip_reason(Mode::Golden).is_none())
        .collect();
    let cfg = RunConfig {
        mode: Mode::Golden,
        target: TargetSpec::Golden(env.clone()),
        jobs: a.sel.jobs.unwrap_or(2),
        model: ModelPlan::Record(cassettes.clone()),
        record_episodes: true,
        ..RunConfig::mock(a.sel.seed)
    };
    println!(
        "harness record: {} specs on real services ({}), seed {}, cassettes to {}",
        specs.len(),
        env.name,
        a.sel.seed,
        cassettes.display()
    );
    let outcomes = rt.block_on(runner::run_all(&specs, &cfg, &|_| {}));
    rt.block_on(env.cleanup());
    drop(services);
    let mut used = std::collections::BTreeSet::new();
    for o in &outcomes {
        for c in o.episode.iter().flat_map(|e| e.model_calls.iter()) {
            used.insert(c.body.key.clone());
        }
    }
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status == Status::Failed)
        .collect();
    for o in &failed {
        if let Some(f) = &o.failure {
            eprintln!("{} failed while recording:\n{f}", o.id);
        }
    }
    let mut pruned = 0;
    if a.prune && a.sel.suite.is_empty() && a.sel.only.is_empty() {
        for f in std::fs::read_dir(&cassettes)
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = f.path();
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            if p.extension().is_some_and(|x| x == "json")
                && !used.contains(&stem)
                && std::fs::remove_file(&p).is_ok()
            {
                pruned += 1;
            }
        }
    }
    println!(
        "recorded {} model exchanges from {} specs ({} failed){}",
        used.len(),
        outcomes.len(),
        failed.len(),
        if pruned > 0 {
            format!(", pruned {pruned} unused cassettes")
        } else {
            String::new()
        }
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn replay_cmd(a: ReplayArgs) -> ExitCode {
    let mode = match a.mode.as_str() {
        "exact" => ReplayMode::Exact,
        "similar" => ReplayMode::Similar,
        other => {
            eprintln!("unknown replay mode `{other}`: use exact or similar");
            return ExitCode::from(2);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    let files = replay::episode_files(&a.path);
    if files.is_empty() {
        eprintln!("no episode files at {}", a.path.display());
        return ExitCode::from(2);
    }
    let mut episodes = vec![];
    for f in &files {
        match Episode::read(f) {
            Ok(e) => episodes.push((f.clone(), e)),
            Err(m) => {
                eprintln!("{m}");
                return ExitCode::from(2);
            }
        }
    }
    let mut golden = None;
    if episodes.iter().any(|(_, e)| e.mode == "golden") {
        match rt.block_on(infra::golden()) {
            Ok(g) => golden = Some(g),
            Err(e) => {
                eprintln!("episodes recorded in GOLDEN replay on real services: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut reports = vec![];
    let mut bad = 0;
    for (f, ep) in episodes {
        let target = match (&golden, ep.mode.as_str()) {
            (Some((_, env)), "golden") => TargetSpec::Golden(env.clone()),
            _ => TargetSpec::Mock,
        };
        let r = rt.block_on(replay::replay(ep, &f, mode, target, a.workflows.as_deref()));
        match &r.verdict {
            Verdict::Identical => println!("identical  {}  {}", r.episode_id, f.display()),
            Verdict::Similar { score, .. } => {
                println!("similar {score:.3}  {}  {}", r.episode_id, f.display())
            }
            Verdict::Different { differences } => {
                bad += 1;
                println!("DIFFERENT  {}  {}", r.episode_id, f.display());
                for d in differences.iter().take(10) {
                    println!("  step {}:", d.step);
                    println!(
                        "    original: {}",
                        harness::expect::matcher::short(&d.original)
                    );
                    println!(
                        "    replayed: {}",
                        harness::expect::matcher::short(&d.replayed)
                    );
                }
                if differences.len() > 10 {
                    println!("  ... and {} more", differences.len() - 10);
                }
            }
            Verdict::ReplayFailed { reason } => {
                bad += 1;
                println!("replay_failed  {}  {}", r.episode_id, f.display());
                for line in reason.lines() {
                    println!("  {line}");
                }
            }
        }
        reports.push(r);
    }
    if let Some((_, env)) = &golden {
        rt.block_on(env.cleanup());
    }
    let _ = std::fs::create_dir_all(&a.report);
    let out = a.report.join("replay.json");
    if let Err(e) = std::fs::write(
        &out,
        serde_json::to_string_pretty(&reports).unwrap_or_default(),
    ) {
        eprintln!("cannot write {}: {e}", out.display());
    }
    println!(
        "{} episodes replayed ({} mode): {} identical or similar, {} not; report {}",
        reports.len(),
        a.mode,
        reports.len() - bad,
        bad,
        out.display()
    );
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `harness list --fixtures`: every fact of every fixture a spec author needs.
fn list_fixtures(dir: &Path) -> ExitCode {
    let fixtures = match harness::fixture::Fixtures::for_specs(dir) {
        Ok(f) => f,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::from(2);
        }
    };
    for (name, def) in fixtures.list() {
        println!("{name}: {}", def.description);
        for t in &def.tenants {
            println!("  tenant `{}` ({}, plan {})", t.alias, t.name, t.plan);
            if let Some(l) = &t.limits {
                println!("    limits: {l}");
            }
            if let Some(tools) = &t.allowed_tools {
                println!("    allowed tools: {}", tools.join(", "));
            }
            let users: Vec<String> = t
                .users
                .iter()
                .map(|u| format!("{} ({})", u.handle, u.role))
                .collect();
            println!("    users: {}", users.join(", "));
            if !t.api_keys.is_empty() {
                let keys: Vec<String> = t
                    .api_keys
                    .iter()
                    .map(|k| format!("{} ({})", k.label, k.role))
                    .collect();
                println!("    API keys: {}", keys.join(", "));
            }
            for p in &t.products {
                println!(
                    "    product {} {}: {} cents, stock {}",
                    p["sku"].as_str().unwrap_or("?"),
                    p["name"].as_str().unwrap_or(""),
                    p["price_cents"],
                    p["stock"]
                );
            }
            for o in &t.orders {
                println!(
                    "    order {} of {}: {}, payment {}{}",
                    o.order_id,
                    o.owner,
                    o.status,
                    o.payment_status,
                    o.tracking_number
                        .as_ref()
                        .map(|n| format!(", tracking {n}"))
                        .unwrap_or_default()
                );
            }
            for d in &t.documents {
                println!("    document \"{}\" ({})", d.title, d.level);
            }
            let g = &t.generated;
            if g.users + g.documents + g.leads > 0 {
                println!(
                    "    generated from the seed: {} users, {} public documents, {} leads",
                    g.users, g.documents, g.leads
                );
            }
        }
    }
    ExitCode::SUCCESS
}

fn list(dir: &Path, a: ListArgs) -> ExitCode {
    if a.fixtures {
        return list_fixtures(dir);
    }
    if a.platform_config {
        let cfg = harness::target::mock_config(harness::DEFAULT_SEED);
        return match serde_norway::to_string(&cfg) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot print the configuration: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
    let flags = run_flags(dir, &a);
    let Some(mode) = Mode::parse(&a.mode) else {
        eprintln!("unknown mode `{}`: use mock, golden or live_smoke", a.mode);
        return ExitCode::from(2);
    };
    if mode == Mode::LiveSmoke {
        eprintln!(
            "mode live_smoke needs spawned platform processes and a model endpoint, which no issue has built yet; mock and golden run today"
        );
        return ExitCode::from(2);
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    if a.target.is_some() && a.operator_key.is_none() {
        eprintln!(
            "--target needs the deployment's operator key (--operator-key or HARNESS_OPERATOR_KEY)"
        );
        return ExitCode::from(2);
    }
    let (specs, load_errors) = match select(dir, &a.sel.suite, &a.sel.only) {
        Ok(s) => s,
        Err(c) => return c,
    };
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
    // `--spawn N`: the platform as separate processes, kept until the run ends.
    let mut spawned = None;
    if a.spawn.is_some() && (a.target.is_some() || a.check_determinism) {
        eprintln!("--spawn starts its own deployment: not with --target or --check-determinism");
        return ExitCode::from(2);
    }
    if let Some(n) = a.spawn {
        match rt.block_on(spawn_platform(
            n,
            mode,
            a.sel.seed,
            golden.as_ref().map(|(_, e)| e.clone()),
        )) {
            Ok(s) => spawned = Some(s),
            Err(e) => {
                eprintln!("--spawn: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let target = match a.target {
        None if spawned.is_some() => {
            let Some((procs, sink, key)) = &spawned else {
                return ExitCode::FAILURE;
            };
            TargetSpec::Remote {
                url: procs.base_urls().first().cloned().unwrap_or_default(),
                operator_key: key.clone(),
                sink: Some(sink.clone()),
                spawned: true,
            }
        }
        None => match &golden {
            Some((_, env)) => TargetSpec::Golden(env.clone()),
            None => TargetSpec::Mock,
        },
        Some(url) => match a.operator_key {
            Some(operator_key) => TargetSpec::Remote {
                url,
                operator_key,
                sink: None,
                spawned: false,
            },
            None => {
                eprintln!("--target needs the deployment's operator key (--operator-key or HARNESS_OPERATOR_KEY)");
                return ExitCode::from(2);
            }
        },
    };
    let jobs = a
        .sel
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let golden_dir = a.golden.clone().unwrap_or_else(runner::default_golden_dir);
    let model = if mode == Mode::Golden {
        match load_cassettes(&golden_dir.join("cassettes")) {
            Ok(set) => ModelPlan::Replay(set),
            Err(c) => return c,
        }
    } else {
        ModelPlan::Scripted
    };
    let cfg = RunConfig {
        seed: a.sel.seed,
        mode,
        target,
        jobs,
        events_timeout: Duration::from_secs(2),
        model,
        record_episodes: a.record_episodes || a.check_determinism,
        update_golden: a.update_golden,
        golden_dir: golden_dir.clone(),
        workflows_dir: a.workflows.clone(),
        // Wall time is not what a seed decides: the determinism check compares what it does.
        latency_budgets: !a.check_determinism,
        flags,
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
    // The processes go before their database does.
    if let Some((mut procs, _, _)) = spawned.take() {
        if let Err(e) = rt.block_on(procs.stop()) {
            eprintln!("harness: stopping the spawned platform: {e}");
        }
    }
    if let Some((_, env)) = &golden {
        rt.block_on(env.cleanup());
    }
    if a.check_determinism && golden_skip.is_none() {
        // The second run gets fresh services of its own in GOLDEN (the first run's tenants and rows
        // are still in the first run's database).
        let second_golden = if matches!(cfg.target, TargetSpec::Golden(_)) {
            match rt.block_on(infra::golden()) {
                Ok(g) => Some(g),
                Err(e) => {
                    eprintln!("the determinism check's second GOLDEN run has no services: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        let cfg2 = RunConfig {
            target: match &second_golden {
                Some((_, env)) => TargetSpec::Golden(env.clone()),
                None => cfg.target.clone(),
            },
            ..cfg.clone()
        };
        let again = rt.block_on(runner::run_all(&specs, &cfg2, &|_| {}));
        if let Some((_, env)) = &second_golden {
            rt.block_on(env.cleanup());
        }
        let mut differing = 0;
        for (o, p) in outcomes.iter_mut().zip(&again) {
            if let Some(why) = runner::nondeterminism(o, p) {
                differing += 1;
                o.status = Status::Failed;
                o.failure = Some(runner::Failure {
                    location: o.id.clone(),
                    step: "determinism".into(),
                    // Two runs with one seed differ: the platform (or a spec it runs) is not
                    // deterministic, which is a verdict on it.
                    kind: runner::FailureKind::Mismatch,
                    message: why,
                    seed: cfg.seed,
                    reproduce: specs
                        .iter()
                        .find(|s| s.id == o.id)
                        .map_or_else(String::new, |s| cfg.reproduce(s)),
                });
            }
        }
        println!(
            "determinism: {} specs run twice with seed {}: {} gave different episodes",
            outcomes.len(),
            cfg.seed,
            differing
        );
    }
    if a.record_episodes {
        let dir = golden_dir.join("episodes");
        let mut written = 0;
        for e in outcomes.iter().filter_map(|o| o.episode.as_ref()) {
            match e.write(&dir) {
                Ok(_) => written += 1,
                Err(err) => eprintln!("cannot write episode {}: {err}", e.episode_id),
            }
        }
        println!("episodes: {written} written to {}", dir.display());
    }
    // Files that did not load are failures too, so that CI and the reports show them.
    for e in &load_errors {
        let suite = e
            .file
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if !a.sel.suite.is_empty() && !a.sel.suite.contains(&suite) {
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
                kind: runner::FailureKind::Harness,
                message: e.message.clone(),
                seed: cfg.seed,
                reproduce: format!("cargo run -p harness -- --scenarios {} list", dir.display()),
            }),
            skip_reason: None,
            transcript: vec![],
            episode: None,
            attacks: vec![],
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
