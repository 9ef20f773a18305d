//! The smaller usability defects of issue 19 (point 4), each through the real `jobmesh` binary and real nodes
//! on 127.0.0.1: a closed standard output, a `--listen` port already taken, DNS bootstrap addresses, job id
//! prefixes, the replica count of a verified job, `cat --timeout` and the gateway's own timeout, the gateway's
//! trailing slash, a CAR without its blocks, uncoloured logs on a pipe, and help texts.

mod mesh_util;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jobmesh_node::market::db::MarketDb;
use jobmesh_node::market::messages::{CodeKind, JobLimits, JobSpec};
use jobmesh_node::market::requester::{Phase, RequesterJob};
use jobmesh_tests::{fails_in_one_line, jobmesh_bin, jobmesh_in, run};
use mesh_util::{eventually, example, http, post, NodeProc};

const LIMIT: Duration = Duration::from_secs(60);

fn jobmesh(home: &Path, args: &[&str]) -> Output {
    jobmesh_in(home, args, LIMIT)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn spec(nonce: u64) -> JobSpec {
    let cid = |b: &[u8]| jobmesh_store::cid_of_raw(b);
    JobSpec {
        kind: CodeKind::JavyBytecode,
        plugin: Some(cid(b"plugin")),
        code: cid(b"code"),
        input: cid(b"input"),
        limits: JobLimits {
            max_fuel: 1_000_000,
            memory_bytes: 1 << 26,
            output_bytes: 1 << 20,
            stderr_bytes: 1 << 12,
        },
        engine: "test".into(),
        replicas: 1,
        price_wei_per_mfuel: 0,
        verifier: None,
        nonce,
        error_rate_ppb: None,
    }
}

/// A data dir whose market database holds three expired jobs, the first two with ids sharing their first four
/// characters. Returns it with the three ids.
fn home_with_jobs() -> (tempfile::TempDir, [String; 3]) {
    let mut by_prefix = std::collections::HashMap::new();
    let (a, b) = (0u64..)
        .find_map(|nonce| {
            let id = spec(nonce).id().to_hex();
            by_prefix
                .insert(id[..4].to_string(), nonce)
                .map(|other| (other, nonce))
        })
        .unwrap();
    let c = (0u64..)
        .find(|n| spec(*n).id().to_hex()[..4] != spec(a).id().to_hex()[..4])
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let db = MarketDb::open(&home.path().join("market")).unwrap();
    let ids = [a, b, c].map(|nonce| {
        let mut job = RequesterJob::new(spec(nonce), 1_000, 2_000);
        job.phase = Phase::Expired;
        job.reason = "no worker offered".into();
        db.commit_step(&job, &[], true).unwrap();
        job.id.to_hex()
    });
    drop(db);
    (home, ids)
}

/// Runs `jobmesh <args>` on `home` with a standard output nobody reads (the reading end is closed before the
/// command starts, as `| true` or `| head -0` does); returns its exit code and stderr.
fn with_closed_stdout(home: &Path, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = Command::new(jobmesh_bin());
    cmd.arg("--data-dir")
        .arg(home)
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped());
    let out = run(&mut cmd, LIMIT).unwrap();
    (out.status.code(), stderr(&out))
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    let (home, ids) = home_with_jobs();
    let file = home.path().join("hello.txt");
    std::fs::write(&file, b"hello\n").unwrap();
    let file = file.display().to_string();
    for args in [
        &["init"][..],
        &["job", "list"],
        &["--json", "job", "list"],
        &["job", "status", &ids[2]],
        &["add", &file],
        &["--json", "add", &file],
        &["pin", "ls"],
        &["repo", "stat"],
        &["id"],
    ] {
        let (code, err) = with_closed_stdout(home.path(), args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // A reader that went away is no error (as ripgrep): exit 0, nothing on stderr.
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert_eq!(err.trim(), "", "{args:?}");
    }
}

#[test]
fn job_ids_can_be_shortened_to_a_unique_prefix() {
    let (home, ids) = home_with_jobs();
    let shared = &ids[0][..4];
    assert_eq!(&ids[1][..4], shared);
    let unknown = (0..=0xffffu32)
        .map(|n| format!("{n:04x}"))
        .find(|p| ids.iter().all(|id| !id.starts_with(p.as_str())))
        .unwrap();
    let mut node = NodeProc::start_in(home, "/ip4/127.0.0.1/tcp/0", &[], &[]);
    let home = node.home().to_path_buf();
    let check = |node_running: bool| {
        // The 12 characters `job submit`'s progress lines print.
        let out = jobmesh(&home, &["job", "status", &ids[2][..12]]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(&ids[2]), "{text}");
        assert!(text.contains("expired"), "{text}");
        let err = fails_in_one_line(&jobmesh(&home, &["job", "status", shared]));
        assert!(err.contains("ambiguous: 2 jobs start with it"), "{err}");
        let err = fails_in_one_line(&jobmesh(&home, &["job", "result", &unknown]));
        assert!(
            err.contains(&format!("no job id starts with {unknown}")),
            "{err}"
        );
        let err = fails_in_one_line(&jobmesh(&home, &["job", "status", &ids[2][..3]]));
        assert!(err.contains("at least its first 4"), "{err}");
        // `result` resolves the prefix too: the expired job has no result (rather than "bad job id").
        let err = fails_in_one_line(&jobmesh(&home, &["job", "result", &ids[0][..12]]));
        assert!(
            err.contains(&format!("job {} has no result", ids[0])),
            "{err}"
        );
        eprintln!("prefixes resolved (node running: {node_running})");
    };
    check(true);
    assert!(node.stop());
    check(false);
}

#[test]
fn a_job_short_of_workers_says_how_many_replicas_never_ran() {
    let requester = NodeProc::start(&[]);
    let _workers: Vec<NodeProc> = (0..2)
        .map(|_| NodeProc::start_with(&[&requester.addr], &["--worker"]))
        .collect();
    mesh_util::wait_peers(&requester, 2);
    let (wc, input) = (example("wordcount.js"), example("wordcount.input.json"));
    let args = [
        "job",
        "submit",
        &wc,
        "--input",
        &input,
        "--replicas",
        "3",
        "--timeout",
        "45s",
    ];
    let out = jobmesh_in(requester.home(), &args, Duration::from_secs(90));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("verified (2 of 3 replicas agreed, 1 missing: only 2 workers ran it)"),
        "{err}"
    );
}

