//! The scenario format: what a spec file may say. Every struct refuses unknown fields, so a typo in a
//! field name is a load error with its line, not a silently ignored expectation.

use super::action::Action;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How the platform under test runs (DESIGN.md, "Modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Mock,
    Golden,
    LiveSmoke,
}

impl Mode {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Mock => "mock",
            Mode::Golden => "golden",
            Mode::LiveSmoke => "live_smoke",
        }
    }

    /// Parses a command-line mode name.
    pub fn parse(s: &str) -> Option<Mode> {
        match s.to_ascii_lowercase().as_str() {
            "mock" => Some(Mode::Mock),
            "golden" => Some(Mode::Golden),
            "live_smoke" | "live-smoke" => Some(Mode::LiveSmoke),
            _ => None,
        }
    }
}

fn all_modes() -> Vec<Mode> {
    vec![Mode::Mock, Mode::Golden, Mode::LiveSmoke]
}

/// One scenario: an id from the requirement catalogue, the data it needs, and its steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub id: String,
    pub title: String,
    pub suite: String,
    #[serde(default = "all_modes")]
    pub modes: Vec<Mode>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Requirement ids this spec proves, when more than its own id (or other than it).
    #[serde(default)]
    pub covers: Vec<String>,
    /// Named fixtures to provision before the first step.
    #[serde(default)]
    pub fixtures: Vec<String>,
    /// Set when the spec cannot run yet: it is listed as pending, never as passed.
    pub pending: Option<String>,
    /// Parts of the requirement this spec does not prove (shown in the matrix), so that partial
    /// coverage is never mistaken for full coverage.
    #[serde(default)]
    pub gaps: Vec<String>,
    /// Variables available to every step as `${name}`.
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    /// The caller of every step that does not say `as:`.
    #[serde(rename = "as")]
    pub actor: Option<Actor>,
    /// Platform configuration merged over the target's (in-process targets only; a remote
    /// target skips the spec): short timeouts, small bulkheads, breaker thresholds.
    pub platform: Option<Value>,
    pub steps: Vec<Step>,
    #[serde(skip)]
    pub file: PathBuf,
    /// 1-based line of each step in `steps`.
    #[serde(skip)]
    pub step_lines: Vec<usize>,
    /// 1-based line of `fixtures:` (of the file's start when absent): where setup failures point.
    #[serde(skip)]
    pub setup_line: usize,
    /// The YAML it was loaded from (episodes embed it, so that they replay on their own).
    #[serde(skip)]
    pub source: String,
    /// The fixture definitions its `fixtures:` names resolve against.
    #[serde(skip)]
    pub fixture_set: std::sync::Arc<crate::fixture::Fixtures>,
}

impl Spec {
    /// The requirement ids this spec proves.
    pub fn requirements(&self) -> Vec<String> {
        if self.covers.is_empty() {
            vec![self.id.clone()]
        } else {
            self.covers.clone()
        }
    }

    /// Why this spec does not run in `mode`: it is pending, or not written for that mode.
    pub fn skip_reason(&self, mode: Mode) -> Option<String> {
        if let Some(p) = &self.pending {
            Some(format!("pending: {p}"))
        } else if !self.modes.contains(&mode) {
            Some(format!(
                "not a {} spec (modes: {:?})",
                mode.as_str(),
                self.modes
            ))
        } else {
            None
        }
    }

    /// `file:line` of step `i` (the file's first line when unknown).
    pub fn step_location(&self, i: usize) -> String {
        format!(
            "{}:{}",
            self.file.display(),
            self.step_lines.get(i).copied().unwrap_or(1)
        )
    }
}

/// Who sends a request: a fixture user (logged in through the API), a fixture API key, or nobody.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The fixture's tenant alias (e.g. `acme`); the harness maps it to the scenario's own tenant.
    pub tenant: Option<String>,
    /// A fixture user handle (e.g. `bob`).
    pub user: Option<String>,
    /// A fixture API key label (e.g. `admin`), sent as `X-API-Key`.
    pub api_key: Option<String>,
    /// A raw bearer token (after interpolation), for expired or forged tokens.
    pub token: Option<String>,
    /// With `tenant` and `user`: a token signed with the in-process platform's key for that user
    /// with this role instead of the user's own (any string: `invalid_role` gets a 400). In-process
    /// targets only.
    pub role: Option<String>,
    /// Send no credential at all.
    #[serde(default)]
    pub anonymous: bool,
}

