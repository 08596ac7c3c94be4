//! The scenario runner: boots or reaches the target, provisions the spec's fixtures as the
//! scenario's own tenants, executes the steps in order and checks every expectation against what the
//! platform did (response, event bus, run trace, budgets). A failure says where (`file:line`), which
//! step, what was expected and what was found, the seed, and the one command that reproduces it.

use crate::drive::events::{Cursor, EventFeed};
use crate::drive::{self, Request, Response};
use crate::expect::{self, matcher::Matcher, metrics, path::Path};
use crate::fixture::{self, FixtureTenant};
use crate::oracle;
use crate::record::episode::{self, Episode, TenantRecord};
use crate::record::snapshot;
use crate::spec::{Action, Actor, Mode, Spec, Step, Verb};
use crate::target::{ModelPlan, Target, TargetSpec};
use futures::StreamExt;
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

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
    pub message: String,
    pub seed: u64,
    pub reproduce: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}: {}", self.location, self.step)?;
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
    fn own(step: usize, request: String, status: u16, response: Value) -> Exchange {
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

/// A temporary copy of the shipped workflows with the given prompt versions (removed on drop): a
/// `workflows_dir` for a platform whose prompts changed since an episode was recorded.
pub fn workflows_with_prompt_versions(
    versions: &BTreeMap<String, String>,
) -> Result<tempfile::TempDir, String> {
    let dir = tempfile::Builder::new()
        .prefix("harness-workflows-")
        .tempdir()
        .map_err(|e| format!("a temporary workflows directory: {e}"))?;
    let mut found = std::collections::BTreeSet::new();
    for (rel, mut text) in platform::orchestrator::loader::shipped_files() {
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .map(|s| s.trim().trim_matches('"').to_string());
        if let Some(v) = id.as_ref().and_then(|id| versions.get(id)) {
            found.insert(id.clone().unwrap_or_default());
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with("prompt_version:"))
                .collect();
            text = format!("{}\nprompt_version: \"{v}\"\n", kept.join("\n"));
        }
        let path = dir.path().join(&rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
    }
    let unknown: Vec<&String> = versions.keys().filter(|k| !found.contains(*k)).collect();
    if unknown.is_empty() {
        Ok(dir)
    } else {
        Err(format!("prompt_versions: no shipped workflow {unknown:?}"))
    }
}

/// How two runs of one spec with the same seed differ (`--check-determinism`): verdict, failure,
/// or the first differing part of their episodes (steps, final output, audit trail, model calls).
pub fn nondeterminism(a: &Outcome, b: &Outcome) -> Option<String> {
    if a.status != b.status
        || a.failure.as_ref().map(|f| &f.message) != b.failure.as_ref().map(|f| &f.message)
    {
        return Some(format!(
            "the two runs ended differently: {:?} then {:?}\nfirst: {}\nsecond: {}",
            a.status,
            b.status,
            a.failure.as_ref().map_or("-".into(), |f| f.message.clone()),
            b.failure.as_ref().map_or("-".into(), |f| f.message.clone())
        ));
    }
    let (x, y) = match (&a.episode, &b.episode) {
        (Some(x), Some(y)) => (x, y),
        (None, None) => return None,
        _ => return Some("only one of the runs recorded an episode".into()),
    };
    if let Some(d) = episode::compare(x, y).into_iter().next() {
        return Some(format!(
            "the episodes differ at {}:\nfirst:  {}\nsecond: {}",
            d.step,
            expect::matcher::short(&d.original),
            expect::matcher::short(&d.replayed)
        ));
    }
    let keys = |e: &Episode| -> Vec<(String, String)> {
        e.model_calls
            .iter()
            .map(|c| (c.body.key.clone(), c.body.response.text.clone()))
            .collect()
    };
    if keys(x) != keys(y) {
        return Some("the model calls differ between the runs".into());
    }
    None
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

struct Tenant {
    slug: String,
    fixture: FixtureTenant,
}

struct Scenario<'a> {
    spec: &'a Spec,
    cfg: &'a RunConfig,
    target: Target,
    http: reqwest::Client,
    vars: BTreeMap<String, Value>,
    tenants: BTreeMap<String, Tenant>,
    tokens: Mutex<HashMap<(String, String), String>>,
    transcript: Vec<Exchange>,
    /// The exchanges of the step's latest attempt.
    attempt_log: std::sync::Mutex<Vec<Exchange>>,
    /// Requests sent with `background: true`, abandoned when the scenario ends.
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Results of the `attacks` steps so far.
    attacks: Vec<crate::attack::CaseResult>,
    /// Where the captured log stood when the scenario started (`logs::mark`).
    log_mark: usize,
}

impl Drop for Scenario<'_> {
    fn drop(&mut self) {
        for t in &self.background {
            t.abort();
        }
    }
}

/// The tenant id a fixture tenant `alias` gets in scenario `spec_id` run with `seed` (`nonce` is
/// empty for in-process targets).
pub fn tenant_slug(seed: u64, spec_id: &str, alias: &str, nonce: &str) -> String {
    let h = hex::encode(Sha256::digest(
        format!("{seed}:{spec_id}:{alias}:{nonce}").as_bytes(),
    ));
    format!("{alias}-{}", &h[..10])
}

/// A nonce that keeps tenants of different runs apart on a shared deployment (MOCK boots a fresh
/// platform per scenario, so it needs none and its slugs are reproducible).
fn run_nonce(target: &TargetSpec) -> String {
    match target {
        // GOLDEN runs get their own database, so they need no nonce either.
        TargetSpec::Mock | TargetSpec::Golden(_) => String::new(),
        TargetSpec::Remote { .. } => {
            static NONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            NONCE
                .get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_string())
                .clone()
        }
    }
}

impl<'a> Scenario<'a> {
    async fn run(
        spec: &'a Spec,
        cfg: &'a RunConfig,
    ) -> (
        Result<(), Failure>,
        Vec<Exchange>,
        Option<Episode>,
        Vec<crate::attack::CaseResult>,
    ) {
        let mut transcript = vec![];
        let mut episode = None;
        let mut attacks = vec![];
        let r = Self::run_into(spec, cfg, &mut transcript, &mut episode, &mut attacks).await;
        (r, transcript, episode, attacks)
    }

