//! `jobmesh job submit|status|result|list|cancel`: jobs on the market, through the running node's API.
//!
//! `submit` compiles and checks everything locally first (files, syntax, limits), so a bad job never reaches
//! the mesh; then it stores code and input in the node, announces the job and follows it to its end.
//! `status`, `list` and `result` read the node's market database directly when no node is running.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use jobmesh_exec::{JobCode, Limits, Plugin};
use serde_json::{json, Value};

use crate::context::Context;
use crate::context::{parse_duration, parse_size};
use jobmesh_node::api::client::{self, Api};
use jobmesh_node::market::db::MarketDb;
use jobmesh_node::market::messages::{JobId, MAX_REPLICAS};
use jobmesh_node::market::JobStatus;

/// Arguments of `jobmesh job submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The job: JavaScript (`.js`), bytecode from `job build` (`.jsbc`) or a WASI command module (`.wasm`).
    pub code: PathBuf,
    /// The job's input, given on its stdin (`-` for this process's stdin). Default: empty.
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// How many workers run the job; the result needs a majority of them to agree.
    #[arg(long, default_value_t = 3)]
    pub replicas: u8,
    /// Fuel limit of each run (about one unit per wasm instruction).
    #[arg(long, default_value_t = Limits::default().fuel)]
    pub max_fuel: u64,
    /// Memory limit, e.g. 64MiB.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub memory: u64,
    /// Output (stdout) limit.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    pub output_limit: u64,
    /// Price offered, in wei per million fuel (what each agreeing worker is owed: fuel × price / 10^6).
    #[arg(long, default_value_t = 0)]
    pub price: u64,
    /// Time until the job must be over, e.g. 60s, 5m, 1h.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// A JavaScript verifier run on the result before it is accepted: it reads
    /// `{"input": …, "output": …}` on stdin and prints `true` to accept.
    #[arg(long, value_name = "VERIFY.js")]
    pub verifier: Option<PathBuf>,
    /// Write the verified output to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The target error rate of the result when the node verifies by credibility (`node start --verification
    /// credibility`), e.g. 1e-3. Default: the node's.
    #[arg(long, value_name = "EPSILON")]
    pub error_rate: Option<f64>,
}

/// Arguments of `jobmesh job status`, `cancel`.
#[derive(Debug, Args)]
pub struct JobIdArg {
    /// The job id (as printed by `job submit` and `job list`), or a unique prefix of it (at least 4
    /// characters, e.g. the 12 that `job submit`'s progress lines show).
    pub id: String,
}

/// Arguments of `jobmesh job result`.
#[derive(Debug, Args)]
pub struct ResultArgs {
    /// The job id, or a unique prefix of it (at least 4 characters).
    pub id: String,
    /// Write the output to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The code of a job as stored on the mesh, and its kind (`js` or `wasm`).
fn job_code(ctx: &Context, path: &Path) -> Result<(Vec<u8>, &'static str)> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if raw.starts_with(jobmesh_exec::JSBC_MAGIC) {
        JobCode::from_bytes(&raw).with_context(|| format!("{}", path.display()))?;
        return Ok((raw, "js"));
    }
    if path.extension().is_some_and(|e| e == "wasm") {
        if !raw.starts_with(b"\0asm") {
            bail!("{} is not a WebAssembly module", path.display());
        }
        // A Javy module from `job build --wasm` travels as the bytecode it carries.
        if let code @ JobCode::Js(_) =
            JobCode::from_bytes(&raw).with_context(|| format!("{}", path.display()))?
        {
            return Ok((code.to_bytes(), "js"));
        }
        return Ok((raw, "wasm"));
    }
    let source = String::from_utf8(raw)
        .with_context(|| format!("{} is not UTF-8 JavaScript", path.display()))?;
    let exec = jobmesh_exec::Executor::new(Some(ctx.home.module_cache_dir()))?;
    let code = exec.compile_js(
        &Plugin::bundled().cid(),
        &path.display().to_string(),
        &source,
    )?;
    Ok((JobCode::Js(code).to_bytes(), "js"))
}

