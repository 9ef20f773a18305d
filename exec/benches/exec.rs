//! `cargo bench -p jobmesh-exec --bench exec`: the execution benchmarks of BENCHMARKS.md, side by side in
//! one run, printed as a Markdown table (medians).
//! 1. Warm start: instantiate the (cached, precompiled) plugin and run a trivial echo job.
//! 2. CPU-heavy JS (examples/cpu-heavy.js): (a) jobmesh wasm with fuel, (b) the same wasm without fuel,
//!    (c) native QuickJS (the rquickjs crate: the QuickJS-ng release the plugin is built from, upstream, without
//!    C assertions as Javy builds it; `exec/benches/like-for-like.sh` builds it from the plugin's own patched
//!    source instead), (d) Node.js.
//! 3. Fuel per millisecond.
//! 4. What being cancellable costs: (a) against (e), the same engine without epoch interruption.
//!
//! Env: `BENCH_ROUNDS` (default 2000), `BENCH_REPS` (default 7), `BENCH_WARM` (default 2000),
//! `BENCH_NATIVE` (how (c) was built, for the table; set by like-for-like.sh).

use std::time::{Duration, Instant};

use jobmesh_exec::{Backend, Executor, JobCode, Limits, Plugin, Status};

#[path = "../tests/support/mod.rs"]
mod support;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let rounds = env("BENCH_ROUNDS", 2000);
    let reps = env("BENCH_REPS", 7) as usize;
    let warm_n = env("BENCH_WARM", 2000) as usize;
    let cache = tempfile::tempdir().unwrap();
    let plugin = Plugin::bundled().cid();
    let limits = Limits {
        fuel: u64::MAX / 2,
        ..Limits::default()
    };

    // 1. Warm start.
    let exec = Executor::new(Some(cache.path().to_path_buf())).unwrap();
    let started = Instant::now();
    exec.warm_up(&plugin).unwrap();
    let first_compile = started.elapsed();
    let reload = Executor::new(Some(cache.path().to_path_buf())).unwrap();
    let started = Instant::now();
    reload.warm_up(&plugin).unwrap();
    let cache_load = started.elapsed();
    let echo_src = std::fs::read_to_string(repo.join("examples/echo.js")).unwrap();
    let echo = JobCode::Js(exec.compile_js(&plugin, "echo.js", &echo_src).unwrap());
    let mut warm = Vec::with_capacity(warm_n);
    let mut echo_fuel = 0;
    for _ in 0..warm_n {
        let t = Instant::now();
        let out = exec.run(&echo, b"hi", &limits).unwrap();
        warm.push(t.elapsed());
        assert_eq!(out.output, b"hi");
        echo_fuel = out.fuel_used;
    }
    let compile_times: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            exec.compile_js(&plugin, "echo.js", &echo_src).unwrap();
            t.elapsed()
        })
        .collect();

    // 2. CPU-heavy JS.
    let heavy_src = std::fs::read_to_string(repo.join("examples/cpu-heavy.js")).unwrap();
    let heavy = JobCode::Js(
        exec.compile_js(&plugin, "cpu-heavy.js", &heavy_src)
            .unwrap(),
    );
    let input = format!("{{\"rounds\": {rounds}}}");
    let unmetered = Executor::new_unmetered(None).unwrap();
    let uninterruptible = Executor::new_uninterruptible(None).unwrap();
    let mut expected = String::new();
    let (mut fueled, mut unfueled, mut native, mut node) = (vec![], vec![], vec![], vec![]);
    let mut no_epoch = vec![];
    let mut fuel = 0;
    for _ in 0..reps {
        let t = Instant::now();
        let out = exec.run(&heavy, input.as_bytes(), &limits).unwrap();
        fueled.push(t.elapsed());
        assert_eq!(out.status, Status::Ok);
        expected = String::from_utf8(out.output).unwrap();
        fuel = out.fuel_used;

        let t = Instant::now();
        let out = unmetered.run(&heavy, input.as_bytes(), &limits).unwrap();
        unfueled.push(t.elapsed());
        assert_eq!(String::from_utf8(out.output).unwrap(), expected);

        let t = Instant::now();
        let out = uninterruptible
            .run(&heavy, input.as_bytes(), &limits)
            .unwrap();
        no_epoch.push(t.elapsed());
        assert_eq!(
            out.fuel_used, fuel,
            "epoch interruption does not change fuel"
        );

        let t = Instant::now();
        // `scriptArgs` as the qjs shell defines it.
        let prelude = format!("globalThis.scriptArgs = ['cpu-heavy.js', '{rounds}'];");
        let line = support::run_native_quickjs(&prelude, &heavy_src);
        native.push(t.elapsed());
        assert_eq!(line.trim(), expected.trim());
    }
    // (f) The portable Pulley interpreter (exec/tests/backends.rs checks it agrees byte for byte): what a node
    // on a machine without a cranelift back end would pay. Fewer reps: it is much slower.
    let pulley = Executor::with_backend(None, Backend::Pulley).unwrap();
    let pulley_heavy = JobCode::Js(
        pulley
            .compile_js(&plugin, "cpu-heavy.js", &heavy_src)
            .unwrap(),
    );
    let pulley_runs: Vec<Duration> = (0..reps.min(3))
        .map(|_| {
            let t = Instant::now();
            let out = pulley
                .run(&pulley_heavy, input.as_bytes(), &limits)
                .unwrap();
            let elapsed = t.elapsed();
            assert_eq!(out.fuel_used, fuel, "Pulley charges the same fuel");
            assert_eq!(String::from_utf8(out.output).unwrap(), expected);
            elapsed
        })
        .collect();
    let f = median(pulley_runs);
    let node_start = median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                let ok = std::process::Command::new("node")
                    .arg("-e")
                    .arg("0")
                    .status()
                    .map(|s| s.success());
                assert!(matches!(ok, Ok(true)), "node is needed for the benchmark");
                t.elapsed()
            })
            .collect(),
    );
    for _ in 0..reps {
        let t = Instant::now();
        let out = std::process::Command::new("node")
            .arg(repo.join("examples/cpu-heavy.js"))
            .arg(rounds.to_string())
            .output()
            .unwrap();
        node.push(t.elapsed());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected.trim());
    }
    let (a, b, c, e) = (
        median(fueled),
        median(unfueled),
        median(native),
        median(no_epoch),
    );
    let d_total = median(node);
    let d = d_total.saturating_sub(node_start);

    println!("| measurement | median | notes |");
    println!("|---|---|---|");
    println!(
        "| warm start: echo job (instantiate + run) | {:.3} ms | {warm_n} runs, {echo_fuel} fuel |",
        ms(median(warm))
    );
    println!(
        "| compile JS → bytecode (echo.js) | {:.3} ms | 50 runs |",
        ms(median(compile_times))
    );
    println!(
        "| plugin: first cranelift compile | {:.0} ms | once per node |",
        ms(first_compile)
    );
    println!(
        "| plugin: load from module cache | {:.1} ms | per process |",
        ms(cache_load)
    );
    println!(
        "| (a) cpu-heavy.js, jobmesh wasm, fuel on | {:.1} ms | {rounds} rounds, {fuel} fuel |",
        ms(a)
    );
    println!("| (b) same wasm, fuel off | {:.1} ms | |", ms(b));
    let native_build = std::env::var("BENCH_NATIVE")
        .unwrap_or_else(|_| "upstream QuickJS-ng, without our patches".to_string());
    println!(
        "| (c) native QuickJS (rquickjs) | {:.1} ms | {native_build} |",
        ms(c)
    );
    println!(
        "| (d) Node.js {} | {:.1} ms | {:.1} ms with process start |",
        node_version(),
        ms(d),
        ms(d_total)
    );
    println!(
        "| (a)/(c) | {:.2}× | goal ≤ 1.5× |",
        a.as_secs_f64() / c.as_secs_f64()
    );
    println!(
        "| (a)/(b) | {:.2}× | goal ≤ 1.3× |",
        a.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "| (e) same wasm, fuel on, not cancellable (no epoch checks) | {:.1} ms | same fuel as (a) |",
        ms(e)
    );
    println!(
        "| (a)/(e) | {:.3}× | what cancelling costs a run |",
        a.as_secs_f64() / e.as_secs_f64()
    );
    println!(
        "| (f) same wasm on the Pulley interpreter, fuel on | {:.1} ms | same fuel and output as (a) (asserted) |",
        ms(f)
    );
    println!(
        "| (f)/(a) | {:.1}× | what a machine without a native back end pays |",
        f.as_secs_f64() / a.as_secs_f64()
    );
    println!(
        "| (a)/(d) | {:.1}× | context only |",
        a.as_secs_f64() / d.as_secs_f64()
    );
    println!(
        "| fuel per ms (cpu-heavy, fuel on) | {:.0} | {:.2} Gfuel/s |",
        fuel as f64 / ms(a),
        fuel as f64 / a.as_secs_f64() / 1e9
    );
}

fn node_version() -> String {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
