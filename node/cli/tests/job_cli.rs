//! `jobmesh job build` / `jobmesh job run-local` end to end, through the real binary (separate processes).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    // node/cli → the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn jobmesh(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jobmesh"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .current_dir(repo())
        .output()
        .expect("runs jobmesh")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?} stderr {:?}",
            out.stdout,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn separate_processes_agree_on_output_cid_and_fuel() {
    let home = tempfile::tempdir().unwrap();
    let args = [
        "--json",
        "job",
        "run-local",
        "examples/determinism.js",
        "--input",
        "examples/determinism.input.json",
    ];
    let first = jobmesh(home.path(), &args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // The first process filled the module cache; the second loads from it.
    let cached: Vec<_> = std::fs::read_dir(home.path().join("cache/modules"))
        .unwrap()
        .collect();
    assert_eq!(cached.len(), 1);
    let second = jobmesh(home.path(), &args);
    // And a third with a cold cache of its own.
    let other_home = tempfile::tempdir().unwrap();
    let third = jobmesh(other_home.path(), &args);
    let (a, b, c) = (json(&first), json(&second), json(&third));
    assert_eq!(a["status"], "ok");
    assert!(a["output_cid"].as_str().unwrap().starts_with("bafkrei"));
    assert!(a["fuel_used"].as_u64().unwrap() > 0);
    for other in [&b, &c] {
        assert_eq!(a["output_cid"], other["output_cid"]);
        assert_eq!(a["fuel_used"], other["fuel_used"]);
        assert_eq!(a["output"], other["output"]);
        assert_eq!(a["job_id"], other["job_id"]);
    }
}

#[test]
fn build_then_run_bytecode_equals_running_source() {
    let home = tempfile::tempdir().unwrap();
    // `job build examples/wordcount.js -o <file>` with `extra` arguments; must succeed.
    let build = |file: &Path, extra: &[&str]| {
        let args = [
            &["--json", "job", "build", "examples/wordcount.js"][..],
            extra,
        ]
        .concat();
        let out = jobmesh(
            home.path(),
            &[&args[..], &["-o", file.to_str().unwrap()][..]].concat(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json(&out)
    };
    let input = ["--input", "examples/wordcount.input.json"];
    let run_local = |code: &str| {
        json(&jobmesh(
            home.path(),
            &[&["--json", "job", "run-local", code][..], &input].concat(),
        ))
    };

    let out_file = home.path().join("wordcount.jsbc");
    let bc = build(&out_file, &[]);
    assert_eq!(bc["format"], "jsbc");
    let (a, b) = (
        run_local(out_file.to_str().unwrap()),
        run_local("examples/wordcount.js"),
    );
    assert_eq!(a["status"], "ok");
    assert_eq!(
        (&a["output_cid"], &a["fuel_used"]),
        (&b["output_cid"], &b["fuel_used"])
    );
    // As a Javy module (`--wasm`): the same output and fuel, and the same code CID as the bytecode.
    let module_file = home.path().join("wordcount.wasm");
    let w = build(&module_file, &["--wasm"]);
    assert_eq!(w["format"], "javy-module");
    assert!(std::fs::read(&module_file).unwrap().starts_with(b"\0asm"));
    let m = run_local(module_file.to_str().unwrap());
    assert_eq!(
        (&m["status"], &m["output_cid"], &m["fuel_used"]),
        (&a["status"], &a["output_cid"], &a["fuel_used"])
    );
    assert_eq!(w["code_cid"], bc["code_cid"]);
    // Plain text mode: output on stdout, status and fuel on stderr.
    let plain = jobmesh(
        home.path(),
        &[&["job", "run-local", "examples/wordcount.js"][..], &input].concat(),
    );
    assert!(plain.status.success());
    assert_eq!(plain.stdout, a["output"].as_str().unwrap().as_bytes());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.contains(&format!("fuel used: {}", a["fuel_used"])) && stderr.contains("time:"),
        "{stderr}"
    );
}

#[test]
fn syntax_error_is_one_line_with_line_and_column() {
    let home = tempfile::tempdir().unwrap();
    let out = jobmesh(
        home.path(),
        &[
            "job",
            "build",
            "exec/tests/jobs/syntax_error.js",
            "-o",
            "/dev/null",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: exec/tests/jobs/syntax_error.js:3:18: SyntaxError: unexpected token in expression: ';'"
    );
}

#[test]
fn syntax_error_line_and_column_are_as_written() {
    let home = tempfile::tempdir().unwrap();
    let cases = [
        ("midline.js", "const a = 1;\n\nlet x = ;\n", "3:9"),
        (
            "indented.js",
            "function f() {\n    return (1 + );\n}\n",
            "2:17",
        ),
        ("string.js", "const a = 1;\nconst s = \"abc;\n", "2:11"),
        ("first.js", "let x = = 1;\n", "1:9"),
    ];
    for (name, source, at) in cases {
        let file = home.path().join(name);
        std::fs::write(&file, source).unwrap();
        let file = file.to_str().unwrap();
        let out = jobmesh(home.path(), &["job", "build", file, "-o", "/dev/null"]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {file}:{at}: SyntaxError: ")),
            "{source:?}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn failing_jobs_exit_1_with_a_clear_status() {
    let home = tempfile::tempdir().unwrap();
    let cases = [
        (
            "exec/tests/jobs/infinite_loop.js",
            &["--fuel", "20000000"][..],
            "out_of_fuel",
        ),
        (
            "exec/tests/jobs/alloc_bomb.js",
            &["--memory", "16MiB"][..],
            "memory_limit",
        ),
        (
            "exec/tests/jobs/big_output.js",
            &["--output-limit", "1MiB"][..],
            "output_too_large",
        ),
        ("exec/tests/jobs/throws.js", &[][..], "js_exception"),
    ];
    for (job, extra, status) in cases {
        let out = jobmesh(
            home.path(),
            &[&["--json", "job", "run-local", job][..], extra].concat(),
        );
        assert_eq!(out.status.code(), Some(1), "{job}");
        let v = json(&out);
        assert_eq!(v["status"], status, "{job}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    let garbage = home.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x01\0\0\0nonsense").unwrap();
    let out = jobmesh(
        home.path(),
        &["--json", "job", "run-local", garbage.to_str().unwrap()],
    );
    assert_eq!(json(&out)["status"], "invalid_module");
    let out = jobmesh(
        home.path(),
        &["job", "run-local", "examples/echo.js", "--memory", "lots"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a size"));
}

#[test]
fn durations_too_long_to_represent_are_clear_errors_not_panics() {
    let home = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["simnet", "--partition", "99999999999999999999999h"],
            "too long",
        ),
        (&["simnet", "--job-timeout", "1e300"], "too long"),
        (
            &["simnet", "--partition", "2h"],
            "--partition must be at most 1 h",
        ),
    ];
    for (args, needle) in cases {
        let out = jobmesh(home.path(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            err.contains(needle) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}
