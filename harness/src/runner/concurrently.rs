//! A `concurrently` step: several callers' requests sent at once, each checked on its own.

use crate::runner::{step_label, Scenario};
use crate::spec::Step;
impl Scenario<'_> {
    /// Sends the sub-steps of a `concurrently` step at once (each with its own caller, copies and
    /// expectations) and checks each; all their exchanges go to the transcript under this step.
    pub(crate) async fn concurrently(&mut self, n: usize, list: &[Step]) -> Result<(), String> {
        self.attempt_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let results = futures::future::join_all(list.iter().map(|s| self.attempt(n, s))).await;
        let log = std::mem::take(&mut *self.attempt_log.lock().unwrap_or_else(|e| e.into_inner()));
        self.transcript.extend(log);
        let problems: Vec<String> = results
            .into_iter()
            .zip(list)
            .enumerate()
            .filter_map(|(i, (r, s))| {
                r.err()
                    .map(|m| format!("concurrent request {} ({}): {m}", i + 1, step_label(i, s)))
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}
