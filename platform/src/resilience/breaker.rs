//! The circuit breaker of DESIGN.md, one per upstream, on the injected clock: closed until
//! `failure_threshold` consecutive failures, then open (every call rejected without running) for
//! `open_for`; then half-open, admitting `half_open_calls` trial calls; that many successes close it,
//! any failure reopens it. A rejection is not a failure. Not yet wired into the callers (the
//! reliability issue does that); this is the state machine and its properties.

use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;

/// Thresholds of one breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub open_for: Duration,
    pub half_open_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::seconds(60),
            half_open_calls: 3,
        }
    }
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed { failures: u32 },
    Open { until: DateTime<Utc> },
    HalfOpen { admitted: u32, successes: u32 },
}

/// A state change, for the transition counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    HalfOpened,
    Closed,
}

/// One breaker; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: Mutex<BreakerState>,
}

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Self {
        Self {
            cfg,
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
        }
    }

    /// The current state (an open breaker whose time is up still reads open until a call comes).
    pub fn state(&self) -> BreakerState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a call may run now; `Err` is a rejection (the call must not run). The second value
    /// is the transition this decision made, if any.
    pub fn admit(&self, now: DateTime<Utc>) -> (Result<(), ()>, Option<Transition>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match *s {
            BreakerState::Closed { .. } => (Ok(()), None),
            BreakerState::Open { until } if now < until => (Err(()), None),
            BreakerState::Open { .. } => {
                *s = BreakerState::HalfOpen {
                    admitted: 1,
                    successes: 0,
                };
                (Ok(()), Some(Transition::HalfOpened))
            }
            BreakerState::HalfOpen {
                admitted,
                successes,
            } if admitted < self.cfg.half_open_calls => {
                *s = BreakerState::HalfOpen {
                    admitted: admitted + 1,
                    successes,
                };
                (Ok(()), None)
            }
            BreakerState::HalfOpen { .. } => (Err(()), None),
        }
    }

    /// Records how an admitted call ended.
    pub fn record(&self, now: DateTime<Utc>, success: bool) -> Option<Transition> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let open = BreakerState::Open {
            until: now + self.cfg.open_for,
        };
        match (*s, success) {
            (BreakerState::Closed { .. }, true) => {
                *s = BreakerState::Closed { failures: 0 };
                None
            }
            (BreakerState::Closed { failures }, false) => {
                if failures + 1 >= self.cfg.failure_threshold {
                    *s = open;
                    Some(Transition::Opened)
                } else {
                    *s = BreakerState::Closed {
                        failures: failures + 1,
                    };
                    None
                }
            }
            // A call admitted before the breaker opened ends late: it changes nothing.
            (BreakerState::Open { .. }, _) => None,
            (BreakerState::HalfOpen { .. }, false) => {
                *s = open;
                Some(Transition::Opened)
            }
            (
                BreakerState::HalfOpen {
                    admitted,
                    successes,
                },
                true,
            ) => {
                if successes + 1 >= self.cfg.half_open_calls {
                    *s = BreakerState::Closed { failures: 0 };
                    Some(Transition::Closed)
                } else {
                    *s = BreakerState::HalfOpen {
                        admitted,
                        successes: successes + 1,
                    };
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.timestamp_opt(1_000_000, 0).single().unwrap_or_default()
    }

    #[test]
    fn the_design_walk_through() {
        let b = Breaker::new(BreakerConfig::default());
        let now = t0();
        for i in 0..4 {
            assert_eq!(b.admit(now).0, Ok(()));
            assert_eq!(b.record(now, false), None, "failure {i} keeps it closed");
        }
        assert_eq!(b.admit(now).0, Ok(()));
        assert_eq!(b.record(now, false), Some(Transition::Opened));
        // Open: rejected without running, for 60 s; rejections change nothing.
        for s in [0, 30, 59] {
            assert_eq!(b.admit(now + Duration::seconds(s)).0, Err(()));
        }
        let later = now + Duration::seconds(60);
        assert_eq!(b.admit(later), (Ok(()), Some(Transition::HalfOpened)));
        assert_eq!(b.admit(later).0, Ok(()));
        assert_eq!(b.admit(later).0, Ok(()));
        assert_eq!(b.admit(later).0, Err(()), "half-open admits three");
        assert_eq!(b.record(later, true), None);
        assert_eq!(b.record(later, true), None);
        assert_eq!(b.record(later, true), Some(Transition::Closed));
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
    }

    #[test]
    fn a_failure_while_half_open_reopens_for_a_full_period() {
        let b = Breaker::new(BreakerConfig {
            failure_threshold: 1,
            ..BreakerConfig::default()
        });
        assert_eq!(b.admit(t0()).0, Ok(()));
        b.record(t0(), false);
        let later = t0() + Duration::seconds(61);
        assert_eq!(b.admit(later).0, Ok(()));
        assert_eq!(b.record(later, false), Some(Transition::Opened));
        assert_eq!(b.admit(later + Duration::seconds(59)).0, Err(()));
        assert_eq!(b.admit(later + Duration::seconds(60)).0, Ok(()));
    }

    /// One step of a random history: time passes, a call starts (admitted or rejected), or the
    /// oldest call in flight ends with success or failure. Calls overlap, as they do in a server.
    #[derive(Debug, Clone)]
    enum Op {
        Advance(i64),
        Start,
        Finish(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0i64..30_000).prop_map(Op::Advance),
            Just(Op::Start),
            any::<bool>().prop_map(Op::Finish),
        ]
    }

    /// A fixed case count and a fixed, printed seed (`HARNESS_SEED`, default 42), so a failure
    /// reproduces with the same command.
    fn config() -> ProptestConfig {
        let seed = std::env::var("HARNESS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(42u64);
        eprintln!("breaker properties: 256 cases, seed {seed} (HARNESS_SEED={seed} cargo test -p platform --lib breaker)");
        ProptestConfig {
            cases: 256,
            rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// Over any history of overlapping calls: an open breaker never admits before its time
        /// and a rejection changes nothing; half-open never has more than its trial calls
        /// admitted; `threshold` consecutive failures while closed open it for `open_for`; any
        /// failure while half-open reopens it; a success while closed resets the count.
        #[test]
        fn the_breaker_keeps_its_rules_over_any_history(ops in proptest::collection::vec(op(), 1..300)) {
            let cfg = BreakerConfig { failure_threshold: 3, open_for: Duration::seconds(10), half_open_calls: 2 };
            let b = Breaker::new(cfg.clone());
            let mut now = t0();
            let mut in_flight = 0u32;
            for op in ops {
                match op {
                    Op::Advance(ms) => now += Duration::milliseconds(ms),
                    Op::Start => {
                        let before = b.state();
                        let (admitted, _) = b.admit(now);
                        match before {
                            BreakerState::Open { until } if now < until => prop_assert_eq!(admitted, Err(())),
                            BreakerState::Closed { .. } => prop_assert_eq!(admitted, Ok(())),
                            _ => {}
                        }
                        if admitted.is_err() {
                            prop_assert_eq!(b.state(), before, "a rejection changed the state");
                        } else {
                            in_flight += 1;
                        }
                        if let BreakerState::HalfOpen { admitted, successes } = b.state() {
                            prop_assert!(admitted <= cfg.half_open_calls, "{} trial calls admitted", admitted);
                            prop_assert!(successes < cfg.half_open_calls);
                        }
                    }
                    Op::Finish(success) if in_flight > 0 => {
                        in_flight -= 1;
                        let before = b.state();
                        b.record(now, success);
                        let after = b.state();
                        match (before, success) {
                            (BreakerState::Closed { .. }, true) => prop_assert_eq!(after, BreakerState::Closed { failures: 0 }),
                            (BreakerState::Closed { failures }, false) if failures + 1 >= cfg.failure_threshold => {
                                prop_assert_eq!(after, BreakerState::Open { until: now + cfg.open_for })
                            }
                            (BreakerState::Closed { failures }, false) => {
                                prop_assert_eq!(after, BreakerState::Closed { failures: failures + 1 })
                            }
                            (BreakerState::HalfOpen { .. }, false) => {
                                prop_assert_eq!(after, BreakerState::Open { until: now + cfg.open_for })
                            }
                            (BreakerState::Open { .. }, _) => prop_assert_eq!(after, before),
                            (BreakerState::HalfOpen { .. }, true) => {}
                        }
                    }
                    Op::Finish(_) => {}
                }
            }
        }
    }
}
