//! The running node's local control API: HTTP on `--api` (default [`DEFAULT_API`]), shaped like kubo's
//! RPC (`POST /api/v0/<command>?arg=…`, JSON answers, errors as `{"Message": …}`).
//!
//! While a node runs it owns the sled store, so `jobmesh add/cat/get/pin`, `id`, `swarm …` and
//! `dht …` talk to it through this API ([`client`]); the node writes the API's address to
//! `<data-dir>/api` when it starts and removes the file when it stops.

// Store errors carry the CID they are about (~136 bytes) and are on cold paths, as in jobmesh_store.
#![allow(clippy::result_large_err)]

pub mod client;
mod dashboard;
mod gateway;
pub mod guard;
mod jobs;
mod receipts;
mod repo;
mod settlement;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use jobmesh_p2p::{Mesh, Multiaddr};
use jobmesh_store::unixfs::{self, Profile};
use jobmesh_store::{parse_cid, HashAlg};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

/// The API address used when `--api` is not given.
pub const DEFAULT_API: &str = "127.0.0.1:5101";

/// File in the data directory holding the running node's API address.
pub const API_FILE: &str = "api";

/// File in the data directory holding the API token (owner-only), when the node was started with one.
pub const TOKEN_FILE: &str = "api.token";

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    /// The node's swarm.
    pub node: Mesh,
    /// Default timeout of fetches from the mesh (`?timeout=<secs>` overrides it).
    pub fetch_timeout: Duration,
    /// How long a gateway request waits for content from the mesh before answering 504.
    pub gateway_timeout: Duration,
    /// Notified by `/api/v0/shutdown`.
    pub shutdown: Arc<Notify>,
    /// The node's market (jobs submitted here, and run here if it is a worker).
    pub market: Option<crate::market::Market>,
    /// The node's settlement, if it settles on a chain.
    pub settler: Option<crate::settlement::Settler>,
    /// The job executor (the dashboard compiles JavaScript with it).
    pub exec: Option<Arc<jobmesh_exec::Executor>>,
    /// When set, every request must carry it (`Authorization: Bearer <token>`; never in the URL).
    pub token: Option<Arc<str>>,
    /// Which hosts and origins may call the API ([`guard`]).
    pub access: Arc<guard::AccessPolicy>,
}

/// The largest request body a handler reads into memory (a gossip message is at most 1 MiB too). Uploads
/// (`add`) stream to the store and are not bound by it; the dashboard's `job/submit-js` has its own limit.
pub const MAX_REQUEST_BODY: usize = 1 << 20;

/// An API error: an HTTP status and a one-line message.
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(msg: impl std::fmt::Display) -> Self {
        ApiError(StatusCode::BAD_REQUEST, msg.to_string())
    }
    fn internal(msg: impl std::fmt::Display) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, msg.to_string())
    }
    /// A failed fetch from the mesh: 504 when nobody delivered in time (the content may not exist anywhere),
    /// 500 for anything else.
    fn fetch(e: jobmesh_p2p::Error) -> Self {
        match e {
            jobmesh_p2p::Error::Timeout { .. } => {
                ApiError(StatusCode::GATEWAY_TIMEOUT, e.to_string())
            }
            e => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({ "Message": self.1, "Code": 0, "Type": "error" })),
        )
            .into_response()
    }
}

type Q = Query<HashMap<String, String>>;
type ApiResult<T> = Result<T, ApiError>;

fn arg<'a>(q: &'a Q, name: &str) -> ApiResult<&'a str> {
    q.get(name)
        .map(String::as_str)
        .ok_or_else(|| ApiError::bad(format!("missing argument {name:?}")))
}

fn cid_arg(q: &Q) -> ApiResult<jobmesh_store::Cid> {
    parse_cid(arg(q, "arg")?).map_err(ApiError::bad)
}

fn timeout_arg(st: &ApiState, q: &Q) -> ApiResult<Duration> {
    match q.get("timeout") {
        None => Ok(st.fetch_timeout),
        Some(t) => t
            .trim_end_matches('s')
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| ApiError::bad(format!("bad timeout {t:?} (seconds expected)"))),
    }
}

