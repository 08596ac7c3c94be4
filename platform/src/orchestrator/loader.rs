//! Loading and validating workflows. The shipped set is embedded in the binary; `workflows_dir`
//! replaces it with a directory of the same layout (`*.yaml`, and `tenants/<tenant>.yaml` overlays).
//! Validation runs at start-up and stops it, naming the file and node, on: an unknown node type, a
//! missing field of a node's type, an edge to a missing node, a node without an unconditional way
//! out, a cycle without a loop guard, an unknown tool, or a missing sub-workflow.

use super::expr;
use super::model::{Workflow, NODE_TYPES};
use crate::tools::Registry;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

/// A workflow or overlay that cannot be used, with where it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {}{message}", node.as_ref().map(|n| format!("node `{n}`: ")).unwrap_or_default())]
pub struct LoadError {
    pub file: String,
    pub node: Option<String>,
    pub message: String,
}

fn err(file: &str, node: Option<&str>, message: impl Into<String>) -> LoadError {
    LoadError {
        file: file.to_string(),
        node: node.map(str::to_string),
        message: message.into(),
    }
}

/// The shipped workflows, compiled in.
const SHIPPED: [(&str, &str); 10] = [
    (
        "customer_support.yaml",
        include_str!("../../workflows/customer_support.yaml"),
    ),
    ("faq.yaml", include_str!("../../workflows/faq.yaml")),
    (
        "order_status.yaml",
        include_str!("../../workflows/order_status.yaml"),
    ),
    (
        "create_order.yaml",
        include_str!("../../workflows/create_order.yaml"),
    ),
    (
        "cancel_order.yaml",
        include_str!("../../workflows/cancel_order.yaml"),
    ),
    (
        "modify_order.yaml",
        include_str!("../../workflows/modify_order.yaml"),
    ),
    (
        "lead_capture.yaml",
        include_str!("../../workflows/lead_capture.yaml"),
    ),
    (
        "escalation.yaml",
        include_str!("../../workflows/escalation.yaml"),
    ),
    ("general.yaml", include_str!("../../workflows/general.yaml")),
    (
        "fetch_page.yaml",
        include_str!("../../workflows/fetch_page.yaml"),
    ),
];

const SHIPPED_OVERLAYS: [(&str, &str); 1] = [(
    "tenants/globex.yaml",
    include_str!("../../workflows/tenants/globex.yaml"),
)];

/// The shipped workflow files (overlays under `tenants/`), as `(relative path, YAML)`: what a
/// `workflows_dir` starts from (the harness writes a copy to replay against changed versions).
pub fn shipped_files() -> Vec<(String, String)> {
    SHIPPED
        .iter()
        .chain(SHIPPED_OVERLAYS.iter())
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect()
}

/// A tenant overlay: workflows to disable and deep-merge patches by workflow id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overlay {
    tenant: String,
    #[serde(default)]
    disable: Vec<String>,
    /// Tools this tenant may not use; a run that reaches one fails with `TOOL_NOT_ALLOWED`.
    #[serde(default)]
    deny_tools: Vec<String>,
    /// `{workflow_id: {limits: {...}, nodes: {node_id: {...}}, edges: [...]}}`
    #[serde(default)]
    patch: BTreeMap<String, Value>,
}

/// Every workflow, as each tenant sees it.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    base: BTreeMap<String, Arc<Workflow>>,
    overlaid: BTreeMap<String, BTreeMap<String, Arc<Workflow>>>,
    disabled: BTreeMap<String, BTreeSet<String>>,
    denied_tools: BTreeMap<String, BTreeSet<String>>,
}

impl Catalog {
    /// Loads the shipped set, or `dir` when given, and validates everything.
    pub fn load(dir: Option<&Path>, tools: &Registry) -> Result<Self, LoadError> {
        let (files, overlays) = match dir {
            None => (
                SHIPPED
                    .iter()
                    .map(|(f, t)| (f.to_string(), t.to_string()))
                    .collect(),
                SHIPPED_OVERLAYS
                    .iter()
                    .map(|(f, t)| (f.to_string(), t.to_string()))
                    .collect(),
            ),
            Some(d) => (
                read_yaml_dir(d)?,
                read_yaml_dir(&d.join("tenants")).unwrap_or_default(),
            ),
        };
        Self::from_sources(&files, &overlays, tools)
    }

