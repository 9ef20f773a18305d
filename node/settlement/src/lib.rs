//! A node's settlement (`docs/settlement.md`): it turns the market's owed ledger into lottery nanopayments and
//! claims the lotteries it wins.
//!
//! - As a **payer** (a requester that owes workers), every `poll` it looks at the ledger; once what it owes
//!   to workers with a known settlement address reaches `threshold_wei` (or `period` has passed since its last
//!   lottery), it builds one lottery over them, records it with the ledger debit in one database transaction,
//!   commits it on chain, and sends each payee a [`LotteryNotice`](jobmesh_market::messages::LotteryNotice).
//!   A lottery whose commit is refused (e.g. the free deposit is too small) is abandoned and its amounts go
//!   back to the ledger; one whose commit outcome is unknown after a crash is resolved from the chain. Each
//!   lottery's secret is kept in its record (written before the commit) and sent to the payees once the draw
//!   block is mined.
//! - As a **payee** (a worker), it checks each notice — the file is the lottery the id names, its intervals
//!   exactly cover `[0, total)`, this node's address has a leaf at least what its ledger says the payer owes it
//!   (`payee`), the draw block is at most `max_draw_ahead` blocks ahead, the lottery is pending on chain — keeps
//!   it, checks the payer's secret when it arrives (against the committed secret hash), and once the draw block
//!   has passed claims it if it won: with `claimAndWithdraw`, straight to its wallet, or with `claim`, into its
//!   deposit account ([`SettlerConfig::claim_to`]). If nobody won in the claim window (the payer withheld its
//!   secret), it claims its share.
//!
//! Owns: the settlement loop and its lottery records (kept in the market database, next to the ledger).
//! Must not touch: the contract's code or lottery maths (`jobmesh-contracts`, `jobmesh-lottery`) or the market's
//! job logic: it sees the market's database only through the narrow [`ledger::Ledger`] trait (the owed ledger,
//! payer accounts, receipts, worker addresses and its own lottery records).

mod amount;
pub mod ledger;
mod payee;
pub mod refusal;
mod service;

use std::time::Duration;

use jobmesh_contracts::alloy::primitives::{Address, B256};
use jobmesh_contracts::lottery::Lottery;
use jobmesh_contracts::TxReceipt;
use jobmesh_store::Cid;
use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

pub use amount::{parse_amount, AmountError};
pub use jobmesh_contracts::Chain;
pub use payee::{CoveredDebt, ROUNDING_PER_RECEIPT_WEI};
pub use service::{PayerStanding, SettlementReport, Settler, SettlerError};

/// The fewest blocks from the head a lottery is built at to its draw: its commit is mined in a later block than
/// that head, and the contract refuses a draw block sooner than its `minDrawDelay` (at least 1) after the
/// commit's block. A node also draws at least `minDrawDelay + 1` blocks ahead.
pub const MIN_DRAW_IN: u64 = 2;

/// When a payer builds lotteries and how it follows the chain.
#[derive(Debug, Clone)]
pub struct SettlerConfig {
    /// Build a lottery as soon as this much (wei) is owed to payable workers.
    pub threshold_wei: u128,
    /// Otherwise build one when anything is owed and this long has passed since the last one.
    pub period: Duration,
    /// The draw block is this many blocks after the head a lottery is built at (at least [`MIN_DRAW_IN`]).
    pub draw_in_blocks: u64,
    /// How often the chain and the ledger are looked at.
    pub poll: Duration,
    /// Most payees in one lottery (the largest amounts first; the rest wait for the next one).
    pub max_payees: usize,
    /// Where this node's winnings go. `SettlerConfig::default()` keeps [`ClaimTo::Deposit`] (embedders that
    /// audit the contract's balance against deposits, like the simulator, count on it); `jobmesh node start`
    /// claims to [`ClaimTo::Wallet`] unless given `--claim-to deposit`.
    pub claim_to: ClaimTo,
    /// As a payee: the most blocks after the chain's head a lottery's draw block may be (a draw further ahead
    /// is refused: it would hold the payment back for as long).
    pub max_draw_ahead: u64,
    /// As a payee: receipts that arrived less than this long before a lottery's notice may have been on their
    /// way while the payer built the lottery, so the lottery need not cover them (they stay owed until a later
    /// one does). See `docs/settlement.md`, "What a lottery must pay".
    pub receipt_grace: Duration,
}

