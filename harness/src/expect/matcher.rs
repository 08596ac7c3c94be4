//! Matchers of the spec format. A plain value means "equals"; a string starting with `#` is a type
//! marker (`#uuid`, `#number`, ...); a map names one or more matchers, all of which must hold:
//! `{contains: x}`, `{regex: r}`, `{one_of: [..]}`, `{absent: true}`, `{len: n}`, `{each: m}`,
//! `{gt: n}`, `{gte: n}`, `{lt: n}`, `{lte: n}`, `{not: m}`, `{equals: v}`, `{not_contains: x}`.
//!
//! No matcher holds vacuously: `each` fails on an empty list unless the same map says
//! `allow_empty: true`, and `not` fails on a missing value unless it says `absent_ok: true`, so that
//! a field the platform stopped sending, or a list it stopped filling, is a failure and not a pass.

use super::SyntaxError;
use regex::Regex;
use serde_json::Value;

/// The words a matcher map may use (listed in errors).
pub const WORDS: &[&str] = &[
    "equals",
    "contains",
    "not_contains",
    "regex",
    "one_of",
    "absent",
    "present",
    "len",
    "each",
    "gt",
    "gte",
    "lt",
    "lte",
    "not",
    "all_of",
    "allow_empty",
    "absent_ok",
    "includes",
    "excludes",
    "exactly",
    "same_in_copies",
];

/// The type markers (listed in errors).
pub const MARKERS: &[&str] = &[
    "#uuid",
    "#number",
    "#integer",
    "#string",
    "#bool",
    "#array",
    "#object",
    "#null",
    "#present",
    "#absent",
    "#datetime",
    "#nonempty",
];

