//! `restart` and `wait_for_event` steps: the in-process platform killed and started again on the
//! same backends, and a wait for the event that shows what it resumed.

use crate::drive::events::Cursor;
use crate::drive::Response;
use crate::expect::response::check_paths;
use crate::runner::error::StepError;
use crate::runner::Scenario;
use crate::spec::Step;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
impl Scenario<'_> {
    /// Waits for the step's event (if any), then restarts the in-process platform; the new
    /// instance gets a new address and a new HTTP client (pooled connections belonged to the
    /// dead one).
    pub(crate) async fn restart(
        &mut self,
        step: &Step,
        r: &crate::spec::RestartStep,
    ) -> Result<Response, StepError> {
        let event = match &r.after_event {
            Some(subject) => self.await_event(step, subject, &r.fields).await?,
            None => Value::Null,
        };
        self.target.restart().await.map_err(|e| e.to_string())?;
        self.http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(event_response(event))
    }

    /// The first event of the step's tenant published in this scenario with `subject` and
    /// matching `fields`, waited for up to the events timeout.
    pub(crate) async fn await_event(
        &self,
        step: &Step,
        subject: &str,
        fields: &BTreeMap<String, Value>,
    ) -> Result<Value, StepError> {
        let actor = self.actor(step);
        let tenant = self.slug(&actor.tenant.clone().unwrap_or_default())?;
        let feed = self.feed();
        let deadline = Instant::now() + self.cfg.events_timeout;
        loop {
            let (all, _) = feed.since(Cursor::default()).await?;
            for e in &all {
                if e["event_type"] != json!(subject) || e["tenant_id"] != json!(tenant) {
                    continue;
                }
                let mut why = vec![];
                check_paths("field", fields, e, self, &mut why)?;
                if why.is_empty() {
                    return Ok(e.clone());
                }
            }
            if Instant::now() > deadline {
                return Err(StepError::mismatch(format!(
                    "no `{subject}` event of tenant {tenant} matching {fields:?} within {:?}",
                    self.cfg.events_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The response of a step that waited for an event: `{event}`, the envelope without what belongs
/// to the transport (the subject's run prefix, the window's sequence number), so that transcripts
/// and episodes do not depend on the services a run got.
pub(crate) fn event_response(mut event: Value) -> Response {
    if let Some(m) = event.as_object_mut() {
        m.remove("subject");
        m.remove("seq");
    }
    Response {
        status: 200,
        headers: Default::default(),
        json: json!({ "event": event }),
        latency: Duration::ZERO,
    }
}
