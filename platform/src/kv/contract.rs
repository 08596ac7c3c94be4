//! The contract every `Kv` backend must pass: one body per property, run for each backend (the
//! memory backend here; Redis in the workspace's `tests/contracts.rs`, against a real server).
//! Each body takes a key namespace so that runs sharing a server do not meet.

use super::Kv;
use chrono::{Duration, TimeZone, Utc};

/// A bucket of 3 per minute: three takes, then a refusal with the wait until one token is back,
/// then allowed again once that time has passed; another key has its own bucket.
pub async fn bucket_empties_then_refills_over_its_window(kv: &dyn Kv, ns: &str) {
    let t0 = Utc.timestamp_opt(1_000, 0).single().unwrap_or_default();
    let w = Duration::seconds(60);
    let key = format!("{ns}:rl:t");
    for left in (0..3).rev() {
        let d = kv.take_token(&key, 3, w, t0).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, left);
        assert_eq!(d.limit, 3);
    }
    let d = kv.take_token(&key, 3, w, t0).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.retry_after_secs, 20);
    assert_eq!(d.reset_secs, 60);
    assert!(
        kv.take_token(&key, 3, w, t0 + Duration::seconds(20))
            .await
            .unwrap()
            .allowed
    );
    assert!(
        kv.take_token(&format!("{ns}:rl:u"), 3, w, t0)
            .await
            .unwrap()
            .allowed
    );
}

/// `put_if_absent` is exclusive while the value lives, and a value is gone after its TTL.
pub async fn values_expire_and_put_if_absent_is_exclusive(kv: &dyn Kv, ns: &str) {
    let key = format!("{ns}:idem:k");
    let ttl = Duration::milliseconds(300);
    assert!(kv.put_if_absent(&key, "a", ttl, Utc::now()).await.unwrap());
    assert!(!kv.put_if_absent(&key, "b", ttl, Utc::now()).await.unwrap());
    assert_eq!(
        kv.get(&key, Utc::now()).await.unwrap().as_deref(),
        Some("a")
    );
    // Expiry is the backend's own (Redis expires on its clock): wait past the TTL for real.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(kv.get(&key, Utc::now()).await.unwrap(), None);
    assert!(kv.put_if_absent(&key, "c", ttl, Utc::now()).await.unwrap());
    kv.delete(&key).await.unwrap();
    assert_eq!(kv.get(&key, Utc::now()).await.unwrap(), None);
}

/// `set` overwrites whatever was there.
pub async fn set_overwrites(kv: &dyn Kv, ns: &str) {
    let key = format!("{ns}:v");
    let ttl = Duration::seconds(60);
    kv.set(&key, "one", ttl, Utc::now()).await.unwrap();
    kv.set(&key, "two", ttl, Utc::now()).await.unwrap();
    assert_eq!(
        kv.get(&key, Utc::now()).await.unwrap().as_deref(),
        Some("two")
    );
    kv.ping().await.unwrap();
}

/// Concurrency slots: `limit` can be held at once, a released slot can be taken again, and
/// releasing more than was taken never makes room for more than `limit`.
pub async fn slots_bound_concurrency(kv: &dyn Kv, ns: &str) {
    let key = format!("{ns}:cc:t");
    let ttl = Duration::seconds(60);
    assert!(kv.acquire_slot(&key, 2, ttl).await.unwrap());
    assert!(kv.acquire_slot(&key, 2, ttl).await.unwrap());
    assert!(!kv.acquire_slot(&key, 2, ttl).await.unwrap());
    kv.release_slot(&key).await.unwrap();
    assert!(kv.acquire_slot(&key, 2, ttl).await.unwrap());
    for _ in 0..5 {
        kv.release_slot(&key).await.unwrap();
    }
    assert!(kv.acquire_slot(&key, 2, ttl).await.unwrap());
    assert!(kv.acquire_slot(&key, 2, ttl).await.unwrap());
    assert!(!kv.acquire_slot(&key, 2, ttl).await.unwrap());
    assert!(kv
        .acquire_slot(&format!("{ns}:cc:u"), 2, ttl)
        .await
        .unwrap());
}

#[cfg(test)]
mod memory_backend {
    use crate::kv::memory::MemoryKv;

    #[tokio::test]
    async fn bucket_empties_then_refills_over_its_window() {
        super::bucket_empties_then_refills_over_its_window(&MemoryKv::default(), "m").await;
    }
    #[tokio::test]
    async fn values_expire_and_put_if_absent_is_exclusive() {
        super::values_expire_and_put_if_absent_is_exclusive(&MemoryKv::default(), "m").await;
    }
    #[tokio::test]
    async fn slots_bound_concurrency() {
        super::slots_bound_concurrency(&MemoryKv::default(), "m").await;
    }
    #[tokio::test]
    async fn set_overwrites() {
        super::set_overwrites(&MemoryKv::default(), "m").await;
    }
}
