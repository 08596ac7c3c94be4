//! Authentication, tenancy, rate limits and quotas: the middleware in front of every protected route.
//! A JWT (HS256, claims `sub`, `tenant_id`, `roles`, `exp`) or an API key (stored as its sha256)
//! names the caller and the tenant; a differing `X-Tenant-ID` is refused; then the tenant's token
//! bucket and monthly quotas are checked, and `X-RateLimit-*` headers go on every response.

use super::error::{ApiError, Code};
use super::extract::Caller;
use crate::app::{App, AppState};
use crate::config::Config;
use crate::domain::{Role, TenantId};
use crate::store::model::AuditEntry;
use crate::telemetry::PlanLabels;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The claims of our JWTs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub tenant_id: String,
    pub roles: Vec<String>,
    pub exp: i64,
    pub iat: i64,
}

/// Signs a token for `user` of `tenant` with `role`, valid for `ttl_secs` from `now`.
pub fn issue_token(
    cfg: &Config,
    tenant: &str,
    user: &str,
    role: &str,
    ttl_secs: i64,
    now: DateTime<Utc>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = Claims {
        sub: user.to_string(),
        tenant_id: tenant.to_string(),
        roles: vec![role.to_string()],
        exp: (now + Duration::seconds(ttl_secs)).timestamp(),
        iat: now.timestamp(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(cfg.jwt_secret.as_bytes()),
    )
}

/// Verifies signature and shape, then expiry against the platform clock (not the OS clock, so a
/// frozen test clock decides).
pub fn verify_token(cfg: &Config, token: &str, now: DateTime<Utc>) -> Result<Claims, ApiError> {
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_exp = false;
    v.required_spec_claims = ["exp", "sub"].iter().map(|s| s.to_string()).collect();
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(cfg.jwt_secret.as_bytes()),
        &v,
    )
    .map_err(|e| ApiError::new(Code::InvalidToken, format!("invalid token: {e}")))?;
    if data.claims.exp <= now.timestamp() {
        return Err(ApiError::new(Code::TokenExpired, "the token has expired"));
    }
    Ok(data.claims)
}

/// The stored form of an API key.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// An argon2 PHC hash of `password` with a salt from `salt_seed` (deterministic demo data).
pub fn hash_password(
    password: &str,
    salt_seed: &str,
) -> Result<String, argon2::password_hash::Error> {
    let salt_bytes = Sha256::digest(salt_seed.as_bytes());
    let salt = SaltString::encode_b64(&salt_bytes[..16])?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Writes an audit row; failures to audit are logged, never hidden as success of the request.
pub async fn audit(
    app: &App,
    tenant: &TenantId,
    actor: &str,
    action: &str,
    resource: &str,
    outcome: &str,
    detail: &str,
) {
    let row = AuditEntry {
        tenant: tenant.clone(),
        at: app.clock.now(),
        actor: actor.to_string(),
        action: action.to_string(),
        resource: resource.to_string(),
        outcome: outcome.to_string(),
        detail: detail.to_string(),
    };
    if let Err(err) = app.store.append_audit(&row).await {
        tracing::error!(%err, "could not write audit row");
    }
}

/// Refuses callers whose role is not in `allowed` with 403 `AUTHORIZATION_FAILED`, and audits it.
pub async fn require_role(
    app: &App,
    caller: &Caller,
    allowed: &[Role],
    resource: &str,
) -> Result<(), ApiError> {
    if allowed.contains(&caller.role) {
        return Ok(());
    }
    audit(
        app,
        &caller.tenant.id,
        &caller.user_id,
        "access",
        resource,
        "denied",
        &format!("role {} not allowed", caller.role.as_str()),
    )
    .await;
    Err(ApiError::new(
        Code::AuthorizationFailed,
        format!("the {} role may not use {resource}", caller.role.as_str()),
    ))
}

async fn authenticate(app: &App, h: &axum::http::HeaderMap) -> Result<Caller, ApiError> {
    let now = app.clock.now();
    let (tenant_id, user_id, roles) = if let Some(auth) = h.get(axum::http::header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidToken,
                    "the Authorization header must be `Bearer <token>`",
                )
            })?;
        let c = verify_token(&app.cfg, token, now)?;
        (c.tenant_id, c.sub, c.roles)
    } else if let Some(key) = h.get("x-api-key") {
        let key = key
            .to_str()
            .map_err(|_| ApiError::new(Code::InvalidApiKey, "invalid API key"))?;
        let k = app
            .store
            .api_key_by_hash(&hash_api_key(key))
            .await?
            .ok_or_else(|| ApiError::new(Code::InvalidApiKey, "invalid API key"))?;
        (
            k.tenant.to_string(),
            format!("apikey:{}", k.label),
            vec![k.role.as_str().to_string()],
        )
    } else {
        return Err(ApiError::new(
            Code::AuthenticationRequired,
            "send `Authorization: Bearer <token>` or `X-API-Key`",
        ));
    };
    let mut role = None;
    for r in &roles {
        let parsed = Role::parse(r).map_err(|e| ApiError::new(Code::InvalidRole, e.to_string()))?;
        role = Some(match (role, parsed) {
            (Some(Role::Admin), _) | (_, Role::Admin) => Role::Admin,
            (Some(Role::User), _) | (_, Role::User) => Role::User,
            _ => Role::Guest,
        });
    }
    let role =
        role.ok_or_else(|| ApiError::new(Code::InvalidRole, "the credential carries no role"))?;
    let tid = TenantId::parse(&tenant_id)
        .map_err(|_| ApiError::new(Code::InvalidToken, "the credential names no valid tenant"))?;
    let tenant = app.store.tenant(&tid).await?.ok_or_else(|| {
        ApiError::new(Code::InvalidToken, "the credential's tenant does not exist")
    })?;
    if let Some(claimed) = h.get("x-tenant-id") {
        if claimed.to_str().map(str::trim).ok() != Some(tenant_id.as_str()) {
            let claimed = String::from_utf8_lossy(claimed.as_bytes()).to_string();
            audit(
                app,
                &tid,
                &user_id,
                "cross_tenant_access",
                &claimed,
                "denied",
                "X-Tenant-ID differs from the credential",
            )
            .await;
            return Err(ApiError::new(
                Code::TenantMismatch,
                "X-Tenant-ID does not match the credential's tenant",
            ));
        }
    }
    Ok(Caller {
        tenant,
        user_id,
        role,
    })
}

