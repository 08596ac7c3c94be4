//! The gateway: axum routes of API.md behind request ids, metrics, authentication, tenancy, rate
//! limits and quotas. Handlers live in one module per area; `error` is the only place that maps
//! errors to statuses.

pub mod admin;
pub mod auth;
pub mod chat;
pub mod dto;
pub mod error;
pub mod extract;
pub mod guard;
pub mod idempotency;
pub mod openapi;
pub mod operator;
pub mod orders;
pub mod rag;
pub mod realtime;
pub mod support;
pub mod system;
pub mod validate;
pub mod workflows;

use crate::app::AppState;
use crate::orchestrator::{RunFailure, RunOutcome, RunRequest};
use crate::telemetry::{HttpLabels, RouteLabels};
use crate::tools::ToolError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::Router;
use error::{ApiError, Code};
use extract::Caller;
use serde_json::Value;

/// Every route, with its middleware.
pub fn router(app: AppState) -> Router {
    let protected = Router::new()
        .route("/api/v1/chat/message", post(chat::message))
        .route("/api/v1/workflows/execute", post(workflows::execute))
        .route("/api/v1/workflows", get(workflows::list))
        .route("/api/v1/runs/{run_id}", get(workflows::run))
        .route("/api/v1/runs/{run_id}/cancel", post(workflows::cancel_run))
        .route("/api/v1/versions", get(workflows::versions))
        .route("/api/v1/orders", post(orders::create))
        .route("/api/v1/orders/{order_id}", get(orders::get_order))
        .route("/api/v1/orders/{order_id}/cancel", post(orders::cancel))
        .route("/api/v1/products", get(orders::products))
        .route("/api/v1/leads", post(support::lead))
        .route("/api/v1/tickets", post(support::ticket))
        .route("/api/v1/leads/{lead_id}", get(support::get_lead))
        .route("/api/v1/tickets/{ticket_id}", get(support::get_ticket))
        .route("/api/v1/outbox", get(admin::outbox))
        .route("/api/v1/audit", get(admin::audit_log))
        .route(
            "/api/v1/rag/documents",
            post(rag::create_document).get(rag::list_documents),
        )
        .route(
            "/api/v1/rag/documents/{document_id}",
            patch(rag::patch_document).get(rag::get_document),
        )
        .route(
            "/api/v1/rag/documents/{document_id}/access",
            get(rag::document_access),
        )
        .route("/api/v1/rag/reindex", post(rag::reindex))
        .route("/ws/chat", get(realtime::chat))
        .route("/api/v1/rag/query", post(rag::query))
        .route("/api/v1/usage", get(admin::usage))
        .route("/api/v1/analytics/summary", get(admin::analytics))
        .route_layer(middleware::from_fn_with_state(app.clone(), auth::gate));
    Router::new()
        .route("/api/v1/auth/login", post(admin::login))
        .route(
            "/api/v1/operator/tenants/{tenant_id}",
            axum::routing::put(operator::provision),
        )
        .route("/api/v1/operator/faults", post(operator::fault))
        .route("/api/v1/operator/clock", post(operator::clock))
        .route("/api/v1/operator/events", get(operator::events))
        .route(
            "/api/v1/operator/tenants/{tenant_id}/record",
            get(operator::record),
        )
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .merge(protected)
        .fallback(system::not_found)
        .layer(middleware::from_fn_with_state(app.clone(), request_context))
        .with_state(app)
}

fn valid_request_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Outermost middleware: accepts or generates `X-Request-ID`, makes it visible to error envelopes,
/// echoes it, and records request metrics.
async fn request_context(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let rid = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| valid_request_id(s))
        .map(str::to_string)
        .unwrap_or_else(|| app.request_ids.uuid().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let timer = std::time::Instant::now();
    // The request's span; the gate records the tenant once the caller is known. Ids only.
    let span = tracing::info_span!("http.request", request_id = %rid, %method, %route, tenant_id = tracing::field::Empty, status = tracing::field::Empty);
    let work = tracing::Instrument::instrument(next.run(req), span.clone());
    let mut resp = error::REQUEST_ID.scope(rid.clone(), work).await;
    let elapsed = timer.elapsed();
    span.record("status", resp.status().as_u16());
    span.in_scope(|| tracing::info!(request_id = %rid, %method, %route, status = resp.status().as_u16(), duration_ms = elapsed.as_millis() as u64, "request"));
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    app.metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method,
            route: route.clone(),
            status: resp.status().as_u16(),
        })
        .inc();
    app.metrics
        .http_duration
        .get_or_create(&RouteLabels { route })
        .observe(elapsed.as_secs_f64());
    resp
}

