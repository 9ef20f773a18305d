//! Settings of one node's swarm.

use std::sync::Arc;
use std::time::Duration;

use libp2p::{identity::Keypair, Multiaddr};

use crate::trace::GossipTrace;

/// Which transport the swarm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP (with noise and yamux) and QUIC, with NAT traversal (AutoNAT, circuit relay v2, DCUtR hole
    /// punching): real nodes and multi-process tests.
    Tcp,
    /// libp2p's in-process memory transport (with noise and yamux): simulations of many nodes.
    Memory,
}

/// Settings of one node's swarm. [`Config::new`] gives sensible defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node identity (ed25519): its PeerId, and the key that signs gossip.
    pub keypair: Keypair,
    /// Transport to build.
    pub transport: Transport,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to connect to at start (retried with exponential backoff while unreachable).
    pub bootstrap: Vec<Multiaddr>,
    /// First retry delay of an unreachable bootstrap peer (doubles up to [`Config::bootstrap_backoff_max`]).
    pub bootstrap_backoff: Duration,
    /// Largest retry delay of an unreachable bootstrap peer.
    pub bootstrap_backoff_max: Duration,
    /// How often provider records are re-published on the DHT.
    pub reprovide_interval: Duration,
    /// What [`crate::Mesh::provide_dag`] announces of the content this node adds or pins: every block
    /// ([`ProvideStrategy::All`], the default) or the root only.
    pub provide_strategy: ProvideStrategy,
    /// How many keys the Kademlia record store holds provider records for: the CIDs this node provides and
    /// those other peers announced to it (further announcements are refused). libp2p's default, 1,024, is
    /// fewer blocks than a 1 GiB file has; the default here, 2^16, covers 16 GiB of content in 256 KiB
    /// blocks. A key costs ~3.3 KB in memory when used (libp2p keeps room for 20 providers inline), and other
    /// peers can fill the store too, so this also bounds what they can make this node hold (~220 MB).
    pub max_provided_keys: usize,
    /// Largest gossip message accepted on a topic, in bytes (larger ones are rejected and the sender
    /// scored down).
    pub max_gossip_message: usize,
    /// Blocks requested at once while fetching a DAG.
    pub fetch_window: usize,
    /// How long a fetch waits on connected peers before asking the DHT for providers.
    pub provider_lookup_delay: Duration,
    /// Gossipsub heartbeat.
    pub heartbeat: Duration,
    /// Connections idle longer than this are closed.
    pub idle_timeout: Duration,
    /// How long a direct request waits for its response.
    pub request_timeout: Duration,
    /// Where to note gossip publications and deliveries (simulations of many nodes in one process).
    pub gossip_trace: Option<Arc<GossipTrace>>,
    /// How many peers the node stays connected to (the connection manager's watermarks).
    pub connections: ConnLimits,
    /// How long a peer that keeps sending malformed or oversized bitswap frames is disconnected and refused.
    pub misbehaviour_ban: Duration,
    /// NAT traversal (TCP transport only): AutoNAT, relay server and client, hole punching.
    pub nat: NatConfig,
    /// Relays to reserve a slot on whatever this node's reachability (`/…/p2p/<relay id>`; TCP only).
    pub relays: Vec<Multiaddr>,
    /// Round-trip time, loss and bandwidth of the connections this node dials over the memory transport
    /// (simulations; see [`crate::link`]). `None`: bytes arrive the instant they are written.
    pub links: Option<Arc<dyn crate::link::Links>>,
}

/// Whether a node relays connections for peers behind NATs (circuit relay v2, `node start --relay-server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayServer {
    /// Serve as a relay once AutoNAT confirmed that this node is publicly reachable (the default): a node at
    /// home behind its router refuses reservations, which nobody outside could use anyway.
    #[default]
    Auto,
    /// Always accept reservations (within [`RelayLimits`]).
    On,
    /// Never relay.
    Off,
}

/// What a relay server grants the peers it relays for (circuit relay v2 limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLimits {
    /// Reservations held at once (peers reachable through this node).
    pub max_reservations: usize,
    /// Relayed connections open at once.
    pub max_circuits: usize,
    /// Relayed connections open at once per peer.
    pub max_circuits_per_peer: usize,
    /// How long one relayed connection may last before the relay closes it.
    pub max_circuit_duration: Duration,
    /// Bytes one relayed connection may carry (both ways) before the relay closes it.
    pub max_circuit_bytes: u64,
}

