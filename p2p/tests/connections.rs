//! The connection manager on real nodes (127.0.0.1): above its high watermark a node disconnects the least
//! recently used peers down to its low watermark, but keeps the peers it is working with.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{eventually, init_tracing, start, start_with, TestNode};
use jobmesh_p2p::{ConnLimits, Multiaddr, PeerId};

/// A node whose connection manager keeps `low`..`high` peers, sparing new ones for `grace`.
async fn hub(low: usize, high: usize, grace: Duration) -> TestNode {
    start_with(&[], |c| c.connections = ConnLimits { low, high, grace }).await
}

/// A fresh node connected to `hub` (by hand: it has no bootstrap peer to return to).
async fn leaf_of(hub: &TestNode) -> TestNode {
    let leaf = start(&[]).await;
    leaf.node
        .connect(hub.addr.clone(), Duration::from_secs(10))
        .await
        .expect("leaf connects");
    leaf
}

/// The remote addresses of `peer`'s connections as `node` sees them (`None`: not connected).
async fn view_of(node: &TestNode, peer: PeerId) -> Option<Vec<Multiaddr>> {
    node.node
        .peers()
        .await
        .ok()?
        .into_iter()
        .find(|p| p.peer_id == peer)
        .map(|p| p.addrs)
}

async fn peer_count(n: &TestNode) -> usize {
    n.node.peers().await.map(|p| p.len()).unwrap_or(0)
}

fn trimmed(n: &TestNode) -> u64 {
    n.node.stats().peers_trimmed.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_over_its_high_watermark_trims_idle_peers_and_keeps_busy_ones() {
    init_tracing();
    let hub = hub(2, 4, Duration::from_millis(600)).await;
    // The hub answers every direct request with "ok".
    let mut inbound = hub.node.take_inbound_requests().expect("requests");
    tokio::spawn(async move {
        while let Some(req) = inbound.recv().await {
            req.respond(b"ok".to_vec());
        }
    });
    // Leaf 0 connects first and keeps talking to the hub; the seven others connect and say nothing.
    let mut leaves = vec![leaf_of(&hub).await];
    let busy_id = leaves[0].node.peer_id();
    // The hub's view of leaf 0's connection: its remote address (leaf 0's ephemeral port) names it.
    assert!(eventually(5, async || view_of(&hub, busy_id).await.is_some()).await);
    let busy_conn = view_of(&hub, busy_id).await.expect("leaf 0 connected");
    let busy = leaves[0].node.clone();
    let hub_id = hub.node.peer_id();
    let hub_addr = hub.addr.clone();
    let talker = tokio::spawn(async move {
        loop {
            let _ = busy
                .request(hub_id, vec![hub_addr.clone()], b"ping".to_vec())
                .await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    for _ in 0..7 {
        leaves.push(leaf_of(&hub).await);
    }

    assert!(
        eventually(15, async || peer_count(&hub).await <= 2).await,
        "the hub did not trim to its low watermark: {} peers",
        peer_count(&hub).await
    );
    // Trimmed to the low watermark, not below, and the busy leaf's connection is the one it opened first: it
    // was never trimmed. (Nothing redials the hub: the leaves have no bootstrap peer to return to and do not
    // walk the DHT by themselves — kad's automatic bootstrap is off. With it on, CI once saw 7 peers here.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let peers = peer_count(&hub).await;
    assert!((2..=4).contains(&peers), "{peers} peers");
    assert!(trimmed(&hub) >= 6, "only {} trimmed", trimmed(&hub));
    // (An AutoNAT dial-back to the leaf may be open beside it for a moment: the first connection is what counts.)
    let now = view_of(&hub, busy_id).await.unwrap_or_default();
    assert!(
        now.contains(&busy_conn[0]),
        "the busy leaf was trimmed: {now:?}"
    );
    talker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_within_its_watermarks_keeps_every_peer() {
    init_tracing();
    let hub = hub(2, 8, Duration::from_millis(300)).await;
    let mut leaves = Vec::new();
    for _ in 0..6 {
        leaves.push(leaf_of(&hub).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(peer_count(&hub).await, 6);
    assert_eq!(trimmed(&hub), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_peer_already_being_dialed_waits_for_that_dial() {
    init_tracing();
    let a = start(&[]).await;
    let b = start(&[]).await;
    // The second call finds the first one's dial in progress (libp2p refuses a second dial to the same peer):
    // both must get the connection.
    let (first, second) = tokio::join!(
        a.node.connect(b.addr.clone(), Duration::from_secs(10)),
        a.node.connect(b.addr.clone(), Duration::from_secs(10)),
    );
    assert_eq!(first.unwrap(), b.node.peer_id());
    assert_eq!(second.unwrap(), b.node.peer_id());
    // And once connected, a third is answered at once.
    assert_eq!(
        a.node
            .connect(b.addr.clone(), Duration::from_secs(1))
            .await
            .unwrap(),
        b.node.peer_id()
    );
}
