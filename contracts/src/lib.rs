//! On-chain settlement: the Solidity sources of the deposit + lottery contract (`contracts/sol/`), its
//! compiled artifacts (`contracts/artifacts/`, produced by `contracts/scripts/build.js` with the pinned npm
//! `solc`), alloy bindings generated from those artifacts, and the [`Settlement`] interface with two backends:
//! [`rpc::RpcSettlement`] (any JSON-RPC endpoint: anvil, a public testnet) and, with the `embedded` feature,
//! [`embedded::EmbeddedSettlement`] (an in-process revm executing the same bytecode), and [`Chain`], either of
//! the two behind one type. The worker-stake contract (`contracts/sol/Stake.sol`) has its bindings and client,
//! over the same backends, in [`stake`].
//!
//! Owns: contract code, deployment, transactions and views against the contract, runtime-code verification.
//! Must not touch: job logic, the owed ledger or networking between nodes. Lottery maths (ids, Merkle proofs,
//! the draw) come from `jobmesh-lottery`; this crate only submits and reads them.

use std::future::Future;
use std::sync::LazyLock;

use alloy::json_abi::JsonAbi;
use alloy::primitives::{Address, Bytes, Log, B256, U256};
use alloy::sol_types::{SolCall, SolEvent, SolInterface};
use jobmesh_lottery::{Description, Leaf};

pub mod anvil;
#[cfg(feature = "embedded")]
pub mod chain;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod keys;
pub mod rpc;
pub mod stake;

pub use alloy;
#[cfg(feature = "embedded")]
pub use chain::Chain;
pub use jobmesh_lottery as lottery;

/// Alloy bindings generated from the checked-in artifact (`artifacts/Settlement.json`).
pub mod bindings {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug, PartialEq, Eq)]
        Settlement,
        "artifacts/Settlement.json"
    );
    /// The reentrancy attacker of the attack tests (its own copy of the `Settlement` struct types).
    pub mod attacker {
        alloy::sol!(
            #[sol(rpc)]
            #[derive(Debug, PartialEq, Eq)]
            ReentrantAttacker,
            "artifacts/ReentrantAttacker.json"
        );
    }
}

use bindings::Settlement as S;
pub use bindings::Settlement::SettlementErrors;

/// The checked-in artifact of the settlement contract (foundry-style JSON).
pub const SETTLEMENT_ARTIFACT: &str = include_str!("../artifacts/Settlement.json");
/// The checked-in artifact of the reentrancy attacker used by the attack tests.
pub const ATTACKER_ARTIFACT: &str = include_str!("../artifacts/ReentrantAttacker.json");
/// The solc version the artifacts were compiled with (pinned in `contracts/package.json`).
pub const SOLC_VERSION: &str = "0.8.30+commit.73712a01";

/// Creation code, runtime code and ABI of one compiled contract.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The contract's ABI.
    pub abi: JsonAbi,
    /// Creation bytecode (without constructor arguments).
    pub bytecode: Bytes,
    /// Runtime bytecode: what `eth_getCode` returns once deployed, but for the immutables' bytes.
    pub deployed_bytecode: Bytes,
    /// The `(start, length)` byte ranges of `deployed_bytecode` where deployment writes the immutables.
    pub immutable_ranges: Vec<(usize, usize)>,
}

impl Artifact {
    /// Parses a foundry-style artifact (`abi`, `bytecode.object`, `deployedBytecode.object`).
    pub fn parse(json: &str) -> Result<Self, SettlementError> {
        #[derive(serde::Deserialize)]
        struct Range {
            start: usize,
            length: usize,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Code {
            object: Bytes,
            #[serde(default)]
            immutable_references: std::collections::BTreeMap<String, Vec<Range>>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            abi: JsonAbi,
            bytecode: Code,
            deployed_bytecode: Code,
        }
        let raw: Raw = serde_json::from_str(json)
            .map_err(|e| SettlementError::Invalid(format!("bad artifact: {e}")))?;
        let immutable_ranges = raw
            .deployed_bytecode
            .immutable_references
            .values()
            .flatten()
            .map(|r| (r.start, r.length))
            .collect();
        Ok(Self {
            abi: raw.abi,
            bytecode: raw.bytecode.object,
            deployed_bytecode: raw.deployed_bytecode.object,
            immutable_ranges,
        })
    }
}

/// The settlement contract's artifact, parsed once.
pub fn settlement_artifact() -> &'static Artifact {
    static A: LazyLock<Artifact> = LazyLock::new(|| {
        Artifact::parse(SETTLEMENT_ARTIFACT).expect("checked-in artifact is valid JSON")
    });
    &A
}

