//! The in-process platform's log lines, captured for the oracles: the harness installs itself as
//! the process's `tracing` subscriber (JSON lines, `RUST_LOG` or `info`) and keeps every line, so a
//! scenario can read the lines written while it ran. Parallel scenarios share the buffer; each
//! scenario's oracle looks only for its own tenants' canaries and fixture values, which no other
//! scenario has.

use std::sync::{Mutex, OnceLock};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<bool> = OnceLock::new();

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
        lines.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capture once per process; false when another subscriber was there first (then
/// the log oracle has nothing to read, and says so).
pub fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .json()
            .with_writer(|| Capture)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
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
}
