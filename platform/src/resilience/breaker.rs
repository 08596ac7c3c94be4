//! The circuit breaker of DESIGN.md, one per upstream, on the injected clock: closed until
//! `failure_threshold` consecutive failures, then open (every call rejected without running) for
//! `open_for`; then half-open, admitting `half_open_calls` trial calls; that many successes close it,
//! any failure reopens it. A rejection is not a failure. [`super::Upstream`] holds one per
//! upstream; this is the state machine, tested against a reference model.

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
}

/// The breaker against a reference model of DESIGN.md's rules (proptest-state-machine): random
/// sequences of time passing, calls starting and calls ending, checked step by step.
#[cfg(test)]
mod model {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

    const THRESHOLD: u32 = 3;
    const OPEN_MS: i64 = 10_000;
    const TRIALS: u32 = 2;

    /// DESIGN.md's breaker, written from the text: closed counts consecutive failures; open
    /// rejects until its time is up; half-open admits `TRIALS` calls, which must all succeed.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Rule {
        Closed(u32),
        Open(i64),
        HalfOpen { admitted: u32, successes: u32 },
    }

    #[derive(Debug, Clone)]
    pub struct World {
        now_ms: i64,
        rule: Rule,
        in_flight: u32,
        last_admitted: Option<bool>,
    }

    #[derive(Debug, Clone)]
    pub enum Step {
        Wait(i64),
        Call,
        End(bool),
    }

    pub struct Reference;

    impl ReferenceStateMachine for Reference {
        type State = World;
        type Transition = Step;

        fn init_state() -> BoxedStrategy<World> {
            Just(World {
                now_ms: 0,
                rule: Rule::Closed(0),
                in_flight: 0,
                last_admitted: None,
            })
            .boxed()
        }

        fn transitions(_: &World) -> BoxedStrategy<Step> {
            prop_oneof![
                1 => (0i64..15_000).prop_map(Step::Wait),
                3 => Just(Step::Call),
                3 => any::<bool>().prop_map(Step::End),
            ]
            .boxed()
        }

        fn preconditions(w: &World, step: &Step) -> bool {
            !matches!(step, Step::End(_)) || w.in_flight > 0
        }

        fn apply(mut w: World, step: &Step) -> World {
            match *step {
                Step::Wait(ms) => w.now_ms += ms,
                Step::Call => {
                    let (admit, rule) = match w.rule.clone() {
                        Rule::Closed(f) => (true, Rule::Closed(f)),
                        Rule::Open(until) if w.now_ms < until => (false, Rule::Open(until)),
                        Rule::Open(_) => (
                            true,
                            Rule::HalfOpen {
                                admitted: 1,
                                successes: 0,
                            },
                        ),
                        Rule::HalfOpen {
                            admitted,
                            successes,
                        } if admitted < TRIALS => (
                            true,
                            Rule::HalfOpen {
                                admitted: admitted + 1,
                                successes,
                            },
                        ),
                        half_open => (false, half_open),
                    };
                    w.rule = rule;
                    w.in_flight += u32::from(admit);
                    w.last_admitted = Some(admit);
                }
                Step::End(ok) => {
                    w.in_flight -= 1;
                    w.rule = match (w.rule.clone(), ok) {
                        (Rule::Closed(_), true) => Rule::Closed(0),
                        (Rule::Closed(f), false) if f + 1 >= THRESHOLD => {
                            Rule::Open(w.now_ms + OPEN_MS)
                        }
                        (Rule::Closed(f), false) => Rule::Closed(f + 1),
                        (open @ Rule::Open(_), _) => open,
                        (Rule::HalfOpen { .. }, false) => Rule::Open(w.now_ms + OPEN_MS),
                        (Rule::HalfOpen { successes, .. }, true) if successes + 1 >= TRIALS => {
                            Rule::Closed(0)
                        }
                        (
                            Rule::HalfOpen {
                                admitted,
                                successes,
                            },
                            true,
                        ) => Rule::HalfOpen {
                            admitted,
                            successes: successes + 1,
                        },
                    };
                }
            }
            w
        }
    }

    pub struct UnderTest;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_000_000, 0).single().unwrap_or_default() + Duration::milliseconds(ms)
    }

    impl StateMachineTest for UnderTest {
        type SystemUnderTest = Breaker;
        type Reference = Reference;

        fn init_test(_: &World) -> Breaker {
            Breaker::new(BreakerConfig {
                failure_threshold: THRESHOLD,
                open_for: Duration::milliseconds(OPEN_MS),
                half_open_calls: TRIALS,
            })
        }

        fn apply(b: Breaker, w: &World, step: Step) -> Breaker {
            match step {
                Step::Wait(_) => {}
                Step::Call => {
                    let (admitted, _) = b.admit(at(w.now_ms));
                    assert_eq!(
                        admitted.is_ok(),
                        w.last_admitted == Some(true),
                        "admission at {} ms",
                        w.now_ms
                    );
                }
                Step::End(ok) => {
                    b.record(at(w.now_ms), ok);
                }
            }
            b
        }

        fn check_invariants(b: &Breaker, w: &World) {
            let expected = match w.rule {
                Rule::Closed(f) => BreakerState::Closed { failures: f },
                Rule::Open(until) => BreakerState::Open { until: at(until) },
                Rule::HalfOpen {
                    admitted,
                    successes,
                } => BreakerState::HalfOpen {
                    admitted,
                    successes,
                },
            };
            assert_eq!(b.state(), expected);
        }
    }

    fn config() -> proptest::test_runner::Config {
        crate::proptest_seed::config("breaker model", 256, "breaker::model")
    }

    prop_state_machine! {
        #![proptest_config(config())]

        #[test]
        fn the_breaker_follows_its_model(sequential 1..300 => UnderTest);
    }
}
