use libp2p_identity::Keypair;

use super::*;
use crate::messages::{commitment_hash, seal, Commitment, RunDetail};
use crate::tally::Verdict;
use crate::testkit::{cid, spec};

/// A worker's sealed commitment and reveal of `output` for `job`.
fn attest(key: &Keypair, job: JobId, output: Cid, fuel: u64) -> Attestation {
    let worker = key.public().to_peer_id();
    let salt = *blake3::hash(&worker.to_bytes()).as_bytes();
    let detail = RunDetail::default();
    let commitment = commitment_hash(&output, fuel, "ok", &detail, &salt, &worker);
    Attestation {
        worker,
        commitment: seal(
            key,
            &Request::Commitment(Commitment {
                job_id: job,
                commitment,
            }),
        ),
        reveal: seal(
            key,
            &Response::Reveal(Reveal {
                job_id: job,
                output,
                fuel_used: fuel,
                status: "ok".into(),
                salt,
                detail: Box::new(detail),
            }),
        ),
    }
}

/// A verified 3-replica job whose verdict is `cid(b"out")` at 77 fuel, agreed by `agreeing`.
fn verified(agreeing: &[PeerId]) -> RequesterJob {
    let mut job = RequesterJob::new(spec(3, false), 1, 2);
    job.phase = Phase::Verified;
    job.reason = "3 of 3 replicas agreed".into();
    job.verdict = Some(Verdict {
        output: cid(b"out"),
        fuel_used: 77,
        status: "ok".into(),
        agreeing: agreeing.to_vec(),
        disagreeing: Vec::new(),
        detail: RunDetail::default(),
    });
    job
}

/// Three honest workers, the requester's key, and the signed receipt of their job.
fn honest() -> (Vec<Keypair>, Keypair, JobReceipt) {
    let workers: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let ids: Vec<PeerId> = workers.iter().map(|k| k.public().to_peer_id()).collect();
    let job = verified(&ids);
    let evidence = workers
        .iter()
        .map(|k| attest(k, job.id, cid(b"out"), 77))
        .collect();
    let requester = Keypair::generate_ed25519();
    let body = body_of(&job, requester.public().to_peer_id(), evidence, 5);
    (
        workers,
        requester.clone(),
        JobReceipt::sign(&requester, body),
    )
}

#[test]
fn a_receipt_is_a_canonical_dag_cbor_block_that_checks_and_names_its_signers() {
    let (workers, requester, receipt) = honest();
    let bytes = receipt.encode();
    assert!(bytes.len() < 4096, "{}", bytes.len());
    let cid = receipt.cid();
    assert_eq!(cid.codec(), 0x71);
    assert_eq!(cid.hash().code(), 0x12);
    assert!(cid.to_string().starts_with("bafyrei"), "{cid}");
    let back = JobReceipt::decode(&bytes).unwrap();
    assert_eq!(back, receipt);
    assert_eq!(back.encode(), bytes, "re-encoding is byte-identical");
    let signers = back.check().unwrap();
    let expected: Vec<PeerId> = workers.iter().map(|k| k.public().to_peer_id()).collect();
    assert_eq!(signers, expected);
    assert_eq!(back.body.requester, requester.public().to_peer_id());
    let result = back.body.result.unwrap();
    assert_eq!(
        (result.output, result.fuel_used),
        (crate::testkit::cid(b"out"), 77)
    );
}

#[test]
fn dag_cbor_keys_are_sorted_by_length_then_bytes_and_anything_else_is_refused() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Keys {
        zz: u8,
        b: u8,
        a: u8,
    }
    let value = Keys { zz: 1, b: 2, a: 3 };
    let bytes = to_dag_cbor(&value);
    // {"a": 3, "b": 2, "zz": 1}
    assert_eq!(
        bytes,
        [0xa3, 0x61, b'a', 3, 0x61, b'b', 2, 0x62, b'z', b'z', 1]
    );
    assert_eq!(from_dag_cbor::<Keys>(&bytes).unwrap(), value);
    // Field order (not canonical) and trailing bytes are refused.
    let mut unsorted = Vec::new();
    ciborium::into_writer(&value, &mut unsorted).unwrap();
    assert!(matches!(
        from_dag_cbor::<Keys>(&unsorted),
        Err(ReceiptError::NotAReceipt(_))
    ));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        from_dag_cbor::<Keys>(&trailing),
        Err(ReceiptError::NotAReceipt(_))
    ));
}

