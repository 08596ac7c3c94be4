//! How the platform under test is reached. MOCK boots a fresh platform in-process for each scenario
//! (embedded backends, the scripted model, a real loopback socket); `--target URL` reaches a running
//! deployment. Either way the runner speaks only HTTP to it: the API, and the operator surface for
//! fixtures, faults and the event window.

pub mod sink;
pub mod spawned;

use crate::infra::GoldenEnv;
use platform::app::{App, Backends};
use platform::clock::ManualClock;
use platform::config::{BackendsConfig, BusKind, Config, KvKind, StoreKind};
use platform::llm::cassette::{CassetteLlm, CassetteMode, CassetteSet};
use platform::llm::scripted::ScriptedLlm;
use platform::llm::Llm;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Where an in-process platform's model answers come from. Every in-process platform's model sits
/// behind a [`CassetteLlm`], so that the exchanges of a scenario are known (they go into its
/// episode) and a replay miss fails it.
#[derive(Clone, Default)]
pub enum ModelPlan {
    /// The scripted model of the run's seed (MOCK).
    #[default]
    Scripted,
    /// Recorded cassettes only, never a provider: a request without one fails the scenario with the
    /// nearest recorded request's diff (GOLDEN, exact replay).
    Replay(Arc<CassetteSet>),
    /// The scripted model, each exchange written to this directory as a cassette (`harness record`).
    Record(PathBuf),
    /// The scripted model of another seed (a replay whose model has changed).
    ScriptedSeed(u64),
}

impl std::fmt::Debug for ModelPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelPlan::Scripted => f.write_str("scripted"),
            ModelPlan::Replay(s) => write!(f, "cassettes from {} ({} recorded)", s.source, s.len()),
            ModelPlan::Record(d) => write!(f, "scripted, recording to {}", d.display()),
            ModelPlan::ScriptedSeed(s) => write!(f, "scripted with seed {s}"),
        }
    }
}

impl ModelPlan {
    fn provider(&self, seed: u64) -> Arc<CassetteLlm> {
        let scripted = || -> Arc<dyn Llm> { Arc::new(ScriptedLlm::new(seed)) };
        Arc::new(CassetteLlm::new(match self {
            ModelPlan::Scripted => CassetteMode::Record {
                inner: scripted(),
                dir: None,
            },
            ModelPlan::Replay(set) => CassetteMode::Replay(set.clone()),
            ModelPlan::Record(dir) => CassetteMode::Record {
                inner: scripted(),
                dir: Some(dir.clone()),
            },
            ModelPlan::ScriptedSeed(s) => CassetteMode::Record {
                inner: Arc::new(ScriptedLlm::new(*s)),
                dir: None,
            },
        }))
    }
}
/// Where specs run.
#[derive(Clone)]
pub enum TargetSpec {
    /// A fresh in-process platform per scenario.
    Mock,
    /// A fresh in-process platform per scenario on the real backends of the run's [`GoldenEnv`]
    /// (the model answers from cassettes: see [`ModelPlan`]).
    Golden(Arc<GoldenEnv>),
    /// A running deployment; its operator key provisions fixtures. `sink` is the channels'
    /// endpoint when the harness configured the deployment (`--spawn`), and `spawned` says so:
    /// a reproduction starts the processes again instead of naming their passing URL.
    Remote {
        url: String,
        operator_key: String,
        sink: Option<Arc<sink::Sink>>,
        spawned: bool,
    },
}

impl std::fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Why a target could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("the in-process platform did not start: {0}")]
    Start(String),
}

/// A reachable platform for one scenario.
pub struct Target {
    pub base_url: String,
    pub operator_key: String,
    /// The in-process platform's model (none for a remote target).
    pub llm: Option<Arc<CassetteLlm>>,
    /// The in-process platform and what it was started with, for restarts (none when remote).
    instance: Option<Instance>,
    /// The endpoint the in-process platform's channels deliver to (none when remote: a
    /// deployment's channels are its own).
    pub sink: Option<Arc<sink::Sink>>,
    _stop: Option<oneshot::Sender<()>>,
}

/// An in-process platform: its configuration, its backends (which outlive a restart, as a
/// database outlives a worker) and the running app.
struct Instance {
    cfg: Config,
    store: Arc<dyn platform::store::Store>,
    bus: Arc<dyn platform::bus::Bus>,
    kv: Arc<dyn platform::kv::Kv>,
    clock: Arc<ManualClock>,
    app: platform::app::AppState,
}

