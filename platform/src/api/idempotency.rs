//! `Idempotency-Key` on POSTs with side effects (DESIGN.md, "Idempotency"): the same key and body get
//! the same response from one execution, also for concurrent duplicates (they wait for the first);
//! the same key with another body is 422 `IDEMPOTENCY_KEY_REUSED`. A request that ends in an error
//! releases its key, so the client may retry it.

use super::error::{ApiError, Code};
use super::extract::Caller;
use crate::app::App;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::future::Future;

fn valid_key(k: &str) -> bool {
    (1..=128).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

fn respond(status: StatusCode, body: Value, replayed: bool) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    if replayed {
        r.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    r
}

/// Runs `work` at most once per (tenant, key, body); replays its stored response afterwards.
pub async fn once<F, Fut>(
    app: &App,
    caller: &Caller,
    headers: &HeaderMap,
    route: &str,
    body: &Value,
    work: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let Some(key) = headers.get("idempotency-key") else {
        let (s, b) = work().await?;
        return Ok(respond(s, b, false));
    };
    let key = key.to_str().ok().filter(|k| valid_key(k)).ok_or_else(|| {
        ApiError::field(
            "Idempotency-Key",
            "must be 1 to 128 characters of letters, digits, `_`, `.`, `:` or `-`",
        )
    })?;
    let fingerprint = hex::encode(Sha256::digest(format!("{route}\n{body}").as_bytes()));
    let kv_key = format!("idem:{}:{key}", caller.tenant.id);
    let ttl = Duration::seconds(app.cfg.idempotency_ttl_secs);
    let pending = json!({"state": "pending", "fingerprint": fingerprint}).to_string();
    let mut waited_ms = 0u64;
    loop {
        if app
            .kv
            .put_if_absent(&kv_key, &pending, ttl, app.clock.now())
            .await?
        {
            return match work().await {
                Ok((status, out)) => {
                    let rec = json!({"state": "done", "fingerprint": fingerprint, "status": status.as_u16(), "body": out});
                    app.kv
                        .set(&kv_key, &rec.to_string(), ttl, app.clock.now())
                        .await?;
                    Ok(respond(status, out, false))
                }
                Err(e) => {
                    app.kv.delete(&kv_key).await?;
                    Err(e)
                }
            };
        }
        let Some(stored) = app.kv.get(&kv_key, app.clock.now()).await? else {
            continue;
        };
        let rec: Value = serde_json::from_str(&stored).unwrap_or(Value::Null);
        if rec["fingerprint"] != json!(fingerprint) {
            return Err(ApiError::new(
                Code::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different request body",
            ));
        }
        if rec["state"] == "done" {
            let status = rec["status"]
                .as_u64()
                .and_then(|s| StatusCode::from_u16(s as u16).ok())
                .unwrap_or(StatusCode::OK);
            return Ok(respond(status, rec["body"].clone(), true));
        }
        if waited_ms >= app.cfg.idempotency_wait_ms {
            return Err(ApiError::new(
                Code::ServiceUnavailable,
                "a request with this Idempotency-Key is still in progress",
            )
            .with_header("retry-after", 1));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited_ms += 10;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_follow_the_pinned_pattern() {
        assert!(super::valid_key("order-123:retry.1_a"));
        assert!(!super::valid_key(""));
        assert!(!super::valid_key("has space"));
        assert!(!super::valid_key(&"k".repeat(129)));
    }
}
