//! The node's web dashboard (`/`): a job posted through the page in headless Chromium (Debian's `chromium`,
//! driven by `tests/interop/browser/dashboard.mjs` with playwright-core) on a 3-node loopback mesh reaches
//! "verified" and shows the right output, and one that throws shows why it failed (message, stack, stderr); and
//! the dashboard's own routes answer bad input with 4xx JSON.
//!
//! Needs `scripts/setup.d/50-browser.sh` (chromium + `npm ci`); a missing install fails the test.

mod mesh_util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mesh_util::{wait_peers, NodeProc};
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";

/// One HTTP/1.1 request with a JSON body to the node's API; returns (status, lower-cased head, body).
fn http(api: &str, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let headers = [("Content-Type", "application/json")];
    let (status, head, body) =
        mesh_util::http(api, method, path, &headers, body, Duration::from_secs(30));
    (status, head.to_ascii_lowercase(), body)
}

fn assert_json_error(api: &str, method: &str, path: &str, body: &str, needle: &str) {
    let (status, head, body) = http(api, method, path, body.as_bytes());
    let text = String::from_utf8_lossy(&body);
    assert!(
        (400..500).contains(&status),
        "{method} {path}: status {status}: {text}"
    );
    assert!(
        head.contains("content-type: application/json"),
        "{method} {path}: {head}"
    );
    let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: {text}: {e}"));
    let msg = v["Message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(needle) && !msg.contains('\n'),
        "{method} {path}: {msg:?} lacks {needle:?}"
    );
}

