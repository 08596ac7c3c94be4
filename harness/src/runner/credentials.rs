//! Who sends a step: the scenario's tenants provisioned through the operator surface, each
//! fixture user's login, API keys and signed role tokens.

use crate::runner::error::StepError;
use crate::runner::scenario::Tenant;
use crate::runner::Scenario;
use crate::spec::{Actor, Step};
use crate::target::TargetSpec;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
/// The tenant id a fixture tenant `alias` gets in scenario `spec_id` run with `seed` (`nonce` is
/// empty for in-process targets).
pub fn tenant_slug(seed: u64, spec_id: &str, alias: &str, nonce: &str) -> String {
    let h = hex::encode(Sha256::digest(
        format!("{seed}:{spec_id}:{alias}:{nonce}").as_bytes(),
    ));
    format!("{alias}-{}", &h[..10])
}

/// A nonce that keeps tenants of different runs apart on a shared deployment (MOCK boots a fresh
/// platform per scenario, so it needs none and its slugs are reproducible).
pub(crate) fn run_nonce(target: &TargetSpec) -> String {
    match target {
        // GOLDEN runs get their own database, so they need no nonce either.
        TargetSpec::Mock | TargetSpec::Golden(_) => String::new(),
        TargetSpec::Remote { .. } => {
            static NONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            NONCE
                .get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_string())
                .clone()
        }
    }
}

impl Scenario<'_> {
    pub(crate) async fn provision(&self, slug: &str, body: &Value) -> Result<(), StepError> {
        let path = format!("/api/v1/operator/tenants/{slug}");
        self.operator(Method::PUT, &path, body, 201).await
    }

    /// A call to the target's operator surface that must answer `expected`.
    pub(crate) async fn operator(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        expected: u16,
    ) -> Result<(), StepError> {
        let r = self
            .http
            .request(method.clone(), format!("{}{path}", self.target.base_url))
            .header("x-operator-key", &self.target.operator_key)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = r.status().as_u16();
        if status == expected {
            Ok(())
        } else {
            Err(StepError::Harness(format!(
                "{method} {path} answered {status}: {}",
                r.text().await.unwrap_or_default()
            )))
        }
    }

    pub(crate) fn actor(&self, step: &Step) -> Actor {
        step.actor
            .clone()
            .or_else(|| self.spec.actor.clone())
            .unwrap_or_default()
    }

    pub(crate) fn slug(&self, alias: &str) -> Result<String, StepError> {
        self.tenants
            .get(alias)
            .map(|t| t.slug.clone())
            .ok_or_else(|| StepError::Harness(format!("no fixture provides tenant `{alias}`")))
    }

    pub(crate) async fn credentials(
        &self,
        a: &Actor,
    ) -> Result<BTreeMap<String, String>, StepError> {
        let mut h = BTreeMap::new();
        if let Some(tok) = &a.token {
            let tok = self.interp_str(tok)?;
            h.insert("authorization".into(), format!("Bearer {tok}"));
            return Ok(h);
        }
        let Some(alias) = &a.tenant else {
            return Ok(h);
        };
        let t = self
            .tenants
            .get(alias)
            .ok_or_else(|| format!("no fixture provides tenant `{alias}`"))?;
        if let Some(label) = &a.api_key {
            let key = t
                .fixture
                .api_keys
                .get(label)
                .ok_or_else(|| format!("no API key `{label}`"))?;
            h.insert("x-api-key".into(), key.clone());
        } else if let (Some(user), Some(role)) = (&a.user, &a.role) {
            let token = self.target.mint_token(&t.slug, user, role).ok_or(
                "`as: {role}` needs an in-process target (it signs with the platform's key)",
            )?;
            h.insert("authorization".into(), format!("Bearer {token}"));
        } else if let Some(user) = &a.user {
            let token = self.login(alias, t, user).await?;
            h.insert("authorization".into(), format!("Bearer {token}"));
        }
        Ok(h)
    }

    /// Logs a fixture user in through `POST /api/v1/auth/login`, once per scenario.
    pub(crate) async fn login(
        &self,
        alias: &str,
        t: &Tenant,
        user: &str,
    ) -> Result<String, StepError> {
        let key = (alias.to_string(), user.to_string());
        let mut cache = self.tokens.lock().await;
        if let Some(tok) = cache.get(&key) {
            return Ok(tok.clone());
        }
        let login = t
            .fixture
            .users
            .get(user)
            .ok_or_else(|| format!("no user `{user}` in `{alias}`"))?;
        let r = self
            .http
            .post(format!("{}/api/v1/auth/login", self.target.base_url))
            .json(&json!({"tenant_id": t.slug, "email": login.email, "password": login.password}))
            .send()
            .await
            .map_err(|e| format!("login of {user}: {e}"))?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let tok = body["token"]
            .as_str()
            .filter(|_| status == 200)
            .ok_or_else(|| format!("login of {user}@{alias} answered {status}: {body}"))?
            .to_string();
        cache.insert(key, tok.clone());
        Ok(tok)
    }
}
