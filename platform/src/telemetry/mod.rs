//! Metrics and logs. Metrics are Prometheus counters, gauges and histograms served at `/metrics`;
//! logs are JSON lines from `tracing`, with the fields of the spans they are written in (spans carry
//! ids and counts only: `http.request`, `workflow.run`, `tool.call`, `llm.complete`, `rag.search`,
//! `ws.session`; redaction grows in the observability issue).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkflowLabels {
    pub workflow: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    pub tool: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub channel: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    pub tier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabels {
    pub plan: String,
    pub kind: String,
}

/// One upstream of the resilience layer (`database`, `model:SLM_A`, `tool:payment.capture`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub upstream: String,
}

/// A breaker's move to `state` (open, half_open, closed).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub upstream: String,
    pub state: String,
}

/// Where an idempotent result was replayed: `api` or `tool`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabels {
    pub scope: String,
}

/// How a saga (a run with compensable steps) ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SagaLabels {
    pub status: String,
}

/// Why a guard acted (`prompt_injection_detected`, `pii_redacted`) and on which surface (`chat`,
/// `rag`, `workflow`, `document`, `tool_output`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GuardLabels {
    pub violation: String,
    pub surface: String,
}

/// How a retrieval query ended: `answered`, `no_hits` or `refused` (the guard blocked the question).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// A kind of WebSocket frame received (`message`, `ping`, `typing`, `other`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// A document level (`public` .. `restricted`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabels {
    pub level: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// The platform's metrics, registered once per process (one per test server).
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub workflow_runs: Family<WorkflowLabels, Counter>,
    pub tool_calls: Family<ToolLabels, Counter>,
    /// Outbox deliveries by channel and outcome (`sent`, `failed`), counted by the dispatcher
    /// (`outbox_deliveries_total`).
    pub outbox_deliveries: Family<DeliveryLabels, Counter>,
    pub router_tier_usage: Family<TierLabels, Counter>,
    pub rate_limited: Family<PlanLabels, Counter>,
    /// Extra attempts made by the retry policy (`retry_total`).
    pub retries: Family<UpstreamLabels, Counter>,
    /// Attempts that hit their timeout (`timeout_total`).
    pub timeouts: Family<UpstreamLabels, Counter>,
    /// Breakers opening (`circuit_open_total`): transitions, not rejections.
    pub circuit_opened: Family<UpstreamLabels, Counter>,
    /// Every breaker transition by target state (`circuit_transitions_total`).
    pub circuit_transitions: Family<TransitionLabels, Counter>,
    /// Calls refused by an open breaker without running (`circuit_rejected_total`).
    pub circuit_rejected: Family<UpstreamLabels, Counter>,
    /// Calls refused by a full bulkhead (`bulkhead_rejections_total`).
    pub bulkhead_rejections: Family<UpstreamLabels, Counter>,
    /// Results served from an idempotency record instead of running again (`idempotency_hits_total`).
    pub idempotency_hits: Family<ScopeLabels, Counter>,
    /// Sagas by final status (`saga_total`), and sagas resumed after a restart (`saga_resumed_total`).
    pub sagas: Family<SagaLabels, Counter>,
    pub sagas_resumed: Counter,
    /// Guard actions by violation and surface (`guard_blocked_total`; redactions and withheld
    /// documents count too, under their own violation).
    pub guard_blocked: Family<GuardLabels, Counter>,
    /// Retrieval queries by outcome (`rag_queries_total`).
    pub rag_queries: Family<OutcomeLabels, Counter>,
    /// Index entries made again by a reindex, by level (`rag_reindexed_total`).
    pub rag_reindexed: Family<LevelLabels, Counter>,
    /// Reindex passes over a tenant that failed (`rag_reindex_failures_total`): the tenant's stale
    /// entries stay stale (retrieval then checks each text itself) until a pass succeeds.
    pub rag_reindex_failures: Counter,
    /// WebSocket sessions open now (`websocket_active_connections`) and ever opened
    /// (`websocket_connections_total`).
    pub websocket_active: Gauge,
    pub websocket_connections: Counter,
    /// Frames received, by kind (`websocket_messages_total`).
    pub websocket_messages: Family<KindLabels, Counter>,
    /// Frames a slow client missed (`websocket_backpressure_drops_total`).
    pub websocket_drops: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let workflow_runs = Family::<WorkflowLabels, Counter>::default();
        let tool_calls = Family::<ToolLabels, Counter>::default();
        let outbox_deliveries = Family::<DeliveryLabels, Counter>::default();
        let router_tier_usage = Family::<TierLabels, Counter>::default();
        let rate_limited = Family::<PlanLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            http_duration.clone(),
        );
        registry.register(
            "workflow_runs",
            "Finished workflow runs by status",
            workflow_runs.clone(),
        );
        registry.register("tool_calls", "Tool calls by outcome", tool_calls.clone());
        registry.register(
            "outbox_deliveries",
            "Outbox deliveries by channel and outcome",
            outbox_deliveries.clone(),
        );
        registry.register(
            "router_tier_usage",
            "Model calls by tier",
            router_tier_usage.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by rate limit or quota, by plan",
            rate_limited.clone(),
        );
        let retries = Family::<UpstreamLabels, Counter>::default();
        let timeouts = Family::<UpstreamLabels, Counter>::default();
        let circuit_opened = Family::<UpstreamLabels, Counter>::default();
        let circuit_transitions = Family::<TransitionLabels, Counter>::default();
        let circuit_rejected = Family::<UpstreamLabels, Counter>::default();
        let bulkhead_rejections = Family::<UpstreamLabels, Counter>::default();
        let idempotency_hits = Family::<ScopeLabels, Counter>::default();
        let sagas = Family::<SagaLabels, Counter>::default();
        let sagas_resumed = Counter::default();
        let guard_blocked = Family::<GuardLabels, Counter>::default();
        registry.register(
            "guard_blocked",
            "Guard actions by violation and surface",
            guard_blocked.clone(),
        );
        let rag_queries = Family::<OutcomeLabels, Counter>::default();
        let rag_reindexed = Family::<LevelLabels, Counter>::default();
        let rag_reindex_failures = Counter::default();
        registry.register(
            "rag_queries",
            "Retrieval queries by outcome",
            rag_queries.clone(),
        );
        registry.register(
            "rag_reindexed",
            "Document index entries made again, by level",
            rag_reindexed.clone(),
        );
        registry.register(
            "rag_reindex_failures",
            "Reindex passes over a tenant that failed",
            rag_reindex_failures.clone(),
        );
        let websocket_active = Gauge::default();
        let websocket_connections = Counter::default();
        let websocket_messages = Family::<KindLabels, Counter>::default();
        let websocket_drops = Counter::default();
        registry.register(
            "websocket_active_connections",
            "WebSocket sessions open now",
            websocket_active.clone(),
        );
        registry.register(
            "websocket_connections",
            "WebSocket sessions opened",
            websocket_connections.clone(),
        );
        registry.register(
            "websocket_messages",
            "WebSocket frames received, by kind",
            websocket_messages.clone(),
        );
        registry.register(
            "websocket_backpressure_drops",
            "WebSocket frames a slow client missed",
            websocket_drops.clone(),
        );
        registry.register("retry", "Extra attempts by upstream", retries.clone());
        registry.register(
            "timeout",
            "Attempts that timed out, by upstream",
            timeouts.clone(),
        );
        registry.register(
            "circuit_open",
            "Circuit breakers opening, by upstream",
            circuit_opened.clone(),
        );
        registry.register(
            "circuit_transitions",
            "Circuit breaker transitions by upstream and new state",
            circuit_transitions.clone(),
        );
        registry.register(
            "circuit_rejected",
            "Calls refused by an open circuit, by upstream",
            circuit_rejected.clone(),
        );
        registry.register(
            "bulkhead_rejections",
            "Calls refused by a full bulkhead, by upstream",
            bulkhead_rejections.clone(),
        );
        registry.register(
            "idempotency_hits",
            "Results replayed from an idempotency record",
            idempotency_hits.clone(),
        );
        registry.register("saga", "Sagas by final status", sagas.clone());
        registry.register(
            "saga_resumed",
            "Interrupted sagas resumed by a restarted worker",
            sagas_resumed.clone(),
        );
        Self {
            retries,
            timeouts,
            circuit_opened,
            circuit_transitions,
            circuit_rejected,
            bulkhead_rejections,
            idempotency_hits,
            sagas,
            sagas_resumed,
            guard_blocked,
            rag_queries,
            rag_reindexed,
            rag_reindex_failures,
            websocket_active,
            websocket_connections,
            websocket_messages,
            websocket_drops,
            registry,
            http_requests,
            http_duration,
            workflow_runs,
            tool_calls,
            outbox_deliveries,
            router_tier_usage,
            rate_limited,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.push_str("# encoding failed\n");
        }
        out
    }
}

/// Installs JSON logging to stderr, filtered by `RUST_LOG` (default `info`). Safe to call twice.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
}