/// `target/<profile>/`: where the screenshot is kept for a look after the run.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// The output of examples/wordcount.js run locally (no mesh), to compare with the mesh's verified one.
fn local_wordcount() -> String {
    let root = jobmesh_tests::workspace_root();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(jobmesh_tests::jobmesh_bin());
    cmd.arg("--data-dir")
        .arg(home.path())
        .args(["job", "run-local"]);
    cmd.arg(root.join("examples/wordcount.js"))
        .arg("--input")
        .arg(root.join("examples/wordcount.input.json"));
    let out = jobmesh_tests::run_ok(&mut cmd, Duration::from_secs(60)).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn dashboard_posts_a_job_in_headless_chromium() {
    let started = Instant::now();
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/setup.d/50-browser.sh (apt-get install chromium)"
    );
    let mut script =
        jobmesh_tests::node_script("browser", "dashboard.mjs").unwrap_or_else(|e| panic!("{e}"));
    let expected = local_wordcount();

    let requester = NodeProc::start(&[]);
    let workers: Vec<NodeProc> = (0..2)
        .map(|_| NodeProc::start_with(&[&requester.addr], &["--worker"]))
        .collect();
    wait_peers(&requester, 2);
    eprintln!("[test {:>6.2}s] mesh up", started.elapsed().as_secs_f64());

    let shot = profile_dir().join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    script
        .arg(format!("http://{}/", requester.api))
        .arg(&shot)
        .arg("2")
        .env("CHROMIUM", CHROMIUM);
    let out = jobmesh_tests::run_ok(&mut script, Duration::from_secs(100))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = String::from_utf8(out).unwrap();
    let v: Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the browser script printed {out:?}: {e}"));
    eprintln!(
        "[test {:>6.2}s] browser: {v}",
        started.elapsed().as_secs_f64()
    );

    // What the page showed.
    assert!(
        v["syntaxError"].as_str().unwrap().contains("job.js:1:")
            && v["syntaxError"].as_str().unwrap().contains("SyntaxError"),
        "{v}"
    );
    assert_eq!(v["phase"], "verified", "{v}");
    assert_eq!(
        v["output"].as_str().unwrap(),
        expected,
        "the page shows another output"
    );
    for step in v["steps"].as_array().unwrap() {
        assert_eq!(step[1], "done", "step {step} not done: {v}");
    }
    let steps: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "announced",
            "assigned 2/2",
            "committed 2/2",
            "revealed 2/2",
            "verified"
        ]
    );
    let agreeing: Vec<&str> = v["agreeing"].as_str().unwrap().split(", ").collect();
    assert_eq!(agreeing.len(), 2, "{v}");
    for w in &workers {
        assert!(
            agreeing
                .iter()
                .any(|a| w.peer_id.starts_with(a.trim_end_matches('…'))),
            "worker {} not among the agreeing {agreeing:?}",
            w.peer_id
        );
    }
    assert_eq!(v["peers"], 2, "{v}");
    assert!(
        v["lotteries"].as_str().unwrap().contains("not configured"),
        "{v}"
    );
    assert_eq!(
        v["foreign"],
        serde_json::json!([]),
        "the page fetched from elsewhere"
    );
    assert_eq!(
        v["pageErrors"],
        serde_json::json!([]),
        "script errors in the page"
    );

    // A job that throws: verified as a failure, and the job view says why, with the stack and its stderr.
    let failed = &v["failed"];
    assert_eq!(failed["phase"], "verified", "{v}");
    assert_eq!(failed["status"], "js_exception", "{v}");
    assert_eq!(
        failed["error"], "uncaught JavaScript exception: Error: bad input: 42",
        "{v}"
    );
    assert!(
        failed["message"].as_str().unwrap().contains("at inner"),
        "{v}"
    );
    assert_eq!(failed["stderr"], "checking input\n", "{v}");

    // The page's output CID is the job's, and its bytes are what the page showed.
    let id = v["jobId"].as_str().unwrap();
    let (_, status) = mesh_util::post(
        &requester.api,
        &format!("job/status?arg={id}"),
        b"",
        Duration::from_secs(5),
    );
    let status: Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["output"], v["outputCid"], "{status}");
    assert_eq!(
        status["fuel_used"].as_u64().unwrap().to_string(),
        v["fuel"].as_str().unwrap().replace(',', "")
    );

    // The events of a finished job: one `data:` event with the terminal status, then the stream ends.
    let (code, head, body) = http(
        &requester.api,
        "GET",
        &format!("/api/v0/job/events?arg={id}"),
        b"",
    );
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let body = String::from_utf8(body).unwrap();
    let events: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["phase"], "verified");
    assert_eq!(events[0]["finished"], true);

    // The same job through the CLI on the same mesh: same output; its time is the anchor of the page's.
    let root = jobmesh_tests::workspace_root();
    let (wc, input) = (
        root.join("examples/wordcount.js"),
        root.join("examples/wordcount.input.json"),
    );
    let cli_start = Instant::now();
    let cli_out = requester.cli(&[
        "job",
        "submit",
        wc.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--replicas",
        "2",
        "--timeout",
        "60s",
    ]);
    let cli_ms = cli_start.elapsed().as_millis();
    assert_eq!(String::from_utf8(cli_out).unwrap(), expected);
    eprintln!(
        "[test] page load {} ms; submit → verified: page {} ms, CLI `job submit` {cli_ms} ms",
        v["loadMs"], v["verifiedMs"]
    );

    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "not a screenshot"
    );
    eprintln!(
        "[test {:>6.2}s] screenshot at {}",
        started.elapsed().as_secs_f64(),
        shot.display()
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn dashboard_routes_answer_bad_input_with_json() {
    let node = NodeProc::start(&[]);
    let api = node.api.as_str();

    // The page and its assets.
    let (code, head, body) = http(api, "GET", "/", b"");
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("<title>jobmesh node</title>") && html.contains("/dashboard/app.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page links elsewhere"
    );
    for (path, kind) in [
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
        ("/dashboard/example.json", "application/json"),
    ] {
        let (code, head, body) = http(api, "GET", path, b"");
        assert_eq!(code, 200, "{path}");
        assert!(head.contains(kind), "{path}: {head}");
        assert!(!body.is_empty());
    }
    let (_, _, ex) = http(api, "GET", "/dashboard/example.json", b"");
    let ex: Value = serde_json::from_slice(&ex).unwrap();
    assert!(ex["source"].as_str().unwrap().contains("Javy.IO.readSync"));

    // The store's usage (the bundled plugin is in it).
    let (code, _, body) = http(api, "GET", "/api/v0/repo/stat", b"");
    assert_eq!(code, 200);
    let stat: Value = serde_json::from_slice(&body).unwrap();
    assert!(stat["NumObjects"].as_u64().unwrap() >= 1, "{stat}");
    assert!(stat["RepoSize"].as_u64().unwrap() > 1_000_000, "{stat}");

    // Bad jobs: nothing is stored or announced.
    let submit = "/api/v0/job/submit-js";
    assert_json_error(
        api,
        "POST",
        submit,
        r#"{"source": "let x = ;\n", "input": "", "replicas": 1}"#,
        "job.js:1:",
    );
    assert_json_error(
        api,
        "POST",
        submit,
        r#"{"source": "let x = ;"}"#,
        "SyntaxError",
    );
    assert_json_error(api, "POST", submit, "not json", "bad job");
    assert_json_error(api, "POST", submit, "", "bad job");
    assert_json_error(
        api,
        "POST",
        submit,
        r#"{"input": "x"}"#,
        "missing field `source`",
    );
    assert_json_error(
        api,
        "POST",
        submit,
        r#"{"source": "1", "replicas": 0}"#,
        "replicas must be between 1 and 15",
    );
    assert_json_error(
        api,
        "POST",
        submit,
        r#"{"source": "1", "replicas": 300}"#,
        "bad job",
    );
    assert_json_error(
        api,
        "POST",
        submit,
        r#"{"source": "1", "max_fuel": 0}"#,
        "max_fuel must be positive",
    );
    assert_json_error(
        api,
        "POST",
        submit,
        r#"{"source": "1", "timeout_ms": 5}"#,
        "timeout must be between",
    );
    assert_json_error(
        api,
        "POST",
        submit,
        r#"{"source": "1", "replica": 2}"#,
        "unknown field",
    );
    let big = format!(r#"{{"source": "{}"}}"#, "x".repeat(9 << 20));
    let (code, _, _) = http(api, "POST", submit, big.as_bytes());
    assert_eq!(code, 413, "an oversized job is refused");
    let (_, body) = mesh_util::post(api, "job/list", b"", Duration::from_secs(5));
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        list["Jobs"],
        serde_json::json!([]),
        "a bad job was submitted"
    );

    // Events of jobs that do not exist, or of no job at all.
    let unknown = "ab".repeat(32);
    assert_json_error(
        api,
        "GET",
        &format!("/api/v0/job/events?arg={unknown}"),
        "",
        "no job",
    );
    assert_json_error(api, "GET", "/api/v0/job/events?arg=zz", "", "");
    assert_json_error(
        api,
        "GET",
        "/api/v0/job/events",
        "",
        "missing argument \"arg\"",
    );
}

/// The attack the security review made, in a real browser: a page on another origin and a page served by the
/// node's own gateway try to post a job and stop the node. The node must still run and hold no job afterwards
/// (the dashboard test above is the control: the API's own page does post jobs).
#[test]
fn web_pages_cannot_drive_the_node_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/setup.d/50-browser.sh"
    );
    let mut node = NodeProc::start_with(&[], &["--worker"]);
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    let page = r#"<!doctype html><script>
const post = (path, body) => fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body })
  .then((r) => console.log(path + " answered " + r.status), (e) => console.log(path + " failed " + e));
