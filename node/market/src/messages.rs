//! Market protocol messages, version 1 (`docs/protocol.md`): their fields, their CBOR encoding, their signatures
//! and their size limits. Pure data: no network, no disk.

use cid::Cid;
use libp2p_identity::{Keypair, PeerId, PublicKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Version of the message bodies defined here; carried in every envelope.
pub const PROTOCOL_VERSION: u16 = 1;
/// Gossipsub topic of job announcements and cancellations.
pub const JOBS_TOPIC: &str = "jobmesh/jobs/1";
/// Request-response protocol of offers, assignments, commitments, reveals and receipts (framed by the p2p crate).
pub use jobmesh_p2p::DIRECT_PROTOCOL as MARKET_PROTOCOL;
/// Largest gossip message accepted, in bytes.
pub const MAX_GOSSIP_BYTES: usize = 8 * 1024;
/// Largest request or response accepted, in bytes (the p2p framing enforces it too).
pub const MAX_DIRECT_BYTES: usize = jobmesh_p2p::MAX_DIRECT_MESSAGE;
/// Most replicas a job may ask for.
pub const MAX_REPLICAS: u8 = 15;

/// Domain separator prefixed to every signed body, so a market signature is never valid elsewhere.
const SIGNING_DOMAIN: &[u8] = b"jobmesh/1 message ";
/// Domain separator of commitments.
const COMMIT_DOMAIN: &[u8] = b"jobmesh/1 commit ";
/// Domain separator of job ids.
const JOB_ID_DOMAIN: &[u8] = b"jobmesh/1 job ";

/// Why a message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    /// The message is larger than its transport allows.
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The transport's limit.
        limit: usize,
    },
    /// The bytes are not a well-formed message of the expected kind.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The body speaks another protocol version.
    #[error("unsupported protocol version {0} (this node speaks {PROTOCOL_VERSION})")]
    Version(u16),
    /// The signature does not verify against the signer's key.
    #[error("bad signature")]
    BadSignature,
    /// The signer is not who the message says it is from.
    #[error("signed by {signer}, but claims to come from {claimed}")]
    WrongSigner {
        /// The key that signed it.
        signer: String,
        /// The peer it should have come from.
        claimed: String,
    },
    /// A field is out of its allowed range.
    #[error("invalid {field}: {why}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

/// A job's identity: blake3 of its [`JobSpec`]'s encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl JobId {
    /// Lower-case hex, as shown to users.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the hex form (64 characters); a unique prefix is resolved by the job store, not here.
    pub fn from_hex(s: &str) -> Result<JobId, MessageError> {
        let invalid = |why: &str| MessageError::Invalid {
            field: "job id",
            why: why.into(),
        };
        if s.len() != 64 {
            return Err(invalid("expected 64 hex characters"));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| invalid("not hex"))?;
        }
        Ok(JobId(out))
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobId({})", &self.to_hex()[..12])
    }
}

/// What kind of code a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CodeKind {
    /// QuickJS bytecode run by the Javy plugin named in the spec.
    JavyBytecode,
    /// A WASI preview1 command module.
    WasiCommand,
}

/// The resource limits a job runs under; part of its identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLimits {
    /// Fuel budget: the job fails with "out of fuel" beyond it.
    pub max_fuel: u64,
    /// Linear memory limit in bytes.
    pub memory_bytes: u64,
    /// Largest output in bytes.
    pub output_bytes: u64,
    /// Largest stderr in bytes.
    pub stderr_bytes: u64,
}

/// Everything that determines a job's output: two honest workers given the same spec agree on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// What the code is.
    pub kind: CodeKind,
    /// The Javy plugin (for [`CodeKind::JavyBytecode`]).
    #[serde(with = "crate::wire_ids::opt_cid")]
    pub plugin: Option<Cid>,
    /// The code block.
    #[serde(with = "crate::wire_ids::cid")]
    pub code: Cid,
    /// The input block.
    #[serde(with = "crate::wire_ids::cid")]
    pub input: Cid,
    /// Limits.
    pub limits: JobLimits,
    /// Engine identity (wasmtime version and flags): fuel is comparable only on the same engine.
    pub engine: String,
    /// How many workers run it.
    pub replicas: u8,
    /// Price in wei per million fuel.
    pub price_wei_per_mfuel: u64,
    /// Optional verifier job run on (input, output).
    #[serde(with = "crate::wire_ids::opt_cid")]
    pub verifier: Option<Cid>,
    /// Requester's counter, so equal specs get distinct ids.
    pub nonce: u64,
    /// The target error rate ε of the result, in parts per billion, for a requester verifying by credibility
    /// (docs/protocol.md, "Credibility"); absent (and then not encoded: older specs keep their ids) = the
    /// requester's default. Bounded by [`MIN_ERROR_RATE`] and [`MAX_ERROR_RATE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate_ppb: Option<u32>,
}