fn read_input(path: Option<&Path>) -> Result<Vec<u8>> {
    match path {
        None => Ok(Vec::new()),
        Some(p) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read stdin")?;
            Ok(buf)
        }
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read input {}", p.display())),
    }
}

/// Stores bytes in the running node (kubo profile) and returns their CID.
fn put(api: &Api, bytes: Vec<u8>, what: &str) -> Result<String> {
    let v = api
        .call_with_body("add", &[("profile", "kubo")], std::io::Cursor::new(bytes))
        .with_context(|| format!("cannot store the {what} in the node"))?;
    v["Hash"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("the node gave no CID for the {what}"))
}

/// `jobmesh job submit`.
pub fn submit(ctx: &Context, args: &SubmitArgs) -> Result<()> {
    // Everything that can be checked here is checked before the node hears of the job.
    if args.replicas == 0 || args.replicas > MAX_REPLICAS {
        bail!("--replicas must be between 1 and {MAX_REPLICAS}");
    }
    if args.max_fuel == 0 {
        bail!("--max-fuel must be positive");
    }
    if args.timeout < Duration::from_secs(1) || args.timeout > Duration::from_secs(7 * 86_400) {
        bail!("--timeout must be between 1s and 7 days");
    }
    if let Some(e) = args.error_rate {
        jobmesh_node::market::verification::check_error_rate(e)
            .map_err(|e| anyhow::anyhow!("--error-rate: {e}"))?;
    }
    let (code, kind) = job_code(ctx, &args.code)?;
    let input = read_input(args.input.as_deref())?;
    let verifier = match &args.verifier {
        None => None,
        Some(path) => match job_code(ctx, path)? {
            (bytes, "js") => Some(bytes),
            _ => bail!("the verifier must be JavaScript"),
        },
    };
    let api = client::require(&ctx.home)?;
    let started = Instant::now();
    let code_cid = put(&api, code, "code")?;
    let input_cid = put(&api, input, "input")?;
    let verifier_cid = verifier.map(|v| put(&api, v, "verifier")).transpose()?;
    let plugin = Plugin::bundled().cid().to_string();
    let (fuel, memory, output_limit, price, replicas, timeout_ms) = (
        args.max_fuel.to_string(),
        args.memory.to_string(),
        args.output_limit.to_string(),
        args.price.to_string(),
        args.replicas.to_string(),
        args.timeout.as_millis().to_string(),
    );
    let mut query = vec![
        ("code", code_cid.as_str()),
        ("input", input_cid.as_str()),
        ("kind", kind),
        ("max_fuel", fuel.as_str()),
        ("memory", memory.as_str()),
        ("output_limit", output_limit.as_str()),
        ("price", price.as_str()),
        ("replicas", replicas.as_str()),
        ("timeout_ms", timeout_ms.as_str()),
    ];
    if kind == "js" {
        query.push(("plugin", plugin.as_str()));
    }
    if let Some(v) = &verifier_cid {
        query.push(("verifier", v.as_str()));
    }
    let error_rate = args.error_rate.map(|e| e.to_string());
    if let Some(e) = &error_rate {
        query.push(("error_rate", e.as_str()));
    }
    let stream = api.call_stream("job/submit", &query)?;
    let status = follow(ctx, stream)?;
    finish(ctx, &api, &status, args.output.as_deref(), started)
}

