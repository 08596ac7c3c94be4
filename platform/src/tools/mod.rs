//! Tools: what a workflow can do to the world. Each tool has a [`Manifest`] (name, parameters,
//! timeout, retries, and how to compensate it), and the [`Registry`] is the only way to call one: it
//! validates parameters against the manifest (extras rejected), applies the resilience policy, and
//! compensates with the manifest's own timeout and retries.

pub mod builtin;

use crate::clock::{Clock, Ids};
use crate::config::Config;
use crate::domain::{Role, TenantId};
use crate::resilience::{Policy, PolicyError, Retryable};
use crate::store::{Store, StoreError};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
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

    /// The parameters as a JSON schema, for documentation and model tool-calling.
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
    /// A passing failure (injected fault, unavailable backend). Retried.
    #[error("transient failure: {0}")]
    Transient(String),
    #[error("timed out")]
    Timeout,
    #[error("tool `{0}` is not allowed for this tenant")]
    NotAllowed(String),
    #[error("`{0}` has no compensation")]
    NoCompensation(String),
}

impl Retryable for ToolError {
    fn retryable(&self) -> bool {
        matches!(self, ToolError::Transient(_) | ToolError::Timeout)
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

/// A fault to inject into a tool, for tests of retries and sagas. Embedded deployments only: the
/// registry has no configuration path that sets one, only [`Registry::inject_fault`].
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Fail the next `n` calls with a transient error.
    FailTimes(u32),
    /// Fail every call with a transient error.
    AlwaysFail,
    /// Sleep this long before each call.
    Delay(Duration),
}

/// Where a fault applies: the call itself or its compensation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    Call,
    Compensate,
}

type FaultKey = (Option<String>, String, FaultPoint);

/// Every tool, by name, with the policies and injected faults that wrap them.
pub struct Registry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
    /// Keyed by (tenant or `None` for every tenant, tool, point).
    faults: Mutex<HashMap<FaultKey, Fault>>,
    retry_base: Duration,
    retry_cap: Duration,
    seed: u64,
}

impl Registry {
    /// The built-in business tools, with backoff from `cfg`.
    pub fn builtin(cfg: &Config) -> Self {
        let mut r = Self {
            tools: BTreeMap::new(),
            faults: Mutex::new(HashMap::new()),
            retry_base: Duration::from_millis(cfg.retry_base_ms),
            retry_cap: Duration::from_millis(cfg.retry_cap_ms),
            seed: cfg.seed,
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

    /// Injects a fault for every tenant (in-process tests).
    pub fn inject_fault(&self, tool: &str, point: FaultPoint, fault: Fault) {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((None, tool.to_string(), point), fault);
    }

    /// Sets (or with `None` clears) a fault for one tenant only (the operator surface), so that
    /// specs running in parallel against one deployment do not see each other's faults.
    pub fn set_tenant_fault(
        &self,
        tenant: &TenantId,
        tool: &str,
        point: FaultPoint,
        fault: Option<Fault>,
    ) {
        let mut g = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let key = (Some(tenant.to_string()), tool.to_string(), point);
        match fault {
            Some(f) => g.insert(key, f),
            None => g.remove(&key),
        };
    }

    pub fn clear_faults(&self) {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    async fn apply_fault(
        &self,
        tenant: &TenantId,
        tool: &str,
        point: FaultPoint,
    ) -> Result<(), ToolError> {
        let fault = {
            let mut g = self.faults.lock().unwrap_or_else(|e| e.into_inner());
            let own = (Some(tenant.to_string()), tool.to_string(), point);
            let key = if g.contains_key(&own) {
                own
            } else {
                (None, tool.to_string(), point)
            };
            match g.get_mut(&key) {
                Some(Fault::FailTimes(0)) => {
                    g.remove(&key);
                    None
                }
                Some(Fault::FailTimes(n)) => {
                    *n -= 1;
                    Some(Fault::AlwaysFail)
                }
                other => other.cloned(),
            }
        };
        match fault {
            Some(Fault::AlwaysFail) | Some(Fault::FailTimes(_)) => Err(ToolError::Transient(
                format!("injected fault in {tool} ({point:?})"),
            )),
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn policy(&self, timeout_ms: u64, retries: u32) -> Policy {
        Policy {
            timeout: Duration::from_millis(timeout_ms),
            max_retries: retries,
            base: self.retry_base,
            cap: self.retry_cap,
            jitter: 0.1,
        }
    }

    fn tool(&self, name: &str) -> Result<&Arc<dyn Tool>, ToolError> {
        self.tools
            .get(name)
            .ok_or_else(|| ToolError::Unknown(name.to_string()))
    }

    /// Calls a tool: parameter validation, then the manifest's timeout and retries.
    /// Returns the output and the number of attempts.
    pub async fn call(
        &self,
        name: &str,
        ctx: &ToolCtx,
        params: &Value,
    ) -> Result<(Value, u32), ToolError> {
        let tool = self.tool(name)?;
        let m = tool.manifest();
        m.validate(params)?;
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let key = format!("{}:{name}", ctx.run_id);
        let r = self
            .policy(m.timeout_ms, m.retries)
            .run(self.seed, &key, |_| async {
                attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.apply_fault(&ctx.tenant, name, FaultPoint::Call)
                    .await?;
                tool.call(ctx, params).await
            })
            .await;
        flatten(r).map(|v| (v, attempts.into_inner()))
    }

    /// Compensates a successful call with the manifest's compensation timeout and retries.
    pub async fn compensate(
        &self,
        name: &str,
        ctx: &ToolCtx,
        params: &Value,
        output: &Value,
    ) -> Result<Value, ToolError> {
        let tool = self.tool(name)?;
        let c = tool
            .manifest()
            .compensation
            .clone()
            .ok_or_else(|| ToolError::NoCompensation(name.to_string()))?;
        let key = format!("{}:{name}:compensate", ctx.run_id);
        let r = self
            .policy(c.timeout_ms, c.retries)
            .run(self.seed, &key, |_| async {
                self.apply_fault(&ctx.tenant, name, FaultPoint::Compensate)
                    .await?;
                tool.compensate(ctx, params, output).await
            })
            .await;
        flatten(r)
    }
}

fn flatten<T>(r: Result<T, PolicyError<ToolError>>) -> Result<T, ToolError> {
    match r {
        Ok(v) => Ok(v),
        Err(PolicyError::Timeout { .. }) => Err(ToolError::Timeout),
        Err(PolicyError::Failed { error, .. }) => Err(error),
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
