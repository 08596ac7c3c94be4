//! The `Bus` port: events out of the platform. Subjects and the envelope are those of API.md
//! (`<prefix>.workflow.completed`, `{event_id, event_type, tenant_id, run_id?, occurred_at, data}`).
//! The embedded backend is [`memory::MemoryBus`]; JetStream implements the same trait.

pub mod contract;
pub mod jetstream;
pub mod memory;
pub mod outbox;
pub mod tap;

use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use uuid::Uuid;

/// One event, as published.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub event_id: Uuid,
    /// The subject without its prefix, e.g. `workflow.completed`.
    pub event_type: String,
    pub tenant_id: TenantId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
}

/// An event with the full subject it was published on.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub subject: String,
    pub event: Event,
    /// Where the event stands in the bus's order of publication (the broker's stream sequence,
    /// or the embedded bus's counter), so that a follower can tell when it has caught up with
    /// [`Bus::published_position`]. Zero where a backend hands out no order (a durable
    /// consumer's redelivery).
    pub position: u64,
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

/// What a durable consumer does with one delivery. An `Err` is a failed attempt: the delivery
/// comes again after the configured backoff, and after `max_deliver` attempts it goes to the
/// dead-letter subject with this error. Handlers must be idempotent (deliveries repeat).
pub type Handler =
    Arc<dyn Fn(Delivery) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Redelivery policy of durable consumers (both backends honour it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Attempts before a delivery is dead-lettered.
    pub max_deliver: u32,
    /// How long the broker waits for an ack before it redelivers, in milliseconds.
    pub ack_wait_ms: u64,
    /// Delay before each redelivery after a failed attempt (the last one repeats), in milliseconds.
    pub backoff_ms: Vec<u64>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_deliver: 5,
            ack_wait_ms: 30_000,
            backoff_ms: vec![100, 1_000, 5_000],
        }
    }
}

impl DeliveryConfig {
    /// The wait before attempt `attempt + 1`, after `attempt` (1-based) failed.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let i = (attempt.max(1) - 1) as usize;
        let ms = self
            .backoff_ms
            .get(i)
            .or(self.backoff_ms.last())
            .copied()
            .unwrap_or(0);
        Duration::from_millis(ms)
    }
}

/// A delivery that exhausted its attempts (or could not be read at all), as written to the
/// dead-letter subject `dlq.<subject>`: the original subject and payload, the last error and how
/// many times it was delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub subject: String,
    pub payload: String,
    pub error: String,
    pub deliveries: u32,
    /// The consumer that gave up on it.
    pub consumer: String,
}

/// The dead-letter subject of `subject`.
pub fn dead_letter_subject(subject: &str) -> String {
    format!("dlq.{subject}")
}

/// Publishes events, fans them out to in-process followers, and runs durable consumers.
#[async_trait::async_trait]
pub trait Bus: Send + Sync + 'static {
    /// The subject prefix (`aiaas` by default, one per test run).
    fn prefix(&self) -> &str;
    /// Publishes on `<prefix>.<event_type>`. `Ok` means the event will be delivered: the real
    /// backend has it in the broker or, while the broker is down, in its outbox.
    async fn publish(&self, event: &Event) -> Result<(), BusError>;
    /// A stream of every event published from now on, in this process (a fan-out view: every
    /// instance sees every event; use [`Bus::consume`] for work that must happen once).
    fn subscribe(&self) -> broadcast::Receiver<Delivery>;
    /// The position of the latest event published so far: every event whose `publish` returned
    /// before this call has a [`Delivery::position`] at or below it. An error when some published
    /// event has no position yet (it waits in an outbox for the broker). A follower that has seen this
    /// position has seen everything published before it asked (see `tap::EventTap::settle`).
    async fn published_position(&self) -> Result<u64, BusError>;
    /// Runs `handler` for each event as the durable consumer `group`: instances sharing a group
    /// share the work, a delivery is acked only when the handler succeeds, failed ones are retried
    /// with backoff and dead-lettered after `max_deliver` attempts. The task runs until aborted.
    async fn consume(
        &self,
        group: &str,
        handler: Handler,
    ) -> Result<tokio::task::JoinHandle<()>, BusError>;
    /// The latest dead letters (up to `limit`), oldest first.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BusError>;
    /// Whether the backend answers (for `/readyz`).
    async fn ping(&self) -> Result<(), BusError>;
}
