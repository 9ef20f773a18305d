//! What a node measures about itself, exposed in the Prometheus text format at `GET /metrics`.
//!
//! Histograms of job runs (fuel, seconds) are kept as they happen ([`ExecMetrics`], shared with the market's
//! worker); everything else (peers, gossip and bitswap counts from `jobmesh_p2p::NetStats`, jobs by phase,
//! store usage, lotteries by side and status with their gas and values) is read at scrape time.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;

pub use jobmesh_market::exec_metrics::ExecMetrics;

/// The values read at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Connected peers.
    pub peers: usize,
    /// Requested jobs by phase name.
    pub jobs: std::collections::BTreeMap<String, usize>,
    /// Blocks and bytes in the store.
    pub store_blocks: u64,
    /// Bytes in the store.
    pub store_bytes: u64,
    /// Lotteries by (side, status), if the node settles.
    pub lotteries: std::collections::BTreeMap<(String, String), usize>,
    /// Gas spent on settlement transactions (commits, claims, share claims).
    pub settlement_gas: u64,
    /// Value of the lotteries this node committed, in wei.
    pub paid_wei: f64,
    /// Value of the lotteries this node won and claimed, in wei.
    pub won_wei: f64,
    /// Reachability, relays and hole punches.
    pub nat: Option<jobmesh_p2p::NatStatus>,
}

impl Snapshot {
    /// Adds the settlement figures from the node's lottery records.
    pub fn add_lotteries(&mut self, records: &[crate::settlement::LotteryRecord]) {
        use crate::settlement::{LotteryStatus, Side};
        for r in records {
            let side = match r.side {
                Side::Payer { .. } => "payer",
                Side::Payee { .. } => "payee",
            };
            let status = serde_json::to_value(r.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            *self
                .lotteries
                .entry((side.to_string(), status))
                .or_default() += 1;
            self.settlement_gas += r.gas_used;
            let total: f64 = r.lottery.description.total.into();
            match (side, r.status) {
                ("payer", s) if s != LotteryStatus::Abandoned => self.paid_wei += total,
                ("payee", LotteryStatus::Claimed) => self.won_wei += total,
                _ => {}
            }
        }
    }
}

/// A gauge family with one gauge per label set.
fn gauges(
    rows: impl Iterator<Item = (Vec<(String, String)>, usize)>,
) -> Family<Vec<(String, String)>, Gauge> {
    let family = Family::<Vec<(String, String)>, Gauge>::default();
    for (labels, n) in rows {
        family.get_or_create(&labels).set(n as i64);
    }
    family
}

/// Reachability (one gauge per state, 1 for the current one), relays and hole punches.
fn register_nat(r: &mut Registry, nat: &jobmesh_p2p::NatStatus) {
    use jobmesh_p2p::Reachability as R;
    let states = [R::Unknown, R::Public, R::Private].map(|s| {
        (
            vec![("state".to_string(), s.to_string())],
            usize::from(s == nat.reachability),
        )
    });
    r.register(
        "reachability",
        "Whether this node is publicly reachable, as AutoNAT found (1 for the current state)",
        gauges(states.into_iter()),
    );
    r.register(
        "relays",
        "Relays holding a reservation for this node",
        ConstGauge::new(nat.relays.len() as i64),
    );
    r.register(
        "relayed_for",
        "Peers reserved on this node as their relay",
        ConstGauge::new(nat.relayed_for as i64),
    );
    r.register(
        "hole_punches",
        "Hole punches by result",
        gauges(
            [
                ("ok", nat.hole_punches),
                ("failed", nat.hole_punch_failures),
            ]
            .into_iter()
            .map(|(k, v)| (vec![("result".to_string(), k.to_string())], v as usize)),
        ),
    );
}

/// Renders the Prometheus text exposition of a node.
pub fn render(net: &jobmesh_p2p::NetStats, exec: &ExecMetrics, snap: &Snapshot) -> String {
    let mut r = Registry::with_prefix("jobmesh");
    r.register(
        "peers",
        "Connected peers",
        ConstGauge::new(snap.peers as i64),
    );
    if let Some(nat) = &snap.nat {
        register_nat(&mut r, nat);
    }
    let counters = [
        (
            "gossip_messages",
            "Gossip messages delivered",
            &net.gossip_messages,
        ),
        (
            "gossip_bytes",
            "Gossip payload bytes delivered",
            &net.gossip_bytes,
        ),
        (
            "gossip_rejected",
            "Gossip messages rejected by validation",
            &net.gossip_rejected,
        ),
        (
            "bitswap_blocks",
            "Blocks received by bitswap",
            &net.bitswap_blocks,
        ),
        (
            "bitswap_bytes",
            "Bytes received by bitswap",
            &net.bitswap_bytes,
        ),
        (
            "bitswap_misbehaved",
            "Malformed or oversized bitswap frames received",
            &net.bitswap_misbehaved,
        ),
        (
            "peers_banned",
            "Peers banned for sending bad bitswap frames",
            &net.peers_banned,
        ),
        (
            "connections_opened",
            "Connections established (dialed or accepted)",
            &net.connections_opened,
        ),
        (
            "peers_trimmed",
            "Peers disconnected by the connection manager",
            &net.peers_trimmed,
        ),
        (
            "dht_queries",
            "DHT queries run (bootstraps, provider lookups and announcements)",
            &net.dht_queries,
        ),
        (
            "dht_provider_lookups",
            "DHT provider lookups (of the DHT queries)",
            &net.provider_lookups,
        ),
        (
            "direct_requests_received",
            "Market requests received",
            &net.direct_received,
        ),
        (
            "direct_requests_sent",
            "Market requests sent",
            &net.direct_sent,
        ),
    ];
    for (name, help, value) in counters {
        r.register(name, help, ConstCounter::new(value.load(Ordering::Relaxed)));
    }
    let jobs = gauges(
        snap.jobs
            .iter()
            .map(|(phase, n)| (vec![("phase".into(), phase.clone())], *n)),
    );
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
    let lotteries = gauges(snap.lotteries.iter().map(|((side, status), n)| {
        let labels = vec![
            ("side".into(), side.clone()),
            ("status".into(), status.clone()),
        ];
        (labels, *n)
    }));
    r.register(
        "lotteries",
        "Settlement lotteries this node pays (side=payer) or is paid by (side=payee), by status",
        lotteries,
    );
    r.register(
        "settlement_gas",
        "Gas spent on settlement transactions",
        ConstCounter::new(snap.settlement_gas),
    );
    r.register(
        "settlement_paid_wei",
        "Value of the lotteries this node committed, in wei",
        ConstGauge::new(snap.paid_wei),
    );
    r.register(
        "settlement_won_wei",
        "Value of the lotteries this node won and claimed, in wei",
        ConstGauge::new(snap.won_wei),
    );
    let mut out = String::new();
    // Writing into a String does not fail.
    let _ = encode(&mut out, &r);
    out
}
