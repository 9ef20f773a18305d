//! The driver's answers to the handle's commands: [`Driver::on_cmd`] dispatches each command to a named
//! phase, grouped by what it touches (queries, connections, the DHT, bitswap, gossip, direct requests).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use jobmesh_store::Cid;
use libp2p::{gossipsub, kad, swarm::dial_opts::DialOpts, Multiaddr, PeerId};
use tokio::sync::broadcast;
use tracing::debug;

use crate::behaviour::topic_score_params;
use crate::{DhtFailure, DialFailure, Error, GossipFailure};

use super::{without_peer, Driver, Topic};
use crate::mesh::cmd::{Cmd, Reply};
use crate::mesh::types::{ConnectionInfo, GossipMessage, NetStats, PeerInfo, Validator};

/// The answer channel of a gossip subscription.
type SubscribeReply = Reply<Result<broadcast::Receiver<GossipMessage>, Error>>;

impl Driver {
    pub(super) fn on_cmd(&mut self, cmd: Cmd) {
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
                let _ = r.send(self.mesh_peer_count(topic));
            }
            Cmd::TopicPeers(topic, r) => {
                let _ = r.send(self.topic_peer_count(topic));
            }
            Cmd::Peers(r) => {
                let _ = r.send(self.peer_list());
            }
            Cmd::Dial(addr, r) => self.dial(addr, r),
            Cmd::Block(peer, blocked) => self.set_blocked(peer, blocked),
            Cmd::DialPeer(p) => self.dial_provider(p),
            Cmd::Provide(cid, r) => self.provide(cid, r),
            Cmd::FindProviders(cid, r) => self.find_providers(cid, r),
            Cmd::LocalProviders(cid, r) => {
                let _ = r.send(self.local_providers(cid));
            }
            Cmd::GetBlock {
                req,
                cid,
                from,
                reply,
            } => self.get_block(req, cid, from, reply),
            Cmd::WidenGet(req) => self.widen_get(req),
            Cmd::CancelGet(req) => self.cancel_get(req),
            Cmd::Subscribe {
                topic,
                validator,
                reply,
            } => self.subscribe(topic, validator, reply),
            Cmd::Publish { topic, data, reply } => {
                let _ = reply.send(self.publish(topic, data));
            }
            Cmd::Request {
                peer,
                addrs,
                data,
                reply,
            } => self.send_request(peer, addrs, data, reply),
            Cmd::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    /// How many peers this node's gossipsub mesh of `topic` holds.
    fn mesh_peer_count(&self, topic: String) -> usize {
        let hash = gossipsub::IdentTopic::new(topic).hash();
        self.swarm.behaviour().gossipsub.mesh_peers(&hash).count()
    }

    /// How many connected peers gossipsub knows to be subscribed to `topic`.
    fn topic_peer_count(&self, topic: String) -> usize {
        let hash = gossipsub::IdentTopic::new(topic).hash();
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .count()
    }

    /// The connected peers, with their connections, agent and gossip score.
    fn peer_list(&self) -> Vec<PeerInfo> {
        self.peers
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
            .collect()
    }

