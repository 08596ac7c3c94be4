//! Conditions and templates over the run context.
//!
//! Conditions: paths (`intent.intent`, `context.kb.best_confidence`, `items.0.sku`), literals (numbers,
//! `'strings'` or `"strings"`, `true`, `false`, `null`), `== != > >= < <=`, `and`, `or`, `not`,
//! parentheses and `len(x)`. A missing path is `null`; truthiness is JavaScript-like (null, false, 0,
//! "", [] and {} are false). Templates: a string that is exactly `{{path}}` becomes that value (any
//! JSON type); otherwise each `{{path}}` is interpolated as text.

use serde_json::Value;

/// Why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expression `{expr}`: {message}")]
pub struct ExprError {
    pub expr: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    Path(Vec<String>),
    Len(Box<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(&'static str, Box<Expr>, Box<Expr>),
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == '\'' || c == '"' {
            let end = cs[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or("unterminated string")?;
            out.push(Tok::Str(cs[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c.is_ascii_digit()
            || (c == '-' && cs.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.') {
                i += 1;
            }
            let s: String = cs[start..i].iter().collect();
            out.push(Tok::Num(
                s.parse().map_err(|_| format!("bad number `{s}`"))?,
            ));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_' || cs[i] == '.') {
                i += 1;
            }
            out.push(Tok::Ident(cs[start..i].iter().collect()));
        } else {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let op = ["==", "!=", ">=", "<="]
                .into_iter()
                .find(|o| *o == two)
                .or_else(|| [">", "<"].into_iter().find(|o| o.starts_with(c)));
            match op {
                Some(o) => {
                    out.push(Tok::Op(o));
                    i += o.len();
                }
                None => return Err(format!("unexpected `{c}`")),
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s == w)
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.is_word("or") {
            self.pos += 1;
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.not()?;
        while self.is_word("and") {
            self.pos += 1;
            l = Expr::And(Box::new(l), Box::new(self.not()?));
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.is_word("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let l = self.primary()?;
        if let Some(Tok::Op(o)) = self.peek().cloned() {
            self.pos += 1;
            return Ok(Expr::Cmp(o, Box::new(l), Box::new(self.primary()?)));
        }
        Ok(l)
    }
    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(Expr::Lit(serde_json::json!(n))),
            Some(Tok::Str(s)) => Ok(Expr::Lit(Value::String(s))),
            Some(Tok::LParen) => {
                let e = self.or()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => Err("missing `)`".into()),
                }
            }
            Some(Tok::Ident(w)) => match w.as_str() {
                "true" => Ok(Expr::Lit(Value::Bool(true))),
                "false" => Ok(Expr::Lit(Value::Bool(false))),
                "null" => Ok(Expr::Lit(Value::Null)),
                "len" => {
                    if self.next() != Some(Tok::LParen) {
                        return Err("`len` needs `(`".into());
                    }
                    let e = self.or()?;
                    if self.next() != Some(Tok::RParen) {
                        return Err("missing `)` after len(".into());
                    }
                    Ok(Expr::Len(Box::new(e)))
                }
                "and" | "or" | "not" => Err(format!("`{w}` needs an operand before it")),
                _ => Ok(Expr::Path(split_path(&w))),
            },
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end".into()),
        }
    }
}

fn split_path(p: &str) -> Vec<String> {
    let p = p.strip_prefix("context.").unwrap_or(p);
    p.split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses a condition.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    let err = |message: String| ExprError {
        expr: src.to_string(),
        message,
    };
    let toks = lex(src).map_err(err)?;
    let mut p = Parser { toks, pos: 0 };
    let e = p.or().map_err(err)?;
    if p.pos < p.toks.len() {
        return Err(err(format!("unexpected {:?}", p.toks[p.pos])));
    }
    Ok(e)
}

/// The value at a dotted path (numeric segments index arrays); `Null` when absent.
pub fn lookup<'a>(ctx: &'a Value, path: &[String]) -> &'a Value {
    let mut cur = ctx;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get(seg).unwrap_or(&Value::Null),
            Value::Array(a) => seg
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i))
                .unwrap_or(&Value::Null),
            _ => &Value::Null,
        };
    }
    cur
}

/// JavaScript-like truthiness.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn eval_value(e: &Expr, ctx: &Value) -> Value {
    match e {
        Expr::Lit(v) => v.clone(),
        Expr::Path(p) => lookup(ctx, p).clone(),
        Expr::Len(x) => serde_json::json!(match eval_value(x, ctx) {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            Value::String(s) => s.chars().count(),
            _ => 0,
        }),
        other => Value::Bool(eval(other, ctx)),
    }
}

