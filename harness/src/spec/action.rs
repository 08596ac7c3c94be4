//! What a step does, as one value: the format spells a step's action as one of several optional
//! fields (`chat:`, `get:`, `sink:` ...); [`Step::action`] turns them into one [`Action`] that the
//! runner, the loader and the labels match on, so a new step kind is one variant the compiler
//! walks every `match` through.

use super::model::{
    AttackStep, EventWait, FaultStep, ReplayStep, RestartStep, SinkStep, Span, Step, WorkflowCall,
    WsStep,
};

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

/// A step's one action, borrowed from the step.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// `chat:` (or `sse_chat:`, read as server-sent events, when `stream`).
    Chat {
        text: &'a str,
        stream: bool,
    },
    /// `get:`, `post:`, `put:`, `patch:`, `delete:`.
    Http {
        verb: Verb,
        path: &'a str,
    },
    Workflow(&'a WorkflowCall),
    Fault(&'a FaultStep),
    AdvanceClock(Span),
    Replay(&'a ReplayStep),
    Restart(&'a RestartStep),
    WaitForEvent(&'a EventWait),
    Attacks(&'a AttackStep),
    Concurrently(&'a [Step]),
    Ws(&'a WsStep),
    Sink(&'a SinkStep),
}

impl Action<'_> {
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

impl Step {
    /// Every action the step's fields name; a valid step (the loader checks) has exactly one.
    pub fn all_actions(&self) -> Vec<Action<'_>> {
        let mut out = vec![];
        if let Some(t) = &self.chat {
            out.push(Action::Chat {
                text: t,
                stream: false,
            });
        }
        if let Some(t) = &self.sse_chat {
            out.push(Action::Chat {
                text: t,
                stream: true,
            });
        }
        for (verb, path) in [
            (Verb::Get, &self.get),
            (Verb::Post, &self.post),
            (Verb::Put, &self.put),
            (Verb::Patch, &self.patch),
            (Verb::Delete, &self.delete),
        ] {
            if let Some(p) = path {
                out.push(Action::Http { verb, path: p });
            }
        }
        out.extend(self.workflow.as_ref().map(Action::Workflow));
        out.extend(self.fault.as_ref().map(Action::Fault));
        out.extend(self.advance_clock.map(Action::AdvanceClock));
        out.extend(self.replay.as_ref().map(Action::Replay));
        out.extend(self.restart.as_ref().map(Action::Restart));
        out.extend(self.wait_for_event.as_ref().map(Action::WaitForEvent));
        out.extend(self.attacks.as_ref().map(Action::Attacks));
        out.extend(self.concurrently.as_deref().map(Action::Concurrently));
        out.extend(self.ws.as_ref().map(Action::Ws));
        out.extend(self.sink.as_ref().map(Action::Sink));
        out
    }

    /// The step's action: `None` unless it names exactly one.
    pub fn action(&self) -> Option<Action<'_>> {
        match self.all_actions().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}
