//! The scenario runner: boots or reaches the target, provisions the spec's fixtures as the
//! scenario's own tenants, executes the steps in order and checks every expectation against what the
//! platform did (response, event bus, run trace, budgets). A failure says where (`file:line`), which
//! step, what was expected and what was found, the seed, and the one command that reproduces it.

use crate::record::episode::Episode;
use crate::spec::{Action, Mode, Spec, Step};
use crate::target::{ModelPlan, TargetSpec};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
pub(crate) mod concurrently;
pub(crate) mod credentials;
pub mod error;
pub(crate) mod interp;
pub(crate) mod replay;
pub(crate) mod request;
pub(crate) mod restart;
pub(crate) mod scenario;
pub(crate) mod sink;
pub(crate) mod ws;

pub use crate::record::determinism::nondeterminism;
pub use crate::record::prompts::workflows_with_prompt_versions;
pub use credentials::tenant_slug;
pub use error::{FailureKind, StepError};
pub use request::{augment_run, deep_merge, find_run_id};
pub(crate) use scenario::Scenario;

/// How a run is configured (the CLI's flags; `cargo test` uses MOCK and `HARNESS_SEED`).
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub seed: u64,
    pub mode: Mode,
    pub target: TargetSpec,
    pub jobs: usize,
    /// How long a step waits for the events it expects.
    pub events_timeout: Duration,
    /// Where the in-process platform's model answers come from.
    pub model: ModelPlan,
    /// Build each scenario's [`Episode`] (`--record-episodes`, `--check-determinism`, replays).
    pub record_episodes: bool,
    /// Write golden snapshots instead of comparing (`--update-golden`, `UPDATE_GOLDEN=1`).
    pub update_golden: bool,
    /// The `golden/` directory (its `snapshots/` holds the golden files).
    pub golden_dir: PathBuf,
    /// The in-process platform loads its workflows from here instead of the embedded ones.
    pub workflows_dir: Option<PathBuf>,
    /// Check `budget: {latency_ms}` (on by default). Off where the question is what the seed
    /// decides, not how fast a loaded machine answers: the determinism test.
    pub latency_budgets: bool,
    /// The command-line flags that shaped the run besides mode, selection, seed and target
    /// (`--scenarios DIR`, `--golden DIR`, `--workflows DIR`, `--check-determinism`): every
    /// `reproduce:` line repeats them, so that it reruns the same thing.
    pub flags: Vec<String>,
}

/// The workspace's `golden/` directory.
pub fn default_golden_dir() -> PathBuf {
    let here = PathBuf::from("golden");
    if here.join("README.md").is_file() {
        here
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden")
    }
}

impl RunConfig {
    /// MOCK, in-process, with `seed`.
    pub fn mock(seed: u64) -> Self {
        Self {
            seed,
            mode: Mode::Mock,
            target: TargetSpec::Mock,
            jobs: 1,
            events_timeout: Duration::from_secs(2),
            model: ModelPlan::Scripted,
            record_episodes: false,
            update_golden: std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1"),
            golden_dir: default_golden_dir(),
            workflows_dir: None,
            latency_budgets: true,
            flags: vec![],
        }
    }

    /// The one command that reproduces `spec` with this configuration.
    pub fn reproduce(&self, spec: &Spec) -> String {
        let target = match &self.target {
            TargetSpec::Mock | TargetSpec::Golden(_) => String::new(),
            TargetSpec::Remote { spawned: true, .. } => String::new(),
            TargetSpec::Remote { url, .. } => format!(" --target {url}"),
        };
        let flags: String = self.flags.iter().map(|f| format!(" {f}")).collect();
        format!(
            "cargo run -p harness -- run --mode {} --only {} --seed {}{target}{flags}",
            self.mode.as_str(),
            spec.id,
            self.seed
        )
    }
}

/// A scenario's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

/// Why a scenario failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// `file:line` of the failing step.
    pub location: String,
    pub step: String,
    /// Whether the platform was judged (a mismatch) or the harness could not run the step.
    pub kind: FailureKind,
    pub message: String,
    pub seed: u64,
    pub reproduce: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}: {}", self.location, self.step)?;
        if self.kind == FailureKind::Harness {
            writeln!(
                f,
                "    (the harness could not carry this out; the platform was not judged)"
            )?;
        }
        for line in self.message.lines() {
            writeln!(f, "    {line}")?;
        }
        writeln!(f, "    seed: {}", self.seed)?;
        write!(f, "    reproduce: {}", self.reproduce)
    }
}

/// Headers a transcript leaves out: `date` and `content-length` say when and how long rather than
/// what, and the remaining tokens of a rate limit (and when they refill) count every earlier
/// request, including how often a `wait_until` polled, which a rerun does not repeat.
pub const VOLATILE_HEADERS: &[&str] = &[
    "date",
    "content-length",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

/// One request of a scenario and its answer, as the harness saw them. The transcript of a MOCK run
/// is the same, byte for byte, on every rerun with the same seed, except which copy of a `parallel`
/// step got which id and `/metrics` (its latency histograms measure real time).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exchange {
    /// 1-based step number.
    pub step: usize,
    /// Which copy of a `parallel` step (0 when the step sends one request).
    pub copy: usize,
    /// `METHOD /path`.
    pub request: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    pub status: u16,
    pub response: Value,
    /// How long the answer took, as the harness measured it: real time, so not in the transcript
    /// file (which must be byte-identical on a rerun); episodes keep it as the response step's
    /// `duration_ms`, which comparisons ignore.
    #[serde(skip)]
    pub latency_ms: u64,
    /// The response's headers (lower-case names), without [`VOLATILE_HEADERS`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub headers: BTreeMap<String, String>,
    /// The tenant alias of the caller that sent it (the oracle's attribution); `None` for the
    /// harness's own steps (replays, restarts, event waits).
    #[serde(skip)]
    pub caller: Option<String>,
}

