//! The records the platform persists. Every record belongs to exactly one tenant; the `Store` keys each
//! one by its tenant so that no query can reach another tenant's rows.

use crate::domain::{Level, Plan, Role, TenantId, Tier};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A customer organisation using the platform.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub plan: Plan,
    /// The tenant's assistant instructions. They carry a canary secret that must never leave the
    /// platform (the guard issue enforces that; the scripted model is naive on purpose).
    pub system_prompt: String,
    /// Contract limits that replace the plan's (a customer with a negotiated quota; test tenants).
    #[serde(default)]
    pub limits: Option<crate::config::PlanLimits>,
    /// The tools this tenant may use; `None` allows every tool. A run that reaches another tool
    /// fails with `TOOL_NOT_ALLOWED` without calling it, and models are not offered it.
    #[serde(default)]
    pub allowed_tools: Option<Vec<String>>,
}

impl Tenant {
    /// Whether the tenant's allow-list lets it use `tool`.
    pub fn may_use(&self, tool: &str) -> bool {
        self.allowed_tools
            .as_ref()
            .is_none_or(|l| l.iter().any(|t| t == tool))
    }
}

/// A person who logs in with email and password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub tenant: TenantId,
    pub user_id: String,
    pub email: String,
    /// argon2 PHC string.
    pub password_hash: String,
    pub role: Role,
}

/// A machine credential. Only the sha256 of the key is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub key_hash: String,
    pub tenant: TenantId,
    pub label: String,
    pub role: Role,
}

/// A product the tenant sells, with its stock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    pub tenant: TenantId,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub sku: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// A customer order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub tenant: TenantId,
    pub order_id: String,
    pub user_id: String,
    /// processing, pending_review, shipped, delivered, cancelled
    pub status: String,
    pub items: Vec<OrderItem>,
    pub total_cents: i64,
    pub payment_id: Option<String>,
    /// authorized, captured, manual_review, voided, refunded
    pub payment_status: String,
    pub tracking_number: Option<String>,
    pub shipping_address: Option<String>,
    pub refund_cents: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// A payment as the payment provider sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    pub tenant: TenantId,
    pub payment_id: String,
    pub amount_cents: i64,
    pub method: String,
    /// authorized, captured, manual_review, voided, refunded
    pub status: String,
}

/// A sales lead in the CRM.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lead {
    pub tenant: TenantId,
    pub lead_id: String,
    pub name: String,
    pub email: String,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub interest: Option<String>,
    pub source: Option<String>,
    pub grade: String,
    pub score: u32,
    /// new, duplicate, reverted
    pub status: String,
    pub duplicate_of: Option<String>,
}

/// An escalation to a human.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ticket {
    pub tenant: TenantId,
    pub ticket_id: String,
    pub subject: String,
    pub description: String,
    pub priority: String,
    pub status: String,
    pub assigned_queue: String,
}

/// A message in an outbox (email to a customer, notification to sales, a reply on a messaging
/// channel). Written `Pending`; only the dispatcher (`channels::Dispatcher`) moves it on, from what
/// the channel's endpoint answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub tenant: TenantId,
    pub message_id: String,
    /// `email`, `notification`, or `channel` (a reply on the messaging channel named before the
    /// `:` of `to`).
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub status: DeliveryStatus,
    /// Delivery attempts so far (each a call of the channel's adapter).
    #[serde(default)]
    pub attempts: u32,
    /// Why the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When a dispatcher took the message (`Sending`): another may take it over once this is
    /// older than its lease.
    #[serde(default)]
    pub claimed_at: Option<DateTime<Utc>>,
    /// When the channel's endpoint accepted it.
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
}

impl OutboxMessage {
    /// A message waiting for the dispatcher.
    pub fn queued(
        tenant: TenantId,
        message_id: String,
        kind: &str,
        to: String,
        subject: String,
        body: String,
    ) -> Self {
        Self {
            tenant,
            message_id,
            kind: kind.into(),
            to,
            subject,
            body,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_error: None,
            claimed_at: None,
            sent_at: None,
        }
    }

    /// The channel that delivers it: the kind, or for a messaging reply the channel named in `to`
    /// (`telegram:bob` goes through `telegram`).
    pub fn channel(&self) -> &str {
        match self.kind.as_str() {
            "channel" => self.to.split(':').next().unwrap_or("channel"),
            other => other,
        }
    }
}

/// Where an outbox message stands. Only a delivery's outcome makes it `Sent` or `Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for the dispatcher.
    Pending,
    /// Taken by a dispatcher, which is calling the channel's adapter.
    Sending,
    /// The channel's endpoint accepted it.
    Sent,
    /// Every attempt of the delivery failed.
    Failed,
    /// Undone by a saga's compensation before it was delivered.
    Cancelled,
}

impl DeliveryStatus {
    /// Still to be delivered (the dispatcher's queue holds it).
    pub fn is_open(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Sending)
    }

    /// The word the API and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }
}

/// A knowledge-base document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    pub tenant: TenantId,
    pub document_id: Uuid,
    pub title: String,
    pub content: String,
    pub level: Level,
    /// When set, only these roles may read it (in addition to the level bound).
    pub roles: Option<Vec<Role>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// 1 when created; each change of title or content adds one. (Rows written before versions
    /// existed read as 1.)
    #[serde(default = "first_version")]
    pub version: u32,
    /// Its entry in the retrieval index (`rag::index`); none until it is first indexed.
    #[serde(default)]
    pub index: Option<crate::rag::index::IndexEntry>,
}

