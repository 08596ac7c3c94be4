//! The API's side of a guard decision: an audit row, a `guard.blocked` event and the
//! `guard_blocked_total` counter, for every surface (chat, SSE, RAG, workflow parameters,
//! documents withheld from the model). The event and the row name the violations, never the text.

use super::auth::audit;
use super::extract::Caller;
use crate::app::App;
use crate::guard::output::{self, Secrets};
use crate::guard::{Verdict, Violation};
use crate::telemetry::GuardLabels;
use serde_json::json;

/// Records what the guards did on `surface` for `caller`; `subject` names what was acted on (a
/// message id, a document id). Nothing is recorded for a clean verdict.
pub async fn record(app: &App, caller: &Caller, surface: &str, subject: &str, verdict: &Verdict) {
    if verdict.is_clean() {
        return;
    }
    for v in &verdict.violations {
        app.metrics
            .guard_blocked
            .get_or_create(&GuardLabels {
                violation: v.as_str().into(),
                surface: surface.into(),
            })
            .inc();
    }
    let names: Vec<&str> = verdict.violations.iter().map(|v| v.as_str()).collect();
    let acted = verdict.blocked
        || verdict
            .violations
            .contains(&Violation::IndirectPromptInjectionDetected);
    if !acted {
        return;
    }
    audit(
        app,
        &caller.tenant.id,
        &caller.user_id,
        "guard.blocked",
        &format!("{surface}:{subject}"),
        "denied",
        &names.join(","),
    )
    .await;
    app.publish(
        &caller.tenant.id,
        "guard.blocked",
        None,
        json!({"surface": surface, "subject": subject, "blocked": verdict.blocked, "violations": names}),
    )
    .await;
}

/// The output filter on an answer to `caller` (the tenant's instructions and the registry's tool
/// names are what must not leave), recorded on `surface`: the text that may leave and the verdict.
pub async fn filter_answer(
    app: &App,
    caller: &Caller,
    surface: &str,
    subject: &str,
    text: &str,
) -> (String, Verdict) {
    let tools: Vec<&str> = app.engine.tools.names().collect();
    let (text, violations) = output::filter(
        &app.cfg.guard,
        text,
        &Secrets {
            system_prompt: &caller.tenant.system_prompt,
            tool_names: &tools,
        },
    );
    let verdict = Verdict::of(violations);
    record(app, caller, surface, subject, &verdict).await;
    (text, verdict)
}
