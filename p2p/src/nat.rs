//! NAT traversal with libp2p's own protocols: AutoNAT v2 tells a node whether it is publicly reachable, a
//! reachable node relays for others (circuit relay v2), a node behind a NAT reserves slots on relays it
//! reached and advertises `/p2p-circuit` addresses, and two peers that meet through a relay upgrade to a
//! direct connection by hole punching (DCUtR). Used only with [`crate::Transport::Tcp`].
//!
//! How a node at home finds its way into the mesh: identify tells it the address each peer saw it dial from
//! (a candidate external address); AutoNAT asks a peer to dial that address back. A successful dial-back
//! makes the node [`Reachability::Public`]; failures with no success make it [`Reachability::Private`], and
//! then it reserves a slot on up to [`crate::NatConfig::max_relays`] relays among the peers it dialed
//! directly that speak the relay protocol (or on the relays it was configured with, whatever its
//! reachability). Peers then reach it through `/p2p/<relay>/p2p-circuit`; DCUtR tries a direct connection
//! at once, and when it succeeds the relayed connection is closed a few seconds later so that every
//! protocol (market messages, bitswap) moves to the direct one. When the hole punch fails (a symmetric NAT
//! maps each destination to another port) the relayed connection stays and carries the traffic.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::{
    autonat, core::transport::ListenerId, dcutr, multiaddr::Protocol, relay, swarm::ConnectionId,
    Multiaddr, PeerId, Swarm,
};
use tracing::{debug, info, warn};

use crate::behaviour::Behaviour;
use crate::config::{NatConfig, RelayServer};

/// Whether this node can be dialed from the rest of the mesh, as AutoNAT found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reachability {
    /// Not known yet (no address was tested, or NAT traversal is off: the memory transport).
    #[default]
    Unknown,
    /// A peer dialed one of this node's addresses back.
    Public,
    /// Every address tested failed the dial-back: the node is behind a NAT or a firewall and is reached
    /// through relays.
    Private,
}

impl std::fmt::Display for Reachability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reachability::Unknown => "unknown",
            Reachability::Public => "public",
            Reachability::Private => "private",
        })
    }
}

/// What a node knows of its own reachability and relays ([`crate::Mesh::nat_status`]).
#[derive(Debug, Clone, Default)]
pub struct NatStatus {
    /// Reachable or not.
    pub reachability: Reachability,
    /// Addresses of this node that a peer dialed back.
    pub public_addrs: Vec<Multiaddr>,
    /// Addresses of this node that failed the dial-back.
    pub unreachable_addrs: Vec<Multiaddr>,
    /// Relays holding a reservation for this node.
    pub relays: Vec<PeerId>,
    /// Whether this node accepts reservations as a relay now.
    pub relay_serving: bool,
    /// Peers reserved on this node as their relay.
    pub relayed_for: usize,
    /// Hole punches that gave a direct connection.
    pub hole_punches: u64,
    /// Hole punches that failed (the connection stayed relayed).
    pub hole_punch_failures: u64,
}

/// The relay server's reservation gate: in [`RelayServer::Auto`] mode it lets reservations through only once
/// this node is known to be publicly reachable (a relay behind a NAT would hand out addresses nobody can
/// dial).
pub(crate) struct PublicOnly(pub(crate) Arc<AtomicBool>);

impl relay::RateLimiter for PublicOnly {
    fn try_next(&mut self, peer: PeerId, _: &Multiaddr, _: Instant) -> bool {
        let open = self.0.load(Ordering::Relaxed);
        if !open {
            debug!(%peer, "relay reservation refused: this node is not known to be publicly reachable");
        }
        open
    }
}

/// How long a relayed connection is kept after a hole punch gave a direct one (streams open on it finish).
pub const RELAYED_GRACE: Duration = Duration::from_secs(3);
/// First delay before asking a relay again after it refused or lost a reservation (doubles up to a minute).
const RESERVE_RETRY: Duration = Duration::from_secs(2);
const RESERVE_RETRY_MAX: Duration = Duration::from_secs(60);

