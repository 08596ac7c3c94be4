//! The operator surface: provisioning a tenant's data set, reading the latest events, and injecting
//! tool faults into a test deployment. It is how the harness loads fixtures and breaks sagas through a public surface, so
//! the same spec runs against an in-process platform or a deployment elsewhere (DESIGN.md, "Modes").
//!
//! Both routes sit outside tenant authentication: they are guarded by `X-Operator-Key`, and the
//! whole surface answers 404 unless `operator_key` is configured. Fault injection additionally needs
//! `fault_injection: true`, which only test deployments set.

use super::auth::{hash_api_key, hash_password};
use super::error::{ApiError, Code};
use super::extract::StrictJson;
use crate::app::AppState;
use crate::config::PlanLimits;
use crate::domain::{Level, Plan, Role, TenantId};
use crate::store::model::*;
use crate::tools::{Fault, FaultPoint};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;
use utoipa::ToSchema;

/// A tenant's whole data set, as a fixture describes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSeed {
    pub name: String,
    pub plan: Plan,
    /// Contract limits that replace the plan's.
    #[schema(value_type = Option<Object>)]
    pub limits: Option<PlanLimits>,
    #[serde(default)]
    pub users: Vec<UserSeed>,
    /// API keys to accept for this tenant (stored hashed).
    #[serde(default)]
    pub api_keys: Vec<ApiKeySeed>,
    #[serde(default)]
    pub products: Vec<ProductSeed>,
    #[serde(default)]
    pub orders: Vec<OrderSeed>,
    #[serde(default)]
    pub documents: Vec<DocumentSeed>,
    #[serde(default)]
    pub leads: Vec<LeadSeed>,
    /// The tenant's tool allow-list (every tool when absent); each must be a known tool.
    #[serde(default)]
    pub allowed_tools: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    pub user_id: String,
    pub email: String,
    pub password: String,
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySeed {
    pub key: String,
    pub label: String,
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductSeed {
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderSeed {
    pub order_id: String,
    pub user_id: String,
    pub status: String,
    pub items: Vec<OrderItemSeed>,
    pub payment_status: String,
    pub tracking_number: Option<String>,
    pub shipping_address: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemSeed {
    pub sku: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentSeed {
    pub document_id: uuid::Uuid,
    pub title: String,
    pub content: String,
    pub level: Level,
    pub roles: Option<Vec<Role>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadSeed {
    pub lead_id: String,
    pub name: String,
    pub email: String,
    pub company: Option<String>,
    pub grade: String,
    pub score: u32,
}

/// What provisioning stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Provisioned {
    pub tenant_id: String,
    pub users: usize,
    pub products: usize,
    pub orders: usize,
    pub documents: usize,
    pub leads: usize,
}

/// A fault for one tenant's calls of one tool or one model tier (`model:SLM_A`), or for every call
/// of the deployment's database (`database`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    pub tenant_id: String,
    pub tool: String,
    /// `call` (default) or `compensate`.
    pub point: Option<String>,
    /// `always_fail`, `{"fail_times": n}`, `{"fail_with": {"status": s, "times"?: n,
    /// "retry_after_ms"?: n}}`, `{"delay_ms": n}`, `hang`, `lose_answer` (the call runs, its answer never comes), `{"succeed_after_ms": n}` (503 until
    /// that much platform time has passed) or `none` (clears it).
    #[schema(value_type = Object)]
    pub fault: FaultSpec,
}

/// The fault kinds of [`Fault`], as the wire names them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultSpec {
    AlwaysFail,
    FailTimes(u32),
    FailWith(FailWith),
    DelayMs(u64),
    Hang,
    LoseAnswer,
    SucceedAfterMs(u64),
    None,
}

/// A failure with an HTTP status, as an upstream would answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailWith {
    pub status: u16,
    /// How many calls fail (every call when absent).
    pub times: Option<u32>,
    /// The `Retry-After` the upstream sends with each failure.
    pub retry_after_ms: Option<u64>,
}

fn operator(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = app.cfg.operator_key.as_deref() else {
        return Err(ApiError::new(Code::NotFound, "no such route"));
    };
    match headers.get("x-operator-key").and_then(|v| v.to_str().ok()) {
        None => Err(ApiError::new(
            Code::AuthenticationRequired,
            "the operator surface needs X-Operator-Key",
        )),
        // Compare digests, so the comparison time says nothing about the key.
        Some(k) if hash_api_key(k) == hash_api_key(expected) => Ok(()),
        Some(_) => Err(ApiError::new(Code::InvalidApiKey, "invalid operator key")),
    }
}

fn tenant_id(raw: &str, field: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|e| ApiError::field(field, e.to_string()))
}

