//! Receipts: what checking one costs (`docs/protocol.md`, "Receipts"). On a 5-node loopback mesh in this process
//! (a requester, a bystander that verifies, 3 workers, TCP on 127.0.0.1) it runs the simulator's job mix
//! (cpu-heavy at 20/40/80 rounds, wordcount, echo, out-of-fuel, throws; `simnet/src/scenario.rs`) and has the
//! bystander verify each job's receipt (`Market::verify_receipt`: fetch receipt, code and input, check every
//! signature, re-run, compare). Prints per kind and overall the medians of: the check's total time, the re-run's
//! time (the job's own run time on this machine), their ratio, the time beyond the re-run (fetching and
//! signatures), and the receipt's size in bytes.
//!
//! Run: `cargo bench -p jobmesh-simnet --bench receipts` (`RECEIPT_BENCH_ROUNDS`, default 5 jobs per kind).

use std::time::Duration;

use jobmesh_node::market::WorkerPolicy;
use jobmesh_p2p::Transport;
use jobmesh_simnet::Cluster;

const THROWS_JS: &str = "const buf = new Uint8Array(64); const n = Javy.IO.readSync(0, buf);\n\
    throw new Error('job input ' + new TextDecoder().decode(buf.subarray(0, n)));\n";

/// (kind, source, input, fuel limit).
fn mix(i: usize) -> Vec<(&'static str, &'static str, Vec<u8>, Option<u64>)> {
    let cpu = include_str!("../../examples/cpu-heavy.js");
    vec![
        ("cpu-heavy/20", cpu, br#"{"rounds": 20}"#.to_vec(), None),
        ("cpu-heavy/40", cpu, br#"{"rounds": 40}"#.to_vec(), None),
        ("cpu-heavy/80", cpu, br#"{"rounds": 80}"#.to_vec(), None),
        (
            "wordcount",
            include_str!("../../examples/wordcount.js"),
            include_bytes!("../../examples/wordcount.input.json").to_vec(),
            None,
        ),
        (
            "echo",
            include_str!("../../examples/echo.js"),
            format!("job {i}").into_bytes(),
            None,
        ),
        (
            "out-of-fuel",
            cpu,
            br#"{"rounds": 100000}"#.to_vec(),
            Some(3_000_000),
        ),
        ("throws", THROWS_JS, format!("{}", i % 4).into_bytes(), None),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One verified sample: (total ms, re-run ms, receipt bytes).
type Sample = (f64, f64, usize);

fn print(kind: &str, samples: &[Sample]) {
    let total = median(samples.iter().map(|s| s.0).collect());
    let run = median(samples.iter().map(|s| s.1).collect());
    let ratio = median(samples.iter().map(|s| s.0 / s.1.max(1e-3)).collect());
    let beyond = median(samples.iter().map(|s| s.0 - s.1).collect());
    let bytes = median(samples.iter().map(|s| s.2 as f64).collect());
    println!(
        "receipts/{kind:<14} n={:<3} check {total:>8.2} ms  re-run {run:>8.2} ms  ratio {ratio:>6.2}  \
         beyond re-run {beyond:>6.2} ms  receipt {bytes:>6.0} B",
        samples.len()
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds: usize = std::env::var("RECEIPT_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let worker = WorkerPolicy {
            max_concurrent: 4,
            ..WorkerPolicy::default()
        };
        let roles = [
            None,
            None,
            Some(worker.clone()),
            Some(worker.clone()),
            Some(worker),
        ];
        let cluster = Cluster::start(&roles, Transport::Tcp)
            .await
            .expect("cluster");
        let (requester, bystander) = (&cluster.members[0].market, &cluster.members[1].market);
        let mut all: Vec<Sample> = Vec::new();
        let mut by_kind: Vec<(&str, Vec<Sample>)> = Vec::new();
        for i in 0..rounds {
            for (k, (kind, source, input, fuel)) in mix(i).into_iter().enumerate() {
                let mut req = cluster.js_job(0, source, &input, 3).expect("job");
                if let Some(f) = fuel {
                    req.limits.max_fuel = f;
                }
                let id = requester.submit(req).await.expect("submit");
                let s = requester
                    .wait(&id, Duration::from_secs(60))
                    .await
                    .expect("wait");
                assert_eq!(s.phase, "verified", "{kind}: {}", s.reason);
                let cid = jobmesh_store::parse_cid(&s.receipt.expect("a receipt")).expect("a CID");
                let r = bystander
                    .verify_receipt(cid, Duration::from_secs(30))
                    .await
                    .expect("verify");
                assert!(r.matches, "{kind}: {:?}", r.mismatches);
                let sample = (r.total_ms, r.run_ms, r.receipt_bytes);
                all.push(sample);
                if by_kind.len() <= k {
                    by_kind.push((kind, Vec::new()));
                }
                by_kind[k].1.push(sample);
            }
        }
        for (kind, samples) in &by_kind {
            print(kind, samples);
        }
        print("all", &all);
        cluster.shutdown().await;
    });
}