/// The router of the control API, behind its [`guard`] (host, origin and content-type checks, which must see
/// a request before routing: they turn a subdomain-gateway request into a gateway path).
pub fn router(state: ApiState) -> Router {
    let access = state.access.clone();
    let routes = Router::new()
        .route("/api/v0/id", post(id))
        .route("/api/v0/swarm/peers", post(swarm_peers))
        .route("/api/v0/swarm/connect", post(swarm_connect))
        .route("/api/v0/dht/findprovs", post(findprovs))
        .route("/api/v0/dht/provide", post(provide))
        .route("/api/v0/add", post(add))
        .route("/api/v0/cat", post(cat))
        .route("/api/v0/get", post(export_car))
        .route("/api/v0/dag/export", post(export_car))
        .route("/api/v0/dag/import", post(dag_import))
        .route("/api/v0/block/get", post(block_get))
        .route("/api/v0/pin/add", post(pin_add))
        .route("/api/v0/pin/rm", post(repo::pin_rm))
        .route("/api/v0/pin/ls", post(repo::pin_ls))
        .route("/api/v0/block/put", post(repo::block_put))
        .route("/api/v0/block/stat", post(repo::block_stat))
        .route("/api/v0/repo/gc", post(repo::repo_gc))
        .route("/api/v0/repo/verify", post(repo::repo_verify))
        .route(
            "/api/v0/repo/stat",
            get(repo::repo_stat).post(repo::repo_stat),
        )
        .route("/api/v0/pubsub/pub", post(pubsub_pub))
        .route("/api/v0/pubsub/sub", post(pubsub_sub))
        .route("/api/v0/shutdown", post(shutdown))
        .route("/api/v0/job/submit", post(jobs::submit))
        .route("/api/v0/job/watch", post(jobs::watch))
        .route("/api/v0/job/status", post(jobs::status))
        .route("/api/v0/job/list", post(jobs::list))
        .route("/api/v0/job/cancel", post(jobs::cancel))
        .route("/api/v0/job/receipt", post(receipts::receipt))
        .route("/api/v0/job/verify", post(receipts::verify))
        .route("/api/v0/market/ledger", post(jobs::ledger))
        .route("/api/v0/settlement/status", post(settlement::status))
        .route("/api/v0/settlement/lotteries", post(settlement::lotteries))
        .route("/api/v0/settlement/deposit", post(settlement::deposit))
        .route("/api/v0/settlement/withdraw", post(settlement::withdraw))
        .route("/api/v0/settlement/settle", post(settlement::settle_now))
        .merge(gateway::routes())
        .route("/metrics", axum::routing::get(metrics))
        .route("/api/v0/openapi.json", axum::routing::get(openapi))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .merge(dashboard::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state);
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn_with_state(access, guard::guard))
}

/// Refuses requests without the node's token, when it has one (a constant-time comparison).
async fn require_token(
    State(st): State<ApiState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(token) = &st.token else {
        return next.run(req).await;
    };
    // The dashboard page and its assets hold no data; the page sends the token on its API calls.
    let path = req.uri().path();
    if req.method() == axum::http::Method::GET && (path == "/" || path.starts_with("/dashboard/")) {
        return next.run(req).await;
    }
    // Only from the header: a token in a URL ends up in histories, logs and `Referer`s.
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or_default();
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        next.run(req).await
    } else {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "this node's API needs its token (Authorization: Bearer <token>)".into(),
        )
        .into_response()
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Binds the API; the returned address is the real one (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for the API on {addr}: {e}"))?;
    let a = l.local_addr()?;
    Ok((l, a))
}

async fn id(State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let addrs = st.node.listen_addrs().await.map_err(ApiError::internal)?;
    let nat = st.node.nat_status().await.map_err(ApiError::internal)?;
    let strings =
        |v: &[jobmesh_p2p::Multiaddr]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    Ok(Json(json!({
        "ID": st.node.peer_id().to_string(),
        "Addresses": strings(&addrs),
        "AgentVersion": jobmesh_p2p::AGENT_VERSION,
        "Reachability": nat.reachability.to_string(),
        "PublicAddresses": strings(&nat.public_addrs),
        "UnreachableAddresses": strings(&nat.unreachable_addrs),
        "Relays": nat.relays.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "RelayServing": nat.relay_serving,
        "RelayedFor": nat.relayed_for,
        "HolePunches": nat.hole_punches,
        "HolePunchFailures": nat.hole_punch_failures,
    })))
}

