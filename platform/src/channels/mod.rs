//! Channel delivery: the outbox dispatcher and the adapter of each channel. Handlers and tools only
//! queue a message (`OutboxMessage::queued`, status `pending`); the dispatcher takes it from the
//! delivery queue, hands it to its channel's adapter through the `channel:<name>` upstream
//! (timeout, retries with backoff, breaker, bulkhead), and writes what the endpoint answered:
//! `sent` once it accepted the message, `failed` after the last attempt. So the outbox says what a
//! channel's endpoint received, never what a handler hoped.
//!
//! Delivery is at least once: a dispatcher that dies between the endpoint's answer and the status
//! write leaves the message `sending`, and another takes it over once its claim's lease has passed.
//! Every request carries `Idempotency-Key: <tenant>:<message id>`, so an endpoint deduplicates.

mod adapter;

pub use adapter::{Adapter, DeliveryError, HttpAdapter, LogAdapter};

use crate::clock::Clock;
use crate::domain::TenantId;
use crate::resilience::{CallError, Kind, Resilience};
use crate::store::model::{DeliveryStatus, OutboxMessage};
use crate::store::Store;
use crate::telemetry::{DeliveryLabels, Metrics};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where each channel delivers, and how the dispatcher paces itself (`channels:` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelsConfig {
    /// Base URL every channel delivers to unless `endpoints` names its own: a message goes to
    /// `POST {url}/{channel}` as JSON. Unset (and no `endpoints` entry): the channel's messages go
    /// to the log adapter, which writes a line without their content and accepts them.
    pub endpoint: Option<String>,
    /// Base URL per channel (`email`, `notification`, `telegram`, ...).
    pub endpoints: BTreeMap<String, String>,
    /// How often the dispatcher looks at the delivery queue, in milliseconds (0: never; messages
    /// stay `pending`).
    pub poll_ms: u64,
    /// How long a dispatcher's claim on a message lasts before another dispatcher may take the
    /// message over (the first one died mid-delivery), in milliseconds of real time.
    pub claim_lease_ms: u64,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            endpoints: BTreeMap::new(),
            poll_ms: 50,
            claim_lease_ms: 60_000,
        }
    }
}

impl ChannelsConfig {
    /// The adapter of `channel`: HTTP to its endpoint, or the log adapter when it has none.
    fn adapter(&self, channel: &str, http: &reqwest::Client) -> Arc<dyn Adapter> {
        match self.endpoints.get(channel).or(self.endpoint.as_ref()) {
            Some(url) => Arc::new(HttpAdapter::new(http.clone(), url, channel)),
            None => Arc::new(LogAdapter),
        }
    }
}

/// A running dispatcher.
pub struct Running {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops after the delivery in hand, so that no message is left `sending` by an orderly
    /// shutdown (another instance would deliver it again once its claim lapsed).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops at once, as a crash would: a delivery in hand is left `sending`.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Takes messages from the delivery queue and delivers them, one at a time, oldest first.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    resilience: Arc<Resilience>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    cfg: ChannelsConfig,
    http: reqwest::Client,
    /// A planted defect (test builds only): report deliveries without making them.
    skip_delivery: bool,
}