/// A compiled matcher.
#[derive(Debug, Clone)]
pub enum Matcher {
    Equals(Value),
    Contains(Value),
    NotContains(Value),
    Regex(Regex),
    OneOf(Vec<Value>),
    Absent,
    Present,
    Len(Box<Matcher>),
    /// Every element matches; an empty list fails unless `allow_empty`.
    Each {
        each: Box<Matcher>,
        allow_empty: bool,
    },
    Cmp(&'static str, f64),
    /// The value exists and does not match; a missing value fails unless `absent_ok`.
    Not {
        not: Box<Matcher>,
        absent_ok: bool,
    },
    Type(&'static str),
    All(Vec<Matcher>),
    /// A list holding every one of these (in any order, others allowed).
    Includes(Vec<Value>),
    /// A list holding none of these.
    Excludes(Vec<Value>),
    /// A list holding exactly these, as many times each, in any order.
    Exactly(Vec<Value>),
    /// Present; the runner also requires the same value in every copy of a `parallel` step.
    SameInCopies,
}

impl Matcher {
    /// Compiles the YAML form; the error names the offending word and what is allowed.
    pub fn compile(v: &Value) -> Result<Matcher, SyntaxError> {
        match v {
            Value::String(s) if s.starts_with('#') => MARKERS
                .iter()
                .find(|m| **m == s.as_str())
                .map(|m| Matcher::Type(m))
                .ok_or_else(|| {
                    SyntaxError(format!(
                        "unknown type marker `{s}`; expected one of {}",
                        MARKERS.join(", ")
                    ))
                }),
            Value::Object(map) => {
                if map.is_empty() {
                    return Err(SyntaxError(
                        "an empty matcher map; write `{equals: {}}` for an empty object".into(),
                    ));
                }
                let flag = |name: &str, with: &str| -> Result<bool, SyntaxError> {
                    match map.get(name) {
                        None => Ok(false),
                        Some(_) if !map.contains_key(with) => Err(SyntaxError(format!(
                            "`{name}` qualifies `{with}` and needs it in the same map"
                        ))),
                        Some(Value::Bool(b)) => Ok(*b),
                        Some(other) => Err(SyntaxError(format!(
                            "`{name}` needs true or false, got {other}"
                        ))),
                    }
                };
                let allow_empty = flag("allow_empty", "each")?;
                let absent_ok = flag("absent_ok", "not")?;
                let mut all = vec![];
                for (k, arg) in map {
                    all.push(match k.as_str() {
                        "allow_empty" | "absent_ok" => continue,
                        "each" => Matcher::Each {
                            each: Box::new(Self::compile(arg)?),
                            allow_empty,
                        },
                        "not" => Matcher::Not {
                            not: Box::new(Self::compile(arg)?),
                            absent_ok,
                        },
                        _ => Self::word(k, arg)?,
                    });
                }
                Ok(if all.len() == 1 {
                    all.remove(0)
                } else {
                    Matcher::All(all)
                })
            }
            other => Ok(Matcher::Equals(other.clone())),
        }
    }

    fn word(k: &str, arg: &Value) -> Result<Matcher, SyntaxError> {
        let num = |what: &str| {
            arg.as_f64()
                .ok_or_else(|| SyntaxError(format!("`{what}` needs a number, got {arg}")))
        };
        Ok(match k {
            "equals" => Matcher::Equals(arg.clone()),
            "contains" => Matcher::Contains(arg.clone()),
            "not_contains" => Matcher::NotContains(arg.clone()),
            "regex" => {
                let s = arg
                    .as_str()
                    .ok_or_else(|| SyntaxError(format!("`regex` needs a string, got {arg}")))?;
                Matcher::Regex(
                    Regex::new(s).map_err(|e| SyntaxError(format!("bad regex `{s}`: {e}")))?,
                )
            }
            "one_of" => Matcher::OneOf(
                arg.as_array()
                    .ok_or_else(|| SyntaxError(format!("`one_of` needs a list, got {arg}")))?
                    .clone(),
            ),
            "absent" | "present" => {
                let b = arg
                    .as_bool()
                    .ok_or_else(|| SyntaxError(format!("`{k}` needs true or false, got {arg}")))?;
                if (k == "absent") == b {
                    Matcher::Absent
                } else {
                    Matcher::Present
                }
            }
            "len" => Matcher::Len(Box::new(Self::compile(arg)?)),
            "each" => Matcher::Each {
                each: Box::new(Self::compile(arg)?),
                allow_empty: false,
            },
            "not" => Matcher::Not {
                not: Box::new(Self::compile(arg)?),
                absent_ok: false,
            },
            "all_of" => Matcher::All(
                arg.as_array()
                    .ok_or_else(|| {
                        SyntaxError(format!("`all_of` needs a list of matchers, got {arg}"))
                    })?
                    .iter()
                    .map(Self::compile)
                    .collect::<Result<_, _>>()?,
            ),
            "includes" | "excludes" | "exactly" => {
                let list = arg
                    .as_array()
                    .ok_or_else(|| SyntaxError(format!("`{k}` needs a list, got {arg}")))?
                    .clone();
                match k {
                    "includes" => Matcher::Includes(list),
                    "excludes" => Matcher::Excludes(list),
                    _ => Matcher::Exactly(list),
                }
            }
            "same_in_copies" => {
                if arg != &Value::Bool(true) {
                    return Err(SyntaxError(format!(
                        "`same_in_copies` takes `true`, got {arg}"
                    )));
                }
                Matcher::SameInCopies
            }
            "gt" => Matcher::Cmp("gt", num("gt")?),
            "gte" => Matcher::Cmp("gte", num("gte")?),
            "lt" => Matcher::Cmp("lt", num("lt")?),
            "lte" => Matcher::Cmp("lte", num("lte")?),
            other => {
                return Err(SyntaxError(format!(
                    "unknown matcher `{other}`; expected one of {}",
                    WORDS.join(", ")
                )))
            }
        })
    }

    /// Checks `actual` (`None` = the path does not exist); the error says what was expected and what was found.
    pub fn check(&self, actual: Option<&Value>) -> Result<(), String> {
        let shown = || actual.map_or("nothing (absent)".to_string(), short);
        let fail = |what: String| Err(format!("expected {what}, found {}", shown()));
        match self {
            Matcher::Absent => match actual {
                None | Some(Value::Null) => Ok(()),
                Some(_) => fail("absent".into()),
            },
            Matcher::Present => match actual {
                None | Some(Value::Null) => fail("present".into()),
                Some(_) => Ok(()),
            },
            Matcher::Type("#absent") => Matcher::Absent.check(actual),
            Matcher::Type("#present") => Matcher::Present.check(actual),
            Matcher::Not { not, absent_ok } => match actual {
                None if *absent_ok => Ok(()),
                None => fail(format!(
                    "a value that is not {} (write `absent_ok: true` beside `not` if a missing value may pass)",
                    not.describe()
                )),
                Some(_) => match not.check(actual) {
                    Ok(()) => fail(format!("not {}", not.describe())),
                    Err(_) => Ok(()),
                },
            },
            Matcher::All(ms) => ms.iter().try_for_each(|m| m.check(actual)),
            _ => {
                let Some(v) = actual else {
                    return fail(self.describe());
                };
                if self.holds(v) {
                    Ok(())
                } else {
                    fail(self.describe())
                }
            }
        }
    }

    fn holds(&self, v: &Value) -> bool {
        match self {
            Matcher::Equals(e) => same(e, v),
            Matcher::Contains(e) => contains(v, e),
            Matcher::NotContains(e) => !contains(v, e),
            Matcher::Regex(r) => match v {
                Value::String(s) => r.is_match(s),
                other => r.is_match(&other.to_string()),
            },
            Matcher::OneOf(opts) => opts.iter().any(|o| same(o, v)),
            Matcher::Len(m) => {
                let n = match v {
                    Value::Array(a) => a.len(),
                    Value::String(s) => s.chars().count(),
                    Value::Object(o) => o.len(),
                    _ => return false,
                };
                m.check(Some(&Value::from(n))).is_ok()
            }
            Matcher::Each { each, allow_empty } => v.as_array().is_some_and(|a| {
                (*allow_empty || !a.is_empty()) && a.iter().all(|e| each.check(Some(e)).is_ok())
            }),
            Matcher::Cmp(op, n) => v.as_f64().is_some_and(|x| match *op {
                "gt" => x > *n,
                "gte" => x >= *n,
                "lt" => x < *n,
                _ => x <= *n,
            }),
            Matcher::Type(t) => type_holds(t, v),
            Matcher::Includes(want) => v
                .as_array()
                .is_some_and(|a| want.iter().all(|w| a.iter().any(|x| same(w, x)))),
            Matcher::Excludes(unwanted) => v
                .as_array()
                .is_some_and(|a| !unwanted.iter().any(|w| a.iter().any(|x| same(w, x)))),
            Matcher::Exactly(want) => v.as_array().is_some_and(|a| {
                let mut left: Vec<&Value> = a.iter().collect();
                want.iter()
                    .all(|w| match left.iter().position(|x| same(w, x)) {
                        Some(i) => {
                            left.swap_remove(i);
                            true
                        }
                        None => false,
                    })
                    && left.is_empty()
            }),
            Matcher::SameInCopies => true,
            Matcher::Absent | Matcher::Present | Matcher::Not { .. } | Matcher::All(_) => {
                self.check(Some(v)).is_ok()
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Matcher::Equals(e) => short(e),
            Matcher::Contains(e) => format!("something containing {}", short(e)),
            Matcher::NotContains(e) => format!("something not containing {}", short(e)),
            Matcher::Regex(r) => format!("a match of /{}/", r.as_str()),
            Matcher::OneOf(o) => format!("one of {}", short(&Value::Array(o.clone()))),
            Matcher::Len(m) => format!("a length that is {}", m.describe()),
            Matcher::Each { each, allow_empty } => format!(
                "a {}list whose every element is {}",
                if *allow_empty { "" } else { "non-empty " },
                each.describe()
            ),
            Matcher::Cmp(op, n) => format!("a number {op} {n}"),
            Matcher::Type(t) => format!("a value of type {t}"),
            Matcher::Includes(w) => format!("a list including {}", short(&Value::Array(w.clone()))),
            Matcher::Excludes(w) => format!("a list without {}", short(&Value::Array(w.clone()))),
            Matcher::Exactly(w) => format!(
                "a list of exactly {} in any order",
                short(&Value::Array(w.clone()))
            ),
            Matcher::SameInCopies => "present (the same in every copy)".into(),
            Matcher::Absent => "absent".into(),
            Matcher::Present => "present".into(),
            Matcher::Not { not, .. } => format!("not {}", not.describe()),
            Matcher::All(ms) => ms
                .iter()
                .map(Matcher::describe)
                .collect::<Vec<_>>()
                .join(" and "),
        }
    }
}

/// Equality where numbers compare by value (`2` equals `2.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .zip(y.as_f64())
            .is_some_and(|(x, y)| (x - y).abs() < 1e-9),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| same(a, b)))
        }
        _ => a == b,
    }
}

