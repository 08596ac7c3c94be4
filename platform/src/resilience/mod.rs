//! The resilience layer: every call the platform makes to something that can fail or hang (the
//! database, the model, each tool and each compensation) goes through one [`Upstream`], which
//! composes, from the outside in:
//!
//! 1. the **bulkhead** ([`bulkhead`]): at most `max_concurrent` calls at once, waiting up to
//!    `max_wait_ms` for a slot (0 rejects at once);
//! 2. the **circuit breaker** ([`breaker`]): open after `failure_threshold` consecutive failed calls,
//!    rejecting without calling for `open_ms`, then half-open for `half_open_calls` trials;
//! 3. the **retry** policy ([`retry`]): `max_retries` extra attempts with capped, jittered backoff,
//!    only for passing errors, `Retry-After` honoured;
//! 4. the **timeout** of each attempt.
//!
//! So one logical call counts once for the breaker however many attempts it took, and a rejected
//! call never reaches the upstream. Only passing failures (timeouts, 408/429/5xx, connection
//! errors) count against the breaker: a declined card says the upstream is healthy.
//! [`idempotency`] is the one mechanism behind `Idempotency-Key` and the tools' derived keys.
//!
//! Upstreams are configured by preset (`database`, `model`, `tool`, `compensation`) with overrides
//! per upstream name (`resilience.upstreams."tool:payment.capture"`); a tool's manifest gives its
//! timeout and retries unless an override says otherwise.

pub mod breaker;
pub mod bulkhead;
pub mod idempotency;
pub mod retry;

pub use retry::{retryable_status, Policy, PolicyError, Retryable};

use crate::clock::Clock;
use crate::telemetry::{Metrics, TransitionLabels, UpstreamLabels};
use breaker::{Breaker, BreakerConfig, Transition};
use bulkhead::Bulkhead;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every setting of one upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Timeout of one attempt.
    pub timeout_ms: u64,
    /// Extra attempts after the first.
    pub max_retries: u32,
    pub max_concurrent: u32,
    /// How long a call waits for a bulkhead slot; 0 rejects at once.
    pub max_wait_ms: u64,
    pub failure_threshold: u32,
    /// How long an open breaker rejects before it half-opens.
    pub open_ms: u64,
    pub half_open_calls: u32,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            max_retries: 2,
            max_concurrent: 10,
            max_wait_ms: 5_000,
            failure_threshold: 5,
            open_ms: 60_000,
            half_open_calls: 3,
        }
    }
}

/// Overrides of one named upstream; absent fields keep the preset's (or the manifest's) value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamOverride {
    pub timeout_ms: Option<u64>,
    pub max_retries: Option<u32>,
    pub max_concurrent: Option<u32>,
    pub max_wait_ms: Option<u64>,
    pub failure_threshold: Option<u32>,
    pub open_ms: Option<u64>,
    pub half_open_calls: Option<u32>,
}

/// The kinds of upstream, each with its preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Database,
    Model,
    Tool,
    Compensation,
    /// Delivery of an outbox message to its channel's endpoint (`channel:<name>`).
    Delivery,
}

/// The presets, the overrides and the backoff shared by every upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceConfig {
    /// Backoff base and cap of every retry, in milliseconds.
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    /// Relative jitter of each delay (0.1 is +-10%).
    pub jitter: f64,
    /// Statement timeout, retries of passing errors, the pool's share, breaker (REL-18's `db`).
    pub database: UpstreamConfig,
    /// One model call per attempt; tiers are separate upstreams (`model:SLM_A`).
    pub model: UpstreamConfig,
    /// Every tool (`tool:<name>`); the manifest's timeout and retries replace the preset's.
    pub tool: UpstreamConfig,
    /// Every compensation (`compensate:<name>`); the manifest's compensation table replaces the
    /// preset's timeout and retries. A separate breaker, so a failing effect can still be undone.
    pub compensation: UpstreamConfig,
    /// Every channel the outbox dispatcher delivers to (`channel:<name>`): the attempts of one
    /// message's delivery before it is `failed`.
    pub delivery: UpstreamConfig,
    /// Overrides by upstream name.
    pub upstreams: BTreeMap<String, UpstreamOverride>,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self {
            retry_base_ms: 100,
            retry_cap_ms: 2_000,
            jitter: 0.1,
            database: UpstreamConfig {
                timeout_ms: 10_000,
                max_retries: 2,
                max_concurrent: 20,
                ..UpstreamConfig::default()
            },
            model: UpstreamConfig {
                timeout_ms: 10_000,
                max_retries: 1,
                max_concurrent: 5,
                max_wait_ms: 10_000,
                ..UpstreamConfig::default()
            },
            tool: UpstreamConfig::default(),
            compensation: UpstreamConfig::default(),
            delivery: UpstreamConfig {
                timeout_ms: 5_000,
                max_retries: 3,
                ..UpstreamConfig::default()
            },
            upstreams: BTreeMap::new(),
        }
    }
}

