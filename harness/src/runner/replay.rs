//! A `replay` step: an episode replayed through a nested in-process platform; its report is the
//! step's response.

use crate::drive::Response;
use crate::expect;
use crate::record::episode::Episode;
use crate::runner::error::StepError;
use crate::runner::{workflows_with_prompt_versions, Exchange, Scenario};
use crate::spec::Step;
use crate::target::TargetSpec;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;
impl Scenario<'_> {
    /// A `replay` step: the replay's report is the step's response.
    pub(crate) async fn replay_step(
        &mut self,
        n: usize,
        step: &Step,
        r: &crate::spec::ReplayStep,
    ) -> Result<(), StepError> {
        let resp = self.replay(r).await?;
        // The transcript and failure messages keep the verdict: not the two whole episodes,
        // nor the timing analysis (real time: a rerun must read the same).
        let mut summary = resp.json.clone();
        if let Some(m) = summary.as_object_mut() {
            m.remove("episode");
            m.remove("original");
            m.remove("analysis");
        }
        self.transcript.push(Exchange {
            latency_ms: resp.latency.as_millis() as u64,
            ..Exchange::own(
                n,
                format!("REPLAY {}", r.episode),
                resp.status,
                summary.clone(),
            )
        });
        self.check_response(step, &resp, &BTreeMap::new())
            .await
            .map_err(|e| {
                e.map_message(|m| {
                    format!("{m}\nreplay report: {}", expect::matcher::short(&summary))
                })
            })?;
        self.capture(step, &resp)
    }

    /// Replays an episode of `golden/episodes/` (in-process; in GOLDEN on this run's services when
    /// the episode was recorded in GOLDEN) and answers with the report as the step's JSON.
    pub(crate) async fn replay(&self, r: &crate::spec::ReplayStep) -> Result<Response, StepError> {
        use crate::record::replay::{self as rp, ReplayMode};
        let file = self.cfg.golden_dir.join("episodes").join(&r.episode);
        let ep = Episode::read(&file)?;
        let mode = match r.mode.as_deref() {
            Some("similar") => ReplayMode::Similar,
            _ => ReplayMode::Exact,
        };
        let target = match (&self.cfg.target, ep.mode.as_str()) {
            (TargetSpec::Remote { .. }, _) => {
                return Err("a replay step needs an in-process target (MOCK or GOLDEN)".into())
            }
            (TargetSpec::Golden(env), "golden") => TargetSpec::Golden(env.clone()),
            _ => TargetSpec::Mock,
        };
        let dir = if r.prompt_versions.is_empty() {
            None
        } else {
            Some(workflows_with_prompt_versions(&r.prompt_versions)?)
        };
        let started = Instant::now();
        let mut verdicts = vec![];
        let mut last = None;
        for _ in 0..r.times.unwrap_or(1) {
            let (report, replayed) = rp::replay_with(
                ep.clone(),
                &file,
                mode,
                target.clone(),
                dir.as_ref().map(|d| d.path()),
                r.model_seed,
            )
            .await;
            let v = serde_json::to_value(&report).unwrap_or(Value::Null);
            verdicts.push(v["verdict"].clone());
            last = Some((v, replayed));
        }
        let (mut json, replayed) = last.ok_or("`times` must be at least 1")?;
        json["verdicts"] = Value::Array(verdicts);
        json["replay_of"] = json!(ep.episode_id);
        // Performance: the replay's breakdown, and the recorded one to compare it with.
        json["analysis"] = json!({
            "replayed": replayed.as_ref().map(Episode::analysis),
            "original": ep.analysis(),
        });
        json["episode"] = serde_json::to_value(&replayed).unwrap_or(Value::Null);
        json["original"] = serde_json::to_value(&ep).unwrap_or(Value::Null);
        Ok(Response {
            status: 200,
            headers: BTreeMap::new(),
            json,
            latency: started.elapsed(),
        })
    }
}
