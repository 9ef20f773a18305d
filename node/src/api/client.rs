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

/// `jobmesh add` through the running node (which stores, pins and provides the file).
pub fn add(
    ctx: &crate::cli::Context,
    api: &Api,
    args: &crate::commands::store::AddArgs,
) -> Result<()> {
    use clap::ValueEnum;
    let name = |v: Option<clap::builder::PossibleValue>| {
        v.map(|p| p.get_name().to_string()).unwrap_or_default()
    };
    let profile = name(args.profile.to_possible_value());
    let hash = name(args.hash.to_possible_value());
    let input: Box<dyn Read> = if args.path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.path)
                .with_context(|| format!("cannot read {}", args.path.display()))?,
        )
    };
    let v = api
        .call_with_body("add", &[("profile", &profile), ("hash", &hash)], input)
        .with_context(|| format!("cannot add {}", args.path.display()))?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "cid": v["Hash"], "size": v["Size"], "blocks": v["Blocks"], "profile": v["Profile"], "hash": hash,
        }))?;
    } else {
        crate::outln!("{}", v["Hash"].as_str().unwrap_or_default())?;
    }
    Ok(())
}

/// `jobmesh cat` through the running node (fetching from the mesh what it lacks).
/// `timeout` bounds the node's search of the mesh (its `--fetch-timeout` when `None`).
pub fn cat(api: &Api, cid: &str, timeout: Option<Duration>) -> Result<()> {
    jobmesh_store::parse_cid(cid)?;
    let timeout = timeout.map(|t| t.as_secs_f64().to_string());
    let mut query = vec![("arg", cid)];
    query.extend(timeout.as_deref().map(|t| ("timeout", t)));
    let mut body = api.call_stream("cat", &query)?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut body, &mut out).context("cannot write the output")?;
    Ok(())
}

/// `jobmesh get` through the running node. The node streams the DAG as a CAR (fetching what it lacks); this side
/// checks every block into a scratch store beside the output and writes the tree itself, so the node never
/// writes files at a path a caller names (a web page could otherwise make it write anywhere).
pub fn get(
    ctx: &crate::cli::Context,
    api: &Api,
    cid: &str,
    output: &std::path::Path,
) -> Result<()> {
    let root = jobmesh_store::parse_cid(cid)?;
    if output.exists() {
        bail!("{} already exists", output.display());
    }
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let scratch = tempfile::Builder::new()
        .prefix(".jobmesh-get-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let store = jobmesh_store::Store::open(scratch.path())?;
    let car = api.call_stream("get", &[("arg", cid)])?;
    jobmesh_store::car::import(&store, car).context("the node sent a bad CAR")?;
    let bytes = jobmesh_store::unixfs::export_to_path(&store, &root, output)?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({ "cid": cid, "path": output, "bytes": bytes }))?;
    } else {
        eprintln!("wrote {bytes} bytes to {}", output.display());
    }
    Ok(())
}

/// `jobmesh pin add` through the running node (fetching from the mesh what it lacks).
pub fn pin_add(ctx: &crate::cli::Context, api: &Api, cid: &str) -> Result<()> {
    jobmesh_store::parse_cid(cid)?;
    api.call("pin/add", &[("arg", cid)])?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({ "pinned": cid }))?;
    } else {
        crate::outln!("pinned {cid}")?;
    }
    Ok(())
}
