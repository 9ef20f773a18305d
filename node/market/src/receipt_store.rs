//! Where a requester keeps the evidence of its jobs (each worker's sealed commitment and reveal, byte for byte
//! as they arrived) until a job finishes, then issues the job's receipt ([`crate::receipt`]): signs it, stores
//! and pins it as a block, and forgets the evidence. Also the record of receipts this node has verified.
//!
//! Owns: the `receipt_evidence` and `verified_receipts` trees of the market database. Must not touch: job state
//! machines or messages (it stores bytes and reads records).

use cid::Cid;
use libp2p_identity::PeerId;
use tracing::{debug, warn};

use crate::db::{DbError, MarketDb};
use crate::messages::JobId;
use crate::receipt::{body_of, Attestation, JobReceipt};
use crate::requester::RequesterJob;
use crate::shared::{now_ms, Core};

/// Why a receipt could not be issued or a record kept.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptStoreError {
    /// The market database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// sled failed.
    #[error("receipt records: {0}")]
    Sled(#[from] sled::Error),
    /// The block store refused the receipt.
    #[error("cannot store the receipt: {0}")]
    Store(#[source] Box<jobmesh_store::StoreError>),
}

impl From<jobmesh_store::StoreError> for ReceiptStoreError {
    fn from(e: jobmesh_store::StoreError) -> Self {
        ReceiptStoreError::Store(Box::new(e))
    }
}

const EVIDENCE_TREE: &str = "receipt_evidence";
const VERIFIED_TREE: &str = "verified_receipts";
const COMMITMENT: u8 = b'c';
const REVEAL: u8 = b'r';

fn evidence_key(job: &JobId, kind: u8, worker: &PeerId) -> Vec<u8> {
    let mut key = job.0.to_vec();
    key.push(kind);
    key.extend_from_slice(&worker.to_bytes());
    key
}

/// Keeps a worker's sealed commitment for `job` (the last one it sent).
pub fn record_commitment(db: &MarketDb, job: &JobId, worker: &PeerId, sealed: &[u8]) {
    record(db, evidence_key(job, COMMITMENT, worker), sealed);
}

/// Keeps a worker's sealed reveal for `job`.
pub fn record_reveal(db: &MarketDb, job: &JobId, worker: &PeerId, sealed: &[u8]) {
    record(db, evidence_key(job, REVEAL, worker), sealed);
}

fn record(db: &MarketDb, key: Vec<u8>, sealed: &[u8]) {
    let done = db
        .open_tree(EVIDENCE_TREE)
        .map_err(ReceiptStoreError::from)
        .and_then(|t| Ok(t.insert(key, sealed)?));
    if let Err(e) = done {
        warn!(error = %e, "cannot keep a worker's signed message for the receipt");
    }
}

/// Every worker's (commitment, reveal) pair kept for `job`.
fn evidence(db: &MarketDb, job: &JobId) -> Result<Vec<Attestation>, ReceiptStoreError> {
    let tree = db.open_tree(EVIDENCE_TREE)?;
    let mut out = Vec::new();
    for entry in tree.scan_prefix([job.0.as_slice(), &[COMMITMENT]].concat()) {
        let (key, commitment) = entry?;
        let Ok(worker) = PeerId::from_bytes(&key[33..]) else {
            continue;
        };
        if let Some(reveal) = tree.get(evidence_key(job, REVEAL, &worker))? {
            out.push(Attestation {
                worker,
                commitment: commitment.to_vec(),
                reveal: reveal.to_vec(),
            });
        }
    }
    Ok(out)
}

fn forget(db: &MarketDb, job: &JobId) -> Result<(), ReceiptStoreError> {
    let tree = db.open_tree(EVIDENCE_TREE)?;
    for key in tree.scan_prefix(job.0).keys() {
        tree.remove(key?)?;
    }
    Ok(())
}

/// Builds, signs, stores and pins the receipt of a finished job; returns its CID. The evidence is forgotten
/// once the receipt is stored.
pub(crate) fn issue(core: &Core, job: &RequesterJob) -> Result<Cid, ReceiptStoreError> {
    let body = body_of(
        job,
        core.node.peer_id(),
        evidence(&core.db, &job.id)?,
        now_ms(),
    );
    let receipt = JobReceipt::sign(&core.key, body);
    let bytes = receipt.encode();
    let cid = receipt.cid();
    let store = core.node.store();
    store.put(&cid, &bytes)?;
    store.pin(&cid)?;
    forget(&core.db, &job.id)?;
    debug!(job = %job.id, receipt = %cid, bytes = bytes.len(), "receipt issued");
    Ok(cid)
}

/// Records that the receipt `cid` was re-run here and matched (`summary` is the verifier's report, as JSON).
pub fn record_verified(db: &MarketDb, cid: &Cid, summary: &[u8]) -> Result<(), ReceiptStoreError> {
    db.open_tree(VERIFIED_TREE)?
        .insert(cid.to_bytes(), summary)?;
    Ok(())
}

/// The report recorded when the receipt `cid` was verified here, if it was.
pub fn verified(db: &MarketDb, cid: &Cid) -> Result<Option<Vec<u8>>, ReceiptStoreError> {
    Ok(db
        .open_tree(VERIFIED_TREE)?
        .get(cid.to_bytes())?
        .map(|v| v.to_vec()))
}