fn contains(haystack: &Value, needle: &Value) -> bool {
    match (haystack, needle) {
        (Value::String(h), Value::String(n)) => h.contains(n.as_str()),
        (Value::Array(items), n) => items.iter().any(|i| same(i, n)),
        (Value::Object(o), Value::String(k)) => o.contains_key(k),
        (h, Value::String(n)) => h.to_string().contains(n.as_str()),
        _ => false,
    }
}

fn type_holds(t: &str, v: &Value) -> bool {
    match t {
        "#uuid" => v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()),
        "#number" => v.is_number(),
        "#integer" => v.is_i64() || v.is_u64(),
        "#string" => v.is_string(),
        "#bool" => v.is_boolean(),
        "#array" => v.is_array(),
        "#object" => v.is_object(),
        "#null" => v.is_null(),
        "#datetime" => v
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        "#nonempty" => match v {
            Value::String(s) => !s.trim().is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            Value::Null => false,
            _ => true,
        },
        _ => false,
    }
}

/// A value shown in a message, cut to a readable length.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 200 {
        format!(
            "{}... ({} chars)",
            s.chars().take(200).collect::<String>(),
            s.len()
        )
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Matcher {
        Matcher::compile(&v).unwrap()
    }

    #[test]
    fn each_matcher_accepts_and_rejects() {
        let cases: Vec<(Value, Value, Value)> = vec![
            (json!(2), json!(2.0), json!(3)),
            (
                json!({"contains": "ship"}),
                json!("shipped"),
                json!("pending"),
            ),
            (json!({"contains": 2}), json!([1, 2]), json!([1])),
            (json!({"not_contains": "PAN"}), json!("ok"), json!("a PAN")),
            (json!({"regex": "^TRK-"}), json!("TRK-1"), json!("X")),
            (json!({"one_of": ["a", "b"]}), json!("b"), json!("c")),
            (json!({"len": 2}), json!([1, 2]), json!([1])),
            (json!({"len": {"gte": 1}}), json!("x"), json!("")),
            (
                json!({"each": {"one_of": [1, 2]}}),
                json!([1, 2, 1]),
                json!([1, 3]),
            ),
            (json!({"gt": 1, "lt": 3}), json!(2), json!(3)),
            (json!({"includes": [1, 3]}), json!([3, 2, 1]), json!([1, 2])),
            (json!({"excludes": ["x"]}), json!(["a"]), json!(["a", "x"])),
            (
                json!({"exactly": [1, 1, 2]}),
                json!([2, 1, 1]),
                json!([1, 2, 2]),
            ),
            (json!({"exactly": ["a"]}), json!(["a"]), json!(["a", "b"])),
            (json!({"not": "x"}), json!("y"), json!("x")),
            (
                json!("#uuid"),
                json!("6f1c7d1e-2b1a-4c3d-9e8f-0a1b2c3d4e5f"),
                json!("nope"),
            ),
            (json!("#number"), json!(1.5), json!("1.5")),
            (json!("#integer"), json!(2), json!(2.5)),
            (
                json!("#datetime"),
                json!("2026-01-01T00:00:00Z"),
                json!("yesterday"),
            ),
            (json!("#nonempty"), json!("a"), json!("")),
        ];
        for (matcher, good, bad) in cases {
            let c = m(matcher.clone());
            assert!(
                c.check(Some(&good)).is_ok(),
                "{matcher} should accept {good}"
            );
            let e = c.check(Some(&bad)).unwrap_err();
            assert!(e.contains("expected"), "{matcher} on {bad}: {e}");
        }
    }

    /// Planted defects: a list the platform stopped filling and a field it stopped sending must
    /// fail `each` and `not`, which used to pass on them.
    #[test]
    fn each_and_not_never_hold_vacuously() {
        let each = m(json!({"each": {"one_of": [1, 2]}}));
        let e = each.check(Some(&json!([]))).unwrap_err();
        assert!(e.contains("non-empty list"), "{e}");
        assert!(each.check(None).is_err());
        let lenient = m(json!({"each": {"one_of": [1, 2]}, "allow_empty": true}));
        assert!(lenient.check(Some(&json!([]))).is_ok());
        assert!(lenient.check(Some(&json!([3]))).is_err());

        let not = m(json!({"not": "x"}));
        let e = not.check(None).unwrap_err();
        assert!(e.contains("absent_ok"), "{e}");
        assert!(not.check(Some(&json!(null))).is_ok(), "null is a value");
        let lenient = m(json!({"not": "x", "absent_ok": true}));
        assert!(lenient.check(None).is_ok());
        assert!(lenient.check(Some(&json!("x"))).is_err());

        let e = Matcher::compile(&json!({"allow_empty": true})).unwrap_err();
        assert!(e.0.contains("needs it in the same map"), "{e}");
        let e = Matcher::compile(&json!({"not": 1, "absent_ok": "yes"})).unwrap_err();
        assert!(e.0.contains("true or false"), "{e}");
    }

    #[test]
    fn absent_and_present() {
        assert!(m(json!({"absent": true})).check(None).is_ok());
        assert!(m(json!({"absent": true})).check(Some(&json!(null))).is_ok());
        assert!(m(json!({"absent": true})).check(Some(&json!(1))).is_err());
        assert!(m(json!("#present")).check(None).is_err());
        let e = m(json!("x")).check(None).unwrap_err();
        assert!(e.contains("absent"), "{e}");
    }

    #[test]
    fn bad_matchers_are_refused_with_the_vocabulary() {
        let e = Matcher::compile(&json!({"contanis": "x"})).unwrap_err();
        assert!(
            e.0.contains("unknown matcher `contanis`") && e.0.contains("contains"),
            "{e}"
        );
        let e = Matcher::compile(&json!("#uid")).unwrap_err();
        assert!(e.0.contains("#uuid"), "{e}");
        let e = Matcher::compile(&json!({"regex": "("})).unwrap_err();
        assert!(e.0.contains("bad regex"), "{e}");
        assert!(Matcher::compile(&json!({"gt": "x"})).is_err());
        assert!(Matcher::compile(&json!({})).is_err());
    }
}
