//! The built-in business tools: adapters over the `Store` for the knowledge base, catalogue and
//! inventory, payments, orders, email and notification outboxes, the CRM and escalation tickets.
//! Compensation timeouts and retries follow DESIGN.md's saga table.

use super::{Compensation, Manifest, Param, ParamKind, Tool, ToolCtx, ToolError};
use crate::domain::TenantId;
use crate::store::model::*;
use crate::store::Store;
use serde_json::{json, Value};
use std::sync::Arc;

/// Which built-in a [`Builtin`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    KbSearch,
    OrderLookup,
    InventoryPrice,
    InventoryReserve,
    InventoryRestock,
    PaymentAuthorize,
    PaymentCapture,
    PaymentRefund,
    OrderCreate,
    OrderMarkCancelled,
    OrderModify,
    EmailSend,
    CrmFindDuplicate,
    LeadQualify,
    CrmCreateLead,
    NotifySales,
    NotifyAgents,
    TicketDraft,
    TicketCreate,
    HttpFetch,
}

/// A built-in tool: its manifest and which adapter runs it.
pub struct Builtin {
    kind: Kind,
    manifest: Manifest,
}

fn p(name: &'static str, kind: ParamKind, required: bool) -> Param {
    Param {
        name,
        kind,
        required,
    }
}

fn comp(action: &'static str, timeout_ms: u64, retries: u32) -> Option<Compensation> {
    Some(Compensation {
        action,
        timeout_ms,
        retries,
    })
}

#[allow(clippy::too_many_arguments)]
fn tool(
    kind: Kind,
    name: &'static str,
    description: &'static str,
    params: Vec<Param>,
    side_effect: bool,
    compensation: Option<Compensation>,
) -> Arc<dyn Tool> {
    Arc::new(Builtin {
        kind,
        manifest: Manifest {
            name,
            description,
            params,
            timeout_ms: 5_000,
            retries: 2,
            side_effect,
            compensation,
        },
    })
}

