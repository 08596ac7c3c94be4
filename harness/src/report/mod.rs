//! What a run leaves behind: a terminal summary by suite, `report.json` and JUnit XML in the report
//! directory (default `target/harness/`).

use crate::runner::{Outcome, Status};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Counts of a set of outcomes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Summary {
    /// Counts `outcomes`.
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Self {
        let mut s = Summary::default();
        for o in outcomes {
            s.total += 1;
            match o.status {
                Status::Passed => s.passed += 1,
                Status::Failed => s.failed += 1,
                Status::Skipped => s.skipped += 1,
            }
        }
        s
    }
}

/// The adversarial catalogue of the run (block rate per category, false positives, the gate),
/// when it sent any attack cases; failing cases are listed with why.
pub fn catalogue(
    outcomes: &[Outcome],
) -> Option<(
    crate::attack::SplitCatalogue,
    Vec<crate::attack::CaseResult>,
)> {
    let results: Vec<_> = outcomes.iter().flat_map(|o| o.attacks.clone()).collect();
    if results.is_empty() {
        return None;
    }
    let c = crate::attack::catalogues(&results, crate::attack::Gate::default());
    let failed = results.into_iter().filter(|r| !r.passed).collect();
    Some((c, failed))
}

/// The `report.json` document.
pub fn json_report(outcomes: &[Outcome]) -> serde_json::Value {
    let mut doc = json!({"summary": Summary::of(outcomes), "scenarios": outcomes});
    if let Some((c, failed)) = catalogue(outcomes) {
        doc["catalogue"] = json!(c);
        doc["catalogue"]["failed_cases"] = json!(failed);
    }
    doc
}

/// The JUnit XML document: one test suite per spec suite, one test case per spec.
pub fn junit(outcomes: &[Outcome]) -> Result<String, quick_junit::SerializeError> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("harness");
    let mut suites: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes {
        suites.entry(o.suite.as_str()).or_default().push(o);
    }
    for (name, os) in suites {
        let mut suite = TestSuite::new(name);
        for o in os {
            let status = match o.status {
                Status::Passed => TestCaseStatus::success(),
                Status::Failed => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    if let Some(f) = &o.failure {
                        s.set_message(format!("{}: {}", f.location, f.step));
                        s.set_description(f.to_string());
                    }
                    s
                }
                Status::Skipped => {
                    let mut s = TestCaseStatus::skipped();
                    if let Some(r) = &o.skip_reason {
                        s.set_message(r.clone());
                    }
                    s
                }
            };
            let mut case = TestCase::new(format!("{} {}", o.id, o.title), status);
            case.set_classname(format!("{}.{}", o.suite, o.mode));
            case.set_time(std::time::Duration::from_millis(o.duration_ms));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string()
}

/// Writes `report.json`, `junit.xml` and each scenario's exchanges (`transcripts/<id>.json`) into
/// `dir`, replacing the transcripts of an earlier run.
pub fn write(dir: &Path, outcomes: &[Outcome]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tdir = dir.join("transcripts");
    if tdir.is_dir() {
        std::fs::remove_dir_all(&tdir)?;
    }
    std::fs::create_dir_all(&tdir)?;
    for o in outcomes.iter().filter(|o| !o.transcript.is_empty()) {
        let name: String =
            o.id.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
        let t = serde_json::to_string_pretty(&o.transcript).map_err(std::io::Error::other)?;
        std::fs::write(tdir.join(format!("{name}.json")), t)?;
    }
    let j = serde_json::to_string_pretty(&json_report(outcomes)).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), j)?;
    let x = junit(outcomes).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("junit.xml"), x)
}

/// The terminal summary: failures in full, then one line per suite and a total.
pub fn terminal(outcomes: &[Outcome], wall_ms: u128) -> String {
    let mut out = String::new();
    for o in outcomes.iter().filter(|o| o.status == Status::Failed) {
        out.push_str(&format!("\nFAILED {} {} [{}]\n", o.id, o.title, o.mode));
        if let Some(f) = &o.failure {
            out.push_str(&format!("  {f}\n").replace('\n', "\n  "));
            out.push('\n');
        }
    }
    let mut suites: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes {
        suites.entry(o.suite.as_str()).or_default().push(o);
    }
    out.push_str(&format!(
        "\n{:<16} {:>6} {:>6} {:>6} {:>7}\n",
        "suite", "total", "passed", "failed", "skipped"
    ));
    for (name, os) in &suites {
        let s = Summary::of(os.iter().copied());
        out.push_str(&format!(
            "{:<16} {:>6} {:>6} {:>6} {:>7}\n",
            name, s.total, s.passed, s.failed, s.skipped
        ));
    }
    let s = Summary::of(outcomes);
    out.push_str(&format!(
        "{:<16} {:>6} {:>6} {:>6} {:>7}   in {:.1} s\n",
        "all",
        s.total,
        s.passed,
        s.failed,
        s.skipped,
        wall_ms as f64 / 1000.0
    ));
    if let Some((c, _)) = catalogue(outcomes) {
        out.push_str("\nadversarial catalogue\n");
        out.push_str(&crate::attack::render_split(&c));
    }
    for o in outcomes.iter().filter(|o| o.status == Status::Skipped) {
        out.push_str(&format!(
            "skipped {}: {}\n",
            o.id,
            o.skip_reason.clone().unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Failure;

    fn outcome(id: &str, status: Status) -> Outcome {
        Outcome {
            id: id.into(),
            suite: "e2e".into(),
            title: "t".into(),
            mode: "mock".into(),
            status,
            duration_ms: 5,
            seed: 42,
            failure: (status == Status::Failed).then(|| Failure {
                location: "scenarios/e2e/x.yaml:7".into(),
                step: "step 1 (GET /x)".into(),
                kind: crate::runner::FailureKind::Mismatch,
                message: "status: expected 200, found 500".into(),
                seed: 42,
                reproduce: "cargo run -p harness -- run --only X --seed 42".into(),
            }),
            skip_reason: (status == Status::Skipped).then(|| "pending: ws".into()),
            attacks: vec![],
            transcript: vec![],
            episode: None,
        }
    }

    #[test]
    fn reports_count_and_describe_each_outcome() {
        let os = vec![
            outcome("A", Status::Passed),
            outcome("B", Status::Failed),
            outcome("C", Status::Skipped),
        ];
        let j = json_report(&os);
        assert_eq!(
            j["summary"],
            json!({"total": 3, "passed": 1, "failed": 1, "skipped": 1})
        );
        assert_eq!(
            j["scenarios"][1]["failure"]["location"],
            "scenarios/e2e/x.yaml:7"
        );
        assert!(j["scenarios"][0].get("failure").is_none());
        let x = junit(&os).unwrap();
        assert!(
            x.contains("tests=\"3\"")
                && x.contains("failures=\"1\"")
                && x.contains("skipped=\"1\""),
            "{x}"
        );
        let t = terminal(&os, 1000);
        assert!(
            t.contains("FAILED B") && t.contains("reproduce: cargo run") && t.contains("seed: 42"),
            "{t}"
        );
    }
}
