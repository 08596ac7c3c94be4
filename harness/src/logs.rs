//! The in-process platform's log lines and span attributes, captured for the oracles: the harness
//! installs itself as the process's `tracing` subscriber (JSON lines, `RUST_LOG` or `info`) and
//! keeps every line, and every span's attributes as a line of its own (`{"span": name, "fields":
//! {...}}`, once when the span opens and once for each value recorded later), so a scenario can
//! read what was written while it ran. Parallel scenarios share the buffer; each scenario's oracle
//! looks only for its own tenants' canaries and fixture values, which no other scenario has.

use serde_json::{Map, Value};
use std::sync::{Mutex, OnceLock};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// What starts a captured span line (log lines are the formatter's, which start otherwise).
pub const SPAN_LINE: &str = "{\"span\":";

fn keep(line: String) {
    LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
}

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            keep(l.to_string());
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A span's attribute values as JSON (numbers and booleans as such, anything else as text).
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// `{"span": name, "fields": {...}}`, written by hand so that `span` comes first ([`SPAN_LINE`]).
fn span_line(name: &str, f: Fields) -> String {
    format!(
        "{SPAN_LINE}{},\"fields\":{}}}",
        Value::from(name),
        Value::Object(f.0)
    )
}

/// Keeps every span's attributes: what a trace exporter would send.
struct SpanCapture;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanCapture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        keep(span_line(attrs.metadata().name(), f));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        values.record(&mut f);
        let name = ctx.span(id).map(|s| s.name()).unwrap_or("?");
        keep(span_line(name, f));
    }
}

/// Installs the capture once per process; false when another subscriber was there first (then
/// the log oracle has nothing to read, and says so).
pub fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(|| Capture),
            )
            .with(SpanCapture)
            .try_init()
            .is_ok()
    })
}

/// Where the buffer ends now.
pub fn mark() -> usize {
    LINES.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// The lines written since `mark`.
pub fn since(mark: usize) -> Vec<String> {
    let lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    lines
        .get(mark..)
        .map(<[String]>::to_vec)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_written_after_a_mark_are_read_back() {
        assert!(install(), "the capture is this process's subscriber");
        let m = mark();
        tracing::warn!(secret = "TRACE-feedfacefeedface", "something went wrong");
        let lines = since(m);
        assert!(
            lines.iter().any(|l| l.contains("TRACE-feedfacefeedface")),
            "{lines:?}"
        );
    }

    #[test]
    fn span_attributes_are_kept_when_opened_and_when_recorded() {
        assert!(install(), "the capture is this process's subscriber");
        let m = mark();
        let span = tracing::info_span!(
            "rag.search",
            tenant_id = "acme-1",
            hits = tracing::field::Empty
        );
        span.record("hits", 3u64);
        span.record("hits", "TRACE-0123456789abcdef");
        let spans: Vec<Value> = since(m)
            .iter()
            .filter(|l| l.starts_with(SPAN_LINE))
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|v: &Value| v["span"] == "rag.search")
            .collect();
        assert_eq!(spans.len(), 3, "{spans:?}");
        assert_eq!(spans[0]["fields"]["tenant_id"], "acme-1");
        assert_eq!(spans[1]["fields"]["hits"], 3);
        assert_eq!(spans[2]["fields"]["hits"], "TRACE-0123456789abcdef");
    }
}
