//! Fault hooks of test deployments: a tool, a model tier (`model:SLM_A`) or the database
//! (`database`) can be made to fail (with a status, N times or always), answer late, hang, lose
//! its answer or fail until a time. Nothing in the configuration sets one: the operator surface
//! (only with `fault_injection: true`, refused in production) and in-process tests call
//! [`Faults::set`]. Tools and model tiers take faults per tenant, so specs sharing a deployment do
//! not see each other's; the database takes deployment-wide ones.

use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// A fault to inject, for tests of timeouts, retries, breakers and sagas.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Fail the next `times` calls (every call when `None`) with `status`: 5xx, 408 and 429 are
    /// passing and retried (after `retry_after_ms` when set), any other status is permanent.
    Fail {
        times: Option<u32>,
        status: u16,
        retry_after_ms: Option<u64>,
    },
    /// Sleep this long before each call.
    Delay(Duration),
    /// Never answer: only the call's timeout ends it.
    Hang,
    /// Do the call, then never answer: the effect happened and its answer was lost (the case
    /// idempotency keys exist for).
    LoseAnswer,
    /// Fail with 503 until the platform clock reaches this time, then succeed.
    FailUntil(DateTime<Utc>),
}

impl Fault {
    /// The passing failure of the old wire names: `always_fail`, `fail_times`.
    pub fn transient(times: Option<u32>) -> Self {
        Fault::Fail {
            times,
            status: 503,
            retry_after_ms: None,
        }
    }
}

/// Where a fault applies: the call itself or its compensation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    Call,
    Compensate,
}

type FaultKey = (Option<String>, String, FaultPoint);

/// What an injected failure looks like to the caller: the status an upstream would answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (status {status})")]
pub struct Injected {
    pub status: u16,
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

/// The faults set on one deployment, keyed by (tenant or `None` for every tenant, target, point).
#[derive(Default)]
pub struct Faults(Mutex<HashMap<FaultKey, Fault>>);

impl Faults {
    /// Sets (or with `None` clears) the fault of `target` at `point`, for one tenant or all.
    pub fn set(
        &self,
        tenant: Option<&TenantId>,
        target: &str,
        point: FaultPoint,
        fault: Option<Fault>,
    ) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (tenant.map(|t| t.to_string()), target.to_string(), point);
        match fault {
            Some(f) => g.insert(key, f),
            None => g.remove(&key),
        };
    }

    /// The fault that applies to `tenant` (its own, else every tenant's), without using it up.
    pub fn get(&self, tenant: Option<&TenantId>, target: &str, point: FaultPoint) -> Option<Fault> {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        tenant
            .and_then(|t| g.get(&(Some(t.to_string()), target.to_string(), point)))
            .or_else(|| g.get(&(None, target.to_string(), point)))
            .cloned()
    }

    /// Applies the fault of `target` for `tenant` (its own, else every tenant's), if any: fails,
    /// sleeps or hangs as it says. `now` is the platform's clock (for `FailUntil`).
    pub async fn apply(
        &self,
        tenant: Option<&TenantId>,
        now: DateTime<Utc>,
        target: &str,
        point: FaultPoint,
    ) -> Result<(), Injected> {
        let fault = {
            let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let own = tenant.map(|t| (Some(t.to_string()), target.to_string(), point));
            let key = match own {
                Some(k) if g.contains_key(&k) => k,
                _ => (None, target.to_string(), point),
            };
            match g.get_mut(&key) {
                Some(Fault::Fail { times: Some(0), .. }) => {
                    g.remove(&key);
                    None
                }
                Some(Fault::Fail {
                    times: Some(n),
                    status,
                    retry_after_ms,
                }) => {
                    *n -= 1;
                    Some(Fault::Fail {
                        times: None,
                        status: *status,
                        retry_after_ms: *retry_after_ms,
                    })
                }
                Some(Fault::FailUntil(until)) if now >= *until => {
                    g.remove(&key);
                    None
                }
                other => other.cloned(),
            }
        };
        let injected = |status: u16, retry_after_ms: Option<u64>| Injected {
            status,
            message: format!("injected fault in {target} ({point:?})"),
            retry_after_ms,
        };
        match fault {
            Some(Fault::Fail {
                status,
                retry_after_ms,
                ..
            }) => Err(injected(status, retry_after_ms)),
            Some(Fault::FailUntil(_)) => Err(injected(503, None)),
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Some(Fault::Hang) => std::future::pending().await,
            Some(Fault::LoseAnswer) | None => Ok(()),
        }
    }
}
