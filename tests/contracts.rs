//! The port contracts against the real backends: the same bodies that `platform` runs against its
//! embedded backends (`store::contract`, `kv::contract`, `bus::contract`), here against Postgres,
//! Redis and JetStream, so the two backends of a port cannot drift apart. Each test gets its own
//! database, key prefix and stream prefix (see `harness::infra`).

use harness::infra::{env_for_test, GoldenEnv};
use platform::bus::jetstream::{JetStreamBus, JetStreamOptions};
use platform::bus::outbox::MemoryOutbox;
use platform::bus::DeliveryConfig;
use platform::kv::redis::RedisKv;
use platform::store::postgres::PgStore;
use std::sync::Arc;
use std::time::Duration;

async fn store(env: &GoldenEnv) -> PgStore {
    PgStore::connect(&env.database_url, 4)
        .await
        .expect("connect as the app role")
}

macro_rules! store_contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let Some(env) = env_for_test(concat!("store::", stringify!($name))).await else {
                return;
            };
            let s = store(&env).await;
            platform::store::contract::$name(&s).await;
            s.pool().close().await;
            env.cleanup().await;
        }
    )*};
}

mod postgres_store {
    use super::*;
    store_contract!(
        orders_stay_in_their_tenant,
        stock_never_goes_negative,
        documents_are_filtered_in_the_query,
        usage_adds_up_per_tenant,
        the_outbox_keeps_queue_order,
        the_delivery_queue_and_its_transitions,
        an_api_key_belongs_to_one_tenant,
        an_abandoned_run_is_claimed_once,
    );
}

macro_rules! kv_contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let Some(env) = env_for_test(concat!("kv::", stringify!($name))).await else {
                return;
            };
            let kv = RedisKv::connect(&env.redis_url, &env.kv_prefix)
                .await
                .expect("connect to redis");
            platform::kv::contract::$name(&kv, "contract").await;
            env.cleanup().await;
        }
    )*};
}

mod redis_kv {
    use super::*;
    kv_contract!(
        bucket_empties_then_refills_over_its_window,
        values_expire_and_put_if_absent_is_exclusive,
        set_overwrites,
        slots_bound_concurrency,
    );
}

/// A JetStream bus on the environment's own stream prefix, quick to redeliver.
pub async fn jetstream(env: &GoldenEnv, max_deliver: u32) -> Arc<JetStreamBus> {
    JetStreamBus::connect(
        JetStreamOptions {
            url: env.nats_url.clone(),
            prefix: env.name.clone(),
            delivery: DeliveryConfig {
                max_deliver,
                ack_wait_ms: 2_000,
                backoff_ms: vec![10, 20],
            },
            publish_timeout: Duration::from_secs(2),
            relay_interval: Duration::from_millis(200),
            duplicate_window: Duration::from_secs(60),
        },
        Arc::new(MemoryOutbox::default()),
    )
    .await
    .expect("connect to nats")
}

mod jetstream_bus {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_events_in_order() {
        let Some(env) = env_for_test("bus::subscribers_see_events_in_order").await else {
            return;
        };
        platform::bus::contract::subscribers_see_events_in_order(jetstream(&env, 3).await.as_ref())
            .await;
        env.cleanup().await;
    }

    #[tokio::test]
    async fn a_duplicate_event_id_is_delivered_once() {
        let Some(env) = env_for_test("bus::a_duplicate_event_id_is_delivered_once").await else {
            return;
        };
        platform::bus::contract::a_duplicate_event_id_is_delivered_once(
            jetstream(&env, 3).await.as_ref(),
        )
        .await;
        env.cleanup().await;
    }

    #[tokio::test]
    async fn a_failing_delivery_is_retried_then_dead_lettered() {
        let Some(env) = env_for_test("bus::a_failing_delivery_is_retried_then_dead_lettered").await
        else {
            return;
        };
        platform::bus::contract::a_failing_delivery_is_retried_then_dead_lettered(
            jetstream(&env, 3).await.as_ref(),
            3,
        )
        .await;
        env.cleanup().await;
    }
}
