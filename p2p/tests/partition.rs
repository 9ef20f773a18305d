//! A partition between real nodes on loopback: blocked peers are cut off both ways, gossip stays on its side,
//! and once unblocked the mesh heals by itself (bootstrap retries) — measured by a shared gossip trace.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use jobmesh_p2p::{GossipMessage, GossipTrace, Mesh, PeerId};
use tokio::sync::broadcast;

const TOPIC: &str = "jobmesh/test/partition/1";

async fn connected(node: &Mesh, other: PeerId) -> bool {
    node.peers()
        .await
        .map(|ps| ps.iter().any(|p| p.peer_id == other))
        .unwrap_or(false)
}

/// Publishes `data` from `from` (again every 500 ms, as a new message, while it cannot be sent) until `rx`
/// has it, for at most `secs`.
async fn reaches(
    from: &Mesh,
    rx: &mut broadcast::Receiver<GossipMessage>,
    data: &[u8],
    secs: u64,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        let _ = from.publish(TOPIC, data.to_vec()).await;
        let until = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Ok(m)) = tokio::time::timeout_at(until, rx.recv()).await {
            if m.data == data {
                return true;
            }
        }
    }
    false
}

/// Every node of `a` blocks (or unblocks) every node of `b`, and the other way round.
async fn set_cut(nodes: &[TestNode], a: &[usize], b: &[usize], block: bool) {
    for &x in a {
        for &y in b {
            for (from, to) in [(x, y), (y, x)] {
                let (node, peer) = (&nodes[from].node, nodes[to].node.peer_id());
                if block {
                    node.block_peer(peer).await.unwrap();
                } else {
                    node.unblock_peer(peer).await.unwrap();
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_keeps_gossip_on_its_side_and_heals_once_unblocked() {
    init_tracing();
    let trace = Arc::new(GossipTrace::new());
    let tweak = |c: &mut jobmesh_p2p::Config| {
        c.gossip_trace = Some(trace.clone());
        c.bootstrap_backoff = Duration::from_millis(200);
        c.bootstrap_backoff_max = Duration::from_secs(1);
    };
    let hub = start_with(&[], tweak).await;
    let mut nodes = vec![hub];
    for _ in 0..3 {
        let boot = nodes[0].addr.clone();
        nodes.push(start_with(&[boot], tweak).await);
    }
    // Each side must hold together on its own once cut: 1 and 0 are linked through bootstrap, 3 dials 2 (kad
    // discovery would link them too, but not necessarily before the cut).
    nodes[3]
        .node
        .connect(nodes[2].addr.clone(), Duration::from_secs(10))
        .await
        .expect("3 dials 2");
    let mut rxs = Vec::new();
    for n in &nodes {
        rxs.push(n.node.subscribe(TOPIC, None).await.unwrap());
    }
    // Everyone hears everyone first.
    for (i, rx) in rxs.iter_mut().enumerate().skip(1) {
        assert!(
            reaches(&nodes[0].node, rx, format!("hello {i}").as_bytes(), 20).await,
            "node {i} never heard the hub"
        );
    }

    // Cut {0, 1} from {2, 3}.
    let (a, b) = ([0usize, 1], [2usize, 3]);
    set_cut(&nodes, &a, &b, true).await;
    for &x in &a {
        for &y in &b {
            let (nx, py) = (&nodes[x].node, nodes[y].node.peer_id());
            assert!(
                eventually(10, async || !connected(nx, py).await).await,
                "{x} still connected to {y}"
            );
        }
    }
    // Dialing across the cut is refused.
    assert!(nodes[2]
        .node
        .connect(nodes[0].addr.clone(), Duration::from_secs(2))
        .await
        .is_err());
    // Gossip stays on its side: 3 hears 2, 0 does not.
    assert!(reaches(&nodes[2].node, &mut rxs[3], b"side b", 10).await);
    while rxs[0].try_recv().is_ok() {}
    assert!(
        !reaches(&nodes[2].node, &mut rxs[0], b"across", 3).await,
        "gossip crossed the partition"
    );

    // Heal: nobody dials by hand; the bootstrap retries of 2 and 3 reconnect them to the hub.
    set_cut(&nodes, &a, &b, false).await;
    let hub_id = nodes[0].node.peer_id();
    for &y in &b {
        let ny = &nodes[y].node;
        assert!(
            eventually(15, async || connected(ny, hub_id).await).await,
            "{y} did not reconnect to the hub"
        );
    }
    assert!(
        reaches(&nodes[3].node, &mut rxs[0], b"healed", 20).await,
        "gossip does not cross the healed cut"
    );

    let report = trace.report();
    assert!(report.published >= 5, "{report:?}");
    assert!(
        report.delivered > 0 && report.delivery_ratio > 0.0,
        "{report:?}"
    );
    assert!(
        report.delivery_ratio < 1.0,
        "messages published during the cut cannot all have been delivered: {report:?}"
    );
    assert!(
        report.latency_ms[0] > 0.0 && report.latency_ms[0] <= report.latency_ms[2],
        "{report:?}"
    );
}
