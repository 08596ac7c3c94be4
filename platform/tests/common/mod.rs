//! A platform served on 127.0.0.1:0 with embedded backends, a frozen clock the test can advance, and
//! an HTTP client. Tests observe the platform only through HTTP, the bus and the store's public reads.
#![allow(dead_code)]

use platform::app::{App, AppState, Backends};
use platform::bus::memory::MemoryBus;
use platform::clock::{Clock, ManualClock};
use platform::config::Config;
use platform::kv::memory::MemoryKv;
use platform::llm::scripted::ScriptedLlm;
use platform::store::memory::MemoryStore;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub struct Server {
    pub base: String,
    pub app: AppState,
    pub clock: Arc<ManualClock>,
    pub bus: Arc<MemoryBus>,
    pub store: Arc<MemoryStore>,
    pub http: reqwest::Client,
}

/// A response, parsed.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// The error code of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    /// Status and error code together, for one-line assertions.
    pub fn outcome(&self) -> (u16, &str) {
        (self.status.as_u16(), self.code())
    }
    /// The `run_id` an error names in its details.
    pub fn run_id(&self) -> String {
        self.body["error"]["details"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["field"] == "run_id")
            .and_then(|d| d["message"].as_str())
            .expect("the error names its run")
            .to_string()
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// The test configuration: fast retries, everything else as shipped.
pub fn test_config() -> Config {
    Config {
        resilience: platform::resilience::ResilienceConfig {
            retry_base_ms: 1,
            retry_cap_ms: 5,
            ..Default::default()
        },
        ..Config::default()
    }
}

pub async fn start() -> Server {
    start_with(test_config()).await
}

pub async fn start_with(cfg: Config) -> Server {
    let clock = Arc::new(ManualClock::at_epoch());
    let bus = Arc::new(MemoryBus::new(&cfg.event_prefix));
    let store = Arc::new(MemoryStore::default());
    let backends = Backends {
        store: store.clone(),
        bus: bus.clone(),
        kv: Arc::new(MemoryKv::default()),
        llm: Arc::new(ScriptedLlm::new(cfg.seed)),
        clock: clock.clone(),
    };
    let app = App::start(cfg, backends).await.expect("platform starts");
    let addr = app
        .clone()
        .spawn_local()
        .await
        .expect("binds a loopback port");
    Server {
        base: format!("http://{addr}"),
        app,
        clock,
        bus,
        store,
        http: reqwest::Client::new(),
    }
}

impl Server {
    /// A JWT for `user` of `tenant` with `role`, valid for an hour of the frozen clock.
    pub fn token(&self, tenant: &str, user: &str, role: &str) -> String {
        platform::api::auth::issue_token(&self.app.cfg, tenant, user, role, 3600, self.clock.now())
            .expect("token")
    }

    /// Sends a request with optional bearer token, extra headers and raw body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Resp {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let r = rb.send().await.expect("request reaches the server");
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(token), &[], Some(body.to_string()))
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Some(token), &[], None).await
    }

    /// A chat turn as `token`.
    pub async fn chat(&self, token: &str, text: &str) -> Resp {
        self.post(
            "/api/v1/chat/message",
            token,
            serde_json::json!({"message": {"content": text}}),
        )
        .await
    }

    /// The run trace of `run_id`.
    pub async fn run(&self, token: &str, run_id: &str) -> Value {
        let r = self.get(&format!("/api/v1/runs/{run_id}"), token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// Current stock of a product, read through the API.
    pub async fn stock(&self, token: &str, sku: &str) -> i64 {
        let r = self.get("/api/v1/products", token).await;
        r.body["products"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["sku"] == sku)
            .and_then(|p| p["stock"].as_i64())
            .expect("product listed")
    }

    /// Event subjects published so far for `run_id`, in order (prefix stripped).
    /// The events of one type, with their run ids.
    pub fn events_of_type(&self, event_type: &str) -> Vec<(String, Value)> {
        self.bus
            .published()
            .into_iter()
            .filter(|d| d.event.event_type == event_type)
            .map(|d| {
                let run = d.event.run_id.map(|r| r.to_string()).unwrap_or_default();
                (run, d.event.data)
            })
            .collect()
    }

    /// A run as the store holds it (with its checkpoint).
    pub async fn store_run(
        &self,
        tenant: &platform::domain::TenantId,
        id: uuid::Uuid,
    ) -> platform::store::model::Run {
        use platform::store::Store;
        self.store
            .run(tenant, id)
            .await
            .expect("the store answers")
            .expect("the run exists")
    }

    pub fn events_of(&self, run_id: &str) -> Vec<(String, Value)> {
        self.bus
            .published()
            .into_iter()
            .filter(|d| d.event.run_id.map(|r| r.to_string()).as_deref() == Some(run_id))
            .map(|d| (d.event.event_type, d.event.data))
            .collect()
    }
}

/// Polls `check` until it holds (eventual consistency of the read models); panics after 5 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never became true: {what}");
}
