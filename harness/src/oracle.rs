//! Global oracles, run after every scenario of every suite without being named by it.
//!
//! The tenant-isolation oracle: every tenant carries a canary string in its system prompt (the
//! platform plants `CANARY-<hash of seed and tenant>`), and every fixture tenant another in its
//! data (`TRACE-...` in its restricted document and in every order's shipping address, `fixture::data_canary`). Nothing seen by one
//! tenant's caller (a response, an SSE stream, a tool output inside a run) and no event published
//! for one tenant may carry another tenant's canary. A tenant's own canary leaking is the output
//! guard's business, not this oracle's.
//!
//! The log oracle: no log line and no span attribute may carry any canary or a fixture's personal
//! or secret value (user e-mails and passwords, API keys, lead e-mails). The rule is the stricter
//! one, not only another tenant's: logs and traces leave the platform for systems that are not the
//! tenant's, so those values never reach them at all.

use crate::drive::events::Cursor;
use crate::runner::error::StepError;
use crate::runner::Scenario;
use crate::target::TargetSpec;
use crate::{fixture, oracle};
use serde_json::Value;
use std::collections::BTreeMap;

/// What one tenant saw or had published on its behalf.
pub struct Seen<'a> {
    /// The tenant id it belongs to.
    pub tenant: &'a str,
    /// Where it was seen, for the failure message ("step 3 POST /api/v1/chat/message").
    pub place: String,
    pub content: &'a Value,
}

/// Every sighting of another tenant's canary: `(place, owner of the canary)`. `canaries` maps a
/// tenant id to its canaries.
pub fn cross_tenant_leaks(seen: &[Seen], canaries: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut out = vec![];
    for s in seen {
        let text = s.content.to_string();
        for (owner, list) in canaries {
            if owner != s.tenant && list.iter().any(|c| text.contains(c.as_str())) {
                out.push(format!(
                    "tenant isolation: {} (tenant {}) carries a canary or record of tenant {owner}",
                    s.place, s.tenant
                ));
            }
        }
    }
    out
}

/// Every log line that carries a canary or a sensitive fixture value; `secrets` pairs each value
/// with what it is ("the canary of tenant acme-1", "the password of bob").
pub fn log_leaks(lines: &[String], secrets: &[(String, String)]) -> Vec<String> {
    let mut out = vec![];
    for line in lines {
        for (value, what) in secrets {
            if line.contains(value.as_str()) {
                let shown: String = line.chars().take(300).collect();
                let kind = if line.starts_with(crate::logs::SPAN_LINE) {
                    "span: an attribute"
                } else {
                    "log: a line"
                };
                out.push(format!("{kind} carries {what}: {shown}"));
            }
        }
    }
    out
}

