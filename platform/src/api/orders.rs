//! Orders: create (the create_order saga), read, cancel (the cancel_order workflow), and the product
//! catalogue the orders draw on.

use super::auth::require_role;
use super::dto::*;
use super::error::{ApiError, Code};
use super::extract::{parse_strict, typed, Caller, StrictJson};
use super::{idempotency, rejection, run_error, run_request, validate};
use crate::app::AppState;
use crate::domain::Role;
use crate::tools::builtin::{dollars, order_json};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

#[utoipa::path(post, path = "/api/v1/orders", request_body = OrderRequest,
    responses((status = 201, description = "The order: order_id, status, total_amount, payment_status, tracking_number"),
              (status = 400, body = super::error::ErrorEnvelope, description = "Invalid items, unknown SKU, no stock or a declined card (after compensation)"),
              (status = 500, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    StrictJson(req, raw): StrictJson<OrderRequest>,
) -> Result<Response, ApiError> {
    require_role(&app, &caller, &[Role::User, Role::Admin], "orders").await?;
    if req.items.is_empty() || req.items.len() > 50 {
        return Err(ApiError::field("items", "must hold 1 to 50 lines"));
    }
    for (i, it) in req.items.iter().enumerate() {
        validate::text(&format!("items[{i}].sku"), &it.sku, 64)?;
        validate::range(&format!("items[{i}].quantity"), it.quantity, 1, 1000)?;
    }
    if !["card", "invoice"].contains(&req.payment.method.as_str()) {
        return Err(ApiError::field("payment.method", "must be card or invoice"));
    }
    validate::opt_text("payment.card_token", req.payment.card_token.as_deref(), 128)?;
    validate::opt_text("shipping_address", req.shipping_address.as_deref(), 500)?;
    let work = || async {
        let input = json!({"items": req.items, "payment": req.payment, "shipping_address": req.shipping_address});
        let o = app
            .engine
            .run(&run_request(
                &caller,
                "create_order",
                input,
                Default::default(),
            ))
            .await;
        if o.failure.is_none() {
            // Answer with the order as stored after the whole saga (e.g. the payment captured).
            let id = o.output["order"]["order_id"].as_str().unwrap_or("");
            let stored = app
                .store
                .order(&caller.tenant.id, id)
                .await?
                .ok_or_else(|| ApiError::internal(format!("order {id} missing after its run")))?;
            let mut order = order_json(&stored);
            order["run_id"] = json!(o.run.run_id);
            return Ok((StatusCode::CREATED, order));
        }
        let run_id = o.run.run_id.to_string();
        Err(match rejection(&o) {
            Some(("card_declined", m)) => {
                ApiError::field("payment.card_token", m).with_detail("run_id", run_id)
            }
            Some(("unknown_sku" | "insufficient_stock" | "invalid_quantity" | "no_items", m)) => {
                ApiError::field("items", m).with_detail("run_id", run_id)
            }
            // run_error names the run itself.
            _ => run_error(&o),
        })
    };
    idempotency::once(&app, &caller, &headers, "orders", &raw, work).await
}

#[utoipa::path(get, path = "/api/v1/orders/{order_id}", params(("order_id" = String, Path)),
    responses((status = 200, description = "The order"), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_order(
    State(app): State<AppState>,
    caller: Caller,
    Path(order_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let o = visible_order(&app, &caller, &order_id.to_uppercase()).await?;
    Ok(Json(order_json(&o)))
}

/// The order if the caller may see it: admins see the tenant's orders, everyone else only their
/// own. Another customer's order is a 404, as a missing one is (no existence oracle), and the
/// attempt is audited.
async fn visible_order(
    app: &crate::app::App,
    caller: &Caller,
    order_id: &str,
) -> Result<crate::store::model::Order, ApiError> {
    let o = app
        .store
        .order(&caller.tenant.id, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("order {order_id}")))?;
    if caller.role != Role::Admin && o.user_id != caller.user_id {
        super::auth::audit(
            app,
            &caller.tenant.id,
            &caller.user_id,
            "cross_user_access",
            &format!("order {order_id}"),
            "denied",
            "the order belongs to another customer",
        )
        .await;
        return Err(ApiError::not_found(format!("order {order_id}")));
    }
    Ok(o)
}

#[utoipa::path(post, path = "/api/v1/orders/{order_id}/cancel", params(("order_id" = String, Path)), request_body(content = CancelRequest, description = "Optional"),
    responses((status = 200, description = "The cancelled order with refund_amount"), (status = 400, body = super::error::ErrorEnvelope, description = "Already shipped"),
              (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn cancel(
    State(app): State<AppState>,
    caller: Caller,
    Path(order_id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    require_role(
        &app,
        &caller,
        &[Role::User, Role::Admin],
        "order cancellation",
    )
    .await?;
    let headers = req.headers().clone();
    let limit = app.cfg.limits.max_body_bytes;
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            ApiError::new(
                Code::PayloadTooLarge,
                format!("the request body exceeds {limit} bytes"),
            )
        })?;
    let raw = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_strict(&bytes, app.cfg.limits.max_json_depth)?
    };
    let body: CancelRequest = typed(raw.clone())?;
    validate::opt_text("reason", body.reason.as_deref(), 500)?;
    let order_id = order_id.to_uppercase();
    visible_order(&app, &caller, &order_id).await?;
    let route = format!("orders/{order_id}/cancel");
    let work = || async {
        let input = json!({"order_id": order_id, "reason": body.reason});
        let o = app
            .engine
            .run(&run_request(
                &caller,
                "cancel_order",
                input,
                Default::default(),
            ))
            .await;
        if o.failure.is_some() {
            return Err(run_error(&o));
        }
        match o.output["code"].as_str() {
            Some("order_not_found") => Err(ApiError::not_found(format!("order {order_id}"))),
            Some(_) => Err(ApiError::field(
                "order_id",
                o.output["text"]
                    .as_str()
                    .unwrap_or("the order cannot be cancelled"),
            )),
            None => {
                let mut order = o.output["order"].clone();
                order["run_id"] = json!(o.run.run_id);
                Ok((StatusCode::OK, order))
            }
        }
    };
    idempotency::once(&app, &caller, &headers, &route, &raw, work).await
}

#[utoipa::path(get, path = "/api/v1/products", responses((status = 200, body = ProductList)), security(("bearer" = []), ("api_key" = [])))]
pub async fn products(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<ProductList>, ApiError> {
    let products = app.store.products(&caller.tenant.id).await?;
    Ok(Json(ProductList {
        products: products
            .into_iter()
            .map(|p| ProductView {
                sku: p.sku,
                name: p.name,
                price: dollars(p.price_cents),
                stock: p.stock,
            })
            .collect(),
    }))
}
