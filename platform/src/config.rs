//! Every tunable of the platform: addresses, secrets, limits, plan quotas, durations. Defaults are the
//! embedded configuration; a YAML file (`--config FILE`) and `PLATFORM_*` variables override them.
//! Durations are configuration (DESIGN.md, "Durations"), so specs can use short values.

use crate::domain::Plan;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The whole configuration. Each field documents its default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen address for `platform serve` (`PLATFORM_ADDR`), default 127.0.0.1:8080.
    pub addr: String,
    /// HS256 signing key for JWTs (`PLATFORM_JWT_SECRET`). The default is for local use only.
    pub jwt_secret: String,
    /// Default lifetime of issued tokens, in seconds.
    pub token_ttl_secs: i64,
    /// The seed behind ids, the scripted model's sampling, canary draws and jitter (`PLATFORM_SEED`).
    pub seed: u64,
    /// The seed of generated ids (run and event ids, keys). Unset (the default) draws them from
    /// entropy, so a restart against a persistent store never reuses an id; the harness sets it so
    /// that a rerun gives the same transcript.
    pub id_seed: Option<u64>,
    /// Subject prefix of every event (`<prefix>.workflow.completed`).
    pub event_prefix: String,
    /// Directory of workflow YAML that replaces the shipped set (`PLATFORM_WORKFLOWS_DIR`).
    pub workflows_dir: Option<String>,
    /// Input limits of the gateway.
    pub limits: Limits,
    /// Which guard checks run (all by default); see `guard::GuardConfig`.
    pub guard: crate::guard::GuardConfig,
    /// The `http.fetch` tool: its resolver (a fixed table instead of DNS) and read limits.
    pub http_fetch: crate::tools::fetch::FetchConfig,
    /// The retrieval index: how long an entry lives per level, and how often it is swept.
    pub rag: RagConfig,
    /// WebSocket chat: outgoing queue bound and drop policy, heartbeat, frame size.
    pub realtime: crate::api::realtime::RealtimeConfig,
    /// Rate limit and quotas per plan.
    pub plans: BTreeMap<Plan, PlanLimits>,
    /// Share (0..=1) of a tenant's routing decisions that use the canary router policy.
    pub canary_share: BTreeMap<String, f64>,
    /// Payments above this amount (in cents) go to manual review instead of being authorized.
    pub manual_review_above_cents: i64,
    /// Card tokens that the embedded payment adapter declines.
    pub declined_card_tokens: Vec<String>,
    /// Timeouts, retries, breakers and bulkheads of every upstream (database, model, tools,
    /// compensations): presets and per-upstream overrides.
    pub resilience: crate::resilience::ResilienceConfig,
    /// Durable sagas: how long a worker's claim on a running saga lasts without a checkpoint,
    /// and how often a worker looks for sagas whose claim has lapsed (to resume them).
    pub saga: SagaConfig,
    /// How long idempotency records are kept, and how long a duplicate waits for the first request.
    pub idempotency_ttl_secs: i64,
    pub idempotency_wait_ms: u64,
    /// Default per-run budgets, overridable per workflow.
    pub run_budget: RunBudget,
    /// The key of the operator surface (`/api/v1/operator/*`: tenant provisioning) sent as
    /// `X-Operator-Key` (`PLATFORM_OPERATOR_KEY`). Unset (the default) turns that surface off: 404.
    pub operator_key: Option<String>,
    /// Whether the operator surface may inject tool faults (`PLATFORM_FAULT_INJECTION=1`). Off by
    /// default: only test deployments (the harness's targets) turn it on. A production deployment
    /// refuses to start with it on.
    pub fault_injection: bool,
    /// Whether `platform serve` runs on a test clock (`PLATFORM_MANUAL_CLOCK=1`): frozen at the
    /// fixtures' epoch (2026-01-01T00:00:00Z, `ManualClock::at_epoch`) and moved only through
    /// `POST /api/v1/operator/clock`, so that a spawned platform is as reproducible as the
    /// harness's in-process one. Off by default (the system clock); refused with `production`.
    pub manual_clock: bool,
    /// `true` for a production deployment (`PLATFORM_PRODUCTION=1`): fault injection and the movable
    /// test clock are then refused at start-up, whatever else the configuration says.
    pub production: bool,
    /// The backend of each port (embedded by default) and how to reach the real ones.
    pub backends: BackendsConfig,
    /// Redelivery policy of the durable event consumers (metering, analytics).
    pub delivery: crate::bus::DeliveryConfig,
    /// Where the outbox dispatcher delivers each channel's messages, and its pace.
    pub channels: crate::channels::ChannelsConfig,
    /// Defects planted on purpose (`planted.rs`): only in builds with the `planted-defects`
    /// feature, which the test builds turn on.
    #[cfg(feature = "planted-defects")]
    pub planted: crate::planted::PlantedDefects,
}

