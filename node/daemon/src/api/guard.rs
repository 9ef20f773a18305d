//! Who may talk to the control API from a browser: the checks that keep other web pages and DNS-rebinding
//! attackers away from a node's local API (kubo's RPC refuses foreign `Origin`s; this adds a `Host` check and a
//! content-type rule that forces a CORS preflight, which the API never grants).
//!
//! - **Host**: the request's `Host` must name this API: an IP literal with the API's port, `localhost` with it,
//!   or a host of an allow-listed origin (`--api-allow-origin`). A DNS-rebinding page reaches the API under its
//!   own domain name, so its `Host` is refused. `<cid>.ipfs.localhost:PORT` is the subdomain gateway: an origin of
//!   its own that serves content only (read-only, `GET`/`HEAD`), never the API.
//! - **Origin**: a request that carries `Origin` must come from the API's own origin (`http://<its Host>`) or an
//!   allow-listed one; `Origin: null` (sandboxed frames, `file:` pages, the path-style gateway's sandbox) is
//!   refused. Without `Origin`, a `Sec-Fetch-Site` other than `same-origin`/`none` is refused.
//! - **Writes**: anything but `GET`/`HEAD` must be a `POST` whose `Content-Type` is `application/json` (or
//!   `application/octet-stream` for raw uploads). Neither is a CORS-safelisted type, so a browser must ask first
//!   (a preflight the API does not answer with CORS headers): a cross-site form or `no-cors` fetch cannot reach a
//!   handler even if a browser omitted `Origin`.
//!
//! Owns: these checks and the subdomain-gateway rewrite. Must not touch: handlers, the token (see
//! `require_token`), anything that changes state.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// A value given to `--api-allow-origin` that is not an origin.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid --api-allow-origin {0:?}: expected scheme://host[:port], e.g. http://mybox.lan:5101"
)]
pub struct BadOrigin(String);

/// Which hosts and origins this API answers.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    port: u16,
    /// Extra origins allowed to call the API, normalised (lower case, no trailing slash).
    extra_origins: Vec<String>,
}

impl AccessPolicy {
    /// The policy of an API bound to `bound`, with `extra_origins` allowed besides its own origin.
    pub fn new(bound: SocketAddr, extra_origins: &[String]) -> Result<Self, BadOrigin> {
        let extra_origins = extra_origins
            .iter()
            .map(|o| normalise_origin(o).ok_or_else(|| BadOrigin(o.clone())))
            .collect::<Result<_, _>>()?;
        Ok(AccessPolicy {
            port: bound.port(),
            extra_origins,
        })
    }

    /// What a `Host` header value names: this API, the subdomain gateway for a CID, or something else.
    fn classify_host(&self, host: &str) -> HostKind {
        let host = host.to_ascii_lowercase();
        let Some((name, port)) = split_host_port(&host) else {
            return HostKind::Foreign;
        };
        if port.unwrap_or(80) != self.port {
            return self.allow_listed_host(&host);
        }
        if name == "localhost" || name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            return HostKind::Api;
        }
        if let Some(label) = name.strip_suffix(".ipfs.localhost") {
            if !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return HostKind::Gateway(label.to_string());
            }
        }
        self.allow_listed_host(&host)
    }

    fn allow_listed_host(&self, host: &str) -> HostKind {
        let listed = self
            .extra_origins
            .iter()
            .any(|o| o.split_once("://").map(|(_, h)| h) == Some(host));
        if listed {
            HostKind::Api
        } else {
            HostKind::Foreign
        }
    }

    /// Whether a request to `host` may come from `origin`.
    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        origin == format!("http://{}", host.to_ascii_lowercase())
            || self.extra_origins.contains(&origin)
    }
}

enum HostKind {
    Api,
    Gateway(String),
    Foreign,
}

/// `scheme://host[:port]` in lower case without a trailing slash, or `None` if it is not an origin.
fn normalise_origin(text: &str) -> Option<String> {
    let o = text.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, host) = o.split_once("://")?;
    let valid = matches!(scheme, "http" | "https")
        && !host.is_empty()
        && !host.contains(['/', '?', '#', '@'])
        && split_host_port(host).is_some();
    valid.then_some(o)
}