impl Exchange {
    /// The exchange of a step the harness answers itself (a replay, a restart, an event wait, a
    /// sink read, a request left in the background): no caller, body or headers.
    pub(crate) fn own(step: usize, request: String, status: u16, response: Value) -> Exchange {
        Exchange {
            step,
            copy: 0,
            request,
            body: None,
            status,
            response,
            latency_ms: 0,
            headers: BTreeMap::new(),
            caller: None,
        }
    }
}

/// One scenario's result, as `report.json` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: String,
    pub suite: String,
    pub title: String,
    pub mode: String,
    pub status: Status,
    pub duration_ms: u64,
    pub seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Every exchange of the scenario (written to `transcripts/<id>.json`, not to `report.json`).
    #[serde(skip)]
    pub transcript: Vec<Exchange>,
    /// The scenario's episode, when the run records them.
    #[serde(skip)]
    pub episode: Option<Episode>,
    /// The results of its `attacks` steps (the catalogue report is built from them).
    #[serde(skip)]
    pub attacks: Vec<crate::attack::CaseResult>,
}

/// Runs `specs` with up to `cfg.jobs` at once; `done` is called as each finishes. Outcomes come back
/// in the order of `specs`.
pub async fn run_all(
    specs: &[Spec],
    cfg: &RunConfig,
    done: &(dyn Fn(&Outcome) + Sync),
) -> Vec<Outcome> {
    let mut out: Vec<(usize, Outcome)> = futures::stream::iter(specs.iter().enumerate())
        .map(|(i, s)| async move {
            let o = run_spec(s, cfg).await;
            done(&o);
            (i, o)
        })
        .buffer_unordered(cfg.jobs.max(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, o)| o).collect()
}

/// Runs one spec.
pub async fn run_spec(spec: &Spec, cfg: &RunConfig) -> Outcome {
    let started = Instant::now();
    let mut o = skipped(spec, cfg, "");
    o.status = Status::Passed;
    o.skip_reason = None;
    let mut skip = spec.skip_reason(cfg.mode);
    if matches!(cfg.target, TargetSpec::Remote { .. }) {
        if spec.platform.is_some() {
            skip = Some("its `platform:` configuration needs an in-process target".into());
        } else if spec
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Restart(_)))
        {
            skip = Some("its `restart` step needs an in-process target".into());
        } else if spec
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::AdvanceClock(_)))
        {
            skip = Some(
                "its `advance_clock` would move the deployment's clock under every other scenario running on it"
                    .into(),
            );
        } else if spec
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Replay(_)))
        {
            skip =
                Some("its `replay` step replays an episode through an in-process platform".into());
        } else if spec.steps.iter().any(|s| !s.expect.metrics.is_empty()) {
            skip = Some(
                "its `metrics:` expectations count from a fresh platform; a deployment's /metrics also counts every other run"
                    .into(),
            );
        } else if spec
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Sink(_)))
            && matches!(cfg.target, TargetSpec::Remote { sink: None, .. })
        {
            skip = Some(
                "its `sink` step reads the harness's channel endpoint, which a deployment's channels do not deliver to"
                    .into(),
            );
        } else if spec
            .steps
            .iter()
            .filter_map(|s| s.actor.as_ref())
            .chain(spec.actor.as_ref())
            .any(|a| a.role.is_some())
        {
            skip =
                Some("its `as: {role}` tokens are signed with an in-process platform's key".into());
        }
    }
    if let Some(reason) = skip {
        o.status = Status::Skipped;
        o.skip_reason = Some(reason);
        return o;
    }
    let (result, transcript, episode, attacks) = Scenario::run(spec, cfg).await;
    o.transcript = transcript;
    o.episode = episode;
    o.attacks = attacks;
    if let Err(f) = result {
        o.status = Status::Failed;
        o.failure = Some(f);
    }
    o.duration_ms = started.elapsed().as_millis() as u64;
    o
}

/// The outcome of a spec that was not run, and why (a mode whose services are missing).
pub fn skipped(spec: &Spec, cfg: &RunConfig, reason: &str) -> Outcome {
    Outcome {
        id: spec.id.clone(),
        suite: spec.suite.clone(),
        title: spec.title.clone(),
        mode: cfg.mode.as_str().into(),
        status: Status::Skipped,
        duration_ms: 0,
        seed: cfg.seed,
        failure: None,
        skip_reason: Some(reason.to_string()),
        transcript: vec![],
        episode: None,
        attacks: vec![],
    }
}

pub(crate) fn step_label(i: usize, step: &Step) -> String {
    let what = step.name.clone().unwrap_or_else(|| step.action.label());
    format!("step {} ({what})", i + 1)
}
