//! Gossip between real nodes on loopback, and a flood of bad messages from hostile peers (signed and unsigned):
//! malformed (rejected by the topic's validator), oversized, and over-long frames.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use libp2p::{gossipsub, identity::Keypair};

const TOPIC: &str = "jobmesh/test/1";

fn valid(data: &[u8]) -> bool {
    data.starts_with(b"ok:")
}

/// A raw gossipsub peer that validates nothing and sends up to 4 MiB per frame; it signs its messages if
/// `signed` (nodes do not check gossipsub signatures: either way only the payload decides).
fn hostile_swarm(signed: bool) -> libp2p::Swarm<gossipsub::Behaviour> {
    raw_swarm(Keypair::generate_ed25519(), |key| {
        let cfg = gossipsub::ConfigBuilder::default()
            .validation_mode(if signed {
                gossipsub::ValidationMode::Strict
            } else {
                gossipsub::ValidationMode::None
            })
            .max_transmit_size(4 * 1024 * 1024)
            .heartbeat_interval(Duration::from_millis(200))
            .message_id_fn(|m: &gossipsub::Message| {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                m.data.hash(&mut h);
                gossipsub::MessageId::from(h.finish().to_be_bytes().to_vec())
            })
            .build()
            .unwrap();
        let auth = if signed {
            gossipsub::MessageAuthenticity::Signed(key.clone())
        } else {
            gossipsub::MessageAuthenticity::Anonymous
        };
        gossipsub::Behaviour::new(auth, cfg).unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_reaches_every_node_of_a_small_mesh() {
    init_tracing();
    let hub = start(&[]).await;
    let mut nodes = vec![];
    for _ in 0..4 {
        nodes.push(start(std::slice::from_ref(&hub.addr)).await);
    }
    nodes.push(hub);
    let mut rxs = vec![];
    for n in &nodes {
        rxs.push(
            n.node
                .subscribe(TOPIC, Some(Arc::new(valid)))
                .await
                .unwrap(),
        );
    }
    // Publish once the mesh has formed (publishing fails while no peer is subscribed). Subscriptions and the
    // mesh of a fresh swarm settle over a few heartbeats, so the sender publishes again (a new message each
    // time) until every node has had one, for at most 20 s.
    let sender = nodes[1].node.clone();
    let sent = std::sync::atomic::AtomicU32::new(0);
    let hello = || {
        let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("ok:hello {n}").into_bytes()
    };
    assert!(eventually(10, async || sender.publish(TOPIC, hello()).await.is_ok()).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for (i, rx) in rxs.iter_mut().enumerate() {
        if i == 1 {
            continue;
        }
        let m = loop {
            match tokio::time::timeout(Duration::from_millis(1500), rx.recv()).await {
                Ok(m) => break m.unwrap(),
                Err(_) if tokio::time::Instant::now() < deadline => {
                    let _ = sender.publish(TOPIC, hello()).await;
                }
                Err(_) => panic!("node {i} got nothing in 20 s"),
            }
        };
        assert!(m.data.starts_with(b"ok:hello "), "{:?}", m.data);
    }
    // Messages are identified by their content: the same bytes again within the duplicate window are refused.
    let once = b"ok:once".to_vec();
    sender.publish(TOPIC, once.clone()).await.unwrap();
    let again = sender.publish(TOPIC, once).await.unwrap_err().to_string();
    assert!(again.contains("published moments ago"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_gossip_is_dropped_and_its_sender_scored_down() {
    init_tracing();
    let victim = start(&[]).await;
    let honest = start(std::slice::from_ref(&victim.addr)).await;
    let mut rx = victim
        .node
        .subscribe(TOPIC, Some(Arc::new(valid)))
        .await
        .unwrap();
    let _hrx = honest
        .node
        .subscribe(TOPIC, Some(Arc::new(valid)))
        .await
        .unwrap();

    let topic = gossipsub::IdentTopic::new(TOPIC);
    let mut unsigned = hostile_swarm(false);
    let mut signed = hostile_swarm(true);
    let mut attackers = vec![];
    for s in [&mut unsigned, &mut signed] {
        s.behaviour_mut().subscribe(&topic).unwrap();
        s.dial(victim.addr.clone()).unwrap();
        attackers.push(*s.local_peer_id());
    }
    // Let both attackers connect and exchange subscriptions.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = unsigned.select_next_some() => {}
            _ = signed.select_next_some() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    // Note each attacker's score while it is connected, so that one that gets disconnected is still judged by
    // the score its messages earned it.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = {
        let victim = victim.node.clone();
        let attackers = attackers.clone();
        tokio::spawn(async move {
            let mut last = std::collections::HashMap::new();
            loop {
                for p in victim.peers().await.unwrap() {
                    if attackers.contains(&p.peer_id) {
                        last.insert(p.peer_id, p.gossip_score.unwrap_or(0.0));
                    }
                }
                tokio::select! {
                    _ = &mut stop_rx => return last,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        })
    };
    let rss_before = rss_kib();
    let mut sent = 0u32;
    for i in 0..3000u32 {
        // Malformed payloads, signed and unsigned (a valid gossipsub signature does not make a payload valid).
        let _ = signed
            .behaviour_mut()
            .publish(topic.clone(), format!("signed garbage {i}").into_bytes());
        // Unsigned: malformed, and oversized (100 KiB > the 64 KiB limit).
        let _ = unsigned
            .behaviour_mut()
            .publish(topic.clone(), format!("garbage {i}").into_bytes());
        if i % 100 == 0 {
            let mut big = vec![b'x'; 100 * 1024];
            big[..3].copy_from_slice(b"ok:");
            big[4..8].copy_from_slice(&i.to_be_bytes());
            let _ = unsigned.behaviour_mut().publish(topic.clone(), big);
        }
        if i % 1000 == 0 {
            // A 2 MiB frame: larger than any frame a node reads.
            let mut huge = vec![b'y'; 2 * 1024 * 1024];
            huge[4..8].copy_from_slice(&i.to_be_bytes());
            let _ = unsigned.behaviour_mut().publish(topic.clone(), huge);
        }
        sent += 1;
        // Keep both swarms moving.
        for _ in 0..4 {
            tokio::select! {
                biased;
                _ = unsigned.select_next_some() => {}
                _ = signed.select_next_some() => {}
                _ = tokio::task::yield_now() => {}
            }
        }
    }
    let drive_until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < drive_until {
        tokio::select! {
            _ = unsigned.select_next_some() => {}
            _ = signed.select_next_some() => {}
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    assert_eq!(sent, 3000);
    // Nothing bad was delivered to the application.
    if let Ok(m) = rx.try_recv() {
        let shown = String::from_utf8_lossy(&m.data[..m.data.len().min(40)]).to_string();
        panic!("a bad message was delivered: {shown:?}");
    }
    // The victim still works: an honest message gets through…
    let h = honest.node.clone();
    assert!(
        eventually(10, async || h
            .publish(TOPIC, b"ok:honest".to_vec())
            .await
            .is_ok())
        .await
    );
    let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("honest message")
        .unwrap();
    assert_eq!(m.data, b"ok:honest");
    // …the attackers are scored below zero (one no longer connected by the last score it had), the honest
    // peer is not.
    stop_tx.send(()).unwrap();
    let last_seen = sampler.await.unwrap();
    let peers = victim.node.peers().await.unwrap();
    for a in &attackers {
        let score = match peers.iter().find(|p| p.peer_id == *a) {
            Some(p) => p.gossip_score.unwrap_or(0.0),
            None => *last_seen
                .get(a)
                .unwrap_or_else(|| panic!("attacker {a} was never seen connected")),
        };
        assert!(score < 0.0, "attacker {a} has score {score}");
    }
    let hp = peers
        .iter()
        .find(|p| p.peer_id == honest.node.peer_id())
        .expect("honest peer connected");
    assert!(
        hp.gossip_score.unwrap_or(0.0) >= 0.0,
        "honest peer scored {:?}",
        hp.gossip_score
    );
    // …and memory stayed bounded (the whole test process: victim, honest node and both attackers).
    let grown_mib = rss_kib().saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 150,
        "memory grew by {grown_mib} MiB during the flood"
    );
}
