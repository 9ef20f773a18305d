//! The store commands a running node serves for its own CLI (`jobmesh block|pin|repo …` while the node holds the
//! sled store): each answers the same JSON the command prints with `--json` when it opens the store itself.
//!
//! Owns: these handlers. Must not touch: anything beyond the node's store.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use jobmesh_store::{cid_of, dag, Cid, HashAlg, Store, DAG_PB, RAW};
use serde_json::{json, Value};

use super::{cid_arg, ApiError, ApiResult, ApiState, Q};

/// Runs a store operation on a blocking thread; a store error is the caller's 400 with its message.
async fn on_store<T: Send + 'static>(
    st: &ApiState,
    op: impl FnOnce(&Store) -> Result<T, jobmesh_store::StoreError> + Send + 'static,
) -> ApiResult<T> {
    let store = st.node.store().clone();
    tokio::task::spawn_blocking(move || op(&store))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::bad)
}

/// `pin/ls`: `{"pins": [cid…]}`.
pub(super) async fn pin_ls(State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let pins = on_store(&st, |s| s.pins()).await?;
    let pins: Vec<String> = pins.iter().map(Cid::to_string).collect();
    Ok(Json(json!({ "pins": pins })))
}

/// `pin/rm?arg=<cid>`: `{"unpinned": cid}`; a CID that is not pinned is a 400.
pub(super) async fn pin_rm(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let cid = cid_arg(&q)?;
    if !on_store(&st, move |s| s.unpin(&cid)).await? {
        return Err(ApiError::bad(format!("{cid} is not pinned")));
    }
    Ok(Json(json!({ "unpinned": cid.to_string() })))
}

/// `repo/gc`: removes every block no pin keeps.
pub(super) async fn repo_gc(State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let stats = on_store(&st, |s| s.gc()).await?;
    Ok(Json(json!({
        "removed_blocks": stats.removed_blocks,
        "removed_bytes": stats.removed_bytes,
        "kept_blocks": stats.kept_blocks,
    })))
}

/// `repo/verify`: re-hashes every block and checks that every pin is complete.
pub(super) async fn repo_verify(State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let r = on_store(&st, |s| s.verify()).await?;
    let list = |cids: &[Cid]| cids.iter().map(Cid::to_string).collect::<Vec<_>>();
    Ok(Json(json!({
        "ok": r.ok,
        "corrupt": list(&r.corrupt),
        "incomplete_pins": list(&r.incomplete_pins),
    })))
}

/// `block/put?codec=raw|dag-pb&hash=sha2-256|blake3`: stores the body (at most the API's body limit) as one
/// block, refused if it is not valid for its codec.
pub(super) async fn block_put(
    State(st): State<ApiState>,
    q: Q,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let codec = match q.get("codec").map(String::as_str).unwrap_or("raw") {
        "raw" => RAW,
        "dag-pb" => DAG_PB,
        other => {
            return Err(ApiError::bad(format!(
                "unknown codec {other:?} (raw or dag-pb)"
            )))
        }
    };
    let hash: HashAlg = q
        .get("hash")
        .map(String::as_str)
        .unwrap_or("sha2-256")
        .parse()
        .map_err(ApiError::bad)?;
    let cid = cid_of(codec, hash, &body);
    dag::links(&cid, &body)
        .map_err(|e| ApiError::bad(format!("not a valid block for that codec: {e}")))?;
    let size = body.len();
    on_store(&st, move |s| s.put(&cid, &body).and_then(|_| s.flush())).await?;
    Ok(Json(json!({ "cid": cid.to_string(), "size": size })))
}

/// `block/stat?arg=<cid>`: the size of a local block.
pub(super) async fn block_stat(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let cid = cid_arg(&q)?;
    let block = on_store(&st, move |s| s.get_required(&cid)).await?;
    Ok(Json(json!({ "cid": cid.to_string(), "size": block.len() })))
}

/// `repo/stat` for the CLI: blocks, bytes and pins.
pub(super) async fn repo_stat(State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let (blocks, bytes, pins) = on_store(&st, |s| Ok((s.usage()?, s.pins()?.len())))
        .await
        .map(|((b, n), p)| (b, n, p))?;
    // `NumObjects`/`RepoSize` as kubo names them, for the dashboard.
    Ok(Json(json!({
        "blocks": blocks, "bytes": bytes, "pins": pins, "NumObjects": blocks, "RepoSize": bytes,
    })))
}
