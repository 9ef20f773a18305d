//! A flood of bad bitswap messages from a hostile peer speaking raw `/ipfs/bitswap/1.2.0` streams:
//! wantlists far over the per-peer cap and unsolicited blocks (dropped, not held against the sender: honest
//! peers send duplicate blocks), then frames over the 4 MiB limit and undecodable frames (dropped, and each
//! one counts against the sender, which is soon banned: disconnected and refused). The node stores nothing it
//! did not ask for, keeps serving honest peers and its memory stays bounded.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use futures::{AsyncWriteExt, StreamExt};
use libp2p::{identity::Keypair, StreamProtocol};

const BITSWAP: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.2.0");

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A length-delimited protobuf field.
fn field(tag: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(tag << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A varint protobuf field.
fn field_int(tag: u64, v: u64, out: &mut Vec<u8>) {
    varint(tag << 3, out);
    varint(v, out);
}

/// A bitswap frame: varint length prefix + message.
fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    varint(msg.len() as u64, &mut f);
    f.extend_from_slice(msg);
    f
}

/// A `Message` whose wantlist asks for `n` blocks nobody has (want-have, send-dont-have).
fn wantlist(start: u64, n: u64) -> Vec<u8> {
    let mut wl = Vec::new();
    for i in start..start + n {
        let cid = jobmesh_store::cid_of_raw(&i.to_le_bytes());
        let mut e = Vec::new();
        field(1, &cid.to_bytes(), &mut e);
        field_int(2, 1, &mut e);
        field_int(4, 1, &mut e);
        field_int(5, 1, &mut e);
        field(1, &e, &mut wl);
    }
    let mut m = Vec::new();
    field(1, &wl, &mut m);
    m
}

/// A `Message` carrying one block (CIDv1, raw, sha2-256 prefix) nobody asked for.
fn unsolicited_block(data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    field(1, &[1, 0x55, 0x12, 0x20], &mut b);
    field(2, data, &mut b);
    let mut m = Vec::new();
    field(3, &b, &mut m);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_bitswap_messages_is_dropped_and_its_sender_banned() {
    init_tracing();
    let victim = start(&[]).await;
    let data = bytes(1024 * 1024 + 3, 5);
    let root = add(victim.node.store(), &data);
    let (blocks_before, _) = victim.node.store().usage().unwrap();
    // An honest peer, connected before the flood and all through it.
    let honest = start(std::slice::from_ref(&victim.addr)).await;
    let honest_id = honest.node.peer_id();
    let v = victim.node.clone();
    assert!(
        eventually(10, async || v
            .peers()
            .await
            .unwrap()
            .iter()
            .any(|p| p.peer_id == honest_id))
        .await
    );

    let Attacker {
        id: attacker_id,
        mut control,
        redial: redial_tx,
        driver,
    } = attacker(&victim);
    let target = victim.node.peer_id();
    let stats = victim.node.stats();
    let rss_before = rss_kib();

    // 1. Wantlists far over the per-peer cap (40,000 entries in all) and 100 unsolicited 256 KiB blocks: dropped,
    //    but not misbehaviour.
    let noise = async {
        let mut s = control.open_stream(target, BITSWAP).await.unwrap();
        for k in 0..20 {
            s.write_all(&frame(&wantlist(k * 2000, 2000)))
                .await
                .unwrap();
        }
        s.close().await.unwrap();
        let mut s = control.open_stream(target, BITSWAP).await.unwrap();
        for k in 0..100u64 {
            let block = bytes(256 * 1024, 1000 + k);
            s.write_all(&frame(&unsolicited_block(&block)))
                .await
                .unwrap();
        }
        s.close().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(60), noise)
        .await
        .expect("the wantlists and blocks were not sent in 60 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stats.bitswap_misbehaved.load(Relaxed), 0);
    assert!(
        connected(&victim, attacker_id).await,
        "attacker dropped too early"
    );

    // 2. Frames announcing 64 MiB (over the 4 MiB limit), each followed by 4 MiB of filler, on 40 streams at
    //    once that stay open: a node that waited for the whole frame would hold 160 MiB.
    let mut streams = Vec::new();
    for _ in 0..40 {
        if let Ok(s) = control.open_stream(target, BITSWAP).await {
            streams.push(s);
        }
    }
    assert_eq!(streams.len(), 40);
    let filler = bytes(4 * 1024 * 1024, 99);
    let writes = streams.iter_mut().map(|s| {
        let filler = &filler;
        async move {
            let mut f = Vec::new();
            varint(64 * 1024 * 1024, &mut f);
            let _ = s.write_all(&f).await;
            let _ = s.write_all(filler).await;
            let _ = s.flush().await;
        }
    });
    // Writes to a stream the node dropped may stall rather than fail: give them a bounded time.
    let _ = tokio::time::timeout(Duration::from_secs(20), futures::future::join_all(writes)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let grown_mib = rss_kib().saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 100,
        "memory grew by {grown_mib} MiB during the flood of oversized frames"
    );

    // 3. Undecodable frames, one stream each, until the node stops accepting them.
    let mut opened = 0u32;
    let junk = async {
        for i in 0..300u64 {
            let Ok(mut s) = control.open_stream(target, BITSWAP).await else {
                continue;
            };
            opened += 1;
            let mut junk = bytes(100 + (i as usize * 7) % 400, i + 1);
            junk[0] = 0xff; // field 31, wire type 7: invalid in protobuf
            let _ = s.write_all(&frame(&junk)).await;
            let _ = s.close().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), junk)
        .await
        .expect("the junk flood did not finish in 60 s");
    drop(streams);

    // The attacker was scored down to a ban (exactly one peer banned: not the honest one)…
    let offences = stats.bitswap_misbehaved.load(Relaxed);
    assert!(offences >= 5, "only {offences} bad frames were counted");
    assert_eq!(stats.peers_banned.load(Relaxed), 1);
    assert!(opened < 300, "the node accepted all {opened} junk streams");
    let v = &victim;
    assert!(
        eventually(5, async || !connected(v, attacker_id).await).await,
        "attacker still connected"
    );
    // …and is refused when it comes back.
    redial_tx.send(victim.addr.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        let r = tokio::time::timeout(Duration::from_secs(2), control.open_stream(target, BITSWAP))
            .await;
        assert!(!matches!(r, Ok(Ok(_))), "a banned peer opened a stream");
        assert!(
            !connected(&victim, attacker_id).await,
            "a banned peer reconnected"
        );
    }

    // The node stored none of the unsolicited blocks…
    let (blocks_after, _) = victim.node.store().usage().unwrap();
    assert_eq!(
        blocks_after, blocks_before,
        "unsolicited blocks were stored"
    );
    // …kept the honest peer all along and still serves it…
    assert!(
        connected(&victim, honest_id).await,
        "the honest peer was dropped"
    );
    let fetched = honest
        .node
        .fetch_dag(root, Duration::from_secs(20))
        .await
        .expect("the victim still serves blocks");
    assert_eq!(fetched.fetched, 6, "5 leaves + 1 root");
    assert_eq!(cat(honest.node.store(), &root), data);
    // …and its memory stayed bounded (the whole process: victim, attacker and honest node).
    let grown_mib = rss_kib().saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 100,
        "memory grew by {grown_mib} MiB during the flood"
    );
    driver.abort();
}

/// A raw libp2p peer dialing `victim`, driven in a task; send an address on `redial` to dial it again.
struct Attacker {
    id: libp2p::PeerId,
    control: libp2p_stream::Control,
    redial: tokio::sync::mpsc::Sender<libp2p::Multiaddr>,
    driver: tokio::task::JoinHandle<()>,
}

fn attacker(victim: &TestNode) -> Attacker {
    let key = Keypair::generate_ed25519();
    let id = key.public().to_peer_id();
    let mut swarm = raw_swarm(key, |_| libp2p_stream::Behaviour::new());
    let control = swarm.behaviour().new_control();
    swarm.dial(victim.addr.clone()).unwrap();
    let (redial, mut redial_rx) = tokio::sync::mpsc::channel::<libp2p::Multiaddr>(1);
    let driver = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = swarm.select_next_some() => {}
                Some(addr) = redial_rx.recv() => {
                    let _ = swarm.dial(addr);
                }
            }
        }
    });
    Attacker {
        id,
        control,
        redial,
        driver,
    }
}