/// Splits `name[:port]` (`[v6]:port` for IPv6); `None` for a malformed port.
fn split_host_port(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        let rest = &host[end + 1..];
        (&host[..=end], rest.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    (!name.is_empty()).then_some((name, port))
}

fn forbidden(msg: impl Into<String>) -> Response {
    ApiError(StatusCode::FORBIDDEN, msg.into()).into_response()
}

/// The media types a state-changing call may carry (neither is CORS-safelisted, so browsers preflight them).
const WRITE_TYPES: [&str; 2] = ["application/json", "application/octet-stream"];

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Why a request to the API is refused, if it is. Path-style gateway reads (`GET /ipfs/…`) are read-only and
/// sandboxed, so other pages may embed them like any gateway's.
fn api_refusal(policy: &AccessPolicy, req: &Request, host: &str) -> Option<Response> {
    let read = req.method() == Method::GET || req.method() == Method::HEAD;
    if read && req.uri().path().starts_with("/ipfs/") {
        return None;
    }
    let headers = req.headers();
    match header_str(headers, header::ORIGIN) {
        Some(origin) if !policy.origin_allowed(origin, host) => {
            return Some(forbidden(format!(
                "requests from origin {origin:?} are refused (start the node with --api-allow-origin to allow one)"
            )));
        }
        Some(_) => {}
        None => {
            let site = header_str(headers, header::HeaderName::from_static("sec-fetch-site"));
            if matches!(site, Some("cross-site" | "same-site")) {
                return Some(forbidden("cross-site requests are refused"));
            }
        }
    }
    if read {
        return None;
    }
    if req.method() != Method::POST {
        return Some(
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET and POST are served".into(),
            )
            .into_response(),
        );
    }
    let media = header_str(headers, header::CONTENT_TYPE)
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    match media {
        Some(m) if WRITE_TYPES.contains(&m.as_str()) => None,
        _ => Some(
            ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a POST to the API needs Content-Type: application/json (or application/octet-stream for an upload)"
                    .into(),
            )
            .into_response(),
        ),
    }
}

/// The middleware: refuses what [`AccessPolicy`] does not allow, and turns a subdomain-gateway request
/// (`<cid>.ipfs.localhost:PORT/<path>`) into the gateway's `/ipfs/<cid>/<path>`.
pub async fn guard(
    State(policy): State<Arc<AccessPolicy>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(host) = header_str(req.headers(), header::HOST).map(str::to_string) else {
        return forbidden("a request without a Host header is refused");
    };
    match policy.classify_host(&host) {
        HostKind::Foreign => forbidden(format!("this API does not answer to host {host:?}")),
        HostKind::Gateway(cid) => {
            if req.method() != Method::GET && req.method() != Method::HEAD {
                return forbidden("the gateway is read-only");
            }
            match gateway_uri(&cid, req.uri()) {
                Some(uri) => {
                    *req.uri_mut() = uri;
                    req.extensions_mut().insert(SubdomainGateway);
                    next.run(req).await
                }
                None => forbidden("bad gateway path"),
            }
        }
        HostKind::Api => match api_refusal(&policy, &req, &host) {
            Some(refusal) => refusal,
            None => next.run(req).await,
        },
    }
}

/// Marks a request that reached the gateway through its own subdomain origin (no sandbox needed there).
#[derive(Clone, Copy, Debug)]
pub struct SubdomainGateway;

fn gateway_uri(cid: &str, uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let target = if path == "/" {
        format!("/ipfs/{cid}")
    } else {
        format!("/ipfs/{cid}{path}")
    };
    target.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AccessPolicy {
        AccessPolicy::new(
            "127.0.0.1:5101".parse().unwrap(),
            &["https://app.example:8443/".to_string()],
        )
        .unwrap()
    }

    #[test]
    fn hosts_are_this_api_the_gateway_or_foreign() {
        let p = policy();
        for ok in [
            "127.0.0.1:5101",
            "localhost:5101",
            "[::1]:5101",
            "10.1.2.3:5101",
            "app.example:8443",
        ] {
            assert!(matches!(p.classify_host(ok), HostKind::Api), "{ok}");
        }
        for bad in [
            "evil.example:5101",
            "127.0.0.1:80",
            "localhost",
            "127.0.0.1.evil.example:5101",
            ":5101",
        ] {
            assert!(matches!(p.classify_host(bad), HostKind::Foreign), "{bad}");
        }
        assert!(matches!(
            p.classify_host("bafkqaaa.ipfs.localhost:5101"),
            HostKind::Gateway(c) if c == "bafkqaaa"
        ));
        assert!(matches!(
            p.classify_host("a.b.ipfs.localhost:5101"),
            HostKind::Foreign
        ));
    }

    #[test]
    fn origins_must_be_the_api_itself_or_allow_listed() {
        let p = policy();
        assert!(p.origin_allowed("http://127.0.0.1:5101", "127.0.0.1:5101"));
        assert!(p.origin_allowed("HTTP://LOCALHOST:5101/", "localhost:5101"));
        assert!(p.origin_allowed("https://app.example:8443", "127.0.0.1:5101"));
        assert!(!p.origin_allowed("http://localhost:5101", "127.0.0.1:5101"));
        assert!(!p.origin_allowed("null", "127.0.0.1:5101"));
        assert!(!p.origin_allowed("http://bafkqaaa.ipfs.localhost:5101", "127.0.0.1:5101"));
        assert!(AccessPolicy::new("127.0.0.1:1".parse().unwrap(), &["evil".into()]).is_err());
    }
}
