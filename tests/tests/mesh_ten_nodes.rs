//! Ten `jobmesh node start` processes on loopback, all bootstrapped through one: a file added on node 1
//! is found on the DHT and fetched by bitswap on node 10 (byte-identical); a gossip message published on
//! node 3 reaches all ten; every block of the file is provided (a leaf is found too), and only the root with
//! `node start --provide roots`. Also: identity survives a restart, clean SIGTERM, bad bootstrap addresses.

mod mesh_util;

use std::time::Duration;

use mesh_util::*;

#[test]
fn ten_nodes_dht_bitswap_and_gossip() {
    let hub = NodeProc::start(&[]);
    let mut nodes = vec![hub];
    for _ in 1..10 {
        let boot = nodes[0].addr.clone();
        nodes.push(NodeProc::start(&[&boot]));
    }
    // Every node joins the mesh.
    for (i, n) in nodes.iter().enumerate() {
        assert!(
            eventually(Duration::from_secs(20), || {
                n.cli_json(&["swarm", "peers"])["Peers"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())
            }),
            "node {i} has no peers"
        );
    }
    // Subscribe all ten before publishing.
    let topic = "jobmesh-test-ten";
    let subs: Vec<_> = nodes.iter().map(|n| subscribe(&n.api, topic)).collect();

    // A 3 MiB file (13 blocks) added on node 1 (index 0 is the hub).
    let data_dir = tempfile::tempdir().unwrap();
    let file = tmp_file(data_dir.path(), "f.bin", 3 * 1024 * 1024 + 5, 42);
    let cid = String::from_utf8(nodes[1].cli(&["add", file.to_str().unwrap()]))
        .unwrap()
        .trim()
        .to_string();
    assert!(cid.starts_with("bafy"), "{cid}");

    // Node 10 finds node 1 as a provider on the DHT…
    let provider = nodes[1].peer_id.clone();
    assert!(
        eventually(Duration::from_secs(20), || finds_provider(
            &nodes[9], &cid, &provider, 5
        )),
        "node 10 never found node 1 as a provider of {cid}"
    );
    // …of a leaf too, not only of the root: by default (`--provide all`) every block added is provided.
    let leaf = first_kubo_leaf(&file);
    assert!(
        eventually(Duration::from_secs(20), || finds_provider(
            &nodes[9], &leaf, &provider, 5
        )),
        "node 10 never found node 1 as a provider of the leaf {leaf} of {cid}"
    );
    // …and fetches the file by bitswap through `jobmesh cat`.
    let got = nodes[9].cli(&["cat", &cid]);
    assert_eq!(got, std::fs::read(&file).unwrap(), "fetched bytes differ");
    // It was really fetched over the network: node 10 is now connected to node 1.
    let peers = nodes[9].cli_json(&["swarm", "peers"]);
    assert!(peers["Peers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["Peer"].as_str() == Some(&provider)));

    // Gossip from node 3 reaches all ten (the publisher's own subscriber excepted: gossipsub does not echo).
    let payload = "hello from node three";
    let hex: String = payload.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        eventually(Duration::from_secs(20), || {
            post(
                &nodes[3].api,
                &format!("pubsub/pub?arg={topic}"),
                payload.as_bytes(),
                Duration::from_secs(5),
            )
            .0 == 200
        }),
        "node 3 could not publish"
    );
    for (i, rx) in subs.iter().enumerate() {
        if i == 3 {
            continue;
        }
        assert!(
            wait_for(rx, &hex, Duration::from_secs(20)),
            "node {} never got the gossip message",
            i + 1
        );
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        assert!(n.stop(), "node {i} did not stop cleanly on SIGTERM");
    }
}

#[test]
fn identity_and_data_survive_a_restart() {
    let mut n = NodeProc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = tmp_file(dir.path(), "a.bin", 600_000, 3);
    let cid = String::from_utf8(n.cli(&["add", file.to_str().unwrap()]))
        .unwrap()
        .trim()
        .to_string();
    let id_running = n.cli_json(&["id"]);
    assert!(n.stop(), "clean stop");
    assert!(
        !n.home().join("api").exists(),
        "the api file is removed at shutdown"
    );
    // Offline: the same id, and the store opens directly again.
    let id_offline = n.cli_json(&["id"]);
    assert_eq!(id_running["ID"], id_offline["ID"]);
    assert_eq!(n.cli(&["cat", &cid]), std::fs::read(&file).unwrap());
    // Restarted on the same data dir: same PeerId, same content.
    let home = std::mem::replace(&mut n.home, tempfile::tempdir().unwrap());
    drop(n);
    let mut again = NodeProc::start_in(home, "/ip4/127.0.0.1/tcp/0", &[], &[]);
    assert_eq!(again.peer_id, id_running["ID"].as_str().unwrap());
    assert_eq!(again.cli(&["cat", &cid]), std::fs::read(&file).unwrap());
    assert!(again.stop());
}

#[test]
fn bad_and_unreachable_bootstrap_addresses() {
    let home = tempfile::tempdir().unwrap();
    for bad in [
        "not-a-multiaddr",
        "/ip4/127.0.0.1/udp/4001",
        "/ip4/999.1.1.1/tcp/1",
    ] {
        let out = std::process::Command::new(jobmesh_tests::jobmesh_bin())
            .arg("--data-dir")
            .arg(home.path())
            .args([
                "node",
                "start",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
                "127.0.0.1:0",
                "--bootstrap",
                bad,
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} was accepted");
        assert!(
            err.starts_with("error: invalid bootstrap address"),
            "{bad}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    // An unreachable bootstrap peer (a closed loopback port): the node keeps running and retries.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut n = NodeProc::start(&[&format!("/ip4/127.0.0.1/tcp/{port}")]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(n.child.try_wait().unwrap().is_none(), "the node exited");
    assert_eq!(
        n.cli_json(&["swarm", "peers"])["Peers"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The peer comes up later on that port: the retry connects to it.
    let mut late = None;
    for _ in 0..3 {
        // Bind the same port by starting a node there.
        let listen = format!("/ip4/127.0.0.1/tcp/{port}");
        if let Ok(node) = NodeProc::try_start_in(tempfile::tempdir().unwrap(), &listen, &[], &[]) {
            late = Some(node);
            break;
        }
    }
    let late = late.expect("could not start the late peer on the freed port");
    assert!(
        eventually(Duration::from_secs(30), || {
            n.cli_json(&["swarm", "peers"])["Peers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["Peer"].as_str() == Some(&late.peer_id))
        }),
        "the node never reached the bootstrap peer once it came up"
    );
    assert!(n.stop());
}

#[test]
fn id_swarm_connect_findprovs_and_fetch_timeout_through_the_cli() {
    // `a` provides only the roots of what it adds (`--provide roots`).
    let a = NodeProc::start_with(&[], &["--provide", "roots"]);
    let b = NodeProc::start_with(&[], &["--fetch-timeout", "2"]);
    // `jobmesh id` of a running node: its PeerId and listen addresses.
    let id = a.cli_json(&["id"]);
    assert_eq!(id["ID"].as_str(), Some(a.peer_id.as_str()));
    assert!(id["Addresses"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x.as_str() == Some(&a.addr)));
    // `swarm connect` then `swarm peers`.
    let v = b.cli_json(&["swarm", "connect", &a.addr]);
    assert_eq!(v["Peer"].as_str(), Some(a.peer_id.as_str()));
    let peers = b.cli_json(&["swarm", "peers"]);
    assert!(peers["Peers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["Peer"].as_str() == Some(&a.peer_id)));
    // Bad addresses: one clear line each.
    for (bad, says) in [
        ("not-a-multiaddr", "invalid multiaddr"),
        ("/ip4/127.0.0.1/udp/1", "expected /ip4/<ip>/tcp/<port>"),
    ] {
        let err = b.cli_fail(&["swarm", "connect", bad]);
        assert!(
            err.starts_with("error: ") && err.contains(says),
            "{bad}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    // A 1 MiB file added on `a` (kubo profile: 4 leaves + root): `b` finds `a` as the provider of the root,
    // but not of a leaf, which `--provide roots` does not announce.
    let files = tempfile::tempdir().unwrap();
    let file = tmp_file(files.path(), "roots.bin", 1024 * 1024, 78);
    let root = String::from_utf8(a.cli(&["add", file.to_str().unwrap()]))
        .unwrap()
        .trim()
        .to_string();
    let leaf = first_kubo_leaf(&file);
    let leaf_bytes = jobmesh_store::parse_cid(&leaf).unwrap().to_bytes();
    let (status, root_block) = post(
        &a.api,
        &format!("block/get?arg={root}"),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(status, 200);
    assert!(
        root_block
            .windows(leaf_bytes.len())
            .any(|w| w == leaf_bytes),
        "{leaf} is not a link of {root}"
    );
    assert!(
        eventually(Duration::from_secs(20), || finds_provider(
            &b, &root, &a.peer_id, 5
        )),
        "b never found a as a provider of the root {root}"
    );
    assert!(
        !finds_provider(&b, &leaf, &a.peer_id, 3),
        "with --provide roots, a leaf was provided"
    );

    // Content nobody in the mesh has: no provider, and `cat` gives up after --fetch-timeout.
    let offline = tempfile::tempdir().unwrap();
    let file = tmp_file(offline.path(), "absent.bin", 300_000, 77);
    let mut add = std::process::Command::new(jobmesh_tests::jobmesh_bin());
    add.arg("--data-dir")
        .arg(offline.path())
        .args(["add", file.to_str().unwrap()]);
    let absent =
        String::from_utf8(jobmesh_tests::run_ok(&mut add, Duration::from_secs(30)).unwrap())
            .unwrap()
            .trim()
            .to_string();
    let v = b.cli_json(&["dht", "findprovs", &absent, "--timeout", "2"]);
    assert_eq!(v["Providers"].as_array().map(Vec::len), Some(0), "{v}");
    let t0 = std::time::Instant::now();
    let err = b.cli_fail(&["cat", &absent]);
    let took = t0.elapsed();
    assert!(err.contains("timed out after 2."), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(took < Duration::from_secs(15), "cat took {took:?}");
}
