//! The SSRF guard of URL-fetching tools. A URL may be fetched only when
//! - its scheme is `http` or `https` and it carries no credentials;
//! - its host, after parsing (the WHATWG parser reads decimal, hex and octal IPv4 forms such as
//!   `2130706433`, `0x7f000001` and `017700000001` as the address they are) and after resolution
//!   (so `127.0.0.1.nip.io` and DNS rebinding are caught), names only public addresses: never
//!   loopback, unspecified, private (RFC 1918), shared (100.64/10), link-local (and the cloud
//!   metadata addresses in it), unique-local, multicast, broadcast or reserved ranges, nor an
//!   IPv6 address that embeds one of those (IPv4-mapped, IPv4-compatible, NAT64).
//!
//! A checked URL comes with the addresses it was checked against; the fetcher connects to those,
//! never resolving again, so a name that changes its answer between check and connect gains
//! nothing. The resolver is injectable: tests and offline runs resolve from a table.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::{Host, Url};

/// Why a URL may not be fetched.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SsrfError {
    #[error("the URL cannot be parsed: {0}")]
    Malformed(String),
    #[error("scheme `{0}` is not allowed (http and https only)")]
    Scheme(String),
    #[error("credentials in URLs are refused")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    #[error("`{0}` does not resolve")]
    Unresolved(String),
    #[error("`{host}` is {addr}, a {class} address")]
    Forbidden {
        host: String,
        addr: IpAddr,
        class: &'static str,
    },
}

/// Name resolution, injectable so that tests (and offline deployments) need no DNS.
#[async_trait::async_trait]
pub trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, SsrfError>;
}

/// The operating system's resolver.
pub struct SystemResolver;

#[async_trait::async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, SsrfError> {
        let addrs = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| SsrfError::Unresolved(host.to_string()))?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// Answers from a fixed table: names absent from it do not resolve.
#[derive(Default)]
pub struct StaticResolver(pub HashMap<String, Vec<IpAddr>>);

#[async_trait::async_trait]
impl Resolver for StaticResolver {
    async fn resolve(&self, host: &str, _port: u16) -> Result<Vec<IpAddr>, SsrfError> {
        self.0
            .get(&host.to_ascii_lowercase())
            .cloned()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| SsrfError::Unresolved(host.to_string()))
    }
}

/// A URL that may be fetched, and the only addresses to connect to for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub url: Url,
    pub addrs: Vec<SocketAddr>,
}

/// Why an address is not public, if it is not.
pub fn forbidden_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "cloud metadata",
        (127, _) => "loopback",
        (0, _) => "unspecified",
        (10, _) | (192, 168) => "private",
        (172, 16..=31) => "private",
        (100, 64..=127) => "shared (carrier NAT)",
        (169, 254) => "link-local",
        (192, 0) if c == 0 => "reserved (IETF)",
        (198, 18..=19) => "benchmarking",
        (224..=239, _) => "multicast",
        (240..=255, _) if [a, b, c, d] == [255, 255, 255, 255] => "broadcast",
        (240..=255, _) => "reserved",
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    // An IPv4 address inside an IPv6 one is judged as the IPv4 address it carries.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return v4_class(embedded(s[6], s[7])).or(Some("IPv4-compatible"));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_class(embedded(s[6], s[7]));
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("cloud metadata");
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => Some("unique-local"),
        x if x & 0xffc0 == 0xfe80 => Some("link-local"),
        x if x & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// Checks `raw` and resolves its host with `resolver`: every address must be public.
