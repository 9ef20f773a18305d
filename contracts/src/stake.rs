//! Worker stake: the `Stake` contract (`contracts/sol/Stake.sol`), its alloy bindings and [`StakeClient`], which
//! drives it through either backend ([`crate::rpc::RpcSettlement`] or, with the `embedded` feature,
//! [`crate::embedded::EmbeddedSettlement`]) pointed at the stake contract's address.
//!
//! A worker locks ETH bound to one node identity ([`node_id`] of its PeerId); unstaking is a request that
//! takes the amount out of the active stake at once, then a withdrawal after `unstakeDelay` blocks. Nothing is
//! slashed: see docs/settlement.md, "Worker stake", for what a stake buys and what it does not.

use std::sync::LazyLock;

use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::sol_types::SolCall;

use crate::{decode_return, u96, Artifact, Settlement, SettlementError, TxReceipt};

/// Alloy bindings generated from the checked-in artifacts (`artifacts/Stake.json`, `artifacts/StakeAttacker.json`).
pub mod bindings {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug, PartialEq, Eq)]
        Stake,
        "artifacts/Stake.json"
    );
    /// The reentrancy attacker of the stake attack tests.
    pub mod attacker {
        alloy::sol!(
            #[sol(rpc)]
            #[derive(Debug, PartialEq, Eq)]
            StakeAttacker,
            "artifacts/StakeAttacker.json"
        );
    }
}

use bindings::Stake as K;

/// The checked-in artifact of the stake contract (foundry-style JSON).
pub const STAKE_ARTIFACT: &str = include_str!("../artifacts/Stake.json");
/// The checked-in artifact of the stake reentrancy attacker used by the attack tests.
pub const STAKE_ATTACKER_ARTIFACT: &str = include_str!("../artifacts/StakeAttacker.json");

/// The stake contract's artifact, parsed once.
pub fn stake_artifact() -> &'static Artifact {
    static A: LazyLock<Artifact> = LazyLock::new(|| {
        Artifact::parse(STAKE_ARTIFACT).expect("checked-in artifact is valid JSON")
    });
    &A
}

/// The stake attacker's artifact, parsed once.
pub fn stake_attacker_artifact() -> &'static Artifact {
    static A: LazyLock<Artifact> = LazyLock::new(|| {
        Artifact::parse(STAKE_ATTACKER_ARTIFACT).expect("checked-in artifact is valid JSON")
    });
    &A
}

/// The node identity a stake is bound to: keccak256 of the worker's libp2p PeerId bytes (`PeerId::to_bytes`).
/// A requester checks that the stake of the offer's settlement address is bound to the offer's PeerId, so one
/// stake cannot back several identities at once.
pub fn node_id(peer_id_bytes: &[u8]) -> B256 {
    keccak256(peer_id_bytes)
}

/// Deployment parameters of the stake contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StakeParams {
    /// Blocks between an unstake request and its withdrawal.
    pub unstake_delay: u64,
}

impl Default for StakeParams {
    /// A week of 12-second blocks: longer than any job a requester relies on a stake for, and the time a caught
    /// identity waits before its ETH can back a new one.
    fn default() -> Self {
        Self {
            unstake_delay: 50_400,
        }
    }
}

impl StakeParams {
    /// Creation code followed by the ABI-encoded constructor argument.
    pub fn deploy_code(&self) -> Bytes {
        use alloy::sol_types::SolValue;
        let mut code = stake_artifact().bytecode.to_vec();
        code.extend_from_slice(&(U256::from(self.unstake_delay),).abi_encode_params());
        code.into()
    }
}

/// Whether `code` (from `eth_getCode`) is the stake artifact's runtime code, but for the immutable delay.
pub fn stake_code_matches(code: &[u8]) -> bool {
    crate::code_matches(stake_artifact(), code)
}

/// One worker's stake as the contract stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct StakeAccount {
    /// Active stake: what requesters count.
    pub amount: U256,
    /// Requested for withdrawal (no longer active).
    pub unlocking: U256,
    /// First block at which `unlocking` may be withdrawn.
    pub unlock_block: u64,
    /// The node identity the stake is bound to ([`node_id`]).
    pub node: B256,
}

/// The stake contract seen from one account, over a backend whose [`Settlement::contract`] is the stake
/// contract's address (`RpcSettlement::new(.., stake_address)`, `EmbeddedSettlement::new(.., stake_address)`).
#[derive(Debug, Clone)]
pub struct StakeClient<B> {
    backend: B,
}

