//! `jobmesh job receipt|verify`: a finished job's receipt, and checking any receipt by re-running its job on this
//! node (`docs/protocol.md`, "Receipts"). `verify` exits 0 when the re-run matches, 1 when it does not (the
//! signers are named), 2 when the receipt cannot be checked (bad input: [`BadInput`]).

use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use jobmesh_node::api::client::{self, ClientError};
use jobmesh_node::market::receipt_verify::VerifyReport;

use crate::context::{parse_duration, Context};

/// Arguments of `jobmesh job receipt`.
#[derive(Debug, Args)]
pub struct ReceiptArgs {
    /// The job id (or a unique prefix of it).
    pub id: String,
}

/// Arguments of `jobmesh job verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The receipt's CID (`jobmesh job receipt <id>` on the requester prints it).
    pub receipt: String,
    /// How long to wait for each block (receipt, code, input) from the mesh, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// A receipt that could not be checked (bad signature, missing block, another engine, not a receipt):
/// `jobmesh` exits 2 on it.
#[derive(Debug)]
pub struct BadInput(String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// `jobmesh job receipt`: the receipt's CID, or with `--json` the decoded receipt.
pub fn receipt(ctx: &Context, args: &ReceiptArgs) -> Result<()> {
    let status = super::job_market::load_status(ctx, &args.id)?;
    let cid = status.receipt.clone().with_context(|| {
        format!(
            "job {} has no receipt yet (it is {})",
            status.id, status.phase
        )
    })?;
    if !ctx.json {
        crate::outln!("{cid}")?;
        return Ok(());
    }
    let api = client::require(&ctx.home)?;
    let answer = api.call("job/receipt", &[("arg", &status.id)])?;
    ctx.print_json(&answer)?;
    Ok(())
}

/// `jobmesh job verify`: fetches the receipt, re-runs its job here and compares.
pub fn verify(ctx: &Context, args: &VerifyArgs) -> Result<()> {
    let api = client::require(&ctx.home)?;
    let timeout_ms = args.timeout.as_millis().to_string();
    let answer = match api.call(
        "job/verify",
        &[("arg", &args.receipt), ("timeout_ms", &timeout_ms)],
    ) {
        Ok(answer) => answer,
        Err(ClientError::Refused { message, .. }) => return Err(BadInput(message).into()),
        Err(e) => return Err(e.into()),
    };
    let report: VerifyReport =
        serde_json::from_value(answer.clone()).context("the node sent an invalid report")?;
    if ctx.json {
        ctx.print_json(&answer)?;
    } else {
        print_report(&report)?;
    }
    if !report.matches {
        anyhow::bail!(
            "receipt {} does not match this node's run: signed by {}",
            report.receipt,
            report.signers.join(", ")
        );
    }
    Ok(())
}

fn print_report(r: &VerifyReport) -> Result<()> {
    crate::outln!(
        "{} receipt {} (job {})",
        if r.matches { "MATCHES" } else { "MISMATCH" },
        r.receipt,
        r.job
    )?;
    crate::outln!("requester {}", r.requester)?;
    crate::outln!("signers   {}", r.signers.join(", "))?;
    crate::outln!(
        "receipt   output {} · status {} · fuel {}",
        r.claimed.output,
        r.claimed.status,
        r.claimed.fuel_used
    )?;
    crate::outln!(
        "here      output {} · status {} · fuel {}",
        r.here.output,
        r.here.status,
        r.here.fuel_used
    )?;
    for m in &r.mismatches {
        crate::outln!("mismatch  {m}")?;
    }
    crate::outln!(
        "checked in {:.1} ms (re-run {:.1} ms), receipt {} bytes",
        r.total_ms,
        r.run_ms,
        r.receipt_bytes
    )?;
    Ok(())
}
