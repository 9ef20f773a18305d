//! The `jobmesh` command line: global options, the subcommand tree, and error reporting at the edge.
//!
//! Each subcommand group lives in its own module under [`crate::commands`]; this file only lists them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::context::Context;
use jobmesh_node::home::Home;

/// A peer-to-peer compute market: content-addressed storage, deterministic WebAssembly jobs, lottery payments.
#[derive(Debug, Parser)]
#[command(
    name = "jobmesh",
    version,
    about,
    long_about = None,
    after_help = "Examples:\n  jobmesh init\n  echo hello | jobmesh add -\n  jobmesh cat bafkreie...\n\nEvery subcommand has its own --help with an example."
)]
pub struct Cli {
    /// Options every subcommand understands.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Data directory (identity, blocks, pins). Default: $JOBMESH_HOME, else the platform data dir.
    #[arg(long, global = true, env = "JOBMESH_HOME", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Every subcommand group of `jobmesh`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data directory and this node's identity (an ed25519 key, shown as a libp2p PeerId).
    Init(commands::init::InitArgs),
    /// Add a file to the store and print its CID (the same CID kubo/Helia give under the same profile).
    Add(commands::store::AddArgs),
    /// Write a file's bytes to standard output.
    Cat(commands::store::CatArgs),
    /// Write a file or directory to a path.
    Get(commands::store::GetArgs),
    /// Raw blocks: put, get, stat.
    #[command(subcommand)]
    Block(commands::store::BlockCommand),
    /// Pins: what garbage collection keeps.
    #[command(subcommand)]
    Pin(commands::store::PinCommand),
    /// The store as a whole: gc, verify, stat.
    #[command(subcommand)]
    Repo(commands::store::RepoCommand),
    /// DAGs as CARv1 archives: export, import.
    #[command(subcommand)]
    Dag(commands::store::DagCommand),
    /// Jobs: build, run-local; on the mesh: submit, status, result, list, cancel, replay.
    Job(commands::job::JobCommand),
    /// Run a node on the peer mesh (Kademlia, gossipsub, bitswap) with its local control API.
    #[command(subcommand)]
    Node(commands::node::NodeCommand),
    /// Show this node's PeerId (and its addresses when it is running).
    Id(commands::net::IdArgs),
    /// The running node's connections: peers, connect.
    #[command(subcommand)]
    Swarm(commands::net::SwarmCommand),
    /// The running node's DHT: findprovs.
    #[command(subcommand)]
    Dht(commands::net::DhtCommand),
    /// Settlement on chain: deploy, deposit, withdraw, status, commit, lotteries, claim, check.
    Settle(commands::settle::SettleCommand),
    /// Simulate a whole mesh in this process: nodes, jobs, faults and settlement, then a report.
    #[command(
        after_help = "Examples:\n  jobmesh simnet --nodes 20 --requesters 2 --jobs 100 --report out/\n  \
        jobmesh simnet --nodes 100 --requesters 10 --jobs 1000 --replicas 3 --byzantine 0.1 --crash 0.1 --seed 42\n  \
        jobmesh simnet --nodes 100 --jobs 1000 --links regions --loss 0.01 --bandwidth 50Mbit --report out/\n  \
        jobmesh simnet --nodes 100 --jobs 3000 --byzantine 0.1 --saboteurs 0.05 --sabotage-rate 0.3 --collude --stake \
        --verification credibility --error-rate 1e-3 --assumed-fault-rate 0.1"
    )]
    Simnet(commands::simnet::SimnetArgs),
}

/// Parses the command line, runs the command and turns an error into one line on stderr and exit code 1.
/// A closed standard output (`jobmesh job list | head -1`, `jobmesh cat big | true`) is not an error: the
/// command stops writing and exits 0 without a message, as ripgrep does.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    // A hundred simulated nodes' warnings would drown the simulator's progress: it logs errors only by default.
    init_tracing(if matches!(cli.command, Command::Simnet(_)) {
        "error"
    } else {
        "warn"
    });
    let ctx = Context {
        home: Home::new(
            cli.global
                .data_dir
                .clone()
                .unwrap_or_else(Home::platform_default),
        ),
        json: cli.global.json,
    };
    match dispatch(&ctx, &cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`jobmesh cat big | head`) is not an error worth reporting.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            report_error(&ctx, &err);
            // A receipt that cannot be checked is bad input (2), unlike one that does not match (1).
            if err.is::<commands::job_receipt::BadInput>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn dispatch(ctx: &Context, command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Init(args) => commands::init::run(ctx, args),
        Command::Add(args) => commands::store::add(ctx, args),
        Command::Cat(args) => commands::store::cat(ctx, args),
        Command::Get(args) => commands::store::get(ctx, args),
        Command::Block(cmd) => commands::store::block(ctx, cmd),
        Command::Pin(cmd) => commands::store::pin(ctx, cmd),
        Command::Repo(cmd) => commands::store::repo(ctx, cmd),
        Command::Dag(cmd) => commands::store::dag(ctx, cmd),
        Command::Job(cmd) => commands::job::run(ctx, cmd),
        Command::Node(cmd) => commands::node::run(ctx, cmd),
        Command::Id(args) => commands::net::id(ctx, args),
        Command::Swarm(cmd) => commands::net::swarm(ctx, cmd),
        Command::Dht(cmd) => commands::net::dht(ctx, cmd),
        Command::Settle(cmd) => commands::settle::run(ctx, cmd),
        Command::Simnet(args) => commands::simnet_run::run(ctx, args),
    }
}

/// Errors are one line (`error: outer: inner: cause`), or a JSON object with `--json`. Never a backtrace.
fn report_error(ctx: &Context, err: &anyhow::Error) {
    let line = one_line(err);
    if ctx.json {
        eprintln!("{}", serde_json::json!({ "error": line }));
    } else {
        eprintln!("error: {line}");
    }
}

/// The error and its causes joined by `: `. A cause the line already ends with is left out: some libraries
/// print their source inside their own message (multiaddr's "failed to parse: <reason>" has `<reason>` as its
/// source too), which `{:#}` would print twice.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing(default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colours only for a person at a terminal: a log file or a pipe gets plain text (and NO_COLOR is honoured).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .try_init();
}