impl ResilienceConfig {
    /// The effective settings of upstream `name` of `kind`; `manifest` is a tool's own
    /// (timeout_ms, retries).
    pub fn settings(&self, name: &str, kind: Kind, manifest: Option<(u64, u32)>) -> UpstreamConfig {
        let mut c = match kind {
            Kind::Database => self.database.clone(),
            Kind::Model => self.model.clone(),
            Kind::Tool => self.tool.clone(),
            Kind::Compensation => self.compensation.clone(),
            Kind::Delivery => self.delivery.clone(),
        };
        if let Some((timeout_ms, retries)) = manifest {
            c.timeout_ms = timeout_ms;
            c.max_retries = retries;
        }
        if let Some(o) = self.upstreams.get(name) {
            c.timeout_ms = o.timeout_ms.unwrap_or(c.timeout_ms);
            c.max_retries = o.max_retries.unwrap_or(c.max_retries);
            c.max_concurrent = o.max_concurrent.unwrap_or(c.max_concurrent);
            c.max_wait_ms = o.max_wait_ms.unwrap_or(c.max_wait_ms);
            c.failure_threshold = o.failure_threshold.unwrap_or(c.failure_threshold);
            c.open_ms = o.open_ms.unwrap_or(c.open_ms);
            c.half_open_calls = o.half_open_calls.unwrap_or(c.half_open_calls);
        }
        c
    }
}

/// How a guarded call ended without a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError<E> {
    #[error("timed out after {attempts} attempt(s)")]
    Timeout { attempts: u32 },
    #[error("{error}")]
    Failed { error: E, attempts: u32 },
    /// The breaker is open: the upstream was not called.
    #[error("circuit open for {upstream}")]
    CircuitOpen { upstream: String },
    /// The bulkhead stayed full for the whole wait: the upstream was not called.
    #[error("bulkhead full for {upstream}")]
    BulkheadFull { upstream: String },
}

/// One upstream: its bulkhead, breaker and retry policy, on the platform's clock and counters.
pub struct Upstream {
    pub name: String,
    pub settings: UpstreamConfig,
    policy: Policy,
    breaker: Breaker,
    bulkhead: Bulkhead,
    seed: u64,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

impl Upstream {
    fn labels(&self) -> UpstreamLabels {
        UpstreamLabels {
            upstream: self.name.clone(),
        }
    }

    fn note(&self, t: Option<Transition>) {
        let Some(t) = t else { return };
        let state = match t {
            Transition::Opened => {
                self.metrics
                    .circuit_opened
                    .get_or_create(&self.labels())
                    .inc();
                "open"
            }
            Transition::HalfOpened => "half_open",
            Transition::Closed => "closed",
        };
        tracing::warn!(upstream = %self.name, state, "circuit breaker transition");
        self.metrics
            .circuit_transitions
            .get_or_create(&TransitionLabels {
                upstream: self.name.clone(),
                state: state.into(),
            })
            .inc();
    }

    /// The breaker's state, for `/readyz`-style reports and tests.
    pub fn breaker_state(&self) -> breaker::BreakerState {
        self.breaker.state()
    }

    /// Runs `call` (given the 0-based attempt) through bulkhead, breaker, retry and timeout.
    /// `key` names the logical call, so its jitter replays. Returns the value and the attempts.
    pub async fn call<T, E, F, Fut>(&self, key: &str, call: F) -> Result<(T, u32), CallError<E>>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(&self.policy, key, call).await
    }

