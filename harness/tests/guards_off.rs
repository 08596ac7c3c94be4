//! The adversarial specs prove the guards, not the model: with a guard check turned off in the
//! platform's configuration, the specs of its attacks fail, and where the naive scripted model
//! obeys, the failure shows the leak itself (it says "PWNED", plays the role, obeys a fake system
//! turn, repeats its instructions).

use harness::runner::{self, Outcome, RunConfig, Status};
use harness::spec::{self, Spec};
use serde_json::json;
use std::path::Path;

fn adversarial() -> Vec<Spec> {
    spec::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/adversarial")).specs
}

fn run_with(id: &str, guard: serde_json::Value) -> Outcome {
    let mut s = adversarial()
        .into_iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no spec {id}"));
    s.platform = Some(json!({ "guard": guard }));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(runner::run_spec(&s, &RunConfig::mock(42)))
}

fn failure(o: &Outcome) -> String {
    assert_eq!(
        o.status,
        Status::Failed,
        "{} passed with its guard off: the spec does not depend on the guard",
        o.id
    );
    o.failure
        .as_ref()
        .map(|f| f.message.clone())
        .unwrap_or_default()
}

#[test]
fn each_check_turned_off_fails_the_specs_of_its_attacks() {
    for (check, id) in [
        ("metadata", "ADV-05"),
        ("unicode", "ADV-06"),
        ("markdown_json", "ADV-10"),
        ("tool_names", "ADV-19"),
        ("ssrf", "ADV-20"),
        ("jailbreak", "ADV-23"),
        ("malicious", "ADV-30"),
    ] {
        let o = run_with(id, json!({ check: false }));
        let why = failure(&o);
        assert!(
            why.contains("expected 200 with guard.blocked"),
            "{check} off, {id}: {why}"
        );
    }
}

#[test]
fn without_the_input_guard_the_naive_model_obeys_and_leaks() {
    let why = failure(&run_with(
        "ADV-01",
        json!({"injection": false, "output_leak": false}),
    ));
    assert!(why.contains("the answer contains `PWNED`"), "{why}");
    assert!(why.contains("CANARY-"), "the instructions leaked: {why}");
    let why = failure(&run_with("ADV-02", json!({"injection": false})));
    assert!(why.contains("the answer contains `I am now`"), "{why}");
    let why = failure(&run_with(
        "ADV-04",
        json!({"injection": false, "history": false}),
    ));
    assert!(why.contains("the answer contains `admin mode`"), "{why}");
}

#[test]
fn without_the_indirect_guard_a_planted_document_reaches_the_answer() {
    let why = failure(&run_with("ADV-04", json!({"indirect": false})));
    assert!(why.contains("attacker.test"), "{why}");
}

#[test]
fn with_only_the_input_guard_off_the_output_guard_still_keeps_the_instructions_in() {
    let o = run_with("ADV-01", json!({"injection": false}));
    let why = failure(&o);
    // The model repeated its instructions; the output filter replaced them with the refusal.
    assert!(!why.contains("CANARY-"), "{why}");
    assert!(why.contains("prompt_leak_detected"), "{why}");
}
