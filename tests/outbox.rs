//! The broker goes down while orders are placed: no event is lost. The platform runs on Postgres
//! (its outbox) and a nats-server this test spawned; the test kills the broker, places orders (they
//! succeed: their events wait in the outbox), restarts the broker, and then finds every order's
//! events in the stream exactly once (the relay re-sends with `Nats-Msg-Id`, so a re-send is
//! dropped by the broker).

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use harness::infra::{env_for_test, spawn};
use platform::app::{App, Backends};
use platform::bus::jetstream::stream_names;
use platform::config::{BusKind, Config, StoreKind};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn orders_placed_while_the_broker_is_down_lose_no_event() {
    let Some(env) = env_for_test("outbox::orders_placed_while_the_broker_is_down").await else {
        return;
    };
    // A broker of our own: this test stops it (never the machine's).
    let (mut broker, nats_url) = match spawn::nats() {
        Ok(b) => b,
        Err(e) if harness::infra::services_required() => panic!("cannot spawn nats-server: {e}"),
        Err(e) => {
            eprintln!("outbox test skipped: {e}");
            return;
        }
    };
    let mut cfg = Config {
        id_seed: Some(7),
        event_prefix: env.name.clone(),
        ..Config::default()
    };
    cfg.backends.store = StoreKind::Postgres;
    cfg.backends.database_url = Some(env.database_url.clone());
    cfg.backends.migrate_on_start = false;
    cfg.backends.bus = BusKind::Jetstream;
    cfg.backends.nats_url = Some(nats_url.clone());
    cfg.backends.publish_timeout_ms = 300;
    cfg.backends.relay_interval_ms = 100;
    let token =
        platform::api::auth::issue_token(&cfg, "acme", "bob", "user", 3600, chrono::Utc::now())
            .unwrap();
    let backends = Backends::from_config(&cfg).await.unwrap();
    let app = App::start(cfg, backends).await.unwrap();
    let target = harness::target::serve(app, String::new()).await.unwrap();
    let base = target.base_url.clone();
    let http = reqwest::Client::new();
    let place = || async {
        let r = http
            .post(format!("{base}/api/v1/orders"))
            .bearer_auth(&token)
            .json(&json!({
                "items": [{"sku": "SKU-WIDGET", "quantity": 1}],
                "payment": {"method": "card", "card_token": "tok_visa"},
                "shipping_address": "1 Main Street"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        body["run_id"].as_str().unwrap().to_string()
    };

    let mut runs = vec![place().await];
    broker.kill();
    for _ in 0..3 {
        runs.push(place().await);
    }
    // While the broker is down, the events of those orders wait in the outbox.
    let admin = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (waiting,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM event_outbox WHERE relayed_at IS NULL")
            .fetch_one(&admin)
            .await
            .unwrap();
    assert!(waiting >= 3 * 2, "only {waiting} events wait in the outbox");

    spawn::restart_nats(&mut broker, &nats_url).unwrap();
    // The relay drains the outbox once the broker is back.
    let mut left = waiting;
    for _ in 0..200 {
        let (n,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM event_outbox WHERE relayed_at IS NULL")
                .fetch_one(&admin)
                .await
                .unwrap();
        left = n;
        if n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "events still wait in the outbox");

    // Every order's run appears in the stream: started and completed once each.
    let js = jetstream::new(async_nats::connect(&nats_url).await.unwrap());
    let (events_stream, _) = stream_names(&env.name);
    let mut stream = js.get_stream(&events_stream).await.unwrap();
    let total = stream.info().await.unwrap().state.messages;
    let c = stream
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut msgs = c.messages().await.unwrap();
    let mut per_run: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..total {
        let m = tokio::time::timeout(Duration::from_secs(5), msgs.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let e: Value = serde_json::from_slice(&m.payload).unwrap();
        assert!(ids.insert(e["event_id"].to_string()), "duplicate event {e}");
        if let Some(run) = e["run_id"].as_str() {
            *per_run
                .entry((
                    run.to_string(),
                    e["event_type"].as_str().unwrap().to_string(),
                ))
                .or_default() += 1;
        }
    }
    for run in &runs {
        for t in ["workflow.started", "workflow.completed"] {
            assert_eq!(
                per_run.get(&(run.clone(), t.to_string())),
                Some(&1),
                "{t} of run {run}"
            );
        }
    }
    drop(target);
    admin.close().await;
    env.cleanup().await;
}
