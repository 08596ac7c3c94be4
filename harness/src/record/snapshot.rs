//! Golden snapshots: a step says `expect: {golden: NAME}` and its response, normalized, must equal
//! `golden/snapshots/<suite>/<NAME>.json`. A missing or different file fails with a readable diff;
//! `harness run --update-golden` (or `UPDATE_GOLDEN=1`) writes the files instead, for review in the
//! VCS diff, as insta's review workflow does.
//!
//! Normalization: the step's `redact` paths become `"[REDACTED]"`; then every string has its
//! whitespace collapsed and its UUIDs and timestamps masked, and time-measuring keys are dropped
//! (the rules of [`super::episode::canonical`]).

use super::episode::canonical;
use crate::expect::path::Path as JsonPath;
use crate::expect::SyntaxError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One snapshot file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub test_name: String,
    /// Where it was taken: `spec id, step N`.
    pub metadata: SnapshotMeta,
    pub output: Value,
}

/// Where a snapshot was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotMeta {
    pub spec: String,
    pub step: usize,
    pub redact: Vec<String>,
}

/// `body` normalized for a snapshot: `redact` paths replaced, then [`canonical`] with whitespace
/// collapsed in every string.
pub fn normalize(body: &Value, redact: &[String]) -> Result<Value, SyntaxError> {
    let mut v = body.clone();
    for p in redact {
        let path = JsonPath::parse(p)?;
        path.set_all(&mut v, Value::String("[REDACTED]".into()));
    }
    Ok(collapse(canonical(&v)))
}

fn collapse(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.split_whitespace().collect::<Vec<_>>().join(" ")),
        Value::Array(a) => Value::Array(a.into_iter().map(collapse).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, x)| (k, collapse(x))).collect()),
        other => other,
    }
}

/// The file of snapshot `name` of `suite`.
pub fn file_of(dir: &Path, suite: &str, name: &str) -> PathBuf {
    dir.join(suite).join(format!("{name}.json"))
}

/// Why a snapshot check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The response differs from the stored snapshot (the diff, golden first).
    #[error("the response differs from golden snapshot {} (--update-golden rewrites it):\n{diff}", file.display())]
    Differs { file: PathBuf, diff: String },
    /// No snapshot was ever written for this step.
    #[error("golden snapshot {} does not exist; run with --update-golden (or UPDATE_GOLDEN=1) to write it, then review it", file.display())]
    Missing { file: PathBuf },
    /// The file is there but is not a snapshot.
    #[error("golden snapshot {} is not a snapshot: {source}", file.display())]
    Unreadable {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Writing it (`--update-golden`) failed.
    #[error("writing golden snapshot {}: {source}", file.display())]
    Write {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Compares `actual` with the snapshot file, or writes it when `update`.
pub fn check(file: &Path, actual: Snapshot, update: bool) -> Result<(), SnapshotError> {
    let existing = std::fs::read_to_string(file).ok();
    let write_error = |source| SnapshotError::Write {
        file: file.to_path_buf(),
        source,
    };
    if update {
        let mut text = serde_json::to_string_pretty(&actual).unwrap_or_default();
        text.push('\n');
        if existing.as_deref() != Some(text.as_str()) {
            if let Some(d) = file.parent() {
                std::fs::create_dir_all(d).map_err(write_error)?;
            }
            std::fs::write(file, text).map_err(write_error)?;
            eprintln!("golden: wrote {} (review it in the diff)", file.display());
        }
        return Ok(());
    }
    let Some(text) = existing else {
        return Err(SnapshotError::Missing {
            file: file.to_path_buf(),
        });
    };
    let stored: Snapshot =
        serde_json::from_str(&text).map_err(|source| SnapshotError::Unreadable {
            file: file.to_path_buf(),
            source,
        })?;
    if stored.output == actual.output {
        return Ok(());
    }
    let (a, b) = (
        serde_json::to_string_pretty(&stored.output).unwrap_or_default(),
        serde_json::to_string_pretty(&actual.output).unwrap_or_default(),
    );
    let diff = similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header("golden", "actual")
        .to_string();
    Err(SnapshotError::Differs {
        file: file.to_path_buf(),
        diff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap(output: Value) -> Snapshot {
        Snapshot {
            test_name: "t".into(),
            metadata: SnapshotMeta {
                spec: "X-1".into(),
                step: 1,
                redact: vec![],
            },
            output,
        }
    }

    #[test]
    fn redacts_paths_masks_ids_and_collapses_whitespace() {
        let body = json!({"text": "Hello   there\n", "run_id": "6f1c2b1e-8a6b-4b52-9d0f-2f1e0c9b7a11", "cost": 0.1, "duration_ms": 4});
        let n = normalize(&body, &["cost".into()]).expect("valid path");
        assert_eq!(
            n,
            json!({"text": "Hello there", "run_id": "[UUID]", "cost": "[REDACTED]"})
        );
    }

    #[test]
    fn missing_different_and_updated_files() {
        let dir = std::env::temp_dir().join(format!("snap-{}", uuid::Uuid::new_v4()));
        let f = file_of(&dir, "e2e", "faq");
        let missing = check(&f, snap(json!({"a": 1})), false).expect_err("missing fails");
        assert!(
            matches!(missing, SnapshotError::Missing { .. }),
            "{missing}"
        );
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        check(&f, snap(json!({"a": 1})), true).expect("written");
        check(&f, snap(json!({"a": 1})), false).expect("equal passes");
        let diff = check(&f, snap(json!({"a": 2})), false)
            .expect_err("different fails")
            .to_string();
        assert!(
            diff.contains("-  \"a\": 1") && diff.contains("+  \"a\": 2"),
            "{diff}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
