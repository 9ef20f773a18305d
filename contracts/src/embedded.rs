//! The embedded backend: an in-process chain (revm, Osaka rules) that executes the very bytecode of the
//! checked-in artifacts. Like anvil with automine, every successful transaction is mined in its own block;
//! a reverting transaction is not mined (as when a JSON-RPC node refuses it at gas estimation).
//!
//! Block hashes are `keccak256(seed ‖ number)`, so a simulation is reproducible from its seed. There is no
//! EIP-2935 history contract here: only BLOCKHASH (256 blocks) is obtainable, so the contract's claim window
//! is at most 256 blocks here.

use std::sync::{Arc, Mutex, MutexGuard};

use alloy::primitives::{keccak256, Address, Bytes, Log, TxKind, B256, U256};
use revm::context::{BlockEnv, CfgEnv, Context, Journal, TxEnv};
use revm::context_interface::result::{ExecutionResult, Output};
use revm::database::CacheDB;
use revm::database_interface::{DBErrorMarker, DatabaseRef};
use revm::handler::MainnetEvm;
use revm::primitives::hardfork::SpecId;
use revm::state::{AccountInfo, Bytecode};
use revm::{Database, ExecuteCommitEvm, ExecuteEvm, MainBuilder};

use crate::{DeployParams, Settlement, SettlementError, TxReceipt, BLOCKHASH_WINDOW};

/// Gas limit of every embedded transaction (below Osaka's 2^24 per-transaction cap).
pub const TX_GAS_LIMIT: u64 = 16_000_000;

/// An error of the (infallible) seeded database.
#[derive(Debug, thiserror::Error)]
#[error("embedded database error")]
pub struct NeverError;
impl DBErrorMarker for NeverError {}

/// Empty state with seeded block hashes.
#[derive(Debug, Clone, Copy)]
pub struct SeededChain {
    seed: u64,
}

impl DatabaseRef for SeededChain {
    type Error = NeverError;
    fn basic_ref(&self, _address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        Ok(None)
    }
    fn code_by_hash_ref(&self, _code_hash: B256) -> Result<Bytecode, Self::Error> {
        Ok(Bytecode::default())
    }
    fn storage_ref(&self, _address: Address, _index: U256) -> Result<U256, Self::Error> {
        Ok(U256::ZERO)
    }
    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        Ok(seeded_block_hash(self.seed, number))
    }
}

/// The hash of block `number` on an embedded chain with `seed`: `keccak256(seed_be8 ‖ number_be8)`.
pub fn seeded_block_hash(seed: u64, number: u64) -> B256 {
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&seed.to_be_bytes());
    buf[8..].copy_from_slice(&number.to_be_bytes());
    keccak256(buf)
}

type Db = CacheDB<SeededChain>;
type Ctx = Context<BlockEnv, TxEnv, CfgEnv, Db, Journal<Db>, ()>;

struct Inner {
    /// The state; an EVM is built around it for each call (revm's EVM is not `Send`, the state is).
    db: Db,
    block: u64,
    tx_count: u64,
    logs: Vec<(u64, Log)>,
}

/// An in-process chain. Share it (`Arc`) between the [`EmbeddedSettlement`]s of several accounts.
pub struct EmbeddedChain {
    seed: u64,
    chain_id: u64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for EmbeddedChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedChain")
            .field("seed", &self.seed)
            .field("chain_id", &self.chain_id)
            .finish()
    }
}

