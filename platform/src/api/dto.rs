//! Request and response bodies of the public API (API.md). Requests reject unknown fields; every type
//! here also feeds `/openapi.json`, so the document is generated from the code that serves it.

use crate::domain::{Level, Role, Tier};
use crate::llm::TurnRole;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

// ---- chat ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    pub message: ChatMessage,
    pub context: Option<ChatContext>,
    pub options: Option<ChatOptions>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// 1 to 10,000 characters.
    pub content: String,
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatContext {
    pub conversation_id: Option<Uuid>,
    /// Earlier turns; only `user` and `assistant` roles are accepted.
    pub previous_messages: Option<Vec<PreviousMessage>>,
    /// Where the customer wrote from: web (default), mobile, api, facebook_messenger, zalo, telegram.
    pub channel: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviousMessage {
    #[schema(value_type = String)]
    pub role: TurnRole,
    pub content: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatOptions {
    /// A workflow to run instead of `customer_support`.
    pub workflow: Option<String>,
    /// Answer as an SSE stream.
    pub stream: Option<bool>,
    pub tier_preference: Option<Tier>,
    /// The client's deadline in milliseconds (1 to 600000), as for workflow execution.
    pub deadline_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatResponse {
    pub response: ChatReply,
    /// The run that answered; absent when the guards refused the message before any run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowSummary>,
    /// What the guards did (`blocked`, `violations`); absent when they did nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<crate::guard::Verdict>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatReply {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub content: ReplyContent,
    pub metadata: ReplyMetadata,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplyContent {
    pub text: String,
    pub citations: Vec<Citation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Citation {
    pub document_id: Uuid,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplyMetadata {
    pub tier_used: Tier,
    pub confidence: f64,
    pub processing_time_ms: u64,
    pub tokens_used: u64,
    pub cost_usd: f64,
    pub intent: Option<String>,
    /// The channel the turn came from and is answered on.
    pub channel: String,
    /// `inline` (the answer is this response) or `queued` (also queued in the outbox for the
    /// channel's adapter; the outbox says when it was sent).
    pub delivery_status: String,
    /// The router's decision for the message: reasons, expected cost and latency, fallback, canary.
    #[schema(value_type = Object)]
    pub routing: Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowSummary {
    pub run_id: Uuid,
    pub workflow_id: String,
    pub status: String,
    pub steps_executed: Vec<StepView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepView {
    pub step_id: String,
    pub step_type: String,
    pub status: String,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

// ---- workflows and runs ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    pub workflow_id: String,
    #[schema(value_type = Object)]
    pub parameters: Option<serde_json::Map<String, Value>>,
    pub options: Option<ExecuteOptions>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteOptions {
    /// Compensate completed steps when a later one fails (default true).
    pub compensation_enabled: Option<bool>,
    /// The client's deadline in milliseconds (1 to 600000); the run ends at the earlier of it and the
    /// workflow's time budget, with 504 TIMEOUT.
    pub deadline_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecuteResponse {
    pub execution: Execution,
    pub steps: Vec<StepView>,
    pub compensation_actions: Vec<StepView>,
    #[schema(value_type = Object)]
    pub output: Value,
    pub error: Option<String>,
    /// The failed step and the reason, when the run did not complete.
    #[schema(value_type = Option<Object>)]
    pub failure: Option<crate::store::model::Failure>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Execution {
    pub run_id: Uuid,
    pub workflow_id: String,
    pub status: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowInfo {
    pub workflow_id: String,
    pub version: String,
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowList {
    pub workflows: Vec<WorkflowInfo>,
}

/// A workflow's versions as the caller's tenant sees it (after overlays).
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowVersion {
    pub version: String,
    pub prompt_version: String,
}

/// What answers the caller's tenant: the versions an episode records and an exact replay requires.
#[derive(Debug, Serialize, ToSchema)]
pub struct Versions {
    /// Workflow id -> its version and prompt version.
    pub workflows: std::collections::BTreeMap<String, WorkflowVersion>,
    /// Tool name -> a fingerprint of its manifest (parameters, timeout, retries, compensation).
    pub tools: std::collections::BTreeMap<String, String>,
    /// Tier -> the model that answers it.
    pub models: std::collections::BTreeMap<String, String>,
    /// A fingerprint of the router's thresholds and the tenant's canary share.
    pub router: String,
}

// ---- orders ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// 1 to 50 lines.
    pub items: Vec<OrderLine>,
    pub payment: PaymentInput,
    pub shipping_address: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    pub sku: String,
    /// 1 to 1000.
    pub quantity: i64,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    /// card or invoice.
    pub method: String,
    pub card_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModifyRequest {
    pub shipping_address: String,
}

// ---- leads and tickets ----

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadRequest {
    pub name: String,
    pub email: String,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub interest: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadResponse {
    pub lead_id: String,
    pub qualification: Option<Qualification>,
    pub status: String,
    pub duplicate_of: Option<String>,
    pub run_id: Uuid,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Qualification {
    pub grade: String,
    pub score: u32,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    pub subject: String,
    pub description: String,
    /// low, normal (default), high or urgent.
    pub priority: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketResponse {
    pub ticket_id: String,
    pub status: String,
    pub assigned_queue: String,
    pub priority: String,
    pub run_id: Uuid,
}

// ---- retrieval ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentCreate {
    pub title: String,
    pub content: String,
    /// Omitted: the level the sensitivity tagger gives the text (an SSN or a card number makes it
    /// restricted, an account number confidential, anything else public).
    pub level: Option<Level>,
    /// When set, only these roles may read the document (within their level bound).
    pub roles: Option<Vec<Role>>,
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentPatch {
    pub level: Option<Level>,
    /// A new role list; an empty list removes the restriction.
    pub roles: Option<Vec<Role>>,
    /// A new title or content makes a new version (the old text is no longer retrieved).
    pub title: Option<String>,
    pub content: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    pub document_id: Uuid,
    pub title: String,
    pub level: Level,
    pub roles: Option<Vec<Role>>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub version: u32,
    /// Its retrieval-index entry: when it was made, when it is due again (by level), the guard's
    /// verdict and the sensitivity tag. Absent until first indexed.
    pub index: Option<crate::rag::index::IndexEntry>,
    /// The entry is missing, past its due time or made under other guard rules.
    pub stale: bool,
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DocumentsQuery {
    /// Only the documents whose index entry is stale.
    pub stale: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    pub documents: Vec<DocumentView>,
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccessQuery {
    /// admin, user or guest; anything else is `INVALID_ROLE`.
    pub role: String,
}

/// Whether a role may read a document now, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessView {
    pub document_id: Uuid,
    pub role: Role,
    pub allowed: bool,
    /// `access_granted`, `expired`, `insufficient_level` or `insufficient_roles`.
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReindexRequest {
    /// Every document, not only the stale ones.
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReindexResponse {
    /// The documents indexed again, with their new entries.
    pub reindexed: Vec<DocumentView>,
    /// Those whose verdict or sensitivity changed since their last entry.
    pub changed: Vec<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RagQuery {
    pub question: String,
    /// 1 to 50, default 5.
    pub top_k: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RagAnswer {
    pub answer: String,
    pub sources: Vec<Source>,
    /// What the guards did: a blocked question, withheld documents, redactions. Absent when
    /// they did nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<crate::guard::Verdict>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Source {
    pub document_id: Uuid,
    pub title: String,
    pub level: Level,
    pub score: f64,
    pub version: u32,
}

// ---- auth, usage, analytics, catalogue ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub tenant_id: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageResponse {
    pub tenant_id: String,
    pub plan: String,
    /// The billing period these counters belong to (`YYYY-MM`, UTC).
    pub period: String,
    pub requests: u64,
    pub tokens: u64,
    pub tool_calls: u64,
    pub cost_usd: f64,
    pub quota: Quota,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Quota {
    pub monthly_requests: u64,
    pub monthly_tokens: u64,
    pub requests_remaining: u64,
    pub tokens_remaining: u64,
    pub rate_limit_per_window: u32,
    pub window_secs: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsSummary {
    pub total_runs: usize,
    #[schema(value_type = Object)]
    pub runs_by_workflow: std::collections::BTreeMap<String, usize>,
    #[schema(value_type = Object)]
    pub runs_by_tier: std::collections::BTreeMap<String, usize>,
    #[schema(value_type = Object)]
    pub runs_by_status: std::collections::BTreeMap<String, usize>,
    pub p50_latency_ms: u64,
    pub p95_latency_ms: u64,
    pub total_cost_usd: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub sku: String,
    pub name: String,
    pub price: f64,
    pub stock: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    pub products: Vec<ProductView>,
}

/// Converts a stored step to its API view.
impl From<&crate::store::model::StepRecord> for StepView {
    fn from(s: &crate::store::model::StepRecord) -> Self {
        Self {
            step_id: s.step_id.clone(),
            step_type: s.step_type.clone(),
            status: s.status.clone(),
            duration_ms: s.duration_ms,
            tool: s.tool.clone(),
            tier: s.tier,
            error: s.error.clone(),
        }
    }
}
