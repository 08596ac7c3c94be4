//! Episodes: one scenario's run, written down so that it can be replayed and compared.
//!
//! An episode holds the spec it ran (its source text, so it replays even after the spec file moved
//! on), the seed and mode, the tenants, the versions of everything that answered them, the ordered
//! steps in one vocabulary of step types, the final output, the audit trail and every model call
//! (as cassettes, so that an exact replay answers from them and from nothing else). The format is
//! documented in `golden/README.md`.

use crate::runner::{find_run_id, Exchange};
use platform::llm::cassette::{redact_sensitive, Cassette};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::LazyLock;

/// The version of this format; a replay refuses another.
pub const FORMAT: u32 = 1;

/// Where the episode's scenario came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpisodeSpec {
    pub id: String,
    pub suite: String,
    pub title: String,
    /// The spec file when it was recorded (informative; `source` is what replays).
    pub file: String,
    /// The spec's YAML, as it was when recorded.
    pub source: String,
}

/// One step, in the unified vocabulary: `user_message`, `workflow_request`, `api_call`, `replay`,
/// `router_decision`, `model_call`, `tool_call`, `condition`, `sub_workflow`, `compensation`,
/// `guard`, `response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpisodeStep {
    /// `<spec step>.<copy>.<n>`: which spec step, which copy of a parallel step, which item.
    pub step_id: String,
    pub step_type: String,
    pub input: Value,
    pub output: Value,
    pub duration_ms: u64,
    /// `ok`, `failed`, `skipped`, `blocked`, or the HTTP status of a response.
    pub outcome: String,
}

/// A recorded run of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Episode {
    pub format: u32,
    /// `<spec id>@<seed>`.
    pub episode_id: String,
    pub spec: EpisodeSpec,
    pub seed: u64,
    /// The mode it was recorded in (mock or golden).
    pub mode: String,
    /// `completed` (every expectation held) or `failed`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Fixture alias -> the tenant id it ran as.
    pub tenants: BTreeMap<String, String>,
    /// Session ids the platform answered with, in order of appearance.
    pub sessions: Vec<String>,
    /// Fixture alias -> `GET /api/v1/versions` of that tenant (workflows, tools, models, router).
    pub versions: BTreeMap<String, Value>,
    /// The workflows that ran (runs and their sub-workflows): the ones whose versions a replay
    /// requires unchanged.
    pub workflows: BTreeSet<String>,
    pub steps: Vec<EpisodeStep>,
    /// The last response of the scenario.
    pub final_output: Value,
    /// Every tenant's audit rows (alias, actor, action, resource, outcome, detail), in order.
    pub audit_trail: Vec<Value>,
    pub success_count: usize,
    pub failure_count: usize,
    /// Every model exchange, templated (placeholders instead of personal values), by key.
    pub model_calls: Vec<Cassette>,
}

/// What the platform said about one tenant after the scenario (the operator's record endpoint).
#[derive(Debug, Clone, Default)]
pub struct TenantRecord {
    pub alias: String,
    pub slug: String,
    pub versions: Value,
    pub audit: Vec<Value>,
    pub runs: Vec<Value>,
}

/// Everything an episode is built from.
pub struct Parts<'a> {
    pub spec: &'a crate::spec::Spec,
    pub seed: u64,
    pub mode: &'a str,
    pub failure: Option<String>,
    pub transcript: &'a [Exchange],
    pub tenants: Vec<TenantRecord>,
    pub model_calls: Vec<Cassette>,
}

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
        .expect("valid")
});
/// Ids tools derive from a call's idempotency key (`TCK-`, `PAY-`, `LEAD-` + 12 hex): the key
/// holds the run id, so they are as volatile as the run's UUID and masked with it.
static DERIVED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-Z]{2,5}-[0-9a-f]{12}\b").expect("valid"));
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
        .expect("valid")
});

/// Keys whose values measure time, not behaviour: left out of every comparison.
const VOLATILE_KEYS: [&str; 12] = [
    "duration_ms",
    "latency_ms",
    "processing_time_ms",
    "timestamp",
    "started_at",
    "finished_at",
    "occurred_at",
    "created_at",
    "updated_at",
    "expires_at",
    "at",
    "recorded_on",
];

/// `v` with every string through [`redact_sensitive`].
fn scrub(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(redact_sensitive(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(scrub).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, x)| (k, scrub(x))).collect()),
        other => other,
    }
}

