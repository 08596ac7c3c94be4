//! The create_order saga: when any step fails, the completed steps are compensated in reverse order
//! and their effects are undone; when a compensation fails too, the run ends `compensation_failed`
//! and is dead-lettered for manual intervention. Faults come from the embedded tools' fault hooks.

mod common;

use common::start;
use platform::tools::{Fault, FaultPoint};
use serde_json::{json, Value};

const STEPS: [(&str, &str); 5] = [
    ("reserve_inventory", "inventory.reserve"),
    ("authorize_payment", "payment.authorize"),
    ("create_order", "order.create"),
    ("capture_payment", "payment.capture"),
    ("send_confirmation", "email.send"),
];

fn order_body() -> Value {
    json!({"items": [{"sku": "SKU-WIDGET", "quantity": 3}], "payment": {"method": "card", "card_token": "tok_visa"}})
}

#[tokio::test]
async fn each_failing_step_compensates_the_completed_ones_in_reverse() {
    for (n, (failing_step, failing_tool)) in STEPS.iter().enumerate() {
        let s = start().await;
        let bob = s.token("acme", "bob", "user");
        let stock = s.stock(&bob, "SKU-WIDGET").await;
        s.app.tools.set_fault(
            None,
            failing_tool,
            FaultPoint::Call,
            Some(Fault::transient(None)),
        );
        let r = s.post("/api/v1/orders", &bob, order_body()).await;
        assert_eq!(
            r.outcome(),
            (500, "WORKFLOW_EXECUTION_FAILED"),
            "{failing_step}: {}",
            r.text
        );
        let run_id = r.run_id();
        let run = s.run(&bob, &run_id).await;
        // Nothing to undo when the first effect fails: the run simply failed.
        let status = if n == 0 { "failed" } else { "compensated" };
        assert_eq!(
            run["status"], status,
            "{failing_step}: {}",
            run["compensation"]
        );
        let expected: Vec<String> = STEPS[..n]
            .iter()
            .rev()
            .map(|(id, _)| format!("compensate:{id}"))
            .collect();
        let got: Vec<String> = run["compensation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["step_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, expected, "failing at {failing_step}");
        assert!(run["compensation"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "completed"));
        // The failed step was tried 3 times (2 retries) and recorded as failed.
        let failed = run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["status"] == "failed")
            .unwrap();
        assert_eq!(failed["step_id"], *failing_step);
        assert_eq!(run["failure"]["step_id"], *failing_step);
        assert!(
            run["failure"]["reason"]
                .as_str()
                .unwrap()
                .contains("injected fault"),
            "{}",
            run["failure"]
        );
        // Effects are undone: stock is back, and the events say what was compensated.
        assert_eq!(
            s.stock(&bob, "SKU-WIDGET").await,
            stock,
            "stock restored after failing at {failing_step}"
        );
        let events = s.events_of(&run_id);
        let compensated = events
            .iter()
            .filter(|(k, _)| k == "tool.call.compensated")
            .count();
        assert_eq!(compensated, n);
        assert_eq!(
            events
                .iter()
                .filter(|(k, _)| k == "tool.call.failed")
                .count(),
            1
        );
        assert!(events
            .iter()
            .any(|(k, _)| *k == format!("workflow.{status}")));
        let compensation_of = |tool: &str| {
            events
                .iter()
                .find(|(k, d)| k == "tool.call.compensated" && d["tool"] == tool)
                .map(|(_, d)| d["output"].clone())
        };
        if n >= 2 {
            // Before capture the authorization is voided; after it, the capture is refunded and the
            // authorization's compensation finds nothing left to void.
            let expected = if n >= 4 { "refunded" } else { "voided" };
            assert_eq!(
                compensation_of("payment.authorize").unwrap()["status"],
                expected
            );
        }
        if n >= 4 {
            assert_eq!(
                compensation_of("payment.capture").unwrap()["status"],
                "refunded"
            );
        }
        if n >= 3 {
            let cancel = events
                .iter()
                .find(|(k, d)| k == "tool.call.compensated" && d["tool"] == "order.create")
                .unwrap();
            let order_id = cancel.1["output"]["order_id"].as_str().unwrap();
            let order = s.get(&format!("/api/v1/orders/{order_id}"), &bob).await;
            assert_eq!(order.body["status"], "cancelled");
            let paid = if n >= 4 { "refunded" } else { "voided" };
            assert_eq!(
                order.body["payment_status"], paid,
                "failing at {failing_step}"
            );
        }
    }
}

#[tokio::test]
async fn a_declined_card_is_a_400_after_the_reservation_is_returned() {
    let s = start().await;
    let bob = s.token("acme", "bob", "user");
    let stock = s.stock(&bob, "SKU-WIDGET").await;
    let r = s.post("/api/v1/orders", &bob, json!({"items": [{"sku": "SKU-WIDGET", "quantity": 1}], "payment": {"method": "card", "card_token": "tok_declined"}})).await;
    assert_eq!(r.outcome(), (400, "VALIDATION_ERROR"), "{}", r.text);
    assert_eq!(r.body["error"]["details"][0]["field"], "payment.card_token");
    assert_eq!(s.stock(&bob, "SKU-WIDGET").await, stock);
}

