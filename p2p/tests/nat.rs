//! NAT traversal parts on loopback, with real swarms: QUIC beside TCP, AutoNAT finding loopback nodes
//! reachable, a relay reservation and a relayed connection that hole punching upgrades to a direct one (the
//! relayed one then closes), and a relay that refuses (no stall: the dial fails with a clear error and the
//! node keeps running). Real NATs are in the netns testbed (`tests/netns`).

mod common;

use std::time::Duration;

use common::*;
use jobmesh_p2p::{multiaddr::Protocol, Mesh, Multiaddr, Reachability, RelayServer};

fn quic_of(tcp: &Multiaddr) -> bool {
    tcp.iter().any(|p| matches!(p, Protocol::QuicV1))
}

/// Whether `node` has a connection to `peer`, and of which kinds (direct, relayed).
async fn kinds(node: &Mesh, peer: jobmesh_p2p::PeerId) -> (bool, bool) {
    let peers = node.peers().await.unwrap();
    let Some(p) = peers.iter().find(|p| p.peer_id == peer) else {
        return (false, false);
    };
    (
        p.connections.iter().any(|c| !c.relayed),
        p.connections.iter().any(|c| c.relayed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_carries_blocks_and_autonat_finds_loopback_nodes_public() {
    init_tracing();
    let quic = |c: &mut jobmesh_p2p::Config| {
        c.listen = vec![
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
        ];
    };
    let a = start_with(&[], quic).await;
    let addrs = a.node.listen_addrs().await.unwrap();
    let a_quic = addrs
        .iter()
        .find(|a| quic_of(a))
        .expect("a QUIC address")
        .clone();
    let b = start_with(&[], |c| {
        c.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()]
    })
    .await;
    let peer = b
        .node
        .connect(a_quic, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(peer, a.node.peer_id());
    let peers = b.node.peers().await.unwrap();
    let conn = &peers[0].connections[0];
    assert!(quic_of(&conn.addr), "{}", conn.addr);
    assert!(!conn.relayed);

    let data = bytes(600 * 1024, 7);
    let cid = add(a.node.store(), &data);
    b.node
        .fetch_dag(cid, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(cat(b.node.store(), &cid), data);

    // Each serves AutoNAT to the other: both learn they are reachable.
    for n in [&a.node, &b.node] {
        let public = eventually(20, async || {
            n.nat_status().await.unwrap().reachability == Reachability::Public
        })
        .await;
        assert!(public, "{:?}", n.nat_status().await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_connection_is_upgraded_by_hole_punching_and_the_relay_leaves() {
    init_tracing();
    let relay = start_with(&[], |c| c.nat.relay_server = RelayServer::On).await;
    let relay_addr = relay.addr.clone();
    // B and A know only the relay (no DHT walk that would connect them directly on loopback).
    let b = start_with(&[], |c| c.relays = vec![relay_addr.clone()]).await;
    let reserved = eventually(20, async || {
        b.node.nat_status().await.unwrap().relays == vec![relay.node.peer_id()]
    })
    .await;
    assert!(reserved, "{:?}", b.node.nat_status().await.unwrap());
    assert_eq!(relay.node.nat_status().await.unwrap().relayed_for, 1);
    let circuit = b
        .node
        .listen_addrs()
        .await
        .unwrap()
        .into_iter()
        .find(jobmesh_p2p::is_relayed)
        .expect("a /p2p-circuit address");

    let a = start_with(&[], |_| {}).await;
    a.node
        .connect(relay_addr.clone(), Duration::from_secs(5))
        .await
        .unwrap();
    let peer = a
        .node
        .connect(circuit, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(peer, b.node.peer_id());
    let (_, relayed) = kinds(&a.node, peer).await;
    assert!(relayed, "the first connection goes through the relay");

    // DCUtR gives a direct connection; the relayed one closes after its grace period.
    let direct_only = eventually(20, async || kinds(&a.node, peer).await == (true, false)).await;
    assert!(direct_only, "{:?}", a.node.peers().await.unwrap());
    let punched = b.node.nat_status().await.unwrap().hole_punches
        + a.node.nat_status().await.unwrap().hole_punches;
    assert!(punched >= 1);
    // What goes between them now goes direct: a block fetch works with the relay gone.
    relay.node.shutdown().await.unwrap();
    let data = bytes(300 * 1024, 3);
    let cid = add(b.node.store(), &data);
    a.node
        .fetch_dag(cid, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(cat(a.node.store(), &cid), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_refuses_gives_a_clear_error_not_a_stall() {
    init_tracing();
    let relay = start_with(&[], |c| c.nat.relay_server = RelayServer::Off).await;
    let relay_addr = relay.addr.clone();
    let b = start_with(&[], |c| c.relays = vec![relay_addr.clone()]).await;
    let a = start_with(&[], |_| {}).await;
    a.node
        .connect(relay_addr.clone(), Duration::from_secs(5))
        .await
        .unwrap();
    // B asks and is refused (retrying with backoff): it holds no reservation and advertises no circuit.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(b.node.nat_status().await.unwrap().relays.is_empty());
    assert!(!b
        .node
        .listen_addrs()
        .await
        .unwrap()
        .iter()
        .any(jobmesh_p2p::is_relayed));
    // Dialing B through that relay fails quickly with a reason, and both nodes keep working.
    let circuit: Multiaddr = relay_addr
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(b.node.peer_id()));
    let started = std::time::Instant::now();
    let err = a
        .node
        .connect(circuit, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    assert!(!err.to_string().contains("timed out"), "{err}");
    assert!(b.node.any_connected(&[relay.node.peer_id()]).await.unwrap());
    assert!(a.node.any_connected(&[relay.node.peer_id()]).await.unwrap());
}
