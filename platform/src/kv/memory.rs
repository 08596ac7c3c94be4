//! The embedded Kv: maps behind a lock, expiry checked against the caller's clock.

use super::{Kv, KvError, TokenDecision};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Inner {
    values: HashMap<String, (String, DateTime<Utc>)>,
    buckets: HashMap<String, (f64, DateTime<Utc>)>,
    slots: HashMap<String, u32>,
}

/// In-memory Kv.
#[derive(Default)]
pub struct MemoryKv(Mutex<Inner>);

#[async_trait::async_trait]
impl Kv for MemoryKv {
    async fn take_token(
        &self,
        key: &str,
        capacity: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<TokenDecision, KvError> {
        let cap = f64::from(capacity.max(1));
        let rate = cap / (window.num_milliseconds().max(1) as f64 / 1000.0);
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = g.buckets.entry(key.to_string()).or_insert((cap, now));
        let elapsed = (now - *last).num_milliseconds().max(0) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * rate).min(cap);
        *last = now;
        let allowed = *tokens >= 1.0;
        if allowed {
            *tokens -= 1.0;
        }
        Ok(TokenDecision::after_take(
            capacity, window, *tokens, allowed,
        ))
    }
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, KvError> {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok(g.values
            .get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone()))
    }
    async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, KvError> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if g.values.get(key).is_some_and(|(_, exp)| *exp > now) {
            return Ok(false);
        }
        g.values
            .insert(key.to_string(), (value.to_string(), now + ttl));
        Ok(true)
    }
    async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), KvError> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.values
            .insert(key.to_string(), (value.to_string(), now + ttl));
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values
            .remove(key);
        Ok(())
    }
    async fn acquire_slot(&self, key: &str, limit: u32, _ttl: Duration) -> Result<bool, KvError> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = g.slots.entry(key.to_string()).or_insert(0);
        if *n >= limit {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }
    async fn release_slot(&self, key: &str) -> Result<(), KvError> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = g.slots.get_mut(key) {
            *n = n.saturating_sub(1);
        }
        Ok(())
    }
    async fn ping(&self) -> Result<(), KvError> {
        Ok(())
    }
}
