//! A failure says which side it is on: a platform that answers otherwise than the spec expects is
//! a mismatch (a verdict on the platform); a step the harness cannot carry out (a variable that
//! was never captured) is the harness's own failure, and the platform was not judged.

use harness::runner::{self, FailureKind, RunConfig, Status};
use harness::spec;
use std::path::Path;

fn run(steps: &str) -> runner::Outcome {
    let text = format!(
        "id: KIND-1\ntitle: t\nsuite: e2e\nfixtures: [acme]\nas: {{tenant: acme, user: bob}}\nsteps:\n{steps}"
    );
    let s = spec::load_str(Path::new("scenarios/e2e/kind.yaml"), &text)
        .unwrap_or_else(|e| panic!("the spec loads: {e:?}"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(runner::run_spec(&s, &RunConfig::mock(42)))
}

#[test]
fn an_unexpected_answer_is_a_mismatch() {
    let o = run("  - get: /healthz\n    expect: {status: 418}\n");
    assert_eq!(o.status, Status::Failed);
    let f = o.failure.expect("failure");
    assert_eq!(f.kind, FailureKind::Mismatch, "{f}");
    assert!(f.message.contains("418"), "{f}");
}

#[test]
fn a_step_the_harness_cannot_build_is_the_harness_s_failure() {
    let o = run("  - get: /api/v1/orders/${never_captured}\n    expect: {status: 200}\n");
    assert_eq!(o.status, Status::Failed);
    let f = o.failure.expect("failure");
    assert_eq!(f.kind, FailureKind::Harness, "{f}");
    assert!(f.message.contains("never_captured"), "{f}");
    assert!(f.to_string().contains("the platform was not judged"), "{f}");
}