/// A relay this node may reserve a slot on.
struct Relay {
    /// Its address, without `/p2p-circuit`.
    addr: Multiaddr,
    /// Configured by the operator: reserved on whatever the reachability.
    fixed: bool,
    /// The circuit listener while a reservation is asked for or held.
    listener: Option<ListenerId>,
    reserved: bool,
    retry_at: Instant,
    backoff: Duration,
}

/// The NAT traversal part of the swarm driver.
pub(crate) struct NatState {
    enabled: bool,
    cfg: NatConfig,
    public_flag: Arc<AtomicBool>,
    confirmed: HashSet<Multiaddr>,
    failed: HashSet<Multiaddr>,
    relays: HashMap<PeerId, Relay>,
    /// Addresses of peers this node dialed directly (relay candidates once they say they relay).
    dialed: HashMap<PeerId, Multiaddr>,
    /// Relayed connections by peer, with when they were opened.
    relayed: HashMap<PeerId, Vec<(ConnectionId, Instant)>>,
    /// Relayed connections to close once their grace period is over.
    closing: Vec<(ConnectionId, Instant)>,
    relayed_for: HashSet<PeerId>,
    hole_punches: u64,
    hole_punch_failures: u64,
    /// The IPs of this node's own interfaces (its listen addresses).
    local_ips: HashSet<IpAddr>,
    /// Whether a peer saw this node at an IP that is not its own: a NAT is in the way, and a dial-back of a
    /// local address (by a peer on the same LAN) says nothing about the rest of the mesh.
    translated: bool,
    /// AutoNAT v1's verdict.
    v1: autonat::v1::NatStatus,
    /// Open connections by peer: id, remote address, whether this node dialed it.
    conns: HashMap<PeerId, Vec<(ConnectionId, Multiaddr, bool)>>,
    /// The reachability last reported.
    last: Reachability,
}

impl NatState {
    /// NAT traversal state; `enabled` is false on the memory transport. `relays` are fixed relays.
    pub(crate) fn new(
        enabled: bool,
        cfg: NatConfig,
        public_flag: Arc<AtomicBool>,
        relays: &[Multiaddr],
    ) -> Self {
        let now = Instant::now();
        let relays = relays
            .iter()
            .filter_map(|a| {
                let peer = crate::peer_id_of(a)?;
                let addr = a
                    .iter()
                    .filter(|p| !matches!(p, Protocol::P2p(_)))
                    .collect();
                Some((peer, Relay::new(addr, true, now)))
            })
            .collect();
        if cfg.relay_server == RelayServer::On {
            public_flag.store(true, Ordering::Relaxed);
        }
        Self {
            enabled,
            cfg,
            public_flag,
            confirmed: HashSet::new(),
            failed: HashSet::new(),
            relays,
            dialed: HashMap::new(),
            relayed: HashMap::new(),
            closing: Vec::new(),
            relayed_for: HashSet::new(),
            hole_punches: 0,
            hole_punch_failures: 0,
            local_ips: HashSet::new(),
            translated: false,
            v1: autonat::v1::NatStatus::Unknown,
            conns: HashMap::new(),
            last: Reachability::Unknown,
        }
    }

    /// Whether a verdict on `addr` counts: never on a relayed address (a dial-back through the relay proves
    /// nothing), and behind a NAT only on translated addresses.
    fn counts(&self, addr: &Multiaddr) -> bool {
        !is_relayed(addr)
            && (!self.translated || ip_of(addr).is_none_or(|ip| !self.local_ips.contains(&ip)))
    }

    /// A new listen address: its IP is one of this node's own.
    pub(crate) fn on_listen_addr(&mut self, addr: &Multiaddr) {
        if let Some(ip) = ip_of(addr).filter(|_| !is_relayed(addr)) {
            self.local_ips.insert(ip);
        }
    }

    /// A peer saw this node at `addr`: if that is not one of its own IPs, a NAT is in the way.
    pub(crate) fn on_candidate(&mut self, swarm: &mut Swarm<Behaviour>, addr: &Multiaddr) {
        let foreign = ip_of(addr).is_some_and(|ip| !self.local_ips.contains(&ip));
        if foreign && !is_relayed(addr) && !self.translated {
            info!(%addr, "peers see this node at an address that is not its own: behind a NAT");
            self.translated = true;
            self.update(swarm);
        }
    }

