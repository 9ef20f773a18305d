//! A long-lived node's whole life from a [`NodeConfig`] ([`run`]): bind the control API, check the settlement
//! contract, [`launch`] the swarm, market and settlement, write the API address and token files, re-announce the
//! pins, serve the API until Ctrl-C, SIGTERM or `/api/v0/shutdown`, then shut down in order. Each step is a
//! named phase below. `jobmesh node start` builds the config from its arguments and prints the banner in
//! [`run`]'s `on_started`; an embedder (the simulator) can serve a launched member's API with [`serve_api`].
//!
//! Owns: the order of start and stop, the files in the data directory that say a node runs. Must not touch:
//! argument parsing or printing (the caller prints, through `on_started`).

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jobmesh_contracts::alloy::primitives::Address;
use jobmesh_contracts::SettlementError;
use jobmesh_exec::Executor;
use jobmesh_p2p::{Mesh, Multiaddr};
use jobmesh_store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::api::guard::{AccessPolicy, BadOrigin};
use crate::api::{self, ApiState, API_FILE, TOKEN_FILE};
use crate::home::Home;
use crate::launch::{launch, LaunchError, Launched};
use crate::market::db::MarketDb;
use crate::market::MarketConfig;
use crate::settlement::{Chain, Settler, SettlerConfig};

/// How long the swarm and the API server each get to stop.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The control API's settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where to listen (port 0 picks one).
    pub addr: SocketAddr,
    /// API commands (`cat`, `get`, `pin add`) without a `timeout` argument wait this long for the mesh.
    pub fetch_timeout: Duration,
    /// Gateway requests wait this long for the mesh.
    pub gateway_timeout: Duration,
    /// A secret every request must carry (`Authorization: Bearer <token>`).
    pub token: Option<String>,
    /// Web origins allowed besides the API's own.
    pub allow_origins: Vec<String>,
}

/// Everything a node runs with.
pub struct NodeConfig {
    /// The data directory (the API address and token files are written there).
    pub home: Home,
    /// The swarm's settings.
    pub p2p: jobmesh_p2p::Config,
    /// The block store.
    pub store: Store,
    /// The market's database.
    pub db: MarketDb,
    /// The job executor.
    pub exec: Arc<Executor>,
    /// The market's settings.
    pub market: MarketConfig,
    /// The chain to settle on and the lottery policy, if the node settles.
    pub settlement: Option<(Chain, SettlerConfig)>,
    /// The control API.
    pub api: ApiConfig,
}

/// What a started node shows its caller (to print a banner).
pub struct Started<'a> {
    /// The swarm.
    pub node: &'a Mesh,
    /// Its listen addresses.
    pub addrs: &'a [Multiaddr],
    /// The API's real address.
    pub api: SocketAddr,
    /// Whether it runs jobs for others.
    pub worker: bool,
    /// Its settlement, if it settles.
    pub settler: Option<&'a Settler>,
}