impl Default for RelayLimits {
    /// 128 reservations, 64 circuits (16 per peer: a peer behind a symmetric NAT reaches everyone through it),
    /// each up to 10 minutes and 256 MiB: enough to carry a
    /// job's messages and its code and input between peers that cannot connect directly, without letting
    /// one peer hold the relay's bandwidth for long.
    fn default() -> Self {
        Self {
            max_reservations: 128,
            max_circuits: 64,
            max_circuits_per_peer: 16,
            max_circuit_duration: Duration::from_secs(600),
            max_circuit_bytes: 256 << 20,
        }
    }
}

/// NAT traversal settings (used only with [`Transport::Tcp`]: the memory transport has no NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatConfig {
    /// Whether this node relays for others.
    pub relay_server: RelayServer,
    /// The relay server's limits.
    pub relay_limits: RelayLimits,
    /// Relays a node behind a NAT reserves a slot on (it advertises one `/p2p-circuit` address per relay).
    pub max_relays: usize,
    /// How often AutoNAT asks a peer to dial back an untested address of this node.
    pub probe_interval: Duration,
}

impl Default for NatConfig {
    fn default() -> Self {
        Self {
            relay_server: RelayServer::Auto,
            relay_limits: RelayLimits::default(),
            max_relays: 2,
            probe_interval: Duration::from_secs(2),
        }
    }
}

/// What a node announces on the DHT for content it adds or pins (kubo's `Reprovider.Strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProvideStrategy {
    /// Every block of the DAG: peers find this node for any block (a file inside a directory, one chunk),
    /// at the cost of one DHT announcement (and re-announcement) per block. kubo's default.
    #[default]
    All,
    /// The root only: one announcement per added file or pin, but a peer looking for an inner block alone
    /// does not find this node.
    Roots,
}

impl std::fmt::Display for ProvideStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProvideStrategy::All => "all",
            ProvideStrategy::Roots => "roots",
        })
    }
}

/// The connection manager's watermarks (kubo's `Swarm.ConnMgr`): once more than `high` peers are connected,
/// the least recently used of the unprotected ones are disconnected until `low` remain. Protected: peers
/// connected or used (a direct request either way, a dial for content) within `grace`, gossipsub mesh peers
/// and bootstrap peers. Without it every peer ever met stays connected: bitswap and gossipsub keep their
/// streams open, so no connection of a long-running node would ever go idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Peers kept when trimming.
    pub low: usize,
    /// Peers above which the node trims.
    pub high: usize,
    /// How long a new or recently used peer is protected from trimming.
    pub grace: Duration,
}

impl Default for ConnLimits {
    /// kubo's high watermark and grace period (96 peers, 20 s), trimming to half of it.
    fn default() -> Self {
        Self::with_high(96)
    }
}

impl ConnLimits {
    /// Watermarks `high / 2` and `high`, with a 20 s grace period.
    pub fn with_high(high: usize) -> Self {
        Self {
            low: high / 2,
            high,
            grace: Duration::from_secs(20),
        }
    }
}

impl Config {
    /// Defaults for a node with this identity: TCP, no listen address, no bootstrap peers.
    pub fn new(keypair: Keypair) -> Self {
        Self {
            keypair,
            transport: Transport::Tcp,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            bootstrap_backoff: Duration::from_secs(1),
            bootstrap_backoff_max: Duration::from_secs(60),
            reprovide_interval: Duration::from_secs(12 * 3600),
            provide_strategy: ProvideStrategy::All,
            max_provided_keys: 1 << 16,
            max_gossip_message: 64 * 1024,
            fetch_window: 128,
            provider_lookup_delay: Duration::from_millis(500),
            heartbeat: Duration::from_millis(700),
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
            gossip_trace: None,
            connections: ConnLimits::default(),
            misbehaviour_ban: Duration::from_secs(600),
            nat: NatConfig::default(),
            relays: Vec::new(),
            links: None,
        }
    }
}
