//! The event outbox of the JetStream bus: every event is written here before it is sent to the
//! broker, and marked relayed once the broker has acknowledged it. While the broker is down the
//! events wait here; a relay sends them when it is back. With the Postgres store the outbox is the
//! `event_outbox` table (durable across restarts); without it, a process-local queue.

use super::BusError;
use sqlx::PgPool;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// An event waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub seq: i64,
    pub event_id: Uuid,
    pub subject: String,
    pub payload: serde_json::Value,
}

/// Where events wait for the broker.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Records an event before it is sent; returns its sequence number.
    async fn enqueue(
        &self,
        event_id: Uuid,
        subject: &str,
        payload: &serde_json::Value,
    ) -> Result<i64, BusError>;
    /// Events not yet relayed that were queued at least `older_than` ago, oldest first.
    async fn pending(&self, older_than: Duration, limit: i64) -> Result<Vec<Pending>, BusError>;
    /// Marks an event as acknowledged by the broker.
    async fn mark_relayed(&self, seq: i64) -> Result<(), BusError>;
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("outbox: {e}"))
}

/// The outbox in Postgres (`event_outbox`).
pub struct PgOutbox(pub PgPool);

#[async_trait::async_trait]
impl Outbox for PgOutbox {
    async fn enqueue(
        &self,
        event_id: Uuid,
        subject: &str,
        payload: &serde_json::Value,
    ) -> Result<i64, BusError> {
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO event_outbox (event_id, subject, payload) VALUES ($1, $2, $3) \
             ON CONFLICT (event_id) DO UPDATE SET subject = EXCLUDED.subject RETURNING seq",
        )
        .bind(event_id)
        .bind(subject)
        .bind(payload)
        .fetch_one(&self.0)
        .await
        .map_err(unavailable)?;
        Ok(seq)
    }
    async fn pending(&self, older_than: Duration, limit: i64) -> Result<Vec<Pending>, BusError> {
        let rows: Vec<(i64, Uuid, String, serde_json::Value)> = sqlx::query_as(
            "SELECT seq, event_id, subject, payload FROM event_outbox \
             WHERE relayed_at IS NULL AND created_at <= now() - make_interval(secs => $1) \
             ORDER BY seq LIMIT $2",
        )
        .bind(older_than.as_secs_f64())
        .bind(limit)
        .fetch_all(&self.0)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|(seq, event_id, subject, payload)| Pending {
                seq,
                event_id,
                subject,
                payload,
            })
            .collect())
    }
    async fn mark_relayed(&self, seq: i64) -> Result<(), BusError> {
        sqlx::query("UPDATE event_outbox SET relayed_at = now() WHERE seq = $1")
            .bind(seq)
            .execute(&self.0)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// A process-local outbox: survives a broker outage, not a restart.
#[derive(Default)]
pub struct MemoryOutbox(Mutex<(i64, Vec<(Instant, Pending)>)>);

#[async_trait::async_trait]
impl Outbox for MemoryOutbox {
    async fn enqueue(
        &self,
        event_id: Uuid,
        subject: &str,
        payload: &serde_json::Value,
    ) -> Result<i64, BusError> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        let seq = g.0;
        g.1.push((
            Instant::now(),
            Pending {
                seq,
                event_id,
                subject: subject.to_string(),
                payload: payload.clone(),
            },
        ));
        Ok(seq)
    }
    async fn pending(&self, older_than: Duration, limit: i64) -> Result<Vec<Pending>, BusError> {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok(g.1
            .iter()
            .filter(|(at, _)| at.elapsed() >= older_than)
            .take(limit.max(0) as usize)
            .map(|(_, p)| p.clone())
            .collect())
    }
    async fn mark_relayed(&self, seq: i64) -> Result<(), BusError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .retain(|(_, p)| p.seq != seq);
        Ok(())
    }
}