post("/api/v0/job/submit-js", JSON.stringify({ source: "1", replicas: 1, price: 1000000000 }));
post("/api/v0/shutdown", "{}");
</script>"#;
    std::fs::write(site.join("index.html"), page).unwrap();
    let cid = String::from_utf8(node.cli(&["add", "-r", &site.display().to_string()]))
        .unwrap()
        .trim()
        .to_string();
    let jobs = |node: &NodeProc| {
        node.cli_json(&["job", "list"])["jobs"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(jobs(&node), 0);

    let mut script =
        jobmesh_tests::node_script("browser", "attack.mjs").unwrap_or_else(|e| panic!("{e}"));
    script
        .arg(format!("http://{}", node.api))
        .arg(format!("http://{}/ipfs/{cid}/index.html", node.api))
        .env("CHROMIUM", CHROMIUM);
    let out = jobmesh_tests::run_ok(&mut script, Duration::from_secs(100))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = String::from_utf8(out).unwrap();
    let seen: Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the attack script printed {out:?}: {e}"));
    eprintln!("what the pages saw: {seen}");

    assert!(
        node.child.try_wait().unwrap().is_none(),
        "a web page stopped the node ({seen})"
    );
    let (status, _) = mesh_util::post(&node.api, "id", b"", Duration::from_secs(5));
    assert_eq!(status, 200);
    assert_eq!(jobs(&node), 0, "a web page posted a job ({seen})");
    // The gateway page's own script ran (its fetches were attempted) and none got an answer through: its
    // origin is opaque (the sandbox), so the browser must ask first, and the API grants no CORS.
    let gateway = seen["gateway"].to_string();
    assert!(gateway.contains("/api/v0/shutdown failed"), "{gateway}");
    assert!(!gateway.contains("answered 200"), "{gateway}");
}
