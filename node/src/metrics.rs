//! What a node measures about itself, exposed in the Prometheus text format at `GET /metrics`.
//!
//! Histograms of job runs (fuel, seconds) are kept as they happen ([`ExecMetrics`], shared with the market's
//! worker); everything else (peers, gossip and bitswap counts from `jobmesh_p2p::NetStats`, jobs by phase,
//! store usage) is read at scrape time.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;

/// Job runs on this node (as a worker), recorded as they finish.
#[derive(Debug, Clone)]
pub struct ExecMetrics {
    /// Fuel used per run.
    pub fuel: Histogram,
    /// Wall time per run, in seconds.
    pub seconds: Histogram,
    /// Runs by status (`ok`, `out_of_fuel`, …).
    pub runs: Family<Vec<(String, String)>, Counter>,
}

impl Default for ExecMetrics {
    fn default() -> Self {
        ExecMetrics {
            fuel: Histogram::new(exponential_buckets(1e5, 10.0, 8)),
            seconds: Histogram::new(exponential_buckets(0.001, 4.0, 10)),
            runs: Family::default(),
        }
    }
}

impl ExecMetrics {
    /// Records one finished run.
    pub fn record(&self, fuel: u64, seconds: f64, status: &str) {
        self.fuel.observe(fuel as f64);
        self.seconds.observe(seconds);
        self.runs
            .get_or_create(&vec![("status".into(), status.into())])
            .inc();
    }
}

/// The values read at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Connected peers.
    pub peers: usize,
    /// Requested jobs by phase name.
    pub jobs: Vec<(String, usize)>,
    /// Blocks and bytes in the store.
    pub store_blocks: u64,
    /// Bytes in the store.
    pub store_bytes: u64,
}

/// Renders the Prometheus text exposition of a node.
pub fn render(net: &jobmesh_p2p::NetStats, exec: &ExecMetrics, snap: &Snapshot) -> String {
    let mut r = Registry::with_prefix("jobmesh");
    let c = |v: &std::sync::atomic::AtomicU64| ConstCounter::new(v.load(Ordering::Relaxed));
    r.register(
        "peers",
        "Connected peers",
        ConstGauge::new(snap.peers as i64),
    );
    r.register(
        "gossip_messages",
        "Gossip messages delivered",
        c(&net.gossip_messages),
    );
    r.register(
        "gossip_bytes",
        "Gossip payload bytes delivered",
        c(&net.gossip_bytes),
    );
    r.register(
        "gossip_rejected",
        "Gossip messages rejected by validation",
        c(&net.gossip_rejected),
    );
    r.register(
        "bitswap_blocks",
        "Blocks received by bitswap",
        c(&net.bitswap_blocks),
    );
    r.register(
        "bitswap_bytes",
        "Bytes received by bitswap",
        c(&net.bitswap_bytes),
    );
    r.register(
        "direct_requests_received",
        "Market requests received",
        c(&net.direct_received),
    );
    r.register(
        "direct_requests_sent",
        "Market requests sent",
        c(&net.direct_sent),
    );
    let jobs = Family::<Vec<(String, String)>, Gauge>::default();
    for (phase, n) in &snap.jobs {
        jobs.get_or_create(&vec![("phase".into(), phase.clone())])
            .set(*n as i64);
    }
    r.register("jobs", "Jobs requested by this node, by phase", jobs);
    r.register(
        "store_blocks",
        "Blocks in the store",
        ConstGauge::new(snap.store_blocks as i64),
    );
    r.register(
        "store_bytes",
        "Bytes in the store",
        ConstGauge::new(snap.store_bytes as i64),
    );
    r.register("exec_fuel", "Fuel used per job run", exec.fuel.clone());
    r.register("exec_seconds", "Seconds per job run", exec.seconds.clone());
    r.register("exec_runs", "Job runs by status", exec.runs.clone());
    let mut out = String::new();
    // Writing into a String does not fail.
    let _ = encode(&mut out, &r);
    out
}
