//! The workflow file format. A workflow is a graph: nodes, and edges tried in file order from each
//! node (the first whose `when` holds is taken; the last edge of a node must have no `when`).
//! `scenarios/README.md`-style documentation of the format is in `platform/workflows/README.md`.

use super::expr::{eval, parse, Expr};
use crate::domain::Tier;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One workflow file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    pub id: String,
    pub version: String,
    /// The version of the workflow's prompts (agent `prompt`, `task` and `input`): bump it when they
    /// change, so that episodes recorded with the old prompts refuse exact replay.
    #[serde(default = "first_prompt_version")]
    pub prompt_version: String,
    #[serde(default)]
    pub description: String,
    /// Per-run budget overrides (else the configured defaults).
    #[serde(default)]
    pub limits: Limits,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

fn first_prompt_version() -> String {
    "1".into()
}

/// Budget overrides of one workflow.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_steps: Option<u32>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub timeout_ms: Option<u64>,
}

/// A node. `type` picks which of the optional fields apply (see the loader's validation).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// tool: the tool to call.
    pub tool: Option<String>,
    /// tool: parameters, with `{{path}}` templates.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// agent, tool, sub_workflow: the context key that receives the result.
    pub output: Option<String>,
    /// agent: the model task (classify_intent, extract_lead, answer_from_context, general).
    pub task: Option<String>,
    /// agent: extra system-prompt text, templated.
    pub prompt: Option<String>,
    /// agent: the user turn, templated (default `{{input.message}}`).
    pub input: Option<String>,
    /// agent: the answer must be strict JSON with these keys (early exit escalates otherwise).
    #[serde(default)]
    pub json_keys: Option<Vec<String>>,
    /// agent: tools offered to the model; it answers `{"tool_calls": [{name, arguments}]}` and the
    /// executor runs the offered ones (others are refused, never called).
    pub tools: Option<Vec<String>>,
    /// agent: a fixed tier instead of the router's choice.
    pub tier: Option<Tier>,
    /// agent: include the conversation history.
    #[serde(default)]
    pub history: bool,
    /// sub_workflow: the workflow to run.
    pub workflow: Option<String>,
    /// end: the run's output, templated.
    #[serde(default)]
    pub result: Map<String, Value>,
    /// tool, agent: where to go when the node fails, instead of failing the run.
    pub on_error: Option<String>,
    /// The loop guard: a node on a cycle must bound its visits.
    pub max_visits: Option<u32>,
}

/// A directed edge, taken when `when` holds (always, without one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub when: Option<String>,
    /// `when`, parsed once by the loader so that runs do not parse it again at every step.
    #[serde(skip)]
    pub condition: Option<Expr>,
}

impl Edge {
    /// Whether the edge is taken in context `ctx`. An edge the loader did not compile is parsed
    /// here; one whose condition does not parse is never taken.
    pub fn holds(&self, ctx: &serde_json::Value) -> bool {
        match (&self.condition, &self.when) {
            (Some(c), _) => eval(c, ctx),
            (None, None) => true,
            (None, Some(w)) => parse(w).map(|c| eval(&c, ctx)).unwrap_or(false),
        }
    }
}

/// The node types the executor knows.
pub const NODE_TYPES: [&str; 6] = ["start", "agent", "tool", "condition", "sub_workflow", "end"];