/// One step: its one [`Action`] and what must be true of it. The file spells the action as one of
/// several fields (`chat:`, `get:`, `sink:` ...); the loader turns them into the enum (see
/// [`super::action`]), so a step with none or two of them never gets past loading.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "super::action::StepFields")]
pub struct Step {
    pub name: Option<String>,
    pub actor: Option<Actor>,
    pub action: Action,
    /// Send the step this many times, one after another; every expectation holds for each.
    pub repeat: Option<u32>,
    /// Send the request and go on without waiting for its answer (which is not checked); it is
    /// abandoned when the scenario ends. For a request a later step interrupts.
    pub background: bool,
    /// JSON body (for `post`/`put`/`patch`; merged over the generated body of `chat`/`workflow`).
    pub body: Option<Value>,
    /// A body sent byte for byte (malformed JSON, oversized input).
    pub raw_body: Option<String>,
    /// A raw body made of `text` repeated `times` times (sizes the YAML cannot hold).
    pub repeat_body: Option<RepeatBody>,
    pub headers: BTreeMap<String, String>,
    /// Send this many copies at once; the expectations hold for each.
    pub parallel: Option<u32>,
    /// Retry the step until its expectations hold, or fail with the last attempt's mismatch.
    pub wait_until: Option<WaitUntil>,
    pub expect: Expect,
    /// Variables to take from the response for later steps: `name: json.path`.
    pub capture: BTreeMap<String, String>,
}

/// An `attacks` step: case files of the spec's `cases/` directory (`"*"`: all of them), the
/// admin whose audit log must show each blocked message, and optionally the merge gate instead of
/// requiring every case to pass.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackStep {
    pub cases: Vec<String>,
    pub auditor: Option<Actor>,
    pub gate: Option<crate::attack::Gate>,
}

/// A `ws` step: the frames the session sends once acknowledged (a string is sent as it is), and
/// other callers' sessions opened before it (`peers`), whose frames are read too. The step's JSON
/// is `{frames: [...], peers: [{frames: [...]}]}` and its status the upgrade's (101, or the
/// refusal's). Reading ends once every sent frame but `typing` has had its last answer
/// (`message_complete`, `pong` or `error`), plus `settle_ms` (default 200) for frames that must
/// not come.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsStep {
    #[serde(default)]
    pub send: Vec<Value>,
    #[serde(default)]
    pub peers: Vec<Actor>,
    pub settle_ms: Option<u64>,
}

/// A `sink` step: read what a channel's endpoint received (`channel` absent: every channel), and
/// with `answer`, make the endpoint answer that status from now on (a provider that is down).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkStep {
    pub channel: Option<String>,
    pub answer: Option<u16>,
}

/// A workflow execution request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowCall {
    pub id: String,
    #[serde(default)]
    pub parameters: serde_json::Map<String, Value>,
    pub options: Option<Value>,
}

/// A tool fault: `always_fail`, `{fail_times: n}`, `{delay_ms: n}` or `none`.
/// Replays a recorded episode (`golden/episodes/<episode>`) through a fresh platform; the step's
/// response is the replay's report: `{verdict, reason, differences, score, steps, verdicts,
/// replay_of, episode, original}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayStep {
    /// The episode file, relative to `golden/episodes/`.
    pub episode: String,
    /// exact (default) or similar.
    #[serde(default)]
    pub mode: Option<String>,
    /// Replay this many times (`verdicts` lists each; `verdict` is the last).
    #[serde(default)]
    pub times: Option<u32>,
    /// Workflow id -> a prompt version to give it in a copy of the workflows the platform loads.
    #[serde(default)]
    pub prompt_versions: BTreeMap<String, String>,
    /// Answer with the scripted model of this seed instead of the recorded model calls.
    pub model_seed: Option<u64>,
}

/// When to restart: once an event of the step's tenant matching `after_event` (a subject after
/// the prefix) and `fields` has been published.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartStep {
    pub after_event: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
}

