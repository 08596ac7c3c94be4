//! The bulkhead: at most `max_concurrent` calls of one upstream at once, so a slow upstream holds
//! only its own share of the server. A caller past the limit waits up to `max_wait` for a slot;
//! `max_wait = 0` rejects at once. A tokio semaphore, nothing more.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One upstream's concurrency limit.
#[derive(Debug)]
pub struct Bulkhead {
    slots: Arc<Semaphore>,
    max_concurrent: u32,
    max_wait: Duration,
}

/// The bulkhead was full for the whole wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bulkhead full: {max_concurrent} calls in flight")]
pub struct BulkheadFull {
    pub max_concurrent: u32,
}

impl Bulkhead {
    /// `max_concurrent` 0 is taken as 1: a bulkhead that admits nothing would be an outage.
    pub fn new(max_concurrent: u32, max_wait: Duration) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Self {
            slots: Arc::new(Semaphore::new(max_concurrent as usize)),
            max_concurrent,
            max_wait,
        }
    }

    /// A slot, held until the permit is dropped.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, BulkheadFull> {
        let full = BulkheadFull {
            max_concurrent: self.max_concurrent,
        };
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.max_wait.is_zero() {
            return Err(full);
        }
        match tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(full),
        }
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u32 {
        self.max_concurrent - self.slots.available_permits() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn hold(b: Arc<Bulkhead>, peak: Arc<AtomicU32>) -> Result<(), BulkheadFull> {
        let _p = b.enter().await?;
        peak.fetch_max(b.in_flight(), Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_wait_the_calls_past_the_limit_are_rejected() {
        let b = Arc::new(Bulkhead::new(2, Duration::ZERO));
        let peak = Arc::new(AtomicU32::new(0));
        let calls: Vec<_> = (0..5)
            .map(|_| tokio::spawn(hold(b.clone(), peak.clone())))
            .collect();
        let mut ok = 0;
        for c in calls {
            if c.await
                .unwrap_or(Err(BulkheadFull { max_concurrent: 0 }))
                .is_ok()
            {
                ok += 1;
            }
        }
        assert_eq!(ok, 2);
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_wait_every_call_runs_and_concurrency_stays_bounded() {
        let b = Arc::new(Bulkhead::new(5, Duration::from_secs(5)));
        let peak = Arc::new(AtomicU32::new(0));
        let calls: Vec<_> = (0..10)
            .map(|_| tokio::spawn(hold(b.clone(), peak.clone())))
            .collect();
        for c in calls {
            assert_eq!(c.await.ok(), Some(Ok(())));
        }
        assert_eq!(peak.load(Ordering::SeqCst), 5);
        assert_eq!(b.in_flight(), 0);
    }
}
