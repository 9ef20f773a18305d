//! Providing a whole DAG on the DHT ([`Mesh::provide_dag`]): the root first, then (with
//! [`ProvideStrategy::All`]) every other block, a few announcements at a time.
#![allow(clippy::result_large_err)] // `dag::walk`'s visitor returns `StoreError`, which carries a CID inline.

use futures::stream::{self, StreamExt};
use jobmesh_store::{dag, Cid, StoreError};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::{Error, Mesh, ProvideStrategy};

/// Blocks announced at once by [`Mesh::provide_dag`] (each announcement is a DHT query to the closest peers).
pub const PROVIDE_CONCURRENCY: usize = 8;

/// Blocks walked ahead of the announcements (the walk waits when this many are queued).
const WALK_AHEAD: usize = 256;

/// A progress line (debug) every this many blocks.
const PROGRESS_EVERY: usize = 256;

/// What [`Mesh::provide_dag`] announced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provided {
    /// Blocks handed to the DHT (the root, and with [`ProvideStrategy::All`] the rest of the DAG). Each is kept
    /// and re-announced every [`crate::Config::reprovide_interval`] and when the DHT gets its first peer, unless
    /// the record store was full ([`crate::Config::max_provided_keys`]; then `first_error` says so).
    pub blocks: usize,
    /// Of those, blocks whose announcement reached DHT peers now.
    pub announced: usize,
    /// The first announcement error (e.g. no DHT peer yet: the records are kept and announced later).
    pub first_error: Option<String>,
}

impl Provided {
    fn note(&mut self, res: Result<(), Error>) {
        self.blocks += 1;
        match res {
            Ok(()) => self.announced += 1,
            Err(e) => {
                self.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

impl Mesh {
    /// Announces on the DHT that this node provides the content under `root`, following
    /// [`crate::Config::provide_strategy`]: the root first, then with [`ProvideStrategy::All`] every other
    /// block of the DAG (walked from the store), [`PROVIDE_CONCURRENCY`] at a time. Every provided CID is
    /// kept and re-announced like [`Mesh::provide`]'s. Fails only if the DAG cannot be walked (a block
    /// missing or undecodable); announcements that reach nobody are counted in [`Provided`], not errors.
    pub async fn provide_dag(&self, root: Cid) -> Result<Provided, Error> {
        let strategy = self.config().provide_strategy;
        let mut out = Provided::default();
        out.note(self.provide(root).await);
        if strategy == ProvideStrategy::Roots {
            debug!(%root, ?out, "provided the root (strategy roots)");
            return Ok(out);
        }

        // The walk reads blocks (blocking I/O) on its own thread and hands the CIDs over a bounded channel, so
        // a DAG of millions of blocks is never held in memory.
        let (tx, mut rx) = mpsc::channel::<Cid>(WALK_AHEAD);
        let store = self.store().clone();
        let walk = tokio::task::spawn_blocking(move || {
            dag::walk(&store, &root, |cid, _| {
                if *cid == root {
                    return Ok(());
                }
                tx.blocking_send(*cid).map_err(|_| {
                    StoreError::io(
                        "providing a DAG",
                        std::io::Error::other("the announcements stopped"),
                    )
                })
            })
        });
        let cids = stream::poll_fn(|cx| rx.poll_recv(cx));
        let mut announcements = cids
            .map(|cid| async move { self.provide(cid).await })
            .buffer_unordered(PROVIDE_CONCURRENCY);
        while let Some(res) = announcements.next().await {
            out.note(res);
            if out.blocks % PROGRESS_EVERY == 0 {
                debug!(%root, blocks = out.blocks, announced = out.announced, "providing a DAG");
            }
        }
        walk.await.map_err(|reason| {
            Error::Dht(crate::DhtFailure::Walk {
                root: root.to_string(),
                reason,
            })
        })??;
        info!(
            %root,
            blocks = out.blocks,
            announced = out.announced,
            first_error = out.first_error.as_deref().unwrap_or(""),
            "provided a DAG on the DHT"
        );
        Ok(out)
    }
}