/// The smallest target error rate a job may ask for (one in a billion).
pub const MIN_ERROR_RATE: f64 = 1e-9;
/// The largest target error rate a job may ask for.
pub const MAX_ERROR_RATE: f64 = 0.5;

/// A job spec's error rate in parts per billion, as a rate.
pub fn error_rate_from_ppb(ppb: u32) -> f64 {
    f64::from(ppb) / 1e9
}

impl JobSpec {
    /// The job's id: blake3 over a domain tag and the spec's CBOR encoding.
    pub fn id(&self) -> JobId {
        let mut hasher = blake3::Hasher::new();
        hasher.update(JOB_ID_DOMAIN);
        hasher.update(&to_cbor(self));
        JobId(*hasher.finalize().as_bytes())
    }

    /// Checks the ranges every node enforces before acting on a spec.
    pub fn validate(&self) -> Result<(), MessageError> {
        let invalid = |field, why: &str| {
            Err(MessageError::Invalid {
                field,
                why: why.into(),
            })
        };
        if self.replicas == 0 || self.replicas > MAX_REPLICAS {
            return invalid("replicas", &format!("must be 1..={MAX_REPLICAS}"));
        }
        if self.limits.max_fuel == 0 {
            return invalid("max_fuel", "must be positive");
        }
        if self.kind == CodeKind::JavyBytecode && self.plugin.is_none() {
            return invalid("plugin", "a JavaScript job names its plugin");
        }
        if self.engine.is_empty() || self.engine.len() > 256 {
            return invalid("engine", "must be 1..=256 bytes");
        }
        if let Some(ppb) = self.error_rate_ppb {
            let epsilon = error_rate_from_ppb(ppb);
            if !(MIN_ERROR_RATE..=MAX_ERROR_RATE).contains(&epsilon) {
                return invalid("error_rate", "must be between 1e-9 and 0.5");
            }
        }
        Ok(())
    }
}

/// Published on [`JOBS_TOPIC`] by a requester: a job looking for workers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAnnouncement {
    /// The job.
    pub spec: JobSpec,
    /// Who asks (must be the signer).
    #[serde(with = "crate::wire_ids::peer")]
    pub requester: PeerId,
    /// The requester's settlement address, if it pays on chain.
    pub eth_address: Option<[u8; 20]>,
    /// Where workers can reach the requester directly.
    pub listen_addrs: Vec<String>,
    /// Unix milliseconds after which nobody works on the job.
    pub deadline_ms: u64,
    /// The share of workers asked to offer, in millionths (absent: every worker): a worker offers only if its
    /// [`offer_draw`] for the job falls below it. A requester that knows many workers asks a sample of them and
    /// widens it each time it announces the job again, so offers grow with replicas, not with the mesh.
    #[serde(default = "every_worker")]
    pub offer_share_ppm: u32,
    /// Which announcement of the job this is: 0 the first, one more per re-announcement. Gossip identifies
    /// messages by their content, so a re-announcement must differ from the one before to be heard.
    #[serde(default)]
    pub round: u32,
    /// Workers with the best record at this requester, asked to offer whatever their draw: the sample alone
    /// could leave them all out and hand a majority of the slots to a crowd of fresh identities.
    #[serde(default, with = "crate::wire_ids::peers")]
    pub invited: Vec<PeerId>,
}

/// [`JobAnnouncement::offer_share_ppm`] asking every worker.
pub const EVERY_WORKER_PPM: u32 = 1_000_000;

/// Offers a requester asks for per replica when it samples workers: enough to fill every slot, replace the
/// busy and the late, and run a second round after a vote without a majority (a job short of workers is
/// announced again, asking twice as many). Each offer is a request to the requester: with 6 per replica, offers
/// were more than half of a simulated mesh's market requests.
pub const SAMPLED_OFFERS_PER_REPLICA: u64 = 4;

/// Workers with a record a requester invites per replica ([`JobAnnouncement::invited`]): enough for the
/// majority of the slots that goes by record, and for replacing them. They count towards
/// [`SAMPLED_OFFERS_PER_REPLICA`]: the draw asks for the rest.
pub const INVITED_PER_REPLICA: usize = 2;

fn every_worker() -> u32 {
    EVERY_WORKER_PPM
}

