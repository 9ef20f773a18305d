//! What the requester's service and the worker both use: the node's swarm handle, signing key, database and
//! executor ([`Core`]), signed direct requests ([`Core::ask`]) and the clock ([`now_ms`]).
//!
//! Owns: the parts of a running market that are not the requester's actor or the worker. Must not touch: job
//! state machines (`requester`, `worker`) or the actor's channels (`service`): it imports neither, so both can
//! import it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jobmesh_exec::Executor;
use jobmesh_p2p::{identity::Keypair, Mesh, Multiaddr, PeerId};

use crate::commit_path::CommitPath;
use crate::db::MarketDb;
use crate::exec_metrics::ExecMetrics;
use crate::messages::{open_from, seal, MessageError, Request, Response, MAX_DIRECT_BYTES};

/// Why a direct request got no valid answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// The request did not reach the peer, or its answer did not come back.
    #[error(transparent)]
    Request(#[from] jobmesh_p2p::Error),
    /// The answer is not a well-formed message signed by the peer asked.
    #[error(transparent)]
    Answer(#[from] MessageError),
    /// The caller's own deadline passed first.
    #[error("timed out")]
    TimedOut,
}

/// The current time in unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What every task of the market (requester and worker) shares.
pub(crate) struct Core {
    pub(crate) node: Mesh,
    pub(crate) key: Keypair,
    pub(crate) db: MarketDb,
    pub(crate) exec: Arc<Executor>,
    /// The settlement address announced in jobs and offers.
    pub(crate) eth_address: Option<[u8; 20]>,
    pub(crate) exec_metrics: ExecMetrics,
    /// Where the commit step spends its time on this node.
    pub(crate) commit_path: CommitPath,
    /// Set once by `Market::stop`; every loop of the market ends when it is.
    pub(crate) stop: tokio::sync::watch::Sender<bool>,
}

impl Core {
    /// Whether `Market::stop` was called.
    pub(crate) fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once `Market::stop` is called.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Signs `request`, sends it to `peer` and opens the signed response.
    pub(crate) async fn ask(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: &Request,
    ) -> Result<Response, AskError> {
        Ok(self.ask_sealed(peer, addrs, request).await?.0)
    }

    /// Like [`Core::ask`], and also returns the response as `peer` sealed it (a receipt's evidence).
    pub(crate) async fn ask_sealed(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: &Request,
    ) -> Result<(Response, Vec<u8>), AskError> {
        let bytes = self
            .node
            .request(peer, addrs, seal(&self.key, request))
            .await?;
        let response = open_from::<Response>(&bytes, MAX_DIRECT_BYTES, &peer)?;
        Ok((response, bytes))
    }
}
