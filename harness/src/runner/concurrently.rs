//! A `concurrently` step: several callers' requests sent at once, each checked on its own.

use crate::runner::error::{FailureKind, StepError};
use crate::runner::{step_label, Scenario};
use crate::spec::Step;
impl Scenario<'_> {
    /// Sends the sub-steps of a `concurrently` step at once (each with its own caller, copies and
    /// expectations) and checks each; all their exchanges go to the transcript under this step.
    pub(crate) async fn concurrently(&mut self, n: usize, list: &[Step]) -> Result<(), StepError> {
        self.attempt_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let results = futures::future::join_all(list.iter().map(|s| self.attempt(n, s))).await;
        let log = std::mem::take(&mut *self.attempt_log.lock().unwrap_or_else(|e| e.into_inner()));
        self.transcript.extend(log);
        let failed: Vec<(usize, &Step, StepError)> = results
            .into_iter()
            .zip(list)
            .enumerate()
            .filter_map(|(i, (r, s))| r.err().map(|e| (i, s, e)))
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        // A verdict on the platform only when every failed request was one.
        let judged = failed
            .iter()
            .all(|(_, _, e)| e.kind() == FailureKind::Mismatch);
        let lines: Vec<String> = failed
            .iter()
            .map(|(i, s, e)| format!("concurrent request {} ({}): {e}", i + 1, step_label(*i, s)))
            .collect();
        let message = lines.join("\n");
        Err(if judged {
            StepError::Mismatch(message)
        } else {
            StepError::Harness(message)
        })
    }
}
