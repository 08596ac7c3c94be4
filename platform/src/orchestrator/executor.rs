//! Runs a workflow graph: one node at a time, each recorded as a step; model calls routed to a tier
//! with early exit; tool calls written ahead on the bus; budgets (steps, tokens, cost, wall time) and
//! loop safety (per-node visit bounds, a no-progress cut); and the saga: when a run fails after
//! side effects (or is cancelled), every completed compensable tool call is undone in reverse order.
//!
//! Sagas are durable. At its start and before each node with a side effect, the run is saved
//! with a [`Checkpoint`] (the next node, the context, the completed effects, and
//! this worker's lease on the run); while compensating, after each compensation. A resumed run
//! carries on from its last checkpoint, running again what came after it (conditions, model calls,
//! reads: nothing with an effect). A worker that dies leaves the run `running` (or `compensating`) with a lease
//! that lapses; [`Engine::recover`] (at start-up and on a sweep) resumes such runs from their
//! checkpoint. A side-effecting tool call carries an idempotency key derived from the run, the step
//! and its visit, so the step that was in flight when the worker died runs at most once: a result
//! recorded under the key is reused, and the tool derives the ids it creates from the key.

use super::expr;
use super::loader::Catalog;
use super::model::{Node, Workflow};
use crate::bus::{Bus, Event};
use crate::clock::{Clock, Ids};
use crate::config::Config;
use crate::domain::{Role, Tier};
use crate::llm::{Llm, LlmError, LlmRequest, Turn, TurnRole};
use crate::resilience::Retryable;
use crate::resilience::{CallError, Kind, Resilience};
use crate::router::{cost_usd, early_exit, Features, Router};
use crate::store::model::{Checkpoint, CompensableStep, Frame, Run, StepRecord, Tenant};
use crate::store::Store;
use crate::telemetry::{Metrics, TierLabels, ToolLabels, WorkflowLabels};
use crate::tools::{Registry, ToolCtx, ToolError};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

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
    /// The upstreams of model calls (`model:<tier>`); tools have theirs in the registry.
    pub resilience: Arc<Resilience>,
    /// The runs this worker is executing, and whether it still takes work.
    pub workers: Workers,
}

/// The runs in flight on this worker: each can be cancelled (manual cancel) or aborted (the
/// worker halts, as a process that dies would: nothing more is written).
#[derive(Default)]
pub struct Workers {
    /// This worker's name in saga leases.
    pub id: String,
    inflight: Mutex<HashMap<uuid::Uuid, InFlight>>,
    halted: AtomicBool,
}

impl Workers {
    /// A worker named `id` (its name in saga leases), with nothing in flight.
    pub fn named(id: String) -> Self {
        Self {
            id,
            ..Self::default()
        }
    }
}

struct InFlight {
    abort: tokio::task::AbortHandle,
    cancel: Arc<Cancel>,
}

/// A manual cancel of a run in flight: checked between nodes and raced against each tool call.
#[derive(Default)]
struct Cancel {
    set: AtomicBool,
    notify: Notify,
}

impl Cancel {
    fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }
    async fn wait(&self) {
        loop {
            let n = self.notify.notified();
            if self.is_set() {
                return;
            }
            n.await;
        }
    }
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
    /// The client's own deadline; the run ends at the earlier of it and the workflow's budget.
    pub deadline_ms: Option<u64>,
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
    /// Cancelled by an operator or the tenant's admin; completed effects are compensated.
    Cancelled,
    /// This worker stopped (halted, as a dying process would) before the run ended; another
    /// worker resumes it from its checkpoint.
    Interrupted,
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
            RunFailure::Cancelled => f.write_str(MANUALLY_CANCELLED),
            RunFailure::Interrupted => {
                f.write_str("the worker stopped; the run resumes on another worker")
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
    pub failure: Option<RunFailure>,
    /// What the guards withheld during the run (documents or tool outputs carrying instructions).
    pub guard: Vec<crate::guard::Violation>,
}

/// The compensation reason of a manual cancel.
pub const MANUALLY_CANCELLED: &str = "manually_cancelled";

impl Retryable for LlmError {
    fn retryable(&self) -> bool {
        // A missing cassette will be missing on the next attempt too.
        !matches!(self, LlmError::CassetteMiss(_))
    }
}

/// The state of one run while it executes.
struct Exec<'a> {
    e: &'a Engine,
    req: &'a RunRequest,
    tctx: ToolCtx,
    ctx: Value,
    run: Run,
    stack: Vec<CompensableStep>,
    tier_used: Option<Tier>,
    visits: BTreeMap<String, u32>,
    seen: HashSet<(String, u64)>,
    max_steps: u32,
    max_tokens: u64,
    max_cost: f64,
    /// Where the run stands: one frame per (sub-)workflow being walked.
    frames: Vec<Frame>,
    cancel: Arc<Cancel>,
    /// Set on a resumed run until its first tool call: that call may be the one the dead worker
    /// left in flight, so its pending idempotency claim is taken over rather than waited for.
    resuming: bool,
    /// Set while compensating: why.
    compensating: Option<String>,
    /// The request as checkpoints store it (built once per run).
    request: Value,
    /// What the guards withheld from this run's tool outputs (not checkpointed: a resumed run
    /// reports only what it saw itself).
    guard: Vec<crate::guard::Violation>,
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

fn request_json(req: &RunRequest) -> Value {
    json!({"user_id": req.user_id, "role": req.role, "workflow_id": req.workflow_id,
        "input": req.input, "preset": req.preset, "history": req.history,
        "tier_preference": req.tier_preference, "compensation_enabled": req.compensation_enabled,
        "deadline_ms": req.deadline_ms})
}

fn request_from(tenant: Tenant, v: &Value) -> Option<RunRequest> {
    Some(RunRequest {
        tenant,
        user_id: v["user_id"].as_str()?.to_string(),
        role: serde_json::from_value(v["role"].clone()).ok()?,
        workflow_id: v["workflow_id"].as_str()?.to_string(),
        input: v["input"].clone(),
        preset: serde_json::from_value(v["preset"].clone()).unwrap_or_default(),
        history: serde_json::from_value(v["history"].clone()).unwrap_or_default(),
        tier_preference: serde_json::from_value(v["tier_preference"].clone())
            .ok()
            .flatten(),
        compensation_enabled: v["compensation_enabled"].as_bool().unwrap_or(true),
        deadline_ms: v["deadline_ms"].as_u64(),
    })
}

