//! Runs a workflow graph: one node at a time, each recorded as a step; model calls routed to a tier
//! with early exit; tool calls written ahead on the bus; budgets (steps, tokens, cost, wall time) and
//! loop safety (per-node visit bounds, a no-progress cut); and the saga: when a run fails after
//! side effects, every completed compensable tool call is undone in reverse order.

use super::expr;
use super::loader::Catalog;
use super::model::{Node, Workflow};
use crate::bus::{Bus, Event};
use crate::clock::{Clock, Ids};
use crate::config::Config;
use crate::domain::{Role, Tier};
use crate::llm::{Llm, LlmError, LlmRequest, Turn, TurnRole};
use crate::resilience::{Policy, PolicyError, Retryable};
use crate::router::{cost_usd, early_exit, Features, Router};
use crate::store::model::{Run, StepRecord, Tenant};
use crate::store::Store;
use crate::telemetry::{Metrics, TierLabels, ToolLabels, WorkflowLabels};
use crate::tools::{Registry, ToolCtx, ToolError};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Everything the executor needs; one per platform instance.
pub struct Engine {
    pub catalog: Catalog,
    pub tools: Arc<Registry>,
    pub llm: Arc<dyn Llm>,
    pub router: Router,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<Ids>,
    pub cfg: Arc<Config>,
    pub metrics: Arc<Metrics>,
}

/// One request to run a workflow.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub tenant: Tenant,
    pub user_id: String,
    pub role: Role,
    pub workflow_id: String,
    /// Available to the workflow as `input.*` (`input.message` for chat).
    pub input: Value,
    /// Extra top-level context keys set before the first node (e.g. `lead` from the leads API).
    pub preset: serde_json::Map<String, Value>,
    pub history: Vec<Turn>,
    pub tier_preference: Option<Tier>,
    pub compensation_enabled: bool,
}

/// Why a run did not complete.
#[derive(Debug, Clone, PartialEq)]
pub enum RunFailure {
    /// The workflow does not exist for this tenant.
    NotFound(String),
    /// The wall-time budget ran out.
    Timeout,
    /// The step, token or cost budget, a loop guard or the no-progress cut stopped the run.
    Budget(String),
    /// A step failed.
    Step {
        step_id: String,
        error: String,
        tool_error: Option<ToolError>,
    },
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunFailure::NotFound(w) => write!(f, "workflow `{w}` not found"),
            RunFailure::Timeout => write!(f, "the run exceeded its deadline"),
            RunFailure::Budget(m) => write!(f, "budget exceeded: {m}"),
            RunFailure::Step { step_id, error, .. } => {
                write!(f, "step `{step_id}` failed: {error}")
            }
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run: Run,
    /// The end node's result (`{}` when the run did not reach one).
    pub output: Value,
    /// The tier of the last model call.
    pub tier_used: Option<Tier>,
    /// The streamed pieces of the last model answer.
    pub chunks: Vec<String>,
    pub failure: Option<RunFailure>,
}

impl Retryable for LlmError {
    fn retryable(&self) -> bool {
        true
    }
}

struct Compensable {
    step_id: String,
    tool: String,
    params: Value,
    output: Value,
}

/// The state of one run while it executes.
struct Exec<'a> {
    e: &'a Engine,
    req: &'a RunRequest,
    tctx: ToolCtx,
    ctx: Value,
    run: Run,
    stack: Vec<Compensable>,
    tier_used: Option<Tier>,
    chunks: Vec<String>,
    visits: HashMap<String, u32>,
    seen: HashSet<(String, u64)>,
    max_steps: u32,
    max_tokens: u64,
    max_cost: f64,
}

type Walk<'b> = Pin<Box<dyn Future<Output = Result<Value, RunFailure>> + Send + 'b>>;

fn summary(v: &Value) -> Option<String> {
    let s = v.to_string();
    Some(if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s
    })
}

