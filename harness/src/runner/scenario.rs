//! One scenario's life: its target and tenants, the steps in order, each step's one action
//! dispatched to the module that performs it, and the verdict.

use crate::drive::events::EventFeed;
use crate::drive::Response;
use crate::fixture::FixtureTenant;
use crate::record::episode;
use crate::record::episode::{Episode, TenantRecord};
use crate::runner::credentials::run_nonce;
use crate::runner::error::{FailureKind, StepError};
use crate::runner::restart::event_response;
use crate::runner::{find_run_id, step_label, tenant_slug, Exchange, Failure, RunConfig};
use crate::spec::{Action, Spec, Step};
use crate::target::Target;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::sync::Mutex;
pub(crate) struct Tenant {
    pub(crate) slug: String,
    pub(crate) fixture: FixtureTenant,
}

pub(crate) struct Scenario<'a> {
    pub(crate) spec: &'a Spec,
    pub(crate) cfg: &'a RunConfig,
    pub(crate) target: Target,
    pub(crate) http: reqwest::Client,
    pub(crate) vars: BTreeMap<String, Value>,
    pub(crate) tenants: BTreeMap<String, Tenant>,
    pub(crate) tokens: Mutex<HashMap<(String, String), String>>,
    pub(crate) transcript: Vec<Exchange>,
    /// The exchanges of the step's latest attempt.
    pub(crate) attempt_log: std::sync::Mutex<Vec<Exchange>>,
    /// Requests sent with `background: true`, abandoned when the scenario ends.
    pub(crate) background: Vec<tokio::task::JoinHandle<()>>,
    /// Results of the `attacks` steps so far.
    pub(crate) attacks: Vec<crate::attack::CaseResult>,
    /// Where the captured log stood when the scenario started (`logs::mark`).
    pub(crate) log_mark: usize,
}

impl Drop for Scenario<'_> {
    fn drop(&mut self) {
        for t in &self.background {
            t.abort();
        }
    }
}

impl<'a> Scenario<'a> {
    pub(crate) async fn run(
        spec: &'a Spec,
        cfg: &'a RunConfig,
    ) -> (
        Result<(), Failure>,
        Vec<Exchange>,
        Option<Episode>,
        Vec<crate::attack::CaseResult>,
    ) {
        let mut transcript = vec![];
        let mut episode = None;
        let mut attacks = vec![];
        let r = Self::run_into(spec, cfg, &mut transcript, &mut episode, &mut attacks).await;
        (r, transcript, episode, attacks)
    }

