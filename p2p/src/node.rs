//! [`Node`]: a handle onto a running swarm. The swarm lives in one tokio task that owns it; the handle
//! sends it commands over a channel and awaits the answers, so the handle is cheap to clone and share.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jobmesh_store::{Cid, Store};
use libp2p::{
    autonat,
    core::{muxing::StreamMuxerBox, transport::MemoryTransport, upgrade::Version, Transport as _},
    gossipsub, identify, kad,
    multiaddr::Protocol,
    noise, request_response,
    swarm::{dial_opts::DialOpts, ConnectionId, SwarmEvent},
    tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::behaviour::{topic_score_params, Behaviour, BehaviourEvent, NatParts};
use crate::direct::InboundRequest;
use crate::nat::{NatState, NatStatus};
use crate::trace::LiveNode;
use crate::{blocks::StoreBlockstore, config::Config, config::ConnLimits, Error};

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
    /// Peers banned for misbehaving (disconnected and refused for [`Config::misbehaviour_ban`]).
    pub peers_banned: AtomicU64,
    /// DHT queries this node ran (bootstraps, provider lookups, provider announcements).
    pub dht_queries: AtomicU64,
    /// Of those, provider lookups ([`Node::find_providers`], also run by fetches that stall).
    pub provider_lookups: AtomicU64,
}

impl NetStats {
    fn add(counter: &AtomicU64, n: u64) {
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

type Reply<T> = oneshot::Sender<T>;

/// A `connect` call waiting for its connection: the address (for errors) and who waits.
type PendingDial = (String, Reply<Result<PeerId, Error>>);

enum Cmd {
    ListenAddrs(Reply<Vec<Multiaddr>>),
    Nat(Reply<NatStatus>),
    Peers(Reply<Vec<PeerInfo>>),
    TopicPeers(String, Reply<usize>),
    MeshPeers(String, Reply<usize>),
    AnyConnected(Vec<PeerId>, Reply<bool>),
    Dial(Multiaddr, Reply<Result<PeerId, Error>>),
    DialPeer(PeerId),
    Block(PeerId, bool),
    Provide(Cid, Reply<Result<(), Error>>),
    FindProviders(Cid, Reply<Vec<PeerId>>),
    LocalProviders(Cid, Reply<Vec<PeerId>>),
    GetBlock {
        req: u64,
        cid: Cid,
        /// Peers to ask (its known holders); empty: every connected peer.
        from: Vec<PeerId>,
        reply: Reply<Result<Vec<u8>, Error>>,
    },
    CancelGet(u64),
    /// A `GetBlock` with named holders is asked of every connected peer from now on.
    WidenGet(u64),
    Subscribe {
        topic: String,
        validator: Option<Validator>,
        reply: Reply<Result<broadcast::Receiver<GossipMessage>, Error>>,
    },
    Publish {
        topic: String,
        data: Vec<u8>,
        reply: Reply<Result<(), Error>>,
    },
    Request {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        data: Vec<u8>,
        reply: Reply<Result<Vec<u8>, Error>>,
    },
    Shutdown(Reply<()>),
}

/// A handle onto a running node's swarm. Clone it freely.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    peer_id: PeerId,
    store: Store,
    cmd: mpsc::Sender<Cmd>,
    next_req: AtomicU64,
    cfg: Config,
    inbound: std::sync::Mutex<Option<mpsc::Receiver<InboundRequest>>>,
    stats: Arc<NetStats>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.inner.peer_id)
            .finish()
    }
}