    /// Acts on a change of reachability: opens or closes the relay server (auto mode), reserves relays.
    fn update(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = self.reachability();
        if now != self.last {
            match now {
                Reachability::Public => info!("publicly reachable: peers can dial this node"),
                Reachability::Private if self.relays.is_empty() => warn!(
                    "not publicly reachable (behind a NAT or firewall) and no relay known yet: only \
                     outgoing connections until a relay is found (or pass --relay <multiaddr>)"
                ),
                Reachability::Private => {
                    info!("not publicly reachable (behind a NAT or firewall): reachable through relays")
                }
                Reachability::Unknown => info!("reachability unknown again"),
            }
            if self.cfg.relay_server == RelayServer::Auto {
                let open = now == Reachability::Public;
                if open != self.public_flag.swap(open, Ordering::Relaxed) {
                    info!(open, "relay server for peers behind NATs");
                }
            }
            self.last = now;
        }
        self.reserve(swarm);
    }

    /// This node dialed `peer` back at `addr` for AutoNAT: the connection proved what it had to; close it
    /// unless it is the only one (bitswap and gossipsub would keep it open, one more per probe).
    pub(crate) fn on_dial_back(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        addr: &Multiaddr,
    ) {
        let Some(list) = self.conns.get(&peer) else {
            return;
        };
        let probe: Vec<ConnectionId> = list
            .iter()
            .filter(|(_, a, dialer)| *dialer && same_addr(a, addr))
            .map(|(c, _, _)| *c)
            .collect();
        let keep_one = probe.len() == list.len();
        for c in probe.into_iter().skip(usize::from(keep_one)) {
            debug!(%peer, %addr, "closing an AutoNAT dial-back connection");
            swarm.close_connection(c);
        }
    }

    /// AutoNAT v1's verdict changed.
    pub(crate) fn on_autonat_v1(&mut self, swarm: &mut Swarm<Behaviour>, ev: autonat::v1::Event) {
        if let autonat::v1::Event::StatusChanged { new, .. } = ev {
            debug!(status = ?new, "AutoNAT v1");
            self.v1 = new;
            self.update(swarm);
        }
    }

    /// Reachability as AutoNAT found it.
    pub(crate) fn reachability(&self) -> Reachability {
        use autonat::v1::NatStatus as V1;
        let v1_public = matches!(&self.v1, V1::Public(a) if self.counts(a));
        if !self.enabled {
            Reachability::Unknown
        } else if v1_public || self.confirmed.iter().any(|a| self.counts(a)) {
            Reachability::Public
        } else if self.v1 == V1::Private || self.failed.iter().any(|a| self.counts(a)) {
            Reachability::Private
        } else {
            Reachability::Unknown
        }
    }

    /// A snapshot for the API.
    pub(crate) fn status(&self) -> NatStatus {
        NatStatus {
            reachability: self.reachability(),
            public_addrs: self.confirmed.iter().cloned().collect(),
            unreachable_addrs: self.failed.iter().cloned().collect(),
            relays: self
                .relays
                .iter()
                .filter(|(_, r)| r.reserved)
                .map(|(p, _)| *p)
                .collect(),
            relay_serving: self.enabled
                && self.cfg.relay_server != RelayServer::Off
                && self.public_flag.load(Ordering::Relaxed),
            relayed_for: self.relayed_for.len(),
            hole_punches: self.hole_punches,
            hole_punch_failures: self.hole_punch_failures,
        }
    }

    /// A connection opened: remembers direct dials (relay candidates) and relayed connections (to close
    /// after a hole punch).
    pub(crate) fn on_connection(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        addr: &Multiaddr,
        dialer: bool,
    ) {
        self.conns
            .entry(peer)
            .or_default()
            .push((id, addr.clone(), dialer));
        if is_relayed(addr) {
            debug!(%peer, %addr, "relayed connection");
            self.relayed
                .entry(peer)
                .or_default()
                .push((id, Instant::now()));
        } else if dialer {
            let addr = addr
                .iter()
                .filter(|p| !matches!(p, Protocol::P2p(_)))
                .collect();
            self.dialed.insert(peer, addr);
        }
    }