const ORDER_STATUSES: &[&str] = &[
    "processing",
    "pending_review",
    "shipped",
    "delivered",
    "cancelled",
];
const PAYMENT_STATUSES: &[&str] = &[
    "authorized",
    "captured",
    "manual_review",
    "voided",
    "refunded",
];

fn one_of(field: &str, v: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            format!("must be one of {}", allowed.join(", ")),
        ))
    }
}

/// Every field of a data set, with the path of the first bad one.
fn check(seed: &TenantSeed) -> Result<(), ApiError> {
    use super::validate::{email, range, text};
    const MONEY: i64 = 1_000_000_000;
    text("name", &seed.name, 200)?;
    for (n, u) in seed.users.iter().enumerate() {
        text(&format!("users[{n}].user_id"), &u.user_id, 64)?;
        email(&format!("users[{n}].email"), &u.email)?;
        text(&format!("users[{n}].password"), &u.password, 200)?;
    }
    for (n, k) in seed.api_keys.iter().enumerate() {
        text(&format!("api_keys[{n}].key"), &k.key, 200)?;
        if k.key.len() < 16 {
            return Err(ApiError::field(
                format!("api_keys[{n}].key"),
                "at least 16 characters",
            ));
        }
        text(&format!("api_keys[{n}].label"), &k.label, 64)?;
    }
    for (n, p) in seed.products.iter().enumerate() {
        text(&format!("products[{n}].sku"), &p.sku, 64)?;
        text(&format!("products[{n}].name"), &p.name, 200)?;
        range(
            &format!("products[{n}].price_cents"),
            p.price_cents,
            0,
            MONEY,
        )?;
        range(&format!("products[{n}].stock"), p.stock, 0, MONEY)?;
    }
    for (n, o) in seed.orders.iter().enumerate() {
        text(&format!("orders[{n}].order_id"), &o.order_id, 64)?;
        text(&format!("orders[{n}].user_id"), &o.user_id, 64)?;
        one_of(&format!("orders[{n}].status"), &o.status, ORDER_STATUSES)?;
        one_of(
            &format!("orders[{n}].payment_status"),
            &o.payment_status,
            PAYMENT_STATUSES,
        )?;
        if o.items.is_empty() {
            return Err(ApiError::field(
                format!("orders[{n}].items"),
                "at least one line",
            ));
        }
        for (i, it) in o.items.iter().enumerate() {
            text(&format!("orders[{n}].items[{i}].sku"), &it.sku, 64)?;
            range(
                &format!("orders[{n}].items[{i}].quantity"),
                it.quantity,
                1,
                1000,
            )?;
            range(
                &format!("orders[{n}].items[{i}].unit_price_cents"),
                it.unit_price_cents,
                0,
                MONEY,
            )?;
        }
    }
    for (n, d) in seed.documents.iter().enumerate() {
        text(&format!("documents[{n}].title"), &d.title, 200)?;
        text(&format!("documents[{n}].content"), &d.content, 100_000)?;
    }
    for (n, l) in seed.leads.iter().enumerate() {
        text(&format!("leads[{n}].lead_id"), &l.lead_id, 64)?;
        text(&format!("leads[{n}].name"), &l.name, 200)?;
        email(&format!("leads[{n}].email"), &l.email)?;
        one_of(&format!("leads[{n}].grade"), &l.grade, &["A", "B", "C"])?;
        range(&format!("leads[{n}].score"), i64::from(l.score), 0, 100)?;
    }
    Ok(())
}

#[utoipa::path(put, path = "/api/v1/operator/tenants/{tenant_id}", request_body = TenantSeed,
    params(("tenant_id" = String, Path, description = "The tenant slug")),
    responses((status = 201, body = Provisioned, description = "The data set is stored (records with the same ids are replaced)"),
              (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope),
              (status = 404, body = super::error::ErrorEnvelope, description = "The operator surface is off")))]