impl Engine {
    /// Runs a workflow to its end (or failure and compensation), persisting and publishing as it goes.
    pub async fn run(&self, req: &RunRequest) -> RunOutcome {
        let run_id = self.ids.uuid();
        let now = self.clock.now();
        let mut run = Run {
            tenant: req.tenant.id.clone(),
            run_id,
            workflow_id: req.workflow_id.clone(),
            status: "running".into(),
            started_at: now,
            finished_at: None,
            duration_ms: 0,
            tokens: 0,
            cost_usd: 0.0,
            steps: vec![],
            compensation: vec![],
            events: vec![],
            errors: vec![],
            output: Value::Null,
        };
        let Some(wf) = self.catalog.get(req.tenant.id.as_str(), &req.workflow_id) else {
            run.status = "failed".into();
            return RunOutcome {
                run,
                output: json!({}),
                tier_used: None,
                chunks: vec![],
                failure: Some(RunFailure::NotFound(req.workflow_id.clone())),
            };
        };
        let b = &self.cfg.run_budget;
        let mut ctx = json!({"input": req.input, "tenant": req.tenant.id, "user_id": req.user_id, "role": req.role});
        if let Value::Object(m) = &mut ctx {
            for (k, v) in &req.preset {
                m.insert(k.clone(), v.clone());
            }
        }
        let mut x = Exec {
            e: self,
            req,
            tctx: ToolCtx {
                tenant: req.tenant.id.clone(),
                user_id: req.user_id.clone(),
                role: req.role,
                run_id,
                store: self.store.clone(),
                clock: self.clock.clone(),
                ids: self.ids.clone(),
                cfg: self.cfg.clone(),
            },
            ctx,
            run,
            stack: vec![],
            tier_used: None,
            chunks: vec![],
            visits: HashMap::new(),
            seen: HashSet::new(),
            max_steps: wf.limits.max_steps.unwrap_or(b.max_steps),
            max_tokens: wf.limits.max_tokens.unwrap_or(b.max_tokens),
            max_cost: wf.limits.max_cost_usd.unwrap_or(b.max_cost_usd),
        };
        x.persist().await;
        x.publish(
            "workflow.started",
            json!({"workflow_id": wf.id, "version": wf.version}),
        )
        .await;
        let deadline = Duration::from_millis(wf.limits.timeout_ms.unwrap_or(b.timeout_ms));
        let walked = tokio::time::timeout(deadline, x.walk(wf.clone(), String::new(), 0)).await;
        let result = walked.unwrap_or(Err(RunFailure::Timeout));
        x.finish(&wf, result).await
    }
}

impl<'a> Exec<'a> {
    async fn persist(&self) {
        if let Err(err) = self.e.store.put_run(&self.run).await {
            tracing::error!(run_id = %self.run.run_id, %err, "could not persist run");
        }
    }

    async fn publish(&mut self, event_type: &str, data: Value) {
        let ev = Event {
            event_id: self.e.ids.uuid(),
            event_type: event_type.to_string(),
            tenant_id: self.req.tenant.id.clone(),
            run_id: Some(self.run.run_id),
            occurred_at: self.e.clock.now(),
            data,
        };
        self.run.events.push(event_type.to_string());
        if let Err(err) = self.e.bus.publish(&ev).await {
            tracing::error!(run_id = %self.run.run_id, %err, event_type, "could not publish event");
        }
    }

    fn ms_since(&self, t: chrono::DateTime<chrono::Utc>) -> u64 {
        (self.e.clock.now() - t).num_milliseconds().max(0) as u64
    }

    fn record(&mut self, step: StepRecord) -> Result<(), RunFailure> {
        self.run.tokens += step.tokens;
        self.run.cost_usd += step.cost_usd;
        self.run.steps.push(step);
        if self.run.steps.len() as u32 > self.max_steps {
            return Err(RunFailure::Budget(format!(
                "more than {} steps",
                self.max_steps
            )));
        }
        if self.run.tokens > self.max_tokens {
            return Err(RunFailure::Budget(format!(
                "{} tokens used, the budget is {}",
                self.run.tokens, self.max_tokens
            )));
        }
        if self.run.cost_usd > self.max_cost {
            return Err(RunFailure::Budget(format!(
                "cost ${:.4} exceeds ${:.4}",
                self.run.cost_usd, self.max_cost
            )));
        }
        Ok(())
    }

    fn step(&self, id: &str, kind: &str) -> StepRecord {
        StepRecord {
            step_id: id.to_string(),
            step_type: kind.to_string(),
            status: "completed".into(),
            duration_ms: 0,
            tool: None,
            tier: None,
            tokens: 0,
            cost_usd: 0.0,
            input_summary: None,
            output_summary: None,
            error: None,
        }
    }

