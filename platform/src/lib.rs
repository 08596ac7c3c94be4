//! The reference multi-tenant AI customer-support platform: the system the harness tests.
//!
//! A newcomer's map of the crate:
//! - [`api`]: the axum gateway (auth, tenant context, limits, rate limits, error envelope, OpenAPI).
//! - [`orchestrator`]: workflow YAML loading with tenant overlays, validation, the graph executor,
//!   budgets and the saga engine.
//! - [`router`]: text features to a model tier, the price table, early exit and the canary.
//! - [`llm`]: the model port and its deterministic scripted provider.
//! - [`rag`]: ranked retrieval with the permission filter inside the query.
//! - [`tools`]: the tool trait, manifests and the business adapters over the store.
//! - [`resilience`]: the one timeout-and-retry policy every tool call and compensation goes through.
//! - [`store`], [`bus`], [`kv`]: the ports for state, events and fast keyed state, with embedded backends.
//! - [`metering`]: usage counters and the analytics read model, both built from events.
//! - [`telemetry`]: Prometheus metrics and JSON logs.
//! - [`app`]: wires a [`config::Config`] into a running [`app::App`].

pub mod api;
pub mod app;
pub mod bus;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod kv;
pub mod llm;
pub mod metering;
pub mod orchestrator;
pub mod rag;
pub mod resilience;
pub mod router;
pub mod store;
pub mod telemetry;
pub mod tools;
