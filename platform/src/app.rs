//! Wiring: a [`Config`] and a set of [`Backends`] become a running [`App`] (catalogue loaded and
//! validated, demo data seeded, metering projector following the bus), served by axum.

use crate::bus::jetstream::{JetStreamBus, JetStreamOptions};
use crate::bus::outbox::{MemoryOutbox, Outbox, PgOutbox};
use crate::bus::{memory::MemoryBus, Bus};
use crate::clock::{Clock, Ids, ManualClock, SystemClock};
use crate::config::Config;
use crate::config::{BusKind, KvKind, StoreKind};
use crate::demo::{self, SeedError, Seeded};
use crate::kv::redis::RedisKv;
use crate::kv::{memory::MemoryKv, Kv};
use crate::llm::{scripted::ScriptedLlm, Llm};
use crate::orchestrator::{Catalog, Engine, LoadError};
use crate::router::Router as TierRouter;
use crate::store::postgres::{self, PgStore};
use crate::store::{memory::MemoryStore, Store};
use crate::telemetry::Metrics;
use crate::tools::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The backend of each port.
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub kv: Arc<dyn Kv>,
    pub llm: Arc<dyn Llm>,
    pub clock: Arc<dyn Clock>,
}

impl Backends {
    /// In-memory store, bus and kv, the scripted model and the system clock (a [`ManualClock`]
    /// frozen at the fixtures' epoch with `manual_clock`): MOCK mode.
    pub fn embedded(cfg: &Config) -> Self {
        let clock: Arc<dyn Clock> = if cfg.manual_clock {
            Arc::new(ManualClock::at_epoch())
        } else {
            Arc::new(SystemClock)
        };
        Self {
            store: Arc::new(MemoryStore::default()),
            bus: Arc::new(MemoryBus::with_delivery(
                &cfg.event_prefix,
                cfg.delivery.clone(),
            )),
            kv: Arc::new(MemoryKv::default()),
            llm: Arc::new(ScriptedLlm::new(cfg.seed)),
            clock,
        }
    }