pub async fn provision(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    StrictJson(seed, _): StrictJson<TenantSeed>,
) -> Result<(StatusCode, Json<Provisioned>), ApiError> {
    operator(&app, &headers)?;
    let t = tenant_id(&raw, "tenant_id")?;
    // Everything is checked before anything is written, so a bad data set leaves no half tenant.
    check(&seed)?;
    let store = app.store.as_ref();
    // A key identifies its tenant: one already issued to another tenant is refused, not moved.
    for (i, k) in seed.api_keys.iter().enumerate() {
        if let Some(existing) = store.api_key_by_hash(&hash_api_key(&k.key)).await? {
            if existing.tenant != t {
                return Err(ApiError::field(
                    format!("api_keys[{i}].key"),
                    "this key is already issued to another tenant",
                ));
            }
        }
    }
    for (i, tool) in seed.allowed_tools.iter().flatten().enumerate() {
        if app.tools.manifest(tool).is_none() {
            return Err(ApiError::field(
                format!("allowed_tools[{i}]"),
                format!("no tool `{tool}`"),
            ));
        }
    }
    store
        .put_tenant(&Tenant {
            id: t.clone(),
            name: seed.name.clone(),
            plan: seed.plan,
            system_prompt: crate::demo::system_prompt(app.cfg.seed, t.as_str(), &seed.name),
            limits: seed.limits.clone(),
            allowed_tools: seed.allowed_tools.clone(),
        })
        .await?;
    for u in &seed.users {
        let salt = app.ids.uuid().to_string();
        let password_hash = hash_password(&u.password, &salt).map_err(ApiError::internal)?;
        store
            .put_user(&User {
                tenant: t.clone(),
                user_id: u.user_id.clone(),
                email: u.email.clone(),
                password_hash,
                role: u.role,
            })
            .await?;
    }
    for k in &seed.api_keys {
        store
            .put_api_key(&ApiKey {
                key_hash: hash_api_key(&k.key),
                tenant: t.clone(),
                label: k.label.clone(),
                role: k.role,
            })
            .await?;
    }
    for p in &seed.products {
        store
            .put_product(&Product {
                tenant: t.clone(),
                sku: p.sku.clone(),
                name: p.name.clone(),
                price_cents: p.price_cents,
                stock: p.stock,
            })
            .await?;
    }
    for o in &seed.orders {
        let total: i64 = o
            .items
            .iter()
            .map(|i| i.quantity * i.unit_price_cents)
            .sum();
        let payment_id = format!("PAY-SEED-{}", o.order_id);
        crate::demo::put_order_and_payment(
            store,
            &Order {
                tenant: t.clone(),
                order_id: o.order_id.clone(),
                user_id: o.user_id.clone(),
                status: o.status.clone(),
                items: o
                    .items
                    .iter()
                    .map(|i| OrderItem {
                        sku: i.sku.clone(),
                        quantity: i.quantity,
                        unit_price_cents: i.unit_price_cents,
                    })
                    .collect(),
                total_cents: total,
                payment_id: Some(payment_id),
                payment_status: o.payment_status.clone(),
                tracking_number: o.tracking_number.clone(),
                shipping_address: o.shipping_address.clone(),
                refund_cents: None,
                created_at: app.clock.now(),
            },
        )
        .await?;
    }
    for d in &seed.documents {
        let mut doc = Document {
            tenant: t.clone(),
            document_id: d.document_id,
            title: d.title.clone(),
            content: d.content.clone(),
            level: d.level,
            roles: d.roles.clone(),
            expires_at: None,
            version: 1,
            index: None,
        };
        let (guard, ttl) = (&app.cfg.guard, &app.cfg.rag.reindex_ttl_secs);
        doc.index = Some(crate::rag::index::entry(&doc, guard, ttl, app.clock.now()));
        store.put_document(&doc).await?;
    }
    for l in &seed.leads {
        store
            .put_lead(&Lead {
                tenant: t.clone(),
                lead_id: l.lead_id.clone(),
                name: l.name.clone(),
                email: l.email.clone(),
                company: l.company.clone(),
                phone: None,
                interest: None,
                source: Some("fixture".into()),
                grade: l.grade.clone(),
                score: l.score,
                status: "new".into(),
                duplicate_of: None,
            })
            .await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(Provisioned {
            tenant_id: t.to_string(),
            users: seed.users.len(),
            products: seed.products.len(),
            orders: seed.orders.len(),
            documents: seed.documents.len(),
            leads: seed.leads.len(),
        }),
    ))
}

