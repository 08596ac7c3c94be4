//! `GET /ws/chat`: chat over a WebSocket. The upgrade request is authenticated like any API call
//! (bearer token or API key in the handshake's headers, through the gate); then the client sends
//! JSON frames and the server answers:
//!
//! | client sends | server answers |
//! |---|---|
//! | (connects) | `handshake_ack {session_id, status: "connected", tenant_id, user_id, heartbeat_interval_ms, max_message_bytes, timestamp}` |
//! | `message {content: {text}, message_id?, context?, options?}` | `message_start`, `message_chunk`... (droppable), `message_complete {session_id, message_id?, response}` (the chat turn of `POST /api/v1/chat/message`: guards, workflow, events, rate limit and quota) or `error` |
//! | `ping {id?}` | `pong {id?, timestamp}` |
//! | `typing` | nothing to the sender; `typing {user_id, session_id}` to the tenant's other sessions |
//! | not JSON | `error {code: MALFORMED_JSON, message: "Invalid JSON format"}` |
//! | another `type` | `error {code: VALIDATION_ERROR, message: "Unknown message type"}` |
//!
//! A frame over `max_message_bytes` ends the session (the socket is closed). The server pings every
//! `heartbeat_ms`; a client silent for two heartbeats is closed. Each session's outgoing queue is
//! bounded (`outbound.rs`): a slow client loses answer chunks, never a turn's final frame.

pub mod outbound;

use super::dto::{ChatContext, ChatMessage, ChatOptions, ChatRequest};
use super::error::{ApiError, Code};
use super::extract::Caller;
use crate::app::{App, AppState};
use crate::domain::TenantId;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use outbound::{DropPolicy, Frame, Outbound, Payload};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// `config.realtime`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Frames waiting for a slow client before droppable ones go (default 64).
    pub queue_capacity: usize,
    pub drop_policy: DropPolicy,
    /// Protocol pings this often (default 30 000 ms); two silent intervals close the session.
    pub heartbeat_ms: u64,
    /// The largest frame accepted (default 1 MiB).
    pub max_message_bytes: usize,
    /// Chat messages a session may have waiting for their turn (default 4); more are refused.
    pub max_pending_turns: usize,
    /// How long an answer chunk waits for room in a full queue before the drop policy applies
    /// (default 20 ms): a client that keeps up loses nothing, a slow one loses chunks.
    pub chunk_wait_ms: u64,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 64,
            drop_policy: DropPolicy::default(),
            heartbeat_ms: 30_000,
            max_message_bytes: 1 << 20,
            max_pending_turns: 4,
            chunk_wait_ms: 20,
        }
    }
}

/// The open sessions of this instance, by tenant: where a typing notice goes.
#[derive(Default)]
pub struct Sessions {
    by_tenant: Mutex<HashMap<TenantId, HashMap<Uuid, Arc<Outbound>>>>,
}

