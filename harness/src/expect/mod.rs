//! The assertion language of specs: JSON paths ([`path`]), matchers ([`matcher`]), metric
//! expectations over `/metrics` ([`metrics`]), and the JSON diff shown when a structured value
//! differs; and a step's checks against what the platform did: its answer ([`response`]), the
//! event window ([`events`]), the `/metrics` scrape ([`scrape`]).

pub mod events;
pub mod matcher;
pub mod metrics;
pub mod path;
pub mod response;
pub mod scrape;

use serde_json::Value;

/// What is wrong with a path or a matcher as a spec wrote it (the loader reports it at its line;
/// after `${var}` expansion the runner reports it as the harness's own failure).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(pub String);

/// A unified diff of the pretty-printed values, expected first.
pub fn json_diff(expected: &Value, actual: &Value) -> String {
    let e = serde_json::to_string_pretty(expected).unwrap_or_default() + "\n";
    let a = serde_json::to_string_pretty(actual).unwrap_or_default() + "\n";
    similar::TextDiff::from_lines(&e, &a)
        .unified_diff()
        .header("expected", "actual")
        .to_string()
}
