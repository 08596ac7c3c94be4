//! The bus as the harness sees it: the platform's numbered event window
//! (`GET /api/v1/operator/events`), read page by page for the scenario's tenants. It works the same
//! for an in-process platform and a remote deployment, whatever the bus backend.

use serde_json::Value;

/// A reader of one target's event window, for a set of tenants.
#[derive(Clone)]
pub struct EventFeed {
    pub http: reqwest::Client,
    pub base_url: String,
    pub operator_key: String,
    /// Tenant ids (slugs) to read; the window holds every tenant's events.
    pub tenants: Vec<String>,
}

/// Why the event window could not be read, or cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The request for a page got no answer.
    #[error("reading the event window: {0}")]
    Unreachable(#[from] reqwest::Error),
    /// The platform answered the request for a page with an error (no operator key, no window).
    #[error("the event window answered {status}: {body}")]
    Refused { status: u16, body: Value },
    /// A head taken before the window caught up would count earlier steps' late events as the
    /// next step's.
    #[error("the platform's event window had not caught up with its bus (settled: false), so this step's events cannot be told from earlier ones")]
    Unsettled,
    /// The window missed events, or had not caught up with the bus, while a step's events were
    /// checked: what was found (if anything) cannot be trusted either way.
    #[error("the platform's event window missed events during this step or had not caught up with its bus, so the events cannot be checked{}", if found.is_empty() { String::new() } else { format!(" (what was read: {found})") })]
    Incomplete { found: String },
}

/// How long [`EventFeed::head`] keeps asking a window that has not settled.
pub const HEAD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(15);

/// A cursor into the window: the head sequence number, and how many events the window had missed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cursor {
    pub seq: u64,
    pub missed: u64,
}

impl EventFeed {
    async fn page(&self, after: u64, limit: usize) -> Result<Value, FeedError> {
        let url = format!(
            "{}/api/v1/operator/events?tenant_id={}&after={after}&limit={limit}",
            self.base_url,
            self.tenants.join(",")
        );
        let r = self
            .http
            .get(&url)
            .header("x-operator-key", &self.operator_key)
            .send()
            .await?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status != 200 {
            return Err(FeedError::Refused { status, body });
        }
        Ok(body)
    }

    /// Where the window ends now: take it before acting, read [`EventFeed::since`] after. The
    /// platform answers once its window holds everything published before the read (`settled`);
    /// a head taken before that would count the previous step's late events as this step's, so an
    /// unsettled head is an error.
    pub async fn head(&self) -> Result<Cursor, FeedError> {
        self.head_within(HEAD_PATIENCE).await
    }

    /// [`EventFeed::head`], asking again (each read waits for the window itself) until `within`
    /// has passed: a bus that lags for a moment is not yet a failure.
    pub async fn head_within(&self, within: std::time::Duration) -> Result<Cursor, FeedError> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let b = self.page(0, 0).await?;
            if b["settled"] != false {
                return Ok(Cursor {
                    seq: b["next"].as_u64().unwrap_or(0),
                    missed: b["missed"].as_u64().unwrap_or(0),
                });
            }
            if std::time::Instant::now() >= deadline {
                return Err(FeedError::Unsettled);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Every event of the tenants after `c`, in publication order, and whether the window may be
    /// incomplete: it missed events since `c`, or had not caught up with the bus (then an absence
    /// proves nothing).
    pub async fn since(&self, c: Cursor) -> Result<(Vec<Value>, bool), FeedError> {
        let mut out = vec![];
        let mut after = c.seq;
        loop {
            let b = self.page(after, 1000).await?;
            let events = b["events"].as_array().cloned().unwrap_or_default();
            let next = b["next"].as_u64().unwrap_or(after);
            let incomplete = b["missed"].as_u64().unwrap_or(0) > c.missed || b["settled"] == false;
            out.extend(events);
            if next == after {
                return Ok((out, incomplete));
            }
            after = next;
        }
    }
}