    /// Dials `addr` for a `connect` call, answered when the connection is up or failed.
    fn dial(&mut self, addr: Multiaddr, r: Reply<Result<PeerId, Error>>) {
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
                    reason: DialFailure::Swarm(Arc::new(e)),
                }));
            }
        }
    }

    /// Blocks or unblocks `peer` on the user's behalf (unblocking also lifts a ban).
    fn set_blocked(&mut self, peer: PeerId, blocked: bool) {
        let b = self.swarm.behaviour_mut();
        if blocked {
            self.blocked_by_user.insert(peer);
            b.blocked.block_peer(peer);
        } else {
            self.blocked_by_user.remove(&peer);
            self.bans.remove(&peer);
            b.blocked.unblock_peer(peer);
        }
    }

    /// A provider a fetch wants: keep it (or make it) connected.
    fn dial_provider(&mut self, p: PeerId) {
        if self.peers.contains_key(&p) {
            self.touch(&p);
        } else if p != *self.swarm.local_peer_id() {
            if let Err(e) = self.swarm.dial(p) {
                debug!(peer = %p, error = %e, "cannot dial provider");
            }
        }
    }

    /// Announces `cid` on the DHT; answered when the announcement reached the closest peers (or failed).
    fn provide(&mut self, cid: Cid, r: Reply<Result<(), Error>>) {
        let b = self.swarm.behaviour_mut();
        let known: usize = b.kad.kbuckets().map(|k| k.num_entries()).sum();
        match b
            .kad
            .start_providing(kad::RecordKey::new(&cid.hash().to_bytes()))
        {
            // The record is kept and re-announced periodically, but nobody heard it now.
            Ok(_) if known == 0 => {
                let _ = r.send(Err(Error::Dht(DhtFailure::NoPeers)));
            }
            Ok(q) => {
                self.provides.insert(q, (cid, r));
            }
            Err(e) => {
                let _ = r.send(Err(Error::Dht(DhtFailure::Store(e))));
            }
        }
    }

    /// Starts a provider lookup of `cid`, answered when the query ends.
    fn find_providers(&mut self, cid: Cid, r: Reply<Vec<PeerId>>) {
        NetStats::add(&self.stats.provider_lookups, 1);
        let q = self
            .swarm
            .behaviour_mut()
            .kad
            .get_providers(kad::RecordKey::new(&cid.hash().to_bytes()));
        self.finds.insert(q, (cid, HashSet::new(), Some(r)));
    }

    /// The unexpired providers of `cid` in this node's own record store.
    fn local_providers(&mut self, cid: Cid) -> Vec<PeerId> {
        use libp2p::kad::store::RecordStore as _;
        let now = Instant::now();
        let key = kad::RecordKey::new(&cid.hash().to_bytes());
        self.swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .providers(&key)
            .into_iter()
            .filter(|p| !p.is_expired(now))
            .map(|p| p.provider)
            .collect()
    }

    /// Asks bitswap for a block, of its holders `from` or (empty) of every connected peer.
    fn get_block(
        &mut self,
        req: u64,
        cid: Cid,
        from: Vec<PeerId>,
        reply: Reply<Result<Vec<u8>, Error>>,
    ) {
        let bitswap = &mut self.swarm.behaviour_mut().bitswap;
        // Asking only the holders spares every other connected peer a want, its answer and the
        // cancel: upstream bitswap broadcasts each want, ~480 streams per job among 100 simulated
        // nodes against 27 for the market's messages.
        let q = if from.is_empty() {
            bitswap.get(&cid)
        } else {
            bitswap.get_from(&cid, &from)
        };
        self.gets.insert(q, (req, cid, Instant::now(), reply));
        self.req_to_query.insert(req, q);
    }

    /// Asks every connected peer for a block first requested of named holders.
    fn widen_get(&mut self, req: u64) {
        if let Some((_, cid, _, _)) = self.req_to_query.get(&req).and_then(|q| self.gets.get(q)) {
            self.swarm.behaviour_mut().bitswap.want_from_anyone(cid);
        }
    }

    /// Gives up a block request.
    fn cancel_get(&mut self, req: u64) {
        if let Some(q) = self.req_to_query.remove(&req) {
            self.swarm.behaviour_mut().bitswap.cancel(q);
            self.gets.remove(&q);
        }
    }

    /// Joins `topic` (or, joined already, replaces its validator if one is given) and hands out a receiver.
    fn subscribe(&mut self, topic: String, validator: Option<Validator>, reply: SubscribeReply) {
        let t = gossipsub::IdentTopic::new(topic.clone());
        let hash = t.hash();
        if let Some(existing) = self.topics.get_mut(&hash) {
            if validator.is_some() {
                existing.validator = validator;
            }
            let _ = reply.send(Ok(existing.tx.subscribe()));
            return;
        }
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        if let Err(e) = gossipsub.subscribe(&t) {
            let _ = reply.send(Err(Error::Gossip(GossipFailure::Subscribe(e))));
            return;
        }
        let _ = gossipsub.set_topic_params(t, topic_score_params());
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

    /// Publishes `data` on `topic`, counting it in the gossip trace if there is one.
    fn publish(&mut self, topic: String, data: Vec<u8>) -> Result<(), Error> {
        let t = gossipsub::IdentTopic::new(topic);
        match self.swarm.behaviour_mut().gossipsub.publish(t, data) {
            Ok(id) => {
                if let Some(trace) = &self.trace {
                    trace.0.published(id);
                }
                Ok(())
            }
            Err(e) => Err(Error::Gossip(e.into())),
        }
    }

    /// Sends a direct request, answered by the response or the failure event.
    fn send_request(
        &mut self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        data: Vec<u8>,
        reply: Reply<Result<Vec<u8>, Error>>,
    ) {
        NetStats::add(&self.stats.direct_sent, 1);
        let direct = &mut self.swarm.behaviour_mut().direct;
        let id = direct.send_request_with_addresses(&peer, data, addrs);
        self.requests.insert(id, reply);
        self.touch(&peer);
    }
    /// The application answered (or dropped) an inbound direct request.
    pub(super) fn on_answer(&mut self, id: u64, data: Option<Vec<u8>>) {
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
}