/// The default of [`SettlerConfig::max_draw_ahead`]: about 3 h 20 min of 12-second blocks.
pub const DEFAULT_MAX_DRAW_AHEAD: u64 = 1_000;

/// How a payer builds its lotteries. Anything but [`PayerConduct::Honest`] is a fault injected by tests and the
/// simulator ([`Settler::set_conduct`]), never set by `jobmesh node start`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayerConduct {
    /// Each payee's leaf is what the ledger owes it.
    #[default]
    Honest,
    /// Byzantine: takes each payee's full amount out of the ledger but gives it a 1-wei leaf.
    OneWeiLeaves,
}

/// Where a won lottery's value goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ClaimTo {
    /// `claimAndWithdraw`: sent to this node's wallet in the claim itself (one transaction, no time lock).
    Wallet,
    /// `claim`: credited to this node's deposit account (then `requestWithdrawal`, the time lock, `withdraw`).
    Deposit,
}

impl std::fmt::Display for ClaimTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClaimTo::Wallet => "wallet",
            ClaimTo::Deposit => "deposit",
        })
    }
}

impl Default for SettlerConfig {
    fn default() -> Self {
        SettlerConfig {
            threshold_wei: 1_000_000_000_000_000, // 0.001 ETH
            period: Duration::from_secs(600),
            draw_in_blocks: 5,
            poll: Duration::from_secs(2),
            max_payees: 1000,
            claim_to: ClaimTo::Deposit,
            max_draw_ahead: DEFAULT_MAX_DRAW_AHEAD,
            receipt_grace: Duration::from_secs(60),
        }
    }
}

/// One payee of a lottery this node pays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payee {
    /// The worker.
    #[serde(with = "jobmesh_market::wire_ids::peer")]
    pub peer: PeerId,
    /// Its settlement address.
    pub address: Address,
    /// What its leaf pays (taken out of the ledger).
    pub wei: u128,
    /// Whether it acknowledged the notice (or refused it: then `refusal` says why).
    pub notified: bool,
    /// Why it refused the notice, if it did.
    pub refusal: Option<String>,
    /// Whether it acknowledged the payer's secret (sent once the draw block is mined).
    #[serde(default)]
    pub revealed: bool,
}

/// Which side of a lottery this node is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// This node pays these workers.
    Payer {
        /// Every payee, in leaf order.
        payees: Vec<Payee>,
    },
    /// This node is paid through leaf `leaf`, by the requester `payer_peer`.
    Payee {
        /// Who sent the notice.
        #[serde(with = "jobmesh_market::wire_ids::peer")]
        payer_peer: PeerId,
        /// This node's leaf.
        leaf: usize,
    },
}

/// Where a lottery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LotteryStatus {
    /// Recorded (ledger debited), commit not yet confirmed.
    Built,
    /// Committed on chain; waiting for its draw.
    Committed,
    /// Drawn: this node (a payee) won and claimed it (see [`LotteryRecord::claimed_to`]).
    Claimed,
    /// Drawn: this node (a payee) did not win.
    Lost,
    /// Payer: claimed by its winner.
    Paid,
    /// Payer (older contract versions only): nobody claimed it in the claim window; its value went back to the
    /// deposit.
    Reclaimed,
    /// Nobody won it in the claim window (its payer withheld the secret, or the winner did not claim): each
    /// payee takes its share; as a payee, this node took its own.
    Shared,
    /// Payer: never committed (its amounts went back to the ledger).
    Abandoned,
    /// Payee: refused as payment (its leaf is shorter than what the payer owes, or its draw is too far ahead);
    /// what the payer owes stays owed.
    Refused,
}

