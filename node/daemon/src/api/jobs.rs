//! The market's part of the control API: submit a job and follow it, status, list, cancel.
//!
//! `job/submit` and `job/watch` answer with a stream of JSON lines, one [`JobStatus`] per change, ending
//! with the job's terminal status.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;
use jobmesh_store::parse_cid;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::{arg, ApiError, ApiResult, ApiState};
use crate::market::messages::{CodeKind, JobId, JobLimits};
use crate::market::{JobRequest, JobStatus, Market, MarketError};

type Q = Query<HashMap<String, String>>;

pub(super) fn market(st: &ApiState) -> ApiResult<&Market> {
    st.market
        .as_ref()
        .ok_or_else(|| ApiError::bad("this node runs no market"))
}

pub(super) fn market_err(e: MarketError) -> ApiError {
    match e {
        MarketError::Invalid(_) | MarketError::UnknownJob(_) => ApiError::bad(e),
        e => ApiError::internal(e),
    }
}

fn num<T: std::str::FromStr>(q: &Q, name: &str, default: T) -> ApiResult<T> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::bad(format!("bad {name} {v:?}: a number expected"))),
    }
}

fn job_id(q: &Q) -> ApiResult<JobId> {
    JobId::from_hex(arg(q, "arg")?).map_err(ApiError::bad)
}

/// Parses the job request of `job/submit`.
fn job_request(q: &Q) -> ApiResult<JobRequest> {
    let cid = |name: &str| -> ApiResult<Option<jobmesh_store::Cid>> {
        q.get(name)
            .map(|v| parse_cid(v).map_err(|e| ApiError::bad(format!("{name}: {e}"))))
            .transpose()
    };
    let kind = match q.get("kind").map(String::as_str).unwrap_or("js") {
        "js" => CodeKind::JavyBytecode,
        "wasm" => CodeKind::WasiCommand,
        other => {
            return Err(ApiError::bad(format!(
                "unknown kind {other:?} (js or wasm)"
            )))
        }
    };
    let defaults = jobmesh_exec::Limits::default();
    Ok(JobRequest {
        kind,
        plugin: cid("plugin")?,
        code: cid("code")?.ok_or_else(|| ApiError::bad("missing argument \"code\""))?,
        input: cid("input")?.ok_or_else(|| ApiError::bad("missing argument \"input\""))?,
        limits: JobLimits {
            max_fuel: num(q, "max_fuel", defaults.fuel)?,
            memory_bytes: num(q, "memory", defaults.memory_bytes)?,
            output_bytes: num(q, "output_limit", defaults.output_bytes)?,
            stderr_bytes: num(q, "stderr_limit", defaults.stderr_bytes)?,
        },
        replicas: num(q, "replicas", 3)?,
        price_wei_per_mfuel: num(q, "price", 0)?,
        verifier: cid("verifier")?,
        timeout: Duration::from_millis(num(q, "timeout_ms", 60_000)?),
        error_rate: q
            .get("error_rate")
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| ApiError::bad(format!("bad error_rate {v:?}: a number expected")))
            })
            .transpose()?,
    })
}

/// Streams a job's status lines until it is over: the current status first, then each change.
fn status_stream(market: &Market, first: JobStatus) -> ApiResult<Response> {
    let rx = market.watch();
    let id = first.id.clone();
    let done = first.finished;
    let first_line = futures::stream::once(async move { line(&first) });
    let rest = futures::stream::unfold((rx, id, done), |(mut rx, id, done)| async move {
        if done {
            return None;
        }
        loop {
            match rx.recv().await {
                Ok(s) if s.id == id => {
                    let finished = s.finished;
                    return Some((line(&s), (rx, id, finished)));
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    use futures::StreamExt;
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(first_line.chain(rest)))
        .map_err(ApiError::internal)
}

fn line(s: &JobStatus) -> Result<Bytes, std::io::Error> {
    Ok(Bytes::from(format!("{}\n", json!(s))))
}

pub(super) async fn submit(State(st): State<ApiState>, q: Q) -> ApiResult<Response> {
    let market = market(&st)?;
    let req = job_request(&q)?;
    // Watch before submitting, so no change is missed.
    let rx = market.watch();
    let id = market.submit(req).await.map_err(market_err)?;
    drop(rx);
    let status = market.status(&id).map_err(market_err)?;
    status_stream(market, status)
}

pub(super) async fn watch(State(st): State<ApiState>, q: Q) -> ApiResult<Response> {
    let market = market(&st)?;
    let status = market.status(&job_id(&q)?).map_err(market_err)?;
    status_stream(market, status)
}

pub(super) async fn status(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let s = market(&st)?.status(&job_id(&q)?).map_err(market_err)?;
    Ok(Json(json!(s)))
}

pub(super) async fn list(State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let jobs = market(&st)?.list().map_err(market_err)?;
    Ok(Json(json!({ "Jobs": jobs })))
}

pub(super) async fn cancel(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let reason = q
        .get("reason")
        .cloned()
        .unwrap_or_else(|| "cancelled by the user".into());
    let s = market(&st)?
        .cancel(&job_id(&q)?, &reason)
        .await
        .map_err(market_err)?;
    Ok(Json(json!(s)))
}

/// What this node owes each worker and the reputation it keeps of each.
pub(super) async fn ledger(State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let db = market(&st)?.db();
    let owed: Vec<Value> = db
        .ledger()
        .map_err(ApiError::internal)?
        .iter()
        .map(|(p, wei)| json!({ "peer": p.to_string(), "owed_wei": wei.to_string() }))
        .collect();
    let reputation: Vec<Value> = db
        .reputations()
        .map_err(ApiError::internal)?
        .iter()
        .map(|(p, r)| json!({ "peer": p.to_string(), "reputation": r }))
        .collect();
    Ok(Json(json!({ "Owed": owed, "Reputation": reputation })))
}
