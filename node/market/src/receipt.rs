//! Job receipts (`docs/protocol.md`, "Receipts"): what a requester publishes about every finished job so that
//! anyone can check it — the job's spec, its accepted result, the agreeing workers' commitments and reveals
//! exactly as they signed them on the wire, and the requester's signed acceptance. A receipt is one DAG-CBOR
//! block (codec 0x71, sha2-256, so kubo names it with the same CID), fetched by CID like any other block.
//!
//! Pure data and signature checks: no network, no disk, no job run (`receipt_store` keeps the evidence and
//! stores receipts, `receipt_verify` re-runs them).

use cid::Cid;
use libp2p_identity::{Keypair, PeerId, PublicKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::messages::{
    open, reveal_matches, JobId, JobSpec, MessageError, Request, Response, Reveal, MAX_DIRECT_BYTES,
};
use crate::requester::{Phase, RequesterJob};

/// Version of the receipt format defined here.
pub const RECEIPT_VERSION: u16 = 1;
/// Multicodec of DAG-CBOR, the codec of a receipt's block.
pub use jobmesh_store::DAG_CBOR;
/// Largest receipt block accepted or produced, in bytes: 15 full reveals (16 KiB of stderr and 4 KiB of
/// message each) and their commitments fit with room to spare.
pub const MAX_RECEIPT_BYTES: usize = 512 * 1024;
/// Longest reason kept in a receipt, in bytes.
pub const MAX_REASON: usize = 512;
/// Domain separator of the requester's acceptance signature.
const ACCEPT_DOMAIN: &[u8] = b"jobmesh/1 receipt ";

/// Why a receipt was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    /// The block is larger than [`MAX_RECEIPT_BYTES`].
    #[error("receipt of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The block is not a receipt (another codec, not canonical DAG-CBOR, missing fields, another version).
    #[error("not a jobmesh receipt: {0}")]
    NotAReceipt(String),
    /// A signature does not verify: the requester's acceptance, or a worker's commitment or reveal.
    #[error("bad signature on the {part} of {signer}")]
    BadSignature {
        /// Who should have signed it.
        signer: String,
        /// What: `acceptance`, `commitment` or `reveal`.
        part: &'static str,
    },
    /// Well signed, but the parts do not agree (a reveal that does not open its commitment, another job, a
    /// result the reveals do not support, too few signers).
    #[error("inconsistent receipt: {0}")]
    Inconsistent(String),
}

/// The accepted result of a job, as its agreeing workers revealed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptResult {
    /// The output file (UnixFS, kubo's CIDv1 profile).
    #[serde(with = "crate::wire_ids::cid")]
    pub output: Cid,
    /// Fuel every agreeing replica consumed.
    pub fuel_used: u64,
    /// The run's status name (`ok`, `out_of_fuel`, …).
    pub status: String,
}

/// One agreeing worker's evidence: its signed messages, byte for byte as they arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The worker (its ed25519 public key is inside its PeerId and inside each envelope).
    #[serde(with = "crate::wire_ids::peer")]
    pub worker: PeerId,
    /// The sealed `Request::Commitment` it sent.
    #[serde(with = "serde_bytes")]
    pub commitment: Vec<u8>,
    /// The sealed `Response::Reveal` it answered.
    #[serde(with = "serde_bytes")]
    pub reveal: Vec<u8>,
}

/// What the requester signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// [`RECEIPT_VERSION`].
    pub version: u16,
    /// The job (the id of `spec`).
    pub job: JobId,
    /// Everything that determines the output: code, plugin, input, limits, engine.
    pub spec: JobSpec,
    /// Who asked and accepted.
    #[serde(with = "crate::wire_ids::peer")]
    pub requester: PeerId,
    /// The job's terminal phase (`verified`, `failed`, `cancelled`, `expired`).
    pub phase: String,
    /// Why it ended there (at most [`MAX_REASON`] bytes).
    pub reason: String,
    /// The accepted result (verified jobs only).
    pub result: Option<ReceiptResult>,
    /// The agreeing workers' signed commitments and reveals (verified jobs only).
    pub attestations: Vec<Attestation>,
    /// When the requester finished the job (unix ms).
    pub finished_ms: u64,
}

