//! The operator surface: off unless configured, guarded by its key, and fault injection only where
//! the deployment allows it. Provisioned tenants work through the ordinary API.

mod common;
use common::{start, start_with, Resp, Server};
use platform::config::Config;
use platform::store::Store;
use reqwest::Method;
use serde_json::json;

fn seed_body() -> String {
    json!({"name": "Initech", "plan": "free",
           "limits": {"requests_per_window": 100, "window_secs": 60, "monthly_requests": 2, "monthly_tokens": 1000},
           "users": [{"user_id": "peter", "email": "peter@initech.test", "password": "tps-report", "role": "user"}],
           "products": [{"sku": "STAPLER", "name": "Red stapler", "price_cents": 999, "stock": 1}]})
    .to_string()
}

/// A call to the operator surface, with `key` as `X-Operator-Key` (none when `None`).
async fn op(
    s: &Server,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<String>,
) -> Resp {
    let headers: Vec<(&str, &str)> = key.map(|k| vec![("x-operator-key", k)]).unwrap_or_default();
    s.send(method, path, None, &headers, body).await
}

const INITECH: &str = "/api/v1/operator/tenants/initech";
const FAULTS: &str = "/api/v1/operator/faults";

fn operator_cfg(faults: bool) -> Config {
    Config {
        operator_key: Some("op-secret".into()),
        fault_injection: faults,
        ..Config::default()
    }
}

