//! The verification flags of the `jobmesh` binary (issue 21): out-of-range settings are refused in one line,
//! with a non-zero exit, before a node starts or a job is stored.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use jobmesh_tests::{fails_in_one_line, jobmesh_in, workspace_root};

fn jobmesh(home: &Path, args: &[&str]) -> Output {
    jobmesh_in(home, args, Duration::from_secs(60))
}

#[test]
fn verification_settings_out_of_range_are_refused_in_one_line() {
    let home = tempfile::tempdir().unwrap();
    let start = |extra: &[&str]| {
        let mut args = vec![
            "node",
            "start",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
            "--verification",
            "credibility",
        ];
        args.extend_from_slice(extra);
        jobmesh(home.path(), &args)
    };
    let err = fails_in_one_line(&start(&["--assumed-fault-rate", "0.7"]));
    assert!(err.contains("assumed fault rate 0.7"), "{err}");
    let err = fails_in_one_line(&start(&["--spot-check-rate", "0.9"]));
    assert!(err.contains("spot-check rate 0.9"), "{err}");
    let err = fails_in_one_line(&start(&["--default-error-rate", "0"]));
    assert!(err.contains("error rate 0"), "{err}");
    // A job's own error rate is checked before anything is stored or sent.
    let echo = workspace_root().join("examples/echo.js");
    let echo = echo.to_str().unwrap();
    let err = fails_in_one_line(&jobmesh(
        home.path(),
        &["job", "submit", echo, "--error-rate", "0.9"],
    ));
    assert!(err.contains("--error-rate"), "{err}");
}
