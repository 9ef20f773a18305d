//! Checking a receipt anywhere (`docs/protocol.md`, "Receipts"): fetch the receipt, the code and the input by
//! bitswap, check every signature, check the engine is this node's, re-run the job under the spec's limits and
//! compare output, status and fuel with what the signers revealed. One typed API ([`Market::verify_receipt`])
//! for in-process callers and the control API alike.
//!
//! Owns: the verifier's report and errors. Must not touch: job records (it writes only the record of a
//! receipt that matched, through `receipt_store`).

use std::time::{Duration, Instant};

use cid::Cid;
use jobmesh_exec::{ExecError, Plugin, ENGINE_ID};
use jobmesh_store::unixfs::{file_cid, Profile};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::receipt::{JobReceipt, ReceiptError, DAG_CBOR};
use crate::receipt_store::{record_verified, verified, ReceiptStoreError};
use crate::runner::{limits_of, load_code, read_file, RunError};
use crate::service::Market;
use crate::shared::Core;

/// A result: output file, fuel and status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The output file's CID (kubo's CIDv1 profile: equal CIDs mean equal bytes).
    pub output: String,
    /// Fuel used.
    pub fuel_used: u64,
    /// Status name.
    pub status: String,
}

/// What a verification found (the receipt itself checked out: signatures, engine, blocks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The receipt's CID.
    pub receipt: String,
    /// The job's id (hex).
    pub job: String,
    /// The requester that signed the acceptance.
    pub requester: String,
    /// Whether the re-run here gave the receipt's output, status and fuel.
    pub matches: bool,
    /// The workers whose signed commitments and reveals the receipt carries.
    pub signers: Vec<String>,
    /// The result the receipt claims.
    pub claimed: RunSummary,
    /// The result of the re-run here.
    pub here: RunSummary,
    /// What differs, in words, each naming the signers (empty when it matches).
    pub mismatches: Vec<String>,
    /// The receipt block's size in bytes.
    pub receipt_bytes: usize,
    /// Time spent re-running the job, in milliseconds.
    pub run_ms: f64,
    /// Time of the whole check (fetch, signatures, re-run), in milliseconds.
    pub total_ms: f64,
}