/// `v` with volatile keys dropped and UUIDs and timestamps masked: what comparisons look at.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !VOLATILE_KEYS.contains(&k.as_str()))
                .map(|(k, x)| (k.clone(), canonical(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        Value::String(s) => {
            let s = UUID.replace_all(s, "[UUID]");
            let s = DERIVED.replace_all(&s, "[ID]");
            Value::String(TIMESTAMP.replace_all(&s, "[TIMESTAMP]").into_owned())
        }
        other => other.clone(),
    }
}

/// Why an episode file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EpisodeError {
    #[error("{}: {source}", file.display())]
    Read {
        file: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not an episode: {source}", file.display())]
    NotAnEpisode {
        file: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Written by a harness with another episode format.
    #[error("{}: episode format {found} (this harness reads {FORMAT})", file.display())]
    Format {
        file: std::path::PathBuf,
        found: u32,
    },
}

impl Episode {
    /// Builds the episode of a finished scenario.
    pub fn build(p: Parts<'_>) -> Episode {
        let runs: BTreeMap<String, Value> = p
            .tenants
            .iter()
            .flat_map(|t| t.runs.iter())
            .filter_map(|r| r["run_id"].as_str().map(|id| (id.to_string(), r.clone())))
            .collect();
        let mut steps = vec![];
        let mut sessions: Vec<String> = vec![];
        let mut workflows = BTreeSet::new();
        for r in runs.values() {
            if let Some(w) = r["workflow_id"].as_str() {
                workflows.insert(w.to_string());
            }
            for s in r["steps"].as_array().into_iter().flatten() {
                if s["step_type"] == "sub_workflow" {
                    if let Some(w) = s["input_summary"]
                        .as_str()
                        .and_then(|x| x.strip_prefix("workflow "))
                    {
                        workflows.insert(w.to_string());
                    }
                }
            }
        }
        for e in ordered(p.transcript) {
            let base = format!("{}.{}", e.step, e.copy);
            let mut n = 0;
            let mut push = |steps: &mut Vec<EpisodeStep>, t: &str, input, output, ms, outcome| {
                n += 1;
                steps.push(EpisodeStep {
                    step_id: format!("{base}.{n}"),
                    step_type: t.to_string(),
                    input,
                    output,
                    duration_ms: ms,
                    outcome,
                });
            };
            let (method, path) = e.request.split_once(' ').unwrap_or(("", &e.request));
            let kind = match (method, path) {
                ("POST", "/api/v1/chat/message") => "user_message",
                ("POST", "/api/v1/workflows/execute") => "workflow_request",
                ("REPLAY", _) => "replay",
                // The platform was killed here (and a new one started on the same backends).
                ("", "RESTART") => "restart",
                ("WAIT", _) => "event_wait",
                _ => "api_call",
            };
            let input = json!({"request": e.request, "body": e.body});
            let outcome = if kind == "restart" {
                "orchestrator_killed"
            } else {
                "ok"
            };
            push(&mut steps, kind, input, Value::Null, 0, outcome.into());
            if let Some(run) = find_run_id(&e.response).and_then(|id| runs.get(&id)) {
                for s in run["steps"].as_array().into_iter().flatten() {
                    let t = s["step_type"].as_str().unwrap_or("");
                    let ms = s["duration_ms"].as_u64().unwrap_or(0);
                    let outcome = s["status"].as_str().unwrap_or("").to_string();
                    let io = json!({"step": s["step_id"], "summary": s["input_summary"]});
                    let out = json!({"summary": s["output_summary"], "error": s["error"], "tokens": s["tokens"]});
                    match t {
                        "start" | "end" => {}
                        "agent" => {
                            push(
                                &mut steps,
                                "router_decision",
                                io.clone(),
                                json!({"tier": s["tier"]}),
                                0,
                                "ok".into(),
                            );
                            push(&mut steps, "model_call", io, out, ms, outcome);
                        }
                        "tool" => {
                            let io = json!({"step": s["step_id"], "tool": s["tool"], "summary": s["input_summary"]});
                            push(&mut steps, "tool_call", io, out, ms, outcome);
                        }
                        other => push(&mut steps, other, io, out, ms, outcome),
                    }
                }
                for s in run["compensation"].as_array().into_iter().flatten() {
                    let io = json!({"step": s["step_id"], "tool": s["tool"], "summary": s["input_summary"]});
                    let out = json!({"summary": s["output_summary"], "error": s["error"]});
                    let ms = s["duration_ms"].as_u64().unwrap_or(0);
                    let outcome = s["status"].as_str().unwrap_or("").to_string();
                    push(&mut steps, "compensation", io, out, ms, outcome);
                }
            }
            if let Some(g) = e.response.get("guard").filter(|g| !g.is_null()) {
                let blocked = g["blocked"].as_bool().unwrap_or(false);
                let outcome = if blocked { "blocked" } else { "ok" };
                push(
                    &mut steps,
                    "guard",
                    Value::Null,
                    g.clone(),
                    0,
                    outcome.into(),
                );
            }
            session_ids(&e.response, &mut sessions);
            let response = kept_response(&e);
            push(
                &mut steps,
                "response",
                Value::Null,
                json!({"status": e.status, "body": response}),
                e.latency_ms,
                e.status.to_string(),
            );
        }
        let final_output = p
            .transcript
            .last()
            .map(|e| json!({"status": e.status, "body": kept_response(e)}))
            .unwrap_or(Value::Null);
        let mut audit_trail = vec![];
        for t in &p.tenants {
            for a in &t.audit {
                let mut row = json!({"tenant": t.alias});
                for k in ["actor", "action", "resource", "outcome", "detail"] {
                    row[k] = a[k].clone();
                }
                audit_trail.push(row);
            }
        }
        let failure_count = steps
            .iter()
            .filter(|s| {
                s.outcome == "failed" || s.outcome.starts_with('4') || s.outcome.starts_with('5')
            })
            .count();
        let mut model_calls = p.model_calls;
        model_calls.sort_by(|a, b| a.body.key.cmp(&b.body.key));
        // Nothing secret or personal is written down: tokens from login responses, API keys,
        // canaries, addresses and numbers become placeholders (the replay's episode gets the same
        // treatment, so comparisons still see every other difference).
        let steps: Vec<EpisodeStep> = steps
            .into_iter()
            .map(|s| EpisodeStep {
                input: scrub(s.input),
                output: scrub(s.output),
                ..s
            })
            .collect();
        let final_output = scrub(final_output);
        let audit_trail: Vec<Value> = audit_trail.into_iter().map(scrub).collect();
        let failure = p.failure.map(|f| redact_sensitive(&f));
        Episode {
            format: FORMAT,
            episode_id: format!("{}@{}", p.spec.id, p.seed),
            spec: EpisodeSpec {
                id: p.spec.id.clone(),
                suite: p.spec.suite.clone(),
                title: p.spec.title.clone(),
                file: p.spec.file.display().to_string(),
                source: p.spec.source.clone(),
            },
            seed: p.seed,
            mode: p.mode.to_string(),
            status: if failure.is_none() {
                "completed"
            } else {
                "failed"
            }
            .into(),
            failure,
            tenants: p
                .tenants
                .iter()
                .map(|t| (t.alias.clone(), t.slug.clone()))
                .collect(),
            sessions,
            versions: p
                .tenants
                .iter()
                .map(|t| (t.alias.clone(), t.versions.clone()))
                .collect(),
            workflows,
            success_count: steps.len() - failure_count,
            failure_count,
            steps,
            final_output,
            audit_trail,
            model_calls,
        }
    }

    /// Reads an episode file.
    pub fn read(path: &Path) -> Result<Episode, EpisodeError> {
        let file = || path.to_path_buf();
        let text = std::fs::read_to_string(path).map_err(|source| EpisodeError::Read {
            file: file(),
            source,
        })?;
        let ep: Episode =
            serde_json::from_str(&text).map_err(|source| EpisodeError::NotAnEpisode {
                file: file(),
                source,
            })?;
        if ep.format != FORMAT {
            return Err(EpisodeError::Format {
                file: file(),
                found: ep.format,
            });
        }
        Ok(ep)
    }

    /// Writes the episode as `{dir}/{suite}/{spec id}.json`; returns the path.
    pub fn write(&self, dir: &Path) -> std::io::Result<std::path::PathBuf> {
        let d = dir.join(&self.spec.suite);
        std::fs::create_dir_all(&d)?;
        let path = d.join(format!("{}.json", self.spec.id));
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// What a comparison looks at: steps (type, input, output, outcome), final output and audit
    /// trail, each through [`canonical`]. Copies of a parallel step are compared as a set: they draw
    /// ids from one sequence in the scheduler's order.
    pub fn comparable(&self) -> Value {
        json!({
            "steps": self.steps.iter().map(|s| canonical(&json!({
                "step_id": s.step_id, "step_type": s.step_type, "input": s.input, "output": s.output, "outcome": s.outcome,
            }))).collect::<Vec<_>>(),
            "final_output": canonical(&self.final_output),
            "audit_trail": canonical(&Value::Array(self.audit_trail.clone())),
            "status": self.status,
        })
    }
}

/// What an episode keeps of a response: all of it, except for `/metrics`, whose latency
/// histograms measure real time (its status is the behaviour; specs check its counters).
fn kept_response(e: &Exchange) -> Value {
    if e.request == "GET /metrics" {
        Value::Null
    } else {
        e.response.clone()
    }
}

/// Every `session_id` or `conversation_id` in `v` (at any depth: chat answers nest them, SSE
/// events repeat them), added to `out` once, in order.
fn session_ids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x.as_str()) {
                    ("session_id" | "conversation_id", Some(s)) => {
                        if !out.iter().any(|o| o == s) {
                            out.push(s.to_string());
                        }
                    }
                    _ => session_ids(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| session_ids(x, out)),
        _ => {}
    }
}

/// The transcript with the copies of each parallel step ordered by content (UUIDs masked), so that
/// which copy ran first does not change the episode.
fn ordered(t: &[Exchange]) -> Vec<Exchange> {
    let mut out = vec![];
    let mut i = 0;
    while i < t.len() {
        let step = t[i].step;
        let mut group: Vec<Exchange> = t[i..]
            .iter()
            .take_while(|e| e.step == step)
            .cloned()
            .collect();
        i += group.len();
        if group.iter().any(|e| e.copy > 0) {
            group.sort_by_key(|e| {
                let text =
                    serde_json::to_string(&(&e.body, e.status, &e.response)).unwrap_or_default();
                DERIVED
                    .replace_all(&UUID.replace_all(&text, ""), "")
                    .into_owned()
            });
            for (n, e) in group.iter_mut().enumerate() {
                e.copy = n + 1;
            }
        }
        out.extend(group);
    }
    out
}

/// Where an episode's time went: each step's duration, the totals per step type, the slowest step
/// (the bottleneck). Durations are what the platform's run trace reports (its clock: frozen in MOCK
/// and GOLDEN, so 0) and, for `response` steps, the latency the harness measured around the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub total_ms: u64,
    pub by_type: BTreeMap<String, u64>,
    /// The slowest step (the first of equals): `{step_id, step_type, duration_ms}`.
    pub slowest: Option<Value>,
    pub steps: usize,
}

