//! The operator's view of the bus: the latest events, numbered, so that a test harness outside the
//! process can read what a request published (`GET /api/v1/operator/events`) whatever the bus
//! backend. It follows the bus like any consumer, keeps a bounded window, and counts what it missed
//! so that a reader knows when its view is incomplete.

use super::Delivery;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast::{error::RecvError, Receiver};

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
#[derive(Default)]
pub struct EventTap(Mutex<Window>);

/// A page of the tap: events after a cursor, the cursor to continue from, and how many events the
/// tap has missed since it started (a reader must not trust an absence when that grows).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub events: Vec<Value>,
    pub next: u64,
    pub missed: u64,
}

impl EventTap {
    /// Follows `rx` in the background.
    pub fn spawn(mut rx: Receiver<Delivery>) -> Arc<EventTap> {
        let tap = Arc::new(EventTap::default());
        let t = tap.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(d) => t.push(d),
                    Err(RecvError::Lagged(n)) => {
                        t.0.lock().unwrap_or_else(|e| e.into_inner()).missed += n;
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        tap
    }

    fn push(&self, d: Delivery) {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        w.next_seq += 1;
        let seq = w.next_seq;
        if w.events.len() == TAP_CAPACITY {
            w.events.pop_front();
        }
        w.events.push_back((seq, d));
    }

    /// Up to `limit` events with a sequence number above `after` whose tenant is one of `tenants`
    /// (all tenants when empty). `next` is the cursor for the following page; with `limit` 0 it is
    /// the head, the cursor a reader takes before it acts.
    pub fn page(&self, after: u64, tenants: &[String], limit: usize) -> Page {
        let w = self.0.lock().unwrap_or_else(|e| e.into_inner());
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