impl Sessions {
    fn join(&self, t: &TenantId, id: Uuid, out: Arc<Outbound>) {
        let mut m = self.by_tenant.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(t.clone()).or_default().insert(id, out);
    }
    fn leave(&self, t: &TenantId, id: Uuid) {
        let mut m = self.by_tenant.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = m.get_mut(t) {
            s.remove(&id);
            if s.is_empty() {
                m.remove(t);
            }
        }
    }
    /// Queues `text` (droppable) to every session of tenant `t` but `except`; returns the drops.
    fn broadcast(&self, t: &TenantId, except: Uuid, text: &str) -> u64 {
        let peers: Vec<Arc<Outbound>> = {
            let m = self.by_tenant.lock().unwrap_or_else(|e| e.into_inner());
            m.get(t)
                .map(|s| {
                    s.iter()
                        .filter(|(id, _)| **id != except)
                        .map(|(_, o)| o.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        peers
            .iter()
            .map(|o| o.push(Frame::droppable(text.to_string())))
            .sum()
    }
}

/// A `message` frame: the chat request of `POST /api/v1/chat/message`, with `content` as an
/// object (`{text}`) or a string, and the client's own `message_id` echoed in the answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatFrame {
    #[serde(rename = "type")]
    _type: String,
    message_id: Option<String>,
    content: Content,
    metadata: Option<serde_json::Map<String, Value>>,
    context: Option<ChatContext>,
    options: Option<ChatOptions>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Object { text: String },
}

#[utoipa::path(get, path = "/ws/chat",
    responses((status = 101, description = "WebSocket chat; frames in the module documentation"),
              (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn chat(
    State(app): State<AppState>,
    caller: Caller,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return ApiError::new(
                Code::ValidationError,
                format!("a WebSocket upgrade is required: {e}"),
            )
            .into_response()
        }
    };
    let max = app.cfg.realtime.max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            let span = tracing::info_span!("ws.session", tenant_id = %caller.tenant.id, session_id = tracing::field::Empty);
            tracing::Instrument::instrument(session(app, caller, socket), span)
        })
}

fn now_text(app: &App) -> String {
    app.clock.now().to_rfc3339()
}

fn error_frame(e: ApiError, request_id: &str, message_id: Option<&str>) -> String {
    let body = e.into_body(request_id.to_string());
    json!({"type": "error", "message_id": message_id, "error": body}).to_string()
}

/// Queues a frame and counts what the bound dropped.
fn send(app: &App, out: &Outbound, f: Frame) {
    app.metrics.websocket_drops.inc_by(out.push(f));
}

async fn session(app: AppState, caller: Caller, socket: WebSocket) {
    // From the request-id stream: opening a session shifts no order or message id.
    let id = app.request_ids.uuid();
    let rid = format!("ws-{id}");
    let cfg = app.cfg.realtime.clone();
    let out = Arc::new(Outbound::new(cfg.queue_capacity, cfg.drop_policy));
    app.sessions.join(&caller.tenant.id, id, out.clone());
    app.metrics.websocket_connections.inc();
    app.metrics.websocket_active.inc();
    let span = tracing::Span::current();
    span.record("session_id", tracing::field::display(id));
    let (mut sink, mut stream) = socket.split();
    let writer = {
        let out = out.clone();
        tokio::spawn(async move {
            while let Some(f) = out.pop().await {
                let msg = match f.payload {
                    Payload::Text(t) => Message::Text(t.into()),
                    Payload::Ping => Message::Ping(Default::default()),
                };
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        })
    };
    send(
        &app,
        &out,
        Frame::kept(
            json!({"type": "handshake_ack", "session_id": id, "status": "connected",
                "tenant_id": caller.tenant.id, "user_id": caller.user_id,
                "heartbeat_interval_ms": cfg.heartbeat_ms, "max_message_bytes": cfg.max_message_bytes,
                "timestamp": now_text(&app)})
            .to_string(),
        ),
    );
    // Chat turns run one at a time, beside the reader, so pings are answered during a turn.
    let (turns, mut queued) = tokio::sync::mpsc::channel::<ChatFrame>(cfg.max_pending_turns.max(1));
    let worker = {
        let (app, caller, out, rid) = (app.clone(), caller.clone(), out.clone(), rid.clone());
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                while let Some(m) = queued.recv().await {
                    chat_turn(&app, &caller, &out, &rid, id, m).await;
                }
            },
            span.clone(),
        ))
    };
    let beat = Duration::from_millis(cfg.heartbeat_ms.max(1));
    let mut heartbeat = tokio::time::interval(beat);
    heartbeat.tick().await;
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else { break };
                heard = Instant::now();
                match frame {
                    Message::Text(t) => on_text(&app, &caller, &out, &turns, &rid, id, t.as_str()),
                    Message::Binary(_) => send(&app, &out, Frame::kept(error_frame(
                        ApiError::new(Code::ValidationError, "binary frames are not supported; send JSON text"), &rid, None))),
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            _ = heartbeat.tick() => {
                if heard.elapsed() > beat * 2 {
                    tracing::info!(session_id = %id, "closing a silent WebSocket session");
                    break;
                }
                send(&app, &out, Frame { payload: Payload::Ping, droppable: true });
            }
        }
    }
    // Turns already accepted finish (an order is not abandoned because its client left); their
    // answers go nowhere.
    drop(turns);
    out.close();
    app.sessions.leave(&caller.tenant.id, id);
    app.metrics.websocket_active.dec();
    drop(worker);
    let _ = writer.await;
}