impl Episode {
    /// The per-step performance breakdown of this episode.
    pub fn analysis(&self) -> Analysis {
        let mut by_type = BTreeMap::new();
        for s in &self.steps {
            *by_type.entry(s.step_type.clone()).or_insert(0) += s.duration_ms;
        }
        let slowest = self
            .steps
            .iter()
            .fold(None::<&EpisodeStep>, |best, s| match best {
                Some(b) if b.duration_ms >= s.duration_ms => Some(b),
                _ => Some(s),
            })
            .map(|s| json!({"step_id": s.step_id, "step_type": s.step_type, "duration_ms": s.duration_ms}));
        Analysis {
            total_ms: self.steps.iter().map(|s| s.duration_ms).sum(),
            by_type,
            slowest,
            steps: self.steps.len(),
        }
    }
}

/// One difference between two episodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// A step id, or `final_output`, `audit_trail`, `status`, `steps` (a count).
    pub step: String,
    pub original: Value,
    pub replayed: Value,
}

/// The differences between an original episode and its replay (empty: identical).
pub fn compare(original: &Episode, replayed: &Episode) -> Vec<Difference> {
    let (a, b) = (original.comparable(), replayed.comparable());
    let mut out = vec![];
    let (sa, sb) = (
        a["steps"].as_array().cloned().unwrap_or_default(),
        b["steps"].as_array().cloned().unwrap_or_default(),
    );
    for i in 0..sa.len().max(sb.len()) {
        let (x, y) = (
            sa.get(i).cloned().unwrap_or(Value::Null),
            sb.get(i).cloned().unwrap_or(Value::Null),
        );
        if x != y {
            let id = x["step_id"]
                .as_str()
                .or(y["step_id"].as_str())
                .unwrap_or("?")
                .to_string();
            out.push(Difference {
                step: id,
                original: x,
                replayed: y,
            });
        }
    }
    for k in ["final_output", "audit_trail", "status"] {
        if a[k] != b[k] {
            out.push(Difference {
                step: k.into(),
                original: a[k].clone(),
                replayed: b[k].clone(),
            });
        }
    }
    out
}