/// The attacker contract's artifact, parsed once.
pub fn attacker_artifact() -> &'static Artifact {
    static A: LazyLock<Artifact> = LazyLock::new(|| {
        Artifact::parse(ATTACKER_ARTIFACT).expect("checked-in artifact is valid JSON")
    });
    &A
}

/// Blocks the BLOCKHASH opcode looks back (the contract's `BLOCKHASH_WINDOW`).
pub const BLOCKHASH_WINDOW: u64 = 256;
/// Blocks the EIP-2935 history contract looks back (the contract's `HISTORY_WINDOW`).
pub const HISTORY_WINDOW: u64 = 8191;
/// The EIP-2935 block-hash history contract's address (the contract's `HISTORY`).
pub const HISTORY_ADDRESS: Address =
    alloy::primitives::address!("0000F90827F1C53a10cb7A02335B175320002935");

/// Deployment parameters of the settlement contract (all counted in blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeployParams {
    /// Blocks between a withdrawal request and the withdrawal (below 2^64; `u64` keeps it so).
    pub withdraw_delay: u64,
    /// Blocks after a draw during which the winner claims the whole lottery; afterwards every payee may
    /// claim its share. At least 1, at most what the chain looks back ([`BLOCKHASH_WINDOW`], or
    /// [`HISTORY_WINDOW`] on a chain with the EIP-2935 history contract).
    pub claim_window: u64,
    /// Fewest blocks from a lottery's commit to its draw (at least 1): every commit is on chain that long
    /// before its value can leave the payer's deposit.
    #[serde(default = "default_min_draw_delay")]
    pub min_draw_delay: u64,
}

fn default_min_draw_delay() -> u64 {
    DeployParams::default().min_draw_delay
}

impl Default for DeployParams {
    /// A day of 12-second blocks for the withdrawal lock; a claim window any chain can look back on (256
    /// blocks, 51 minutes); draws at least 2 blocks after their commit.
    fn default() -> Self {
        Self {
            withdraw_delay: 7200,
            claim_window: BLOCKHASH_WINDOW,
            min_draw_delay: 2,
        }
    }
}

/// Why deployment parameters are refused (the contract's constructor refuses the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// A claim window of zero blocks would let the payer's share claims race the winner.
    #[error("the claim window must be at least 1 block")]
    ClaimWindowZero,
    /// The draw hash would become unobtainable before the claim window ends.
    #[error("a claim window of {claim_window} blocks exceeds the {lookback} blocks this chain looks back")]
    ClaimWindowBeyondLookback {
        /// The requested window.
        claim_window: u64,
        /// What the chain looks back.
        lookback: u64,
    },
    /// A draw in the block after the commit, or in the commit's own block.
    #[error("the minimum draw delay must be at least 1 block")]
    MinDrawDelayZero,
}

impl DeployParams {
    /// Checks the parameters against a chain that looks back `lookback` blocks ([`BLOCKHASH_WINDOW`], or
    /// [`HISTORY_WINDOW`] with the EIP-2935 history contract).
    pub fn validate(&self, lookback: u64) -> Result<(), ParamsError> {
        if self.claim_window == 0 {
            return Err(ParamsError::ClaimWindowZero);
        }
        if self.claim_window > lookback {
            return Err(ParamsError::ClaimWindowBeyondLookback {
                claim_window: self.claim_window,
                lookback,
            });
        }
        if self.min_draw_delay == 0 {
            return Err(ParamsError::MinDrawDelayZero);
        }
        Ok(())
    }

    /// Creation code followed by the ABI-encoded constructor arguments (unchecked: see [`Self::validate`]).
    pub fn deploy_code(&self) -> Bytes {
        use alloy::sol_types::SolValue;
        let mut code = settlement_artifact().bytecode.to_vec();
        code.extend_from_slice(
            &(
                U256::from(self.withdraw_delay),
                U256::from(self.claim_window),
                U256::from(self.min_draw_delay),
            )
                .abi_encode_params(),
        );
        code.into()
    }
}

