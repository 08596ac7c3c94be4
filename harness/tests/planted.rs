//! Each rewritten oracle is seen to fail: a realistic defect is planted in the platform under test
//! (a `planted:` switch of `platform/src/planted.rs`, or a misconfiguration in the spec's
//! `platform:` section), the spec that must catch it is run against it, and the test requires the
//! spec to fail for that reason. The same spec passes on the platform as shipped (`specs.rs` and
//! the baselines here), so the failure is the planted defect's.

use harness::runner::{self, Outcome, RunConfig, Status};
use harness::spec::{self, Spec};
use serde_json::{json, Value};
use std::path::Path;

fn spec(suite: &str, id: &str) -> Spec {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(suite);
    spec::load_dir(&dir)
        .specs
        .into_iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no spec {id} in scenarios/{suite}"))
}

/// Runs `s` in MOCK with `overlay` merged over its own `platform:` section.
fn run(mut s: Spec, overlay: Value) -> Outcome {
    let mut platform = s.platform.take().unwrap_or_else(|| json!({}));
    runner::deep_merge(&mut platform, overlay);
    s.platform = Some(platform);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(runner::run_spec(&s, &RunConfig::mock(42)))
}

/// The failure message of an outcome that must have failed.
fn failure(o: &Outcome, defect: &str) -> String {
    assert_eq!(
        o.status,
        Status::Failed,
        "{} passed with the defect planted ({defect}): the spec cannot catch it",
        o.id
    );
    let f = o
        .failure
        .as_ref()
        .expect("a failed outcome has its failure");
    assert_eq!(
        f.kind,
        runner::FailureKind::Mismatch,
        "{} failed as the harness's own failure, not as a verdict on the platform: {f}",
        o.id
    );
    format!("{}: {}\n{}", f.location, f.step, f.message)
}

fn passes(o: &Outcome) {
    assert_eq!(
        o.status,
        Status::Passed,
        "{} fails without a planted defect: {:?}",
        o.id,
        o.failure
    );
}

/// A quota that lets one request too many through. `wait_until` used to re-send the fourth
/// request until it was refused, so this passed; the fourth request is now sent once, after a
/// read-only poll of the usage.
#[test]
fn the_quota_specs_catch_one_request_more_than_the_quota() {
    let plant = json!({"planted": {"quota_off_by_one": true}});
    for (suite, id) in [("security", "SEC-12"), ("e2e", "E2E-23")] {
        passes(&run(spec(suite, id), json!({})));
        let why = failure(&run(spec(suite, id), plant.clone()), "quota_off_by_one");
        assert!(
            why.contains("the fourth request of the month is over")
                && why.contains("status: expected 429, found 200"),
            "{id}: {why}"
        );
    }
}

/// A retry policy one attempt too generous: the `metrics:` expectation reads `retry_total` by
/// its labels and sees 4 where the spec allows 3 (a regex over the text once matched `3` as a
/// prefix of `30` as easily).
#[test]
fn the_metrics_expectation_catches_one_retry_too_many() {
    let plant = json!({"resilience": {"upstreams": {"tool:ticket.create": {"max_retries": 4}}}});
    let why = failure(&run(spec("reliability", "REL-11"), plant), "max_retries 4");
    assert!(
        why.contains("metric `retry_total{upstream=\"tool:ticket.create\"}`: expected 3, found 4"),
        "{why}"
    );
}

/// A status written without a delivery (what the chat handler used to do): the outbox says `sent`,
/// but the channel's endpoint received nothing, and the spec reads the endpoint.
#[test]
fn the_sink_catches_a_sent_status_without_a_delivery() {
    let plant = json!({"planted": {"outbox_sent_without_delivery": true}});
    let why = failure(
        &run(spec("e2e", "E2E-05"), plant),
        "outbox_sent_without_delivery",
    );
    assert!(
        why.contains("the Messenger endpoint received it") && why.contains("delivered"),
        "{why}"
    );
}
