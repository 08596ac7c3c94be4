//! The adapters that hand a message to its channel: HTTP to the channel's endpoint, or the log.

use crate::resilience::retry::{retryable_status, Retryable};
use crate::store::model::OutboxMessage;
use serde_json::json;
use std::time::Duration;

/// Why one delivery attempt failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    /// The endpoint answered with a status other than 2xx.
    #[error("the channel's endpoint answered {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The endpoint could not be reached or did not answer.
    #[error("the channel's endpoint could not be reached: {0}")]
    Transport(String),
}

impl Retryable for DeliveryError {
    fn retryable(&self) -> bool {
        match self {
            DeliveryError::Status { status, .. } => retryable_status(*status),
            DeliveryError::Transport(_) => true,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Status { retry_after, .. } => *retry_after,
            DeliveryError::Transport(_) => None,
        }
    }
}

/// Hands one message to a channel. One attempt: retries, timeouts and the breaker are the
/// dispatcher's upstream's.
#[async_trait::async_trait]
pub trait Adapter: Send + Sync {
    async fn deliver(&self, m: &OutboxMessage) -> Result<(), DeliveryError>;
}

/// `POST {base}/{channel}` with the message as JSON and `Idempotency-Key: <tenant>:<message id>`;
/// a 2xx answer is a delivery.
pub struct HttpAdapter {
    http: reqwest::Client,
    url: String,
}

impl HttpAdapter {
    pub fn new(http: reqwest::Client, base: &str, channel: &str) -> Self {
        Self {
            http,
            url: format!("{}/{channel}", base.trim_end_matches('/')),
        }
    }
}

#[async_trait::async_trait]
impl Adapter for HttpAdapter {
    async fn deliver(&self, m: &OutboxMessage) -> Result<(), DeliveryError> {
        let body = json!({
            "message_id": m.message_id,
            "tenant_id": m.tenant.as_str(),
            "channel": m.channel(),
            "kind": m.kind,
            "to": m.to,
            "subject": m.subject,
            "body": m.body,
        });
        let resp = self
            .http
            .post(&self.url)
            .header(
                "idempotency-key",
                format!("{}:{}", m.tenant.as_str(), m.message_id),
            )
            .json(&body)
            .send()
            .await
            .map_err(|e| DeliveryError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(DeliveryError::Status {
            status,
            retry_after,
        })
    }
}

/// The channel of a deployment that configured no endpoint for it (the demo, `serve` on embedded
/// defaults): writes a log line with the message's id and channel (never its content) and accepts.
pub struct LogAdapter;

#[async_trait::async_trait]
impl Adapter for LogAdapter {
    async fn deliver(&self, m: &OutboxMessage) -> Result<(), DeliveryError> {
        tracing::info!(
            message = %m.message_id,
            channel = %m.channel(),
            tenant = %m.tenant,
            "outbox message delivered to the log (no endpoint configured for its channel)"
        );
        Ok(())
    }
}
