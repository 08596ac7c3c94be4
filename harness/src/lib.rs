//! The harness: runs scenario specs against the reference platform (or any deployment of it) and
//! reports what held and what did not.
//!
//! - [`spec`]: the scenario format and its loader, which reports problems as `file:line`.
//! - [`fixture`]: named, seeded data sets, provisioned through the platform's operator surface.
//! - [`target`]: how the platform is reached: in-process (MOCK) or at a URL.
//! - [`drive`]: HTTP and SSE clients.
//! - [`expect`]: JSON paths, matchers and diffs.
//! - [`runner`]: executes a spec's steps and checks responses, events, run traces and budgets.
//! - [`report`]: terminal summary, `report.json`, JUnit XML.
//! - [`matrix`]: requirement ids of the catalogue mapped to their specs.
//! - [`oracle`]: checks run after every scenario (tenant isolation by canaries).
//! - [`record`]: episodes, golden snapshots and replay (cassettes are the platform's `llm::cassette`).

pub mod attack;
pub mod drive;
pub mod expect;
pub mod fixture;
pub mod infra;
pub mod judge;
pub mod logs;
pub mod matrix;
pub mod oracle;
pub mod record;
pub mod report;
pub mod runner;
pub mod spec;
pub mod target;

/// The seed used when none is given (`--seed`, `HARNESS_SEED`).
pub const DEFAULT_SEED: u64 = 42;
