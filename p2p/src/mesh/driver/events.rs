//! The driver's reactions to swarm and behaviour events: connections, gossip, direct messages, bitswap.

use std::sync::Arc;
use std::time::Instant;

use libp2p::{
    autonat,
    core::ConnectedPoint,
    gossipsub, identify, kad, request_response,
    swarm::{ConnectionId, DialError, SwarmEvent},
    PeerId,
};
use tracing::{debug, info, warn};

use crate::behaviour::BehaviourEvent;
use crate::direct::InboundRequest;
use crate::{DialFailure, Error};

use super::conn_manager::Peer;
use super::Driver;
use crate::error::one_line;
use crate::mesh::types::{GossipMessage, NetStats};

impl Driver {
    pub(super) fn on_direct(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
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
                        reason: error,
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "inbound direct request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    pub(super) fn on_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => self.on_connection_established(peer_id, connection_id, &endpoint),
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                debug!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "connection closed");
                self.on_connection_closed(peer_id, connection_id, num_established == 0);
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => self.on_dial_failed(connection_id, peer_id, error),
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

    /// A connection is up: note the peer, answer who waited for it, and mark bootstrap peers connected.
    fn on_connection_established(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
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
        if self.on_bootstrap_connected(peer_id, connection_id, endpoint) {
            self.fill_routing_table();
        }
    }

    /// Marks the bootstrap peers this connection reaches as connected; whether there was one.
    fn on_bootstrap_connected(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        endpoint: &ConnectedPoint,
    ) -> bool {
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
                    let addr = endpoint.get_remote_address().clone();
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
                bootstrapped = true;
            }
        }
        bootstrapped
    }

    /// Connected to a bootstrap peer: fill the routing table through it, unless the node is already well
    /// connected (a bootstrap peer that trimmed it and was redialed: another walk would only dial everyone
    /// again). A lookup of our own id finds the closest peers and tells them about us; a full bootstrap
    /// would also walk towards a random key in every bucket, dialing most of a small mesh (53 connections
    /// per node among 100 simulated ones, against 34 now). The full walk runs every `DHT_REFRESH`.
    fn fill_routing_table(&mut self) {
        if self.live_peers() < self.conn_limits.low.max(2) {
            let me = *self.swarm.local_peer_id();
            self.swarm.behaviour_mut().kad.get_closest_peers(me);
        }
    }

    /// A connection closed: forget it, and if it was the last one to a bootstrap peer, schedule its redial.
    fn on_connection_closed(&mut self, peer_id: PeerId, connection_id: ConnectionId, last: bool) {
        self.nat.on_connection_closed(peer_id, connection_id, last);
        if let Some(p) = self.peers.get_mut(&peer_id) {
            p.conns.remove(&connection_id);
        }
        if !last {
            return;
        }
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

    /// A dial failed: answer who waited for it, and back off a bootstrap peer's redial.
    fn on_dial_failed(
        &mut self,
        connection_id: ConnectionId,
        peer_id: Option<PeerId>,
        error: DialError,
    ) {
        debug!(peer = ?peer_id, error = %error, "outgoing connection failed");
        let error = Arc::new(error);
        if let Some((addr, r)) = self.dials.remove(&connection_id) {
            let _ = r.send(Err(Error::Dial {
                addr,
                reason: DialFailure::Swarm(error.clone()),
            }));
        }
        if let Some(p) = peer_id {
            if !self.swarm.is_connected(&p) {
                for (addr, r) in self.peer_dials.remove(&p).unwrap_or_default() {
                    let _ = r.send(Err(Error::Dial {
                        addr,
                        reason: DialFailure::Swarm(error.clone()),
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

    pub(super) fn on_behaviour(&mut self, ev: BehaviourEvent) {
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
            BehaviourEvent::Bitswap(ev) => self.on_bitswap(ev),
        }
    }

    /// A block arrived (or failed, or its sender misbehaved): answer who waits for it.
    fn on_bitswap(&mut self, ev: beetswap::Event) {
        match ev {
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
                    let _ = r.send(Err(Error::Bitswap(error)));
                }
            }
            beetswap::Event::PeerMisbehaved { peer, reason } => self.on_misbehaviour(peer, &reason),
        }
    }

    pub(super) fn on_gossip(&mut self, ev: gossipsub::Event) {
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
