//! [`Mesh`]: the cheap, cloneable handle through which everything else talks to a running swarm.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jobmesh_store::{Cid, Store};
use libp2p::{multiaddr::Protocol, swarm::SwarmEvent, Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::info;

use crate::direct::InboundRequest;
use crate::nat::NatStatus;
use crate::{blocks::StoreBlockstore, config::Config, DialFailure, Error, ListenFailure};

use super::cmd::{Cmd, Reply};
use super::driver::Driver;
use super::listen::{ensure_port_free, listen_error};
use super::swarm::build_swarm;
use super::types::{GossipMessage, NetStats, PeerInfo, Validator};

/// A handle onto a running node's swarm. Clone it freely.
#[derive(Clone)]
pub struct Mesh {
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

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("peer_id", &self.inner.peer_id)
            .finish()
    }
}

impl Mesh {
    /// Builds the swarm, starts listening and dialing the bootstrap peers, and spawns the task that
    /// drives it on the current tokio runtime. Listening errors are returned here; unreachable
    /// bootstrap peers are retried in the background.
    pub async fn start(cfg: Config, store: Store) -> Result<Mesh, Error> {
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
                reason: ListenFailure::Transport(e),
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
                    reason: ListenFailure::Timeout,
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
                        Ok(()) => ListenFailure::Closed,
                        Err(e) => ListenFailure::Io(e),
                    };
                    return Err(listen_error(&listeners, listener_id, reason));
                }
                SwarmEvent::ListenerError { listener_id, error } => {
                    return Err(listen_error(&listeners, listener_id, error.into()));
                }
                _ => {}
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        let (inbound_tx, inbound_rx) = mpsc::channel(1024);
        let stats = Arc::new(NetStats::default());
        let driver = Driver::new(swarm, &cfg, inbound_tx, stats.clone(), public);
        tokio::spawn(driver.run(rx));
        Ok(Mesh {
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
                reason: DialFailure::Timeout,
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
            .map_err(Error::StoreTask)??;
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
