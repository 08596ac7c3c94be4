//! JSON paths of the spec format: `a.b[0].c`, `items[-1]` (last), `sources[*].level` (every element;
//! the result is the array of what each element holds there), `products[sku=SKU-1].stock` (the first
//! element whose `sku` is `SKU-1`).

use super::SyntaxError;
use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(i64),
    All,
    Find(String, String),
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    segs: Vec<Seg>,
    text: String,
}

impl Path {
    /// Parses `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Path, SyntaxError> {
        let mut segs = vec![];
        let mut rest = text;
        if rest.is_empty() {
            return Err(SyntaxError("an empty path".into()));
        }
        if rest == "$" {
            return Ok(Path {
                segs,
                text: text.into(),
            });
        }
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('[') {
                let end = r
                    .find(']')
                    .ok_or_else(|| SyntaxError(format!("`{text}`: `[` without `]`")))?;
                let inner = &r[..end];
                segs.push(if inner == "*" {
                    Seg::All
                } else if let Some((k, v)) = inner.split_once('=') {
                    if k.is_empty() {
                        return Err(SyntaxError(format!(
                            "`{text}`: `[{inner}]` needs a key before `=`"
                        )));
                    }
                    Seg::Find(k.to_string(), v.to_string())
                } else {
                    Seg::Index(inner.parse().map_err(|_| {
                        SyntaxError(format!(
                            "`{text}`: `[{inner}]` is not an index (a number, `*` or `key=value`)"
                        ))
                    })?)
                });
                rest = &r[end + 1..];
                if let Some(r) = rest.strip_prefix('.') {
                    rest = r;
                    if rest.is_empty() {
                        return Err(SyntaxError(format!("`{text}`: ends with `.`")));
                    }
                }
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                if end == 0 {
                    return Err(SyntaxError(format!("`{text}`: an empty key")));
                }
                segs.push(Seg::Key(rest[..end].to_string()));
                rest = &rest[end..];
                if let Some(r) = rest.strip_prefix('.') {
                    rest = r;
                    if rest.is_empty() {
                        return Err(SyntaxError(format!("`{text}`: ends with `.`")));
                    }
                }
            }
        }
        Ok(Path {
            segs,
            text: text.into(),
        })
    }

    /// The value at this path, or `None` when some step of it is missing.
    pub fn get(&self, v: &Value) -> Option<Value> {
        walk(&self.segs, v)
    }

    /// Replaces whatever is at this path (every match, through `[*]`) with `new`; a path that leads
    /// nowhere changes nothing. Snapshots use it to redact volatile fields.
    pub fn set_all(&self, v: &mut Value, new: Value) {
        set_walk(&self.segs, v, &new)
    }
}

fn set_walk(segs: &[Seg], v: &mut Value, new: &Value) {
    let Some((first, rest)) = segs.split_first() else {
        *v = new.clone();
        return;
    };
    match first {
        Seg::Key(k) => {
            if let Some(x) = v.as_object_mut().and_then(|m| m.get_mut(k)) {
                set_walk(rest, x, new)
            }
        }
        Seg::Index(i) => {
            if let Some(a) = v.as_array_mut() {
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get_mut(i)) {
                    set_walk(rest, x, new)
                }
            }
        }
        Seg::Find(k, want) => {
            if let Some(x) = v.as_array_mut().and_then(|a| {
                a.iter_mut().find(|e| match e.get(k) {
                    Some(Value::String(s)) => s == want,
                    Some(other) => want.parse::<Value>().is_ok_and(|w| w == *other),
                    None => false,
                })
            }) {
                set_walk(rest, x, new)
            }
        }
        Seg::All => {
            for x in v.as_array_mut().into_iter().flatten() {
                set_walk(rest, x, new)
            }
        }
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn walk(segs: &[Seg], v: &Value) -> Option<Value> {
    let Some((first, rest)) = segs.split_first() else {
        return Some(v.clone());
    };
    match first {
        Seg::Key(k) => walk(rest, v.as_object()?.get(k)?),
        Seg::Index(i) => {
            let a = v.as_array()?;
            let idx = if *i < 0 { a.len() as i64 + i } else { *i };
            walk(rest, a.get(usize::try_from(idx).ok()?)?)
        }
        Seg::Find(k, want) => walk(
            rest,
            v.as_array()?.iter().find(|e| match e.get(k) {
                Some(Value::String(s)) => s == want,
                Some(other) => want.parse::<Value>().is_ok_and(|w| w == *other),
                None => false,
            })?,
        ),
        Seg::All => Some(Value::Array(
            v.as_array()?.iter().filter_map(|e| walk(rest, e)).collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_indices_negative_indices_and_wildcards() {
        let v = json!({"a": {"b": [{"c": 1}, {"c": 2}, {"d": 3}]}});
        let get = |p: &str| Path::parse(p).unwrap().get(&v);
        assert_eq!(get("a.b[0].c"), Some(json!(1)));
        assert_eq!(get("a.b[-1].d"), Some(json!(3)));
        assert_eq!(get("a.b[*].c"), Some(json!([1, 2])));
        assert_eq!(get("a.b[5]"), None);
        assert_eq!(get("a.x"), None);
        assert_eq!(get("$"), Some(v.clone()));
        assert_eq!(get("a.b[c=2].c"), Some(json!(2)));
        assert_eq!(get("a.b[d=3]"), Some(json!({"d": 3})));
        assert_eq!(get("a.b[c=9]"), None);
    }

    #[test]
    fn set_all_replaces_every_match_and_ignores_missing_paths() {
        let mut v = json!({"a": [{"c": 1}, {"c": 2}], "b": 1});
        Path::parse("a[*].c").unwrap().set_all(&mut v, json!("x"));
        Path::parse("nope.deeper")
            .unwrap()
            .set_all(&mut v, json!("x"));
        assert_eq!(v, json!({"a": [{"c": "x"}, {"c": "x"}], "b": 1}));
    }

    #[test]
    fn malformed_paths_say_why() {
        for (p, why) in [
            ("a[", "without `]`"),
            ("a[x]", "not an index"),
            ("a..b", "empty key"),
            ("a.", "ends with"),
            ("a[=1]", "needs a key"),
            ("", "empty path"),
        ] {
            let e = Path::parse(p).unwrap_err();
            assert!(e.0.contains(why), "{p}: {e}");
        }
    }
}