/// Reads status lines until the job is over, showing its progress on stderr.
fn follow(ctx: &Context, stream: impl Read) -> Result<JobStatus> {
    let tty = std::io::stderr().is_terminal() && !ctx.json;
    let bar = if tty {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut last_phase = String::new();
    let mut last: Option<JobStatus> = None;
    for line in BufReader::new(stream).lines() {
        let line = line.context("lost the connection to the node while following the job")?;
        let s: JobStatus =
            serde_json::from_str(&line).context("the node sent an invalid job status")?;
        let text = progress_text(&s);
        if tty {
            bar.set_message(text);
        } else if !ctx.json && s.phase != last_phase {
            eprintln!("{text}");
        }
        last_phase = s.phase.clone();
        let done = s.finished;
        last = Some(s);
        if done {
            break;
        }
    }
    bar.finish_and_clear();
    last.filter(|s| s.finished)
        .context("the node stopped reporting before the job was over")
}

fn progress_text(s: &JobStatus) -> String {
    let short = &s.id[..12.min(s.id.len())];
    let n = s.replicas;
    match s.phase.as_str() {
        // The full id once, so the job can be found again (`job status`) if following stops.
        "announced" => format!("job {} · announced · {} offers", s.id, s.offers),
        "committing" => format!(
            "job {short} · assigned {}/{n} · committed {}/{n}",
            s.assigned, s.committed
        ),
        "revealing" => format!(
            "job {short} · committed {}/{n} · revealed {}/{n}",
            s.committed, s.revealed
        ),
        "verifying" => format!("job {short} · revealed · {}", s.reason),
        phase => format!("job {short} · {phase} · {}", s.reason),
    }
}

/// A status as the node's API sends it.
fn status_from_json(v: Value) -> Result<JobStatus> {
    serde_json::from_value(v).context("the node sent an invalid job status")
}

/// Prints the verified output (or fails with the job's reason).
fn finish(
    ctx: &Context,
    api: &Api,
    s: &JobStatus,
    out: Option<&Path>,
    started: Instant,
) -> Result<()> {
    if s.phase != "verified" {
        bail!("job {} {}: {}", s.id, s.phase, s.reason);
    }
    let cid = s.output.clone().context("a verified job without output")?;
    let mut bytes = Vec::new();
    api.call_stream("cat", &[("arg", &cid)])?
        .read_to_end(&mut bytes)
        .context("cannot read the output from the node")?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if ctx.json {
        let mut obj = json!({
            "job_id": s.id,
            "phase": s.phase,
            "status": s.status,
            "output_cid": cid,
            "fuel_used": s.fuel_used,
            "agreeing": s.agreeing,
            "disagreeing": s.disagreeing,
            "replicas": s.replicas,
            "reason": s.reason,
            "error": s.error,
            "message": s.message,
            "stderr": s.stderr,
            "time_ms": ms,
        });
        match out {
            Some(path) => {
                write_file(path, &bytes)?;
                obj["output_file"] = json!(path);
            }
            None => match String::from_utf8(bytes) {
                Ok(text) => obj["output"] = text.into(),
                Err(e) => obj["output_hex"] = hex::encode(e.as_bytes()).into(),
            },
        }
        ctx.print_json(&obj)?;
        return verified_failure(s);
    }
    match out {
        Some(path) => write_file(path, &bytes)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .context("cannot write the output")?;
            stdout.flush().ok();
        }
    }
    if s.error.is_some() {
        print_job_stderr(s);
        return verified_failure(s);
    }
    eprintln!(
        "job {} verified ({}) · status: {} · fuel used: {} · output: {} bytes, {cid} · {:.0} ms",
        s.id,
        agreement(s),
        s.status.as_deref().unwrap_or("?"),
        s.fuel_used.unwrap_or(0),
        bytes_len(out, &bytes),
        ms
    );
    Ok(())
}

/// How the replicas voted, out of all asked for: "2 of 3 replicas agreed, 1 missing: only 2 workers ran it".
fn agreement(s: &JobStatus) -> String {
    let (agreed, outvoted) = (s.agreeing.len(), s.disagreeing.len());
    let ran = agreed + outvoted;
    let mut text = format!("{agreed} of {} replicas agreed", s.replicas);
    if outvoted > 0 {
        text.push_str(&format!(", {outvoted} outvoted"));
    }
    let missing = usize::from(s.replicas).saturating_sub(ran);
    if missing > 0 {
        text.push_str(&format!(
            ", {missing} missing: only {ran} worker{} ran it",
            if ran == 1 { "" } else { "s" }
        ));
    }
    text
}

/// `Err` with the one-line reason of a job whose verified result is a failure (`out_of_fuel`,
/// `js_exception`, …), so the command exits non-zero; `Ok` for a verified success.
fn verified_failure(s: &JobStatus) -> Result<()> {
    match &s.error {
        None => Ok(()),
        Some(error) => bail!(
            "job {} failed ({}, verified by {} of {} replicas): {error}",
            s.id,
            s.status.as_deref().unwrap_or("?"),
            s.agreeing.len(),
            s.agreeing.len() + s.disagreeing.len()
        ),
    }
}