/// Whether `code` (from `eth_getCode`) is our artifact's runtime code: byte for byte, but for the immutables
/// (the deployment parameters) written into it at deployment.
pub fn runtime_code_matches(code: &[u8]) -> bool {
    code_matches(settlement_artifact(), code)
}

/// Whether `code` is `a`'s runtime code, but for the bytes deployment writes its immutables into.
fn code_matches(a: &Artifact, code: &[u8]) -> bool {
    let expected = a.deployed_bytecode.as_ref();
    let immutable = |i: usize| {
        a.immutable_ranges
            .iter()
            .any(|&(start, len)| i >= start && i < start + len)
    };
    code.len() == expected.len()
        && code
            .iter()
            .zip(expected)
            .enumerate()
            .all(|(i, (x, y))| x == y || immutable(i))
}

/// Everything that can go wrong talking to the contract.
#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    /// The contract reverted; `name` is the custom error's name when it is one of ours.
    #[error("contract reverted: {}", describe_revert(.name, .decoded, .data))]
    Reverted {
        /// The custom error's name (e.g. `AlreadySettled`), if the revert data is one of the ABI's errors.
        name: Option<String>,
        /// The decoded error, if it is one of the settlement contract's.
        decoded: Option<Box<SettlementErrors>>,
        /// Raw revert data.
        data: Bytes,
    },
    /// The transaction ran out of gas or halted abnormally.
    #[error("transaction halted: {0}")]
    Halted(String),
    /// The RPC endpoint failed or answered nonsense.
    #[error("rpc: {0}")]
    Transport(String),
    /// The endpoint serves another chain than the one configured.
    #[error("chain id mismatch: the RPC endpoint serves chain {actual}, expected {expected}")]
    WrongChain {
        /// The configured chain id.
        expected: u64,
        /// The endpoint's chain id.
        actual: u64,
    },
    /// A lottery this account did not create, or another invalid request.
    #[error("{0}")]
    Invalid(String),
    /// Deployment parameters the contract would refuse.
    #[error("invalid deployment parameters: {0}")]
    Params(#[from] ParamsError),
}

fn describe_revert(
    name: &Option<String>,
    decoded: &Option<Box<SettlementErrors>>,
    data: &Bytes,
) -> String {
    match (decoded, name) {
        (Some(d), _) => format!("{d:?}"),
        (None, Some(n)) => n.clone(),
        (None, None) if data.is_empty() => "no reason given".into(),
        (None, None) => format!("unknown error data {data}"),
    }
}

impl SettlementError {
    /// Builds a `Reverted` error from revert data, decoding our custom errors.
    pub fn from_revert_data(data: Bytes) -> Self {
        let decoded = SettlementErrors::abi_decode(&data).ok().map(Box::new);
        let name = error_name(&data);
        Self::Reverted {
            name,
            decoded,
            data,
        }
    }

    /// The custom error's name if this is a revert with one of our errors.
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            Self::Reverted { name, .. } => name.as_deref(),
            _ => None,
        }
    }
}

/// The name of the custom error whose selector starts `data`, looked up in the settlement and stake (and
/// attacker) ABIs.
pub fn error_name(data: &[u8]) -> Option<String> {
    let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
    [
        settlement_artifact(),
        attacker_artifact(),
        stake::stake_artifact(),
        stake::stake_attacker_artifact(),
    ]
    .iter()
    .flat_map(|a| a.abi.errors())
    .find(|e| e.selector().0 == selector)
    .map(|e| e.name.clone())
}

/// What a mined transaction left behind.
#[derive(Debug, Clone)]
pub struct TxReceipt {
    /// Transaction hash (the embedded backend numbers its transactions instead).
    pub tx_hash: B256,
    /// Block that included it.
    pub block_number: u64,
    /// Gas used, after refunds (what the sender pays for).
    pub gas_used: u64,
    /// Wei the sender paid per unit of gas (the embedded chain charges nothing: 0).
    pub gas_price: u128,
    /// Address of a created contract, for deployments.
    pub contract_address: Option<Address>,
    /// Logs emitted.
    pub logs: Vec<Log>,
}

