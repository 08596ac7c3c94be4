//! MOCK runs are reproducible: the whole spec suite, run twice with the same seed, gives the same
//! verdicts and the same transcript byte for byte. Two things are the scheduler's, not the seed's:
//! the copies of a `parallel` step are compared as a set with their UUIDs masked (they draw ids from
//! one sequence in whatever order they run), `/metrics` (real-time latency) by status only, and
//! latency budgets not at all (a loaded machine is slow whatever the seed; `specs.rs` checks them).
//! Another seed changes the generated data. The episodes of the two runs (what `harness run
//! --check-determinism` compares) are equal too.

use harness::runner::{self, Exchange, Outcome, RunConfig};
use harness::spec;
use std::path::Path;

fn run(seed: u64) -> Vec<Outcome> {
    let specs = spec::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")).specs;
    assert!(!specs.is_empty());
    let cfg = RunConfig {
        jobs: 2,
        record_episodes: true,
        // Wall-clock budgets are the machine's load, not the seed's: specs.rs checks them.
        latency_budgets: false,
        ..RunConfig::mock(seed)
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(runner::run_all(&specs, &cfg, &|_| {}))
}

/// The transcript with each parallel step's copies sorted, copy numbers dropped.
fn canonical(t: &[Exchange]) -> Vec<String> {
    // UUIDs, and the ids tools derive from a run's idempotency keys (`TCK-`, `PAY-`, `LEAD-`...).
    let uuid = regex::Regex::new(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[A-Z]{2,5}-[0-9a-f]{12}\b",
    )
    .unwrap();
    let mut out = vec![];
    let mut i = 0;
    while i < t.len() {
        let step = t[i].step;
        let mut group: Vec<String> = t[i..]
            .iter()
            .take_while(|e| e.step == step)
            .map(|e| {
                let mut e = Exchange {
                    copy: 0,
                    ..e.clone()
                };
                // Metrics measure real time (latency histograms): only their status is compared.
                if e.request == "GET /metrics" {
                    e.response = serde_json::Value::Null;
                }
                serde_json::to_string(&e).unwrap()
            })
            .collect();
        i += group.len();
        if group.len() > 1 {
            // Concurrent copies draw ids from one seeded sequence in the scheduler's order, so which
            // copy gets which id varies; everything else must not.
            for g in &mut group {
                *g = uuid.replace_all(g, "[UUID]").into_owned();
            }
        }
        group.sort();
        out.extend(group);
    }
    out
}

#[test]
fn the_same_seed_gives_the_same_verdicts_and_transcripts() {
    let (a, b) = (run(42), run(42));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.id, x.status, &x.failure), (&y.id, y.status, &y.failure));
        let (tx, ty) = (canonical(&x.transcript), canonical(&y.transcript));
        assert!(
            !tx.is_empty() || x.skip_reason.is_some(),
            "{} recorded nothing",
            x.id
        );
        if let Some(n) = tx.iter().zip(&ty).position(|(p, q)| p != q) {
            panic!(
                "{}: exchange {n} differs between reruns:\n{}\n{}",
                x.id, tx[n], ty[n]
            );
        }
        assert_eq!(tx.len(), ty.len(), "{}", x.id);
        if let Some(why) = runner::nondeterminism(x, y) {
            panic!("{}: {why}", x.id);
        }
        assert_eq!(x.episode.is_some(), x.skip_reason.is_none(), "{}", x.id);
    }
    // Another seed: other generated data, hence other answers somewhere.
    let c = run(43);
    assert!(
        a.iter()
            .zip(&c)
            .any(|(x, z)| canonical(&x.transcript) != canonical(&z.transcript)),
        "seed 43 gave the same transcripts as seed 42"
    );
}
