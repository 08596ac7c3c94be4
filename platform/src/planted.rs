//! Defects planted on purpose, so that a spec can be seen to fail. A check is trusted once it has
//! been seen to catch a realistic bug; each switch here is one such bug, written where the real one
//! would be. They exist only in builds with the `planted-defects` feature, which the workspace's
//! test builds turn on and a release build of the platform never has: without the feature the
//! `planted:` configuration section is an unknown key, refused like any other.

use serde::{Deserialize, Serialize};

/// Which planted defects are switched on (all off by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlantedDefects {
    /// The monthly quota lets one request more through than the plan allows (an off-by-one in
    /// the comparison: `>` where `>=` belongs).
    pub quota_off_by_one: bool,
    /// The outbox dispatcher marks a message `sent` without handing it to its channel's adapter
    /// (the status a handler used to write on its own).
    pub outbox_sent_without_delivery: bool,
}

/// How many requests past the monthly quota are let through (0 unless the off-by-one is planted).
#[cfg(feature = "planted-defects")]
pub fn quota_slack(cfg: &crate::config::Config) -> u64 {
    u64::from(cfg.planted.quota_off_by_one)
}

/// Whether the dispatcher skips the delivery it reports (never, without planted defects).
#[cfg(feature = "planted-defects")]
pub fn skip_delivery(cfg: &crate::config::Config) -> bool {
    cfg.planted.outbox_sent_without_delivery
}

/// Whether the dispatcher skips the delivery it reports: never, in a build without planted
/// defects.
#[cfg(not(feature = "planted-defects"))]
pub fn skip_delivery(_cfg: &crate::config::Config) -> bool {
    false
}

/// How many requests past the monthly quota are let through: none, in a build without planted
/// defects.
#[cfg(not(feature = "planted-defects"))]
pub fn quota_slack(_cfg: &crate::config::Config) -> u64 {
    0
}
