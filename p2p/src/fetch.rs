//! Fetching a whole DAG: walk links from the root, keep many bitswap requests in flight, and look up
//! providers on the DHT when connected peers do not have the blocks.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use jobmesh_store::Cid;
use tokio::sync::Notify;
use tracing::debug;

use crate::{Error, Mesh, PeerId};

/// How long a fetch from known holders waits for them before also asking the DHT for providers.
pub const HOLDER_GRACE: Duration = Duration::from_secs(3);

/// What a DAG fetch did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FetchStats {
    /// Blocks in the DAG.
    pub blocks: u64,
    /// Bytes in those blocks.
    pub bytes: u64,
    /// Blocks that came from the network (the rest were already stored).
    pub fetched: u64,
    /// Wall time of the fetch.
    pub elapsed: Duration,
}

impl Mesh {
    /// Makes sure every block of the DAG under `root` is in the store: blocks already present are
    /// read locally, missing ones are requested by bitswap from connected peers, up to
    /// [`crate::Config::fetch_window`] at once. If that does not complete the DAG quickly, providers of
    /// the root are looked up on the DHT (and again periodically) and dialed, so a fetch continues when
    /// a provider disconnects. Fails with [`Error::Timeout`] after `timeout`.
    pub async fn fetch_dag(&self, root: Cid, timeout: Duration) -> Result<FetchStats, Error> {
        self.fetch_dag_from(root, &[], timeout).await
    }

