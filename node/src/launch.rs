//! Starting a node's running parts on its store: the swarm, then the market, with the bundled Javy plugin put in
//! the store so that workers lacking it can fetch it. `jobmesh node start` and the in-process simulator
//! (`jobmesh_simnet::Cluster`) both start nodes here, so a simulated node is the same as a real one.

use std::sync::Arc;

use jobmesh_exec::{Executor, Plugin};
use jobmesh_p2p::{Config, Node};
use jobmesh_store::Store;

use crate::market::db::MarketDb;
use crate::market::{Market, MarketConfig, MarketError};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The bundled plugin could not be stored.
    #[error("cannot store the bundled Javy plugin: {0}")]
    Store(#[from] jobmesh_store::StoreError),
    /// The swarm did not start (e.g. its listen address is taken).
    #[error(transparent)]
    Swarm(#[from] jobmesh_p2p::Error),
    /// The market did not start.
    #[error("cannot start the market: {0}")]
    Market(#[from] MarketError),
}

/// Starts the swarm with `p2p` on `store`, then the market (its identity is the swarm's keypair).
pub async fn launch(
    p2p: Config,
    store: Store,
    db: MarketDb,
    exec: Arc<Executor>,
    market: MarketConfig,
) -> Result<(Node, Market), LaunchError> {
    let plugin = Plugin::bundled();
    store.put(&plugin.cid(), plugin.bytes())?;
    let node = Node::start(p2p, store).await?;
    let market = Market::start(node.clone(), db, exec, market).await?;
    Ok((node, market))
}