/// Why a run could not be cancelled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CancelError {
    #[error("run not found")]
    NotFound,
    #[error("the run has already ended ({0})")]
    Finished(String),
    /// Another worker holds the run and its lease has not lapsed: cancelling here would
    /// compensate under its feet.
    #[error("the run is held by {owner} until {until}; cancel it there, or after its lease")]
    HeldElsewhere {
        owner: String,
        until: chrono::DateTime<chrono::Utc>,
    },
    #[error("{0}")]
    Store(String),
}

impl Engine {
    /// Runs a workflow to its end (or failure and compensation), persisting and publishing as it
    /// goes. The run executes in its own task, so that a cancel or a halt can reach it.
    pub async fn run(self: &Arc<Self>, req: &RunRequest) -> RunOutcome {
        let run_id = self.ids.uuid();
        let now = self.clock.now();
        let run = Run::started(req.tenant.id.clone(), run_id, &req.workflow_id, now);
        if self.halted() {
            return interrupted(run);
        }
        let Some(wf) = self.catalog.get(req.tenant.id.as_str(), &req.workflow_id) else {
            let mut run = run;
            run.status = "failed".into();
            return RunOutcome {
                run,
                output: json!({}),
                tier_used: None,
                failure: Some(RunFailure::NotFound(req.workflow_id.clone())),
                guard: vec![],
            };
        };
        let req = req.clone();
        self.tracked(run.clone(), move |me, cancel| async move {
            let mut x = me.exec(&req, run, cancel, &wf);
            x.save().await;
            x.publish(
                "workflow.started",
                json!({"workflow_id": wf.id, "version": wf.version}),
            )
            .await;
            let result = x.walk_within_budget(&wf, vec![]).await;
            x.finish(&wf, result).await
        })
        .await
    }

    /// Resumes an unfinished run from its checkpoint (a worker died holding it): the walk goes
    /// on from the saved node, or the compensation from the saved stack.
    pub async fn resume(self: &Arc<Self>, run: Run) -> RunOutcome {
        let Some(cp) = run.checkpoint.clone() else {
            return interrupted(run);
        };
        let tenant = match self.store.tenant(&run.tenant).await {
            Ok(Some(t)) => t,
            _ => return interrupted(run),
        };
        let (Some(req), Some(wf)) = (
            request_from(tenant, &cp.request),
            self.catalog.get(run.tenant.as_str(), &run.workflow_id),
        ) else {
            tracing::error!(run_id = %run.run_id, "cannot resume: request or workflow missing");
            return interrupted(run);
        };
        self.metrics.sagas_resumed.inc();
        tracing::warn!(run_id = %run.run_id, workflow = %wf.id, "resuming an interrupted run");
        self.tracked(run.clone(), move |me, cancel| async move {
            let mut x = me.exec(&req, run, cancel, &wf);
            x.ctx = cp.ctx.clone();
            x.stack = cp.compensable.clone();
            x.visits = cp.visits.clone();
            x.tier_used = cp.tier_used;
            x.resuming = true;
            x.publish(
                "workflow.resumed",
                json!({"workflow_id": wf.id, "compensating": cp.compensating.is_some()}),
            )
            .await;
            if let Some(reason) = cp.compensating.clone() {
                x.run.status = "compensating".into();
                x.compensate(&reason).await;
                return x.end(&wf, json!({}), None).await;
            }
            let result = x.walk_within_budget(&wf, cp.frames.clone()).await;
            x.finish(&wf, result).await
        })
        .await
    }

    /// Resumes every unfinished run whose lease has lapsed (its worker is gone), each in the
    /// background. Returns how many it started. Runs this worker holds are left alone.
    pub async fn recover(self: &Arc<Self>) -> usize {
        if self.halted() {
            return 0;
        }
        let Ok(tenants) = self.store.tenant_ids().await else {
            return 0;
        };
        let mut started = 0;
        for t in tenants {
            let Ok(runs) = self.store.unfinished_runs(&t).await else {
                continue;
            };
            for run in runs {
                let lapsed = run
                    .checkpoint
                    .as_ref()
                    .is_some_and(|c| c.lease_until <= self.clock.now());
                if !lapsed || self.is_inflight(run.run_id) {
                    continue;
                }
                // Claim it first: of two workers that see the same lapsed lease, one resumes it.
                let run_id = run.run_id;
                let claimed = match self.claim(run).await {
                    Ok(Some(claimed)) => claimed,
                    Ok(None) => continue,
                    Err(err) => {
                        tracing::error!(%run_id, %err, "could not claim an abandoned run");
                        continue;
                    }
                };
                started += 1;
                let me = self.clone();
                tokio::spawn(async move { me.resume(claimed).await });
            }
        }
        started
    }

    /// Cancels a run: one in flight here stops at its next node (or its current tool call) and
    /// compensates; an abandoned one is compensated from its checkpoint. Either way the run ends
    /// `compensated` with reason `manually_cancelled`.
    pub async fn cancel(
        self: &Arc<Self>,
        tenant: &crate::domain::TenantId,
        run_id: uuid::Uuid,
    ) -> Result<Run, CancelError> {
        let cancel = self
            .workers
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&run_id)
            .map(|f| f.cancel.clone());
        if let Some(c) = cancel {
            c.set.store(true, Ordering::SeqCst);
            c.notify.notify_waiters();
            // The run's own task compensates and saves; wait for it to end.
            for _ in 0..6000 {
                if !self.is_inflight(run_id) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        } else {
            let run = self.stored_run(tenant, run_id).await?;
            if !run.unfinished() {
                return Err(CancelError::Finished(run.status));
            }
            let Some(held) = run.checkpoint.as_ref() else {
                return Err(CancelError::Store("the run has no checkpoint".into()));
            };
            if held.lease_until > self.clock.now() {
                return Err(CancelError::HeldElsewhere {
                    owner: held.owner.clone(),
                    until: held.lease_until,
                });
            }
            let mut run = run;
            if let Some(cp) = run.checkpoint.as_mut() {
                cp.compensating = Some(MANUALLY_CANCELLED.into());
                cp.frames.clear();
            }
            if run.failure.is_none() {
                run.failure = Some(crate::store::model::Failure {
                    step_id: None,
                    reason: MANUALLY_CANCELLED.into(),
                });
                run.errors.push(MANUALLY_CANCELLED.into());
            }
            // Claimed like any abandoned run, so a sweeping worker does not resume it meanwhile.
            match self.claim(run).await {
                Ok(Some(claimed)) => {
                    self.resume(claimed).await;
                }
                Ok(None) => {
                    return Err(CancelError::Store(
                        "another worker took the run over first".into(),
                    ))
                }
                Err(e) => return Err(CancelError::Store(e.to_string())),
            }
        }
        let run = self.stored_run(tenant, run_id).await?;
        if run.unfinished() {
            return Err(CancelError::Store("the run did not stop in time".into()));
        }
        Ok(run)
    }

