//! `jobmesh job …`: compile JavaScript jobs to bytecode and run jobs locally (deterministically, with fuel);
//! the market subcommands (submit, status, result, list, cancel) live in [`super::job_market`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use jobmesh_exec::{Executor, JobCode, JsBytecode, Limits, Plugin, Status};
use jobmesh_store::unixfs::Profile;

use crate::context::{parse_size, Context};

/// `jobmesh job`: build and run jobs.
#[derive(Debug, Args)]
pub struct JobCommand {
    /// What to do with a job.
    #[command(subcommand)]
    pub command: JobSubcommand,
}

/// The `job` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobSubcommand {
    /// Compile a JavaScript job to QuickJS bytecode (`.jsbc`), reporting syntax errors with line and column.
    #[command(
        after_help = "Examples:\n  jobmesh job build examples/wordcount.js -o wordcount.jsbc\n  \
                      jobmesh job build examples/wordcount.js --wasm -o wordcount.wasm\n    \
                      (a Javy module: runs anywhere with the plugin, e.g. `wasmtime run --preload \\\n    \
                      jobmesh_javy_v1=exec/plugin/jobmesh-plugin.wasm wordcount.wasm < input.json`)"
    )]
    Build(BuildArgs),
    /// Run a job on this machine exactly as a worker would: output on stdout, fuel and time on stderr.
    #[command(
        name = "run-local",
        after_help = "Examples:\n  jobmesh job run-local examples/wordcount.js --input examples/wordcount.input.json\n  \
                      jobmesh job run-local job.jsbc --input in.json --fuel 1000000000 --memory 32MiB --json"
    )]
    RunLocal(RunLocalArgs),
    /// Run a job on the mesh: workers run replicas, a majority must agree; prints the verified output.
    #[command(
        after_help = "Examples:\n  jobmesh job submit examples/wordcount.js --input examples/wordcount.input.json\n  \
                      jobmesh job submit job.js -i in.json --replicas 5 --max-fuel 2000000000 --price 100 --timeout 2m \\\n    \
                      --verifier verify.js --json\n\n\
                      Needs a running node (`jobmesh node start`) connected to workers (`jobmesh node start --worker`).\n\
                      Ctrl-C stops following the job, not the job: see `job status <id>`, `job cancel <id>`."
    )]
    Submit(super::job_market::SubmitArgs),
    /// Show where a submitted job is (works without a running node too).
    #[command(after_help = "Example:\n  jobmesh job status 3f2a…")]
    Status(super::job_market::JobIdArg),
    /// Write a verified job's output to stdout or a file.
    #[command(after_help = "Example:\n  jobmesh job result 3f2a… -o out.json")]
    Result(super::job_market::ResultArgs),
    /// List the jobs submitted from this node.
    #[command(after_help = "Example:\n  jobmesh job list --json")]
    List,
    /// Cancel a job that is not over yet.
    #[command(after_help = "Example:\n  jobmesh job cancel 3f2a…")]
    Cancel(super::job_market::JobIdArg),
    /// Re-run a submitted job here with its log lines (fuel at each), stderr, exception and the limit it hit.
    #[command(
        after_help = "Examples:\n  jobmesh job replay 3f2a…\n  jobmesh job replay 3f2a… --json --timeout 30s"
    )]
    Replay(super::job_replay::ReplayArgs),
    /// Print a finished job's receipt CID (`--json`: the decoded receipt).
    #[command(
        after_help = "Example:\n  jobmesh job receipt 3f2a…\n  jobmesh job receipt 3f2a… --json"
    )]
    Receipt(super::job_receipt::ReceiptArgs),
    /// Check a receipt on this node: fetch it, its code and input, check every signature, re-run the job and
    /// compare output, status and fuel. Exits 0 if it matches, 1 if not, 2 if it cannot be checked.
    #[command(after_help = "Example:\n  jobmesh job verify bafyrei…")]
    Verify(super::job_receipt::VerifyArgs),
}