/// A receipt: the body, the requester's public key (protobuf) and its signature over the body's digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReceipt {
    /// What is accepted.
    pub body: ReceiptBody,
    /// The requester's public key, protobuf-encoded.
    #[serde(with = "serde_bytes")]
    pub requester_key: Vec<u8>,
    /// ed25519 signature over `"jobmesh/1 receipt " ‖ blake3(DAG-CBOR(body))`.
    #[serde(with = "serde_bytes")]
    pub acceptance: Vec<u8>,
}

impl ReceiptBody {
    /// The digest the requester signs: blake3 of the body's DAG-CBOR encoding.
    pub fn digest(&self) -> [u8; 32] {
        *blake3::hash(&to_dag_cbor(self)).as_bytes()
    }
}

fn acceptance_input(digest: &[u8; 32]) -> Vec<u8> {
    [ACCEPT_DOMAIN, digest.as_slice()].concat()
}

impl JobReceipt {
    /// Signs `body` with the requester's key.
    pub fn sign(key: &Keypair, body: ReceiptBody) -> JobReceipt {
        let acceptance = key
            .sign(&acceptance_input(&body.digest()))
            .expect("ed25519 signing does not fail");
        JobReceipt {
            body,
            requester_key: key.public().encode_protobuf(),
            acceptance,
        }
    }

    /// The block: canonical DAG-CBOR.
    pub fn encode(&self) -> Vec<u8> {
        to_dag_cbor(self)
    }

    /// The block's CID (CIDv1, DAG-CBOR, sha2-256).
    pub fn cid(&self) -> Cid {
        cid_of_block(&self.encode())
    }

    /// Decodes a block: bounded, canonical DAG-CBOR only. Signatures are not checked here ([`JobReceipt::check`]).
    pub fn decode(bytes: &[u8]) -> Result<JobReceipt, ReceiptError> {
        if bytes.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::TooLarge {
                size: bytes.len(),
                limit: MAX_RECEIPT_BYTES,
            });
        }
        let receipt: JobReceipt = from_dag_cbor(bytes)?;
        if receipt.body.version != RECEIPT_VERSION {
            return Err(ReceiptError::NotAReceipt(format!(
                "version {} (this node reads {RECEIPT_VERSION})",
                receipt.body.version
            )));
        }
        Ok(receipt)
    }

    /// Checks every signature and that the parts agree; returns the signing workers, in receipt order.
    pub fn check(&self) -> Result<Vec<PeerId>, ReceiptError> {
        let body = &self.body;
        let inconsistent = |why: String| Err(ReceiptError::Inconsistent(why));
        body.spec
            .validate()
            .map_err(|e| ReceiptError::NotAReceipt(format!("its job spec: {e}")))?;
        if body.spec.id() != body.job {
            return inconsistent("the job id is not the spec's".into());
        }
        self.check_acceptance()?;
        let mut signers = Vec::new();
        for a in &body.attestations {
            if signers.contains(&a.worker) {
                return inconsistent(format!("{} attests twice", a.worker));
            }
            let reveal = check_attestation(body, a)?;
            match &body.result {
                Some(r)
                    if (r.output, r.fuel_used, &r.status)
                        != (reveal.output, reveal.fuel_used, &reveal.status) =>
                {
                    return inconsistent(format!("{} revealed another result", a.worker))
                }
                None => return inconsistent("attestations without a result".into()),
                Some(_) => {}
            }
            signers.push(a.worker);
        }
        if body.result.is_some() && signers.len() * 2 <= usize::from(body.spec.replicas) {
            return inconsistent(format!(
                "{} signers are no majority of {} replicas",
                signers.len(),
                body.spec.replicas
            ));
        }
        Ok(signers)
    }

    fn check_acceptance(&self) -> Result<(), ReceiptError> {
        let bad = || ReceiptError::BadSignature {
            signer: self.body.requester.to_string(),
            part: "acceptance",
        };
        let key = PublicKey::try_decode_protobuf(&self.requester_key).map_err(|_| bad())?;
        if key.to_peer_id() != self.body.requester {
            return Err(ReceiptError::Inconsistent(
                "the acceptance key is not the requester's".into(),
            ));
        }
        if !key.verify(&acceptance_input(&self.body.digest()), &self.acceptance) {
            return Err(bad());
        }
        Ok(())
    }
}

