//! `jobmesh simnet`: its arguments (run by [`crate::commands::simnet_run`] on the simulator, `jobmesh-simnet`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::context::parse_duration;

/// Arguments of `jobmesh simnet`.
#[derive(Debug, Clone, Args)]
pub struct SimnetArgs {
    /// Nodes in the simulated mesh (requesters + workers), all in this process.
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// How many of the nodes submit jobs; the others run them.
    #[arg(long, default_value_t = 10)]
    pub requesters: usize,
    /// Jobs to submit in all (a mix of examples/: CPU-heavy, wordcount, echo, out-of-fuel, throwing).
    #[arg(long, default_value_t = 1000)]
    pub jobs: usize,
    /// Replicas per job.
    #[arg(long, default_value_t = 3)]
    pub replicas: u8,
    /// Share of workers that return wrong outputs (0–1).
    #[arg(long, default_value_t = 0.1)]
    pub byzantine: f64,
    /// Share of workers that crash once during the run and restart on their data (0–1).
    #[arg(long, default_value_t = 0.1)]
    pub crash: f64,
    /// Share of workers that are honest but slow: each run starts 1–3 s late (0–1).
    #[arg(long, default_value_t = 0.1)]
    pub slow: f64,
    /// Fresh identities that join mid-run, accept work and never answer.
    #[arg(long, default_value_t = 5)]
    pub sybils: usize,
    /// Cut the mesh in two halves for this long (e.g. 30s, at most 1h) once 20–40 % of the jobs are over (drawn
    /// from the seed), then heal it: the report says how long the two sides took to find each other again.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub partition: Option<Duration>,
    /// Seed of every random choice: the same seed gives the same outcome.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Jobs each requester keeps in flight at most: it starts with two, adds one per verified job and drops one
    /// per expired job (slow start, so a mesh that is still starting up is not flooded).
    #[arg(long, default_value_t = 20)]
    pub in_flight: usize,
    /// Peers each simulated node stays connected to at most (the connection manager's high watermark; it
    /// trims to half of it). Lower than a real node's 96 so that a hundred simulated nodes keep the sparse
    /// mesh of a large network instead of all connecting to all (at 100 nodes, 32 costs a quarter less CPU
    /// than 64; BENCHMARKS.md, "Simulator").
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub max_peers: usize,
    /// Seconds each job has to finish.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub job_timeout: f64,
    /// Folder for the report (summary.json and index.html with plots).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Link model between nodes: `none` (bytes arrive at once) or `regions` (nodes placed in seven world
    /// regions, each pair's round-trip time from published inter-region RTTs + access lines: 20–385 ms).
    /// Example: `jobmesh simnet --nodes 100 --jobs 1000 --links regions --loss 0.01 --bandwidth 50Mbit`.
    #[arg(long, value_name = "MODEL", default_value = "none", value_parser = ["none", "regions"])]
    pub links: String,
    /// Share of TCP segments lost (0–0.5): each comes late by a retransmission (one RTT, or RTT + 200 ms).
    #[arg(long, value_name = "SHARE", default_value_t = 0.0)]
    pub loss: f64,
    /// Each node's uplink, shared by its connections (e.g. 50Mbit, 1Gbit); unlimited by default.
    #[arg(long, value_name = "RATE")]
    pub bandwidth: Option<String>,
    /// Share of the workers (0–1) that are saboteurs: honest until a requester has paid them for
    /// --trusted-after results, then wrong on a seeded --sabotage-rate of that requester's jobs.
    /// Example: `jobmesh simnet --saboteurs 0.05 --sabotage-rate 0.3 --collude --verification credibility`.
    #[arg(long, value_name = "SHARE", default_value_t = 0.0)]
    pub saboteurs: f64,
    /// Share (0–1) of a trusting requester's jobs a saboteur returns a wrong output for.
    #[arg(long, value_name = "SHARE", default_value_t = 0.3)]
    pub sabotage_rate: f64,
    /// Results a requester must have paid a saboteur for before the saboteur cheats it.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub trusted_after: u64,
    /// Saboteurs and byzantine workers collude: all return one common wrong output, saboteurs on the same jobs.
    #[arg(long)]
    pub collude: bool,
    /// A cold-start Sybil crowd: this many fresh, unstaked identities present from the start that offer on every
    /// job and return the colluders' common wrong output.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub sybil_forgers: usize,
    /// Deploy the stake contract on the simulated chain; every worker but the Sybil crowd locks 0.1 ETH in it
    /// and its offers say so.
    #[arg(long)]
    pub stake: bool,
    /// How requesters verify results: `majority` (of --replicas, today's default), `m-first:M` (the first
    /// output M replicas agree on; plain `m-first` takes M from --error-rate and --assumed-fault-rate) or `credibility` (Sarmenta's credibility with spot-checks, to
    /// --error-rate under --assumed-fault-rate; docs/protocol.md, "Credibility").
    #[arg(long, value_name = "POLICY", default_value = "majority")]
    pub verification: String,
    /// Target error rate ε of every job, with `--verification credibility`.
    #[arg(long, value_name = "E", default_value_t = 1e-3)]
    pub error_rate: f64,
    /// Assumed upper bound f on the share of saboteurs, with `--verification credibility` or `m-first`.
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub assumed_fault_rate: f64,
    /// Probability that an assignment is a spot-check, with `--verification credibility`.
    #[arg(long, value_name = "Q", default_value_t = 0.1)]
    pub spot_check_rate: f64,
}
