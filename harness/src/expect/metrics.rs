//! The `metrics:` expectation: what `/metrics` must say, read as metric families, labels and
//! values by a Prometheus text parser (`prometheus-parse`) instead of regexes over the text, so
//! that a label order, a new label or a value of `10` where `1` was meant cannot pass by accident.
//!
//! An item names a sample (`name`, the line's metric name as exposed: `retry_total`,
//! `http_request_duration_seconds_count`), the labels a series must carry (a subset: every series
//! whose labels include them is summed), and a matcher on its `value` after the step and/or its
//! `delta` during the step (the step's value minus the value the harness scraped just before it).
//! A family that `/metrics` declares but has no matching series has counted nothing: its value is
//! 0. A name that the exposition does not know at all is an error for `value` and `delta`, so a
//! typo never passes them. A family with no series at all is not exposed (the Prometheus client
//! writes nothing for it), so "never counted" is said with `absent: true`: no exposed series of
//! that name carries those labels.

use super::matcher::{short, Matcher};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One `metrics:` item of a step's expectations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricExpect {
    /// The sample's metric name as exposed (counters end in `_total`).
    pub name: String,
    /// Labels every counted series must carry (others may carry more).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A matcher on the summed value after the step (`3`, `{gte: 1}`).
    pub value: Option<Value>,
    /// A matcher on how much the summed value changed during the step.
    pub delta: Option<Value>,
    /// No exposed series of this name carries these labels (instead of `value` and `delta`).
    #[serde(default)]
    pub absent: bool,
}

/// Why a scrape or an expectation could not be evaluated (as opposed to a mismatch).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("/metrics could not be parsed: {0}")]
    Parse(String),
    #[error("metrics item `{name}`: {why}")]
    Item { name: String, why: String },
}

/// One series of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed `/metrics` exposition.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    series: Vec<Series>,
    /// Families declared by `# HELP` lines (the base name: `retry` for `retry_total`).
    declared: BTreeSet<String>,
}

impl Scrape {
    /// Parses the Prometheus (or OpenMetrics) text format.
    pub fn parse(text: &str) -> Result<Scrape, MetricsError> {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let raw = prometheus_parse::Scrape::parse(lines)
            .map_err(|e| MetricsError::Parse(e.to_string()))?;
        let mut series = vec![];
        for s in raw.samples {
            let labels: BTreeMap<String, String> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut push = |name: String, labels: BTreeMap<String, String>, value: f64| {
                series.push(Series {
                    name,
                    labels,
                    value,
                })
            };
            match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => push(s.metric, labels, v),
                prometheus_parse::Value::Histogram(buckets) => {
                    for b in buckets {
                        let mut l = labels.clone();
                        l.insert("le".into(), le_label(b.less_than));
                        push(format!("{}_bucket", s.metric), l, b.count);
                    }
                }
                prometheus_parse::Value::Summary(qs) => {
                    for q in qs {
                        let mut l = labels.clone();
                        l.insert("quantile".into(), q.quantile.to_string());
                        push(s.metric.clone(), l, q.count);
                    }
                }
            }
        }
        Ok(Scrape {
            series,
            declared: raw.docs.into_keys().collect(),
        })
    }

    /// Whether the exposition knows `name`: a series of that name, or a declared family it
    /// belongs to (`retry_total`, `x_count`, `x_sum` and `x_bucket` belong to `retry` and `x`).
    pub fn knows(&self, name: &str) -> bool {
        self.series.iter().any(|s| s.name == name)
            || self.declared.contains(name)
            || ["_total", "_count", "_sum", "_bucket", "_created"]
                .iter()
                .filter_map(|suffix| name.strip_suffix(suffix))
                .any(|base| self.declared.contains(base))
    }

    /// The sum of the series named `name` whose labels include `labels` (0 when none does).
    pub fn sum(&self, name: &str, labels: &BTreeMap<String, String>) -> f64 {
        self.series
            .iter()
            .filter(|s| s.name == name && carries(s, labels))
            .map(|s| s.value)
            .sum()
    }

    /// The series named `name`, shown in a failure so that the author sees what there is.
    fn shown(&self, name: &str) -> String {
        let found: Vec<String> = self
            .series
            .iter()
            .filter(|s| s.name == name)
            .map(|s| {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                format!("{name}{{{}}} {}", labels.join(","), s.value)
            })
            .collect();
        if found.is_empty() {
            format!("no series of `{name}`")
        } else {
            found.join(", ")
        }
    }

    /// Metric names of the exposition that share a word with `name` (for a typo's message).
    fn near(&self, name: &str) -> Vec<String> {
        let words: Vec<&str> = name.split('_').filter(|w| w.len() > 2).collect();
        let names: BTreeSet<&str> = self.series.iter().map(|s| s.name.as_str()).collect();
        names
            .into_iter()
            .filter(|n| words.iter().any(|w| n.contains(w)))
            .take(8)
            .map(str::to_string)
            .collect()
    }
}

