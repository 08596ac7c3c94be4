//! Steps that are requests to the platform's API (`chat`, `sse_chat`, `get` ... `workflow`): built
//! from the step, sent (N copies at once, `repeat` times, in the background, or polled by
//! `wait_until`), recorded in the transcript and checked.

use crate::drive::{DriveError, Request, Response};
use crate::expect::path::Path;
use crate::runner::error::StepError;
use crate::runner::{Exchange, Scenario, VOLATILE_HEADERS};
use crate::spec::{Action, Step, Verb};
use crate::{drive, expect};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
impl Scenario<'_> {
    /// A request sent with `background: true`: recorded, sent, not waited for.
    pub(crate) async fn background_request(
        &mut self,
        n: usize,
        step: &Step,
    ) -> Result<(), StepError> {
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
    pub(crate) async fn request_step(&mut self, n: usize, step: &Step) -> Result<(), StepError> {
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
            resp = Some(r.map_err(|e| {
                if times > 1 {
                    e.map_message(|m| format!("repetition {} of {times}: {m}", i + 1))
                } else {
                    e
                }
            })?);
        }
        let resp = resp.ok_or("`repeat` must be at least 1")?;
        self.capture(step, &resp)
    }

    pub(crate) async fn attempts(&self, n: usize, step: &Step) -> Result<Response, StepError> {
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

    pub(crate) fn request(
        &self,
        n_step: usize,
        step: &Step,
        creds: BTreeMap<String, String>,
    ) -> Result<Request, StepError> {
        let merge = |base: Value| -> Result<Value, StepError> {
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
    pub(crate) async fn attempt(&self, n_step: usize, step: &Step) -> Result<Response, StepError> {
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
            self.check_response(step, &r, &creds).await.map_err(|e| {
                e.map_message(|m| {
                    format!(
                        "{which}{m}\nresponse: {} {}",
                        r.status,
                        expect::matcher::short(&r.json)
                    )
                })
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

    pub(crate) fn capture(&mut self, step: &Step, resp: &Response) -> Result<(), StepError> {
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

    /// The `same_in_copies: true` paths of a `parallel` step: every copy's answer holds the same
    /// value there (e.g. one order id for ten concurrent requests with one idempotency key).
    pub(crate) fn same_in_copies(&self, step: &Step, answers: &[Value]) -> Result<(), StepError> {
        for (p, m) in &step.expect.json {
            if m.get("same_in_copies") != Some(&Value::Bool(true)) {
                continue;
            }
            let path = Path::parse(&self.interp_str(p)?)?;
            let values: Vec<Option<Value>> = answers.iter().map(|a| path.get(a)).collect();
            if let Some(i) = values.iter().position(|v| *v != values[0]) {
                return Err(StepError::mismatch(format!(
                    "json `{p}`: expected the same value in every copy, but copy 1 has {} and copy {} has {}",
                    values[0].as_ref().map_or("nothing".into(), expect::matcher::short),
                    i + 1,
                    values[i].as_ref().map_or("nothing".into(), expect::matcher::short),
                )));
            }
        }
        Ok(())
    }

    /// Keeps the attempt's exchanges for the transcript.
    pub(crate) fn record(
        &self,
        n_step: usize,
        req: &Request,
        resps: &[Result<Response, DriveError>],
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
                    Err(e) => (0, Value::String(e.to_string()), Duration::ZERO),
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

    pub(crate) async fn fetch_run(
        &self,
        id: &str,
        creds: &BTreeMap<String, String>,
    ) -> Result<Value, StepError> {
        let req = Request {
            method: Method::GET,
            url: format!("{}/api/v1/runs/{id}", self.target.base_url),
            headers: creds.clone(),
            body: None,
            sse: false,
        };
        let r = drive::send(&self.http, &req).await?;
        if r.status != 200 {
            // The platform named a run it cannot show: a verdict on it.
            return Err(StepError::mismatch(format!(
                "GET /api/v1/runs/{id} answered {}: {}",
                r.status, r.json
            )));
        }
        Ok(augment_run(r.json))
    }
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

pub(crate) fn cost_in(v: &Value) -> Option<f64> {
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
pub(crate) async fn poll_again(
    step: &Step,
    started: Instant,
    attempts: u32,
    failure: StepError,
) -> Result<(), StepError> {
    match &step.wait_until {
        Some(w) if started.elapsed() < Duration::from_millis(w.timeout_ms) => {
            tokio::time::sleep(Duration::from_millis(w.interval_ms)).await;
            Ok(())
        }
        Some(w) => Err(failure.map_message(|m| {
            format!(
                "{m}\n(still failing after {attempts} attempts in {} ms; wait_until timeout_ms: {})",
                started.elapsed().as_millis(),
                w.timeout_ms
            )
        })),
        None => Err(failure),
    }
}
