//! `--check-determinism`: how two runs of one spec with the same seed differ.

use crate::expect;
use crate::record::episode;
use crate::record::episode::Episode;
use crate::runner::Outcome;
/// How two runs of one spec with the same seed differ (`--check-determinism`): verdict, failure,
/// or the first differing part of their episodes (steps, final output, audit trail, model calls).
pub fn nondeterminism(a: &Outcome, b: &Outcome) -> Option<String> {
    if a.status != b.status
        || a.failure.as_ref().map(|f| &f.message) != b.failure.as_ref().map(|f| &f.message)
    {
        return Some(format!(
            "the two runs ended differently: {:?} then {:?}\nfirst: {}\nsecond: {}",
            a.status,
            b.status,
            a.failure.as_ref().map_or("-".into(), |f| f.message.clone()),
            b.failure.as_ref().map_or("-".into(), |f| f.message.clone())
        ));
    }
    let (x, y) = match (&a.episode, &b.episode) {
        (Some(x), Some(y)) => (x, y),
        (None, None) => return None,
        _ => return Some("only one of the runs recorded an episode".into()),
    };
    if let Some(d) = episode::compare(x, y).into_iter().next() {
        return Some(format!(
            "the episodes differ at {}:\nfirst:  {}\nsecond: {}",
            d.step,
            expect::matcher::short(&d.original),
            expect::matcher::short(&d.replayed)
        ));
    }
    let keys = |e: &Episode| -> Vec<(String, String)> {
        e.model_calls
            .iter()
            .map(|c| (c.body.key.clone(), c.body.response.text.clone()))
            .collect()
    };
    if keys(x) != keys(y) {
        return Some("the model calls differ between the runs".into());
    }
    None
}
