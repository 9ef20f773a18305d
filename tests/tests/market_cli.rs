//! The market through the `jobmesh` CLI, with separate node processes on 127.0.0.1: submit and follow a job,
//! status/list/result/cancel, every kind of bad input, and crashes (`kill -9`) of the requester and of the
//! workers in the middle of a job.

mod mesh_util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mesh_util::{example, wait_peers, NodeProc};
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn submit_status_result_list_and_bad_input() {
    let requester = NodeProc::start(&[]);
    let workers: Vec<NodeProc> = (0..2)
        .map(|_| NodeProc::start_with(&[&requester.addr], &["--worker"]))
        .collect();
    wait_peers(&requester, 2);
    let dir = tempfile::tempdir().unwrap();

    // Bad input: a clear one-line error, and nothing reaches the mesh.
    let bad_js = dir.path().join("bad.js");
    std::fs::write(&bad_js, "let x = ;\n").unwrap();
    let bad = bad_js.display().to_string();
    let wc = example("wordcount.js");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["job", "submit", "/nonexistent/job.js"],
            "cannot read /nonexistent/job.js",
        ),
        (vec!["job", "submit", &bad], "SyntaxError"),
        (
            vec!["job", "submit", &wc, "--input", "/nonexistent.json"],
            "cannot read input",
        ),
        (
            vec!["job", "submit", &wc, "--replicas", "0"],
            "--replicas must be between 1 and 15",
        ),
        (
            vec!["job", "submit", &wc, "--replicas", "16"],
            "--replicas must be between 1 and 15",
        ),
        (
            vec!["job", "submit", &wc, "--max-fuel", "0"],
            "--max-fuel must be positive",
        ),
        (
            vec!["job", "submit", &wc, "--timeout", "0s"],
            "must be positive",
        ),
        (
            vec!["job", "submit", &wc, "--timeout", "soon"],
            "is not a duration",
        ),
        (vec!["job", "status", "nothex"], "bad job id"),
    ];
    for (args, want) in &cases {
        let err = requester.cli_fail(args);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && err.trim().lines().count() <= 3,
            "{args:?}: {err}"
        );
    }
    assert!(requester
        .cli_fail(&["job", "submit", &bad])
        .contains("bad.js:1:"));
    let listed = requester.cli_json(&["job", "list"]);
    assert_eq!(
        listed["jobs"].as_array().unwrap().len(),
        0,
        "nothing was announced"
    );

    // A job runs on the workers and gives exactly what a local run gives.
    let input = example("wordcount.input.json");
    let local = requester.cli_json(&["job", "run-local", &wc, "--input", &input]);
    let v = requester.submit_job(&wc, &input, 2, 1000);
    assert_eq!(v["phase"], "verified", "{v}");
    assert_eq!(v["output"], local["output"]);
    assert_eq!(v["output_cid"], local["output_cid"]);
    assert_eq!(v["fuel_used"], local["fuel_used"]);
    assert_eq!(v["agreeing"].as_array().unwrap().len(), 2);
    let id = v["job_id"].as_str().unwrap().to_string();

    let s = requester.cli_json(&["job", "status", &id]);
    assert_eq!(s["phase"], "verified");
    let listed = requester.cli_json(&["job", "list"]);
    assert_eq!(listed["jobs"][0]["id"], id.as_str());
    let out = dir.path().join("out.json");
    requester.cli(&["job", "result", &id, "-o", &out.display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        local["output"].as_str().unwrap()
    );
    let owed = requester.cli_json(&["job", "status", &id]);
    assert!(owed["fuel_used"].as_u64().unwrap() > 0);

    // Both sides count it in their metrics.
    let metrics = |node: &NodeProc| {
        let (status, _, body) = mesh_util::http(
            &node.api,
            "GET",
            "/metrics",
            &[],
            b"",
            Duration::from_secs(30),
        );
        assert_eq!(status, 200);
        String::from_utf8(body).unwrap()
    };
    let m = metrics(&requester);
    assert!(m.contains("jobmesh_jobs{phase=\"verified\"} 1"), "{m}");
    let ran: usize = workers
        .iter()
        .map(|w| {
            metrics(w)
                .matches("jobmesh_exec_runs_total{status=\"ok\"} 1")
                .count()
        })
        .sum();
    assert_eq!(ran, 2, "each worker ran the job once");

    // A Javy module from `job build --wasm` is submitted as the bytecode it carries: the same result.
    let module = dir.path().join("wordcount.wasm").display().to_string();
    requester.cli(&["job", "build", &wc, "--wasm", "-o", &module]);
    let v = requester.submit_job(&module, &input, 2, 1000);
    assert_eq!(v["phase"], "verified", "{v}");
    assert_eq!(v["output_cid"], local["output_cid"]);
    assert_eq!(v["fuel_used"], local["fuel_used"]);

    // No worker takes a job above its fuel limit: it expires at its deadline with the reason.
    let err = requester.cli_fail(&[
        "job",
        "submit",
        &example("echo.js"),
        "--max-fuel",
        "20000000000",
        "--timeout",
        "2s",
    ]);
    assert!(err.contains("expired") && err.contains("0 offers"), "{err}");

    // A node with no peer at all cannot announce: the job fails at once, recorded as failed.
    let lone = NodeProc::start(&[]);
    let err = lone.cli_fail(&["job", "submit", &example("echo.js"), "--timeout", "5s"]);
    assert!(err.contains("no worker reachable"), "{err}");
    let listed = lone.cli_json(&["job", "list"]);
    assert_eq!(listed["jobs"][0]["phase"], "failed");

    // Status and result still work once the node is stopped (read from its database).
    let mut requester = requester;
    assert!(requester.stop());
    let s = requester.cli_json(&["job", "status", &id]);
    assert_eq!(s["phase"], "verified");
    let bytes = requester.cli(&["job", "result", &id]);
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        local["output"].as_str().unwrap()
    );
    // Cancelling needs the running node.
    assert!(requester
        .cli_fail(&["job", "cancel", &id])
        .contains("no node is running"));
    drop(workers);
}