/// Passes on what a failed job wrote to its stderr and its full failure message (stack included), as a
/// program run locally would show them.
fn print_job_stderr(s: &JobStatus) {
    let mut err = std::io::stderr().lock();
    if let Some(text) = &s.stderr {
        let _ = err.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = writeln!(err);
        }
    }
    if let Some(message) = &s.message {
        let _ = writeln!(err, "{}", message.trim_end());
    }
}

fn bytes_len(out: Option<&Path>, bytes: &[u8]) -> u64 {
    out.and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .unwrap_or(bytes.len() as u64)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// The shortest job id prefix accepted (as git's shortest abbreviation).
pub const MIN_ID_PREFIX: usize = 4;

/// The full id of the job that `given` names: a whole id, or a prefix of at least [`MIN_ID_PREFIX`] hex
/// characters that exactly one job submitted from this node starts with (as git resolves abbreviated hashes).
fn resolve_id(ctx: &Context, given: &str) -> Result<String> {
    let given = given.trim().to_ascii_lowercase();
    if given.len() == 64 {
        JobId::from_hex(&given).map_err(|e| anyhow::anyhow!("bad job id {given:?}: {e}"))?;
        return Ok(given);
    }
    if given.len() < MIN_ID_PREFIX
        || given.len() > 64
        || !given.bytes().all(|b| b.is_ascii_hexdigit())
    {
        bail!(
            "bad job id {given:?}: expected a job id or at least its first {MIN_ID_PREFIX} hex characters"
        );
    }
    let ids: Vec<String> = load_jobs(ctx)?.into_iter().map(|s| s.id).collect();
    match_prefix(&ids, &given)
}

/// The one id among `ids` that starts with `prefix`.
fn match_prefix(ids: &[String], prefix: &str) -> Result<String> {
    let found: Vec<&String> = ids.iter().filter(|id| id.starts_with(prefix)).collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no job id starts with {prefix}"),
        many => bail!(
            "job id prefix {prefix} is ambiguous: {} jobs start with it (give more characters)",
            many.len()
        ),
    }
}

/// A job's status: from the running node, else from the market database on disk. `id` is a job id or a
/// unique prefix of one.
fn load_status(ctx: &Context, id: &str) -> Result<JobStatus> {
    let id = resolve_id(ctx, id)?;
    let job_id = JobId::from_hex(&id).map_err(|e| anyhow::anyhow!("bad job id {id:?}: {e}"))?;
    if let Some(api) = client::running(&ctx.home) {
        return status_from_json(api.call("job/status", &[("arg", &id)])?);
    }
    let db = open_db(ctx)?;
    let job = db
        .requester_job(&job_id)?
        .with_context(|| format!("no job {id} in {}", ctx.home.root().display()))?;
    Ok(JobStatus::of(&job))
}

fn open_db(ctx: &Context) -> Result<MarketDb> {
    let dir = ctx.home.market_dir();
    if !dir.exists() {
        bail!(
            "no jobs have been submitted from {}",
            ctx.home.root().display()
        );
    }
    MarketDb::open(&dir).with_context(|| format!("cannot open {}", dir.display()))
}

/// `jobmesh job status`.
pub fn status(ctx: &Context, args: &JobIdArg) -> Result<()> {
    let s = load_status(ctx, &args.id)?;
    if ctx.json {
        ctx.print_json(&json!(s))?;
        return Ok(());
    }
    crate::outln!("job      {}", s.id)?;
    crate::outln!("phase    {}", s.phase)?;
    crate::outln!("reason   {}", s.reason)?;
    crate::outln!(
        "replicas {} · offers {} · assigned {} · committed {} · revealed {}",
        s.replicas,
        s.offers,
        s.assigned,
        s.committed,
        s.revealed
    )?;
    if let Some(out) = &s.output {
        crate::outln!(
            "output   {out} (status {}, fuel {})",
            s.status.as_deref().unwrap_or("?"),
            s.fuel_used.unwrap_or(0)
        )?;
        crate::outln!("agreeing {}", s.agreeing.join(", "))?;
        if !s.disagreeing.is_empty() {
            crate::outln!("outvoted {}", s.disagreeing.join(", "))?;
        }
    }
    if let Some(error) = &s.error {
        crate::outln!("error    {error}")?;
    }
    for (name, text) in [("message", &s.message), ("stderr", &s.stderr)] {
        if let Some(text) = text {
            crate::outln!("{name}:")?;
            for line in text.lines() {
                crate::outln!("  {line}")?;
            }
        }
    }
    Ok(())
}

