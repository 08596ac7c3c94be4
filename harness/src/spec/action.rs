//! What a step does, as one value. The format spells a step's action as one of several optional
//! fields (`chat:`, `get:`, `sink:` ...); [`StepFields`] is that spelling, and loading turns it
//! into a [`Step`] holding one [`Action`] that the runner, the loader and the labels match on, so
//! a new step kind is one variant the compiler walks every `match` through.

use super::model::{
    Actor, AttackStep, EventWait, Expect, FaultStep, RepeatBody, ReplayStep, RestartStep, SinkStep,
    Span, Step, WaitUntil, WorkflowCall, WsStep,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The HTTP method of a plain request step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    /// The method's name (`GET`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }
}

/// A step's one action.
#[derive(Debug, Clone)]
pub enum Action {
    /// `chat:` (or `sse_chat:`, read as server-sent events, when `stream`).
    Chat { text: String, stream: bool },
    /// `get:`, `post:`, `put:`, `patch:`, `delete:`.
    Http { verb: Verb, path: String },
    /// `POST /api/v1/workflows/execute`.
    Workflow(WorkflowCall),
    /// A tool fault for this scenario's tenant, through the operator surface.
    Fault(FaultStep),
    /// Moves the target's frozen clock forward by this duration (`90s`, `2h59m59s`, `31d`): past
    /// a rate-limit window, a token's expiry, a month's quota; through the operator surface.
    AdvanceClock(Span),
    /// Replay a recorded episode; the step's response is the replay's report.
    Replay(ReplayStep),
    /// Kill the in-process platform as a crash would and start a new one on the same backends
    /// (it resumes abandoned sagas). The step's response is `{event}`: the event it waited for.
    Restart(RestartStep),
    /// Wait until an event of the step's tenant with this subject (and fields) has been
    /// published in this scenario; the step's response is `{event}`.
    WaitForEvent(EventWait),
    /// Send every case of these case files (the adversarial catalogue) and judge each.
    Attacks(AttackStep),
    /// Send these requests at once, each with its own caller (`as`), copies (`parallel`) and
    /// expectations: several tenants' traffic interleaved.
    Concurrently(Vec<Step>),
    /// A WebSocket chat session on `/ws/chat` as the step's caller.
    Ws(WsStep),
    /// What the harness's channel endpoint has received; optionally how it answers from now on.
    Sink(SinkStep),
}

/// How the error for a step with none or several actions begins (the loader places it).
pub const ACTION_COUNT_ERROR: &str = "a step needs exactly one action";

/// Every action word, in the order the format documents them (for messages).
pub const ACTION_WORDS: &str = "chat, sse_chat, get, post, put, patch, delete, workflow, fault, advance_clock, replay, restart, wait_for_event, attacks, concurrently, ws, sink";

impl Action {
    /// The field that names it in a spec (`sse_chat`, `get`, `advance_clock` ...).
    pub fn word(&self) -> &'static str {
        match self {
            Action::Chat { stream: false, .. } => "chat",
            Action::Chat { stream: true, .. } => "sse_chat",
            Action::Http { verb, .. } => match verb {
                Verb::Get => "get",
                Verb::Post => "post",
                Verb::Put => "put",
                Verb::Patch => "patch",
                Verb::Delete => "delete",
            },
            Action::Workflow(_) => "workflow",
            Action::Fault(_) => "fault",
            Action::AdvanceClock(_) => "advance_clock",
            Action::Replay(_) => "replay",
            Action::Restart(_) => "restart",
            Action::WaitForEvent(_) => "wait_for_event",
            Action::Attacks(_) => "attacks",
            Action::Concurrently(_) => "concurrently",
            Action::Ws(_) => "ws",
            Action::Sink(_) => "sink",
        }
    }

    /// A request to the platform's API (what `concurrently`, `background` and `repeat` take).
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Action::Chat { .. } | Action::Http { .. } | Action::Workflow(_)
        )
    }

    /// A request that carries a body of the step's own (`raw_body`, `repeat_body`).
    pub fn takes_raw_body(&self) -> bool {
        matches!(
            self,
            Action::Http {
                verb: Verb::Post | Verb::Put | Verb::Patch,
                ..
            }
        )
    }

    /// An action the harness performs on the target rather than a caller's request, so it needs
    /// no `as:`.
    pub fn needs_no_caller(&self) -> bool {
        matches!(
            self,
            Action::Fault(_) | Action::AdvanceClock(_) | Action::Replay(_) | Action::Sink(_)
        )
    }

    /// How a failure names the step when it has no `name:`.
    pub fn label(&self) -> String {
        match self {
            Action::Chat {
                text,
                stream: false,
            } => format!("chat {text:?}"),
            Action::Chat { text, stream: true } => format!("sse_chat {text:?}"),
            Action::Http { verb, path } => format!("{} {path}", verb.as_str()),
            Action::Workflow(w) => format!("workflow {}", w.id),
            Action::Fault(f) => format!("fault in {}", f.tool),
            Action::AdvanceClock(s) => format!("clock +{}", humantime::format_duration(s.0)),
            Action::Sink(s) => format!("sink {}", s.channel.as_deref().unwrap_or("*")),
            other => other.word().to_string(),
        }
    }
}

