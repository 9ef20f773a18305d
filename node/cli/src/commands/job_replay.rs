//! `jobmesh job replay <id>`: re-run a submitted job on this machine with everything a developer needs — its
//! log lines with the fuel used at each, its stderr, the JS exception with its stack, the limit it hit — and
//! say whether the replay agrees with the accepted result.
//!
//! The job's spec comes from the node's status (or its market database when no node runs); code and input from
//! the node's store. The run happens in this process, never in the node.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use jobmesh_exec::{Executor, ReplayReport};
use jobmesh_node::api::client;
use jobmesh_node::market::receipt::{JobReceipt, MAX_RECEIPT_BYTES};
use jobmesh_node::market::replay::{replay as run_replay, ReplaySpec, Replayed};
use jobmesh_node::market::runner::MAX_JOB_FILE;
use jobmesh_node::market::JobStatus;
use jobmesh_store::unixfs::Profile;
use serde_json::json;

use super::job_files::read_file;
use crate::context::{parse_duration, Context};

/// Arguments of `jobmesh job replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The job id, or a unique prefix of it (at least 4 characters), on the requester's node; or a receipt CID
    /// (`job receipt <id>`), on any node.
    pub id: String,
    /// Stop the replay after this long (it is then reported as hitting the time limit).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// What a replay runs and compares with: from the job's status on its requester, or from a receipt anywhere.
struct Target {
    id: String,
    code: String,
    input: String,
    spec: ReplaySpec,
    phase: String,
    /// The accepted (output CID, status, fuel), if any.
    accepted: Option<(String, String, u64)>,
}

/// `jobmesh job replay`. Exits non-zero when the job cannot be replayed, or when the replay disagrees with the
/// accepted result; a job that fails the same way again is a successful replay.
pub fn replay(ctx: &Context, args: &ReplayArgs) -> Result<()> {
    let target = if args.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        of_status(super::job_market::load_status(ctx, &args.id)?)?
    } else {
        of_receipt(ctx, &args.id)?
    };
    let limit = MAX_JOB_FILE as u64;
    let code = read_file(ctx, &target.code, limit).context("cannot read the job's code")?;
    let input = read_file(ctx, &target.input, limit).context("cannot read the job's input")?;
    let exec = Executor::traced(Some(ctx.home.module_cache_dir()))?;
    let replayed = run_replay(&exec, &target.spec, &code, &input, args.timeout)?;
    let output_cid = jobmesh_store::unixfs::file_cid(&replayed.output, &Profile::KUBO)?;
    let agrees = target.accepted.as_ref().map(|(output, status, fuel)| {
        (output.as_str(), status.as_str(), *fuel)
            == (
                output_cid.to_string().as_str(),
                replayed.report.status.as_str(),
                replayed.report.fuel_used,
            )
    });
    if ctx.json {
        print_json(ctx, &replayed, &output_cid.to_string(), agrees)?;
    } else {
        print_text(&replayed.report, &target.phase, agrees)?;
        eprintln!(
            "replayed in {:.2} ms · output {} bytes, {output_cid}",
            replayed.elapsed.as_secs_f64() * 1e3,
            replayed.output.len()
        );
    }
    if let (Some(false), Some((_, status, fuel))) = (agrees, &target.accepted) {
        bail!(
            "the replay of job {} disagrees with its accepted result ({status} fuel {fuel}, replay {} fuel {})",
            target.id,
            replayed.report.status,
            replayed.report.fuel_used
        );
    }
    Ok(())
}

fn of_status(s: JobStatus) -> Result<Target> {
    let spec = s.replay.clone().with_context(|| {
        format!(
            "job {} was recorded without its limits: it cannot be replayed",
            s.id
        )
    })?;
    let accepted = match (&s.output, &s.status, s.fuel_used) {
        (Some(output), Some(status), Some(fuel)) => Some((output.clone(), status.clone(), fuel)),
        _ => None,
    };
    Ok(Target {
        id: s.id,
        code: s.code,
        input: s.input,
        spec,
        phase: s.phase,
        accepted,
    })
}

/// The target a receipt names, fetched through the running node (from the mesh if needed); its signatures
/// are checked first.
fn of_receipt(ctx: &Context, cid: &str) -> Result<Target> {
    let api = client::require(&ctx.home)?;
    let mut bytes = Vec::new();
    api.call_stream("block/get", &[("arg", cid)])
        .with_context(|| format!("cannot fetch receipt {cid}"))?
        .take(MAX_RECEIPT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .context("cannot read the receipt from the node")?;
    let receipt = JobReceipt::decode(&bytes).with_context(|| format!("{cid} is not a receipt"))?;
    receipt
        .check()
        .with_context(|| format!("receipt {cid} does not check out"))?;
    let body = receipt.body;
    Ok(Target {
        id: body.job.to_hex(),
        code: body.spec.code.to_string(),
        input: body.spec.input.to_string(),
        spec: ReplaySpec::of(&body.spec),
        phase: body.phase,
        accepted: body
            .result
            .map(|r| (r.output.to_string(), r.status, r.fuel_used)),
    })
}

fn print_json(ctx: &Context, r: &Replayed, output_cid: &str, agrees: Option<bool>) -> Result<()> {
    let mut obj = serde_json::to_value(&r.report)?;
    obj["output_cid"] = json!(output_cid);
    obj["agrees_with_accepted"] = json!(agrees);
    obj["time_ms"] = json!(r.elapsed.as_secs_f64() * 1e3);
    Ok(ctx.print_json(&obj)?)
}

/// The lines with their fuel, then stderr, the exception and the limit.
fn print_text(r: &ReplayReport, phase: &str, agrees: Option<bool>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "job {} · replay", r.job_id)?;
    for line in &r.lines {
        writeln!(
            out,
            "  fuel {:>14}  {}  {}",
            line.fuel_used, line.stream, line.text
        )?;
    }
    if r.lines_dropped > 0 {
        writeln!(out, "  … {} more writes not traced", r.lines_dropped)?;
    }
    if !r.stderr.is_empty() {
        writeln!(out, "stderr:\n{}", r.stderr.trim_end())?;
    }
    if let Some(exception) = &r.exception {
        writeln!(out, "exception:\n{}", exception.trim_end())?;
    }
    if let Some(hit) = &r.limit {
        let after = hit
            .after_line
            .as_deref()
            .map(|l| format!(", after the line {l:?}"))
            .unwrap_or_default();
        writeln!(
            out,
            "limit hit: {} ({}) at fuel {}{after}",
            hit.limit, hit.message, hit.at_fuel
        )?;
    }
    writeln!(out, "status: {} · fuel used: {}", r.status, r.fuel_used)?;
    let verdict = match agrees {
        Some(true) => "agrees with the accepted result (output, status and fuel)".to_string(),
        Some(false) => "DISAGREES with the accepted result".to_string(),
        None => format!("no accepted result to compare with (job {phase})"),
    };
    writeln!(out, "{verdict}")?;
    Ok(())
}
