//! `jobmesh job replay <id>` on the requester's node, over a real loopback mesh (one requester, one worker):
//! the job's log lines with the fuel at each, its stderr, the exception and its stack, the limit it hit and
//! where, and agreement with the accepted result; an unknown job is a one-line error.

mod mesh_util;

use std::process::Stdio;

use mesh_util::{example, wait_peers, NodeProc};

/// Submits `file` with one replica and `args`; the job's id.
fn submit(node: &NodeProc, file: &str, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(jobmesh_tests::jobmesh_bin());
    cmd.arg("--data-dir")
        .arg(node.home())
        .args(["--json", "job", "submit", file, "--replicas", "1"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = jobmesh_tests::run(&mut cmd, std::time::Duration::from_secs(90)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    v["job_id"].as_str().expect("a job id").to_string()
}

#[test]
fn replay_shows_lines_with_fuel_the_exception_and_the_limit_hit() {
    let requester = NodeProc::start(&[]);
    let _worker = NodeProc::start_with(&[&requester.addr], &["--worker"]);
    wait_peers(&requester, 1);
    let dir = tempfile::tempdir().unwrap();
    let throws = dir.path().join("throws.js");
    std::fs::write(
        &throws,
        "console.error('checking input');\n\
         let x = 0; for (let i = 0; i < 30000; i++) x += i;\n\
         console.log('summed ' + x);\n\
         function inner() { throw new Error('bad input: 42'); }\n\
         function outer() { inner(); }\n\
         outer();\n",
    )
    .unwrap();
    let id = submit(&requester, &throws.display().to_string(), &[]);

    let r = requester.cli_json(&["job", "replay", &id]);
    assert_eq!(r["status"], "js_exception", "{r}");
    assert_eq!(r["agrees_with_accepted"], true, "{r}");
    let lines = r["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{r}");
    assert_eq!(
        (&lines[0]["stream"], &lines[0]["text"]),
        (&"stderr".into(), &"checking input".into())
    );
    assert_eq!(lines[1]["text"], "summed 449985000");
    let (first, second) = (
        lines[0]["fuel_used"].as_u64().unwrap(),
        lines[1]["fuel_used"].as_u64().unwrap(),
    );
    // The loop between the two lines costs tens of millions of fuel.
    assert!(second > first + 10_000_000, "{first} {second}");
    assert!(second < r["fuel_used"].as_u64().unwrap());
    let exception = r["exception"].as_str().unwrap();
    assert!(
        exception.contains("bad input: 42") && exception.contains("at inner"),
        "{exception}"
    );
    assert_eq!(r["stderr"], "checking input\n");
    assert!(r["limit"].is_null(), "{r}");

    // The text form shows the same for a person, and exits 0: the replay reproduced the failure.
    let text = String::from_utf8(requester.cli(&["job", "replay", &id[..12]])).unwrap();
    assert!(text.contains("stderr  checking input"), "{text}");
    assert!(text.contains("at outer"), "{text}");
    assert!(text.contains("agrees with the accepted result"), "{text}");

    // With the job's receipt, any node replays it: a bystander fetches receipt, code and input from the mesh.
    let receipt = requester.cli_json(&["job", "status", &id])["receipt"]
        .as_str()
        .expect("a receipt")
        .to_string();
    let bystander = NodeProc::start(&[&requester.addr]);
    wait_peers(&bystander, 1);
    let b = bystander.cli_json(&["job", "replay", &receipt]);
    assert_eq!(b["agrees_with_accepted"], true, "{b}");
    assert_eq!(
        (&b["lines"], &b["fuel_used"]),
        (&r["lines"], &r["fuel_used"])
    );
    // Something that is not a receipt: one line, non-zero.
    let code = requester.cli_json(&["job", "status", &id])["code"]
        .as_str()
        .unwrap()
        .to_string();
    let err = bystander.cli_fail(&["job", "replay", &code]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("not a receipt"), "{err}");

    // Out of fuel: the limit, where it was hit, and the last line before it.
    let input = dir.path().join("endless.json");
    std::fs::write(&input, r#"{"rounds": 100000000}"#).unwrap();
    let id = submit(
        &requester,
        &example("cpu-heavy.js"),
        &[
            "--input",
            &input.display().to_string(),
            "--max-fuel",
            "50000000",
        ],
    );
    let r = requester.cli_json(&["job", "replay", &id]);
    assert_eq!(r["limit"]["limit"], "fuel", "{r}");
    assert_eq!(r["limit"]["at_fuel"], 50_000_000u64);
    assert_eq!(r["agrees_with_accepted"], true, "{r}");

    // An unknown job: one line, non-zero.
    let err = requester.cli_fail(&["job", "replay", &"ab".repeat(32)]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("no job") || err.contains("unknown"), "{err}");
}

#[test]
fn a_failed_jobs_whole_stderr_reaches_the_requester_without_a_replay() {
    let requester = NodeProc::start(&[]);
    let _worker = NodeProc::start_with(&[&requester.addr], &["--worker"]);
    wait_peers(&requester, 1);
    let dir = tempfile::tempdir().unwrap();
    let noisy = dir.path().join("noisy.js");
    // 40,000 bytes of stderr (more than the 16 KiB a reveal carries inline), then an exception.
    std::fs::write(
        &noisy,
        "for (let i = 0; i < 1000; i++) console.error(String(i).padStart(39, '.'));\n\
         throw new Error('after the noise');\n",
    )
    .unwrap();
    let id = submit(&requester, &noisy.display().to_string(), &[]);
    let s = requester.cli_json(&["job", "status", &id]);
    assert_eq!(s["status"], "js_exception", "{s}");
    let stderr = s["stderr"].as_str().unwrap();
    assert_eq!(stderr.len(), 40_000, "{}", &stderr[..200.min(stderr.len())]);
    assert!(stderr.ends_with(&format!("{:.>39}\n", 999)));
    // The requester holds the file: `cat` reads it from its own store.
    let cid = s["stderr_cid"].as_str().expect("a stderr CID");
    assert_eq!(requester.cli(&["cat", cid]).len(), 40_000);
    // `job result` passes the whole stderr on too.
    let err = requester.cli_fail(&["job", "result", &id]);
    assert!(err.contains(&format!("{:.>39}\n", 999)), "{}", err.len());
    assert!(err.contains(&format!("{:.>39}\n", 0)));
}
