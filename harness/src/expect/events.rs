//! A step's `events:` and `no_event_contains:` checked against the platform's event window.

use crate::drive::events::Cursor;
use crate::drive::events::FeedError;
use crate::expect;
use crate::expect::response::check_paths;
use crate::runner::error::StepError;
use crate::runner::Scenario;
use crate::spec::{Actor, Step};
use serde_json::Value;
use std::time::{Duration, Instant};
impl Scenario<'_> {
    pub(crate) async fn check_events(
        &self,
        step: &Step,
        actor: &Actor,
        cursor: Cursor,
    ) -> Result<(), StepError> {
        let e = &step.expect;
        let feed = self.feed();
        let deadline = Instant::now() + self.cfg.events_timeout;
        // The step checks an absence (a count of 0, no event containing a text).
        let absences =
            e.events.iter().any(|ex| ex.count == Some(0)) || !e.no_event_contains.is_empty();
        loop {
            let (seen, missed) = feed.since(cursor).await?;
            let mut problems = vec![];
            for ex in &e.events {
                let alias = ex.tenant.clone().or_else(|| actor.tenant.clone());
                let slug = match &alias {
                    Some(a) => Some(self.slug(a)?),
                    None => None,
                };
                let matching: Vec<&Value> = seen
                    .iter()
                    .filter(|ev| {
                        ev["event_type"] == ex.subject
                            && slug.as_ref().is_none_or(|s| ev["tenant_id"] == *s)
                    })
                    .collect();
                let mut fields_ok = vec![];
                let mut last_why = String::new();
                for ev in &matching {
                    let mut why = vec![];
                    check_paths("field", &ex.fields, ev, self, &mut why)?;
                    if why.is_empty() {
                        fields_ok.push(*ev);
                    } else {
                        last_why = why.join("; ");
                    }
                }
                let ok = match ex.count {
                    Some(c) => fields_ok.len() == c,
                    None => !fields_ok.is_empty(),
                };
                if !ok {
                    let types: Vec<String> = seen
                        .iter()
                        .filter(|ev| slug.as_ref().is_none_or(|s| ev["tenant_id"] == *s))
                        .map(|ev| ev["event_type"].as_str().unwrap_or("?").to_string())
                        .collect();
                    problems.push(format!(
                        "event `{}`{}: expected {}, found {} matching ({} with this subject{}); events seen: [{}]",
                        ex.subject,
                        alias.map(|a| format!(" of tenant `{a}`")).unwrap_or_default(),
                        ex.count.map_or("at least 1".to_string(), |c| format!("exactly {c}")),
                        fields_ok.len(),
                        matching.len(),
                        if last_why.is_empty() { String::new() } else { format!("; the last differs: {last_why}") },
                        types.join(", ")
                    ));
                }
            }
            for needle in &e.no_event_contains {
                let needle = self.interp_str(needle)?;
                if let Some(ev) = seen.iter().find(|ev| ev.to_string().contains(&needle)) {
                    problems.push(format!(
                        "an event contains `{needle}`: {}",
                        expect::matcher::short(ev)
                    ));
                }
            }
            // An absence (a count of 0, no event containing a text) proves nothing in a window
            // that may be incomplete, and a missing event may be one the window missed: neither
            // judges the platform.
            if problems.is_empty() && !(missed && absences) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(if missed {
                    StepError::Feed(FeedError::Incomplete {
                        found: problems.join("\n"),
                    })
                } else {
                    StepError::mismatch(problems.join("\n"))
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