impl Node {
    /// Builds the swarm, starts listening and dialing the bootstrap peers, and spawns the task that
    /// drives it on the current tokio runtime. Listening errors are returned here; unreachable
    /// bootstrap peers are retried in the background.
    pub async fn start(cfg: Config, store: Store) -> Result<Node, Error> {
        for addr in &cfg.bootstrap {
            crate::check_dialable(addr)?;
        }
        for addr in &cfg.relays {
            crate::check_dialable(addr)?;
        }
        let (mut swarm, public) = build_swarm(&cfg, StoreBlockstore::new(store.clone()))?;
        let peer_id = *swarm.local_peer_id();
        // Every port checked before any is bound (`/ip4/0.0.0.0/tcp/N` and `/ip6/::/tcp/N` share a port number).
        for addr in &cfg.listen {
            ensure_port_free(addr)?;
        }
        let mut listeners = Vec::new();
        for addr in &cfg.listen {
            let id = swarm.listen_on(addr.clone()).map_err(|e| Error::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
            listeners.push((id, addr.clone()));
        }
        // Wait for every listener to be bound (or fail), so the caller can print real addresses.
        let mut pending: HashSet<_> = listeners.iter().map(|(id, _)| *id).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !pending.is_empty() {
            let ev = tokio::time::timeout_at(deadline, swarm.select_next_some())
                .await
                .map_err(|_| Error::Listen {
                    addr: "all".into(),
                    reason: "timed out".into(),
                })?;
            match ev {
                SwarmEvent::NewListenAddr {
                    listener_id,
                    address,
                } => {
                    info!(%address, "listening");
                    pending.remove(&listener_id);
                }
                SwarmEvent::ListenerClosed {
                    listener_id,
                    reason,
                    ..
                } => {
                    let reason = match reason {
                        Ok(()) => "closed".into(),
                        Err(e) => e.to_string(),
                    };
                    return Err(listen_error(&listeners, listener_id, reason));
                }
                SwarmEvent::ListenerError { listener_id, error } => {
                    return Err(listen_error(&listeners, listener_id, error.to_string()));
                }
                _ => {}
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        let (inbound_tx, inbound_rx) = mpsc::channel(1024);
        let stats = Arc::new(NetStats::default());
        let driver = Driver::new(swarm, &cfg, inbound_tx, stats.clone(), public);
        tokio::spawn(driver.run(rx));
        Ok(Node {
            inner: Arc::new(Inner {
                peer_id,
                store,
                cmd: tx,
                next_req: AtomicU64::new(0),
                cfg,
                inbound: std::sync::Mutex::new(Some(inbound_rx)),
                stats,
            }),
        })
    }

    /// This node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The content store the node serves blocks from.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// What moved through this node since it started.
    pub fn stats(&self) -> &NetStats {
        &self.inner.stats
    }

    /// The settings the node was started with.
    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .cmd
            .send(make(tx))
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// The addresses the node listens on, each ending in `/p2p/<peer id>`.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, Error> {
        let me = self.peer_id();
        Ok(self
            .ask(Cmd::ListenAddrs)
            .await?
            .into_iter()
            .map(|a| match a.iter().last() {
                // A relayed address names this node already.
                Some(Protocol::P2p(_)) => a,
                _ => a.with(Protocol::P2p(me)),
            })
            .collect())
    }

    /// What this node knows of its reachability, its relays and its hole punches.
    pub async fn nat_status(&self) -> Result<NatStatus, Error> {
        self.ask(Cmd::Nat).await
    }

    /// The peers connected now.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.ask(Cmd::Peers).await
    }

    /// Whether this node has a connection to at least one of `peers` now.
    pub async fn any_connected(&self, peers: &[PeerId]) -> Result<bool, Error> {
        let peers = peers.to_vec();
        self.ask(|r| Cmd::AnyConnected(peers, r)).await
    }

    /// How many connected peers are subscribed to a gossip topic (as far as gossipsub has heard).
    pub async fn topic_peers(&self, topic: &str) -> Result<usize, Error> {
        let topic = topic.to_string();
        self.ask(|r| Cmd::TopicPeers(topic, r)).await
    }

    /// How many peers this node's gossipsub mesh of a topic holds (grafted peers, to whom it forwards).
    pub async fn mesh_peers(&self, topic: &str) -> Result<usize, Error> {
        let topic = topic.to_string();
        self.ask(|r| Cmd::MeshPeers(topic, r)).await
    }

    /// Connects to an address and waits (at most `timeout`) until the connection is up.
    pub async fn connect(&self, addr: Multiaddr, timeout: Duration) -> Result<PeerId, Error> {
        crate::check_dialable(&addr)?;
        let shown = addr.to_string();
        match tokio::time::timeout(timeout, self.ask(|r| Cmd::Dial(addr, r))).await {
            Ok(r) => r?,
            Err(_) => Err(Error::Dial {
                addr: shown,
                reason: "timed out".into(),
            }),
        }
    }

    /// Asks the swarm to connect to a known peer (addresses from the DHT); does not wait.
    pub async fn dial_peer(&self, peer: PeerId) -> Result<(), Error> {
        self.inner
            .cmd
            .send(Cmd::DialPeer(peer))
            .await
            .map_err(|_| Error::Shutdown)
    }

    /// Announces on the DHT that this node provides `cid`; it is re-announced periodically while the
    /// node runs, and when the node gets DHT peers after having none (then this call fails: nobody heard it).
    /// Returns when the announcement reached the closest peers (or failed).
    pub async fn provide(&self, cid: Cid) -> Result<(), Error> {
        self.ask(|r| Cmd::Provide(cid, r)).await?
    }

    /// Looks `cid` up on the DHT and returns the providers found within `timeout` (not this node).
    /// Found providers are also dialed, so a running fetch can use them right away.
    pub async fn find_providers(&self, cid: Cid, timeout: Duration) -> Result<Vec<PeerId>, Error> {
        match tokio::time::timeout(timeout, self.ask(|r| Cmd::FindProviders(cid, r))).await {
            Ok(r) => r,
            Err(_) => Ok(Vec::new()),
        }
    }

    /// The providers of `cid` this node's own DHT record store holds now (unexpired records it was
    /// sent, plus itself if it provides `cid`); no network query.
    pub async fn local_providers(&self, cid: Cid) -> Result<Vec<PeerId>, Error> {
        self.ask(|r| Cmd::LocalProviders(cid, r)).await
    }

    /// Gets one block: from the store if present, else by bitswap from connected peers (the block is
    /// verified and stored). Fails after `timeout`.
    pub async fn get_block(&self, cid: Cid, timeout: Duration) -> Result<Vec<u8>, Error> {
        if let Some(data) = self.inner.store.get(&cid)? {
            return Ok(data);
        }
        let req = self.inner.next_req.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        match tokio::time::timeout(timeout, self.get_block_req(req, cid, Vec::new())).await {
            Ok(r) => r,
            Err(_) => {
                let _ = self.inner.cmd.send(Cmd::CancelGet(req)).await;
                Err(Error::Timeout {
                    what: cid.to_string(),
                    secs: started.elapsed().as_secs_f64(),
                })
            }
        }
    }

    /// Sends `CancelGet` for a request id (used by the DAG fetch when it gives up).
    pub(crate) fn next_req(&self) -> u64 {
        self.inner.next_req.fetch_add(1, Ordering::Relaxed)
    }

    /// Requests a block by bitswap, from `from` only if not empty (see [`Cmd::GetBlock`]), and stores it
    /// (beetswap stores it too, but later: storing it here makes it visible before the caller walks on; the
    /// second write is skipped).
    pub(crate) async fn get_block_req(
        &self,
        req: u64,
        cid: Cid,
        from: Vec<PeerId>,
    ) -> Result<Vec<u8>, Error> {
        let data = self
            .ask(|reply| Cmd::GetBlock {
                req,
                cid,
                from,
                reply,
            })
            .await??;
        let store = self.inner.store.clone();
        let copy = data.clone();
        tokio::task::spawn_blocking(move || store.put(&cid, &copy).map_err(Error::from))
            .await
            .map_err(|e| Error::Bitswap(e.to_string()))??;
        Ok(data)
    }

    /// Asks every connected peer for a block requested from named holders (they did not deliver).
    pub(crate) fn widen_get(&self, req: u64) {
        let _ = self.inner.cmd.try_send(Cmd::WidenGet(req));
    }

    pub(crate) fn cancel_get(&self, req: u64) {
        let _ = self.inner.cmd.try_send(Cmd::CancelGet(req));
    }

    /// Joins a gossip topic. Messages that pass the size limit and `validator` are forwarded to the
    /// mesh and delivered on the returned receiver; others are dropped and their sender scored down.
    pub async fn subscribe(
        &self,
        topic: &str,
        validator: Option<Validator>,
    ) -> Result<broadcast::Receiver<GossipMessage>, Error> {
        let topic = topic.to_string();
        self.ask(|reply| Cmd::Subscribe {
            topic,
            validator,
            reply,
        })
        .await?
    }

    /// Refuses connections to and from `peer` from now on, and closes the open ones (simulated partitions,
    /// misbehaving peers).
    pub async fn block_peer(&self, peer: PeerId) -> Result<(), Error> {
        self.set_blocked(peer, true).await
    }

    /// Accepts connections to and from `peer` again (it is not dialed: bootstrap retries, the DHT and the
    /// caller reconnect).
    pub async fn unblock_peer(&self, peer: PeerId) -> Result<(), Error> {
        self.set_blocked(peer, false).await
    }

    async fn set_blocked(&self, peer: PeerId, blocked: bool) -> Result<(), Error> {
        self.inner
            .cmd
            .send(Cmd::Block(peer, blocked))
            .await
            .map_err(|_| Error::Shutdown)
    }

    /// Publishes a signed message on a topic (to every subscribed peer with a good enough score).
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), Error> {
        let topic = topic.to_string();
        self.ask(|reply| Cmd::Publish { topic, data, reply })
            .await?
    }

