//! Wiring: a [`Config`] and a set of [`Backends`] become a running [`App`] (catalogue loaded and
//! validated, demo data seeded, metering projector following the bus), served by axum.

use crate::bus::{memory::MemoryBus, Bus};
use crate::clock::{Clock, Ids, SystemClock};
use crate::config::Config;
use crate::demo::{self, SeedError, Seeded};
use crate::kv::{memory::MemoryKv, Kv};
use crate::llm::{scripted::ScriptedLlm, Llm};
use crate::orchestrator::{Catalog, Engine, LoadError};
use crate::router::Router as TierRouter;
use crate::store::{memory::MemoryStore, Store};
use crate::telemetry::Metrics;
use crate::tools::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The backend of each port.
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub kv: Arc<dyn Kv>,
    pub llm: Arc<dyn Llm>,
    pub clock: Arc<dyn Clock>,
}

impl Backends {
    /// In-memory store, bus and kv, the scripted model and the system clock: MOCK mode.
    pub fn embedded(cfg: &Config) -> Self {
        Self {
            store: Arc::new(MemoryStore::default()),
            bus: Arc::new(MemoryBus::new(&cfg.event_prefix)),
            kv: Arc::new(MemoryKv::default()),
            llm: Arc::new(ScriptedLlm::new(cfg.seed)),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Why the platform could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("workflow validation failed: {0}")]
    Workflows(#[from] LoadError),
    #[error("seeding demo data failed: {0}")]
    Seed(#[from] SeedError),
}

/// A running platform: its configuration, ports and engine.
pub struct App {
    pub cfg: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub kv: Arc<dyn Kv>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<Ids>,
    pub engine: Arc<Engine>,
    pub tools: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub seeded: Seeded,
    /// The operator's numbered window of recent events; only when the operator surface is on.
    pub events: Option<Arc<crate::bus::tap::EventTap>>,
}

/// What handlers receive.
pub type AppState = Arc<App>;

impl App {
    /// Validates the workflows, seeds the demo data and starts the metering projector.
    pub async fn start(cfg: Config, b: Backends) -> Result<AppState, StartError> {
        let cfg = Arc::new(cfg);
        let tools = Arc::new(Registry::builtin(&cfg));
        let catalog = Catalog::load(
            cfg.workflows_dir.as_deref().map(PathBuf::from).as_deref(),
            &tools,
        )?;
        let ids = Arc::new(Ids::seeded(cfg.seed));
        let metrics = Arc::new(Metrics::default());
        // Subscribe before anything publishes, so the projector misses nothing.
        let rx = b.bus.subscribe();
        let events = cfg
            .operator_key
            .as_ref()
            .map(|_| crate::bus::tap::EventTap::spawn(b.bus.subscribe()));
        let seeded = demo::seed(b.store.as_ref(), cfg.seed).await?;
        crate::metering::spawn_projector(b.store.clone(), rx);
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
        });
        Ok(Arc::new(App {
            cfg,
            store: b.store,
            bus: b.bus,
            kv: b.kv,
            clock: b.clock,
            ids,
            engine,
            tools,
            metrics,
            seeded,
            events,
        }))
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
        let ev = crate::bus::Event {
            event_id: self.ids.uuid(),
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
