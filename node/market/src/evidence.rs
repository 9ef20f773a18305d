//! The requester's evidence about each worker (issue 21): results that agreed or disagreed, spot-checks passed
//! or failed (one failure blacklists), and the stake last verified on chain — a sled tree of the market
//! database, updated in the same transaction as the job step that learnt it
//! ([`MarketDb::commit_step`](crate::db::MarketDb::commit_step)), so it survives restarts.
//!
//! Bounded: at most [`MAX_WORKERS`] workers have a record; beyond it a new worker's evidence is not kept
//! (it stays a stranger) — except a failed spot-check, which is always kept so a blacklisted identity stays
//! blacklisted. Each record is a few dozen bytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use libp2p_identity::PeerId;
use sled::transaction::{TransactionalTree, UnabortableTransactionError};

use crate::credibility::{Evidence, EvidenceChange};
use crate::db_error::DbError;
use crate::messages::{from_cbor, to_cbor};

/// The most workers a requester keeps evidence about.
pub const MAX_WORKERS: usize = 100_000;

/// The evidence tree and a count of its records.
#[derive(Clone)]
pub(crate) struct EvidenceTable {
    tree: sled::Tree,
    /// Records in the tree (counted at open, then kept up to date; a retried transaction may over-count,
    /// which only makes the bound tighter).
    count: Arc<AtomicUsize>,
}

impl EvidenceTable {
    /// Opens the `evidence` tree of `db`.
    pub(crate) fn open(db: &sled::Db) -> Result<EvidenceTable, DbError> {
        let tree = db.open_tree("evidence")?;
        let count = Arc::new(AtomicUsize::new(tree.len()));
        Ok(EvidenceTable { tree, count })
    }

    /// The tree, to take part in a transaction.
    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// What is known about `peer` (nothing if unknown or unreadable).
    pub(crate) fn get(&self, peer: &PeerId) -> Result<Evidence, DbError> {
        Ok(self
            .tree
            .get(peer.to_bytes())?
            .map(|v| decode(&v))
            .unwrap_or_default())
    }

    /// Applies `change` to `peer`'s record inside a transaction on [`tree`](Self::tree).
    pub(crate) fn apply(
        &self,
        tx: &TransactionalTree,
        peer: &PeerId,
        change: EvidenceChange,
    ) -> Result<(), UnabortableTransactionError> {
        let key = peer.to_bytes();
        let old = tx.get(&key)?;
        let always = change == EvidenceChange::SpotCheck { passed: false };
        if old.is_none() && !always && self.count.load(Ordering::Relaxed) >= MAX_WORKERS {
            tracing::debug!(%peer, "evidence table full: not recording a new worker");
            return Ok(());
        }
        let mut evidence = old.as_deref().map(decode).unwrap_or_default();
        evidence.apply(change);
        if tx.insert(key, to_cbor(&evidence))?.is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn decode(bytes: &[u8]) -> Evidence {
    from_cbor(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use crate::credibility::EvidenceChange;
    use crate::db::MarketDb;
    use crate::requester::{Action, RequesterJob};

    #[test]
    fn evidence_is_recorded_with_the_step_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let worker = libp2p_identity::PeerId::random();
        let job = RequesterJob::new(crate::testkit::spec(1, false), 5, 100);
        let step = |change| Action::Evidence {
            peer: worker,
            change,
        };
        {
            let db = MarketDb::open(dir.path()).unwrap();
            db.commit_step(
                &job,
                &[
                    step(EvidenceChange::Vote { agreed: true }),
                    step(EvidenceChange::Vote { agreed: false }),
                    step(EvidenceChange::SpotCheck { passed: true }),
                    step(EvidenceChange::Stake { wei: 7 }),
                ],
                true,
            )
            .unwrap();
            db.commit_step(
                &job,
                &[step(EvidenceChange::SpotCheck { passed: false })],
                true,
            )
            .unwrap();
        }
        let db = MarketDb::open(dir.path()).unwrap();
        let ev = db.evidence(&worker).unwrap();
        assert_eq!(
            (
                ev.agreed,
                ev.disagreed,
                ev.spot_checks_passed,
                ev.spot_checks_failed,
                ev.stake_wei
            ),
            (1, 1, 1, 1, 7)
        );
        assert!(ev.is_blacklisted());
        // A stranger has no evidence.
        let stranger = db.evidence(&libp2p_identity::PeerId::random()).unwrap();
        assert_eq!(stranger, Default::default());
        assert!(!stranger.is_blacklisted());
    }
}
