//! What GOLDEN mode and QA keep: episodes (a scenario's run, replayable), golden snapshots (a
//! step's normalized response) and the replay of episodes; and what compares runs: the
//! determinism check and prompt-version overlays for replays. Cassettes, the model exchanges, are the
//! platform's `llm::cassette` (the provider wrapper lives beside the port it wraps).

pub mod determinism;
pub mod episode;
pub mod prompts;
pub mod replay;
pub mod snapshot;
