//! The connection manager: bootstrap peers, connected peers and trimming the least recently used above the
//! high watermark (kubo's `ConnMgr`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::{swarm::ConnectionId, Multiaddr, PeerId};
use tracing::debug;

use super::Driver;
use crate::mesh::types::NetStats;

pub(super) struct Bootstrap {
    pub(super) addr: Multiaddr,
    pub(super) peer: Option<PeerId>,
    pub(super) connected: bool,
    pub(super) dialing: Option<ConnectionId>,
    pub(super) backoff: Duration,
    pub(super) next_attempt: Instant,
    /// Whether this bootstrap peer was ever connected (a lost one is redialed at once only while the node
    /// has few peers: see [`BOOTSTRAP_RECHECK`]).
    pub(super) ever_connected: bool,
    /// Whether its redial was put off by [`BOOTSTRAP_RECHECK`] (the next attempt dials whatever the peer count).
    pub(super) deferred: bool,
}

pub(super) struct Peer {
    pub(super) conns: HashMap<ConnectionId, Multiaddr>,
    pub(super) agent: Option<String>,
    /// When the peer connected or was last used (a direct request either way, a dial for content): the
    /// connection manager trims the least recently used first.
    pub(super) last_used: Instant,
    /// Set once the connection manager disconnected it (its connections are closing).
    pub(super) trimmed: bool,
}

impl Peer {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            conns: HashMap::new(),
            agent: None,
            last_used: now,
            trimmed: false,
        }
    }
}

/// How often a lost bootstrap peer is redialed while the node still has at least `low` peers (with fewer,
/// it is redialed at once, with backoff). A bootstrap peer that trims its connections is not redialed by
/// everyone it dropped every few seconds, and a partitioned node still finds its way back (kubo checks its
/// bootstrap connections every 30 s too).
pub(super) const BOOTSTRAP_RECHECK: Duration = Duration::from_secs(30);
/// How often the connection manager compares the peer count with its high watermark.
pub(super) const TRIM_EVERY: Duration = Duration::from_secs(1);

impl Driver {
    /// The connection manager: above the high watermark, disconnects the least recently used peers that are
    /// not protected (within their grace period, in a gossipsub mesh, or a bootstrap peer) until the low
    /// watermark is reached or only protected peers are left.
    pub(super) fn trim_connections(&mut self, now: Instant) {
        let limits = self.conn_limits;
        let connected = self.live_peers();
        if connected <= limits.high {
            return;
        }
        let protected: HashSet<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_mesh_peers()
            .copied()
            .chain(self.bootstrap.iter().filter_map(|b| b.peer))
            .collect();
        let mut candidates: Vec<(Instant, PeerId)> = self
            .peers
            .iter()
            .filter(|(id, p)| {
                !p.trimmed
                    && now.duration_since(p.last_used) >= limits.grace
                    && !protected.contains(id)
            })
            .map(|(id, p)| (p.last_used, *id))
            .collect();
        candidates.sort_unstable();
        let excess = connected - limits.low;
        let mut trimmed = 0;
        for (_, peer) in candidates.into_iter().take(excess) {
            if self.swarm.disconnect_peer_id(peer).is_ok() {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.trimmed = true;
                }
                trimmed += 1;
            }
        }
        if trimmed > 0 {
            NetStats::add(&self.stats.peers_trimmed, trimmed);
            debug!(
                peers = connected - trimmed as usize,
                trimmed,
                low = limits.low,
                high = limits.high,
                "connection manager trimmed peers"
            );
        }
    }

    /// Connected peers, not counting those the connection manager is disconnecting.
    pub(super) fn live_peers(&self) -> usize {
        self.peers.values().filter(|p| !p.trimmed).count()
    }

    /// Notes that `peer` was just used, protecting it from trimming for the grace period.
    pub(super) fn touch(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.last_used = Instant::now();
        }
    }
}