#[utoipa::path(post, path = "/api/v1/operator/faults", request_body = FaultRequest,
    responses((status = 200, description = "The fault is set (or cleared)"),
              (status = 403, body = super::error::ErrorEnvelope, description = "Fault injection is off in this deployment"),
              (status = 404, body = super::error::ErrorEnvelope)))]
pub async fn fault(
    State(app): State<AppState>,
    headers: HeaderMap,
    StrictJson(req, _): StrictJson<FaultRequest>,
) -> Result<Json<Value>, ApiError> {
    operator(&app, &headers)?;
    if !app.cfg.fault_injection {
        return Err(ApiError::new(
            Code::AuthorizationFailed,
            "fault injection is off in this deployment (fault_injection: false)",
        ));
    }
    let t = tenant_id(&req.tenant_id, "tenant_id")?;
    let model_tier = req
        .tool
        .strip_prefix("model:")
        .is_some_and(|t| crate::domain::Tier::parse(t).is_ok());
    let database = req.tool == "database";
    if app.tools.manifest(&req.tool).is_none() && !model_tier && !database {
        return Err(ApiError::not_found(format!(
            "tool {} (a tool name, model:SLM_A, model:SLM_B, model:LLM or database)",
            req.tool
        )));
    }
    let point = match req.point.as_deref().unwrap_or("call") {
        "call" => FaultPoint::Call,
        "compensate" => FaultPoint::Compensate,
        _ => return Err(ApiError::field("point", "must be call or compensate")),
    };
    let fault = match req.fault {
        FaultSpec::AlwaysFail => Some(Fault::transient(None)),
        FaultSpec::FailTimes(n) => Some(Fault::transient(Some(n))),
        FaultSpec::FailWith(f) => {
            super::validate::range("fault.fail_with.status", i64::from(f.status), 400, 599)?;
            Some(Fault::Fail {
                times: f.times,
                status: f.status,
                retry_after_ms: f.retry_after_ms,
            })
        }
        FaultSpec::DelayMs(ms) => Some(Fault::Delay(Duration::from_millis(ms))),
        FaultSpec::Hang => Some(Fault::Hang),
        FaultSpec::LoseAnswer => Some(Fault::LoseAnswer),
        FaultSpec::SucceedAfterMs(ms) => Some(Fault::FailUntil(
            app.clock.now() + chrono::Duration::milliseconds(ms.min(i64::MAX as u64) as i64),
        )),
        FaultSpec::None => None,
    };
    // The database has no tenant at hand when it is called: its faults are deployment-wide.
    let scope = if database { None } else { Some(&t) };
    app.tools.set_fault(scope, &req.tool, point, fault);
    Ok(Json(
        json!({"tenant_id": t.to_string(), "tool": req.tool, "point": format!("{point:?}").to_lowercase()}),
    ))
}

/// How far to move the deployment's test clock.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    /// Milliseconds to move forward (1 to 31 days' worth).
    pub advance_ms: i64,
}

#[utoipa::path(post, path = "/api/v1/operator/clock", request_body = ClockRequest,
    responses((status = 200, description = "The clock moved; `now` is the new time"),
              (status = 400, body = super::error::ErrorEnvelope, description = "Out of range, or the clock follows real time"),
              (status = 403, body = super::error::ErrorEnvelope, description = "Fault injection is off in this deployment"),
              (status = 404, body = super::error::ErrorEnvelope)))]
