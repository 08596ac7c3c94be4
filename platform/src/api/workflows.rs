//! Workflow execution, the workflow list, and run traces.

use super::auth::require_role;
use super::dto::*;
use super::error::ApiError;
use super::extract::{Caller, StrictJson};
use super::{idempotency, run_error, run_request};
use crate::app::AppState;
use crate::domain::Role;
use crate::orchestrator::RunFailure;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

#[utoipa::path(post, path = "/api/v1/workflows/execute", request_body = ExecuteRequest,
    responses((status = 200, body = ExecuteResponse, description = "The execution: completed, compensated or compensation_failed"),
              (status = 404, body = super::error::ErrorEnvelope), (status = 500, body = super::error::ErrorEnvelope),
              (status = 504, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn execute(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    StrictJson(req, raw): StrictJson<ExecuteRequest>,
) -> Result<Response, ApiError> {
    if let Some(d) = req.options.as_ref().and_then(|o| o.deadline_ms) {
        super::validate::range(
            "options.deadline_ms",
            d.min(i64::MAX as u64) as i64,
            1,
            600_000,
        )?;
    }
    require_role(
        &app,
        &caller,
        &[Role::User, Role::Admin],
        "workflow execution",
    )
    .await?;
    // Parameters reach tools and prompts: a content attack in any string among them refuses the
    // execution (400 naming the parameter; audited, evented, counted) before a run starts.
    if let Some(params) = &req.parameters {
        if let Some((field, verdict)) =
            attacked_parameter(&app.cfg.guard, "parameters", &Value::Object(params.clone()))
        {
            super::guard::record(&app, &caller, "workflow", &req.workflow_id, &verdict).await;
            let names: Vec<&str> = verdict.violations.iter().map(|v| v.as_str()).collect();
            return Err(ApiError::field(
                &field,
                format!("refused by the guard: {}", names.join(", ")),
            ));
        }
    }
    let work = || async {
        let mut rr = run_request(
            &caller,
            &req.workflow_id,
            Value::Object(req.parameters.clone().unwrap_or_default()),
            Default::default(),
        );
        rr.compensation_enabled = req
            .options
            .as_ref()
            .and_then(|o| o.compensation_enabled)
            .unwrap_or(true);
        rr.deadline_ms = req.options.as_ref().and_then(|o| o.deadline_ms);
        let o = app.engine.run(&rr).await;
        if matches!(
            o.failure,
            Some(RunFailure::NotFound(_)) | Some(RunFailure::Timeout)
        ) || o.run.status == "failed"
        {
            return Err(run_error(&o));
        }
        let body = ExecuteResponse {
            execution: Execution {
                run_id: o.run.run_id,
                workflow_id: o.run.workflow_id.clone(),
                status: o.run.status.clone(),
                started_at: o.run.started_at,
            },
            steps: o.run.steps.iter().map(StepView::from).collect(),
            compensation_actions: o.run.compensation.iter().map(StepView::from).collect(),
            output: o.output.clone(),
            error: o.failure.as_ref().map(|f| f.to_string()),
            failure: o.run.failure.clone(),
        };
        Ok((
            StatusCode::OK,
            serde_json::to_value(body).map_err(ApiError::internal)?,
        ))
    };
    idempotency::once(&app, &caller, &headers, "workflows/execute", &raw, work).await
}

#[utoipa::path(get, path = "/api/v1/workflows", responses((status = 200, body = WorkflowList)), security(("bearer" = []), ("api_key" = [])))]
pub async fn list(State(app): State<AppState>, caller: Caller) -> Json<WorkflowList> {
    Json(WorkflowList {
        workflows: app
            .engine
            .catalog
            .list(caller.tenant.id.as_str())
            .iter()
            .map(|w| WorkflowInfo {
                workflow_id: w.id.clone(),
                version: w.version.clone(),
                description: w.description.trim().to_string(),
            })
            .collect(),
    })
}

#[utoipa::path(get, path = "/api/v1/versions", responses((status = 200, body = Versions)),
    security(("bearer" = []), ("api_key" = [])))]
/// The versions of everything that answers the caller's tenant. Reading them is not metered.
pub async fn versions(State(app): State<AppState>, caller: Caller) -> Json<Versions> {
    Json(versions_of(&app, caller.tenant.id.as_str()))
}

