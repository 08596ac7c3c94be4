//! Retrieval permissions through the API: per-role levels, per-document role lists, tenant
//! isolation, expiry, and permission changes that take effect on the next query.

mod common;

use common::{start, Server};
use serde_json::json;

async fn ingest(
    s: &Server,
    admin: &str,
    title: &str,
    level: &str,
    extra: serde_json::Value,
) -> String {
    let mut body = json!({"title": title, "content": format!("{title}: the zebracorn procedure for {level} readers."), "level": level});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = s.post("/api/v1/rag/documents", admin, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["document_id"].as_str().unwrap().to_string()
}

async fn patch(s: &Server, token: &str, id: &str, body: serde_json::Value) -> common::Resp {
    s.send(
        reqwest::Method::PATCH,
        &format!("/api/v1/rag/documents/{id}"),
        Some(token),
        &[],
        Some(body.to_string()),
    )
    .await
}

async fn count(s: &Server, token: &str) -> usize {
    let r = s
        .post(
            "/api/v1/rag/query",
            token,
            json!({"question": "zebracorn", "top_k": 20}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["sources"].as_array().unwrap().len()
}

#[tokio::test]
async fn each_role_sees_its_levels_and_the_other_tenant_sees_nothing() {
    let s = start().await;
    let alice = s.token("acme", "alice", "admin");
    for level in ["public", "internal", "confidential", "restricted"] {
        ingest(&s, &alice, &format!("Doc {level}"), level, json!({})).await;
    }
    assert_eq!(count(&s, &alice).await, 4);
    assert_eq!(count(&s, &s.token("acme", "bob", "user")).await, 2);
    assert_eq!(count(&s, &s.token("acme", "gina", "guest")).await, 1);
    assert_eq!(count(&s, &s.token("globex", "gus", "admin")).await, 0);
    let r = s
        .post(
            "/api/v1/rag/query",
            &s.token("acme", "eve", "root"),
            json!({"question": "zebracorn"}),
        )
        .await;
    assert_eq!(r.outcome(), (400, "INVALID_ROLE"));
    // The user's answer cites only what the user may read.
    let r = s
        .post(
            "/api/v1/rag/query",
            &s.token("acme", "bob", "user"),
            json!({"question": "zebracorn"}),
        )
        .await;
    let levels: Vec<_> = r.body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["level"].as_str().unwrap())
        .collect();
    assert!(
        levels.iter().all(|l| ["public", "internal"].contains(l)),
        "{levels:?}"
    );
    assert!(!r.body["answer"]
        .as_str()
        .unwrap()
        .contains("confidential readers"));
}

#[tokio::test]
async fn a_permission_change_takes_effect_on_the_next_query() {
    let s = start().await;
    let alice = s.token("acme", "alice", "admin");
    let bob = s.token("acme", "bob", "user");
    let id = ingest(&s, &alice, "Roadmap", "confidential", json!({})).await;
    assert_eq!(count(&s, &bob).await, 0);
    let r = patch(&s, &alice, &id, json!({"level": "internal"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(count(&s, &bob).await, 1);
    // A role list narrows further: internal, but admins only.
    let r = patch(&s, &alice, &id, json!({"roles": ["admin"]})).await;
    assert_eq!(r.body["roles"], json!(["admin"]));
    assert_eq!(count(&s, &bob).await, 0);
    assert_eq!(count(&s, &alice).await, 1);
    // Another tenant's admin cannot change it, and does not learn it exists.
    let r = patch(
        &s,
        &s.token("globex", "gus", "admin"),
        &id,
        json!({"level": "public"}),
    )
    .await;
    assert_eq!(r.outcome(), (404, "NOT_FOUND"));
    let r = patch(&s, &alice, &id, json!({})).await;
    assert_eq!(r.code(), "VALIDATION_ERROR");
}

#[tokio::test]
async fn documents_expire_after_their_ttl() {
    let s = start().await;
    let alice = s.token("acme", "alice", "admin");
    ingest(
        &s,
        &alice,
        "Flash sale",
        "public",
        json!({"ttl_seconds": 60}),
    )
    .await;
    assert_eq!(count(&s, &alice).await, 1);
    s.clock.advance(chrono::Duration::seconds(61));
    let alice = s.token("acme", "alice", "admin");
    assert_eq!(count(&s, &alice).await, 0);
}

#[tokio::test]
async fn ingestion_publishes_events_and_rejects_bad_documents() {
    let s = start().await;
    let alice = s.token("acme", "alice", "admin");
    ingest(&s, &alice, "Warranty", "public", json!({})).await;
    assert!(s
        .bus
        .published()
        .iter()
        .any(|d| d.subject == "aiaas.rag.document.ingested"));
    for (body, field) in [
        (
            json!({"title": "", "content": "c", "level": "public"}),
            "title",
        ),
        (
            json!({"title": "t", "content": "c", "level": "secret"}),
            "level",
        ),
        (
            json!({"title": "t", "content": "c", "level": "public", "roles": ["king"]}),
            "roles[0]",
        ),
        (
            json!({"title": "t", "content": "c", "level": "public", "ttl_seconds": 0}),
            "ttl_seconds",
        ),
    ] {
        let r = s.post("/api/v1/rag/documents", &alice, body).await;
        assert_eq!(
            r.outcome(),
            (400, "VALIDATION_ERROR"),
            "{field}: {}",
            r.text
        );
        assert_eq!(r.body["error"]["details"][0]["field"], field);
    }
    let r = s
        .post(
            "/api/v1/rag/query",
            &alice,
            json!({"question": "warranty", "top_k": 0}),
        )
        .await;
    assert_eq!(r.body["error"]["details"][0]["field"], "top_k");
}