/// Arguments of `jobmesh job build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The JavaScript source.
    pub source: PathBuf,
    /// Where to write the bytecode (default: the source path with the extension `.jsbc`, or `.wasm`).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write a Javy dynamic module instead: a `.wasm` holding the bytecode that imports the plugin (its
    /// memory, `cabi_realloc` and `invoke`), runnable by any wasm runtime given the plugin. jobmesh runs it
    /// exactly as the `.jsbc` (same output and fuel).
    #[arg(long)]
    pub wasm: bool,
    /// Compile with this Javy plugin build instead of the bundled one.
    #[arg(long, value_name = "PLUGIN.wasm")]
    pub plugin: Option<PathBuf>,
}

/// Arguments of `jobmesh job run-local`.
#[derive(Debug, Args)]
pub struct RunLocalArgs {
    /// The job: JavaScript source (`.js`), bytecode from `job build` (`.jsbc`) or a WASI command module (`.wasm`).
    pub code: PathBuf,
    /// The job's input, given on its stdin (`-` for this process's stdin). Default: empty.
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Fuel limit (about one unit per wasm instruction).
    #[arg(long, default_value_t = Limits::default().fuel)]
    pub fuel: u64,
    /// Memory limit, e.g. 64MiB, 512KiB, 1GiB or a number of bytes.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub memory: u64,
    /// Output (stdout) limit.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    pub output_limit: u64,
    /// Make this Javy plugin build available (for bytecode compiled with it).
    #[arg(long, value_name = "PLUGIN.wasm")]
    pub plugin: Option<PathBuf>,
}

/// Runs a `job` subcommand.
pub fn run(ctx: &Context, cmd: &JobCommand) -> Result<()> {
    match &cmd.command {
        JobSubcommand::Build(args) => build(ctx, args),
        JobSubcommand::RunLocal(args) => run_local(ctx, args),
        JobSubcommand::Submit(args) => super::job_market::submit(ctx, args),
        JobSubcommand::Status(args) => super::job_market::status(ctx, args),
        JobSubcommand::Result(args) => super::job_market::result(ctx, args),
        JobSubcommand::List => super::job_market::list(ctx),
        JobSubcommand::Cancel(args) => super::job_market::cancel(ctx, args),
        JobSubcommand::Replay(args) => super::job_replay::replay(ctx, args),
        JobSubcommand::Receipt(args) => super::job_receipt::receipt(ctx, args),
        JobSubcommand::Verify(args) => super::job_receipt::verify(ctx, args),
    }
}

/// The executor with the node's module cache (`<data-dir>/cache/modules`) and an optional extra plugin.
/// Returns it with the CID of the plugin to compile with.
fn executor(ctx: &Context, plugin: Option<&Path>) -> Result<(Executor, jobmesh_exec::Cid)> {
    let exec = Executor::new(Some(ctx.home.module_cache_dir()))?;
    let cid = match plugin {
        None => Plugin::bundled().cid(),
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read plugin {}", path.display()))?;
            let plugin = Plugin::from_bytes(bytes);
            let cid = plugin.cid();
            exec.add_plugin(plugin);
            cid
        }
    };
    Ok((exec, cid))
}

fn compile(exec: &Executor, plugin: &jobmesh_exec::Cid, path: &Path) -> Result<JsBytecode> {
    let source = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let source = String::from_utf8(source)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    let name = path.display().to_string();
    Ok(exec.compile_js(plugin, &name, &source)?)
}

