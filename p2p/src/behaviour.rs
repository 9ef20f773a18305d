//! The composed `NetworkBehaviour` of a node and the settings of each protocol.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::AtomicBool;

use libp2p::{
    allow_block_list, autonat, dcutr, gossipsub, identify,
    identity::Keypair,
    kad, ping, relay, request_response,
    swarm::{behaviour::toggle::Toggle, NetworkBehaviour},
    StreamProtocol,
};

use crate::config::{Config, RelayServer};
use crate::direct::{FrameCodec, DIRECT_PROTOCOL};
use crate::error::build_error;
use crate::nat::PublicOnly;
use crate::{blocks::StoreBlockstore, Error, AGENT_VERSION};

/// Kademlia protocol of a jobmesh mesh (kept apart from the public IPFS DHT).
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/jobmesh/kad/1.0.0");
/// Identify protocol version string (the one kubo and Helia use).
pub(crate) const IDENTIFY_PROTOCOL: &str = "/ipfs/0.1.0";
/// Largest gossipsub frame read from a peer; larger ones close the stream.
pub(crate) const MAX_GOSSIP_FRAME: usize = 1024 * 1024;
/// Messages queued per connected peer for sending (half for control messages, half for the others, which are
/// dropped for a peer whose queue is full — a slow peer).
pub(crate) const GOSSIP_QUEUE_LEN: usize = 64;

/// Every protocol a node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Peers this node refuses to be connected to ([`crate::Mesh::block_peer`]).
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub gossipsub: gossipsub::Behaviour,
    pub bitswap: beetswap::Behaviour<64, StoreBlockstore>,
    pub direct: request_response::Behaviour<FrameCodec>,
    /// Circuit relay v2 server (TCP transport, unless `--relay-server off`).
    pub relay_server: Toggle<relay::Behaviour>,
    /// Circuit relay v2 client: reservations on relays and relayed dials (TCP transport).
    pub relay_client: Toggle<relay::client::Behaviour>,
    /// Hole punching over relayed connections (TCP transport).
    pub dcutr: Toggle<dcutr::Behaviour>,
    /// AutoNAT v2 client: asks peers to dial this node's candidate addresses back (TCP transport).
    pub autonat: Toggle<autonat::v2::client::Behaviour>,
    /// AutoNAT v2 server: dials other peers back (TCP transport).
    pub autonat_server: Toggle<autonat::v2::server::Behaviour>,
    /// AutoNAT v1, client and server: v2 asks only peers this node dialed, so a node that is only dialed
    /// (a bootstrap node) learns its reachability through v1, which asks over any connection.
    pub autonat_v1: Toggle<autonat::v1::Behaviour>,
}

/// The NAT traversal protocols of a node on the TCP transport.
pub(crate) struct NatParts {
    /// The relay client built with the transport.
    pub relay_client: relay::client::Behaviour,
    /// Set once AutoNAT confirmed that this node is reachable (the relay server's gate in `Auto` mode).
    pub public: Arc<AtomicBool>,
}

impl Behaviour {
    pub(crate) fn new(
        key: &Keypair,
        cfg: &Config,
        blocks: StoreBlockstore,
        nat: Option<NatParts>,
    ) -> Result<Self, Error> {
        let peer_id = key.public().to_peer_id();
        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
                .with_agent_version(AGENT_VERSION.to_string())
                .with_push_listen_addr_updates(true),
        );
        let kad = kad_behaviour(peer_id, cfg);

        let gossipsub = gossipsub_behaviour(key, cfg)?;

