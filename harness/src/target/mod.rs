//! How the platform under test is reached. MOCK boots a fresh platform in-process for each scenario
//! (embedded backends, the scripted model, a real loopback socket); `--target URL` reaches a running
//! deployment. Either way the runner speaks only HTTP to it: the API, and the operator surface for
//! fixtures, faults and the event window.

use crate::infra::GoldenEnv;
use platform::app::{App, Backends};
use platform::clock::ManualClock;
use platform::config::{BackendsConfig, BusKind, Config, KvKind, StoreKind};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Where specs run.
#[derive(Clone)]
pub enum TargetSpec {
    /// A fresh in-process platform per scenario.
    Mock,
    /// A fresh in-process platform per scenario on the real backends of the run's [`GoldenEnv`]
    /// (the model stays scripted until cassettes arrive).
    Golden(Arc<GoldenEnv>),
    /// A running deployment; its operator key provisions fixtures.
    Remote { url: String, operator_key: String },
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
    _stop: Option<oneshot::Sender<()>>,
}

impl TargetSpec {
    /// Boots (MOCK, GOLDEN) or names (remote) the platform for one scenario `spec_id` run with
    /// `seed`.
    pub async fn start(&self, seed: u64, spec_id: &str) -> Result<Target, TargetError> {
        match self {
            TargetSpec::Remote { url, operator_key } => Ok(Target {
                base_url: url.trim_end_matches('/').to_string(),
                operator_key: operator_key.clone(),
                _stop: None,
            }),
            TargetSpec::Mock => boot(mock_config(seed)).await,
            TargetSpec::Golden(env) => {
                let cfg = golden_config(seed, spec_id, env);
                boot(cfg).await
            }
        }
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
/// surface and fault injection on, and short retry delays (durations are configuration). Its clock
/// is frozen at the fixtures' epoch.
pub fn mock_config(seed: u64) -> Config {
    Config {
        seed,
        id_seed: Some(seed),
        operator_key: Some(format!("mock-operator-{seed}")),
        fault_injection: true,
        retry_base_ms: 2,
        retry_cap_ms: 20,
        ..Config::default()
    }
}

async fn boot(cfg: Config) -> Result<Target, TargetError> {
    let key = cfg.operator_key.clone().unwrap_or_default();
    // A frozen clock: with the seed it makes every response of a rerun bit-identical.
    let backends = Backends {
        clock: Arc::new(ManualClock::at_epoch()),
        ..Backends::from_config(&cfg)
            .await
            .map_err(|e| TargetError::Start(e.to_string()))?
    };
    let app = App::start(cfg, backends)
        .await
        .map_err(|e| TargetError::Start(e.to_string()))?;
    serve(app, key).await
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
        _stop: Some(stop),
    })
}