impl JobAnnouncement {
    /// Whether `worker` is among the workers this announcement asks to offer; `job` is its spec's id (which
    /// the caller has already computed: hashing the spec again for every announcement would be wasted).
    pub fn asks(&self, job: &JobId, worker: &PeerId) -> bool {
        debug_assert_eq!(*job, self.spec.id());
        self.offer_share_ppm >= EVERY_WORKER_PPM
            || offer_draw(job, worker) < self.offer_share_ppm
            || self.invited.contains(worker)
    }
}

/// A worker's draw for a job, uniform in `0..1_000_000` and fixed by the two ids: a wider share on a later
/// announcement still includes every worker asked before.
pub fn offer_draw(job: &JobId, worker: &PeerId) -> u32 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"jobmesh offer draw v1");
    hasher.update(&job.0);
    hasher.update(&worker.to_bytes());
    let word = u32::from_le_bytes(
        hasher.finalize().as_bytes()[..4]
            .try_into()
            .expect("4 bytes"),
    );
    ((u64::from(word) * u64::from(EVERY_WORKER_PPM)) >> 32) as u32
}

/// The share of workers to ask (in millionths) for `replicas` among `known_workers` workers in good standing,
/// once announced before `reannounced` times, `invited` of them by name: [`SAMPLED_OFFERS_PER_REPLICA`] offers
/// per replica expected, doubling with each re-announcement, of which the invited are part and the draw asks
/// for the rest among the others; everyone while few workers are known.
pub fn offer_share_ppm(
    replicas: u8,
    known_workers: usize,
    invited: usize,
    reannounced: u32,
) -> u32 {
    let wanted = (SAMPLED_OFFERS_PER_REPLICA * u64::from(replicas.max(1))) << reannounced.min(16);
    let invited = (invited as u64).min(known_workers as u64);
    let drawn = wanted.saturating_sub(invited).max(1);
    let others = known_workers as u64 - invited;
    if others <= drawn {
        return EVERY_WORKER_PPM;
    }
    (drawn * u64::from(EVERY_WORKER_PPM) / others).clamp(1, u64::from(EVERY_WORKER_PPM)) as u32
}

/// Published on [`JOBS_TOPIC`]: the requester gave up on a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// The job.
    pub job_id: JobId,
    /// Why.
    pub reason: String,
}

/// A message on the jobs topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gossip {
    /// A new job.
    Announcement(Box<JobAnnouncement>),
    /// A cancelled job.
    Cancellation(Cancellation),
}

/// A worker's answer to an announcement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The job.
    pub job_id: JobId,
    /// The worker's settlement address.
    pub eth_address: Option<[u8; 20]>,
    /// The worker's price; at most the announced one.
    pub price_wei_per_mfuel: u64,
    /// The active stake, in wei, the worker claims to hold for this PeerId at `eth_address` in the stake
    /// contract (docs/settlement.md, "Worker stake"); a requester checks it on chain before crediting it. Absent
    /// (and then not encoded: an unstaked offer's bytes are unchanged) when the worker has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stake_wei: Option<u128>,
}

/// The requester's choice of a worker for one replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The job (the worker looks the spec up in the announcement it saw).
    pub job_id: JobId,
    /// Which replica slot.
    pub replica: u8,
    /// Unix milliseconds by which the worker's commitment must arrive.
    pub commit_by_ms: u64,
    /// The spec, so a worker that missed the gossip can still work.
    pub spec: JobSpec,
}

/// A worker's sealed result: [`commitment_hash`] of what it will reveal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    /// The job.
    pub job_id: JobId,
    /// The hash.
    #[serde(with = "serde_bytes")]
    pub commitment: [u8; 32],
}

/// Most bytes of a run's stderr that travel in a [`Reveal`] (less if the spec's `stderr_bytes` is lower):
/// with [`MAX_DETAIL_MESSAGE`] it keeps a reveal well inside [`MAX_DIRECT_BYTES`].
pub const MAX_REVEALED_STDERR: usize = 16 * 1024;
/// Most bytes of a failed run's message (exception message and stack, trap, …) in a [`Reveal`].
pub const MAX_DETAIL_MESSAGE: usize = 4 * 1024;
/// Most bytes of a run's stderr a worker keeps as a file in its store (less if the spec's `stderr_bytes` is
/// lower); its CID travels in the reveal ([`RunDetail::stderr_cid`]) and the requester fetches it for a failed job.
pub const MAX_STORED_STDERR: usize = 1 << 20;

