//! The market's durable state in sled: job records (both sides), the reputation table, the owed ledger, the
//! workers' settlement addresses, the settlement's lottery records, and — on a worker — what each payer owes it
//! ([`PayerCredit`]).
//!
//! A requester applies the [`Action`]s of a state-machine step together with the new job record in one sled
//! transaction before it sends any message, so a crash never leaves a verified job without its ledger entry, or
//! a ledger entry without its job. Likewise a lottery record is written together with the ledger debit of what it
//! pays (and removed together with the credit back if it is abandoned), so an amount is never both owed and in a
//! lottery, nor in neither.

use std::path::Path;

use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use crate::messages::{from_cbor, to_cbor, JobId, JobSpec, MessageError};
use crate::requester::{Action, RequesterJob};

pub use crate::db_error::DbError;

/// Where a worker is with a job it was assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerPhase {
    /// Fetching and running.
    Running,
    /// Commitment sent; waiting for the reveal request.
    Committed,
    /// Revealed; waiting for the receipt.
    Revealed,
    /// Receipt received, or the job was cancelled or expired.
    Done,
}

/// A worker's record of one assigned job: enough to reveal after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerJob {
    /// The job.
    pub spec: JobSpec,
    /// Who asked.
    #[serde(with = "crate::wire_ids::peer")]
    pub requester: PeerId,
    /// Which replica slot.
    pub replica: u8,
    /// Where it is.
    pub phase: WorkerPhase,
    /// The result once run: (output CID bytes, fuel used, status name, salt).
    pub result: Option<(Vec<u8>, u64, String, [u8; 32])>,
    /// The requester's verdict once received: (accepted, owed wei).
    pub receipt: Option<(bool, u128)>,
    /// Unix ms after which the job is abandoned.
    pub deadline_ms: u64,
    /// Where the requester said it can be reached (from its announcement), to send the commitment to.
    #[serde(default)]
    pub requester_addrs: Vec<String>,
    /// The commitment deadline of the assignment (unix ms).
    #[serde(default)]
    pub commit_by_ms: u64,
    /// When the receipt arrived (unix ms; 0 in records written before it was kept).
    #[serde(default)]
    pub receipt_ms: u64,
    /// The settlement address the requester announced with the job (the payer of its lotteries), if any.
    #[serde(default)]
    pub requester_eth: Option<[u8; 20]>,
    /// The run's detail (failure message, stderr) once run: committed to and revealed with the result.
    #[serde(default)]
    pub detail: crate::messages::RunDetail,
}

/// A worker's account of one payer (a requester it ran jobs for): what the payer's receipts say it owes, and
/// what the lotteries this worker accepted from it paid. Kept from the first receipt a version with this
/// account recorded; older receipts and lotteries are not in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayerCredit {
    /// Sum of the amounts owed in the payer's receipts, in wei.
    pub credited: u128,
    /// Sum of this worker's shares in the payer's accepted lotteries, in wei.
    pub paid: u128,
    /// Receipts with an amount owed.
    pub receipts: u64,
    /// Of those, how many the accepted lotteries covered.
    pub receipts_paid: u64,
}

impl PayerCredit {
    /// What the payer owes and has not paid with an accepted lottery (0 if it paid ahead).
    pub fn unpaid(&self) -> u128 {
        self.credited.saturating_sub(self.paid)
    }

    fn to_bytes(self) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[..16].copy_from_slice(&self.credited.to_be_bytes());
        b[16..32].copy_from_slice(&self.paid.to_be_bytes());
        b[32..40].copy_from_slice(&self.receipts.to_be_bytes());
        b[40..].copy_from_slice(&self.receipts_paid.to_be_bytes());
        b
    }

    fn from_bytes(v: &[u8]) -> PayerCredit {
        let Ok(b) = <[u8; 48]>::try_from(v) else {
            return PayerCredit::default();
        };
        let u128_at = |i: usize| u128::from_be_bytes(b[i..i + 16].try_into().expect("16 bytes"));
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        PayerCredit {
            credited: u128_at(0),
            paid: u128_at(16),
            receipts: u64_at(32),
            receipts_paid: u64_at(40),
        }
    }
}

/// The market's sled database (a folder of its own next to the block store).
#[derive(Clone)]
pub struct MarketDb {
    db: sled::Db,
    requester_jobs: sled::Tree,
    worker_jobs: sled::Tree,
    reputation: sled::Tree,
    ledger: sled::Tree,
    addresses: sled::Tree,
    lotteries: sled::Tree,
    settlement_meta: sled::Tree,
    payer_credit: sled::Tree,
    evidence: crate::evidence::EvidenceTable,
}