/// One undecodable bitswap frame on a new stream; whether the stream could be opened.
async fn send_junk(control: &mut libp2p_stream::Control, target: libp2p::PeerId) -> bool {
    let Ok(mut s) = control.open_stream(target, BITSWAP).await else {
        return false;
    };
    let _ = s.write_all(&frame(&[0xff, 1, 2, 3])).await;
    let _ = s.close().await;
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_bad_frames_are_tolerated_and_a_ban_ends() {
    init_tracing();
    let victim = start_with(&[], |c| c.misbehaviour_ban = Duration::from_secs(2)).await;
    let target = victim.node.peer_id();
    let stats = victim.node.stats();
    let mut a = attacker(&victim);
    // Fewer bad frames than a ban takes: counted, the peer stays.
    for _ in 0..3 {
        assert!(send_junk(&mut a.control, target).await);
    }
    let v = &victim;
    assert!(eventually(5, async || stats.bitswap_misbehaved.load(Relaxed) == 3).await);
    assert_eq!(stats.peers_banned.load(Relaxed), 0);
    assert!(connected(v, a.id).await);
    // Two more: banned and disconnected.
    for _ in 0..2 {
        assert!(send_junk(&mut a.control, target).await);
    }
    assert!(eventually(5, async || stats.peers_banned.load(Relaxed) == 1).await);
    assert!(eventually(5, async || !connected(v, a.id).await).await);
    a.redial.send(victim.addr.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !send_junk(&mut a.control, target).await,
        "refused while banned"
    );
    // Once the ban is over the peer may connect again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    a.redial.send(victim.addr.clone()).await.unwrap();
    assert!(
        eventually(5, async || connected(v, a.id).await).await,
        "still refused after the ban"
    );
    a.driver.abort();
}

async fn connected(node: &TestNode, peer: libp2p::PeerId) -> bool {
    node.node
        .peers()
        .await
        .unwrap()
        .iter()
        .any(|p| p.peer_id == peer)
}
