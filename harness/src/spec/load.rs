//! Loading specs: every file under a directory is parsed and validated, and every problem is reported
//! as `file:line: what was expected`. A bad file never stops the others from loading.

use super::action::{Action, Verb, ACTION_COUNT_ERROR, ACTION_WORDS};
use super::model::{Actor, Spec, Step};
use crate::expect::{matcher::Matcher, path::Path};
use crate::fixture::Fixtures;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

/// A problem with one spec file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct LoadError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// What a directory held: the valid specs (sorted by suite and id) and the problems.
#[derive(Debug, Default)]
pub struct Loaded {
    pub specs: Vec<Spec>,
    pub errors: Vec<LoadError>,
}

/// Loads every `*.yaml`/`*.yml` under `dir` (recursively), with the fixtures of `dir/fixtures`
/// (the workspace's when `dir` has none).
pub fn load_dir(dir: &FsPath) -> Loaded {
    let mut files = vec![];
    collect(dir, &mut files);
    files.sort();
    let mut out = Loaded::default();
    let fixtures = match Fixtures::for_specs(dir) {
        Ok(f) => f,
        Err(errors) => {
            out.errors.extend(errors);
            Arc::new(Fixtures::default())
        }
    };
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        match std::fs::read_to_string(&f) {
            Err(e) => out.errors.push(LoadError {
                file: f.clone(),
                line: 1,
                message: format!("cannot read: {e}"),
            }),
            Ok(text) => match load_with(&f, &text, &fixtures) {
                Ok(spec) => {
                    if let Some(first) = seen.get(&spec.id) {
                        out.errors.push(LoadError {
                            file: f.clone(),
                            line: line_of(&text, "id:", 0).unwrap_or(1),
                            message: format!(
                                "duplicate id `{}` (also in {})",
                                spec.id,
                                first.display()
                            ),
                        });
                    } else {
                        seen.insert(spec.id.clone(), f.clone());
                        out.specs.push(spec);
                    }
                }
                Err(errs) => out.errors.extend(errs),
            },
        }
    }
    out.specs
        .sort_by(|a, b| (&a.suite, &a.id).cmp(&(&b.suite, &b.id)));
    out
}