/// Which backend serves each port. The embedded ones need nothing; each real one needs its URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendsConfig {
    /// `memory` or `postgres` (`PLATFORM_STORE`).
    pub store: StoreKind,
    /// Postgres URL of an administrator (`DATABASE_URL`): migrations run as this user; the
    /// application itself logs in to the same database as `aiaas_app`, a role that owns nothing.
    pub database_url: Option<String>,
    /// Apply `platform/migrations/` at start-up (`platform migrate` does it on demand).
    pub migrate_on_start: bool,
    /// Connections in the application's pool.
    pub db_max_connections: u32,
    /// `memory` or `jetstream` (`PLATFORM_BUS`).
    pub bus: BusKind,
    /// NATS URL (`NATS_URL`).
    pub nats_url: Option<String>,
    /// How long a publish waits for the broker's ack before leaving the event to the outbox relay.
    pub publish_timeout_ms: u64,
    /// How often the outbox relay looks for events the broker has not acknowledged.
    pub relay_interval_ms: u64,
    /// The JetStream de-duplication window (`Nats-Msg-Id`), in seconds.
    pub duplicate_window_secs: u64,
    /// `memory` or `redis` (`PLATFORM_KV`).
    pub kv: KvKind,
    /// Redis URL (`REDIS_URL`).
    pub redis_url: Option<String>,
    /// Prefix of every Redis key (`PLATFORM_KV_PREFIX`), so deployments and runs can share a server.
    pub kv_prefix: String,
}

impl Default for BackendsConfig {
    fn default() -> Self {
        Self {
            store: StoreKind::Memory,
            database_url: None,
            migrate_on_start: true,
            db_max_connections: 10,
            bus: BusKind::Memory,
            nats_url: None,
            publish_timeout_ms: 2_000,
            relay_interval_ms: 500,
            duplicate_window_secs: 120,
            kv: KvKind::Memory,
            redis_url: None,
            kv_prefix: "aiaas:".into(),
        }
    }
}

/// The `Store` backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Memory,
    Postgres,
}

/// The `Bus` backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    Memory,
    Jetstream,
}

/// The `Kv` backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvKind {
    Memory,
    Redis,
}

/// Parses a backend name from an environment variable.
fn env_kind<T: serde::de::DeserializeOwned>(name: &str) -> Result<Option<T>, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => serde_norway::from_str(&v)
            .map(Some)
            .map_err(|_| ConfigError::Env {
                name: name.into(),
                message: format!("`{v}` is not a backend name here"),
            }),
    }
}

/// Strict boundaries of the gateway (DESIGN.md, "Limits").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_content_chars: usize,
    pub max_body_bytes: usize,
    pub max_json_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_content_chars: 10_000,
            max_body_bytes: 256 * 1024,
            max_json_depth: 32,
        }
    }
}

/// What one plan allows: a token bucket per tenant and monthly quotas.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    /// Bucket refill rate, requests per window.
    pub requests_per_window: u32,
    /// Bucket window, in seconds (the bucket refills fully in one window).
    pub window_secs: u32,
    /// Monthly request and token quotas (`TENANT_QUOTA_EXCEEDED` past them).
    pub monthly_requests: u64,
    pub monthly_tokens: u64,
    /// Requests of the tenant in flight at once, over every gateway instance (429 past it).
    #[serde(default = "default_concurrency")]
    pub max_concurrent_requests: u32,
}

fn default_concurrency() -> u32 {
    20
}

/// The retrieval index (`rag::index`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RagConfig {
    /// How long a document's index entry lives, per level (public 86400 s, internal 43200,
    /// confidential 21600, restricted 10800).
    pub reindex_ttl_secs: crate::rag::index::ReindexTtl,
    /// How often the platform reindexes every tenant's stale documents (and once at start-up).
    /// 0: never by itself; `POST /api/v1/rag/reindex` still does. Default 60 000.
    pub reindex_sweep_ms: u64,
}

impl Default for RagConfig {
    fn default() -> Self {
        Self {
            reindex_ttl_secs: Default::default(),
            reindex_sweep_ms: 60_000,
        }
    }
}