/// An event to wait for: its subject after the prefix, and JSON paths that must match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventWait {
    pub subject: String,
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    pub tool: String,
    /// `call` (default) or `compensate`.
    pub point: Option<String>,
    pub fault: Value,
    /// Tenant alias; the step's actor's tenant by default.
    pub tenant: Option<String>,
}

/// A duration written as people write them: `1100ms`, `90s`, `1h 1s`, `2h59m59s`, `31d`
/// (humantime's units). A bare number is refused: its unit would be a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub std::time::Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let Some(s) = v.as_str() else {
            return Err(serde::de::Error::custom(format!(
                "a duration is a string with its unit, like `90s`, `1h30m` or `1500ms`; got {v}"
            )));
        };
        humantime::parse_duration(s.trim()).map(Span).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{s}` is not a duration ({e}); write e.g. `90s`, `2h59m59s`, `1500ms`"
            ))
        })
    }
}

impl Span {
    /// In whole milliseconds.
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A generated raw body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatBody {
    #[serde(default)]
    pub prefix: String,
    pub text: String,
    pub times: usize,
    #[serde(default)]
    pub suffix: String,
}

/// Polling for a state that arrives asynchronously.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitUntil {
    pub timeout_ms: u64,
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
}

fn default_interval() -> u64 {
    50
}

/// What must be true of a step's response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// A status code, or a list of acceptable ones.
    pub status: Option<Value>,
    /// Header name -> matcher.
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    /// JSON path -> matcher, over the response body (for SSE: `{events:[{event,data}], final}`).
    #[serde(default)]
    pub json: BTreeMap<String, Value>,
    /// Events that must be published on the bus during the step.
    #[serde(default)]
    pub events: Vec<EventExpect>,
    /// Strings that no event published during the step may contain (PAN, CVV, secrets).
    #[serde(default)]
    pub no_event_contains: Vec<String>,
    /// JSON path -> matcher over the run trace (`GET /api/v1/runs/{id}`), extended with `tools`,
    /// `tiers`, `step_ids` and `compensation_ids` lists.
    #[serde(default)]
    pub run: BTreeMap<String, Value>,
    /// Which run to fetch; by default the run id found in the response.
    pub run_id: Option<String>,
    pub budget: Option<Budget>,
    /// The response must equal a golden snapshot: `golden: NAME` or `golden: {name, redact: [paths]}`.
    pub golden: Option<GoldenExpect>,
    /// Rebuild the step's run from its events alone (workflow, tool and compensation events) and
    /// require it to agree with the stored run (`GET /api/v1/runs/{id}`).
    #[serde(default)]
    pub run_from_events: bool,
    /// What the target's `/metrics` says after the step (and how it moved during it), parsed as
    /// metric families: `[{name, labels, value, delta}]` (`expect::metrics`).
    #[serde(default)]
    pub metrics: Vec<crate::expect::metrics::MetricExpect>,
}

/// An event the bus must carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventExpect {
    /// The subject after the prefix, e.g. `workflow.completed`.
    pub subject: String,
    /// Tenant alias; the step's actor's tenant by default.
    pub tenant: Option<String>,
    /// JSON path -> matcher over the envelope (`data.tool`, `run_id`).
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    /// Exactly this many matching events (at least one when absent).
    pub count: Option<usize>,
}

/// Latency (measured by the harness) and cost (reported by the platform) ceilings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub latency_ms: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// A golden snapshot a step's response is compared with (`golden/snapshots/<suite>/<name>.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum GoldenExpect {
    Name(String),
    Full {
        name: String,
        /// Paths whose values are volatile: replaced by `"[REDACTED]"` before the comparison.
        #[serde(default)]
        redact: Vec<String>,
    },
}

impl GoldenExpect {
    pub fn name(&self) -> &str {
        match self {
            GoldenExpect::Name(n) | GoldenExpect::Full { name: n, .. } => n,
        }
    }

    pub fn redact(&self) -> &[String] {
        match self {
            GoldenExpect::Name(_) => &[],
            GoldenExpect::Full { redact, .. } => redact,
        }
    }
}