/// Moves a test deployment's frozen clock forward, so a spec can pass a rate-limit window or a
/// token's expiry without waiting. Only where fault injection is on, and only for a manual clock.
pub async fn clock(
    State(app): State<AppState>,
    headers: HeaderMap,
    StrictJson(req, _): StrictJson<ClockRequest>,
) -> Result<Json<Value>, ApiError> {
    operator(&app, &headers)?;
    if !app.cfg.fault_injection {
        return Err(ApiError::new(
            Code::AuthorizationFailed,
            "moving the clock is off in this deployment (fault_injection: false)",
        ));
    }
    super::validate::range("advance_ms", req.advance_ms, 1, 31 * 24 * 3_600_000)?;
    if !app
        .clock
        .advance_by(chrono::Duration::milliseconds(req.advance_ms))
    {
        return Err(ApiError::field(
            "advance_ms",
            "this deployment's clock follows real time and cannot be moved",
        ));
    }
    Ok(Json(json!({"now": app.clock.now()})))
}

/// The query of the event window.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Comma-separated tenant ids; all tenants when absent.
    pub tenant_id: Option<String>,
    /// Return events after this sequence number (default 0).
    pub after: Option<u64>,
    /// At most this many events (default 1000, at most 10000); 0 returns only the head cursor.
    pub limit: Option<usize>,
}

/// How long a read of the event window waits for the window to take in what was published before
/// it; past that (a broker that lags or is down) it answers with `settled: false`.
const SETTLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

#[utoipa::path(get, path = "/api/v1/operator/events", params(EventsQuery),
    responses((status = 200, description = "{events: [{seq, subject, event_id, event_type, tenant_id, run_id?, occurred_at, data}], next, missed, settled}: settled is false when events published before the read may not be in it yet"),
              (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)))]
pub async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    operator(&app, &headers)?;
    // The envelope, not axum's plain-text rejection, for a bad query string.
    let Query(q) = q.map_err(|e| ApiError::new(Code::ValidationError, e.body_text()))?;
    let tap = app
        .events
        .as_ref()
        .ok_or_else(|| ApiError::new(Code::NotFound, "no such route"))?;
    let limit = q.limit.unwrap_or(1000);
    if limit > 10_000 {
        return Err(ApiError::field("limit", "at most 10000"));
    }
    let tenants: Vec<String> = q
        .tenant_id
        .as_deref()
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    // Everything published before this request is in the window before it is read: a reader
    // that takes the head right after its own request must not see that request's events later.
    let settled = match app.bus.published_position().await {
        Ok(target) => tap.settle(target, SETTLE_WITHIN).await,
        Err(_) => false,
    };
    let page = tap.page(q.after.unwrap_or(0), &tenants, limit);
    Ok(Json(
        json!({"events": page.events, "next": page.next, "missed": page.missed, "settled": settled}),
    ))
}

/// Query of [`record`]: the runs to include.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    /// Comma-separated run ids (unknown ones are listed under `missing`).
    pub runs: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/operator/tenants/{tenant_id}/record", params(("tenant_id" = String, Path, description = "The tenant"), RecordQuery),
    responses((status = 200, description = "{versions, audit, runs, missing}: what the harness writes into an episode"),
              (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)))]
/// What an episode needs from a tenant after a scenario, read without going through the tenant's
/// own rate limit, quota and metering: its versions, its audit trail and the named runs.
pub async fn record(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(tenant_id): Path<String>,
    q: Result<Query<RecordQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    operator(&app, &headers)?;
    let Query(q) = q.map_err(|e| ApiError::new(Code::ValidationError, e.body_text()))?;
    let tenant =
        TenantId::parse(&tenant_id).map_err(|e| ApiError::field("tenant_id", e.to_string()))?;
    if app.store.tenant(&tenant).await?.is_none() {
        return Err(ApiError::not_found(format!("tenant {tenant_id}")));
    }
    let mut runs = vec![];
    let mut missing = vec![];
    for id in q
        .runs
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let found = match uuid::Uuid::parse_str(id) {
            Ok(u) => app.store.run(&tenant, u).await?,
            Err(_) => None,
        };
        match found {
            Some(r) => runs.push(super::workflows::run_json(&r)),
            None => missing.push(id.to_string()),
        }
    }
    let audit = app.store.audit(&tenant).await?;
    Ok(Json(json!({
        "versions": super::workflows::versions_of(&app, tenant.as_str()),
        "audit": audit,
        "runs": runs,
        "missing": missing,
    })))
}
