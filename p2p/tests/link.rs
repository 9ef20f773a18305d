//! The link model on the memory transport (`Config::links`): a node whose path to another has a 400 ms round
//! trip takes at least two of them to connect (multistream-select, then the noise handshake), while the same
//! connection without a model is up at once. Delays only add to whatever the machine's load costs, so the floor
//! holds however busy the machine is.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobmesh_p2p::link::{Links, Path, Uplink};
use jobmesh_p2p::{identity::Keypair, Config, Mesh, Multiaddr, Transport};
use jobmesh_store::Store;

/// Every path has the same round trip.
#[derive(Debug)]
struct Fixed(Duration);

impl Links for Fixed {
    fn path_to(&self, _port: u64) -> Option<Path> {
        Some(Path {
            rtt: self.0,
            loss: 0.0,
            seed: 1,
            up: Arc::new(Uplink::new(None)),
            down: Arc::new(Uplink::new(None)),
        })
    }
}

async fn memory_node(port: u64, links: Option<Arc<dyn Links>>) -> (Mesh, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut cfg = Config::new(Keypair::generate_ed25519());
    cfg.transport = Transport::Memory;
    cfg.listen = vec![format!("/memory/{port}").parse().unwrap()];
    cfg.links = links;
    (Mesh::start(cfg, store).await.unwrap(), dir)
}

/// How long `dialer` takes to connect to the node on memory port `port`.
async fn connect_time(dialer: &Mesh, port: u64) -> Duration {
    let addr: Multiaddr = format!("/memory/{port}").parse().unwrap();
    let started = Instant::now();
    dialer
        .connect(addr, Duration::from_secs(30))
        .await
        .expect("connects");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shaped_path_delays_the_connection_by_its_round_trips() {
    common::init_tracing();
    let base = u64::from(std::process::id()) << 24 | 0x11_0000;
    let rtt = Duration::from_millis(400);
    let (_listener, _d1) = memory_node(base + 1, None).await;
    let (plain, _d2) = memory_node(base + 2, None).await;
    let (shaped, _d3) = memory_node(base + 3, Some(Arc::new(Fixed(rtt)))).await;

    let unshaped = connect_time(&plain, base + 1).await;
    let delayed = connect_time(&shaped, base + 1).await;
    assert!(delayed >= 2 * rtt, "a 400 ms path connected in {delayed:?}");
    assert!(
        unshaped < rtt,
        "without a link model the connection took {unshaped:?}"
    );
}
