//! Histograms of this node's job runs as a worker (fuel, seconds, status), recorded as they finish. The
//! daemon renders them at `GET /metrics` beside what it reads at scrape time.
//!
//! Owns: the histograms only. Must not touch: rendering or the registry (the daemon's `metrics`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

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
