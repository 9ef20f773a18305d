//! Settings of one node's swarm.

use std::sync::Arc;
use std::time::Duration;

use libp2p::{identity::Keypair, Multiaddr};

use crate::trace::GossipTrace;

/// Which transport the swarm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP (with noise and yamux): real nodes and multi-process tests.
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
            max_gossip_message: 64 * 1024,
            fetch_window: 128,
            provider_lookup_delay: Duration::from_millis(500),
            heartbeat: Duration::from_millis(700),
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
            gossip_trace: None,
        }
    }
}
