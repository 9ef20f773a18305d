//! [`Cluster`]: complete nodes (store, swarm, market, and settlement on a shared [`SimChain`]) in one process,
//! meshed through the first one.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jobmesh_contracts::alloy::primitives::{keccak256, Address, U256};
use jobmesh_contracts::embedded::{EmbeddedChain, EmbeddedSettlement};
use jobmesh_contracts::DeployParams;
use jobmesh_exec::{Executor, JobCode, Plugin};
use jobmesh_node::launch::{launch, Launched};
use jobmesh_node::market::db::MarketDb;
use jobmesh_node::market::messages::{CodeKind, JobLimits, JOBS_TOPIC};
use jobmesh_node::market::verification::VerificationPolicy;
use jobmesh_node::market::{JobRequest, Market, MarketConfig, WorkerPolicy};
use jobmesh_node::settlement::{Chain, Settler, SettlerConfig};
use jobmesh_p2p::{identity::Keypair, Config, ConnLimits, GossipTrace, Mesh, PeerId, Transport};
use jobmesh_store::unixfs::Profile;
use jobmesh_store::{Cid, Store};
use tracing::debug;

use crate::links::LinkModel;

/// Why a cluster could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A node part failed to start.
    #[error("node {index}: {what}")]
    Start {
        /// Which member.
        index: usize,
        /// What failed.
        what: String,
    },
    /// The members did not all connect in time.
    #[error("the mesh did not form in {0:?}")]
    NoMesh(Duration),
    /// Compiling or storing a job failed.
    #[error("job: {0}")]
    Job(String),
}

/// One node of the cluster.
pub struct Member {
    /// Its swarm.
    pub node: Mesh,
    /// Its market.
    pub market: Market,
    /// Its worker policy, if it runs jobs.
    pub worker: Option<WorkerPolicy>,
    /// Its settlement, when the cluster runs on a [`SimChain`].
    pub settler: Option<Settler>,
    dir: tempfile::TempDir,
}

/// One embedded EVM running the real settlement contract, shared by every member of a cluster: each member
/// gets its own funded account, and a miner task produces blocks at a fixed interval (draws need blocks).
#[derive(Clone)]
pub struct SimChain {
    /// The chain.
    pub chain: Arc<EmbeddedChain>,
    /// The settlement contract on it.
    pub contract: Address,
    /// The lottery policy of every member.
    pub policy: SettlerConfig,
}

/// ETH each member's account holds for gas and deposits.
const MEMBER_FUNDS: u128 = 1_000_000_000_000_000_000_000; // 1,000 ETH

impl SimChain {
    /// A fresh chain (block hashes derived from `seed`) with the settlement contract deployed with `params`.
    pub fn new(
        seed: u64,
        params: DeployParams,
        policy: SettlerConfig,
    ) -> Result<SimChain, ClusterError> {
        let chain = EmbeddedChain::new(seed, 31_337);
        let deployer = Address::from_word(keccak256(b"jobmesh simnet deployer"));
        chain.fund(deployer, U256::from(MEMBER_FUNDS));
        let contract =
            chain
                .deploy_settlement(deployer, params)
                .map_err(|e| ClusterError::Start {
                    index: 0,
                    what: format!("cannot deploy the settlement contract: {e}"),
                })?;
        Ok(SimChain {
            chain,
            contract,
            policy,
        })
    }

    /// Mines one block every `interval` until the returned handle is aborted (or the runtime ends).
    pub fn spawn_miner(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let chain = self.chain.clone();
        tokio::spawn(async move {
            let mut timer = tokio::time::interval(interval);
            loop {
                timer.tick().await;
                chain.mine(1);
            }
        })
    }

    /// A client for `peer`'s account (derived from its PeerId); a `fresh` account is funded with ETH for gas
    /// and deposits (members deposit through their settler).
    fn client_for(&self, peer: &PeerId, fresh: bool) -> Chain {
        let me = Address::from_word(keccak256(peer.to_bytes()));
        if fresh {
            self.chain.fund(me, U256::from(MEMBER_FUNDS));
        }
        Chain::Embedded(EmbeddedSettlement::new(
            self.chain.clone(),
            me,
            self.contract,
        ))
    }
}

impl Member {
    /// A member made of started parts, its role and its data dir.
    fn of(parts: Launched, worker: Option<WorkerPolicy>, dir: tempfile::TempDir) -> Member {
        Member {
            node: parts.node,
            market: parts.market,
            worker,
            settler: parts.settler,
            dir,
        }
    }