impl JobReceipt {
    /// A readable JSON view (what `jobmesh job receipt --json` prints): CIDs and peers as text, the signed
    /// messages opened (their signatures are not checked here: [`JobReceipt::check`] does).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let b = &self.body;
        let s = &b.spec;
        let text = |c: &Option<Cid>| c.map(|c| c.to_string());
        let attestations: Vec<_> = b
            .attestations
            .iter()
            .map(|a| {
                let reveal = match open::<Response>(&a.reveal, MAX_DIRECT_BYTES) {
                    Ok((_, Response::Reveal(r))) => json!({
                        "output": r.output.to_string(),
                        "fuel_used": r.fuel_used,
                        "status": r.status,
                        "salt": hex(&r.salt),
                    }),
                    _ => serde_json::Value::Null,
                };
                json!({
                    "worker": a.worker.to_string(),
                    "commitment_bytes": a.commitment.len(),
                    "reveal": reveal,
                })
            })
            .collect();
        json!({
            "version": b.version,
            "job": b.job.to_hex(),
            "requester": b.requester.to_string(),
            "phase": b.phase,
            "reason": b.reason,
            "spec": {
                "kind": format!("{:?}", s.kind),
                "plugin": text(&s.plugin),
                "code": s.code.to_string(),
                "input": s.input.to_string(),
                "limits": {
                    "max_fuel": s.limits.max_fuel,
                    "memory_bytes": s.limits.memory_bytes,
                    "output_bytes": s.limits.output_bytes,
                    "stderr_bytes": s.limits.stderr_bytes,
                },
                "engine": s.engine,
                "replicas": s.replicas,
                "price_wei_per_mfuel": s.price_wei_per_mfuel,
                "verifier": text(&s.verifier),
                "nonce": s.nonce,
            },
            "result": b.result.as_ref().map(|r| json!({
                "output": r.output.to_string(),
                "fuel_used": r.fuel_used,
                "status": r.status,
            })),
            "attestations": attestations,
            "finished_ms": b.finished_ms,
            "acceptance": hex(&self.acceptance),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens one attestation: both envelopes signed by its worker, for this job, the reveal opening the commitment.
fn check_attestation(body: &ReceiptBody, a: &Attestation) -> Result<Reveal, ReceiptError> {
    let signed = |part: &'static str, e: MessageError| match e {
        MessageError::BadSignature => ReceiptError::BadSignature {
            signer: a.worker.to_string(),
            part,
        },
        e => ReceiptError::Inconsistent(format!("the {part} of {}: {e}", a.worker)),
    };
    let (c_signer, commitment) =
        open::<Request>(&a.commitment, MAX_DIRECT_BYTES).map_err(|e| signed("commitment", e))?;
    let (r_signer, reveal) =
        open::<Response>(&a.reveal, MAX_DIRECT_BYTES).map_err(|e| signed("reveal", e))?;
    if c_signer != a.worker || r_signer != a.worker {
        return Err(ReceiptError::Inconsistent(format!(
            "the messages of {} are signed by someone else",
            a.worker
        )));
    }
    let (Request::Commitment(c), Response::Reveal(r)) = (commitment, reveal) else {
        return Err(ReceiptError::Inconsistent(format!(
            "{}'s messages are not a commitment and a reveal",
            a.worker
        )));
    };
    if c.job_id != body.job || r.job_id != body.job {
        return Err(ReceiptError::Inconsistent(format!(
            "{}'s messages are for another job",
            a.worker
        )));
    }
    if !reveal_matches(&r, &c.commitment, &a.worker) {
        return Err(ReceiptError::Inconsistent(format!(
            "{}'s reveal does not open its commitment",
            a.worker
        )));
    }
    Ok(r)
}

/// The receipt body of a finished job: its result and the attestations of its agreeing workers among
/// `evidence` (worker, sealed commitment, sealed reveal). Evidence that does not check out, or does not support
/// the verdict, is left out; if the whole would exceed [`MAX_RECEIPT_BYTES`], only a strict majority is kept.
pub fn body_of(
    job: &RequesterJob,
    requester: PeerId,
    evidence: Vec<Attestation>,
    finished_ms: u64,
) -> ReceiptBody {
    let verdict = job
        .verdict
        .as_ref()
        .filter(|_| job.phase == Phase::Verified);
    let mut cut = MAX_REASON.min(job.reason.len());
    while !job.reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut body = ReceiptBody {
        version: RECEIPT_VERSION,
        job: job.id,
        spec: job.spec.clone(),
        requester,
        phase: job.phase.name().to_string(),
        reason: job.reason[..cut].to_string(),
        result: verdict.map(|v| ReceiptResult {
            output: v.output,
            fuel_used: v.fuel_used,
            status: v.status.clone(),
        }),
        attestations: Vec::new(),
        finished_ms,
    };
    let Some(verdict) = verdict else {
        return body;
    };
    body.attestations = evidence
        .into_iter()
        .filter(|a| verdict.agreeing.contains(&a.worker))
        .filter(|a| {
            check_attestation(&body, a).is_ok_and(|r| {
                (r.output, r.fuel_used, &r.status)
                    == (verdict.output, verdict.fuel_used, &verdict.status)
            })
        })
        .collect();
    // Room for the requester's key and signature, well under 1 KiB.
    while to_dag_cbor(&body).len() + 1024 > MAX_RECEIPT_BYTES
        && body.attestations.len() * 2 > usize::from(body.spec.replicas) + 1
    {
        body.attestations.pop();
    }
    body
}

/// The CID of a DAG-CBOR block (CIDv1, sha2-256).
pub fn cid_of_block(bytes: &[u8]) -> Cid {
    jobmesh_store::cid_of(DAG_CBOR, jobmesh_store::HashAlg::Sha2_256, bytes)
}

/// Encodes a value as canonical DAG-CBOR: definite lengths, shortest integers, map keys sorted by length then
/// bytes (the value's types use no floats and no CID links).
pub fn to_dag_cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut value =
        ciborium::Value::serialized(value).expect("receipt types serialize to CBOR values");
    canonicalize(&mut value);
    let mut out = Vec::new();
    ciborium::into_writer(&value, &mut out).expect("CBOR encoding into memory does not fail");
    out
}

/// Decodes canonical DAG-CBOR: bytes that are not exactly the canonical encoding of the value are refused.
pub fn from_dag_cbor<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, ReceiptError> {
    let value: T =
        ciborium::from_reader(bytes).map_err(|e| ReceiptError::NotAReceipt(e.to_string()))?;
    if to_dag_cbor(&value) != bytes {
        return Err(ReceiptError::NotAReceipt(
            "not canonical DAG-CBOR (or trailing bytes)".into(),
        ));
    }
    Ok(value)
}

fn canonicalize(value: &mut ciborium::Value) {
    use ciborium::Value;
    match value {
        Value::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                canonicalize(k);
                canonicalize(v);
            }
            let key = |k: &Value| {
                let mut b = Vec::new();
                ciborium::into_writer(k, &mut b).expect("in memory");
                (b.len(), b)
            };
            entries.sort_by_cached_key(|(k, _)| key(k));
        }
        Value::Array(items) => items.iter_mut().for_each(canonicalize),
        Value::Tag(_, inner) => canonicalize(inner),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
