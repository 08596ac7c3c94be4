//! `${var}` in a step: captured variables and fixture facts expanded in strings, keys and bodies.

use crate::runner::error::StepError;
use crate::runner::Scenario;
use serde_json::Value;
impl Scenario<'_> {
    pub(crate) fn interp_str(&self, s: &str) -> Result<String, StepError> {
        match self.interp(&Value::String(s.into()))? {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }

    /// Replaces `${name}` in every string of `v`; a string that is only `${name}` takes the
    /// variable's JSON value.
    pub(crate) fn interp(&self, v: &Value) -> Result<Value, StepError> {
        Ok(match v {
            Value::String(s) => {
                if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                    if !name.contains("${") {
                        return self.var(name).cloned();
                    }
                }
                let mut out = String::new();
                let mut rest = s.as_str();
                while let Some(i) = rest.find("${") {
                    out.push_str(&rest[..i]);
                    let end = rest[i..]
                        .find('}')
                        .ok_or_else(|| format!("`{s}`: `${{` without `}}`"))?;
                    let name = &rest[i + 2..i + end];
                    match self.var(name)? {
                        Value::String(x) => out.push_str(x),
                        other => out.push_str(&other.to_string()),
                    }
                    rest = &rest[i + end + 1..];
                }
                out.push_str(rest);
                Value::String(out)
            }
            Value::Array(a) => {
                Value::Array(a.iter().map(|x| self.interp(x)).collect::<Result<_, _>>()?)
            }
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.interp(x)?)))
                    .collect::<Result<_, StepError>>()?,
            ),
            other => other.clone(),
        })
    }

    pub(crate) fn var(&self, name: &str) -> Result<&Value, StepError> {
        self.vars.get(name).ok_or_else(|| {
            StepError::Harness(format!(
                "unknown variable `${{{name}}}` (known: {})",
                self.vars.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}
