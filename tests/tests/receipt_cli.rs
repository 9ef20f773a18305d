//! Receipts through the `jobmesh` CLI with separate node processes on 127.0.0.1 (`docs/protocol.md`,
//! "Receipts"): a job's receipt printed on the requester and verified on a third node that never saw the job
//! (exit 0), bad input refused with one line and exit 2, and the dashboard's verify route refusing a
//! cross-origin request without fetching or running anything. (The forged-majority case, which needs colluding
//! workers, runs on an in-process loopback mesh in `receipts.rs`.)

mod mesh_util;

use std::time::Duration;

use mesh_util::{example, http, wait_peers, NodeProc};

const LIMIT: Duration = Duration::from_secs(30);

/// `jobmesh --data-dir <node> args…`: (exit code, stdout, stderr).
fn jobmesh(node: &NodeProc, args: &[&str]) -> (i32, String, String) {
    let out = jobmesh_tests::jobmesh_in(node.home(), args, Duration::from_secs(120));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The node's stored block count (what a verification that got through would change).
fn blocks(node: &NodeProc) -> u64 {
    let (status, _, body) = http(&node.api, "GET", "/api/v0/repo/stat", &[], b"", LIMIT);
    assert_eq!(status, 200);
    let stat: serde_json::Value = serde_json::from_slice(&body).unwrap();
    stat["NumObjects"].as_u64().unwrap()
}

#[test]
fn a_receipt_is_verified_on_a_third_node_and_bad_input_exits_2() {
    let requester = NodeProc::start(&[]);
    let _workers: Vec<NodeProc> = (0..2)
        .map(|_| NodeProc::start_with(&[&requester.addr], &["--worker"]))
        .collect();
    let third = NodeProc::start(&[&requester.addr]);
    wait_peers(&requester, 3);

    let s = requester.submit_job(&example("echo.js"), &example("echo.input.txt"), 2, 0);
    assert_eq!(s["phase"], "verified", "{s}");
    let id = s["job_id"].as_str().unwrap();
    let cid = String::from_utf8(requester.cli(&["job", "receipt", &id[..12]])).unwrap();
    let cid = cid.trim();
    assert!(cid.starts_with("bafyrei"), "{cid}");
    assert_eq!(s["receipt"], cid, "the final status carries the receipt");
    let status = requester.cli_json(&["job", "status", id]);
    assert_eq!(status["receipt"], cid);
    let decoded = requester.cli_json(&["job", "receipt", id]);
    assert_eq!(decoded["Receipt"], cid);
    assert_eq!(decoded["Decoded"]["result"]["output"], s["output_cid"]);
    assert_eq!(
        decoded["Decoded"]["attestations"].as_array().unwrap().len(),
        2
    );

    // A cross-origin page cannot make the third node verify (fetch blocks, burn CPU): refused, nothing fetched.
    let before = blocks(&third);
    let path = format!("/api/v0/job/verify?arg={cid}");
    for headers in [
        &[("Origin", "http://evil.example")][..],
        &[
            ("Origin", "http://evil.example"),
            ("Content-Type", "text/plain"),
        ][..],
        &[("Sec-Fetch-Site", "cross-site"), ("Content-Type", "")][..],
    ] {
        let (status, _, body) = http(&third.api, "POST", &path, headers, b"", LIMIT);
        assert_eq!(
            status,
            403,
            "{headers:?}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        blocks(&third),
        before,
        "a refused verification fetched blocks"
    );

    // Verified on the third node, which never saw the job: exit 0, the signers named.
    let (code, out, err) = jobmesh(&third, &["job", "verify", cid]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("MATCHES"), "{out}");
    for worker in s["agreeing"].as_array().unwrap() {
        assert!(out.contains(worker.as_str().unwrap()), "{out}");
    }
    assert!(
        blocks(&third) > before,
        "the receipt, code and input were fetched"
    );
    let report: serde_json::Value =
        serde_json::from_str(&jobmesh(&third, &["--json", "job", "verify", cid]).1).unwrap();
    assert_eq!(report["matches"], true);
    assert_eq!(report["here"]["fuel_used"], s["fuel_used"]);

    // Bad input: one line, exit 2.
    let input = status["input"].as_str().unwrap();
    let missing = jobmesh_store::cid_of(
        jobmesh_store::DAG_CBOR,
        jobmesh_store::HashAlg::Sha2_256,
        b"nobody has this",
    )
    .to_string();
    for (args, want) in [
        (vec!["job", "verify", "not-a-cid"], "receipt:"),
        (vec!["job", "verify", input], "not a jobmesh receipt"),
        (
            vec!["job", "verify", &missing, "--timeout", "2s"],
            "cannot fetch the receipt",
        ),
    ] {
        let (code, out, err) = jobmesh(&third, &args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A job that has no receipt yet is an error too (exit 1, one line).
    let (code, _, err) = jobmesh(&requester, &["job", "receipt", &"0".repeat(64)]);
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