/// When an unfinished saga counts as abandoned by its worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SagaConfig {
    /// A running saga's claim lasts this long past its last checkpoint; after it, any worker may
    /// resume the saga. Longer than the slowest step (tool timeout x attempts).
    pub lease_ms: u64,
    /// How often a worker looks for abandoned sagas (and once at start-up). 0: only at start-up.
    pub sweep_ms: u64,
}

impl Default for SagaConfig {
    fn default() -> Self {
        Self {
            lease_ms: 120_000,
            sweep_ms: 30_000,
        }
    }
}

/// Per-run limits; exceeding one ends the run (`TIMEOUT` for wall time).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunBudget {
    pub max_steps: u32,
    pub max_tokens: u64,
    pub max_cost_usd: f64,
    pub timeout_ms: u64,
}

impl Default for RunBudget {
    fn default() -> Self {
        Self {
            max_steps: 40,
            max_tokens: 10_000,
            max_cost_usd: 0.10,
            timeout_ms: 30_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let mut plans = BTreeMap::new();
        plans.insert(
            Plan::Free,
            PlanLimits {
                requests_per_window: 10,
                window_secs: 60,
                monthly_requests: 1_000,
                monthly_tokens: 100_000,
                max_concurrent_requests: 5,
            },
        );
        plans.insert(
            Plan::Pro,
            PlanLimits {
                requests_per_window: 100,
                window_secs: 60,
                monthly_requests: 100_000,
                monthly_tokens: 10_000_000,
                max_concurrent_requests: 20,
            },
        );
        plans.insert(
            Plan::Enterprise,
            PlanLimits {
                requests_per_window: 1_000,
                window_secs: 60,
                monthly_requests: 10_000_000,
                monthly_tokens: 1_000_000_000,
                max_concurrent_requests: 100,
            },
        );
        Self {
            addr: "127.0.0.1:8080".into(),
            jwt_secret: "dev-only-secret-change-me".into(),
            token_ttl_secs: 3600,
            seed: 42,
            id_seed: None,
            event_prefix: "aiaas".into(),
            workflows_dir: None,
            limits: Limits::default(),
            guard: crate::guard::GuardConfig::default(),
            http_fetch: Default::default(),
            rag: Default::default(),
            realtime: Default::default(),
            plans,
            canary_share: BTreeMap::new(),
            manual_review_above_cents: 100_000,
            declined_card_tokens: vec!["tok_declined".into()],
            resilience: Default::default(),
            saga: SagaConfig::default(),
            idempotency_ttl_secs: 3600,
            idempotency_wait_ms: 5_000,
            run_budget: RunBudget::default(),
            operator_key: None,
            fault_injection: false,
            manual_clock: false,
            production: false,
            backends: BackendsConfig::default(),
            delivery: crate::bus::DeliveryConfig::default(),
            channels: Default::default(),
            #[cfg(feature = "planted-defects")]
            planted: Default::default(),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: String,
        source: serde_norway::Error,
    },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
}

impl Config {
    /// Defaults, then the file (if any), then `PLATFORM_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg = match file {
            Some(p) => {
                let path = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                serde_norway::from_str(&text)
                    .map_err(|source| ConfigError::Parse { path, source })?
            }
            None => Config::default(),
        };
        if let Ok(v) = std::env::var("PLATFORM_ADDR") {
            cfg.addr = v;
        }
        if let Ok(v) = std::env::var("PLATFORM_JWT_SECRET") {
            cfg.jwt_secret = v;
        }
        if let Ok(v) = std::env::var("PLATFORM_OPERATOR_KEY") {
            cfg.operator_key = Some(v).filter(|k| !k.is_empty());
        }
        if let Ok(v) = std::env::var("PLATFORM_FAULT_INJECTION") {
            cfg.fault_injection = matches!(v.as_str(), "1" | "true");
        }
        if let Ok(v) = std::env::var("PLATFORM_MANUAL_CLOCK") {
            cfg.manual_clock = matches!(v.as_str(), "1" | "true");
        }
        if let Ok(v) = std::env::var("PLATFORM_PRODUCTION") {
            cfg.production = matches!(v.as_str(), "1" | "true");
        }
        if let Ok(v) = std::env::var("PLATFORM_WORKFLOWS_DIR") {
            cfg.workflows_dir = Some(v);
        }
        let b = &mut cfg.backends;
        if let Some(k) = env_kind("PLATFORM_STORE")? {
            b.store = k;
        }
        if let Some(k) = env_kind("PLATFORM_BUS")? {
            b.bus = k;
        }
        if let Some(k) = env_kind("PLATFORM_KV")? {
            b.kv = k;
        }
        if let Ok(v) = std::env::var("DATABASE_URL") {
            b.database_url = Some(v);
        }
        if let Ok(v) = std::env::var("NATS_URL") {
            b.nats_url = Some(v);
        }
        if let Ok(v) = std::env::var("REDIS_URL") {
            b.redis_url = Some(v);
        }
        if let Ok(v) = std::env::var("PLATFORM_KV_PREFIX") {
            b.kv_prefix = v;
        }
        if let Ok(v) = std::env::var("PLATFORM_EVENT_PREFIX") {
            cfg.event_prefix = v;
        }
        if let Ok(v) = std::env::var("PLATFORM_ID_SEED") {
            cfg.id_seed = Some(v.parse().map_err(|_| ConfigError::Env {
                name: "PLATFORM_ID_SEED".into(),
                message: format!("`{v}` is not an unsigned integer"),
            })?);
        }
        if let Ok(v) = std::env::var("PLATFORM_SEED") {
            cfg.seed = v.parse().map_err(|_| ConfigError::Env {
                name: "PLATFORM_SEED".into(),
                message: format!("`{v}` is not an unsigned integer"),
            })?;
        }
        Ok(cfg)
    }

