//! The chain a node settles on, as one [`Settlement`]: a JSON-RPC endpoint or the in-process EVM, forwarded
//! to the back end it holds (so a node and the simulator run the same settlement code on either).

use alloy::primitives::{Address, Bytes, Log, B256, U256};

use crate::embedded::EmbeddedSettlement;
use crate::rpc::RpcSettlement;
use crate::{Settlement, SettlementError, TxReceipt};

/// The chain a node settles on: a JSON-RPC endpoint (anvil, a testnet) or the in-process EVM.
#[derive(Debug, Clone)]
pub enum Chain {
    /// Any JSON-RPC endpoint.
    Rpc(RpcSettlement),
    /// The embedded EVM (shared by the nodes of one process, e.g. the simulator).
    Embedded(EmbeddedSettlement),
}

impl Settlement for Chain {
    fn sender(&self) -> Address {
        match self {
            Chain::Rpc(c) => c.sender(),
            Chain::Embedded(c) => c.sender(),
        }
    }
    fn contract(&self) -> Address {
        match self {
            Chain::Rpc(c) => c.contract(),
            Chain::Embedded(c) => c.contract(),
        }
    }
    async fn transact(&self, data: Bytes, value: U256) -> Result<TxReceipt, SettlementError> {
        match self {
            Chain::Rpc(c) => c.transact(data, value).await,
            Chain::Embedded(c) => c.transact(data, value).await,
        }
    }
    async fn view(&self, data: Bytes) -> Result<Bytes, SettlementError> {
        match self {
            Chain::Rpc(c) => c.view(data).await,
            Chain::Embedded(c) => c.view(data).await,
        }
    }
    async fn block_number(&self) -> Result<u64, SettlementError> {
        match self {
            Chain::Rpc(c) => c.block_number().await,
            Chain::Embedded(c) => c.block_number().await,
        }
    }
    async fn eth_balance(&self, who: Address) -> Result<U256, SettlementError> {
        match self {
            Chain::Rpc(c) => c.eth_balance(who).await,
            Chain::Embedded(c) => c.eth_balance(who).await,
        }
    }
    async fn logs(
        &self,
        signature: B256,
        topic: Option<(usize, B256)>,
        from_block: u64,
    ) -> Result<Vec<Log>, SettlementError> {
        match self {
            Chain::Rpc(c) => c.logs(signature, topic, from_block).await,
            Chain::Embedded(c) => c.logs(signature, topic, from_block).await,
        }
    }
}