impl Dispatcher {
    /// A dispatcher over `store` (give it a store with a breaker of its own: its polling must not
    /// move the API's).
    pub fn new(
        store: Arc<dyn Store>,
        resilience: Arc<Resilience>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        cfg: ChannelsConfig,
        skip_delivery: bool,
    ) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            store,
            resilience,
            metrics,
            clock,
            cfg,
            http,
            skip_delivery,
        }
    }

    /// Runs the dispatcher until it is stopped (after the delivery in hand) or aborted.
    pub fn spawn(self) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            if self.cfg.poll_ms == 0 {
                return;
            }
            while !flag.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(self.cfg.poll_ms)).await;
                self.drain_until(&flag).await;
            }
        });
        Running { stop, task }
    }

    /// One pass over the delivery queue: every message in it, oldest first. Returns how many
    /// reached a final status.
    pub async fn drain(&self) -> usize {
        self.drain_until(&AtomicBool::new(false)).await
    }

    /// [`Dispatcher::drain`], ending early (between two messages) once `stop` is set.
    async fn drain_until(&self, stop: &AtomicBool) -> usize {
        let queue = match self.store.pending_outbox(64).await {
            Ok(q) => q,
            Err(err) => {
                tracing::warn!(%err, "outbox dispatcher cannot read the delivery queue");
                return 0;
            }
        };
        let mut done = 0;
        for (tenant, id) in queue {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            match self.deliver(&tenant, &id).await {
                Ok(true) => done += 1,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(%err, %tenant, message = %id, "outbox delivery not finished")
                }
            }
        }
        done
    }

    /// Claims message `id`, delivers it and records the outcome; whether it reached a final
    /// status (false: another dispatcher holds it, it was cancelled, or the channel's breaker is
    /// open and it waits for the next pass).
    async fn deliver(&self, tenant: &TenantId, id: &str) -> Result<bool, crate::store::StoreError> {
        let Some(m) = self
            .store
            .outbox(tenant)
            .await?
            .into_iter()
            .find(|m| m.message_id == id)
        else {
            return Ok(false);
        };
        // Claims are measured in real time: a lease is about a dispatcher that died, which the
        // platform's clock (frozen in tests, movable by an operator) does not see.
        let now = chrono::Utc::now();
        let lease = chrono::Duration::milliseconds(self.cfg.claim_lease_ms as i64);
        let from = match m.status {
            DeliveryStatus::Pending => DeliveryStatus::Pending,
            DeliveryStatus::Sending if m.claimed_at.is_none_or(|at| at + lease <= now) => {
                DeliveryStatus::Sending
            }
            _ => return Ok(false),
        };
        let claimed = OutboxMessage {
            status: DeliveryStatus::Sending,
            claimed_at: Some(now),
            ..m
        };
        if !self.store.transition_outbox(&claimed, &[from]).await? {
            return Ok(false);
        }
        let channel = claimed.channel().to_string();
        let adapter = self.cfg.adapter(&channel, &self.http);
        let upstream =
            self.resilience
                .upstream(&format!("channel:{channel}"), Kind::Delivery, None);
        let result = if self.skip_delivery {
            Ok(((), 1))
        } else {
            upstream
                .call(&claimed.message_id, |_| adapter.deliver(&claimed))
                .await
        };
        let (status, attempts, last_error) = match result {
            Ok(((), n)) => (DeliveryStatus::Sent, n, None),
            Err(CallError::Failed { error, attempts }) => {
                (DeliveryStatus::Failed, attempts, Some(error.to_string()))
            }
            Err(e @ CallError::Timeout { attempts }) => {
                (DeliveryStatus::Failed, attempts, Some(e.to_string()))
            }
            // Not attempted: the message goes back to the queue for a later pass.
            Err(e @ (CallError::CircuitOpen { .. } | CallError::BulkheadFull { .. })) => {
                (DeliveryStatus::Pending, 0, Some(e.to_string()))
            }
        };
        let finished = OutboxMessage {
            status,
            attempts: claimed.attempts + attempts,
            last_error,
            sent_at: (status == DeliveryStatus::Sent).then(|| self.clock.now()),
            claimed_at: None,
            ..claimed
        };
        if !self
            .store
            .transition_outbox(&finished, &[DeliveryStatus::Sending])
            .await?
        {
            return Ok(false);
        }
        if status == DeliveryStatus::Pending {
            return Ok(false);
        }
        self.metrics
            .outbox_deliveries
            .get_or_create(&DeliveryLabels {
                channel,
                outcome: status.as_str().into(),
            })
            .inc();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::resilience::ResilienceConfig;
    use crate::store::memory::MemoryStore;
    use std::sync::atomic::AtomicU32;

    /// An adapter that fails `fail` times with `status`, then accepts; it counts its calls.
    struct Flaky {
        fail: u32,
        status: u16,
        calls: AtomicU32,
    }

    #[async_trait::async_trait]
    impl Adapter for Flaky {
        async fn deliver(&self, _m: &OutboxMessage) -> Result<(), DeliveryError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                Err(DeliveryError::Status {
                    status: self.status,
                    retry_after: None,
                })
            } else {
                Ok(())
            }
        }
    }

    fn message(id: &str) -> OutboxMessage {
        OutboxMessage::queued(
            TenantId::parse("acme").unwrap(),
            id.into(),
            "email",
            "customer:bob".into(),
            "subject".into(),
            "body".into(),
        )
    }

    async fn setup() -> (Arc<MemoryStore>, Dispatcher) {
        let store = Arc::new(MemoryStore::default());
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(chrono::Utc::now()));
        let metrics = Arc::new(Metrics::default());
        let resilience = Arc::new(Resilience::new(
            ResilienceConfig {
                retry_base_ms: 1,
                retry_cap_ms: 2,
                ..ResilienceConfig::default()
            },
            7,
            clock.clone(),
            metrics.clone(),
        ));
        let d = Dispatcher::new(
            store.clone(),
            resilience,
            metrics,
            clock,
            ChannelsConfig::default(),
            false,
        );
        (store, d)
    }

    #[tokio::test]
    async fn the_outcome_not_the_writer_decides_sent_or_failed() {
        let (store, d) = setup().await;
        store.put_outbox(&message("MSG-1")).await.unwrap();
        // No endpoint: the log adapter accepts.
        assert_eq!(d.drain().await, 1);
        let m = &store
            .outbox(&TenantId::parse("acme").unwrap())
            .await
            .unwrap()[0];
        assert_eq!((m.status, m.attempts), (DeliveryStatus::Sent, 1));
        assert!(m.sent_at.is_some());
        assert!(store.pending_outbox(10).await.unwrap().is_empty());
        assert!(d
            .metrics
            .encode()
            .contains("outbox_deliveries_total{channel=\"email\",outcome=\"sent\"} 1\n"));
    }

    /// A delivery's attempts: retried on 5xx up to `max_retries` (3) extra attempts, never on a
    /// permanent 4xx.
    #[tokio::test]
    async fn the_delivery_upstream_retries_only_what_is_worth_retrying() {
        for (fail, status, want, calls) in [
            (2, 503, DeliveryStatus::Sent, 3),
            (9, 503, DeliveryStatus::Failed, 4),
            (9, 422, DeliveryStatus::Failed, 1),
        ] {
            let (store, d) = setup().await;
            store.put_outbox(&message("MSG-1")).await.unwrap();
            let flaky = Arc::new(Flaky {
                fail,
                status,
                calls: AtomicU32::new(0),
            });
            let claimed = OutboxMessage {
                status: DeliveryStatus::Sending,
                ..message("MSG-1")
            };
            store
                .transition_outbox(&claimed, &[DeliveryStatus::Pending])
                .await
                .unwrap();
            let up = d.resilience.upstream("channel:email", Kind::Delivery, None);
            let r = up.call("MSG-1", |_| flaky.deliver(&claimed)).await;
            assert_eq!(
                flaky.calls.load(Ordering::SeqCst),
                calls,
                "{fail} x {status}"
            );
            assert_eq!(r.is_ok(), want == DeliveryStatus::Sent);
        }
    }

    #[tokio::test]
    async fn a_cancelled_message_is_never_delivered() {
        let (store, d) = setup().await;
        store.put_outbox(&message("MSG-1")).await.unwrap();
        let cancelled = OutboxMessage {
            status: DeliveryStatus::Cancelled,
            ..message("MSG-1")
        };
        assert!(store
            .transition_outbox(&cancelled, &[DeliveryStatus::Pending])
            .await
            .unwrap());
        assert_eq!(d.drain().await, 0);
        let m = &store
            .outbox(&TenantId::parse("acme").unwrap())
            .await
            .unwrap()[0];
        assert_eq!((m.status, m.attempts), (DeliveryStatus::Cancelled, 0));
    }
}