#[test]
fn requester_and_workers_killed_mid_job_resume_after_restart() {
    let port = free_port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let requester = NodeProc::start_in(tempfile::tempdir().unwrap(), &listen, &[], &[]);
    let boot = requester.addr.clone();
    let mut workers: Vec<NodeProc> = (0..3)
        .map(|_| NodeProc::start_with(&[&boot], &["--worker"]))
        .collect();
    wait_peers(&requester, 3);

    // A job that runs for a while; follow it until the workers have it.
    let mut submit = Command::new(jobmesh_tests::jobmesh_bin())
        .arg("--data-dir")
        .arg(requester.home())
        .args([
            "job",
            "submit",
            &example("cpu-heavy.js"),
            "--input",
            "-",
            "--timeout",
            "90s",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = submit.stdin.take().unwrap();
        stdin.write_all(br#"{"rounds": 4000}"#).unwrap();
    }
    let stderr = BufReader::new(submit.stderr.take().unwrap());
    let mut seen = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("assigned 3/3") {
            break;
        }
    }
    assert!(seen.contains("assigned 3/3"), "{seen}");

    // The requester crashes mid-job, once the workers have their assignments; the workers finish, persist
    // their result and commitment (and keep retrying to send it), then crash too.
    std::thread::sleep(Duration::from_millis(1500));
    let requester_home = requester.kill9();
    let _ = submit.kill();
    let _ = submit.wait();
    std::thread::sleep(Duration::from_secs(10));
    let homes: Vec<tempfile::TempDir> = workers.drain(..).map(NodeProc::kill9).collect();

    // Everyone comes back: the workers resend their commitments and reveal from their databases, the
    // requester resumes the job from its own.
    let requester = NodeProc::start_in(requester_home, &listen, &[], &[]);
    let workers: Vec<NodeProc> = homes
        .into_iter()
        .map(|h| NodeProc::start_in(h, "/ip4/127.0.0.1/tcp/0", &[&boot], &["--worker"]))
        .collect();
    let listed = requester.cli_json(&["job", "list"]);
    let id = listed["jobs"][0]["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let status = loop {
        let s: Value = requester.cli_json(&["job", "status", &id]);
        if s["finished"] == true {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "still {s}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(status["phase"], "verified", "{status}");
    assert_eq!(status["agreeing"].as_array().unwrap().len(), 3, "{status}");
    drop(workers);
}

/// CPU time the process uses over the next `window`.
fn cpu_over(pid: u32, window: Duration) -> Duration {
    let before = jobmesh_tests::process_cpu(Some(pid));
    std::thread::sleep(window);
    jobmesh_tests::process_cpu(Some(pid)) - before
}

/// Waits (up to 90 s) until the process uses at most 50 ms of CPU per second (a fresh node compiles the Javy
/// plugin first); the CPU it then uses per second.
fn settled_cpu(pid: u32) -> Duration {
    let started = Instant::now();
    loop {
        let cpu = cpu_over(pid, Duration::from_secs(1));
        if cpu <= Duration::from_millis(50) {
            return cpu;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the process never settles: {cpu:?} of CPU per s"
        );
    }
}

/// `jobmesh job submit` of `file` on `node` with `args`, its output captured (bounded to a minute).
fn submit(node: &NodeProc, json: bool, file: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(jobmesh_tests::jobmesh_bin());
    cmd.arg("--data-dir").arg(node.home());
    if json {
        cmd.arg("--json");
    }
    cmd.args(["job", "submit", file])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    jobmesh_tests::run(&mut cmd, Duration::from_secs(60)).unwrap()
}

#[test]
fn a_verified_failure_exits_non_zero_with_its_reason_stderr_and_stack() {
    let requester = NodeProc::start(&[]);
    let _worker = NodeProc::start_with(&[&requester.addr], &["--worker"]);
    wait_peers(&requester, 1);
    let dir = tempfile::tempdir().unwrap();
    let throws = dir.path().join("throws.js");
    std::fs::write(
        &throws,
        "Javy.IO.writeSync(2, new TextEncoder().encode('checking input\\n'));\n\
         function inner() { throw new Error('bad input: 42'); }\n\
         function outer() { inner(); }\n\
         Javy.IO.writeSync(1, new TextEncoder().encode('partial'));\n\
         outer();\n",
    )
    .unwrap();
    let endless = dir.path().join("endless.json");
    std::fs::write(&endless, r#"{"rounds": 100000000}"#).unwrap();

    // A verified exception: exit 1, the output written so far, the job's stderr, its stack, and a last line
    // that says why.
    let out = submit(
        &requester,
        false,
        &throws.display().to_string(),
        &["--replicas", "1"],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "partial");
    assert!(stderr.contains("checking input\n"), "{stderr}");
    assert!(
        stderr.contains("at inner") && stderr.contains("at outer"),
        "{stderr}"
    );
    let last = stderr.trim_end().lines().last().unwrap();
    assert!(
        last.contains("failed (js_exception")
            && last.contains("uncaught JavaScript exception: Error: bad input: 42"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // `job status --json` and `job result` carry the same.
    let listed = requester.cli_json(&["job", "list"]);
    let id = listed["jobs"][0]["id"].as_str().unwrap().to_string();
    let s = requester.cli_json(&["job", "status", &id]);
    assert_eq!(
        (s["phase"].as_str(), s["status"].as_str()),
        (Some("verified"), Some("js_exception"))
    );
    assert_eq!(s["stderr"], "checking input\n");
    assert!(s["message"].as_str().unwrap().contains("at inner"), "{s}");
    assert_eq!(
        s["error"],
        "uncaught JavaScript exception: Error: bad input: 42"
    );
    let err = requester.cli_fail(&["job", "result", &id]);
    assert!(err.contains("bad input: 42"), "{err}");

    // Out of fuel: exit 1 with the limit in the reason, in --json mode too (the JSON is still printed).
    let out = submit(
        &requester,
        true,
        &example("cpu-heavy.js"),
        &[
            "--input",
            &endless.display().to_string(),
            "--replicas",
            "1",
            "--max-fuel",
            "50000000",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("out of fuel (limit 50000000)"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "out_of_fuel");
    assert_eq!(v["error"], "out of fuel (limit 50000000)");
}

/// Waits (up to 60 s: the machine is loaded) until `node` lists a job in phase `committing` with one worker
/// assigned; its id.
fn running_job(node: &NodeProc) -> String {
    let started = Instant::now();
    loop {
        let listed = node.cli_json(&["job", "list"]);
        let running = listed["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["phase"] == "committing" && j["assigned"] == 1);
        if let Some(job) = running {
            return job["id"].as_str().unwrap().to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never assigned: {listed}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_cancelled_job_stops_the_worker_process_cpu_within_a_second() {
    let requester = NodeProc::start(&[]);
    let worker = NodeProc::start_with(
        &[&requester.addr],
        &[
            "--worker",
            "--max-jobs",
            "1",
            "--max-fuel",
            "1000000000000000",
        ],
    );
    wait_peers(&requester, 1);
    let pid = worker.child.id();
    let dir = tempfile::tempdir().unwrap();
    let endless = dir.path().join("endless.json");
    std::fs::write(&endless, r#"{"rounds": 100000000}"#).unwrap();
    // The worker's own CPU when it has nothing to run (connected, gossiping, its start-up compilation of the
    // plugin done): the level it must fall back to.
    let idle = settled_cpu(pid);

    // A job of hours, followed by `job submit`.
    let mut follow = Command::new(jobmesh_tests::jobmesh_bin())
        .arg("--data-dir")
        .arg(requester.home())
        .args(["job", "submit", &example("cpu-heavy.js"), "--input"])
        .arg(&endless)
        .args(["--replicas", "1"])
        .args(["--max-fuel", "1000000000000000", "--timeout", "10m"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = running_job(&requester);
    // The worker runs it: its CPU rises well above its idle level (once the code is fetched and compiled). A
    // spinning thread gets its share of a core even on this loaded machine (2 cores, 10–15 runnable).
    let started = Instant::now();
    let busy = loop {
        let busy = cpu_over(pid, Duration::from_secs(1));
        if busy >= idle + Duration::from_millis(100) {
            break busy;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the worker never ran the job: {busy:?} of CPU per s, {idle:?} per s idle"
        );
    };

    let cancelled = requester.cli_json(&["job", "cancel", &id]);
    assert_eq!(cancelled["phase"], "cancelled");
    std::thread::sleep(Duration::from_secs(1));
    // From a second after the cancel, the worker is back to its idle level.
    let after = cpu_over(pid, Duration::from_secs(2));
    eprintln!("worker CPU: {idle:?} per s idle, {busy:?} per s running, {after:?} per 2 s from 1 s after the cancel");
    assert!(
        after <= idle * 2 + Duration::from_millis(60),
        "the worker still burns {after:?} per 2 s after the cancel ({idle:?} per s idle, {busy:?} running)"
    );
    // It takes work again (it runs one job at a time): its running count dropped once the run had stopped.
    let out = submit(
        &requester,
        false,
        &example("cpu-heavy.js"),
        &[
            "--input",
            &example("cpu-heavy.input.json"),
            "--replicas",
            "1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The follower ends too, non-zero, saying so.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = follow.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "job submit still follows a cancelled job"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut follow.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success() && err.contains("cancelled"), "{err}");
}