/// The versions that differ between a recorded episode and the platform now, as
/// `tenant: workflow faq prompt_version 1 -> 2`. Only what the episode used is compared: its runs'
/// workflows, the tools and tiers its steps name, and the router.
pub fn version_mismatches(ep: &Episode, now: &BTreeMap<String, Value>) -> Vec<String> {
    let used_workflows = &ep.workflows;
    let used = |t: &str, field: &str| -> BTreeSet<String> {
        ep.steps
            .iter()
            .filter(|s| s.step_type == t)
            .filter_map(|s| {
                s.input[field]
                    .as_str()
                    .or(s.output[field].as_str())
                    .map(str::to_string)
            })
            .collect()
    };
    let mut used_tools = used("tool_call", "tool");
    used_tools.extend(used("compensation", "tool"));
    let used_tiers = used("router_decision", "tier");
    let mut out = vec![];
    for (alias, then) in &ep.versions {
        let Some(cur) = now.get(alias) else {
            out.push(format!("{alias}: the tenant is missing"));
            continue;
        };
        for (id, v) in then["workflows"].as_object().into_iter().flatten() {
            if !used_workflows.contains(id) {
                continue;
            }
            for field in ["version", "prompt_version"] {
                let (a, b) = (&v[field], &cur["workflows"][id][field]);
                if a != b {
                    out.push(format!("{alias}: workflow {id} {field} {a} -> {b}"));
                }
            }
        }
        for (section, what, used) in [
            ("tools", "tool", &used_tools),
            ("models", "model of tier", &used_tiers),
        ] {
            for (k, v) in then[section].as_object().into_iter().flatten() {
                if !used.contains(k) {
                    continue;
                }
                let b = &cur[section][k];
                if v != b {
                    out.push(format!("{alias}: {what} {k} {v} -> {b}"));
                }
            }
        }
        if then["router"] != cur["router"] {
            out.push(format!(
                "{alias}: router config {} -> {}",
                then["router"], cur["router"]
            ));
        }
    }
    out
}