    async fn run_into(
        spec: &'a Spec,
        cfg: &'a RunConfig,
        transcript: &mut Vec<Exchange>,
        episode: &mut Option<Episode>,
        attacks: &mut Vec<crate::attack::CaseResult>,
    ) -> Result<(), Failure> {
        let fail_at = |location: String, step: &str, message: String| Failure {
            location,
            step: step.into(),
            message,
            seed: cfg.seed,
            reproduce: cfg.reproduce(spec),
        };
        let setup = |m: String| {
            fail_at(
                format!("{}:{}", spec.file.display(), spec.setup_line.max(1)),
                "setup",
                m,
            )
        };
        crate::logs::install();
        let log_mark = crate::logs::mark();
        let target = cfg
            .target
            .start(
                cfg.seed,
                &spec.id,
                &cfg.model,
                cfg.workflows_dir.as_deref(),
                spec.platform.as_ref(),
            )
            .await
            .map_err(|e| setup(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let nonce = run_nonce(&cfg.target);
        let slug_of = |alias: &str| tenant_slug(cfg.seed, &spec.id, alias, &nonce);
        let mut sc = Scenario {
            spec,
            cfg,
            target,
            http,
            vars: spec.vars.clone(),
            tenants: BTreeMap::new(),
            tokens: Mutex::new(HashMap::new()),
            transcript: vec![],
            attempt_log: std::sync::Mutex::new(vec![]),
            background: vec![],
            attacks: vec![],
            log_mark,
        };
        sc.vars.insert("seed".into(), json!(cfg.seed));
        for name in &spec.fixtures {
            let ts = spec
                .fixture_set
                .build(name, cfg.seed, &slug_of)
                .ok_or_else(|| setup(format!("unknown fixture `{name}`")))?;
            for t in ts {
                let slug = t.slug.clone();
                sc.provision(&slug, &t.seed).await.map_err(|m| {
                    setup(format!(
                        "provisioning fixture `{name}` (tenant `{}` as {slug}): {m}",
                        t.alias
                    ))
                })?;
                sc.vars.insert(format!("tenant.{}", t.alias), json!(slug));
                sc.tenants
                    .insert(t.alias.clone(), Tenant { slug, fixture: t });
            }
        }
        let mut result = Ok(());
        for (i, step) in spec.steps.iter().enumerate() {
            let label = step_label(i, step);
            if let Err(m) = sc.step(i + 1, step).await {
                result = Err(fail_at(spec.step_location(i), &label, m));
                break;
            }
        }
        // The oracles run whatever the steps found: a leak matters more than the step it broke.
        if let Err(m) = sc.isolation_oracle().await {
            result = Err(match result {
                Err(mut f) => {
                    f.message = format!("{}\n(and the oracles found:)\n{m}", f.message);
                    f
                }
                Ok(()) => fail_at(
                    format!("{}:{}", spec.file.display(), spec.setup_line.max(1)),
                    "oracle",
                    m,
                ),
            });
        }
        // A model request without a cassette fails the scenario even when the spec expected the
        // error it caused: GOLDEN fails closed.
        let problems = sc
            .target
            .llm
            .as_ref()
            .map(|l| l.problems())
            .unwrap_or_default();
        if !problems.is_empty() {
            let m = problems.join("\n");
            result = Err(match result {
                Err(mut f) => {
                    f.message = format!("{m}\n(which made this step fail:)\n{}", f.message);
                    f
                }
                Ok(()) => fail_at(
                    format!("{}:{}", spec.file.display(), spec.setup_line.max(1)),
                    "model",
                    m,
                ),
            });
        }
        *transcript = std::mem::take(&mut sc.transcript);
        *attacks = std::mem::take(&mut sc.attacks);
        if cfg.record_episodes {
            let run_ids: Vec<String> = transcript
                .iter()
                .filter_map(|e| find_run_id(&e.response))
                .collect();
            let tenants = sc.tenant_records(&run_ids).await.unwrap_or_default();
            *episode = Some(Episode::build(episode::Parts {
                spec,
                seed: cfg.seed,
                mode: cfg.mode.as_str(),
                failure: result.as_ref().err().map(|f| f.message.clone()),
                transcript,
                tenants,
                model_calls: sc
                    .target
                    .llm
                    .as_ref()
                    .map(|l| l.served())
                    .unwrap_or_default(),
            }));
        }
        result
    }

    /// The tenant-isolation oracle over what this scenario saw: every response to a tenant's
    /// caller and every event published for a tenant, against the other tenants' canaries (the
    /// fixture tenants and the demo ones). In-process targets only: a remote deployment's seed,
    /// which the canaries derive from, is not known here.
    async fn isolation_oracle(&self) -> Result<(), String> {
        if matches!(self.cfg.target, TargetSpec::Remote { .. }) {
            return Ok(());
        }
        let mut canaries: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for slug in ["acme", "globex"] {
            canaries.insert(
                slug.into(),
                vec![platform::demo::canary(self.cfg.seed, slug)],
            );
        }
        for t in self.tenants.values() {
            // Besides the two canaries, every value only this tenant's data holds: its documents'
            // ids, its users' and leads' e-mails (they name the tenant's slug).
            let mut own = vec![
                platform::demo::canary(self.cfg.seed, &t.slug),
                fixture::data_canary(&t.slug),
            ];
            for (list, field) in [
                ("documents", "document_id"),
                ("users", "email"),
                ("leads", "email"),
            ] {
                own.extend(
                    t.fixture.seed[list]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x[field].as_str().map(str::to_string)),
                );
            }
            canaries.insert(t.slug.clone(), own);
        }
        let mut seen = vec![];
        for e in &self.transcript {
            if e.request.starts_with("REPLAY") {
                continue; // a replay report quotes other scenarios' episodes
            }
            let Some(t) = e.caller.as_ref().and_then(|a| self.tenants.get(a)) else {
                continue;
            };
            seen.push(oracle::Seen {
                tenant: &t.slug,
                place: format!("step {} {}", e.step, e.request),
                content: &e.response,
            });
        }
        // What the channels' endpoint received is seen by the tenant the platform addressed it to.
        let received = self
            .target
            .sink
            .as_ref()
            .map(|s| s.received(&self.tenant_slugs()))
            .unwrap_or_default();
        for r in &received {
            seen.push(oracle::Seen {
                tenant: &r.tenant,
                place: format!("sink {} ({})", r.channel, r.tenant),
                content: &r.body,
            });
        }
        let (events, _) = self.feed().since(Cursor::default()).await?;
        for ev in &events {
            if let Some(t) = ev["tenant_id"].as_str() {
                seen.push(oracle::Seen {
                    tenant: t,
                    place: format!("event {}", ev["event_type"].as_str().unwrap_or("?")),
                    content: ev,
                });
            }
        }
        let mut leaks = oracle::cross_tenant_leaks(&seen, &canaries);
        leaks.extend(oracle::log_leaks(
            &crate::logs::since(self.log_mark),
            &self.log_secrets(),
        ));
        if leaks.is_empty() {
            Ok(())
        } else {
            Err(leaks.join("\n"))
        }
    }

    /// What no log line may carry: this scenario's tenants' canaries, and their fixtures' user
    /// e-mails and passwords, API keys and lead e-mails.
    fn log_secrets(&self) -> Vec<(String, String)> {
        let mut out = vec![];
        for t in self.tenants.values() {
            for c in [
                platform::demo::canary(self.cfg.seed, &t.slug),
                fixture::data_canary(&t.slug),
            ] {
                out.push((c, format!("a canary of tenant {}", t.slug)));
            }
            let seed = &t.fixture.seed;
            let each = |list: &str, field: &str| -> Vec<String> {
                seed[list]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x[field].as_str().map(str::to_string))
                    .collect()
            };
            for (list, field, what) in [
                ("users", "email", "a user's e-mail"),
                ("users", "password", "a user's password"),
                ("api_keys", "key", "an API key"),
                ("leads", "email", "a lead's e-mail"),
            ] {
                for v in each(list, field) {
                    out.push((v, format!("{what} of tenant {}", t.slug)));
                }
            }
        }
        out
    }

