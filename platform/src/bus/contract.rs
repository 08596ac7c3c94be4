//! The contract every `Bus` backend must pass: one body per property, run for each backend (the
//! memory backend here; JetStream in the workspace's `tests/contracts.rs`, against a real broker).
//! Each body is given a fresh bus (its own prefix).

use super::{Bus, Delivery, Event, Handler};
use crate::domain::TenantId;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

fn event(n: u128, event_type: &str) -> Event {
    Event {
        event_id: Uuid::from_u128(n),
        event_type: event_type.into(),
        tenant_id: TenantId::parse("acme").unwrap_or_else(|_| unreachable!()),
        run_id: None,
        occurred_at: chrono::Utc::now(),
        data: serde_json::json!({"n": n as u64}),
    }
}

/// Waits (up to 10 s) until `f` holds; the bus delivers asynchronously.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Subscribers see events in publish order, on `<prefix>.<event_type>`.
pub async fn subscribers_see_events_in_order(bus: &dyn Bus) {
    let mut rx = bus.subscribe();
    bus.publish(&event(1, "workflow.started")).await.unwrap();
    bus.publish(&event(2, "workflow.completed")).await.unwrap();
    let p = bus.prefix().to_string();
    let a = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    let b = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    assert_eq!(a.unwrap().unwrap().subject, format!("{p}.workflow.started"));
    let b = b.unwrap().unwrap();
    assert_eq!(b.subject, format!("{p}.workflow.completed"));
    assert_eq!(b.event.data["n"], 2);
}

/// Publishing the same event id twice delivers it once to a consumer.
pub async fn a_duplicate_event_id_is_delivered_once(bus: &dyn Bus) {
    let seen = Arc::new(Mutex::new(Vec::<Uuid>::new()));
    let s = seen.clone();
    let handler: Handler = Arc::new(move |d: Delivery| {
        s.lock().unwrap().push(d.event.event_id);
        Box::pin(async { Ok(()) })
    });
    let task = bus.consume("dedup", handler).await.unwrap();
    bus.publish(&event(7, "usage.metered")).await.unwrap();
    bus.publish(&event(7, "usage.metered")).await.unwrap();
    bus.publish(&event(8, "usage.metered")).await.unwrap();
    eventually("both events are consumed", || {
        seen.lock().unwrap().len() >= 2
    })
    .await;
    // Give a wrongly delivered duplicate the time to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.abort();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![Uuid::from_u128(7), Uuid::from_u128(8)]);
}

/// A handler that keeps failing gets `max_deliver` attempts, then the event is dead-lettered with
/// its subject, payload, error and delivery count; the next event is still processed.
pub async fn a_failing_delivery_is_retried_then_dead_lettered(bus: &dyn Bus, max_deliver: u32) {
    let attempts = Arc::new(Mutex::new(Vec::<Uuid>::new()));
    let a = attempts.clone();
    let handler: Handler = Arc::new(move |d: Delivery| {
        a.lock().unwrap().push(d.event.event_id);
        let poison = d.event.event_type == "poison.test";
        Box::pin(async move {
            if poison {
                Err("handler refused the event".into())
            } else {
                Ok(())
            }
        })
    });
    let task = bus.consume("retrying", handler).await.unwrap();
    bus.publish(&event(21, "poison.test")).await.unwrap();
    bus.publish(&event(22, "fine.test")).await.unwrap();
    let p = bus.prefix().to_string();
    for _ in 0..200 {
        let dead = bus.dead_letters(10).await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = bus.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].subject, format!("{p}.poison.test"));
    assert_eq!(dead[0].error, "handler refused the event");
    assert_eq!(dead[0].deliveries, max_deliver);
    assert_eq!(dead[0].consumer, "retrying");
    let payload: Event = serde_json::from_str(&dead[0].payload).unwrap();
    assert_eq!(payload.event_id, Uuid::from_u128(21));
    eventually("the fine event is consumed", || {
        attempts.lock().unwrap().contains(&Uuid::from_u128(22))
    })
    .await;
    task.abort();
    let poison_attempts = attempts
        .lock()
        .unwrap()
        .iter()
        .filter(|id| **id == Uuid::from_u128(21))
        .count();
    assert_eq!(poison_attempts, max_deliver as usize);
}

#[cfg(test)]
mod memory_backend {
    use crate::bus::memory::MemoryBus;
    use crate::bus::DeliveryConfig;

    fn bus() -> MemoryBus {
        MemoryBus::with_delivery(
            "contract",
            DeliveryConfig {
                max_deliver: 3,
                ack_wait_ms: 1_000,
                backoff_ms: vec![10, 20],
            },
        )
    }

    #[tokio::test]
    async fn subscribers_see_events_in_order() {
        super::subscribers_see_events_in_order(&bus()).await;
    }
    #[tokio::test]
    async fn a_duplicate_event_id_is_delivered_once() {
        super::a_duplicate_event_id_is_delivered_once(&bus()).await;
    }
    #[tokio::test]
    async fn a_failing_delivery_is_retried_then_dead_lettered() {
        super::a_failing_delivery_is_retried_then_dead_lettered(&bus(), 3).await;
    }
}