    /// Sends `data` to `peer` on the direct protocol and waits for its response (at most the configured
    /// request timeout). `addrs` are tried if no connection to the peer is open.
    pub async fn request(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        self.ask(|reply| Cmd::Request {
            peer,
            addrs,
            data,
            reply,
        })
        .await?
    }

    /// The stream of direct requests other peers send this node. There is one stream per node: the first
    /// call takes it, later calls get `None`. Requests that arrive while nobody takes them are queued (up to
    /// 1,024), then refused.
    pub fn take_inbound_requests(&self) -> Option<mpsc::Receiver<InboundRequest>> {
        self.inner.inbound.lock().ok()?.take()
    }

    /// Stops the swarm and flushes the store.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let _ = self.ask(Cmd::Shutdown).await;
        self.inner.store.flush()?;
        Ok(())
    }
}

/// The swarm, and on TCP the flag AutoNAT sets once this node is known to be reachable.
type Built = (Swarm<Behaviour>, Option<Arc<AtomicBool>>);

fn build_swarm(cfg: &Config, blocks: StoreBlockstore) -> Result<Built, Error> {
    match cfg.transport {
        crate::Transport::Tcp => build_tcp_swarm(cfg, blocks),
        crate::Transport::Memory => Ok((build_memory_swarm(cfg, blocks)?, None)),
    }
}

fn yamux_config() -> yamux::Config {
    let mut c = yamux::Config::default();
    c.set_max_num_streams(512);
    c
}

/// The memory transport (and TCP, as before NAT traversal existed): simulations.
fn build_memory_swarm(cfg: &Config, blocks: StoreBlockstore) -> Result<Swarm<Behaviour>, Error> {
    let build = |e: &dyn std::fmt::Display| Error::Build(e.to_string());
    let swarm = SwarmBuilder::with_existing_identity(cfg.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux_config,
        )
        .map_err(|e| build(&e))?
        .with_other_transport(|key| memory_transport(key, cfg.links.clone()))
        .map_err(|e| build(&e))?
        .with_behaviour(|key| Behaviour::new(key, cfg, blocks, None).map_err(Box::from))
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(cfg.idle_timeout))
        .build();
    Ok(swarm)
}

/// The system's resolver settings for `/dns4`, `/dns6`, `/dns` and `/dnsaddr` addresses (`/etc/resolv.conf`;
/// `/etc/hosts` and `localhost` are answered locally). Without a readable configuration only those local
/// names resolve: a node still starts, and names it cannot resolve fail like unreachable peers.
fn dns_config() -> (libp2p::dns::ResolverConfig, libp2p::dns::ResolverOpts) {
    hickory_resolver::system_conf::read_system_conf().unwrap_or_else(|e| {
        warn!("no system DNS configuration ({e}): only /etc/hosts names resolve");
        // No name server (`ResolverConfig::default()` would be a public one).
        (
            libp2p::dns::ResolverConfig::new(),
            libp2p::dns::ResolverOpts::default(),
        )
    })
}

/// libp2p's TCP transport binds its listeners with `SO_REUSEPORT`, so a second node on a port that another
/// node already listens on would bind without a word and share its connections. The same bind without
/// `SO_REUSEPORT` first (as the API port is bound) fails with "address in use" when anything listens there.
fn ensure_port_free(addr: &Multiaddr) -> Result<(), Error> {
    let mut it = addr.iter();
    let ip: std::net::IpAddr = match it.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    let port = match it.next() {
        Some(Protocol::Tcp(port)) if port != 0 => port,
        _ => return Ok(()),
    };
    probe_bind(std::net::SocketAddr::new(ip, port)).map_err(|e| Error::Listen {
        addr: addr.to_string(),
        reason: if e.kind() == std::io::ErrorKind::AddrInUse {
            format!("port {port} is already in use (is another node running on it?)")
        } else {
            e.to_string()
        },
    })
}

/// Binds and listens on `addr` as libp2p's TCP transport does (address reuse, IPv6 only for IPv6), without
/// port sharing, then lets go.
fn probe_bind(addr: std::net::SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1)
}

/// TCP and QUIC with the relay client transport, and the NAT traversal protocols.
fn build_tcp_swarm(cfg: &Config, blocks: StoreBlockstore) -> Result<Built, Error> {
    let build = |e: &dyn std::fmt::Display| Error::Build(e.to_string());
    let dns_resolver = dns_config();
    let public = Arc::new(AtomicBool::new(false));
    let swarm = SwarmBuilder::with_existing_identity(cfg.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux_config,
        )
        .map_err(|e| build(&e))?
        .with_quic()
        .with_other_transport(|key| memory_transport(key, cfg.links.clone()))
        .map_err(|e| build(&e))?
        .with_dns_config(dns_resolver.0, dns_resolver.1)
        .with_relay_client(noise::Config::new, yamux_config)
        .map_err(|e| build(&e))?
        .with_behaviour(|key, relay_client| {
            let nat = NatParts {
                relay_client,
                public: public.clone(),
            };
            Behaviour::new(key, cfg, blocks, Some(nat)).map_err(Box::from)
        })
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(cfg.idle_timeout))
        .build();
    Ok((swarm, Some(public)))
}

type BoxedErr = Box<dyn std::error::Error + Send + Sync>;

/// libp2p's in-process transport with noise and yamux.
fn memory_transport(
    key: &libp2p::identity::Keypair,
    links: Option<Arc<dyn crate::link::Links>>,
) -> Result<libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>, BoxedErr> {
    Ok(MemoryTransport::default()
        .map(move |io, point| crate::link::shape(io, &point, links.as_deref()))
        .upgrade(Version::V1)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux_config())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed())
}

/// A bitswap request: our request id, the block, when it started, who waits.
type PendingGet = (u64, Cid, Instant, Reply<Result<Vec<u8>, Error>>);
/// A provider lookup: the CID, the providers found so far, who waits.
type PendingFind = (Cid, HashSet<PeerId>, Option<Reply<Vec<PeerId>>>);

struct Bootstrap {
    addr: Multiaddr,
    peer: Option<PeerId>,
    connected: bool,
    dialing: Option<ConnectionId>,
    backoff: Duration,
    next_attempt: Instant,
    /// Whether this bootstrap peer was ever connected (a lost one is redialed at once only while the node
    /// has few peers: see [`BOOTSTRAP_RECHECK`]).
    ever_connected: bool,
    /// Whether its redial was put off by [`BOOTSTRAP_RECHECK`] (the next attempt dials whatever the peer count).
    deferred: bool,
}

struct Topic {
    hash: gossipsub::TopicHash,
    name: String,
    tx: broadcast::Sender<GossipMessage>,
    validator: Option<Validator>,
}

struct Peer {
    conns: HashMap<ConnectionId, Multiaddr>,
    agent: Option<String>,
    /// When the peer connected or was last used (a direct request either way, a dial for content): the
    /// connection manager trims the least recently used first.
    last_used: Instant,
    /// Set once the connection manager disconnected it (its connections are closing).
    trimmed: bool,
}

