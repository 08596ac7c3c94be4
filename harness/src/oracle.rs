//! Global oracles, run after every scenario of every suite without being named by it.
//!
//! The tenant-isolation oracle: every tenant carries a canary string in its system prompt (the
//! platform plants `CANARY-<hash of seed and tenant>`). Nothing seen by one tenant's caller (a
//! response, an SSE chunk) and no event published for one tenant may carry another tenant's
//! canary. A tenant's own canary leaking is the output guard's business, not this oracle's.
//! (Canaries in documents, orders, leads and tool outputs, and the log and span scan, come with
//! the rest of issue 7.)

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
/// tenant id to its canary.
pub fn cross_tenant_leaks(seen: &[Seen], canaries: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = vec![];
    for s in seen {
        let text = s.content.to_string();
        for (owner, canary) in canaries {
            if owner != s.tenant && text.contains(canary.as_str()) {
                out.push(format!(
                    "tenant isolation: {} (tenant {}) carries the canary of tenant {owner}",
                    s.place, s.tenant
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn another_tenants_canary_is_a_leak_and_ones_own_is_not_this_oracles() {
        let canaries: BTreeMap<String, String> = [
            ("acme-1".to_string(), "CANARY-aaaa".to_string()),
            ("globex-2".to_string(), "CANARY-bbbb".to_string()),
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
            vec!["tenant isolation: step 2 POST /api/v1/chat/message (tenant acme-1) carries the canary of tenant globex-2".to_string()]
        );
    }
}