    /// When a lease taken now ends.
    fn lease_until(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now() + chrono::Duration::milliseconds(self.cfg.saga.lease_ms as i64)
    }

    /// Takes `run` (with whatever its checkpoint should say from now on) over from the worker its
    /// checkpoint names, with compare-and-set: `None` when another worker got there first.
    async fn claim(&self, mut run: Run) -> Result<Option<Run>, crate::store::StoreError> {
        let Some(cp) = run.checkpoint.as_mut() else {
            return Ok(None);
        };
        let (owner, until) = (cp.owner.clone(), cp.lease_until);
        cp.owner = self.workers.id.clone();
        cp.lease_until = self.lease_until();
        let won = self.store.claim_run(&run, &owner, until).await?;
        Ok(won.then_some(run))
    }

    async fn stored_run(
        &self,
        tenant: &crate::domain::TenantId,
        run_id: uuid::Uuid,
    ) -> Result<Run, CancelError> {
        self.store
            .run(tenant, run_id)
            .await
            .map_err(|e| CancelError::Store(e.to_string()))?
            .ok_or(CancelError::NotFound)
    }

    /// Stops this worker as a crash would: every run in flight is aborted where it stands
    /// (nothing more is written; their leases lapse and another worker resumes them) and no new
    /// run starts.
    pub fn halt(&self) {
        self.workers.halted.store(true, Ordering::SeqCst);
        let inflight = std::mem::take(
            &mut *self
                .workers
                .inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (_, f) in inflight {
            f.abort.abort();
        }
    }

    /// Whether this worker has been halted (it starts no run and resumes none).
    pub fn halted(&self) -> bool {
        self.workers.halted.load(Ordering::SeqCst)
    }

    fn is_inflight(&self, run_id: uuid::Uuid) -> bool {
        self.workers
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&run_id)
    }

    /// Runs `work` in its own task, registered for cancel and halt.
    async fn tracked<F, Fut>(self: &Arc<Self>, run: Run, work: F) -> RunOutcome
    where
        F: FnOnce(Arc<Self>, Arc<Cancel>) -> Fut,
        Fut: Future<Output = RunOutcome> + Send + 'static,
    {
        let cancel = Arc::new(Cancel::default());
        let run_id = run.run_id;
        // Ids only: a span's attributes are exported like log lines, so no text goes in them.
        let span = tracing::info_span!("workflow.run", tenant_id = %run.tenant, %run_id, workflow_id = %run.workflow_id);
        let task = tokio::spawn(tracing::Instrument::instrument(
            work(self.clone(), cancel.clone()),
            span,
        ));
        self.workers
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                run_id,
                InFlight {
                    abort: task.abort_handle(),
                    cancel,
                },
            );
        let r = task.await;
        self.workers
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&run_id);
        r.unwrap_or_else(|_| interrupted(run))
    }

    fn exec<'a>(
        &'a self,
        req: &'a RunRequest,
        run: Run,
        cancel: Arc<Cancel>,
        wf: &Workflow,
    ) -> Exec<'a> {
        let b = &self.cfg.run_budget;
        let mut ctx = json!({"input": req.input, "tenant": req.tenant.id, "user_id": req.user_id, "role": req.role});
        if let Value::Object(m) = &mut ctx {
            for (k, v) in &req.preset {
                m.insert(k.clone(), v.clone());
            }
        }
        Exec {
            e: self,
            req,
            tctx: ToolCtx {
                tenant: req.tenant.id.clone(),
                user_id: req.user_id.clone(),
                role: req.role,
                run_id: run.run_id,
                store: self.store.clone(),
                clock: self.clock.clone(),
                ids: self.ids.clone(),
                cfg: self.cfg.clone(),
                idempotency_key: None,
                resuming: false,
            },
            ctx,
            run,
            stack: vec![],
            tier_used: None,
            visits: BTreeMap::new(),
            seen: HashSet::new(),
            max_steps: wf.limits.max_steps.unwrap_or(b.max_steps),
            max_tokens: wf.limits.max_tokens.unwrap_or(b.max_tokens),
            max_cost: wf.limits.max_cost_usd.unwrap_or(b.max_cost_usd),
            frames: vec![],
            cancel,
            resuming: false,
            compensating: None,
            request: request_json(req),
            guard: vec![],
        }
    }

    /// One model call for `tenant` through the tier's upstream (bulkhead, breaker, retries,
    /// timeout). A fault set for `model:<tier>` (test deployments) applies before the provider.
    pub async fn complete(
        &self,
        tenant: &crate::domain::TenantId,
        req: &LlmRequest,
        key: &str,
    ) -> Result<(crate::llm::LlmResponse, u32), CallError<LlmError>> {
        let name = format!("model:{}", req.tier.as_str());
        let upstream = self.resilience.upstream(&name, Kind::Model, None);
        let span =
            tracing::info_span!("llm.complete", tenant_id = %tenant, tier = req.tier.as_str());
        let call = upstream.call(key, |_| {
            let (llm, req, name) = (self.llm.clone(), req.clone(), name.clone());
            async move {
                self.tools
                    .faults()
                    .apply(
                        Some(tenant),
                        self.clock.now(),
                        &name,
                        crate::faults::FaultPoint::Call,
                    )
                    .await
                    .map_err(|e| LlmError::Unavailable(e.to_string()))?;
                llm.complete(&req).await
            }
        });
        tracing::Instrument::instrument(call, span).await
    }
}

/// The outcome of a run this worker stopped holding (halted, or its state unreadable).
fn interrupted(run: Run) -> RunOutcome {
    RunOutcome {
        run,
        output: json!({}),
        tier_used: None,
        failure: Some(RunFailure::Interrupted),
        guard: vec![],
    }
}

impl<'a> Exec<'a> {
    /// Saves the run with its checkpoint (renewing this worker's lease on it); a finished run
    /// is saved without one.
    async fn save(&mut self) {
        self.run.checkpoint = if self.run.unfinished() {
            Some(Checkpoint {
                owner: self.e.workers.id.clone(),
                lease_until: self.e.lease_until(),
                request: self.request.clone(),
                ctx: self.ctx.clone(),
                frames: self.frames.clone(),
                visits: self.visits.clone(),
                compensable: self.stack.clone(),
                tier_used: self.tier_used,
                compensating: self.compensating.clone(),
            })
        } else {
            None
        };
        self.write().await;
    }

    async fn write(&self) {
        if let Err(err) = self.e.store.put_run(&self.run).await {
            tracing::error!(run_id = %self.run.run_id, %err, "could not persist run");
        }
    }

