//! The `platform` binary as a person uses it: the README's curl walk-through runs as written against
//! `platform serve`, and SIGTERM stops the server cleanly. Also, in-process: a request in flight when
//! shutdown begins still gets its answer.

mod common;

use platform::tools::{Fault, FaultPoint};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The bash block between the README's walk-through markers.
fn walkthrough() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("start marker");
    let end = readme.find("<!-- walkthrough:end -->").expect("end marker");
    let block = &readme[start..end];
    let body = block
        .split("```bash\n")
        .nth(1)
        .expect("a bash block")
        .split("```")
        .next()
        .unwrap();
    body.to_string()
}

#[test]
fn the_readme_walkthrough_runs_against_platform_serve_and_sigterm_stops_it() {
    let bin = env!("CARGO_BIN_EXE_platform");
    let port = free_port();
    let mut child = Command::new(bin)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env_remove("PLATFORM_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = vec![];
    for line in stdout.lines() {
        let line = line.unwrap();
        let done = line.starts_with("admin API key for globex");
        banner.push(line);
        if done {
            break;
        }
    }
    assert!(
        banner[0].contains(&format!("listening on http://127.0.0.1:{port}")),
        "{banner:?}"
    );
    assert!(banner
        .iter()
        .any(|l| l.contains("platform token --tenant acme")));

    // Run the block as written, with the port and the built binary in place of `cargo run`.
    let script = walkthrough()
        .replace("http://127.0.0.1:8080", &format!("http://127.0.0.1:{port}"))
        .replace("cargo run -q --release -p platform --", bin);
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "walk-through failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "within 30 days",
        "TRK-ACME-1001",
        "\"status\":\"processing\"",
        "\"refund_amount\":49.5",
        "\"grade\":\"A\"",
        "priority_support",
        "event: message_complete",
        "\"plan\":\"pro\"",
        "TENANT_MISMATCH",
        "workflow_runs_total",
        "\"openapi\":\"3.1",
    ] {
        assert!(
            stdout.contains(expected),
            "walk-through output lacks {expected}:\n{stdout}"
        );
    }

    let t0 = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[tokio::test]
async fn a_request_in_flight_at_shutdown_still_gets_its_answer() {
    let s = common::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(s.app.clone().serve(listener, async move {
        let _ = stop_rx.await;
    }));
    s.app.tools.set_fault(
        None,
        "kb.search",
        FaultPoint::Call,
        Some(Fault::Delay(Duration::from_millis(400))),
    );
    let token = s.token("acme", "bob", "user");
    let slow = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("http://{addr}/api/v1/chat/message"))
            .bearer_auth(token)
            .json(&serde_json::json!({"message": {"content": "What is your return policy?"}}))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop_tx.send(()).unwrap();
    let resp = slow
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(resp.status(), 200);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
    // New connections are refused once it has stopped.
    assert!(reqwest::get(format!("http://{addr}/healthz"))
        .await
        .is_err());
}

#[test]
fn a_broken_workflow_stops_start_up_naming_file_and_node() {
    let bin = env!("CARGO_BIN_EXE_platform");
    let dir = std::env::temp_dir().join(format!("platform-bad-workflows-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows");
    for entry in std::fs::read_dir(shipped).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    let ok = Command::new(bin)
        .arg("check")
        .env("PLATFORM_WORKFLOWS_DIR", &dir)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let faq = std::fs::read_to_string(dir.join("faq.yaml")).unwrap();
    std::fs::write(
        dir.join("faq.yaml"),
        faq.replace("type: condition", "type: decision"),
    )
    .unwrap();
    for args in [vec!["check"], vec!["serve", "--addr", "127.0.0.1:0"]] {
        let out = Command::new(bin)
            .args(&args)
            .env("PLATFORM_WORKFLOWS_DIR", &dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("faq.yaml: node `confidence`: unknown node type `decision`"),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
