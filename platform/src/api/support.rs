//! Leads (the lead_capture workflow) and escalation tickets (the escalation workflow).

use super::auth::require_role;
use super::dto::*;
use super::error::ApiError;
use super::extract::{Caller, StrictJson};
use super::{idempotency, run_error, run_request, validate};
use crate::app::AppState;
use crate::domain::Role;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde_json::json;
use serde_json::Value;

#[utoipa::path(post, path = "/api/v1/leads", request_body = LeadRequest,
    responses((status = 201, body = LeadResponse, description = "A new, qualified lead"),
              (status = 200, body = LeadResponse, description = "A duplicate of an existing lead (duplicate_of is set)"),
              (status = 400, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn lead(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    StrictJson(req, raw): StrictJson<LeadRequest>,
) -> Result<Response, ApiError> {
    validate::text("name", &req.name, 200)?;
    validate::email("email", &req.email)?;
    validate::opt_text("company", req.company.as_deref(), 200)?;
    validate::opt_text("phone", req.phone.as_deref(), 40)?;
    validate::opt_text("interest", req.interest.as_deref(), 500)?;
    validate::opt_text("source", req.source.as_deref(), 100)?;
    let work = || async {
        let mut lead = serde_json::to_value(&req).map_err(ApiError::internal)?;
        if lead["source"].is_null() {
            lead["source"] = json!("api");
        }
        let mut preset = serde_json::Map::new();
        preset.insert("lead".into(), lead);
        let o = app
            .engine
            .run(&run_request(&caller, "lead_capture", json!({}), preset))
            .await;
        if o.failure.is_some() {
            return Err(run_error(&o));
        }
        let out = &o.output;
        let duplicate = out["status"] == "duplicate";
        let body = LeadResponse {
            lead_id: out["lead_id"].as_str().unwrap_or("").to_string(),
            qualification: serde_json::from_value(out["qualification"].clone()).ok(),
            status: out["status"].as_str().unwrap_or("").to_string(),
            duplicate_of: out["duplicate_of"].as_str().map(str::to_string),
            run_id: o.run.run_id,
        };
        let status = if duplicate {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok((
            status,
            serde_json::to_value(body).map_err(ApiError::internal)?,
        ))
    };
    idempotency::once(&app, &caller, &headers, "leads", &raw, work).await
}

#[utoipa::path(post, path = "/api/v1/tickets", request_body = TicketRequest,
    responses((status = 201, body = TicketResponse), (status = 400, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn ticket(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    StrictJson(req, raw): StrictJson<TicketRequest>,
) -> Result<Response, ApiError> {
    validate::text("subject", &req.subject, 200)?;
    validate::content(
        "description",
        &req.description,
        app.cfg.limits.max_content_chars,
    )?;
    let priority = req.priority.clone().unwrap_or_else(|| "normal".into());
    if !["low", "normal", "high", "urgent"].contains(&priority.as_str()) {
        return Err(ApiError::field(
            "priority",
            "must be low, normal, high or urgent",
        ));
    }
    let work = || async {
        let mut preset = serde_json::Map::new();
        preset.insert(
            "ticket_request".into(),
            json!({"subject": req.subject, "description": req.description, "priority": priority}),
        );
        let o = app
            .engine
            .run(&run_request(&caller, "escalation", json!({}), preset))
            .await;
        if o.failure.is_some() {
            return Err(run_error(&o));
        }
        let s = |k: &str| o.output[k].as_str().unwrap_or("").to_string();
        let body = TicketResponse {
            ticket_id: s("ticket_id"),
            status: s("status"),
            assigned_queue: s("assigned_queue"),
            priority: s("priority"),
            run_id: o.run.run_id,
        };
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(body).map_err(ApiError::internal)?,
        ))
    };
    idempotency::once(&app, &caller, &headers, "tickets", &raw, work).await
}

#[utoipa::path(get, path = "/api/v1/leads/{lead_id}", params(("lead_id" = String, Path, description = "The lead id")),
    responses((status = 200, description = "The stored lead"), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_lead(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_role(&app, &caller, &[Role::User, Role::Admin], "lead read").await?;
    let l = app
        .store
        .lead(&caller.tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("lead {id}")))?;
    Ok(Json(serde_json::to_value(l).map_err(ApiError::internal)?))
}

#[utoipa::path(get, path = "/api/v1/tickets/{ticket_id}", params(("ticket_id" = String, Path, description = "The ticket id")),
    responses((status = 200, description = "The stored ticket"), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_ticket(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = app
        .store
        .ticket(&caller.tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("ticket {id}")))?;
    Ok(Json(serde_json::to_value(t).map_err(ApiError::internal)?))
}
