//! The Postgres `Store`: forced row-level security, one policy per tenant table (see
//! `platform/migrations/`). The application connects as `aiaas_app`, a role that owns nothing, and
//! every transaction starts with `set_config('app.tenant_id', ..., true)` (a `SET LOCAL`), so the
//! database itself, not this code, keeps each tenant's rows apart. A statement without a tenant
//! context fails in the database.
//!
//! Records are stored as `jsonb` bodies next to the columns that queries filter on; the body is the
//! serde form of the model type, so the two backends cannot disagree on a field.

use super::model::*;
use super::{Store, StoreError};
use crate::domain::{Level, Role, TenantId};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// The migrations of `platform/migrations/`, embedded in the binary (`platform migrate`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The role the application logs in as: it owns no table, so forced RLS applies to every query.
pub const APP_ROLE: &str = "aiaas_app";

/// Runs the migrations as the administrator at `admin_url` (who may create roles).
pub async fn migrate(admin_url: &str) -> Result<(), StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(admin_url)
        .await
        .map_err(unavailable)?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
    pool.close().await;
    Ok(())
}

/// The application's connection options: the database of `url`, logged in as [`APP_ROLE`] (the
/// password of `url` is kept; trust or a `.pgpass` entry is expected for the app role).
pub fn app_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("bad database url: {e}")))?;
    Ok(opts.username(APP_ROLE))
}

/// The Postgres backend of the `Store` port.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Maps a database error: RLS refusals (SQLSTATE 42501, raised by the policy function or a
/// `WITH CHECK`) are tenant-context errors, a check violation on stock is handled by the caller,
/// everything else means the database could not do it.
fn db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.code().as_deref() == Some("42501") {
            return StoreError::TenantContext(d.message().to_string());
        }
    }
    unavailable(e)
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|e| unavailable(format!("cannot encode a record: {e}")))
}

fn from_json<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| unavailable(format!("cannot decode a record: {e}")))
}

fn level_rank(l: Level) -> i16 {
    match l {
        Level::Public => 0,
        Level::Internal => 1,
        Level::Confidential => 2,
        Level::Restricted => 3,
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::User => "user",
        Role::Guest => "guest",
    }
}

