//! Unauthenticated system routes: liveness, readiness per backend, metrics, the OpenAPI document, and
//! the 404 for unknown routes.

use super::error::{ApiError, Code};
use crate::app::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use utoipa::OpenApi;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the store answers. A broker outage degrades (events wait in the outbox and are
/// relayed when it returns); so does a Kv outage (rate limits fail open, idempotent requests are
/// refused with 503).
pub async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let store = app.store.ping().await.err().map(|e| e.to_string());
    let bus = app.bus.ping().await.err().map(|e| e.to_string());
    let kv = app.kv.ping().await.err().map(|e| e.to_string());
    let show = |e: &Option<String>| e.clone().unwrap_or_else(|| "ok".into());
    let ready = store.is_none();
    let status = if !ready {
        "unavailable"
    } else if kv.is_some() || bus.is_some() {
        "degraded"
    } else {
        "ready"
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(
            json!({"status": status, "backends": {"store": show(&store), "bus": show(&bus), "kv": show(&kv), "llm": "ok"}}),
        ),
    )
}

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
}

pub async fn openapi() -> impl IntoResponse {
    Json(super::openapi::ApiDoc::openapi())
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(Code::NotFound, format!("no route {}", uri.path()))
}
