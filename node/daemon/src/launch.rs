//! Starting a node's running parts on its store: the swarm, then the market (with the bundled Javy plugin put in
//! the store so that workers lacking it can fetch it), then — if it settles on a chain — its settlement. `jobmesh node start` and the in-process simulator
//! (`jobmesh_simnet::Cluster`) both start nodes here, so a simulated node is the same as a real one.

use std::sync::Arc;

use jobmesh_exec::{Executor, Plugin};
use jobmesh_p2p::{Config, Mesh};
use jobmesh_store::Store;

use crate::market::db::MarketDb;
use crate::market::{Market, MarketConfig, MarketError};
use crate::settlement::{Chain, Settler, SettlerConfig, SettlerError};

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
    /// Settlement did not start (e.g. the chain is unreachable or the contract is not ours).
    #[error("cannot start settlement: {0}")]
    Settlement(#[from] SettlerError),
}

/// A started node's running parts.
pub struct Launched {
    /// The swarm.
    pub node: Mesh,
    /// The market.
    pub market: Market,
    /// Settlement, if the node settles on a chain.
    pub settler: Option<Settler>,
}

/// Starts the swarm with `p2p` on `store`, then the market (its identity is the swarm's keypair), then
/// settlement on `settlement`'s chain if given (the market then announces the chain client's address).
pub async fn launch(
    p2p: Config,
    store: Store,
    db: MarketDb,
    exec: Arc<Executor>,
    mut market: MarketConfig,
    settlement: Option<(Chain, SettlerConfig)>,
) -> Result<Launched, LaunchError> {
    use jobmesh_contracts::Settlement as _;
    let plugin = Plugin::bundled();
    store.put(&plugin.cid(), plugin.bytes())?;
    if let Some((chain, _)) = &settlement {
        market.eth_address = Some(chain.sender().into_array());
        if let Some(contract) = market.stake_contract {
            market.stake_oracle = Some(crate::stake::oracle(chain, contract));
        }
    }
    let node = Mesh::start(p2p, store).await?;
    let market = Market::start(node.clone(), db, exec, market).await?;
    let settler = match settlement {
        Some((chain, cfg)) => Some(Settler::start(market.clone(), chain, cfg).await?),
        None => None,
    };
    Ok(Launched {
        node,
        market,
        settler,
    })
}