#[tokio::test]
async fn the_surface_is_off_by_default_and_needs_its_key() {
    let s = start().await;
    let r = op(
        &s,
        Method::PUT,
        INITECH,
        Some("anything"),
        Some(seed_body()),
    )
    .await;
    assert_eq!(
        r.outcome(),
        (404, "NOT_FOUND"),
        "off when no key is configured"
    );

    let s = start_with(operator_cfg(false)).await;
    let r = op(&s, Method::PUT, INITECH, None, Some(seed_body())).await;
    assert_eq!(r.outcome(), (401, "AUTHENTICATION_REQUIRED"));
    let r = op(&s, Method::PUT, INITECH, Some("wrong"), Some(seed_body())).await;
    assert_eq!(r.outcome(), (401, "INVALID_API_KEY"));
    let key = Some("op-secret");
    let r = op(
        &s,
        Method::PUT,
        "/api/v1/operator/tenants/Bad Slug",
        key,
        Some(seed_body()),
    )
    .await;
    assert_eq!(r.outcome(), (400, "VALIDATION_ERROR"));
    let r = op(
        &s,
        Method::PUT,
        INITECH,
        key,
        Some(r#"{"name":"x","plan":"free","extra":1}"#.into()),
    )
    .await;
    assert_eq!(r.outcome(), (400, "VALIDATION_ERROR"), "{}", r.text);
    // A bad record anywhere refuses the whole data set, naming it, and writes nothing.
    for (bad, field) in [
        (
            json!({"products": [{"sku": "X", "name": "x", "price_cents": -1, "stock": 1}]}),
            "products[0].price_cents",
        ),
        (
            json!({"users": [{"user_id": "u", "email": "nope", "password": "p", "role": "user"}]}),
            "users[0].email",
        ),
        (
            json!({"orders": [{"order_id": "O-1", "user_id": "u", "status": "lost", "items": [{"sku": "X", "quantity": 1, "unit_price_cents": 1}], "payment_status": "captured"}]}),
            "orders[0].status",
        ),
        (
            json!({"leads": [{"lead_id": "L", "name": "n", "email": "l@x.test", "grade": "Z", "score": 1}]}),
            "leads[0].grade",
        ),
    ] {
        let mut body = json!({"name": "Initech", "plan": "free"});
        body.as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let r = op(&s, Method::PUT, INITECH, key, Some(body.to_string())).await;
        assert_eq!(r.outcome(), (400, "VALIDATION_ERROR"), "{}", r.text);
        assert_eq!(r.body["error"]["details"][0]["field"], field, "{}", r.text);
    }
    // No tenant was written: a token for it names a tenant that does not exist.
    let r = s
        .get("/api/v1/products", &s.token("initech", "u", "user"))
        .await;
    assert_eq!(r.outcome(), (401, "INVALID_TOKEN"), "{}", r.text);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
    // Fault injection is refused where the deployment does not allow it.
    let fault = json!({"tenant_id": "acme", "tool": "email.send", "fault": "always_fail"});
    let r = op(&s, Method::POST, FAULTS, key, Some(fault.to_string())).await;
    assert_eq!(r.outcome(), (403, "AUTHORIZATION_FAILED"));
}

#[tokio::test]
async fn a_provisioned_tenant_logs_in_orders_and_hits_its_contract_quota() {
    let s = start_with(operator_cfg(true)).await;
    let key = Some("op-secret");
    let r = op(&s, Method::PUT, INITECH, key, Some(seed_body())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["users"], 1);
    let r = s
        .send(Method::POST, "/api/v1/auth/login", None, &[],
              Some(json!({"tenant_id": "initech", "email": "peter@initech.test", "password": "tps-report"}).to_string()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_string();
    // A fault for initech only: acme's orders are untouched.
    let fault = json!({"tenant_id": "initech", "tool": "email.send", "fault": "always_fail"});
    let r = op(&s, Method::POST, FAULTS, key, Some(fault.to_string())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let order = json!({"items": [{"sku": "STAPLER", "quantity": 1}], "payment": {"method": "card", "card_token": "tok_visa"}});
    let r = s.post("/api/v1/orders", &token, order).await;
    assert_eq!(
        r.outcome(),
        (500, "WORKFLOW_EXECUTION_FAILED"),
        "{}",
        r.text
    );
    let bob = s.token("acme", "bob", "user");
    let r = s
        .post("/api/v1/orders", &bob, json!({"items": [{"sku": "SKU-WIDGET", "quantity": 1}], "payment": {"method": "card", "card_token": "tok_visa"}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Unknown tools and points are refused.
    let fault = json!({"tenant_id": "initech", "tool": "nope", "fault": "always_fail"});
    let r = op(&s, Method::POST, FAULTS, key, Some(fault.to_string())).await;
    assert_eq!(r.outcome(), (404, "NOT_FOUND"));
    let fault =
        json!({"tenant_id": "initech", "tool": "email.send", "point": "later", "fault": "none"});
    let r = op(&s, Method::POST, FAULTS, key, Some(fault.to_string())).await;
    assert_eq!(r.outcome(), (400, "VALIDATION_ERROR"));
    // The contract quota (2 requests a month), not the free plan's 1000, applies; the 429 carries
    // the rate-limit headers of API.md.
    // The failed order was not a success, so it is not metered: two reads use the quota up.
    for _ in 0..2 {
        assert_eq!(s.get("/api/v1/products", &token).await.status, 200);
    }
    common::eventually("two requests metered", || async {
        s.store
            .usage(
                &platform::domain::TenantId::parse("initech").unwrap(),
                &platform::metering::period_of(s.app.clock.now()),
            )
            .await
            .unwrap()
            .requests
            >= 2
    })
    .await;
    let r = s.get("/api/v1/products", &token).await;
    assert_eq!(r.outcome(), (429, "TENANT_QUOTA_EXCEEDED"), "{}", r.text);
    for h in [
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(!r.header(h).is_empty(), "{h} missing");
    }
    assert_eq!(r.header("x-ratelimit-limit"), "2");
}

#[tokio::test]
async fn the_event_window_pages_by_cursor_and_tenant() {
    let s = start_with(operator_cfg(false)).await;
    let key = Some("op-secret");
    let head = op(
        &s,
        Method::GET,
        "/api/v1/operator/events?limit=0",
        key,
        None,
    )
    .await;
    assert_eq!(head.status, 200, "{}", head.text);
    let cursor = head.body["next"].as_u64().unwrap();
    let bob = s.token("acme", "bob", "user");
    assert_eq!(s.chat(&bob, "hello").await.status, 200);
    let gus = s.token("globex", "gus", "user");
    assert_eq!(s.chat(&gus, "hello").await.status, 200);
    let path = format!("/api/v1/operator/events?tenant_id=acme&after={cursor}");
    let page = || async {
        let r = op(&s, Method::GET, &path, key, None).await;
        r.body["events"].as_array().cloned().unwrap_or_default()
    };
    common::eventually("acme's run completed in the window", || async {
        page()
            .await
            .iter()
            .any(|e| e["event_type"] == "workflow.completed")
    })
    .await;
    let seen = page().await;
    assert!(seen.iter().all(|e| e["tenant_id"] == "acme"), "{seen:?}");
    assert!(seen
        .windows(2)
        .all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64()));
    assert!(seen[0]["subject"].as_str().unwrap().starts_with("aiaas."));
    // Small pages continue where the last one stopped.
    let p1 = op(
        &s,
        Method::GET,
        &format!("/api/v1/operator/events?after={cursor}&limit=1"),
        key,
        None,
    )
    .await;
    let next = p1.body["next"].as_u64().unwrap();
    assert_eq!(p1.body["events"][0]["seq"].as_u64(), Some(next));
    // Bad input gets the envelope; no key is refused.
    let r = op(
        &s,
        Method::GET,
        "/api/v1/operator/events?after=soon",
        key,
        None,
    )
    .await;
    assert_eq!(r.outcome(), (400, "VALIDATION_ERROR"));
    let r = op(
        &s,
        Method::GET,
        "/api/v1/operator/events?limit=20000",
        key,
        None,
    )
    .await;
    assert_eq!(r.outcome(), (400, "VALIDATION_ERROR"));
    let r = op(&s, Method::GET, "/api/v1/operator/events", None, None).await;
    assert_eq!(r.outcome(), (401, "AUTHENTICATION_REQUIRED"));
}

#[tokio::test]
async fn an_api_key_issued_to_one_tenant_is_refused_for_another() {
    let s = start_with(operator_cfg(false)).await;
    let key = Some("op-secret");
    let with_key = |name: &str| {
        json!({"name": name, "plan": "free",
               "api_keys": [{"key": "ak_shared_0123456789abcdef", "label": "ops", "role": "admin"}]})
        .to_string()
    };
    let r = op(&s, Method::PUT, INITECH, key, Some(with_key("Initech"))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The same key for another tenant: 400 naming the field, and nothing of that tenant written.
    let other = "/api/v1/operator/tenants/initrode";
    let r = op(&s, Method::PUT, other, key, Some(with_key("Initrode"))).await;
    assert_eq!(r.outcome(), (400, "VALIDATION_ERROR"), "{}", r.text);
    assert!(r.text.contains("api_keys[0].key"), "{}", r.text);
    let initrode = platform::domain::TenantId::parse("initrode").unwrap();
    assert!(s.store.tenant(&initrode).await.unwrap().is_none());
    // The key still answers for its tenant.
    let r = s
        .send(
            Method::GET,
            "/api/v1/usage",
            None,
            &[("x-api-key", "ak_shared_0123456789abcdef")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["tenant_id"], "initech");
}

#[tokio::test]
async fn versions_and_the_tenant_record_say_what_answered_and_what_ran() {
    let s = start_with(operator_cfg(false)).await;
    let bob = s.token("acme", "bob", "user");
    // What answers the caller's tenant: reading it is not metered.
    let r = s.get("/api/v1/versions", &bob).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["workflows"]["faq"]["version"], "1.0.0");
    assert_eq!(r.body["workflows"]["faq"]["prompt_version"], "1");
    assert_eq!(r.body["models"]["SLM_A"], "scripted-slm_a");
    assert_eq!(
        r.body["tools"]["kb.search"].as_str().map(str::len),
        Some(12)
    );
    assert_eq!(r.body["router"].as_str().map(str::len), Some(12));
    // One metered read after it: once that one is counted, the count says whether the versions
    // read was (the projector applies events in order).
    assert_eq!(s.get("/api/v1/products", &bob).await.status, 200);
    let acme = platform::domain::TenantId::parse("acme").unwrap();
    let period = platform::metering::period_of(s.app.clock.now());
    common::eventually("the products read metered", || async {
        s.store.usage(&acme, &period).await.unwrap().requests >= 1
    })
    .await;
    assert_eq!(s.store.usage(&acme, &period).await.unwrap().requests, 1);
    let ran = s.chat(&bob, "How do I reset my password?").await;
    assert_eq!(ran.status, 200, "{}", ran.text);
    let run_id = ran.body["workflow"]["run_id"].as_str().unwrap().to_string();

    let path = format!("/api/v1/operator/tenants/acme/record?runs={run_id},not-a-run");
    // Guarded like the rest of the surface.
    assert_eq!(op(&s, Method::GET, &path, None, None).await.status, 401);
    assert_eq!(
        op(&s, Method::GET, &path, Some("wrong"), None).await.status,
        401
    );
    let r = op(&s, Method::GET, &path, Some("op-secret"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["runs"][0]["run_id"], run_id.as_str());
    assert_eq!(r.body["runs"][0]["workflow_id"], "customer_support");
    assert_eq!(r.body["missing"], json!(["not-a-run"]));
    assert_eq!(
        r.body["versions"]["workflows"]["faq"]["prompt_version"],
        "1"
    );
    assert!(r.body["audit"].is_array());
    // Another tenant's run is not in this tenant's record.
    let r = op(
        &s,
        Method::GET,
        &format!("/api/v1/operator/tenants/globex/record?runs={run_id}"),
        Some("op-secret"),
        None,
    )
    .await;
    assert_eq!(r.body["runs"], json!([]));
    assert_eq!(r.body["missing"], json!([run_id]));
    let r = op(
        &s,
        Method::GET,
        "/api/v1/operator/tenants/nobody/record",
        Some("op-secret"),
        None,
    )
    .await;
    assert_eq!(r.outcome(), (404, "NOT_FOUND"));
    // Off entirely without an operator key.
    let plain = start().await;
    assert_eq!(
        op(&plain, Method::GET, &path, Some("op-secret"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_production_deployment_refuses_to_start_with_fault_injection() {
    let cfg = Config {
        production: true,
        ..operator_cfg(true)
    };
    let backends = platform::app::Backends::embedded(&cfg);
    let refused = platform::app::App::start(cfg, backends).await.err();
    assert!(
        refused.as_ref().is_some_and(|e| e
            .to_string()
            .contains("fault injection cannot be switched on")),
        "{:?}",
        refused.map(|e| e.to_string())
    );
    // Without fault injection, a production deployment starts.
    let cfg = Config {
        production: true,
        ..operator_cfg(false)
    };
    let backends = platform::app::Backends::embedded(&cfg);
    assert!(platform::app::App::start(cfg, backends).await.is_ok());
}

#[tokio::test]
async fn a_production_deployment_refuses_to_start_with_fetch_sinks_or_the_address_check_off() {
    let mut cfg = Config {
        production: true,
        ..operator_cfg(false)
    };
    cfg.http_fetch
        .sinks
        .insert("evil.attacker.test".into(), "127.0.0.1:9".parse().unwrap());
    let backends = platform::app::Backends::embedded(&cfg);
    let refused = platform::app::App::start(cfg, backends).await.err();
    assert!(
        refused
            .as_ref()
            .is_some_and(|e| e.to_string().contains("http_fetch.sinks")),
        "{:?}",
        refused.map(|e| e.to_string())
    );
    let mut cfg = Config {
        production: true,
        ..operator_cfg(false)
    };
    cfg.http_fetch.check_addresses = false;
    let backends = platform::app::Backends::embedded(&cfg);
    let refused = platform::app::App::start(cfg, backends).await.err();
    assert!(
        refused
            .as_ref()
            .is_some_and(|e| e.to_string().contains("check_addresses")),
        "{:?}",
        refused.map(|e| e.to_string())
    );
}

#[tokio::test]
async fn a_tenant_allow_list_keeps_other_tools_from_running() {
    let s = start_with(operator_cfg(false)).await;
    let mut body: serde_json::Value = serde_json::from_str(&seed_body()).unwrap();
    body["limits"]["monthly_requests"] = json!(100);
    body["products"][0]["stock"] = json!(5);
    // Everything the order saga needs except sending the confirmation.
    let provision = |b: &serde_json::Value| {
        op(
            &s,
            Method::PUT,
            INITECH,
            Some("op-secret"),
            Some(b.to_string()),
        )
    };
    body["allowed_tools"] = json!([
        "inventory.price",
        "inventory.reserve",
        "payment.authorize",
        "order.create",
        "payment.capture"
    ]);
    let r = provision(&body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let peter = s.token("initech", "peter", "user");
    let order = json!({"items": [{"sku": "STAPLER", "quantity": 1}],
                       "payment": {"method": "card", "card_token": "tok_visa"}});
    let r = s.post("/api/v1/orders", &peter, order).await;
    assert_eq!(r.outcome(), (403, "TOOL_NOT_ALLOWED"), "{}", r.text);
    let run = s.run(&peter, &r.run_id()).await;
    assert_eq!(run["status"], "compensated", "{run}");
    assert_eq!(run["failure"]["step_id"], "send_confirmation");
    // Refused means never called: no email was queued, and the stock is back.
    assert!(!s
        .events_of(&r.run_id())
        .iter()
        .any(|(t, d)| t == "tool.call.succeeded" && d["tool"] == "email.send"));
    assert_eq!(s.stock(&peter, "STAPLER").await, 5);

    // An allow-list naming a tool that does not exist is refused at provisioning.
    body["allowed_tools"] = json!(["email.send", "rm.rf"]);
    let r = provision(&body).await;
    assert_eq!(r.outcome(), (400, "VALIDATION_ERROR"), "{}", r.text);
    assert!(r.text.contains("allowed_tools[1]"), "{}", r.text);
}
