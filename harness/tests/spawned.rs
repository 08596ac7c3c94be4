//! The spawned-process target: `platform serve` started as OS processes from the harness's own
//! configuration (built by the test, not assumed to exist), reachable, with a movable clock,
//! logging, killable one by one, stopped by SIGTERM, and refusing a bad configuration with the
//! platform's own words.

use harness::target::spawned::{SpawnError, SpawnOptions, Spawned};
use serde_json::json;

/// MOCK's configuration (operator surface, fault injection, seeded ids) on the movable clock.
fn config() -> platform::config::Config {
    let mut cfg = harness::target::mock_config(42);
    cfg.manual_clock = true;
    cfg
}

/// Whether a process with this pid exists (signal 0 checks without sending anything).
fn exists(pid: u32) -> bool {
    // SAFETY: signal 0 sends nothing; kill(2) has no memory effects.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

#[tokio::test]
async fn one_instance_serves_moves_its_clock_logs_and_stops_on_sigterm() {
    let cfg = config();
    let key = cfg.operator_key.clone().unwrap();
    let mut set = Spawned::start(SpawnOptions::new(cfg)).await.unwrap();
    let (url, pid) = (set.base_urls()[0].clone(), set.pids()[0]);
    assert!(exists(pid));
    let http = reqwest::Client::new();

    let health = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let events = http
        .get(format!("{url}/api/v1/operator/events"))
        .header("x-operator-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let moved = http
        .post(format!("{url}/api/v1/operator/clock"))
        .header("x-operator-key", &key)
        .json(&json!({"advance_ms": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    let now: serde_json::Value = moved.json().await.unwrap();
    assert_eq!(now["now"], "2026-01-01T00:00:01Z", "{now}");

    let log = set.logs(0);
    assert!(
        log.iter().any(|l| l.starts_with("platform listening on")),
        "{log:#?}"
    );

    set.stop().await.unwrap();
    assert!(!exists(pid), "pid {pid} still exists after stop");
}

#[tokio::test]
async fn two_instances_answer_apart_one_killed_leaves_the_other_and_restarts() {
    let opts = SpawnOptions {
        instances: 2,
        ..SpawnOptions::new(config())
    };
    let mut set = Spawned::start(opts).await.unwrap();
    let (urls, pids) = (set.base_urls(), set.pids());
    assert_ne!(urls[0], urls[1]);
    assert_ne!(pids[0], pids[1]);
    let http = reqwest::Client::new();
    for u in &urls {
        let r = http.get(format!("{u}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{u}");
    }

    let status = set.kill(0).await.unwrap();
    assert!(!status.success(), "{status}");
    assert!(!exists(pids[0]));
    assert!(
        http.get(format!("{}/healthz", urls[0]))
            .send()
            .await
            .is_err(),
        "instance 0 still answers after SIGKILL"
    );
    let r = http
        .get(format!("{}/healthz", urls[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(exists(pids[1]));

    // A restart puts a new process in its place, on a new port, logging to the same log.
    set.restart(0).await.unwrap();
    let (again, pid) = (set.base_urls()[0].clone(), set.pids()[0]);
    assert_ne!(pid, pids[0]);
    let r = http.get(format!("{again}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let banners = set
        .logs(0)
        .iter()
        .filter(|l| l.starts_with("platform listening on"))
        .count();
    assert_eq!(banners, 2);
    assert!(matches!(
        set.kill(2).await,
        Err(SpawnError::NoInstance { index: 2, count: 2 })
    ));
}

#[tokio::test]
async fn a_refused_configuration_fails_start_with_the_platforms_own_error() {
    let mut cfg = config();
    cfg.production = true;
    let err = match Spawned::start(SpawnOptions::new(cfg)).await {
        Ok(_) => panic!("a production deployment with fault injection started"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, SpawnError::Exited { .. }), "{text}");
    assert!(
        text.contains("fault injection cannot be switched on in a production deployment"),
        "{text}"
    );
    assert!(text.contains("exit status: 2"), "{text}");
}