/// Whether `s` carries every label of `labels` (it may carry more).
fn carries(s: &Series, labels: &BTreeMap<String, String>) -> bool {
    labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
}

/// `le` as the exposition writes it (`+Inf`, `0.5`).
fn le_label(v: f64) -> String {
    if v.is_infinite() {
        "+Inf".into()
    } else {
        v.to_string()
    }
}

/// Checks every item against the scrape after the step (`before`: the scrape just before it, for
/// deltas); one line per mismatch. An item naming a metric the exposition does not know, or with
/// neither `value` nor `delta`, is an error rather than a mismatch.
pub fn check(
    items: &[MetricExpect],
    before: Option<&Scrape>,
    after: &Scrape,
) -> Result<Vec<String>, MetricsError> {
    let mut problems = vec![];
    for it in items {
        let bad = |why: String| MetricsError::Item {
            name: it.name.clone(),
            why,
        };
        if it.absent {
            if it.value.is_some() || it.delta.is_some() {
                return Err(bad("`absent: true` goes without `value` and `delta`".into()));
            }
            let found: Vec<&Series> = after
                .series
                .iter()
                .filter(|s| s.name == it.name && carries(s, &it.labels))
                .collect();
            if !found.is_empty() {
                problems.push(format!(
                    "metric `{}`: expected no series with labels {:?}, found {}",
                    it.name,
                    it.labels,
                    after.shown(&it.name)
                ));
            }
            continue;
        }
        if it.value.is_none() && it.delta.is_none() {
            return Err(bad(
                "give `value`, `delta` or both (or `absent: true`)".into()
            ));
        }
        if !after.knows(&it.name) {
            let near = after.near(&it.name);
            return Err(bad(format!(
                "/metrics has no metric of that name{}",
                if near.is_empty() {
                    String::new()
                } else {
                    format!(" (similar: {})", near.join(", "))
                }
            )));
        }
        let labels = if it.labels.is_empty() {
            String::new()
        } else {
            let l: Vec<String> = it
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            format!("{{{}}}", l.join(","))
        };
        let now = after.sum(&it.name, &it.labels);
        if let Some(v) = &it.value {
            let m = Matcher::compile(v).map_err(|e| bad(e.to_string()))?;
            if let Err(why) = m.check(Some(&number(now))) {
                problems.push(format!(
                    "metric `{}{labels}`: {why} (series: {})",
                    it.name,
                    after.shown(&it.name)
                ));
            }
        }
        if let Some(d) = &it.delta {
            let m = Matcher::compile(d).map_err(|e| bad(e.to_string()))?;
            let before = before.ok_or_else(|| bad("no scrape before the step".into()))?;
            let was = before.sum(&it.name, &it.labels);
            if let Err(why) = m.check(Some(&number(now - was))) {
                problems.push(format!(
                    "metric `{}{labels}` changed by {} during the step ({} -> {}): {why}",
                    it.name,
                    short(&number(now - was)),
                    number(was),
                    number(now)
                ));
            }
        }
    }
    Ok(problems)
}

