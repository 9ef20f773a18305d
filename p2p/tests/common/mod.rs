//! Helpers shared by the p2p integration tests: real nodes on 127.0.0.1 with real sled stores.
#![allow(dead_code)]

use std::time::Duration;

use jobmesh_p2p::{identity::Keypair, Config, Mesh, Multiaddr};
use jobmesh_store::{unixfs::Profile, Cid, Store};

/// A node with its store in a temp dir (kept alive as long as the value).
pub struct TestNode {
    pub node: Mesh,
    pub addr: Multiaddr,
    pub _dir: tempfile::TempDir,
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

pub async fn start(bootstrap: &[Multiaddr]) -> TestNode {
    start_with(bootstrap, |_| {}).await
}

/// Like [`start`], with settings changed by `tweak`.
pub async fn start_with(bootstrap: &[Multiaddr], tweak: impl FnOnce(&mut Config)) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut cfg = Config::new(Keypair::generate_ed25519());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    cfg.bootstrap = bootstrap.to_vec();
    cfg.heartbeat = Duration::from_millis(200);
    tweak(&mut cfg);
    let node = Mesh::start(cfg, store).await.unwrap();
    let addr = node.listen_addrs().await.unwrap().remove(0);
    TestNode {
        node,
        addr,
        _dir: dir,
    }
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough for transfer tests.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn add(store: &Store, data: &[u8]) -> Cid {
    store.add_file(data, &Profile::KUBO).unwrap().root
}

pub fn cat(store: &Store, cid: &Cid) -> Vec<u8> {
    let mut out = Vec::new();
    jobmesh_store::unixfs::cat(store, cid, &mut out).unwrap();
    out
}

/// Polls `f` every 50 ms until it returns true or `secs` pass.
pub async fn eventually(secs: u64, mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Resident memory of this test process, in KiB.
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A bare libp2p swarm over TCP + noise + yamux around `behaviour`, for tests that play a raw (hostile) peer.
pub fn raw_swarm<B: libp2p::swarm::NetworkBehaviour>(
    key: Keypair,
    behaviour: impl FnOnce(&Keypair) -> B,
) -> libp2p::Swarm<B> {
    libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("a TCP transport")
        .with_behaviour(behaviour)
        .expect("the behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}
