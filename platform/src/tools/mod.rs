//! Tools: what a workflow can do to the world. Each tool has a [`Manifest`] (name, parameters,
//! timeout, retries, and how to compensate it), and the [`Registry`] is the only way to call one: it
//! validates parameters against the manifest (extras rejected), runs a side effect at most once per
//! idempotency key, calls through the tool's upstream of the resilience layer (bulkhead, breaker,
//! retry, timeout), and compensates through a separate upstream with the manifest's own timeout
//! and retries.

pub mod builtin;
pub mod fetch;

use crate::clock::{Clock, Ids};
use crate::config::Config;
use crate::domain::{Role, TenantId};
use crate::resilience::idempotency::{fingerprint, Idempotency, IdempotencyError, Served};
use crate::resilience::{retryable_status, CallError, Kind, Resilience, Retryable};
use crate::store::{Store, StoreError};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The JSON type a parameter must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
}

impl ParamKind {
    fn accepts(self, v: &Value) -> bool {
        match self {
            ParamKind::String => v.is_string(),
            ParamKind::Integer => v.is_i64() || v.is_u64(),
            ParamKind::Number => v.is_number(),
            ParamKind::Boolean => v.is_boolean(),
            ParamKind::Array => v.is_array(),
            ParamKind::Object => v.is_object(),
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, Serialize)]
pub struct Param {
    pub name: &'static str,
    pub kind: ParamKind,
    pub required: bool,
}

/// Timeout and retries of a compensation (DESIGN.md's saga table).
#[derive(Debug, Clone, Serialize)]
pub struct Compensation {
    pub action: &'static str,
    pub timeout_ms: u64,
    pub retries: u32,
}

/// What a tool is and how it must be called.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub name: &'static str,
    pub description: &'static str,
    pub params: Vec<Param>,
    pub timeout_ms: u64,
    pub retries: u32,
    /// Whether the tool changes state (and so is written ahead as `tool.call.requested`).
    pub side_effect: bool,
    pub compensation: Option<Compensation>,
}