async fn swarm_peers(State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let mut peers = st.node.peers().await.map_err(ApiError::internal)?;
    peers.sort_by_key(|p| p.peer_id.to_string());
    let list: Vec<Value> = peers
        .iter()
        .map(|p| {
            json!({
                "Peer": p.peer_id.to_string(),
                "Addr": p.addrs.first().map(ToString::to_string).unwrap_or_default(),
                "Agent": p.agent,
                "Score": p.gossip_score,
                "Direct": p.connections.iter().any(|c| !c.relayed),
                "Connections": p.connections.iter().map(|c| json!({
                    "Addr": c.addr.to_string(),
                    "Relayed": c.relayed,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "Peers": list })))
}

async fn swarm_connect(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let text = arg(&q, "arg")?;
    let addr: Multiaddr = text
        .parse()
        .map_err(|e| ApiError::bad(format!("invalid multiaddr {text:?}: {e}")))?;
    let peer = st
        .node
        .connect(addr, Duration::from_secs(15))
        .await
        .map_err(|e| match e {
            jobmesh_p2p::Error::Unsupported(_) => ApiError::bad(e),
            e => ApiError::internal(e),
        })?;
    Ok(Json(
        json!({ "Peer": peer.to_string(), "Strings": [format!("connect {peer} success")] }),
    ))
}

async fn findprovs(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let cid = cid_arg(&q)?;
    let t = timeout_arg(&st, &q)?.min(Duration::from_secs(60));
    let found = st
        .node
        .find_providers(cid, t)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        json!({ "Providers": found.iter().map(ToString::to_string).collect::<Vec<_>>() }),
    ))
}

async fn provide(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let cid = cid_arg(&q)?;
    st.node.provide(cid).await.map_err(ApiError::internal)?;
    Ok(Json(json!({ "Provided": cid.to_string() })))
}

/// Announces content the node added or pinned on the DHT in the background, by the node's provide strategy
/// (every block of the DAG, or its root). A lone node has nobody to tell; its records are announced when peers
/// come.
fn provide_later(node: &Mesh, cid: jobmesh_store::Cid) {
    let node = node.clone();
    tokio::spawn(async move { provide_dag_logged(&node, cid).await });
}

/// Announces the DAG under `root` on the DHT by the node's provide strategy ([`Mesh::provide_dag`]); a DAG
/// that cannot be walked is logged, not returned (this runs in the background).
pub async fn provide_dag_logged(node: &Mesh, root: jobmesh_store::Cid) {
    if let Err(e) = node.provide_dag(root).await {
        tracing::warn!(%root, error = %e, "cannot provide the DAG on the DHT");
    }
}

/// A blocking reader over body chunks arriving on a channel (the importer is synchronous).
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// A blocking reader of a request body (for the synchronous importers) and the task that feeds it.
fn body_reader(body: Body) -> (ChannelReader, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(16);
    let mut stream = body.into_data_stream();
    let pump = tokio::spawn(async move {
        while let Some(chunk) = stream.next().await {
            if tx.send(chunk.map_err(|e| e.to_string())).await.is_err() {
                break;
            }
        }
    });
    let reader = ChannelReader {
        rx,
        cur: Bytes::new(),
    };
    (reader, pump)
}

/// `dag/import`: a CARv1 body (streamed; every block checked, a bad CAR changes nothing), every root pinned and
/// announced; a root whose DAG the archive does not complete is an error, as in kubo. `jobmesh dag import` and `jobmesh add -r` use it while a node runs.
async fn dag_import(State(st): State<ApiState>, body: Body) -> ApiResult<Json<Value>> {
    let (reader, pump) = body_reader(body);
    let store = st.node.store().clone();
    let (imported, pinned) = tokio::task::spawn_blocking(move || {
        let imported = jobmesh_store::car::import(&store, reader)?;
        for root in &imported.roots {
            store.pin(root)?;
        }
        let pinned = imported.roots.clone();
        Ok::<_, jobmesh_store::StoreError>((imported, pinned))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::bad)?;
    pump.abort();
    for root in &pinned {
        provide_later(&st.node, *root);
    }
    Ok(Json(json!({
        "Roots": imported.roots.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "Pinned": pinned.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "Blocks": imported.blocks,
        "NewBlocks": imported.new_blocks,
    })))
}

async fn add(State(st): State<ApiState>, q: Q, body: Body) -> ApiResult<Json<Value>> {
    let profile = Profile::by_name(q.get("profile").map(String::as_str).unwrap_or("kubo"))
        .map_err(ApiError::bad)?;
    let hash: HashAlg = q
        .get("hash")
        .map(String::as_str)
        .unwrap_or("sha2-256")
        .parse()
        .map_err(ApiError::bad)?;
    let profile = profile.with_hash(hash).map_err(ApiError::bad)?;
    let (reader, pump) = body_reader(body);
    let store = st.node.store().clone();
    let profile_name = profile.name;
    let imported = tokio::task::spawn_blocking(move || store.add_file(reader, &profile))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    pump.abort();
    provide_later(&st.node, imported.root);
    Ok(Json(json!({
        "Hash": imported.root.to_string(),
        "Size": imported.size,
        "Blocks": imported.blocks,
        "Profile": profile_name,
    })))
}

/// Makes sure the whole DAG is local, fetching what is missing from the mesh.
async fn ensure_local(st: &ApiState, q: &Q) -> ApiResult<jobmesh_store::Cid> {
    let cid = cid_arg(q)?;
    let t = timeout_arg(st, q)?;
    st.node.fetch_dag(cid, t).await.map_err(ApiError::fetch)?;
    Ok(cid)
}

/// A `Write` that hands 1 MiB chunks to an HTTP response body.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(1 << 20),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 1 << 20 {
            self.send()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

async fn cat(State(st): State<ApiState>, q: Q) -> ApiResult<Response> {
    let cid = ensure_local(&st, &q).await?;
    let body = file_body(st.node.store(), cid).await?;
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(body)
        .map_err(ApiError::internal)
}

/// A local UnixFS file (or raw block) as a streamed body, read 1 MiB at a time with every block hash-checked.
/// An error before the first byte is an error answer; a later one cuts the stream.
async fn file_body(store: &jobmesh_store::Store, cid: jobmesh_store::Cid) -> ApiResult<Body> {
    blocking_body(store, move |store, w| {
        unixfs::cat(store, &cid, w).map(|_| ())
    })
    .await
}

/// The CARv1 of the whole DAG under `cid` (which must be local) as a streamed body.
async fn car_body(store: &jobmesh_store::Store, cid: jobmesh_store::Cid) -> ApiResult<Body> {
    blocking_body(store, move |store, w| {
        jobmesh_store::car::export(store, &cid, w).map(|_| ())
    })
    .await
}

/// A body written by `write` on a blocking thread, 1 MiB chunks at a time. An error before the first byte is an
/// error answer; a later one cuts the stream.
async fn blocking_body<F>(store: &jobmesh_store::Store, write: F) -> ApiResult<Body>
where
    F: FnOnce(&jobmesh_store::Store, &mut ChannelWriter) -> Result<(), jobmesh_store::StoreError>
        + Send
        + 'static,
{
    let (tx, mut rx) = mpsc::channel(4);
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(1 << 20),
        };
        let res = write(&store, &mut w).map_err(std::io::Error::other);
        let res = res.and_then(|()| std::io::Write::flush(&mut w));
        if let Err(e) = res {
            let _ = tx.blocking_send(Err(e));
        }
    });
    // The first chunk decides the status: an error before any byte is a clean error answer.
    let first = rx.recv().await;
    let first = match first {
        Some(Err(e)) => return Err(ApiError::internal(e)),
        other => other,
    };
    let stream = futures::stream::iter(first).chain(futures::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|x| (x, rx))
    }));
    Ok(Body::from_stream(stream))
}