fn next_month(now: DateTime<Utc>) -> DateTime<Utc> {
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .unwrap_or(now + Duration::days(31))
}

fn set_header(resp: &mut Response, name: &'static str, v: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&v.to_string()) {
        resp.headers_mut().insert(name, v);
    }
}

/// Reading one's own usage or versions is bookkeeping, not use: it is never metered (otherwise
/// every poll of `/api/v1/usage` would count itself, and no reader could see an exact count while
/// the projector catches up) and never refused by the monthly quota (a tenant over its quota can
/// still see why). The rate limit still applies.
fn is_bookkeeping(path: &str) -> bool {
    path == "/api/v1/usage" || path == "/api/v1/versions"
}

/// The tenant's rate limit and monthly quota for one request (or one WebSocket message) on
/// `path`: the bucket's decision (None when the limiter is unavailable: fail open), or the 429
/// with its headers, audited and counted.
pub async fn admit(
    app: &App,
    caller: &Caller,
    path: &str,
) -> Result<Option<crate::kv::TokenDecision>, ApiError> {
    let plan = app.cfg.limits_for(&caller.tenant);
    let now = app.clock.now();
    let bucket = app
        .kv
        .take_token(
            &format!("rl:{}", caller.tenant.id),
            plan.requests_per_window,
            Duration::seconds(i64::from(plan.window_secs)),
            now,
        )
        .await;
    let decision = match bucket {
        Ok(d) => Some(d),
        Err(err) => {
            // Fail open: a Kv outage must not take the API down with it.
            tracing::warn!(%err, "rate limiter unavailable, allowing request");
            app.metrics
                .rate_limited
                .get_or_create(&PlanLabels {
                    plan: caller.tenant.plan.as_str().into(),
                    kind: "limiter_unavailable".into(),
                })
                .inc();
            None
        }
    };
    if let Some(d) = &decision {
        if !d.allowed {
            app.metrics
                .rate_limited
                .get_or_create(&PlanLabels {
                    plan: caller.tenant.plan.as_str().into(),
                    kind: "rate".into(),
                })
                .inc();
            audit(
                app,
                &caller.tenant.id,
                &caller.user_id,
                "rate_limit_exceeded",
                path,
                "denied",
                "",
            )
            .await;
            return Err(ApiError::new(
                Code::RateLimitExceeded,
                format!(
                    "rate limit of {} requests per {} s exceeded; retry in {} s",
                    d.limit, plan.window_secs, d.retry_after_secs
                ),
            )
            .with_header("retry-after", d.retry_after_secs)
            .with_header("x-ratelimit-limit", d.limit)
            .with_header("x-ratelimit-remaining", 0)
            .with_header("x-ratelimit-reset", d.reset_secs));
        }
    }
    let usage = app
        .store
        .usage(&caller.tenant.id, &crate::metering::period_of(now))
        .await?;
    // The comparison a quota spec must hold to account: one request more is a defect.
    let allowed = plan
        .monthly_requests
        .saturating_add(crate::planted::quota_slack(&app.cfg));
    if !is_bookkeeping(path) && (usage.requests >= allowed || usage.tokens >= plan.monthly_tokens) {
        app.metrics
            .rate_limited
            .get_or_create(&PlanLabels {
                plan: caller.tenant.plan.as_str().into(),
                kind: "quota".into(),
            })
            .inc();
        audit(
            app,
            &caller.tenant.id,
            &caller.user_id,
            "quota_exceeded",
            path,
            "denied",
            "",
        )
        .await;
        let retry = (next_month(now) - now).num_seconds().max(1);
        return Err(ApiError::new(
            Code::TenantQuotaExceeded,
            "the tenant's monthly quota is used up",
        )
        .with_header("retry-after", retry)
        .with_header("x-ratelimit-limit", plan.monthly_requests)
        .with_header("x-ratelimit-remaining", 0)
        .with_header("x-ratelimit-reset", retry));
    }
    Ok(decision)
}

