//! Receipts in the control API: a finished job's receipt (`job/receipt`) and checking any receipt by re-running
//! its job here (`job/verify`, also the dashboard's "verify" button). Both are POST routes behind the same guard
//! as every state-changing route: a verification fetches blocks and burns CPU.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::Json;
use jobmesh_store::parse_cid;
use serde_json::{json, Value};

use super::jobs::{market, market_err};
use super::{arg, ApiError, ApiResult, ApiState};
use crate::market::messages::JobId;
use crate::market::receipt_verify::VerifyError;

type Q = Query<HashMap<String, String>>;

/// Longest a verification may wait for each block it fetches, unless the caller asks for less.
const MAX_FETCH_TIMEOUT_MS: u64 = 120_000;

/// `job/receipt?arg=<job id>`: the receipt's CID, size and readable form.
pub(super) async fn receipt(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let market = market(&st)?;
    let id = JobId::from_hex(arg(&q, "arg")?).map_err(ApiError::bad)?;
    let status = market.status(&id).map_err(market_err)?;
    let Some(cid) = status.receipt else {
        return Err(ApiError::bad(format!(
            "job {} has no receipt yet (it is {})",
            status.id, status.phase
        )));
    };
    let cid = parse_cid(&cid).map_err(ApiError::internal)?;
    let size = market
        .node()
        .store()
        .get(&cid)
        .map_err(ApiError::internal)?
        .map_or(0, |b| b.len());
    let decoded = market
        .receipt(cid, Duration::from_secs(5))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "Receipt": cid.to_string(),
        "Bytes": size,
        "Decoded": decoded.to_json(),
    })))
}

/// `job/verify?arg=<receipt cid>[&timeout_ms=N]`: the verification report (`Matches` says whether the re-run
/// agreed); a receipt that cannot be checked is a 400 with one line.
pub(super) async fn verify(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let market = market(&st)?;
    let cid = parse_cid(arg(&q, "arg")?).map_err(|e| ApiError::bad(format!("receipt: {e}")))?;
    let timeout_ms = match q.get("timeout_ms") {
        None => 30_000,
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ApiError::bad(format!("bad timeout_ms {v:?}: a number expected")))?,
    }
    .clamp(1, MAX_FETCH_TIMEOUT_MS);
    match market
        .verify_receipt(cid, Duration::from_millis(timeout_ms))
        .await
    {
        Ok(report) => Ok(Json(json!(report))),
        Err(e @ (VerifyError::Record(_) | VerifyError::Task(_))) => Err(ApiError::internal(e)),
        Err(e) => Err(ApiError::bad(e)),
    }
}