/// A metric value as JSON: an integer when it is one, so that messages read `3`, not `3.0`.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        // `as` maps -0.0 to 0.
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEXT: &str = "# HELP retry Retries by upstream.
# TYPE retry counter
retry_total{upstream=\"tool:ticket.create\"} 3
retry_total{upstream=\"model:SLM_A\"} 1
# HELP saga Sagas by final status.
# TYPE saga counter
saga_total{status=\"completed\"} 1
# HELP circuit_open Breakers opened.
# TYPE circuit_open counter
# HELP latency Request latency.
# TYPE latency histogram
latency_sum{route=\"/x\"} 0.5
latency_count{route=\"/x\"} 2
latency_bucket{le=\"0.1\",route=\"/x\"} 1
latency_bucket{le=\"+Inf\",route=\"/x\"} 2
# EOF
";

    fn item(v: Value) -> MetricExpect {
        serde_json::from_value(v).expect("item")
    }

    fn run(items: Vec<Value>, before: Option<&str>, after: &str) -> Result<Vec<String>, String> {
        let items: Vec<MetricExpect> = items.into_iter().map(item).collect();
        let before = before.map(|t| Scrape::parse(t).expect("before"));
        check(
            &items,
            before.as_ref(),
            &Scrape::parse(after).expect("after"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn values_by_labels_sums_and_undeclared_zero() {
        let ok = run(
            vec![
                json!({"name": "retry_total", "labels": {"upstream": "tool:ticket.create"}, "value": 3}),
                json!({"name": "retry_total", "value": 4}),
                json!({"name": "saga_total", "labels": {"status": "failed"}, "value": 0}),
                json!({"name": "circuit_open_total", "value": 0}),
                json!({"name": "latency_count", "labels": {"route": "/x"}, "value": 2}),
                json!({"name": "latency_bucket", "labels": {"le": "+Inf"}, "value": 2}),
            ],
            None,
            TEXT,
        );
        assert_eq!(ok, Ok(vec![]));
    }

    /// Planted defects: one retry more than the spec allows, a series that should not exist,
    /// a counter that moved by two where one was expected, and a misspelt metric.
    #[test]
    fn each_planted_difference_is_reported() {
        let p = run(
            vec![json!({"name": "retry_total", "labels": {"upstream": "tool:ticket.create"}, "value": 2})],
            None,
            TEXT,
        )
        .unwrap();
        assert!(
            p.len() == 1 && p[0].contains("expected 2, found 3") && p[0].contains("model:SLM_A"),
            "{p:?}"
        );
        let p = run(
            vec![json!({"name": "saga_total", "labels": {"status": "completed"}, "value": 0})],
            None,
            TEXT,
        )
        .unwrap();
        assert_eq!(p.len(), 1, "{p:?}");
        let before = TEXT.replace("retry_total{upstream=\"model:SLM_A\"} 1", "");
        let p = run(
            vec![json!({"name": "retry_total", "delta": 2})],
            Some(&before),
            TEXT,
        )
        .unwrap();
        assert!(p.len() == 1 && p[0].contains("changed by 1"), "{p:?}");
        let e = run(vec![json!({"name": "retyr_total", "value": 0})], None, TEXT).unwrap_err();
        assert!(e.contains("no metric of that name"), "{e}");
        let e = run(vec![json!({"name": "retry_total"})], None, TEXT).unwrap_err();
        assert!(e.contains("`value`, `delta`"), "{e}");
        // `absent`: a series that exists fails it; one that does not (or an unexposed family) passes.
        let p = run(
            vec![json!({"name": "retry_total", "labels": {"upstream": "model:SLM_A"}, "absent": true})],
            None,
            TEXT,
        )
        .unwrap();
        assert!(p.len() == 1 && p[0].contains("expected no series"), "{p:?}");
        let p = run(
            vec![
                json!({"name": "retry_total", "labels": {"upstream": "tool:x"}, "absent": true}),
                json!({"name": "bulkhead_rejections_total", "absent": true}),
            ],
            None,
            TEXT,
        )
        .unwrap();
        assert_eq!(p, Vec::<String>::new());
    }
}