/// The versions of what answers `tenant` (its workflows after overlays, its allowed tools, the
/// models and the router): what an episode records and an exact replay requires unchanged.
pub fn versions_of(app: &AppState, tenant: &str) -> Versions {
    let e = &app.engine;
    Versions {
        workflows: e
            .catalog
            .list(tenant)
            .iter()
            .map(|w| {
                (
                    w.id.clone(),
                    WorkflowVersion {
                        version: w.version.clone(),
                        prompt_version: w.prompt_version.clone(),
                    },
                )
            })
            .collect(),
        tools: e
            .tools
            .names()
            .filter(|n| !e.catalog.tool_denied(tenant, n))
            .filter_map(|n| {
                e.tools
                    .manifest(n)
                    .map(|m| (n.to_string(), m.fingerprint()))
            })
            .collect(),
        models: crate::domain::Tier::ALL
            .iter()
            .map(|t| (t.as_str().to_string(), e.llm.model_id(*t)))
            .collect(),
        router: e.router.fingerprint(tenant),
    }
}

#[utoipa::path(get, path = "/api/v1/runs/{run_id}", params(("run_id" = String, Path, description = "The run's UUID")),
    responses((status = 200, description = "The run: status, ordered steps, compensation, events, errors"),
              (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn run(
    State(app): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id =
        uuid::Uuid::parse_str(&run_id).map_err(|_| ApiError::not_found(format!("run {run_id}")))?;
    let r = app
        .store
        .run(&caller.tenant.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {run_id}")))?;
    Ok(Json(run_json(&r)))
}

#[utoipa::path(post, path = "/api/v1/runs/{run_id}/cancel", params(("run_id" = String, Path, description = "The run's UUID")),
    responses((status = 200, description = "The run, compensated with reason `manually_cancelled`"),
              (status = 400, body = super::error::ErrorEnvelope, description = "The run has already ended"),
              (status = 403, body = super::error::ErrorEnvelope),
              (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("api_key" = [])))]
/// Manually cancels an unfinished run (admin): what it has done is compensated in reverse, and it
/// ends `compensated` with reason `manually_cancelled`, on this worker or from its checkpoint.
pub async fn cancel_run(
    State(app): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    super::auth::require_role(&app, &caller, &[crate::domain::Role::Admin], "run cancel").await?;
    let id =
        uuid::Uuid::parse_str(&run_id).map_err(|_| ApiError::not_found(format!("run {run_id}")))?;
    use crate::orchestrator::executor::CancelError;
    match app.engine.cancel(&caller.tenant.id, id).await {
        Ok(r) => Ok(Json(run_json(&r))),
        Err(CancelError::NotFound) => Err(ApiError::not_found(format!("run {run_id}"))),
        Err(e @ CancelError::Finished(_)) => Err(ApiError::field("run_id", e.to_string())),
        Err(e @ CancelError::HeldElsewhere { .. }) => Err(ApiError::new(
            super::error::Code::ServiceUnavailable,
            e.to_string(),
        )
        .with_header("retry-after", 1)),
        Err(CancelError::Store(m)) => Err(ApiError::new(
            super::error::Code::ServiceUnavailable,
            format!("the run could not be cancelled: {m}"),
        )),
    }
}

/// A run as `GET /api/v1/runs/{id}` shows it.
pub fn run_json(r: &crate::store::model::Run) -> Value {
    json!({
        "run_id": r.run_id, "workflow_id": r.workflow_id, "status": r.status,
        "started_at": r.started_at, "finished_at": r.finished_at, "duration_ms": r.duration_ms,
        "tokens": r.tokens, "cost_usd": r.cost_usd,
        "steps": r.steps, "compensation": r.compensation, "events": r.events, "errors": r.errors, "failure": r.failure, "output": r.output,
    })
}

/// The first string parameter (by path) that the input guard blocks, with its verdict.
fn attacked_parameter(
    cfg: &crate::guard::GuardConfig,
    path: &str,
    v: &Value,
) -> Option<(String, crate::guard::Verdict)> {
    match v {
        Value::String(s) => {
            let verdict = crate::guard::Verdict::of(crate::guard::inspect_text(cfg, s).1);
            verdict.blocked.then(|| (path.to_string(), verdict))
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| attacked_parameter(cfg, &format!("{path}[{i}]"), x)),
        Value::Object(m) => m
            .iter()
            .find_map(|(k, x)| attacked_parameter(cfg, &format!("{path}.{k}"), x)),
        _ => None,
    }
}
