//! `Idempotency-Key` on POSTs with side effects (DESIGN.md, "Idempotency"): the same key and body get
//! the same response from one execution, also for concurrent duplicates (they wait for the first);
//! the same key with another body is 422 `IDEMPOTENCY_KEY_REUSED`. A request that ends in an error
//! releases its key, so the client may retry it. The mechanism is the resilience layer's
//! [`Idempotency`](crate::resilience::idempotency::Idempotency); this is its HTTP face.

use super::error::{ApiError, Code};
use super::extract::Caller;
use crate::app::App;
use crate::resilience::idempotency::{fingerprint, IdempotencyError, Served};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
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
    let print = fingerprint(&[&json!(route), body]);
    let kv_key = format!("idem:{}:{key}", caller.tenant.id);
    // The claim of a request outlives its longest run.
    let lease = std::time::Duration::from_millis(app.cfg.run_budget.timeout_ms.saturating_mul(2));
    let r = app
        .idempotency
        .once(&kv_key, &print, lease, false, || async {
            work().await.map(|(s, b)| (s.as_u16(), b))
        })
        .await;
    match r {
        Ok(((status, body), served)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let replayed = served == Served::Replayed;
            if replayed {
                app.metrics
                    .idempotency_hits
                    .get_or_create(&crate::telemetry::ScopeLabels {
                        scope: "api".into(),
                    })
                    .inc();
            }
            Ok(respond(status, body, replayed))
        }
        Err(IdempotencyError::Work(e)) => Err(e),
        Err(IdempotencyError::KeyReused) => Err(ApiError::new(
            Code::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request body",
        )),
        Err(IdempotencyError::InFlight) => Err(ApiError::new(
            Code::ServiceUnavailable,
            "a request with this Idempotency-Key is still in progress",
        )
        .with_header("retry-after", 1)),
        Err(IdempotencyError::Kv(e)) => Err(e.into()),
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
