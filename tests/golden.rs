//! What `golden/` holds is sound: cassettes and episodes carry no secret and no personal value of the
//! fixtures; every committed episode replays identically; a bumped prompt version fails the replay
//! naming the workflow; a cassette taken away fails its spec with the nearest recorded request as a
//! diff; an edited cassette is refused by name.
//!
//! These run in-process (MOCK topology with the cassette provider), so they need no service; the
//! GOLDEN cases of `tests/specs.rs` replay the same cassettes on real services.

use harness::record::episode::Episode;
use harness::record::replay::{self, ReplayMode, Verdict};
use harness::runner::{self, RunConfig, Status};
use harness::spec;
use harness::target::{ModelPlan, TargetSpec};
use platform::llm::cassette::{Cassette, CassetteError, CassetteSet};
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    replay::episode_files(dir)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

/// Every secret and personal value the fixtures hand out, for every tenant id any spec runs as:
/// logins (e-mail, password), API keys, canaries, and the e-mails and phones of the seeded records.
fn fixture_values() -> BTreeSet<String> {
    let specs = spec::load_dir(&root().join("scenarios")).specs;
    let seed = harness::DEFAULT_SEED;
    let mut out = BTreeSet::new();
    fn personal(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if matches!(k.as_str(), "email" | "phone" | "password") {
                        if let Some(s) = x.as_str().filter(|s| s.len() > 3) {
                            out.insert(s.to_string());
                        }
                    }
                    personal(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| personal(x, out)),
            _ => {}
        }
    }
    for s in &specs {
        let slug_of = |alias: &str| runner::tenant_slug(seed, &s.id, alias, "");
        for name in &s.fixtures {
            for t in s
                .fixture_set
                .build(name, seed, &slug_of)
                .unwrap_or_default()
            {
                for l in t.users.values() {
                    out.insert(l.email.clone());
                    out.insert(l.password.clone());
                }
                out.extend(t.api_keys.values().cloned());
                out.insert(platform::demo::canary(seed, &t.slug));
                personal(&t.seed, &mut out);
            }
        }
    }
    out
}

