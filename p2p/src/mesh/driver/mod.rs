//! The task that owns the swarm: it answers the handle's commands, reacts to swarm events and runs the
//! periodic work (bootstrap redials, connection trimming, bans, DHT refresh).

mod commands;
mod conn_manager;
mod events;
mod kad_glue;
mod peer_score;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jobmesh_store::Cid;
use libp2p::{
    gossipsub, kad,
    multiaddr::Protocol,
    request_response,
    swarm::{dial_opts::DialOpts, ConnectionId},
    Multiaddr, PeerId, Swarm,
};
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

use crate::behaviour::Behaviour;
use crate::direct::InboundRequest;
use crate::nat::NatState;
use crate::trace::LiveNode;
use crate::{config::Config, config::ConnLimits, Error};

use super::cmd::{Cmd, PendingDial, Reply};
use super::types::{GossipMessage, NetStats, Validator};
use conn_manager::{Bootstrap, Peer, BOOTSTRAP_RECHECK, TRIM_EVERY};
use kad_glue::DHT_REFRESH;
use peer_score::Penalty;

/// A bitswap request: our request id, the block, when it started, who waits.
type PendingGet = (u64, Cid, Instant, Reply<Result<Vec<u8>, Error>>);
/// A provider lookup: the CID, the providers found so far, who waits.
type PendingFind = (Cid, HashSet<PeerId>, Option<Reply<Vec<PeerId>>>);

struct Topic {
    hash: gossipsub::TopicHash,
    name: String,
    tx: broadcast::Sender<GossipMessage>,
    validator: Option<Validator>,
}

pub(super) struct Driver {
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
    /// Peers blocked through [`Mesh::block_peer`] (a ban that ends does not unblock them).
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

impl Driver {
    pub(super) fn new(
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

    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
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
}

/// An address without its `/p2p/<peer>` parts naming `peer` (a relay's id stays in a circuit address).
fn without_peer(a: &Multiaddr, peer: &PeerId) -> Multiaddr {
    a.iter()
        .filter(|p| !matches!(p, Protocol::P2p(id) if id == peer))
        .collect()
}