/// `get` and `dag/export`: the DAG under `arg` as a CARv1 stream (`application/vnd.ipld.car`), fetched from the
/// mesh first where this node lacks it. The node never writes files for a caller: `jobmesh get` checks every
/// block of the CAR and writes the tree on its own side, as kubo's `get` streams a tar.
async fn export_car(State(st): State<ApiState>, q: Q) -> ApiResult<Response> {
    let cid = ensure_local(&st, &q).await?;
    let body = car_body(st.node.store(), cid).await?;
    Response::builder()
        .header("content-type", "application/vnd.ipld.car")
        .body(body)
        .map_err(ApiError::internal)
}

async fn block_get(State(st): State<ApiState>, q: Q) -> ApiResult<Vec<u8>> {
    let cid = cid_arg(&q)?;
    let t = timeout_arg(&st, &q)?;
    st.node.get_block(cid, t).await.map_err(ApiError::fetch)
}

async fn pin_add(State(st): State<ApiState>, q: Q) -> ApiResult<Json<Value>> {
    let cid = ensure_local(&st, &q).await?;
    let store = st.node.store().clone();
    tokio::task::spawn_blocking(move || store.pin(&cid).map_err(|e| e.to_string()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    provide_later(&st.node, cid);
    Ok(Json(json!({ "Pins": [cid.to_string()] })))
}

async fn pubsub_pub(State(st): State<ApiState>, q: Q, body: Bytes) -> ApiResult<Json<Value>> {
    let topic = arg(&q, "arg")?;
    st.node
        .publish(topic, body.to_vec())
        .await
        .map_err(|e| match e {
            // Nobody subscribed, or a message gossipsub refuses: the caller's to fix, not a server failure.
            jobmesh_p2p::Error::Gossip(_) => ApiError::bad(e),
            e => ApiError::internal(e),
        })?;
    Ok(Json(json!({ "Published": body.len() })))
}

/// Streams the messages of a topic as JSON lines: `{"from", "topic", "data"}` (data in hex; `from` is the
/// peer that forwarded the message: gossip authors are not verified here, see `jobmesh_p2p`'s hostile-peers
/// section).
async fn pubsub_sub(State(st): State<ApiState>, q: Q) -> ApiResult<Response> {
    let topic = arg(&q, "arg")?;
    let rx = st
        .node
        .subscribe(topic, None)
        .await
        .map_err(ApiError::internal)?;
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(m) => {
                    let line = json!({
                        "from": m.from.to_string(),
                        "topic": m.topic,
                        "data": hex::encode(&m.data),
                    });
                    let bytes = Bytes::from(format!("{line}\n"));
                    return Some((Ok::<_, std::io::Error>(bytes), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "pubsub subscriber lagging");
                }
                Err(_) => return None,
            }
        }
    });
    // An empty first line tells the client the subscription is in place.
    let hello = futures::stream::once(async { Ok(Bytes::from_static(b"{}\n")) });
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(hello.chain(stream)))
        .map_err(ApiError::internal)
}