/// Why a receipt could not be checked (bad input, as opposed to a re-run that disagrees).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The receipt is malformed, badly signed or inconsistent.
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    /// A block could not be fetched in time.
    #[error("cannot fetch the {what} {cid}: {source}")]
    Fetch {
        /// Which block: receipt, code, input, plugin.
        what: &'static str,
        /// Its CID.
        cid: Cid,
        /// Why.
        source: Box<jobmesh_p2p::Error>,
    },
    /// The job's engine is not this node's, so fuel would not be comparable.
    #[error("this node cannot reproduce engine {wanted:?} (it runs {ENGINE_ID:?})")]
    Engine {
        /// The spec's engine string.
        wanted: String,
    },
    /// The receipt records no result (a failed, cancelled or expired job).
    #[error("the receipt's job ended {phase}: there is no result to re-run")]
    NoResult {
        /// The job's terminal phase.
        phase: String,
    },
    /// The code or input could not be read or loaded.
    #[error(transparent)]
    Run(#[from] Box<RunError>),
    /// The job could not be run here.
    #[error("the re-run failed: {0}")]
    Exec(#[from] Box<ExecError>),
    /// The output could not be hashed.
    #[error("cannot hash the re-run's output: {0}")]
    Output(#[from] Box<jobmesh_store::StoreError>),
    /// The record of a matching receipt could not be kept.
    #[error(transparent)]
    Record(#[from] ReceiptStoreError),
    /// The blocking task panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

impl Market {
    /// Fetches the receipt `cid` (within `timeout` for each block), checks its signatures and engine, re-runs
    /// its job here and compares. `Ok` with `matches: false` is a receipt whose signers are contradicted;
    /// `Err` is bad input. Only a matching receipt is recorded as verified ([`Market::verified_receipt`]).
    pub async fn verify_receipt(
        &self,
        cid: Cid,
        timeout: Duration,
    ) -> Result<VerifyReport, VerifyError> {
        verify(self.core(), cid, timeout).await
    }

    /// The receipt `cid` from this node's store, or by bitswap within `timeout`; decoded, not checked.
    pub async fn receipt(&self, cid: Cid, timeout: Duration) -> Result<JobReceipt, VerifyError> {
        Ok(fetch_receipt(self.core(), cid, timeout).await?.0)
    }

    /// The report recorded when the receipt `cid` matched here, if it did.
    pub fn verified_receipt(&self, cid: &Cid) -> Result<Option<VerifyReport>, VerifyError> {
        Ok(verified(&self.core().db, cid)?.and_then(|b| serde_json::from_slice(&b).ok()))
    }
}

async fn fetch_receipt(
    core: &Core,
    cid: Cid,
    timeout: Duration,
) -> Result<(JobReceipt, usize), VerifyError> {
    if cid.codec() != DAG_CBOR {
        return Err(ReceiptError::NotAReceipt(format!("{cid} is not a DAG-CBOR block")).into());
    }
    let bytes = core
        .node
        .get_block(cid, timeout)
        .await
        .map_err(|source| VerifyError::Fetch {
            what: "receipt",
            cid,
            source: Box::new(source),
        })?;
    Ok((JobReceipt::decode(&bytes)?, bytes.len()))
}

async fn verify(core: &Core, cid: Cid, timeout: Duration) -> Result<VerifyReport, VerifyError> {
    let started = Instant::now();
    let (receipt, receipt_bytes) = fetch_receipt(core, cid, timeout).await?;
    let signers = receipt.check()?;
    let body = receipt.body;
    if body.spec.engine != ENGINE_ID {
        return Err(VerifyError::Engine {
            wanted: body.spec.engine,
        });
    }
    let Some(claimed) = body.result else {
        return Err(VerifyError::NoResult { phase: body.phase });
    };
    fetch_inputs(core, &body.spec, timeout).await?;
    let (here, run_ms) = rerun(core, &body.spec).await?;
    let signers: Vec<String> = signers.iter().map(ToString::to_string).collect();
    let claimed = RunSummary {
        output: claimed.output.to_string(),
        fuel_used: claimed.fuel_used,
        status: claimed.status,
    };
    let report = VerifyReport {
        receipt: cid.to_string(),
        job: body.job.to_hex(),
        requester: body.requester.to_string(),
        matches: claimed == here,
        mismatches: mismatches(&claimed, &here, &signers),
        signers,
        claimed,
        here,
        receipt_bytes,
        run_ms,
        total_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    info!(receipt = %cid, matches = report.matches, "receipt verified");
    if report.matches {
        let summary = serde_json::to_vec(&report).unwrap_or_default();
        record_verified(&core.db, &cid, &summary)?;
    }
    Ok(report)
}

/// Each field that differs, naming the signers who vouched for it.
fn mismatches(claimed: &RunSummary, here: &RunSummary, signers: &[String]) -> Vec<String> {
    let by = signers.join(", ");
    let mut out = Vec::new();
    let mut differs = |what: &str, receipt: String, local: String| {
        if receipt != local {
            out.push(format!(
                "{what}: the receipt says {receipt} (signed by {by}), this node got {local}"
            ));
        }
    };
    differs("output", claimed.output.clone(), here.output.clone());
    differs("status", claimed.status.clone(), here.status.clone());
    differs(
        "fuel",
        claimed.fuel_used.to_string(),
        here.fuel_used.to_string(),
    );
    out
}

/// Fetches the code, input and plugin of `spec` from connected peers.
async fn fetch_inputs(
    core: &Core,
    spec: &crate::messages::JobSpec,
    timeout: Duration,
) -> Result<(), VerifyError> {
    for (what, cid) in [("code", spec.code), ("input", spec.input)] {
        core.node
            .fetch_dag_from(cid, &[], timeout)
            .await
            .map_err(|source| VerifyError::Fetch {
                what,
                cid,
                source: Box::new(source),
            })?;
    }
    if let Some(plugin) = spec.plugin {
        if core.exec.plugin(&plugin).is_none() {
            let bytes = core
                .node
                .get_block(plugin, timeout)
                .await
                .map_err(|source| VerifyError::Fetch {
                    what: "plugin",
                    cid: plugin,
                    source: Box::new(source),
                })?;
            core.exec.add_plugin(Plugin::from_bytes(bytes));
        }
    }
    Ok(())
}

/// Runs `spec` here as a worker would (without storing the output); returns its result and run time in ms.
async fn rerun(
    core: &Core,
    spec: &crate::messages::JobSpec,
) -> Result<(RunSummary, f64), VerifyError> {
    let (store, exec, spec) = (core.node.store().clone(), core.exec.clone(), spec.clone());
    tokio::task::spawn_blocking(move || {
        let code = read_file(&store, &spec.code).map_err(Box::new)?;
        let input = read_file(&store, &spec.input).map_err(Box::new)?;
        let code = load_code(spec.kind, &code).map_err(Box::new)?;
        let started = Instant::now();
        let outcome = exec
            .run(&code, &input, &limits_of(&spec))
            .map_err(Box::new)?;
        let run_ms = started.elapsed().as_secs_f64() * 1e3;
        let output = file_cid(&outcome.output, &Profile::KUBO).map_err(Box::new)?;
        let here = RunSummary {
            output: output.to_string(),
            fuel_used: outcome.fuel_used,
            status: outcome.status.name().to_string(),
        };
        Ok((here, run_ms))
    })
    .await?
}
