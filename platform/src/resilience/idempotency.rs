//! Idempotency, the one mechanism behind the API's `Idempotency-Key` and the tools' derived keys
//! (DESIGN.md, "Idempotency"). A key is claimed in the `Kv` with `put_if_absent` as `pending`
//! (with the request's fingerprint and a short lease); the first caller runs the work and stores
//! `done` with its result for the TTL; a duplicate with the same fingerprint waits for `done` and
//! gets the stored result without running anything; another fingerprint is
//! [`IdempotencyError::KeyReused`]. Work that fails releases the key, so a retry runs again.
//!
//! The lease bounds how long a `pending` claim of a dead caller blocks the key: after it, the key
//! can be claimed again. A recovering saga takes over its own dead claims at once (`take_over`).

use crate::clock::Clock;
use crate::kv::{Kv, KvError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why an idempotent call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError<E> {
    #[error("the idempotency key was used with a different request")]
    KeyReused,
    #[error("a request with this idempotency key is still in progress")]
    InFlight,
    #[error("idempotency store: {0}")]
    Kv(#[from] KvError),
    /// The work itself failed (the key was released).
    #[error("{0}")]
    Work(E),
}

/// How a result was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The work ran now.
    Fresh,
    /// A stored result of an earlier run of the same key.
    Replayed,
}

/// The keyed store of results, with its TTL and waits.
#[derive(Clone)]
pub struct Idempotency {
    kv: Arc<dyn Kv>,
    clock: Arc<dyn Clock>,
    /// How long a `done` result is kept.
    pub ttl: Duration,
    /// How long a duplicate waits for the first caller before giving up with `InFlight`.
    pub wait: Duration,
}

/// sha256 of the canonical JSON of `parts`: the fingerprint of a request, or a derived key.
pub fn fingerprint(parts: &[&Value]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // serde_json's maps are sorted (no preserve_order), so this text is canonical.
        h.update(p.to_string().as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

impl Idempotency {
    pub fn new(kv: Arc<dyn Kv>, clock: Arc<dyn Clock>, ttl: Duration, wait: Duration) -> Self {
        Self {
            kv,
            clock,
            ttl,
            wait,
        }
    }

    fn chrono(d: Duration) -> chrono::Duration {
        chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }

    /// Runs `work` at most once per `key` (a full Kv key, e.g. `idem:acme:<client key>`) and
    /// `print`; returns its result, stored or fresh. `lease` bounds a pending claim; `take_over`
    /// claims a pending key at once (a recovering saga resuming its own dead call).
    pub async fn once<T, E, F, Fut>(
        &self,
        key: &str,
        print: &str,
        lease: Duration,
        take_over: bool,
        work: F,
    ) -> Result<(T, Served), IdempotencyError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let pending = json!({"state": "pending", "fingerprint": print}).to_string();
        let lease = Self::chrono(lease);
        let mut waited = Duration::ZERO;
        let step = Duration::from_millis(10);
        loop {
            let now = self.clock.now();
            let mut claimed = self.kv.put_if_absent(key, &pending, lease, now).await?;
            let stored = if claimed {
                None
            } else {
                self.kv.get(key, now).await?
            };
            let rec: Value = stored
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Value::Null);
            if !claimed && stored.is_some() {
                if rec["fingerprint"] != json!(print) {
                    return Err(IdempotencyError::KeyReused);
                }
                if rec["state"] == "done" {
                    if let Ok(v) = serde_json::from_value(rec["result"].clone()) {
                        return Ok((v, Served::Replayed));
                    }
                    // A result this version cannot read: run again rather than fail forever.
                    self.kv.set(key, &pending, lease, now).await?;
                    claimed = true;
                } else if take_over {
                    self.kv.set(key, &pending, lease, now).await?;
                    claimed = true;
                }
            }
            if claimed {
                return match work().await {
                    Ok(v) => {
                        let rec = json!({"state": "done", "fingerprint": print, "result": v});
                        let (ttl, now) = (Self::chrono(self.ttl), self.clock.now());
                        self.kv.set(key, &rec.to_string(), ttl, now).await?;
                        Ok((v, Served::Fresh))
                    }
                    Err(e) => {
                        self.kv.delete(key).await?;
                        Err(IdempotencyError::Work(e))
                    }
                };
            }
            // Pending elsewhere (or expired between the two reads): wait for it.
            if waited >= self.wait {
                return Err(IdempotencyError::InFlight);
            }
            tokio::time::sleep(step).await;
            waited += step;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::kv::memory::MemoryKv;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn idem() -> (Idempotency, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::at_epoch());
        let i = Idempotency::new(
            Arc::new(MemoryKv::default()),
            clock.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(5),
        );
        (i, clock)
    }

    const LEASE: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_second_call_gets_the_first_result_without_running() {
        let (i, _) = idem();
        let runs = AtomicU32::new(0);
        let work = || async { Ok::<_, ()>(runs.fetch_add(1, Ordering::SeqCst) + 100) };
        let a = i.once("k", "p", LEASE, false, work).await.ok();
        let b = i.once("k", "p", LEASE, false, work).await.ok();
        assert_eq!(a, Some((100, Served::Fresh)));
        assert_eq!(b, Some((100, Served::Replayed)));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let other = i.once("k", "q", LEASE, false, work).await;
        assert!(matches!(other, Err(IdempotencyError::KeyReused)));
    }

    #[tokio::test]
    async fn a_failure_releases_the_key_and_the_ttl_ends_the_record() {
        let (i, clock) = idem();
        let failed = i
            .once("k", "p", LEASE, false, || async { Err::<u32, _>("boom") })
            .await;
        assert!(matches!(failed, Err(IdempotencyError::Work("boom"))));
        let ok = i
            .once("k", "p", LEASE, false, || async { Ok::<_, ()>(1) })
            .await;
        assert_eq!(ok.ok(), Some((1, Served::Fresh)));
        clock.advance_by(chrono::Duration::seconds(3601));
        let again = i
            .once("k", "p", LEASE, false, || async { Ok::<_, ()>(2) })
            .await;
        assert_eq!(
            again.ok(),
            Some((2, Served::Fresh)),
            "re-executed after the TTL"
        );
    }

    #[tokio::test]
    async fn a_dead_pending_claim_blocks_until_its_lease_or_a_take_over() {
        let (i, clock) = idem();
        let short = Idempotency {
            wait: Duration::ZERO,
            ..i.clone()
        };
        // A caller claimed the key and died (its work never finished).
        let p = json!({"state": "pending", "fingerprint": "p"}).to_string();
        i.kv.put_if_absent("k", &p, chrono::Duration::seconds(30), clock.now())
            .await
            .unwrap_or_default();
        let blocked = short
            .once("k", "p", LEASE, false, || async { Ok::<_, ()>(1) })
            .await;
        assert!(matches!(blocked, Err(IdempotencyError::InFlight)));
        let taken = short
            .once("k", "p", LEASE, true, || async { Ok::<_, ()>(2) })
            .await;
        assert_eq!(taken.ok(), Some((2, Served::Fresh)));
    }

    /// A fixed case count and a printed seed (`HARNESS_SEED`, default 42).
    fn config() -> proptest::test_runner::Config {
        crate::proptest_seed::config("idempotency properties", 64, "idempotency")
    }

    proptest! {
        #![proptest_config(config())]

        /// Any number of concurrent duplicates, each starting after its own random delay while
        /// the work takes a random time: the work runs once and every caller gets its result.
        #[test]
        fn concurrent_duplicates_run_the_work_once(
            delays in proptest::collection::vec(0u64..40, 2..12),
            work_ms in 0u64..50,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build();
            let Ok(rt) = rt else { return Err(TestCaseError::fail("no runtime")) };
            let (results, runs) = rt.block_on(async {
                let (i, _) = idem();
                let runs = Arc::new(AtomicU32::new(0));
                let calls: Vec<_> = delays.iter().map(|d| {
                    let (i, runs, d) = (i.clone(), runs.clone(), *d);
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(d)).await;
                        i.once("k", "p", LEASE, false, || async {
                            let n = runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(work_ms)).await;
                            Ok::<_, ()>(format!("result {n}"))
                        }).await.ok().map(|(v, _)| v)
                    })
                }).collect();
                let mut out = vec![];
                for c in calls {
                    out.push(c.await.ok().flatten());
                }
                (out, runs.load(Ordering::SeqCst))
            });
            prop_assert_eq!(runs, 1);
            for r in &results {
                prop_assert_eq!(r.as_deref(), Some("result 0"));
            }
        }
    }
}