    /// A connection closed.
    pub(crate) fn on_connection_closed(&mut self, peer: PeerId, id: ConnectionId, last: bool) {
        if let Some(list) = self.conns.get_mut(&peer) {
            list.retain(|(c, _, _)| *c != id);
            if list.is_empty() {
                self.conns.remove(&peer);
            }
        }
        if let Some(list) = self.relayed.get_mut(&peer) {
            list.retain(|(c, _)| *c != id);
            if list.is_empty() {
                self.relayed.remove(&peer);
            }
        }
        if last {
            self.dialed.remove(&peer);
        }
    }

    /// Identify told us what `peer` speaks: a peer we dialed directly that relays is a relay candidate.
    pub(crate) fn on_identify(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        protocols: &[libp2p::StreamProtocol],
    ) {
        if !self.enabled || !protocols.contains(&relay::HOP_PROTOCOL_NAME) {
            return;
        }
        let Some(addr) = self.dialed.get(&peer).cloned() else {
            return;
        };
        if let std::collections::hash_map::Entry::Vacant(e) = self.relays.entry(peer) {
            debug!(%peer, %addr, "relay candidate");
            e.insert(Relay::new(addr, false, Instant::now()));
        }
        self.reserve(swarm);
    }

    /// Asks relays for slots while this node is not publicly reachable (fixed relays: always), up to
    /// [`NatConfig::max_relays`] at once.
    pub(crate) fn reserve(&mut self, swarm: &mut Swarm<Behaviour>) {
        if !self.enabled {
            return;
        }
        let private = self.reachability() == Reachability::Private;
        let now = Instant::now();
        let mut active = self
            .relays
            .values()
            .filter(|r| r.listener.is_some())
            .count();
        for (peer, r) in self.relays.iter_mut() {
            if active >= self.cfg.max_relays {
                break;
            }
            if r.listener.is_some() || now < r.retry_at || !(private || r.fixed) {
                continue;
            }
            let circuit = r
                .addr
                .clone()
                .with(Protocol::P2p(*peer))
                .with(Protocol::P2pCircuit);
            match swarm.listen_on(circuit.clone()) {
                Ok(id) => {
                    info!(relay = %peer, addr = %r.addr, "asking a relay for a reservation");
                    r.listener = Some(id);
                    active += 1;
                }
                Err(e) => {
                    warn!(relay = %peer, error = %e, "cannot listen through a relay");
                    r.failed(now);
                }
            }
        }
    }

    /// Periodic work: closes relayed connections whose peer is also connected directly, and retries
    /// reservations.
    pub(crate) fn on_tick(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = Instant::now();
        let due: Vec<ConnectionId> = self
            .closing
            .iter()
            .filter(|(_, at)| now >= *at)
            .map(|(c, _)| *c)
            .collect();
        self.closing.retain(|(_, at)| now < *at);
        for c in due {
            debug!(connection = ?c, "closing the relayed connection: a direct one is up");
            swarm.close_connection(c);
        }
        self.reserve(swarm);
    }

    /// A listener closed: if it was a circuit listener, the relay refused or lost the reservation.
    pub(crate) fn on_listener_closed(&mut self, id: ListenerId, reason: &str) {
        let now = Instant::now();
        for (peer, r) in self.relays.iter_mut() {
            if r.listener == Some(id) {
                // A relay learned from the mesh may well refuse (a peer that is not reachable itself).
                if r.fixed {
                    warn!(relay = %peer, %reason, retry_in = ?r.backoff,
                        "relay reservation refused or lost; trying again later");
                } else {
                    debug!(relay = %peer, %reason, retry_in = ?r.backoff,
                        "relay reservation refused or lost; trying again later");
                }
                r.failed(now);
            }
        }
    }

