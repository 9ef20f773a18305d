//! Market latency: submit → verified result for a trivial job with 3 replicas on a 4-node loopback mesh
//! (1 requester, 3 workers, all in this process over TCP on 127.0.0.1).
//!
//! Prints p50/p99 over `MARKET_BENCH_JOBS` sequential jobs (default 200) and jobs/s with
//! `MARKET_BENCH_IN_FLIGHT` jobs in flight (default 50). Run: `cargo bench -p jobmesh-simnet --bench market`.
//! The anchor: Bacalhau and Golem take seconds for the same round trip; the goal is p50 ≤ 50 ms.

use std::time::{Duration, Instant};

use jobmesh_node::market::WorkerPolicy;
use jobmesh_p2p::Transport;
use jobmesh_simnet::Cluster;

const TRIVIAL_JOB: &str = "Javy.IO.writeSync(1, new TextEncoder().encode('ok'));";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    // `cargo test --benches` runs benches with `--bench`-less args; only run when asked to bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let jobs = env("MARKET_BENCH_JOBS", 200);
    let in_flight = env("MARKET_BENCH_IN_FLIGHT", 50);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let worker = WorkerPolicy {
            max_concurrent: in_flight.max(4),
            ..WorkerPolicy::default()
        };
        let roles = [None, Some(worker.clone()), Some(worker.clone()), Some(worker)];
        let cluster = Cluster::start(&roles, Transport::Tcp).await.expect("cluster");
        let market = cluster.members[0].market.clone();
        let submit = |i: usize| {
            let mut req = cluster
                .js_job(0, TRIVIAL_JOB, format!("{i}").as_bytes(), 3)
                .expect("job");
            req.limits.max_fuel = 100_000_000;
            req
        };
        // Warm-up: the workers earn a record, so the offer window closes at the third offer.
        for i in 0..5 {
            let id = market.submit(submit(i)).await.expect("submit");
            let s = market.wait(&id, Duration::from_secs(30)).await.expect("wait");
            assert_eq!(s.phase, "verified", "{}", s.reason);
        }

        let mut latencies = Vec::with_capacity(jobs);
        for i in 0..jobs {
            let req = submit(1_000 + i);
            let started = Instant::now();
            let id = market.submit(req).await.expect("submit");
            let s = market.wait(&id, Duration::from_secs(30)).await.expect("wait");
            assert_eq!(s.phase, "verified", "{}", s.reason);
            latencies.push(started.elapsed());
            if started.elapsed() > Duration::from_millis(500) {
                // An outlier: show when each replica was assigned and when revealing started.
                let job = market.db().requester_job(&id).expect("db").expect("job");
                let at = |t: u64| t.saturating_sub(job.announced_ms);
                let slots: Vec<String> = job
                    .slots
                    .values()
                    .map(|s| format!("assigned +{} ms", at(s.assigned_ms)))
                    .collect();
                eprintln!(
                    "slow job {} ({:?}): {} offers; {}; reveal from +{:?} ms",
                    id,
                    started.elapsed(),
                    job.offers.len(),
                    slots.join("; "),
                    job.reveal_started_ms.map(at)
                );
            }
        }
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "market/submit-to-verified (3 replicas, 4 nodes, {jobs} jobs): p50 {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            ms(latencies[0]),
            ms(latencies[latencies.len() - 1]),
        );

        let total = jobs.max(in_flight);
        let reqs: Vec<_> = (0..total).map(|i| submit(100_000 + i)).collect();
        let started = Instant::now();
        let mut reqs = reqs.into_iter();
        let mut running = Vec::new();
        let mut done = 0;
        loop {
            while running.len() < in_flight {
                let Some(req) = reqs.next() else { break };
                running.push(market.submit(req).await.expect("submit"));
            }
            if running.is_empty() {
                break;
            }
            let id = running.remove(0);
            let s = market.wait(&id, Duration::from_secs(60)).await.expect("wait");
            assert_eq!(s.phase, "verified", "{}", s.reason);
            done += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "market/throughput ({in_flight} in flight): {done} jobs in {secs:.2} s = {:.1} jobs/s",
            done as f64 / secs
        );
        cluster.shutdown().await;
    });
}