impl Drop for Target {
    /// Stops the in-process platform's background work with the scenario: an instance left
    /// running would deliver its queued messages to whatever listens on its sink's port next.
    /// An orderly stop, not a crash: the outbox dispatcher finishes the delivery in hand (a
    /// message left `sending` would be delivered again by another GOLDEN platform).
    fn drop(&mut self) {
        if let Some(i) = &self.instance {
            i.app.shutdown();
        }
    }
}

impl Target {
    /// A token the in-process platform will verify, for `user` of `tenant` with any `role` (also
    /// one the platform does not know: the point of asking for one). `None` for a remote target,
    /// whose signing key the harness does not hold.
    pub fn mint_token(&self, tenant: &str, user: &str, role: &str) -> Option<String> {
        use platform::clock::Clock;
        let i = self.instance.as_ref()?;
        platform::api::auth::issue_token(&i.cfg, tenant, user, role, 3600, i.clock.now()).ok()
    }

    /// Kills the in-process platform as a crash would (runs in flight stop where they stand,
    /// their checkpoints stay), lets its saga leases lapse on the frozen clock, and starts a new
    /// instance on the same backends, which resumes the abandoned runs. The new instance listens
    /// on a new port (`base_url` changes). Only for in-process targets.
    pub async fn restart(&mut self) -> Result<(), TargetError> {
        let Some(old) = self.instance.take() else {
            return Err(TargetError::Start(
                "a restart needs an in-process target (MOCK or GOLDEN)".into(),
            ));
        };
        old.app.halt();
        self._stop.take();
        let lease = chrono::Duration::milliseconds(old.cfg.saga.lease_ms as i64 + 1);
        platform::clock::Clock::advance_by(old.clock.as_ref(), lease);
        let llm = self
            .llm
            .clone()
            .ok_or_else(|| TargetError::Start("the in-process target has no model".into()))?;
        let backends = Backends {
            store: old.store.clone(),
            bus: old.bus.clone(),
            kv: old.kv.clone(),
            llm: llm.clone(),
            clock: old.clock.clone(),
        };
        // A new process draws new ids: the same stream again would reissue the run ids and event
        // ids the dead instance already used. Still seeded, so a rerun is the same.
        let mut cfg = old.cfg.clone();
        cfg.id_seed = cfg.id_seed.map(|s| s.wrapping_add(0x9e37_79b9_7f4a_7c15));
        let app = App::start(cfg.clone(), backends)
            .await
            .map_err(|e| TargetError::Start(e.to_string()))?;
        let mut fresh = serve(app.clone(), self.operator_key.clone()).await?;
        fresh.llm = Some(llm);
        fresh.sink = self.sink.take();
        fresh.instance = Some(Instance { app, cfg, ..old });
        *self = fresh;
        Ok(())
    }
}

impl TargetSpec {
    /// Boots (MOCK, GOLDEN) or names (remote) the platform for one scenario `spec_id` run with
    /// `seed`.
    pub async fn start(
        &self,
        seed: u64,
        spec_id: &str,
        model: &ModelPlan,
        workflows_dir: Option<&std::path::Path>,
        platform_overlay: Option<&serde_json::Value>,
    ) -> Result<Target, TargetError> {
        if let TargetSpec::Remote {
            url,
            operator_key,
            sink,
            ..
        } = self
        {
            return Ok(Target {
                base_url: url.trim_end_matches('/').to_string(),
                operator_key: operator_key.clone(),
                llm: None,
                instance: None,
                sink: sink.clone(),
                _stop: None,
            });
        }
        // Every channel of an in-process platform delivers to a sink: the scenario's own in MOCK,
        // the run's in GOLDEN (its platforms share the database, so any may deliver any message).
        let (sink, mut cfg) = match self {
            TargetSpec::Golden(env) => (env.sink().await, golden_config(seed, spec_id, env)),
            _ => (Arc::new(sink::Sink::start().await), mock_config(seed)),
        };
        cfg.channels.endpoint = Some(sink.url());
        if let Some(d) = workflows_dir {
            cfg.workflows_dir = Some(d.display().to_string());
        }
        let mut t = boot(overlay(cfg, platform_overlay)?, model.provider(seed)).await?;
        t.sink = Some(sink);
        Ok(t)
    }

    /// A short name for reports.
    pub fn describe(&self) -> String {
        match self {
            TargetSpec::Mock => "in-process".into(),
            TargetSpec::Golden(env) => format!(
                "in-process on real backends ({}; run {})",
                env.origins.join(", "),
                env.name
            ),
            TargetSpec::Remote { url, .. } => url.clone(),
        }
    }
}