impl Manifest {
    /// Checks `params` against the declaration: an object, required names present, types right,
    /// nothing undeclared (null optional values count as absent).
    pub fn validate(&self, params: &Value) -> Result<(), ToolError> {
        let obj = params
            .as_object()
            .ok_or_else(|| ToolError::InvalidParams("parameters must be an object".into()))?;
        for k in obj.keys() {
            if !self.params.iter().any(|p| p.name == k) {
                return Err(ToolError::InvalidParams(format!("unknown parameter `{k}`")));
            }
        }
        for p in &self.params {
            match obj.get(p.name) {
                None | Some(Value::Null) if p.required => {
                    return Err(ToolError::InvalidParams(format!(
                        "missing parameter `{}`",
                        p.name
                    )))
                }
                Some(v) if !v.is_null() && !p.kind.accepts(v) => {
                    return Err(ToolError::InvalidParams(format!(
                        "parameter `{}` must be {:?}",
                        p.name, p.kind
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A fingerprint of everything callers depend on (parameters, timeout, retries, side effect,
    /// compensation): the tool's version in `GET /api/v1/versions`, changing when the manifest does.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = format!(
            "{}|{}|{}|{}|{}|{:?}",
            self.name,
            self.json_schema(),
            self.timeout_ms,
            self.retries,
            self.side_effect,
            self.compensation
        );
        hex::encode(Sha256::digest(text.as_bytes()))[..12].to_string()
    }

    /// The parameters as a JSON schema, for documentation and model tool-calling.
    pub fn json_schema(&self) -> Value {
        let props: serde_json::Map<String, Value> = self
            .params
            .iter()
            .map(|p| (p.name.to_string(), serde_json::json!({"type": p.kind})))
            .collect();
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name)
            .collect();
        serde_json::json!({"type": "object", "properties": props, "required": required,
            "additionalProperties": false})
    }
}

/// Why a tool call failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ToolError {
    #[error("unknown tool `{0}`")]
    Unknown(String),
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// A business refusal (declined card, unknown SKU, no stock). Not retried.
    #[error("{code}: {message}")]
    Rejected { code: String, message: String },
    /// A passing failure (connection lost, backend unavailable). Retried.
    #[error("transient failure: {0}")]
    Transient(String),
    /// The upstream answered with an HTTP status: retried when it is 408, 429 or 5xx, after
    /// `retry_after_ms` when the upstream asked for it.
    #[error("{message} (status {status})")]
    Upstream {
        status: u16,
        message: String,
        retry_after_ms: Option<u64>,
    },
    #[error("timed out")]
    Timeout,
    /// The tool's circuit breaker is open: the tool was not called.
    #[error("circuit open for {0}: not called")]
    CircuitOpen(String),
    /// The tool's bulkhead stayed full: the tool was not called.
    #[error("too many calls of {0} in flight: not called")]
    BulkheadFull(String),
    /// Another call with the same idempotency key is still running, or the key was reused with
    /// other parameters.
    #[error("idempotency: {0}")]
    Idempotency(String),
    #[error("tool `{0}` is not allowed for this tenant")]
    NotAllowed(String),
    #[error("`{0}` has no compensation")]
    NoCompensation(String),
}

impl Retryable for ToolError {
    fn retryable(&self) -> bool {
        match self {
            ToolError::Transient(_) | ToolError::Timeout => true,
            ToolError::Upstream { status, .. } => retryable_status(*status),
            _ => false,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ToolError::Upstream {
                retry_after_ms: Some(ms),
                ..
            } => Some(Duration::from_millis(*ms)),
            _ => None,
        }
    }
}

impl From<CallError<ToolError>> for ToolError {
    fn from(e: CallError<ToolError>) -> Self {
        match e {
            CallError::Timeout { .. } => ToolError::Timeout,
            CallError::Failed { error, .. } => error,
            CallError::CircuitOpen { upstream } => ToolError::CircuitOpen(upstream),
            CallError::BulkheadFull { upstream } => ToolError::BulkheadFull(upstream),
        }
    }
}

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InsufficientStock { .. } => ToolError::Rejected {
                code: "insufficient_stock".into(),
                message: e.to_string(),
            },
            StoreError::NotFound(what) => ToolError::Rejected {
                code: "not_found".into(),
                message: format!("{what} not found"),
            },
            StoreError::Conflict(m) => ToolError::Rejected {
                code: "conflict".into(),
                message: m,
            },
            StoreError::Unavailable(m) => ToolError::Transient(m),
            StoreError::TenantContext(m) => ToolError::Rejected {
                code: "tenant_context".into(),
                message: m,
            },
        }
    }
}

/// Everything a tool may use for one call: the caller, the run, and the platform's ports.
#[derive(Clone)]
pub struct ToolCtx {
    pub tenant: TenantId,
    pub user_id: String,
    pub role: Role,
    pub run_id: Uuid,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<Ids>,
    pub cfg: Arc<Config>,
    /// The call's idempotency key (derived by the executor from the run, the step and the
    /// parameters). A side-effecting call runs at most once per key; tools hand it to their
    /// upstream and derive the ids they create from it, so a repeated effect names the same thing.
    pub idempotency_key: Option<String>,
    /// Set by a worker resuming an interrupted saga: a pending claim on the key is the dead
    /// worker's own and is taken over instead of waited for.
    pub resuming: bool,
}

impl ToolCtx {
    /// An id for something this call creates (`PAY-`, `TCK-`, ...): derived from the idempotency
    /// key when there is one, so the same call names the same thing however often it runs;
    /// otherwise drawn from the id stream.
    pub fn new_id(&self, prefix: &str, tool: &str) -> String {
        match &self.idempotency_key {
            Some(k) => {
                use sha2::{Digest, Sha256};
                let h = Sha256::digest(format!("{}:{tool}:{k}", self.cfg.seed).as_bytes());
                format!("{prefix}-{}", &hex::encode(h)[..12])
            }
            None => format!("{prefix}-{}", self.ids.token_hex(6)),
        }
    }
}

/// A callable tool. `compensate` undoes a successful `call`, given its parameters and output.
#[async_trait::async_trait]
pub trait Tool: Send + Sync + 'static {
    fn manifest(&self) -> &Manifest;
    async fn call(&self, ctx: &ToolCtx, params: &Value) -> Result<Value, ToolError>;
    async fn compensate(
        &self,
        _ctx: &ToolCtx,
        _params: &Value,
        _output: &Value,
    ) -> Result<Value, ToolError> {
        Err(ToolError::NoCompensation(self.manifest().name.to_string()))
    }
}