    /// Each fixture tenant's versions, audit trail and the named runs, from the operator surface
    /// (so that reading them is not the tenant's traffic).
    async fn tenant_records(&self, run_ids: &[String]) -> Result<Vec<TenantRecord>, String> {
        let mut out = vec![];
        for (alias, t) in &self.tenants {
            let path = format!(
                "/api/v1/operator/tenants/{}/record?runs={}",
                t.slug,
                run_ids.join(",")
            );
            let r = self
                .http
                .get(format!("{}{path}", self.target.base_url))
                .header("x-operator-key", &self.target.operator_key)
                .send()
                .await
                .map_err(|e| format!("GET {path}: {e}"))?;
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status != 200 {
                return Err(format!("GET {path} answered {status}: {body}"));
            }
            out.push(TenantRecord {
                alias: alias.clone(),
                slug: t.slug.clone(),
                versions: body["versions"].clone(),
                audit: body["audit"].as_array().cloned().unwrap_or_default(),
                runs: body["runs"].as_array().cloned().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    async fn provision(&self, slug: &str, body: &Value) -> Result<(), String> {
        let path = format!("/api/v1/operator/tenants/{slug}");
        self.operator(Method::PUT, &path, body, 201).await
    }

    /// A call to the target's operator surface that must answer `expected`.
    async fn operator(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        expected: u16,
    ) -> Result<(), String> {
        let r = self
            .http
            .request(method.clone(), format!("{}{path}", self.target.base_url))
            .header("x-operator-key", &self.target.operator_key)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = r.status().as_u16();
        if status == expected {
            Ok(())
        } else {
            Err(format!(
                "{method} {path} answered {status}: {}",
                r.text().await.unwrap_or_default()
            ))
        }
    }

    fn actor(&self, step: &Step) -> Actor {
        step.actor
            .clone()
            .or_else(|| self.spec.actor.clone())
            .unwrap_or_default()
    }

    fn slug(&self, alias: &str) -> Result<String, String> {
        self.tenants
            .get(alias)
            .map(|t| t.slug.clone())
            .ok_or_else(|| format!("no fixture provides tenant `{alias}`"))
    }

    async fn credentials(&self, a: &Actor) -> Result<BTreeMap<String, String>, String> {
        let mut h = BTreeMap::new();
        if let Some(tok) = &a.token {
            let tok = self.interp_str(tok)?;
            h.insert("authorization".into(), format!("Bearer {tok}"));
            return Ok(h);
        }
        let Some(alias) = &a.tenant else {
            return Ok(h);
        };
        let t = self
            .tenants
            .get(alias)
            .ok_or_else(|| format!("no fixture provides tenant `{alias}`"))?;
        if let Some(label) = &a.api_key {
            let key = t
                .fixture
                .api_keys
                .get(label)
                .ok_or_else(|| format!("no API key `{label}`"))?;
            h.insert("x-api-key".into(), key.clone());
        } else if let (Some(user), Some(role)) = (&a.user, &a.role) {
            let token = self.target.mint_token(&t.slug, user, role).ok_or(
                "`as: {role}` needs an in-process target (it signs with the platform's key)",
            )?;
            h.insert("authorization".into(), format!("Bearer {token}"));
        } else if let Some(user) = &a.user {
            let token = self.login(alias, t, user).await?;
            h.insert("authorization".into(), format!("Bearer {token}"));
        }
        Ok(h)
    }

    /// Logs a fixture user in through `POST /api/v1/auth/login`, once per scenario.
    async fn login(&self, alias: &str, t: &Tenant, user: &str) -> Result<String, String> {
        let key = (alias.to_string(), user.to_string());
        let mut cache = self.tokens.lock().await;
        if let Some(tok) = cache.get(&key) {
            return Ok(tok.clone());
        }
        let login = t
            .fixture
            .users
            .get(user)
            .ok_or_else(|| format!("no user `{user}` in `{alias}`"))?;
        let r = self
            .http
            .post(format!("{}/api/v1/auth/login", self.target.base_url))
            .json(&json!({"tenant_id": t.slug, "email": login.email, "password": login.password}))
            .send()
            .await
            .map_err(|e| format!("login of {user}: {e}"))?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let tok = body["token"]
            .as_str()
            .filter(|_| status == 200)
            .ok_or_else(|| format!("login of {user}@{alias} answered {status}: {body}"))?
            .to_string();
        cache.insert(key, tok.clone());
        Ok(tok)
    }

    fn interp_str(&self, s: &str) -> Result<String, String> {
        match self.interp(&Value::String(s.into()))? {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }

    /// Replaces `${name}` in every string of `v`; a string that is only `${name}` takes the
    /// variable's JSON value.
    fn interp(&self, v: &Value) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => {
                if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                    if !name.contains("${") {
                        return self.var(name).cloned();
                    }
                }
                let mut out = String::new();
                let mut rest = s.as_str();
                while let Some(i) = rest.find("${") {
                    out.push_str(&rest[..i]);
                    let end = rest[i..]
                        .find('}')
                        .ok_or_else(|| format!("`{s}`: `${{` without `}}`"))?;
                    let name = &rest[i + 2..i + end];
                    match self.var(name)? {
                        Value::String(x) => out.push_str(x),
                        other => out.push_str(&other.to_string()),
                    }
                    rest = &rest[i + end + 1..];
                }
                out.push_str(rest);
                Value::String(out)
            }
            Value::Array(a) => {
                Value::Array(a.iter().map(|x| self.interp(x)).collect::<Result<_, _>>()?)
            }
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.interp(x)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    fn var(&self, name: &str) -> Result<&Value, String> {
        self.vars.get(name).ok_or_else(|| {
            format!(
                "unknown variable `${{{name}}}` (known: {})",
                self.vars.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// Runs one step; with `expect.metrics`, `/metrics` is scraped before it (for deltas) and
    /// checked after it.
    async fn step(&mut self, n: usize, step: &Step) -> Result<(), String> {
        let items = &step.expect.metrics;
        let before = if items.iter().any(|i| i.delta.is_some()) {
            Some(self.scrape().await?)
        } else {
            None
        };
        self.action(n, step).await?;
        if items.is_empty() {
            Ok(())
        } else {
            self.check_metrics(items, before.as_ref()).await
        }
    }

    /// The target's `/metrics`, parsed.
    async fn scrape(&self) -> Result<metrics::Scrape, String> {
        let url = format!("{}/metrics", self.target.base_url);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET /metrics: {e}"))?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(|e| format!("GET /metrics: {e}"))?;
        if status != 200 {
            return Err(format!("GET /metrics answered {status}: {text}"));
        }
        metrics::Scrape::parse(&text).map_err(|e| e.to_string())
    }

    /// Checks a step's `metrics:` items, scraping again until they hold or the events timeout
    /// passes (counters of background work, like events, arrive a little after the answer).
    async fn check_metrics(
        &self,
        items: &[metrics::MetricExpect],
        before: Option<&metrics::Scrape>,
    ) -> Result<(), String> {
        let items: Vec<metrics::MetricExpect> = items
            .iter()
            .map(|i| {
                let mut i = i.clone();
                i.value = i.value.as_ref().map(|v| self.interp(v)).transpose()?;
                i.delta = i.delta.as_ref().map(|v| self.interp(v)).transpose()?;
                Ok(i)
            })
            .collect::<Result<_, String>>()?;
        let deadline = Instant::now() + self.cfg.events_timeout;
        loop {
            let after = self.scrape().await?;
            let problems = metrics::check(&items, before, &after).map_err(|e| e.to_string())?;
            if problems.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(problems.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the step's one action and checks its expectations (all but `metrics`).
    async fn action(&mut self, n: usize, step: &Step) -> Result<(), String> {
        match &step.action {
            Action::Fault(f) => self.fault(step, f).await,
            Action::Attacks(a) => self.attacks(n, step, a).await,
            Action::Concurrently(list) => self.concurrently(n, list).await,
            Action::Ws(w) => self.ws(n, step, w).await,
            Action::Sink(s) => self.sink(n, step, s).await,
            Action::Replay(r) => self.replay_step(n, step, r).await,
            Action::Restart(r) => {
                let resp = self.restart(step, r).await?;
                self.harness_step(n, step, "RESTART".into(), resp).await
            }
            Action::WaitForEvent(w) => {
                let resp = event_response(self.await_event(step, &w.subject, &w.fields).await?);
                self.harness_step(n, step, format!("WAIT FOR {}", w.subject), resp)
                    .await
            }
            Action::AdvanceClock(span) => {
                self.operator(
                    Method::POST,
                    "/api/v1/operator/clock",
                    &json!({"advance_ms": span.as_millis()}),
                    200,
                )
                .await
            }
            Action::Chat { .. } | Action::Http { .. } | Action::Workflow(_) => {
                if step.background {
                    self.background_request(n, step).await
                } else {
                    self.request_step(n, step).await
                }
            }
        }
    }

    /// A `replay` step: the replay's report is the step's response.
    async fn replay_step(
        &mut self,
        n: usize,
        step: &Step,
        r: &crate::spec::ReplayStep,
    ) -> Result<(), String> {
        let resp = self.replay(r).await?;
        // The transcript and failure messages keep the verdict: not the two whole episodes,
        // nor the timing analysis (real time: a rerun must read the same).
        let mut summary = resp.json.clone();
        if let Some(m) = summary.as_object_mut() {
            m.remove("episode");
            m.remove("original");
            m.remove("analysis");
        }
        self.transcript.push(Exchange {
            latency_ms: resp.latency.as_millis() as u64,
            ..Exchange::own(
                n,
                format!("REPLAY {}", r.episode),
                resp.status,
                summary.clone(),
            )
        });
        self.check_response(step, &resp, &BTreeMap::new())
            .await
            .map_err(|m| format!("{m}\nreplay report: {}", expect::matcher::short(&summary)))?;
        self.capture(step, &resp)
    }

    /// A step the harness answers itself (a restart, an event wait): its response goes to the
    /// transcript and is checked like a request's.
    async fn harness_step(
        &mut self,
        n: usize,
        step: &Step,
        request: String,
        resp: Response,
    ) -> Result<(), String> {
        self.transcript
            .push(Exchange::own(n, request, resp.status, resp.json.clone()));
        self.check_response(step, &resp, &BTreeMap::new()).await?;
        self.capture(step, &resp)
    }

    /// A request sent with `background: true`: recorded, sent, not waited for.
    async fn background_request(&mut self, n: usize, step: &Step) -> Result<(), String> {
        let creds = self.credentials(&self.actor(step)).await?;
        let req = self.request(n, step, creds)?;
        self.transcript.push(Exchange {
            body: req
                .body
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok()),
            ..Exchange::own(
                n,
                format!(
                    "{} {} (in the background)",
                    req.method,
                    req.url
                        .strip_prefix(&self.target.base_url)
                        .unwrap_or(&req.url)
                ),
                0,
                Value::Null,
            )
        });
        let http = self.http.clone();
        self.background.push(tokio::spawn(async move {
            let _ = drive::send(&http, &req).await;
        }));
        Ok(())
    }

    /// A request step: sent (`repeat` times, each after the last), checked, captured.
    async fn request_step(&mut self, n: usize, step: &Step) -> Result<(), String> {
        // `repeat: n` sends the step n times, one after another; each repetition's exchanges are
        // numbered as its copy (1..n) in the transcript.
        let times = step.repeat.unwrap_or(1);
        let mut resp = None;
        for i in 0..times {
            let r = self.attempts(n, step).await;
            // Only the last attempt of a wait_until belongs to the transcript: how many polls it
            // took depends on timing, what it ended with does not.
            let mut last =
                std::mem::take(&mut *self.attempt_log.lock().unwrap_or_else(|e| e.into_inner()));
            if times > 1 {
                for e in &mut last {
                    e.copy = i as usize + 1;
                }
            }

            self.transcript.extend(last);
            resp = Some(r.map_err(|m| {
                if times > 1 {
                    format!("repetition {} of {times}: {m}", i + 1)
                } else {
                    m
                }
            })?);
        }
        let resp = resp.ok_or("`repeat` must be at least 1")?;
        self.capture(step, &resp)
    }

    /// Runs a `ws` step: the peers' sessions, then the caller's, which sends the step's frames;
    /// every session's frames go to the transcript under its own caller (the oracle's
    /// attribution), and the step's expectations are checked on `{frames, peers}`.
    async fn ws(&mut self, n: usize, step: &Step, w: &crate::spec::WsStep) -> Result<(), String> {
        let actor = self.actor(step);
        let creds = self.credentials(&actor).await?;
        let mut peer_creds = vec![];
        for p in &w.peers {
            peer_creds.push(self.credentials(p).await?);
        }
        let sent: Vec<Value> = w
            .send
            .iter()
            .map(|f| self.interp(f))
            .collect::<Result<_, _>>()?;
        let e = &step.expect;
        let cursor = if e.events.is_empty() && e.no_event_contains.is_empty() {
            None
        } else {
            Some(self.feed().head().await?)
        };
        let url = self.target.base_url.replacen("http", "ws", 1) + "/ws/chat";
        let started = Instant::now();
        let seen = drive::ws::session(
            &url,
            &creds,
            &peer_creds,
            &sent,
            Duration::from_millis(w.settle_ms.unwrap_or(200)),
            Duration::from_secs(10),
        )
        .await?;
        let latency = started.elapsed();
        for (i, (p, frames)) in w.peers.iter().zip(&seen.peers).enumerate() {
            self.transcript.push(Exchange {
                step: n,
                copy: i + 1,
                request: format!("WS /ws/chat (peer {})", i + 1),
                body: None,
                status: 101,
                response: json!({"frames": frames}),
                latency_ms: 0,
                headers: BTreeMap::new(),
                caller: p.tenant.clone(),
            });
        }
        let json = json!({
            "frames": seen.frames,
            "peers": seen.peers.iter().map(|f| json!({"frames": f})).collect::<Vec<_>>(),
        });
        self.transcript.push(Exchange {
            step: n,
            copy: 0,
            request: "WS /ws/chat".into(),
            body: Some(Value::Array(sent)),
            status: seen.status,
            response: json!({"frames": seen.frames}),
            latency_ms: latency.as_millis() as u64,
            headers: BTreeMap::new(),
            caller: actor.tenant.clone(),
        });
        let resp = Response {
            status: seen.status,
            headers: BTreeMap::new(),
            json,
            latency,
        };
        self.check_response(step, &resp, &creds)
            .await
            .map_err(|m| format!("{m}\nframes: {}", expect::matcher::short(&resp.json)))?;
        if let Some(c) = cursor {
            self.check_events(step, &actor, c).await?;
        }
        self.capture(step, &resp)
    }

    /// Runs a `sink` step: sets the sink's answer for the channel (with `answer`), then checks
    /// what the channel's endpoint received, again every `interval_ms` until the expectations
    /// hold when the step says `wait_until` (reading the sink changes nothing).
    async fn sink(
        &mut self,
        n: usize,
        step: &Step,
        s: &crate::spec::SinkStep,
    ) -> Result<(), String> {
        let sink = self
            .target
            .sink
            .as_ref()
            .ok_or("a `sink` step needs a target whose channels the harness configured (MOCK, GOLDEN or --spawn): a deployment's channels deliver to its own endpoints")?;
        let tenants = self.tenant_slugs();
        if let Some(status) = s.answer {
            sink.answer(&tenants, s.channel.as_deref(), status);
        }
        let started = Instant::now();
        let mut attempts = 0;
        let resp = loop {
            attempts += 1;
            let resp = Response {
                status: 200,
                headers: BTreeMap::new(),
                json: sink.view(&tenants, s.channel.as_deref()),
                latency: Duration::ZERO,
            };
            let Err(m) = self.check_response(step, &resp, &BTreeMap::new()).await else {
                break resp;
            };
            if let Err(m) = poll_again(step, started, attempts, m).await {
                self.transcript.push(sink_exchange(n, s, &resp));
                return Err(format!(
                    "{m}\nthe sink received: {}",
                    expect::matcher::short(&resp.json)
                ));
            }
        };
        self.transcript.push(sink_exchange(n, s, &resp));
        self.capture(step, &resp)
    }

    /// Sends the sub-steps of a `concurrently` step at once (each with its own caller, copies and
    /// expectations) and checks each; all their exchanges go to the transcript under this step.
    async fn concurrently(&mut self, n: usize, list: &[Step]) -> Result<(), String> {
        self.attempt_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let results = futures::future::join_all(list.iter().map(|s| self.attempt(n, s))).await;
        let log = std::mem::take(&mut *self.attempt_log.lock().unwrap_or_else(|e| e.into_inner()));
        self.transcript.extend(log);
        let problems: Vec<String> = results
            .into_iter()
            .zip(list)
            .enumerate()
            .filter_map(|(i, (r, s))| {
                r.err()
                    .map(|m| format!("concurrent request {} ({}): {m}", i + 1, step_label(i, s)))
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Sends every case of the step's case files (from the spec's `cases/` directory) as the
    /// step's caller, judges each (`attack::judge`: status, guard verdict, forbidden text, the
    /// `guard.blocked` event, no tool call) and checks that the audit log holds a `guard.blocked`
    /// row for every blocked message. Fails with every failing case, or, with a `gate`, only
    /// when the catalogue's gate fails.
    async fn attacks(
        &mut self,
        n: usize,
        step: &Step,
        a: &crate::spec::AttackStep,
    ) -> Result<(), String> {
        use crate::attack;
        let dir = self
            .spec
            .file
            .parent()
            .map(|d| d.join("cases"))
            .unwrap_or_default();
        let files = attack::load(&dir, &a.cases)?;
        let actor = self.actor(step);
        let creds = self.credentials(&actor).await?;
        let slug = match &actor.tenant {
            Some(t) => Some(self.slug(t)?),
            None => None,
        };
        let feed = self.feed();
        let mut results = vec![];
        let mut message_ids = vec![];
        for f in &files {
            for c in &f.cases {
                let mut headers = creds.clone();
                headers.insert("content-type".into(), "application/json".into());
                headers.insert(
                    "x-request-id".into(),
                    format!("{}-{}-{n}-{}", self.spec.id, self.cfg.seed, c.id),
                );
                let body = if let Some(r) = &c.raw_body {
                    r.clone().into_bytes()
                } else if let Some(r) = &c.repeat_body {
                    format!("{}{}{}", r.prefix, r.text.repeat(r.times), r.suffix).into_bytes()
                } else {
                    let mut b = match &c.payload {
                        Some(p) => json!({"message": {"content": p}}),
                        None => json!({}),
                    };
                    if let Some(over) = &c.body {
                        deep_merge(&mut b, self.interp(over)?);
                    }
                    b.to_string().into_bytes()
                };
                let path = c.path.clone().unwrap_or("/api/v1/chat/message".into());
                let req = Request {
                    method: Method::POST,
                    url: format!("{}{path}", self.target.base_url),
                    headers,
                    body: Some(body),
                    sse: false,
                };
                let cursor = feed.head().await?;
                let resp = drive::send(&self.http, &req).await?;
                // The event window is fed asynchronously: a refused message's `guard.blocked`
                // event is waited for (up to the events timeout), like any expected event.
                let refused = resp.status == 200 && resp.json["guard"]["blocked"] == true;
                let deadline = Instant::now() + self.cfg.events_timeout;
                let observed = loop {
                    let (seen, _) = feed.since(cursor).await?;
                    let events: Vec<String> = seen
                        .iter()
                        .filter(|e| slug.as_ref().is_none_or(|s| e["tenant_id"] == *s))
                        .filter_map(|e| e["event_type"].as_str().map(str::to_string))
                        .collect();
                    if !refused
                        || events.iter().any(|e| e == "guard.blocked")
                        || Instant::now() >= deadline
                    {
                        break attack::Observed { events };
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                };
                self.record(n, &req, &[Ok(resp.clone())], actor.tenant.as_deref());
                let mut ex = std::mem::take(
                    &mut *self.attempt_log.lock().unwrap_or_else(|e| e.into_inner()),
                );
                for e in &mut ex {
                    e.request = format!("ATTACK {} {}", c.id, e.request);
                }
                self.transcript.extend(ex);
                let r = attack::judge(
                    f,
                    c,
                    resp.status,
                    &resp.json,
                    &observed,
                    resp.latency.as_millis() as u64,
                );
                if r.blocked && resp.status == 200 {
                    if let Some(id) = resp.json["response"]["message_id"].as_str() {
                        message_ids.push((c.id.clone(), id.to_string()));
                    }
                }
                results.push(r);
            }
        }
        if let Some(auditor) = &a.auditor {
            let creds = self.credentials(auditor).await?;
            let resp = drive::send(
                &self.http,
                &Request {
                    method: Method::GET,
                    url: format!("{}/api/v1/audit", self.target.base_url),
                    headers: creds,
                    body: None,
                    sse: false,
                },
            )
            .await?;
            if resp.status != 200 {
                return Err(format!(
                    "GET /api/v1/audit as the auditor: {} {}",
                    resp.status,
                    expect::matcher::short(&resp.json)
                ));
            }
            let rows = resp.json["entries"].as_array().cloned().unwrap_or_default();
            for (case, id) in &message_ids {
                let found = rows.iter().any(|r| {
                    r["action"] == "guard.blocked"
                        && r["resource"]
                            .as_str()
                            .is_some_and(|res| res.ends_with(id.as_str()))
                });
                if !found {
                    if let Some(r) = results.iter_mut().find(|r| &r.id == case) {
                        r.passed = false;
                        r.problems
                            .push(format!("no guard.blocked audit row names message {id}"));
                    }
                }
            }
        }
        let outcome = match &a.gate {
            Some(g) => {
                let c = attack::catalogue(&results, *g);
                if c.gate.passed {
                    Ok(())
                } else {
                    Err(attack::render(&c))
                }
            }
            None => {
                let failed: Vec<String> = results
                    .iter()
                    .filter(|r| !r.passed)
                    .map(|r| format!("{} ({}): {}", r.id, r.adv, r.problems.join("; ")))
                    .collect();
                if failed.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "{} of {} cases failed:\n{}",
                        failed.len(),
                        results.len(),
                        failed.join("\n")
                    ))
                }
            }
        };
        self.attacks.extend(results);
        outcome
    }

    /// The first event of the step's tenant published in this scenario with `subject` and
    /// matching `fields`, waited for up to the events timeout.
    async fn await_event(
        &self,
        step: &Step,
        subject: &str,
        fields: &BTreeMap<String, Value>,
    ) -> Result<Value, String> {
        let actor = self.actor(step);
        let tenant = self.slug(&actor.tenant.clone().unwrap_or_default())?;
        let feed = self.feed();
        let deadline = Instant::now() + self.cfg.events_timeout;
        loop {
            let (all, _) = feed.since(Cursor::default()).await?;
            for e in &all {
                if e["event_type"] != json!(subject) || e["tenant_id"] != json!(tenant) {
                    continue;
                }
                let mut why = vec![];
                check_paths("field", fields, e, self, &mut why)?;
                if why.is_empty() {
                    return Ok(e.clone());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no `{subject}` event of tenant {tenant} matching {fields:?} within {:?}",
                    self.cfg.events_timeout
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the step's event (if any), then restarts the in-process platform; the new
    /// instance gets a new address and a new HTTP client (pooled connections belonged to the
    /// dead one).
    async fn restart(
        &mut self,
        step: &Step,
        r: &crate::spec::RestartStep,
    ) -> Result<Response, String> {
        let event = match &r.after_event {
            Some(subject) => self.await_event(step, subject, &r.fields).await?,
            None => Value::Null,
        };
        self.target.restart().await.map_err(|e| e.to_string())?;
        self.http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(event_response(event))
    }

    async fn attempts(&self, n: usize, step: &Step) -> Result<Response, String> {
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            // Only the last attempt's exchanges stay in the log.
            self.attempt_log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            match self.attempt(n, step).await {
                Ok(r) => return Ok(r),
                Err(m) => poll_again(step, started, attempts, m).await?,
            }
        }
    }

    /// Rebuilds `run` from its events alone (the operator's event window) and compares: workflow,
    /// status, the event sequence, each tool step with its outcome, the compensations, tokens and
    /// cost. Waits up to the events timeout for the run's terminal event. The chat API's own
    /// `agent.run.*` events name the run too but are not the orchestrator's, so the stored run does
    /// not list them: they are left out of the sequence.
    async fn rebuilt_from_events(&self, run: &Value) -> Result<(), String> {
        let id = run["run_id"].as_str().unwrap_or_default().to_string();
        let feed = self.feed();
        let deadline = Instant::now() + self.cfg.events_timeout;
        let terminal = [
            "workflow.completed",
            "workflow.failed",
            "workflow.compensated",
        ];
        let events = loop {
            let (all, _) = feed.since(Cursor::default()).await?;
            let mine: Vec<Value> = all
                .into_iter()
                .filter(|e| e["run_id"].as_str() == Some(id.as_str()))
                .filter(|e| {
                    !e["event_type"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("agent.run."))
                })
                .collect();
            let done = mine
                .iter()
                .any(|e| terminal.contains(&e["event_type"].as_str().unwrap_or_default()))
                && mine
                    .last()
                    .is_some_and(|e| e["event_type"] == "usage.metered");
            if done || Instant::now() >= deadline {
                break mine;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let of = |t: &'static str| events.iter().filter(move |e| e["event_type"] == t);
        let end = events
            .iter()
            .rev()
            .find(|e| terminal.contains(&e["event_type"].as_str().unwrap_or_default()));
        let tools = |succeeded: &str, failed: &str| -> Vec<Value> {
            events
                .iter()
                .filter(|e| e["event_type"] == succeeded || e["event_type"] == failed)
                .map(|e| {
                    let ok = e["event_type"] == succeeded;
                    json!([
                        e["data"]["step_id"],
                        e["data"]["tool"],
                        if ok { "completed" } else { "failed" }
                    ])
                })
                .collect()
        };
        let rebuilt = json!({
            "workflow_id": of("workflow.started").next().map(|e| e["data"]["workflow_id"].clone()),
            "status": end.map(|e| e["data"]["status"].clone()),
            "events": events.iter().map(|e| e["event_type"].clone()).collect::<Vec<_>>(),
            "tools": tools("tool.call.succeeded", "tool.call.failed"),
            "compensations": of("tool.call.compensated").map(|e| e["data"]["action"].clone()).collect::<Vec<_>>(),
            "tokens": end.map(|e| e["data"]["tokens"].clone()),
            "cost_usd": end.map(|e| e["data"]["cost_usd"].clone()),
        });
        let steps = run["steps"].as_array().cloned().unwrap_or_default();
        let stored = json!({
            "workflow_id": run["workflow_id"],
            "status": run["status"],
            "events": run["events"],
            "tools": steps.iter().filter(|s| s["step_type"] == "tool" && s["status"] != "skipped")
                .map(|s| json!([s["step_id"], s["tool"], s["status"]])).collect::<Vec<_>>(),
            "compensations": run["compensation"].as_array().into_iter().flatten()
                .filter(|s| s["status"] == "completed").map(|s| s["tool"].clone()).collect::<Vec<_>>(),
            "tokens": run["tokens"],
            "cost_usd": run["cost_usd"],
        });
        if rebuilt == stored {
            Ok(())
        } else {
            Err(format!(
                "run_from_events: the run rebuilt from its {} events differs from the stored run:\n{}",
                events.len(),
                expect::json_diff(&stored, &rebuilt)
            ))
        }
    }

    /// Replays an episode of `golden/episodes/` (in-process; in GOLDEN on this run's services when
    /// the episode was recorded in GOLDEN) and answers with the report as the step's JSON.
    async fn replay(&self, r: &crate::spec::ReplayStep) -> Result<Response, String> {
        use crate::record::replay::{self as rp, ReplayMode};
        let file = self.cfg.golden_dir.join("episodes").join(&r.episode);
        let ep = Episode::read(&file)?;
        let mode = match r.mode.as_deref() {
            Some("similar") => ReplayMode::Similar,
            _ => ReplayMode::Exact,
        };
        let target = match (&self.cfg.target, ep.mode.as_str()) {
            (TargetSpec::Remote { .. }, _) => {
                return Err("a replay step needs an in-process target (MOCK or GOLDEN)".into())
            }
            (TargetSpec::Golden(env), "golden") => TargetSpec::Golden(env.clone()),
            _ => TargetSpec::Mock,
        };
        let dir = if r.prompt_versions.is_empty() {
            None
        } else {
            Some(workflows_with_prompt_versions(&r.prompt_versions)?)
        };
        let started = Instant::now();
        let mut verdicts = vec![];
        let mut last = None;
        for _ in 0..r.times.unwrap_or(1) {
            let (report, replayed) = rp::replay_with(
                ep.clone(),
                &file,
                mode,
                target.clone(),
                dir.as_ref().map(|d| d.path()),
                r.model_seed,
            )
            .await;
            let v = serde_json::to_value(&report).unwrap_or(Value::Null);
            verdicts.push(v["verdict"].clone());
            last = Some((v, replayed));
        }
        let (mut json, replayed) = last.ok_or("`times` must be at least 1")?;
        json["verdicts"] = Value::Array(verdicts);
        json["replay_of"] = json!(ep.episode_id);
        // Performance: the replay's breakdown, and the recorded one to compare it with.
        json["analysis"] = json!({
            "replayed": replayed.as_ref().map(Episode::analysis),
            "original": ep.analysis(),
        });
        json["episode"] = serde_json::to_value(&replayed).unwrap_or(Value::Null);
        json["original"] = serde_json::to_value(&ep).unwrap_or(Value::Null);
        Ok(Response {
            status: 200,
            headers: BTreeMap::new(),
            json,
            latency: started.elapsed(),
        })
    }

    fn capture(&mut self, step: &Step, resp: &Response) -> Result<(), String> {
        for (name, p) in &step.capture {
            let p = &self.interp_str(p)?;
            let path = Path::parse(p)?;
            let v = path
                .get(&resp.json)
                .filter(|v| !v.is_null())
                .ok_or_else(|| {
                    format!(
                        "capture `{name}`: nothing at `{p}` in {}",
                        expect::matcher::short(&resp.json)
                    )
                })?;
            self.vars.insert(name.clone(), v);
        }
        Ok(())
    }

    async fn fault(&self, step: &Step, f: &crate::spec::FaultStep) -> Result<(), String> {
        let alias = f
            .tenant
            .clone()
            .or_else(|| self.actor(step).tenant)
            .ok_or("a fault needs a tenant: `tenant:` or the step's `as:`")?;
        let body = json!({"tenant_id": self.slug(&alias)?, "tool": f.tool, "point": f.point, "fault": f.fault});
        self.operator(Method::POST, "/api/v1/operator/faults", &body, 200)
            .await
    }

    fn request(
        &self,
        n_step: usize,
        step: &Step,
        creds: BTreeMap<String, String>,
    ) -> Result<Request, String> {
        let merge = |base: Value| -> Result<Value, String> {
            let mut base = base;
            if let Some(b) = &step.body {
                deep_merge(&mut base, self.interp(b)?);
            }
            Ok(base)
        };
        let (method, path, body, sse) = match &step.action {
            Action::Chat { text, stream } => {
                let stream = *stream;
                let mut generated = json!({"message": {"content": self.interp_str(text)?}});
                if stream {
                    generated["options"] = json!({"stream": true});
                }
                (
                    Method::POST,
                    "/api/v1/chat/message".to_string(),
                    Some(merge(generated)?),
                    stream,
                )
            }
            Action::Workflow(w) => {
                let mut b = json!({"workflow_id": w.id, "parameters": self.interp(&Value::Object(w.parameters.clone()))?});
                if let Some(o) = &w.options {
                    b["options"] = self.interp(o)?;
                }
                (
                    Method::POST,
                    "/api/v1/workflows/execute".to_string(),
                    Some(merge(b)?),
                    false,
                )
            }
            Action::Http { verb, path } => {
                let method = match verb {
                    Verb::Get => Method::GET,
                    Verb::Post => Method::POST,
                    Verb::Put => Method::PUT,
                    Verb::Patch => Method::PATCH,
                    Verb::Delete => Method::DELETE,
                };
                let body = match &step.body {
                    Some(b) => Some(self.interp(b)?),
                    None => None,
                };
                (method, self.interp_str(path)?, body, false)
            }
            _ => return Err("the step is not a request".into()),
        };
        let mut headers = creds;
        let raw = if let Some(r) = &step.raw_body {
            Some(self.interp_str(r)?.into_bytes())
        } else if let Some(r) = &step.repeat_body {
            Some(format!("{}{}{}", r.prefix, r.text.repeat(r.times), r.suffix).into_bytes())
        } else {
            body.map(|b| b.to_string().into_bytes())
        };
        if raw.is_some() {
            headers.insert("content-type".into(), "application/json".into());
        }
        // The harness names each request (spec, seed, step), so that request ids in answers are the
        // same on every rerun however often it polled in between; a spec may set its own. A
        // shared deployment sees the same id again only when the same spec reruns with its seed.
        headers.insert(
            "x-request-id".into(),
            format!("{}-{}-{n_step}", self.spec.id, self.cfg.seed),
        );
        for (k, v) in &step.headers {
            headers.insert(k.to_ascii_lowercase(), self.interp_str(v)?);
        }
        Ok(Request {
            method,
            url: format!("{}{path}", self.target.base_url),
            headers,
            body: raw,
            sse,
        })
    }

    /// Sends the step (N copies when `parallel`) and checks everything it expects.
    async fn attempt(&self, n_step: usize, step: &Step) -> Result<Response, String> {
        let actor = self.actor(step);
        let creds = self.credentials(&actor).await?;
        let req = self.request(n_step, step, creds.clone())?;
        let e = &step.expect;
        let cursor = if e.events.is_empty() && e.no_event_contains.is_empty() {
            None
        } else {
            Some(self.feed().head().await?)
        };
        let n = step.parallel.unwrap_or(1) as usize;
        // The copies of a `parallel` step share the step's request id: which copy is answered
        // how is up to the scheduler, and the transcript must not depend on it.
        let resps = futures::future::join_all((0..n).map(|_| drive::send(&self.http, &req))).await;
        self.record(n_step, &req, &resps, actor.tenant.as_deref());
        let mut first = None;
        let mut checked = vec![];
        for (i, r) in resps.into_iter().enumerate() {
            let r = r?;
            checked.push(r.json.clone());
            let which = if n > 1 {
                format!("copy {} of {n}: ", i + 1)
            } else {
                String::new()
            };
            self.check_response(step, &r, &creds).await.map_err(|m| {
                format!(
                    "{which}{m}\nresponse: {} {}",
                    r.status,
                    expect::matcher::short(&r.json)
                )
            })?;
            first.get_or_insert(r);
        }
        let first = first.ok_or("no response")?;
        if n > 1 {
            self.same_in_copies(step, &checked)?;
        }
        if let Some(c) = cursor {
            self.check_events(step, &actor, c).await?;
        }
        Ok(first)
    }

    /// The `same_in_copies: true` paths of a `parallel` step: every copy's answer holds the same
    /// value there (e.g. one order id for ten concurrent requests with one idempotency key).
    fn same_in_copies(&self, step: &Step, answers: &[Value]) -> Result<(), String> {
        for (p, m) in &step.expect.json {
            if m.get("same_in_copies") != Some(&Value::Bool(true)) {
                continue;
            }
            let path = Path::parse(&self.interp_str(p)?)?;
            let values: Vec<Option<Value>> = answers.iter().map(|a| path.get(a)).collect();
            if let Some(i) = values.iter().position(|v| *v != values[0]) {
                return Err(format!(
                    "json `{p}`: expected the same value in every copy, but copy 1 has {} and copy {} has {}",
                    values[0].as_ref().map_or("nothing".into(), expect::matcher::short),
                    i + 1,
                    values[i].as_ref().map_or("nothing".into(), expect::matcher::short),
                ));
            }
        }
        Ok(())
    }

    /// Keeps the attempt's exchanges for the transcript.
    fn record(
        &self,
        n_step: usize,
        req: &Request,
        resps: &[Result<Response, String>],
        caller: Option<&str>,
    ) {
        let path = req
            .url
            .strip_prefix(&self.target.base_url)
            .unwrap_or(&req.url)
            .to_string();
        let body = req.body.as_ref().map(|b| {
            serde_json::from_slice(b).unwrap_or_else(|_| {
                let text = String::from_utf8_lossy(b);
                Value::String(if text.chars().count() > 500 {
                    format!(
                        "{}... ({} bytes)",
                        text.chars().take(500).collect::<String>(),
                        b.len()
                    )
                } else {
                    text.to_string()
                })
            })
        });
        let exchanges: Vec<Exchange> = resps
            .iter()
            .enumerate()
            .map(|(copy, r)| {
                let (status, response, latency) = match r {
                    Ok(r) => (r.status, r.json.clone(), r.latency),
                    Err(e) => (0, Value::String(e.clone()), Duration::ZERO),
                };
                let headers: BTreeMap<String, String> = match r {
                    Ok(r) => r
                        .headers
                        .iter()
                        .filter(|(k, _)| !VOLATILE_HEADERS.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    Err(_) => BTreeMap::new(),
                };
                Exchange {
                    step: n_step,
                    copy: if resps.len() > 1 { copy + 1 } else { 0 },
                    request: format!("{} {path}", req.method),
                    body: body.clone(),
                    status,
                    response,
                    latency_ms: latency.as_millis() as u64,
                    headers,
                    caller: caller.map(str::to_string),
                }
            })
            .collect();
        self.attempt_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(exchanges);
    }

    async fn check_response(
        &self,
        step: &Step,
        r: &Response,
        creds: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let e = &step.expect;
        let mut problems = vec![];
        match &e.status {
            Some(Value::Array(ok)) => {
                if !ok.iter().any(|s| s.as_u64() == Some(u64::from(r.status))) {
                    problems.push(format!(
                        "status: expected one of {}, found {}",
                        Value::Array(ok.clone()),
                        r.status
                    ));
                }
            }
            Some(s) => {
                if s.as_u64() != Some(u64::from(r.status)) {
                    problems.push(format!("status: expected {s}, found {}", r.status));
                }
            }
            None => {
                // 101: a WebSocket session was opened (`ws` steps).
                if !(200..300).contains(&r.status) && r.status != 101 {
                    problems.push(format!(
                        "status: expected a 2xx or a WebSocket's 101 (no `status:` given), found {}",
                        r.status
                    ));
                }
            }
        }
        for (name, m) in &e.headers {
            let m = Matcher::compile(&self.interp(m)?)?;
            let v = r
                .headers
                .get(&name.to_ascii_lowercase())
                .map(|s| Value::String(s.clone()));
            if let Err(why) = m.check(v.as_ref()) {
                problems.push(format!("header `{name}`: {why}"));
            }
        }
        check_paths("json", &e.json, &r.json, self, &mut problems)?;
        if !e.run.is_empty()
            || e.run_from_events
            || e.budget.as_ref().is_some_and(|b| b.cost_usd.is_some())
        {
            let run_id = match &e.run_id {
                Some(id) => Some(self.interp_str(id)?),
                None => find_run_id(&r.json),
            };
            let run = match run_id {
                Some(id) => Some(self.fetch_run(&id, creds).await?),
                None if !e.run.is_empty() || e.run_from_events => {
                    return Err("expect.run: the response names no run (workflow.run_id, execution.run_id, run_id or error.details[run_id]); set `run_id:`".into())
                }
                None => None,
            };
            if let Some(run) = &run {
                check_paths("run", &e.run, run, self, &mut problems)?;
                if e.run_from_events {
                    if let Err(m) = self.rebuilt_from_events(run).await {
                        problems.push(m);
                    }
                }
            }
            if let Some(cap) = e.budget.as_ref().and_then(|b| b.cost_usd) {
                let cost = run
                    .as_ref()
                    .and_then(|r| r["cost_usd"].as_f64())
                    .or_else(|| cost_in(&r.json));
                match cost {
                    Some(c) if c <= cap => {}
                    Some(c) => problems.push(format!("budget: cost ${c:.6} is over the ${cap} budget")),
                    None => problems.push("budget: the cost is not observable (no run and no response.metadata.cost_usd)".into()),
                }
            }
        }
        if let Some(g) = &e.golden {
            let n = self
                .spec
                .steps
                .iter()
                .position(|s| std::ptr::eq(s, step))
                .map_or(0, |i| i + 1);
            let snap = snapshot::Snapshot {
                test_name: g.name().to_string(),
                metadata: snapshot::SnapshotMeta {
                    spec: self.spec.id.clone(),
                    step: n,
                    redact: g.redact().to_vec(),
                },
                output: snapshot::normalize(
                    &json!({"status": r.status, "body": r.json}),
                    g.redact(),
                )?,
            };
            let file = snapshot::file_of(
                &self.cfg.golden_dir.join("snapshots"),
                &self.spec.suite,
                g.name(),
            );
            if let Err(m) = snapshot::check(&file, snap, self.cfg.update_golden) {
                problems.push(m);
            }
        }
        if let Some(ms) = e
            .budget
            .as_ref()
            .and_then(|b| b.latency_ms)
            .filter(|_| self.cfg.latency_budgets)
        {
            let took = r.latency.as_millis() as u64;
            if took > ms {
                problems.push(format!(
                    "budget: latency {took} ms is over the {ms} ms budget"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    async fn fetch_run(&self, id: &str, creds: &BTreeMap<String, String>) -> Result<Value, String> {
        let req = Request {
            method: Method::GET,
            url: format!("{}/api/v1/runs/{id}", self.target.base_url),
            headers: creds.clone(),
            body: None,
            sse: false,
        };
        let r = drive::send(&self.http, &req).await?;
        if r.status != 200 {
            return Err(format!(
                "GET /api/v1/runs/{id} answered {}: {}",
                r.status, r.json
            ));
        }
        Ok(augment_run(r.json))
    }

    /// The tenant ids this scenario provisioned.
    fn tenant_slugs(&self) -> std::collections::BTreeSet<String> {
        self.tenants.values().map(|t| t.slug.clone()).collect()
    }

    /// The scenario's view of the bus: every tenant it provisioned.
    fn feed(&self) -> EventFeed {
        EventFeed {
            http: self.http.clone(),
            base_url: self.target.base_url.clone(),
            operator_key: self.target.operator_key.clone(),
            tenants: self.tenants.values().map(|t| t.slug.clone()).collect(),
        }
    }

    async fn check_events(&self, step: &Step, actor: &Actor, cursor: Cursor) -> Result<(), String> {
        let e = &step.expect;
        let feed = self.feed();
        let deadline = Instant::now() + self.cfg.events_timeout;
        loop {
            let (seen, missed) = feed.since(cursor).await?;
            let mut problems = vec![];
            for ex in &e.events {
                let alias = ex.tenant.clone().or_else(|| actor.tenant.clone());
                let slug = match &alias {
                    Some(a) => Some(self.slug(a)?),
                    None => None,
                };
                let matching: Vec<&Value> = seen
                    .iter()
                    .filter(|ev| {
                        ev["event_type"] == ex.subject
                            && slug.as_ref().is_none_or(|s| ev["tenant_id"] == *s)
                    })
                    .collect();
                let mut fields_ok = vec![];
                let mut last_why = String::new();
                for ev in &matching {
                    let mut why = vec![];
                    check_paths("field", &ex.fields, ev, self, &mut why)?;
                    if why.is_empty() {
                        fields_ok.push(*ev);
                    } else {
                        last_why = why.join("; ");
                    }
                }
                let ok = match ex.count {
                    Some(c) => fields_ok.len() == c,
                    None => !fields_ok.is_empty(),
                };
                if !ok {
                    let types: Vec<String> = seen
                        .iter()
                        .filter(|ev| slug.as_ref().is_none_or(|s| ev["tenant_id"] == *s))
                        .map(|ev| ev["event_type"].as_str().unwrap_or("?").to_string())
                        .collect();
                    problems.push(format!(
                        "event `{}`{}: expected {}, found {} matching ({} with this subject{}); events seen: [{}]",
                        ex.subject,
                        alias.map(|a| format!(" of tenant `{a}`")).unwrap_or_default(),
                        ex.count.map_or("at least 1".to_string(), |c| format!("exactly {c}")),
                        fields_ok.len(),
                        matching.len(),
                        if last_why.is_empty() { String::new() } else { format!("; the last differs: {last_why}") },
                        types.join(", ")
                    ));
                }
            }
            for needle in &e.no_event_contains {
                let needle = self.interp_str(needle)?;
                if let Some(ev) = seen.iter().find(|ev| ev.to_string().contains(&needle)) {
                    problems.push(format!(
                        "an event contains `{needle}`: {}",
                        expect::matcher::short(ev)
                    ));
                }
            }
            if missed {
                problems.push(
                    "the platform's event window missed events during this step or had not caught up with its bus, so the events cannot be checked"
                        .into(),
                );
            }
            if problems.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(problems.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Checks `path: matcher` pairs against `doc`, pushing one line per mismatch (with a diff for
/// structured values).
fn check_paths(
    what: &str,
    map: &BTreeMap<String, Value>,
    doc: &Value,
    sc: &Scenario<'_>,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    for (p, m) in map {
        // Keys are interpolated too: `products[sku=${sku}].stock`.
        let p = &sc.interp_str(p)?;
        let path = Path::parse(p)?;
        let expected = sc.interp(m)?;
        let matcher = Matcher::compile(&expected)?;
        let actual = path.get(doc);
        if let Err(why) = matcher.check(actual.as_ref()) {
            let mut line = format!("{what} `{p}`: {why}");
            if let (Matcher::Equals(e), Some(a)) = (&matcher, &actual) {
                if e.is_object() || e.is_array() {
                    line.push('\n');
                    line.push_str(&expect::json_diff(e, a));
                }
            }
            problems.push(line);
        }
    }
    Ok(())
}

/// Merges `over` into `base`: objects key by key, anything else replaced. Request bodies over
/// generated ones, a spec's `platform:` overlay over the target's configuration.
pub fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                deep_merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// The run id a response names, wherever the platform puts it.
pub fn find_run_id(v: &Value) -> Option<String> {
    for p in [
        "workflow.run_id",
        "execution.run_id",
        "run_id",
        "final.workflow.run_id",
    ] {
        if let Some(Value::String(s)) = Path::parse(p).ok()?.get(v) {
            return Some(s);
        }
    }
    v["error"]["details"]
        .as_array()?
        .iter()
        .find(|d| d["field"] == "run_id")
        .and_then(|d| d["message"].as_str())
        .map(str::to_string)
}

fn cost_in(v: &Value) -> Option<f64> {
    v["response"]["metadata"]["cost_usd"]
        .as_f64()
        .or_else(|| v["final"]["response"]["metadata"]["cost_usd"].as_f64())
}

/// The run trace with the lists specs usually want: `tools` (tool steps in order), `tiers` (model
/// tiers in order), `step_ids`, `compensation_ids` and `compensation_tools`.
pub fn augment_run(mut run: Value) -> Value {
    let list = |arr: &Value, key: &str| -> Value {
        Value::Array(
            arr.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.get(key).filter(|v| !v.is_null()).cloned())
                .collect(),
        )
    };
    let steps = run["steps"].clone();
    let comp = run["compensation"].clone();
    run["tools"] = list(&steps, "tool");
    run["tiers"] = list(&steps, "tier");
    run["step_ids"] = list(&steps, "step_id");
    run["compensation_ids"] = list(&comp, "step_id");
    run["compensation_tools"] = list(&comp, "tool");
    run
}

/// After failed attempt number `attempts` of a step begun at `started`: with `wait_until` and time
/// left, waits its interval and says to try again (`Ok`); otherwise gives the failure `m` back,
/// saying how long it was polled.
async fn poll_again(step: &Step, started: Instant, attempts: u32, m: String) -> Result<(), String> {
    match &step.wait_until {
        Some(w) if started.elapsed() < Duration::from_millis(w.timeout_ms) => {
            tokio::time::sleep(Duration::from_millis(w.interval_ms)).await;
            Ok(())
        }
        Some(w) => Err(format!(
            "{m}\n(still failing after {attempts} attempts in {} ms; wait_until timeout_ms: {})",
            started.elapsed().as_millis(),
            w.timeout_ms
        )),
        None => Err(m),
    }
}

/// A `sink` step's transcript entry.
fn sink_exchange(n: usize, s: &crate::spec::SinkStep, resp: &Response) -> Exchange {
    Exchange::own(
        n,
        format!("SINK {}", s.channel.as_deref().unwrap_or("*")),
        resp.status,
        resp.json.clone(),
    )
}

/// The response of a step that waited for an event: `{event}`, the envelope without what belongs
/// to the transport (the subject's run prefix, the window's sequence number), so that transcripts
/// and episodes do not depend on the services a run got.
fn event_response(mut event: Value) -> Response {
    if let Some(m) = event.as_object_mut() {
        m.remove("subject");
        m.remove("seq");
    }
    Response {
        status: 200,
        headers: Default::default(),
        json: json!({ "event": event }),
        latency: Duration::ZERO,
    }
}

fn step_label(i: usize, step: &Step) -> String {
    let what = step.name.clone().unwrap_or_else(|| step.action.label());
    format!("step {} ({what})", i + 1)
}