/// Token-Jaccard similarity of two values' canonical JSON: 1.0 for equal, 0.0 for nothing shared.
pub fn similarity(a: &Value, b: &Value) -> f64 {
    let tokens = |v: &Value| -> BTreeSet<String> {
        canonical(v)
            .to_string()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (x, y) = (tokens(a), tokens(b));
    if x.is_empty() && y.is_empty() {
        return 1.0;
    }
    x.intersection(&y).count() as f64 / x.union(&y).count() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_drops_time_and_masks_ids() {
        let v = json!({"run_id": "6f1c2b1e-8a6b-4b52-9d0f-2f1e0c9b7a11", "duration_ms": 12, "note": "at 2024-05-01T10:00:00Z", "n": 3});
        assert_eq!(
            canonical(&v),
            json!({"run_id": "[UUID]", "note": "at [TIMESTAMP]", "n": 3})
        );
    }

    #[test]
    fn analysis_sums_by_type_and_names_the_first_slowest_step() {
        let step = |id: &str, t: &str, ms: u64| EpisodeStep {
            step_id: id.into(),
            step_type: t.into(),
            input: Value::Null,
            output: Value::Null,
            duration_ms: ms,
            outcome: "ok".into(),
        };
        let mut ep: Episode = serde_json::from_value(json!({
            "format": 1, "episode_id": "X@1", "spec": {"id": "X", "suite": "s", "title": "t", "file": "f", "source": ""},
            "seed": 1, "mode": "mock", "status": "completed", "tenants": {}, "sessions": [], "versions": {},
            "workflows": [], "steps": [], "final_output": null, "audit_trail": [], "success_count": 0,
            "failure_count": 0, "model_calls": []
        }))
        .expect("a minimal episode");
        ep.steps = vec![
            step("1.0.1", "user_message", 0),
            step("1.0.2", "tool_call", 7),
            step("1.0.3", "response", 12),
            step("2.0.1", "response", 12),
        ];
        let a = ep.analysis();
        assert_eq!(a.total_ms, 31);
        assert_eq!(a.by_type["response"], 24);
        assert_eq!(
            a.slowest,
            Some(json!({"step_id": "1.0.3", "step_type": "response", "duration_ms": 12}))
        );
    }

    #[test]
    fn similarity_is_one_for_equal_and_lower_for_paraphrases() {
        let a = json!({"text": "Your order ORD-1 has shipped"});
        assert_eq!(similarity(&a, &a), 1.0);
        let b = json!({"text": "Order ORD-1 was shipped today"});
        let s = similarity(&a, &b);
        assert!(s > 0.3 && s < 1.0, "{s}");
        assert_eq!(similarity(&json!("x"), &json!("y")), 0.0);
    }
}
