//! [`StoreBlockstore`]: the `blockstore::Blockstore` trait (what `beetswap` reads and writes through)
//! implemented over our sled-backed `jobmesh_store::Store`.

use blockstore::{Blockstore, Error as BsError};
use cid::CidGeneric;
use jobmesh_store::{Cid, Store};

/// Bitswap's view of our content store. Every block written through it is verified against its CID by
/// the store; a block the store already has is not written again.
#[derive(Clone)]
pub struct StoreBlockstore {
    store: Store,
}

impl std::fmt::Debug for StoreBlockstore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreBlockstore")
    }
}

impl StoreBlockstore {
    /// Wraps a store.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The wrapped store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn to_cid<const S: usize>(cid: &CidGeneric<S>) -> Result<Cid, BsError> {
    Cid::try_from(cid.to_bytes().as_slice()).map_err(|_| BsError::CidTooLarge)
}

fn db_err(e: jobmesh_store::StoreError) -> BsError {
    BsError::FatalDatabaseError(e.to_string())
}

/// Runs a store call on tokio's blocking pool: hashing and file I/O must not stall the swarm task that
/// polls bitswap.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BsError> + Send + 'static,
) -> Result<T, BsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BsError::ExecutorError(e.to_string()))?
}

impl Blockstore for StoreBlockstore {
    async fn get<const S: usize>(&self, cid: &CidGeneric<S>) -> Result<Option<Vec<u8>>, BsError> {
        let cid = to_cid(cid)?;
        let store = self.store.clone();
        blocking(move || Ok(store.get(&cid)))
            .await
            .map(|r| match r {
                Ok(v) => v,
                // A corrupt block is never served: log it and answer "don't have".
                Err(e) => {
                    tracing::warn!(%cid, error = %e, "not serving a block the store cannot read");
                    None
                }
            })
    }

    async fn put_keyed<const S: usize>(
        &self,
        cid: &CidGeneric<S>,
        data: &[u8],
    ) -> Result<(), BsError> {
        let cid = to_cid(cid)?;
        let store = self.store.clone();
        let data = data.to_vec();
        blocking(move || {
            if store.has(&cid).map_err(db_err)? {
                return Ok(());
            }
            store.put(&cid, &data).map(|_| ()).map_err(db_err)
        })
        .await
    }

    async fn remove<const S: usize>(&self, _cid: &CidGeneric<S>) -> Result<(), BsError> {
        // Removal belongs to the store's garbage collector (pins decide), never to bitswap.
        Ok(())
    }

    async fn has<const S: usize>(&self, cid: &CidGeneric<S>) -> Result<bool, BsError> {
        let cid = to_cid(cid)?;
        let store = self.store.clone();
        blocking(move || store.has(&cid).map_err(db_err)).await
    }

    async fn close(self) -> Result<(), BsError> {
        self.store.flush().map_err(db_err)
    }
}
