//! The reference multi-tenant AI customer-support platform: the system the harness tests.
//!
//! A newcomer's map of the crate:
//! - [`api`]: the axum gateway (auth, tenant context, limits, rate limits, error envelope, OpenAPI).
//! - [`orchestrator`]: workflow YAML loading with tenant overlays, validation, the graph executor,
//!   budgets and the saga engine.
//! - [`router`]: text features to a model tier, the price table, early exit and the canary.
//! - [`llm`]: the model port and its deterministic scripted provider.
//! - [`rag`]: ranked retrieval with the permission filter inside the query.
//! - [`guard`]: checks the naive model cannot be trusted with (the SSRF guard so far).
//! - [`tools`]: the tool trait, manifests and the business adapters over the store.
//! - [`resilience`]: bulkhead, circuit breaker, retry and timeout per upstream (database, model,
//!   tools, compensations), and idempotency.
//! - [`store`], [`bus`], [`kv`]: the ports for state, events and fast keyed state, with embedded backends.
//! - [`metering`]: usage counters and the analytics read model, both built from events.
//! - [`telemetry`]: Prometheus metrics and JSON logs.
//! - [`app`]: wires a [`config::Config`] into a running [`app::App`].

pub mod api;
pub mod app;
pub mod bus;
pub mod channels;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod faults;
pub mod guard;
pub mod kv;
pub mod llm;
pub mod metering;
pub mod orchestrator;
pub mod planted;
pub mod rag;
pub mod resilience;
pub mod router;
pub mod store;
pub mod telemetry;
pub mod tools;

/// Property-test configuration shared by the crate's proptests.
#[cfg(test)]
pub(crate) mod proptest_seed {
    /// A fixed case count and a fixed seed (`HARNESS_SEED`, default 42), printed with the command
    /// that reruns `filter`, so a failure reproduces.
    pub fn config(what: &str, cases: u32, filter: &str) -> proptest::test_runner::Config {
        let seed = std::env::var("HARNESS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(42u64);
        eprintln!("{what}: {cases} cases, seed {seed} (HARNESS_SEED={seed} cargo test -p platform --lib {filter})");
        proptest::test_runner::Config {
            cases,
            rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
            failure_persistence: None,
            ..Default::default()
        }
    }
}