impl TxReceipt {
    /// What the sender paid for the transaction, in wei (`gas_used × gas_price`).
    pub fn fee(&self) -> U256 {
        U256::from(self.gas_used) * U256::from(self.gas_price)
    }
}

/// A deposit account as stored by the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct AccountState {
    /// Free balance (deposits + winnings − committed − withdrawn).
    pub balance: U256,
    /// Amount of the pending withdrawal request.
    pub unlocking: U256,
    /// First block at which the pending request may be withdrawn.
    pub unlock_block: u64,
}

/// A lottery's on-chain state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LotteryState {
    /// Not committed, or its lane has since been reused.
    Unknown,
    /// Committed, and neither claimed by its winner nor paid out share by share.
    Pending,
    /// Claimed by its winner, or every payee's share paid after the claim window.
    Settled,
}

fn to_solidity(d: &Description) -> Result<S::Lottery, SettlementError> {
    Ok(S::Lottery {
        payer: d.payer,
        nonce: d.nonce,
        total: u96(d.total)?,
        root: d.root,
        drawBlock: d.draw_block,
        secretHash: d.secret_hash,
    })
}

fn u96(v: U256) -> Result<alloy::primitives::Uint<96, 2>, SettlementError> {
    alloy::primitives::Uint::<96, 2>::checked_from_limbs_slice(v.as_limbs()).ok_or_else(|| {
        SettlementError::Invalid(format!("{v} wei exceeds the contract's uint96 limit"))
    })
}

/// The calldata of a claim of `d` for `leaf` with the payer's `secret`: `claimAndWithdraw` (the prize to the
/// sender's wallet) when `to_wallet`, else `claim` (credited to the payee's deposit account).
fn claim_calldata(
    d: &Description,
    leaf: &Leaf,
    proof: &[B256],
    secret: B256,
    to_wallet: bool,
) -> Result<Bytes, SettlementError> {
    let (lottery, leaf, proof) = (to_solidity(d)?, leaf_to_solidity(leaf)?, proof.to_vec());
    Ok(if to_wallet {
        S::claimAndWithdrawCall {
            lottery,
            leaf,
            proof,
            secret,
        }
        .abi_encode()
    } else {
        S::claimCall {
            lottery,
            leaf,
            proof,
            secret,
        }
        .abi_encode()
    }
    .into())
}

fn leaf_to_solidity(l: &Leaf) -> Result<S::Leaf, SettlementError> {
    Ok(S::Leaf {
        payee: l.payee,
        start: u96(l.start)?,
        length: u96(l.length)?,
    })
}

fn decode_return<C: SolCall>(data: &[u8]) -> Result<C::Return, SettlementError> {
    C::abi_decode_returns(data).map_err(|e| {
        SettlementError::Transport(format!("cannot decode {} result: {e}", C::SIGNATURE))
    })
}

/// The settlement contract, seen from one account. Backends provide the primitives (sender, contract,
/// transact, view, block number, ETH balance, logs); every contract operation is built on them here, identically
/// for both.
pub trait Settlement: Send + Sync {
    /// The account sending transactions.
    fn sender(&self) -> Address;
    /// The settlement contract's address.
    fn contract(&self) -> Address;
    /// Sends a transaction to the contract and waits for it to be mined. A revert is an error.
    fn transact(
        &self,
        data: Bytes,
        value: U256,
    ) -> impl Future<Output = Result<TxReceipt, SettlementError>> + Send;
    /// Executes a read-only call against the latest block.
    fn view(&self, data: Bytes) -> impl Future<Output = Result<Bytes, SettlementError>> + Send;
    /// The latest block number.
    fn block_number(&self) -> impl Future<Output = Result<u64, SettlementError>> + Send;
    /// An address's ETH balance (its wallet, not its deposit account) at the latest block.
    fn eth_balance(
        &self,
        who: Address,
    ) -> impl Future<Output = Result<U256, SettlementError>> + Send;
    /// The contract's logs with the given event signature (topic 0) and, optionally, topic `i` (1..=3) equal
    /// to a value, from `from_block` on.
    fn logs(
        &self,
        signature: B256,
        topic: Option<(usize, B256)>,
        from_block: u64,
    ) -> impl Future<Output = Result<Vec<Log>, SettlementError>> + Send;