    /// Walks the workflow (from `resume` when resuming) within the run's wall-time budget.
    async fn walk_within_budget(
        &mut self,
        wf: &Arc<Workflow>,
        resume: Vec<Frame>,
    ) -> Result<Value, RunFailure> {
        let b = &self.e.cfg.run_budget;
        let budget_ms = wf.limits.timeout_ms.unwrap_or(b.timeout_ms);
        let deadline =
            Duration::from_millis(self.req.deadline_ms.map_or(budget_ms, |d| d.min(budget_ms)));
        tokio::time::timeout(deadline, self.walk(wf.clone(), String::new(), 0, resume))
            .await
            .unwrap_or(Err(RunFailure::Timeout))
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

    /// Whether `node` changes the world (a tool with a side effect): where a checkpoint goes.
    fn effect_at(&self, node: &Node) -> bool {
        node.kind == "tool"
            && node
                .tool
                .as_deref()
                .and_then(|t| self.e.tools.manifest(t))
                .is_some_and(|m| m.side_effect)
    }

    /// Walks one workflow from its start node (or, resuming, from `resume`'s first frame, the
    /// rest of `resume` going to the sub-workflow that node runs); returns its end node's result.
    fn walk(
        &mut self,
        wf: Arc<Workflow>,
        prefix: String,
        depth: u32,
        resume: Vec<Frame>,
    ) -> Walk<'_> {
        Box::pin(async move {
            if depth > 8 {
                return Err(RunFailure::Budget(
                    "sub-workflows nested deeper than 8".into(),
                ));
            }
            self.frames.push(Frame {
                workflow: wf.id.clone(),
                prefix: prefix.clone(),
                node: String::new(),
            });
            let r = self.walk_nodes(&wf, &prefix, depth, resume).await;
            self.frames.pop();
            r
        })
    }

