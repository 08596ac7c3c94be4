//! The `Bus` port: events out of the platform. Subjects and the envelope are those of API.md
//! (`<prefix>.workflow.completed`, `{event_id, event_type, tenant_id, run_id?, occurred_at, data}`).
//! The embedded backend is [`memory::MemoryBus`]; JetStream implements the same trait.

pub mod memory;
pub mod tap;

use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

/// Publishes events and lets in-process consumers (metering, analytics) follow them.
#[async_trait::async_trait]
pub trait Bus: Send + Sync + 'static {
    /// The subject prefix (`aiaas` by default, one per test run).
    fn prefix(&self) -> &str;
    /// Publishes on `<prefix>.<event_type>`.
    async fn publish(&self, event: &Event) -> Result<(), BusError>;
    /// A stream of every event published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Delivery>;
    /// Whether the backend answers (for `/readyz`).
    async fn ping(&self) -> Result<(), BusError>;
}
