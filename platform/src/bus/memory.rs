//! The embedded bus: a broadcast channel plus a bounded log of the latest deliveries, so a test can
//! read what was published in order (and a long-running `serve` does not grow without bound).

use super::{Bus, BusError, DeadLetter, Delivery, DeliveryConfig, Event, Handler};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// In-memory bus. Subscribers that fall more than `capacity` events behind miss events (they are told
/// so by `RecvError::Lagged`), as a broker consumer without a durable cursor would.
pub struct MemoryBus {
    prefix: String,
    tx: broadcast::Sender<Delivery>,
    /// The latest deliveries and the position of the newest. One lock orders both the positions
    /// and the sends, so followers receive positions in increasing order.
    log: Mutex<Log>,
    delivery: DeliveryConfig,
    dead: Arc<Mutex<Vec<DeadLetter>>>,
}

#[derive(Default)]
struct Log {
    deliveries: VecDeque<Delivery>,
    position: u64,
}

/// How many deliveries the log keeps; older ones are dropped first.
pub const LOG_CAPACITY: usize = 50_000;

impl MemoryBus {
    pub fn new(prefix: &str) -> Self {
        Self::with_delivery(prefix, DeliveryConfig::default())
    }
    /// A bus whose consumers follow `delivery` (attempts and backoff).
    pub fn with_delivery(prefix: &str, delivery: DeliveryConfig) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            prefix: prefix.to_string(),
            tx,
            log: Mutex::default(),
            delivery,
            dead: Arc::default(),
        }
    }
    /// The latest deliveries (up to [`LOG_CAPACITY`]), in publish order.
    pub fn published(&self) -> Vec<Delivery> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .deliveries
            .iter()
            .cloned()
            .collect()
    }
}

#[async_trait::async_trait]
impl Bus for MemoryBus {
    fn prefix(&self) -> &str {
        &self.prefix
    }
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        // De-duplication by event id over the log, as the broker's duplicate window does.
        if log
            .deliveries
            .iter()
            .any(|x| x.event.event_id == event.event_id)
        {
            return Ok(());
        }
        log.position += 1;
        let d = Delivery {
            subject: format!("{}.{}", self.prefix, event.event_type),
            event: event.clone(),
            position: log.position,
        };
        if log.deliveries.len() == LOG_CAPACITY {
            log.deliveries.pop_front();
        }
        log.deliveries.push_back(d.clone());
        // Sent under the lock (a broadcast send never waits): positions reach followers in order.
        // No receiver is not an error: events are also in the log.
        let _ = self.tx.send(d);
        Ok(())
    }
    fn subscribe(&self) -> broadcast::Receiver<Delivery> {
        self.tx.subscribe()
    }
    async fn published_position(&self) -> Result<u64, BusError> {
        Ok(self.log.lock().unwrap_or_else(|e| e.into_inner()).position)
    }
    async fn consume(
        &self,
        group: &str,
        handler: Handler,
    ) -> Result<tokio::task::JoinHandle<()>, BusError> {
        // One process: the group is this task alone. Attempts are retried in place, in order.
        let mut rx = self.tx.subscribe();
        let delivery = self.delivery.clone();
        let dead = self.dead.clone();
        let group = group.to_string();
        Ok(tokio::spawn(async move {
            loop {
                let d = match rx.recv().await {
                    Ok(d) => d,
                    Err(RecvError::Lagged(n)) => {
                        tracing::error!(missed = n, consumer = %group, "consumer fell behind the bus");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                };
                let mut attempt = 1;
                loop {
                    match handler(d.clone()).await {
                        Ok(()) => break,
                        Err(error) if attempt >= delivery.max_deliver => {
                            tracing::error!(%error, subject = %d.subject, attempts = attempt, "dead-lettered");
                            dead.lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(DeadLetter {
                                    subject: d.subject.clone(),
                                    payload: serde_json::to_string(&d.event).unwrap_or_default(),
                                    error,
                                    deliveries: attempt,
                                    consumer: group.clone(),
                                });
                            break;
                        }
                        Err(_) => {
                            tokio::time::sleep(delivery.backoff(attempt)).await;
                            attempt += 1;
                        }
                    }
                }
            }
        }))
    }
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        Ok(dead[dead.len().saturating_sub(limit)..].to_vec())
    }
    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}
