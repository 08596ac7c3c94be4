//! Knowledge-base documents (admins) and permission-filtered retrieval with a cited answer (anyone).

use super::auth::{audit, require_role};
use super::dto::*;
use super::error::{ApiError, Code};
use super::extract::{Caller, StrictJson};
use super::{idempotency, validate};
use crate::app::{App, AppState};
use crate::domain::{Level, Role, Tier};
use crate::guard::{Verdict, Violation, REFUSAL};
use crate::llm::{LlmRequest, Turn, TurnRole};
use crate::router::cost_usd;
use crate::store::model::Document;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::Duration;
use serde_json::json;

fn view(app: &App, d: &Document) -> DocumentView {
    let rules = crate::rag::index::rules(&app.cfg.guard);
    DocumentView {
        document_id: d.document_id,
        title: d.title.clone(),
        level: d.level,
        roles: d.roles.clone(),
        expires_at: d.expires_at,
        version: d.version,
        index: d.index.clone(),
        stale: !crate::rag::index::is_fresh(d, &rules, app.clock.now()),
    }
}

/// `d` with a fresh index entry, made now.
fn indexed(app: &App, mut d: Document) -> Document {
    let ttl = &app.cfg.rag.reindex_ttl_secs;
    d.index = Some(crate::rag::index::entry(
        &d,
        &app.cfg.guard,
        ttl,
        app.clock.now(),
    ));
    d
}

/// Counts a retrieval query in `rag_queries_total` by how it ended.
fn count_query(app: &App, outcome: &str) {
    app.metrics
        .rag_queries
        .get_or_create(&crate::telemetry::OutcomeLabels {
            outcome: outcome.into(),
        })
        .inc();
}

/// The caller's tenant's document `id`; 404 for a malformed id, a missing document or another
/// tenant's.
async fn stored(app: &App, caller: &Caller, id: &str) -> Result<Document, ApiError> {
    let missing = || ApiError::not_found(format!("document {id}"));
    let uuid = uuid::Uuid::parse_str(id).map_err(|_| missing())?;
    app.store
        .document(&caller.tenant.id, uuid)
        .await?
        .ok_or_else(missing)
}

#[utoipa::path(post, path = "/api/v1/rag/documents", request_body = DocumentCreate,
    responses((status = 201, body = DocumentView), (status = 403, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_document(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    StrictJson(req, raw): StrictJson<DocumentCreate>,
) -> Result<Response, ApiError> {
    require_role(&app, &caller, &[Role::Admin], "document ingestion").await?;
    validate::text("title", &req.title, 200)?;
    validate::text("content", &req.content, 100_000)?;
    if let Some(t) = req.ttl_seconds {
        validate::range("ttl_seconds", t.min(i64::MAX as u64) as i64, 1, 31_536_000)?;
    }
    let work = || async {
        let d = Document {
            tenant: caller.tenant.id.clone(),
            document_id: app.ids.uuid(),
            title: req.title.clone(),
            content: req.content.clone(),
            level: Level::Public,
            roles: req.roles.clone().filter(|r| !r.is_empty()),
            expires_at: req
                .ttl_seconds
                .map(|s| app.clock.now() + Duration::seconds(s as i64)),
            version: 1,
            index: None,
        };
        // Without a level the tagger's is taken; the entry's time to live follows the level.
        let level = req
            .level
            .unwrap_or_else(|| crate::rag::index::tag(&d.text()).level);
        let d = indexed(&app, Document { level, ..d });
        app.store.put_document(&d).await?;
        app.publish(
            &caller.tenant.id,
            "rag.document.ingested",
            None,
            json!({"document_id": d.document_id, "level": d.level, "version": d.version}),
        )
        .await;
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(view(&app, &d)).map_err(ApiError::internal)?,
        ))
    };
    idempotency::once(&app, &caller, &headers, "rag/documents", &raw, work).await
}

