//! The one place that turns errors into HTTP statuses and the envelope of API.md:
//! `{"error": {"code", "message", "details": [{"field", "message"}], "request_id"}}`.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

tokio::task_local! {
    /// The request id of the request being served, set by the request-id middleware, so that every
    /// error envelope carries it without threading it through each handler.
    pub static REQUEST_ID: String;
}

/// The current request id, or an empty string outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Every error code of API.md, with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    AuthenticationRequired,
    InvalidToken,
    TokenExpired,
    InvalidApiKey,
    AuthorizationFailed,
    TenantMismatch,
    ToolNotAllowed,
    NotFound,
    WorkflowNotFound,
    ValidationError,
    MalformedJson,
    InvalidRole,
    DlpViolation,
    PayloadTooLarge,
    IdempotencyKeyReused,
    RateLimitExceeded,
    TenantQuotaExceeded,
    WorkflowExecutionFailed,
    InternalError,
    ServiceUnavailable,
    Timeout,
}

impl Code {
    pub fn status(self) -> StatusCode {
        use Code::*;
        match self {
            AuthenticationRequired | InvalidToken | TokenExpired | InvalidApiKey => {
                StatusCode::UNAUTHORIZED
            }
            AuthorizationFailed | TenantMismatch | ToolNotAllowed => StatusCode::FORBIDDEN,
            NotFound | WorkflowNotFound => StatusCode::NOT_FOUND,
            ValidationError | MalformedJson | InvalidRole | DlpViolation => StatusCode::BAD_REQUEST,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            RateLimitExceeded | TenantQuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            WorkflowExecutionFailed | InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

/// One problem with one field of the request.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub code: Code,
    pub message: String,
    pub details: Vec<FieldError>,
    pub request_id: String,
}

/// The envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub details: Vec<FieldError>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: vec![],
            headers: vec![],
        }
    }
    /// A `VALIDATION_ERROR` naming one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        let field = field.into();
        Self {
            code: Code::ValidationError,
            message: format!("{field}: {message}"),
            details: vec![FieldError { field, message }],
            headers: vec![],
        }
    }
    pub fn with_detail(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.details.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }
    pub fn with_header(mut self, name: &'static str, value: impl ToString) -> Self {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(Code::NotFound, format!("{} not found", what.into()))
    }
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, "internal error");
        Self::new(Code::InternalError, "internal error")
    }
}

impl ApiError {
    /// The envelope's body for this error (an HTTP response, or a WebSocket error frame).
    pub fn into_body(self, request_id: String) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message,
            details: self.details,
            request_id,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        let status = self.code.status();
        let headers = std::mem::take(&mut self.headers);
        let body = ErrorEnvelope {
            error: self.into_body(current_request_id()),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        for (k, v) in headers {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(m) => {
                ApiError::new(Code::ServiceUnavailable, format!("store unavailable: {m}"))
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::kv::KvError> for ApiError {
    fn from(e: crate::kv::KvError) -> Self {
        ApiError::new(Code::ServiceUnavailable, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_status_of_api_md() {
        use Code::*;
        let table = [
            (AuthenticationRequired, 401),
            (InvalidToken, 401),
            (TokenExpired, 401),
            (InvalidApiKey, 401),
            (AuthorizationFailed, 403),
            (TenantMismatch, 403),
            (ToolNotAllowed, 403),
            (NotFound, 404),
            (WorkflowNotFound, 404),
            (ValidationError, 400),
            (MalformedJson, 400),
            (InvalidRole, 400),
            (DlpViolation, 400),
            (PayloadTooLarge, 413),
            (IdempotencyKeyReused, 422),
            (RateLimitExceeded, 429),
            (TenantQuotaExceeded, 429),
            (WorkflowExecutionFailed, 500),
            (InternalError, 500),
            (ServiceUnavailable, 503),
            (Timeout, 504),
        ];
        for (code, status) in table {
            assert_eq!(code.status().as_u16(), status, "{code:?}");
        }
        assert_eq!(
            serde_json::to_value(TenantQuotaExceeded).unwrap(),
            "TENANT_QUOTA_EXCEEDED"
        );
    }
}
