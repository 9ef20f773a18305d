//! The market's [`StakeOracle`] on the node's settlement chain: the stake contract at `node start
//! --stake-contract`, read through the same JSON-RPC endpoint or embedded EVM the node settles on.

use std::sync::Arc;

use jobmesh_contracts::alloy::primitives::Address;
use jobmesh_contracts::embedded::EmbeddedSettlement;
use jobmesh_contracts::rpc::RpcSettlement;
use jobmesh_contracts::stake::{node_id, StakeClient};
use jobmesh_contracts::{Chain, Settlement as _};
use jobmesh_p2p::PeerId;

use crate::market::stake::{StakeFuture, StakeLookupError, StakeOracle};

/// Reads active stakes from one stake contract.
#[derive(Debug)]
struct ChainStake(StakeClient<Chain>);

/// An oracle for the stake contract at `contract` on `chain` (the settlement chain's client, pointed at it).
pub fn oracle(chain: &Chain, contract: [u8; 20]) -> Arc<dyn StakeOracle> {
    let contract = Address::from(contract);
    let backend = match chain {
        Chain::Rpc(c) => Chain::Rpc(RpcSettlement::new(
            c.provider().clone(),
            c.chain_id(),
            c.sender(),
            contract,
        )),
        Chain::Embedded(c) => Chain::Embedded(EmbeddedSettlement::new(
            c.chain().clone(),
            c.sender(),
            contract,
        )),
    };
    Arc::new(ChainStake(StakeClient::new(backend)))
}

impl StakeOracle for ChainStake {
    fn active_stake(&self, worker: PeerId, address: [u8; 20]) -> StakeFuture {
        let client = self.0.clone();
        Box::pin(async move {
            let node = node_id(&worker.to_bytes());
            match client.active_stake_for(Address::from(address), node).await {
                Ok(wei) => Ok(wei.saturating_to()),
                Err(e) => Err(StakeLookupError {
                    worker,
                    why: e.to_string(),
                }),
            }
        })
    }
}