/// Why a run failed, in its own words: part of what a worker reveals, and bound by its commitment.
///
/// Both fields are deterministic (the same job prints the same stderr and fails the same way on every honest
/// worker), so replicas must agree on them as on the output: the detail a requester shows is the one the
/// majority revealed, not one worker's say. Both are cut at fixed bounds, which keeps that agreement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDetail {
    /// The failure in words (`uncaught JavaScript exception: Error: … at …`), empty for a run that ended ok.
    /// At most [`MAX_DETAIL_MESSAGE`] bytes.
    pub message: String,
    /// The job's stderr, at most the spec's `stderr_bytes` and [`MAX_REVEALED_STDERR`].
    #[serde(with = "serde_bytes")]
    pub stderr: Vec<u8>,
    /// The whole stderr (at most the spec's `stderr_bytes` and [`MAX_STORED_STDERR`]) as a UnixFS file in the
    /// worker's store; `None` when the run wrote nothing to stderr. Covered by [`RunDetail::digest`].
    #[serde(
        default,
        with = "crate::wire_ids::opt_cid",
        skip_serializing_if = "Option::is_none"
    )]
    pub stderr_cid: Option<Cid>,
}

impl RunDetail {
    /// The detail of a run, cut to its bounds (`stderr_limit` is the spec's `stderr_bytes`).
    pub fn new(message: &str, stderr: &[u8], stderr_limit: u64) -> RunDetail {
        let mut cut = MAX_DETAIL_MESSAGE.min(message.len());
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        let keep = usize::try_from(stderr_limit)
            .unwrap_or(usize::MAX)
            .min(MAX_REVEALED_STDERR)
            .min(stderr.len());
        RunDetail {
            message: message[..cut].to_string(),
            stderr: stderr[..keep].to_vec(),
            stderr_cid: None,
        }
    }

    /// Whether it is within the bounds a reveal of `spec` may carry.
    pub fn fits(&self, spec: &JobSpec) -> bool {
        self.message.len() <= MAX_DETAIL_MESSAGE
            && self.stderr.len() <= MAX_REVEALED_STDERR
            && self.stderr.len() as u64 <= spec.limits.stderr_bytes
    }

    /// The hash committed to and tallied: blake3 over both fields, each length-prefixed.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"jobmesh/1 run detail ");
        for part in [self.message.as_bytes(), &self.stderr] {
            hasher.update(&(part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        if let Some(cid) = &self.stderr_cid {
            let cid = cid.to_bytes();
            hasher.update(b"stderr-cid");
            hasher.update(&(cid.len() as u64).to_be_bytes());
            hasher.update(&cid);
        }
        *hasher.finalize().as_bytes()
    }
}

/// A worker's opened result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reveal {
    /// The job.
    pub job_id: JobId,
    /// The output block's CID.
    #[serde(with = "crate::wire_ids::cid")]
    pub output: Cid,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// The run's status name (`ok`, `out-of-fuel`, …): part of what replicas must agree on.
    pub status: String,
    /// The salt of the commitment.
    #[serde(with = "serde_bytes")]
    pub salt: [u8; 32],
    /// Why the run failed (its message and stderr), covered by the commitment. (Boxed: it is the bulk of a
    /// reveal, which travels inside larger enums.)
    #[serde(default)]
    pub detail: Box<RunDetail>,
}

/// The requester's verdict on a worker's replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The job.
    pub job_id: JobId,
    /// Whether the worker's result was in the accepted majority.
    pub accepted: bool,
    /// What the requester now owes the worker for it, in wei.
    pub owed_wei: u128,
    /// Why, in words.
    pub reason: String,
}

/// Payer → payee: a lottery that pays (part of) what the payer owes. The full description and every leaf are
/// a JSON file in the payer's store (a thousand leaves would not fit a message); the payee fetches it by bitswap,
/// checks it and that it is committed on chain, and keeps it to claim if it wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotteryNotice {
    /// The lottery id (`keccak256` of its description), which the file must hash to.
    #[serde(with = "serde_bytes")]
    pub lottery_id: [u8; 32],
    /// The UnixFS file holding the lottery (description and leaves) as JSON.
    #[serde(with = "crate::wire_ids::cid")]
    pub file: Cid,
    /// The payer's secret, once the draw block is mined (never before): the payee checks it against the
    /// lottery's secret hash, and the winner's claim carries it.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub secret: Option<[u8; 32]>,
}

/// A direct request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Worker → requester.
    Offer(Offer),
    /// Requester → worker.
    Assignment(Box<Assignment>),
    /// Worker → requester.
    Commitment(Commitment),
    /// Requester → worker: open your commitment.
    RevealRequest {
        /// The job.
        job_id: JobId,
    },
    /// Requester → worker.
    Receipt(Receipt),
    /// Payer → payee.
    Lottery(LotteryNotice),
}