pub async fn check(raw: &str, resolver: &dyn Resolver) -> Result<Checked, SsrfError> {
    let url = Url::parse(raw.trim()).map_err(|e| SsrfError::Malformed(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SsrfError::Scheme(url.scheme().to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SsrfError::Credentials);
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let host_text = url.host_str().unwrap_or_default().to_string();
    let ips = match url.host() {
        None => return Err(SsrfError::NoHost),
        Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") {
                return Err(SsrfError::Forbidden {
                    host: host_text,
                    addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    class: "loopback",
                });
            }
            resolver.resolve(&d, port).await?
        }
    };
    if ips.is_empty() {
        return Err(SsrfError::Unresolved(host_text));
    }
    for ip in &ips {
        if let Some(class) = forbidden_class(*ip) {
            return Err(SsrfError::Forbidden {
                host: host_text,
                addr: *ip,
                class,
            });
        }
    }
    let addrs = ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    Ok(Checked { url, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> StaticResolver {
        let mut t = HashMap::new();
        let ip = |s: &str| {
            s.parse::<IpAddr>()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        };
        t.insert("docs.example.com".into(), vec![ip("93.184.216.34")]);
        t.insert("127.0.0.1.nip.io".into(), vec![ip("127.0.0.1")]);
        t.insert("internal.acme.corp".into(), vec![ip("10.1.2.3")]);
        // A rebinding name: one public answer and one internal one.
        t.insert(
            "rebind.example.net".into(),
            vec![ip("93.184.216.34"), ip("192.168.1.10")],
        );
        t.insert(
            "v6.example.com".into(),
            vec![ip("2606:2800:220:1:248:1893:25c8:1946")],
        );
        StaticResolver(t)
    }

    async fn verdict(url: &str) -> Result<Checked, SsrfError> {
        check(url, &resolver()).await
    }

    #[tokio::test]
    async fn public_http_and_https_urls_pass_with_their_checked_addresses() {
        let c = verdict("https://docs.example.com/returns?x=1").await;
        assert_eq!(
            c.map(|c| c.addrs),
            Ok(vec!["93.184.216.34:443"
                .parse()
                .unwrap_or_else(|_| unreachable!())])
        );
        assert!(verdict("http://v6.example.com:8080/").await.is_ok());
        assert!(verdict("http://93.184.216.34/").await.is_ok());
    }

    #[tokio::test]
    async fn every_internal_form_is_refused_with_its_class() {
        let refused = [
            ("http://localhost:8080/admin", "loopback"),
            ("http://app.localhost/", "loopback"),
            ("http://127.0.0.1:3306/", "loopback"),
            ("http://127.1/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://0x7f000001/", "loopback"),
            ("http://017700000001/", "loopback"),
            ("http://0177.0.0.1/", "loopback"),
            ("http://[::1]/", "loopback"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[::ffff:7f00:1]/", "loopback"),
            ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
            ("http://[fd00:ec2::254]/", "cloud metadata"),
            ("http://169.254.1.1/", "link-local"),
            ("http://[fe80::1]/", "link-local"),
            ("http://10.0.0.5/", "private"),
            ("http://172.16.3.4/", "private"),
            ("http://192.168.0.1/", "private"),
            ("http://100.64.0.1/", "shared (carrier NAT)"),
            ("http://[fc00::1]/", "unique-local"),
            ("http://224.0.0.1/", "multicast"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://127.0.0.1.nip.io/", "loopback"),
            ("http://internal.acme.corp/", "private"),
            ("http://rebind.example.net/", "private"),
        ];
        for (url, class) in refused {
            match verdict(url).await {
                Err(SsrfError::Forbidden { class: c, .. }) => assert_eq!(c, class, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn other_schemes_credentials_and_unknown_names_are_refused() {
        for url in [
            "file:///etc/passwd",
            "ftp://docs.example.com/",
            "gopher://docs.example.com/",
            "ldap://docs.example.com/",
            "dict://docs.example.com:11211/",
            "sftp://docs.example.com/",
            "tftp://docs.example.com/",
        ] {
            assert!(
                matches!(verdict(url).await, Err(SsrfError::Scheme(_))),
                "{url}"
            );
        }
        assert_eq!(
            verdict("http://admin:pw@docs.example.com/").await,
            Err(SsrfError::Credentials)
        );
        assert_eq!(
            verdict("http://nowhere.example.org/").await,
            Err(SsrfError::Unresolved("nowhere.example.org".into()))
        );
        assert!(matches!(
            verdict("not a url").await,
            Err(SsrfError::Malformed(_))
        ));
    }
}
