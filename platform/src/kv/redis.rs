//! The Redis `Kv`: one token bucket per key, taken atomically by a Lua script so that every gateway
//! instance shares the same limit; values with `SET NX PX` (idempotency records, slots). Every key
//! carries the configured prefix, so runs and deployments sharing a server stay apart.
//!
//! The bucket is refilled against the caller's clock (passed in milliseconds), as in the embedded
//! backend: both answer through [`TokenDecision::after_take`], so they cannot drift apart. Expiry of
//! values uses the server's clock.

use super::{Kv, KvError, TokenDecision};
use chrono::{DateTime, Duration, Utc};
use redis::aio::ConnectionManager;
use redis::Script;

/// Refills the bucket for the time elapsed since its last take, takes one token when there is one,
/// and keeps the bucket two windows after its last use.
const TAKE_TOKEN: &str = r#"
local cap = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local rate = cap / (window_ms / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = cap
  ts = now
end
local elapsed = math.max(0, now - ts) / 1000
tokens = math.min(cap, tokens + elapsed * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], window_ms * 2)
return {allowed, tostring(tokens)}
"#;

/// Takes a slot when fewer than ARGV[1] are taken; the count expires ARGV[2] ms after the last take.
const ACQUIRE_SLOT: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// Gives a slot back, never going below zero.
const RELEASE_SLOT: &str = r#"
local n = redis.call('DECR', KEYS[1])
if n < 0 then
  redis.call('SET', KEYS[1], 0, 'KEEPTTL')
end
return 1
"#;

/// The Redis backend of the `Kv` port.
#[derive(Clone)]
pub struct RedisKv {
    conn: ConnectionManager,
    prefix: String,
    /// The Lua scripts, hashed once here rather than on every request.
    take_token: Script,
    acquire_slot: Script,
    release_slot: Script,
}

fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(e.to_string())
}

impl RedisKv {
    /// Connects to `url`; every key gets `prefix` in front. The connection manager reconnects
    /// by itself after an outage; calls made while Redis is down fail with `Unavailable`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, KvError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(2)))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, cfg)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            take_token: Script::new(TAKE_TOKEN),
            acquire_slot: Script::new(ACQUIRE_SLOT),
            release_slot: Script::new(RELEASE_SLOT),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Deletes every key under this instance's prefix (a test run cleaning up after itself).
    pub async fn delete_prefix(&self) -> Result<u64, KvError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if !keys.is_empty() {
                deleted += redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<u64>(&mut conn)
                    .await
                    .map_err(unavailable)?;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    ttl.num_milliseconds().max(1) as u64
}

#[async_trait::async_trait]
impl Kv for RedisKv {
    async fn take_token(
        &self,
        key: &str,
        capacity: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<TokenDecision, KvError> {
        let mut conn = self.conn.clone();
        let (allowed, tokens): (i64, String) = self
            .take_token
            .key(self.key(key))
            .arg(capacity.max(1))
            .arg(window.num_milliseconds().max(1))
            .arg(now.timestamp_millis())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let tokens: f64 = tokens
            .parse()
            .map_err(|_| unavailable(format!("bucket holds `{tokens}`, not a number")))?;
        Ok(TokenDecision::after_take(
            capacity,
            window,
            tokens,
            allowed == 1,
        ))
    }
    async fn get(&self, key: &str, _now: DateTime<Utc>) -> Result<Option<String>, KvError> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)
    }
    async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        _now: DateTime<Utc>,
    ) -> Result<bool, KvError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(ttl))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }
    async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        _now: DateTime<Utc>,
    ) -> Result<(), KvError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms(ttl))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }
    async fn delete(&self, key: &str) -> Result<(), KvError> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }
    async fn acquire_slot(&self, key: &str, limit: u32, ttl: Duration) -> Result<bool, KvError> {
        let mut conn = self.conn.clone();
        let taken: i64 = self
            .acquire_slot
            .key(self.key(key))
            .arg(limit)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(taken == 1)
    }
    async fn release_slot(&self, key: &str) -> Result<(), KvError> {
        let mut conn = self.conn.clone();
        self.release_slot
            .key(self.key(key))
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
    async fn ping(&self) -> Result<(), KvError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