#[utoipa::path(patch, path = "/api/v1/rag/documents/{document_id}", params(("document_id" = String, Path)), request_body = DocumentPatch,
    responses((status = 200, body = DocumentView), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn patch_document(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    StrictJson(req, _): StrictJson<DocumentPatch>,
) -> Result<Json<DocumentView>, ApiError> {
    require_role(&app, &caller, &[Role::Admin], "document changes").await?;
    if req.level.is_none() && req.roles.is_none() && req.title.is_none() && req.content.is_none() {
        return Err(ApiError::field(
            "body",
            "give `level`, `roles`, `title` or `content`",
        ));
    }
    if let Some(t) = &req.title {
        validate::text("title", t, 200)?;
    }
    if let Some(c) = &req.content {
        validate::text("content", c, 100_000)?;
    }
    let mut d = stored(&app, &caller, &id).await?;
    if let Some(l) = req.level {
        d.level = l;
    }
    if let Some(r) = req.roles {
        d.roles = Some(r).filter(|r| !r.is_empty());
    }
    let text_changed = req.title.as_ref().is_some_and(|t| *t != d.title)
        || req.content.as_ref().is_some_and(|c| *c != d.content);
    if text_changed {
        d.title = req.title.unwrap_or(d.title);
        d.content = req.content.unwrap_or(d.content);
        d.version += 1;
    }
    // Any change is indexed at once: a new level also sets when the entry is due again.
    let d = indexed(&app, d);
    app.store.put_document(&d).await?;
    app.publish(
        &caller.tenant.id,
        "rag.document.changed",
        None,
        json!({"document_id": d.document_id, "level": d.level, "roles": d.roles, "version": d.version}),
    )
    .await;
    Ok(Json(view(&app, &d)))
}

#[utoipa::path(get, path = "/api/v1/rag/documents/{document_id}", params(("document_id" = String, Path)),
    responses((status = 200, body = DocumentView), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_document(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DocumentView>, ApiError> {
    require_role(&app, &caller, &[Role::Admin], "document administration").await?;
    let d = stored(&app, &caller, &id).await?;
    Ok(Json(view(&app, &d)))
}

#[utoipa::path(get, path = "/api/v1/rag/documents/{document_id}/access", params(("document_id" = String, Path), AccessQuery),
    responses((status = 200, body = AccessView), (status = 400, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
/// Explains retrieval's decision for one document and role (RAG-16's reason codes). Another
/// tenant's document is a 404, as everywhere: saying it exists would leak across tenants.
pub async fn document_access(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Result<Query<AccessQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AccessView>, ApiError> {
    require_role(&app, &caller, &[Role::Admin], "document administration").await?;
    let Query(q) = q.map_err(|e| ApiError::new(Code::ValidationError, e.body_text()))?;
    let role = Role::parse(&q.role).map_err(|e| ApiError::new(Code::InvalidRole, e.to_string()))?;
    let d = stored(&app, &caller, &id).await?;
    let (allowed, reason) = d.access(role, app.clock.now());
    Ok(Json(AccessView {
        document_id: d.document_id,
        role,
        allowed,
        reason: reason.into(),
    }))
}

#[utoipa::path(get, path = "/api/v1/rag/documents", params(DocumentsQuery),
    responses((status = 200, body = DocumentList), (status = 403, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_documents(
    State(app): State<AppState>,
    caller: Caller,
    q: Result<Query<DocumentsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DocumentList>, ApiError> {
    require_role(&app, &caller, &[Role::Admin], "document administration").await?;
    let Query(q) = q.map_err(|e| ApiError::new(Code::ValidationError, e.body_text()))?;
    let documents = app
        .store
        .documents(&caller.tenant.id)
        .await?
        .iter()
        .map(|d| view(&app, d))
        .filter(|v| q.stale.is_none_or(|s| v.stale == s))
        .collect();
    Ok(Json(DocumentList { documents }))
}

#[utoipa::path(post, path = "/api/v1/rag/reindex", request_body = ReindexRequest,
    responses((status = 200, body = ReindexResponse), (status = 403, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn reindex(
    State(app): State<AppState>,
    caller: Caller,
    StrictJson(req, _): StrictJson<ReindexRequest>,
) -> Result<Json<ReindexResponse>, ApiError> {
    require_role(&app, &caller, &[Role::Admin], "reindexing").await?;
    let done = app.reindex(&caller.tenant.id, req.all).await?;
    audit(
        &app,
        &caller.tenant.id,
        &caller.user_id,
        "rag.reindex",
        &format!("documents:{}", done.documents.len()),
        "allowed",
        &format!("changed:{}", done.changed.len()),
    )
    .await;
    Ok(Json(ReindexResponse {
        reindexed: done.documents.iter().map(|d| view(&app, d)).collect(),
        changed: done.changed,
    }))
}

#[utoipa::path(post, path = "/api/v1/rag/query", request_body = RagQuery,
    responses((status = 200, body = RagAnswer), (status = 400, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn query(
    State(app): State<AppState>,
    caller: Caller,
    StrictJson(req, _): StrictJson<RagQuery>,
) -> Result<Json<RagAnswer>, ApiError> {
    validate::content("question", &req.question, app.cfg.limits.max_content_chars)?;
    let top_k = req.top_k.unwrap_or(5);
    validate::range("top_k", i64::from(top_k), 1, 50)?;
    let cfg = &app.cfg.guard;
    let (question, violations) = crate::guard::inspect_text(cfg, &req.question);
    let asked = Verdict::of(violations);
    if asked.blocked {
        let subject = app.ids.uuid().to_string();
        super::guard::record(&app, &caller, "rag", &subject, &asked).await;
        count_query(&app, "refused");
        return Ok(Json(RagAnswer {
            answer: REFUSAL.to_string(),
            sources: vec![],
            guard: Some(asked),
        }));
    }
    let found = crate::rag::search(
        app.store.as_ref(),
        cfg,
        &caller.tenant.id,
        caller.role,
        app.clock.now(),
        &question,
        top_k as usize,
    )
    .await?;
    let hits = found.hits;
    let mut verdict = Verdict::default();
    for id in &found.withheld {
        let v = Verdict::of(vec![Violation::IndirectPromptInjectionDetected]);
        super::guard::record(&app, &caller, "document", &id.to_string(), &v).await;
        verdict = verdict.with(v.violations);
    }
    // Every retrieval is audited: who asked, which documents answered.
    crate::rag::audit(
        app.store.as_ref(),
        &caller.tenant.id,
        &caller.user_id,
        app.clock.now(),
        &hits,
        &question,
    )
    .await?;
    count_query(
        &app,
        if hits.is_empty() {
            "no_hits"
        } else {
            "answered"
        },
    );
    let answer = if hits.is_empty() {
        "I could not find anything in the knowledge base about that.".to_string()
    } else {
        let context = crate::rag::context(&hits);
        let llm_req = LlmRequest {
            tier: Tier::SlmA,
            system: format!("TASK: answer_from_context\n{}\nAnswer only from this context.\nCONTEXT:\n{context}", caller.tenant.system_prompt),
            turns: vec![Turn { role: TurnRole::User, content: question.clone() }],
            max_tokens: 512,
            json: false,
        };
        let key = format!("rag:{}:{}", caller.tenant.id, question);
        let (resp, _) = app
            .engine
            .complete(&caller.tenant.id, &llm_req, &key)
            .await
            .map_err(|e| match e {
                crate::resilience::CallError::Timeout { .. } => ApiError::new(
                    super::error::Code::Timeout,
                    "the model did not answer in time",
                ),
                other => ApiError::new(super::error::Code::ServiceUnavailable, other.to_string()),
            })?;
        let tokens = resp.usage.total();
        app.publish(&caller.tenant.id, "usage.metered", None, json!({"requests": 0, "tokens": tokens, "tool_calls": 0, "cost_usd": cost_usd(Tier::SlmA, tokens)})).await;
        let (text, answered) =
            super::guard::filter_answer(&app, &caller, "rag_answer", "answer", &resp.text).await;
        verdict = verdict.with(answered.violations);
        text
    };
    Ok(Json(RagAnswer {
        answer,
        sources: hits
            .into_iter()
            .map(|h| Source {
                document_id: h.document_id,
                title: h.title,
                level: h.level,
                score: h.score,
                version: h.version,
            })
            .collect(),
        guard: (!verdict.is_clean()).then_some(verdict),
    }))
}