    /// AutoNAT's verdict on one of this node's addresses.
    pub(crate) fn on_autonat(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: autonat::v2::client::Event,
    ) {
        let addr = ev.tested_addr;
        match ev.result {
            Ok(()) => {
                self.failed.remove(&addr);
                debug!(%addr, server = %ev.server, "a peer dialed this address back");
                self.confirmed.insert(addr);
            }
            Err(e) => {
                debug!(%addr, server = %ev.server, error = %e, "dial-back failed");
                self.failed.insert(addr);
            }
        }
        self.update(swarm);
    }

    /// Events of the relay client (this node reserving slots, relayed connections).
    pub(crate) fn on_relay_client(&mut self, ev: relay::client::Event) {
        match ev {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if let Some(r) = self.relays.get_mut(&relay_peer_id) {
                    r.reserved = true;
                    r.backoff = RESERVE_RETRY;
                }
                if !renewal {
                    info!(relay = %relay_peer_id, "reservation accepted: reachable through the relay");
                }
            }
            other => debug!(event = ?other, "relay client"),
        }
    }

    /// Events of the relay server (peers reserving on this node, circuits it carries).
    pub(crate) fn on_relay_server(&mut self, ev: relay::Event) {
        match ev {
            relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                if self.relayed_for.insert(src_peer_id) {
                    info!(peer = %src_peer_id, "relaying for a peer");
                }
            }
            relay::Event::ReservationClosed { src_peer_id }
            | relay::Event::ReservationTimedOut { src_peer_id } => {
                self.relayed_for.remove(&src_peer_id);
            }
            relay::Event::ReservationReqDenied {
                src_peer_id,
                status,
            } => {
                debug!(peer = %src_peer_id, ?status, "relay reservation denied");
            }
            relay::Event::CircuitReqDenied {
                src_peer_id,
                dst_peer_id,
                status,
            } => {
                info!(src = %src_peer_id, dst = %dst_peer_id, ?status, "relayed connection refused");
            }
            other => debug!(event = ?other, "relay server"),
        }
    }

    /// A hole punch finished: on success the relayed connection to the peer closes after
    /// [`RELAYED_GRACE`]; on failure it stays and carries the traffic.
    pub(crate) fn on_dcutr(&mut self, ev: dcutr::Event) {
        let peer = ev.remote_peer_id;
        let since = self
            .relayed
            .get(&peer)
            .and_then(|l| l.iter().map(|(_, t)| *t).min());
        let ms = since.map(|t| t.elapsed().as_millis() as u64);
        match ev.result {
            Ok(direct) => {
                self.hole_punches += 1;
                info!(%peer, ms, "hole punch succeeded: direct connection");
                let at = Instant::now() + RELAYED_GRACE;
                for (c, _) in self.relayed.get(&peer).into_iter().flatten() {
                    if *c != direct {
                        self.closing.push((*c, at));
                    }
                }
            }
            Err(e) => {
                self.hole_punch_failures += 1;
                warn!(%peer, ms, error = %e, "hole punch failed: the connection stays relayed");
            }
        }
    }
}

impl Relay {
    fn new(addr: Multiaddr, fixed: bool, now: Instant) -> Self {
        Self {
            addr,
            fixed,
            listener: None,
            reserved: false,
            retry_at: now,
            backoff: RESERVE_RETRY,
        }
    }

    fn failed(&mut self, now: Instant) {
        self.listener = None;
        self.reserved = false;
        self.retry_at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(RESERVE_RETRY_MAX);
    }
}

/// Whether two addresses are the same, ignoring `/p2p/<id>` parts.
fn same_addr(a: &Multiaddr, b: &Multiaddr) -> bool {
    let strip = |m: &Multiaddr| -> Multiaddr {
        m.iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .collect()
    };
    strip(a) == strip(b)
}

/// The IP of an address, if it starts with one.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(ip.into()),
        Protocol::Ip6(ip) => Some(ip.into()),
        _ => None,
    }
}

/// Whether a connection's address goes through a relay (`/p2p-circuit`).
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}