/// Every built-in tool.
pub fn all() -> Vec<Arc<dyn Tool>> {
    use ParamKind::*;
    vec![
        tool(
            Kind::KbSearch,
            "kb.search",
            "Ranked knowledge-base search within the caller's permissions",
            vec![p("query", String, true), p("top_k", Integer, false)],
            false,
            None,
        ),
        tool(
            Kind::OrderLookup,
            "order.lookup",
            "An order of the tenant, with status and tracking",
            vec![p("order_id", String, true)],
            false,
            None,
        ),
        tool(
            Kind::InventoryPrice,
            "inventory.price",
            "Validates items against the catalogue and prices them",
            vec![p("items", Array, true)],
            false,
            None,
        ),
        tool(
            Kind::InventoryReserve,
            "inventory.reserve",
            "Reserves stock for every item, or none",
            vec![p("items", Array, true)],
            true,
            comp("inventory.restock", 15_000, 3),
        ),
        tool(
            Kind::InventoryRestock,
            "inventory.restock",
            "Returns items to stock",
            vec![p("items", Array, true)],
            true,
            None,
        ),
        tool(
            Kind::PaymentAuthorize,
            "payment.authorize",
            "Authorizes a payment; large amounts go to manual review",
            vec![
                p("amount_cents", Integer, true),
                p("method", String, true),
                p("card_token", String, false),
            ],
            true,
            comp("payment.void", 30_000, 3),
        ),
        tool(
            Kind::PaymentCapture,
            "payment.capture",
            "Captures an authorized payment and marks the order paid",
            vec![p("payment_id", String, true), p("order_id", String, false)],
            true,
            comp("payment.refund", 30_000, 3),
        ),
        tool(
            Kind::PaymentRefund,
            "payment.refund",
            "Refunds or voids a payment",
            vec![
                p("payment_id", String, true),
                p("amount_cents", Integer, true),
            ],
            true,
            None,
        ),
        tool(
            Kind::OrderCreate,
            "order.create",
            "Creates the order record",
            vec![
                p("items", Array, true),
                p("total_cents", Integer, true),
                p("payment_id", String, true),
                p("payment_status", String, true),
                p("shipping_address", String, false),
            ],
            true,
            comp("order.cancel", 15_000, 3),
        ),
        tool(
            Kind::OrderMarkCancelled,
            "order.mark_cancelled",
            "Marks an order cancelled with its refund",
            vec![
                p("order_id", String, true),
                p("refund_cents", Integer, true),
            ],
            true,
            None,
        ),
        tool(
            Kind::OrderModify,
            "order.modify",
            "Changes the shipping address of an order",
            vec![
                p("order_id", String, true),
                p("shipping_address", String, true),
            ],
            true,
            None,
        ),
        tool(
            Kind::EmailSend,
            "email.send",
            "Queues an email to the customer",
            vec![
                p("template", String, true),
                p("to", String, false),
                p("order_id", String, false),
            ],
            true,
            comp("email.cancel", 10_000, 2),
        ),
        tool(
            Kind::CrmFindDuplicate,
            "crm.find_duplicate",
            "Finds an existing lead with the same email",
            vec![p("email", String, true)],
            false,
            None,
        ),
        tool(
            Kind::LeadQualify,
            "lead.qualify",
            "Scores a lead and grades it A, B or C",
            vec![
                p("email", String, true),
                p("company", String, false),
                p("phone", String, false),
                p("interest", String, false),
            ],
            false,
            None,
        ),
        tool(
            Kind::CrmCreateLead,
            "crm.create_lead",
            "Creates the lead in the CRM",
            vec![
                p("name", String, true),
                p("email", String, true),
                p("company", String, false),
                p("phone", String, false),
                p("interest", String, false),
                p("source", String, false),
                p("grade", String, true),
                p("score", Integer, true),
            ],
            true,
            comp("crm.revert", 20_000, 3),
        ),
        tool(
            Kind::NotifySales,
            "notify.sales",
            "Notifies the sales team of a new lead",
            vec![p("lead_id", String, true), p("grade", String, true)],
            true,
            comp("notify.retract", 5_000, 2),
        ),
        tool(
            Kind::NotifyAgents,
            "notify.agents",
            "Notifies the agents of a ticket's queue",
            vec![
                p("ticket_id", String, true),
                p("queue", String, true),
                p("subject", String, true),
            ],
            true,
            comp("notify.retract", 5_000, 2),
        ),
        tool(
            Kind::TicketDraft,
            "ticket.draft",
            "Drafts an escalation ticket from a customer message",
            vec![p("message", String, true)],
            false,
            None,
        ),
        tool(
            Kind::TicketCreate,
            "ticket.create",
            "Opens a ticket for a human agent",
            vec![
                p("subject", String, true),
                p("description", String, true),
                p("priority", String, false),
            ],
            true,
            None,
        ),
        tool(
            Kind::HttpFetch,
            "http.fetch",
            "Reads a public web page (http or https; internal addresses are refused)",
            vec![p("url", String, true)],
            false,
            None,
        ),
    ]
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn i(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn rejected(code: &str, message: impl Into<String>) -> ToolError {
    ToolError::Rejected {
        code: code.into(),
        message: message.into(),
    }
}

/// Queues `m` unless a message with its id is already in the outbox: a repeated call (the same
/// idempotency key, so the same id) after a lost answer must not put a delivered message back in
/// the delivery queue.
async fn queue_once(st: &dyn Store, m: &OutboxMessage) -> Result<(), ToolError> {
    if !st
        .outbox(&m.tenant)
        .await?
        .iter()
        .any(|x| x.message_id == m.message_id)
    {
        st.put_outbox(m).await?;
    }
    Ok(())
}

/// The tenant's payment `id`, or a `not_found` rejection.
async fn payment_of(st: &dyn Store, t: &TenantId, id: &str) -> Result<Payment, ToolError> {
    st.payment(t, id)
        .await?
        .ok_or_else(|| rejected("not_found", format!("payment {id} not found")))
}

/// The tenant's order `id`, or an `order_not_found` rejection.
async fn order_of(st: &dyn Store, t: &TenantId, id: &str) -> Result<Order, ToolError> {
    st.order(t, id)
        .await?
        .ok_or_else(|| rejected("order_not_found", format!("order {id} not found")))
}

/// Mirrors a payment's new status on its order, when the call names one.
async fn mirror_on_order(
    st: &dyn Store,
    t: &TenantId,
    order_id: Option<&str>,
    status: &str,
) -> Result<(), ToolError> {
    if let Some(oid) = order_id {
        if let Some(mut o) = st.order(t, oid).await? {
            o.payment_status = status.into();
            st.put_order(&o).await?;
        }
    }
    Ok(())
}

/// Dollars as the API shows them, from cents.
pub fn dollars(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// The API's view of an order.
pub fn order_json(o: &Order) -> Value {
    let mut v = json!({
        "order_id": o.order_id,
        "status": o.status,
        "total_amount": dollars(o.total_cents),
        "payment_status": o.payment_status,
        "tracking_number": o.tracking_number,
        "shipping_address": o.shipping_address,
        "items": o.items.iter().map(|i| json!({"sku": i.sku, "quantity": i.quantity,
            "unit_price": dollars(i.unit_price_cents)})).collect::<Vec<_>>(),
        "created_at": o.created_at,
    });
    if let Some(r) = o.refund_cents {
        v["refund_amount"] = json!(dollars(r));
    }
    v
}

/// Parses `[{sku, quantity[, unit_price_cents]}]`; quantities must be 1..=1000.
fn items(v: &Value) -> Result<Vec<OrderItem>, ToolError> {
    let arr = v
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| ToolError::InvalidParams("items must be an array".into()))?;
    if arr.is_empty() {
        return Err(rejected("no_items", "an order needs at least one item"));
    }
    arr.iter()
        .map(|it| {
            let sku =
                s(it, "sku").ok_or_else(|| ToolError::InvalidParams("item without sku".into()))?;
            let quantity = i(it, "quantity");
            if !(1..=1000).contains(&quantity) {
                return Err(rejected(
                    "invalid_quantity",
                    format!("quantity of {sku} must be 1 to 1000"),
                ));
            }
            Ok(OrderItem {
                sku: sku.to_string(),
                quantity,
                unit_price_cents: i(it, "unit_price_cents"),
            })
        })
        .collect()
}

fn items_json(items: &[OrderItem]) -> Value {
    json!(items
        .iter()
        .map(|i| json!({"sku": i.sku, "quantity": i.quantity, "unit_price_cents": i.unit_price_cents}))
        .collect::<Vec<_>>())
}

/// Score and grade of a lead: company, phone, a buying interest and a business email add up.
pub fn qualify(
    email: &str,
    company: Option<&str>,
    phone: Option<&str>,
    interest: Option<&str>,
) -> (u32, &'static str) {
    let mut score = 10;
    if company.is_some_and(|c| !c.trim().is_empty()) {
        score += 30;
    }
    if phone.is_some_and(|c| !c.trim().is_empty()) {
        score += 15;
    }
    let interest = interest.unwrap_or("").to_lowercase();
    if ["enterprise", "demo", "pricing", "quote", "seats", "annual"]
        .iter()
        .any(|w| interest.contains(w))
    {
        score += 25;
    }
    let domain = email.rsplit('@').next().unwrap_or("").to_lowercase();
    if !["gmail.com", "yahoo.com", "hotmail.com", "outlook.com"].contains(&domain.as_str()) {
        score += 20;
    }
    let grade = match score {
        70.. => "A",
        40..=69 => "B",
        _ => "C",
    };
    (score, grade)
}

impl Builtin {
    async fn run(&self, ctx: &ToolCtx, a: &Value) -> Result<Value, ToolError> {
        let st = ctx.store.as_ref();
        let t = &ctx.tenant;
        match self.kind {
            Kind::KbSearch => {
                let top_k = a
                    .get("top_k")
                    .and_then(Value::as_u64)
                    .unwrap_or(3)
                    .clamp(1, 20) as usize;
                let found = crate::rag::search(
                    st,
                    &ctx.cfg.guard,
                    t,
                    ctx.role,
                    ctx.clock.now(),
                    s(a, "query").unwrap_or(""),
                    top_k,
                )
                .await?;
                let hits = found.hits;
                // Every retrieval is audited, in chat as through the RAG API.
                crate::rag::audit(
                    st,
                    t,
                    &ctx.user_id,
                    ctx.clock.now(),
                    &hits,
                    s(a, "query").unwrap_or(""),
                )
                .await?;
                let context = crate::rag::context(&hits);
                let mut out = json!({
                    "results": hits,
                    "best": hits.first(),
                    "best_confidence": hits.first().map(|h| h.confidence).unwrap_or(0.0),
                    "context": context,
                    "citations": hits.iter().map(|h| json!({"document_id": h.document_id})).collect::<Vec<_>>(),
                });
                // Documents withheld by the guard (they carry instructions); the executor reports them.
                if !found.withheld.is_empty() {
                    out["withheld"] = json!(found.withheld);
                }
                Ok(out)
            }
            Kind::OrderLookup => {
                let id = s(a, "order_id").unwrap_or("").to_uppercase();
                Ok(match st.order(t, &id).await? {
                    Some(o) => {
                        let tracking = o
                            .tracking_number
                            .as_ref()
                            .map(|n| format!(", tracking number {n}"))
                            .unwrap_or_default();
                        let mut v = order_json(&o);
                        v["found"] = json!(true);
                        v["payment_id"] = json!(o.payment_id);
                        v["total_cents"] = json!(o.total_cents);
                        v["summary"] =
                            json!(format!("Order {} is {}{}.", o.order_id, o.status, tracking));
                        v
                    }
                    None => json!({"found": false, "order_id": id,
                        "summary": format!("I could not find an order {id} on your account. Please check the number (it looks like ORD-1234) or ask me to connect you with an agent."),
                        "code": "order_not_found"}),
                })
            }
            Kind::InventoryPrice => {
                let mut out = Vec::new();
                let mut total = 0i64;
                for mut it in items(a)? {
                    let p = st.product(t, &it.sku).await?.ok_or_else(|| {
                        rejected("unknown_sku", format!("unknown product {}", it.sku))
                    })?;
                    it.unit_price_cents = p.price_cents;
                    total += p.price_cents * it.quantity;
                    out.push(it);
                }
                Ok(json!({"items": items_json(&out), "total_cents": total}))
            }
            Kind::InventoryReserve => {
                let list = items(a)?;
                for (n, it) in list.iter().enumerate() {
                    if let Err(e) = st.adjust_stock(t, &it.sku, -it.quantity).await {
                        for done in &list[..n] {
                            st.adjust_stock(t, &done.sku, done.quantity).await?;
                        }
                        return Err(e.into());
                    }
                }
                Ok(json!({"reserved": items_json(&list)}))
            }
            Kind::InventoryRestock => {
                for it in items(a)? {
                    st.adjust_stock(t, &it.sku, it.quantity).await?;
                }
                Ok(json!({"restocked": a.get("items")}))
            }
            Kind::PaymentAuthorize => {
                let amount = i(a, "amount_cents");
                if amount <= 0 {
                    return Err(rejected("invalid_amount", "amount must be positive"));
                }
                if s(a, "card_token")
                    .is_some_and(|tok| ctx.cfg.declined_card_tokens.iter().any(|d| d == tok))
                {
                    return Err(rejected("card_declined", "the card was declined"));
                }
                let status = if amount > ctx.cfg.manual_review_above_cents {
                    "manual_review"
                } else {
                    "authorized"
                };
                let pay = Payment {
                    tenant: t.clone(),
                    payment_id: ctx.new_id("PAY", "payment.authorize"),
                    amount_cents: amount,
                    method: s(a, "method").unwrap_or("card").to_string(),
                    status: status.into(),
                };
                st.put_payment(&pay).await?;
                Ok(json!({"payment_id": pay.payment_id, "status": status, "amount_cents": amount}))
            }
            Kind::PaymentCapture => {
                let id = s(a, "payment_id").unwrap_or("");
                let mut pay = payment_of(st, t, id).await?;
                // Capturing twice (a retry after a lost answer) is the same capture.
                if pay.status == "captured" {
                    return Ok(
                        json!({"payment_id": id, "status": "captured", "amount_cents": pay.amount_cents}),
                    );
                }
                if pay.status != "authorized" {
                    return Err(rejected(
                        "not_capturable",
                        format!("payment {id} is {}", pay.status),
                    ));
                }
                pay.status = "captured".into();
                st.put_payment(&pay).await?;
                mirror_on_order(st, t, s(a, "order_id"), "captured").await?;
                Ok(
                    json!({"payment_id": id, "status": "captured", "amount_cents": pay.amount_cents}),
                )
            }
            Kind::PaymentRefund => {
                let id = s(a, "payment_id").unwrap_or("");
                let mut pay = payment_of(st, t, id).await?;
                pay.status = "refunded".into();
                st.put_payment(&pay).await?;
                Ok(json!({"payment_id": id, "refunded_cents": i(a, "amount_cents")}))
            }
            Kind::OrderCreate => {
                // Per tenant: order numbers then do not depend on other tenants' traffic, so a rerun with
                // the same seed gives the same numbers on a shared database too.
                let n = st.next_sequence(&format!("order:{}", t.as_str())).await?;
                let payment_status = s(a, "payment_status").unwrap_or("authorized").to_string();
                let order = Order {
                    tenant: t.clone(),
                    order_id: format!("ORD-{n}"),
                    user_id: ctx.user_id.clone(),
                    status: if payment_status == "manual_review" {
                        "pending_review"
                    } else {
                        "processing"
                    }
                    .into(),
                    items: items(a)?,
                    total_cents: i(a, "total_cents"),
                    payment_id: s(a, "payment_id").map(str::to_string),
                    payment_status,
                    tracking_number: None,
                    shipping_address: s(a, "shipping_address").map(str::to_string),
                    refund_cents: None,
                    created_at: ctx.clock.now(),
                };
                st.put_order(&order).await?;
                Ok(order_json(&order))
            }
            Kind::OrderMarkCancelled => {
                let id = s(a, "order_id").unwrap_or("");
                let mut o = order_of(st, t, id).await?;
                o.status = "cancelled".into();
                o.payment_status = "refunded".into();
                o.refund_cents = Some(i(a, "refund_cents"));
                st.put_order(&o).await?;
                Ok(order_json(&o))
            }
            Kind::OrderModify => {
                let id = s(a, "order_id").unwrap_or("");
                let mut o = order_of(st, t, id).await?;
                o.shipping_address = s(a, "shipping_address").map(str::to_string);
                st.put_order(&o).await?;
                Ok(order_json(&o))
            }
            Kind::EmailSend => {
                let template = s(a, "template").unwrap_or("");
                let order = s(a, "order_id").unwrap_or("");
                let m = OutboxMessage::queued(
                    t.clone(),
                    ctx.new_id("MSG", "email.send"),
                    "email",
                    s(a, "to")
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("customer:{}", ctx.user_id)),
                    format!("{template} {order}").trim().to_string(),
                    if order.is_empty() {
                        template.to_string()
                    } else {
                        format!("{template} for order {order}")
                    },
                );
                queue_once(st, &m).await?;
                Ok(json!({"message_id": m.message_id, "to": m.to}))
            }
            Kind::CrmFindDuplicate => {
                let found = st.leads_by_email(t, s(a, "email").unwrap_or("")).await?;
                Ok(json!({"duplicate_of": found.first().map(|l| l.lead_id.clone())}))
            }
            Kind::LeadQualify => {
                let (score, grade) = qualify(
                    s(a, "email").unwrap_or(""),
                    s(a, "company"),
                    s(a, "phone"),
                    s(a, "interest"),
                );
                Ok(json!({"score": score, "grade": grade}))
            }
            Kind::CrmCreateLead => {
                let lead = Lead {
                    tenant: t.clone(),
                    lead_id: ctx.new_id("LEAD", "crm.create_lead"),
                    name: s(a, "name").unwrap_or("").into(),
                    email: s(a, "email").unwrap_or("").into(),
                    company: s(a, "company").map(str::to_string),
                    phone: s(a, "phone").map(str::to_string),
                    interest: s(a, "interest").map(str::to_string),
                    source: s(a, "source").map(str::to_string),
                    grade: s(a, "grade").unwrap_or("C").into(),
                    score: i(a, "score").clamp(0, 100) as u32,
                    status: "new".into(),
                    duplicate_of: None,
                };
                st.put_lead(&lead).await?;
                Ok(json!({"lead_id": lead.lead_id, "status": lead.status}))
            }
            Kind::NotifySales => {
                let m = OutboxMessage::queued(
                    t.clone(),
                    ctx.new_id("NTF", "notify.sales"),
                    "notification",
                    "sales".into(),
                    format!("New grade {} lead", s(a, "grade").unwrap_or("?")),
                    format!("Lead {}", s(a, "lead_id").unwrap_or("")),
                );
                queue_once(st, &m).await?;
                Ok(json!({"notification_id": m.message_id}))
            }
            Kind::NotifyAgents => {
                let m = OutboxMessage::queued(
                    t.clone(),
                    ctx.new_id("NTF", "notify.agents"),
                    "notification",
                    format!("queue:{}", s(a, "queue").unwrap_or("")),
                    format!(
                        "Ticket {}: {}",
                        s(a, "ticket_id").unwrap_or(""),
                        s(a, "subject").unwrap_or("")
                    ),
                    "A customer is waiting for a person.".into(),
                );
                queue_once(st, &m).await?;
                Ok(json!({"notification_id": m.message_id}))
            }
            Kind::TicketDraft => {
                let msg = s(a, "message").unwrap_or("");
                let lower = msg.to_lowercase();
                let priority = if ["urgent", "furious", "unacceptable", "lawyer", "immediately"]
                    .iter()
                    .any(|w| lower.contains(w))
                {
                    "high"
                } else {
                    "normal"
                };
                let subject: String = msg.chars().take(80).collect();
                Ok(
                    json!({"subject": format!("Customer escalation: {subject}"), "description": msg, "priority": priority}),
                )
            }
            Kind::HttpFetch => {
                super::fetch::fetch(&ctx.cfg.http_fetch, s(a, "url").unwrap_or("")).await
            }
            Kind::TicketCreate => {
                let priority = s(a, "priority").unwrap_or("normal");
                if !["low", "normal", "high", "urgent"].contains(&priority) {
                    return Err(rejected(
                        "invalid_priority",
                        format!("priority `{priority}` is not low, normal, high or urgent"),
                    ));
                }
                let ticket = Ticket {
                    tenant: t.clone(),
                    ticket_id: ctx.new_id("TCK", "ticket.create"),
                    subject: s(a, "subject").unwrap_or("").into(),
                    description: s(a, "description").unwrap_or("").into(),
                    priority: priority.into(),
                    status: "escalated".into(),
                    assigned_queue: if matches!(priority, "high" | "urgent") {
                        "priority_support"
                    } else {
                        "general_support"
                    }
                    .into(),
                };
                st.put_ticket(&ticket).await?;
                Ok(
                    json!({"ticket_id": ticket.ticket_id, "status": ticket.status, "assigned_queue": ticket.assigned_queue, "priority": priority}),
                )
            }
        }
    }

    async fn undo(&self, ctx: &ToolCtx, a: &Value, out: &Value) -> Result<Value, ToolError> {
        let st = ctx.store.as_ref();
        let t = &ctx.tenant;
        match self.kind {
            Kind::InventoryReserve => {
                for it in items(a)? {
                    st.adjust_stock(t, &it.sku, it.quantity).await?;
                }
                Ok(json!({"restocked": a.get("items")}))
            }
            Kind::PaymentAuthorize => {
                // Void what is still open. A captured payment was refunded by the capture's own
                // compensation, which runs first (reverse order), so nothing is left to do here.
                let id = s(out, "payment_id").unwrap_or("");
                let mut pay = payment_of(st, t, id).await?;
                if matches!(pay.status.as_str(), "authorized" | "manual_review") {
                    pay.status = "voided".into();
                    st.put_payment(&pay).await?;
                }
                Ok(json!({"payment_id": id, "status": pay.status}))
            }
            Kind::PaymentCapture => {
                let id = s(out, "payment_id").unwrap_or("");
                let mut pay = payment_of(st, t, id).await?;
                pay.status = "refunded".into();
                st.put_payment(&pay).await?;
                mirror_on_order(st, t, s(a, "order_id"), "refunded").await?;
                Ok(
                    json!({"payment_id": id, "status": "refunded", "refunded_cents": pay.amount_cents}),
                )
            }
            Kind::OrderCreate => {
                let id = s(out, "order_id").unwrap_or("");
                let mut o = order_of(st, t, id).await?;
                o.status = "cancelled".into();
                if o.payment_status != "refunded" {
                    o.payment_status = "voided".into();
                }
                st.put_order(&o).await?;
                Ok(json!({"order_id": id, "status": "cancelled"}))
            }
            Kind::EmailSend | Kind::NotifySales | Kind::NotifyAgents => {
                let id = s(out, "message_id")
                    .or_else(|| s(out, "notification_id"))
                    .unwrap_or("");
                let m = st
                    .outbox(t)
                    .await?
                    .into_iter()
                    .find(|m| m.message_id == id)
                    .ok_or_else(|| rejected("not_found", format!("message {id} not found")))?;
                // Not yet delivered (or never deliverable): it is cancelled and never goes out.
                // Already taken by the dispatcher or delivered: it cannot be unsent, so a
                // retraction follows it on the same channel.
                let cancelled = OutboxMessage {
                    status: DeliveryStatus::Cancelled,
                    ..m.clone()
                };
                if st
                    .transition_outbox(
                        &cancelled,
                        &[DeliveryStatus::Pending, DeliveryStatus::Failed],
                    )
                    .await?
                    || m.status == DeliveryStatus::Cancelled
                {
                    return Ok(json!({"message_id": id, "status": "cancelled"}));
                }
                let retraction = OutboxMessage::queued(
                    t.clone(),
                    format!("{id}-RETRACT"),
                    &m.kind,
                    m.to.clone(),
                    format!("Cancelled: {}", m.subject),
                    format!("Please disregard our earlier message \"{}\".", m.subject),
                );
                st.put_outbox(&retraction).await?;
                Ok(
                    json!({"message_id": id, "status": "retracted", "retraction_id": retraction.message_id}),
                )
            }
            Kind::CrmCreateLead => {
                let id = s(out, "lead_id").unwrap_or("");
                let mut l = st
                    .lead(t, id)
                    .await?
                    .ok_or_else(|| rejected("not_found", format!("lead {id} not found")))?;
                l.status = "reverted".into();
                st.put_lead(&l).await?;
                Ok(json!({"lead_id": id, "status": "reverted"}))
            }
            _ => Err(ToolError::NoCompensation(self.manifest.name.to_string())),
        }
    }
}

#[async_trait::async_trait]
impl Tool for Builtin {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    async fn call(&self, ctx: &ToolCtx, params: &Value) -> Result<Value, ToolError> {
        self.run(ctx, params).await
    }
    async fn compensate(
        &self,
        ctx: &ToolCtx,
        params: &Value,
        output: &Value,
    ) -> Result<Value, ToolError> {
        self.undo(ctx, params, output).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualification_grades() {
        assert_eq!(
            qualify(
                "ceo@initech.test",
                Some("Initech"),
                Some("+1 555 0100"),
                Some("enterprise plan")
            )
            .1,
            "A"
        );
        assert_eq!(
            qualify("bo@initech.test", Some("Initech"), None, None).1,
            "B"
        );
        assert_eq!(qualify("someone@gmail.com", None, None, None).1, "C");
    }

    #[test]
    fn every_compensable_tool_names_a_positive_budget() {
        for t in all() {
            if let Some(c) = &t.manifest().compensation {
                assert!(c.timeout_ms > 0 && c.retries > 0, "{}", t.manifest().name);
                assert!(t.manifest().side_effect);
            }
        }
    }
}