    /// Walks one workflow from its start node; returns its end node's result.
    fn walk(&mut self, wf: Arc<Workflow>, prefix: String, depth: u32) -> Walk<'_> {
        Box::pin(async move {
            if depth > 8 {
                return Err(RunFailure::Budget(
                    "sub-workflows nested deeper than 8".into(),
                ));
            }
            let mut node = wf
                .nodes
                .iter()
                .find(|n| n.kind == "start")
                .ok_or_else(|| RunFailure::Budget("no start node".into()))?;
            loop {
                let sid = format!("{prefix}{}", node.id);
                let visits = self.visits.entry(sid.clone()).or_insert(0);
                *visits += 1;
                if let Some(max) = node.max_visits {
                    if *visits > max {
                        return Err(RunFailure::Budget(format!(
                            "node `{sid}` visited more than {max} times"
                        )));
                    }
                }
                let mut h = std::collections::hash_map::DefaultHasher::new();
                self.ctx.to_string().hash(&mut h);
                if !self.seen.insert((sid.clone(), h.finish())) {
                    return Err(RunFailure::Budget(format!(
                        "no progress: node `{sid}` revisited with an unchanged context"
                    )));
                }
                let next_override = match node.kind.as_str() {
                    "end" => {
                        let out = expr::render(&Value::Object(node.result.clone()), &self.ctx);
                        let mut s = self.step(&sid, "end");
                        s.output_summary = summary(&out);
                        self.record(s)?;
                        return Ok(out);
                    }
                    "agent" => self.agent(node, &sid).await?,
                    "tool" => self.tool(node, &sid).await?,
                    "sub_workflow" => {
                        let child_id = node.workflow.clone().unwrap_or_default();
                        let child = self
                            .e
                            .catalog
                            .get(self.req.tenant.id.as_str(), &child_id)
                            .ok_or_else(|| RunFailure::NotFound(child_id.clone()))?;
                        let started = self.e.clock.now();
                        let out = self.walk(child, format!("{sid}/"), depth + 1).await?;
                        let mut s = self.step(&sid, "sub_workflow");
                        s.duration_ms = self.ms_since(started);
                        s.output_summary = summary(&out);
                        if let Some(k) = &node.output {
                            self.ctx[k.as_str()] = out;
                        }
                        self.record(s)?;
                        None
                    }
                    kind => {
                        let s = self.step(&sid, kind);
                        self.record(s)?;
                        None
                    }
                };
                let next_id = match next_override {
                    Some(id) => id,
                    None => wf
                        .edges
                        .iter()
                        .filter(|e| e.from == node.id)
                        .find(|e| {
                            e.when.as_deref().is_none_or(|w| {
                                expr::parse(w)
                                    .map(|x| expr::eval(&x, &self.ctx))
                                    .unwrap_or(false)
                            })
                        })
                        .map(|e| e.to.clone())
                        .ok_or_else(|| RunFailure::Budget(format!("no edge out of `{sid}`")))?,
                };
                node = wf
                    .nodes
                    .iter()
                    .find(|n| n.id == next_id)
                    .ok_or_else(|| RunFailure::Budget(format!("no node `{next_id}`")))?;
            }
        })
    }

    /// A model call, escalating tiers while a strict-JSON answer fails early exit.
    async fn agent(&mut self, node: &Node, sid: &str) -> Result<Option<String>, RunFailure> {
        let task = node.task.clone().unwrap_or_default();
        let user = expr::render_text(
            node.input.as_deref().unwrap_or("{{input.message}}"),
            &self.ctx,
        );
        let prompt = expr::render_text(node.prompt.as_deref().unwrap_or(""), &self.ctx);
        let system = format!("TASK: {task}\n{}\n{prompt}", self.req.tenant.system_prompt);
        let mut turns = if node.history {
            self.req.history.clone()
        } else {
            vec![]
        };
        turns.push(Turn {
            role: TurnRole::User,
            content: user.clone(),
        });
        let keys: Vec<&str> = node
            .json_keys
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let json_mode = node.json_keys.is_some();
        let features = Features::of(&user, self.req.history.len(), json_mode);
        let decision = self.e.router.decide(
            self.req.tenant.id.as_str(),
            &format!("{}:{sid}", self.run.run_id),
            &features,
            node.tier.or(self.req.tier_preference),
        );
        let mut tier = decision.tier;
        let policy = Policy {
            timeout: Duration::from_millis(10_000),
            max_retries: 1,
            base: Duration::from_millis(self.e.cfg.retry_base_ms),
            cap: Duration::from_millis(self.e.cfg.retry_cap_ms),
            jitter: 0.1,
        };
        loop {
            let started = self.e.clock.now();
            let req = LlmRequest {
                tier,
                system: system.clone(),
                turns: turns.clone(),
                max_tokens: 512,
                json: json_mode,
            };
            let llm = self.e.llm.clone();
            let called = policy
                .run(
                    self.e.cfg.seed,
                    &format!("{}:{sid}", self.run.run_id),
                    |_| {
                        let (llm, req) = (llm.clone(), req.clone());
                        async move { llm.complete(&req).await }
                    },
                )
                .await;
            self.e
                .metrics
                .router_tier_usage
                .get_or_create(&TierLabels {
                    tier: tier.as_str().into(),
                })
                .inc();
            let mut s = self.step(sid, "agent");
            s.tier = Some(tier);
            s.duration_ms = self.ms_since(started);
            s.input_summary = summary(&json!(user));
            let resp = match called {
                Ok(r) => r,
                Err(e) => {
                    let msg = match e {
                        PolicyError::Timeout { .. } => "model call timed out".to_string(),
                        PolicyError::Failed { error, .. } => error.to_string(),
                    };
                    s.status = "failed".into();
                    s.error = Some(msg.clone());
                    self.record(s)?;
                    if let Some(t) = &node.on_error {
                        return Ok(Some(t.clone()));
                    }
                    return Err(RunFailure::Step {
                        step_id: sid.to_string(),
                        error: msg,
                        tool_error: None,
                    });
                }
            };
            s.tokens = resp.usage.total();
            s.cost_usd = cost_usd(tier, s.tokens);
            s.output_summary = summary(&json!(resp.text));
            self.tier_used = Some(tier);
            if json_mode {
                match early_exit(&resp.text, &keys) {
                    Ok(v) => {
                        self.record(s)?;
                        if let Some(k) = &node.output {
                            self.ctx[k.as_str()] = v;
                        }
                        return Ok(None);
                    }
                    Err(err) => {
                        s.status = "failed".into();
                        s.error = Some(err.to_string());
                        self.record(s)?;
                        match tier.escalate() {
                            Some(next) => {
                                tier = next;
                                continue;
                            }
                            None => {
                                if let Some(t) = &node.on_error {
                                    return Ok(Some(t.clone()));
                                }
                                return Err(RunFailure::Step {
                                    step_id: sid.to_string(),
                                    error: err.to_string(),
                                    tool_error: None,
                                });
                            }
                        }
                    }
                }
            }
            self.record(s)?;
            self.chunks = resp.chunks.clone();
            if let Some(k) = &node.output {
                self.ctx[k.as_str()] =
                    json!({"text": resp.text, "tier": tier, "confidence": decision.confidence});
            }
            return Ok(None);
        }
    }

    /// A tool call: written ahead, called through the registry, recorded for compensation.
    async fn tool(&mut self, node: &Node, sid: &str) -> Result<Option<String>, RunFailure> {
        let name = node.tool.clone().unwrap_or_default();
        let params = expr::render(&Value::Object(node.params.clone()), &self.ctx);
        // Optional parameters whose template found nothing are left out rather than sent as null.
        let params = match params {
            Value::Object(m) => {
                Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect())
            }
            other => other,
        };
        let call_id = self.e.ids.uuid();
        self.publish(
            "tool.call.requested",
            json!({"call_id": call_id, "step_id": sid, "tool": name, "params": params}),
        )
        .await;
        let started = self.e.clock.now();
        let result = if self
            .e
            .catalog
            .tool_denied(self.req.tenant.id.as_str(), &name)
        {
            Err(ToolError::NotAllowed(name.clone()))
        } else {
            self.e.tools.call(&name, &self.tctx, &params).await
        };
        let mut s = self.step(sid, "tool");
        s.tool = Some(name.clone());
        s.duration_ms = self.ms_since(started);
        s.input_summary = summary(&params);
        match result {
            Ok((out, attempts)) => {
                self.e
                    .metrics
                    .tool_calls
                    .get_or_create(&ToolLabels {
                        tool: name.clone(),
                        outcome: "succeeded".into(),
                    })
                    .inc();
                self.publish("tool.call.succeeded", json!({"call_id": call_id, "step_id": sid, "tool": name, "attempts": attempts, "output": out})).await;
                s.output_summary = summary(&out);
                let side_effect = self.e.tools.manifest(&name).is_some_and(|m| m.side_effect);
                if self
                    .e
                    .tools
                    .manifest(&name)
                    .is_some_and(|m| m.compensation.is_some())
                {
                    self.stack.push(Compensable {
                        step_id: sid.to_string(),
                        tool: name.clone(),
                        params,
                        output: out.clone(),
                    });
                }
                if let Some(k) = &node.output {
                    self.ctx[k.as_str()] = out;
                }
                self.record(s)?;
                if side_effect {
                    self.persist().await;
                }
                Ok(None)
            }
            Err(err) => {
                self.e
                    .metrics
                    .tool_calls
                    .get_or_create(&ToolLabels {
                        tool: name.clone(),
                        outcome: "failed".into(),
                    })
                    .inc();
                self.publish("tool.call.failed", json!({"call_id": call_id, "step_id": sid, "tool": name, "error": err.to_string()})).await;
                s.status = "failed".into();
                s.error = Some(err.to_string());
                self.ctx["error"] = json!({"step_id": sid, "tool": name, "message": err.to_string(),
                    "code": match &err { ToolError::Rejected { code, .. } => code.clone(), _ => "tool_failed".into() }});
                self.record(s)?;
                if let Some(t) = &node.on_error {
                    return Ok(Some(t.clone()));
                }
                Err(RunFailure::Step {
                    step_id: sid.to_string(),
                    error: err.to_string(),
                    tool_error: Some(err),
                })
            }
        }
    }

    /// Ends the run: compensation on failure, final status, events, persistence and metrics.
    async fn finish(mut self, wf: &Workflow, result: Result<Value, RunFailure>) -> RunOutcome {
        let (output, failure) = match result {
            Ok(out) => {
                self.run.status = "completed".into();
                (out, None)
            }
            Err(f) => {
                self.run.errors.push(f.to_string());
                if self.req.compensation_enabled && !self.stack.is_empty() {
                    self.compensate(&f).await;
                } else {
                    self.run.status = "failed".into();
                }
                (json!({}), Some(f))
            }
        };
        let now = self.e.clock.now();
        self.run.finished_at = Some(now);
        self.run.duration_ms = (now - self.run.started_at).num_milliseconds().max(0) as u64;
        self.run.output = output.clone();
        let status = self.run.status.clone();
        let event = match status.as_str() {
            "completed" => "workflow.completed",
            "compensated" => "workflow.compensated",
            _ => "workflow.failed",
        };
        let tool_calls = self
            .run
            .steps
            .iter()
            .filter(|s| s.step_type == "tool")
            .count();
        self.publish(event, json!({"workflow_id": wf.id, "status": status, "tier": self.tier_used,
            "duration_ms": self.run.duration_ms, "cost_usd": self.run.cost_usd, "tokens": self.run.tokens,
            "error": failure.as_ref().map(|f| f.to_string())})).await;
        self.publish("usage.metered", json!({"requests": 0, "tokens": self.run.tokens, "tool_calls": tool_calls, "cost_usd": self.run.cost_usd})).await;
        self.persist().await;
        self.e
            .metrics
            .workflow_runs
            .get_or_create(&WorkflowLabels {
                workflow: wf.id.clone(),
                status,
            })
            .inc();
        RunOutcome {
            run: self.run,
            output,
            tier_used: self.tier_used,
            chunks: self.chunks,
            failure,
        }
    }

    async fn compensate(&mut self, cause: &RunFailure) {
        let mut all_ok = true;
        while let Some(c) = self.stack.pop() {
            let action = self
                .e
                .tools
                .manifest(&c.tool)
                .and_then(|m| m.compensation.as_ref())
                .map(|c| c.action)
                .unwrap_or("undo");
            let started = self.e.clock.now();
            let r = self
                .e
                .tools
                .compensate(&c.tool, &self.tctx, &c.params, &c.output)
                .await;
            let mut s = self.step(&format!("compensate:{}", c.step_id), "compensation");
            s.tool = Some(action.to_string());
            s.duration_ms = self.ms_since(started);
            match r {
                Ok(out) => {
                    s.output_summary = summary(&out);
                    self.publish("tool.call.compensated", json!({"step_id": c.step_id, "tool": c.tool, "action": action, "output": out})).await;
                }
                Err(err) => {
                    all_ok = false;
                    s.status = "failed".into();
                    s.error = Some(err.to_string());
                    self.run.errors.push(format!(
                        "compensation of `{}` failed: {err}; manual intervention required",
                        c.step_id
                    ));
                }
            }
            self.run.compensation.push(s);
            self.persist().await;
        }
        if all_ok {
            self.run.status = "compensated".into();
        } else {
            self.run.status = "compensation_failed".into();
            let data = json!({"original_subject": format!("{}.workflow.compensated", self.e.bus.prefix()),
                "workflow_id": self.run.workflow_id, "cause": cause.to_string(), "errors": self.run.errors,
                "manual_intervention": true});
            self.publish("dlq.workflow.compensated", data).await;
        }
    }
}