impl PgStore {
    /// Connects as [`APP_ROLE`] to the database of `url`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(app_options(url)?)
            .await
            .map_err(unavailable)?;
        Ok(Self { pool })
    }

    /// The pool, for tests that query as the app role directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction scoped to tenant `t`: every statement in it sees only `t`'s rows.
    async fn tx(&self, t: &TenantId) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(t.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Ok(tx)
    }

    async fn put_body<T: Serialize>(
        &self,
        t: &TenantId,
        sql: &'static str,
        id: &str,
        v: &T,
    ) -> Result<(), StoreError> {
        let mut tx = self.tx(t).await?;
        sqlx::query(sql)
            .bind(t.as_str())
            .bind(id)
            .bind(to_json(v)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn get_body<T: DeserializeOwned>(
        &self,
        t: &TenantId,
        sql: &'static str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let mut tx = self.tx(t).await?;
        let row: Option<(serde_json::Value,)> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(|(b,)| from_json(b)).transpose()
    }

    async fn list_bodies<T: DeserializeOwned>(
        &self,
        t: &TenantId,
        sql: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        let mut tx = self.tx(t).await?;
        let rows: Vec<(serde_json::Value,)> =
            sqlx::query_as(sql).fetch_all(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(|(b,)| from_json(b)).collect()
    }

    /// Records that `consumer` applied `event_id`; false when it already had.
    async fn claim_event(
        tx: &mut Transaction<'static, Postgres>,
        t: &TenantId,
        consumer: &str,
        event_id: Uuid,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO processed_events (tenant_id, consumer, event_id) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(t.as_str())
        .bind(consumer)
        .bind(event_id)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }
}

/// An upsert of `(tenant_id, <id column>, body)` into `table`.
/// Keeps `m` in the delivery queue (`outbox_pending`, a registry without RLS that holds ids only)
/// while its status is open, and out of it otherwise, in the transaction that wrote it.
async fn queue_outbox(
    tx: &mut Transaction<'static, Postgres>,
    m: &OutboxMessage,
) -> Result<(), StoreError> {
    let sql = if m.status.is_open() {
        "INSERT INTO outbox_pending (tenant_id, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM outbox_pending WHERE tenant_id = $1 AND message_id = $2"
    };
    sqlx::query(sql)
        .bind(m.tenant.as_str())
        .bind(&m.message_id)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

macro_rules! upsert {
    ($table:literal, $id:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (tenant_id, ",
            $id,
            ", body) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, ",
            $id,
            ") DO UPDATE SET body = EXCLUDED.body"
        )
    };
}

/// The body of the row of `table` whose `<id column>` is `$1` (the tenant comes from RLS).
macro_rules! by_id {
    ($table:literal, $id:literal) => {
        concat!("SELECT body FROM ", $table, " WHERE ", $id, " = $1")
    };
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn put_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        let mut tx = self.tx(&t.id).await?;
        sqlx::query("INSERT INTO tenant_registry (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(t.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO tenants (tenant_id, body) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET body = EXCLUDED.body",
        )
        .bind(t.id.as_str())
        .bind(to_json(t)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }
    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.get_body(id, by_id!("tenants", "tenant_id"), id.as_str())
            .await
    }

    async fn put_user(&self, u: &User) -> Result<(), StoreError> {
        let mut tx = self.tx(&u.tenant).await?;
        sqlx::query(
            "INSERT INTO users (tenant_id, email, user_id, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, email) DO UPDATE SET user_id = EXCLUDED.user_id, body = EXCLUDED.body",
        )
        .bind(u.tenant.as_str())
        .bind(u.email.to_lowercase())
        .bind(&u.user_id)
        .bind(to_json(u)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }
    async fn user_by_email(&self, t: &TenantId, email: &str) -> Result<Option<User>, StoreError> {
        self.get_body(t, by_id!("users", "email"), &email.to_lowercase())
            .await
    }

    async fn put_api_key(&self, k: &ApiKey) -> Result<(), StoreError> {
        let mut tx = self.tx(&k.tenant).await?;
        sqlx::query(
            "INSERT INTO api_key_index (key_hash, tenant_id) VALUES ($1, $2) \
             ON CONFLICT (key_hash) DO NOTHING",
        )
        .bind(&k.key_hash)
        .bind(k.tenant.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let (owner,): (String,) =
            sqlx::query_as("SELECT tenant_id FROM api_key_index WHERE key_hash = $1")
                .bind(&k.key_hash)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if owner != k.tenant.as_str() {
            return Err(StoreError::Conflict(
                "the API key is issued to another tenant".into(),
            ));
        }
        sqlx::query(upsert!("api_keys", "key_hash"))
            .bind(k.tenant.as_str())
            .bind(&k.key_hash)
            .bind(to_json(k)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        // The index tells the tenant; the key itself is then read under that tenant's policy.
        let tenant: Option<(String,)> =
            sqlx::query_as("SELECT tenant_id FROM api_key_index WHERE key_hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        let Some((tenant,)) = tenant else {
            return Ok(None);
        };
        let t = TenantId::parse(&tenant).map_err(|e| unavailable(e.to_string()))?;
        self.get_body(&t, by_id!("api_keys", "key_hash"), hash)
            .await
    }

    async fn put_product(&self, p: &Product) -> Result<(), StoreError> {
        let mut tx = self.tx(&p.tenant).await?;
        sqlx::query(
            "INSERT INTO products (tenant_id, sku, stock, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, sku) DO UPDATE SET stock = EXCLUDED.stock, body = EXCLUDED.body",
        )
        .bind(p.tenant.as_str())
        .bind(&p.sku)
        .bind(p.stock)
        .bind(to_json(p)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }
    async fn product(&self, t: &TenantId, sku: &str) -> Result<Option<Product>, StoreError> {
        let mut tx = self.tx(t).await?;
        let row = sqlx::query("SELECT stock, body FROM products WHERE sku = $1")
            .bind(sku)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(product_row).transpose()
    }
    async fn products(&self, t: &TenantId) -> Result<Vec<Product>, StoreError> {
        let mut tx = self.tx(t).await?;
        let rows = sqlx::query("SELECT stock, body FROM products ORDER BY sku")
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(product_row).collect()
    }
    async fn adjust_stock(&self, t: &TenantId, sku: &str, delta: i64) -> Result<i64, StoreError> {
        let mut tx = self.tx(t).await?;
        let stock: Option<(i64,)> =
            sqlx::query_as("SELECT stock FROM products WHERE sku = $1 FOR UPDATE")
                .bind(sku)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let Some((stock,)) = stock else {
            return Err(StoreError::NotFound(format!("product {sku}")));
        };
        if stock + delta < 0 {
            return Err(StoreError::InsufficientStock {
                sku: sku.to_string(),
                available: stock,
                requested: -delta,
            });
        }
        sqlx::query("UPDATE products SET stock = stock + $2 WHERE sku = $1")
            .bind(sku)
            .bind(delta)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(stock + delta)
    }

    async fn next_sequence(&self, name: &str) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "INSERT INTO sequences (name, value) VALUES ($1, 3001) \
             ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1 RETURNING value",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(n as u64)
    }

    async fn put_order(&self, o: &Order) -> Result<(), StoreError> {
        self.put_body(&o.tenant, upsert!("orders", "order_id"), &o.order_id, o)
            .await
    }
    async fn order(&self, t: &TenantId, id: &str) -> Result<Option<Order>, StoreError> {
        self.get_body(t, by_id!("orders", "order_id"), id).await
    }

    async fn put_payment(&self, p: &Payment) -> Result<(), StoreError> {
        self.put_body(
            &p.tenant,
            upsert!("payments", "payment_id"),
            &p.payment_id,
            p,
        )
        .await
    }
    async fn payment(&self, t: &TenantId, id: &str) -> Result<Option<Payment>, StoreError> {
        self.get_body(t, by_id!("payments", "payment_id"), id).await
    }

    async fn put_lead(&self, l: &Lead) -> Result<(), StoreError> {
        let mut tx = self.tx(&l.tenant).await?;
        sqlx::query(
            "INSERT INTO leads (tenant_id, lead_id, email, status, body) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, lead_id) DO UPDATE \
             SET email = EXCLUDED.email, status = EXCLUDED.status, body = EXCLUDED.body",
        )
        .bind(l.tenant.as_str())
        .bind(&l.lead_id)
        .bind(l.email.to_lowercase())
        .bind(&l.status)
        .bind(to_json(l)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }
    async fn lead(&self, t: &TenantId, id: &str) -> Result<Option<Lead>, StoreError> {
        self.get_body(t, by_id!("leads", "lead_id"), id).await
    }
    async fn leads_by_email(&self, t: &TenantId, email: &str) -> Result<Vec<Lead>, StoreError> {
        let mut tx = self.tx(t).await?;
        let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
            "SELECT body FROM leads WHERE email = $1 AND status <> 'reverted' ORDER BY lead_id",
        )
        .bind(email.to_lowercase())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(|(b,)| from_json(b)).collect()
    }

    async fn put_ticket(&self, k: &Ticket) -> Result<(), StoreError> {
        self.put_body(&k.tenant, upsert!("tickets", "ticket_id"), &k.ticket_id, k)
            .await
    }
    async fn ticket(&self, t: &TenantId, id: &str) -> Result<Option<Ticket>, StoreError> {
        self.get_body(t, by_id!("tickets", "ticket_id"), id).await
    }

    async fn put_outbox(&self, m: &OutboxMessage) -> Result<(), StoreError> {
        // The upsert keeps the row's `seq`, so an update stays in its place in the queue.
        let mut tx = self.tx(&m.tenant).await?;
        sqlx::query(upsert!("outbox_messages", "message_id"))
            .bind(m.tenant.as_str())
            .bind(&m.message_id)
            .bind(to_json(m)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        queue_outbox(&mut tx, m).await?;
        tx.commit().await.map_err(db)
    }
    async fn transition_outbox(
        &self,
        m: &OutboxMessage,
        from: &[DeliveryStatus],
    ) -> Result<bool, StoreError> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let mut tx = self.tx(&m.tenant).await?;
        let done = sqlx::query(
            "UPDATE outbox_messages SET body = $3 WHERE tenant_id = $1 AND message_id = $2 \
             AND body->>'status' = ANY($4)",
        )
        .bind(m.tenant.as_str())
        .bind(&m.message_id)
        .bind(to_json(m)?)
        .bind(&from)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        queue_outbox(&mut tx, m).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }
    async fn pending_outbox(&self, limit: usize) -> Result<Vec<(TenantId, String)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT tenant_id, message_id FROM outbox_pending ORDER BY seq LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|(t, id)| TenantId::parse(&t).ok().map(|t| (t, id)))
            .collect())
    }
    async fn outbox(&self, t: &TenantId) -> Result<Vec<OutboxMessage>, StoreError> {
        self.list_bodies(t, "SELECT body FROM outbox_messages ORDER BY seq")
            .await
    }

    async fn put_document(&self, d: &Document) -> Result<(), StoreError> {
        let mut tx = self.tx(&d.tenant).await?;
        let roles: Option<Vec<&str>> = d
            .roles
            .as_ref()
            .map(|r| r.iter().map(|r| role_name(*r)).collect());
        sqlx::query(
            "INSERT INTO documents (tenant_id, document_id, level, roles, expires_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, document_id) DO UPDATE \
             SET level = EXCLUDED.level, roles = EXCLUDED.roles, expires_at = EXCLUDED.expires_at, \
             body = EXCLUDED.body",
        )
        .bind(d.tenant.as_str())
        .bind(d.document_id)
        .bind(level_rank(d.level))
        .bind(roles)
        .bind(d.expires_at)
        .bind(to_json(d)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }
    async fn document(&self, t: &TenantId, id: Uuid) -> Result<Option<Document>, StoreError> {
        let sql = "SELECT body FROM documents WHERE document_id = $1::uuid";
        self.get_body(t, sql, &id.to_string()).await
    }
    async fn documents(&self, t: &TenantId) -> Result<Vec<Document>, StoreError> {
        self.list_bodies(t, "SELECT body FROM documents ORDER BY document_id")
            .await
    }
    async fn visible_documents(
        &self,
        t: &TenantId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Vec<Document>, StoreError> {
        // The permission filter runs in the query, under the tenant's policy.
        let mut tx = self.tx(t).await?;
        let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
            "SELECT body FROM documents WHERE level <= $1 \
             AND (roles IS NULL OR $2 = ANY(roles)) \
             AND (expires_at IS NULL OR expires_at > $3) ORDER BY document_id",
        )
        .bind(level_rank(role.max_level()))
        .bind(role_name(role))
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(|(b,)| from_json(b)).collect()
    }

    async fn put_run(&self, r: &Run) -> Result<(), StoreError> {
        let mut tx = self.tx(&r.tenant).await?;
        sqlx::query(
            "INSERT INTO runs (tenant_id, run_id, body) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, run_id) DO UPDATE SET body = EXCLUDED.body",
        )
        .bind(r.tenant.as_str())
        .bind(r.run_id)
        .bind(to_json(r)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }
    async fn run(&self, t: &TenantId, id: Uuid) -> Result<Option<Run>, StoreError> {
        let sql = "SELECT body FROM runs WHERE run_id = $1::uuid";
        self.get_body(t, sql, &id.to_string()).await
    }

    async fn unfinished_runs(&self, t: &TenantId) -> Result<Vec<Run>, StoreError> {
        self.list_bodies(
            t,
            "SELECT body FROM runs WHERE body->>'status' IN ('running', 'compensating') \
             ORDER BY body->>'started_at'",
        )
        .await
    }
    async fn claim_run(
        &self,
        r: &Run,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // The lease as the stored body spells it (serde's form of the same instant).
        let lease = to_json(&lease_until)?;
        let mut tx = self.tx(&r.tenant).await?;
        let done = sqlx::query(
            "UPDATE runs SET body = $3 WHERE tenant_id = $1 AND run_id = $2 \
             AND body->'checkpoint'->>'owner' = $4 AND body->'checkpoint'->'lease_until' = $5",
        )
        .bind(r.tenant.as_str())
        .bind(r.run_id)
        .bind(to_json(r)?)
        .bind(owner)
        .bind(lease)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() == 1)
    }
    async fn tenant_ids(&self) -> Result<Vec<TenantId>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT tenant_id FROM tenant_registry ORDER BY tenant_id")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|(t,)| TenantId::parse(&t).ok())
            .collect())
    }
    async fn append_audit(&self, a: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.tx(&a.tenant).await?;
        sqlx::query("INSERT INTO audit_log (tenant_id, at, outcome, body) VALUES ($1, $2, $3, $4)")
            .bind(a.tenant.as_str())
            .bind(a.at)
            .bind(&a.outcome)
            .bind(to_json(a)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }
    async fn audit(&self, t: &TenantId) -> Result<Vec<AuditEntry>, StoreError> {
        self.list_bodies(t, "SELECT body FROM audit_log ORDER BY seq")
            .await
    }

    async fn add_usage(
        &self,
        t: &TenantId,
        period: &str,
        event_id: Uuid,
        d: &Usage,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tx(t).await?;
        if !Self::claim_event(&mut tx, t, "usage", event_id).await? {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO usage_counters (tenant_id, period, requests, tokens, tool_calls, cost_usd) \
             VALUES ($1, $6, $2, $3, $4, $5) ON CONFLICT (tenant_id, period) DO UPDATE SET \
             requests = usage_counters.requests + EXCLUDED.requests, \
             tokens = usage_counters.tokens + EXCLUDED.tokens, \
             tool_calls = usage_counters.tool_calls + EXCLUDED.tool_calls, \
             cost_usd = usage_counters.cost_usd + EXCLUDED.cost_usd",
        )
        .bind(t.as_str())
        .bind(d.requests as i64)
        .bind(d.tokens as i64)
        .bind(d.tool_calls as i64)
        .bind(d.cost_usd)
        .bind(period)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }
    async fn usage(&self, t: &TenantId, period: &str) -> Result<Usage, StoreError> {
        let mut tx = self.tx(t).await?;
        let row: Option<(i64, i64, i64, f64)> = sqlx::query_as(
            "SELECT requests, tokens, tool_calls, cost_usd FROM usage_counters \
             WHERE tenant_id = $1 AND period = $2",
        )
        .bind(t.as_str())
        .bind(period)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(row
            .map(|(r, k, c, usd)| Usage {
                requests: r as u64,
                tokens: k as u64,
                tool_calls: c as u64,
                cost_usd: usd,
            })
            .unwrap_or_default())
    }

    async fn add_run_summary(
        &self,
        t: &TenantId,
        event_id: Uuid,
        s: &RunSummary,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tx(t).await?;
        if !Self::claim_event(&mut tx, t, "analytics", event_id).await? {
            return Ok(false);
        }
        sqlx::query("INSERT INTO run_summaries (tenant_id, body) VALUES ($1, $2)")
            .bind(t.as_str())
            .bind(to_json(s)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }
    async fn run_summaries(&self, t: &TenantId) -> Result<Vec<RunSummary>, StoreError> {
        self.list_bodies(t, "SELECT body FROM run_summaries ORDER BY seq")
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}

fn product_row(row: sqlx::postgres::PgRow) -> Result<Product, StoreError> {
    let stock: i64 = row.try_get("stock").map_err(db)?;
    let body: serde_json::Value = row.try_get("body").map_err(db)?;
    let mut p: Product = from_json(body)?;
    p.stock = stock;
    Ok(p)
}
