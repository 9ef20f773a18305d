//! The settlement's narrow view of the market's database: what it may read (what each worker is owed, each
//! payer's credit and receipts, the workers' addresses, its own lottery records) and write (a lottery record
//! with the ledger debits it settles, atomically). Nothing else of the market's state is reachable from here,
//! as forest's bitswap sees its blocks only through its `store.rs` trait.
//!
//! [`MarketDb`] implements it; the settlement service holds it as `Arc<dyn Ledger>`.

use jobmesh_market::db::{DbError, MarketDb, PayerCredit};
use libp2p_identity::PeerId;

use crate::LotteryRecord;

/// What the settlement reads and writes of the market's ledger.
pub trait Ledger: Send + Sync {
    /// What this node (as a requester) owes each worker, in wei.
    fn owed(&self) -> Result<Vec<(PeerId, u128)>, DbError>;
    /// The payee-side account of one payer: what it has been credited with so far.
    fn payer_credit(&self, payer: &PeerId) -> Result<PayerCredit, DbError>;
    /// Every payer's account.
    fn payer_credits(&self) -> Result<Vec<(PeerId, PayerCredit)>, DbError>;
    /// Receipts `payer` sent this node (as a worker) after `since_ms`: their total in wei and their number.
    fn receipts_since(&self, payer: &PeerId, since_ms: u64) -> Result<(u128, u64), DbError>;
    /// Whether `payer` ever ran a job on this node, and the settlement addresses it announced.
    fn requester_addresses(&self, payer: &PeerId) -> Result<(bool, Vec<[u8; 20]>), DbError>;
    /// The settlement address each worker announced.
    fn addresses(&self) -> Result<Vec<(PeerId, [u8; 20])>, DbError>;
    /// The next lottery nonce this node may use.
    fn next_nonce(&self) -> Result<u64, DbError>;
    /// One lottery record.
    fn lottery(&self, id: &[u8; 32]) -> Result<Option<LotteryRecord>, DbError>;
    /// Every lottery record.
    fn lotteries(&self) -> Result<Vec<LotteryRecord>, DbError>;
    /// Stores a lottery record, applies its debits to the owed ledger and (if given) moves the nonce on, in
    /// one transaction.
    fn put_lottery(
        &self,
        id: &[u8; 32],
        record: &LotteryRecord,
        ledger_changes: &[(PeerId, i128)],
        next_nonce: Option<u64>,
    ) -> Result<(), DbError>;
    /// Stores a lottery received as payment and credits its payer's account, in one transaction.
    fn put_payee_lottery(
        &self,
        id: &[u8; 32],
        record: &LotteryRecord,
        payer: &PeerId,
        paid: u128,
        receipts_paid: u64,
    ) -> Result<(), DbError>;
}

impl Ledger for MarketDb {
    fn owed(&self) -> Result<Vec<(PeerId, u128)>, DbError> {
        self.ledger()
    }
    fn payer_credit(&self, payer: &PeerId) -> Result<PayerCredit, DbError> {
        MarketDb::payer_credit(self, payer)
    }
    fn payer_credits(&self) -> Result<Vec<(PeerId, PayerCredit)>, DbError> {
        MarketDb::payer_credits(self)
    }
    fn receipts_since(&self, payer: &PeerId, since_ms: u64) -> Result<(u128, u64), DbError> {
        MarketDb::receipts_since(self, payer, since_ms)
    }
    fn requester_addresses(&self, payer: &PeerId) -> Result<(bool, Vec<[u8; 20]>), DbError> {
        MarketDb::requester_addresses(self, payer)
    }
    fn addresses(&self) -> Result<Vec<(PeerId, [u8; 20])>, DbError> {
        MarketDb::addresses(self)
    }
    fn next_nonce(&self) -> Result<u64, DbError> {
        MarketDb::next_nonce(self)
    }
    fn lottery(&self, id: &[u8; 32]) -> Result<Option<LotteryRecord>, DbError> {
        MarketDb::lottery(self, id)
    }
    fn lotteries(&self) -> Result<Vec<LotteryRecord>, DbError> {
        MarketDb::lotteries(self)
    }
    fn put_lottery(
        &self,
        id: &[u8; 32],
        record: &LotteryRecord,
        ledger_changes: &[(PeerId, i128)],
        next_nonce: Option<u64>,
    ) -> Result<(), DbError> {
        MarketDb::put_lottery(self, id, record, ledger_changes, next_nonce)
    }
    fn put_payee_lottery(
        &self,
        id: &[u8; 32],
        record: &LotteryRecord,
        payer: &PeerId,
        paid: u128,
        receipts_paid: u64,
    ) -> Result<(), DbError> {
        MarketDb::put_payee_lottery(self, id, record, payer, paid, receipts_paid)
    }
}