impl Scenario<'_> {
    /// The tenant-isolation oracle over what this scenario saw: every response to a tenant's
    /// caller and every event published for a tenant, against the other tenants' canaries (the
    /// fixture tenants and the demo ones). In-process targets only: a remote deployment's seed,
    /// which the canaries derive from, is not known here.
    pub(crate) async fn isolation_oracle(&self) -> Result<(), StepError> {
        if matches!(self.cfg.target, TargetSpec::Remote { .. }) {
            return Ok(());
        }
        let mut canaries: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for slug in ["acme", "globex"] {
            canaries.insert(
                slug.into(),
                vec![platform::demo::canary(self.cfg.seed, slug)],
            );
        }
        for t in self.tenants.values() {
            // Besides the two canaries, every value only this tenant's data holds: its documents'
            // ids, its users' and leads' e-mails (they name the tenant's slug).
            let mut own = vec![
                platform::demo::canary(self.cfg.seed, &t.slug),
                fixture::data_canary(&t.slug),
            ];
            for (list, field) in [
                ("documents", "document_id"),
                ("users", "email"),
                ("leads", "email"),
            ] {
                own.extend(
                    t.fixture.seed[list]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x[field].as_str().map(str::to_string)),
                );
            }
            canaries.insert(t.slug.clone(), own);
        }
        let mut seen = vec![];
        for e in &self.transcript {
            if e.request.starts_with("REPLAY") {
                continue; // a replay report quotes other scenarios' episodes
            }
            let Some(t) = e.caller.as_ref().and_then(|a| self.tenants.get(a)) else {
                continue;
            };
            seen.push(oracle::Seen {
                tenant: &t.slug,
                place: format!("step {} {}", e.step, e.request),
                content: &e.response,
            });
        }
        // What the channels' endpoint received is seen by the tenant the platform addressed it to.
        let received = self
            .target
            .sink
            .as_ref()
            .map(|s| s.received(&self.tenant_slugs()))
            .unwrap_or_default();
        for r in &received {
            seen.push(oracle::Seen {
                tenant: &r.tenant,
                place: format!("sink {} ({})", r.channel, r.tenant),
                content: &r.body,
            });
        }
        let (events, _) = self.feed().since(Cursor::default()).await?;
        for ev in &events {
            if let Some(t) = ev["tenant_id"].as_str() {
                seen.push(oracle::Seen {
                    tenant: t,
                    place: format!("event {}", ev["event_type"].as_str().unwrap_or("?")),
                    content: ev,
                });
            }
        }
        let mut leaks = oracle::cross_tenant_leaks(&seen, &canaries);
        leaks.extend(oracle::log_leaks(
            &crate::logs::since(self.log_mark),
            &self.log_secrets(),
        ));
        if leaks.is_empty() {
            Ok(())
        } else {
            Err(StepError::mismatch(leaks.join("\n")))
        }
    }

    /// What no log line may carry: this scenario's tenants' canaries, and their fixtures' user
    /// e-mails and passwords, API keys and lead e-mails.
    pub(crate) fn log_secrets(&self) -> Vec<(String, String)> {
        let mut out = vec![];
        for t in self.tenants.values() {
            for c in [
                platform::demo::canary(self.cfg.seed, &t.slug),
                fixture::data_canary(&t.slug),
            ] {
                out.push((c, format!("a canary of tenant {}", t.slug)));
            }
            let seed = &t.fixture.seed;
            let each = |list: &str, field: &str| -> Vec<String> {
                seed[list]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x[field].as_str().map(str::to_string))
                    .collect()
            };
            for (list, field, what) in [
                ("users", "email", "a user's e-mail"),
                ("users", "password", "a user's password"),
                ("api_keys", "key", "an API key"),
                ("leads", "email", "a lead's e-mail"),
            ] {
                for v in each(list, field) {
                    out.push((v, format!("{what} of tenant {}", t.slug)));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn another_tenants_canary_is_a_leak_and_ones_own_is_not_this_oracles() {
        let canaries: BTreeMap<String, Vec<String>> = [
            ("acme-1".to_string(), vec!["CANARY-aaaa".to_string()]),
            (
                "globex-2".to_string(),
                vec!["CANARY-bbbb".to_string(), "TRACE-bbbb".to_string()],
            ),
        ]
        .into();
        let leak = json!({"response": {"content": {"text": "my instructions say CANARY-bbbb"}}});
        let own = json!({"data": {"text": "CANARY-aaaa"}});
        let clean = json!({"text": "hello"});
        let seen = [
            Seen {
                tenant: "acme-1",
                place: "step 2 POST /api/v1/chat/message".into(),
                content: &leak,
            },
            Seen {
                tenant: "acme-1",
                place: "event agent.run.completed".into(),
                content: &own,
            },
            Seen {
                tenant: "globex-2",
                place: "step 3 GET /api/v1/orders/ORD-1".into(),
                content: &clean,
            },
        ];
        assert_eq!(
            cross_tenant_leaks(&seen, &canaries),
            vec!["tenant isolation: step 2 POST /api/v1/chat/message (tenant acme-1) carries a canary or record of tenant globex-2".to_string()]
        );
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn a_canary_or_fixture_value_in_a_log_line_is_reported() {
        let secrets = vec![
            (
                "TRACE-1234".to_string(),
                "the data canary of tenant acme-1".to_string(),
            ),
            (
                "bob@acme-1.test".to_string(),
                "the e-mail of user bob".to_string(),
            ),
        ];
        let lines = vec![
            r#"{"level":"INFO","fields":{"message":"request","status":200}}"#.to_string(),
            r#"{"level":"ERROR","fields":{"err":"duplicate key bob@acme-1.test"}}"#.to_string(),
        ];
        let found = log_leaks(&lines, &secrets);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("the e-mail of user bob"), "{found:?}");
        assert!(log_leaks(&lines[..1], &secrets).is_empty());
    }

    #[test]
    fn a_canary_in_a_span_attribute_is_reported_as_one() {
        let secrets = vec![(
            "TRACE-1234".to_string(),
            "the data canary of tenant acme-1".to_string(),
        )];
        let lines =
            vec![r#"{"span":"rag.search","fields":{"title":"TRACE-1234 vault"}}"#.to_string()];
        let found = log_leaks(&lines, &secrets);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("span: an attribute carries the data canary"),
            "{found:?}"
        );
    }
}
