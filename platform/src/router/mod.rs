//! The model-tier router: text features to a tier (SLM_A, SLM_B, LLM) with a confidence, the reasons,
//! the expected cost and latency from a fixed price table, and a fallback tier. Strict-JSON tasks start
//! at the cheapest tier and escalate only when the answer fails [`early_exit`]. A per-tenant share of
//! decisions uses the canary policy. Every decision is a pure function of its inputs and the seed.

use crate::clock::unit_draw;
use crate::domain::Tier;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Price per 1k tokens (USD) and expected latency (ms) of each tier, fixed so cost caps are assertable.
pub const PRICES: [(Tier, f64, u64); 3] = [
    (Tier::SlmA, 0.0005, 80),
    (Tier::SlmB, 0.002, 250),
    (Tier::Llm, 0.03, 900),
];

/// Cost in USD of `tokens` tokens on `tier`.
pub fn cost_usd(tier: Tier, tokens: u64) -> f64 {
    let per_1k = PRICES
        .iter()
        .find(|(t, _, _)| *t == tier)
        .map(|p| p.1)
        .unwrap_or(0.0);
    per_1k * tokens as f64 / 1000.0
}

fn expected_latency_ms(tier: Tier) -> u64 {
    PRICES
        .iter()
        .find(|(t, _, _)| *t == tier)
        .map(|p| p.2)
        .unwrap_or(0)
}

const REASONING_MARKERS: [&str; 8] = [
    "why",
    "explain",
    "compare",
    "difference",
    "analy",
    "step by step",
    "trade-off",
    "recommend",
];

/// What the router looks at.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Features {
    pub tokens: u64,
    pub entity_count: usize,
    pub reasoning: bool,
    /// 1.0 when the caller needs strict JSON.
    pub format_strictness: f64,
    /// Earlier turns in the conversation.
    pub history_turns: usize,
    /// The classified intent, once known (later steps of a run route with it).
    pub intent: Option<String>,
}

impl Features {
    /// Extracts the features of a message.
    pub fn of(text: &str, history_turns: usize, json_required: bool) -> Self {
        let lower = text.to_lowercase();
        let entity_count = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| {
                w.starts_with("ORD-")
                    || w.contains('@')
                    || (w.len() > 1 && w.chars().next().is_some_and(char::is_uppercase))
            })
            .count();
        Self {
            tokens: crate::llm::estimate_tokens(text),
            entity_count,
            reasoning: REASONING_MARKERS.iter().any(|m| lower.contains(m)),
            format_strictness: if json_required { 1.0 } else { 0.0 },
            history_turns,
            intent: None,
        }
    }

    /// The same features with the classified intent.
    pub fn with_intent(mut self, intent: Option<&str>) -> Self {
        self.intent = intent.map(str::to_string);
        self
    }

    /// Complexity in [0, 1]: length, entities, reasoning markers and history, weighted.
    pub fn complexity(&self) -> f64 {
        let len = (self.tokens as f64 / 400.0).min(1.0) * 0.45;
        let ent = (self.entity_count as f64 / 4.0).min(1.0) * 0.15;
        let reason = if self.reasoning { 0.25 } else { 0.0 };
        let hist = (self.history_turns as f64 / 10.0).min(1.0) * 0.15;
        // Escalations and sales conversations need more care than lookups and FAQ answers.
        let intent = match self.intent.as_deref() {
            Some("escalation") => 0.2,
            Some("lead") => 0.1,
            Some("general") => 0.05,
            _ => 0.0,
        };
        len + ent + reason + hist + intent
    }
}

/// A routing decision, as recorded on the run and returned in responses.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Decision {
    pub tier: Tier,
    pub confidence: f64,
    pub reasons: Vec<String>,
    pub expected_cost_usd: f64,
    pub expected_latency_ms: u64,
    pub fallback_tier: Option<Tier>,
    pub canary: bool,
    pub complexity: f64,
}

/// Complexity thresholds between tiers: below `slm_a` goes to SLM_A, below `slm_b` to SLM_B.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub slm_a: f64,
    pub slm_b: f64,
}

/// The router: stable thresholds, canary thresholds and each tenant's canary share.
#[derive(Debug, Clone)]
pub struct Router {
    seed: u64,
    stable: Thresholds,
    canary: Thresholds,
    canary_share: BTreeMap<String, f64>,
    /// Per tenant: recent strict-JSON outcomes of the cheapest tier (the tenant's history).
    history: Arc<Mutex<HashMap<String, Outcomes>>>,
}