    /// Stores bytes as a UnixFS file in this member's store.
    pub fn add(&self, bytes: &[u8]) -> Result<Cid, ClusterError> {
        self.node
            .store()
            .add_file(bytes, &Profile::KUBO)
            .map(|i| i.root)
            .map_err(|e| ClusterError::Job(e.to_string()))
    }
}

/// How the members of a [`Cluster`] are set up.
#[derive(Clone)]
pub struct ClusterSetup {
    /// Transport between members.
    pub transport: Transport,
    /// The chain every member settles on, if any.
    pub chain: Option<SimChain>,
    /// Each member's connection manager watermarks.
    pub connections: ConnLimits,
    /// Round-trip times, loss and bandwidth between members (memory transport only; `None`: no delay).
    pub links: Option<Arc<LinkModel>>,
    /// How every member's requester verifies results.
    pub verification: VerificationPolicy,
    /// The stake contract whose stakes the members' requesters credit to offers, if any.
    pub stake_contract: Option<[u8; 20]>,
}

/// Nodes in one process: member 0 first, every other member bootstrapped to it.
pub struct Cluster {
    /// The members, in start order.
    pub members: Vec<Member>,
    env: MemberEnv,
    /// While the mesh is partitioned: the members of one side (by PeerId); the rest is the other side.
    cut: Option<HashSet<PeerId>>,
}

/// How long the members have to form one connected graph: 20 s without delays, plus 150 of the longest round
/// trips with a link model (every member bootstraps through member 0, whose connection manager trims the crowd,
/// and the trimmed find each other through Kademlia walks of sequential round trips: at 100 nodes with 330 ms
/// paths a fixed 20 s was not enough).
pub(crate) fn mesh_limit(links: Option<&LinkModel>) -> Duration {
    Duration::from_secs(20) + links.map_or(Duration::ZERO, |l| l.max_rtt() * 150)
}

/// How many members start at once.
const START_BATCH: usize = 10;

/// What every member of a cluster starts with.
#[derive(Clone)]
struct MemberEnv {
    transport: Transport,
    connections: ConnLimits,
    /// One executor for all (its compiled plugin).
    exec: Arc<Executor>,
    chain: Option<SimChain>,
    /// Gossip publications and deliveries of every member.
    trace: Arc<GossipTrace>,
    /// The link model, if any.
    links: Option<Arc<LinkModel>>,
    verification: VerificationPolicy,
    stake_contract: Option<[u8; 20]>,
}

impl Cluster {
    /// Starts one member per entry of `roles` (`None`: submits jobs only; `Some(policy)`: also a worker) and
    /// waits until their connections form one connected graph. All members share one executor (its compiled
    /// plugin), which saves seconds per member and changes nothing in what they compute.
    pub async fn start(
        roles: &[Option<WorkerPolicy>],
        transport: Transport,
    ) -> Result<Cluster, ClusterError> {
        Self::start_with(roles, transport, None).await
    }

    /// Like [`Cluster::start`], with every member settling on `chain` (when given).
    pub async fn start_with(
        roles: &[Option<WorkerPolicy>],
        transport: Transport,
        chain: Option<SimChain>,
    ) -> Result<Cluster, ClusterError> {
        let setup = ClusterSetup {
            transport,
            chain,
            connections: ConnLimits::default(),
            links: None,
            verification: VerificationPolicy::default(),
            stake_contract: None,
        };
        Self::start_setup(roles, setup).await
    }