impl Peer {
    fn new(now: Instant) -> Self {
        Self {
            conns: HashMap::new(),
            agent: None,
            last_used: now,
            trimmed: false,
        }
    }
}

struct Driver {
    swarm: Swarm<Behaviour>,
    max_gossip: usize,
    backoff_start: Duration,
    backoff_max: Duration,
    bootstrap: Vec<Bootstrap>,
    peers: HashMap<PeerId, Peer>,
    dials: HashMap<ConnectionId, PendingDial>,
    /// `connect` calls for a peer the swarm was already connecting to (a DHT walk, say): answered by that
    /// connection's outcome.
    peer_dials: HashMap<PeerId, Vec<PendingDial>>,
    gets: HashMap<beetswap::QueryId, PendingGet>,
    req_to_query: HashMap<u64, beetswap::QueryId>,
    provides: HashMap<kad::QueryId, (Cid, Reply<Result<(), Error>>)>,
    finds: HashMap<kad::QueryId, PendingFind>,
    topics: HashMap<gossipsub::TopicHash, Topic>,
    next_dht_bootstrap: Instant,
    /// Direct requests this node sent, by request id.
    requests: HashMap<request_response::OutboundRequestId, Reply<Result<Vec<u8>, Error>>>,
    /// Direct requests received and not yet answered, by our id.
    inbound: HashMap<u64, request_response::ResponseChannel<Vec<u8>>>,
    next_inbound: u64,
    inbound_tx: mpsc::Sender<InboundRequest>,
    answers_tx: mpsc::UnboundedSender<(u64, Option<Vec<u8>>)>,
    answers_rx: Option<mpsc::UnboundedReceiver<(u64, Option<Vec<u8>>)>>,
    stats: Arc<NetStats>,
    /// The simulation's gossip trace this node counts in, if any.
    trace: Option<LiveNode>,
    /// The connection manager's watermarks.
    conn_limits: ConnLimits,
    /// When the connection manager looks at the peer count next.
    next_trim: Instant,
    /// The misbehaviour penalty of peers that sent bad bitswap frames recently (kept across reconnections).
    penalties: HashMap<PeerId, Penalty>,
    /// Peers banned for misbehaving, until when.
    bans: HashMap<PeerId, Instant>,
    /// How long a ban lasts.
    ban_time: Duration,
    /// Peers blocked through [`Node::block_peer`] (a ban that ends does not unblock them).
    blocked_by_user: HashSet<PeerId>,
    /// Whether the Kademlia routing table was empty at the last look (when peers come, what this node
    /// provides is announced).
    dht_empty: bool,
    /// Provided keys waiting to be announced again (the routing table got its first peers).
    reannounce: VecDeque<kad::RecordKey>,
    /// The announcements of `reannounce` running now (at most [`crate::PROVIDE_CONCURRENCY`]).
    reannouncing: HashSet<kad::QueryId>,
    /// Reachability, relays and hole punches.
    nat: NatState,
}

/// A peer's misbehaviour penalty: [`OFFENCE_PENALTY`] per offence, halving every [`PENALTY_HALF_LIFE`].
#[derive(Debug, Clone, Copy)]
struct Penalty {
    value: f64,
    at: Instant,
}

impl Penalty {
    /// The penalty decayed to `now`.
    fn at(&self, now: Instant) -> f64 {
        let halvings = now.duration_since(self.at).as_secs_f64() / PENALTY_HALF_LIFE.as_secs_f64();
        self.value * 0.5f64.powf(halvings)
    }
}

/// How often the routing table is refreshed (a Kademlia bootstrap) while the node has peers.
const DHT_REFRESH: Duration = Duration::from_secs(300);
/// How often a lost bootstrap peer is redialed while the node still has at least `low` peers (with fewer,
/// it is redialed at once, with backoff). A bootstrap peer that trims its connections is not redialed by
/// everyone it dropped every few seconds, and a partitioned node still finds its way back (kubo checks its
/// bootstrap connections every 30 s too).
const BOOTSTRAP_RECHECK: Duration = Duration::from_secs(30);
/// How often the connection manager compares the peer count with its high watermark.
const TRIM_EVERY: Duration = Duration::from_secs(1);
/// Penalty of one malformed or oversized bitswap frame.
const OFFENCE_PENALTY: f64 = 10.0;
/// Penalty at which a peer is banned: five offences within a few seconds, or more spread out (an honest peer
/// sends none).
const BAN_PENALTY: f64 = 45.0;
/// How fast a penalty is forgiven.
const PENALTY_HALF_LIFE: Duration = Duration::from_secs(60);

