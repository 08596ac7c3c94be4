//! Metering and analytics, both built from events: a projector follows the bus and turns
//! `usage.metered` into the tenant's usage counters and `workflow.{completed,failed,compensated}`
//! into the analytics read model. Reads are eventually consistent with the events.

use crate::api::dto::AnalyticsSummary;
use crate::bus::{Bus, Delivery, Handler};
use crate::domain::Tier;
use crate::store::model::{RunSummary, Usage};
use crate::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The billing period (`YYYY-MM`, UTC) that a moment belongs to: usage is counted, and quotas
/// apply, per calendar month.
pub fn period_of(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m").to_string()
}

/// Applies one event to the read models, once per event id. An error is returned to the bus,
/// which redelivers the event later.
pub async fn project(store: &dyn Store, d: &Delivery) -> Result<(), String> {
    let e = &d.event;
    let result = match e.event_type.as_str() {
        "usage.metered" => {
            let n = |k: &str| e.data[k].as_u64().unwrap_or(0);
            let delta = Usage {
                requests: n("requests"),
                tokens: n("tokens"),
                tool_calls: n("tool_calls"),
                cost_usd: e.data["cost_usd"].as_f64().unwrap_or(0.0),
            };
            store
                .add_usage(&e.tenant_id, &period_of(e.occurred_at), e.event_id, &delta)
                .await
        }
        "workflow.completed" | "workflow.failed" | "workflow.compensated" => {
            let s = RunSummary {
                run_id: e.run_id.unwrap_or_default(),
                workflow_id: e.data["workflow_id"].as_str().unwrap_or("").to_string(),
                tier: e.data["tier"].as_str().and_then(|t| Tier::parse(t).ok()),
                status: e.data["status"].as_str().unwrap_or("").to_string(),
                duration_ms: e.data["duration_ms"].as_u64().unwrap_or(0),
                cost_usd: e.data["cost_usd"].as_f64().unwrap_or(0.0),
            };
            store.add_run_summary(&e.tenant_id, e.event_id, &s).await
        }
        _ => Ok(true),
    };
    result.map(|_| ()).map_err(|err| {
        tracing::warn!(%err, subject = %d.subject, "projection failed; the event will come again");
        err.to_string()
    })
}

/// Runs the projector as the bus's durable consumer `metering`: instances share the work, and a
/// failed projection is redelivered.
pub async fn start_projector(
    bus: &dyn Bus,
    store: Arc<dyn Store>,
) -> Result<tokio::task::JoinHandle<()>, crate::bus::BusError> {
    let handler: Handler = Arc::new(move |d: Delivery| {
        let store = store.clone();
        Box::pin(async move { project(store.as_ref(), &d).await })
    });
    bus.consume("metering", handler).await
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The analytics summary over a tenant's finished runs.
pub fn summarize(rows: &[RunSummary]) -> AnalyticsSummary {
    let mut by_wf = BTreeMap::new();
    let mut by_tier = BTreeMap::new();
    let mut by_status = BTreeMap::new();
    for r in rows {
        *by_wf.entry(r.workflow_id.clone()).or_insert(0) += 1;
        *by_tier
            .entry(
                r.tier
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_else(|| "none".into()),
            )
            .or_insert(0) += 1;
        *by_status.entry(r.status.clone()).or_insert(0) += 1;
    }
    let mut lat: Vec<u64> = rows.iter().map(|r| r.duration_ms).collect();
    lat.sort_unstable();
    AnalyticsSummary {
        total_runs: rows.len(),
        runs_by_workflow: by_wf,
        runs_by_tier: by_tier,
        runs_by_status: by_status,
        p50_latency_ms: percentile(&lat, 50.0),
        p95_latency_ms: percentile(&lat, 95.0),
        total_cost_usd: (rows.iter().map(|r| r.cost_usd).sum::<f64>() * 1e6).round() / 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 95.0), 95);
        assert_eq!(percentile(&[7], 95.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn summary_groups_runs() {
        let row = |wf: &str, tier, status: &str, ms| RunSummary {
            run_id: uuid::Uuid::nil(),
            workflow_id: wf.into(),
            tier,
            status: status.into(),
            duration_ms: ms,
            cost_usd: 0.001,
        };
        let s = summarize(&[
            row("faq", Some(Tier::SlmA), "completed", 10),
            row("faq", None, "completed", 30),
            row("create_order", None, "compensated", 20),
        ]);
        assert_eq!(s.total_runs, 3);
        assert_eq!(s.runs_by_workflow["faq"], 2);
        assert_eq!(s.runs_by_tier["SLM_A"], 1);
        assert_eq!(s.runs_by_status["compensated"], 1);
        assert_eq!(s.p50_latency_ms, 20);
        assert_eq!(s.total_cost_usd, 0.003);
    }
}
