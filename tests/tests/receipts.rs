//! Receipts checked on a node that is not the requester (`docs/protocol.md`, "Receipts"), on an in-process
//! loopback mesh of real nodes: an honest job's receipt matches when re-run elsewhere; a receipt for an output
//! forged by a colluding majority is caught, the forgers named; bad input (a broken signature, a missing block,
//! an engine this node does not run, a block that is not a receipt) is a typed error and is never recorded as
//! verified.

use std::time::Duration;

use jobmesh_node::market::receipt::{to_dag_cbor, JobReceipt, ReceiptBody, ReceiptError};
use jobmesh_node::market::receipt_verify::VerifyError;
use jobmesh_node::market::{Conduct, Market, WorkerPolicy};
use jobmesh_p2p::Transport;
use jobmesh_simnet::Cluster;
use jobmesh_store::unixfs::{file_cid, Profile};
use jobmesh_store::{parse_cid, Cid};

const LIMIT: Duration = Duration::from_secs(10);

fn worker(conduct: Conduct) -> WorkerPolicy {
    WorkerPolicy {
        max_concurrent: 4,
        conduct,
        ..WorkerPolicy::default()
    }
}

fn echo() -> String {
    std::fs::read_to_string(jobmesh_tests::workspace_root().join("examples/echo.js")).unwrap()
}

