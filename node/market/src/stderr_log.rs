//! A run's whole stderr as a file: the worker keeps it in its store ([`keep`]) and reveals its CID in the run's
//! detail ([`crate::messages::RunDetail::stderr_cid`], covered by the commitment); the requester fetches it for a
//! failed job ([`fetch_for_failure`]) so `job status`/`job result` show the logs without a replay.
//!
//! Owns: these two steps and their bound ([`MAX_STORED_STDERR`]). Must not touch: the market's state.

use std::time::Duration;

use jobmesh_exec::Limits;
use jobmesh_store::unixfs::Profile;
use jobmesh_store::{Cid, Store, StoreError};

use crate::messages::MAX_STORED_STDERR;
use crate::tally::Verdict;

/// Stores `stderr` (cut at the job's `stderr_bytes` and [`MAX_STORED_STDERR`]) as a UnixFS file; its CID, or
/// `None` for an empty stderr. Deterministic: honest workers of one job store the same bytes, so the same CID.
pub fn keep(store: &Store, stderr: &[u8], limits: &Limits) -> Result<Option<Cid>, Box<StoreError>> {
    let keep = usize::try_from(limits.stderr_bytes)
        .unwrap_or(usize::MAX)
        .min(MAX_STORED_STDERR)
        .min(stderr.len());
    if keep == 0 {
        return Ok(None);
    }
    let added = store
        .add_file(&stderr[..keep], &Profile::KUBO)
        .map_err(Box::new)?;
    Ok(Some(added.root))
}

/// For a verdict that is a failure with a stored stderr: fetches the file from the workers that agreed and pins
/// it. A stderr that cannot be fetched is logged, never a reason to fail the job (the inline part stays).
pub async fn fetch_for_failure(node: &jobmesh_p2p::Mesh, verdict: &Verdict, limit: Duration) {
    let Some(cid) = verdict.detail.stderr_cid else {
        return;
    };
    if verdict.status == jobmesh_exec::Status::Ok.name() {
        return;
    }
    if let Err(e) = node.fetch_dag_from(cid, &verdict.agreeing, limit).await {
        tracing::warn!(%cid, "cannot fetch the failed job's stderr: {e}");
        return;
    }
    let store = node.store().clone();
    match tokio::task::spawn_blocking(move || store.pin(&cid).map_err(Box::new)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(%cid, "cannot pin the failed job's stderr: {e}"),
        Err(e) => tracing::warn!(%cid, "pinning the failed job's stderr stopped: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{commitment_hash, RunDetail};

    #[test]
    fn stderr_is_kept_bounded_deterministic_and_bound_by_the_commitment() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let limits = Limits {
            stderr_bytes: 2 * MAX_STORED_STDERR as u64,
            ..Limits::default()
        };
        let big = vec![b'e'; MAX_STORED_STDERR + 10];
        let cid = keep(&store, &big, &limits).unwrap().expect("a CID");
        let mut kept = Vec::new();
        jobmesh_store::unixfs::cat(&store, &cid, &mut kept).unwrap();
        assert_eq!(kept.len(), MAX_STORED_STDERR);
        assert_eq!(keep(&store, &big, &limits).unwrap(), Some(cid));
        assert_eq!(keep(&store, b"", &limits).unwrap(), None);

        // A worker cannot swap the stderr file after committing: the CID is in the committed digest.
        let mut detail = RunDetail::new("trap", b"err", 100);
        let peer = crate::testkit::peers(1)[0];
        let commit = |d: &RunDetail| commitment_hash(&cid, 1, "trap", d, &[0; 32], &peer);
        let without = commit(&detail);
        detail.stderr_cid = Some(cid);
        let with = commit(&detail);
        detail.stderr_cid = Some(crate::testkit::cid(b"other"));
        assert!(without != with && with != commit(&detail));
    }
}