/// The middleware: authenticate, check tenancy, rate limit, quota; then meter successful requests.
pub async fn gate(
    State(app): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = authenticate(&app, req.headers()).await?;
    tracing::Span::current().record("tenant_id", caller.tenant.id.as_str());
    let path = req.uri().path().to_string();
    let decision = admit(&app, &caller, &path).await?;
    let plan = app.cfg.limits_for(&caller.tenant);
    // Concurrency: one slot per request in flight, shared by every instance through the Kv.
    let slot_key = format!("cc:{}", caller.tenant.id);
    let slot_ttl = Duration::milliseconds(app.cfg.run_budget.timeout_ms as i64 * 2);
    let slot = match app
        .kv
        .acquire_slot(&slot_key, plan.max_concurrent_requests, slot_ttl)
        .await
    {
        Ok(true) => true,
        Ok(false) => {
            app.metrics
                .rate_limited
                .get_or_create(&PlanLabels {
                    plan: caller.tenant.plan.as_str().into(),
                    kind: "concurrency".into(),
                })
                .inc();
            audit(
                &app,
                &caller.tenant.id,
                &caller.user_id,
                "concurrency_limit_exceeded",
                &path,
                "denied",
                &format!(
                    "{} requests already in flight",
                    plan.max_concurrent_requests
                ),
            )
            .await;
            return Err(ApiError::new(
                Code::RateLimitExceeded,
                format!(
                    "concurrent request limit of {} exceeded; retry when a request finishes",
                    plan.max_concurrent_requests
                ),
            )
            .with_header("retry-after", 1));
        }
        Err(err) => {
            // Fail open, as the rate limiter does.
            tracing::warn!(%err, "concurrency slots unavailable, allowing request");
            false
        }
    };
    let tenant = caller.tenant.id.clone();
    req.extensions_mut().insert(caller);
    let mut resp = next.run(req).await;
    if slot {
        if let Err(err) = app.kv.release_slot(&slot_key).await {
            tracing::warn!(%err, "concurrency slot not released; it expires with its TTL");
        }
    }
    if let Some(d) = decision {
        set_header(&mut resp, "x-ratelimit-limit", d.limit);
        set_header(&mut resp, "x-ratelimit-remaining", d.remaining);
        set_header(&mut resp, "x-ratelimit-reset", d.reset_secs);
    }
    if resp.status().is_success() && !is_bookkeeping(&path) {
        meter_request(&app, &tenant).await;
    }
    Ok(resp)
}

/// Counts one served request (an HTTP request, or a WebSocket chat message) towards the tenant's
/// usage.
pub async fn meter_request(app: &App, tenant: &TenantId) {
    app.publish_from(
        &app.request_ids,
        tenant,
        "usage.metered",
        None,
        serde_json::json!({"requests": 1, "tokens": 0, "tool_calls": 0, "cost_usd": 0.0}),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_expire_by_the_given_clock() {
        let cfg = Config::default();
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).single().unwrap();
        let tok = issue_token(&cfg, "acme", "bob", "user", 60, t0).unwrap();
        let c = verify_token(&cfg, &tok, t0).unwrap();
        assert_eq!((c.tenant_id.as_str(), c.sub.as_str()), ("acme", "bob"));
        assert_eq!(
            verify_token(&cfg, &tok, t0 + Duration::seconds(61))
                .unwrap_err()
                .code,
            Code::TokenExpired
        );
        let other = Config {
            jwt_secret: "other".into(),
            ..Config::default()
        };
        assert_eq!(
            verify_token(&other, &tok, t0).unwrap_err().code,
            Code::InvalidToken
        );
        assert_eq!(
            verify_token(&cfg, "garbage", t0).unwrap_err().code,
            Code::InvalidToken
        );
    }

    #[test]
    fn passwords_verify_only_with_the_right_secret() {
        let h = hash_password("demo", "salt").unwrap();
        assert!(verify_password("demo", &h));
        assert!(!verify_password("Demo", &h));
        assert!(!verify_password("demo", "not a hash"));
    }
}
