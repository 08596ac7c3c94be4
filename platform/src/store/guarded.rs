//! The database behind the resilience layer: every [`Store`] call goes through the `database`
//! upstream (bulkhead, breaker, per-attempt timeout). Reads, upserts and the event-id-keyed
//! counters are retried on passing failures; the calls that would do something twice if retried
//! after a lost answer (stock adjustments, sequence numbers, audit appends, claims of abandoned
//! runs) and the readiness ping run once.

use super::model::*;
use super::{Store, StoreError};
use crate::clock::Clock;
use crate::domain::{Role, TenantId};
use crate::faults::{FaultPoint, Faults};
use crate::resilience::{CallError, Retryable, Upstream};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

impl Retryable for StoreError {
    fn retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<CallError<StoreError>> for StoreError {
    fn from(e: CallError<StoreError>) -> Self {
        match e {
            CallError::Failed { error, .. } => error,
            CallError::Timeout { attempts } => StoreError::Unavailable(format!(
                "the database did not answer ({attempts} attempt(s))"
            )),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// A [`Store`] whose every call goes through the `database` upstream (and, in a test deployment,
/// the `database` fault hook, before each attempt).
pub struct GuardedStore {
    inner: Arc<dyn Store>,
    upstream: Arc<Upstream>,
    faults: Arc<Faults>,
    clock: Arc<dyn Clock>,
}

impl GuardedStore {
    pub fn new(
        inner: Arc<dyn Store>,
        upstream: Arc<Upstream>,
        faults: Arc<Faults>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner,
            upstream,
            faults,
            clock,
        }
    }

    async fn fault(&self) -> Result<(), StoreError> {
        self.faults
            .apply(None, self.clock.now(), "database", FaultPoint::Call)
            .await
            .map_err(|i| StoreError::Unavailable(i.to_string()))
    }
}

macro_rules! guarded {
    ($($kind:ident $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        #[async_trait::async_trait]
        impl Store for GuardedStore {
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                    let call = |_| async {
                        self.fault().await?;
                        self.inner.$name($($arg),*).await
                    };
                    guarded!(@$kind self, stringify!($name), call)
                }
            )*
        }
    };
    (@retried $self:ident, $what:expr, $call:ident) => {
        $self.upstream.call($what, $call).await.map(|(v, _)| v).map_err(StoreError::from)
    };
    (@once $self:ident, $what:expr, $call:ident) => {
        $self.upstream.call_once($what, $call).await.map(|(v, _)| v).map_err(StoreError::from)
    };
}

guarded! {
    retried put_tenant(t: &Tenant) -> ();
    retried tenant(id: &TenantId) -> Option<Tenant>;
    retried put_user(u: &User) -> ();
    retried user_by_email(t: &TenantId, email: &str) -> Option<User>;
    retried put_api_key(k: &ApiKey) -> ();
    retried api_key_by_hash(hash: &str) -> Option<ApiKey>;
    retried put_product(p: &Product) -> ();
    retried product(t: &TenantId, sku: &str) -> Option<Product>;
    retried products(t: &TenantId) -> Vec<Product>;
    once adjust_stock(t: &TenantId, sku: &str, delta: i64) -> i64;
    once next_sequence(name: &str) -> u64;
    retried put_order(o: &Order) -> ();
    retried order(t: &TenantId, id: &str) -> Option<Order>;
    retried put_payment(p: &Payment) -> ();
    retried payment(t: &TenantId, id: &str) -> Option<Payment>;
    retried put_lead(l: &Lead) -> ();
    retried lead(t: &TenantId, id: &str) -> Option<Lead>;
    retried leads_by_email(t: &TenantId, email: &str) -> Vec<Lead>;
    retried put_ticket(k: &Ticket) -> ();
    retried ticket(t: &TenantId, id: &str) -> Option<Ticket>;
    retried put_outbox(m: &OutboxMessage) -> ();
    retried outbox(t: &TenantId) -> Vec<OutboxMessage>;
    once transition_outbox(m: &OutboxMessage, from: &[DeliveryStatus]) -> bool;
    retried pending_outbox(limit: usize) -> Vec<(TenantId, String)>;
    retried put_document(d: &Document) -> ();
    retried document(t: &TenantId, id: Uuid) -> Option<Document>;
    retried documents(t: &TenantId) -> Vec<Document>;
    retried visible_documents(t: &TenantId, role: Role, now: DateTime<Utc>) -> Vec<Document>;
    retried put_run(r: &Run) -> ();
    retried run(t: &TenantId, id: Uuid) -> Option<Run>;
    retried unfinished_runs(t: &TenantId) -> Vec<Run>;
    once claim_run(r: &Run, owner: &str, lease_until: DateTime<Utc>) -> bool;
    retried tenant_ids() -> Vec<TenantId>;
    once append_audit(a: &AuditEntry) -> ();
    retried audit(t: &TenantId) -> Vec<AuditEntry>;
    retried add_usage(t: &TenantId, period: &str, event_id: Uuid, delta: &Usage) -> bool;
    retried usage(t: &TenantId, period: &str) -> Usage;
    retried add_run_summary(t: &TenantId, event_id: Uuid, s: &RunSummary) -> bool;
    retried run_summaries(t: &TenantId) -> Vec<RunSummary>;
    once ping() -> ();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::resilience::{Kind, Resilience, ResilienceConfig, UpstreamOverride};
    use crate::store::memory::MemoryStore;
    use crate::telemetry::Metrics;

    #[tokio::test]
    async fn a_database_that_went_away_opens_the_breaker_and_reads_fail_fast() {
        let mem = Arc::new(MemoryStore::default());
        let mut cfg = ResilienceConfig {
            retry_base_ms: 1,
            retry_cap_ms: 2,
            ..ResilienceConfig::default()
        };
        cfg.upstreams.insert(
            "database".into(),
            UpstreamOverride {
                failure_threshold: Some(2),
                ..UpstreamOverride::default()
            },
        );
        let metrics = Arc::new(Metrics::default());
        let r = Resilience::new(cfg, 1, Arc::new(ManualClock::at_epoch()), metrics.clone());
        let store = GuardedStore::new(
            mem.clone(),
            r.upstream("database", Kind::Database, None),
            Default::default(),
            Arc::new(ManualClock::at_epoch()),
        );
        let acme = TenantId::parse("acme").unwrap_or_else(|_| unreachable!());
        assert!(store.tenant(&acme).await.is_ok());
        mem.set_down(true);
        for _ in 0..2 {
            assert!(
                matches!(store.tenant(&acme).await, Err(StoreError::Unavailable(m)) if m.contains("set down"))
            );
        }
        mem.set_down(false);
        // Open: refused without reaching the (now healthy) database.
        let refused = store.tenant(&acme).await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(m)) if m.contains("circuit open for database"))
        );
        let text = metrics.encode();
        assert!(
            text.contains("retry_total{upstream=\"database\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("circuit_open_total{upstream=\"database\"} 1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn calls_that_must_not_repeat_are_not_retried() {
        let mem = Arc::new(MemoryStore::default());
        let metrics = Arc::new(Metrics::default());
        let r = Resilience::new(
            ResilienceConfig::default(),
            1,
            Arc::new(ManualClock::at_epoch()),
            metrics.clone(),
        );
        let store = GuardedStore::new(
            mem.clone(),
            r.upstream("database", Kind::Database, None),
            Default::default(),
            Arc::new(ManualClock::at_epoch()),
        );
        mem.set_down(true);
        assert!(store.next_sequence("order:acme").await.is_err());
        assert!(!metrics
            .encode()
            .contains("retry_total{upstream=\"database\"}"));
    }
}
