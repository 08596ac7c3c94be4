//! The operator's view of the bus: the latest events, numbered, so that a test harness outside the
//! process can read what a request published (`GET /api/v1/operator/events`) whatever the bus
//! backend. It follows the bus like any consumer, keeps a bounded window, and counts what it missed
//! so that a reader knows when its view is incomplete.

use super::Delivery;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tokio::sync::watch;

/// How many events the tap keeps; older ones are dropped first.
pub const TAP_CAPACITY: usize = 50_000;

#[derive(Default)]
struct Window {
    /// `(seq, delivery)`, seq increasing from 1.
    events: VecDeque<(u64, Delivery)>,
    next_seq: u64,
    missed: u64,
}

/// A bounded, numbered window of the latest deliveries.
pub struct EventTap {
    window: Mutex<Window>,
    /// The highest bus position the tap has taken in (see [`EventTap::settle`]).
    reached: watch::Sender<u64>,
}

impl Default for EventTap {
    fn default() -> Self {
        Self::starting_at(0)
    }
}

/// A page of the tap: events after a cursor, the cursor to continue from, and how many events the
/// tap has missed since it started (a reader must not trust an absence when that grows).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub events: Vec<Value>,
    pub next: u64,
    pub missed: u64,
}

impl EventTap {
    /// A tap that counts bus positions up to `position` as taken in (they were published before
    /// it subscribed).
    fn starting_at(position: u64) -> Self {
        Self {
            window: Mutex::default(),
            reached: watch::Sender::new(position),
        }
    }

    /// Follows `rx` in the background. `position` is the bus's published position read after
    /// `rx` subscribed: everything at or below it was published before, or will arrive on `rx`.
    pub fn spawn(mut rx: Receiver<Delivery>, position: u64) -> Arc<EventTap> {
        let tap = Arc::new(EventTap::starting_at(position));
        let t = tap.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(d) => t.push(d),
                    Err(RecvError::Lagged(n)) => {
                        t.lock().missed += n;
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        tap
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, d: Delivery) {
        let position = d.position;
        {
            let mut w = self.lock();
            w.next_seq += 1;
            let seq = w.next_seq;
            if w.events.len() == TAP_CAPACITY {
                w.events.pop_front();
            }
            w.events.push_back((seq, d));
        }
        self.reached.send_if_modified(|p| {
            let advanced = position > *p;
            *p = (*p).max(position);
            advanced
        });
    }

    /// Waits (at most `within`) until the tap has taken in the bus position `target`, that is
    /// every event published before the caller read [`crate::bus::Bus::published_position`].
    /// Without this, a reader that takes the head right after a request could miss that
    /// request's events (the tap follows the bus in a task of its own, behind the publisher) and
    /// see them in its next window instead. Returns whether it caught up.
    pub async fn settle(&self, target: u64, within: Duration) -> bool {
        let mut rx = self.reached.subscribe();
        let caught_up = tokio::time::timeout(within, rx.wait_for(|p| *p >= target))
            .await
            .is_ok_and(|r| r.is_ok());
        caught_up
    }

    /// Up to `limit` events with a sequence number above `after` whose tenant is one of `tenants`
    /// (all tenants when empty). `next` is the cursor for the following page; with `limit` 0 it is
    /// the head, the cursor a reader takes before it acts.
    pub fn page(&self, after: u64, tenants: &[String], limit: usize) -> Page {
        let w = self.lock();
        if limit == 0 {
            return Page {
                events: vec![],
                next: w.next_seq,
                missed: w.missed,
            };
        }
        let mut events = vec![];
        let mut next = after;
        for (seq, d) in w.events.iter().filter(|(s, _)| *s > after) {
            if events.len() == limit {
                break;
            }
            // Scanned, whether or not it is this reader's tenant: the next page starts after it.
            next = *seq;
            if tenants.is_empty() || tenants.iter().any(|t| t == d.event.tenant_id.as_str()) {
                let mut v = serde_json::to_value(&d.event).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("seq".into(), json!(seq));
                    m.insert("subject".into(), json!(d.subject));
                }
                events.push(v);
            }
        }
        Page {
            events,
            next,
            missed: w.missed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Event;
    use crate::domain::TenantId;

    fn delivery(tenant: &str, n: u128) -> Delivery {
        Delivery {
            subject: format!("aiaas.t.{n}"),
            event: Event {
                event_id: uuid::Uuid::from_u128(n),
                event_type: format!("t.{n}"),
                tenant_id: TenantId::parse(tenant).unwrap(),
                run_id: None,
                occurred_at: chrono::DateTime::UNIX_EPOCH,
                data: json!({}),
            },
            position: n as u64,
        }
    }

    #[test]
    fn pages_follow_the_cursor_and_filter_by_tenant() {
        let tap = EventTap::default();
        assert_eq!(tap.page(0, &[], 0).next, 0);
        for n in 1..=5 {
            tap.push(delivery(if n % 2 == 0 { "globex" } else { "acme" }, n));
        }
        let head = tap.page(0, &[], 0);
        assert_eq!((head.next, head.events.len()), (5, 0));
        let p = tap.page(0, &["acme".to_string()], 100);
        assert_eq!(
            p.events
                .iter()
                .map(|e| e["seq"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            [1, 3, 5]
        );
        assert_eq!(p.next, 5);
        let p = tap.page(0, &[], 2);
        assert_eq!((p.events.len(), p.next), (2, 2));
        let p = tap.page(2, &[], 2);
        assert_eq!(p.events[0]["seq"], 3);
        assert_eq!(p.events[0]["subject"], "aiaas.t.3");
        let p = tap.page(5, &[], 10);
        assert_eq!((p.events.len(), p.next, p.missed), (0, 5, 0));
    }
}

#[cfg(test)]
mod settle_tests {
    use super::*;
    use crate::bus::memory::MemoryBus;
    use crate::bus::{Bus, Event};
    use crate::domain::TenantId;

    fn event(n: u128) -> Event {
        Event {
            event_id: uuid::Uuid::from_u128(n),
            event_type: "t".into(),
            tenant_id: TenantId::parse("acme").unwrap(),
            run_id: None,
            occurred_at: chrono::DateTime::UNIX_EPOCH,
            data: json!({}),
        }
    }

    // A current-thread runtime: the tap's task cannot run until the test awaits, which is the
    // lag a reader on a busy machine sees.
    #[tokio::test]
    async fn settling_takes_in_everything_published_before_it() {
        let bus = MemoryBus::new("aiaas");
        bus.publish(&event(1)).await.unwrap();
        let rx = bus.subscribe();
        let tap = EventTap::spawn(rx, bus.published_position().await.unwrap());
        for n in 2..=40 {
            bus.publish(&event(n)).await.unwrap();
        }
        assert_eq!(
            tap.page(0, &[], 0).next,
            0,
            "the tap's task has not run yet"
        );
        let target = bus.published_position().await.unwrap();
        assert!(tap.settle(target, Duration::from_secs(5)).await);
        assert_eq!(
            tap.page(0, &[], 0).next,
            39,
            "every event published since it subscribed"
        );
    }

    #[tokio::test]
    async fn settling_on_a_position_never_published_gives_up() {
        let tap = EventTap::starting_at(3);
        assert!(tap.settle(3, Duration::from_millis(1)).await);
        assert!(!tap.settle(4, Duration::from_millis(20)).await);
    }
}