/// Early-exit outcomes in a sliding window (halved when it fills, so old results fade).
#[derive(Debug, Default, Clone, Copy)]
struct Outcomes {
    passed: u32,
    failed: u32,
}

/// Samples needed before a tenant's history moves a decision, and the window that halves them.
const HISTORY_MIN: u32 = 4;
const HISTORY_WINDOW: u32 = 20;

impl Router {
    pub fn new(seed: u64, canary_share: BTreeMap<String, f64>) -> Self {
        Self {
            seed,
            stable: Thresholds {
                slm_a: 0.3,
                slm_b: 0.6,
            },
            canary: Thresholds {
                slm_a: 0.2,
                slm_b: 0.5,
            },
            canary_share,
            history: Arc::default(),
        }
    }

    /// A fingerprint of what decides `tenant`'s routing (thresholds and its canary share): the
    /// router's version in `GET /api/v1/versions`.
    pub fn fingerprint(&self, tenant: &str) -> String {
        use sha2::{Digest, Sha256};
        let text = format!(
            "{:?}|{:?}|{:?}|{}",
            self.stable,
            self.canary,
            self.canary_share.get(tenant),
            HISTORY_MIN
        );
        hex::encode(Sha256::digest(text.as_bytes()))[..12].to_string()
    }

    /// Feedback from the executor: whether a strict-JSON answer of `tier` passed early exit.
    /// Only the cheapest tier is tracked: it is the one strict tasks start at.
    pub fn record_early_exit(&self, tenant: &str, tier: Tier, passed: bool) {
        if tier != Tier::SlmA {
            return;
        }
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let o = h.entry(tenant.to_string()).or_default();
        if passed {
            o.passed += 1;
        } else {
            o.failed += 1;
        }
        if o.passed + o.failed >= HISTORY_WINDOW {
            o.passed /= 2;
            o.failed /= 2;
        }
    }

    /// The share of the tenant's recent SLM_A strict-JSON answers that failed early exit, once there
    /// are enough of them to mean something.
    pub fn slm_a_failure_rate(&self, tenant: &str) -> Option<f64> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let o = h.get(tenant)?;
        let n = o.passed + o.failed;
        (n >= HISTORY_MIN).then(|| f64::from(o.failed) / f64::from(n))
    }

    /// Decides the tier for one request. `request_key` makes the canary draw reproducible.
    pub fn decide(
        &self,
        tenant: &str,
        request_key: &str,
        f: &Features,
        preference: Option<Tier>,
    ) -> Decision {
        let share = self.canary_share.get(tenant).copied().unwrap_or(0.0);
        let canary =
            share > 0.0 && unit_draw(self.seed, &format!("canary:{tenant}:{request_key}")) < share;
        let th = if canary { self.canary } else { self.stable };
        let c = f.complexity();
        let mut reasons = vec![format!("complexity {c:.2}")];
        let (mut tier, margin) = if c < th.slm_a {
            (Tier::SlmA, th.slm_a - c)
        } else if c < th.slm_b {
            (Tier::SlmB, (c - th.slm_a).min(th.slm_b - c))
        } else {
            (Tier::Llm, c - th.slm_b)
        };
        if f.reasoning {
            reasons.push("reasoning requested".into());
        }
        if f.format_strictness > 0.0 {
            match self.slm_a_failure_rate(tenant) {
                Some(rate) if rate >= 0.5 => {
                    tier = Tier::SlmB;
                    reasons.push(format!(
                        "strict JSON: SLM_A failed early exit for {:.0}% of this tenant's recent answers, start at SLM_B",
                        rate * 100.0
                    ));
                }
                _ => {
                    tier = Tier::SlmA;
                    reasons.push(
                        "strict JSON: cheapest tier first, escalate if it does not validate".into(),
                    );
                }
            }
        }
        if let Some(p) = preference {
            tier = p;
            reasons.push(format!("tier preference {}", p.as_str()));
        }
        if canary {
            reasons.push("canary policy".into());
        }
        let expected_tokens = f.tokens + 150;
        Decision {
            tier,
            confidence: 0.5 + (margin * 2.0).min(0.49),
            reasons,
            expected_cost_usd: cost_usd(tier, expected_tokens),
            expected_latency_ms: expected_latency_ms(tier),
            fallback_tier: tier.escalate(),
            canary,
            complexity: c,
        }
    }
}

/// Why a cheap tier's answer was not accepted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EarlyExitError {
    #[error("Invalid JSON: {0}")]
    InvalidJson(String),
    #[error("Schema validation failed: missing `{0}`")]
    SchemaValidationFailed(String),
}