        let bitswap = beetswap::Behaviour::new(Arc::new(blocks));
        let direct = request_response::Behaviour::with_codec(
            FrameCodec,
            [(DIRECT_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(cfg.request_timeout)
                .with_max_concurrent_streams(512),
        );
        let on = nat.is_some();
        let (relay_client, public) = match nat {
            Some(n) => (Some(n.relay_client), Some(n.public)),
            None => (None, None),
        };
        let relay_server = public
            .filter(|_| cfg.nat.relay_server != RelayServer::Off)
            .map(|p| relay::Behaviour::new(peer_id, relay_config(cfg, p)));
        let autonat = on.then(|| {
            autonat::v2::client::Behaviour::new(
                rand::rngs::OsRng,
                autonat::v2::client::Config::default().with_probe_interval(cfg.nat.probe_interval),
            )
        });
        Ok(Self {
            relay_server: relay_server.into(),
            relay_client: relay_client.into(),
            dcutr: on.then(|| dcutr::Behaviour::new(peer_id)).into(),
            autonat: autonat.into(),
            autonat_server: on.then(autonat::v2::server::Behaviour::default).into(),
            autonat_v1: on.then(|| autonat_v1(peer_id, cfg)).into(),
            blocked: allow_block_list::Behaviour::default(),
            identify,
            ping: ping::Behaviour::default(),
            kad,
            gossipsub,
            bitswap,
            direct,
        })
    }
}

/// Kademlia on our own protocol id, in server mode from the start, with our own bootstrap schedule.
fn kad_behaviour(peer_id: libp2p::PeerId, cfg: &Config) -> kad::Behaviour<kad::store::MemoryStore> {
    let mut kad_cfg = kad::Config::new(KAD_PROTOCOL);
    kad_cfg
        .set_query_timeout(Duration::from_secs(30))
        .set_provider_publication_interval(Some(cfg.reprovide_interval))
        .set_provider_record_ttl(Some(cfg.reprovide_interval * 2))
        // We look ourselves up when a bootstrap peer connects and run a full bootstrap every few minutes
        // (`mesh/driver`), so a lone node does not warn about having nobody to ask.
        .set_periodic_bootstrap_interval(None)
        // Nor after each of the first 20 peers it meets (kad's default, ours through the vendored patch,
        // p2p/vendor/README.md): together with ours that walked the DHT twice per new node, and each walk
        // dials most of a small mesh — 100 simulated nodes opened 5,300 connections to start, and every
        // restart or newcomer another ~50, each a handshake and a set of protocol streams.
        .set_automatic_bootstrap_throttle(None);
    let kad_store = kad::store::MemoryStore::with_config(
        peer_id,
        kad::store::MemoryStoreConfig {
            max_provided_keys: cfg.max_provided_keys,
            ..Default::default()
        },
    );
    let mut kad = kad::Behaviour::with_config(peer_id, kad_store, kad_cfg);
    // A node answers DHT queries from the start: on a private mesh nobody confirms external
    // addresses, so the automatic client/server switch would leave every node a client.
    kad.set_mode(Some(kad::Mode::Server));
    kad
}

/// Gossipsub with content-addressed message ids, validation before forwarding and peer scoring.
fn gossipsub_behaviour(key: &Keypair, cfg: &Config) -> Result<gossipsub::Behaviour, Error> {
    // Gossip is signed when published (kubo and Helia accept only signed messages) but signatures are not
    // checked here: rust-libp2p's strict mode verified the signature of *every copy* received, before
    // de-duplicating — a tenth of the CPU of 100 simulated nodes. Payloads that need an author sign
    // themselves (the market's envelopes do) and the topic's validator checks that once per message.
    // Messages are identified by a hash of their topic and payload (sender and sequence number are not
    // checked, so an id built from them could be forged to suppress the real message).
    let gossip_cfg = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(cfg.heartbeat)
        .validation_mode(gossipsub::ValidationMode::None)
        .message_id_fn(content_message_id)
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_FRAME)
        // gossipsub allocates each connected peer's outbound queue up front (5,000 slots by default: about
        // 0.5 MB per peer, re-allocated on every new connection). Job topics carry a few messages a second;
        // at 100 simulated nodes the default queues alone took gigabytes and their page faults a core; 256
        // slots still held ≈ 190 MiB there, 64 keep every announcement delivered (ratio 1.00 in a
        // 100-node, 1,000-job simulation).
        .connection_handler_queue_len(GOSSIP_QUEUE_LEN)
        .build()
        .map_err(build_error("gossipsub config"))?;
    let mut gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_cfg,
    )
    .map_err(build_error("gossipsub"))?;
    gossipsub
        .with_peer_score(peer_score_params(), peer_score_thresholds())
        .map_err(build_error("gossipsub peer scoring"))?;
    Ok(gossipsub)
}

/// AutoNAT v1 probing at the pace of v2, dialing back any IP (a private mesh, loopback tests); a server
/// dials only the IP it sees the client connect from.
fn autonat_v1(peer_id: libp2p::PeerId, cfg: &Config) -> autonat::v1::Behaviour {
    let every = cfg.nat.probe_interval;
    autonat::v1::Behaviour::new(
        peer_id,
        autonat::v1::Config {
            boot_delay: every,
            retry_interval: every * 3,
            refresh_interval: Duration::from_secs(300),
            throttle_server_period: every,
            confidence_max: 1,
            only_global_ips: false,
            ..Default::default()
        },
    )
}

/// The relay server's limits; in `Auto` mode reservations pass only once `public` is set.
fn relay_config(cfg: &Config, public: Arc<AtomicBool>) -> relay::Config {
    let l = cfg.nat.relay_limits;
    let mut c = relay::Config {
        max_reservations: l.max_reservations,
        max_circuits: l.max_circuits,
        max_circuits_per_peer: l.max_circuits_per_peer,
        max_circuit_duration: l.max_circuit_duration,
        max_circuit_bytes: l.max_circuit_bytes,
        ..Default::default()
    };
    c.reservation_rate_limiters
        .push(Box::new(PublicOnly(public)));
    c
}

/// A gossip message's id: a hash of its topic and payload. The same payload published twice within
/// gossipsub's duplicate window is one message.
fn content_message_id(m: &gossipsub::Message) -> gossipsub::MessageId {
    let mut h = blake3::Hasher::new();
    h.update(m.topic.as_str().as_bytes());
    h.update(&[0]);
    h.update(&m.data);
    gossipsub::MessageId::new(&h.finalize().as_bytes()[..20])
}

/// Peer-score parameters: behaviour penalties on, loopback exempt from the same-IP penalty (meshes of
/// many nodes on one host are how we test and simulate).
fn peer_score_params() -> gossipsub::PeerScoreParams {
    let mut p = gossipsub::PeerScoreParams::default();
    p.ip_colocation_factor_whitelist
        .insert("127.0.0.1".parse().expect("ip"));
    p.ip_colocation_factor_whitelist
        .insert("::1".parse().expect("ip"));
    p
}

fn peer_score_thresholds() -> gossipsub::PeerScoreThresholds {
    gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 20.0,
    }
}

/// Score parameters of every topic this node joins. Invalid messages (unsigned, bad signature,
/// oversized, rejected by the topic's validator) cost their sender quadratically; low-traffic topics
/// such as job announcements must not punish quiet mesh peers, so mesh-delivery penalties are off.
pub(crate) fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 10.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.9,
        ..Default::default()
    }
}
