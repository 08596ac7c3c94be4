//! Why a step did not pass, as a type: the platform did something else than the spec expects
//! (a [`StepError::Mismatch`], the spec's verdict), or the harness could not carry the step out
//! (the target did not answer, the event window could not be read, a variable was never
//! captured), which says nothing about the platform. The report names which of the two failed.

use crate::attack::CaseFileError;
use crate::drive::events::FeedError;
use crate::drive::ws::WsError;
use crate::drive::DriveError;
use crate::expect::SyntaxError;
use crate::record::episode::EpisodeError;
use serde::Serialize;

/// Why a step (or a scenario's setup, or an oracle) did not pass.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// What the platform did differs from what the spec expects; one line per difference.
    #[error("{0}")]
    Mismatch(String),
    /// A request got no answer to check.
    #[error(transparent)]
    Drive(#[from] DriveError),
    /// The event window could not be read or trusted.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// A WebSocket session could not be carried out.
    #[error(transparent)]
    Ws(#[from] WsError),
    /// An episode to replay could not be read.
    #[error(transparent)]
    Episode(#[from] EpisodeError),
    /// An attack case file could not be read.
    #[error(transparent)]
    Cases(#[from] CaseFileError),
    /// A path or matcher that is wrong once `${var}` is expanded.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// Anything else the harness could not do (a missing variable or file, a target that could
    /// not be set up).
    #[error("{0}")]
    Harness(String),
}

/// Which side a failure is on, in `report.json` and the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The platform did not do what the spec expects.
    Mismatch,
    /// The harness could not carry the spec out; the platform was not judged.
    Harness,
}

impl StepError {
    /// A mismatch made of these lines.
    pub fn mismatch(lines: impl Into<String>) -> StepError {
        StepError::Mismatch(lines.into())
    }

    /// The same failure, its message rewritten by `f` (context added), on the same side.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> StepError {
        match self.kind() {
            FailureKind::Mismatch => StepError::Mismatch(f(self.to_string())),
            FailureKind::Harness => StepError::Harness(f(self.to_string())),
        }
    }

    /// Which side the failure is on.
    pub fn kind(&self) -> FailureKind {
        match self {
            // The platform refused a peer's upgrade or never acknowledged a session.
            StepError::Mismatch(_)
            | StepError::Ws(WsError::PeerRefused { .. } | WsError::NotAcknowledged { .. }) => {
                FailureKind::Mismatch
            }
            _ => FailureKind::Harness,
        }
    }
}

impl From<String> for StepError {
    fn from(m: String) -> StepError {
        StepError::Harness(m)
    }
}

impl From<&str> for StepError {
    fn from(m: &str) -> StepError {
        StepError::Harness(m.to_string())
    }
}
