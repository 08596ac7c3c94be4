//! Time and randomness come from here, never from the business code directly, so that a spec can freeze
//! time and one seed reproduces a run (DESIGN.md, "Ports and backends").

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use std::sync::Mutex;

/// The source of "now" for every timestamp, window and budget.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Moves a test clock forward (past a rate-limit window, a token's expiry); false for a clock
    /// that follows real time and cannot be moved.
    fn advance_by(&self, _by: Duration) -> bool {
        false
    }
}

/// Wall-clock time, for `platform serve`.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to: tests freeze time with it and advance it past a window.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock frozen at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }
    /// A clock frozen at 2026-01-01T00:00:00Z, the fixtures' epoch.
    pub fn at_epoch() -> Self {
        Self::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        )
    }
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn advance_by(&self, by: Duration) -> bool {
        self.advance(by);
        true
    }
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Identifier generation from the run's seed: the same seed gives the same sequence of UUIDs.
#[derive(Debug)]
pub struct Ids(Mutex<ChaCha8Rng>);

impl Ids {
    pub fn seeded(seed: u64) -> Self {
        Self(Mutex::new(ChaCha8Rng::seed_from_u64(seed)))
    }
    /// Ids nobody can predict or repeat (production).
    pub fn from_entropy() -> Self {
        Self(Mutex::new(ChaCha8Rng::from_entropy()))
    }
    pub fn uuid(&self) -> uuid::Uuid {
        let mut bytes = [0u8; 16];
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
    /// A random token of `n` bytes, hex-encoded (API keys, salts).
    pub fn token_hex(&self, n: usize) -> String {
        let mut bytes = vec![0u8; n];
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fill_bytes(&mut bytes);
        hex::encode(bytes)
    }
}

/// A uniform number in [0, 1) that depends only on the seed and the key. Decisions that must be
/// reproducible under concurrency (canary draws, scripted sampling, jitter) use this instead of a
/// shared generator whose order would depend on scheduling.
pub fn unit_draw(seed: u64, key: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(key.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ids() {
        let (a, b) = (Ids::seeded(7), Ids::seeded(7));
        assert_eq!(a.uuid(), b.uuid());
        assert_ne!(Ids::seeded(8).uuid(), Ids::seeded(7).uuid());
    }

    #[test]
    fn unit_draw_is_stable_and_in_range() {
        let x = unit_draw(1, "k");
        assert_eq!(x, unit_draw(1, "k"));
        assert!((0.0..1.0).contains(&x));
        assert_ne!(x, unit_draw(2, "k"));
    }

    #[tokio::test]
    async fn manual_clock_config_freezes_time_at_the_epoch_and_production_refuses_it() {
        use crate::app::{App, Backends, StartError};
        let cfg = crate::config::Config {
            manual_clock: true,
            ..Default::default()
        };
        let clock = Backends::embedded(&cfg).clock;
        assert_eq!(clock.now(), ManualClock::at_epoch().now());
        assert!(clock.advance_by(Duration::seconds(1)));
        assert!(!Backends::embedded(&Default::default())
            .clock
            .advance_by(Duration::seconds(1)));

        let cfg = crate::config::Config {
            production: true,
            ..cfg
        };
        match App::start(cfg.clone(), Backends::embedded(&cfg)).await {
            Err(StartError::Config(m)) => assert!(m.contains("manual test clock"), "{m}"),
            Err(e) => panic!("refused for another reason: {e}"),
            Ok(_) => panic!("a production deployment started with a manual clock"),
        }
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::at_epoch();
        let t0 = c.now();
        assert_eq!(c.now(), t0);
        c.advance(Duration::seconds(61));
        assert_eq!(c.now() - t0, Duration::seconds(61));
    }
}
