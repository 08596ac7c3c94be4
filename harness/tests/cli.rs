//! The `harness` binary as CI and people use it: exit status, reports, and what a failing or broken
//! spec prints, against a scratch directory of specs run on the in-process platform.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSING: &str = r#"id: T-PASS
title: health answers
suite: e2e
as: {anonymous: true}
steps:
  - get: /healthz
"#;

const FAILING: &str = r#"id: T-FAIL
title: a wrong tier is caught
suite: e2e
fixtures: [acme]
as: {tenant: acme, user: bob}
steps:
  - get: /healthz
  - chat: "What is your return policy?"
    expect:
      json:
        response.metadata.tier_used: LLM
"#;

const TYPO: &str = r#"id: T-TYPO
title: a typo in a field name
suite: e2e
as: {anonymous: true}
steps:
  - get: /healthz
    expcet: {status: 200}
"#;

fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("scenarios/e2e")).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join("scenarios/e2e").join(f), text).unwrap();
    }
    dir
}

fn harness(dir: &Path, args: &[&str]) -> (i32, String, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(dir)
        .args(args)
        // The defaults under test, whatever the calling shell exports.
        .env_remove("HARNESS_SEED")
        .env_remove("TEST_MODE")
        .env_remove("HARNESS_OPERATOR_KEY")
        .env_remove("HARNESS_SCENARIOS")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(dir.join("target/harness/report.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), text, report)
}

#[test]
fn a_clean_run_exits_zero_and_writes_both_reports() {
    let dir = scratch("clean", &[("pass.yaml", PASSING)]);
    let (code, text, report) = harness(&dir, &["run", "--seed", "7"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(report["summary"]["passed"], 1, "{report}");
    assert_eq!(report["scenarios"][0]["seed"], 7);
    assert_eq!(report["scenarios"][0]["mode"], "mock");
    assert!(dir.join("target/harness/junit.xml").is_file());
    assert!(text.contains("e2e") && text.contains("in "), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn failures_and_broken_files_are_reported_and_the_rest_still_runs() {
    let dir = scratch(
        "mixed",
        &[
            ("pass.yaml", PASSING),
            ("fail.yaml", FAILING),
            ("typo.yaml", TYPO),
            ("broken.yaml", "id: [\n"),
        ],
    );
    let (code, text, report) = harness(&dir, &["run"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        report["summary"],
        serde_json::json!({"total": 4, "passed": 1, "failed": 3, "skipped": 0}),
        "{text}"
    );
    // The failing spec: file:line of the step, expected vs found, the seed and the command.
    assert!(text.contains("scenarios/e2e/fail.yaml:8: step 2"), "{text}");
    assert!(text.contains(r#"expected "LLM", found "SLM_A""#), "{text}");
    assert!(text.contains("seed: 42"), "{text}");
    assert!(
        text.contains("cargo run -p harness -- run --mode mock --only T-FAIL --seed 42"),
        "{text}"
    );
    // The typo and the broken YAML: file:line and what was expected.
    assert!(text.contains("scenarios/e2e/typo.yaml:7"), "{text}");
    assert!(text.contains("unknown field `expcet`"), "{text}");
    assert!(text.contains("scenarios/e2e/broken.yaml:"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_flags_are_refused_with_a_reason() {
    let dir = scratch("flags", &[("pass.yaml", PASSING)]);
    let (code, text, _) = harness(&dir, &["run", "--mode", "turbo"]);
    assert_eq!(code, 2);
    assert!(text.contains("unknown mode `turbo`"), "{text}");
    let (code, text, _) = harness(&dir, &["run", "--target", "http://127.0.0.1:9"]);
    assert_eq!(code, 2);
    assert!(text.contains("operator key"), "{text}");
    let (code, text, _) = harness(&dir, &["run", "--suite", "e2f"]);
    assert_eq!(code, 2);
    assert!(
        text.contains(r#"no suite ["e2f"]"#) && text.contains("suites: e2e"),
        "{text}"
    );
    let (code, text, _) = harness(&dir, &["run", "--only", "T-PASS,T-NOPE"]);
    assert_eq!(code, 2);
    assert!(text.contains(r#"no spec with id ["T-NOPE"]"#), "{text}");
    let (code, text, _) = harness(&dir, &["run", "--mode", "live_smoke"]);
    assert_eq!(code, 2);
    assert!(text.contains("mock and golden run today"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_deployment_is_reached_with_target_and_its_operator_key() {
    let cfg = platform::config::Config {
        operator_key: Some("ops-key".into()),
        fault_injection: true,
        resilience: platform::resilience::ResilienceConfig {
            retry_base_ms: 1,
            retry_cap_ms: 5,
            ..Default::default()
        },
        ..Default::default()
    };
    let backends = platform::app::Backends::embedded(&cfg);
    let app = platform::app::App::start(cfg, backends).await.unwrap();
    let addr = app.spawn_local().await.unwrap();
    // A fault, a failing saga, its events and the restored stock: every surface a remote run needs.
    let saga = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/e2e/e2e-07-compensation.yaml"
    ))
    .unwrap();
    let dir = scratch("remote", &[("pass.yaml", PASSING), ("saga.yaml", &saga)]);
    let url = format!("http://{addr}");
    let d = dir.clone();
    let (code, text, report) = tokio::task::spawn_blocking(move || {
        harness(&d, &["run", "--target", &url, "--operator-key", "ops-key"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{text}");
    assert_eq!(report["summary"]["passed"], 2, "{report}");
    assert!(text.contains(&format!("against http://{addr}")), "{text}");
    // The wrong key is a setup failure that names the operator surface's answer.
    let url = format!("http://{addr}");
    let d = dir.clone();
    let (code, text, _) = tokio::task::spawn_blocking(move || {
        harness(
            &d,
            &[
                "run",
                "--target",
                &url,
                "--operator-key",
                "wrong",
                "--only",
                "E2E-07",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("answered 401"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn golden_runs_on_real_services_or_says_why_it_cannot() {
    let dir = scratch("golden", &[("fail.yaml", FAILING)]);
    let (code, text, report) = harness(&dir, &["run", "--mode", "golden"]);
    if text.contains("GOLDEN specs skipped") {
        // No services here, and CI did not require them: every spec is skipped with the reason.
        assert_eq!(code, 0, "{text}");
        assert!(report["scenarios"][0]["skip_reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("no real services"));
    } else {
        // The failing spec fails on the real backends too, and names the services it ran on.
        assert_eq!(code, 1, "{text}");
        assert!(
            text.contains("golden mode against in-process on real backends (postgres:"),
            "{text}"
        );
        assert!(text.contains("FAILED T-FAIL"), "{text}");
        assert!(text.contains("--mode golden --only T-FAIL"), "{text}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_spawned_platform_process_runs_the_specs_and_a_failure_reproduces_with_spawn() {
    let dir = scratch("spawn", &[("pass.yaml", PASSING), ("fail.yaml", FAILING)]);
    let (code, text, report) = harness(&dir, &["run", "--spawn", "1", "--jobs", "1"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("spawned 1 platform process(es): http://127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("against http://127.0.0.1:"), "{text}");
    assert_eq!(report["summary"]["passed"], 1, "{report}");
    assert_eq!(report["summary"]["failed"], 1, "{report}");
    assert!(
        text.contains(
            "reproduce: cargo run -p harness -- run --mode mock --only T-FAIL --seed 42 --spawn 1"
        ),
        "{text}"
    );
    let (code, text, _) = harness(&dir, &["run", "--spawn", "2"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("separate deployments"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}
