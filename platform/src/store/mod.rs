//! The `Store` port: tenant-scoped persistence. The embedded backend is [`memory::MemoryStore`]; the
//! Postgres backend (forced row-level security) implements the same trait and passes the same
//! [`contract`] tests.

pub mod contract;
pub mod guarded;
pub mod memory;
pub mod model;
pub mod postgres;

use crate::domain::{Role, TenantId};
use chrono::{DateTime, Utc};
use model::*;
use uuid::Uuid;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("insufficient stock for {sku}: {available} available, {requested} requested")]
    InsufficientStock {
        sku: String,
        available: i64,
        requested: i64,
    },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A query ran without a tenant context, or tried to touch another tenant's rows: row-level
    /// security refused it. Never expected from a correct caller.
    #[error("tenant context refused by row-level security: {0}")]
    TenantContext(String),
}

/// Tenant-scoped persistence. A backend must make another tenant's rows unreachable, not merely
/// filtered out by callers: every method that reads tenant data takes the tenant.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn put_tenant(&self, t: &Tenant) -> Result<(), StoreError>;
    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;

    async fn put_user(&self, u: &User) -> Result<(), StoreError>;
    async fn user_by_email(&self, t: &TenantId, email: &str) -> Result<Option<User>, StoreError>;

    /// Stores a key for its tenant. A key hash already issued to another tenant is a `Conflict`:
    /// a key identifies its tenant, so it is never silently moved.
    async fn put_api_key(&self, k: &ApiKey) -> Result<(), StoreError>;
    /// Looks a key up by its hash. This is the one pre-authentication lookup that is not
    /// tenant-scoped: the key is what tells the tenant.
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;

    async fn put_product(&self, p: &Product) -> Result<(), StoreError>;
    async fn product(&self, t: &TenantId, sku: &str) -> Result<Option<Product>, StoreError>;
    async fn products(&self, t: &TenantId) -> Result<Vec<Product>, StoreError>;
    /// Adds `delta` to the stock atomically; refuses to go below zero.
    async fn adjust_stock(&self, t: &TenantId, sku: &str, delta: i64) -> Result<i64, StoreError>;

    /// A store-wide increasing number (order numbers).
    async fn next_sequence(&self, name: &str) -> Result<u64, StoreError>;

    async fn put_order(&self, o: &Order) -> Result<(), StoreError>;
    async fn order(&self, t: &TenantId, id: &str) -> Result<Option<Order>, StoreError>;

    async fn put_payment(&self, p: &Payment) -> Result<(), StoreError>;
    async fn payment(&self, t: &TenantId, id: &str) -> Result<Option<Payment>, StoreError>;

    async fn put_lead(&self, l: &Lead) -> Result<(), StoreError>;
    async fn lead(&self, t: &TenantId, id: &str) -> Result<Option<Lead>, StoreError>;
    async fn leads_by_email(&self, t: &TenantId, email: &str) -> Result<Vec<Lead>, StoreError>;

    async fn put_ticket(&self, k: &Ticket) -> Result<(), StoreError>;
    async fn ticket(&self, t: &TenantId, id: &str) -> Result<Option<Ticket>, StoreError>;

    /// Queues or replaces a message; a message whose status is open (pending, sending) is in the
    /// delivery queue, any other is not.
    async fn put_outbox(&self, m: &OutboxMessage) -> Result<(), StoreError>;
    /// The tenant's outbox in queue order (first queued first).
    async fn outbox(&self, t: &TenantId) -> Result<Vec<OutboxMessage>, StoreError>;
    /// Replaces the stored message with `m` only while its status is one of `from` (a claim, a
    /// delivery's outcome, a cancellation: whichever comes first wins); whether it did.
    async fn transition_outbox(
        &self,
        m: &OutboxMessage,
        from: &[DeliveryStatus],
    ) -> Result<bool, StoreError>;
    /// The delivery queue across tenants, oldest first: tenant and message id only, so that one
    /// dispatcher serves every tenant without reading their data outside their RLS context.
    async fn pending_outbox(&self, limit: usize) -> Result<Vec<(TenantId, String)>, StoreError>;

    async fn put_document(&self, d: &Document) -> Result<(), StoreError>;
    async fn document(&self, t: &TenantId, id: Uuid) -> Result<Option<Document>, StoreError>;
    /// Every document of tenant `t`, expired ones included, by id: what an administrator lists and
    /// what a reindex pass walks.
    async fn documents(&self, t: &TenantId) -> Result<Vec<Document>, StoreError>;
    /// The documents `role` may read in tenant `t` at `now`. The permission filter lives here, in the
    /// query, so that ranking and top-k only ever see permitted documents.
    async fn visible_documents(
        &self,
        t: &TenantId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Vec<Document>, StoreError>;

    async fn put_run(&self, r: &Run) -> Result<(), StoreError>;
    async fn run(&self, t: &TenantId, id: Uuid) -> Result<Option<Run>, StoreError>;
    /// The tenant's runs that have not finished (`running`, `compensating`): a recovering worker
    /// resumes those whose claim has lapsed.
    async fn unfinished_runs(&self, t: &TenantId) -> Result<Vec<Run>, StoreError>;
    /// Writes `r` (an abandoned run with this worker's new claim in its checkpoint) only if the
    /// stored run is still claimed by `owner` until `lease_until`: of two workers that find the same
    /// lapsed lease, one wins. False when another got there first.
    async fn claim_run(
        &self,
        r: &Run,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Every tenant id (from the registry, which holds no tenant data): where recovery looks.
    async fn tenant_ids(&self) -> Result<Vec<TenantId>, StoreError>;

    async fn append_audit(&self, a: &AuditEntry) -> Result<(), StoreError>;
    async fn audit(&self, t: &TenantId) -> Result<Vec<AuditEntry>, StoreError>;

    /// Adds the usage of event `event_id` to billing period `period` (`YYYY-MM`, see
    /// [`crate::metering::period_of`]) once: a redelivered event changes nothing and answers false
    /// (consumers of an at-least-once bus must be idempotent).
    async fn add_usage(
        &self,
        t: &TenantId,
        period: &str,
        event_id: Uuid,
        delta: &Usage,
    ) -> Result<bool, StoreError>;
    /// The usage of billing period `period` (zero when nothing was used).
    async fn usage(&self, t: &TenantId, period: &str) -> Result<Usage, StoreError>;

    /// Adds the summary of event `event_id` once (see [`Store::add_usage`]).
    async fn add_run_summary(
        &self,
        t: &TenantId,
        event_id: Uuid,
        s: &RunSummary,
    ) -> Result<bool, StoreError>;
    async fn run_summaries(&self, t: &TenantId) -> Result<Vec<RunSummary>, StoreError>;

    /// Whether the backend answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}