/// Why a node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The API address cannot be bound.
    #[error("cannot listen for the API on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An allowed origin is malformed.
    #[error(transparent)]
    Origin(#[from] BadOrigin),
    /// The chain could not be read.
    #[error("cannot read the settlement contract: {0}")]
    Chain(#[source] Box<SettlementError>),
    /// The configured contract is not ours.
    #[error("the contract at {0} is not the jobmesh settlement contract")]
    NotOurContract(Address),
    /// The swarm, market or settlement did not start.
    #[error(transparent)]
    Launch(Box<LaunchError>),
    /// The swarm stopped answering.
    #[error(transparent)]
    Swarm(#[from] jobmesh_p2p::Error),
    /// A file in the data directory could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The caller's `on_started` failed (e.g. its stdout is closed).
    #[error("cannot announce the started node")]
    Started(#[source] std::io::Error),
    /// The API server failed.
    #[error("the control API failed: {0}")]
    Server(#[source] std::io::Error),
    /// The API server's task panicked.
    #[error("the control API task failed: {0}")]
    ServerTask(#[source] tokio::task::JoinError),
    /// The block store could not be flushed at the end.
    #[error("cannot flush the block store: {0}")]
    Flush(#[source] Box<StoreError>),
}

impl From<SettlementError> for DaemonError {
    fn from(e: SettlementError) -> Self {
        DaemonError::Chain(Box::new(e))
    }
}

impl From<LaunchError> for DaemonError {
    fn from(e: LaunchError) -> Self {
        DaemonError::Launch(Box::new(e))
    }
}

/// A running control API.
pub struct RunningApi {
    /// Its real address.
    pub addr: SocketAddr,
    /// Notified by `/api/v0/shutdown`.
    pub shutdown: Arc<Notify>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningApi {
    /// Stops the server gracefully (open streams get 5 s once the swarm has stopped).
    pub async fn stop(self) -> Result<(), DaemonError> {
        let _ = self.stop.send(());
        match tokio::time::timeout(STOP_GRACE, self.server).await {
            Ok(Ok(r)) => r.map_err(DaemonError::Server),
            Ok(Err(e)) => Err(DaemonError::ServerTask(e)),
            Err(_) => Ok(()),
        }
    }
}

/// Runs a node until Ctrl-C, SIGTERM or `/api/v0/shutdown`. `on_started` is called once it runs (after the
/// API files are written); its error stops the node at once, its files removed.
pub async fn run(
    cfg: NodeConfig,
    on_started: impl FnOnce(&Started<'_>) -> std::io::Result<()>,
) -> Result<(), DaemonError> {
    let (listener, access) = bind_api(&cfg.api).await?;
    if let Some((chain, _)) = &cfg.settlement {
        check_contract(chain).await?;
    }
    let worker = cfg.market.worker.is_some();
    let exec = cfg.exec.clone();
    let launched = launch(
        cfg.p2p,
        cfg.store.clone(),
        cfg.db,
        cfg.exec,
        cfg.market,
        cfg.settlement,
    )
    .await?;
    let addrs = launched.node.listen_addrs().await?;
    let api_bound = listener.local_addr().map_err(|source| DaemonError::Bind {
        addr: cfg.api.addr,
        source,
    })?;
    let files = RunFiles::write(&cfg.home, api_bound, cfg.api.token.as_deref())?;
    reannounce_pins(&launched.node, &cfg.store);
    let started = Started {
        node: &launched.node,
        addrs: &addrs,
        api: api_bound,
        worker,
        settler: launched.settler.as_ref(),
    };
    // A failed announcement (a closed stdout) ends the node here: it is not left half-announced.
    if let Err(e) = on_started(&started) {
        files.remove();
        return Err(DaemonError::Started(e));
    }
    info!(peer = %launched.node.peer_id(), api = %api_bound, "node running");
    let api = serve_api(listener, access, &launched, Some(exec), &cfg.api);
    wait_for_stop(&api.shutdown).await;
    shut_down(launched, api, files, &cfg.store).await
}

/// Phase 1: binds the API (port 0 picks one) and builds its access policy for the real address.
async fn bind_api(api: &ApiConfig) -> Result<(TcpListener, Arc<AccessPolicy>), DaemonError> {
    let bind_error = |source| DaemonError::Bind {
        addr: api.addr,
        source,
    };
    let listener = TcpListener::bind(api.addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let access = Arc::new(AccessPolicy::new(bound, &api.allow_origins)?);
    Ok((listener, access))
}

/// Phase 2: a JSON-RPC chain must hold the jobmesh settlement contract at the configured address.
async fn check_contract(chain: &Chain) -> Result<(), DaemonError> {
    use jobmesh_contracts::Settlement as _;
    let Chain::Rpc(client) = chain else {
        return Ok(());
    };
    let code = client.code_at(client.contract()).await?;
    if !jobmesh_contracts::runtime_code_matches(&code) {
        return Err(DaemonError::NotOurContract(client.contract()));
    }
    Ok(())
}

/// The files that tell the CLI on this data directory that a node runs, and how to reach its API.
struct RunFiles {
    api: PathBuf,
    token: PathBuf,
}

impl RunFiles {
    /// Phase 3: writes the token (owner-only; a stale one is removed) and then the API address.
    fn write(home: &Home, bound: SocketAddr, token: Option<&str>) -> Result<RunFiles, DaemonError> {
        let files = RunFiles {
            api: home.root().join(API_FILE),
            token: home.root().join(TOKEN_FILE),
        };
        match token {
            Some(t) => write_private(&files.token, t)?,
            None => {
                let _ = std::fs::remove_file(&files.token);
            }
        }
        std::fs::write(&files.api, bound.to_string()).map_err(|source| DaemonError::Write {
            path: files.api.clone(),
            source,
        })?;
        Ok(files)
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.api);
        let _ = std::fs::remove_file(&self.token);
    }
}

/// Phase 4: re-announces what this node keeps (pins) now that the records of a previous run are gone: one
/// pin after the other, each by the provide strategy (every block, or the root).
fn reannounce_pins(node: &Mesh, store: &Store) {
    let node = node.clone();
    let pins = store.pins().unwrap_or_default();
    tokio::spawn(async move {
        for cid in pins {
            api::provide_dag_logged(&node, cid).await;
        }
    });
}

/// Binds and serves a launched node's control API (phases 1 and 5 without the rest of [`run`]): how an
/// embedder such as the simulator gives a member the API a real node has. Stop it with [`RunningApi::stop`].
pub async fn start_api(
    launched: &Launched,
    exec: Option<Arc<Executor>>,
    api: &ApiConfig,
) -> Result<RunningApi, DaemonError> {
    let (listener, access) = bind_api(api).await?;
    Ok(serve_api(listener, access, launched, exec, api))
}

/// Phase 5: serves the control API of a launched node on a bound listener until [`RunningApi::stop`].
pub fn serve_api(
    listener: TcpListener,
    access: Arc<AccessPolicy>,
    launched: &Launched,
    exec: Option<Arc<Executor>>,
    api: &ApiConfig,
) -> RunningApi {
    let shutdown = Arc::new(Notify::new());
    let state = ApiState {
        node: launched.node.clone(),
        fetch_timeout: api.fetch_timeout,
        gateway_timeout: api.gateway_timeout,
        shutdown: shutdown.clone(),
        market: Some(launched.market.clone()),
        settler: launched.settler.clone(),
        exec,
        token: api.token.as_deref().map(Arc::from),
        access,
    };
    let addr = listener.local_addr().unwrap_or(api.addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, api::router(state))
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );
    RunningApi {
        addr,
        shutdown,
        stop,
        server,
    }
}

/// Phase 6: waits for Ctrl-C, SIGTERM or a shutdown request over the API.
async fn wait_for_stop(shutdown: &Notify) {
    let sigterm = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("Ctrl-C: shutting down"),
        _ = sigterm => info!("SIGTERM: shutting down"),
        _ = shutdown.notified() => info!("shutdown requested over the API"),
    }
}

/// Phase 7: stops the market, the API's new requests, the swarm (which ends open pubsub streams so the API
/// can finish), then the API, and flushes the store; the files go first so no CLI finds a stopping node.
async fn shut_down(
    launched: Launched,
    api: RunningApi,
    files: RunFiles,
    store: &Store,
) -> Result<(), DaemonError> {
    launched.market.stop();
    let _ = api.stop.send(());
    files.remove();
    if tokio::time::timeout(STOP_GRACE, launched.node.shutdown())
        .await
        .is_err()
    {
        warn!("swarm did not stop in time");
    }
    let res = match tokio::time::timeout(STOP_GRACE, api.server).await {
        Ok(Ok(r)) => r.map_err(DaemonError::Server),
        Ok(Err(e)) => Err(DaemonError::ServerTask(e)),
        Err(_) => Ok(()),
    };
    store.flush().map_err(|e| DaemonError::Flush(Box::new(e)))?;
    res
}

/// Writes a secret readable by this user only.
fn write_private(path: &Path, text: &str) -> Result<(), DaemonError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let write_error = |source| DaemonError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = opts.open(path).map_err(write_error)?;
    f.write_all(text.as_bytes()).map_err(write_error)
}
