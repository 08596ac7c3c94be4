//! Request extractors that enforce the strict boundaries of DESIGN.md: bodies over the byte limit are
//! 413, malformed JSON and duplicate keys are 400 `MALFORMED_JSON`, nesting deeper than the limit and
//! unknown or mistyped fields are 400 `VALIDATION_ERROR` naming the field. Nothing here panics on input.

use super::error::{ApiError, Code};
use crate::app::AppState;
use crate::domain::Role;
use crate::store::model::Tenant;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use futures::StreamExt;
use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// A JSON body parsed strictly into `T`; `.1` is the parsed value (canonical key order), for
/// idempotency fingerprints.
pub struct StrictJson<T>(pub T, pub Value);

const DEPTH_MARK: &str = "nesting deeper than";

struct Strict {
    depth: usize,
    max: usize,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= self.max {
            return Err(A::Error::custom(format!("{DEPTH_MARK} {}", self.max)));
        }
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict {
            depth: self.depth + 1,
            max: self.max,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= self.max {
            return Err(A::Error::custom(format!("{DEPTH_MARK} {}", self.max)));
        }
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(A::Error::custom(format!("duplicate key `{k}`")));
            }
            let v = map.next_value_seed(Strict {
                depth: self.depth + 1,
                max: self.max,
            })?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Reads and discards what is left of a refused body (up to 16 MiB, for at most 2 s) before the
/// 413 is sent, as a lingering close does: a server that answers and closes with unread data
/// resets the connection, and the client may never see the 413.
async fn drain(mut body: axum::body::BodyDataStream) {
    const CAP: usize = 16 * 1024 * 1024;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let mut read = 0;
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len();
            if read > CAP {
                break;
            }
        }
    })
    .await;
}

/// Parses bytes as JSON with duplicate-key and depth checks.
pub fn parse_strict(bytes: &[u8], max_depth: usize) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            Code::MalformedJson,
            "the request body is empty; a JSON object is required",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict {
        depth: 0,
        max: max_depth,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|_| v));
    v.map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with(DEPTH_MARK) {
            ApiError::new(Code::ValidationError, format!("JSON too deep: {msg}"))
        } else {
            ApiError::new(Code::MalformedJson, format!("malformed JSON: {msg}"))
        }
    })
}

/// Converts a parsed value to `T`, naming the offending field on failure.
pub fn typed<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        let mut field = if path == "." { String::new() } else { path };
        for marker in ["missing field `"] {
            if let Some(rest) = msg.strip_prefix(marker) {
                let name = rest.split('`').next().unwrap_or("");
                field = if field.is_empty() {
                    name.to_string()
                } else {
                    format!("{field}.{name}")
                };
            }
        }
        let msg = msg
            .split(", expected one of")
            .next()
            .unwrap_or(&msg)
            .to_string();
        ApiError::field(
            if field.is_empty() {
                "body".into()
            } else {
                field
            },
            msg,
        )
    })
}

impl<T: DeserializeOwned> FromRequest<AppState> for StrictJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        let limits = &app.cfg.limits;
        if let Some(ct) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            let ok = ct
                .to_str()
                .is_ok_and(|s| s.starts_with("application/json") || s.contains("+json"));
            if !ok {
                return Err(ApiError::field("Content-Type", "must be application/json"));
            }
        }
        let too_large = || {
            ApiError::new(
                Code::PayloadTooLarge,
                format!(
                    "the request body is too large: it exceeds {} bytes",
                    limits.max_body_bytes
                ),
            )
        };
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut body = req.into_body().into_data_stream();
        if declared.is_some_and(|n| n > limits.max_body_bytes) {
            drain(body).await;
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(
                    Code::MalformedJson,
                    format!("the request body could not be read: {e}"),
                )
            })?;
            if bytes.len() + chunk.len() > limits.max_body_bytes {
                drain(body).await;
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let v = parse_strict(&bytes, limits.max_json_depth)?;
        Ok(StrictJson(typed(v.clone())?, v))
    }
}

/// The authenticated caller, put in the request by the auth middleware.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    pub user_id: String,
    pub role: Role,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::new(Code::AuthenticationRequired, "authentication required"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_and_garbage_are_malformed() {
        let e = parse_strict(br#"{"a":1,"a":2}"#, 32).unwrap_err();
        assert_eq!(e.code, Code::MalformedJson);
        assert!(e.message.contains("duplicate key `a`"), "{}", e.message);
        assert_eq!(
            parse_strict(b"{nope", 32).unwrap_err().code,
            Code::MalformedJson
        );
        assert_eq!(
            parse_strict(b"{} {}", 32).unwrap_err().code,
            Code::MalformedJson
        );
        assert_eq!(
            parse_strict(b"  ", 32).unwrap_err().code,
            Code::MalformedJson
        );
        // Nested duplicates are found too.
        assert_eq!(
            parse_strict(br#"{"x":{"b":1,"b":1}}"#, 32)
                .unwrap_err()
                .code,
            Code::MalformedJson
        );
    }

    #[test]
    fn depth_is_bounded_at_the_limit() {
        let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert!(parse_strict(ok.as_bytes(), 32).is_ok());
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        let e = parse_strict(deep.as_bytes(), 32).unwrap_err();
        assert_eq!(e.code, Code::ValidationError);
        let very_deep = "[".repeat(100_000);
        assert!(parse_strict(very_deep.as_bytes(), 32).is_err());
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn field_errors_name_the_path() {
        let e = typed::<Outer>(serde_json::json!({"inner": {"n": 1, "x": 2}})).unwrap_err();
        assert_eq!(e.details[0].field, "inner.x");
        let e = typed::<Outer>(serde_json::json!({"inner": {}})).unwrap_err();
        assert_eq!(e.details[0].field, "inner.n");
        let e = typed::<Outer>(serde_json::json!({"inner": {"n": "one"}})).unwrap_err();
        assert_eq!(e.details[0].field, "inner.n");
        let e = typed::<Outer>(serde_json::json!({"inner": {"n": 1}, "extra": true})).unwrap_err();
        assert_eq!(e.details[0].field, "extra");
    }
}