    /// Adds `amount` wei to the sender's free balance.
    fn deposit(
        &self,
        amount: U256,
    ) -> impl Future<Output = Result<TxReceipt, SettlementError>> + Send {
        async move {
            self.transact(S::depositCall {}.abi_encode().into(), amount)
                .await
        }
    }

    /// Starts the time lock for withdrawing `amount`.
    fn request_withdrawal(
        &self,
        amount: U256,
    ) -> impl Future<Output = Result<TxReceipt, SettlementError>> + Send {
        async move {
            let call = S::requestWithdrawalCall {
                amount: u96(amount)?,
            };
            self.transact(call.abi_encode().into(), U256::ZERO).await
        }
    }

    /// Withdraws the unlocked request.
    fn withdraw(&self) -> impl Future<Output = Result<TxReceipt, SettlementError>> + Send {
        async move {
            self.transact(S::withdrawCall {}.abi_encode().into(), U256::ZERO)
                .await
        }
    }

    /// Commits one lottery paid by the sender.
    fn commit(
        &self,
        d: &Description,
    ) -> impl Future<Output = Result<TxReceipt, SettlementError>> + Send {
        let d = *d;
        async move {
            if d.payer != self.sender() {
                return Err(SettlementError::Invalid(format!(
                    "lottery payer {} is not the sender {}",
                    d.payer,
                    self.sender()
                )));
            }
            let call = S::commitCall {
                nonce: d.nonce,
                total: u96(d.total)?,
                root: d.root,
                drawBlock: d.draw_block,
                secretHash: d.secret_hash,
            };
            self.transact(call.abi_encode().into(), U256::ZERO).await
        }
    }

    /// Commits several lotteries paid by the sender in one transaction.
    fn commit_many(
        &self,
        ds: &[Description],
    ) -> impl Future<Output = Result<TxReceipt, SettlementError>> + Send {
        let ds = ds.to_vec();
        async move {
            let mut commitments = Vec::with_capacity(ds.len());
            for d in &ds {
                if d.payer != self.sender() {
                    return Err(SettlementError::Invalid(format!(
                        "lottery payer {} is not the sender {}",
                        d.payer,
                        self.sender()
                    )));
                }
                commitments.push(S::Commitment {
                    nonce: d.nonce,
                    total: u96(d.total)?,
                    root: d.root,
                    drawBlock: d.draw_block,
                    secretHash: d.secret_hash,
                });
            }
            let call = S::commitManyCall { commitments };
            self.transact(call.abi_encode().into(), U256::ZERO).await
        }
    }

    /// Claims a lottery for `leaf.payee` with its Merkle proof and the payer's revealed `secret`.
    fn claim(
        &self,
        d: &Description,
        leaf: &Leaf,
        proof: &[B256],
        secret: B256,
    ) -> impl Future<Output = Result<TxReceipt, SettlementError>> + Send {
        let data = claim_calldata(d, leaf, proof, secret, false);
        async move { self.transact(data?, U256::ZERO).await }
    }

    /// Claims a lottery the sender won and has its value sent straight to the sender's wallet (one
    /// transaction; nothing goes through the deposit account or its withdrawal time lock). The sender must be
    /// `leaf.payee`.
    fn claim_and_withdraw(
        &self,
        d: &Description,
        leaf: &Leaf,
        proof: &[B256],
        secret: B256,
    ) -> impl Future<Output = Result<TxReceipt, SettlementError>> + Send {
        let data = claim_calldata(d, leaf, proof, secret, true);
        async move { self.transact(data?, U256::ZERO).await }
    }

    /// After the claim window of a lottery its winner did not claim, credits `leaf.payee` exactly its
    /// interval's length (anyone may send it).
    fn claim_share(
        &self,
        d: &Description,
        leaf: &Leaf,
        proof: &[B256],
    ) -> impl Future<Output = Result<TxReceipt, SettlementError>> + Send {
        let call = (|| {
            Ok::<_, SettlementError>(S::claimShareCall {
                lottery: to_solidity(d)?,
                leaf: leaf_to_solidity(leaf)?,
                proof: proof.to_vec(),
            })
        })();
        async move { self.transact(call?.abi_encode().into(), U256::ZERO).await }
    }

