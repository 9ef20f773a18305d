//! The running settlement of one node: the payer's and the payee's halves of the lottery life cycle, driven by
//! one timer, and the answers to lottery notices.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobmesh_contracts::alloy::primitives::{Address, B256, U256};
use jobmesh_contracts::lottery::{self, Lottery, LotteryError, MAX_TOTAL};
use jobmesh_contracts::{AccountState, LotteryState, Settlement, SettlementError};
use jobmesh_store::unixfs::Profile;
use jobmesh_store::Cid;
use libp2p_identity::PeerId;
use serde::Serialize;
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use super::ledger::Ledger;
use super::payee::{self, CoveredDebt, Verdict};
use super::refusal::NoticeRefusal;
use super::{
    Chain, ClaimTo, LotteryRecord, LotteryStatus, Payee, PayerConduct, SettlerConfig, Side,
    MIN_DRAW_IN,
};
use jobmesh_market::db::DbError;
use jobmesh_market::messages::{LotteryNotice, Request, Response};
use jobmesh_market::service::{now_ms, IncomingLottery};
use jobmesh_market::{AskError, Market};

/// How long a payee waits for a lottery file from its payer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a payer waits for a payee to answer a notice.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a payer leaves an unreachable payee alone before sending it a notice again.
const NOTICE_BACKOFF: Duration = Duration::from_secs(5);

