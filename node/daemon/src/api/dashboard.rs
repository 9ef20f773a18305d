//! The node's web dashboard, served at `/` by the control API: a plain HTML/CSS/JS page (embedded with
//! `include_str!`, no build step, nothing fetched from elsewhere) and the few endpoints only it needs:
//!
//! - `POST /api/v0/job/submit-js` (JSON `{source, input, replicas, max_fuel, timeout_ms, price}`): compiles the
//!   JavaScript with the bundled Javy plugin, stores code and input (kubo profile), submits the job, answers `{id}`;
//! - `GET /api/v0/job/events?arg=<id>`: server-sent events, one `JobStatus` JSON per change until it is over;
//!
//! Everything else the page shows comes from the existing POST routes. It owns no market or store logic.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use jobmesh_exec::{JobCode, Plugin};
use jobmesh_store::unixfs::Profile;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::jobs::{market, market_err};
use super::{arg, provide_later, ApiError, ApiResult, ApiState};
use crate::market::messages::{CodeKind, JobId, JobLimits};
use crate::market::JobRequest;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");
const EXAMPLE_JS: &str = include_str!("../../../../examples/wordcount.js");
const EXAMPLE_INPUT: &str = include_str!("../../../../examples/wordcount.input.json");

/// Largest JavaScript source or input the page may post (the body holds both).
const MAX_BODY: usize = 8 << 20;

/// The dashboard's routes (the page, its assets and its endpoints).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/dashboard/style.css",
            get(|| async { page(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/dashboard/example.json",
            get(|| async { Json(json!({ "source": EXAMPLE_JS, "input": EXAMPLE_INPUT })) }),
        )
        .route("/api/v0/job/submit-js", post(submit_js))
        .route("/api/v0/job/events", get(events))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

fn page(body: &'static str, kind: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// The body of `job/submit-js`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitJs {
    source: String,
    #[serde(default)]
    input: String,
    #[serde(default = "default_replicas")]
    replicas: u8,
    #[serde(default)]
    max_fuel: Option<u64>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    price: u64,
}

fn default_replicas() -> u8 {
    3
}

fn default_timeout_ms() -> u64 {
    60_000
}

/// Compiles, stores and submits a JavaScript job; answers `{id}` at once (follow it with `job/events`).
async fn submit_js(
    State(st): State<ApiState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    let req: SubmitJs =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("bad job: {e}")))?;
    let market = market(&st)?;
    let defaults = jobmesh_exec::Limits::default();
    let max_fuel = req.max_fuel.unwrap_or(defaults.fuel);
    let timeout = Duration::from_millis(req.timeout_ms);
    // Refused before anything is compiled or stored for it.
    JobRequest::check(req.replicas, max_fuel, timeout).map_err(market_err)?;
    let exec = st
        .exec
        .clone()
        .ok_or_else(|| ApiError::bad("this node has no job executor"))?;
    let plugin = Plugin::bundled().cid();
    let source = req.source;
    let code = tokio::task::spawn_blocking(move || exec.compile_js(&plugin, "job.js", &source))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            jobmesh_exec::ExecError::Syntax(_) => ApiError::bad(e),
            e => ApiError::internal(e),
        })?;
    let code = JobCode::Js(code).to_bytes();
    let input = req.input.into_bytes();
    let store = st.node.store().clone();
    let (code_cid, input_cid) = tokio::task::spawn_blocking(move || {
        let profile = Profile::by_name("kubo").map_err(|e| e.to_string())?;
        let c = store
            .add_file(code.as_slice(), &profile)
            .map_err(|e| e.to_string())?;
        let i = store
            .add_file(input.as_slice(), &profile)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((c.root, i.root))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    provide_later(&st.node, code_cid);
    provide_later(&st.node, input_cid);
    let id = market
        .submit(JobRequest {
            kind: CodeKind::JavyBytecode,
            plugin: Some(plugin),
            code: code_cid,
            input: input_cid,
            limits: JobLimits {
                max_fuel,
                memory_bytes: defaults.memory_bytes,
                output_bytes: defaults.output_bytes,
                stderr_bytes: defaults.stderr_bytes,
            },
            replicas: req.replicas,
            price_wei_per_mfuel: req.price,
            verifier: None,
            timeout,
            error_rate: None,
        })
        .await
        .map_err(market_err)?;
    tracing::info!(job = %id.to_hex(), "job submitted from the dashboard");
    Ok(Json(json!({
        "id": id.to_hex(),
        "code": code_cid.to_string(),
        "input": input_cid.to_string(),
    })))
}

type Q = Query<HashMap<String, String>>;

/// Server-sent events of a job: its current status, then each change, ending with the terminal one.
async fn events(State(st): State<ApiState>, q: Q) -> ApiResult<impl IntoResponse> {
    let market = market(&st)?;
    let id = JobId::from_hex(arg(&q, "arg")?).map_err(ApiError::bad)?;
    // Subscribe before reading the status, so no change falls in between.
    let rx = market.watch();
    let first = market.status(&id).map_err(market_err)?;
    let hex = first.id.clone();
    let done = first.finished;
    let first =
        futures::stream::once(async move { Ok(Event::default().data(json!(first).to_string())) });
    let rest = futures::stream::unfold((rx, hex, done), |(mut rx, hex, done)| async move {
        if done {
            return None;
        }
        loop {
            match rx.recv().await {
                Ok(s) if s.id == hex => {
                    let finished = s.finished;
                    let ev = Event::default().data(json!(s).to_string());
                    return Some((Ok::<_, Infallible>(ev), (rx, hex, finished)));
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    use futures::StreamExt;
    Ok(Sse::new(first.chain(rest)).keep_alive(KeepAlive::default()))
}