/// Key of the next lottery nonce in the settlement metadata tree.
const NEXT_NONCE: &[u8] = b"next_nonce";

impl MarketDb {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<MarketDb, DbError> {
        // No background flusher thread: every write that must survive a crash is flushed before its method
        // returns (`commit_step` with `durable`, the other writers always), and the rest goes out with the
        // next flush. One thread less per node
        // (a hundred simulated nodes ran 200 sled flusher threads).
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(8 << 20)
            .flush_every_ms(None);
        // Through the store's opener: it waits out a lock a just-closed handle still holds (a restart).
        let db = jobmesh_store::open_sled(&config)?;
        Ok(MarketDb {
            requester_jobs: db.open_tree("requester_jobs")?,
            worker_jobs: db.open_tree("worker_jobs")?,
            reputation: db.open_tree("reputation")?,
            ledger: db.open_tree("ledger")?,
            addresses: db.open_tree("addresses")?,
            lotteries: db.open_tree("lotteries")?,
            settlement_meta: db.open_tree("settlement_meta")?,
            payer_credit: db.open_tree("payer_credit")?,
            evidence: crate::evidence::EvidenceTable::open(&db)?,
            db,
        })
    }

    /// Saves a requester job record and applies the reputation and ledger changes among `actions`, atomically,
    /// and flushes to disk before returning (callers send messages only after this).
    /// With `durable: false` the write goes to disk with the next flush (for steps that send nothing).
    pub fn commit_step(
        &self,
        job: &RequesterJob,
        actions: &[Action],
        durable: bool,
    ) -> Result<(), DbError> {
        let record = to_cbor(job);
        let result: Result<(), TransactionError<()>> = (
            &self.requester_jobs,
            &self.reputation,
            &self.ledger,
            self.evidence.tree(),
        )
            .transaction(|(jobs, reputation, ledger, evidence)| {
                jobs.insert(&job.id.0[..], record.as_slice())?;
                for action in actions {
                    match action {
                        Action::Reputation { peer, change } => {
                            let key = peer.to_bytes();
                            let old = reputation.get(&key)?.map(|v| decode_i64(&v)).unwrap_or(0);
                            let new = crate::requester::next_reputation(old, *change);
                            reputation.insert(key, &new.to_be_bytes())?;
                        }
                        Action::Owe { worker, wei } => {
                            let key = worker.to_bytes();
                            let old = ledger.get(&key)?.map(|v| decode_u128(&v)).unwrap_or(0);
                            ledger.insert(key, &old.saturating_add(*wei).to_be_bytes())?;
                        }
                        Action::Evidence { peer, change } => {
                            self.evidence.apply(evidence, peer, *change)?;
                        }
                        _ => {}
                    }
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        self.finish(result, durable)
    }

    /// Opens (or creates) a tree of the database, for a module that keeps records of its own
    /// (`crate::receipt_store`).
    pub(crate) fn open_tree(&self, name: &str) -> Result<sled::Tree, DbError> {
        Ok(self.db.open_tree(name)?)
    }

    /// A requester job by id.
    pub fn requester_job(&self, id: &JobId) -> Result<Option<RequesterJob>, DbError> {
        self.requester_jobs
            .get(id.0)?
            .map(|v| decode(&v, || id.to_hex()))
            .transpose()
    }

    /// Every requester job, oldest announcement first.
    pub fn requester_jobs(&self) -> Result<Vec<RequesterJob>, DbError> {
        let mut jobs = Vec::new();
        for entry in self.requester_jobs.iter() {
            let (key, value) = entry?;
            jobs.push(decode::<RequesterJob>(&value, || hex(&key))?);
        }
        jobs.sort_by_key(|j| (j.announced_ms, j.id));
        Ok(jobs)
    }

    /// Saves a worker job record and flushes it (before the commitment is sent).
    pub fn save_worker_job(&self, id: &JobId, job: &WorkerJob) -> Result<(), DbError> {
        self.worker_jobs.insert(id.0, to_cbor(job))?;
        self.db.flush()?;
        Ok(())
    }

    /// A worker job by id.
    pub fn worker_job(&self, id: &JobId) -> Result<Option<WorkerJob>, DbError> {
        self.worker_jobs
            .get(id.0)?
            .map(|v| decode(&v, || id.to_hex()))
            .transpose()
    }

    /// Every worker job.
    pub fn worker_jobs(&self) -> Result<Vec<(JobId, WorkerJob)>, DbError> {
        let mut jobs = Vec::new();
        for entry in self.worker_jobs.iter() {
            let (key, value) = entry?;
            let mut id = [0u8; 32];
            if key.len() == 32 {
                id.copy_from_slice(&key);
            }
            jobs.push((JobId(id), decode::<WorkerJob>(&value, || hex(&key))?));
        }
        Ok(jobs)
    }

    /// Saves a worker job whose receipt just arrived, adding what it owes (if anything) to its requester's
    /// [`PayerCredit`], in one transaction, flushed before returning. Call it once per job: the first receipt.
    pub fn save_receipt(&self, id: &JobId, job: &WorkerJob, owed_wei: u128) -> Result<(), DbError> {
        let record = to_cbor(job);
        let payer = job.requester.to_bytes();
        let result: Result<(), TransactionError<()>> = (&self.worker_jobs, &self.payer_credit)
            .transaction(|(jobs, credit)| {
                jobs.insert(&id.0[..], record.as_slice())?;
                if owed_wei > 0 {
                    let mut c = credit
                        .get(&payer)?
                        .map(|v| PayerCredit::from_bytes(&v))
                        .unwrap_or_default();
                    c.credited = c.credited.saturating_add(owed_wei);
                    c.receipts += 1;
                    credit.insert(payer.as_slice(), &c.to_bytes()[..])?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        self.finish(result, true)
    }

    /// What `payer` owes this worker ([`PayerCredit::default`] if it never sent a receipt).
    pub fn payer_credit(&self, payer: &PeerId) -> Result<PayerCredit, DbError> {
        Ok(self
            .payer_credit
            .get(payer.to_bytes())?
            .map(|v| PayerCredit::from_bytes(&v))
            .unwrap_or_default())
    }

    /// Every payer's account with this worker.
    pub fn payer_credits(&self) -> Result<Vec<(PeerId, PayerCredit)>, DbError> {
        self.peer_table(&self.payer_credit, PayerCredit::from_bytes)
    }

    /// The receipts from `payer` with an amount owed that arrived after `since_ms`: (their sum in wei, how many).
    pub fn receipts_since(&self, payer: &PeerId, since_ms: u64) -> Result<(u128, u64), DbError> {
        let (mut wei, mut n) = (0u128, 0u64);
        for (_, job) in self.worker_jobs()? {
            let recent = job.requester == *payer && job.receipt_ms > since_ms;
            if let Some((true, owed)) = job.receipt.filter(|_| recent) {
                if owed > 0 {
                    wei = wei.saturating_add(owed);
                    n += 1;
                }
            }
        }
        Ok((wei, n))
    }

    /// The settlement addresses `payer` announced with the jobs this worker ran for it, and whether it ran any.
    pub fn requester_addresses(&self, payer: &PeerId) -> Result<(bool, Vec<[u8; 20]>), DbError> {
        let (mut any, mut addresses) = (false, Vec::new());
        for (_, job) in self.worker_jobs()? {
            if job.requester == *payer {
                any = true;
                addresses.extend(job.requester_eth.filter(|a| !addresses.contains(a)));
            }
        }
        Ok((any, addresses))
    }

    /// Saves a lottery this worker accepted as payment from `payer`: the record, and `paid` wei and
    /// `receipts_paid` receipts (the count it covers, from the start) in the payer's [`PayerCredit`], in one
    /// transaction, flushed before returning.
    pub fn put_payee_lottery<T: Serialize>(
        &self,
        id: &[u8; 32],
        record: &T,
        payer: &PeerId,
        paid: u128,
        receipts_paid: u64,
    ) -> Result<(), DbError> {
        let record = to_cbor(record);
        let payer = payer.to_bytes();
        let result: Result<(), TransactionError<()>> = (&self.lotteries, &self.payer_credit)
            .transaction(|(lotteries, credit)| {
                lotteries.insert(&id[..], record.as_slice())?;
                let mut c = credit
                    .get(&payer)?
                    .map(|v| PayerCredit::from_bytes(&v))
                    .unwrap_or_default();
                c.paid = c.paid.saturating_add(paid);
                c.receipts_paid = c.receipts_paid.max(receipts_paid);
                credit.insert(payer.as_slice(), &c.to_bytes()[..])?;
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        self.finish(result, true)
    }

    /// What this requester knows about `peer` (nothing if unknown).
    pub fn evidence(&self, peer: &PeerId) -> Result<crate::credibility::Evidence, DbError> {
        self.evidence.get(peer)
    }

    /// Records one piece of evidence about `peer` on its own (a stake read from the chain; a test's history),
    /// flushed before returning.
    pub fn record_evidence(
        &self,
        peer: &PeerId,
        change: crate::credibility::EvidenceChange,
    ) -> Result<(), DbError> {
        let result: Result<(), TransactionError<()>> = self
            .evidence
            .tree()
            .transaction(|tx| Ok(self.evidence.apply(tx, peer, change)?));
        self.finish(result, true)
    }

    /// A peer's reputation (0 if unknown).
    pub fn reputation(&self, peer: &PeerId) -> Result<i64, DbError> {
        Ok(self
            .reputation
            .get(peer.to_bytes())?
            .map(|v| decode_i64(&v))
            .unwrap_or(0))
    }

    /// Up to `limit` peers with a positive reputation, the best first (ties in peer id order).
    pub fn best_recorded(&self, limit: usize) -> Result<Vec<PeerId>, DbError> {
        let mut recorded: Vec<(PeerId, i64)> = self
            .reputations()?
            .into_iter()
            .filter(|(_, rep)| *rep > 0)
            .collect();
        recorded.sort_by_key(|(peer, rep)| (std::cmp::Reverse(*rep), peer.to_bytes()));
        Ok(recorded
            .into_iter()
            .take(limit)
            .map(|(peer, _)| peer)
            .collect())
    }

    /// The whole reputation table.
    pub fn reputations(&self) -> Result<Vec<(PeerId, i64)>, DbError> {
        self.peer_table(&self.reputation, decode_i64)
    }

    /// What this node owes each worker, in wei.
    pub fn ledger(&self) -> Result<Vec<(PeerId, u128)>, DbError> {
        self.peer_table(&self.ledger, decode_u128)
    }

    /// Records the settlement address a worker gave in its offer (the latest one counts).
    pub fn set_address(&self, peer: &PeerId, address: [u8; 20]) -> Result<(), DbError> {
        let key = peer.to_bytes();
        // Every offer carries the address: written only when new or changed.
        if self.addresses.get(&key)?.as_deref() != Some(&address[..]) {
            self.addresses.insert(key, &address)?;
            self.db.flush()?;
        }
        Ok(())
    }

    /// Every known worker settlement address.
    pub fn addresses(&self) -> Result<Vec<(PeerId, [u8; 20])>, DbError> {
        self.peer_table(&self.addresses, |v| {
            let mut a = [0u8; 20];
            if v.len() == 20 {
                a.copy_from_slice(v);
            }
            a
        })
    }

    /// Saves a lottery record (CBOR) under its id, applies `ledger_changes` (wei per peer: negative when the
    /// lottery takes an amount out of the ledger, positive when an abandoned one gives it back) and, if given,
    /// the next free nonce — in one transaction, flushed before returning.
    pub fn put_lottery<T: Serialize>(
        &self,
        id: &[u8; 32],
        record: &T,
        ledger_changes: &[(PeerId, i128)],
        next_nonce: Option<u64>,
    ) -> Result<(), DbError> {
        let record = to_cbor(record);
        let result: Result<(), TransactionError<()>> =
            (&self.lotteries, &self.ledger, &self.settlement_meta).transaction(
                |(lotteries, ledger, meta)| {
                    lotteries.insert(&id[..], record.as_slice())?;
                    for (peer, change) in ledger_changes {
                        let key = peer.to_bytes();
                        let old = ledger.get(&key)?.map(|v| decode_u128(&v)).unwrap_or(0);
                        let new = if *change < 0 {
                            old.saturating_sub(change.unsigned_abs())
                        } else {
                            old.saturating_add(*change as u128)
                        };
                        if new == 0 {
                            ledger.remove(key)?;
                        } else {
                            ledger.insert(key, &new.to_be_bytes())?;
                        }
                    }
                    if let Some(n) = next_nonce {
                        meta.insert(NEXT_NONCE, &n.to_be_bytes())?;
                    }
                    Ok::<(), ConflictableTransactionError<()>>(())
                },
            );
        self.finish(result, true)
    }

    /// Turns a transaction's result into ours and, if `durable`, flushes it to disk.
    fn finish(
        &self,
        result: Result<(), TransactionError<()>>,
        durable: bool,
    ) -> Result<(), DbError> {
        match result {
            Ok(()) => {}
            Err(TransactionError::Storage(e)) => return Err(DbError::Sled(e)),
            Err(TransactionError::Abort(())) => unreachable!("the transaction never aborts"),
        }
        if durable {
            self.db.flush()?;
        }
        Ok(())
    }

    /// A lottery record by id.
    pub fn lottery<T: serde::de::DeserializeOwned>(
        &self,
        id: &[u8; 32],
    ) -> Result<Option<T>, DbError> {
        self.lotteries
            .get(id)?
            .map(|v| decode(&v, || hex(id)))
            .transpose()
    }

    /// Every lottery record.
    pub fn lotteries<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        for entry in self.lotteries.iter() {
            let (key, value) = entry?;
            out.push(decode::<T>(&value, || hex(&key))?);
        }
        Ok(out)
    }

    /// The next lottery nonce this node has not used (0 at first).
    pub fn next_nonce(&self) -> Result<u64, DbError> {
        Ok(self
            .settlement_meta
            .get(NEXT_NONCE)?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    fn peer_table<T>(
        &self,
        tree: &sled::Tree,
        value: impl Fn(&[u8]) -> T,
    ) -> Result<Vec<(PeerId, T)>, DbError> {
        let mut out = Vec::new();
        for entry in tree.iter() {
            let (key, v) = entry?;
            let peer = PeerId::from_bytes(&key).map_err(|e| DbError::Record {
                key: hex(&key),
                source: Box::new(MessageError::Malformed(e.to_string())),
            })?;
            out.push((peer, value(&v)));
        }
        Ok(out)
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    key: impl Fn() -> String,
) -> Result<T, DbError> {
    from_cbor(bytes).map_err(|source| DbError::Record {
        key: key(),
        source: Box::new(source),
    })
}

fn decode_i64(v: &[u8]) -> i64 {
    v.try_into().map(i64::from_be_bytes).unwrap_or(0)
}

fn decode_u128(v: &[u8]) -> u128 {
    v.try_into().map(u128::from_be_bytes).unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requester::RepChange;
    use libp2p_identity::Keypair;

    fn spec() -> JobSpec {
        crate::testkit::spec(1, false)
    }

    #[test]
    fn steps_survive_reopening_and_ledger_accumulates() {
        let dir = tempfile::tempdir().unwrap();
        let worker = Keypair::generate_ed25519().public().to_peer_id();
        let job = RequesterJob::new(spec(), 5, 100);
        {
            let db = MarketDb::open(dir.path()).unwrap();
            let step = [
                Action::Owe { worker, wei: 7 },
                Action::Reputation {
                    peer: worker,
                    change: RepChange::Agreed,
                },
                Action::Finished,
            ];
            db.commit_step(&job, &step, true).unwrap();
            db.commit_step(
                &job,
                &[
                    Action::Owe { worker, wei: 5 },
                    Action::Reputation {
                        peer: worker,
                        change: RepChange::Disagreed,
                    },
                ],
                true,
            )
            .unwrap();
        }
        let db = MarketDb::open(dir.path()).unwrap();
        assert_eq!(db.requester_job(&job.id).unwrap().unwrap(), job);
        assert_eq!(db.requester_jobs().unwrap().len(), 1);
        assert_eq!(db.ledger().unwrap(), vec![(worker, 12)]);
        assert_eq!(db.reputation(&worker).unwrap(), -4);
        assert_eq!(
            db.reputation(&Keypair::generate_ed25519().public().to_peer_id())
                .unwrap(),
            0
        );
    }

    #[test]
    fn the_best_recorded_are_the_positive_reputations_best_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = MarketDb::open(dir.path()).unwrap();
        let peers: Vec<PeerId> = (0..4)
            .map(|_| Keypair::generate_ed25519().public().to_peer_id())
            .collect();
        let job = RequesterJob::new(spec(), 5, 100);
        // Agreements: peers[0] once, peers[1] three times, peers[2] twice; peers[3] disagreed.
        for (peer, agreed) in [(0, 1), (1, 3), (2, 2)] {
            for _ in 0..agreed {
                let step = [Action::Reputation {
                    peer: peers[peer],
                    change: RepChange::Agreed,
                }];
                db.commit_step(&job, &step, true).unwrap();
            }
        }
        let step = [Action::Reputation {
            peer: peers[3],
            change: RepChange::Disagreed,
        }];
        db.commit_step(&job, &step, true).unwrap();
        assert_eq!(
            db.best_recorded(10).unwrap(),
            vec![peers[1], peers[2], peers[0]]
        );
        assert_eq!(db.best_recorded(2).unwrap(), vec![peers[1], peers[2]]);
    }

    #[test]
    fn worker_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = MarketDb::open(dir.path()).unwrap();
        let id = spec().id();
        let job = WorkerJob {
            spec: spec(),
            requester: Keypair::generate_ed25519().public().to_peer_id(),
            replica: 0,
            phase: WorkerPhase::Committed,
            result: Some((spec().code.to_bytes(), 9, "ok".into(), [1; 32])),
            receipt: None,
            deadline_ms: 100,
            requester_addrs: vec!["/ip4/127.0.0.1/tcp/1".into()],
            commit_by_ms: 50,
            receipt_ms: 0,
            requester_eth: Some([9; 20]),
            detail: crate::messages::RunDetail::new("wasm trap: unreachable", b"err\n", 9),
        };
        db.save_worker_job(&id, &job).unwrap();
        drop(db);
        let db = MarketDb::open(dir.path()).unwrap();
        assert_eq!(db.worker_job(&id).unwrap().unwrap(), job);
        assert_eq!(db.worker_jobs().unwrap().len(), 1);
        assert_eq!(
            db.requester_addresses(&job.requester).unwrap(),
            (true, vec![[9; 20]])
        );
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        assert_eq!(db.requester_addresses(&stranger).unwrap(), (false, vec![]));
    }

    #[test]
    fn a_payers_account_adds_receipts_and_accepted_lotteries_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let payer = Keypair::generate_ed25519().public().to_peer_id();
        let other = Keypair::generate_ed25519().public().to_peer_id();
        let job = |requester, owed: u128, receipt_ms| WorkerJob {
            spec: spec(),
            requester,
            replica: 0,
            phase: WorkerPhase::Done,
            result: None,
            receipt: Some((owed > 0, owed)),
            deadline_ms: 100,
            requester_addrs: Vec::new(),
            commit_by_ms: 50,
            receipt_ms,
            requester_eth: None,
            detail: Default::default(),
        };
        {
            let db = MarketDb::open(dir.path()).unwrap();
            for (id, requester, owed, at) in [
                (1, payer, 70, 1_000),
                (2, payer, 30, 5_000),
                // A rejected replica is owed nothing: its receipt does not count.
                (3, payer, 0, 6_000),
                (4, other, 9, 6_000),
            ] {
                db.save_receipt(&JobId([id; 32]), &job(requester, owed, at), owed)
                    .unwrap();
            }
            db.put_payee_lottery(&[7; 32], &"a lottery", &payer, 60, 1)
                .unwrap();
        }
        let db = MarketDb::open(dir.path()).unwrap();
        let credit = db.payer_credit(&payer).unwrap();
        assert_eq!(
            credit,
            PayerCredit {
                credited: 100,
                paid: 60,
                receipts: 2,
                receipts_paid: 1
            }
        );
        assert_eq!(credit.unpaid(), 40);
        assert_eq!(db.payer_credit(&other).unwrap().unpaid(), 9);
        assert_eq!(db.payer_credits().unwrap().len(), 2);
        assert_eq!(
            db.lottery::<String>(&[7; 32]).unwrap().unwrap(),
            "a lottery"
        );
        // Receipts after 2,000 ms: the one of job 2 (job 3's and 4's owe this payer nothing).
        assert_eq!(db.receipts_since(&payer, 2_000).unwrap(), (30, 1));
        assert_eq!(db.receipts_since(&payer, 0).unwrap(), (100, 2));
        // Paid ahead: nothing unpaid, never negative.
        db.put_payee_lottery(&[8; 32], &"another", &payer, 500, 2)
            .unwrap();
        assert_eq!(db.payer_credit(&payer).unwrap().unpaid(), 0);
    }

    #[test]
    fn a_corrupt_record_is_a_typed_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let db = MarketDb::open(dir.path()).unwrap();
        let id = spec().id();
        db.requester_jobs
            .insert(id.0, &b"\xff\xffnot cbor"[..])
            .unwrap();
        assert!(matches!(db.requester_job(&id), Err(DbError::Record { .. })));
    }
}
