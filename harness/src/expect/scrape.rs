//! A step's `metrics:` checked against the platform's `/metrics` scraped before and after it.

use crate::expect::metrics;
use crate::runner::error::StepError;
use crate::runner::Scenario;
use std::time::{Duration, Instant};
impl Scenario<'_> {
    /// The target's `/metrics`, parsed.
    pub(crate) async fn scrape(&self) -> Result<metrics::Scrape, StepError> {
        let url = format!("{}/metrics", self.target.base_url);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET /metrics: {e}"))?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(|e| format!("GET /metrics: {e}"))?;
        if status != 200 {
            // The platform's own /metrics failing is a verdict on it.
            return Err(StepError::mismatch(format!(
                "GET /metrics answered {status}: {text}"
            )));
        }
        metrics::Scrape::parse(&text)
            .map_err(|e| StepError::mismatch(format!("/metrics is not valid exposition text: {e}")))
    }

    /// Checks a step's `metrics:` items, scraping again until they hold or the events timeout
    /// passes (counters of background work, like events, arrive a little after the answer).
    pub(crate) async fn check_metrics(
        &self,
        items: &[metrics::MetricExpect],
        before: Option<&metrics::Scrape>,
    ) -> Result<(), StepError> {
        let items: Vec<metrics::MetricExpect> = items
            .iter()
            .map(|i| {
                let mut i = i.clone();
                i.value = i.value.as_ref().map(|v| self.interp(v)).transpose()?;
                i.delta = i.delta.as_ref().map(|v| self.interp(v)).transpose()?;
                Ok(i)
            })
            .collect::<Result<_, StepError>>()?;
        let deadline = Instant::now() + self.cfg.events_timeout;
        loop {
            let after = self.scrape().await?;
            let problems = metrics::check(&items, before, &after).map_err(|e| e.to_string())?;
            if problems.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StepError::mismatch(problems.join("\n")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