    /// Like [`Mesh::fetch_dag`], from peers known to hold the DAG (a job's requester, the workers that
    /// revealed an output, a lottery's payer): they are dialed if not connected (and kept by the connection
    /// manager while the fetch runs) and asked for the blocks directly (bitswap want-block, no other peer
    /// asked: a broadcast want costs every connected peer a stream, an answer and a cancel). If they have not
    /// delivered within [`HOLDER_GRACE`], every connected peer is asked too, and the DHT for other providers
    /// if none of the holders is connected any more — a holder that is connected but slow is still the best
    /// source, and a lookup walks the DHT and dials the peers it meets, which costs more than the small DAGs
    /// of a job (at 100 simulated nodes, lookups behind busy holders were most of the DHT traffic).
    pub async fn fetch_dag_from(
        &self,
        root: Cid,
        holders: &[PeerId],
        timeout: Duration,
    ) -> Result<FetchStats, Error> {
        let started = Instant::now();
        for peer in holders {
            self.dial_peer(*peer).await?;
        }
        let lookup_delay = if holders.is_empty() {
            self.config().provider_lookup_delay
        } else {
            HOLDER_GRACE.max(self.config().provider_lookup_delay)
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let window = self.config().fetch_window.max(1);
        let mut walk = Walk::new(root, holders);
        let mut in_flight = FuturesUnordered::new();
        let mut lookup: Option<AbortOnDrop> = None;
        let widen = Arc::new(Notify::new());

        let result = loop {
            // Fill the window; local blocks are walked at once.
            let room = window.saturating_sub(in_flight.len());
            for (req, cid) in self.next_requests(&mut walk, room)? {
                let (node, from) = (self.clone(), walk.ask.clone());
                in_flight.push(async move { (req, cid, node.get_block_req(req, cid, from).await) });
            }
            if in_flight.is_empty() && walk.queue.is_empty() {
                break Ok(());
            }
            if lookup.is_none() && !in_flight.is_empty() {
                // Aborted when the fetch ends — also when its caller drops it midway (a cancelled job).
                lookup = Some(AbortOnDrop(self.spawn_provider_lookup(
                    root,
                    lookup_delay,
                    holders.to_vec(),
                    widen.clone(),
                )));
            }
            if in_flight.is_empty() {
                continue;
            }
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline, in_flight.next()) => next,
                () = widen.notified(), if !walk.ask.is_empty() => {
                    self.widen(&mut walk);
                    continue;
                }
            };
            match next {
                Ok(Some((req, cid, res))) => {
                    if let Err(e) = self.on_block(&mut walk, req, cid, res) {
                        break Err(e);
                    }
                }
                Ok(None) => {}
                Err(_) => break Err(walk.timeout(started)),
            }
        };
        drop(lookup);
        for req in walk.reqs.keys() {
            self.cancel_get(*req);
        }
        let mut stats = walk.stats;
        stats.elapsed = started.elapsed();
        debug!(%root, blocks = stats.blocks, fetched = stats.fetched, bytes = stats.bytes,
            ms = stats.elapsed.as_millis() as u64, ok = result.is_ok(), "DAG fetch finished");
        result.map(|()| stats)
    }

    /// Takes up to `room` blocks to request from the queue, walking the ones already stored on the way.
    fn next_requests(&self, walk: &mut Walk, room: usize) -> Result<Vec<(u64, Cid)>, Error> {
        let mut out = Vec::new();
        while out.len() < room {
            let Some(cid) = walk.queue.pop_front() else {
                break;
            };
            match self.store().get(&cid)? {
                Some(data) => {
                    self.walk(
                        &cid,
                        &data,
                        &mut walk.stats,
                        &mut walk.seen,
                        &mut walk.queue,
                    )?;
                }
                None => {
                    let req = self.next_req();
                    walk.reqs.insert(req, cid);
                    out.push((req, cid));
                }
            }
        }
        Ok(out)
    }

    /// The holders did not deliver in time: every pending block is asked of every connected peer.
    fn widen(&self, walk: &mut Walk) {
        debug!(root = %walk.root, "holders did not deliver: asking every connected peer");
        walk.ask.clear();
        for req in walk.reqs.keys() {
            self.widen_get(*req);
        }
    }

    /// A requested block arrived (its links join the queue) or failed.
    fn on_block(
        &self,
        walk: &mut Walk,
        req: u64,
        cid: Cid,
        res: Result<Vec<u8>, Error>,
    ) -> Result<(), Error> {
        walk.reqs.remove(&req);
        let data = res?;
        walk.stats.fetched += 1;
        self.walk(
            &cid,
            &data,
            &mut walk.stats,
            &mut walk.seen,
            &mut walk.queue,
        )
    }

    fn walk(
        &self,
        cid: &Cid,
        data: &[u8],
        stats: &mut FetchStats,
        seen: &mut HashSet<Cid>,
        queue: &mut VecDeque<Cid>,
    ) -> Result<(), Error> {
        stats.blocks += 1;
        stats.bytes += data.len() as u64;
        let links = jobmesh_store::dag::links(cid, data).map_err(|e| Error::Links {
            cid: cid.to_string(),
            reason: Box::new(e),
        })?;
        for l in links {
            if seen.insert(l) {
                queue.push_back(l);
            }
        }
        Ok(())
    }

    /// Looks up providers of `root` after a short delay and then every few seconds, dialing the ones
    /// found (the swarm does that when they turn up), until aborted. Rounds in which one of `holders` is
    /// connected are skipped. Before the first round it notifies `widen`: the fetch then asks every connected
    /// peer (providers found included), not only the holders.
    fn spawn_provider_lookup(
        &self,
        root: Cid,
        delay: Duration,
        holders: Vec<PeerId>,
        widen: Arc<Notify>,
    ) -> tokio::task::JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // Holders that have not delivered by now may not have every block (or be gone): ask everyone.
            widen.notify_one();
            loop {
                let holder_connected =
                    !holders.is_empty() && node.any_connected(&holders).await.unwrap_or(false);
                if holder_connected {
                    debug!(%root, "a holder is connected: no provider lookup this round");
                } else {
                    let found = node.find_providers(root, Duration::from_secs(10)).await;
                    debug!(%root, providers = ?found.as_ref().map(|f| f.len()).ok(), "provider lookup for fetch");
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    }
}

/// The state of one DAG fetch.
struct Walk {
    root: Cid,
    stats: FetchStats,
    /// Blocks to get, in order.
    queue: VecDeque<Cid>,
    /// Blocks queued or walked already.
    seen: HashSet<Cid>,
    /// Blocks requested and not yet received, by request id.
    reqs: HashMap<u64, Cid>,
    /// Blocks are asked of the holders alone until they have had the lookup delay to deliver (see
    /// `spawn_provider_lookup`); from then on (empty) of every connected peer, as plain bitswap does.
    ask: Vec<PeerId>,
}

impl Walk {
    fn new(root: Cid, holders: &[PeerId]) -> Self {
        Walk {
            root,
            stats: FetchStats::default(),
            queue: VecDeque::from([root]),
            seen: HashSet::from([root]),
            reqs: HashMap::new(),
            ask: holders.to_vec(),
        }
    }

    /// The fetch ran out of time: how far it got.
    fn timeout(&self, started: Instant) -> Error {
        Error::Timeout {
            what: format!(
                "{} ({} of {} known blocks present)",
                self.root,
                self.stats.blocks,
                self.seen.len()
            ),
            secs: started.elapsed().as_secs_f64(),
        }
    }
}

/// A task aborted when its handle is dropped (a plain `JoinHandle` lets the task run on).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
