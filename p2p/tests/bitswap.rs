//! A flood of bad bitswap messages from a hostile peer speaking raw `/ipfs/bitswap/1.2.0` streams:
//! undecodable frames, frames over the 4 MiB limit, wantlists far over the per-peer cap and unsolicited
//! blocks. They are dropped: the node stores nothing it did not ask for, keeps serving honest peers and
//! its memory stays bounded.

mod common;

use std::time::Duration;

use common::*;
use futures::{AsyncWriteExt, StreamExt};
use libp2p::{identity::Keypair, noise, tcp, yamux, StreamProtocol, SwarmBuilder};

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
async fn a_flood_of_bad_bitswap_messages_is_dropped() {
    init_tracing();
    let victim = start(&[]).await;
    let data = bytes(1024 * 1024 + 3, 5);
    let root = add(victim.node.store(), &data);
    let (blocks_before, _) = victim.node.store().usage().unwrap();

    let mut attacker = SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let mut control = attacker.behaviour().new_control();
    attacker.dial(victim.addr.clone()).unwrap();
    let driver = tokio::spawn(async move {
        loop {
            attacker.select_next_some().await;
        }
    });
    let target = victim.node.peer_id();
    let rss_before = rss_kib();
    let mut opened = 0u32;

    let flood = async {
        // 1. Undecodable frames, one stream each (the node drops the stream on a decoding error).
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
        // 2. Frames announcing 64 MiB (over the 4 MiB limit), followed by 1 MiB of filler.
        let filler = bytes(1024 * 1024, 99);
        for _ in 0..20 {
            let Ok(mut s) = control.open_stream(target, BITSWAP).await else {
                continue;
            };
            opened += 1;
            let mut f = Vec::new();
            varint(64 * 1024 * 1024, &mut f);
            let _ = s.write_all(&f).await;
            let _ = s.write_all(&filler).await;
            let _ = s.close().await;
        }
        // 3. Wantlists far over the per-peer cap (40,000 entries in all), on one stream.
        if let Ok(mut s) = control.open_stream(target, BITSWAP).await {
            opened += 1;
            for k in 0..20 {
                let _ = s.write_all(&frame(&wantlist(k * 2000, 2000))).await;
            }
            let _ = s.close().await;
        }
        // 4. 100 unsolicited 256 KiB blocks.
        if let Ok(mut s) = control.open_stream(target, BITSWAP).await {
            opened += 1;
            for k in 0..100u64 {
                let block = bytes(256 * 1024, 1000 + k);
                let _ = s.write_all(&frame(&unsolicited_block(&block))).await;
            }
            let _ = s.close().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), flood)
        .await
        .expect("the flood did not finish in 60 s");
    assert!(opened > 300, "only {opened} bitswap streams were accepted");
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The node stored none of the unsolicited blocks…
    let (blocks_after, _) = victim.node.store().usage().unwrap();
    assert_eq!(
        blocks_after, blocks_before,
        "unsolicited blocks were stored"
    );
    // …still serves an honest peer…
    let honest = start(std::slice::from_ref(&victim.addr)).await;
    let stats = honest
        .node
        .fetch_dag(root, Duration::from_secs(20))
        .await
        .expect("the victim still serves blocks");
    assert_eq!(stats.fetched, 6, "5 leaves + 1 root");
    assert_eq!(cat(honest.node.store(), &root), data);
    // …and its memory stayed bounded (the whole process: victim, attacker and honest node).
    let grown_mib = rss_kib().saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 150,
        "memory grew by {grown_mib} MiB during the flood"
    );
    driver.abort();
}
