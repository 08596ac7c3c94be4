//! Named, seeded data sets, written as YAML under `scenarios/fixtures/<name>.yaml` (the format is in
//! scenarios/README.md). A fixture describes tenants by alias (`acme`); the runner provisions each
//! as the scenario's own tenant through the platform's operator surface
//! (`PUT /api/v1/operator/tenants/{slug}`), never by reaching into its memory. The story records a
//! fixture names (users, SKUs, `ORD-1001`, the password-reset FAQ) are its own; what it does not
//! spell out is drawn from the seed: passwords, API keys, document ids, and the filler a
//! `generated:` line asks for (extra users, documents, leads, made by `fake`). Each value has a
//! random stream of its own (named by the tenant alias and the record), so the same seed gives the
//! same data, and adding or reordering a record changes no other record's values.

use crate::spec::LoadError;
use fake::faker::company::en::CompanyName;
use fake::faker::lorem::en::Sentence;
use fake::faker::name::en::Name;
use fake::Fake;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A fixture user's login.
#[derive(Debug, Clone)]
pub struct Login {
    pub email: String,
    pub password: String,
}

/// One tenant of a fixture, ready to provision.
#[derive(Debug, Clone)]
pub struct FixtureTenant {
    pub alias: String,
    /// The tenant id it is provisioned as (`slug_of(alias)`).
    pub slug: String,
    /// The body of the provisioning request.
    pub seed: Value,
    /// User handle -> login.
    pub users: BTreeMap<String, Login>,
    /// API key label -> key.
    pub api_keys: BTreeMap<String, String>,
}

/// One fixture file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureDef {
    /// One line on what it holds (`harness list --fixtures`).
    pub description: String,
    pub tenants: Vec<TenantDef>,
}

/// A tenant of a fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDef {
    /// What specs call it (`as: {tenant: acme}`); provisioned as `<alias>-<hash>`.
    pub alias: String,
    pub name: String,
    /// `free`, `pro` or `enterprise` (the platform's plans).
    pub plan: String,
    /// Limits that replace the plan's (`requests_per_window`, `window_secs`, `monthly_requests`,
    /// `monthly_tokens`, `max_concurrent_requests`).
    pub limits: Option<Value>,
    /// The only tools the tenant's workflows may call.
    pub allowed_tools: Option<Vec<String>>,
    #[serde(default)]
    pub users: Vec<UserDef>,
    #[serde(default)]
    pub api_keys: Vec<KeyDef>,
    #[serde(default)]
    pub products: Vec<Value>,
    #[serde(default)]
    pub orders: Vec<OrderDef>,
    #[serde(default)]
    pub documents: Vec<DocumentDef>,
    #[serde(default)]
    pub generated: Generated,
}

/// A user; logs in as `<handle>@<tenant id>.test` with a password drawn from the seed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDef {
    pub handle: String,
    /// `admin`, `user` or `guest`.
    pub role: String,
}

/// An API key, sent as `X-API-Key` by `as: {tenant, api_key: <label>}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDef {
    pub label: String,
    pub role: String,
}

/// An order placed by one of the tenant's users.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderDef {
    pub order_id: String,
    /// The handle of the user who placed it (only they, and admins, may see it).
    pub owner: String,
    pub status: String,
    /// `[{sku, quantity, unit_price_cents}]`.
    pub items: Vec<Value>,
    pub payment_status: String,
    pub tracking_number: Option<String>,
}

/// A knowledge-base document; `${data_canary}` in its content becomes the tenant's data canary.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentDef {
    pub title: String,
    pub content: String,
    /// `public`, `internal`, `confidential` or `restricted`.
    pub level: String,
    /// Only these roles may read it (besides the level's bound).
    pub roles: Option<Vec<String>>,
}

/// How many records of each kind to generate from the seed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generated {
    #[serde(default)]
    pub users: usize,
    #[serde(default)]
    pub documents: usize,
    #[serde(default)]
    pub leads: usize,
}

/// Every fixture of a directory, by name (the file name without `.yaml`).
#[derive(Debug, Clone, Default)]
pub struct Fixtures {
    defs: BTreeMap<String, FixtureDef>,
}

