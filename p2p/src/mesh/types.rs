//! What the mesh hands its users: delivered gossip, validators, counters, peer listings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use libp2p::{Multiaddr, PeerId};

/// A gossip message delivered to this node (after validation).
#[derive(Debug, Clone)]
pub struct GossipMessage {
    /// The topic it was published on.
    pub topic: String,
    /// Its payload.
    pub data: Vec<u8>,
    /// The peer that forwarded it to us.
    pub from: PeerId,
}

/// Decides whether a gossip payload on a topic is valid. Gossip has no verified author at this layer (messages
/// are signed when published, for other implementations, but signatures are not checked here; a payload that
/// needs an author signs itself), so this is where its signature is checked — once per message, since copies
/// are de-duplicated by content before validation. Rejected messages are not forwarded and their sender is
/// scored down.
pub type Validator = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// Counts of what moved through a node since it started (for metrics).
#[derive(Debug, Default)]
pub struct NetStats {
    /// Gossip messages delivered to this node (after validation).
    pub gossip_messages: AtomicU64,
    /// Their payload bytes.
    pub gossip_bytes: AtomicU64,
    /// Gossip messages rejected by validation.
    pub gossip_rejected: AtomicU64,
    /// Blocks received by bitswap.
    pub bitswap_blocks: AtomicU64,
    /// Their bytes.
    pub bitswap_bytes: AtomicU64,
    /// Direct requests received.
    pub direct_received: AtomicU64,
    /// Direct requests sent.
    pub direct_sent: AtomicU64,
    /// Connections established (dialed or accepted).
    pub connections_opened: AtomicU64,
    /// Peers disconnected by the connection manager.
    pub peers_trimmed: AtomicU64,
    /// Malformed or oversized bitswap frames received (each one counts against its sender).
    pub bitswap_misbehaved: AtomicU64,
    /// Peers banned for misbehaving (disconnected and refused for [`Config::misbehaviour_ban`](crate::Config::misbehaviour_ban)).
    pub peers_banned: AtomicU64,
    /// DHT queries this node ran (bootstraps, provider lookups, provider announcements).
    pub dht_queries: AtomicU64,
    /// Of those, provider lookups ([`Mesh::find_providers`](crate::Mesh::find_providers), also run by fetches that stall).
    pub provider_lookups: AtomicU64,
}

impl NetStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A connected peer.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Its PeerId.
    pub peer_id: PeerId,
    /// The remote address of each connection to it.
    pub addrs: Vec<Multiaddr>,
    /// Its identify agent version, once known.
    pub agent: Option<String>,
    /// Its gossipsub score as seen by this node.
    pub gossip_score: Option<f64>,
    /// Each open connection to it: direct or through a relay.
    pub connections: Vec<ConnectionInfo>,
}

/// One connection to a peer.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Its remote address (`…/p2p/<relay>/p2p-circuit` when relayed).
    pub addr: Multiaddr,
    /// Whether it goes through a relay (false: a direct connection, possibly after a hole punch).
    pub relayed: bool,
}