impl<B: Settlement> StakeClient<B> {
    /// Drives the stake contract at `backend.contract()`.
    pub fn new(backend: B) -> Self {
        Self { backend }
    }

    /// The backend (its `contract()` is the stake contract).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The account sending transactions.
    pub fn sender(&self) -> Address {
        self.backend.sender()
    }

    /// The stake contract's address.
    pub fn contract(&self) -> Address {
        self.backend.contract()
    }

    /// Adds `amount` wei to the sender's active stake, bound to `node` (see [`node_id`]).
    pub async fn stake(&self, node: B256, amount: U256) -> Result<TxReceipt, SettlementError> {
        let call = K::stakeCall { node };
        self.backend
            .transact(call.abi_encode().into(), amount)
            .await
    }

    /// Takes `amount` out of the active stake and starts its time lock.
    pub async fn request_unstake(&self, amount: U256) -> Result<TxReceipt, SettlementError> {
        let call = K::requestUnstakeCall {
            amount: u96(amount)?,
        };
        self.backend
            .transact(call.abi_encode().into(), U256::ZERO)
            .await
    }

    /// Pays out the unlocked request to the sender's wallet.
    pub async fn withdraw(&self) -> Result<TxReceipt, SettlementError> {
        let call = K::withdrawCall {};
        self.backend
            .transact(call.abi_encode().into(), U256::ZERO)
            .await
    }

    /// `who`'s stake account.
    pub async fn account(&self, who: Address) -> Result<StakeAccount, SettlementError> {
        let out = self
            .backend
            .view(K::stakesCall(who).abi_encode().into())
            .await?;
        let r = decode_return::<K::stakesCall>(&out)?;
        Ok(StakeAccount {
            amount: U256::from(r.amount),
            unlocking: U256::from(r.unlocking),
            unlock_block: r.unlockBlock,
            node: r.node,
        })
    }

    /// The active stake `who` holds for `node`: zero when its stake is bound to another node. This is the
    /// figure a requester may credit to the offer of `node` paid to `who`.
    pub async fn active_stake_for(
        &self,
        who: Address,
        node: B256,
    ) -> Result<U256, SettlementError> {
        let a = self.account(who).await?;
        Ok(if a.node == node { a.amount } else { U256::ZERO })
    }

    /// The contract's unstake delay, in blocks.
    pub async fn unstake_delay(&self) -> Result<u64, SettlementError> {
        let out = self
            .backend
            .view(K::unstakeDelayCall {}.abi_encode().into())
            .await?;
        Ok(decode_return::<K::unstakeDelayCall>(&out)?.saturating_to())
    }
}

#[cfg(feature = "embedded")]
impl StakeClient<crate::embedded::EmbeddedSettlement> {
    /// Deploys a stake contract on an embedded chain from `from` and returns a client acting as `from`.
    pub fn deploy_embedded(
        chain: std::sync::Arc<crate::embedded::EmbeddedChain>,
        from: Address,
        params: StakeParams,
    ) -> Result<Self, SettlementError> {
        let contract = chain.deploy(from, params.deploy_code())?;
        Ok(Self::new(crate::embedded::EmbeddedSettlement::new(
            chain, from, contract,
        )))
    }

    /// The same contract seen from another account.
    pub fn as_sender(&self, sender: Address) -> Self {
        Self::new(self.backend.as_sender(sender))
    }
}

impl StakeClient<crate::rpc::RpcSettlement> {
    /// Deploys a stake contract through a JSON-RPC endpoint (its chain id checked first), signed by `signer`.
    pub async fn deploy_rpc(
        url: &str,
        chain_id: u64,
        signer: alloy::signers::local::PrivateKeySigner,
        params: StakeParams,
    ) -> Result<(Self, TxReceipt), SettlementError> {
        let sender = signer.address();
        let provider = crate::rpc::connect(url, chain_id, Some(signer)).await?;
        let deployer =
            crate::rpc::RpcSettlement::new(provider.clone(), chain_id, sender, Address::ZERO);
        let receipt = deployer.deploy_code(params.deploy_code()).await?;
        let contract = receipt.contract_address.ok_or_else(|| {
            SettlementError::Transport("deployment receipt has no contract address".into())
        })?;
        let client = crate::rpc::RpcSettlement::new(provider, chain_id, sender, contract);
        Ok((Self::new(client), receipt))
    }
}
