//! The contract every `Store` backend must pass: one body per property, run for each backend (the
//! memory backend here; the Postgres backend adds its own `#[tokio::test]` wrappers).

use super::model::*;
use super::{Store, StoreError};
use crate::domain::{Level, Role, TenantId};
use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("fixture tenant")
}

/// A one-line processing order of `t` (shared by the contract and the SQL-level RLS tests).
pub fn order(t: &str, id: &str) -> Order {
    Order {
        tenant: tenant(t),
        order_id: id.into(),
        user_id: "bob".into(),
        status: "processing".into(),
        items: vec![],
        total_cents: 100,
        payment_id: None,
        payment_status: "authorized".into(),
        tracking_number: None,
        shipping_address: None,
        refund_cents: None,
        created_at: Utc.timestamp_opt(0, 0).single().unwrap_or_default(),
    }
}

/// An order written for one tenant cannot be read as another's.
pub async fn orders_stay_in_their_tenant(store: &dyn Store) {
    store.put_order(&order("acme", "ORD-1")).await.unwrap();
    assert!(store
        .order(&tenant("acme"), "ORD-1")
        .await
        .unwrap()
        .is_some());
    assert!(store
        .order(&tenant("globex"), "ORD-1")
        .await
        .unwrap()
        .is_none());
}

/// Stock never goes negative, and a refused adjustment changes nothing.
pub async fn stock_never_goes_negative(store: &dyn Store) {
    let p = Product {
        tenant: tenant("acme"),
        sku: "SKU-1".into(),
        name: "one".into(),
        price_cents: 100,
        stock: 2,
    };
    store.put_product(&p).await.unwrap();
    assert_eq!(store.adjust_stock(&p.tenant, "SKU-1", -2).await.unwrap(), 0);
    let err = store
        .adjust_stock(&p.tenant, "SKU-1", -1)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::InsufficientStock { available: 0, .. }
    ));
    assert_eq!(
        store
            .product(&p.tenant, "SKU-1")
            .await
            .unwrap()
            .unwrap()
            .stock,
        0
    );
    assert!(matches!(
        store.adjust_stock(&tenant("globex"), "SKU-1", 1).await,
        Err(StoreError::NotFound(_))
    ));
}

/// The permission filter of `visible_documents`: levels per role, role lists, expiry, tenant.
pub async fn documents_are_filtered_in_the_query(store: &dyn Store) {
    let now = Utc.timestamp_opt(1_000_000, 0).single().unwrap_or_default();
    let levels = [
        Level::Public,
        Level::Internal,
        Level::Confidential,
        Level::Restricted,
    ];
    for (n, level) in levels.into_iter().enumerate() {
        store
            .put_document(&Document {
                tenant: tenant("acme"),
                document_id: Uuid::from_u128(n as u128 + 1),
                title: format!("doc {n}"),
                content: "text".into(),
                level,
                roles: None,
                expires_at: None,
                version: 1,
                index: None,
            })
            .await
            .unwrap();
    }
    let admin_only_public = Document {
        tenant: tenant("acme"),
        document_id: Uuid::from_u128(10),
        title: "admins".into(),
        content: "text".into(),
        level: Level::Public,
        roles: Some(vec![Role::Admin]),
        expires_at: None,
        version: 1,
        index: None,
    };
    store.put_document(&admin_only_public).await.unwrap();
    let expired = Document {
        document_id: Uuid::from_u128(11),
        roles: None,
        expires_at: Some(now - Duration::seconds(1)),
        ..admin_only_public.clone()
    };
    store.put_document(&expired).await.unwrap();
    let count = |role| async move {
        store
            .visible_documents(&tenant("acme"), role, now)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(count(Role::Admin).await, 5);
    assert_eq!(count(Role::User).await, 2);
    assert_eq!(count(Role::Guest).await, 1);
    assert!(store
        .visible_documents(&tenant("globex"), Role::Admin, now)
        .await
        .unwrap()
        .is_empty());
    // The administrator's listing holds every document of the tenant, the expired one too, by id,
    // and nothing of another tenant.
    let all = store.documents(&tenant("acme")).await.unwrap();
    let ids: Vec<u128> = all.iter().map(|d| d.document_id.as_u128()).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 10, 11]);
    assert!(store.documents(&tenant("globex")).await.unwrap().is_empty());
    // The store's filter and `Document::access` (which explains it) give the same answers.
    for role in [Role::Admin, Role::User, Role::Guest] {
        let visible: Vec<Uuid> = store
            .visible_documents(&tenant("acme"), role, now)
            .await
            .unwrap()
            .iter()
            .map(|d| d.document_id)
            .collect();
        let by_rule: Vec<Uuid> = all
            .iter()
            .filter(|d| d.access(role, now).0)
            .map(|d| d.document_id)
            .collect();
        assert_eq!(visible.len(), by_rule.len(), "{role:?}");
        assert!(by_rule.iter().all(|id| visible.contains(id)), "{role:?}");
    }
    let reason = |id: u128, role| {
        all.iter()
            .find(|d| d.document_id.as_u128() == id)
            .unwrap()
            .access(role, now)
            .1
    };
    assert_eq!(reason(4, Role::User), "insufficient_level");
    assert_eq!(reason(10, Role::User), "insufficient_roles");
    assert_eq!(reason(11, Role::Admin), "expired");
    assert_eq!(reason(10, Role::Admin), "access_granted");
    // Fields added to the body later read back as written (the body is the row's JSON).
    let mut v2 = all[0].clone();
    v2.version = 2;
    store.put_document(&v2).await.unwrap();
    let back = store
        .document(&tenant("acme"), v2.document_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.version, 2);
}