    /// Like [`Cluster::start`], set up as `setup` says.
    pub async fn start_setup(
        roles: &[Option<WorkerPolicy>],
        setup: ClusterSetup,
    ) -> Result<Cluster, ClusterError> {
        let ClusterSetup {
            transport,
            chain,
            connections,
            links,
            verification,
            stake_contract,
        } = setup;
        let exec = Arc::new(Executor::new(None).map_err(|e| ClusterError::Start {
            index: 0,
            what: e.to_string(),
        })?);
        let plugin = Plugin::bundled();
        exec.warm_up(&plugin.cid())
            .map_err(|e| ClusterError::Start {
                index: 0,
                what: e.to_string(),
            })?;
        let env = MemberEnv {
            transport,
            connections,
            exec,
            chain,
            trace: Arc::new(GossipTrace::new()),
            links,
            verification,
            stake_contract,
        };
        let started = tokio::time::Instant::now();
        // Member 0 first: the others bootstrap to it. Then the others a batch at a time (opening stores and
        // starting swarms overlap; a whole hundred at once would all dial member 0 in the same instant).
        let Some((first_role, others)) = roles.split_first() else {
            return Err(ClusterError::Start {
                index: 0,
                what: "a cluster needs at least one member".into(),
            });
        };
        let first = new_member(0, first_role.clone(), &[], &env)
            .await
            .map_err(|what| ClusterError::Start { index: 0, what })?;
        let bootstrap = first
            .node
            .listen_addrs()
            .await
            .map_err(|e| ClusterError::Start {
                index: 0,
                what: e.to_string(),
            })?;
        let mut members = vec![first];
        for batch in others.chunks(START_BATCH) {
            let mut starting = tokio::task::JoinSet::new();
            for (offset, role) in batch.iter().enumerate() {
                let index = members.len() + offset;
                let (role, bootstrap, env) = (role.clone(), bootstrap.clone(), env.clone());
                starting.spawn(async move {
                    let member = new_member(index, role, &bootstrap, &env).await;
                    (
                        index,
                        member.map_err(|what| ClusterError::Start { index, what }),
                    )
                });
            }
            let mut started_batch = Vec::with_capacity(batch.len());
            while let Some(joined) = starting.join_next().await {
                let (index, member) = joined.map_err(|e| ClusterError::Start {
                    index: members.len(),
                    what: e.to_string(),
                })?;
                started_batch.push((index, member?));
            }
            started_batch.sort_by_key(|(index, _)| *index);
            members.extend(started_batch.into_iter().map(|(_, m)| m));
        }
        debug!(members = members.len(), elapsed = ?started.elapsed(), "cluster members started");
        let cluster = Cluster {
            members,
            env,
            cut: None,
        };
        cluster
            .wait_connected(mesh_limit(cluster.env.links.as_deref()))
            .await?;
        debug!(elapsed = ?started.elapsed(), "cluster connected");
        Ok(cluster)
    }

