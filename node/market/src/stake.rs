//! Worker stake as a requester sees it (issue 21; docs/protocol.md, "Credibility"): the active stake a worker
//! holds in the stake contract, bound to its PeerId and paid from the settlement address of its offer. The
//! market does not touch the chain itself: the node gives it a [`StakeOracle`] (the daemon builds one on its
//! settlement chain for `node start --stake-contract`), and [`StakeCache`] keeps what it answered for a while.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libp2p_identity::PeerId;

/// How long a stake read from the chain is trusted before it is read again.
pub const STAKE_TTL: Duration = Duration::from_secs(300);
/// The most workers whose stake is cached (the oldest entry goes first).
pub const MAX_CACHED: usize = 4096;

/// Why a stake could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the stake of {worker}: {why}")]
pub struct StakeLookupError {
    /// The worker.
    pub worker: PeerId,
    /// What failed (the chain client's error).
    pub why: String,
}

/// A stake lookup in flight.
pub type StakeFuture = Pin<Box<dyn Future<Output = Result<u128, StakeLookupError>> + Send>>;

/// Reads the active stake `address` holds for `worker` (zero when its stake is bound to another identity).
pub trait StakeOracle: std::fmt::Debug + Send + Sync + 'static {
    /// The active stake in wei.
    fn active_stake(&self, worker: PeerId, address: [u8; 20]) -> StakeFuture;
}

/// A worker and the settlement address of its offer.
type StakeKey = (PeerId, [u8; 20]);

/// Stakes read recently, per (worker, address), bounded by [`MAX_CACHED`] and [`STAKE_TTL`].
#[derive(Debug, Default)]
pub struct StakeCache {
    entries: Mutex<HashMap<StakeKey, (u128, Instant)>>,
}

impl StakeCache {
    /// The stake to credit to an offer of `worker` paid to `address` claiming `claim`: the stake on chain,
    /// never more than a claim; 0 when the lookup fails (an unverifiable claim is ignored).
    pub async fn credit(
        &self,
        oracle: &dyn StakeOracle,
        worker: PeerId,
        address: [u8; 20],
        claim: Option<u128>,
    ) -> u128 {
        let on_chain = match self.cached(&worker, &address) {
            Some(wei) => wei,
            None => match oracle.active_stake(worker, address).await {
                Ok(wei) => {
                    self.store(worker, address, wei);
                    wei
                }
                Err(e) => {
                    tracing::debug!(error = %e, "stake not verified: ignoring the claim");
                    0
                }
            },
        };
        claim.map_or(on_chain, |c| c.min(on_chain))
    }

    fn cached(&self, worker: &PeerId, address: &[u8; 20]) -> Option<u128> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&(*worker, *address))
            .filter(|(_, at)| at.elapsed() < STAKE_TTL)
            .map(|(wei, _)| *wei)
    }

    fn store(&self, worker: PeerId, address: [u8; 20], wei: u128) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_CACHED {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| *k);
            if let Some(key) = oldest {
                entries.remove(&key);
            }
        }
        entries.insert((worker, address), (wei, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An oracle that counts its lookups and holds 5 wei for everyone.
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    impl StakeOracle for Counting {
        fn active_stake(&self, _: PeerId, _: [u8; 20]) -> StakeFuture {
            self.0.fetch_add(1, Ordering::Relaxed);
            Box::pin(async { Ok(5) })
        }
    }

    #[tokio::test]
    async fn stake_claims_are_capped_by_the_chain_and_lookups_cached() {
        let (oracle, cache, worker) =
            (Counting::default(), StakeCache::default(), PeerId::random());
        // A claim above the stake on chain does not hold: only what is on chain counts.
        assert_eq!(cache.credit(&oracle, worker, [1; 20], Some(100)).await, 5);
        assert_eq!(cache.credit(&oracle, worker, [1; 20], Some(3)).await, 3);
        assert_eq!(cache.credit(&oracle, worker, [1; 20], None).await, 5);
        assert_eq!(
            oracle.0.load(Ordering::Relaxed),
            1,
            "read once, then cached"
        );
        // Another address is another lookup.
        cache.credit(&oracle, worker, [2; 20], None).await;
        assert_eq!(oracle.0.load(Ordering::Relaxed), 2);
    }
}
