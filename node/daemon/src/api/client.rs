//! The CLI side of the control API: find a running node through `<data-dir>/api` and call it.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use crate::home::Home;

const JSON: &str = "application/json";

/// A running node's control API.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

/// The API of the node running on this data directory, if one answers. A stale address file (the
/// node was killed) is ignored.
pub fn running(home: &Home) -> Option<Api> {
    let text = std::fs::read_to_string(home.root().join(super::API_FILE)).ok()?;
    let addr: SocketAddr = text.trim().parse().ok()?;
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    let mut api = Api::new(addr);
    api.token = std::fs::read_to_string(home.root().join(super::TOKEN_FILE))
        .ok()
        .map(|t| t.trim().to_string());
    Some(api)
}

/// The running node's API, or a clear error telling the user to start one.
pub fn require(home: &Home) -> Result<Api> {
    running(home).with_context(|| {
        format!(
            "no node is running on {} (start one with `jobmesh node start`)",
            home.root().display()
        )
    })
}

impl Api {
    /// An API client for this address.
    pub fn new(addr: SocketAddr) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        Api {
            base: format!("http://{addr}/api/v0"),
            agent,
            token: None,
        }
    }

    /// A POST to `path`; `content_type` is `application/json`, or `application/octet-stream` for an upload (the
    /// API refuses any other, see [`super::guard`]).
    fn request(
        &self,
        path: &str,
        query: &[(&str, &str)],
        content_type: &str,
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let mut req = self
            .agent
            .post(format!("{}/{path}", self.base))
            .header("Content-Type", content_type);
        if let Some(token) = &self.token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        req
    }

    fn check(resp: ureq::http::Response<ureq::Body>) -> Result<ureq::http::Response<ureq::Body>> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let mut body = resp.into_body();
        let text = body.read_to_string().unwrap_or_default();
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("Message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(text);
        bail!("the node answered {}: {msg}", status.as_u16())
    }

    /// Calls a command and returns its JSON answer.
    pub fn call(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let resp = self
            .request(path, query, JSON)
            .send_empty()
            .with_context(|| format!("cannot reach the running node's API at {}", self.base))?;
        Self::check(resp)?
            .into_body()
            .read_json::<Value>()
            .context("the node sent an invalid answer")
    }

    /// Calls a command with a streamed request body and returns its JSON answer.
    pub fn call_with_body(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: impl Read,
    ) -> Result<Value> {
        let mut body = body;
        let resp = self
            .request(path, query, "application/octet-stream")
            .send(ureq::SendBody::from_reader(&mut body))
            .with_context(|| format!("cannot reach the running node's API at {}", self.base))?;
        Self::check(resp)?
            .into_body()
            .read_json::<Value>()
            .context("the node sent an invalid answer")
    }

    /// Calls a command whose answer is a byte stream (e.g. `cat`).
    pub fn call_stream(&self, path: &str, query: &[(&str, &str)]) -> Result<impl Read> {
        let resp = self
            .request(path, query, JSON)
            .send_empty()
            .with_context(|| format!("cannot reach the running node's API at {}", self.base))?;
        Ok(Self::check(resp)?
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader())
    }
}
