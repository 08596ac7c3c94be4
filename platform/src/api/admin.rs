//! Login, and the admin views of usage and analytics.

use super::auth::{issue_token, require_role, verify_password};
use super::dto::*;
use super::error::{ApiError, Code};
use super::extract::{Caller, StrictJson};
use crate::app::AppState;
use crate::domain::{Role, TenantId};
use axum::extract::State;
use axum::Json;
use chrono::Duration;

#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = super::error::ErrorEnvelope)))]
pub async fn login(
    State(app): State<AppState>,
    StrictJson(req, _): StrictJson<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    // One answer for every failure, so the endpoint does not tell which tenants or emails exist.
    let denied = || {
        ApiError::new(
            Code::AuthenticationRequired,
            "invalid tenant, email or password",
        )
    };
    let tenant = TenantId::parse(&req.tenant_id).map_err(|_| denied())?;
    let user = app
        .store
        .user_by_email(&tenant, &req.email)
        .await?
        .ok_or_else(denied)?;
    if !verify_password(&req.password, &user.password_hash) {
        super::auth::audit(
            &app,
            &tenant,
            &req.email,
            "login",
            "auth",
            "denied",
            "wrong password",
        )
        .await;
        return Err(denied());
    }
    let now = app.clock.now();
    let ttl = app.cfg.token_ttl_secs;
    let token = issue_token(
        &app.cfg,
        tenant.as_str(),
        &user.user_id,
        user.role.as_str(),
        ttl,
        now,
    )
    .map_err(ApiError::internal)?;
    Ok(Json(TokenResponse {
        token,
        expires_at: now + Duration::seconds(ttl),
    }))
}

#[utoipa::path(get, path = "/api/v1/usage", responses((status = 200, body = UsageResponse), (status = 403, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn usage(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<UsageResponse>, ApiError> {
    require_role(&app, &caller, &[Role::Admin], "usage").await?;
    let period = crate::metering::period_of(app.clock.now());
    let u = app.store.usage(&caller.tenant.id, &period).await?;
    let plan = app.cfg.limits_for(&caller.tenant);
    Ok(Json(UsageResponse {
        tenant_id: caller.tenant.id.to_string(),
        plan: caller.tenant.plan.as_str().into(),
        period,
        requests: u.requests,
        tokens: u.tokens,
        tool_calls: u.tool_calls,
        cost_usd: (u.cost_usd * 1e6).round() / 1e6,
        quota: Quota {
            monthly_requests: plan.monthly_requests,
            monthly_tokens: plan.monthly_tokens,
            requests_remaining: plan.monthly_requests.saturating_sub(u.requests),
            tokens_remaining: plan.monthly_tokens.saturating_sub(u.tokens),
            rate_limit_per_window: plan.requests_per_window,
            window_secs: plan.window_secs,
        },
    }))
}

#[utoipa::path(get, path = "/api/v1/analytics/summary", responses((status = 200, body = AnalyticsSummary), (status = 403, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn analytics(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<AnalyticsSummary>, ApiError> {
    require_role(&app, &caller, &[Role::Admin], "analytics").await?;
    let rows = app.store.run_summaries(&caller.tenant.id).await?;
    Ok(Json(crate::metering::summarize(&rows)))
}

#[utoipa::path(get, path = "/api/v1/outbox", responses((status = 200, description = "The tenant's outbox: emails, notifications and channel replies, each pending, sending, sent, failed or cancelled"), (status = 403, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn outbox(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_role(&app, &caller, &[Role::Admin], "outbox").await?;
    let messages = app.store.outbox(&caller.tenant.id).await?;
    Ok(Json(serde_json::json!({ "messages": messages })))
}

#[utoipa::path(get, path = "/api/v1/audit", responses((status = 200, description = "The tenant's audit rows, oldest first"), (status = 403, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn audit_log(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_role(&app, &caller, &[Role::Admin], "audit log").await?;
    let entries = app.store.audit(&caller.tenant.id).await?;
    Ok(Json(serde_json::json!({ "entries": entries })))
}
