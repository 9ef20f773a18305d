//! A client of the control API: find a running node through `<data-dir>/api` and call it. It returns values
//! and typed errors and never prints (the command line does).

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::home::Home;

const JSON: &str = "application/json";

/// Why a call to a node's API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No node answers on this data directory.
    #[error("no node is running on {0} (start one with `jobmesh node start`)")]
    NotRunning(std::path::PathBuf),
    /// The request did not reach the node.
    #[error("cannot reach the running node's API at {base}: {source}")]
    Unreachable {
        /// The API's base URL.
        base: String,
        /// Why.
        source: ureq::Error,
    },
    /// The node refused the call.
    #[error("the node answered {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The node's message.
        message: String,
    },
    /// The answer is not the JSON expected.
    #[error("the node sent an invalid answer: {0}")]
    InvalidAnswer(#[source] ureq::Error),
}

type Result<T> = std::result::Result<T, ClientError>;

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
    running(home).ok_or_else(|| ClientError::NotRunning(home.root().to_path_buf()))
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

    fn unreachable(&self, source: ureq::Error) -> ClientError {
        ClientError::Unreachable {
            base: self.base.clone(),
            source,
        }
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
        Err(ClientError::Refused {
            status: status.as_u16(),
            message: msg,
        })
    }

    /// Calls a command and returns its JSON answer.
    pub fn call(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let resp = self
            .request(path, query, JSON)
            .send_empty()
            .map_err(|source| self.unreachable(source))?;
        Self::check(resp)?
            .into_body()
            .read_json::<Value>()
            .map_err(ClientError::InvalidAnswer)
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
            .map_err(|source| self.unreachable(source))?;
        Self::check(resp)?
            .into_body()
            .read_json::<Value>()
            .map_err(ClientError::InvalidAnswer)
    }

    /// Calls a command whose answer is a byte stream (e.g. `cat`).
    pub fn call_stream(&self, path: &str, query: &[(&str, &str)]) -> Result<impl Read> {
        let resp = self
            .request(path, query, JSON)
            .send_empty()
            .map_err(|source| self.unreachable(source))?;
        Ok(Self::check(resp)?
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader())
    }
}