    /// The limits that apply to `tenant`: its own contract limits when it has them, else its plan's.
    pub fn limits_for(&self, tenant: &crate::store::model::Tenant) -> PlanLimits {
        tenant
            .limits
            .clone()
            .unwrap_or_else(|| self.plan(tenant.plan))
    }

    /// The limits of `plan`, falling back to the free plan's when a file left it out.
    pub fn plan(&self, plan: Plan) -> PlanLimits {
        self.plans
            .get(&plan)
            .or_else(|| self.plans.get(&Plan::Free))
            .cloned()
            .unwrap_or(PlanLimits {
                requests_per_window: 10,
                window_secs: 60,
                monthly_requests: 1_000,
                monthly_tokens: 100_000,
                max_concurrent_requests: 5,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_overrides_defaults_and_rejects_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("platform-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yaml");
        std::fs::write(&good, "seed: 9\nlimits: {max_content_chars: 50}\n").unwrap();
        let cfg = Config::load(Some(&good)).unwrap();
        assert_eq!(cfg.seed, 9);
        assert_eq!(cfg.limits.max_content_chars, 50);
        assert_eq!(cfg.limits.max_json_depth, 32);

        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "sed: 9\n").unwrap();
        let err = Config::load(Some(&bad)).unwrap_err().to_string();
        assert!(err.contains("unknown field `sed`"), "{err}");

        // The file chooses each port's backend; a name that is not a backend is refused.
        let real = dir.join("real.yaml");
        std::fs::write(
            &real,
            "backends: {store: postgres, bus: jetstream, kv: redis, kv_prefix: 'x:'}\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&real)).unwrap();
        assert_eq!(
            (cfg.backends.store, cfg.backends.bus, cfg.backends.kv),
            (StoreKind::Postgres, BusKind::Jetstream, KvKind::Redis)
        );
        assert_eq!(cfg.backends.kv_prefix, "x:");
        let typo = dir.join("typo.yaml");
        std::fs::write(&typo, "backends: {store: mysql}\n").unwrap();
        let err = Config::load(Some(&typo)).unwrap_err().to_string();
        assert!(err.contains("unknown variant `mysql`"), "{err}");
    }

    #[tokio::test]
    async fn a_real_backend_without_its_url_is_a_start_error_naming_the_variable() {
        for (cfg, var) in [
            (
                BackendsConfig {
                    store: StoreKind::Postgres,
                    ..BackendsConfig::default()
                },
                "DATABASE_URL",
            ),
            (
                BackendsConfig {
                    bus: BusKind::Jetstream,
                    ..BackendsConfig::default()
                },
                "NATS_URL",
            ),
            (
                BackendsConfig {
                    kv: KvKind::Redis,
                    ..BackendsConfig::default()
                },
                "REDIS_URL",
            ),
        ] {
            let cfg = Config {
                backends: cfg,
                ..Config::default()
            };
            let err = crate::app::Backends::from_config(&cfg)
                .await
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(var), "{err}");
        }
    }
}
