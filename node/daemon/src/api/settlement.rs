//! `/api/v0/settlement/*`: the node's deposit, its lotteries (paid and won), and deposit/withdraw/settle-now.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use jobmesh_contracts::alloy::primitives::U256;
use jobmesh_contracts::SettlementError;
use serde_json::{json, Value};

use super::{arg, ApiError, ApiResult, ApiState, Q};
use crate::settlement::{Settler, SettlerError};

fn settler(st: &ApiState) -> ApiResult<&Settler> {
    st.settler.as_ref().ok_or_else(|| {
        ApiError::bad("this node does not settle (start it with --rpc-url, --chain-id and a key)")
    })
}

fn settle_err(e: SettlerError) -> ApiError {
    match &e {
        SettlerError::Chain(SettlementError::Reverted { .. } | SettlementError::Invalid(_)) => {
            ApiError::bad(e)
        }
        SettlerError::Chain(_) => ApiError(StatusCode::BAD_GATEWAY, e.to_string()),
        _ => ApiError::internal(e),
    }
}

fn amount_arg(q: &Q) -> ApiResult<U256> {
    crate::settlement::parse_amount(arg(q, "amount")?).map_err(ApiError::bad)
}

/// The deposit, what is reserved, owed, paid and won, and every lottery.
pub(super) async fn status(State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let report = settler(&st)?.report().await.map_err(settle_err)?;
    Ok(Json(json!(report)))
}

/// Every lottery this node pays or is paid by, newest first.
pub(super) async fn lotteries(State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let report = settler(&st)?.report().await.map_err(settle_err)?;
    Ok(Json(json!({ "Lotteries": report.lotteries })))
}

/// Deposits `amount` (`0.1eth`, `20gwei`, wei) into this node's settlement account.
pub(super) async fn deposit(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let amount = amount_arg(&q)?;
    let account = settler(&st)?.deposit(amount).await.map_err(settle_err)?;
    Ok(Json(
        json!({ "deposited": amount.to_string(), "account": account }),
    ))
}

/// Requests a time-locked withdrawal of `amount`.
pub(super) async fn withdraw(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let amount = amount_arg(&q)?;
    let account = settler(&st)?
        .request_withdrawal(amount)
        .await
        .map_err(settle_err)?;
    Ok(Json(
        json!({ "requested": amount.to_string(), "account": account }),
    ))
}

/// Runs a settlement round now (commit, notify, claim, build a lottery if one is due).
pub(super) async fn settle_now(State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let s = settler(&st)?;
    s.round().await.map_err(settle_err)?;
    let report = s.report().await.map_err(settle_err)?;
    Ok(Json(json!(report)))
}