    /// [`Upstream::call`] with a single attempt: for a call that would do its work twice if it
    /// were repeated after a lost answer (the bulkhead, breaker and timeout still apply).
    pub async fn call_once<T, E, F, Fut>(
        &self,
        key: &str,
        call: F,
    ) -> Result<(T, u32), CallError<E>>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let once = Policy {
            max_retries: 0,
            ..self.policy.clone()
        };
        self.call_with(&once, key, call).await
    }

    async fn call_with<T, E, F, Fut>(
        &self,
        policy: &Policy,
        key: &str,
        mut call: F,
    ) -> Result<(T, u32), CallError<E>>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let _slot = self.bulkhead.enter().await.map_err(|_| {
            self.metrics
                .bulkhead_rejections
                .get_or_create(&self.labels())
                .inc();
            CallError::BulkheadFull {
                upstream: self.name.clone(),
            }
        })?;
        let (admitted, t) = self.breaker.admit(self.clock.now());
        self.note(t);
        if admitted.is_err() {
            self.metrics
                .circuit_rejected
                .get_or_create(&self.labels())
                .inc();
            return Err(CallError::CircuitOpen {
                upstream: self.name.clone(),
            });
        }
        let attempts = AtomicU32::new(0);
        let r = policy
            .run_observed(
                self.seed,
                key,
                |n| {
                    attempts.store(n + 1, Ordering::Relaxed);
                    call(n)
                },
                |_, _, timed_out| {
                    self.metrics.retries.get_or_create(&self.labels()).inc();
                    if timed_out {
                        self.metrics.timeouts.get_or_create(&self.labels()).inc();
                    }
                },
            )
            .await;
        let attempts = attempts.into_inner();
        let healthy = match &r {
            Ok(_) => true,
            Err(PolicyError::Timeout { .. }) => {
                self.metrics.timeouts.get_or_create(&self.labels()).inc();
                false
            }
            Err(PolicyError::Failed { error, .. }) => !error.retryable(),
        };
        self.note(self.breaker.record(self.clock.now(), healthy));
        match r {
            Ok(v) => Ok((v, attempts)),
            Err(PolicyError::Timeout { attempts }) => Err(CallError::Timeout { attempts }),
            Err(PolicyError::Failed { error, attempts }) => {
                Err(CallError::Failed { error, attempts })
            }
        }
    }
}

/// Every upstream of one platform instance, created on first use from the configuration.
pub struct Resilience {
    cfg: ResilienceConfig,
    seed: u64,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    upstreams: Mutex<HashMap<String, Arc<Upstream>>>,
}