impl EmbeddedChain {
    /// A fresh chain at block 1 whose block hashes derive from `seed`.
    pub fn new(seed: u64, chain_id: u64) -> Arc<Self> {
        Arc::new(Self {
            seed,
            chain_id,
            inner: Mutex::new(Inner {
                db: CacheDB::new(SeededChain { seed }),
                block: 1,
                tx_count: 0,
                logs: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the EVM half-updated (state is committed atomically).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The seed of the block hashes.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The latest block number.
    pub fn block_number(&self) -> u64 {
        self.lock().block
    }

    /// Mines `n` empty blocks.
    pub fn mine(&self, n: u64) {
        self.lock().block += n;
    }

    /// Sets an account's ETH balance.
    pub fn fund(&self, who: Address, amount: U256) {
        let mut inner = self.lock();
        let db = &mut inner.db;
        let mut info = db.basic(who).ok().flatten().unwrap_or_default();
        info.balance = amount;
        db.insert_account_info(who, info);
    }

    /// An account's ETH balance.
    pub fn balance(&self, who: Address) -> U256 {
        let mut inner = self.lock();
        inner
            .db
            .basic(who)
            .ok()
            .flatten()
            .map(|a| a.balance)
            .unwrap_or_default()
    }

    /// An account's code.
    pub fn code(&self, who: Address) -> Bytes {
        let mut inner = self.lock();
        let db = &mut inner.db;
        match db.basic(who).ok().flatten() {
            Some(info) => match info.code {
                Some(code) => code.original_bytes(),
                None => db
                    .code_by_hash(info.code_hash)
                    .map(|c| c.original_bytes())
                    .unwrap_or_default(),
            },
            None => Bytes::new(),
        }
    }

    /// Deploys the settlement contract from `from`; returns its address. Parameters this chain cannot honour
    /// (it has no EIP-2935 history contract: a claim window above [`BLOCKHASH_WINDOW`]) are refused first.
    pub fn deploy_settlement(
        &self,
        from: Address,
        params: DeployParams,
    ) -> Result<Address, SettlementError> {
        params.validate(BLOCKHASH_WINDOW)?;
        self.deploy(from, params.deploy_code())
    }

    /// Sets the hash of block `number`, as the builder of that block could by varying its contents (tests of
    /// a builder grinding draw hashes).
    pub fn set_block_hash(&self, number: u64, hash: B256) {
        self.lock()
            .db
            .cache
            .block_hashes
            .insert(U256::from(number), hash);
    }

    /// Deploys arbitrary creation code from `from`; returns the new contract's address.
    pub fn deploy(&self, from: Address, code: Bytes) -> Result<Address, SettlementError> {
        let r = self.transact_raw(from, None, code, U256::ZERO)?;
        r.contract_address
            .ok_or_else(|| SettlementError::Halted("deployment created no contract".into()))
    }

    /// Executes and mines a transaction (`to == None` creates a contract). A revert is not mined.
    pub fn transact_raw(
        &self,
        from: Address,
        to: Option<Address>,
        data: Bytes,
        value: U256,
    ) -> Result<TxReceipt, SettlementError> {
        let mut inner = self.lock();
        let number = inner.block + 1;
        let tx = Self::tx_env(&mut inner, self.chain_id, from, to, data, value);
        let nonce = tx.nonce;
        let mut evm = self.evm(&mut inner, number);
        let out = evm.transact(tx);
        let out = match out {
            Ok(out) => {
                if out.result.is_success() {
                    evm.commit(out.state);
                }
                inner.db = evm.ctx.journaled_state.database;
                out.result
            }
            Err(e) => {
                inner.db = evm.ctx.journaled_state.database;
                return Err(SettlementError::Halted(format!("{e:?}")));
            }
        };
        match out {
            ExecutionResult::Success {
                gas, logs, output, ..
            } => {
                inner.block = number;
                inner.tx_count += 1;
                inner.logs.extend(logs.iter().cloned().map(|l| (number, l)));
                let contract_address = match output {
                    Output::Create(_, addr) => addr,
                    Output::Call(_) => None,
                };
                let mut id = [0u8; 36];
                id[..20].copy_from_slice(from.as_slice());
                id[20..28].copy_from_slice(&nonce.to_be_bytes());
                id[28..].copy_from_slice(&self.seed.to_be_bytes());
                Ok(TxReceipt {
                    tx_hash: keccak256(id),
                    block_number: number,
                    gas_used: gas.tx_gas_used(),
                    gas_price: 0,
                    contract_address,
                    logs,
                })
            }
            ExecutionResult::Revert { output, .. } => {
                Err(SettlementError::from_revert_data(output))
            }
            ExecutionResult::Halt { reason, .. } => {
                Err(SettlementError::Halted(format!("{reason:?}")))
            }
        }
    }

    /// Executes a call against the latest block without mining it.
    pub fn view_raw(
        &self,
        from: Address,
        to: Address,
        data: Bytes,
    ) -> Result<Bytes, SettlementError> {
        let mut inner = self.lock();
        let number = inner.block;
        let tx = Self::tx_env(&mut inner, self.chain_id, from, Some(to), data, U256::ZERO);
        let mut evm = self.evm(&mut inner, number);
        let out = evm.transact(tx);
        inner.db = evm.ctx.journaled_state.database;
        let out = out.map_err(|e| SettlementError::Halted(format!("{e:?}")))?;
        match out.result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => {
                Err(SettlementError::from_revert_data(output))
            }
            ExecutionResult::Halt { reason, .. } => {
                Err(SettlementError::Halted(format!("{reason:?}")))
            }
        }
    }

    /// An EVM over the chain state (moved in; move it back with `evm.ctx.journaled_state.database`) at block
    /// `number`.
    fn evm(&self, inner: &mut Inner, number: u64) -> MainnetEvm<Ctx> {
        let db = std::mem::replace(&mut inner.db, CacheDB::new(SeededChain { seed: self.seed }));
        let chain_id = self.chain_id;
        let ctx: Ctx = Context::new(db, SpecId::OSAKA)
            .modify_cfg_chained(|cfg| cfg.chain_id = chain_id)
            .modify_block_chained(|b: &mut BlockEnv| {
                b.number = U256::from(number);
                b.timestamp = U256::from(1_700_000_000 + 12 * number);
                b.gas_limit = 60_000_000;
                b.basefee = 0;
            });
        ctx.build_mainnet()
    }

    fn tx_env(
        inner: &mut Inner,
        chain_id: u64,
        from: Address,
        to: Option<Address>,
        data: Bytes,
        value: U256,
    ) -> TxEnv {
        let nonce = inner
            .db
            .basic(from)
            .ok()
            .flatten()
            .map(|a| a.nonce)
            .unwrap_or(0);
        TxEnv::builder()
            .caller(from)
            .kind(to.map_or(TxKind::Create, TxKind::Call))
            .data(data)
            .value(value)
            .gas_limit(TX_GAS_LIMIT)
            .gas_price(0)
            .nonce(nonce)
            .chain_id(Some(chain_id))
            .build_fill()
    }

    /// Logs of `contract` with topic 0 `signature` (and topic `i` equal to a value) from `from_block` on.
    pub fn logs(
        &self,
        contract: Address,
        signature: B256,
        topic: Option<(usize, B256)>,
        from_block: u64,
    ) -> Vec<Log> {
        self.lock()
            .logs
            .iter()
            .filter(|(b, l)| {
                *b >= from_block
                    && l.address == contract
                    && l.topics().first() == Some(&signature)
                    && topic.is_none_or(|(i, t)| l.topics().get(i) == Some(&t))
            })
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// Transactions mined so far.
    pub fn tx_count(&self) -> u64 {
        self.lock().tx_count
    }
}

/// The settlement contract on an [`EmbeddedChain`], seen from one account (no signatures: the sender is
/// simply set as the transaction's caller).
#[derive(Debug, Clone)]
pub struct EmbeddedSettlement {
    chain: Arc<EmbeddedChain>,
    sender: Address,
    contract: Address,
}

impl EmbeddedSettlement {
    /// Acts as `sender` on the contract at `contract`.
    pub fn new(chain: Arc<EmbeddedChain>, sender: Address, contract: Address) -> Self {
        Self {
            chain,
            sender,
            contract,
        }
    }

    /// The chain this client talks to.
    pub fn chain(&self) -> &Arc<EmbeddedChain> {
        &self.chain
    }

    /// The same contract seen from another account.
    pub fn as_sender(&self, sender: Address) -> Self {
        Self {
            chain: self.chain.clone(),
            sender,
            contract: self.contract,
        }
    }
}

impl Settlement for EmbeddedSettlement {
    fn sender(&self) -> Address {
        self.sender
    }
    fn contract(&self) -> Address {
        self.contract
    }
    async fn transact(&self, data: Bytes, value: U256) -> Result<TxReceipt, SettlementError> {
        self.chain
            .transact_raw(self.sender, Some(self.contract), data, value)
    }
    async fn view(&self, data: Bytes) -> Result<Bytes, SettlementError> {
        self.chain.view_raw(self.sender, self.contract, data)
    }
    async fn block_number(&self) -> Result<u64, SettlementError> {
        Ok(self.chain.block_number())
    }
    async fn eth_balance(&self, who: Address) -> Result<U256, SettlementError> {
        Ok(self.chain.balance(who))
    }
    async fn logs(
        &self,
        signature: B256,
        topic: Option<(usize, B256)>,
        from_block: u64,
    ) -> Result<Vec<Log>, SettlementError> {
        Ok(self.chain.logs(self.contract, signature, topic, from_block))
    }
}

/// Deterministic test accounts: `n` distinct addresses derived from `label`.
pub fn accounts(label: &str, n: usize) -> Vec<Address> {
    (0..n)
        .map(|i| Address::from_word(keccak256(format!("{label}/{i}"))))
        .collect()
}