fn on_text(
    app: &App,
    caller: &Caller,
    out: &Outbound,
    turns: &tokio::sync::mpsc::Sender<ChatFrame>,
    rid: &str,
    session_id: Uuid,
    text: &str,
) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        let e = ApiError::new(Code::MalformedJson, "Invalid JSON format");
        return send(app, out, Frame::kept(error_frame(e, rid, None)));
    };
    let kind = v["type"].as_str().unwrap_or_default();
    app.metrics
        .websocket_messages
        .get_or_create(&crate::telemetry::KindLabels {
            kind: if ["message", "ping", "typing"].contains(&kind) {
                kind
            } else {
                "other"
            }
            .into(),
        })
        .inc();
    match kind {
        "ping" => send(
            app,
            out,
            Frame::kept(
                json!({"type": "pong", "id": v.get("id"), "timestamp": now_text(app)}).to_string(),
            ),
        ),
        "typing" => {
            let notice =
                json!({"type": "typing", "user_id": caller.user_id, "session_id": session_id});
            let dropped =
                app.sessions
                    .broadcast(&caller.tenant.id, session_id, &notice.to_string());
            app.metrics.websocket_drops.inc_by(dropped);
        }
        "message" => {
            let client_id = v["message_id"].as_str().map(str::to_string);
            let frame = match serde_json::from_value::<ChatFrame>(v) {
                Ok(f) => f,
                Err(e) => {
                    let e = ApiError::new(Code::ValidationError, format!("invalid message: {e}"));
                    return send(
                        app,
                        out,
                        Frame::kept(error_frame(e, rid, client_id.as_deref())),
                    );
                }
            };
            if turns.try_send(frame).is_err() {
                let e = ApiError::new(
                    Code::RateLimitExceeded,
                    "too many messages waiting for an answer on this connection",
                );
                send(
                    app,
                    out,
                    Frame::kept(error_frame(e, rid, client_id.as_deref())),
                );
            }
        }
        _ => {
            let e = ApiError::new(Code::ValidationError, "Unknown message type")
                .with_detail("type", "one of message, ping, typing");
            send(app, out, Frame::kept(error_frame(e, rid, None)));
        }
    }
}

/// One chat turn of a session: admitted like an HTTP request (rate limit, quota), answered as a
/// start, chunks and a final frame, metered when it succeeds.
async fn chat_turn(
    app: &App,
    caller: &Caller,
    out: &Outbound,
    rid: &str,
    session_id: Uuid,
    m: ChatFrame,
) {
    let client_id = m.message_id.clone();
    let content = match m.content {
        Content::Text(t) | Content::Object { text: t } => t,
    };
    let req = ChatRequest {
        message: ChatMessage {
            content,
            metadata: m.metadata,
        },
        context: m.context,
        options: m.options,
    };
    let answered = async {
        super::auth::admit(app, caller, "/ws/chat").await?;
        super::chat::turn(app, caller, req).await
    };
    let response = match super::error::REQUEST_ID
        .scope(rid.to_string(), answered)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return send(
                app,
                out,
                Frame::kept(error_frame(e, rid, client_id.as_deref())),
            )
        }
    };
    let reply = &response.response;
    send(
        app,
        out,
        Frame::kept(
            json!({"type": "message_start", "session_id": session_id, "message_id": client_id,
                "reply_id": reply.message_id, "conversation_id": reply.conversation_id})
            .to_string(),
        ),
    );
    let patience = Duration::from_millis(app.cfg.realtime.chunk_wait_ms);
    for piece in super::chat::chunks(&reply.content.text) {
        let chunk = json!({"type": "message_chunk", "message_id": client_id, "text": piece});
        let dropped = out
            .push_within(Frame::droppable(chunk.to_string()), patience)
            .await;
        app.metrics.websocket_drops.inc_by(dropped);
    }
    send(
        app,
        out,
        Frame::kept(
            json!({"type": "message_complete", "session_id": session_id, "message_id": client_id,
                "response": response, "timestamp": now_text(app)})
            .to_string(),
        ),
    );
    super::auth::meter_request(app, &caller.tenant.id).await;
}