impl Fixtures {
    /// Loads every `*.yaml` of `dir`; each problem is a `file:line` error.
    pub fn load(dir: &Path) -> Result<Fixtures, Vec<LoadError>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| {
                vec![LoadError {
                    file: dir.to_path_buf(),
                    line: 1,
                    message: format!("cannot read the fixtures directory: {e}"),
                }]
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut defs = BTreeMap::new();
        let mut errors = vec![];
        for f in files {
            let name = f
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(LoadError {
                        file: f.clone(),
                        line: 1,
                        message: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            match serde_norway::from_str::<FixtureDef>(&text) {
                Ok(def) => {
                    errors.extend(check(&f, &text, &def));
                    defs.insert(name, def);
                }
                Err(e) => errors.push(LoadError {
                    file: f.clone(),
                    line: e.location().map_or(1, |l| l.line().max(1)),
                    message: e.to_string(),
                }),
            }
        }
        if errors.is_empty() {
            Ok(Fixtures { defs })
        } else {
            Err(errors)
        }
    }

    /// The workspace's fixtures, and those beside a spec directory (`<dir>/fixtures`), which
    /// add to them (a file of the same name replaces the shipped one).
    pub fn for_specs(dir: &Path) -> Result<Arc<Fixtures>, Vec<LoadError>> {
        let shipped = Fixtures::shipped()?;
        let own = dir.join("fixtures");
        if !own.is_dir() {
            return Ok(shipped);
        }
        let mine = Fixtures::load(&own)?;
        let mut all = (*shipped).clone();
        all.defs.extend(mine.defs);
        Ok(Arc::new(all))
    }

    /// The workspace's `scenarios/fixtures`, loaded once.
    pub fn shipped() -> Result<Arc<Fixtures>, Vec<LoadError>> {
        static SHIPPED: OnceLock<Result<Arc<Fixtures>, Vec<LoadError>>> = OnceLock::new();
        SHIPPED
            .get_or_init(|| {
                let here = PathBuf::from("scenarios/fixtures");
                let dir = if here.is_dir() {
                    here
                } else {
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/fixtures")
                };
                Fixtures::load(&dir).map(Arc::new)
            })
            .clone()
    }

    /// Every fixture's name and description.
    pub fn list(&self) -> Vec<(&str, &FixtureDef)> {
        self.defs.iter().map(|(n, d)| (n.as_str(), d)).collect()
    }

    /// The fixture called `name`.
    pub fn get(&self, name: &str) -> Option<&FixtureDef> {
        self.defs.get(name)
    }

    /// The tenants of fixture `name` for `seed`, each with its slug already decided by the
    /// caller's `slug_of(alias)`; `None` for an unknown fixture.
    pub fn build(
        &self,
        name: &str,
        seed: u64,
        slug_of: &dyn Fn(&str) -> String,
    ) -> Option<Vec<FixtureTenant>> {
        let def = self.defs.get(name)?;
        Some(
            def.tenants
                .iter()
                .map(|t| build_tenant(t, seed, &slug_of(&t.alias)))
                .collect(),
        )
    }
}

/// What serde cannot see: owners that are users, unique handles, and roles, levels and plans the
/// platform knows (checked against its own types, so the two never disagree).
fn check(file: &Path, text: &str, def: &FixtureDef) -> Vec<LoadError> {
    use platform::domain::{Level, Plan, Role};
    let mut errors = vec![];
    let mut err = |needle: &str, message: String| {
        let line = text
            .lines()
            .position(|l| l.contains(needle))
            .map_or(1, |i| i + 1);
        errors.push(LoadError {
            file: file.to_path_buf(),
            line,
            message,
        });
    };
    for t in &def.tenants {
        if let Err(e) = known::<Plan>(&t.plan) {
            err(
                &format!("plan: {}", t.plan),
                format!("tenant `{}`: plan: {e}", t.alias),
            );
        }
        let mut handles = std::collections::BTreeSet::new();
        for u in &t.users {
            if !handles.insert(u.handle.as_str()) {
                err(
                    &u.handle,
                    format!("tenant `{}`: user `{}` twice", t.alias, u.handle),
                );
            }
            if let Err(e) = known::<Role>(&u.role) {
                err(&u.handle, format!("user `{}`: role: {e}", u.handle));
            }
        }
        for o in &t.orders {
            if !handles.contains(o.owner.as_str()) {
                err(
                    &format!("owner: {}", o.owner),
                    format!(
                        "order {}: owner `{}` is not a user of `{}`",
                        o.order_id, o.owner, t.alias
                    ),
                );
            }
        }
        for d in &t.documents {
            if let Err(e) = known::<Level>(&d.level) {
                err(&d.title, format!("document `{}`: level: {e}", d.title));
            }
        }
    }
    errors
}

/// Whether `value` names a variant of the platform's type `T`; serde's message lists the variants.
fn known<T: serde::de::DeserializeOwned>(value: &str) -> Result<(), String> {
    serde_json::from_value::<T>(Value::String(value.into()))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A deterministic generator for `(seed, what)`.
pub fn rng_for(seed: u64, what: &str) -> ChaCha8Rng {
    let d = Sha256::digest(format!("{seed}:{what}").as_bytes());
    let mut b = [0u8; 32];
    b.copy_from_slice(&d);
    ChaCha8Rng::from_seed(b)
}

/// The canary planted in a fixture tenant's data (its restricted document, its orders' shipping
/// addresses): like the system-prompt canary, it must never reach another tenant. Its own format
/// (`TRACE-`), so that the output guard, which refuses answers carrying a system-prompt canary
/// (`CANARY-`), lets a tenant read its own. It derives from the slug alone (a scenario's slug
/// already names the seed and the spec), so the story records that carry it do not change with the
/// seed.
pub fn data_canary(slug: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("data-canary:{slug}").as_bytes()));
    format!("TRACE-{}", &h[..16])
}

/// A secret of 32 hex digits from its own stream.
fn secret(seed: u64, what: &str) -> String {
    let n: u128 = rng_for(seed, what).gen();
    format!("{n:032x}")
}

fn build_tenant(t: &TenantDef, seed: u64, slug: &str) -> FixtureTenant {
    let alias = &t.alias;
    let mut users = vec![];
    let mut logins = BTreeMap::new();
    let mut add_user = |handle: &str, role: &str| {
        let email = format!("{handle}@{slug}.test");
        let password = format!("pw-{}", secret(seed, &format!("{alias}/password/{handle}")));
        users.push(json!({"user_id": handle, "email": email, "password": password, "role": role}));
        logins.insert(handle.to_string(), Login { email, password });
    };
    for u in &t.users {
        add_user(&u.handle, &u.role);
    }
    let mut names = rng_for(seed, &format!("{alias}/generated/users"));
    for i in 0..t.generated.users {
        let name: String = Name().fake_with_rng(&mut names);
        let first = name.split_whitespace().next().unwrap_or("user");
        let handle: String = format!("{}{i}", first.to_lowercase())
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        add_user(&handle, "user");
    }
    let mut keys = vec![];
    let mut api_keys = BTreeMap::new();
    for k in &t.api_keys {
        // A key identifies its tenant, so it must differ between the scenarios' tenants: the
        // seeded draw is mixed with the slug (still the same on a rerun).
        let draw = secret(seed, &format!("{alias}/api_key/{}", k.label));
        let mixed = hex::encode(Sha256::digest(format!("{draw}:{slug}").as_bytes()));
        let key = format!("ak_{alias}_{}", &mixed[..32]);
        keys.push(json!({"key": key, "label": k.label, "role": k.role}));
        api_keys.insert(k.label.clone(), key);
    }
    let canary = data_canary(slug);
    let doc_id = |what: &str| uuid::Uuid::from_u128(rng_for(seed, what).gen());
    let mut documents: Vec<Value> = t
        .documents
        .iter()
        .map(|d| {
            json!({"document_id": doc_id(&format!("{alias}/document/{}", d.title)),
                   "title": d.title, "content": d.content.replace("${data_canary}", &canary),
                   "level": d.level, "roles": d.roles})
        })
        .collect();
    let mut filler = rng_for(seed, &format!("{alias}/generated/documents"));
    for i in 0..t.generated.documents {
        let title: String = Sentence(2..4).fake_with_rng(&mut filler);
        let body: String = Sentence(12..20).fake_with_rng(&mut filler);
        documents.push(json!({"document_id": doc_id(&format!("{alias}/generated/document/{i}")),
            "title": title.trim_end_matches('.'), "content": body, "level": "public", "roles": null}));
    }
    let mut lead_rng = rng_for(seed, &format!("{alias}/generated/leads"));
    let leads: Vec<Value> = (0..t.generated.leads)
        .map(|i| {
            let name: String = Name().fake_with_rng(&mut lead_rng);
            let company: String = CompanyName().fake_with_rng(&mut lead_rng);
            let score: u32 = lead_rng.gen_range(20..95);
            let grade = match score {
                70.. => "A",
                40.. => "B",
                _ => "C",
            };
            json!({"lead_id": format!("LEAD-FIX-{}", i + 1), "name": name,
                   "email": format!("lead{}@{slug}.example", i + 1), "company": company,
                   "grade": grade, "score": score})
        })
        .collect();
    // The tenant's data canary rides in every order's shipping address too, so an order (or a
    // tool output holding it) seen by another tenant is caught by the isolation oracle.
    let orders: Vec<Value> = t
        .orders
        .iter()
        .map(|o| {
            json!({"order_id": o.order_id, "user_id": o.owner, "status": o.status,
                   "items": o.items, "payment_status": o.payment_status,
                   "tracking_number": o.tracking_number,
                   "shipping_address": format!("1 Fixture Street, Springfield (ref {canary})")})
        })
        .collect();
    let mut body = json!({
        "name": t.name, "plan": t.plan, "limits": t.limits, "users": users, "api_keys": keys,
        "products": t.products, "orders": orders, "documents": documents, "leads": leads,
    });
    if let Some(tools) = &t.allowed_tools {
        body["allowed_tools"] = json!(tools);
    }
    FixtureTenant {
        alias: alias.clone(),
        slug: slug.to_string(),
        seed: body,
        users: logins,
        api_keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(a: &str) -> String {
        format!("{a}-t")
    }

    fn shipped() -> Arc<Fixtures> {
        Fixtures::shipped().unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn the_same_seed_gives_the_same_data_and_another_seed_other_filler() {
        let f = shipped();
        for (name, _) in f.list() {
            let a = f.build(name, 7, &slug).unwrap();
            let b = f.build(name, 7, &slug).unwrap();
            assert_eq!(
                a.iter().map(|t| &t.seed).collect::<Vec<_>>(),
                b.iter().map(|t| &t.seed).collect::<Vec<_>>()
            );
        }
        let a = f.build("acme", 7, &slug).unwrap().remove(0);
        let c = f.build("acme", 8, &slug).unwrap().remove(0);
        assert_ne!(a.seed["documents"], c.seed["documents"]);
        assert_eq!(
            a.seed["orders"], c.seed["orders"],
            "story records do not depend on the seed"
        );
        assert!(f.build("nope", 1, &slug).is_none());
    }

    #[test]
    fn acme_has_documents_at_every_level_and_its_story_users() {
        let a = shipped().build("acme", 42, &slug).unwrap().remove(0);
        for level in ["public", "internal", "confidential", "restricted"] {
            assert!(
                a.seed["documents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["level"] == level),
                "{level}"
            );
        }
        for u in ["alice", "bob", "gina", "dave"] {
            assert!(a.users.contains_key(u), "{u}");
        }
        assert_eq!(a.users.len(), 6);
        assert!(a.api_keys["admin"].starts_with("ak_acme_"));
        let restricted = a.seed["documents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["level"] == "restricted")
            .unwrap();
        assert!(restricted["content"]
            .as_str()
            .unwrap()
            .contains(&data_canary("acme-t")));
    }

    #[test]
    fn a_record_added_changes_no_other_record() {
        let f = shipped();
        let mut def = f.get("acme").unwrap().tenants[0].clone();
        let before = build_tenant(&def, 42, "acme-t");
        def.users.insert(
            0,
            UserDef {
                handle: "zed".into(),
                role: "user".into(),
            },
        );
        let after = build_tenant(&def, 42, "acme-t");
        assert_eq!(before.users["bob"].password, after.users["bob"].password);
        assert_eq!(before.seed["documents"], after.seed["documents"]);
        assert_eq!(before.api_keys, after.api_keys);
    }

    #[test]
    fn a_bad_fixture_is_reported_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            "description: x\ntenants:\n  - alias: a\n    name: A\n    plan: gold\n    users:\n      - {handle: u, role: user}\n    orders:\n      - {order_id: ORD-1, owner: nobody, status: shipped, items: [], payment_status: captured}\n",
        )
        .unwrap();
        let e = Fixtures::load(dir.path()).unwrap_err();
        let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|m| m.contains(":5:") && m.contains("plan: unknown variant `gold`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|m| m.contains(":9:") && m.contains("owner `nobody`")),
            "{text:?}"
        );
        std::fs::write(
            dir.path().join("bad.yaml"),
            "description: x\ntenants:\n  - alias: a\n    nmae: A\n",
        )
        .unwrap();
        let e = Fixtures::load(dir.path()).unwrap_err();
        assert!(e[0].message.contains("nmae"), "{e:?}");
    }
}