    /// Starts one more member, bootstrapped to member 0, and waits until member 0 sees it.
    pub async fn join(&mut self, role: Option<WorkerPolicy>) -> Result<&Member, ClusterError> {
        let index = self.members.len();
        let fail = |what: String| ClusterError::Start { index, what };
        let bootstrap = self.members[0]
            .node
            .listen_addrs()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let member = new_member(index, role, &bootstrap, &self.env)
            .await
            .map_err(fail)?;
        let peer = member.node.peer_id();
        self.members.push(member);
        self.keep_cut(index, true).await;
        let limit = mesh_limit(self.env.links.as_deref());
        let deadline = tokio::time::Instant::now() + limit;
        while !self.members[0]
            .node
            .peers()
            .await
            .is_ok_and(|p| p.iter().any(|p| p.peer_id == peer))
        {
            if tokio::time::Instant::now() > deadline {
                return Err(ClusterError::NoMesh(limit));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        meshes_grafted(
            &[self.members[index].node.clone()],
            Duration::from_millis(1500),
        )
        .await;
        Ok(&self.members[index])
    }

    /// Crashes member `index` (its market stops, its swarm goes down, its tasks end), keeps it down for
    /// `downtime`, then starts it again on the same data dir with the same identity and bootstraps it to
    /// member 0: what a `kill -9` and a restart of `jobmesh node start` do, with the databases intact.
    pub async fn restart(&mut self, index: usize, downtime: Duration) -> Result<(), ClusterError> {
        let fail = |what: String| ClusterError::Start { index, what };
        let old = self.members.swap_remove(index);
        let key = old.node.config().keypair.clone();
        old.market.stop();
        let _ = old.node.shutdown().await;
        let Member {
            node,
            market,
            worker,
            settler,
            dir,
        } = old;
        drop((node, market, settler));
        tokio::time::sleep(downtime).await;
        let bootstrap = if self.members.is_empty() {
            Vec::new()
        } else {
            self.members[0]
                .node
                .listen_addrs()
                .await
                .map_err(|e| fail(e.to_string()))?
        };
        // The stopped member's last tasks release its databases within moments.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let member = loop {
            match start_member_in(
                index,
                &dir,
                Some(key.clone()),
                worker.clone(),
                &bootstrap,
                &self.env,
            )
            .await
            {
                Ok(parts) => break Member::of(parts, worker, dir),
                Err(e) if tokio::time::Instant::now() > deadline => return Err(fail(e)),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        self.members.push(member);
        let last = self.members.len() - 1;
        self.members.swap(index, last);
        self.keep_cut(index, false).await;
        Ok(())
    }

    /// Splits the mesh in two: from now on the members in `side` and the others refuse each other's
    /// connections (open ones are closed), as if the network between them failed. Members that restart or
    /// join meanwhile stay on their side (joiners on member 0's).
    pub async fn partition(&mut self, side: &[usize]) {
        let cut: HashSet<PeerId> = side
            .iter()
            .map(|&i| self.members[i].node.peer_id())
            .collect();
        self.cut = Some(cut);
        for &i in side {
            self.block_across(i, true).await;
        }
    }

    /// Ends the partition: every member accepts every other again. Nobody is dialed here: the members'
    /// bootstrap retries (to member 0) and the DHT reconnect the two sides, as they would on a real network.
    pub async fn heal(&mut self) {
        let Some(cut) = &self.cut else { return };
        let side: Vec<usize> = (0..self.members.len())
            .filter(|&i| cut.contains(&self.members[i].node.peer_id()))
            .collect();
        for i in side {
            self.block_across(i, false).await;
        }
        self.cut = None;
    }

    /// The gossip trace every member notes its publications and deliveries in.
    pub fn gossip_trace(&self) -> &Arc<GossipTrace> {
        &self.env.trace
    }

    /// Member `index` blocks (or unblocks) every member on the other side of the cut, and they it.
    async fn block_across(&self, index: usize, block: bool) {
        let Some(cut) = &self.cut else { return };
        let me = &self.members[index].node;
        let mine = cut.contains(&me.peer_id());
        for other in &self.members {
            if cut.contains(&other.node.peer_id()) != mine {
                for (a, b) in [(me, &other.node), (&other.node, me)] {
                    let _ = if block {
                        a.block_peer(b.peer_id()).await
                    } else {
                        a.unblock_peer(b.peer_id()).await
                    };
                }
            }
        }
    }

    /// A member that restarted (or `joined`) during a partition is cut off from the other side again. A joiner
    /// takes member 0's side.
    async fn keep_cut(&mut self, index: usize, joined: bool) {
        let peer = self.members[index].node.peer_id();
        let zero = self.members[0].node.peer_id();
        let Some(cut) = &mut self.cut else { return };
        if joined && cut.contains(&zero) {
            cut.insert(peer);
        }
        self.block_across(index, true).await;
    }

    /// Waits until the members' connections form one connected graph (see [`one_component`]).
    async fn wait_connected(&self, limit: Duration) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + limit;
        let nodes: Vec<Mesh> = self.members.iter().map(|m| m.node.clone()).collect();
        loop {
            if one_component(&nodes).await {
                meshes_grafted(&nodes, Duration::from_millis(1500)).await;
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClusterError::NoMesh(limit));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Compiles JavaScript with the bundled plugin and stores code and input in `member`'s store; returns a
    /// job request with `replicas` replicas, default limits and a 60 s timeout.
    pub fn js_job(
        &self,
        member: usize,
        source: &str,
        input: &[u8],
        replicas: u8,
    ) -> Result<JobRequest, ClusterError> {
        let plugin = Plugin::bundled().cid();
        // exec runs synchronously with a runtime of its own, so not on an async runtime's thread.
        let compile = || self.env.exec.compile_js(&plugin, "job.js", source);
        let code = match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::block_in_place(compile),
            Err(_) => compile(),
        }
        .map_err(|e| ClusterError::Job(e.to_string()))?;
        let m = &self.members[member];
        let defaults = jobmesh_exec::Limits::default();
        Ok(JobRequest {
            kind: CodeKind::JavyBytecode,
            plugin: Some(plugin),
            code: m.add(&JobCode::Js(code).to_bytes())?,
            input: m.add(input)?,
            limits: JobLimits {
                max_fuel: defaults.fuel,
                memory_bytes: defaults.memory_bytes,
                output_bytes: defaults.output_bytes,
                stderr_bytes: defaults.stderr_bytes,
            },
            replicas,
            price_wei_per_mfuel: 1_000,
            verifier: None,
            timeout: Duration::from_secs(60),
            error_rate: None,
        })
    }

    /// The executor the members share.
    pub fn executor(&self) -> &Arc<Executor> {
        &self.env.exec
    }

    /// Stops every member (member 0, which the others bootstrap through, last).
    pub async fn shutdown(self) {
        for m in self.members.iter().rev() {
            m.market.stop();
            let _ = m.node.shutdown().await;
        }
    }
}

/// A new member (fresh identity, fresh data dir).
async fn new_member(
    index: usize,
    worker: Option<WorkerPolicy>,
    bootstrap: &[jobmesh_p2p::Multiaddr],
    env: &MemberEnv,
) -> Result<Member, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let parts = start_member_in(index, &dir, None, worker.clone(), bootstrap, env).await?;
    Ok(Member::of(parts, worker, dir))
}

/// Starts member `index`'s parts on `dir`; `key: None` makes a new member (new identity; funded and with its
/// start deposit on the chain), `Some` restarts one.
async fn start_member_in(
    index: usize,
    dir: &tempfile::TempDir,
    key: Option<Keypair>,
    worker: Option<WorkerPolicy>,
    bootstrap: &[jobmesh_p2p::Multiaddr],
    env: &MemberEnv,
) -> Result<Launched, String> {
    let transport = env.transport;
    let path: &Path = dir.path();
    let store = Store::open(&path.join("blocks")).map_err(|e| e.to_string())?;
    let db = MarketDb::open(&path.join("market")).map_err(|e| e.to_string())?;
    let fresh = key.is_none();
    let key = key.unwrap_or_else(Keypair::generate_ed25519);
    let mut cfg = Config::new(key);
    cfg.transport = transport;
    cfg.listen = vec![match transport {
        Transport::Tcp => "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
        Transport::Memory => {
            let port = rand_port();
            cfg.links = env.links.as_ref().map(|l| l.attach(index, port));
            format!("/memory/{port}").parse().expect("multiaddr")
        }
    }];
    cfg.bootstrap = bootstrap.to_vec();
    // A member cut off from its bootstrap peer (a partition, a crash of member 0) retries at most every 4 s
    // rather than a real node's 60 s, so a healed partition reconnects within a simulated run.
    cfg.bootstrap_backoff_max = Duration::from_secs(4);
    cfg.gossip_trace = Some(env.trace.clone());
    cfg.connections = env.connections;
    let market_cfg = MarketConfig {
        worker: worker.clone(),
        eth_address: None,
        verification: env.verification,
        stake_contract: env.stake_contract,
        ..MarketConfig::default()
    };
    let settlement = match &env.chain {
        Some(c) => Some((
            c.client_for(&cfg.keypair.public().to_peer_id(), fresh),
            c.policy.clone(),
        )),
        None => None,
    };
    launch(cfg, store, db, env.exec.clone(), market_cfg, settlement)
        .await
        .map_err(|e| e.to_string())
}

/// A memory-transport port unlikely to collide within the process.
fn rand_port() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = u64::from(std::process::id()) << 20;
    base + NEXT.fetch_add(1, Ordering::Relaxed) + 1
}

/// Mesh peers a member's gossipsub mesh of the jobs topic must hold (or every subscribed peer it knows, if fewer)
/// before jobs start: gossipsub grafts up to 6 and tops up below 5 at each heartbeat.
const GRAFTED: usize = 4;

/// Waits (at most `limit`) until every node's gossipsub mesh of the jobs topic holds [`GRAFTED`] peers (or all
/// the subscribed peers it knows): subscriptions were exchanged and a heartbeat grafted, so the first
/// announcements travel the mesh rather than wait for gossip at later heartbeats.
async fn meshes_grafted(nodes: &[Mesh], limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut waiting: Vec<&Mesh> = nodes.iter().collect();
    while !waiting.is_empty() && tokio::time::Instant::now() < deadline {
        let mut still = Vec::new();
        for n in waiting {
            let mesh = n.mesh_peers(JOBS_TOPIC).await.unwrap_or(0);
            let known = n.topic_peers(JOBS_TOPIC).await.unwrap_or(0);
            if known == 0 || mesh < GRAFTED.min(known) {
                still.push(n);
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    debug!(ungrafted = waiting.len(), "gossip meshes");
}

/// Whether the running nodes among `nodes` are one connected component of the connection graph.
pub(crate) async fn one_component(nodes: &[Mesh]) -> bool {
    let mut links: HashMap<PeerId, Vec<PeerId>> = HashMap::new();
    for n in nodes {
        // A member that is down (crashed, restarting) is not part of the graph.
        if let Ok(peers) = n.peers().await {
            links.insert(n.peer_id(), peers.into_iter().map(|p| p.peer_id).collect());
        }
    }
    let Some(start) = links.keys().next().copied() else {
        return true;
    };
    let mut seen = HashSet::from([start]);
    let mut queue = vec![start];
    while let Some(p) = queue.pop() {
        for q in links.get(&p).into_iter().flatten() {
            if links.contains_key(q) && seen.insert(*q) {
                queue.push(*q);
            }
        }
    }
    debug!(reached = seen.len(), of = links.len(), "connection graph");
    seen.len() == links.len()
}