/// The jobs submitted from this node: from the running node, else from the market database on disk.
fn load_jobs(ctx: &Context) -> Result<Vec<JobStatus>> {
    Ok(match client::running(&ctx.home) {
        Some(api) => {
            let v = api.call("job/list", &[])?;
            v["Jobs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .cloned()
                        .map(status_from_json)
                        .collect::<Result<_>>()
                })
                .transpose()?
                .unwrap_or_default()
        }
        None if !ctx.home.market_dir().exists() => Vec::new(),
        None => open_db(ctx)?
            .requester_jobs()?
            .iter()
            .map(JobStatus::of)
            .collect(),
    })
}

/// `jobmesh job list`.
pub fn list(ctx: &Context) -> Result<()> {
    let jobs = load_jobs(ctx)?;
    if ctx.json {
        ctx.print_json(&json!({ "jobs": jobs }))?;
        return Ok(());
    }
    if jobs.is_empty() {
        eprintln!("no jobs yet (submit one with `jobmesh job submit`)");
    }
    for s in jobs {
        crate::outln!("{}  {:<10} {}", s.id, s.phase, s.reason)?;
    }
    Ok(())
}

/// `jobmesh job result`.
pub fn result(ctx: &Context, args: &ResultArgs) -> Result<()> {
    let s = load_status(ctx, &args.id)?;
    let cid = match (&s.output, s.phase.as_str()) {
        (Some(cid), "verified") => cid.clone(),
        _ => bail!("job {} has no result: {} ({})", s.id, s.phase, s.reason),
    };
    let bytes = match client::running(&ctx.home) {
        Some(api) => {
            let mut bytes = Vec::new();
            api.call_stream("cat", &[("arg", &cid)])?
                .read_to_end(&mut bytes)
                .context("cannot read the output from the node")?;
            bytes
        }
        None => {
            let store = jobmesh_store::Store::open(&ctx.home.blocks_dir())?;
            let mut bytes = Vec::new();
            jobmesh_store::unixfs::cat(&store, &jobmesh_store::parse_cid(&cid)?, &mut bytes)?;
            bytes
        }
    };
    match &args.output {
        Some(path) => write_file(path, &bytes)?,
        None => std::io::stdout()
            .lock()
            .write_all(&bytes)
            .context("cannot write the output")?,
    }
    if s.error.is_some() {
        print_job_stderr(&s);
    }
    verified_failure(&s)
}

/// `jobmesh job cancel`.
pub fn cancel(ctx: &Context, args: &JobIdArg) -> Result<()> {
    let id = resolve_id(ctx, &args.id)?;
    let api = client::require(&ctx.home)?;
    let s = status_from_json(api.call("job/cancel", &[("arg", &id)])?)?;
    if ctx.json {
        ctx.print_json(&json!(s))?;
    } else {
        crate::outln!("job {} {}: {}", s.id, s.phase, s.reason)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_names_one_job_or_says_why_not() {
        let ids = vec![
            "abcd01".to_string(),
            "abcd02".to_string(),
            "ef0000".to_string(),
        ];
        assert_eq!(match_prefix(&ids, "ef00").unwrap(), "ef0000");
        assert_eq!(match_prefix(&ids, "abcd02").unwrap(), "abcd02");
        let ambiguous = match_prefix(&ids, "abcd").unwrap_err().to_string();
        assert!(ambiguous.contains("ambiguous: 2 jobs"), "{ambiguous}");
        let unknown = match_prefix(&ids, "1234").unwrap_err().to_string();
        assert!(unknown.contains("no job id starts with 1234"), "{unknown}");
    }
}
