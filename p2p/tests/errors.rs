//! Failures keep their cause typed (as rust-libp2p's `OutboundFailure` does), on real nodes (127.0.0.1):
//! a caller matches on why a dial, a request, a publication or listening failed instead of parsing text.

mod common;

use std::time::Duration;

use common::{init_tracing, start};
use jobmesh_p2p::Multiaddr;
use jobmesh_p2p::{identity::Keypair, DialError, DialFailure, Error, GossipFailure, ListenFailure};
use jobmesh_p2p::{OutboundFailure, PeerId};

/// An address on 127.0.0.1 nobody listens on (a port bound, then let go).
fn closed_port() -> Multiaddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
}

fn some_peer() -> PeerId {
    Keypair::generate_ed25519().public().to_peer_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dial_keeps_the_swarm_error_and_says_it_in_one_line() {
    init_tracing();
    let node = start(&[]).await;
    let addr = closed_port().with(jobmesh_p2p::multiaddr::Protocol::P2p(some_peer()));
    let err = node
        .node
        .connect(addr.clone(), Duration::from_secs(10))
        .await
        .expect_err("nobody listens there");
    let Error::Dial {
        addr: shown,
        reason: DialFailure::Swarm(source),
    } = &err
    else {
        panic!("expected a dial failure with the swarm's error, got {err:?}");
    };
    assert_eq!(shown, &addr.to_string());
    let DialError::Transport(tried) = &**source else {
        panic!("expected a transport error, got {source:?}");
    };
    assert!(!tried.is_empty(), "the addresses tried are kept");
    let message = err.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(
        message.starts_with("cannot connect to /ip4/127.0.0.1/tcp/"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_an_unreachable_peer_keeps_the_outbound_failure() {
    init_tracing();
    let node = start(&[]).await;
    let peer = some_peer();
    let err = node
        .node
        .request(peer, vec![closed_port()], b"hello".to_vec())
        .await
        .expect_err("the peer is unreachable");
    let Error::Request {
        peer: shown,
        reason,
    } = &err
    else {
        panic!("expected a request failure, got {err:?}");
    };
    assert_eq!(shown, &peer.to_string());
    assert!(
        matches!(reason, OutboundFailure::DialFailure),
        "expected a dial failure, got {reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_to_nobody_is_a_typed_gossip_failure() {
    init_tracing();
    let node = start(&[]).await;
    let _rx = node.node.subscribe("lonely", None).await.unwrap();
    let err = node
        .node
        .publish("lonely", b"anyone?".to_vec())
        .await
        .expect_err("no peer is subscribed");
    assert!(
        matches!(err, Error::Gossip(GossipFailure::NoPeers)),
        "expected no peers, got {err:?}"
    );
    assert_eq!(
        err.to_string(),
        "gossipsub: no connected peer is subscribed to this topic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_a_typed_listen_failure() {
    init_tracing();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let store = jobmesh_store::Store::open(dir.path()).unwrap();
    let mut cfg = jobmesh_p2p::Config::new(Keypair::generate_ed25519());
    cfg.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()];
    let err = jobmesh_p2p::Mesh::start(cfg, store)
        .await
        .expect_err("the port is taken");
    assert!(
        matches!(
            err,
            Error::Listen {
                reason: ListenFailure::PortInUse(p),
                ..
            } if p == port
        ),
        "expected the port in use, got {err:?}"
    );
    drop(listener);
}