/// The configuration of a GOLDEN platform: MOCK's, on the run's database, stream prefix and key
/// prefix. Scenarios share the run's database and stream, so their ids must differ: they are
/// seeded from the run seed and the spec id (still the same on a rerun).
pub fn golden_config(seed: u64, spec_id: &str, env: &GoldenEnv) -> Config {
    let mut cfg = mock_config(seed);
    let h = Sha256::digest(format!("{seed}:{spec_id}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    cfg.id_seed = Some(u64::from_le_bytes(b));
    cfg.event_prefix = env.name.clone();
    cfg.delivery = platform::bus::DeliveryConfig {
        max_deliver: 3,
        ack_wait_ms: 2_000,
        backoff_ms: vec![50, 200],
    };
    cfg.backends = BackendsConfig {
        store: StoreKind::Postgres,
        database_url: Some(env.database_url.clone()),
        // The run's database was migrated once when it was created.
        migrate_on_start: false,
        db_max_connections: 4,
        bus: BusKind::Jetstream,
        nats_url: Some(env.nats_url.clone()),
        publish_timeout_ms: 2_000,
        relay_interval_ms: 200,
        duplicate_window_secs: 120,
        kv: KvKind::Redis,
        redis_url: Some(env.redis_url.clone()),
        kv_prefix: env.kv_prefix.clone(),
    };
    cfg
}

/// The configuration of a MOCK platform: embedded defaults with the run's seed, the operator
/// surface and fault injection on, short retry delays (durations are configuration) and no timed
/// reindex sweep. Its clock is frozen at the fixtures' epoch.
pub fn mock_config(seed: u64) -> Config {
    Config {
        seed,
        id_seed: Some(seed),
        operator_key: Some(format!("mock-operator-{seed}")),
        fault_injection: true,
        // Reindexing happens when a spec asks for it, never on a wall-clock timer mid-spec.
        rag: platform::config::RagConfig {
            reindex_sweep_ms: 0,
            ..Default::default()
        },
        resilience: platform::resilience::ResilienceConfig {
            retry_base_ms: 2,
            retry_cap_ms: 20,
            ..Default::default()
        },
        // Deliveries start soon after a message is queued; specs wait for them through the sink.
        // A claim left by a platform that ended mid-delivery (GOLDEN platforms share the queue)
        // is taken over after a second.
        channels: platform::channels::ChannelsConfig {
            poll_ms: 10,
            claim_lease_ms: 1_000,
            ..Default::default()
        },
        ..Config::default()
    }
}

async fn boot(cfg: Config, llm: Arc<CassetteLlm>) -> Result<Target, TargetError> {
    let key = cfg.operator_key.clone().unwrap_or_default();
    // A frozen clock: with the seed it makes every response of a rerun bit-identical.
    let clock = Arc::new(ManualClock::at_epoch());
    let real = Backends::from_config(&cfg)
        .await
        .map_err(|e| TargetError::Start(e.to_string()))?;
    let backends = Backends {
        clock: clock.clone(),
        llm: llm.clone(),
        ..real
    };
    let (store, bus, kv) = (
        backends.store.clone(),
        backends.bus.clone(),
        backends.kv.clone(),
    );
    let app = App::start(cfg.clone(), backends)
        .await
        .map_err(|e| TargetError::Start(e.to_string()))?;
    let mut t = serve(app.clone(), key).await?;
    t.llm = Some(llm);
    t.instance = Some(Instance {
        cfg,
        store,
        bus,
        kv,
        clock,
        app,
    });
    Ok(t)
}

/// `base` with the spec's `platform:` overlay merged in (objects key by key, anything else
/// replaced); unknown keys are an error, as in a configuration file.
pub fn overlay(base: Config, over: Option<&serde_json::Value>) -> Result<Config, TargetError> {
    let Some(over) = over else { return Ok(base) };
    let mut v = serde_json::to_value(&base).map_err(|e| TargetError::Start(e.to_string()))?;
    crate::runner::deep_merge(&mut v, over.clone());
    serde_json::from_value(v)
        .map_err(|e| TargetError::Start(format!("the spec's `platform:` overlay: {e}")))
}

/// Serves a started platform on a free loopback port until the returned target is dropped.
pub async fn serve(
    app: platform::app::AppState,
    operator_key: String,
) -> Result<Target, TargetError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| TargetError::Start(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| TargetError::Start(e.to_string()))?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = app
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Target {
        base_url: format!("http://{addr}"),
        operator_key,
        llm: None,
        instance: None,
        sink: None,
        _stop: Some(stop),
    })
}
