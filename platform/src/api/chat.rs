//! `POST /api/v1/chat/message`: one chat turn through the `customer_support` workflow (or the one in
//! `options.workflow`), as JSON or as an SSE stream of `message_start`, `message_chunk`... and
//! `message_complete` (which carries the whole response).

use super::dto::*;
use super::error::{ApiError, Code};
use super::extract::{Caller, StrictJson};
use super::{guard, run_error, run_request, validate};
use crate::app::{App, AppState};
use crate::guard::{Verdict, REFUSAL};
use crate::llm::Turn;
use crate::router::Features;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::convert::Infallible;

const MAX_HISTORY: usize = 50;

/// The channels a turn may come from. Messaging channels get their answer through the outbox as
/// well as in the response; the others are answered inline.
pub const CHANNELS: &[&str] = &[
    "web",
    "mobile",
    "api",
    "facebook_messenger",
    "zalo",
    "telegram",
];
const MESSAGING: &[&str] = &["facebook_messenger", "zalo", "telegram"];

#[utoipa::path(post, path = "/api/v1/chat/message", request_body = ChatRequest,
    responses((status = 200, body = ChatResponse, description = "The answer, or an SSE stream when options.stream is true"),
              (status = 400, body = super::error::ErrorEnvelope), (status = 413, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn message(
    State(app): State<AppState>,
    caller: Caller,
    StrictJson(req, _): StrictJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let stream = req.options.as_ref().and_then(|o| o.stream).unwrap_or(false);
    let response = turn(&app, &caller, req).await?;
    if !stream {
        return Ok(axum::Json(response).into_response());
    }
    let ChatReply {
        message_id,
        conversation_id,
        ..
    } = response.response;
    let mut events: Vec<Result<SseEvent, Infallible>> = vec![Ok(SseEvent::default()
        .event("message_start")
        .data(json!({"message_id": message_id, "conversation_id": conversation_id}).to_string()))];
    for piece in chunks(&response.response.content.text) {
        events.push(Ok(SseEvent::default()
            .event("message_chunk")
            .data(json!({"text": piece}).to_string())));
    }
    events.push(Ok(SseEvent::default()
        .event("message_complete")
        .data(serde_json::to_string(&response).unwrap_or_default())));
    Ok(Sse::new(futures::stream::iter(events)).into_response())
}

/// The pieces a streamed answer is sent in (SSE and WebSocket): word by word, spaces kept.
pub fn chunks(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(' ')
}

/// One chat turn for `caller`, whatever carries it (JSON, SSE, WebSocket): validation, the input
/// guard, the run, the output guard, events and the channel's outbox.
pub async fn turn(app: &App, caller: &Caller, req: ChatRequest) -> Result<ChatResponse, ApiError> {
    let max = app.cfg.limits.max_content_chars;
    validate::content("message.content", &req.message.content, max)?;
    validate::no_sensitive_numbers("message.content", &req.message.content)?;
    let ctx = req.context.unwrap_or(ChatContext {
        conversation_id: None,
        previous_messages: None,
        channel: None,
    });
    let channel = ctx.channel.clone().unwrap_or_else(|| "web".into());
    if !CHANNELS.contains(&channel.as_str()) {
        return Err(ApiError::field(
            "context.channel",
            format!(
                "unsupported channel `{}`; supported channels: {}",
                channel.chars().take(64).collect::<String>(),
                CHANNELS.join(", ")
            ),
        ));
    }
    let messaging = MESSAGING.contains(&channel.as_str());
    let prev = ctx.previous_messages.unwrap_or_default();
    if prev.len() > MAX_HISTORY {
        return Err(ApiError::field(
            "context.previous_messages",
            format!("at most {MAX_HISTORY} messages"),
        ));
    }
    for (i, m) in prev.iter().enumerate() {
        validate::content(
            &format!("context.previous_messages[{i}].content"),
            &m.content,
            max,
        )?;
    }
    let opts = req.options.unwrap_or_default();
    if let Some(d) = opts.deadline_ms {
        validate::range(
            "options.deadline_ms",
            d.min(i64::MAX as u64) as i64,
            1,
            600_000,
        )?;
    }
    let workflow = opts.workflow.unwrap_or_else(|| "customer_support".into());
    if app
        .engine
        .catalog
        .get(caller.tenant.id.as_str(), &workflow)
        .is_none()
    {
        return Err(ApiError::new(
            Code::WorkflowNotFound,
            format!("workflow `{workflow}` not found"),
        ));
    }
    let conversation_id = ctx.conversation_id.unwrap_or_else(|| app.ids.uuid());
    let message_id = app.ids.uuid();
    let cfg = &app.cfg.guard;
    let history_texts: Vec<&str> = prev.iter().map(|m| m.content.as_str()).collect();
    let inbound = crate::guard::inspect_message(
        cfg,
        &req.message.content,
        &history_texts,
        req.message.metadata.as_ref(),
    );
    let history: Vec<Turn> = prev
        .into_iter()
        .zip(inbound.history)
        .map(|(m, content)| Turn {
            role: m.role,
            content,
        })
        .collect();
    let decision = app.engine.router.decide(
        caller.tenant.id.as_str(),
        &message_id.to_string(),
        &Features::of(&inbound.content, history.len(), false),
        opts.tier_preference,
    );
    let metadata =
        |tier_used, confidence, processing_time_ms, tokens_used, cost_usd, intent| ReplyMetadata {
            tier_used,
            confidence,
            processing_time_ms,
            tokens_used,
            cost_usd,
            intent,
            channel: channel.clone(),
            delivery_status: if messaging { "queued" } else { "inline" }.into(),
            routing: serde_json::to_value(&decision).unwrap_or(Value::Null),
        };
    let response = if inbound.verdict.blocked {
        // A content attack: no run, no model call, no tool; the refusal, recorded.
        guard::record(
            app,
            caller,
            "chat",
            &message_id.to_string(),
            &inbound.verdict,
        )
        .await;
        ChatResponse {
            response: ChatReply {
                message_id,
                conversation_id,
                content: ReplyContent {
                    text: REFUSAL.to_string(),
                    citations: vec![],
                },
                metadata: metadata(decision.tier, 1.0, 0, 0, 0.0, None),
            },
            workflow: None,
            guard: Some(inbound.verdict),
        }
    } else {
        app.publish(&caller.tenant.id, "agent.run.requested", None, json!({"message_id": message_id, "conversation_id": conversation_id, "workflow_id": workflow})).await;
        let mut rr = run_request(
            caller,
            &workflow,
            json!({"message": inbound.content, "conversation_id": conversation_id}),
            Default::default(),
        );
        rr.history = history;
        rr.tier_preference = opts.tier_preference;
        rr.deadline_ms = opts.deadline_ms;
        app.publish(
            &caller.tenant.id,
            "agent.run.started",
            None,
            json!({"message_id": message_id, "tier": decision.tier}),
        )
        .await;
        let outcome = app.engine.run(&rr).await;
        let run_id = outcome.run.run_id;
        if outcome.failure.is_some() {
            app.publish(
                &caller.tenant.id,
                "agent.run.failed",
                Some(run_id),
                json!({"message_id": message_id, "status": outcome.run.status}),
            )
            .await;
            return Err(run_error(&outcome));
        }
        let out = &outcome.output;
        let (text, answered) = guard::filter_answer(
            app,
            caller,
            "chat_answer",
            &message_id.to_string(),
            out["text"].as_str().unwrap_or(""),
        )
        .await;
        let verdict = Verdict::of(outcome.guard.clone()).with(answered.violations);
        let citations: Vec<Citation> =
            serde_json::from_value(out["citations"].clone()).unwrap_or_default();
        let tier_used = outcome.tier_used.unwrap_or(decision.tier);
        let response = ChatResponse {
            response: ChatReply {
                message_id,
                conversation_id,
                content: ReplyContent { text, citations },
                metadata: metadata(
                    tier_used,
                    out["confidence"].as_f64().unwrap_or(decision.confidence),
                    outcome.run.duration_ms,
                    outcome.run.tokens,
                    outcome.run.cost_usd,
                    out["intent"].as_str().map(str::to_string),
                ),
            },
            workflow: Some(WorkflowSummary {
                run_id,
                workflow_id: workflow,
                status: outcome.run.status.clone(),
                steps_executed: outcome.run.steps.iter().map(StepView::from).collect(),
            }),
            guard: (!verdict.is_clean()).then_some(verdict),
        };
        app.publish(
            &caller.tenant.id,
            "agent.run.completed",
            Some(run_id),
            json!({"message_id": message_id, "tier": tier_used,
            "tokens_used": outcome.run.tokens, "cost_usd": outcome.run.cost_usd}),
        )
        .await;
        response
    };
    if messaging {
        app.store
            .put_outbox(&crate::store::model::OutboxMessage::queued(
                caller.tenant.id.clone(),
                message_id.to_string(),
                "channel",
                format!("{channel}:{}", caller.user_id),
                format!("reply in conversation {conversation_id}"),
                response.response.content.text.clone(),
            ))
            .await?;
    }
    Ok(response)
}
