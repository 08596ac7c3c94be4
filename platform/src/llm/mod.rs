//! The `Llm` port: generation behind one trait. The embedded provider is the deterministic
//! [`scripted::ScriptedLlm`]; [`naive::NaiveLlm`] is the attacker-faithful instruction follower the
//! adversarial suite measures harm with (it answers benign requests as the scripted model does);
//! [`cassette::CassetteLlm`] records any provider's exchanges and replays them without a network
//! (GOLDEN mode, exact episode replay).

pub mod cassette;
pub mod naive;
pub mod scripted;

use crate::domain::Tier;
use serde::{Deserialize, Serialize};

/// Who said a turn. Clients can send user and assistant turns only; the system prompt is ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnRole {
    User,
    Assistant,
}

/// One turn of conversation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub role: TurnRole,
    pub content: String,
}

/// A generation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    pub tier: Tier,
    pub system: String,
    pub turns: Vec<Turn>,
    pub max_tokens: u32,
    /// The caller needs strict JSON back.
    pub json: bool,
}

/// Token usage of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// A generation result. `chunks` are the streamed pieces; their concatenation is `text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmResponse {
    pub model: String,
    pub text: String,
    pub chunks: Vec<String>,
    pub usage: TokenUsage,
}

impl LlmResponse {
    /// A whole answer from a model that runs in the process (scripted, naive): streamed word by
    /// word, its usage estimated from the prompt and capped by `max_tokens`, as a provider reports it.
    pub fn local(model: String, req: &LlmRequest, text: String) -> Self {
        let prompt: String = std::iter::once(req.system.as_str())
            .chain(req.turns.iter().map(|t| t.content.as_str()))
            .collect::<Vec<_>>()
            .join("\n");
        let completion = estimate_tokens(&text).min(u64::from(req.max_tokens.max(1)));
        let chunks = text
            .split_inclusive(' ')
            .map(str::to_string)
            .collect::<Vec<_>>();
        LlmResponse {
            model,
            text,
            chunks,
            usage: TokenUsage {
                prompt_tokens: estimate_tokens(&prompt),
                completion_tokens: completion,
            },
        }
    }
}

/// Why a model call failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("model unavailable: {0}")]
    Unavailable(String),
    #[error("model call timed out")]
    Timeout,
    /// Replay only: no cassette holds the request with this key. The nearest-miss report (which
    /// quotes prompts) goes to the harness through `CassetteLlm::problems`, never to an API client.
    #[error("no recorded model answer for this request (cassette {0})")]
    CassetteMiss(String),
}

/// A text-generation provider.
#[async_trait::async_trait]
pub trait Llm: Send + Sync + 'static {
    async fn complete(&self, req: &LlmRequest) -> Result<LlmResponse, LlmError>;

    /// The model that answers `tier`, as reported in `GET /api/v1/versions` (and so in episodes,
    /// whose replay fails when it changed).
    fn model_id(&self, tier: Tier) -> String;
}

/// The usual estimate of 4 characters a token, rounded up; used where a provider reports no usage.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}