fn build(ctx: &Context, args: &BuildArgs) -> Result<()> {
    let (exec, plugin) = executor(ctx, args.plugin.as_deref())?;
    let code = compile(&exec, &plugin, &args.source)?;
    let stored = code.to_bytes();
    // Named as `job submit` stores it (the bytecode, also when given the module): a UnixFS file under the kubo
    // profile.
    let cid = jobmesh_store::unixfs::file_cid(&stored, &Profile::KUBO)?;
    let (bytes, extension) = if args.wasm {
        let namespace = exec
            .plugin(&plugin)
            .and_then(|p| p.import_namespace())
            .with_context(|| {
                format!(
                    "plugin {plugin} declares no import namespace: it cannot back a Javy module"
                )
            })?;
        (jobmesh_exec::to_module(&code, &namespace), "wasm")
    } else {
        (stored, "jsbc")
    };
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| args.source.with_extension(extension));
    std::fs::write(&out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "output": out, "code_cid": cid.to_string(), "plugin_cid": plugin.to_string(), "bytes": bytes.len(),
            "format": if args.wasm { "javy-module" } else { "jsbc" },
        }))?;
    } else {
        crate::outln!(
            "wrote {} ({} bytes{}, code CID {cid}, plugin {plugin})",
            out.display(),
            bytes.len(),
            if args.wasm { ", a Javy module" } else { "" }
        )?;
    }
    Ok(())
}

fn run_local(ctx: &Context, args: &RunLocalArgs) -> Result<()> {
    let (exec, plugin) = executor(ctx, args.plugin.as_deref())?;
    let raw = std::fs::read(&args.code)
        .with_context(|| format!("cannot read {}", args.code.display()))?;
    let precompiled = raw.starts_with(jobmesh_exec::JSBC_MAGIC);
    let started = Instant::now();
    let code = match JobCode::from_bytes(&raw) {
        Ok(code) => code,
        Err(_) if args.code.extension().is_some_and(|e| e == "wasm") => JobCode::Wasm(raw),
        Err(_) => JobCode::Js(compile(&exec, &plugin, &args.code)?),
    };
    let compiled = started.elapsed();
    let input = match &args.input {
        None => Vec::new(),
        Some(p) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .context("cannot read stdin")?;
            buf
        }
        Some(p) => {
            std::fs::read(p).with_context(|| format!("cannot read input {}", p.display()))?
        }
    };
    let limits = Limits {
        fuel: args.fuel,
        memory_bytes: args.memory,
        output_bytes: args.output_limit,
        ..Limits::default()
    };
    let run_started = Instant::now();
    let outcome = exec.run(&code, &input, &limits)?;
    let ran = run_started.elapsed();
    // The CID the market names this output by (a UnixFS file under the kubo profile).
    let output_cid = jobmesh_store::unixfs::file_cid(&outcome.output, &Profile::KUBO)?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    if ctx.json {
        let mut obj = serde_json::json!({
            "status": outcome.status.name(),
            "output_cid": output_cid.to_string(),
            "fuel_used": outcome.fuel_used,
            "job_id": outcome.job_id.to_hex(),
            "time_ms": ms(ran),
            "compile_ms": ms(compiled),
            "stderr": String::from_utf8_lossy(&outcome.stderr),
        });
        match String::from_utf8(outcome.output.clone()) {
            Ok(text) => obj["output"] = text.into(),
            Err(_) => obj["output_hex"] = hex::encode(&outcome.output).into(),
        }
        if outcome.status != Status::Ok {
            obj["message"] = outcome.status.describe(&limits).into();
        }
        ctx.print_json(&obj)?;
    } else {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&outcome.output)
            .context("cannot write the output")?;
        stdout.flush().ok();
        let stderr = String::from_utf8_lossy(&outcome.stderr);
        if !stderr.is_empty() {
            eprint!("{stderr}");
            if !stderr.ends_with('\n') {
                eprintln!();
            }
        }
        eprintln!(
            "status: {} · fuel used: {} · time: {:.2} ms{} · output: {} bytes, {output_cid}",
            outcome.status.name(),
            outcome.fuel_used,
            ms(ran),
            if compiled.as_micros() > 0 && matches!(code, JobCode::Js(_)) && !precompiled {
                format!(" (+{:.2} ms compiling)", ms(compiled))
            } else {
                String::new()
            },
            outcome.output.len(),
        );
    }
    if outcome.status != Status::Ok {
        bail!("{}", outcome.status.describe(&limits));
    }
    Ok(())
}