impl Resilience {
    pub fn new(
        cfg: ResilienceConfig,
        seed: u64,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            cfg,
            seed,
            clock,
            metrics,
            upstreams: Mutex::new(HashMap::new()),
        }
    }

    /// The upstream `name` of `kind` (created on first use; later calls share its breaker and
    /// bulkhead). `manifest` is a tool's own (timeout_ms, retries).
    pub fn upstream(&self, name: &str, kind: Kind, manifest: Option<(u64, u32)>) -> Arc<Upstream> {
        let mut all = self.upstreams.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(name.to_string())
            .or_insert_with(|| {
                let s = self.cfg.settings(name, kind, manifest);
                Arc::new(Upstream {
                    name: name.to_string(),
                    policy: Policy {
                        timeout: Duration::from_millis(s.timeout_ms),
                        max_retries: s.max_retries,
                        base: Duration::from_millis(self.cfg.retry_base_ms),
                        cap: Duration::from_millis(self.cfg.retry_cap_ms),
                        jitter: self.cfg.jitter,
                    },
                    breaker: Breaker::new(BreakerConfig {
                        failure_threshold: s.failure_threshold.max(1),
                        open_for: chrono::Duration::milliseconds(s.open_ms as i64),
                        half_open_calls: s.half_open_calls.max(1),
                    }),
                    bulkhead: Bulkhead::new(s.max_concurrent, Duration::from_millis(s.max_wait_ms)),
                    settings: s,
                    seed: self.seed,
                    clock: self.clock.clone(),
                    metrics: self.metrics.clone(),
                })
            })
            .clone()
    }

    /// The longest wait between two attempts (a bound for leases that must outlive a call).
    pub fn retry_cap_ms(&self) -> u64 {
        self.cfg.retry_cap_ms
    }

    /// The breaker state of every upstream used so far, by name (operator and tests).
    pub fn breakers(&self) -> BTreeMap<String, breaker::BreakerState> {
        let all = self.upstreams.lock().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .map(|(k, u)| (k.clone(), u.breaker_state()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[derive(Debug, Clone, PartialEq)]
    struct Status(u16);
    impl Retryable for Status {
        fn retryable(&self) -> bool {
            retryable_status(self.0)
        }
    }

    fn resilience(clock: Arc<ManualClock>) -> (Resilience, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let mut cfg = ResilienceConfig {
            retry_base_ms: 1,
            retry_cap_ms: 4,
            ..ResilienceConfig::default()
        };
        cfg.upstreams.insert(
            "tool:t".into(),
            UpstreamOverride {
                failure_threshold: Some(3),
                open_ms: Some(1_000),
                half_open_calls: Some(2),
                ..UpstreamOverride::default()
            },
        );
        (Resilience::new(cfg, 1, clock, metrics.clone()), metrics)
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_rejects_without_calling_and_closes_after_trials() {
        let clock = Arc::new(ManualClock::at_epoch());
        let (r, metrics) = resilience(clock.clone());
        let up = r.upstream("tool:t", Kind::Tool, Some((50, 1)));
        let calls = AtomicU32::new(0);
        let failing = |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Status(503))
        };
        for _ in 0..3 {
            let e = up.call("k", failing).await;
            assert_eq!(
                e,
                Err(CallError::Failed {
                    error: Status(503),
                    attempts: 2
                }),
                "the real error surfaces"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 6, "3 calls of 2 attempts");
        for _ in 0..7 {
            assert_eq!(
                up.call("k", failing).await,
                Err(CallError::CircuitOpen {
                    upstream: "tool:t".into()
                })
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 6, "rejected calls never ran");
        let text = metrics.encode();
        assert!(
            text.contains("circuit_open_total{upstream=\"tool:t\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("circuit_rejected_total{upstream=\"tool:t\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("retry_total{upstream=\"tool:t\"} 3"),
            "{text}"
        );
        clock.advance_by(chrono::Duration::milliseconds(1_000));
        let ok = |_| async { Ok::<_, Status>(1) };
        assert_eq!(up.call("k", ok).await, Ok((1, 1)));
        assert!(matches!(
            up.breaker_state(),
            breaker::BreakerState::HalfOpen { .. }
        ));
        assert_eq!(up.call("k", ok).await, Ok((1, 1)));
        assert_eq!(
            up.breaker_state(),
            breaker::BreakerState::Closed { failures: 0 }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_surface_at_once_and_do_not_trip_the_breaker() {
        let clock = Arc::new(ManualClock::at_epoch());
        let (r, _) = resilience(clock);
        let up = r.upstream("tool:t", Kind::Tool, Some((50, 3)));
        for status in [400, 401, 403, 404, 422] {
            let calls = AtomicU32::new(0);
            let e = up
                .call("k", |_| async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(Status(status))
                })
                .await;
            assert_eq!(
                e,
                Err(CallError::Failed {
                    error: Status(status),
                    attempts: 1
                })
            );
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{status} is not retried");
        }
        assert_eq!(
            up.breaker_state(),
            breaker::BreakerState::Closed { failures: 0 }
        );
    }

    #[test]
    fn presets_then_manifest_then_overrides() {
        let mut cfg = ResilienceConfig::default();
        cfg.upstreams.insert(
            "tool:x".into(),
            UpstreamOverride {
                max_retries: Some(0),
                ..UpstreamOverride::default()
            },
        );
        let s = cfg.settings("tool:x", Kind::Tool, Some((250, 4)));
        assert_eq!(
            (s.timeout_ms, s.max_retries, s.max_concurrent),
            (250, 0, 10)
        );
        assert_eq!(
            cfg.settings("database", Kind::Database, None)
                .max_concurrent,
            20
        );
    }
}