/// Evaluates a condition against the context.
pub fn eval(e: &Expr, ctx: &Value) -> bool {
    match e {
        Expr::Not(x) => !eval(x, ctx),
        Expr::And(a, b) => eval(a, ctx) && eval(b, ctx),
        Expr::Or(a, b) => eval(a, ctx) || eval(b, ctx),
        Expr::Cmp(op, a, b) => {
            let (x, y) = (eval_value(a, ctx), eval_value(b, ctx));
            match (x.as_f64(), y.as_f64()) {
                (Some(m), Some(n)) => match *op {
                    "==" => m == n,
                    "!=" => m != n,
                    ">" => m > n,
                    ">=" => m >= n,
                    "<" => m < n,
                    _ => m <= n,
                },
                _ => match *op {
                    "==" => x == y,
                    "!=" => x != y,
                    _ => match (x.as_str(), y.as_str()) {
                        (Some(m), Some(n)) => match *op {
                            ">" => m > n,
                            ">=" => m >= n,
                            "<" => m < n,
                            _ => m <= n,
                        },
                        _ => false,
                    },
                },
            }
        }
        other => truthy(&eval_value(other, ctx)),
    }
}

/// Renders templates inside a JSON value (strings, arrays and objects, recursively).
pub fn render(t: &Value, ctx: &Value) -> Value {
    match t {
        Value::String(s) => render_str(s, ctx),
        Value::Array(a) => Value::Array(a.iter().map(|v| render(v, ctx)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), render(v, ctx))).collect())
        }
        other => other.clone(),
    }
}

fn render_str(s: &str, ctx: &Value) -> Value {
    let trimmed = s.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
    {
        if !inner.contains("{{") {
            return lookup(ctx, &split_path(inner.trim())).clone();
        }
    }
    Value::String(render_text(s, ctx))
}

/// Interpolates every `{{path}}` in `s` as text (strings raw, null as nothing, others as JSON).
pub fn render_text(s: &str, ctx: &Value) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => {
                let path = rest[start + 2..start + end].trim();
                match lookup(ctx, &split_path(path)) {
                    Value::Null => {}
                    Value::String(v) => out.push_str(v),
                    v => out.push_str(&v.to_string()),
                }
                rest = &rest[start + end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(src: &str, ctx: &Value) -> bool {
        eval(&parse(src).unwrap(), ctx)
    }

    #[test]
    fn conditions_cover_comparisons_logic_and_len() {
        let c = json!({"intent": {"intent": "faq"}, "kb": {"best_confidence": 0.85, "results": [1, 2]}});
        assert!(ev("intent.intent == 'faq'", &c));
        assert!(ev("context.kb.best_confidence >= 0.8", &c));
        assert!(!ev("kb.best_confidence < 0.5", &c));
        assert!(ev("kb.results and len(kb.results) > 1", &c));
        assert!(ev("not missing.thing or true", &c));
        assert!(ev("(intent.intent == \"lead\") or kb.results.1 == 2", &c));
        assert!(!ev("missing", &c));
        assert!(ev("missing == null", &c));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        assert!(parse("a ==")
            .unwrap_err()
            .message
            .contains("unexpected end"));
        assert!(parse("'open").unwrap_err().message.contains("unterminated"));
        assert!(parse("a $ b")
            .unwrap_err()
            .message
            .contains("unexpected `$`"));
        assert!(parse("(a").unwrap_err().message.contains("missing `)`"));
        assert!(parse("a b").is_err());
    }

    #[test]
    fn templates_keep_types_or_interpolate() {
        let c = json!({"order": {"id": "ORD-1", "total": 12, "items": [{"sku": "A"}]}});
        assert_eq!(render(&json!("{{order.total}}"), &c), json!(12));
        assert_eq!(
            render(&json!("{{ order.items }}"), &c),
            json!([{"sku": "A"}])
        );
        assert_eq!(
            render(
                &json!("Order {{order.id}} costs {{order.total}}{{order.none}}."),
                &c
            ),
            json!("Order ORD-1 costs 12.")
        );
        assert_eq!(
            render(&json!({"a": ["{{order.items.0.sku}}"]}), &c),
            json!({"a": ["A"]})
        );
    }
}
