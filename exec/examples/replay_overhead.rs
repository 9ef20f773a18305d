//! What replaying costs against the job's own run: the examples and a job that logs on every iteration, each
//! run plain (`Executor::new`) and traced (`Executor::traced`, the replay's executor), alternated, medians.
//! Asserts that both runs give the same outcome (output, status, stderr, fuel).
//!
//! `REPS=15 cargo run --example replay_overhead -p jobmesh-exec` (figures in BENCHMARKS.md, "Replay").

use std::time::{Duration, Instant};

use jobmesh_exec::{Executor, JobCode, Limits, Plugin};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let read = |p: &str| std::fs::read_to_string(format!("{root}/{p}")).expect("example");
    let plain = Executor::new(None).expect("executor");
    let traced = Executor::traced(None).expect("traced executor");
    let plugin = Plugin::bundled().cid();
    let jobs = [
        (
            "echo.js",
            read("examples/echo.js"),
            read("examples/echo.input.txt"),
        ),
        (
            "wordcount.js",
            read("examples/wordcount.js"),
            read("examples/wordcount.input.json"),
        ),
        (
            "determinism.js",
            read("examples/determinism.js"),
            read("examples/determinism.input.json"),
        ),
        (
            "cpu-heavy.js (100 rounds)",
            read("examples/cpu-heavy.js"),
            r#"{"rounds": 100}"#.into(),
        ),
        (
            "console.log × 2,000",
            "for (let i = 0; i < 2000; i++) console.log('line ' + i);".into(),
            String::new(),
        ),
    ];
    let limits = Limits::default();
    println!("| job | run (median) | replay (median) | replay / run | fuel | lines traced |");
    println!("|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for (name, source, input) in jobs {
        let code = JobCode::Js(plain.compile_js(&plugin, name, &source).expect("compiles"));
        // Warm both executors' module caches.
        let expected = plain.run(&code, input.as_bytes(), &limits).expect("runs");
        let (same, trace) = traced
            .run_traced(&code, input.as_bytes(), &limits, &traced.cancel_token())
            .expect("runs");
        assert_eq!(same, expected, "{name}: a traced run must be the same run");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let t = Instant::now();
            plain.run(&code, input.as_bytes(), &limits).expect("runs");
            a.push(t.elapsed());
            let t = Instant::now();
            traced
                .run_traced(&code, input.as_bytes(), &limits, &traced.cancel_token())
                .expect("runs");
            b.push(t.elapsed());
        }
        let (a, b) = (median(a), median(b));
        let ratio = b.as_secs_f64() / a.as_secs_f64();
        ratios.push(ratio);
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {ratio:.2}× | {} | {} |",
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            expected.fuel_used,
            trace.events.len()
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median ratio over the jobs: {:.2}×",
        ratios[ratios.len() / 2]
    );
}