fn collect(dir: &FsPath, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        // `cases/` holds data the specs read (the adversarial catalogue) and `fixtures/` the data
        // sets they provision, not specs.
        if p.is_dir()
            && p.file_name()
                .is_some_and(|n| n != "cases" && n != "fixtures")
        {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

/// Parses and validates one spec, with the fixtures of its specs directory (`<dir>/fixtures` for
/// `<dir>/<suite>/<file>`, else the workspace's); all its problems at once.
pub fn load_str(file: &FsPath, text: &str) -> Result<Spec, Vec<LoadError>> {
    let root = file
        .parent()
        .and_then(|p| p.parent())
        .unwrap_or(FsPath::new("."));
    let fixtures = Fixtures::for_specs(root)?;
    load_with(file, text, &fixtures)
}

/// Parses and validates one spec against `fixtures`.
pub fn load_with(
    file: &FsPath,
    text: &str,
    fixtures: &Arc<Fixtures>,
) -> Result<Spec, Vec<LoadError>> {
    let err = |line: usize, message: String| LoadError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let yaml_error = |e: serde_norway::Error| {
        let mut line = e.location().map_or(1, |l| l.line().max(1));
        // The parse places an action-count error at the start of the step list; point at the step.
        if e.to_string().contains(ACTION_COUNT_ERROR) {
            line = misshapen_step_line(text).unwrap_or(line);
        }
        let mut message = explain(&e.to_string());
        if let Some(hint) = text.lines().nth(line - 1).and_then(flow_key_hint) {
            message.push_str(&hint);
        }
        vec![err(line, message)]
    };
    // A generic parse first: it refuses duplicate keys, which a typed map would silently collapse
    // (two matchers on one path must be written as one map: `{each: ..., contains: ...}`).
    serde_norway::from_str::<serde_norway::Value>(text).map_err(yaml_error)?;
    let mut spec: Spec = serde_norway::from_str(text).map_err(yaml_error)?;
    spec.file = file.to_path_buf();
    spec.source = text.to_string();
    spec.fixture_set = fixtures.clone();
    spec.step_lines = step_lines(text);
    let mut errors = vec![];
    let step_lines = spec.step_lines.clone();
    let step_line = |i: usize| step_lines.get(i).copied().unwrap_or(1);
    let top = |key: &str| line_of(text, &format!("{key}:"), 0).unwrap_or(1);
    spec.setup_line = top("fixtures");
    if spec.id.trim().is_empty() || spec.id.contains(char::is_whitespace) {
        errors.push(err(
            top("id"),
            format!("`id` must be one word, got `{}`", spec.id),
        ));
    }
    if let Some(dir) = file
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
    {
        if dir != spec.suite && file.parent().and_then(|p| p.parent()).is_some() {
            errors.push(err(
                top("suite"),
                format!("`suite: {}` but the file is in `{dir}/`; a spec lives in the directory of its suite", spec.suite),
            ));
        }
    }
    if spec.steps.is_empty() {
        errors.push(err(
            top("steps"),
            "`steps` is empty; a spec needs at least one step".into(),
        ));
    }
    let mut aliases: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for name in &spec.fixtures {
        match fixtures.build(name, 0, &|a| a.to_string()) {
            None => errors.push(err(
                line_of(text, name, 0).unwrap_or(top("fixtures")),
                format!(
                    "unknown fixture `{name}`; known: {} (the shipped scenarios/fixtures/, and fixtures/ beside your specs)",
                    fixtures
                        .list()
                        .iter()
                        .map(|f| f.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            Some(ts) => {
                for t in ts {
                    aliases.insert(
                        t.alias,
                        (
                            t.users.into_keys().collect(),
                            t.api_keys.into_keys().collect(),
                        ),
                    );
                }
            }
        }
    }
    let check_actor = |a: &Actor, line: usize, errors: &mut Vec<LoadError>| {
        let creds = [
            a.user.is_some(),
            a.api_key.is_some(),
            a.token.is_some(),
            a.anonymous,
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if creds > 1 {
            errors.push(err(
                line,
                "`as:` names more than one of user, api_key, token, anonymous".into(),
            ));
        }
        if let Some(t) = &a.tenant {
            match aliases.get(t) {
                None => errors.push(err(
                    line,
                    format!(
                        "tenant `{t}` is not provided by the fixtures [{}] (their tenants: {})",
                        spec.fixtures.join(", "),
                        aliases.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )),
                Some((users, keys)) => {
                    if let Some(u) = &a.user {
                        if !users.contains(u) {
                            errors.push(err(
                                line,
                                format!(
                                    "tenant `{t}` has no user `{u}` (it has: {})",
                                    users.iter().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            ));
                        }
                    }
                    if let Some(k) = &a.api_key {
                        if !keys.contains(k) {
                            errors.push(err(line, format!("tenant `{t}` has no API key `{k}`")));
                        }
                    }
                }
            }
        } else if a.user.is_some() || a.api_key.is_some() {
            errors.push(err(
                line,
                "`as:` with a user or api_key needs `tenant`".into(),
            ));
        }
    };
    if let Some(a) = &spec.actor {
        check_actor(a, top("as"), &mut errors);
    }
    for (i, step) in spec.steps.iter().enumerate() {
        let line = step_line(i);
        let next = spec.step_lines.get(i + 1).copied().unwrap_or(usize::MAX);
        let at = |needle: &str| line_within(text, needle, line, next).unwrap_or(line);
        if let Some(a) = &step.actor {
            check_actor(a, at("as:"), &mut errors);
        } else if spec.actor.is_none() && !step.action.needs_no_caller() {
            errors.push(err(line, "the step has no `as:` and the spec has no default `as:`; say who sends it (`as: {anonymous: true}` for nobody)".into()));
        }
        validate_step(step, &at, &mut errors, &err, &aliases);
    }
    if errors.is_empty() {
        Ok(spec)
    } else {
        Err(errors)
    }
}

fn validate_step(
    step: &Step,
    at: &dyn Fn(&str) -> usize,
    errors: &mut Vec<LoadError>,
    err: &dyn Fn(usize, String) -> LoadError,
    aliases: &BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
) {
    if let Action::Concurrently(list) = &step.action {
        for sub in list {
            validate_step(sub, at, errors, err, aliases);
            if !sub.action.is_request()
                || sub.wait_until.is_some()
                || !sub.capture.is_empty()
                || sub.background
                || !sub.expect.metrics.is_empty()
            {
                errors.push(err(
                    at("concurrently"),
                    "each request of `concurrently` is a chat, sse_chat, get, post, put, patch, delete or workflow without wait_until, capture, background or expect.metrics (put `metrics:` on the `concurrently` step itself)".into(),
                ));
            }
        }
    }
    // `wait_until` sends its request again and again until the expectations hold: a request that
    // changes state (an order, a chat turn, a metered call) would be counted once per attempt, so
    // that "the 4th is refused" passed with any number of extra requests let through. Only a GET
    // polls; the state-changing step comes after it, sent once.
    let polls = matches!(
        step.action,
        Action::Http {
            verb: Verb::Get,
            ..
        } | Action::Sink(_)
    );
    if step.wait_until.is_some() && !polls {
        errors.push(err(
            at("wait_until"),
            format!(
                "`wait_until` re-sends its request until the expectations hold, so it polls only a `get` or a `sink` (found {}); poll the state you wait for in a `get` step of its own (e.g. GET /api/v1/usage until `requests: 3`), then send this step once without `wait_until`",
                step.action.word()
            ),
        ));
    }
    if step.background {
        let e = &step.expect;
        let checks = e.status.is_some()
            || !e.json.is_empty()
            || !e.events.is_empty()
            || !e.run.is_empty()
            || e.golden.is_some()
            || !step.capture.is_empty()
            || step.wait_until.is_some()
            || step.parallel.is_some()
            || !e.metrics.is_empty();
        // A streamed chat is read to its end, which a background request never is.
        let request =
            step.action.is_request() && !matches!(step.action, Action::Chat { stream: true, .. });
        if checks || !request {
            errors.push(err(
                at("background"),
                "a background step sends one request and checks nothing: use it with chat, get, post, put, patch, delete or workflow, without expect, capture, wait_until or parallel".into(),
            ));
        }
    }
    let bodies = [
        step.body.is_some(),
        step.raw_body.is_some(),
        step.repeat_body.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if bodies > 1 {
        errors.push(err(
            at("body"),
            "use only one of body, raw_body, repeat_body".into(),
        ));
    }
    if (step.raw_body.is_some() || step.repeat_body.is_some()) && !step.action.takes_raw_body() {
        errors.push(err(
            at("_body"),
            "raw_body and repeat_body go with post, put or patch".into(),
        ));
    }
    if let Action::Fault(f) = &step.action {
        if let Some(t) = &f.tenant {
            if !aliases.contains_key(t) {
                errors.push(err(
                    at("tenant:"),
                    format!("fault tenant `{t}` is not provided by the fixtures"),
                ));
            }
        }
    }
    let e = &step.expect;
    if let Some(g) = &e.golden {
        let ok_name = !g.name().is_empty()
            && g.name()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !g.name().starts_with('.');
        if !ok_name {
            errors.push(err(
                at("golden"),
                format!(
                    "golden snapshot name `{}` must be letters, digits, `-`, `_` or `.`",
                    g.name()
                ),
            ));
        }
        for p in g.redact() {
            if let Err(m) = Path::parse(p) {
                errors.push(err(at(p), format!("golden redact: bad path {m}")));
            }
        }
    }
    if let Some(s) = &e.status {
        let ok = match s {
            serde_json::Value::Number(n) => n.as_u64().is_some_and(|n| (100..600).contains(&n)),
            serde_json::Value::Array(a) => {
                !a.is_empty()
                    && a.iter()
                        .all(|n| n.as_u64().is_some_and(|n| (100..600).contains(&n)))
            }
            _ => false,
        };
        if !ok {
            errors.push(err(
                at("status:"),
                format!("`status` must be a status code or a list of them, got {s}"),
            ));
        }
    }
    let matchers = |what: &str,
                    map: &BTreeMap<String, serde_json::Value>,
                    paths: bool,
                    errors: &mut Vec<LoadError>| {
        for (k, v) in map {
            if paths {
                if let Err(m) = Path::parse(k) {
                    errors.push(err(at(k), format!("{what}: bad path {m}")));
                }
            }
            if let Err(m) = Matcher::compile(v) {
                errors.push(err(at(k), format!("{what} `{k}`: {m}")));
            }
        }
    };
    matchers("expect.json", &e.json, true, errors);
    matchers("expect.headers", &e.headers, false, errors);
    matchers("expect.run", &e.run, true, errors);
    for ev in &e.events {
        matchers("expect.events.fields", &ev.fields, true, errors);
        if let Some(t) = &ev.tenant {
            if !aliases.contains_key(t) {
                errors.push(err(
                    at(&ev.subject),
                    format!("event tenant `{t}` is not provided by the fixtures"),
                ));
            }
        }
    }
    for (name, p) in &step.capture {
        if let Err(m) = Path::parse(p) {
            errors.push(err(at(name), format!("capture `{name}`: bad path {m}")));
        }
    }
    if let Action::Replay(r) = &step.action {
        if r.episode.is_empty() || r.episode.contains("..") {
            errors.push(err(
                at("episode"),
                "`episode` names a file under golden/episodes/".into(),
            ));
        }
        if !matches!(r.mode.as_deref(), None | Some("exact") | Some("similar")) {
            errors.push(err(at("mode"), "replay `mode` is exact or similar".into()));
        }
        if r.times == Some(0) {
            errors.push(err(at("times"), "`times` must be at least 1".into()));
        }
    }
    if step.parallel == Some(0) {
        errors.push(err(at("parallel"), "`parallel` must be at least 1".into()));
    }
    if let Some(times) = step.repeat {
        let request = step.action.is_request();
        if times == 0 {
            errors.push(err(at("repeat"), "`repeat` must be at least 1".into()));
        }
        if !request || step.parallel.is_some() || step.wait_until.is_some() || step.background {
            errors.push(err(
                at("repeat"),
                "`repeat: n` sends a request n times one after another: use it with chat, sse_chat, get, post, put, patch, delete or workflow, without parallel (copies at once), wait_until or background".into(),
            ));
        }
    }
}

/// A hint for a YAML error on a line where a flow map (`{...}`) holds an unquoted key with
/// brackets (`{items[0].x: 1}`): in flow style `[` starts a list, so the YAML parser fails with a
/// message about commas or duplicate entries that does not say what to do.
fn flow_key_hint(line: &str) -> Option<String> {
    static KEY: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = KEY.get_or_init(|| {
        regex::Regex::new(r#"[{,]\s*([A-Za-z_$][\w.$-]*\[[^\]]*\][^:{},"']*):"#)
            .expect("a valid pattern")
    });
    if let Some(key) = re.captures(line).and_then(|c| c.get(1)) {
        let key = key.as_str();
        return Some(format!(
            " (the key `{key}` has brackets inside a flow map `{{...}}`, where `[` starts a list: quote it, `\"{key}\": ...`, or write the map in block style, one `key: value` per line)"
        ));
    }
    // `{a: ${x}}`: in flow style `{` after `$` opens another map.
    static VAR: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let var = VAR
        .get_or_init(|| regex::Regex::new(r#"[:,\[{]\s*(\$\{[^}]*\})"#).expect("a valid pattern"));
    let v = var.captures(line)?.get(1)?.as_str();
    Some(format!(
        " (the unquoted `{v}` inside a flow map or list: quote it, `\"{v}\"`, or write the map in block style)"
    ))
}

/// serde's messages, with the vocabulary it already lists made readable.
fn explain(msg: &str) -> String {
    // serde_norway appends " at line L column C"; the location is already in front.
    let m = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    m.to_string()
}

/// The line of the first top-level step that names no action or more than one.
fn misshapen_step_line(text: &str) -> Option<usize> {
    let doc: serde_norway::Value = serde_norway::from_str(text).ok()?;
    let steps = doc.get("steps")?.as_sequence()?;
    let words: Vec<&str> = ACTION_WORDS.split(", ").collect();
    let i = steps.iter().position(|step| {
        let named = step.as_mapping().map_or(0, |m| {
            m.keys()
                .filter(|k| k.as_str().is_some_and(|k| words.contains(&k)))
                .count()
        });
        named != 1
    })?;
    step_lines(text).get(i).copied()
}

/// 1-based lines of the items of the top-level `steps:` sequence (block style).
pub fn step_lines(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.starts_with("steps:")) else {
        return vec![];
    };
    let mut indent = None;
    let mut out = vec![];
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        if !l.is_empty() && !l.starts_with(' ') && !l.starts_with('-') && !l.starts_with('#') {
            break; // the next top-level key
        }
        let trimmed = l.trim_start();
        if trimmed.starts_with("- ") || trimmed == "-" {
            let ind = l.len() - trimmed.len();
            match indent {
                None => {
                    indent = Some(ind);
                    out.push(i + 1);
                }
                Some(k) if k == ind => out.push(i + 1),
                _ => {}
            }
        }
    }
    out
}

/// The first 1-based line at or after `from` (0-based) that contains `needle`.
fn line_of(text: &str, needle: &str, from: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
}

/// The same, within the 1-based lines `[from, to)`.
fn line_within(text: &str, needle: &str, from: usize, to: usize) -> Option<usize> {
    line_of(text, needle, from.saturating_sub(1)).filter(|l| *l < to)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "id: T-1
title: t
suite: e2e
fixtures: [acme]
as: {tenant: acme, user: bob}
steps:
  - chat: hello
    expect:
      status: 200
      json:
        response.metadata.tier_used: SLM_A
  - get: /healthz
    as: {anonymous: true}
";

    fn load(text: &str) -> Result<Spec, Vec<LoadError>> {
        load_str(FsPath::new("scenarios/e2e/t.yaml"), text)
    }

    fn one_error(text: &str) -> LoadError {
        let e = load(text).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        e[0].clone()
    }

    #[test]
    fn concurrent_requests_are_requests_only() {
        let ok = GOOD.replace(
            "  - get: /healthz\n",
            "  - concurrently:\n      - {get: /healthz, parallel: 2}\n      - {as: {tenant: acme, user: bob}, chat: hi}\n  - get: /healthz\n",
        );
        assert!(load(&ok).is_ok(), "{:?}", load(&ok).err());
        let bad = GOOD.replace(
            "  - get: /healthz\n",
            "  - concurrently:\n      - {advance_clock: 5ms}\n  - get: /healthz\n",
        );
        let e = one_error(&bad);
        assert!(e.message.contains("each request of `concurrently`"), "{e}");
    }

    #[test]
    fn a_bracketed_key_in_a_flow_map_gets_told_to_quote_it_or_use_block_style() {
        let text = GOOD.replace(
            "        response.metadata.tier_used: SLM_A\n",
            "        response.metadata.tier_used: SLM_A\n      run: {steps[0].tool: kb.search}\n",
        );
        let e = one_error(&text);
        assert!(
            e.message
                .contains("the key `steps[0].tool` has brackets inside a flow map")
                && e.message.contains("block style"),
            "{e}"
        );
        let quoted = GOOD.replace(
            "        response.metadata.tier_used: SLM_A\n",
            "        response.metadata.tier_used: SLM_A\n      run: {\"steps[0].tool\": kb.search}\n",
        );
        assert!(load(&quoted).is_ok(), "{:?}", load(&quoted).err());
    }

    #[test]
    fn repeat_is_for_requests_sent_one_after_another() {
        let ok = GOOD.replace("  - get: /healthz\n", "  - get: /healthz\n    repeat: 3\n");
        assert!(load(&ok).is_ok(), "{:?}", load(&ok).err());
        let bad = GOOD.replace(
            "  - get: /healthz\n",
            "  - get: /healthz\n    repeat: 3\n    parallel: 2\n",
        );
        assert!(one_error(&bad).message.contains("without parallel"));
        let zero = GOOD.replace("  - get: /healthz\n", "  - get: /healthz\n    repeat: 0\n");
        assert!(one_error(&zero).message.contains("at least 1"));
    }

    #[test]
    fn durations_carry_their_unit() {
        let ok = GOOD.replace(
            "  - get: /healthz\n",
            "  - advance_clock: 2h59m59s\n  - get: /healthz\n",
        );
        let spec = load(&ok).unwrap();
        assert!(
            matches!(&spec.steps[1].action, Action::AdvanceClock(s) if s.as_millis() == 10_799_000)
        );
        let bare = GOOD.replace(
            "  - get: /healthz\n",
            "  - advance_clock: 1000\n  - get: /healthz\n",
        );
        let e = one_error(&bare);
        assert!(e.message.contains("with its unit"), "{e}");
        let bad = GOOD.replace(
            "  - get: /healthz\n",
            "  - advance_clock: 3 fortnights\n  - get: /healthz\n",
        );
        assert!(one_error(&bad).message.contains("is not a duration"));
    }

    #[test]
    fn an_unquoted_variable_in_a_flow_map_gets_told_to_quote_it() {
        let text = GOOD.replace(
            "        response.metadata.tier_used: SLM_A\n",
            "        response.metadata.tier_used: SLM_A\n      run: {run_id: ${rid}, status: completed}\n",
        );
        let e = load(&text).unwrap_err();
        assert!(
            e.iter()
                .any(|e| e.message.contains("the unquoted `${rid}`")),
            "{e:?}"
        );
    }

    #[test]
    fn wait_until_polls_only_a_get() {
        let head = &GOOD[..GOOD.find("steps:").unwrap_or(0)];
        let e = one_error(&format!(
            "{head}steps:\n  - post: /api/v1/orders\n    wait_until: {{timeout_ms: 100}}\n"
        ));
        assert!(e.message.contains("polls only a `get`"), "{e}");
        assert_eq!(e.line, 8, "{e}");
        assert!(load(&format!(
            "{head}steps:\n  - get: /api/v1/usage\n    wait_until: {{timeout_ms: 100}}\n"
        ))
        .is_ok());
    }

    #[test]
    fn a_good_spec_loads_with_its_step_lines() {
        let s = load(GOOD).unwrap();
        assert_eq!(s.step_lines, vec![7, 12]);
        assert_eq!(s.step_location(1), "scenarios/e2e/t.yaml:12");
    }

    #[test]
    fn a_typo_in_a_field_name_is_reported_at_its_line() {
        let e = one_error(&GOOD.replace("    expect:", "    expcet:"));
        assert_eq!(e.line, 8, "{e}");
        assert!(
            e.message.contains("unknown field `expcet`") && e.message.contains("expect"),
            "{e}"
        );
        assert!(e.to_string().starts_with("scenarios/e2e/t.yaml:8: "), "{e}");
    }

    #[test]
    fn a_bad_matcher_is_reported_at_its_line() {
        let e = one_error(&GOOD.replace("tier_used: SLM_A", "tier_used: {contanis: SLM}"));
        assert_eq!(e.line, 11, "{e}");
        assert!(e.message.contains("unknown matcher `contanis`"), "{e}");
        let e = one_error(&GOOD.replace("tier_used: SLM_A", "tier_used: {regex: '('}"));
        assert!(e.message.contains("bad regex"), "{e}");
    }

    #[test]
    fn broken_yaml_is_reported_at_its_line() {
        let e = one_error(&GOOD.replace("      status: 200", "      status: [200"));
        assert!(e.line >= 9, "{e}");
        let e = one_error("id: x\n  title: [\n");
        assert!(e.line >= 1, "{e}");
    }

    #[test]
    fn a_duplicate_key_is_refused_not_collapsed() {
        let e = one_error(&GOOD.replace(
            "        response.metadata.tier_used: SLM_A",
            "        response.metadata.tier_used: SLM_A\n        response.metadata.tier_used: LLM",
        ));
        assert!(e.message.contains("duplicate"), "{e}");
        assert_eq!(e.line, 11, "{e}");
    }

    #[test]
    fn semantic_problems_are_each_reported() {
        let bad = GOOD
            .replace("fixtures: [acme]", "fixtures: [acme, nope]")
            .replace(
                "  - get: /healthz\n    as: {anonymous: true}\n",
                "  - get: /healthz\n    as: {tenant: acme, user: zed}\n",
            );
        let errs = load(&bad).unwrap_err();
        let text = errs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.contains("unknown fixture `nope`"), "{text}");
        assert!(text.contains("no user `zed`"), "{text}");
        // Two actions never make a step: the format's parse refuses it, at the step.
        let two = GOOD.replace(
            "  - get: /healthz\n    as: {anonymous: true}\n",
            "  - get: /healthz\n    post: /x\n    as: {anonymous: true}\n",
        );
        let e = one_error(&two);
        assert!(
            e.message.contains("exactly one action") && e.message.contains("get, post"),
            "{e}"
        );
        let step_line = GOOD.lines().position(|l| l == "  - get: /healthz").unwrap() + 1;
        assert_eq!(e.line, step_line, "{e}");
        let none = GOOD.replace("  - get: /healthz\n", "  - name: nothing\n");
        assert!(one_error(&none).message.contains("found none"));
        let e = one_error(&GOOD.replace("status: 200", "status: ok"));
        assert!(e.message.contains("status code"), "{e}");
        let e = one_error(&GOOD.replace("suite: e2e", "suite: rag"));
        assert!(e.message.contains("directory of its suite"), "{e}");
    }

    #[test]
    fn a_directory_with_bad_files_still_loads_the_good_ones() {
        let dir = std::env::temp_dir().join(format!("harness-load-{}", std::process::id()));
        let sub = dir.join("e2e");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("a.yaml"), GOOD).unwrap();
        std::fs::write(
            sub.join("b.yaml"),
            GOOD.replace("T-1", "T-2").replace("expect:", "expcet:"),
        )
        .unwrap();
        std::fs::write(sub.join("c.yaml"), "id: [").unwrap();
        std::fs::write(sub.join("d.yaml"), GOOD).unwrap();
        let l = load_dir(&dir);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(l.specs.len(), 1);
        assert_eq!(l.errors.len(), 3, "{:?}", l.errors);
        assert!(l
            .errors
            .iter()
            .any(|e| e.message.contains("duplicate id `T-1`")));
    }
}