impl LotteryStatus {
    /// Whether nothing more will happen to it.
    pub fn is_final(self) -> bool {
        !matches!(self, LotteryStatus::Built | LotteryStatus::Committed)
    }
}

/// A lottery as this node keeps it (payer or payee side).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotteryRecord {
    /// The description and every leaf.
    pub lottery: Lottery,
    /// The CID of its JSON file (what payees fetch).
    #[serde(with = "jobmesh_market::wire_ids::cid")]
    pub file: Cid,
    /// Payer or payee.
    pub side: Side,
    /// Where it is.
    pub status: LotteryStatus,
    /// When it was recorded (unix ms).
    pub created_ms: u64,
    /// Gas this node spent on it (commit, claim or share claim).
    pub gas_used: u64,
    /// What that gas cost this node, in wei (0 on the embedded chain; absent in older records).
    #[serde(default)]
    pub fees_wei: u128,
    /// Where this node's winnings went, once it claimed (absent in older records: their claims credited the
    /// deposit account).
    #[serde(default)]
    pub claimed_to: Option<ClaimTo>,
    /// The payer's secret: the payer's own (drawn when the lottery is built, kept so a restart loses nothing),
    /// or, for a payee, the one the payer revealed (checked against the committed hash). Absent until then.
    #[serde(default)]
    pub secret: Option<B256>,
    /// The last thing that happened, in words.
    pub note: String,
}

impl LotteryRecord {
    /// The lottery id.
    pub fn id(&self) -> B256 {
        self.lottery.id()
    }

    /// Adds a mined transaction's gas and fee to what this node spent on the lottery.
    pub fn spent(&mut self, receipt: &TxReceipt) {
        self.gas_used += receipt.gas_used;
        self.fees_wei = self
            .fees_wei
            .saturating_add(receipt.fee().saturating_to::<u128>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobmesh_contracts::alloy::primitives::U256;
    use jobmesh_contracts::lottery;
    use jobmesh_market::messages::{from_cbor, to_cbor};

    #[test]
    fn a_record_written_before_fees_and_claim_targets_were_kept_still_reads() {
        let lottery = lottery::build(
            Address::repeat_byte(1),
            0,
            &[(Address::repeat_byte(2), U256::from(5))],
            10,
            B256::ZERO,
        )
        .unwrap();
        let record = LotteryRecord {
            lottery,
            file: Cid::new_v1(
                0x55,
                cid::multihash::Multihash::wrap(0x1e, &[7; 32]).unwrap(),
            ),
            side: Side::Payee {
                payer_peer: PeerId::random(),
                leaf: 0,
            },
            status: LotteryStatus::Claimed,
            created_ms: 1,
            gas_used: 50_000,
            fees_wei: 7,
            claimed_to: Some(ClaimTo::Wallet),
            secret: Some(B256::repeat_byte(9)),
            note: "won".into(),
        };
        assert_eq!(
            from_cbor::<LotteryRecord>(&to_cbor(&record)).unwrap(),
            record
        );
        // As an older version wrote it: without the two fields.
        let mut value = ciborium::Value::serialized(&record).unwrap();
        let ciborium::Value::Map(fields) = &mut value else {
            panic!("a record is a CBOR map")
        };
        let before = fields.len();
        fields.retain(|(k, _)| !matches!(k.as_text(), Some("fees_wei" | "claimed_to" | "secret")));
        assert_eq!(fields.len(), before - 3);
        let old: LotteryRecord = from_cbor(&to_cbor(&value)).unwrap();
        assert_eq!((old.fees_wei, old.claimed_to, old.secret), (0, None, None));
        assert_eq!(old.gas_used, 50_000);
    }

    #[test]
    fn claim_targets_parse_as_they_print() {
        use clap::ValueEnum as _;
        for to in [ClaimTo::Wallet, ClaimTo::Deposit] {
            assert_eq!(ClaimTo::from_str(&to.to_string(), false), Ok(to));
        }
        assert!(ClaimTo::from_str("bank", false).is_err());
    }
}