impl Driver {
    fn new(
        swarm: Swarm<Behaviour>,
        cfg: &Config,
        inbound_tx: mpsc::Sender<InboundRequest>,
        stats: Arc<NetStats>,
        public: Option<Arc<AtomicBool>>,
    ) -> Self {
        let now = Instant::now();
        let mut nat = NatState::new(
            public.is_some(),
            cfg.nat,
            public.unwrap_or_default(),
            &cfg.relays,
        );
        for a in swarm.listeners() {
            nat.on_listen_addr(a);
        }
        let me = *swarm.local_peer_id();
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        Self {
            swarm,
            max_gossip: cfg.max_gossip_message,
            backoff_start: cfg.bootstrap_backoff,
            backoff_max: cfg.bootstrap_backoff_max,
            bootstrap: cfg
                .bootstrap
                .iter()
                .map(|a| Bootstrap {
                    addr: a.clone(),
                    peer: crate::peer_id_of(a),
                    connected: false,
                    dialing: None,
                    backoff: cfg.bootstrap_backoff,
                    next_attempt: now,
                    ever_connected: false,
                    deferred: false,
                })
                .collect(),
            peers: HashMap::new(),
            dials: HashMap::new(),
            peer_dials: HashMap::new(),
            gets: HashMap::new(),
            req_to_query: HashMap::new(),
            provides: HashMap::new(),
            reannounce: VecDeque::new(),
            reannouncing: HashSet::new(),
            finds: HashMap::new(),
            topics: HashMap::new(),
            next_dht_bootstrap: now + DHT_REFRESH,
            requests: HashMap::new(),
            inbound: HashMap::new(),
            next_inbound: 0,
            inbound_tx,
            answers_tx,
            answers_rx: Some(answers_rx),
            stats,
            trace: cfg.gossip_trace.clone().map(|t| LiveNode::new(t, me)),
            conn_limits: cfg.connections,
            next_trim: now + TRIM_EVERY,
            penalties: HashMap::new(),
            bans: HashMap::new(),
            ban_time: cfg.misbehaviour_ban,
            blocked_by_user: HashSet::new(),
            dht_empty: true,
            nat,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut answers = self.answers_rx.take().expect("run once");
        loop {
            tokio::select! {
                Some((id, data)) = answers.recv() => self.on_answer(id, data),
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Shutdown(reply)) => {
                        info!("swarm shutting down");
                        let _ = reply.send(());
                        return;
                    }
                    Some(cmd) => self.on_cmd(cmd),
                    None => return,
                },
                ev = self.swarm.select_next_some() => self.on_event(ev),
                _ = tick.tick() => self.on_tick(),
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        if now >= self.next_dht_bootstrap {
            self.next_dht_bootstrap = now + DHT_REFRESH;
            if !self.peers.is_empty() {
                let _ = self.swarm.behaviour_mut().kad.bootstrap();
            }
        }
        let well_connected = self.live_peers() >= self.conn_limits.low;
        for b in &mut self.bootstrap {
            if b.connected || b.dialing.is_some() || now < b.next_attempt {
                continue;
            }
            if b.ever_connected && well_connected && !b.deferred {
                // Lost while the node has other peers (e.g. trimmed by a busy bootstrap peer): dial it once
                // the recheck period is over, not now.
                b.deferred = true;
                b.next_attempt = now + BOOTSTRAP_RECHECK;
                continue;
            }
            b.deferred = false;
            let opts = DialOpts::unknown_peer_id().address(b.addr.clone()).build();
            let id = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    debug!(addr = %b.addr, "dialing bootstrap peer");
                    b.dialing = Some(id);
                }
                Err(e) => {
                    warn!(addr = %b.addr, error = %e, retry_in = ?b.backoff, "cannot dial bootstrap peer");
                    b.next_attempt = now + b.backoff;
                    b.backoff = (b.backoff * 2).min(self.backoff_max);
                }
            }
        }
        if now >= self.next_trim {
            self.next_trim = now + TRIM_EVERY;
            self.trim_connections(now);
        }
        self.expire_bans(now);
        self.nat.on_tick(&mut self.swarm);
        if self.routing_table_len() == 0 {
            self.dht_empty = true;
        }
        // Drop answers nobody waits for any more.
        self.gets.retain(|_, (_, _, _, r)| !r.is_closed());
        self.req_to_query.retain(|_, q| self.gets.contains_key(q));
        self.inbound.retain(|_, ch| ch.is_open());
        self.peer_dials.retain(|_, waiting| {
            waiting.retain(|(_, r)| !r.is_closed());
            !waiting.is_empty()
        });
    }

    /// The connection manager: above the high watermark, disconnects the least recently used peers that are
    /// not protected (within their grace period, in a gossipsub mesh, or a bootstrap peer) until the low
    /// watermark is reached or only protected peers are left.
    fn trim_connections(&mut self, now: Instant) {
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

    /// Counts a bad bitswap frame against `peer`; at [`BAN_PENALTY`] the peer is disconnected and refused for
    /// the ban time (through the block list [`Node::block_peer`] uses) and dropped from the routing table.
    fn on_misbehaviour(&mut self, peer: PeerId, reason: &beetswap::Misbehaviour) {
        NetStats::add(&self.stats.bitswap_misbehaved, 1);
        let now = Instant::now();
        let penalty = self.penalties.get(&peer).map_or(0.0, |p| p.at(now)) + OFFENCE_PENALTY;
        self.penalties.insert(
            peer,
            Penalty {
                value: penalty,
                at: now,
            },
        );
        debug!(%peer, %reason, penalty, "bad bitswap frame");
        if penalty < BAN_PENALTY || self.bans.contains_key(&peer) {
            return;
        }
        warn!(%peer, %reason, ban = ?self.ban_time, "banning a peer that keeps sending bad bitswap frames");
        NetStats::add(&self.stats.peers_banned, 1);
        self.bans.insert(peer, now + self.ban_time);
        let b = self.swarm.behaviour_mut();
        b.blocked.block_peer(peer);
        b.kad.remove_peer(&peer);
    }

    /// Lifts the bans that are over (unless the peer was also blocked through [`Node::block_peer`]) and
    /// forgets penalties that decayed away.
    fn expire_bans(&mut self, now: Instant) {
        let over: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, until)| now >= **until)
            .map(|(p, _)| *p)
            .collect();
        for peer in over {
            self.bans.remove(&peer);
            if !self.blocked_by_user.contains(&peer) {
                info!(%peer, "ban over");
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            }
        }
        self.penalties.retain(|_, p| p.at(now) >= 1.0);
    }

    /// Peers in the Kademlia routing table.
    fn routing_table_len(&mut self) -> usize {
        self.swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .map(|k| k.num_entries())
            .sum()
    }

    /// The routing table changed: if it was empty, announce again what this node provides (a root added while
    /// the node was alone was announced to nobody, and the periodic re-provide may be hours away).
    fn on_routing_updated(&mut self) {
        if !self.dht_empty || self.routing_table_len() == 0 {
            return;
        }
        self.dht_empty = false;
        use libp2p::kad::store::RecordStore as _;
        let kad = &mut self.swarm.behaviour_mut().kad;
        let keys: Vec<kad::RecordKey> = kad.store_mut().provided().map(|r| r.key.clone()).collect();
        if !keys.is_empty() {
            info!(
                records = keys.len(),
                "first DHT peers: announcing what this node provides"
            );
        }
        // A few at a time (a node that provides every block of its pins may hold millions of keys).
        self.reannounce.clear();
        self.reannounce.extend(keys);
        self.reannounce_more();
    }

    /// Starts announcements from `reannounce` while fewer than [`crate::PROVIDE_CONCURRENCY`] run.
    fn reannounce_more(&mut self) {
        let kad = &mut self.swarm.behaviour_mut().kad;
        while self.reannouncing.len() < crate::PROVIDE_CONCURRENCY {
            let Some(key) = self.reannounce.pop_front() else {
                break;
            };
            match kad.start_providing(key) {
                Ok(q) => {
                    self.reannouncing.insert(q);
                }
                Err(e) => debug!(error = %e, "cannot re-provide"),
            }
        }
    }

    /// Connected peers, not counting those the connection manager is disconnecting.
    fn live_peers(&self) -> usize {
        self.peers.values().filter(|p| !p.trimmed).count()
    }

    /// Notes that `peer` was just used, protecting it from trimming for the grace period.
    fn touch(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.last_used = Instant::now();
        }
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        let b = self.swarm.behaviour_mut();
        match cmd {
            Cmd::ListenAddrs(r) => {
                let _ = r.send(self.swarm.listeners().cloned().collect());
            }
            Cmd::Nat(r) => {
                let _ = r.send(self.nat.status());
            }
            Cmd::AnyConnected(peers, r) => {
                let _ = r.send(peers.iter().any(|p| self.peers.contains_key(p)));
            }
            Cmd::MeshPeers(topic, r) => {
                let hash = gossipsub::IdentTopic::new(topic).hash();
                let _ = r.send(b.gossipsub.mesh_peers(&hash).count());
            }
            Cmd::TopicPeers(topic, r) => {
                let hash = gossipsub::IdentTopic::new(topic).hash();
                let _ = r.send(
                    b.gossipsub
                        .all_peers()
                        .filter(|(_, topics)| topics.contains(&&hash))
                        .count(),
                );
            }
            Cmd::Peers(r) => {
                let list = self
                    .peers
                    .iter()
                    .map(|(id, p)| PeerInfo {
                        peer_id: *id,
                        addrs: p.conns.values().map(|a| without_peer(a, id)).collect(),
                        agent: p.agent.clone(),
                        gossip_score: self.swarm.behaviour().gossipsub.peer_score(id),
                        connections: p
                            .conns
                            .values()
                            .map(|a| ConnectionInfo {
                                addr: a.clone(),
                                relayed: crate::is_relayed(a),
                            })
                            .collect(),
                    })
                    .collect();
                let _ = r.send(list);
            }
            Cmd::Dial(addr, r) => {
                let peer = crate::peer_id_of(&addr);
                if let Some(p) = peer.filter(|p| self.peers.contains_key(p)) {
                    let _ = r.send(Ok(p));
                    return;
                }
                let opts = match peer {
                    Some(p) => DialOpts::peer_id(p).addresses(vec![addr.clone()]).build(),
                    None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
                };
                let id = opts.connection_id();
                match (self.swarm.dial(opts), peer) {
                    (Ok(()), _) => {
                        self.dials.insert(id, (addr.to_string(), r));
                    }
                    // Connected already (the event is on its way) or being dialed by someone else (a DHT
                    // walk): that connection answers.
                    (Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)), Some(p)) => {
                        if self.swarm.is_connected(&p) {
                            let _ = r.send(Ok(p));
                        } else {
                            self.peer_dials
                                .entry(p)
                                .or_default()
                                .push((addr.to_string(), r));
                        }
                    }
                    (Err(e), _) => {
                        let _ = r.send(Err(Error::Dial {
                            addr: addr.to_string(),
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Cmd::Block(peer, true) => {
                self.blocked_by_user.insert(peer);
                b.blocked.block_peer(peer);
            }
            Cmd::Block(peer, false) => {
                self.blocked_by_user.remove(&peer);
                self.bans.remove(&peer);
                b.blocked.unblock_peer(peer);
            }
            Cmd::DialPeer(p) => {
                // A provider a fetch wants: keep it (or make it) connected.
                if self.peers.contains_key(&p) {
                    self.touch(&p);
                } else if p != *self.swarm.local_peer_id() {
                    if let Err(e) = self.swarm.dial(p) {
                        debug!(peer = %p, error = %e, "cannot dial provider");
                    }
                }
            }
            Cmd::Provide(cid, r) => {
                let known: usize = b.kad.kbuckets().map(|k| k.num_entries()).sum();
                match b
                    .kad
                    .start_providing(kad::RecordKey::new(&cid.hash().to_bytes()))
                {
                    // The record is kept and re-announced periodically, but nobody heard it now.
                    Ok(_) if known == 0 => {
                        let _ = r.send(Err(Error::Dht(
                            "no DHT peer known yet to announce to (will re-announce)".into(),
                        )));
                    }
                    Ok(q) => {
                        self.provides.insert(q, (cid, r));
                    }
                    Err(e) => {
                        let _ = r.send(Err(Error::Dht(e.to_string())));
                    }
                }
            }
            Cmd::FindProviders(cid, r) => {
                NetStats::add(&self.stats.provider_lookups, 1);
                let q = b
                    .kad
                    .get_providers(kad::RecordKey::new(&cid.hash().to_bytes()));
                self.finds.insert(q, (cid, HashSet::new(), Some(r)));
            }
            Cmd::LocalProviders(cid, r) => {
                use libp2p::kad::store::RecordStore as _;
                let now = Instant::now();
                let key = kad::RecordKey::new(&cid.hash().to_bytes());
                let list = b
                    .kad
                    .store_mut()
                    .providers(&key)
                    .into_iter()
                    .filter(|p| !p.is_expired(now))
                    .map(|p| p.provider)
                    .collect();
                let _ = r.send(list);
            }
            Cmd::GetBlock {
                req,
                cid,
                from,
                reply,
            } => {
                // Asking only the holders spares every other connected peer a want, its answer and the
                // cancel: upstream bitswap broadcasts each want, ~480 streams per job among 100 simulated
                // nodes against 27 for the market's messages.
                let q = if from.is_empty() {
                    b.bitswap.get(&cid)
                } else {
                    b.bitswap.get_from(&cid, &from)
                };
                self.gets.insert(q, (req, cid, Instant::now(), reply));
                self.req_to_query.insert(req, q);
            }
            Cmd::WidenGet(req) => {
                if let Some((_, cid, _, _)) =
                    self.req_to_query.get(&req).and_then(|q| self.gets.get(q))
                {
                    b.bitswap.want_from_anyone(cid);
                }
            }
            Cmd::CancelGet(req) => {
                if let Some(q) = self.req_to_query.remove(&req) {
                    b.bitswap.cancel(q);
                    self.gets.remove(&q);
                }
            }
            Cmd::Subscribe {
                topic,
                validator,
                reply,
            } => {
                let t = gossipsub::IdentTopic::new(topic.clone());
                let hash = t.hash();
                if let Some(existing) = self.topics.get_mut(&hash) {
                    if validator.is_some() {
                        existing.validator = validator;
                    }
                    let _ = reply.send(Ok(existing.tx.subscribe()));
                    return;
                }
                if let Err(e) = b.gossipsub.subscribe(&t) {
                    let _ = reply.send(Err(Error::Gossip(e.to_string())));
                    return;
                }
                let _ = b.gossipsub.set_topic_params(t, topic_score_params());
                let (tx, rx) = broadcast::channel(1024);
                self.topics.insert(
                    hash.clone(),
                    Topic {
                        hash,
                        name: topic,
                        tx,
                        validator,
                    },
                );
                let _ = reply.send(Ok(rx));
            }
            Cmd::Publish { topic, data, reply } => {
                let t = gossipsub::IdentTopic::new(topic);
                let res = match b.gossipsub.publish(t, data) {
                    Ok(id) => {
                        if let Some(trace) = &self.trace {
                            trace.0.published(id);
                        }
                        Ok(())
                    }
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Err(Error::Gossip(
                        "no connected peer is subscribed to this topic".into(),
                    )),
                    Err(gossipsub::PublishError::Duplicate) => Err(Error::Gossip(
                        "the same message was published moments ago (gossip messages are identified by \
                         their content)"
                            .into(),
                    )),
                    Err(e) => Err(Error::Gossip(e.to_string())),
                };
                let _ = reply.send(res);
            }
            Cmd::Request {
                peer,
                addrs,
                data,
                reply,
            } => {
                NetStats::add(&self.stats.direct_sent, 1);
                let id = b.direct.send_request_with_addresses(&peer, data, addrs);
                self.requests.insert(id, reply);
                self.touch(&peer);
            }
            Cmd::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    /// The application answered (or dropped) an inbound direct request.
    fn on_answer(&mut self, id: u64, data: Option<Vec<u8>>) {
        let Some(channel) = self.inbound.remove(&id) else {
            return;
        };
        // Dropping the channel unanswered closes the stream, which the sender sees as a failure.
        if let Some(data) = data {
            let _ = self
                .swarm
                .behaviour_mut()
                .direct
                .send_response(channel, data);
        }
    }

    fn on_direct(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let id = self.next_inbound;
                    self.next_inbound += 1;
                    NetStats::add(&self.stats.direct_received, 1);
                    self.touch(&peer);
                    let req = InboundRequest {
                        peer,
                        data: request,
                        id,
                        answers: self.answers_tx.clone(),
                        answered: false,
                    };
                    self.inbound.insert(id, channel);
                    if let Err(e) = self.inbound_tx.try_send(req) {
                        debug!(%peer, error = %e, "direct request refused: nobody takes requests");
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(r) = self.requests.remove(&request_id) {
                        let _ = r.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, error = %error, "direct request failed");
                if let Some(r) = self.requests.remove(&request_id) {
                    let _ = r.send(Err(Error::Request {
                        peer: peer.to_string(),
                        reason: one_line(&error),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "inbound direct request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                NetStats::add(&self.stats.connections_opened, 1);
                let addr = endpoint.get_remote_address().clone();
                debug!(peer = %peer_id, %addr, dialer = endpoint.is_dialer(), "connection established");
                self.nat
                    .on_connection(peer_id, connection_id, &addr, endpoint.is_dialer());
                let now = Instant::now();
                let peer = self.peers.entry(peer_id).or_insert_with(|| Peer::new(now));
                peer.conns.insert(connection_id, addr.clone());
                peer.last_used = now;
                peer.trimmed = false;
                if let Some((_, r)) = self.dials.remove(&connection_id) {
                    let _ = r.send(Ok(peer_id));
                }
                for (_, r) in self.peer_dials.remove(&peer_id).unwrap_or_default() {
                    let _ = r.send(Ok(peer_id));
                }
                let mut bootstrapped = false;
                for b in &mut self.bootstrap {
                    if b.dialing == Some(connection_id) || b.peer == Some(peer_id) {
                        if !b.connected {
                            info!(peer = %peer_id, addr = %b.addr, "connected to bootstrap peer");
                        }
                        b.connected = true;
                        b.ever_connected = true;
                        b.dialing = None;
                        b.peer = Some(peer_id);
                        b.backoff = self.backoff_start;
                        if endpoint.is_dialer() {
                            self.swarm
                                .behaviour_mut()
                                .kad
                                .add_address(&peer_id, addr.clone());
                        }
                        bootstrapped = true;
                    }
                }
                // Fill the routing table through it, unless the node is already well connected (a bootstrap
                // peer that trimmed it and was redialed: another walk would only dial everyone again). A lookup
                // of our own id finds the closest peers and tells them about us; a full bootstrap would also
                // walk towards a random key in every bucket, dialing most of a small mesh (53 connections per
                // node among 100 simulated ones, against 34 now). The full walk runs every `DHT_REFRESH`.
                if bootstrapped && self.live_peers() < self.conn_limits.low.max(2) {
                    let me = *self.swarm.local_peer_id();
                    self.swarm.behaviour_mut().kad.get_closest_peers(me);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                debug!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "connection closed");
                self.nat
                    .on_connection_closed(peer_id, connection_id, num_established == 0);
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.conns.remove(&connection_id);
                }
                if num_established == 0 {
                    self.peers.remove(&peer_id);
                    let now = Instant::now();
                    let well_connected = self.live_peers() >= self.conn_limits.low;
                    for b in &mut self.bootstrap {
                        if b.peer == Some(peer_id) && b.connected {
                            // When it is redialed is `on_tick`'s call (later while the node is well
                            // connected); only how loudly to say so is decided here.
                            b.connected = false;
                            b.next_attempt = now + b.backoff;
                            if well_connected {
                                // Most likely trimmed by a busy bootstrap peer: nothing is wrong.
                                debug!(peer = %peer_id, peers = self.peers.len(),
                                    "bootstrap peer disconnected; the node has other peers");
                            } else {
                                warn!(peer = %peer_id, "lost the bootstrap peer; reconnecting");
                            }
                        }
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                debug!(peer = ?peer_id, error = %error, "outgoing connection failed");
                if let Some((addr, r)) = self.dials.remove(&connection_id) {
                    let _ = r.send(Err(Error::Dial {
                        addr,
                        reason: one_line(&error),
                    }));
                }
                if let Some(p) = peer_id {
                    if !self.swarm.is_connected(&p) {
                        for (addr, r) in self.peer_dials.remove(&p).unwrap_or_default() {
                            let _ = r.send(Err(Error::Dial {
                                addr,
                                reason: one_line(&error),
                            }));
                        }
                    }
                }
                let now = Instant::now();
                for b in &mut self.bootstrap {
                    if b.dialing == Some(connection_id) {
                        warn!(addr = %b.addr, error = %one_line(&error), retry_in = ?b.backoff,
                            "bootstrap peer unreachable");
                        b.dialing = None;
                        b.next_attempt = now + b.backoff;
                        b.backoff = (b.backoff * 2).min(self.backoff_max);
                    }
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                debug!(addr = %send_back_addr, error = %one_line(&error), "incoming connection failed");
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour(ev),
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                let reason = reason.err().map_or("closed".into(), |e| one_line(&e));
                self.nat.on_listener_closed(listener_id, &reason);
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                debug!(listener = ?listener_id, error = %one_line(&error), "listener error");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.nat.on_listen_addr(&address);
            }
            SwarmEvent::NewExternalAddrCandidate { address } => {
                self.nat.on_candidate(&mut self.swarm, &address);
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                debug!(%address, "external address confirmed");
            }
            _ => {}
        }
    }

    fn on_behaviour(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.agent = Some(info.agent_version.clone());
                }
                self.nat
                    .on_identify(&mut self.swarm, peer_id, &info.protocols);
                // Only peers that speak our DHT protocol go into the routing table.
                let speaks_kad = info.protocols.contains(&crate::behaviour::KAD_PROTOCOL);
                if speaks_kad {
                    for addr in info.listen_addrs {
                        if crate::check_dialable(&addr).is_ok() {
                            self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                        }
                    }
                }
            }
            BehaviourEvent::Blocked(never) => match never {},
            BehaviourEvent::Identify(_) | BehaviourEvent::Ping(_) => {}
            BehaviourEvent::Autonat(ev) => self.nat.on_autonat(&mut self.swarm, ev),
            BehaviourEvent::AutonatServer(ev) => {
                debug!(client = %ev.client, addr = %ev.tested_addr, ok = ev.result.is_ok(),
                    "dialed a peer back for AutoNAT");
                self.nat
                    .on_dial_back(&mut self.swarm, ev.client, &ev.tested_addr);
            }
            BehaviourEvent::AutonatV1(autonat::v1::Event::InboundProbe(
                autonat::v1::InboundProbeEvent::Response { peer, address, .. },
            )) => self.nat.on_dial_back(&mut self.swarm, peer, &address),
            BehaviourEvent::RelayClient(ev) => self.nat.on_relay_client(ev),
            BehaviourEvent::RelayServer(ev) => self.nat.on_relay_server(ev),
            BehaviourEvent::Dcutr(ev) => self.nat.on_dcutr(ev),
            BehaviourEvent::AutonatV1(ev) => self.nat.on_autonat_v1(&mut self.swarm, ev),
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            }) => {
                if step.count.get() == 1 {
                    NetStats::add(&self.stats.dht_queries, 1);
                }
                self.on_kad(id, result, step.last)
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated { .. }) => self.on_routing_updated(),
            BehaviourEvent::Kad(_) => {}
            BehaviourEvent::Gossipsub(ev) => self.on_gossip(ev),
            BehaviourEvent::Direct(ev) => self.on_direct(ev),
            BehaviourEvent::Bitswap(ev) => match ev {
                beetswap::Event::GetQueryResponse { query_id, data } => {
                    NetStats::add(&self.stats.bitswap_blocks, 1);
                    NetStats::add(&self.stats.bitswap_bytes, data.len() as u64);
                    if let Some((req, cid, started, r)) = self.gets.remove(&query_id) {
                        self.req_to_query.remove(&req);
                        debug!(%cid, bytes = data.len(), ms = started.elapsed().as_millis() as u64,
                            "block received");
                        let _ = r.send(Ok(data));
                    }
                }
                beetswap::Event::GetQueryError { query_id, error } => {
                    if let Some((req, cid, _, r)) = self.gets.remove(&query_id) {
                        self.req_to_query.remove(&req);
                        debug!(%cid, %error, "block request failed");
                        let _ = r.send(Err(Error::Bitswap(error.to_string())));
                    }
                }
                beetswap::Event::PeerMisbehaved { peer, reason } => {
                    self.on_misbehaviour(peer, &reason)
                }
            },
        }
    }

    fn on_kad(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool) {
        match result {
            kad::QueryResult::StartProviding(res) => {
                if self.reannouncing.remove(&id) {
                    debug!(
                        ok = res.is_ok(),
                        left = self.reannounce.len(),
                        "re-announced a record"
                    );
                    self.reannounce_more();
                }
                if let Some((cid, r)) = self.provides.remove(&id) {
                    match res {
                        Ok(_) => {
                            debug!(%cid, "provided on the DHT");
                            let _ = r.send(Ok(()));
                        }
                        Err(e) => {
                            debug!(%cid, error = %e, "providing reached no peer");
                            let _ = r.send(Err(Error::Dht(e.to_string())));
                        }
                    }
                }
            }
            kad::QueryResult::RepublishProvider(res) => {
                debug!(ok = res.is_ok(), "re-provided a record");
            }
            kad::QueryResult::GetProviders(res) => {
                let me = *self.swarm.local_peer_id();
                let mut new = Vec::new();
                if let Some((cid, found, _)) = self.finds.get_mut(&id) {
                    if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = &res {
                        for p in providers {
                            if *p != me && found.insert(*p) {
                                debug!(%cid, provider = %p, "found provider");
                                new.push(*p);
                            }
                        }
                    }
                }
                for p in new {
                    if !self.peers.contains_key(&p) {
                        let _ = self.swarm.dial(p);
                    }
                }
                if last {
                    if let Some((_, found, Some(r))) = self.finds.remove(&id) {
                        let _ = r.send(found.into_iter().collect());
                    }
                }
            }
            kad::QueryResult::Bootstrap(res) if last => {
                debug!(ok = res.is_ok(), "DHT bootstrap finished");
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, ev: gossipsub::Event) {
        match ev {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let verdict = match self.topics.get(&message.topic) {
                    None => gossipsub::MessageAcceptance::Ignore,
                    Some(_) if message.data.len() > self.max_gossip => {
                        gossipsub::MessageAcceptance::Reject
                    }
                    Some(t) => match &t.validator {
                        Some(v) if !v(&message.data) => gossipsub::MessageAcceptance::Reject,
                        _ => gossipsub::MessageAcceptance::Accept,
                    },
                };
                let topic = self
                    .topics
                    .get(&message.topic)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                debug!(%topic, from = %propagation_source, bytes = message.data.len(), verdict = ?verdict,
                    "gossip message");
                let accepted = matches!(verdict, gossipsub::MessageAcceptance::Accept);
                if accepted {
                    if let Some(trace) = &self.trace {
                        trace.0.delivered(&message_id, *self.swarm.local_peer_id());
                    }
                    NetStats::add(&self.stats.gossip_messages, 1);
                    NetStats::add(&self.stats.gossip_bytes, message.data.len() as u64);
                } else if matches!(verdict, gossipsub::MessageAcceptance::Reject) {
                    NetStats::add(&self.stats.gossip_rejected, 1);
                }
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
                if accepted {
                    if let Some(t) = self.topics.get(&message.topic) {
                        let _ = t.tx.send(GossipMessage {
                            topic: t.name.clone(),
                            data: message.data,
                            from: propagation_source,
                        });
                        debug_assert_eq!(t.hash, message.topic);
                    }
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                debug!(peer = %peer_id, %topic, "peer joined topic");
            }
            gossipsub::Event::SlowPeer { peer_id, .. } => {
                debug!(peer = %peer_id, "slow gossip peer");
            }
            _ => {}
        }
    }
}

/// The listening failure of one of `listeners`, named by its address.
fn listen_error(
    listeners: &[(libp2p::core::transport::ListenerId, Multiaddr)],
    id: libp2p::core::transport::ListenerId,
    reason: String,
) -> Error {
    let addr = listeners
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, a)| a.to_string())
        .unwrap_or_default();
    Error::Listen { addr, reason }
}

/// An address without its `/p2p/<peer>` parts naming `peer` (a relay's id stays in a circuit address).
fn without_peer(a: &Multiaddr, peer: &PeerId) -> Multiaddr {
    a.iter()
        .filter(|p| !matches!(p, Protocol::P2p(id) if id == peer))
        .collect()
}

/// A dial error in one line (libp2p's errors list every address tried on separate lines).
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