    /// Builds a catalog from `(file name, YAML)` pairs of workflows and overlays.
    pub fn from_sources(
        files: &[(String, String)],
        overlays: &[(String, String)],
        tools: &Registry,
    ) -> Result<Self, LoadError> {
        // Raw values stay for overlay patches; each parsed workflow is validated once, then kept.
        let mut raw: BTreeMap<String, (String, Value)> = BTreeMap::new();
        let mut parsed = Vec::with_capacity(files.len());
        for (file, text) in files {
            let v: Value =
                serde_norway::from_str(text).map_err(|e| err(file, None, e.to_string()))?;
            let wf: Workflow =
                serde_json::from_value(v.clone()).map_err(|e| err(file, None, e.to_string()))?;
            if raw.insert(wf.id.clone(), (file.clone(), v)).is_some() {
                return Err(err(
                    file,
                    None,
                    format!("workflow id `{}` is defined twice", wf.id),
                ));
            }
            parsed.push((file, wf));
        }
        let ids: BTreeSet<String> = raw.keys().cloned().collect();
        let mut cat = Catalog::default();
        for (file, mut wf) in parsed {
            validate(&mut wf, file, &ids, tools)?;
            cat.base.insert(wf.id.clone(), Arc::new(wf));
        }
        check_sub_workflow_cycles(&cat.base)?;
        for (file, text) in overlays {
            let o: Overlay =
                serde_norway::from_str(text).map_err(|e| err(file, None, e.to_string()))?;
            for d in &o.disable {
                if !ids.contains(d) {
                    return Err(err(file, None, format!("disables unknown workflow `{d}`")));
                }
            }
            for t in &o.deny_tools {
                if tools.manifest(t).is_none() {
                    return Err(err(file, None, format!("denies unknown tool `{t}`")));
                }
            }
            cat.denied_tools
                .insert(o.tenant.clone(), o.deny_tools.iter().cloned().collect());
            let mut mine = BTreeMap::new();
            for (wid, patch) in &o.patch {
                let (_, base) = raw
                    .get(wid)
                    .ok_or_else(|| err(file, None, format!("patches unknown workflow `{wid}`")))?;
                let merged = apply_patch(base.clone(), patch).map_err(|m| err(file, None, m))?;
                let mut wf: Workflow = serde_json::from_value(merged)
                    .map_err(|e| err(file, None, format!("workflow `{wid}` after patch: {e}")))?;
                validate(&mut wf, file, &ids, tools)?;
                mine.insert(wid.clone(), Arc::new(wf));
            }
            cat.overlaid.insert(o.tenant.clone(), mine);
            cat.disabled
                .insert(o.tenant.clone(), o.disable.into_iter().collect());
        }
        Ok(cat)
    }

    /// The workflow `id` as `tenant` sees it; `None` when absent or disabled for the tenant.
    pub fn get(&self, tenant: &str, id: &str) -> Option<Arc<Workflow>> {
        if self.disabled.get(tenant).is_some_and(|d| d.contains(id)) {
            return None;
        }
        self.overlaid
            .get(tenant)
            .and_then(|m| m.get(id))
            .or_else(|| self.base.get(id))
            .cloned()
    }

    /// Whether `tenant`'s overlay denies the tool `name`.
    pub fn tool_denied(&self, tenant: &str, name: &str) -> bool {
        self.denied_tools
            .get(tenant)
            .is_some_and(|d| d.contains(name))
    }

    /// Every workflow available to `tenant`, by id.
    pub fn list(&self, tenant: &str) -> Vec<Arc<Workflow>> {
        self.base
            .keys()
            .filter_map(|id| self.get(tenant, id))
            .collect()
    }
}