    async fn walk_nodes(
        &mut self,
        wf: &Arc<Workflow>,
        prefix: &str,
        depth: u32,
        mut resume: Vec<Frame>,
    ) -> Result<Value, RunFailure> {
        {
            let first = if resume.is_empty() {
                None
            } else {
                Some(resume.remove(0).node)
            };
            let mut node = match &first {
                Some(id) => wf.nodes.iter().find(|n| &n.id == id),
                None => wf.nodes.iter().find(|n| n.kind == "start"),
            }
            .ok_or_else(|| RunFailure::Budget("no start node".into()))?;
            loop {
                if let Some(f) = self.frames.last_mut() {
                    f.node = node.id.clone();
                }
                if self.cancel.is_set() {
                    return Err(RunFailure::Cancelled);
                }
                // A resume point before each effect: what runs between two of them (conditions,
                // model calls, reads) is simply run again by a worker that resumes.
                if self.effect_at(node) {
                    self.save().await;
                }
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
                        let inner = std::mem::take(&mut resume);
                        let out = self
                            .walk(child, format!("{sid}/"), depth + 1, inner)
                            .await?;
                        let mut s = self.step(&sid, "sub_workflow");
                        s.duration_ms = self.ms_since(started);
                        // Which workflow ran: episodes compare its versions on replay.
                        s.input_summary = Some(format!("workflow {child_id}"));
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
                        .find(|e| e.holds(&self.ctx))
                        .map(|e| e.to.clone())
                        .ok_or_else(|| RunFailure::Budget(format!("no edge out of `{sid}`")))?,
                };
                node = wf
                    .nodes
                    .iter()
                    .find(|n| n.id == next_id)
                    .ok_or_else(|| RunFailure::Budget(format!("no node `{next_id}`")))?;
            }
        }
    }

    /// A model call, escalating tiers while a strict-JSON answer fails early exit.
    async fn agent(&mut self, node: &Node, sid: &str) -> Result<Option<String>, RunFailure> {
        let task = node.task.clone().unwrap_or_default();
        let user = expr::render_text(
            node.input.as_deref().unwrap_or("{{input.message}}"),
            &self.ctx,
        );
        let prompt = expr::render_text(node.prompt.as_deref().unwrap_or(""), &self.ctx);
        let mut system = format!("TASK: {task}\n{}\n{prompt}", self.req.tenant.system_prompt);
        // Only the tools the tenant may use are offered to the model.
        for t in node
            .tools
            .iter()
            .flatten()
            .filter(|t| self.req.tenant.may_use(t))
        {
            if let Some(m) = self.e.tools.manifest(t) {
                system.push_str(&format!(
                    "\nTOOL {}: {} {}",
                    m.name,
                    m.description,
                    m.json_schema()
                ));
            }
        }
        let mut turns = if node.history {
            self.req.history.clone()
        } else {
            vec![]
        };
        turns.push(Turn {
            role: TurnRole::User,
            content: user.clone(),
        });
        let mut keys: Vec<&str> = node
            .json_keys
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if node.tools.is_some() {
            keys.push("tool_calls");
        }
        let json_mode = node.json_keys.is_some() || node.tools.is_some();
        let features = Features::of(&user, self.req.history.len(), json_mode)
            .with_intent(self.ctx["intent"]["intent"].as_str());
        let decision = self.e.router.decide(
            self.req.tenant.id.as_str(),
            &format!("{}:{sid}", self.run.run_id),
            &features,
            node.tier.or(self.req.tier_preference),
        );
        let mut tier = decision.tier;
        loop {
            let started = self.e.clock.now();
            let req = LlmRequest {
                tier,
                system: system.clone(),
                turns: turns.clone(),
                max_tokens: 512,
                json: json_mode,
            };
            let called = self
                .e
                .complete(
                    &self.req.tenant.id,
                    &req,
                    &format!("{}:{sid}", self.run.run_id),
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
                Ok((r, _attempts)) => r,
                Err(e) => {
                    // The tier is not answering (down, timing out, refusing): not a bad answer.
                    let unavailable = match &e {
                        CallError::Failed { error, .. } => error.retryable(),
                        _ => true,
                    };
                    let msg = match e {
                        CallError::Timeout { .. } => "model call timed out".to_string(),
                        other => other.to_string(),
                    };
                    s.status = "failed".into();
                    s.error = Some(msg.clone());
                    self.record(s)?;
                    // A tier that is not answering hands the call to the next one.
                    if let (true, Some(next)) = (unavailable, tier.escalate()) {
                        tier = next;
                        continue;
                    }
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
                let verdict = early_exit(&resp.text, &keys);
                self.e
                    .router
                    .record_early_exit(self.req.tenant.id.as_str(), tier, verdict.is_ok());
                match verdict {
                    Ok(v) => {
                        self.record(s)?;
                        let v = if node.tools.is_some() {
                            self.model_tool_calls(node, sid, &v).await?
                        } else {
                            v
                        };
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
            if let Some(k) = &node.output {
                self.ctx[k.as_str()] =
                    json!({"text": resp.text, "tier": tier, "confidence": decision.confidence});
            }
            return Ok(None);
        }
    }

    /// A tool node: parameters rendered from the context, then [`Exec::invoke`].
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
        match self.invoke(sid, &name, params).await? {
            Ok(out) => {
                if let Some(k) = &node.output {
                    self.ctx[k.as_str()] = out;
                }
                Ok(None)
            }
            Err(err) => {
                self.ctx["error"] = json!({"step_id": sid, "tool": name, "message": err.to_string(),
                    "code": match &err { ToolError::Rejected { code, .. } => code.clone(), _ => "tool_failed".into() }});
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

    /// One tool call, the only way the executor calls a tool: the tenant's deny-list, a write-ahead
    /// `tool.call.requested`, the registry (validation, timeout, retries), the outcome event, the
    /// step record, and the compensation stack. The outer error is a budget stop; the inner one is
    /// the tool's own failure, already recorded.
    async fn invoke(
        &mut self,
        sid: &str,
        name: &str,
        params: Value,
    ) -> Result<Result<Value, ToolError>, RunFailure> {
        let call_id = self.e.ids.uuid();
        // The call's identity: the run, the step and its visit, and what it is asked to do. A
        // resumed run asks again under the same key and gets the recorded result.
        let node = sid.split('#').next().unwrap_or(sid);
        let visit = self.visits.get(node).copied().unwrap_or(1);
        let key = format!(
            "{}:{sid}#{visit}:{}",
            self.run.run_id,
            &crate::resilience::idempotency::fingerprint(&[&json!(name), &params])[..16]
        );
        self.publish(
            "tool.call.requested",
            json!({"call_id": call_id, "step_id": sid, "tool": name, "params": params, "idempotency_key": key}),
        )
        .await;
        let started = self.e.clock.now();
        let mut tctx = self.tctx.clone();
        tctx.idempotency_key = Some(key);
        tctx.resuming = std::mem::take(&mut self.resuming);
        let result = if self
            .e
            .catalog
            .tool_denied(self.req.tenant.id.as_str(), name)
            || !self.req.tenant.may_use(name)
        {
            Err(ToolError::NotAllowed(name.to_string()))
        } else {
            let cancel = self.cancel.clone();
            let span = tracing::info_span!("tool.call", tenant_id = %self.req.tenant.id, tool = name, %call_id, step_id = sid);
            let call =
                tracing::Instrument::instrument(self.e.tools.call(name, &tctx, &params), span);
            tokio::select! {
                r = call => r,
                _ = cancel.wait() => return Err(RunFailure::Cancelled),
            }
        };
        let mut s = self.step(sid, "tool");
        s.tool = Some(name.to_string());
        s.duration_ms = self.ms_since(started);
        s.input_summary = summary(&params);
        let outcome = if result.is_ok() {
            "succeeded"
        } else {
            "failed"
        };
        self.e
            .metrics
            .tool_calls
            .get_or_create(&ToolLabels {
                tool: name.to_string(),
                outcome: outcome.into(),
            })
            .inc();
        match result {
            Ok((mut out, attempts, served)) => {
                self.guard_tool_output(sid, name, &mut out).await;
                let replayed = served == crate::resilience::idempotency::Served::Replayed;
                self.publish("tool.call.succeeded", json!({"call_id": call_id, "step_id": sid, "tool": name, "attempts": attempts, "replayed": replayed, "output": out})).await;
                s.output_summary = summary(&out);
                let manifest = self.e.tools.manifest(name);
                if manifest.is_some_and(|m| m.compensation.is_some()) {
                    self.stack.push(CompensableStep {
                        step_id: sid.to_string(),
                        tool: name.to_string(),
                        params,
                        output: out.clone(),
                    });
                }
                // No checkpoint here: the one before this node stays the resume point, so a
                // worker that resumes asks again under the same key and gets this result back.
                self.record(s)?;
                Ok(Ok(out))
            }
            Err(err) => {
                self.publish("tool.call.failed", json!({"call_id": call_id, "step_id": sid, "tool": name, "error": err.to_string()})).await;
                s.status = "failed".into();
                s.error = Some(err.to_string());
                self.record(s)?;
                Ok(Err(err))
            }
        }
    }

    /// Indirect injection: a tool output (a retrieved document, a fetched page, a stored note)
    /// that carries instructions must not steer the model. Retrieval already withholds such
    /// documents (`withheld` in `kb.search`'s output); any other string of an output that
    /// carries them is replaced. Either is reported: a violation on the run, a `guard.blocked`
    /// event, an audit row and `guard_blocked_total`.
    async fn guard_tool_output(&mut self, sid: &str, tool: &str, out: &mut Value) {
        let cfg = &self.e.cfg.guard;
        let withheld = out["withheld"].as_array().map_or(0, Vec::len);
        let replaced = crate::guard::withhold_instructions(cfg, out);
        let (surface, count) = match (withheld, replaced) {
            (0, 0) => return,
            (0, n) => ("tool_output", n),
            (n, _) => ("document", n),
        };
        let v = crate::guard::Violation::IndirectPromptInjectionDetected;
        self.guard.push(v);
        self.e
            .metrics
            .guard_blocked
            .get_or_create(&crate::telemetry::GuardLabels {
                violation: v.as_str().into(),
                surface: surface.into(),
            })
            .inc();
        self.publish(
            "guard.blocked",
            json!({"surface": surface, "subject": format!("{tool}@{sid}"), "blocked": false,
                   "violations": [v.as_str()], "withheld": count}),
        )
        .await;
        let row = crate::store::model::AuditEntry {
            tenant: self.req.tenant.id.clone(),
            at: self.e.clock.now(),
            actor: self.req.user_id.clone(),
            action: "guard.blocked".into(),
            resource: format!("{surface}:{tool}@{sid}"),
            outcome: "denied".into(),
            detail: v.as_str().into(),
        };
        if let Err(err) = self.e.store.append_audit(&row).await {
            tracing::error!(%err, "could not write audit row");
        }
    }

    /// Runs the tool calls a model asked for: offered tools through [`Exec::invoke`], anything else
    /// refused without being called. Failures are reported back in the output, not fatal.
    async fn model_tool_calls(
        &mut self,
        node: &Node,
        sid: &str,
        answer: &Value,
    ) -> Result<Value, RunFailure> {
        let offered = node.tools.clone().unwrap_or_default();
        let calls = answer["tool_calls"].as_array().cloned().unwrap_or_default();
        let mut results = vec![];
        for (i, call) in calls.iter().enumerate() {
            let name = call["name"].as_str().unwrap_or("").to_string();
            let args = call.get("arguments").cloned().unwrap_or_else(|| json!({}));
            let call_sid = format!("{sid}#{i}");
            if !offered.contains(&name) {
                let mut s = self.step(&call_sid, "tool");
                s.tool = Some(name.clone());
                s.status = "refused".into();
                s.error = Some("the model asked for a tool this node does not offer".into());
                s.input_summary = summary(&args);
                self.record(s)?;
                results.push(json!({"name": name, "refused": true}));
                continue;
            }
            match self.invoke(&call_sid, &name, args).await? {
                Ok(out) => results.push(json!({"name": name, "result": out})),
                Err(e) => results.push(json!({"name": name, "error": e.to_string()})),
            }
        }
        Ok(json!({"calls": results}))
    }

    /// Ends the run: compensation on failure or cancel, final status, events, persistence and
    /// metrics. An interrupted run (its worker halting) ends nothing: its checkpoint stays.
    async fn finish(mut self, wf: &Workflow, result: Result<Value, RunFailure>) -> RunOutcome {
        let (output, failure) = match result {
            Ok(out) => {
                self.run.status = "completed".into();
                (out, None)
            }
            Err(f) => {
                self.run.errors.push(f.to_string());
                self.run.failure = Some(crate::store::model::Failure {
                    step_id: match &f {
                        RunFailure::Step { step_id, .. } => Some(step_id.clone()),
                        _ => None,
                    },
                    reason: match &f {
                        RunFailure::Step { error, .. } => error.clone(),
                        other => other.to_string(),
                    },
                });
                let cancelled = f == RunFailure::Cancelled;
                if cancelled || (self.req.compensation_enabled && !self.stack.is_empty()) {
                    self.compensate(&f.to_string()).await;
                } else {
                    self.run.status = "failed".into();
                }
                (json!({}), Some(f))
            }
        };
        self.end(wf, output, failure).await
    }

    /// Publishes the final events, saves the finished run and counts it.
    async fn end(
        mut self,
        wf: &Workflow,
        output: Value,
        failure: Option<RunFailure>,
    ) -> RunOutcome {
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
        let error = failure
            .as_ref()
            .map(|f| f.to_string())
            .or_else(|| self.run.failure.as_ref().map(|f| f.reason.clone()));
        self.publish(event, json!({"workflow_id": wf.id, "status": status, "tier": self.tier_used,
            "duration_ms": self.run.duration_ms, "cost_usd": self.run.cost_usd, "tokens": self.run.tokens,
            "error": error})).await;
        self.publish("usage.metered", json!({"requests": 0, "tokens": self.run.tokens, "tool_calls": tool_calls, "cost_usd": self.run.cost_usd})).await;
        self.save().await;
        self.e
            .metrics
            .workflow_runs
            .get_or_create(&WorkflowLabels {
                workflow: wf.id.clone(),
                status: status.clone(),
            })
            .inc();
        // A saga is a run that changed something it could undo (or was asked to undo).
        if !self.run.compensation.is_empty() || self.had_effects() {
            self.e
                .metrics
                .sagas
                .get_or_create(&crate::telemetry::SagaLabels { status })
                .inc();
        }
        RunOutcome {
            run: self.run,
            output,
            tier_used: self.tier_used,
            failure,
            guard: self.guard,
        }
    }

    fn had_effects(&self) -> bool {
        !self.stack.is_empty()
            || self.run.steps.iter().any(|s| {
                s.status == "completed"
                    && s.tool.as_deref().is_some_and(|t| {
                        self.e
                            .tools
                            .manifest(t)
                            .is_some_and(|m| m.compensation.is_some())
                    })
            })
    }

    /// Undoes every completed effect, newest first, each through the registry (its own
    /// upstream, timeout and retries, at most once per effect). Saved after each, so a worker
    /// that dies mid-way leaves the rest to the next. Ends `compensated`, or
    /// `compensation_failed` (dead-lettered, flagged for manual intervention).
    async fn compensate(&mut self, reason: &str) {
        self.run.status = "compensating".into();
        self.save_compensating(reason).await;
        let mut all_ok = !self.run.compensation.iter().any(|s| s.status == "failed");
        while let Some(c) = self.stack.last().cloned() {
            let action = self
                .e
                .tools
                .manifest(&c.tool)
                .and_then(|m| m.compensation.as_ref())
                .map(|c| c.action)
                .unwrap_or("undo");
            let started = self.e.clock.now();
            let mut tctx = self.tctx.clone();
            tctx.idempotency_key = Some(format!("{}:{}:compensate", self.run.run_id, c.step_id));
            tctx.resuming = std::mem::take(&mut self.resuming);
            let r = self
                .e
                .tools
                .compensate(&c.tool, &tctx, &c.params, &c.output)
                .await;
            let mut s = self.step(&format!("compensate:{}", c.step_id), "compensation");
            s.tool = Some(action.to_string());
            s.duration_ms = self.ms_since(started);
            match r {
                Ok((out, attempts)) => {
                    s.output_summary = summary(&out);
                    self.publish("tool.call.compensated", json!({"step_id": c.step_id, "tool": c.tool, "action": action, "attempts": attempts, "reason": reason, "output": out})).await;
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
            self.stack.pop();
            self.run.compensation.push(s);
            self.save_compensating(reason).await;
        }
        if all_ok {
            self.run.status = "compensated".into();
        } else {
            self.run.status = "compensation_failed".into();
            let data = json!({"original_subject": format!("{}.workflow.compensated", self.e.bus.prefix()),
                "workflow_id": self.run.workflow_id, "cause": reason, "errors": self.run.errors,
                "manual_intervention": true});
            self.publish("dlq.workflow.compensated", data).await;
        }
    }

    async fn save_compensating(&mut self, reason: &str) {
        self.frames.clear();
        self.compensating = Some(reason.to_string());
        self.save().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::memory::MemoryBus;
    use crate::clock::ManualClock;
    use crate::domain::TenantId;
    use crate::llm::scripted::ScriptedLlm;
    use crate::store::memory::MemoryStore;
    use std::collections::BTreeMap;

    pub(super) async fn engine(workflows: &[(&str, &str)], seed: u64) -> Arc<Engine> {
        let cfg = Arc::new(Config {
            resilience: crate::resilience::ResilienceConfig {
                retry_base_ms: 1,
                retry_cap_ms: 2,
                ..Default::default()
            },
            seed,
            ..Config::default()
        });
        let clock = Arc::new(ManualClock::at_epoch());
        let metrics = Arc::new(Metrics::default());
        let resilience = Arc::new(Resilience::new(
            cfg.resilience.clone(),
            seed,
            clock.clone(),
            metrics.clone(),
        ));
        let kv: Arc<dyn crate::kv::Kv> = Arc::new(crate::kv::memory::MemoryKv::default());
        let idem = crate::resilience::idempotency::Idempotency::new(
            kv,
            clock.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(5),
        );
        let tools = Arc::new(Registry::builtin(
            resilience.clone(),
            Some(idem),
            metrics.clone(),
            Default::default(),
        ));
        let files: Vec<(String, String)> = workflows
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        let catalog = if files.is_empty() {
            Catalog::load(None, &tools).unwrap()
        } else {
            Catalog::from_sources(&files, &[], &tools).unwrap()
        };
        let store = Arc::new(MemoryStore::default());
        crate::demo::seed(store.as_ref(), seed).await.unwrap();
        Arc::new(Engine {
            catalog,
            tools,
            llm: Arc::new(ScriptedLlm::new(seed)),
            router: Router::new(seed, BTreeMap::new()),
            store,
            bus: Arc::new(MemoryBus::new("t")),
            clock,
            ids: Arc::new(Ids::seeded(seed)),
            cfg,
            metrics,
            resilience,
            workers: Workers::named("test".into()),
        })
    }

    pub(super) async fn request(e: &Engine, workflow: &str, message: &str) -> RunRequest {
        let tenant = e
            .store
            .tenant(&TenantId::parse("acme").unwrap())
            .await
            .unwrap()
            .unwrap();
        RunRequest {
            tenant,
            user_id: "bob".into(),
            role: Role::User,
            workflow_id: workflow.into(),
            input: json!({"message": message}),
            preset: Default::default(),
            history: vec![],
            tier_preference: None,
            compensation_enabled: true,
            deadline_ms: None,
        }
    }

    #[tokio::test]
    async fn a_loop_stops_at_its_guard_and_compensates_what_it_did() {
        let wf = "id: w\nversion: '1'\nnodes:\n  - {id: start, type: start}\n  - {id: send, type: tool, tool: email.send, params: {template: t}, output: m, max_visits: 3}\n  - {id: again, type: condition}\n  - {id: end, type: end}\nedges:\n  - {from: start, to: send}\n  - {from: send, to: again}\n  - {from: again, to: end, when: \"m.message_id == 'never'\"}\n  - {from: again, to: send}\n";
        let e = engine(&[("w.yaml", wf)], 1).await;
        let o = e.run(&request(&e, "w", "").await).await;
        assert_eq!(
            o.failure,
            Some(RunFailure::Budget(
                "node `send` visited more than 3 times".into()
            ))
        );
        assert_eq!(o.run.status, "compensated");
        assert_eq!(o.run.compensation.len(), 3);
        let outbox = e
            .store
            .outbox(&TenantId::parse("acme").unwrap())
            .await
            .unwrap();
        assert_eq!(outbox.len(), 3);
        // No dispatcher runs here, so no message was delivered: each is cancelled, not retracted.
        assert!(outbox
            .iter()
            .all(|m| m.status == crate::store::model::DeliveryStatus::Cancelled));
    }

    #[tokio::test]
    async fn a_loop_that_changes_nothing_is_cut_for_no_progress() {
        let wf = "id: w\nversion: '1'\nnodes:\n  - {id: start, type: start}\n  - {id: a, type: condition, max_visits: 100}\n  - {id: b, type: condition}\n  - {id: end, type: end}\nedges:\n  - {from: start, to: a}\n  - {from: a, to: end, when: missing}\n  - {from: a, to: b}\n  - {from: b, to: a}\n";
        let e = engine(&[("w.yaml", wf)], 1).await;
        let o = e.run(&request(&e, "w", "").await).await;
        match o.failure {
            Some(RunFailure::Budget(m)) => assert!(m.starts_with("no progress: node `a`"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(o.run.status, "failed");
    }

    #[tokio::test]
    async fn the_step_budget_ends_a_long_run() {
        let wf = "id: w\nversion: '1'\nlimits: {max_steps: 3}\nnodes:\n  - {id: start, type: start}\n  - {id: a, type: condition}\n  - {id: b, type: condition}\n  - {id: c, type: condition}\n  - {id: end, type: end}\nedges:\n  - {from: start, to: a}\n  - {from: a, to: b}\n  - {from: b, to: c}\n  - {from: c, to: end}\n";
        let e = engine(&[("w.yaml", wf)], 1).await;
        let o = e.run(&request(&e, "w", "").await).await;
        assert_eq!(
            o.failure,
            Some(RunFailure::Budget("more than 3 steps".into()))
        );
    }

    #[tokio::test]
    async fn the_cost_budget_ends_a_run_that_would_spend_more() {
        let wf = "id: w\nversion: '1'\nlimits: {max_cost_usd: 0.000001}\nnodes:\n  - {id: start, type: start}\n  - {id: answer, type: agent, task: general, tier: LLM, output: a}\n  - {id: end, type: end}\nedges:\n  - {from: start, to: answer}\n  - {from: answer, to: end}\n";
        let e = engine(&[("w.yaml", wf)], 1).await;
        let o = e.run(&request(&e, "w", "hello").await).await;
        match o.failure {
            Some(RunFailure::Budget(m)) => assert!(m.starts_with("cost $"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(o.run.cost_usd > 0.000001);
    }

    #[tokio::test]
    async fn model_tool_calls_run_only_the_offered_tools() {
        let wf = "id: w\nversion: '1'\nnodes:\n  - {id: start, type: start}\n  - {id: plan, type: agent, task: use_tools, tools: [order.lookup], output: calls}\n  - {id: end, type: end, result: {calls: '{{calls.calls}}'}}\nedges:\n  - {from: start, to: plan}\n  - {from: plan, to: end}\n";
        let e = engine(&[("w.yaml", wf)], 1).await;
        let o = e
            .run(
                &request(
                    &e,
                    "w",
                    "Where is ORD-1001? Also run crm.create_lead for me",
                )
                .await,
            )
            .await;
        assert_eq!(o.failure, None, "{:?}", o.run.errors);
        let calls = o.output["calls"].as_array().unwrap();
        assert_eq!(calls[0]["name"], "order.lookup");
        assert_eq!(calls[0]["result"]["status"], "shipped");
        assert_eq!(
            calls[1],
            json!({"name": "crm.create_lead", "refused": true})
        );
        let refused = o.run.steps.iter().find(|s| s.step_id == "plan#1").unwrap();
        assert_eq!(
            (refused.status.as_str(), refused.tool.as_deref()),
            ("refused", Some("crm.create_lead"))
        );
        // Refused means never called: no write-ahead event, no lead.
        let called: Vec<_> = o
            .run
            .events
            .iter()
            .filter(|e| *e == "tool.call.requested")
            .collect();
        assert_eq!(called.len(), 1);
        assert!(e
            .store
            .leads_by_email(&TenantId::parse("acme").unwrap(), "")
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn the_same_seed_gives_the_same_run() {
        let mut runs = vec![];
        for _ in 0..2 {
            let e = engine(&[], 7).await;
            let o = e
                .run(&request(&e, "customer_support", "What is your return policy?").await)
                .await;
            runs.push((
                o.run.run_id,
                serde_json::to_string(&o.run.steps).unwrap(),
                o.output.clone(),
            ));
        }
        assert_eq!(runs[0], runs[1]);
        let e = engine(&[], 8).await;
        let other = e
            .run(&request(&e, "customer_support", "What is your return policy?").await)
            .await;
        assert_ne!(other.run.run_id, runs[0].0);
    }
}

/// The saga's exactly-once property over random failures.
#[cfg(test)]
mod saga_properties {
    use super::tests::{engine, request};
    use crate::domain::TenantId;
    use crate::tools::{Fault, FaultPoint};
    use proptest::prelude::*;

    /// The order saga's steps with an effect, in order, and the step that fails when one does.
    const STEPS: [(&str, &str); 6] = [
        ("price", "inventory.price"),
        ("reserve_inventory", "inventory.reserve"),
        ("authorize_payment", "payment.authorize"),
        ("create_order", "order.create"),
        ("capture_payment", "payment.capture"),
        ("send_confirmation", "email.send"),
    ];

    fn config() -> proptest::test_runner::Config {
        crate::proptest_seed::config("saga properties", 48, "saga_properties")
    }

    proptest! {
        #![proptest_config(config())]

        /// For any failing step (or none) and any number of failures of each compensation: every
        /// effect ends committed once or compensated once, and the run's status says which. A
        /// compensation that cannot succeed leaves its effect in place, and only then is the run
        /// `compensation_failed`.
        #[test]
        fn each_effect_ends_committed_once_or_compensated_once(
            fail_at in proptest::option::of(0usize..6),
            comp_failures in proptest::collection::vec(0u32..6, 6),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let Ok(rt) = rt else { return Err(TestCaseError::fail("no runtime")) };
            let acme = TenantId::parse("acme").map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (o, stock, payment, order, outbox) = rt.block_on(async {
                let e = engine(&[], 3).await;
                if let Some(i) = fail_at {
                    e.tools.set_fault(None, STEPS[i].1, FaultPoint::Call, Some(Fault::Fail { times: None, status: 400, retry_after_ms: None }));
                }
                for (i, (_, tool)) in STEPS.iter().enumerate() {
                    if comp_failures[i] > 0 {
                        e.tools.set_fault(None, tool, FaultPoint::Compensate, Some(Fault::transient(Some(comp_failures[i]))));
                    }
                }
                let mut req = request(&e, "create_order", "").await;
                req.input = serde_json::json!({"items": [{"sku": "SKU-GADGET", "quantity": 2}],
                    "payment": {"method": "card", "card_token": "tok_visa"}});
                let o = e.run(&req).await;
                let stock = e.store.product(&acme, "SKU-GADGET").await.ok().flatten().map(|p| p.stock);
                // Summaries are cut at 200 characters: the ids come first, so read them as text.
                let id_in = |step: &str, key: &str| -> Option<String> {
                    let text = o.run.steps.iter().find(|s| s.step_id == step && s.status == "completed")?.output_summary.clone()?;
                    let rest = &text[text.find(&format!("\"{key}\":\""))? + key.len() + 4..];
                    Some(rest[..rest.find('"')?].to_string())
                };
                let pay_id = id_in("authorize_payment", "payment_id");
                let payment = match pay_id {
                    Some(id) => e.store.payment(&acme, &id).await.ok().flatten().map(|p| p.status),
                    None => None,
                };
                let order_id = id_in("create_order", "order_id");
                let order = match order_id {
                    Some(id) => e.store.order(&acme, &id).await.ok().flatten().map(|o| o.status),
                    None => None,
                };
                let outbox: Vec<String> = e.store.outbox(&acme).await.unwrap_or_default().into_iter().map(|m| m.status.as_str().to_string()).collect();
                (o, stock, payment, order, outbox)
            });
            let done = |step: &str| o.run.steps.iter().any(|s| s.step_id == step && s.status == "completed");
            let undone = |step: &str| o.run.compensation.iter().any(|s| s.step_id == format!("compensate:{step}") && s.status == "completed");
            // Each compensation ran at most once per effect.
            for (step, _) in STEPS {
                let n = o.run.compensation.iter().filter(|s| s.step_id == format!("compensate:{step}")).count();
                prop_assert!(n <= 1, "{step} compensated {n} times");
                prop_assert!(n == 0 || done(step), "{step} compensated without having run");
            }
            // Stock: taken once, and given back once when the reservation was undone.
            let reserved = done("reserve_inventory") && !undone("reserve_inventory");
            prop_assert_eq!(stock, Some(if reserved { 18 } else { 20 }));
            // Payment: authorized or captured while it stands; voided or refunded once undone.
            if done("authorize_payment") {
                // A captured payment is undone by the capture's refund (voiding it is then a no-op).
                let want: &[&str] = if done("capture_payment") {
                    if undone("capture_payment") { &["refunded"] } else { &["captured"] }
                } else if undone("authorize_payment") { &["voided"] } else { &["authorized"] };
                prop_assert!(payment.as_deref().is_some_and(|p| want.contains(&p)), "payment {payment:?}, expected one of {want:?}; run {}", o.run.status);
            }
            if done("create_order") {
                let cancelled = undone("create_order");
                prop_assert_eq!(order.as_deref() == Some("cancelled"), cancelled, "order {:?}", order);
            }
            let sent = done("send_confirmation");
            prop_assert_eq!(outbox.len(), usize::from(sent));
            match o.run.status.as_str() {
                "completed" => {
                    prop_assert!(fail_at.is_none());
                    prop_assert!(o.run.compensation.is_empty());
                }
                "compensated" => {
                    prop_assert!(o.run.compensation.iter().all(|s| s.status == "completed"));
                    for (step, _) in STEPS {
                        let compensable = !matches!(step, "price");
                        if done(step) && compensable && step != "send_confirmation" {
                            prop_assert!(undone(step), "{step} done and not undone in a compensated run");
                        }
                    }
                }
                "compensation_failed" => {
                    prop_assert!(o.run.compensation.iter().any(|s| s.status == "failed"));
                    prop_assert!(o.run.errors.iter().any(|e| e.contains("manual intervention required")));
                }
                "failed" => prop_assert!(o.run.compensation.is_empty()),
                other => prop_assert!(false, "unexpected status {other}"),
            }
        }
    }
}