#[tokio::test]
async fn unknown_sku_and_missing_stock_fail_before_any_effect() {
    let s = start().await;
    let bob = s.token("acme", "bob", "user");
    let r = s
        .post(
            "/api/v1/orders",
            &bob,
            json!({"items": [{"sku": "SKU-NOPE", "quantity": 1}], "payment": {"method": "card"}}),
        )
        .await;
    assert_eq!(r.outcome(), (400, "VALIDATION_ERROR"));
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown product SKU-NOPE"));
    let r = s.post("/api/v1/orders", &bob, json!({"items": [{"sku": "SKU-PRO-SUITE", "quantity": 6}], "payment": {"method": "card"}})).await;
    assert_eq!(r.outcome(), (400, "VALIDATION_ERROR"));
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("insufficient stock"));
    assert_eq!(s.stock(&bob, "SKU-PRO-SUITE").await, 5);
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_the_order_completes_once() {
    let s = start().await;
    let bob = s.token("acme", "bob", "user");
    s.app.tools.set_fault(
        None,
        "payment.authorize",
        FaultPoint::Call,
        Some(Fault::transient(Some(2))),
    );
    let r = s.post("/api/v1/orders", &bob, order_body()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let events = s.events_of(r.body["run_id"].as_str().unwrap());
    let auth = events
        .iter()
        .find(|(k, d)| k == "tool.call.succeeded" && d["tool"] == "payment.authorize")
        .unwrap();
    assert_eq!(auth.1["attempts"], 3);
}

#[tokio::test]
async fn a_failing_compensation_ends_compensation_failed_and_is_dead_lettered() {
    let s = start().await;
    let bob = s.token("acme", "bob", "user");
    s.app.tools.set_fault(
        None,
        "order.create",
        FaultPoint::Call,
        Some(Fault::transient(None)),
    );
    s.app.tools.set_fault(
        None,
        "payment.authorize",
        FaultPoint::Compensate,
        Some(Fault::transient(None)),
    );
    let r = s.post("/api/v1/orders", &bob, order_body()).await;
    assert_eq!(r.code(), "WORKFLOW_EXECUTION_FAILED");
    let run_id = r.run_id();
    let run = s.run(&bob, &run_id).await;
    assert_eq!(run["status"], "compensation_failed");
    // The later compensation still ran after the earlier one failed: stock is back.
    let comp: Vec<_> = run["compensation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["step_id"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        comp,
        [
            ("compensate:authorize_payment", "failed"),
            ("compensate:reserve_inventory", "completed")
        ]
    );
    assert!(run["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().contains("manual intervention required")));
    let dlq = s
        .events_of(&run_id)
        .into_iter()
        .find(|(k, _)| k == "dlq.workflow.compensated")
        .expect("dead-lettered");
    assert_eq!(dlq.1["manual_intervention"], true);
    assert_eq!(dlq.1["original_subject"], "aiaas.workflow.compensated");
}

#[tokio::test]
async fn compensation_can_be_switched_off_per_execution() {
    let s = start().await;
    let bob = s.token("acme", "bob", "user");
    s.app.tools.set_fault(
        None,
        "email.send",
        FaultPoint::Call,
        Some(Fault::transient(None)),
    );
    let r = s.post("/api/v1/workflows/execute", &bob, json!({"workflow_id": "create_order",
        "parameters": {"items": [{"sku": "SKU-WIDGET", "quantity": 1}], "payment": {"method": "card"}},
        "options": {"compensation_enabled": false}})).await;
    assert_eq!(r.code(), "WORKFLOW_EXECUTION_FAILED", "{}", r.text);
    let with = s.post("/api/v1/workflows/execute", &bob, json!({"workflow_id": "create_order",
        "parameters": {"items": [{"sku": "SKU-WIDGET", "quantity": 1}], "payment": {"method": "card"}}})).await;
    assert_eq!(with.status, 200, "{}", with.text);
    assert_eq!(with.body["execution"]["status"], "compensated");
    assert_eq!(with.body["failure"]["step_id"], "send_confirmation");
    let actions: Vec<_> = with.body["compensation_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tool"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "payment.refund",
            "order.cancel",
            "payment.void",
            "inventory.restock"
        ]
    );
}

/// A second worker over the same backends (the first one's store, bus and clock; a fresh Kv), as
/// a restarted process would be.
async fn second_worker(s: &common::Server) -> platform::app::AppState {
    use platform::app::{App, Backends};
    let backends = Backends {
        store: s.store.clone(),
        bus: s.bus.clone(),
        kv: std::sync::Arc::new(platform::kv::memory::MemoryKv::default()),
        llm: std::sync::Arc::new(platform::llm::scripted::ScriptedLlm::new(s.app.cfg.seed)),
        clock: s.clock.clone(),
    };
    let mut cfg = (*s.app.cfg).clone();
    cfg.saga.sweep_ms = 0;
    App::start(cfg, backends)
        .await
        .expect("the second worker starts")
}

/// Starts an order whose capture hangs and returns its run id once the run is checkpointed at
/// the capture; then halts the worker, as a crash would.
async fn order_stuck_at_capture_then_crash(s: &common::Server) -> String {
    let bob = s.token("acme", "bob", "user");
    s.app
        .tools
        .set_fault(None, "payment.capture", FaultPoint::Call, Some(Fault::Hang));
    let (http, base) = (s.http.clone(), s.base.clone());
    tokio::spawn(async move {
        let _ = http
            .post(format!("{base}/api/v1/orders"))
            .bearer_auth(bob)
            .json(&order_body())
            .send()
            .await;
    });
    let capture_requested = || {
        s.events_of_type("tool.call.requested")
            .into_iter()
            .find(|(_, d)| d["tool"] == "payment.capture")
            .map(|(r, _)| r)
    };
    common::eventually("the run is checkpointed at the capture", || {
        let found = capture_requested().is_some();
        async move { found }
    })
    .await;
    s.app.halt();
    capture_requested().unwrap_or_default()
}

#[tokio::test]
async fn a_worker_leaves_a_held_saga_alone_and_resumes_it_once_its_lease_lapses() {
    let s = start().await;
    let run_id = order_stuck_at_capture_then_crash(&s).await;
    let tenant = platform::domain::TenantId::parse("acme").unwrap();
    let id = uuid::Uuid::parse_str(&run_id).unwrap();
    let b = second_worker(&s).await;
    assert_eq!(b.engine.recover().await, 0, "the lease still holds");
    let held = s.store_run(&tenant, id).await;
    assert_eq!(held.status, "running");
    let cp = held.checkpoint.expect("a running saga has a checkpoint");
    assert_eq!(
        cp.frames.last().map(|f| f.node.as_str()),
        Some("capture_payment")
    );
    platform::clock::Clock::advance_by(
        s.clock.as_ref(),
        chrono::Duration::milliseconds(s.app.cfg.saga.lease_ms as i64 + 1),
    );
    assert_eq!(b.engine.recover().await, 1);
    common::eventually("the resumed run completes", || async {
        s.store_run(&tenant, id).await.status == "completed"
    })
    .await;
    let run = s.store_run(&tenant, id).await;
    assert!(
        run.checkpoint.is_none(),
        "a finished run keeps no checkpoint"
    );
    let ids: Vec<&str> = run.steps.iter().map(|s| s.step_id.as_str()).collect();
    assert_eq!(
        ids.iter().filter(|i| **i == "reserve_inventory").count(),
        1,
        "{ids:?}"
    );
    assert_eq!(ids.last(), Some(&"end"));
}

#[tokio::test]
async fn an_abandoned_saga_cancelled_on_another_worker_is_compensated_from_its_checkpoint() {
    let s = start().await;
    let bob = s.token("acme", "bob", "user");
    let before = s.stock(&bob, "SKU-WIDGET").await;
    let run_id = order_stuck_at_capture_then_crash(&s).await;
    let tenant = platform::domain::TenantId::parse("acme").unwrap();
    let id = uuid::Uuid::parse_str(&run_id).unwrap();
    let b = second_worker(&s).await;
    // While the dead worker's lease holds, the run may still be alive elsewhere: not cancelled here.
    assert!(matches!(
        b.engine.cancel(&tenant, id).await,
        Err(platform::orchestrator::executor::CancelError::HeldElsewhere { .. })
    ));
    platform::clock::Clock::advance_by(
        s.clock.as_ref(),
        chrono::Duration::milliseconds(s.app.cfg.saga.lease_ms as i64 + 1),
    );
    let run = b.engine.cancel(&tenant, id).await.expect("cancelled");
    assert_eq!(run.status, "compensated");
    assert_eq!(
        run.failure.map(|f| f.reason).as_deref(),
        Some("manually_cancelled")
    );
    let undone: Vec<&str> = run
        .compensation
        .iter()
        .map(|c| c.step_id.as_str())
        .collect();
    assert_eq!(
        undone,
        [
            "compensate:create_order",
            "compensate:authorize_payment",
            "compensate:reserve_inventory"
        ]
    );
    assert_eq!(
        b.engine.cancel(&tenant, id).await.map(|r| r.status),
        Err(platform::orchestrator::executor::CancelError::Finished(
            "compensated".into()
        ))
    );
    let stored = s.store_run(&tenant, id).await;
    assert_eq!(stored.status, "compensated");
    let stock = platform::store::Store::product(s.store.as_ref(), &tenant, "SKU-WIDGET")
        .await
        .unwrap()
        .map(|p| p.stock);
    assert_eq!(stock, Some(before));
}
