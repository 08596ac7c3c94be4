//! Retry with exponential backoff: `min(base * 2^i, cap) * (1 +- jitter)`, the jitter drawn from
//! the seed and the call's key (so it replays), retrying only what [`Retryable`] says is passing
//! (408, 429, 5xx, timeouts, connection errors) and waiting what `Retry-After` asks instead when the
//! upstream says. Each attempt has its own timeout. This is the only retry loop of the platform.

use crate::clock::unit_draw;
use std::future::Future;
use std::time::Duration;

/// Whether an HTTP-like status is worth another attempt (DESIGN.md, "Retry").
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether an error is worth another attempt (timeouts, connection errors, 408/429/5xx).
pub trait Retryable {
    fn retryable(&self) -> bool;
    /// How long the upstream asked to be left alone (`Retry-After`); honoured instead of the
    /// computed backoff when present.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Timeout per attempt and retries with capped, jittered exponential backoff.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub timeout: Duration,
    /// Extra attempts after the first.
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
    /// Relative jitter, 0.1 for +-10%.
    pub jitter: f64,
}

/// How a policy-wrapped call ended without success.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PolicyError<E> {
    #[error("timed out after {attempts} attempt(s)")]
    Timeout { attempts: u32 },
    #[error("{error} (after {attempts} attempt(s))")]
    Failed { error: E, attempts: u32 },
}

impl Policy {
    /// Delay before extra attempt `n` (0-based), for a draw in [0, 1).
    pub fn delay(&self, n: u32, draw: f64) -> Duration {
        let exp = self.base.saturating_mul(2u32.saturating_pow(n.min(30)));
        let d = exp.min(self.cap).as_secs_f64();
        Duration::from_secs_f64(d * (1.0 + self.jitter * (2.0 * draw - 1.0)))
    }

    /// Runs `call` (given the 0-based attempt number) under the policy. `key` and `seed` make the
    /// jitter reproducible.
    pub async fn run<T, E, F, Fut>(
        &self,
        seed: u64,
        key: &str,
        call: F,
    ) -> Result<T, PolicyError<E>>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_observed(seed, key, call, |_, _, _| {}).await
    }

    /// [`Policy::run`], telling `on_retry` about each extra attempt before its wait: the attempt
    /// that failed, the wait, and whether it timed out (for the counters and tests of the delays).
    pub async fn run_observed<T, E, F, Fut>(
        &self,
        seed: u64,
        key: &str,
        mut call: F,
        mut on_retry: impl FnMut(u32, Duration, bool),
    ) -> Result<T, PolicyError<E>>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 0;
        loop {
            let outcome = tokio::time::timeout(self.timeout, call(attempt)).await;
            let retry = match &outcome {
                Ok(Ok(_)) => false,
                Ok(Err(e)) => e.retryable(),
                Err(_) => true,
            };
            if !retry || attempt >= self.max_retries {
                return match outcome {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(error)) => Err(PolicyError::Failed {
                        error,
                        attempts: attempt + 1,
                    }),
                    Err(_) => Err(PolicyError::Timeout {
                        attempts: attempt + 1,
                    }),
                };
            }
            let wait = match &outcome {
                Ok(Err(e)) => e.retry_after(),
                _ => None,
            }
            .unwrap_or_else(|| {
                self.delay(attempt, unit_draw(seed, &format!("retry:{key}:{attempt}")))
            });
            on_retry(attempt, wait, outcome.is_err());
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, PartialEq)]
    struct E(bool);
    impl Retryable for E {
        fn retryable(&self) -> bool {
            self.0
        }
    }

    fn policy(max_retries: u32) -> Policy {
        Policy {
            timeout: Duration::from_millis(50),
            max_retries,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
            jitter: 0.1,
        }
    }

    #[test]
    fn delays_grow_are_capped_and_stay_within_jitter() {
        let p = policy(5);
        for (n, nominal) in [
            (0u32, 100.0),
            (1, 200.0),
            (2, 400.0),
            (3, 800.0),
            (4, 1000.0),
            (9, 1000.0),
        ] {
            for draw in [0.0, 0.5, 0.999] {
                let ms = p.delay(n, draw).as_secs_f64() * 1000.0;
                assert!(
                    ms >= nominal * 0.9 - 1e-9 && ms <= nominal * 1.1 + 1e-9,
                    "{n} {draw} {ms}"
                );
            }
        }
    }

    fn config() -> proptest::test_runner::Config {
        crate::proptest_seed::config("retry delay properties", 256, "retry")
    }

    proptest::proptest! {
        #![proptest_config(config())]

        /// For any base, cap, attempt and draw: the delay is the capped exponential within the
        /// jitter, and it never shrinks from one attempt to the next by more than the jitter.
        #[test]
        fn every_delay_is_the_capped_exponential_within_the_jitter(
            base_ms in 1u64..5_000, cap_factor in 1u64..100, n in 0u32..40, draw in 0.0f64..1.0,
        ) {
            let p = Policy {
                timeout: Duration::from_secs(1),
                max_retries: 40,
                base: Duration::from_millis(base_ms),
                cap: Duration::from_millis(base_ms * cap_factor),
                jitter: 0.1,
            };
            let nominal = (base_ms as f64 * 2f64.powi(n.min(30) as i32)).min((base_ms * cap_factor) as f64);
            let got = p.delay(n, draw).as_secs_f64() * 1000.0;
            proptest::prop_assert!(got >= nominal * 0.9 - 1e-6 && got <= nominal * 1.1 + 1e-6, "{} vs {}", got, nominal);
            let next = p.delay(n + 1, draw).as_secs_f64() * 1000.0;
            proptest::prop_assert!(next >= got - 1e-6, "attempt {} waits {} after {}", n + 1, next, got);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_until_the_limit() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = policy(2)
            .run(1, "k", |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(E(true))
            })
            .await;
        assert_eq!(
            r,
            Err(PolicyError::Failed {
                error: E(true),
                attempts: 3
            })
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_permanent_errors_and_times_out_hangs() {
        let r: Result<(), _> = policy(3).run(1, "k", |_| async { Err(E(false)) }).await;
        assert_eq!(
            r,
            Err(PolicyError::Failed {
                error: E(false),
                attempts: 1
            })
        );
        let r: Result<(), PolicyError<E>> = policy(1)
            .run(1, "k", |_| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(())
            })
            .await;
        assert_eq!(r, Err(PolicyError::Timeout { attempts: 2 }));
    }

    #[derive(Debug, PartialEq)]
    struct Busy;
    impl Retryable for Busy {
        fn retryable(&self) -> bool {
            true
        }
        fn retry_after(&self) -> Option<Duration> {
            Some(Duration::from_secs(7))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_replaces_the_computed_backoff() {
        let mut waits = vec![];
        let r: Result<(), _> = policy(2)
            .run_observed(1, "k", |_| async { Err(Busy) }, |_, d, _| waits.push(d))
            .await;
        assert!(r.is_err());
        assert_eq!(waits, vec![Duration::from_secs(7); 2]);
    }

    #[test]
    fn only_the_pinned_statuses_are_retried() {
        let retried: Vec<u16> = (100..600).filter(|s| retryable_status(*s)).collect();
        assert_eq!(retried, vec![408, 429, 500, 502, 503, 504]);
    }

    #[tokio::test(start_paused = true)]
    async fn succeeds_after_transient_failures() {
        let r = policy(3)
            .run(1, "k", |n| async move {
                if n < 2 {
                    Err(E(true))
                } else {
                    Ok(n)
                }
            })
            .await;
        assert_eq!(r, Ok(2));
    }
}
