//! How the platform under test is reached. MOCK boots a fresh platform in-process for each scenario
//! (embedded backends, the scripted model, a real loopback socket); `--target URL` reaches a running
//! deployment. Either way the runner speaks only HTTP to it: the API, and the operator surface for
//! fixtures, faults and the event window.

use platform::app::{App, Backends};
use platform::clock::ManualClock;
use platform::config::Config;
use tokio::sync::oneshot;

/// Where specs run.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// A fresh in-process platform per scenario.
    Mock,
    /// A running deployment; its operator key provisions fixtures.
    Remote { url: String, operator_key: String },
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
    /// Boots (MOCK) or names (remote) the platform for one scenario run with `seed`.
    pub async fn start(&self, seed: u64) -> Result<Target, TargetError> {
        match self {
            TargetSpec::Remote { url, operator_key } => Ok(Target {
                base_url: url.trim_end_matches('/').to_string(),
                operator_key: operator_key.clone(),
                _stop: None,
            }),
            TargetSpec::Mock => start_mock(seed).await,
        }
    }

    /// A short name for reports.
    pub fn describe(&self) -> String {
        match self {
            TargetSpec::Mock => "in-process".into(),
            TargetSpec::Remote { url, .. } => url.clone(),
        }
    }
}

/// The configuration of a MOCK platform: embedded defaults with the run's seed, the operator
/// surface and fault injection on, and short retry delays (durations are configuration). Its clock
/// is frozen at the fixtures' epoch.
pub fn mock_config(seed: u64) -> Config {
    Config {
        seed,
        operator_key: Some(format!("mock-operator-{seed}")),
        fault_injection: true,
        retry_base_ms: 2,
        retry_cap_ms: 20,
        ..Config::default()
    }
}

async fn start_mock(seed: u64) -> Result<Target, TargetError> {
    let cfg = mock_config(seed);
    let key = cfg.operator_key.clone().unwrap_or_default();
    // A frozen clock: with the seed it makes every response of a rerun bit-identical.
    let backends = Backends {
        clock: std::sync::Arc::new(ManualClock::at_epoch()),
        ..Backends::embedded(&cfg)
    };
    let app = App::start(cfg, backends)
        .await
        .map_err(|e| TargetError::Start(e.to_string()))?;
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
        operator_key: key,
        _stop: Some(stop),
    })
}