/// A run request for `caller`.
pub fn run_request(
    caller: &Caller,
    workflow_id: &str,
    input: Value,
    preset: serde_json::Map<String, Value>,
) -> RunRequest {
    RunRequest {
        tenant: caller.tenant.clone(),
        user_id: caller.user_id.clone(),
        role: caller.role,
        workflow_id: workflow_id.to_string(),
        input,
        preset,
        history: vec![],
        tier_preference: None,
        compensation_enabled: true,
        deadline_ms: None,
    }
}

/// The business refusal that failed a run, if that is what failed it.
pub fn rejection(o: &RunOutcome) -> Option<(&str, &str)> {
    match &o.failure {
        Some(RunFailure::Step {
            tool_error: Some(ToolError::Rejected { code, message }),
            ..
        }) => Some((code, message)),
        _ => None,
    }
}

/// The error for a run that did not complete (when the route has no more specific mapping).
pub fn run_error(o: &RunOutcome) -> ApiError {
    let run_id = o.run.run_id.to_string();
    match &o.failure {
        Some(RunFailure::NotFound(w)) => {
            ApiError::new(Code::WorkflowNotFound, format!("workflow `{w}` not found"))
        }
        Some(RunFailure::Timeout) => ApiError::new(Code::Timeout, "the run exceeded its deadline")
            .with_detail("run_id", run_id),
        Some(RunFailure::Step {
            tool_error: Some(ToolError::InvalidParams(m)),
            ..
        }) => ApiError::field("parameters", m.clone()),
        Some(RunFailure::Step {
            tool_error: Some(e @ ToolError::NotAllowed(_)),
            ..
        }) => ApiError::new(Code::ToolNotAllowed, e.to_string()).with_detail("run_id", run_id),
        // A URL the fetch tool's SSRF guard refused: the caller's input, so a 400 naming the run.
        Some(RunFailure::Step {
            tool_error: Some(e @ ToolError::Rejected { code, .. }),
            ..
        }) if code == "ssrf_blocked" => {
            ApiError::new(Code::ValidationError, e.to_string()).with_detail("run_id", run_id)
        }
        // A tool that did not answer in time: the gateway's own timeout answer, the run named.
        Some(RunFailure::Step {
            step_id,
            tool_error: Some(ToolError::Timeout),
            ..
        }) => ApiError::new(
            Code::Timeout,
            format!("step `{step_id}` timed out; the run ended {}", o.run.status),
        )
        .with_detail("run_id", run_id),
        // An upstream refusing calls (open breaker, full bulkhead): come back later.
        Some(RunFailure::Step {
            step_id,
            tool_error: Some(e @ (ToolError::CircuitOpen(_) | ToolError::BulkheadFull(_))),
            ..
        }) => ApiError::new(
            Code::ServiceUnavailable,
            format!("step `{step_id}`: {e}; the run ended {}", o.run.status),
        )
        .with_header("retry-after", 1)
        .with_detail("run_id", run_id),
        Some(RunFailure::Interrupted) => ApiError::new(
            Code::ServiceUnavailable,
            "this worker stopped before the run ended; another worker resumes it",
        )
        .with_header("retry-after", 1)
        .with_detail("run_id", run_id),
        Some(f) => ApiError::new(
            Code::WorkflowExecutionFailed,
            format!("run {run_id} ended {}: {f}", o.run.status),
        )
        .with_detail("run_id", run_id),
        None => ApiError::new(Code::InternalError, "the run reported no failure"),
    }
}
