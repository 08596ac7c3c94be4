//! Replaying episodes (`harness replay FILE|DIR`).
//!
//! - **exact**: the episode's own spec runs again with its seed, in its mode, through a fresh
//!   platform whose model answers only from the episode's recorded model calls (a request it did
//!   not record fails the replay with the nearest-miss diff). The platform's versions are compared
//!   with the recorded ones: any difference in a workflow, prompt, tool, model or router that the
//!   episode used is `replay_failed`, naming it. Otherwise step outputs, final output and audit
//!   trail are compared: `identical`, or the differences per step.
//! - **similar**: the same, with the current components (the scripted model, no version check);
//!   each step gets a token-Jaccard similarity score and the episode their mean.

use super::episode::{compare, similarity, version_mismatches, Difference, Episode};
use crate::runner::{self, RunConfig, Status};
use crate::spec::{self, Mode};
use crate::target::{ModelPlan, TargetSpec};
use platform::llm::cassette::CassetteSet;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayMode {
    Exact,
    Similar,
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Same steps, final output and audit trail.
    Identical,
    /// Ran, but did something else.
    Different { differences: Vec<Difference> },
    /// Could not replay: versions changed, a model request was not recorded, the spec does not load.
    ReplayFailed { reason: String },
    /// Similar mode: per-step scores and their mean.
    Similar {
        score: f64,
        steps: Vec<(String, f64)>,
    },
}

/// One episode's replay.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file: PathBuf,
    pub episode_id: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The episode files under `path` (itself when it is a file), sorted.
pub fn episode_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = vec![];
    let mut stack = vec![path.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Replays `ep` (read from `file`) on `target` (in-process MOCK, or the GOLDEN target for an
/// episode recorded in GOLDEN).
pub async fn replay(
    ep: Episode,
    file: &Path,
    mode: ReplayMode,
    target: TargetSpec,
    workflows_dir: Option<&Path>,
) -> Report {
    replay_with(ep, file, mode, target, workflows_dir, None)
        .await
        .0
}

/// [`replay`], optionally answering with the scripted model of `model_seed` instead of the recorded
/// calls; also returns the replayed episode.
pub async fn replay_with(
    ep: Episode,
    file: &Path,
    mode: ReplayMode,
    target: TargetSpec,
    workflows_dir: Option<&Path>,
    model_seed: Option<u64>,
) -> (Report, Option<Episode>) {
    let episode_id = ep.episode_id.clone();
    let report = |verdict| Report {
        file: file.to_path_buf(),
        episode_id: episode_id.clone(),
        verdict,
    };
    let spec = match spec::load_str(Path::new(&ep.spec.file), &ep.spec.source) {
        Ok(s) => s,
        Err(errs) => {
            let why: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            return (
                report(Verdict::ReplayFailed {
                    reason: format!("the episode's spec does not load: {}", why.join("; ")),
                }),
                None,
            );
        }
    };
    let ep = Arc::new(ep);
    let cfg = RunConfig {
        mode: Mode::parse(&ep.mode).unwrap_or(Mode::Mock),
        target,
        record_episodes: true,
        workflows_dir: workflows_dir.map(Path::to_path_buf),
        model: match (mode, model_seed) {
            (_, Some(s)) => ModelPlan::ScriptedSeed(s),
            (ReplayMode::Exact, None) => ModelPlan::Replay(Arc::new(CassetteSet::from_cassettes(
                &format!("episode {}", file.display()),
                ep.model_calls.iter().cloned(),
            ))),
            (ReplayMode::Similar, None) => ModelPlan::Scripted,
        },
        ..RunConfig::mock(ep.seed)
    };
    // Boxed: a replay step of a spec runs a spec itself.
    let outcome = Box::pin(runner::run_spec(&spec, &cfg)).await;
    let Some(replayed) = outcome.episode else {
        return (
            report(Verdict::ReplayFailed {
                reason: outcome
                    .skip_reason
                    .or(outcome.failure.map(|f| f.to_string()))
                    .unwrap_or_else(|| "the replay recorded nothing".into()),
            }),
            None,
        );
    };
    let verdict = verdict_of(
        &ep,
        &replayed,
        outcome.status,
        outcome.failure.as_ref(),
        mode,
    );
    (report(verdict), Some(replayed))
}

fn verdict_of(
    ep: &Episode,
    replayed: &Episode,
    status: Status,
    failure: Option<&runner::Failure>,
    mode: ReplayMode,
) -> Verdict {
    if mode == ReplayMode::Exact {
        // Versions are read after the run (reading them before would shift the platform's seeded
        // id sequence, which also numbers requests).
        let differ = version_mismatches(ep, &replayed.versions);
        if !differ.is_empty() {
            return Verdict::ReplayFailed {
                reason: format!(
                    "the platform's versions differ from the episode's:\n  {}",
                    differ.join("\n  ")
                ),
            };
        }
    }
    if status == Status::Failed {
        if let Some(f) = failure {
            let m = &f.message;
            if m.contains("no cassette for model request") {
                return Verdict::ReplayFailed {
                    reason: format!("{}\n{m}", f.location),
                };
            }
        }
    }
    match mode {
        ReplayMode::Exact => {
            let differences = compare(ep, replayed);
            if differences.is_empty() {
                Verdict::Identical
            } else {
                Verdict::Different { differences }
            }
        }
        ReplayMode::Similar => {
            let n = ep.steps.len().max(replayed.steps.len());
            let steps: Vec<(String, f64)> = (0..n)
                .map(|i| {
                    let (a, b) = (ep.steps.get(i), replayed.steps.get(i));
                    let id = a.or(b).map(|s| s.step_id.clone()).unwrap_or_default();
                    let score = match (a, b) {
                        (Some(a), Some(b)) if a.step_type == b.step_type => {
                            similarity(&a.output, &b.output)
                        }
                        _ => 0.0,
                    };
                    (id, score)
                })
                .collect();
            let score = if steps.is_empty() {
                1.0
            } else {
                steps.iter().map(|(_, s)| s).sum::<f64>() / steps.len() as f64
            };
            Verdict::Similar { score, steps }
        }
    }
}