/// Usage counters add up per tenant and month, once per event.
pub async fn usage_adds_up_per_tenant(store: &dyn Store) {
    let d = Usage {
        requests: 1,
        tokens: 10,
        tool_calls: 2,
        cost_usd: 0.5,
    };
    let (first, second) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let acme = tenant("acme");
    assert!(store.add_usage(&acme, "2026-01", first, &d).await.unwrap());
    assert!(store.add_usage(&acme, "2026-01", second, &d).await.unwrap());
    // A redelivered event counts once.
    assert!(!store.add_usage(&acme, "2026-01", first, &d).await.unwrap());
    // Another month has its own counters.
    let third = Uuid::from_u128(3);
    assert!(store.add_usage(&acme, "2026-02", third, &d).await.unwrap());
    assert_eq!(store.usage(&acme, "2026-02").await.unwrap().requests, 1);
    assert_eq!(
        store.usage(&acme, "2026-03").await.unwrap(),
        Usage::default()
    );
    let u = store.usage(&acme, "2026-01").await.unwrap();
    assert_eq!((u.requests, u.tokens, u.tool_calls), (2, 20, 4));
    assert!((u.cost_usd - 1.0).abs() < 1e-9);
    assert_eq!(
        store.usage(&tenant("globex"), "2026-01").await.unwrap(),
        Usage::default()
    );
}

/// The outbox is a queue: messages come back in the order they were first queued, and a status
/// change (cancellation) updates a message in place.
pub async fn the_outbox_keeps_queue_order(store: &dyn Store) {
    let msg = |id: &str, status: &str| outbox_message("acme", id, status);
    // Ids chosen so that sorting by id would give another order.
    for id in ["MSG-c", "MSG-a", "MSG-b"] {
        store.put_outbox(&msg(id, "sent")).await.unwrap();
    }
    store.put_outbox(&msg("MSG-a", "cancelled")).await.unwrap();
    let got: Vec<(String, String)> = store
        .outbox(&tenant("acme"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.message_id, m.status.as_str().to_string()))
        .collect();
    let want = [("MSG-c", "sent"), ("MSG-a", "cancelled"), ("MSG-b", "sent")];
    assert_eq!(
        got,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    assert!(store.outbox(&tenant("globex")).await.unwrap().is_empty());
}

fn outbox_message(t: &str, id: &str, status: &str) -> OutboxMessage {
    OutboxMessage {
        tenant: tenant(t),
        message_id: id.into(),
        kind: "email".into(),
        to: "customer:bob".into(),
        subject: id.into(),
        body: String::new(),
        status: serde_json::from_value(serde_json::json!(status)).unwrap(),
        attempts: 0,
        last_error: None,
        claimed_at: None,
        sent_at: None,
    }
}

/// The delivery queue holds every open message of every tenant, oldest first, and nothing else; a
/// transition happens only from the states it names, so of a delivery and a cancellation racing
/// for one message exactly one wins.
pub async fn the_delivery_queue_and_its_transitions(store: &dyn Store) {
    use DeliveryStatus::*;
    store
        .put_outbox(&outbox_message("globex", "MSG-2", "pending"))
        .await
        .unwrap();
    store
        .put_outbox(&outbox_message("acme", "MSG-1", "pending"))
        .await
        .unwrap();
    store
        .put_outbox(&outbox_message("acme", "MSG-0", "sent"))
        .await
        .unwrap();
    let queue = |q: Vec<(TenantId, String)>| -> Vec<(String, String)> {
        q.into_iter()
            .map(|(t, id)| (t.as_str().to_string(), id))
            .collect()
    };
    let ids = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        queue(store.pending_outbox(10).await.unwrap()),
        ids(&[("globex", "MSG-2"), ("acme", "MSG-1")])
    );
    assert_eq!(store.pending_outbox(1).await.unwrap().len(), 1);
    let sending = outbox_message("acme", "MSG-1", "sending");
    assert!(store.transition_outbox(&sending, &[Pending]).await.unwrap());
    assert!(
        !store.transition_outbox(&sending, &[Pending]).await.unwrap(),
        "a second claim of the same message must lose"
    );
    // Still queued while sending (a dispatcher that dies leaves it for another).
    assert_eq!(store.pending_outbox(10).await.unwrap().len(), 2);
    let cancelled = outbox_message("acme", "MSG-1", "cancelled");
    assert!(!store
        .transition_outbox(&cancelled, &[Pending, Failed])
        .await
        .unwrap());
    let sent = outbox_message("acme", "MSG-1", "sent");
    assert!(store.transition_outbox(&sent, &[Sending]).await.unwrap());
    assert_eq!(
        queue(store.pending_outbox(10).await.unwrap()),
        ids(&[("globex", "MSG-2")])
    );
    let got = store.outbox(&tenant("acme")).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.status).collect::<Vec<_>>(),
        [Sent, Sent]
    );
    let unknown = outbox_message("acme", "MSG-9", "sent");
    assert!(!store.transition_outbox(&unknown, &[Pending]).await.unwrap());
}