#[test]
fn every_signature_is_checked_and_the_bad_one_is_named() {
    let (workers, requester, receipt) = honest();
    // The requester's acceptance, broken.
    let mut bad = receipt.clone();
    bad.acceptance[3] ^= 1;
    assert_eq!(
        bad.check(),
        Err(ReceiptError::BadSignature {
            signer: requester.public().to_peer_id().to_string(),
            part: "acceptance"
        })
    );
    // A body changed after signing (more fuel claimed): the acceptance no longer covers it.
    let mut changed = receipt.clone();
    changed.body.finished_ms += 1;
    assert!(matches!(
        changed.check(),
        Err(ReceiptError::BadSignature {
            part: "acceptance",
            ..
        })
    ));
    // A worker's reveal with a broken signature, re-signed by the requester: the worker is named.
    let mut body = receipt.body.clone();
    let last = body.attestations[1].reveal.len() - 1;
    body.attestations[1].reveal[last] ^= 1;
    let forged = JobReceipt::sign(&requester, body);
    assert_eq!(
        forged.check(),
        Err(ReceiptError::BadSignature {
            signer: workers[1].public().to_peer_id().to_string(),
            part: "reveal"
        })
    );
    // A worker's messages sealed by someone else.
    let mut body = receipt.body.clone();
    let impostor = attest(&Keypair::generate_ed25519(), body.job, cid(b"out"), 77);
    body.attestations[0].commitment = impostor.commitment;
    assert!(matches!(
        JobReceipt::sign(&requester, body).check(),
        Err(ReceiptError::Inconsistent(_))
    ));
}

#[test]
fn a_result_the_signers_did_not_reveal_or_too_few_signers_are_refused() {
    let (_, requester, receipt) = honest();
    let mut body = receipt.body.clone();
    body.result.as_mut().unwrap().fuel_used = 78;
    let err = JobReceipt::sign(&requester, body).check().unwrap_err();
    assert!(
        matches!(err, ReceiptError::Inconsistent(ref why) if why.contains("another result")),
        "{err}"
    );
    let mut body = receipt.body.clone();
    body.attestations.truncate(1);
    let err = JobReceipt::sign(&requester, body).check().unwrap_err();
    assert!(
        matches!(err, ReceiptError::Inconsistent(ref why) if why.contains("no majority")),
        "{err}"
    );
}

#[test]
fn the_builder_keeps_only_evidence_that_supports_the_verdict() {
    let keys: Vec<Keypair> = (0..4).map(|_| Keypair::generate_ed25519()).collect();
    let ids: Vec<PeerId> = keys.iter().map(|k| k.public().to_peer_id()).collect();
    let job = verified(&ids[..3]);
    let evidence = vec![
        attest(&keys[0], job.id, cid(b"out"), 77),
        attest(&keys[1], job.id, cid(b"out"), 77),
        // In the verdict, but its messages reveal something else.
        attest(&keys[2], job.id, cid(b"other"), 77),
        // Agrees, but is not in the verdict.
        attest(&keys[3], job.id, cid(b"out"), 77),
    ];
    let requester = Keypair::generate_ed25519();
    let receipt = JobReceipt::sign(
        &requester,
        body_of(&job, requester.public().to_peer_id(), evidence, 1),
    );
    assert_eq!(receipt.check().unwrap(), ids[..2].to_vec());
    // A failed job: no result, no attestations, still signed.
    let mut failed = RequesterJob::new(spec(3, false), 1, 2);
    failed.phase = Phase::Expired;
    failed.reason = "x".repeat(10_000);
    let receipt = JobReceipt::sign(
        &requester,
        body_of(&failed, requester.public().to_peer_id(), Vec::new(), 1),
    );
    assert!(receipt.check().unwrap().is_empty());
    assert_eq!(receipt.body.reason.len(), MAX_REASON);
    assert_eq!(receipt.body.phase, "expired");
}

#[test]
fn blocks_that_are_not_receipts_are_typed_errors() {
    assert!(matches!(
        JobReceipt::decode(&vec![0u8; MAX_RECEIPT_BYTES + 1]),
        Err(ReceiptError::TooLarge { .. })
    ));
    assert!(matches!(
        JobReceipt::decode(b"{\"hello\": 1}"),
        Err(ReceiptError::NotAReceipt(_))
    ));
    assert!(matches!(
        JobReceipt::decode(&to_dag_cbor(&spec(3, false))),
        Err(ReceiptError::NotAReceipt(_))
    ));
    let (_, requester, receipt) = honest();
    let mut body = receipt.body;
    body.version = 9;
    let other = JobReceipt::sign(&requester, body).encode();
    assert!(
        matches!(JobReceipt::decode(&other), Err(ReceiptError::NotAReceipt(ref why)) if why.contains("version 9"))
    );
}