/// Accepts an answer only if it is strict JSON (no markdown fence, no trailing text) holding every
/// `required` key; otherwise the caller escalates to the fallback tier.
pub fn early_exit(text: &str, required: &[&str]) -> Result<Value, EarlyExitError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| EarlyExitError::InvalidJson(e.to_string()))?;
    for k in required {
        if v.get(k).is_none() {
            return Err(EarlyExitError::SchemaValidationFailed((*k).to_string()));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_questions_go_cheap_and_long_reasoning_goes_big() {
        let r = Router::new(1, BTreeMap::new());
        let d = r.decide(
            "acme",
            "1",
            &Features::of("What is your return policy?", 0, false),
            None,
        );
        assert_eq!(d.tier, Tier::SlmA);
        assert_eq!(d.fallback_tier, Some(Tier::SlmB));
        let long = format!(
            "Explain and compare {}",
            "the options for my Team in Berlin ".repeat(60)
        );
        let d = r.decide("acme", "2", &Features::of(&long, 12, false), None);
        assert_eq!(d.tier, Tier::Llm);
        assert_eq!(d.fallback_tier, None);
        assert!(d.expected_cost_usd > cost_usd(Tier::SlmA, 1000));
    }

    #[test]
    fn intent_moves_the_decision() {
        let r = Router::new(1, BTreeMap::new());
        let text = "I need to talk to someone about the Berlin office delivery problem we had";
        let faq = Features::of(text, 3, false).with_intent(Some("faq"));
        let esc = Features::of(text, 3, false).with_intent(Some("escalation"));
        assert!(esc.complexity() > faq.complexity());
        assert!(r.decide("acme", "k", &esc, None).tier > r.decide("acme", "k", &faq, None).tier);
    }

    #[test]
    fn strict_json_starts_cheap_and_preference_wins() {
        let r = Router::new(1, BTreeMap::new());
        let f = Features::of(&"explain why ".repeat(200), 0, true);
        assert_eq!(r.decide("acme", "k", &f, None).tier, Tier::SlmA);
        assert_eq!(r.decide("acme", "k", &f, Some(Tier::Llm)).tier, Tier::Llm);
    }

    #[test]
    fn canary_share_lands_near_its_target_and_is_reproducible() {
        let mut share = BTreeMap::new();
        share.insert("acme".to_string(), 0.5);
        let r = Router::new(7, share);
        let f = Features::of("hello", 0, false);
        let hits = (0..100)
            .filter(|i| r.decide("acme", &i.to_string(), &f, None).canary)
            .count();
        assert!((20..=80).contains(&hits), "{hits}");
        assert_eq!(
            r.decide("acme", "3", &f, None),
            Router::new(7, r.canary_share.clone()).decide("acme", "3", &f, None)
        );
        assert!(!r.decide("globex", "3", &f, None).canary);
    }

    #[test]
    fn a_tenant_whose_cheap_answers_keep_failing_starts_strict_tasks_higher() {
        let r = Router::new(1, BTreeMap::new());
        let strict = Features::of("classify this", 0, true);
        for _ in 0..3 {
            r.record_early_exit("acme", Tier::SlmA, false);
        }
        assert_eq!(
            r.decide("acme", "k", &strict, None).tier,
            Tier::SlmA,
            "too few samples"
        );
        r.record_early_exit("acme", Tier::SlmA, false);
        r.record_early_exit("acme", Tier::SlmB, false);
        let d = r.decide("acme", "k", &strict, None);
        assert_eq!(d.tier, Tier::SlmB);
        assert!(
            d.reasons.iter().any(|x| x.contains("100%")),
            "{:?}",
            d.reasons
        );
        assert_eq!(
            r.decide("globex", "k", &strict, None).tier,
            Tier::SlmA,
            "history is per tenant"
        );
        for _ in 0..6 {
            r.record_early_exit("acme", Tier::SlmA, true);
        }
        assert_eq!(
            r.decide("acme", "k", &strict, None).tier,
            Tier::SlmA,
            "recovers as answers pass"
        );
    }

    #[test]
    fn early_exit_rejects_fenced_and_incomplete_json() {
        assert!(early_exit(r#"{"intent":"faq"}"#, &["intent"]).is_ok());
        assert!(matches!(
            early_exit("```json\n{\"intent\":\"faq\"}\n```", &["intent"]),
            Err(EarlyExitError::InvalidJson(_))
        ));
        assert_eq!(
            early_exit(r#"{"x":1}"#, &["intent"]),
            Err(EarlyExitError::SchemaValidationFailed("intent".into()))
        );
    }
}