pub use crate::faults::{Fault, FaultPoint, Faults};

/// Every tool, by name, with the resilience layer, idempotency and injected faults around them.
pub struct Registry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
    /// Injected faults (test deployments), shared with the model and database upstreams.
    faults: Arc<Faults>,
    resilience: Arc<Resilience>,
    /// Where side effects record their keys; `None` runs them without (manifest-only uses).
    idempotency: Option<Idempotency>,
    metrics: Arc<crate::telemetry::Metrics>,
}

impl Registry {
    /// The built-in business tools behind `resilience`, their effects recorded in `idempotency`.
    pub fn builtin(
        resilience: Arc<Resilience>,
        idempotency: Option<Idempotency>,
        metrics: Arc<crate::telemetry::Metrics>,
        faults: Arc<Faults>,
    ) -> Self {
        let mut r = Self {
            tools: BTreeMap::new(),
            faults,
            resilience,
            idempotency,
            metrics,
        };
        for t in builtin::all() {
            r.register(t);
        }
        r
    }

    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.manifest().name.to_string(), tool);
    }

    pub fn manifest(&self, name: &str) -> Option<&Manifest> {
        self.tools.get(name).map(|t| t.manifest())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    /// Only the manifests, for validating workflows and tests that never call a tool.
    pub fn manifests_only() -> Self {
        let metrics = Arc::new(crate::telemetry::Metrics::default());
        let resilience = Resilience::new(
            Default::default(),
            0,
            Arc::new(crate::clock::SystemClock),
            metrics.clone(),
        );
        Self::builtin(Arc::new(resilience), None, metrics, Default::default())
    }

    /// The injected faults of this deployment (tools, model tiers, the database).
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Sets (or with `None` clears) a fault of one tenant (the operator surface, so that specs
    /// running in parallel against one deployment do not see each other's faults) or of every
    /// tenant (`tenant` `None`, in-process tests).
    pub fn set_fault(
        &self,
        tenant: Option<&TenantId>,
        tool: &str,
        point: FaultPoint,
        fault: Option<Fault>,
    ) {
        self.faults.set(tenant, tool, point, fault);
    }

    async fn apply_fault(
        &self,
        ctx: &ToolCtx,
        tool: &str,
        point: FaultPoint,
    ) -> Result<(), ToolError> {
        self.faults
            .apply(Some(&ctx.tenant), ctx.clock.now(), tool, point)
            .await
            .map_err(|i| ToolError::Upstream {
                status: i.status,
                message: i.message,
                retry_after_ms: i.retry_after_ms,
            })
    }

    fn tool(&self, name: &str) -> Result<&Arc<dyn Tool>, ToolError> {
        self.tools
            .get(name)
            .ok_or_else(|| ToolError::Unknown(name.to_string()))
    }

    /// Calls a tool: parameter validation; then, for a side effect with an idempotency key, at
    /// most one execution per key (a repeated call gets the recorded output); then the tool's
    /// upstream: bulkhead, breaker, retries, timeout. Returns the output, the attempts made (0
    /// when the output was replayed) and how it was served.
    pub async fn call(
        &self,
        name: &str,
        ctx: &ToolCtx,
        params: &Value,
    ) -> Result<(Value, u32, Served), ToolError> {
        let tool = self.tool(name)?;
        let m = tool.manifest();
        m.validate(params)?;
        let upstream = self.resilience.upstream(
            &format!("tool:{name}"),
            Kind::Tool,
            Some((m.timeout_ms, m.retries)),
        );
        let key = format!(
            "{}:{name}",
            ctx.idempotency_key
                .as_deref()
                .unwrap_or(&ctx.run_id.to_string())
        );
        let run = || async {
            upstream
                .call(&key, |_| async {
                    self.apply_fault(ctx, name, FaultPoint::Call).await?;
                    let out = tool.call(ctx, params).await;
                    if self.faults.get(Some(&ctx.tenant), name, FaultPoint::Call)
                        == Some(Fault::LoseAnswer)
                    {
                        std::future::pending::<()>().await;
                    }
                    out
                })
                .await
                .map_err(ToolError::from)
        };
        match (&self.idempotency, &ctx.idempotency_key) {
            (Some(idem), Some(k)) if m.side_effect => {
                let s = &upstream.settings;
                // A claim outlives every attempt of the call and the waits between them.
                let lease = Duration::from_millis(
                    s.timeout_ms
                        .saturating_add(self.resilience.retry_cap_ms())
                        .saturating_mul(u64::from(s.max_retries) + 1),
                );
                let kv_key = format!("idem:{}:tool:{k}", ctx.tenant);
                let print = fingerprint(&[&Value::from(name), params]);
                let r = idem
                    .once(&kv_key, &print, lease, ctx.resuming, || async {
                        run().await
                    })
                    .await;
                match r {
                    Ok(((v, attempts), Served::Fresh)) => Ok((v, attempts, Served::Fresh)),
                    Ok(((v, _), Served::Replayed)) => {
                        self.metrics
                            .idempotency_hits
                            .get_or_create(&crate::telemetry::ScopeLabels {
                                scope: "tool".into(),
                            })
                            .inc();
                        Ok((v, 0, Served::Replayed))
                    }
                    Err(IdempotencyError::Work(e)) => Err(e),
                    Err(e) => Err(ToolError::Idempotency(e.to_string())),
                }
            }
            _ => run().await.map(|(v, a)| (v, a, Served::Fresh)),
        }
    }

    /// Compensates a successful call through its own upstream (`compensate:<tool>`), with the
    /// manifest's compensation timeout and retries. Returns the output and the attempts made.
    pub async fn compensate(
        &self,
        name: &str,
        ctx: &ToolCtx,
        params: &Value,
        output: &Value,
    ) -> Result<(Value, u32), ToolError> {
        let tool = self.tool(name)?;
        let c = tool
            .manifest()
            .compensation
            .clone()
            .ok_or_else(|| ToolError::NoCompensation(name.to_string()))?;
        let upstream = self.resilience.upstream(
            &format!("compensate:{name}"),
            Kind::Compensation,
            Some((c.timeout_ms, c.retries)),
        );
        let key = format!("{}:{name}:compensate", ctx.run_id);
        upstream
            .call(&key, |_| async {
                self.apply_fault(ctx, name, FaultPoint::Compensate).await?;
                tool.compensate(ctx, params, output).await
            })
            .await
            .map_err(ToolError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            name: "t",
            description: "",
            params: vec![
                Param {
                    name: "a",
                    kind: ParamKind::String,
                    required: true,
                },
                Param {
                    name: "n",
                    kind: ParamKind::Integer,
                    required: false,
                },
            ],
            timeout_ms: 10,
            retries: 0,
            side_effect: false,
            compensation: None,
        }
    }

    #[test]
    fn parameters_are_validated_against_the_manifest() {
        let m = manifest();
        assert!(m.validate(&serde_json::json!({"a": "x"})).is_ok());
        assert!(m
            .validate(&serde_json::json!({"a": "x", "n": null}))
            .is_ok());
        let e = |v| m.validate(&v).unwrap_err().to_string();
        assert!(e(serde_json::json!({})).contains("missing parameter `a`"));
        assert!(e(serde_json::json!({"a": 1})).contains("`a` must be String"));
        assert!(e(serde_json::json!({"a": "x", "evil": 1})).contains("unknown parameter `evil`"));
        assert!(e(serde_json::json!([1])).contains("must be an object"));
        assert_eq!(m.json_schema()["additionalProperties"], false);
    }
}