/// A cluster of a requester (0), a bystander that verifies (1) and three workers of `conduct`; runs one echo
/// job of `input` on the requester and returns the cluster, the receipt's CID and the job's status.
async fn one_job(conduct: Conduct, input: &str) -> (Cluster, Cid, jobmesh_node::market::JobStatus) {
    let roles = [
        None,
        None,
        Some(worker(conduct)),
        Some(worker(conduct)),
        Some(worker(conduct)),
    ];
    let cluster = Cluster::start(&roles, Transport::Tcp).await.unwrap();
    let req = cluster.js_job(0, &echo(), input.as_bytes(), 3).unwrap();
    let requester = &cluster.members[0].market;
    let id = requester.submit(req).await.unwrap();
    let s = requester.wait(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(s.phase, "verified", "{}", s.reason);
    let receipt = parse_cid(s.receipt.as_deref().expect("a verified job has a receipt")).unwrap();
    (cluster, receipt, s)
}

/// Stores `receipt` (re-encoded) in `market`'s store; returns its CID.
fn put(market: &Market, receipt: &JobReceipt) -> Cid {
    let cid = receipt.cid();
    market.node().store().put(&cid, &receipt.encode()).unwrap();
    cid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_receipt_matches_on_another_node_and_bad_input_is_refused() {
    let (cluster, cid, s) = one_job(Conduct::Honest, "receipt me\n").await;
    let requester = &cluster.members[0].market;
    let bystander = &cluster.members[1].market;
    assert!(
        bystander.node().store().get(&cid).unwrap().is_none(),
        "fetched, not already there"
    );

    let report = bystander.verify_receipt(cid, LIMIT).await.unwrap();
    assert!(report.matches, "{report:?}");
    assert!(report.mismatches.is_empty());
    assert_eq!(report.here.output, s.output.clone().unwrap());
    assert_eq!(report.here.fuel_used, s.fuel_used.unwrap());
    assert_eq!(
        report.requester,
        cluster.members[0].node.peer_id().to_string()
    );
    let mut signers = report.signers.clone();
    signers.sort();
    let mut agreeing = s.agreeing.clone();
    agreeing.sort();
    assert_eq!(signers, agreeing, "every agreeing worker signed");
    assert!(
        report.receipt_bytes > 0 && report.receipt_bytes < 8 * 1024,
        "{}",
        report.receipt_bytes
    );
    assert_eq!(
        bystander.verified_receipt(&cid).unwrap().unwrap().receipt,
        cid.to_string()
    );

    let original = requester.receipt(cid, LIMIT).await.unwrap();
    // A broken acceptance signature.
    let mut bad_sig = original.clone();
    bad_sig.acceptance[0] ^= 1;
    let bad_sig = put(requester, &bad_sig);
    // A spec this node's engine cannot reproduce (signed correctly: only the engine is wrong).
    let key = jobmesh_p2p::identity::Keypair::generate_ed25519();
    let mut spec = original.body.spec.clone();
    spec.engine = "wasmtime-1.0.0;some-other-flags".into();
    let body = ReceiptBody {
        job: spec.id(),
        spec,
        requester: key.public().to_peer_id(),
        result: None,
        attestations: Vec::new(),
        ..original.body.clone()
    };
    let other_engine = put(requester, &JobReceipt::sign(&key, body));
    // A DAG-CBOR block that is not a receipt, and a raw block (the job's input).
    let not_receipt = to_dag_cbor(&original.body.spec);
    let not_receipt_cid = jobmesh_node::market::receipt::cid_of_block(&not_receipt);
    requester
        .node()
        .store()
        .put(&not_receipt_cid, &not_receipt)
        .unwrap();
    let input = file_cid(b"receipt me\n", &Profile::KUBO).unwrap();
    // A block nobody has.
    let missing = jobmesh_node::market::receipt::cid_of_block(b"\xa0");

    let check = |r: Result<_, VerifyError>, what: &str| -> VerifyError {
        match r {
            Ok(report) => panic!("{what}: verified {report:?}"),
            Err(e) => e,
        }
    };
    let mut errors = Vec::new();
    let e = check(
        bystander.verify_receipt(bad_sig, LIMIT).await,
        "bad signature",
    );
    assert!(
        matches!(
            e,
            VerifyError::Receipt(ReceiptError::BadSignature {
                part: "acceptance",
                ..
            })
        ),
        "{e}"
    );
    errors.push((bad_sig, e));
    let e = check(
        bystander.verify_receipt(other_engine, LIMIT).await,
        "other engine",
    );
    assert!(matches!(e, VerifyError::Engine { .. }), "{e}");
    assert!(e.to_string().contains("wasmtime-1.0.0"), "{e}");
    errors.push((other_engine, e));
    let e = check(
        bystander.verify_receipt(not_receipt_cid, LIMIT).await,
        "not a receipt",
    );
    assert!(
        matches!(e, VerifyError::Receipt(ReceiptError::NotAReceipt(_))),
        "{e}"
    );
    errors.push((not_receipt_cid, e));
    let e = check(bystander.verify_receipt(input, LIMIT).await, "raw block");
    assert!(
        matches!(e, VerifyError::Receipt(ReceiptError::NotAReceipt(_))),
        "{e}"
    );
    errors.push((input, e));
    let started = std::time::Instant::now();
    let e = check(
        bystander
            .verify_receipt(missing, Duration::from_secs(2))
            .await,
        "missing block",
    );
    assert!(
        matches!(
            e,
            VerifyError::Fetch {
                what: "receipt",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    errors.push((missing, e));
    for (cid, e) in &errors {
        assert!(
            bystander.verified_receipt(cid).unwrap().is_none(),
            "{e}: recorded as verified"
        );
        assert!(!e.to_string().contains('\n'), "one line: {e}");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_for_an_output_forged_by_a_colluding_majority_is_caught_with_the_forgers_named() {
    // A brand-new requester whose only workers collude: the forged output is verified on the requester
    // (docs/protocol.md, "Cold start"), and its receipt carries the forgers' valid signatures.
    let input = "the truth\n";
    let (cluster, cid, s) = one_job(Conduct::WrongOutput, input).await;
    let forged = file_cid(format!("{input} (forged)").as_bytes(), &Profile::KUBO).unwrap();
    let honest = file_cid(input.as_bytes(), &Profile::KUBO).unwrap();
    assert_eq!(s.output, Some(forged.to_string()), "captured");
    let forgers: Vec<String> = cluster.members[2..]
        .iter()
        .map(|m| m.node.peer_id().to_string())
        .collect();

    let bystander = &cluster.members[1].market;
    let report = bystander.verify_receipt(cid, LIMIT).await.unwrap();
    assert!(!report.matches, "{report:?}");
    assert_eq!(report.claimed.output, forged.to_string());
    assert_eq!(report.here.output, honest.to_string());
    assert!(report.signers.len() >= 2);
    assert!(
        report.signers.iter().all(|w| forgers.contains(w)),
        "{:?}",
        report.signers
    );
    let output_line = report
        .mismatches
        .iter()
        .find(|m| m.starts_with("output"))
        .expect("the output differs");
    for signer in &report.signers {
        assert!(output_line.contains(signer.as_str()), "{output_line}");
    }
    assert!(
        bystander.verified_receipt(&cid).unwrap().is_none(),
        "a mismatch is not recorded as verified"
    );
    cluster.shutdown().await;
}
