//! The `Kv` port: small, fast, expiring state shared by every gateway instance: rate-limit buckets
//! and idempotency records. The embedded backend is [`memory::MemoryKv`]; Redis implements the same
//! trait (a Lua token bucket, `SET NX PX`).

pub mod contract;
pub mod memory;
pub mod redis;

use chrono::{DateTime, Duration, Utc};

/// Why a Kv operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("kv unavailable: {0}")]
    Unavailable(String),
}

/// The outcome of taking one token from a bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenDecision {
    pub allowed: bool,
    pub limit: u32,
    /// Whole tokens left after this request.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds until one token is available (0 when allowed).
    pub retry_after_secs: u64,
}

impl TokenDecision {
    /// The decision for a bucket of `capacity` tokens refilled every `window`, holding `tokens`
    /// after this request (one token was taken when `allowed`). Every backend answers through this,
    /// so their headers agree to the second.
    pub fn after_take(capacity: u32, window: Duration, tokens: f64, allowed: bool) -> Self {
        let cap = f64::from(capacity.max(1));
        let rate = cap / (window.num_milliseconds().max(1) as f64 / 1000.0);
        let retry_after_secs = if allowed {
            0
        } else {
            ((1.0 - tokens) / rate).ceil().max(1.0) as u64
        };
        TokenDecision {
            allowed,
            limit: capacity,
            remaining: tokens.floor().max(0.0) as u32,
            reset_secs: ((cap - tokens) / rate).ceil().max(0.0) as u64,
            retry_after_secs,
        }
    }
}

/// Keyed state with expiry and an atomic token bucket.
#[async_trait::async_trait]
pub trait Kv: Send + Sync + 'static {
    /// Takes one token from the bucket `key` of `capacity` tokens that refills fully every `window`.
    async fn take_token(
        &self,
        key: &str,
        capacity: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<TokenDecision, KvError>;
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, KvError>;
    /// Sets `key` only if it is absent (or expired); true when this call set it.
    async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, KvError>;
    async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), KvError>;
    async fn delete(&self, key: &str) -> Result<(), KvError>;
    /// Takes one of the `limit` slots of `key` (a concurrency limit shared by every instance);
    /// false when all are taken. A count left behind by a crashed instance expires after `ttl`.
    async fn acquire_slot(&self, key: &str, limit: u32, ttl: Duration) -> Result<bool, KvError>;
    /// Gives a slot of `key` back (never below zero).
    async fn release_slot(&self, key: &str) -> Result<(), KvError>;
    async fn ping(&self) -> Result<(), KvError>;
}
