//! The workflow orchestrator. Workflows are YAML graphs (nodes `start`, `agent`, `tool`, `condition`,
//! `sub_workflow`, `end`, joined by conditional edges), loaded with per-tenant overlays and validated
//! at start-up ([`loader`]); the [`executor`] walks them with loop safety, per-run budgets and saga
//! compensation, persists every run and publishes its events.

pub mod executor;
pub mod expr;
pub mod loader;
pub mod model;

pub use executor::{Engine, RunFailure, RunOutcome, RunRequest};
pub use loader::{Catalog, LoadError};