fn read_yaml_dir(d: &Path) -> Result<Vec<(String, String)>, LoadError> {
    let name = d.display().to_string();
    let rd = std::fs::read_dir(d).map_err(|e| err(&name, None, e.to_string()))?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| err(&p.display().to_string(), None, e.to_string()))?;
            out.push((p.display().to_string(), text));
        }
    }
    out.sort();
    Ok(out)
}

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// Deep-merges `patch` into a raw workflow; `nodes` patches are keyed by node id and must match one.
fn apply_patch(mut wf: Value, patch: &Value) -> Result<Value, String> {
    let p = patch.as_object().ok_or("a patch must be a mapping")?;
    for (k, v) in p {
        if k == "nodes" {
            let by_id = v
                .as_object()
                .ok_or("`nodes` patch must map node ids to fields")?;
            let nodes = wf
                .get_mut("nodes")
                .and_then(Value::as_array_mut)
                .ok_or("workflow has no nodes")?;
            for (nid, np) in by_id {
                let node = nodes
                    .iter_mut()
                    .find(|n| n.get("id").and_then(Value::as_str) == Some(nid.as_str()))
                    .ok_or_else(|| format!("patches unknown node `{nid}`"))?;
                merge(node, np);
            }
        } else if k == "edges" {
            wf[k] = v.clone();
        } else if ["limits", "description", "version"].contains(&k.as_str()) {
            merge(
                wf.as_object_mut()
                    .ok_or("a workflow must be a mapping")?
                    .entry(k.clone())
                    .or_insert(Value::Null),
                v,
            );
        } else {
            return Err(format!(
                "patches unknown field `{k}` (limits, description, version, nodes or edges)"
            ));
        }
    }
    Ok(wf)
}

/// Structural validation of one workflow; it also compiles the edge conditions it checks.
pub fn validate(
    wf: &mut Workflow,
    file: &str,
    workflows: &BTreeSet<String>,
    tools: &Registry,
) -> Result<(), LoadError> {
    let mut ids = BTreeSet::new();
    for n in &wf.nodes {
        let at = Some(n.id.as_str());
        if !ids.insert(n.id.as_str()) {
            return Err(err(file, at, "duplicate node id"));
        }
        if !NODE_TYPES.contains(&n.kind.as_str()) {
            return Err(err(
                file,
                at,
                format!(
                    "unknown node type `{}` (expected one of {})",
                    n.kind,
                    NODE_TYPES.join(", ")
                ),
            ));
        }
        match n.kind.as_str() {
            "tool" => {
                let t = n
                    .tool
                    .as_deref()
                    .ok_or_else(|| err(file, at, "a tool node needs `tool`"))?;
                let m = tools
                    .manifest(t)
                    .ok_or_else(|| err(file, at, format!("unknown tool `{t}`")))?;
                for k in n.params.keys() {
                    if !m.params.iter().any(|p| p.name == k) {
                        return Err(err(file, at, format!("tool `{t}` has no parameter `{k}`")));
                    }
                }
            }
            "agent" => {
                if n.task.is_none() {
                    return Err(err(file, at, "an agent node needs `task`"));
                }
                for t in n.tools.iter().flatten() {
                    if tools.manifest(t).is_none() {
                        return Err(err(file, at, format!("offers unknown tool `{t}`")));
                    }
                }
            }
            "sub_workflow" => {
                let w = n
                    .workflow
                    .as_deref()
                    .ok_or_else(|| err(file, at, "a sub_workflow node needs `workflow`"))?;
                if !workflows.contains(w) {
                    return Err(err(file, at, format!("sub-workflow `{w}` does not exist")));
                }
            }
            _ => {}
        }
    }
    let starts: Vec<_> = wf.nodes.iter().filter(|n| n.kind == "start").collect();
    if starts.len() != 1 {
        return Err(err(
            file,
            None,
            format!("needs exactly one start node, found {}", starts.len()),
        ));
    }
    for e in wf.edges.iter_mut() {
        for end in [&e.from, &e.to] {
            if !ids.contains(end.as_str()) {
                return Err(err(
                    file,
                    Some(&e.from),
                    format!("edge {} -> {}: no node `{end}`", e.from, e.to),
                ));
            }
        }
        if let Some(w) = &e.when {
            e.condition =
                Some(expr::parse(w).map_err(|x| err(file, Some(&e.from), x.to_string()))?);
        }
    }
    for n in &wf.nodes {
        let out: Vec<_> = wf.edges.iter().filter(|e| e.from == n.id).collect();
        if n.kind == "end" {
            if !out.is_empty() {
                return Err(err(file, Some(&n.id), "an end node has no outgoing edges"));
            }
        } else if out.last().is_none_or(|e| e.when.is_some()) {
            return Err(err(
                file,
                Some(&n.id),
                "the last outgoing edge must have no `when` (a node needs a default way out)",
            ));
        }
        if let Some(t) = &n.on_error {
            if !ids.contains(t.as_str()) {
                return Err(err(
                    file,
                    Some(&n.id),
                    format!("on_error target `{t}` does not exist"),
                ));
            }
        }
    }
    for scc in cycles(wf) {
        if !scc.iter().any(|id| {
            wf.nodes
                .iter()
                .any(|n| &n.id == id && n.max_visits.is_some())
        }) {
            return Err(err(
                file,
                Some(&scc[0]),
                format!(
                    "cycle {} has no loop guard (`max_visits` on one of its nodes)",
                    scc.join(" -> ")
                ),
            ));
        }
    }
    Ok(())
}