/// Why a settlement operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SettlerError {
    /// The chain refused or could not be reached.
    #[error(transparent)]
    Chain(#[from] SettlementError),
    /// The market database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Storing a lottery file failed.
    #[error("cannot store the lottery file: {0}")]
    Store(String),
    /// A lottery could not be built.
    #[error(transparent)]
    Lottery(#[from] lottery::LotteryError),
    /// Every one of the payer's 65,536 contract lanes holds a pending lottery.
    #[error("all 65,536 lanes hold pending lotteries")]
    LanesFull,
    /// The 2^48 lotteries a payer's nonces can number have all been used.
    #[error("no unused lottery nonce is left")]
    NoncesExhausted,
}

/// The environment variable naming the failpoint at which the process aborts (crash tests).
const FAILPOINT_VAR: &str = "JOBMESH_FAILPOINT";

/// Crash-test hook: aborts the process at once — as a kill would, nothing after this point runs — when
/// `$JOBMESH_FAILPOINT` is `point`. Unset (always, outside those tests) it does nothing.
fn failpoint(point: &str) {
    if std::env::var_os(FAILPOINT_VAR).is_some_and(|v| v == point) {
        eprintln!("{FAILPOINT_VAR}={point}: aborting here");
        std::process::abort();
    }
}

/// Lanes per payer in the contract (`uint16(nonce)`).
const LANES: u64 = 1 << 16;

/// The nonce of a payer's next lottery in `lane`, above every nonce used before, and the new bound to store.
/// `used_below` is the settlement metadata's bound: every nonce this payer used is below it (0 at first). A
/// bound written by an older version (one nonce after another) works the same. Nonces are
/// `(counter << 16) | lane`, one counter value per lottery, so the bound is always a multiple of 65,536.
fn nonce_in_lane(used_below: u64, lane: u16) -> Result<(u64, u64), SettlerError> {
    let counter = used_below.div_ceil(LANES);
    let base = counter
        .checked_mul(LANES)
        .ok_or(SettlerError::NoncesExhausted)?;
    let bound = base
        .checked_add(LANES)
        .ok_or(SettlerError::NoncesExhausted)?;
    Ok((base | u64::from(lane), bound))
}

/// A node's settlement service (cheap to clone).
#[derive(Clone)]
pub struct Settler {
    inner: Arc<Inner>,
}

struct Inner {
    market: Market,
    /// The market's ledger, the only part of the market's database settlement reads or writes.
    ledger: Arc<dyn Ledger>,
    chain: Chain,
    cfg: SettlerConfig,
    /// Blocks after a draw reserved for the winner (the contract's `claimWindow`).
    claim_window: u64,
    /// Fewest blocks from a commit to its draw (the contract's `minDrawDelay`).
    min_draw_delay: u64,
    /// Held around every read-modify-write of a lottery record, so a secret taken from a notice and a
    /// round's update of the same record never overwrite each other.
    records: std::sync::Mutex<()>,
    /// When this node last built a lottery (unix ms); the period counts from here.
    last_built_ms: AtomicU64,
    /// One round at a time (the timer and explicit calls never overlap).
    round: Mutex<()>,
    /// Why the last round could not build a lottery, if it could not.
    blocked: std::sync::Mutex<Option<String>>,
    /// Payees that did not answer a notice, and when to try them again.
    unreachable: std::sync::Mutex<HashMap<PeerId, std::time::Instant>>,
    /// How this node builds its lotteries (a fault only tests inject).
    conduct: std::sync::Mutex<PayerConduct>,
    /// One notice judged at a time: each is checked against what the lotteries accepted before it paid.
    judging: Mutex<()>,
}

/// One lottery in a [`SettlementReport`].
#[derive(Debug, Clone, Serialize)]
pub struct LotteryRow {
    /// The lottery id.
    pub id: B256,
    /// `payer` or `payee`.
    pub side: &'static str,
    /// Where it is.
    pub status: LotteryStatus,
    /// The payer's address.
    pub payer: Address,
    /// Its value (paid in full to the winner), in wei.
    pub total: String,
    /// How many payees.
    pub payees: usize,
    /// The block whose hash draws it.
    pub draw_block: u64,
    /// This node's share as a payee, in wei.
    pub my_share: Option<String>,
    /// Gas this node spent on it.
    pub gas_used: u64,
    /// What that gas cost this node, in wei.
    pub fees_wei: String,
    /// Where this node's winnings went, if it won and claimed it (`wallet` or `deposit`).
    pub claimed_to: Option<ClaimTo>,
    /// The CID of its file.
    pub file: String,
    /// The last thing that happened.
    pub note: String,
}

/// One requester's account with this worker, in a [`SettlementReport`].
#[derive(Debug, Clone, Serialize)]
pub struct PayerStanding {
    /// The requester.
    pub payer: String,
    /// What its receipts say it owes, in wei.
    pub credited: String,
    /// What the lotteries this worker accepted from it paid, in wei.
    pub paid: String,
    /// What it owes unpaid (`credited − paid`, at least 0), in wei.
    pub unpaid: String,
}

/// What a node's settlement looks like now.
#[derive(Debug, Clone, Serialize)]
pub struct SettlementReport {
    /// This node's settlement address.
    pub address: Address,
    /// The contract.
    pub contract: Address,
    /// The chain's latest block.
    pub block: u64,
    /// Free deposit balance, in wei.
    pub balance: String,
    /// The settlement address's own ETH (its wallet, where `claimAndWithdraw` sends winnings), in wei.
    pub wallet: String,
    /// Pending withdrawal, in wei.
    pub unlocking: String,
    /// First block of the pending withdrawal.
    pub unlock_block: u64,
    /// Value held by this node's committed, unsettled lotteries, in wei.
    pub reserved: String,
    /// Owed to workers and not yet in a lottery, in wei.
    pub owed_unsettled: String,
    /// Put into lotteries this node paid, in wei.
    pub paid_into_lotteries: String,
    /// This node's shares in lotteries it was paid with, in wei (its expected income).
    pub expected_income: String,
    /// Won and claimed by this node, in wei (to its wallet and to its deposit account).
    pub won: String,
    /// The part of `won` sent straight to this node's wallet (`claimAndWithdraw`), in wei.
    pub won_to_wallet: String,
    /// Why no lottery could be built in the last round, if so (e.g. the deposit is too low).
    pub blocked: Option<String>,
    /// Lotteries this node refused as payment (too short a leaf, too far a draw).
    pub refused: usize,
    /// As a worker: what each requester owes it and did not pay with an accepted lottery.
    pub unpaid_credit: Vec<PayerStanding>,
    /// Every lottery this node pays or is paid by, newest first.
    pub lotteries: Vec<LotteryRow>,
}

impl Settler {
    /// Starts settling for `market` on `chain`: takes the market's lottery notices and runs a round every
    /// `cfg.poll`. `chain`'s sender is this node's settlement address (workers should announce the same one).
    pub async fn start(
        market: Market,
        chain: Chain,
        cfg: SettlerConfig,
    ) -> Result<Settler, SettlerError> {
        let params = chain.params().await?;
        let ledger: Arc<dyn Ledger> = Arc::new(market.db().clone());
        let last_built = ledger
            .lotteries()?
            .iter()
            .filter(|r| matches!(r.side, Side::Payer { .. }))
            .map(|r| r.created_ms)
            .max()
            .unwrap_or_else(now_ms);
        let settler = Settler {
            inner: Arc::new(Inner {
                market: market.clone(),
                ledger,
                chain,
                cfg,
                claim_window: params.claim_window,
                min_draw_delay: params.min_draw_delay,
                records: std::sync::Mutex::new(()),
                last_built_ms: AtomicU64::new(last_built),
                round: Mutex::new(()),
                blocked: std::sync::Mutex::new(None),
                unreachable: std::sync::Mutex::new(HashMap::new()),
                conduct: std::sync::Mutex::new(PayerConduct::Honest),
                judging: Mutex::new(()),
            }),
        };
        // Both loops end when the market stops (its notices channel closes then, too).
        let mut notices = market.take_lottery_notices();
        let me = settler.clone();
        tokio::spawn(async move {
            while let Some(incoming) = notices.recv().await {
                let me = me.clone();
                tokio::spawn(async move { me.on_notice(incoming).await });
            }
        });
        let me = settler.clone();
        tokio::spawn(async move {
            let mut timer = tokio::time::interval(me.inner.cfg.poll);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = me.inner.market.stopped() => return,
                    _ = timer.tick() => {}
                }
                if let Err(e) = me.round().await {
                    debug!(error = %e, "settlement round failed");
                }
            }
        });
        info!(address = %settler.address(), contract = %settler.inner.chain.contract(), "settlement started");
        Ok(settler)
    }

    /// This node's settlement address.
    pub fn address(&self) -> Address {
        self.inner.chain.sender()
    }

    /// The chain client.
    pub fn chain(&self) -> &Chain {
        &self.inner.chain
    }

    /// Fault injection for tests and the simulator: from now on this payer builds its lotteries as `conduct`
    /// says.
    #[doc(hidden)]
    pub fn set_conduct(&self, conduct: PayerConduct) {
        *self.inner.conduct.lock().unwrap_or_else(|e| e.into_inner()) = conduct;
    }

    /// Every lottery record, newest first.
    pub fn records(&self) -> Result<Vec<LotteryRecord>, SettlerError> {
        let mut records: Vec<LotteryRecord> = self.inner.ledger.lotteries()?;
        records.sort_by_key(|r| std::cmp::Reverse((r.created_ms, r.lottery.description.nonce)));
        Ok(records)
    }

    /// Builds a lottery over everything owed now, without waiting for the period or the threshold (before a
    /// node stops, or at the end of a simulation), as one settlement round.
    pub async fn settle_now(&self) -> Result<(), SettlerError> {
        self.inner.last_built_ms.store(0, Ordering::Relaxed);
        self.round().await
    }

    /// Deposits `amount` wei into this node's settlement account.
    pub async fn deposit(&self, amount: U256) -> Result<AccountState, SettlerError> {
        let chain = &self.inner.chain;
        chain.deposit(amount).await?;
        Ok(chain.account(chain.sender()).await?)
    }

    /// Requests a time-locked withdrawal of `amount` wei.
    pub async fn request_withdrawal(&self, amount: U256) -> Result<AccountState, SettlerError> {
        let chain = &self.inner.chain;
        chain.request_withdrawal(amount).await?;
        Ok(chain.account(chain.sender()).await?)
    }

    /// The settlement as it is now: deposit, lotteries, what was paid and won.
    pub async fn report(&self) -> Result<SettlementReport, SettlerError> {
        let chain = &self.inner.chain;
        let me = chain.sender();
        let block = chain.block_number().await?;
        let account = chain.account(me).await?;
        let wallet = chain.eth_balance(me).await?;
        let owed: u128 = self
            .inner
            .ledger
            .owed()?
            .iter()
            .map(|(_, w)| *w)
            .fold(0u128, u128::saturating_add);
        let (mut reserved, mut paid, mut expected, mut won, mut won_to_wallet) =
            (U256::ZERO, U256::ZERO, U256::ZERO, U256::ZERO, U256::ZERO);
        let (mut rows, mut refused) = (Vec::new(), 0);
        for r in self.records()? {
            let d = r.lottery.description;
            let (side, my_share) = match &r.side {
                Side::Payer { .. } => {
                    if !matches!(r.status, LotteryStatus::Abandoned) {
                        paid += d.total;
                    }
                    if !r.status.is_final() {
                        reserved += d.total;
                    }
                    ("payer", None)
                }
                Side::Payee { leaf, .. } => {
                    let share = r.lottery.leaves.get(*leaf).map_or(U256::ZERO, |l| l.length);
                    if r.status == LotteryStatus::Refused {
                        refused += 1;
                    } else {
                        expected += share;
                    }
                    match r.status {
                        LotteryStatus::Claimed => {
                            won += d.total;
                            if r.claimed_to == Some(ClaimTo::Wallet) {
                                won_to_wallet += d.total;
                            }
                        }
                        LotteryStatus::Shared => won += share,
                        _ => {}
                    }
                    ("payee", Some(share.to_string()))
                }
            };
            rows.push(LotteryRow {
                id: r.id(),
                side,
                status: r.status,
                payer: d.payer,
                total: d.total.to_string(),
                payees: r.lottery.leaves.len(),
                draw_block: d.draw_block,
                my_share,
                gas_used: r.gas_used,
                fees_wei: r.fees_wei.to_string(),
                claimed_to: r.claimed_to,
                file: r.file.to_string(),
                note: r.note.clone(),
            });
        }
        Ok(SettlementReport {
            address: me,
            contract: chain.contract(),
            block,
            balance: account.balance.to_string(),
            wallet: wallet.to_string(),
            unlocking: account.unlocking.to_string(),
            unlock_block: account.unlock_block,
            reserved: reserved.to_string(),
            owed_unsettled: owed.to_string(),
            paid_into_lotteries: paid.to_string(),
            expected_income: expected.to_string(),
            won: won.to_string(),
            won_to_wallet: won_to_wallet.to_string(),
            blocked: self
                .inner
                .blocked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            refused,
            unpaid_credit: self.standings()?,
            lotteries: rows,
        })
    }

    /// Every requester's account with this worker.
    fn standings(&self) -> Result<Vec<PayerStanding>, SettlerError> {
        let credits = self.inner.ledger.payer_credits()?;
        Ok(credits
            .into_iter()
            .map(|(peer, c)| PayerStanding {
                payer: peer.to_string(),
                credited: c.credited.to_string(),
                paid: c.paid.to_string(),
                unpaid: c.unpaid().to_string(),
            })
            .collect())
    }

    /// One settlement round: moves every unsettled lottery on (commit, notify, reveal, claim, share), then
    /// builds a new lottery if enough is owed. Runs by itself every `poll`; callable to settle at once.
    pub async fn round(&self) -> Result<(), SettlerError> {
        let _one_at_a_time = self.inner.round.lock().await;
        let head = self.inner.chain.block_number().await?;
        let mut building = false;
        // Lanes of this payer's unsettled lotteries (as they were before this round: a lane freed meanwhile
        // is reused next round).
        let mut busy_lanes = HashSet::new();
        // Oldest first: a payee judges each lottery against what the ones before it paid.
        for record in self.records()?.into_iter().rev() {
            if record.status.is_final() {
                continue;
            }
            if matches!(record.side, Side::Payer { .. }) {
                busy_lanes.insert(record.lottery.description.lane());
                building |= record.status == LotteryStatus::Built;
            }
            let id = record.id();
            let result = match record.side {
                Side::Payer { .. } => self.advance_paid(record, head).await,
                Side::Payee { leaf, .. } => self.advance_won(record, leaf, head).await,
            };
            if let Err(e) = result {
                debug!(lottery = %id, error = %e, "lottery not advanced this round");
            }
        }
        if !building {
            self.maybe_build(&busy_lanes).await?;
        }
        Ok(())
    }

    /// Writes a record, keeping a payer's secret a notice stored since the record was read.
    fn save(&self, record: &LotteryRecord) -> Result<(), DbError> {
        let db = self.inner.ledger.as_ref();
        let _guard = self.inner.records.lock().unwrap_or_else(|e| e.into_inner());
        let id = record.id().0;
        if record.secret.is_none() {
            if let Some(stored) = db.lottery(&id)?.and_then(|r| r.secret) {
                let mut merged = record.clone();
                merged.secret = Some(stored);
                db.put_lottery(&id, &merged, &[], None)?;
                return Ok(());
            }
        }
        db.put_lottery(&id, record, &[], None)?;
        Ok(())
    }

    /// Payer side: confirm the commit, notify the payees, reveal the secret once the draw block is mined, and
    /// after the claim window record an unclaimed lottery as shared among its payees.
    async fn advance_paid(&self, mut record: LotteryRecord, head: u64) -> Result<(), SettlerError> {
        let chain = &self.inner.chain;
        let d = record.lottery.description;
        match record.status {
            LotteryStatus::Built => match chain.lottery_state(&d).await? {
                LotteryState::Pending => {
                    record.status = LotteryStatus::Committed;
                    record.note = "commit confirmed".into();
                    self.save(&record)?;
                }
                // Its commit lands in block head + 1 at the earliest: the contract wants the draw
                // `minDrawDelay` blocks after that.
                _ if d.draw_block > head + self.inner.min_draw_delay => self.commit(record).await?,
                _ => self.abandon(record, "its commit was not confirmed before its draw block")?,
            },
            LotteryStatus::Committed => {
                // Before the draw block is mined the notice carries no secret; after it, the secret.
                let reveal = head > d.draw_block;
                self.notify(&mut record, reveal).await?;
                if !reveal {
                    return Ok(());
                }
                match chain.lottery_state(&d).await? {
                    LotteryState::Pending if head > d.draw_block + self.inner.claim_window => {
                        record.status = LotteryStatus::Shared;
                        record.note =
                            "nobody won in the claim window: every payee takes its share".into();
                        warn!(lottery = %record.id(), "lottery not won in its claim window; its payees take their shares");
                        self.save(&record)?;
                    }
                    LotteryState::Pending => {}
                    _ => {
                        record.status = LotteryStatus::Paid;
                        record.note = "claimed by its winner".into();
                        self.save(&record)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends the notice to every payee that has not answered it yet; with `reveal` (the draw block is mined),
    /// a notice carrying the lottery's secret to every payee that has not answered that one yet.
    async fn notify(&self, record: &mut LotteryRecord, reveal: bool) -> Result<(), SettlerError> {
        let secret = record.secret.filter(|_| reveal).map(|s| s.0);
        let Side::Payer { payees } = &mut record.side else {
            return Ok(());
        };
        if reveal && secret.is_none() {
            warn!(lottery = %record.lottery.id(), "no secret kept for this lottery: its payees will take their shares");
            return Ok(());
        }
        let done = |p: &Payee| if reveal { p.revealed } else { p.notified };
        let notice = LotteryNotice {
            lottery_id: record.lottery.id().0,
            file: record.file,
            secret,
        };
        let now = std::time::Instant::now();
        let pending: Vec<usize> = {
            let unreachable = self
                .inner
                .unreachable
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            (0..payees.len())
                .filter(|&i| !done(&payees[i]))
                .filter(|&i| unreachable.get(&payees[i].peer).is_none_or(|t| *t <= now))
                .collect()
        };
        if pending.is_empty() {
            return Ok(());
        }
        let market = &self.inner.market;
        let answers = futures::future::join_all(pending.iter().map(|&i| {
            let request = Request::Lottery(notice.clone());
            let peer = payees[i].peer;
            async move {
                tokio::time::timeout(NOTICE_TIMEOUT, market.ask(peer, Vec::new(), &request))
                    .await
                    .unwrap_or_else(|_| Err(AskError::TimedOut))
            }
        }))
        .await;
        let mut changed = false;
        for (i, answer) in pending.into_iter().zip(answers) {
            match answer {
                Ok(Response::Ack) => {
                    payees[i].notified = true;
                    payees[i].revealed |= reveal;
                    changed = true;
                }
                Ok(Response::Reject { reason }) => {
                    warn!(lottery = %notice_id(&notice), payee = %payees[i].peer, %reason, "payee refused a lottery");
                    payees[i].notified = true;
                    payees[i].revealed |= reveal;
                    payees[i].refusal = Some(reason);
                    changed = true;
                }
                Ok(other) => debug!(?other, "unexpected answer to a lottery notice"),
                Err(e) => {
                    debug!(payee = %payees[i].peer, error = %e, "lottery notice not delivered yet");
                    self.inner
                        .unreachable
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(payees[i].peer, now + NOTICE_BACKOFF);
                }
            }
        }
        if changed {
            let answered = payees.iter().filter(|p| done(p)).count();
            let what = if reveal {
                "told the secret"
            } else {
                "notified"
            };
            record.note = format!("{answered}/{} payees {what}", payees.len());
            self.save(record)?;
        }
        Ok(())
    }

    /// Commits a built lottery; a refusal abandons it (its amounts go back to the ledger), an unknown outcome
    /// leaves it built (the next round asks the chain).
    async fn commit(&self, mut record: LotteryRecord) -> Result<(), SettlerError> {
        let d = record.lottery.description;
        match self.inner.chain.commit(&d).await {
            Ok(r) => {
                record.status = LotteryStatus::Committed;
                record.spent(&r);
                record.note = format!("committed in block {}", r.block_number);
                info!(lottery = %record.id(), total = %d.total, payees = record.lottery.leaves.len(), gas = r.gas_used, "lottery committed");
                Ok(self.save(&record)?)
            }
            Err(e @ SettlementError::Reverted { .. }) => {
                self.abandon(record, &format!("the contract refused the commit: {e}"))
            }
            Err(e) => {
                record.note =
                    format!("commit outcome unknown ({e}); checking the chain next round");
                Ok(self.save(&record)?)
            }
        }
    }

    /// Gives an uncommitted lottery's amounts back to the ledger.
    fn abandon(&self, mut record: LotteryRecord, why: &str) -> Result<(), SettlerError> {
        let Side::Payer { payees } = &record.side else {
            return Ok(());
        };
        let credits: Vec<(PeerId, i128)> = payees.iter().map(|p| (p.peer, p.wei as i128)).collect();
        warn!(lottery = %record.id(), reason = why, "lottery abandoned; its amounts are owed again");
        record.status = LotteryStatus::Abandoned;
        record.note = why.to_string();
        self.inner
            .ledger
            .put_lottery(&record.id().0, &record, &credits, None)?;
        let _ = self.inner.market.node().store().unpin(&record.file);
        Ok(())
    }

    fn set_blocked(&self, why: Option<String>) {
        *self.inner.blocked.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    /// Builds, records and commits a lottery over what is owed to payable workers, if it is due.
    async fn maybe_build(&self, busy: &HashSet<u16>) -> Result<(), SettlerError> {
        let inner = &self.inner;
        let db = inner.ledger.as_ref();
        let addresses: HashMap<PeerId, [u8; 20]> = db.addresses()?.into_iter().collect();
        let mut owed: Vec<(PeerId, Address, u128)> = db
            .owed()?
            .into_iter()
            .filter(|(_, wei)| *wei > 0)
            .filter_map(|(peer, wei)| addresses.get(&peer).map(|a| (peer, Address::from(*a), wei)))
            // The contract never pays a payer's own leaf (and payees refuse such a lottery).
            .filter(|(_, address, _)| *address != inner.chain.sender())
            .collect();
        if owed.is_empty() {
            self.set_blocked(None);
            return Ok(());
        }
        owed.sort_by_key(|(peer, _, wei)| (std::cmp::Reverse(*wei), peer.to_bytes()));
        owed.truncate(inner.cfg.max_payees.max(1));
        let mut total = 0u128;
        owed.retain(|(_, _, wei)| match total.checked_add(*wei) {
            Some(t) if t <= MAX_TOTAL => {
                total = t;
                true
            }
            _ => false,
        });
        let since = now_ms().saturating_sub(inner.last_built_ms.load(Ordering::Relaxed));
        if total < inner.cfg.threshold_wei && since < inner.cfg.period.as_millis() as u64 {
            return Ok(());
        }
        let me = inner.chain.sender();
        let free = inner.chain.account(me).await?.balance;
        if free < U256::from(total) {
            let why = format!(
                "the free deposit ({free} wei) is below what is owed ({total} wei): deposit more"
            );
            warn!("{why}");
            self.set_blocked(Some(why));
            return Ok(());
        }
        self.set_blocked(None);
        let lane = self.free_lane(busy).await?;
        let (nonce, used_below) = nonce_in_lane(db.next_nonce()?, lane)?;
        let conduct = *inner.conduct.lock().unwrap_or_else(|e| e.into_inner());
        let pairs: Vec<(Address, U256)> = owed
            .iter()
            .map(|(_, a, w)| match conduct {
                PayerConduct::Honest => (*a, U256::from(*w)),
                PayerConduct::OneWeiLeaves => (*a, U256::from(1)),
            })
            .collect();
        // The draw block counts from the head as late as possible: advancing the other lotteries and asking
        // the chain for the account and lanes take round trips, and a draw block too soon is refused.
        let head = inner.chain.block_number().await?;
        let draw_in = inner
            .cfg
            .draw_in_blocks
            .max(MIN_DRAW_IN)
            .max(inner.min_draw_delay.saturating_add(1));
        // The secret is kept in the record, written with the ledger debit before the commit is sent.
        let secret = B256::from(rand::random::<[u8; 32]>());
        let lottery = lottery::build(
            me,
            nonce,
            &pairs,
            head.saturating_add(draw_in),
            lottery::secret_hash(secret),
        )?;
        let file = self.store_file(&lottery)?;
        // `build` merges payees sharing an address: keep one record per peer, in leaf order by address.
        let payees: Vec<Payee> = owed
            .iter()
            .map(|(peer, address, wei)| Payee {
                peer: *peer,
                address: *address,
                wei: *wei,
                notified: false,
                refusal: None,
                revealed: false,
            })
            .collect();
        let debits: Vec<(PeerId, i128)> =
            payees.iter().map(|p| (p.peer, -(p.wei as i128))).collect();
        let record = LotteryRecord {
            lottery,
            file,
            side: Side::Payer { payees },
            status: LotteryStatus::Built,
            created_ms: now_ms(),
            gas_used: 0,
            fees_wei: 0,
            claimed_to: None,
            secret: Some(secret),
            note: "built".into(),
        };
        db.put_lottery(&record.id().0, &record, &debits, Some(used_below))?;
        failpoint("settlement-recorded");
        inner
            .last_built_ms
            .store(record.created_ms, Ordering::Relaxed);
        self.commit(record).await
    }

    /// The lowest lane not held by one of this payer's unsettled lotteries: a settled lane is rewritten (a warm,
    /// non-zero slot) instead of a fresh one allocated. The chain has the last word, in case a lottery it holds
    /// pending is missing here (e.g. a database restored from a backup).
    async fn free_lane(&self, busy: &HashSet<u16>) -> Result<u16, SettlerError> {
        let chain = &self.inner.chain;
        let me = chain.sender();
        for lane in (0..=u16::MAX).filter(|l| !busy.contains(l)) {
            if !chain.lane_pending(me, lane).await? {
                return Ok(lane);
            }
            warn!(
                lane,
                "lane holds a pending lottery this node has no record of; skipping it"
            );
        }
        Err(SettlerError::LanesFull)
    }

    /// Stores the lottery's JSON file (pinned) so payees can fetch it.
    fn store_file(&self, lottery: &Lottery) -> Result<Cid, SettlerError> {
        let bytes = serde_json::to_vec(lottery).map_err(|e| SettlerError::Store(e.to_string()))?;
        let store = self.inner.market.node().store();
        let root = store
            .add_file(bytes.as_slice(), &Profile::KUBO)
            .map_err(|e| SettlerError::Store(e.to_string()))?
            .root;
        store
            .pin(&root)
            .map_err(|e| SettlerError::Store(e.to_string()))?;
        Ok(root)
    }

    /// Payee side: once drawn, claim if this node won (with the payer's revealed secret); if nobody won in
    /// the claim window, claim this node's share.
    async fn advance_won(
        &self,
        mut record: LotteryRecord,
        leaf: usize,
        head: u64,
    ) -> Result<(), SettlerError> {
        let chain = &self.inner.chain;
        let d = record.lottery.description;
        if head <= d.draw_block {
            return Ok(());
        }
        if chain.lottery_state(&d).await? != LotteryState::Pending {
            record.status = LotteryStatus::Lost;
            record.note = "settled without this node".into();
            return Ok(self.save(&record)?);
        }
        if head > d.draw_block + self.inner.claim_window {
            return self.take_share(record, leaf).await;
        }
        // Waiting for the payer's secret (a loser waits for the winner's claim: if it never comes, the share).
        let Some(secret) = record.secret else {
            return Ok(());
        };
        let Some(hash) = chain.draw_hash(&d).await? else {
            return Ok(());
        };
        if record.lottery.winner(hash, secret) != Some(leaf) {
            let note = "drawn: another payee won; its share if the winner does not claim";
            if record.note != note {
                record.note = note.into();
                self.save(&record)?;
            }
            return Ok(());
        }
        self.claim_won(record, leaf, secret).await
    }

    /// Claims a lottery this node won, to its wallet or its deposit account.
    async fn claim_won(
        &self,
        mut record: LotteryRecord,
        leaf: usize,
        secret: B256,
    ) -> Result<(), SettlerError> {
        let chain = &self.inner.chain;
        let d = record.lottery.description;
        let (won, proof) = (record.lottery.leaves[leaf], record.lottery.proof(leaf));
        let (r, to) = match self.inner.cfg.claim_to {
            ClaimTo::Wallet => match chain.claim_and_withdraw(&d, &won, &proof, secret).await {
                Ok(r) => (r, ClaimTo::Wallet),
                // This address cannot take ETH (a contract wallet that refuses it): credit the deposit instead.
                Err(e) if e.revert_name() == Some("TransferFailed") => {
                    warn!(lottery = %record.id(), "the wallet refused the winnings; claiming to the deposit account");
                    (
                        chain.claim(&d, &won, &proof, secret).await?,
                        ClaimTo::Deposit,
                    )
                }
                Err(e) => return Err(e.into()),
            },
            ClaimTo::Deposit => (
                chain.claim(&d, &won, &proof, secret).await?,
                ClaimTo::Deposit,
            ),
        };
        record.status = LotteryStatus::Claimed;
        record.claimed_to = Some(to);
        record.spent(&r);
        record.note = format!(
            "won and claimed {} wei to its {to} in block {}",
            d.total, r.block_number
        );
        info!(lottery = %record.id(), amount = %d.total, gas = r.gas_used, %to, "won a lottery and claimed it");
        Ok(self.save(&record)?)
    }

    /// After the claim window of a lottery nobody won: this node's share, credited to its deposit account.
    async fn take_share(&self, mut record: LotteryRecord, leaf: usize) -> Result<(), SettlerError> {
        let d = record.lottery.description;
        let (mine, proof) = (record.lottery.leaves[leaf], record.lottery.proof(leaf));
        match self.inner.chain.claim_share(&d, &mine, &proof).await {
            Ok(r) => record.spent(&r),
            // Anyone may send a share claim: someone sent this one.
            Err(e) if e.revert_name() == Some("ShareAlreadyPaid") => {}
            Err(e) => return Err(e.into()),
        }
        let why = if record.secret.is_none() {
            warn!(lottery = %record.id(), payer = %d.payer, "the payer never revealed its lottery secret");
            "the payer never revealed its secret"
        } else {
            "its winner did not claim it"
        };
        record.status = LotteryStatus::Shared;
        record.claimed_to = Some(ClaimTo::Deposit);
        record.note = format!(
            "nobody won in the claim window ({why}): took its share of {} wei",
            mine.length
        );
        info!(lottery = %record.id(), share = %mine.length, "took a lottery share");
        Ok(self.save(&record)?)
    }

    /// Keeps the payer's secret carried by a notice, once it checks against the lottery's secret hash.
    fn take_secret(&self, notice: &LotteryNotice) -> Result<(), NoticeRefusal> {
        let Some(secret) = notice.secret.map(B256::from) else {
            return Ok(());
        };
        let db = self.inner.ledger.as_ref();
        let _guard = self.inner.records.lock().unwrap_or_else(|e| e.into_inner());
        let mut record = db
            .lottery(&notice.lottery_id)?
            .ok_or(NoticeRefusal::UnknownLottery)?;
        if record.secret == Some(secret) {
            return Ok(());
        }
        record.lottery.check_secret(secret)?;
        record.secret = Some(secret);
        db.put_lottery(&notice.lottery_id, &record, &[], None)?;
        debug!(lottery = %record.id(), "the payer's secret checks out");
        Ok(())
    }

    async fn on_notice(&self, incoming: IncomingLottery) {
        let accepted = match self.accept(&incoming.payer, &incoming.notice).await {
            Ok(()) => self.take_secret(&incoming.notice),
            Err(reason) => Err(reason),
        };
        let response = match accepted {
            Ok(()) => Response::Ack,
            Err(refusal) => {
                let reason = refusal.to_string();
                debug!(payer = %incoming.payer, %reason, "refused a lottery notice");
                Response::Reject { reason }
            }
        };
        incoming.answer(&response);
    }

    /// Checks a notice and keeps its lottery: the file is the lottery the id names, its intervals cover
    /// `[0, total)` exactly, this node's address has a leaf at least what the payer owes it (rounding aside),
    /// its draw is not too far ahead, and it is pending on chain. A lottery that pays too little or draws too
    /// late is kept as refused, and what the payer owes stays owed.
    async fn accept(&self, payer: &PeerId, notice: &LotteryNotice) -> Result<(), NoticeRefusal> {
        let db = self.inner.ledger.as_ref();
        if Self::answered(db, notice)? {
            return Ok(());
        }
        let node = self.inner.market.node();
        // The payer holds the file: fetch it from the payer (the DHT only if the payer is gone).
        node.fetch_dag_from(notice.file, &[*payer], FETCH_TIMEOUT)
            .await
            .map_err(|source| NoticeRefusal::Fetch {
                file: notice.file,
                source: Box::new(source),
            })?;
        let store = node.store().clone();
        let cid = notice.file;
        let bytes =
            tokio::task::spawn_blocking(move || jobmesh_market::runner::read_file(&store, &cid))
                .await??;
        let lottery: Lottery = serde_json::from_slice(&bytes)?;
        if lottery.id().0 != notice.lottery_id {
            return Err(NoticeRefusal::WrongFile);
        }
        let (ran_jobs, known) = db.requester_addresses(payer)?;
        if let Some(why) = payee::foreign(&lottery, payer, ran_jobs, &known) {
            return Err(why);
        }
        let _one_at_a_time = self.inner.judging.lock().await;
        if Self::answered(db, notice)? {
            return Ok(());
        }
        let me = self.inner.chain.sender();
        let head = self.inner.chain.block_number().await?;
        let debt = CoveredDebt::load(db, payer, now_ms(), self.inner.cfg.receipt_grace)?;
        let verdict = payee::judge(
            &lottery,
            me,
            &debt.terms(head, self.inner.cfg.max_draw_ahead),
        )?;
        // A notice that arrives after the lottery was settled (its winner was quicker) is kept as lost; one
        // that is not on chain at all is refused.
        let (status, note) = match self.inner.chain.lottery_state(&lottery.description).await {
            Ok(LotteryState::Pending) => {
                (LotteryStatus::Committed, "accepted; waiting for the draw")
            }
            Ok(LotteryState::Settled) => (LotteryStatus::Lost, "settled before its notice arrived"),
            Ok(LotteryState::Unknown) => return Err(NoticeRefusal::NotOnChain),
            Err(e) => return Err(e.into()),
        };
        let leaf = match verdict {
            Verdict::Accept(leaf) => leaf,
            Verdict::Refuse(leaf, why) => {
                return self.refuse(payer, lottery, cid, leaf, &debt, why)
            }
        };
        let _ = node.store().pin(&cid);
        let record = LotteryRecord {
            lottery,
            file: cid,
            side: Side::Payee {
                payer_peer: *payer,
                leaf,
            },
            status,
            created_ms: now_ms(),
            gas_used: 0,
            fees_wei: 0,
            claimed_to: None,
            secret: None,
            note: note.into(),
        };
        let share = record.lottery.leaves[leaf].length;
        db.put_payee_lottery(
            &record.id().0,
            &record,
            payer,
            share.saturating_to::<u128>(),
            debt.receipts_before,
        )?;
        info!(lottery = %record.id(), %payer, %share, owed = debt.wei, "accepted a lottery");
        Ok(())
    }

    /// Whether this notice was judged before: `Ok(true)` if its lottery was accepted, its refusal again if it
    /// was refused, `Ok(false)` if it is new.
    fn answered(db: &dyn Ledger, notice: &LotteryNotice) -> Result<bool, NoticeRefusal> {
        match db.lottery(&notice.lottery_id)? {
            Some(r) if r.status == LotteryStatus::Refused => {
                Err(NoticeRefusal::RefusedBefore(r.note))
            }
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    /// Keeps a lottery refused as payment (so a repeated notice gets the same answer and the status counts it),
    /// says so in a warning, and returns the refusal for the payer.
    fn refuse(
        &self,
        payer: &PeerId,
        lottery: Lottery,
        file: Cid,
        leaf: usize,
        debt: &CoveredDebt,
        why: LotteryError,
    ) -> Result<(), NoticeRefusal> {
        let offered = lottery.leaves[leaf].length;
        warn!(%payer, lottery = %lottery.id(), owed = debt.wei, %offered,
            draw_block = lottery.description.draw_block, %why, "refused a lottery; the debt stays open");
        let refusal = NoticeRefusal::NotPayment(Box::new(why));
        let reason = refusal.to_string();
        let record = LotteryRecord {
            lottery,
            file,
            side: Side::Payee {
                payer_peer: *payer,
                leaf,
            },
            status: LotteryStatus::Refused,
            created_ms: now_ms(),
            gas_used: 0,
            fees_wei: 0,
            claimed_to: None,
            note: reason,
            secret: None,
        };
        self.save(&record)?;
        Err(refusal)
    }
}

fn notice_id(notice: &LotteryNotice) -> B256 {
    B256::from(notice.lottery_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_payer_starts_in_lane_zero_with_counter_zero() {
        assert_eq!(nonce_in_lane(0, 0).unwrap(), (0, 65_536));
        assert_eq!(nonce_in_lane(0, 3).unwrap(), (3, 65_536));
    }

    #[test]
    fn each_lottery_takes_the_next_counter_whatever_its_lane() {
        let (a, bound) = nonce_in_lane(0, 0).unwrap();
        let (b, bound) = nonce_in_lane(bound, 0).unwrap();
        let (c, bound) = nonce_in_lane(bound, 7).unwrap();
        assert_eq!((a, b, c), (0, 65_536, 2 * 65_536 + 7));
        assert_eq!(bound, 3 * 65_536);
        // The same lane, never the same nonce; the lane is the nonce's low 16 bits.
        assert_ne!(a, b);
        assert_eq!((a as u16, b as u16, c as u16), (0, 0, 7));
    }

    #[test]
    fn a_bound_written_one_nonce_at_a_time_is_respected() {
        // An older database used nonces 0..=4 (bound 5) and 65,536 (bound 65,537).
        for (old, lane) in [(5, 0), (5, 4), (65_537, 1), (65_536, 2)] {
            let (nonce, bound) = nonce_in_lane(old, lane).unwrap();
            assert!(
                nonce >= old,
                "nonce {nonce} was possibly used (bound {old})"
            );
            assert_eq!(nonce as u16, lane);
            assert!(bound > nonce && bound % 65_536 == 0);
        }
    }

    #[test]
    fn running_out_of_nonces_is_an_error() {
        assert!(matches!(
            nonce_in_lane(u64::MAX, 0),
            Err(SettlerError::NoncesExhausted)
        ));
        assert!(matches!(
            nonce_in_lane(u64::MAX - LANES, 0),
            Err(SettlerError::NoncesExhausted)
        ));
        // The last counter: nonce fits, its bound would not.
        assert!(matches!(
            nonce_in_lane((u64::MAX >> 16) << 16, 0),
            Err(SettlerError::NoncesExhausted)
        ));
    }
}
