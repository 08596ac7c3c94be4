//! A `ws` step: a WebSocket chat session on `/ws/chat`, its peers' sessions, and the frames read.

use crate::drive::Response;
use crate::runner::error::StepError;
use crate::runner::{Exchange, Scenario};
use crate::spec::Step;
use crate::{drive, expect};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
impl Scenario<'_> {
    /// Runs a `ws` step: the peers' sessions, then the caller's, which sends the step's frames;
    /// every session's frames go to the transcript under its own caller (the oracle's
    /// attribution), and the step's expectations are checked on `{frames, peers}`.
    pub(crate) async fn ws(
        &mut self,
        n: usize,
        step: &Step,
        w: &crate::spec::WsStep,
    ) -> Result<(), StepError> {
        let actor = self.actor(step);
        let creds = self.credentials(&actor).await?;
        let mut peer_creds = vec![];
        for p in &w.peers {
            peer_creds.push(self.credentials(p).await?);
        }
        let sent: Vec<Value> = w
            .send
            .iter()
            .map(|f| self.interp(f))
            .collect::<Result<_, _>>()?;
        let e = &step.expect;
        let cursor = if e.events.is_empty() && e.no_event_contains.is_empty() {
            None
        } else {
            Some(self.feed().head().await?)
        };
        let url = self.target.base_url.replacen("http", "ws", 1) + "/ws/chat";
        let started = Instant::now();
        let seen = drive::ws::session(
            &url,
            &creds,
            &peer_creds,
            &sent,
            Duration::from_millis(w.settle_ms.unwrap_or(200)),
            Duration::from_secs(10),
        )
        .await?;
        let latency = started.elapsed();
        for (i, (p, frames)) in w.peers.iter().zip(&seen.peers).enumerate() {
            self.transcript.push(Exchange {
                step: n,
                copy: i + 1,
                request: format!("WS /ws/chat (peer {})", i + 1),
                body: None,
                status: 101,
                response: json!({"frames": frames}),
                latency_ms: 0,
                headers: BTreeMap::new(),
                caller: p.tenant.clone(),
            });
        }
        let json = json!({
            "frames": seen.frames,
            "peers": seen.peers.iter().map(|f| json!({"frames": f})).collect::<Vec<_>>(),
        });
        self.transcript.push(Exchange {
            step: n,
            copy: 0,
            request: "WS /ws/chat".into(),
            body: Some(Value::Array(sent)),
            status: seen.status,
            response: json!({"frames": seen.frames}),
            latency_ms: latency.as_millis() as u64,
            headers: BTreeMap::new(),
            caller: actor.tenant.clone(),
        });
        let resp = Response {
            status: seen.status,
            headers: BTreeMap::new(),
            json,
            latency,
        };
        self.check_response(step, &resp, &creds)
            .await
            .map_err(|e| {
                e.map_message(|m| format!("{m}\nframes: {}", expect::matcher::short(&resp.json)))
            })?;
        if let Some(c) = cursor {
            self.check_events(step, &actor, c).await?;
        }
        self.capture(step, &resp)
    }
}