fn first_version() -> u32 {
    1
}

impl Document {
    /// The text the guard and the sensitivity tagger read: title, then content.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.title, self.content)
    }

    /// The permission rule of DESIGN.md: level within the role's bound, role list (if any) names the
    /// role, and not expired.
    pub fn visible_to(&self, role: Role, now: DateTime<Utc>) -> bool {
        self.access(role, now).0
    }

    /// The same rule with its reason: `access_granted`, or the first check that refuses
    /// (`expired`, `insufficient_level`, `insufficient_roles`). The Postgres store runs this rule
    /// in its query; the store contract holds the two to the same answers.
    pub fn access(&self, role: Role, now: DateTime<Utc>) -> (bool, &'static str) {
        if self.expires_at.is_some_and(|t| t <= now) {
            (false, "expired")
        } else if self.level > role.max_level() {
            (false, "insufficient_level")
        } else if self.roles.as_ref().is_some_and(|r| !r.contains(&role)) {
            (false, "insufficient_roles")
        } else {
            (true, "access_granted")
        }
    }
}

/// One executed step of a run, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    pub step_id: String,
    /// start, agent, tool, condition, sub_workflow, end, compensation
    pub step_type: String,
    /// completed, failed, skipped
    pub status: String,
    pub duration_ms: u64,
    pub tool: Option<String>,
    pub tier: Option<Tier>,
    pub tokens: u64,
    pub cost_usd: f64,
    pub input_summary: Option<String>,
    pub output_summary: Option<String>,
    pub error: Option<String>,
}

/// A workflow run: the durable record of what the orchestrator did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub tenant: TenantId,
    pub run_id: Uuid,
    pub workflow_id: String,
    /// running, completed, failed, compensated, compensation_failed
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: u64,
    pub tokens: u64,
    pub cost_usd: f64,
    pub steps: Vec<StepRecord>,
    pub compensation: Vec<StepRecord>,
    pub events: Vec<String>,
    pub errors: Vec<String>,
    /// Why the run did not complete: the failed step (when a step failed) and the reason.
    pub failure: Option<Failure>,
    pub output: Value,
    /// Where an unfinished run stands, so that another worker can resume it; cleared when the run
    /// finishes. Internal: not part of the API's view of a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

impl Run {
    /// A run of `workflow_id` that has just started: no steps, no events, status `running`.
    pub fn started(tenant: TenantId, run_id: Uuid, workflow_id: &str, at: DateTime<Utc>) -> Self {
        Run {
            tenant,
            run_id,
            workflow_id: workflow_id.to_string(),
            status: "running".into(),
            started_at: at,
            finished_at: None,
            duration_ms: 0,
            tokens: 0,
            cost_usd: 0.0,
            steps: vec![],
            compensation: vec![],
            events: vec![],
            errors: vec![],
            failure: None,
            output: Value::Null,
            checkpoint: None,
        }
    }

    /// Whether the run still has work to do (forward or compensating).
    pub fn unfinished(&self) -> bool {
        matches!(self.status.as_str(), "running" | "compensating")
    }
}

/// The durable state of a saga between two steps: enough for any worker to carry on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    /// The worker that holds the run, and until when; past it, the run is abandoned.
    pub owner: String,
    pub lease_until: DateTime<Utc>,
    /// The caller and input of the run (the orchestrator's request, without the tenant record).
    pub request: Value,
    /// The workflow context (`input`, step outputs) before the next node.
    pub ctx: Value,
    /// The next node to run, as a path from the top workflow through sub-workflows:
    /// `[{workflow, prefix, node}]`. Empty while compensating.
    pub frames: Vec<Frame>,
    /// Visits per node so far (loop bounds survive a restart).
    pub visits: std::collections::BTreeMap<String, u32>,
    /// Completed effects that have a compensation, oldest first.
    pub compensable: Vec<CompensableStep>,
    /// The tier of the last model call.
    pub tier_used: Option<crate::domain::Tier>,
    /// Set while compensating: why (the failure, or `manually_cancelled`).
    pub compensating: Option<String>,
}

/// One level of the position in a run: node `node` of `workflow`, whose step ids carry `prefix`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Frame {
    pub workflow: String,
    pub prefix: String,
    pub node: String,
}

/// A completed effect and what its compensation needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CompensableStep {
    pub step_id: String,
    pub tool: String,
    pub params: Value,
    pub output: Value,
}

/// The step that ended a run, and why (`step_id` is absent for budget stops and timeouts).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub step_id: Option<String>,
    pub reason: String,
}

/// An audit row: who tried what, and whether it was allowed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub resource: String,
    /// allowed or denied
    pub outcome: String,
    pub detail: String,
}

/// Usage counters of one tenant, built from `usage.metered` events.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    pub requests: u64,
    pub tokens: u64,
    pub tool_calls: u64,
    pub cost_usd: f64,
}

/// The analytics read model's row for one finished run, built from `workflow.*` events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: Uuid,
    pub workflow_id: String,
    pub tier: Option<Tier>,
    pub status: String,
    pub duration_ms: u64,
    pub cost_usd: f64,
}