/// The strongly connected components that form cycles (size > 1, or a self-loop), by Tarjan.
fn cycles(wf: &Workflow) -> Vec<Vec<String>> {
    let idx: HashMap<&str, usize> = wf
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let n = wf.nodes.len();
    let mut adj = vec![Vec::new(); n];
    for e in &wf.edges {
        if let (Some(&a), Some(&b)) = (idx.get(e.from.as_str()), idx.get(e.to.as_str())) {
            adj[a].push(b);
        }
        if let Some(&a) = idx.get(e.from.as_str()) {
            if let Some(t) = wf.nodes[a].on_error.as_deref().and_then(|t| idx.get(t)) {
                adj[a].push(*t);
            }
        }
    }
    struct T {
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn strong(v: usize, adj: &[Vec<usize>], t: &mut T) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &w in &adj[v] {
            match t.index[w] {
                None => {
                    strong(w, adj, t);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            t.out.push(comp);
        }
    }
    let mut t = T {
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: vec![],
        next: 0,
        out: vec![],
    };
    for v in 0..n {
        if t.index[v].is_none() {
            strong(v, &adj, &mut t);
        }
    }
    t.out
        .into_iter()
        .filter(|c| c.len() > 1 || adj[c[0]].contains(&c[0]))
        .map(|c| {
            let mut names: Vec<String> = c.into_iter().map(|i| wf.nodes[i].id.clone()).collect();
            names.sort();
            names
        })
        .collect()
}

/// A workflow must not reach itself through sub-workflows (that recursion has no bound).
fn check_sub_workflow_cycles(base: &BTreeMap<String, Arc<Workflow>>) -> Result<(), LoadError> {
    fn visit(
        id: &str,
        base: &BTreeMap<String, Arc<Workflow>>,
        path: &mut Vec<String>,
    ) -> Result<(), LoadError> {
        if path.iter().any(|p| p == id) {
            return Err(err(
                &format!("{id}.yaml"),
                None,
                format!("sub-workflow cycle {} -> {id}", path.join(" -> ")),
            ));
        }
        path.push(id.to_string());
        if let Some(wf) = base.get(id) {
            for n in wf.nodes.iter().filter(|n| n.kind == "sub_workflow") {
                if let Some(w) = &n.workflow {
                    visit(w, base, path)?;
                }
            }
        }
        path.pop();
        Ok(())
    }
    for id in base.keys() {
        visit(id, base, &mut Vec::new())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> Registry {
        Registry::manifests_only()
    }

    fn load_one(yaml: &str) -> Result<Catalog, LoadError> {
        Catalog::from_sources(&[("w.yaml".into(), yaml.into())], &[], &tools())
    }

    const OK: &str = "id: w\nversion: '1'\nnodes:\n  - {id: start, type: start}\n  - {id: end, type: end}\nedges:\n  - {from: start, to: end}\n";

    #[test]
    fn the_shipped_workflows_load() {
        let c = Catalog::load(None, &tools()).unwrap();
        assert!(c.get("acme", "customer_support").is_some());
        assert!(c.get("acme", "create_order").is_some());
        assert!(c.get("globex", "faq").is_some());
    }

    #[test]
    fn a_minimal_workflow_loads() {
        assert!(load_one(OK).is_ok());
    }

    #[test]
    fn unknown_node_type_names_file_and_node() {
        let e = load_one(&OK.replace("{id: end, type: end}", "{id: end, type: ennd}")).unwrap_err();
        assert_eq!(e.file, "w.yaml");
        assert_eq!(e.node.as_deref(), Some("end"));
        assert!(e.to_string().contains("unknown node type `ennd`"), "{e}");
    }

    #[test]
    fn missing_edge_target_is_refused() {
        let e = load_one(&OK.replace("to: end}", "to: nowhere}")).unwrap_err();
        assert!(e.to_string().contains("no node `nowhere`"), "{e}");
    }

    #[test]
    fn cycle_without_guard_is_refused_and_with_guard_loads() {
        let cyc = "id: w\nversion: '1'\nnodes:\n  - {id: start, type: start}\n  - {id: a, type: condition}\n  - {id: b, type: condition}\n  - {id: end, type: end}\nedges:\n  - {from: start, to: a}\n  - {from: a, to: end, when: done}\n  - {from: a, to: b}\n  - {from: b, to: a}\n";
        let e = load_one(cyc).unwrap_err();
        assert!(e.to_string().contains("no loop guard"), "{e}");
        assert!(load_one(&cyc.replace(
            "{id: b, type: condition}",
            "{id: b, type: condition, max_visits: 3}"
        ))
        .is_ok());
    }

    #[test]
    fn missing_sub_workflow_and_unknown_tool_are_refused() {
        let sub = OK
            .replace(
                "{id: end, type: end}",
                "{id: end, type: end}\n  - {id: s, type: sub_workflow, workflow: ghost}",
            )
            .replace("edges:\n", "edges:\n  - {from: s, to: end}\n");
        let e = load_one(&sub).unwrap_err();
        assert!(
            e.to_string()
                .contains("sub-workflow `ghost` does not exist"),
            "{e}"
        );
        let tool = OK
            .replace(
                "{id: end, type: end}",
                "{id: end, type: end}\n  - {id: t, type: tool, tool: rm.rf}",
            )
            .replace("edges:\n", "edges:\n  - {from: t, to: end}\n");
        assert!(load_one(&tool)
            .unwrap_err()
            .to_string()
            .contains("unknown tool `rm.rf`"));
    }

    #[test]
    fn a_node_needs_a_default_edge() {
        let e = load_one(&OK.replace("{from: start, to: end}", "{from: start, to: end, when: x}"))
            .unwrap_err();
        assert!(e.to_string().contains("default way out"), "{e}");
    }

    #[test]
    fn overlays_patch_disable_and_refuse_unknown_targets() {
        let overlay =
            |body: &str| vec![("tenants/t.yaml".to_string(), format!("tenant: t\n{body}"))];
        let files = vec![("w.yaml".to_string(), OK.to_string())];
        let c = Catalog::from_sources(
            &files,
            &overlay("patch:\n  w: {limits: {max_steps: 3}}\n"),
            &tools(),
        )
        .unwrap();
        assert_eq!(c.get("t", "w").unwrap().limits.max_steps, Some(3));
        assert_eq!(c.get("other", "w").unwrap().limits.max_steps, None);
        let c = Catalog::from_sources(
            &files,
            &overlay("disable: [w]\ndeny_tools: [email.send]\n"),
            &tools(),
        )
        .unwrap();
        assert!(c.tool_denied("t", "email.send"));
        assert!(!c.tool_denied("other", "email.send"));
        assert!(c.get("t", "w").is_none());
        assert!(c.list("t").is_empty());
        let e = Catalog::from_sources(
            &files,
            &overlay("patch:\n  w: {nodes: {ghost: {max_visits: 1}}}\n"),
            &tools(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown node `ghost`"), "{e}");
        let e =
            Catalog::from_sources(&files, &overlay("deny_tools: [rm.rf]\n"), &tools()).unwrap_err();
        assert!(e.to_string().contains("denies unknown tool `rm.rf`"), "{e}");
    }
}