/// A direct response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Received and accepted.
    Ack,
    /// Refused, with a reason.
    Reject {
        /// Why.
        reason: String,
    },
    /// The answer to a reveal request.
    Reveal(Reveal),
}

/// The commitment a worker sends before anyone reveals: binds output, fuel, status, the run's detail (its
/// digest), a secret salt and the worker. Binding the detail keeps a worker from changing its failure
/// message or stderr after it has seen the others' reveals.
pub fn commitment_hash(
    output: &Cid,
    fuel_used: u64,
    status: &str,
    detail: &RunDetail,
    salt: &[u8; 32],
    worker: &PeerId,
) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(COMMIT_DOMAIN);
    let cid = output.to_bytes();
    hasher.update(&(cid.len() as u32).to_be_bytes());
    hasher.update(&cid);
    hasher.update(&fuel_used.to_be_bytes());
    hasher.update(&(status.len() as u32).to_be_bytes());
    hasher.update(status.as_bytes());
    hasher.update(&detail.digest());
    hasher.update(salt);
    hasher.update(&worker.to_bytes());
    *hasher.finalize().as_bytes()
}

/// Whether a reveal opens a commitment made by `worker`.
pub fn reveal_matches(reveal: &Reveal, commitment: &[u8; 32], worker: &PeerId) -> bool {
    commitment_hash(
        &reveal.output,
        reveal.fuel_used,
        &reveal.status,
        &reveal.detail,
        &reveal.salt,
        worker,
    ) == *commitment
}

/// A signed message on the wire: the CBOR body, the signer's public key (protobuf) and its signature.
#[derive(Serialize, Deserialize)]
struct SignedWire {
    v: u16,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    sig: Vec<u8>,
}

/// Encodes and signs a message with the node's key.
pub fn seal<T: Serialize>(key: &Keypair, message: &T) -> Vec<u8> {
    let body = to_cbor(message);
    let sig = key
        .sign(&signing_input(&body))
        .expect("ed25519 signing does not fail");
    to_cbor(&SignedWire {
        v: PROTOCOL_VERSION,
        body,
        key: key.public().encode_protobuf(),
        sig,
    })
}

/// Checks size, version and signature, and decodes the body. Returns who signed it.
pub fn open<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<(PeerId, T), MessageError> {
    open_checked(bytes, limit, |_| true)
}

/// Decodes a gossip payload that the jobs topic's validator has already accepted — the validator ran
/// [`open`] on these exact bytes, so the signature is not checked a second time. Only for messages delivered
/// by the node's own subscription to that topic (which delivers nothing its validator refused).
pub fn open_validated<T: DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
) -> Result<(PeerId, T), MessageError> {
    open_checked(bytes, limit, |_| false)
}

/// Decodes an envelope, verifies its signature if `must_verify(signer)`, decodes the body.
fn open_checked<T: DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
    must_verify: impl FnOnce(&PeerId) -> bool,
) -> Result<(PeerId, T), MessageError> {
    if bytes.len() > limit {
        return Err(MessageError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let wire: SignedWire = from_cbor(bytes)?;
    if wire.v != PROTOCOL_VERSION {
        return Err(MessageError::Version(wire.v));
    }
    let key = PublicKey::try_decode_protobuf(&wire.key)
        .map_err(|e| MessageError::Malformed(format!("signer key: {e}")))?;
    let signer = key.to_peer_id();
    if must_verify(&signer) && !key.verify(&signing_input(&wire.body), &wire.sig) {
        return Err(MessageError::BadSignature);
    }
    let body = from_cbor(&wire.body)?;
    Ok((signer, body))
}

/// Like [`open`], and also requires the signer to be `expected` (the connection's remote peer).
pub fn open_from<T: DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
    expected: &PeerId,
) -> Result<T, MessageError> {
    let (signer, body) = open(bytes, limit)?;
    if signer != *expected {
        return Err(MessageError::WrongSigner {
            signer: signer.to_string(),
            claimed: expected.to_string(),
        });
    }
    Ok(body)
}

fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(SIGNING_DOMAIN.len() + body.len());
    input.extend_from_slice(SIGNING_DOMAIN);
    input.extend_from_slice(body);
    input
}

/// CBOR encoding of a value (writing to a Vec cannot fail for these types).
pub fn to_cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("CBOR encoding into memory does not fail");
    out
}