/// The API's OpenAPI document (`docs/openapi.json`, checked in; a test keeps it in step with the routes).
pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

/// Prometheus metrics of the node (text exposition format).
async fn metrics(State(st): State<ApiState>) -> ApiResult<Response> {
    let peers = st.node.peers().await.map_err(ApiError::internal)?.len();
    let store = st.node.store().clone();
    let (store_blocks, store_bytes) =
        tokio::task::spawn_blocking(move || store.usage().map_err(ApiError::internal))
            .await
            .map_err(ApiError::internal)??;
    let mut jobs = std::collections::BTreeMap::new();
    let exec = match &st.market {
        Some(m) => {
            for job in m.list().map_err(ApiError::internal)? {
                *jobs.entry(job.phase).or_default() += 1;
            }
            m.exec_metrics().clone()
        }
        None => Default::default(),
    };
    let nat = st.node.nat_status().await.map_err(ApiError::internal)?;
    let mut snap = crate::metrics::Snapshot {
        peers,
        nat: Some(nat),
        jobs,
        store_blocks,
        store_bytes,
        ..Default::default()
    };
    if let Some(s) = &st.settler {
        snap.add_lotteries(&s.records().map_err(ApiError::internal)?);
    }
    let text = crate::metrics::render(st.node.stats(), &exec, &snap);
    Response::builder()
        .header(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .body(Body::from(text))
        .map_err(ApiError::internal)
}

async fn shutdown(State(st): State<ApiState>) -> Json<Value> {
    st.shutdown.notify_one();
    Json(json!({ "Shutdown": true }))
}

#[cfg(test)]
mod tests {
    /// Every route the router serves is in the OpenAPI document, and the document names no route that is gone.
    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        // (The dashboard's page and asset routes are not API: left out.)
        let sources = [
            include_str!("mod.rs"),
            include_str!("gateway.rs"),
            include_str!("dashboard.rs"),
        ];
        let mut routes: Vec<String> = Vec::new();
        for src in sources {
            for part in src.split(".route(").skip(1) {
                let Some(rest) = part.trim_start().strip_prefix('"') else {
                    continue;
                };
                let path = rest.split('"').next().unwrap_or_default();
                // axum's `{*path}` wildcard is `{path}` in OpenAPI.
                routes.push(path.replace("{*", "{"));
            }
        }
        routes.retain(|r| r.starts_with('/') && r != "/" && !r.starts_with("/dashboard/"));
        routes.retain(|r| r != "/api/v0/openapi.json");
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).expect("valid JSON");
        let paths = doc["paths"].as_object().expect("paths");
        for r in &routes {
            assert!(
                paths.contains_key(r),
                "route {r} is missing from docs/openapi.json"
            );
        }
        for p in paths.keys() {
            assert!(
                routes.contains(p),
                "docs/openapi.json lists {p}, which no route serves"
            );
        }
    }
}