    /// An account's deposit state.
    fn account(
        &self,
        who: Address,
    ) -> impl Future<Output = Result<AccountState, SettlementError>> + Send {
        async move {
            let out = self.view(S::accountsCall(who).abi_encode().into()).await?;
            let r = decode_return::<S::accountsCall>(&out)?;
            Ok(AccountState {
                balance: U256::from(r.balance),
                unlocking: U256::from(r.unlocking),
                unlock_block: r.unlockBlock,
            })
        }
    }

    /// Whether `payer`'s lane `lane` (`uint16(nonce)`) holds a pending lottery (a commit to it would revert
    /// with `LaneBusy`).
    fn lane_pending(
        &self,
        payer: Address,
        lane: u16,
    ) -> impl Future<Output = Result<bool, SettlementError>> + Send {
        async move {
            let call = S::lanesCall {
                _0: payer,
                _1: lane,
            };
            let out = self.view(call.abi_encode().into()).await?;
            let value = decode_return::<S::lanesCall>(&out)?;
            Ok(value.0[31] & 1 == 1)
        }
    }

    /// A lottery's on-chain state.
    fn lottery_state(
        &self,
        d: &Description,
    ) -> impl Future<Output = Result<LotteryState, SettlementError>> + Send {
        let d = *d;
        async move {
            let call = S::lotteryStateCall {
                lottery: to_solidity(&d)?,
            };
            let out = self.view(call.abi_encode().into()).await?;
            Ok(match decode_return::<S::lotteryStateCall>(&out)? {
                1 => LotteryState::Pending,
                2 => LotteryState::Settled,
                _ => LotteryState::Unknown,
            })
        }
    }

    /// The hash of this lottery's draw block, if the contract can obtain it now.
    fn draw_hash(
        &self,
        d: &Description,
    ) -> impl Future<Output = Result<Option<B256>, SettlementError>> + Send {
        let block = U256::from(d.draw_block);
        async move {
            let call = S::obtainableHashCall { blockNumber: block };
            let h = decode_return::<S::obtainableHashCall>(
                &self.view(call.abi_encode().into()).await?,
            )?;
            Ok((h != B256::ZERO).then_some(h))
        }
    }

    /// The contract's `(withdrawDelay, claimWindow, minDrawDelay)`.
    fn params(&self) -> impl Future<Output = Result<DeployParams, SettlementError>> + Send {
        async move {
            let out = self
                .view(S::withdrawDelayCall {}.abi_encode().into())
                .await?;
            let withdraw_delay = decode_return::<S::withdrawDelayCall>(&out)?;
            let out = self.view(S::claimWindowCall {}.abi_encode().into()).await?;
            let claim_window = decode_return::<S::claimWindowCall>(&out)?;
            let out = self
                .view(S::minDrawDelayCall {}.abi_encode().into())
                .await?;
            let min_draw_delay = decode_return::<S::minDrawDelayCall>(&out)?;
            Ok(DeployParams {
                withdraw_delay: withdraw_delay.saturating_to(),
                claim_window: claim_window.saturating_to(),
                min_draw_delay: min_draw_delay.saturating_to(),
            })
        }
    }

    /// Every lottery `payer` committed from `from_block` on (from the `LotteryCommitted` events).
    fn committed_by(
        &self,
        payer: Address,
        from_block: u64,
    ) -> impl Future<Output = Result<Vec<Description>, SettlementError>> + Send {
        async move {
            let logs = self
                .logs(
                    S::LotteryCommitted::SIGNATURE_HASH,
                    Some((2, payer.into_word())),
                    from_block,
                )
                .await?;
            logs.iter()
                .map(|log| {
                    let e = S::LotteryCommitted::decode_log(log).map_err(|e| {
                        SettlementError::Transport(format!("bad LotteryCommitted log: {e}"))
                    })?;
                    Ok(Description {
                        payer: e.payer,
                        nonce: e.nonce,
                        total: U256::from(e.total),
                        root: e.root,
                        draw_block: e.drawBlock,
                        secret_hash: e.secretHash,
                    })
                })
                .collect()
        }
    }
}
