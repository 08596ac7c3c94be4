//! A `sink` step: what the harness's channel endpoint received, and how it answers from now on.

use crate::drive::Response;
use crate::expect;
use crate::runner::error::StepError;
use crate::runner::request::poll_again;
use crate::runner::{Exchange, Scenario};
use crate::spec::Step;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
impl Scenario<'_> {
    /// Runs a `sink` step: sets the sink's answer for the channel (with `answer`), then checks
    /// what the channel's endpoint received, again every `interval_ms` until the expectations
    /// hold when the step says `wait_until` (reading the sink changes nothing).
    pub(crate) async fn sink(
        &mut self,
        n: usize,
        step: &Step,
        s: &crate::spec::SinkStep,
    ) -> Result<(), StepError> {
        let sink = self
            .target
            .sink
            .as_ref()
            .ok_or("a `sink` step needs a target whose channels the harness configured (MOCK, GOLDEN or --spawn): a deployment's channels deliver to its own endpoints")?;
        let tenants = self.tenant_slugs();
        if let Some(status) = s.answer {
            sink.answer(&tenants, s.channel.as_deref(), status);
        }
        let started = Instant::now();
        let mut attempts = 0;
        let resp = loop {
            attempts += 1;
            let resp = Response {
                status: 200,
                headers: BTreeMap::new(),
                json: sink.view(&tenants, s.channel.as_deref()),
                latency: Duration::ZERO,
            };
            let Err(m) = self.check_response(step, &resp, &BTreeMap::new()).await else {
                break resp;
            };
            if let Err(m) = poll_again(step, started, attempts, m).await {
                self.transcript.push(sink_exchange(n, s, &resp));
                return Err(m.map_message(|m| {
                    format!(
                        "{m}\nthe sink received: {}",
                        expect::matcher::short(&resp.json)
                    )
                }));
            }
        };
        self.transcript.push(sink_exchange(n, s, &resp));
        self.capture(step, &resp)
    }
}

/// A `sink` step's transcript entry.
pub(crate) fn sink_exchange(n: usize, s: &crate::spec::SinkStep, resp: &Response) -> Exchange {
    Exchange::own(
        n,
        format!("SINK {}", s.channel.as_deref().unwrap_or("*")),
        resp.status,
        resp.json.clone(),
    )
}
