//! The embedded `Store`: maps keyed by tenant first, behind one lock. It is the default backend and
//! the reference behaviour the Postgres backend must match.

use super::model::*;
use super::{Store, StoreError};
use crate::domain::{Role, TenantId};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use uuid::Uuid;

/// Rows of one kind, keyed by tenant then by id, so every read names its tenant.
type Rows<T> = HashMap<TenantId, BTreeMap<String, T>>;

#[derive(Default)]
struct Inner {
    tenants: HashMap<TenantId, Tenant>,
    users: Rows<User>,
    api_keys: HashMap<String, ApiKey>,
    products: Rows<Product>,
    sequences: HashMap<String, u64>,
    orders: Rows<Order>,
    payments: Rows<Payment>,
    leads: Rows<Lead>,
    tickets: Rows<Ticket>,
    /// In queue order, not by id.
    outbox: HashMap<TenantId, Vec<OutboxMessage>>,
    /// The delivery queue across tenants, oldest first.
    pending: Vec<(TenantId, String)>,
    documents: Rows<Document>,
    runs: Rows<Run>,
    audit: HashMap<TenantId, Vec<AuditEntry>>,
    usage: HashMap<(TenantId, String), Usage>,
    summaries: HashMap<TenantId, Vec<RunSummary>>,
    /// `(consumer, event id)` already applied by an idempotent consumer.
    processed: std::collections::HashSet<(&'static str, Uuid)>,
}

impl Inner {
    /// Keeps `m` in the delivery queue while its status is open, and out of it otherwise.
    fn queue(&mut self, m: &OutboxMessage) {
        let key = (m.tenant.clone(), m.message_id.clone());
        let queued = self.pending.contains(&key);
        if m.status.is_open() && !queued {
            self.pending.push(key);
        } else if !m.status.is_open() && queued {
            self.pending.retain(|k| k != &key);
        }
    }
}

/// In-memory store; cheap to create, one per test server.
#[derive(Default)]
pub struct MemoryStore(Mutex<Inner>, std::sync::atomic::AtomicBool);

impl MemoryStore {
    /// A fault hook for tests of degraded operation: while set down, every call answers
    /// `StoreError::Unavailable`, as a database that went away would.
    pub fn set_down(&self, down: bool) {
        self.1.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    fn up(&self) -> Result<(), StoreError> {
        if self.1.load(std::sync::atomic::Ordering::SeqCst) {
            Err(StoreError::Unavailable(
                "the embedded store is set down".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }
}

fn get<T: Clone>(rows: &Rows<T>, t: &TenantId, id: &str) -> Option<T> {
    rows.get(t).and_then(|m| m.get(id)).cloned()
}

fn put<T>(rows: &mut Rows<T>, t: &TenantId, id: String, v: T) {
    rows.entry(t.clone()).or_default().insert(id, v);
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn put_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| i.tenants.insert(t.id.clone(), t.clone()));
        Ok(())
    }
    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.up()?;
        Ok(self.with(|i| i.tenants.get(id).cloned()))
    }
    async fn put_user(&self, u: &User) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| put(&mut i.users, &u.tenant, u.email.to_lowercase(), u.clone()));
        Ok(())
    }
    async fn user_by_email(&self, t: &TenantId, email: &str) -> Result<Option<User>, StoreError> {
        self.up()?;
        Ok(self.with(|i| get(&i.users, t, &email.to_lowercase())))
    }
    async fn put_api_key(&self, k: &ApiKey) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| match i.api_keys.get(&k.key_hash) {
            Some(other) if other.tenant != k.tenant => Err(StoreError::Conflict(
                "the API key is issued to another tenant".into(),
            )),
            _ => {
                i.api_keys.insert(k.key_hash.clone(), k.clone());
                Ok(())
            }
        })
    }
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.up()?;
        Ok(self.with(|i| i.api_keys.get(hash).cloned()))
    }
    async fn put_product(&self, p: &Product) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| put(&mut i.products, &p.tenant, p.sku.clone(), p.clone()));
        Ok(())
    }
    async fn product(&self, t: &TenantId, sku: &str) -> Result<Option<Product>, StoreError> {
        self.up()?;
        Ok(self.with(|i| get(&i.products, t, sku)))
    }
    async fn products(&self, t: &TenantId) -> Result<Vec<Product>, StoreError> {
        self.up()?;
        Ok(self.with(|i| {
            i.products
                .get(t)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default()
        }))
    }
    async fn adjust_stock(&self, t: &TenantId, sku: &str, delta: i64) -> Result<i64, StoreError> {
        self.up()?;
        self.with(|i| {
            let p = i
                .products
                .get_mut(t)
                .and_then(|m| m.get_mut(sku))
                .ok_or_else(|| StoreError::NotFound(format!("product {sku}")))?;
            if p.stock + delta < 0 {
                return Err(StoreError::InsufficientStock {
                    sku: sku.to_string(),
                    available: p.stock,
                    requested: -delta,
                });
            }
            p.stock += delta;
            Ok(p.stock)
        })
    }
    async fn next_sequence(&self, name: &str) -> Result<u64, StoreError> {
        self.up()?;
        Ok(self.with(|i| {
            let n = i.sequences.entry(name.to_string()).or_insert(3000);
            *n += 1;
            *n
        }))
    }
    async fn put_order(&self, o: &Order) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| put(&mut i.orders, &o.tenant, o.order_id.clone(), o.clone()));
        Ok(())
    }
    async fn order(&self, t: &TenantId, id: &str) -> Result<Option<Order>, StoreError> {
        self.up()?;
        Ok(self.with(|i| get(&i.orders, t, id)))
    }
    async fn put_payment(&self, p: &Payment) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| put(&mut i.payments, &p.tenant, p.payment_id.clone(), p.clone()));
        Ok(())
    }
    async fn payment(&self, t: &TenantId, id: &str) -> Result<Option<Payment>, StoreError> {
        self.up()?;
        Ok(self.with(|i| get(&i.payments, t, id)))
    }
    async fn put_lead(&self, l: &Lead) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| put(&mut i.leads, &l.tenant, l.lead_id.clone(), l.clone()));
        Ok(())
    }
    async fn lead(&self, t: &TenantId, id: &str) -> Result<Option<Lead>, StoreError> {
        self.up()?;
        Ok(self.with(|i| get(&i.leads, t, id)))
    }
    async fn leads_by_email(&self, t: &TenantId, email: &str) -> Result<Vec<Lead>, StoreError> {
        self.up()?;
        let email = email.to_lowercase();
        Ok(self.with(|i| {
            i.leads
                .get(t)
                .map(|m| {
                    m.values()
                        .filter(|l| l.email.to_lowercase() == email && l.status != "reverted")
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        }))
    }
    async fn put_ticket(&self, k: &Ticket) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| put(&mut i.tickets, &k.tenant, k.ticket_id.clone(), k.clone()));
        Ok(())
    }
    async fn ticket(&self, t: &TenantId, id: &str) -> Result<Option<Ticket>, StoreError> {
        self.up()?;
        Ok(self.with(|i| get(&i.tickets, t, id)))
    }
    async fn put_outbox(&self, m: &OutboxMessage) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| {
            let q = i.outbox.entry(m.tenant.clone()).or_default();
            match q.iter_mut().find(|x| x.message_id == m.message_id) {
                Some(x) => *x = m.clone(),
                None => q.push(m.clone()),
            }
            i.queue(m);
        });
        Ok(())
    }
    async fn transition_outbox(
        &self,
        m: &OutboxMessage,
        from: &[DeliveryStatus],
    ) -> Result<bool, StoreError> {
        self.up()?;
        Ok(self.with(|i| {
            let Some(x) = i
                .outbox
                .get_mut(&m.tenant)
                .and_then(|q| q.iter_mut().find(|x| x.message_id == m.message_id))
            else {
                return false;
            };
            if !from.contains(&x.status) {
                return false;
            }
            *x = m.clone();
            i.queue(m);
            true
        }))
    }
    async fn pending_outbox(&self, limit: usize) -> Result<Vec<(TenantId, String)>, StoreError> {
        self.up()?;
        Ok(self.with(|i| i.pending.iter().take(limit).cloned().collect()))
    }
    async fn outbox(&self, t: &TenantId) -> Result<Vec<OutboxMessage>, StoreError> {
        self.up()?;
        Ok(self.with(|i| i.outbox.get(t).cloned().unwrap_or_default()))
    }
    async fn put_document(&self, d: &Document) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| {
            put(
                &mut i.documents,
                &d.tenant,
                d.document_id.to_string(),
                d.clone(),
            )
        });
        Ok(())
    }
    async fn document(&self, t: &TenantId, id: Uuid) -> Result<Option<Document>, StoreError> {
        self.up()?;
        Ok(self.with(|i| get(&i.documents, t, &id.to_string())))
    }
    async fn documents(&self, t: &TenantId) -> Result<Vec<Document>, StoreError> {
        self.up()?;
        let mut all: Vec<Document> = self.with(|i| {
            i.documents
                .get(t)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default()
        });
        all.sort_by_key(|d| d.document_id);
        Ok(all)
    }
    async fn visible_documents(
        &self,
        t: &TenantId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Vec<Document>, StoreError> {
        self.up()?;
        Ok(self.with(|i| {
            i.documents
                .get(t)
                .map(|m| {
                    m.values()
                        .filter(|d| d.visible_to(role, now))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        }))
    }
    async fn put_run(&self, r: &Run) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| put(&mut i.runs, &r.tenant, r.run_id.to_string(), r.clone()));
        Ok(())
    }
    async fn run(&self, t: &TenantId, id: Uuid) -> Result<Option<Run>, StoreError> {
        self.up()?;
        Ok(self.with(|i| get(&i.runs, t, &id.to_string())))
    }
    async fn unfinished_runs(&self, t: &TenantId) -> Result<Vec<Run>, StoreError> {
        self.up()?;
        Ok(self.with(|i| {
            let mut v: Vec<Run> = i
                .runs
                .get(t)
                .into_iter()
                .flat_map(|m| m.values())
                .filter(|r| r.unfinished())
                .cloned()
                .collect();
            v.sort_by_key(|r| r.started_at);
            v
        }))
    }
    async fn claim_run(
        &self,
        r: &Run,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.up()?;
        Ok(self.with(|i| {
            let id = r.run_id.to_string();
            let held = get(&i.runs, &r.tenant, &id)
                .and_then(|cur| cur.checkpoint)
                .is_some_and(|c| c.owner == owner && c.lease_until == lease_until);
            if held {
                put(&mut i.runs, &r.tenant, id, r.clone());
            }
            held
        }))
    }
    async fn tenant_ids(&self) -> Result<Vec<TenantId>, StoreError> {
        self.up()?;
        Ok(self.with(|i| {
            let mut v: Vec<TenantId> = i.tenants.keys().cloned().collect();
            v.sort();
            v
        }))
    }
    async fn append_audit(&self, a: &AuditEntry) -> Result<(), StoreError> {
        self.up()?;
        self.with(|i| i.audit.entry(a.tenant.clone()).or_default().push(a.clone()));
        Ok(())
    }
    async fn audit(&self, t: &TenantId) -> Result<Vec<AuditEntry>, StoreError> {
        self.up()?;
        Ok(self.with(|i| i.audit.get(t).cloned().unwrap_or_default()))
    }
    async fn add_usage(
        &self,
        t: &TenantId,
        period: &str,
        event_id: Uuid,
        d: &Usage,
    ) -> Result<bool, StoreError> {
        self.up()?;
        Ok(self.with(|i| {
            if !i.processed.insert(("usage", event_id)) {
                return false;
            }
            let u = i.usage.entry((t.clone(), period.to_string())).or_default();
            u.requests += d.requests;
            u.tokens += d.tokens;
            u.tool_calls += d.tool_calls;
            u.cost_usd += d.cost_usd;
            true
        }))
    }
    async fn usage(&self, t: &TenantId, period: &str) -> Result<Usage, StoreError> {
        self.up()?;
        Ok(self.with(|i| {
            i.usage
                .get(&(t.clone(), period.to_string()))
                .cloned()
                .unwrap_or_default()
        }))
    }
    async fn add_run_summary(
        &self,
        t: &TenantId,
        event_id: Uuid,
        s: &RunSummary,
    ) -> Result<bool, StoreError> {
        self.up()?;
        Ok(self.with(|i| {
            if !i.processed.insert(("analytics", event_id)) {
                return false;
            }
            i.summaries.entry(t.clone()).or_default().push(s.clone());
            true
        }))
    }
    async fn run_summaries(&self, t: &TenantId) -> Result<Vec<RunSummary>, StoreError> {
        self.up()?;
        Ok(self.with(|i| i.summaries.get(t).cloned().unwrap_or_default()))
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.up()?;
        Ok(())
    }
}