    /// The backend `cfg.backends` names for each port: the embedded one unless a real one is
    /// chosen, in which case its URL must be set and the service must answer. With Postgres, the
    /// migrations run first when `migrate_on_start` is set, and the bus's outbox lives there.
    pub async fn from_config(cfg: &Config) -> Result<Self, StartError> {
        let b = &cfg.backends;
        let mut out = Self::embedded(cfg);
        let mut pg_pool = None;
        if b.store == StoreKind::Postgres {
            let url = b.database_url.as_deref().ok_or_else(|| {
                StartError::Backend("store is postgres but DATABASE_URL is not set".into())
            })?;
            if b.migrate_on_start {
                postgres::migrate(url)
                    .await
                    .map_err(|e| StartError::Backend(e.to_string()))?;
            }
            let pg = PgStore::connect(url, b.db_max_connections)
                .await
                .map_err(|e| StartError::Backend(e.to_string()))?;
            pg_pool = Some(pg.pool().clone());
            out.store = Arc::new(pg);
        }
        if b.bus == BusKind::Jetstream {
            let url = b.nats_url.clone().ok_or_else(|| {
                StartError::Backend("bus is jetstream but NATS_URL is not set".into())
            })?;
            let outbox: Arc<dyn Outbox> = match pg_pool {
                Some(pool) => Arc::new(PgOutbox(pool)),
                None => {
                    tracing::warn!("bus outbox in memory: events survive a broker outage, not a restart (use the postgres store)");
                    Arc::new(MemoryOutbox::default())
                }
            };
            let opts = JetStreamOptions {
                url,
                prefix: cfg.event_prefix.clone(),
                delivery: cfg.delivery.clone(),
                publish_timeout: Duration::from_millis(b.publish_timeout_ms),
                relay_interval: Duration::from_millis(b.relay_interval_ms),
                duplicate_window: Duration::from_secs(b.duplicate_window_secs),
            };
            out.bus = JetStreamBus::connect(opts, outbox)
                .await
                .map_err(|e| StartError::Backend(e.to_string()))?;
        }
        if b.kv == KvKind::Redis {
            let url = b.redis_url.as_deref().ok_or_else(|| {
                StartError::Backend("kv is redis but REDIS_URL is not set".into())
            })?;
            out.kv = Arc::new(
                RedisKv::connect(url, &b.kv_prefix)
                    .await
                    .map_err(|e| StartError::Backend(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// What each port runs on, for the start-up banner.
    pub fn describe(cfg: &Config) -> String {
        let b = &cfg.backends;
        format!("store {:?}, bus {:?}, kv {:?}", b.store, b.bus, b.kv).to_lowercase()
    }
}

/// Why the platform could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("workflow validation failed: {0}")]
    Workflows(#[from] LoadError),
    #[error("seeding demo data failed: {0}")]
    Seed(#[from] SeedError),
    #[error("backend unavailable: {0}")]
    Backend(String),
    /// A combination a deployment must not run with.
    #[error("configuration refused: {0}")]
    Config(String),
}

/// Mixed into the id seed for the request-id stream, so the two streams never coincide.
const REQUEST_ID_STREAM: u64 = 0x7265_7175_6573_7473;

/// A running platform: its configuration, ports and engine.
pub struct App {
    pub cfg: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub kv: Arc<dyn Kv>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<Ids>,
    /// Request ids come from their own stream: how often a client polls (the harness waiting for
    /// an event, a health check, a metrics scrape) must not shift the ids of orders, tickets and
    /// messages, or a recorded episode would not replay identically under another load.
    pub request_ids: Arc<Ids>,
    pub engine: Arc<Engine>,
    pub tools: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub seeded: Seeded,
    /// The operator's numbered window of recent events; only when the operator surface is on.
    pub events: Option<Arc<crate::bus::tap::EventTap>>,
    /// Results of requests sent with an `Idempotency-Key`.
    pub idempotency: crate::resilience::idempotency::Idempotency,
    /// This instance's open WebSocket sessions, by tenant.
    pub sessions: crate::api::realtime::Sessions,
    /// Background consumers of this instance, stopped when it is dropped.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The outbox dispatcher: stopped after its delivery in hand when the instance is dropped,
    /// at once when it is halted.
    dispatcher: crate::channels::Running,
}

impl Drop for App {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.dispatcher.stop();
    }
}

/// What handlers receive.
pub type AppState = Arc<App>;

impl App {
    /// Validates the workflows, seeds the demo data and starts the metering projector.
    pub async fn start(cfg: Config, b: Backends) -> Result<AppState, StartError> {
        if cfg.production && cfg.fault_injection {
            return Err(StartError::Config(
                "fault injection cannot be switched on in a production deployment".into(),
            ));
        }
        if cfg.production && !cfg.http_fetch.sinks.is_empty() {
            return Err(StartError::Config(
                "http_fetch.sinks (test sinks past the address check) cannot be set in a production deployment".into(),
            ));
        }
        if cfg.production && !cfg.http_fetch.check_addresses {
            return Err(StartError::Config(
                "http_fetch.check_addresses cannot be switched off in a production deployment"
                    .into(),
            ));
        }
        if cfg.production && cfg.manual_clock {
            return Err(StartError::Config(
                "the manual test clock cannot be switched on in a production deployment".into(),
            ));
        }
        let cfg = Arc::new(cfg);
        let metrics = Arc::new(Metrics::default());
        let resilience = Arc::new(crate::resilience::Resilience::new(
            cfg.resilience.clone(),
            cfg.seed,
            b.clock.clone(),
            metrics.clone(),
        ));
        let idempotency = crate::resilience::idempotency::Idempotency::new(
            b.kv.clone(),
            b.clock.clone(),
            std::time::Duration::from_secs(cfg.idempotency_ttl_secs.max(1) as u64),
            std::time::Duration::from_millis(cfg.idempotency_wait_ms),
        );
        let faults = Arc::new(crate::faults::Faults::default());
        // The outbox dispatcher polls the database in the background: through a breaker of its
        // own (the same faults apply), so that its polling never opens the API's.
        let dispatcher = crate::channels::Dispatcher::new(
            Arc::new(crate::store::guarded::GuardedStore::new(
                b.store.clone(),
                resilience.upstream(
                    "database:dispatcher",
                    crate::resilience::Kind::Database,
                    None,
                ),
                faults.clone(),
                b.clock.clone(),
            )),
            resilience.clone(),
            metrics.clone(),
            b.clock.clone(),
            cfg.channels.clone(),
            crate::planted::skip_delivery(&cfg),
        );
        // Every database call goes through the `database` upstream from here on.
        let b = Backends {
            store: Arc::new(crate::store::guarded::GuardedStore::new(
                b.store,
                resilience.upstream("database", crate::resilience::Kind::Database, None),
                faults.clone(),
                b.clock.clone(),
            )),
            ..b
        };
        let tools = Arc::new(Registry::builtin(
            resilience.clone(),
            Some(idempotency.clone()),
            metrics.clone(),
            faults,
        ));
        let catalog = Catalog::load(
            cfg.workflows_dir.as_deref().map(PathBuf::from).as_deref(),
            &tools,
        )?;
        let ids = Arc::new(match cfg.id_seed {
            Some(seed) => Ids::seeded(seed),
            None => Ids::from_entropy(),
        });
        let request_ids = Arc::new(match cfg.id_seed {
            Some(seed) => Ids::seeded(seed ^ REQUEST_ID_STREAM),
            None => Ids::from_entropy(),
        });
        // Consume before anything publishes, so the projector misses nothing.
        let projector = crate::metering::start_projector(b.bus.as_ref(), b.store.clone())
            .await
            .map_err(|e| StartError::Backend(e.to_string()))?;
        let events = match cfg.operator_key {
            Some(_) => {
                let rx = b.bus.subscribe();
                // Read after subscribing: what is at or below it is published or on its way to rx.
                let position = b.bus.published_position().await.unwrap_or(0);
                Some(crate::bus::tap::EventTap::spawn(rx, position))
            }
            None => None,
        };
        let seeded = demo::seed(b.store.as_ref(), cfg.seed).await?;
        let engine = Arc::new(Engine {
            catalog,
            tools: tools.clone(),
            llm: b.llm,
            router: TierRouter::new(cfg.seed, cfg.canary_share.clone()),
            store: b.store.clone(),
            bus: b.bus.clone(),
            clock: b.clock.clone(),
            ids: ids.clone(),
            cfg: cfg.clone(),
            metrics: metrics.clone(),
            resilience,
            workers: crate::orchestrator::executor::Workers::named(format!(
                "worker-{}",
                Ids::from_entropy().token_hex(4)
            )),
        });
        // Sagas abandoned by a worker that died are resumed at start-up and on each sweep.
        let recovery = {
            let (engine, every) = (engine.clone(), cfg.saga.sweep_ms);
            tokio::spawn(async move {
                loop {
                    let n = engine.recover().await;
                    if n > 0 {
                        tracing::warn!(resumed = n, "resumed abandoned sagas");
                    }
                    if every == 0 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(every)).await;
                }
            })
        };
        // Stale index entries are made again on each sweep (the first one sweep interval after
        // start-up); the task holds the app weakly, so a dropped app ends it.
        let every = cfg.rag.reindex_sweep_ms;
        Ok(Arc::new_cyclic(|me: &std::sync::Weak<App>| {
            let me = me.clone();
            let reindex = tokio::spawn(async move {
                if every == 0 {
                    return;
                }
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(every)).await;
                    let Some(app) = me.upgrade() else { break };
                    app.reindex_everywhere().await;
                }
            });
            App {
                cfg,
                store: b.store,
                bus: b.bus,
                kv: b.kv,
                clock: b.clock,
                ids,
                request_ids,
                engine,
                tools,
                metrics,
                seeded,
                events,
                idempotency,
                sessions: Default::default(),
                tasks: vec![projector, recovery, reindex],
                dispatcher: dispatcher.spawn(),
            }
        }))
    }

    /// Stops this instance in order: no new run starts, the background consumers stop, and the
    /// outbox dispatcher stops after the delivery in hand. The HTTP server is the caller's to stop.
    pub fn shutdown(&self) {
        self.engine.halt();
        for t in &self.tasks {
            t.abort();
        }
        self.dispatcher.stop();
    }

    /// Stops this instance as a crash would, for chaos and restart tests: runs in flight are
    /// aborted where they stand (their checkpoints stay for another instance to resume), no new
    /// run starts, and the background consumers stop. The HTTP server is the caller's to stop.
    pub fn halt(&self) {
        self.engine.halt();
        for t in &self.tasks {
            t.abort();
        }
        self.dispatcher.abort();
    }

    /// Makes the index entries of tenant `tenant`'s stale documents again (every document's, with
    /// `all`): counted in `rag_reindexed_total`, announced by one `rag.reindexed` event naming the
    /// documents and those whose verdict or sensitivity changed. A failure is counted in
    /// `rag_reindex_failures_total` and returned.
    pub async fn reindex(
        &self,
        tenant: &crate::domain::TenantId,
        all: bool,
    ) -> Result<crate::rag::index::Reindexed, crate::store::StoreError> {
        let done = crate::rag::index::reindex_tenant(
            self.store.as_ref(),
            tenant,
            &self.cfg.guard,
            &self.cfg.rag.reindex_ttl_secs,
            self.clock.now(),
            all,
        )
        .await
        .inspect_err(|_| {
            self.metrics.rag_reindex_failures.inc();
        })?;
        for d in &done.documents {
            self.metrics
                .rag_reindexed
                .get_or_create(&crate::telemetry::LevelLabels {
                    level: d.level.as_str().into(),
                })
                .inc();
        }
        if !done.documents.is_empty() {
            let ids: Vec<_> = done.documents.iter().map(|d| d.document_id).collect();
            self.publish(
                tenant,
                "rag.reindexed",
                None,
                serde_json::json!({"documents": ids, "changed": done.changed}),
            )
            .await;
        }
        Ok(done)
    }

    /// One sweep of the reindex task: every tenant's stale documents. A tenant that fails is
    /// logged and counted; the others go on.
    async fn reindex_everywhere(&self) {
        let tenants = match self.store.tenant_ids().await {
            Ok(t) => t,
            Err(err) => {
                self.metrics.rag_reindex_failures.inc();
                tracing::warn!(%err, "reindex sweep could not list tenants");
                return;
            }
        };
        for t in tenants {
            if let Err(err) = self.reindex(&t, false).await {
                tracing::warn!(%err, tenant = %t, "reindex sweep failed for a tenant");
            }
        }
    }

    /// Publishes an event outside a workflow run (the engine publishes its own). A publish failure
    /// is logged, not returned: the request it describes has already happened.
    pub async fn publish(
        &self,
        tenant: &crate::domain::TenantId,
        event_type: &str,
        run_id: Option<uuid::Uuid>,
        data: serde_json::Value,
    ) {
        self.publish_from(&self.ids, tenant, event_type, run_id, data)
            .await
    }

    /// [`App::publish`] with the event id drawn from `ids`: the metering of a request takes it
    /// from the request-id stream, so that how often a client polls shifts no order's or run's id.
    pub async fn publish_from(
        &self,
        ids: &Ids,
        tenant: &crate::domain::TenantId,
        event_type: &str,
        run_id: Option<uuid::Uuid>,
        data: serde_json::Value,
    ) {
        let ev = crate::bus::Event {
            event_id: ids.uuid(),
            event_type: event_type.to_string(),
            tenant_id: tenant.clone(),
            run_id,
            occurred_at: self.clock.now(),
            data,
        };
        if let Err(err) = self.bus.publish(&ev).await {
            tracing::error!(%err, event_type, "could not publish event");
        }
    }

    /// The axum router of every route.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        crate::api::router(self.clone())
    }

    /// Serves on `listener` until `shutdown` resolves; in-flight requests finish first.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Serves on a free loopback port in the background (tests, the harness's MOCK target).
    pub async fn spawn_local(self: Arc<Self>) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(err) = self.serve(listener, std::future::pending()).await {
                tracing::error!(%err, "test server stopped");
            }
        });
        Ok(addr)
    }
}