#[test]
fn recordings_hold_no_secret_and_no_fixture_personal_value() {
    let cassettes = json_files(&root().join("golden/cassettes"));
    let episodes = json_files(&root().join("golden/episodes"));
    assert!(
        cassettes.len() >= 10,
        "too few cassettes: {}",
        cassettes.len()
    );
    assert!(episodes.len() >= 5, "too few episodes: {}", episodes.len());
    let values = fixture_values();
    assert!(
        values.len() > 20,
        "the fixtures gave only {} values",
        values.len()
    );
    // Shapes that must never be written, whoever's they are (the spec sources of episodes, which
    // are the hand-written scenario files, are checked for fixture values only).
    let shapes = [
        ("a canary", r"CANARY-[0-9a-f]{16}"),
        ("a JWT", r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\."),
        ("a bearer token", r"(?i)bearer\s+[A-Za-z0-9._-]{8,}"),
        ("an API key", r"\bak_[a-z0-9-]+_[A-Za-z0-9]{16,}"),
        (
            "an e-mail address",
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
        ),
        ("an SSN", r"\b\d{3}-\d{2}-\d{4}\b"),
        (
            "a card number",
            r"\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{1,7}\b",
        ),
    ];
    let shapes: Vec<(&str, Regex)> = shapes
        .iter()
        .map(|(n, r)| (*n, Regex::new(r).expect("valid")))
        .collect();
    let mut problems = vec![];
    for f in cassettes.iter().chain(&episodes) {
        let text = std::fs::read_to_string(f).expect("readable");
        for v in &values {
            if text.contains(v.as_str()) {
                problems.push(format!("{}: holds the fixture value {v:?}", f.display()));
            }
        }
        let mut json: Value = serde_json::from_str(&text).expect("JSON");
        if let Some(spec) = json.get_mut("spec") {
            spec["source"] = Value::Null;
        }
        // A cassette's key is a hex hash, which can be all digits and look like a card number.
        if let Some(key) = json.get_mut("key") {
            *key = Value::Null;
        }
        let scanned = json.to_string();
        for (what, re) in &shapes {
            if let Some(m) = re.find(&scanned) {
                problems.push(format!("{}: holds {what}: {:?}", f.display(), m.as_str()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn committed_episodes_replay_identically() {
    let files = json_files(&root().join("golden/episodes"));
    let rt = rt();
    for f in &files {
        let ep = Episode::read(f).expect("an episode");
        let r = rt.block_on(replay::replay(
            ep,
            f,
            ReplayMode::Exact,
            TargetSpec::Mock,
            None,
        ));
        assert!(
            matches!(r.verdict, Verdict::Identical),
            "{}: {}",
            f.display(),
            serde_json::to_string_pretty(&r.verdict).unwrap_or_default()
        );
    }
}

#[test]
fn a_changed_prompt_version_fails_the_replay_naming_the_workflow() {
    let f = root().join("golden/episodes/e2e/E2E-01.json");
    let ep = Episode::read(&f).expect("the FAQ episode");
    assert!(ep.workflows.contains("faq"), "{:?}", ep.workflows);
    let bumped: std::collections::BTreeMap<String, String> =
        [("faq".to_string(), "2".to_string())].into();
    let dir = runner::workflows_with_prompt_versions(&bumped).expect("a workflows copy");
    let r = rt().block_on(replay::replay(
        ep.clone(),
        &f,
        ReplayMode::Exact,
        TargetSpec::Mock,
        Some(dir.path()),
    ));
    match r.verdict {
        Verdict::ReplayFailed { reason } => {
            assert!(
                reason.contains("workflow faq prompt_version \"1\" -> \"2\""),
                "{reason}"
            )
        }
        other => panic!("expected replay_failed, got {other:?}"),
    }
    // The same copy without the bump replays identically: only the version made the difference.
    let same =
        runner::workflows_with_prompt_versions(&[("faq".to_string(), "1".to_string())].into())
            .expect("a workflows copy");
    let r = rt().block_on(replay::replay(
        ep,
        &f,
        ReplayMode::Exact,
        TargetSpec::Mock,
        Some(same.path()),
    ));
    assert!(matches!(r.verdict, Verdict::Identical), "{:?}", r.verdict);
}

#[test]
fn a_missing_cassette_fails_its_spec_with_the_nearest_recorded_request() {
    let set = CassetteSet::load(&root().join("golden/cassettes")).expect("cassettes load");
    let specs = spec::load_dir(&root().join("scenarios")).specs;
    let faq = specs.iter().find(|s| s.id == "E2E-01").expect("E2E-01");
    let cfg = |model| RunConfig {
        model,
        ..RunConfig::mock(harness::DEFAULT_SEED)
    };
    // With every cassette, the spec passes without any model behind it.
    let all = Arc::new(set.clone());
    let o = rt().block_on(runner::run_spec(faq, &cfg(ModelPlan::Replay(all))));
    assert_eq!(o.status, Status::Passed, "{:?}", o.failure);
    // Take away the ones it used: it fails, showing the nearest recorded request as a diff.
    let used: BTreeSet<String> = {
        let o = rt().block_on(runner::run_spec(
            faq,
            &RunConfig {
                record_episodes: true,
                ..cfg(ModelPlan::Replay(Arc::new(set.clone())))
            },
        ));
        let ep = o.episode.expect("an episode");
        ep.model_calls.iter().map(|c| c.body.key.clone()).collect()
    };
    assert!(!used.is_empty(), "E2E-01 made no model call");
    let rest: Vec<Cassette> = json_files(&root().join("golden/cassettes"))
        .iter()
        .filter(|p| {
            !used.contains(
                &p.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string(),
            )
        })
        .map(|p| {
            serde_json::from_str(&std::fs::read_to_string(p).expect("readable")).expect("cassette")
        })
        .collect();
    let fewer = Arc::new(CassetteSet::from_cassettes(
        "golden/cassettes minus E2E-01's",
        rest,
    ));
    let o = rt().block_on(runner::run_spec(faq, &cfg(ModelPlan::Replay(fewer))));
    assert_eq!(o.status, Status::Failed);
    let m = o.failure.expect("a failure").message;
    assert!(m.contains("no cassette for model request"), "{m}");
    assert!(
        m.contains("nearest recorded request") && m.contains("\n+"),
        "{m}"
    );
}

#[test]
fn an_edited_cassette_is_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("cassettes-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let files = json_files(&root().join("golden/cassettes"));
    for f in &files {
        std::fs::copy(f, dir.join(f.file_name().expect("name"))).expect("copied");
    }
    let victim = dir.join(files[0].file_name().expect("name"));
    let text = std::fs::read_to_string(&victim).expect("readable");
    let edited = text.replacen("\"text\": \"", "\"text\": \"Edited. ", 1);
    assert_ne!(edited, text);
    std::fs::write(&victim, edited).expect("edited");
    match CassetteSet::load(&dir) {
        Err(CassetteError::Corrupt(bad)) => {
            assert_eq!(bad.len(), 1, "{bad:?}");
            assert_eq!(bad[0].0, victim);
            assert!(bad[0].1.contains("checksum mismatch"), "{}", bad[0].1);
        }
        other => panic!("expected the edited file to be refused, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}
