//! The harness-owned endpoint that an in-process platform's channels deliver to: a `wiremock`
//! server standing in for the email provider, the notification service and every messaging
//! channel. It answers as a spec tells it (200 by default, or any status per tenant and channel)
//! and keeps every request it received with the answer it gave, so that a spec asserts on what a
//! channel received, not on the status the platform wrote.
//!
//! A MOCK scenario has a sink of its own; the platforms of a GOLDEN run share a database, so any
//! of them may deliver any queued message, and they share the run's sink. A scenario therefore
//! sees, and sets answers for, its own tenants only (each request names its `tenant_id`).

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The channel: the request path's last segment (`email`, `telegram`).
    pub channel: String,
    /// The `tenant_id` the body names (empty when it names none).
    pub tenant: String,
    /// The status the sink answered with.
    pub answered: u16,
    pub idempotency_key: Option<String>,
    /// The JSON body (a string when it was not JSON).
    pub body: Value,
}

#[derive(Default)]
struct State {
    /// (tenant, channel) -> the status to answer with; `*` stands for any channel.
    answers: BTreeMap<(String, String), u16>,
    log: Vec<Received>,
}

/// A running sink; stopped when dropped.
pub struct Sink {
    server: MockServer,
    /// A path prefix of this sink's own: requests outside it (a stray instance that still holds
    /// an old sink's port) get 404 and are not kept.
    prefix: String,
    state: Arc<Mutex<State>>,
}

struct Answer(Arc<Mutex<State>>);

impl Respond for Answer {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let channel = r
            .url
            .path()
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or("")
            .to_string();
        let body: Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.body).into_owned()));
        let tenant = body["tenant_id"].as_str().unwrap_or("").to_string();
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let answered = st
            .answers
            .get(&(tenant.clone(), channel.clone()))
            .or_else(|| st.answers.get(&(tenant.clone(), "*".into())))
            .copied()
            .unwrap_or(200);
        st.log.push(Received {
            channel,
            tenant,
            answered,
            idempotency_key: r
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body,
        });
        ResponseTemplate::new(answered)
    }
}

impl Sink {
    /// Starts a sink on a free loopback port.
    pub async fn start() -> Sink {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        let prefix = format!("sink-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        Mock::given(method("POST"))
            .and(path_regex(format!("^/{prefix}/[^/]+$")))
            .respond_with(Answer(state.clone()))
            .mount(&server)
            .await;
        Sink {
            server,
            prefix,
            state,
        }
    }

    /// The base URL channels deliver to (`{url}/{channel}`).
    pub fn url(&self) -> String {
        format!("{}/{}", self.server.uri(), self.prefix)
    }

    /// From now on, answer the requests of `tenants` on `channel` (every channel when `None`)
    /// with `status`.
    pub fn answer(&self, tenants: &BTreeSet<String>, channel: Option<&str>, status: u16) {
        let mut st = self.lock();
        for t in tenants {
            st.answers
                .insert((t.clone(), channel.unwrap_or("*").to_string()), status);
        }
    }

    /// Every request of `tenants` received so far, in order.
    pub fn received(&self, tenants: &BTreeSet<String>) -> Vec<Received> {
        self.lock()
            .log
            .iter()
            .filter(|r| tenants.contains(&r.tenant))
            .cloned()
            .collect()
    }

    /// What a `sink` step sees of `tenants` on `channel` (every channel when `None`): `requests`
    /// (each request, with the status it was answered) and `delivered` (the bodies of the requests
    /// answered 2xx, one per idempotency key: a redelivery of an accepted message is not a second
    /// message).
    pub fn view(&self, tenants: &BTreeSet<String>, channel: Option<&str>) -> Value {
        let mine: Vec<Received> = self
            .received(tenants)
            .into_iter()
            .filter(|r| channel.is_none_or(|c| r.channel == c))
            .collect();
        let mut seen = BTreeSet::new();
        let delivered: Vec<Value> = mine
            .iter()
            .filter(|r| (200..300).contains(&r.answered))
            .filter(|r| {
                r.idempotency_key
                    .as_ref()
                    .is_none_or(|k| seen.insert(k.clone()))
            })
            .map(|r| r.body.clone())
            .collect();
        let requests: Vec<Value> = mine
            .iter()
            .map(|r| {
                json!({"channel": r.channel, "answered": r.answered,
                       "idempotency_key": r.idempotency_key, "body": r.body})
            })
            .collect();
        json!({"requests": requests, "delivered": delivered})
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_as_told_per_tenant_and_keeps_what_it_received() {
        let sink = Sink::start().await;
        let a: BTreeSet<String> = ["a".to_string()].into();
        let b: BTreeSet<String> = ["b".to_string()].into();
        sink.answer(&a, Some("email"), 503);
        let http = reqwest::Client::new();
        for (tenant, ch, key, want) in [
            ("a", "email", "a:1", 503),
            ("b", "email", "b:1", 200),
            ("a", "telegram", "a:2", 200),
            ("a", "telegram", "a:2", 200),
        ] {
            let r = http
                .post(format!("{}/{ch}", sink.url()))
                .header("idempotency-key", key)
                .json(&json!({"tenant_id": tenant, "message_id": key}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), want, "{tenant} {ch}");
        }
        let stray = http
            .post(format!("{}/telegram", sink.server.uri()))
            .send()
            .await
            .unwrap();
        assert_eq!(stray.status().as_u16(), 404, "outside the sink's prefix");
        let mine = sink.view(&a, None);
        assert_eq!(mine["requests"].as_array().unwrap().len(), 3);
        assert_eq!(
            mine["delivered"],
            json!([{"tenant_id": "a", "message_id": "a:2"}])
        );
        assert_eq!(sink.view(&a, Some("email"))["requests"][0]["answered"], 503);
        assert_eq!(sink.view(&b, None)["delivered"][0]["message_id"], "b:1");
    }
}