/// An API key belongs to one tenant: issuing the same key to another is a conflict and the key
/// keeps answering for its tenant; re-storing it for the same tenant (a new label) is fine.
/// Of two workers claiming the same abandoned run, exactly one wins; a claim on a lease that has
/// moved on fails.
pub async fn an_abandoned_run_is_claimed_once(store: &dyn Store) {
    let t = TenantId::parse("acme").unwrap();
    let at =
        |s: i64| chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000 + s, 0).unwrap();
    let checkpoint = |owner: &str, lease: i64| Checkpoint {
        owner: owner.into(),
        lease_until: at(lease),
        request: serde_json::json!({}),
        ctx: serde_json::json!({"input": {}}),
        frames: vec![],
        visits: Default::default(),
        compensable: vec![],
        tier_used: None,
        compensating: None,
    };
    let mut run = Run {
        checkpoint: Some(checkpoint("dead", 10)),
        ..Run::started(t.clone(), Uuid::from_u128(77), "create_order", at(0))
    };
    store.put_run(&run).await.unwrap();
    let mut by = |who: &str| {
        run.checkpoint = Some(checkpoint(who, 100));
        run.clone()
    };
    let (a, b) = (by("worker-a"), by("worker-b"));
    assert!(store.claim_run(&a, "dead", at(10)).await.unwrap());
    assert!(
        !store.claim_run(&b, "dead", at(10)).await.unwrap(),
        "the lease moved on"
    );
    let held = store.run(&t, Uuid::from_u128(77)).await.unwrap().unwrap();
    assert_eq!(
        held.checkpoint.map(|c| c.owner).as_deref(),
        Some("worker-a")
    );
    assert_eq!(store.unfinished_runs(&t).await.unwrap().len(), 1);
}

pub async fn an_api_key_belongs_to_one_tenant(store: &dyn Store) {
    let key = |t: &str, label: &str| ApiKey {
        key_hash: "hash-of-k".into(),
        tenant: tenant(t),
        label: label.into(),
        role: Role::Admin,
    };
    store.put_api_key(&key("acme", "ops")).await.unwrap();
    assert!(matches!(
        store.put_api_key(&key("globex", "ops")).await,
        Err(StoreError::Conflict(_))
    ));
    store.put_api_key(&key("acme", "renamed")).await.unwrap();
    let k = store.api_key_by_hash("hash-of-k").await.unwrap().unwrap();
    assert_eq!((k.tenant.as_str(), k.label.as_str()), ("acme", "renamed"));
}

#[cfg(test)]
mod memory_backend {
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn orders_stay_in_their_tenant() {
        super::orders_stay_in_their_tenant(&MemoryStore::default()).await;
    }
    #[tokio::test]
    async fn stock_never_goes_negative() {
        super::stock_never_goes_negative(&MemoryStore::default()).await;
    }
    #[tokio::test]
    async fn documents_are_filtered_in_the_query() {
        super::documents_are_filtered_in_the_query(&MemoryStore::default()).await;
    }
    #[tokio::test]
    async fn the_outbox_keeps_queue_order() {
        super::the_outbox_keeps_queue_order(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_delivery_queue_and_its_transitions() {
        super::the_delivery_queue_and_its_transitions(&MemoryStore::default()).await;
    }
    #[tokio::test]
    async fn an_api_key_belongs_to_one_tenant() {
        super::an_api_key_belongs_to_one_tenant(&MemoryStore::default()).await;
    }
    #[tokio::test]
    async fn an_abandoned_run_is_claimed_once() {
        super::an_abandoned_run_is_claimed_once(&MemoryStore::default()).await;
    }
    #[tokio::test]
    async fn usage_adds_up_per_tenant() {
        super::usage_adds_up_per_tenant(&MemoryStore::default()).await;
    }
}