    pub(crate) async fn run_into(
        spec: &'a Spec,
        cfg: &'a RunConfig,
        transcript: &mut Vec<Exchange>,
        episode: &mut Option<Episode>,
        attacks: &mut Vec<crate::attack::CaseResult>,
    ) -> Result<(), Failure> {
        let fail_at = |location: String, step: &str, e: StepError| Failure {
            location,
            step: step.into(),
            kind: e.kind(),
            message: e.to_string(),
            seed: cfg.seed,
            reproduce: cfg.reproduce(spec),
        };
        let setup = |m: String| {
            fail_at(
                format!("{}:{}", spec.file.display(), spec.setup_line.max(1)),
                "setup",
                StepError::Harness(m),
            )
        };
        crate::logs::install();
        let log_mark = crate::logs::mark();
        let target = cfg
            .target
            .start(
                cfg.seed,
                &spec.id,
                &cfg.model,
                cfg.workflows_dir.as_deref(),
                spec.platform.as_ref(),
            )
            .await
            .map_err(|e| setup(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let nonce = run_nonce(&cfg.target);
        let slug_of = |alias: &str| tenant_slug(cfg.seed, &spec.id, alias, &nonce);
        let mut sc = Scenario {
            spec,
            cfg,
            target,
            http,
            vars: spec.vars.clone(),
            tenants: BTreeMap::new(),
            tokens: Mutex::new(HashMap::new()),
            transcript: vec![],
            attempt_log: std::sync::Mutex::new(vec![]),
            background: vec![],
            attacks: vec![],
            log_mark,
        };
        sc.vars.insert("seed".into(), json!(cfg.seed));
        for name in &spec.fixtures {
            let ts = spec
                .fixture_set
                .build(name, cfg.seed, &slug_of)
                .ok_or_else(|| setup(format!("unknown fixture `{name}`")))?;
            for t in ts {
                let slug = t.slug.clone();
                sc.provision(&slug, &t.seed).await.map_err(|m| {
                    setup(format!(
                        "provisioning fixture `{name}` (tenant `{}` as {slug}): {m}",
                        t.alias
                    ))
                })?;
                sc.vars.insert(format!("tenant.{}", t.alias), json!(slug));
                sc.tenants
                    .insert(t.alias.clone(), Tenant { slug, fixture: t });
            }
        }
        let mut result = Ok(());
        for (i, step) in spec.steps.iter().enumerate() {
            let label = step_label(i, step);
            if let Err(m) = sc.step(i + 1, step).await {
                result = Err(fail_at(spec.step_location(i), &label, m));
                break;
            }
        }
        // The oracles run whatever the steps found: a leak matters more than the step it broke.
        if let Err(m) = sc.isolation_oracle().await {
            result = Err(match result {
                Err(mut f) => {
                    // A leak the oracle saw judges the platform, whatever stopped the step.
                    if m.kind() == FailureKind::Mismatch {
                        f.kind = FailureKind::Mismatch;
                    }
                    f.message = format!("{}\n(and the oracles found:)\n{m}", f.message);
                    f
                }
                Ok(()) => fail_at(
                    format!("{}:{}", spec.file.display(), spec.setup_line.max(1)),
                    "oracle",
                    m,
                ),
            });
        }
        // A model request without a cassette fails the scenario even when the spec expected the
        // error it caused: GOLDEN fails closed.
        let problems = sc
            .target
            .llm
            .as_ref()
            .map(|l| l.problems())
            .unwrap_or_default();
        if !problems.is_empty() {
            let m = problems.join("\n");
            result = Err(match result {
                // The platform asked the model something no cassette holds: its behaviour
                // changed, so this judges the platform.
                Err(mut f) => {
                    f.kind = FailureKind::Mismatch;
                    f.message = format!("{m}\n(which made this step fail:)\n{}", f.message);
                    f
                }
                Ok(()) => fail_at(
                    format!("{}:{}", spec.file.display(), spec.setup_line.max(1)),
                    "model",
                    StepError::Mismatch(m),
                ),
            });
        }
        *transcript = std::mem::take(&mut sc.transcript);
        *attacks = std::mem::take(&mut sc.attacks);
        if cfg.record_episodes {
            let run_ids: Vec<String> = transcript
                .iter()
                .filter_map(|e| find_run_id(&e.response))
                .collect();
            let tenants = sc.tenant_records(&run_ids).await.unwrap_or_default();
            *episode = Some(Episode::build(episode::Parts {
                spec,
                seed: cfg.seed,
                mode: cfg.mode.as_str(),
                failure: result.as_ref().err().map(|f| f.message.clone()),
                transcript,
                tenants,
                model_calls: sc
                    .target
                    .llm
                    .as_ref()
                    .map(|l| l.served())
                    .unwrap_or_default(),
            }));
        }
        result
    }

    /// Runs one step; with `expect.metrics`, `/metrics` is scraped before it (for deltas) and
    /// checked after it.
    pub(crate) async fn step(&mut self, n: usize, step: &Step) -> Result<(), StepError> {
        let items = &step.expect.metrics;
        let before = if items.iter().any(|i| i.delta.is_some()) {
            Some(self.scrape().await?)
        } else {
            None
        };
        self.action(n, step).await?;
        if items.is_empty() {
            Ok(())
        } else {
            self.check_metrics(items, before.as_ref()).await
        }
    }

    /// Runs the step's one action and checks its expectations (all but `metrics`).
    pub(crate) async fn action(&mut self, n: usize, step: &Step) -> Result<(), StepError> {
        match &step.action {
            Action::Fault(f) => self.fault(step, f).await,
            Action::Attacks(a) => self.attacks(n, step, a).await,
            Action::Concurrently(list) => self.concurrently(n, list).await,
            Action::Ws(w) => self.ws(n, step, w).await,
            Action::Sink(s) => self.sink(n, step, s).await,
            Action::Replay(r) => self.replay_step(n, step, r).await,
            Action::Restart(r) => {
                let resp = self.restart(step, r).await?;
                self.harness_step(n, step, "RESTART".into(), resp).await
            }
            Action::WaitForEvent(w) => {
                let resp = event_response(self.await_event(step, &w.subject, &w.fields).await?);
                self.harness_step(n, step, format!("WAIT FOR {}", w.subject), resp)
                    .await
            }
            Action::AdvanceClock(span) => {
                self.operator(
                    Method::POST,
                    "/api/v1/operator/clock",
                    &json!({"advance_ms": span.as_millis()}),
                    200,
                )
                .await
            }
            Action::Chat { .. } | Action::Http { .. } | Action::Workflow(_) => {
                if step.background {
                    self.background_request(n, step).await
                } else {
                    self.request_step(n, step).await
                }
            }
        }
    }

    /// A step the harness answers itself (a restart, an event wait): its response goes to the
    /// transcript and is checked like a request's.
    pub(crate) async fn harness_step(
        &mut self,
        n: usize,
        step: &Step,
        request: String,
        resp: Response,
    ) -> Result<(), StepError> {
        self.transcript
            .push(Exchange::own(n, request, resp.status, resp.json.clone()));
        self.check_response(step, &resp, &BTreeMap::new()).await?;
        self.capture(step, &resp)
    }

    /// The tenant ids this scenario provisioned.
    pub(crate) fn tenant_slugs(&self) -> std::collections::BTreeSet<String> {
        self.tenants.values().map(|t| t.slug.clone()).collect()
    }

    /// The scenario's view of the bus: every tenant it provisioned.
    pub(crate) fn feed(&self) -> EventFeed {
        EventFeed {
            http: self.http.clone(),
            base_url: self.target.base_url.clone(),
            operator_key: self.target.operator_key.clone(),
            tenants: self.tenants.values().map(|t| t.slug.clone()).collect(),
        }
    }

    pub(crate) async fn fault(
        &self,
        step: &Step,
        f: &crate::spec::FaultStep,
    ) -> Result<(), StepError> {
        let alias = f
            .tenant
            .clone()
            .or_else(|| self.actor(step).tenant)
            .ok_or("a fault needs a tenant: `tenant:` or the step's `as:`")?;
        let body = json!({"tenant_id": self.slug(&alias)?, "tool": f.tool, "point": f.point, "fault": f.fault});
        self.operator(Method::POST, "/api/v1/operator/faults", &body, 200)
            .await
    }

    /// Each fixture tenant's versions, audit trail and the named runs, from the operator surface
    /// (so that reading them is not the tenant's traffic).
    pub(crate) async fn tenant_records(
        &self,
        run_ids: &[String],
    ) -> Result<Vec<TenantRecord>, StepError> {
        let mut out = vec![];
        for (alias, t) in &self.tenants {
            let path = format!(
                "/api/v1/operator/tenants/{}/record?runs={}",
                t.slug,
                run_ids.join(",")
            );
            let r = self
                .http
                .get(format!("{}{path}", self.target.base_url))
                .header("x-operator-key", &self.target.operator_key)
                .send()
                .await
                .map_err(|e| format!("GET {path}: {e}"))?;
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status != 200 {
                return Err(StepError::Harness(format!(
                    "GET {path} answered {status}: {body}"
                )));
            }
            out.push(TenantRecord {
                alias: alias.clone(),
                slug: t.slug.clone(),
                versions: body["versions"].clone(),
                audit: body["audit"].as_array().cloned().unwrap_or_default(),
                runs: body["runs"].as_array().cloned().unwrap_or_default(),
            });
        }
        Ok(out)
    }
}
