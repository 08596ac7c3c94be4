//! How the platform under test is reached. MOCK boots a fresh platform in-process for each scenario
//! (embedded backends, the scripted model, a real loopback socket); `--target URL` reaches a running
//! deployment. Either way the runner speaks only HTTP to it, plus the event feed below.

use platform::app::{App, Backends};
use platform::config::Config;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
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

/// Events seen on the bus, in publication order, as `{subject, event_id, event_type, tenant_id,
/// run_id, occurred_at, data}`.
#[derive(Clone, Default)]
pub struct EventFeed {
    seen: Arc<Mutex<Vec<Value>>>,
    lagged: Arc<Mutex<u64>>,
}

impl EventFeed {
    /// How many events have been seen so far (a cursor for [`EventFeed::since`]).
    pub fn len(&self) -> usize {
        self.seen.lock().map(|g| g.len()).unwrap_or(0)
    }

    /// Whether nothing has been seen yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events seen after `cursor`.
    pub fn since(&self, cursor: usize) -> Vec<Value> {
        self.seen
            .lock()
            .map(|g| g.get(cursor..).unwrap_or_default().to_vec())
            .unwrap_or_default()
    }

    /// How many events the feed missed because it fell behind (then event checks are unsound).
    pub fn lagged(&self) -> u64 {
        self.lagged.lock().map(|g| *g).unwrap_or(0)
    }
}

/// A reachable platform for one scenario.
pub struct Target {
    pub base_url: String,
    pub operator_key: String,
    /// The bus as the harness sees it; `None` when the target exposes no event feed.
    pub events: Option<EventFeed>,
    _stop: Option<oneshot::Sender<()>>,
}

impl TargetSpec {
    /// Boots (MOCK) or names (remote) the platform for one scenario run with `seed`.
    pub async fn start(&self, seed: u64) -> Result<Target, TargetError> {
        match self {
            TargetSpec::Remote { url, operator_key } => Ok(Target {
                base_url: url.trim_end_matches('/').to_string(),
                operator_key: operator_key.clone(),
                events: None,
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
/// surface and fault injection on, and short retry delays (durations are configuration).
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
    let backends = Backends::embedded(&cfg);
    let app = App::start(cfg, backends)
        .await
        .map_err(|e| TargetError::Start(e.to_string()))?;
    let feed = EventFeed::default();
    let mut rx = app.bus.subscribe();
    let (seen, lagged) = (feed.seen.clone(), feed.lagged.clone());
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(d) => {
                    let mut v = serde_json::to_value(&d.event).unwrap_or(Value::Null);
                    if let Value::Object(m) = &mut v {
                        m.insert("subject".into(), json!(d.subject));
                    }
                    if let Ok(mut g) = seen.lock() {
                        g.push(v);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    if let Ok(mut g) = lagged.lock() {
                        *g += n;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
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
        events: Some(feed),
        _stop: Some(stop),
    })
}
