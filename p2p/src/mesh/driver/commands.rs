//! The driver's answers to the handle's commands.

use std::collections::HashSet;
use std::time::Instant;

use libp2p::{gossipsub, kad, swarm::dial_opts::DialOpts};
use tokio::sync::broadcast;
use tracing::debug;

use crate::behaviour::topic_score_params;
use crate::Error;

use super::*;

impl Driver {
    pub(super) fn on_cmd(&mut self, cmd: Cmd) {
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
