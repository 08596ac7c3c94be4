//! A request step's expectations checked against what the platform answered: status, headers,
//! JSON paths, the run's trace and its rebuild from events, golden snapshots, budgets.

use crate::drive::events::Cursor;
use crate::drive::Response;
use crate::expect;
use crate::expect::matcher::Matcher;
use crate::expect::path::Path;
use crate::record::snapshot;
use crate::runner::error::StepError;
use crate::runner::request::cost_in;
use crate::runner::{find_run_id, Scenario};
use crate::spec::Step;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
impl Scenario<'_> {
    pub(crate) async fn check_response(
        &self,
        step: &Step,
        r: &Response,
        creds: &BTreeMap<String, String>,
    ) -> Result<(), StepError> {
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
                Some(id) => match self.fetch_run(&id, creds).await {
                    Ok(run) => Some(run),
                    Err(err) => return Err(unless_judged(problems, err)),
                },
                None if !e.run.is_empty() || e.run_from_events => {
                    return Err(unless_judged(problems, "expect.run: the response names no run (workflow.run_id, execution.run_id, run_id or error.details[run_id]); set `run_id:`".into()))
                }
                None => None,
            };
            if let Some(run) = &run {
                check_paths("run", &e.run, run, self, &mut problems)?;
                if e.run_from_events {
                    if let Err(m) = self.rebuilt_from_events(run).await {
                        problems.push(m.to_string());
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
            match snapshot::check(&file, snap, self.cfg.update_golden) {
                Ok(()) => {}
                Err(d @ snapshot::SnapshotError::Differs { .. }) => problems.push(d.to_string()),
                // A snapshot that is missing or unreadable judges nothing.
                Err(other) => {
                    return Err(unless_judged(
                        problems,
                        StepError::Harness(other.to_string()),
                    ))
                }
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
            Err(StepError::mismatch(problems.join("\n")))
        }
    }

    /// Rebuilds `run` from its events alone (the operator's event window) and compares: workflow,
    /// status, the event sequence, each tool step with its outcome, the compensations, tokens and
    /// cost. Waits up to the events timeout for the run's terminal event. The chat API's own
    /// `agent.run.*` events name the run too but are not the orchestrator's, so the stored run does
    /// not list them: they are left out of the sequence.
    pub(crate) async fn rebuilt_from_events(&self, run: &Value) -> Result<(), StepError> {
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
            Err(StepError::mismatch(format!(
                "run_from_events: the run rebuilt from its {} events differs from the stored run:\n{}",
                events.len(),
                expect::json_diff(&stored, &rebuilt)
            )))
        }
    }
}

/// `err` stops a step's checks; the mismatches already found still judge the platform: then the
/// step is a mismatch, with `err` as a note, not the harness's own failure.
fn unless_judged(problems: Vec<String>, err: StepError) -> StepError {
    if problems.is_empty() {
        err
    } else {
        StepError::mismatch(format!(
            "{}\n(the remaining checks could not run: {err})",
            problems.join("\n")
        ))
    }
}

/// Checks `path: matcher` pairs against `doc`, pushing one line per mismatch (with a diff for
/// structured values).
pub(crate) fn check_paths(
    what: &str,
    map: &BTreeMap<String, Value>,
    doc: &Value,
    sc: &Scenario<'_>,
    problems: &mut Vec<String>,
) -> Result<(), StepError> {
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