#[test]
fn a_listen_port_that_is_taken_stops_the_node_at_start() {
    // Taken by another node (whose libp2p listener shares ports: SO_REUSEPORT) and by a plain socket.
    let first = NodeProc::start(&[]);
    let port = first
        .addr
        .split("/tcp/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = plain.local_addr().unwrap().port().to_string();
    for port in [port, plain_port.as_str()] {
        let home = tempfile::tempdir().unwrap();
        let listen = format!("/ip4/127.0.0.1/tcp/{port}");
        let args = ["node", "start", "--listen", &listen, "--api", "127.0.0.1:0"];
        let out = jobmesh_in(home.path(), &args, Duration::from_secs(20));
        let err = fails_in_one_line(&out);
        assert!(
            err.contains(&format!(
                "cannot listen on {listen}: port {port} is already in use"
            )),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "it printed as if running");
    }
}

#[test]
fn bootstrap_peers_can_be_named_by_dns_and_bad_ports_are_reported_once() {
    let first = NodeProc::start(&[]);
    let by_name = first.addr.replace("/ip4/127.0.0.1/", "/dns4/localhost/");
    assert!(by_name.starts_with("/dns4/localhost/tcp/"), "{by_name}");
    let second = NodeProc::start(&[&by_name]);
    assert!(
        eventually(Duration::from_secs(20), || {
            let v = second.cli_json(&["swarm", "peers"]);
            v["Peers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["Peer"].as_str() == Some(first.peer_id.as_str()))
        }),
        "never connected to its bootstrap peer {by_name}"
    );

    let home = tempfile::tempdir().unwrap();
    let bad = format!("/ip4/127.0.0.1/tcp/99999/p2p/{}", first.peer_id);
    let args = [
        "node",
        "start",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--bootstrap",
        &bad,
    ];
    let err = fails_in_one_line(&jobmesh_in(home.path(), &args, Duration::from_secs(20)));
    assert!(err.contains("invalid bootstrap address"), "{err}");
    assert_eq!(err.matches("too large").count(), 1, "{err}");
}

#[test]
fn cat_and_the_gateway_give_up_on_missing_content_within_their_own_timeouts() {
    let node = NodeProc::start_with(&[], &["--gateway-timeout", "2"]);
    let missing = jobmesh_store::cid_of_raw(b"no peer holds this block").to_string();

    let started = Instant::now();
    let out = jobmesh_in(
        node.home(),
        &["cat", &missing, "--timeout", "2s"],
        Duration::from_secs(30),
    );
    let err = fails_in_one_line(&out);
    assert!(err.contains("timed out"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    // The API says what happened: a gateway timeout (504) with one line, not an internal error (500) — for
    // `cat`, `block/get`, `dag/export` and `pin/add` alike.
    for route in ["cat", "block/get", "dag/export", "pin/add"] {
        let (status, body) = post(
            &node.api,
            &format!("{route}?arg={missing}&timeout=1"),
            b"",
            Duration::from_secs(30),
        );
        let v: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{route}: {e}: {}", String::from_utf8_lossy(&body)));
        let message = v["Message"].as_str().unwrap_or_default();
        assert_eq!(status, 504, "{route}: {message}");
        assert!(
            message.contains("timed out") && !message.contains('\n'),
            "{route}: {message:?}"
        );
    }

    let started = Instant::now();
    let (status, _, _) = http(
        &node.api,
        "GET",
        &format!("/ipfs/{missing}"),
        &[],
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(status, 504);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    // Without the flag a gateway request waits 30 s, not the node's 120 s fetch timeout.
    let help =
        String::from_utf8(jobmesh(node.home(), &["node", "start", "--help"]).stdout).unwrap();
    let flag = help.split("--gateway-timeout").nth(1).unwrap_or_default();
    assert!(flag.contains("[default: 30]"), "{help}");
}

#[test]
fn the_gateway_serves_a_directory_with_a_trailing_slash() {
    use jobmesh_store::unixfs::{put_dir, DirEntry, Profile};
    let home = tempfile::tempdir().unwrap();
    let root = {
        let store = jobmesh_store::Store::open(&home.path().join("blocks")).unwrap();
        let file = store.add_file(&b"notes"[..], &Profile::KUBO).unwrap().root;
        let root = put_dir(
            &store,
            &[DirEntry {
                name: "notes.txt".into(),
                cid: file,
            }],
        )
        .unwrap();
        store.pin(&root).unwrap();
        store.flush().unwrap();
        root
    };
    let node = NodeProc::start_in(home, "/ip4/127.0.0.1/tcp/0", &[], &[]);
    let (status, head, body) = http(&node.api, "GET", &format!("/ipfs/{root}/"), &[], b"", LIMIT);
    assert_eq!(status, 200, "{head}");
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains(&format!("/ipfs/{root}/notes.txt")), "{page}");
}

#[test]
fn a_car_without_the_blocks_of_its_roots_is_refused() {
    use jobmesh_store::unixfs::Profile;
    let scratch = tempfile::tempdir().unwrap();
    let store = jobmesh_store::Store::open(&scratch.path().join("s")).unwrap();
    let root = store
        .add_file(&[7u8; 1000][..], &Profile::KUBO)
        .unwrap()
        .root;
    let mut car = Vec::new();
    jobmesh_store::car::export(&store, &root, &mut car).unwrap();
    // Keep the header (a one-byte length, then the header naming the root) and drop every block.
    let header_len = usize::from(car[0]);
    assert!(header_len < 0x80);
    let roots_only = scratch.path().join("roots-only.car");
    std::fs::write(&roots_only, &car[..1 + header_len]).unwrap();

    let home = tempfile::tempdir().unwrap();
    let out = jobmesh(
        home.path(),
        &["dag", "import", &roots_only.display().to_string()],
    );
    let err = fails_in_one_line(&out);
    assert!(err.contains(&format!("cannot pin root {root}")), "{err}");
    let pins = jobmesh(home.path(), &["pin", "ls"]);
    assert!(pins.status.success());
    assert!(
        pins.stdout.is_empty(),
        "pinned: {:?}",
        String::from_utf8_lossy(&pins.stdout)
    );
}

#[test]
fn logs_on_a_pipe_carry_no_colour_codes() {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("stderr.log");
    let mut child = Command::new(jobmesh_bin())
        .arg("--data-dir")
        .arg(home.path())
        .args([
            "--json",
            "node",
            "start",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let started = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        started.is_ok_and(|l| l.contains("peer_id")),
        "the node did not start"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        // "listening" is logged before the node prints its JSON line (it is killed right after that line).
        text.contains("INFO") && text.contains("listening"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "colour codes in {text:?}");
}

#[test]
fn help_names_every_job_command_and_shows_a_settle_check_example() {
    let home = tempfile::tempdir().unwrap();
    let top = String::from_utf8(jobmesh(home.path(), &["--help"]).stdout).unwrap();
    let job_line = top
        .lines()
        .find(|l| l.trim_start().starts_with("job "))
        .unwrap_or_else(|| panic!("{top}"));
    for command in [
        "build",
        "run-local",
        "submit",
        "status",
        "result",
        "list",
        "cancel",
    ] {
        assert!(
            job_line.contains(command),
            "{command} missing from {job_line:?}"
        );
    }
    let check =
        String::from_utf8(jobmesh(home.path(), &["settle", "check", "--help"]).stdout).unwrap();
    assert!(
        check.contains("Examples:\n  jobmesh settle --rpc-url"),
        "{check}"
    );
    let protocol =
        std::fs::read_to_string(jobmesh_tests::workspace_root().join("docs/protocol.md")).unwrap();
    assert!(
        !protocol.contains("will be added"),
        "docs/protocol.md promises what is there"
    );
}
