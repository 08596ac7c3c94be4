//! The embedded bus: a broadcast channel plus a bounded log of the latest deliveries, so a test can
//! read what was published in order (and a long-running `serve` does not grow without bound).

use super::{Bus, BusError, Delivery, Event};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// In-memory bus. Subscribers that fall more than `capacity` events behind miss events (they are told
/// so by `RecvError::Lagged`), as a broker consumer without a durable cursor would.
pub struct MemoryBus {
    prefix: String,
    tx: broadcast::Sender<Delivery>,
    log: Mutex<VecDeque<Delivery>>,
}

/// How many deliveries the log keeps; older ones are dropped first.
pub const LOG_CAPACITY: usize = 50_000;

impl MemoryBus {
    pub fn new(prefix: &str) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            prefix: prefix.to_string(),
            tx,
            log: Mutex::new(VecDeque::new()),
        }
    }
    /// The latest deliveries (up to [`LOG_CAPACITY`]), in publish order.
    pub fn published(&self) -> Vec<Delivery> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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
        let d = Delivery {
            subject: format!("{}.{}", self.prefix, event.event_type),
            event: event.clone(),
        };
        {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            if log.len() == LOG_CAPACITY {
                log.pop_front();
            }
            log.push_back(d.clone());
        }
        // No receiver is not an error: events are also in the log.
        let _ = self.tx.send(d);
        Ok(())
    }
    fn subscribe(&self) -> broadcast::Receiver<Delivery> {
        self.tx.subscribe()
    }
    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TenantId;

    #[tokio::test]
    async fn subjects_carry_the_prefix_and_subscribers_see_events_in_order() {
        let bus = MemoryBus::new("run7");
        let mut rx = bus.subscribe();
        for t in ["workflow.started", "workflow.completed"] {
            bus.publish(&Event {
                event_id: uuid::Uuid::nil(),
                event_type: t.into(),
                tenant_id: TenantId::parse("acme").unwrap(),
                run_id: None,
                occurred_at: chrono::Utc::now(),
                data: serde_json::json!({}),
            })
            .await
            .unwrap();
        }
        assert_eq!(rx.recv().await.unwrap().subject, "run7.workflow.started");
        assert_eq!(rx.recv().await.unwrap().subject, "run7.workflow.completed");
        assert_eq!(bus.published().len(), 2);
    }
}