/// CBOR decoding with a typed error.
pub fn from_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MessageError> {
    ciborium::from_reader(bytes).map_err(|e| MessageError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        crate::testkit::spec(3, false)
    }

    fn announcement(share_ppm: u32) -> JobAnnouncement {
        JobAnnouncement {
            spec: spec(),
            requester: PeerId::random(),
            eth_address: None,
            listen_addrs: Vec::new(),
            deadline_ms: 1,
            offer_share_ppm: share_ppm,
            round: 0,
            invited: Vec::new(),
        }
    }

    #[test]
    fn invited_workers_are_asked_whatever_their_draw() {
        let workers: Vec<PeerId> = (0..1_000).map(|_| PeerId::random()).collect();
        let mut a = announcement(1);
        a.invited = workers[..6].to_vec();
        let id = a.spec.id();
        let asked: Vec<&PeerId> = workers.iter().filter(|w| a.asks(&id, w)).collect();
        assert!(workers[..6].iter().all(|w| asked.contains(&w)));
        assert!(asked.len() < 10, "{}", asked.len());
    }

    #[test]
    fn an_announcement_asks_a_sample_of_workers_that_only_widens() {
        let workers: Vec<PeerId> = (0..4_000).map(|_| PeerId::random()).collect();
        let asked = |share| {
            let a = announcement(share);
            let id = a.spec.id();
            workers
                .iter()
                .filter(|w| a.asks(&id, w))
                .copied()
                .collect::<Vec<_>>()
        };
        assert_eq!(asked(EVERY_WORKER_PPM).len(), workers.len());
        // 10 %: 400 expected, standard deviation ≈ 19.
        let tenth = asked(100_000);
        assert!((300..500).contains(&tenth.len()), "{}", tenth.len());
        let fifth = asked(200_000);
        assert!((680..920).contains(&fifth.len()), "{}", fifth.len());
        assert!(
            tenth.iter().all(|w| fifth.contains(w)),
            "a wider share keeps who was asked"
        );
        // Another job draws another sample.
        let mut other = announcement(100_000);
        other.spec.nonce += 1;
        let other_id = other.spec.id();
        let other_tenth: Vec<_> = workers
            .iter()
            .filter(|w| other.asks(&other_id, w))
            .collect();
        let common = other_tenth.iter().filter(|w| tenth.contains(w)).count();
        assert!(common < tenth.len() / 4, "{common} of {}", tenth.len());
    }

    #[test]
    fn the_offer_share_grows_with_replicas_and_announcements_and_shrinks_with_the_mesh() {
        // Few known workers: everyone.
        assert_eq!(offer_share_ppm(3, 0, 0, 0), EVERY_WORKER_PPM);
        assert_eq!(offer_share_ppm(3, 12, 0, 0), EVERY_WORKER_PPM);
        // 4 offers per replica expected: 12 of 180 workers.
        assert_eq!(offer_share_ppm(3, 180, 0, 0), 66_666);
        assert_eq!(offer_share_ppm(3, 180, 0, 1), 133_333);
        assert_eq!(offer_share_ppm(3, 1_800, 0, 0), 6_666);
        assert_eq!(offer_share_ppm(1, 180, 0, 0), 22_222);
        // Enough re-announcements reach everyone; absurd counts do not overflow.
        assert_eq!(offer_share_ppm(3, 180, 0, 4), EVERY_WORKER_PPM);
        assert_eq!(offer_share_ppm(255, usize::MAX, 0, u32::MAX), 1);
        // Invited workers are part of the 12: the draw asks for 6 more among the other 174.
        assert_eq!(offer_share_ppm(3, 180, 6, 0), 34_482);
        assert_eq!(offer_share_ppm(3, 18, 6, 0), 500_000);
        assert_eq!(offer_share_ppm(3, 12, 6, 0), EVERY_WORKER_PPM);
        // More invited than wanted: the draw still asks for one, so new workers keep a way in.
        assert_eq!(offer_share_ppm(3, 1_000, 20, 0), 1_020);
        assert_eq!(offer_share_ppm(3, 5, 20, 0), EVERY_WORKER_PPM);
    }

    #[test]
    fn an_announcement_without_a_share_asks_everyone() {
        #[derive(Serialize)]
        struct OldAnnouncement {
            spec: JobSpec,
            #[serde(with = "crate::wire_ids::peer")]
            requester: PeerId,
            eth_address: Option<[u8; 20]>,
            listen_addrs: Vec<String>,
            deadline_ms: u64,
        }
        let a = announcement(1);
        let old = to_cbor(&OldAnnouncement {
            spec: a.spec.clone(),
            requester: a.requester,
            eth_address: None,
            listen_addrs: Vec::new(),
            deadline_ms: 1,
        });
        let back: JobAnnouncement = from_cbor(&old).unwrap();
        assert_eq!(back.offer_share_ppm, EVERY_WORKER_PPM);
    }

    #[test]
    fn offers_carry_an_optional_bounded_stake_and_unstaked_offers_are_unchanged() {
        /// An offer as encoded before the stake field existed.
        #[derive(Serialize, Deserialize)]
        struct OfferV0 {
            job_id: JobId,
            eth_address: Option<[u8; 20]>,
            price_wei_per_mfuel: u64,
        }
        let v0 = OfferV0 {
            job_id: spec().id(),
            eth_address: Some([7; 20]),
            price_wei_per_mfuel: 9,
        };
        let unstaked = Offer {
            job_id: v0.job_id,
            eth_address: v0.eth_address,
            price_wei_per_mfuel: 9,
            stake_wei: None,
        };
        // Unstaked: the very bytes of before (signatures and older peers unaffected); old bytes decode to None.
        assert_eq!(to_cbor(&unstaked), to_cbor(&v0));
        assert_eq!(from_cbor::<Offer>(&to_cbor(&v0)).unwrap(), unstaked);
        // Staked, up to u128::MAX wei: round-trips, at most 18 bytes more than unstaked (key + bignum).
        for stake in [1u128, 10u128.pow(16), u128::MAX] {
            let staked = Offer {
                stake_wei: Some(stake),
                ..unstaked.clone()
            };
            let bytes = to_cbor(&staked);
            assert!(
                bytes.len() <= to_cbor(&unstaked).len() + 10 + 18,
                "{}",
                bytes.len()
            );
            assert_eq!(from_cbor::<Offer>(&bytes).unwrap(), staked);
            // Older peers decode it too, ignoring the stake.
            assert_eq!(from_cbor::<OfferV0>(&bytes).unwrap().price_wei_per_mfuel, 9);
        }
    }

    #[test]
    fn sealed_messages_open_to_the_same_value_and_signer() {
        let key = Keypair::generate_ed25519();
        let msg = Request::Offer(Offer {
            job_id: spec().id(),
            eth_address: Some([7; 20]),
            price_wei_per_mfuel: 9,
            stake_wei: None,
        });
        let bytes = seal(&key, &msg);
        let (signer, back): (PeerId, Request) = open(&bytes, MAX_DIRECT_BYTES).unwrap();
        assert_eq!(signer, key.public().to_peer_id());
        assert_eq!(back, msg);
        let other = Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(
            open_from::<Request>(&bytes, MAX_DIRECT_BYTES, &other),
            Err(MessageError::WrongSigner { .. })
        ));
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let key = Keypair::generate_ed25519();
        let bytes = seal(
            &key,
            &Gossip::Cancellation(Cancellation {
                job_id: spec().id(),
                reason: "x".into(),
            }),
        );
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(
                open::<Gossip>(&bad, MAX_GOSSIP_BYTES).is_err(),
                "byte {i} flipped was accepted"
            );
        }
    }

    #[test]
    fn the_validator_checks_the_signature_and_delivered_gossip_is_not_checked_again() {
        let key = Keypair::generate_ed25519();
        let signer = key.public().to_peer_id();
        let message = Gossip::Cancellation(Cancellation {
            job_id: spec().id(),
            reason: "x".into(),
        });
        let mut bytes = seal(&key, &message);
        let (who, back) = open_validated::<Gossip>(&bytes, MAX_GOSSIP_BYTES).unwrap();
        assert_eq!((who, back), (signer, message.clone()));
        // Break the envelope's signature (its last byte): the validator's `open` refuses it (so it is never
        // delivered); `open_validated` alone would not notice.
        *bytes.last_mut().unwrap() ^= 0x01;
        assert!(matches!(
            open::<Gossip>(&bytes, MAX_GOSSIP_BYTES),
            Err(MessageError::BadSignature)
        ));
        assert!(open_validated::<Gossip>(&bytes, MAX_GOSSIP_BYTES).is_ok());
        // Oversized and undecodable payloads are refused either way.
        assert!(open_validated::<Gossip>(&bytes[..bytes.len() / 2], MAX_GOSSIP_BYTES).is_err());
        assert!(open_validated::<Gossip>(&bytes, bytes.len() - 1).is_err());
    }

    #[test]
    fn each_round_of_an_announcement_is_a_different_message() {
        let key = Keypair::generate_ed25519();
        let first = announcement(EVERY_WORKER_PPM);
        let again = JobAnnouncement {
            round: 1,
            ..first.clone()
        };
        let seal_one = |a: &JobAnnouncement| seal(&key, &Gossip::Announcement(Box::new(a.clone())));
        // Sealing is deterministic (ed25519): without the round, a re-announcement at the widest share would
        // be byte-identical to the last one, and gossip would drop it as a duplicate.
        assert_eq!(seal_one(&first), seal_one(&first));
        assert_ne!(seal_one(&first), seal_one(&again));
    }

    #[test]
    fn oversized_and_garbage_are_typed_errors() {
        assert!(matches!(
            open::<Gossip>(&vec![0u8; MAX_GOSSIP_BYTES + 1], MAX_GOSSIP_BYTES),
            Err(MessageError::TooLarge { .. })
        ));
        assert!(matches!(
            open::<Gossip>(b"\xff\x00garbage", MAX_GOSSIP_BYTES),
            Err(MessageError::Malformed(_))
        ));
    }

    #[test]
    fn job_id_depends_on_every_field_and_nothing_else() {
        let a = spec();
        assert_eq!(a.id(), a.clone().id());
        let mut b = a.clone();
        b.nonce += 1;
        assert_ne!(a.id(), b.id());
        let mut c = a.clone();
        c.limits.max_fuel += 1;
        assert_ne!(a.id(), c.id());
        assert_eq!(JobId::from_hex(&a.id().to_hex()).unwrap(), a.id());
    }

    #[test]
    fn spec_ranges_are_checked() {
        assert!(spec().validate().is_ok());
        let mut s = spec();
        s.replicas = 0;
        assert!(s.validate().is_err());
        s.replicas = MAX_REPLICAS + 1;
        assert!(s.validate().is_err());
        let mut s = spec();
        s.plugin = None;
        assert!(s.validate().is_err());
    }

    #[test]
    fn commitments_bind_worker_output_fuel_and_salt() {
        let worker = Keypair::generate_ed25519().public().to_peer_id();
        let other = Keypair::generate_ed25519().public().to_peer_id();
        let reveal = Reveal {
            job_id: spec().id(),
            output: spec().code,
            fuel_used: 42,
            status: "js_exception".into(),
            salt: [3; 32],
            detail: Box::new(RunDetail::new(
                "uncaught JavaScript exception: Error: no",
                b"oops\n",
                64,
            )),
        };
        let c = commitment_hash(
            &reveal.output,
            42,
            "js_exception",
            &reveal.detail,
            &[3; 32],
            &worker,
        );
        assert!(reveal_matches(&reveal, &c, &worker));
        assert!(!reveal_matches(&reveal, &c, &other));
        let mut r = reveal.clone();
        r.fuel_used = 43;
        assert!(!reveal_matches(&r, &c, &worker));
        let mut r = reveal.clone();
        r.salt = [4; 32];
        assert!(!reveal_matches(&r, &c, &worker));
        let mut r = reveal.clone();
        r.status = "out-of-fuel".into();
        assert!(!reveal_matches(&r, &c, &worker));
        let mut r = reveal.clone();
        r.detail.stderr = b"oops!\n".to_vec();
        assert!(!reveal_matches(&r, &c, &worker));
        let mut r = reveal;
        r.detail.message = "uncaught JavaScript exception: Error: yes".into();
        assert!(!reveal_matches(&r, &c, &worker));
    }

    #[test]
    fn a_run_detail_is_cut_to_its_bounds_and_a_full_reveal_fits_a_direct_message() {
        let long = "é".repeat(MAX_DETAIL_MESSAGE);
        let d = RunDetail::new(&long, &[b'x'; 100_000], 1 << 20);
        assert!(d.message.len() <= MAX_DETAIL_MESSAGE && long.starts_with(&d.message));
        assert_eq!(d.stderr.len(), MAX_REVEALED_STDERR);
        assert_eq!(RunDetail::new("", &[b'x'; 100], 10).stderr.len(), 10);
        let mut s = spec();
        s.limits.stderr_bytes = 1 << 20;
        assert!(d.fits(&s));
        s.limits.stderr_bytes = 10;
        assert!(!d.fits(&s));
        let key = Keypair::generate_ed25519();
        let reveal = Response::Reveal(Reveal {
            job_id: s.id(),
            output: s.code,
            fuel_used: u64::MAX,
            status: "js_exception".into(),
            salt: [0xff; 32],
            detail: Box::new(d),
        });
        assert!(seal(&key, &reveal).len() < MAX_DIRECT_BYTES / 2);
    }
}