/// A step as the file spells it: each action a field of its own. Only loading sees this form;
/// [`Step`] is built from it when it names exactly one action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFields {
    name: Option<String>,
    #[serde(rename = "as")]
    actor: Option<Actor>,
    chat: Option<String>,
    sse_chat: Option<String>,
    get: Option<String>,
    post: Option<String>,
    put: Option<String>,
    patch: Option<String>,
    delete: Option<String>,
    workflow: Option<WorkflowCall>,
    fault: Option<FaultStep>,
    advance_clock: Option<Span>,
    repeat: Option<u32>,
    replay: Option<ReplayStep>,
    restart: Option<RestartStep>,
    wait_for_event: Option<EventWait>,
    attacks: Option<AttackStep>,
    concurrently: Option<Vec<Step>>,
    ws: Option<WsStep>,
    sink: Option<SinkStep>,
    #[serde(default)]
    background: bool,
    body: Option<Value>,
    raw_body: Option<String>,
    repeat_body: Option<RepeatBody>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    parallel: Option<u32>,
    wait_until: Option<WaitUntil>,
    #[serde(default)]
    expect: Expect,
    #[serde(default)]
    capture: BTreeMap<String, String>,
}

impl TryFrom<StepFields> for Step {
    type Error = String;

    fn try_from(f: StepFields) -> Result<Step, String> {
        let mut actions = vec![];
        actions.extend(f.chat.map(|text| Action::Chat {
            text,
            stream: false,
        }));
        actions.extend(f.sse_chat.map(|text| Action::Chat { text, stream: true }));
        for (verb, path) in [
            (Verb::Get, f.get),
            (Verb::Post, f.post),
            (Verb::Put, f.put),
            (Verb::Patch, f.patch),
            (Verb::Delete, f.delete),
        ] {
            actions.extend(path.map(|path| Action::Http { verb, path }));
        }
        actions.extend(f.workflow.map(Action::Workflow));
        actions.extend(f.fault.map(Action::Fault));
        actions.extend(f.advance_clock.map(Action::AdvanceClock));
        actions.extend(f.replay.map(Action::Replay));
        actions.extend(f.restart.map(Action::Restart));
        actions.extend(f.wait_for_event.map(Action::WaitForEvent));
        actions.extend(f.attacks.map(Action::Attacks));
        actions.extend(f.concurrently.map(Action::Concurrently));
        actions.extend(f.ws.map(Action::Ws));
        actions.extend(f.sink.map(Action::Sink));
        if actions.len() != 1 {
            let found: Vec<&str> = actions.iter().map(Action::word).collect();
            return Err(format!(
                "{ACTION_COUNT_ERROR} of {ACTION_WORDS}; found {}",
                if found.is_empty() {
                    "none".to_string()
                } else {
                    found.join(", ")
                }
            ));
        }
        Ok(Step {
            name: f.name,
            actor: f.actor,
            action: actions.remove(0),
            repeat: f.repeat,
            background: f.background,
            body: f.body,
            raw_body: f.raw_body,
            repeat_body: f.repeat_body,
            headers: f.headers,
            parallel: f.parallel,
            wait_until: f.wait_until,
            expect: f.expect,
            capture: f.capture,
        })
    }
}
