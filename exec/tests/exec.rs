//! Compiling and running jobs: the happy paths, every error status, and the module cache.

mod support;

use jobmesh_exec::{
    cid_of_raw, ExecError, Executor, JobCode, JobId, JsBytecode, Limits, Plugin, Status, JSBC_MAGIC,
};
use support::{exec, js, read, run_js};

fn small() -> Limits {
    Limits {
        fuel: 2_000_000_000,
        memory_bytes: 32 << 20,
        output_bytes: 1 << 20,
        stderr_bytes: 4096,
    }
}

#[test]
fn echo_copies_input_to_output() {
    let out = run_js(&read("examples/echo.js"), b"hello \xff bytes", &small());
    assert_eq!(
        out.status,
        Status::Ok,
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.output, b"hello \xff bytes");
    assert!(out.fuel_used > 0 && out.fuel_used < small().fuel);
}

#[test]
fn wordcount_example_gives_expected_json() {
    let input = read("examples/wordcount.input.json");
    let out = run_js(&read("examples/wordcount.js"), input.as_bytes(), &small());
    assert_eq!(out.status, Status::Ok);
    let v: serde_json::Value = serde_json::from_slice(&out.output).unwrap();
    assert_eq!(v["top"][0]["word"], "it");
    assert_eq!(v["top"][0]["count"], 6);
    assert_eq!(v["top"][1]["word"], "of");
}

#[test]
fn bytecode_file_format_round_trips() {
    let JobCode::Js(code) = js("1") else {
        unreachable!()
    };
    let bytes = code.to_bytes();
    assert!(bytes.starts_with(JSBC_MAGIC));
    assert_eq!(JsBytecode::from_bytes(&bytes).unwrap(), code);
    assert_eq!(JobCode::from_bytes(&bytes).unwrap(), JobCode::Js(code));
    assert!(matches!(
        JobCode::from_bytes(b"console.log(1)"),
        Err(ExecError::NotAJob(_))
    ));
    assert!(matches!(
        JsBytecode::from_bytes(&bytes[..10]),
        Err(ExecError::NotAJob(_))
    ));
}

#[test]
fn syntax_error_has_line_and_column() {
    let err = exec()
        .compile_js(
            &Plugin::bundled().cid(),
            "jobs/syntax_error.js",
            &read("exec/tests/jobs/syntax_error.js"),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ExecError::Syntax(_)), "{msg}");
    assert_eq!(
        msg,
        "jobs/syntax_error.js:3:18: SyntaxError: unexpected token in expression: ';'"
    );
}

/// The line and column of a syntax error are where the offending token starts, counted as the user does
/// (from 1, in characters, a tab is one); for a token the lexer rejects (an unterminated string or template, a
/// bad number), where that token starts; at the end of input, the end of the last line that is not blank.
#[test]
fn syntax_error_column_is_where_the_token_starts() {
    // `line:column` of the syntax error in `source`.
    let at = |source: &str| -> String {
        let err = exec()
            .compile_js(&Plugin::bundled().cid(), "job.js", source)
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ExecError::Syntax(_)), "{msg}");
        let rest = msg.strip_prefix("job.js:").expect("job.js:line:column: …");
        let (at, message) = rest.split_once(": ").unwrap();
        assert!(message.starts_with("SyntaxError: "), "{msg}");
        at.to_string()
    };
    // A token on a later line, mid-line, indented, after a tab, on line 1.
    assert_eq!(at("const a = 1;\n\nlet x = ;\n"), "3:9");
    assert_eq!(at("function f() {\n    return (1 + );\n}\n"), "2:17");
    assert_eq!(at("if (1) {\n\tlet x = ;\n}\n"), "2:10");
    assert_eq!(at("let x = = 1;\n"), "1:9");
    assert_eq!(at(");\n"), "1:1");
    // CRLF line ends; characters, not bytes.
    assert_eq!(at("const a = 1;\r\nlet x = ;\r\n"), "2:9");
    assert_eq!(at("const s = \"h\u{e9}llo\"; let z = @;\n"), "1:28");
    // Tokens the lexer rejects: where they start.
    assert_eq!(at("const a = 1;\nconst s = \"abc;\nconst b = 2;\n"), "2:11");
    assert_eq!(at("const t = `one\ntwo\n"), "1:11");
    assert_eq!(at("let a = 1;\n  let b = 123abc;\n"), "2:11");
    // After tokens spanning lines: the line count follows them.
    assert_eq!(at("const t = `one\ntwo ${a b}\nthree`;\n"), "2:9");
    assert_eq!(at("const s = \"a\\\nb\"; let q = ;\n"), "2:13");
    assert_eq!(at("/* a\n b */ let q = ];\n"), "2:15");
    // At the end of input: the end of the last line that is not blank.
    assert_eq!(at("function f() {\n  return 1;\n"), "2:12");
    assert_eq!(at("function f() {\n  return 1;\r\n\r\n  \n"), "2:12");
    assert_eq!(at("function f() {\n  return 1;"), "2:12");
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let limits = Limits {
        fuel: 50_000_000,
        ..small()
    };
    let out = run_js(&read("exec/tests/jobs/infinite_loop.js"), b"", &limits);
    assert_eq!(out.status, Status::OutOfFuel);
    assert_eq!(out.fuel_used, limits.fuel);
}

/// Thread CPU time of the calling thread (what a run on it burns).
fn thread_cpu() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("thread stat");
    // Fields after the command (which ends with the last ')'): utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(2)
        .map(|f| f.parse().expect("number"))
        .collect();
    std::time::Duration::from_millis((fields[0] + fields[1]) * 10)
}

#[test]
fn a_cancelled_run_stops_at_once_as_cancelled_and_other_runs_keep_their_fuel() {
    let endless = js(&read("exec/tests/jobs/infinite_loop.js"));
    let limits = Limits {
        fuel: u64::MAX / 2,
        ..small()
    };
    let cancel = exec().cancel_token();
    let run = {
        let (endless, cancel) = (endless.clone(), cancel.clone());
        std::thread::spawn(move || {
            let out = exec().run_cancellable(&endless, b"", &limits, &cancel);
            (out.unwrap(), std::time::Instant::now(), thread_cpu())
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    // A run on the same engine that is not cancelled: the epoch bump reaches it too, and changes nothing.
    let bounded = Limits {
        fuel: 50_000_000,
        ..small()
    };
    let before = exec().run(&endless, b"", &bounded).unwrap();
    let cancelled_at = std::time::Instant::now();
    cancel.cancel();
    let (out, stopped_at, cpu) = run.join().unwrap();
    assert_eq!(out.status, Status::Cancelled);
    // An interrupt, not a poll: the run stops at its next loop iteration (microseconds; the bound leaves room
    // for a thread not scheduled at once on a loaded machine).
    let latency = stopped_at - cancelled_at;
    assert!(
        latency < std::time::Duration::from_millis(100),
        "stopped {latency:?} after the cancel"
    );
    eprintln!("stopped {latency:?} after the cancel, having used {cpu:?} of CPU");
    assert!(
        cpu >= std::time::Duration::from_millis(100),
        "it ran: {cpu:?}"
    );
    assert!(out.fuel_used > 0);
    let after = exec().run(&endless, b"", &bounded).unwrap();
    assert_eq!(
        (before.status.clone(), before.fuel_used),
        (Status::OutOfFuel, bounded.fuel)
    );
    assert_eq!(after, before, "a run not cancelled ends as before");
    // A token cancelled before the run: it does not start.
    let out = exec().run_cancellable(&js(&read("examples/echo.js")), b"x", &small(), &cancel);
    assert_eq!(
        (out.unwrap().status, Status::Cancelled.name()),
        (Status::Cancelled, "cancelled")
    );
}

#[test]
fn allocation_bomb_hits_memory_limit() {
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..small()
    };
    let out = run_js(&read("exec/tests/jobs/alloc_bomb.js"), b"", &limits);
    assert_eq!(
        out.status,
        Status::MemoryLimit,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.fuel_used < limits.fuel);
}

#[test]
fn big_output_is_output_too_large() {
    let limits = Limits {
        output_bytes: 1 << 20,
        ..small()
    };
    let out = run_js(&read("exec/tests/jobs/big_output.js"), b"", &limits);
    assert_eq!(out.status, Status::OutputTooLarge);
    assert!(out.output.len() <= 1 << 20);
    // Under the limit the same job is fine.
    let out = run_js(
        &read("exec/tests/jobs/big_output.js"),
        b"",
        &Limits {
            output_bytes: 2 << 20,
            ..small()
        },
    );
    assert_eq!(out.status, Status::Ok);
    assert_eq!(out.output.len(), 2 << 20);
}

#[test]
fn thrown_error_is_js_exception_with_message_and_stack() {
    let out = run_js(&read("exec/tests/jobs/throws.js"), b"", &small());
    let Status::JsException { message } = &out.status else {
        panic!("status {:?}", out.status)
    };
    assert!(message.contains("bad input: 42"), "{message}");
    assert!(
        message.contains("inner") && message.contains("outer"),
        "no stack in {message}"
    );
}

#[test]
fn uncaught_non_error_value_is_js_exception() {
    let out = run_js("throw 'plain string';", b"", &small());
    assert!(
        matches!(&out.status, Status::JsException { message } if message.contains("plain string")),
        "{:?}",
        out.status
    );
}

fn wasm(wat_src: &str) -> JobCode {
    JobCode::Wasm(wat::parse_str(wat_src).expect("valid wat"))
}

const HELLO_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hi from wasi\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 13))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

#[test]
fn wasi_command_module_runs() {
    let out = exec().run(&wasm(HELLO_WAT), b"", &small()).unwrap();
    assert_eq!(out.status, Status::Ok);
    assert_eq!(out.output, b"hi from wasi\n");
}

#[test]
fn wasi_exit_codes() {
    let exit = |code: i32| {
        wasm(&format!(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
               (memory (export "memory") 1) (func (export "_start") (call $exit (i32.const {code}))))"#
        ))
    };
    assert_eq!(
        exec().run(&exit(0), b"", &small()).unwrap().status,
        Status::Ok
    );
    assert_eq!(
        exec().run(&exit(3), b"", &small()).unwrap().status,
        Status::Exit { code: 3 }
    );
}

#[test]
fn wasm_trap_is_trap() {
    let out = exec()
        .run(
            &wasm(r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#),
            b"",
            &small(),
        )
        .unwrap();
    assert!(
        matches!(&out.status, Status::Trap { message } if message.contains("unreachable")),
        "{:?}",
        out.status
    );
    let out = exec()
        .run(
            &wasm(
                r#"(module (memory (export "memory") 1)
                (func (export "_start") (drop (i32.load (i32.const 70000)))))"#,
            ),
            b"",
            &small(),
        )
        .unwrap();
    assert!(
        matches!(&out.status, Status::Trap { message } if message.contains("out of bounds")),
        "{:?}",
        out.status
    );
}

#[test]
fn wasm_stack_overflow_is_trap_not_crash() {
    let out = exec()
        .run(
            &wasm(r#"(module (memory (export "memory") 1) (func $f (export "_start") (call $f)))"#),
            b"",
            &small(),
        )
        .unwrap();
    assert!(
        matches!(&out.status, Status::Trap { .. }),
        "{:?}",
        out.status
    );
}

#[test]
fn invalid_modules_are_invalid_module() {
    let cases: Vec<JobCode> = vec![
        JobCode::Wasm(b"\0asm\x01\0\0\0garbage".to_vec()),
        // Valid wasm, but an import the host does not provide.
        wasm(r#"(module (import "env" "steal_keys" (func)) (func (export "_start")))"#),
        // Valid wasm without `_start`.
        wasm(r#"(module (func (export "main")))"#),
    ];
    for code in cases {
        let out = exec().run(&code, b"", &small()).unwrap();
        assert!(
            matches!(out.status, Status::InvalidModule { .. }),
            "{:?}",
            out.status
        );
        assert_eq!(out.fuel_used, 0);
    }
}

#[test]
fn bytecode_for_an_unknown_plugin_is_missing_plugin() {
    let JobCode::Js(mut code) = js("1") else {
        unreachable!()
    };
    code.plugin = cid_of_raw(b"some other plugin build");
    let out = exec()
        .run(&JobCode::Js(code.clone()), b"", &small())
        .unwrap();
    assert_eq!(
        out.status,
        Status::MissingPlugin {
            plugin: code.plugin.to_string()
        }
    );
    assert!(matches!(
        exec().compile_js(&code.plugin, "x.js", "1"),
        Err(ExecError::MissingPlugin(cid)) if cid == code.plugin
    ));
}

#[test]
fn wasi_is_sealed_no_env_args_files_and_fixed_clock() {
    // environ_sizes_get, args_sizes_get → 0; path_open on fd 3 → EBADF (8); clock_time_get → 0.
    let code = wasm(
        r#"(module
      (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (drop (call $env (i32.const 0) (i32.const 4)))
        (drop (call $args (i32.const 8) (i32.const 12)))
        (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 16)))
        (call $exit (i32.add
          (i32.add (i32.add (i32.load (i32.const 0)) (i32.load (i32.const 8)))
                   (i32.wrap_i64 (i64.load (i32.const 16))))
          (i32.ne (call $prestat (i32.const 3) (i32.const 32)) (i32.const 8))))))"#,
    );
    assert_eq!(exec().run(&code, b"", &small()).unwrap().status, Status::Ok);
}

#[test]
fn date_is_fixed_and_random_depends_on_the_job() {
    let src = "const t = new TextDecoder().decode((() => { const b = new Uint8Array(100); \
               return b.subarray(0, Javy.IO.readSync(0, b)); })()); \
               Javy.IO.writeSync(1, new TextEncoder().encode(JSON.stringify([Date.now(), Math.random(), t])))";
    let a1 = run_js(src, b"a", &small());
    let a2 = run_js(src, b"a", &small());
    let b = run_js(src, b"b", &small());
    let parse =
        |o: &jobmesh_exec::Outcome| serde_json::from_slice::<serde_json::Value>(&o.output).unwrap();
    assert_eq!(a1.output, a2.output);
    assert_eq!(parse(&a1)[0], 0);
    assert_ne!(
        parse(&a1)[1],
        parse(&b)[1],
        "Math.random must be seeded from the job id"
    );
    // Other limits → other job id → other randomness.
    let c = run_js(
        src,
        b"a",
        &Limits {
            fuel: small().fuel + 1,
            ..small()
        },
    );
    assert_ne!(parse(&a1)[1], parse(&c)[1]);
    assert_ne!(a1.job_id, c.job_id);
}

#[test]
fn job_id_covers_code_input_and_every_limit() {
    let code = js("globalThis.x = 1");
    let base = JobId::new(&code, b"in", &small());
    assert_eq!(base, JobId::new(&code, b"in", &small()));
    assert_ne!(base, JobId::new(&js("globalThis.x = 2"), b"in", &small()));
    assert_ne!(base, JobId::new(&code, b"in2", &small()));
    for limits in [
        Limits { fuel: 1, ..small() },
        Limits {
            memory_bytes: 1,
            ..small()
        },
        Limits {
            output_bytes: 1,
            ..small()
        },
        Limits {
            stderr_bytes: 1,
            ..small()
        },
    ] {
        assert_ne!(base, JobId::new(&code, b"in", &limits));
    }
}

#[test]
fn stderr_is_kept_up_to_its_limit() {
    let src = "const e = new TextEncoder().encode('x'.repeat(10000)); Javy.IO.writeSync(2, e); \
               Javy.IO.writeSync(1, new TextEncoder().encode('done'))";
    let out = run_js(src, b"", &small());
    assert_eq!(out.status, Status::Ok);
    assert_eq!(out.output, b"done");
    assert_eq!(out.stderr.len(), 4096);
}

#[test]
fn module_cache_on_disk_is_written_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("modules");
    let first = Executor::new(Some(cache.clone())).unwrap();
    first.warm_up(&Plugin::bundled().cid()).unwrap();
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "cwasm");
    // A second executor (as in a new process) loads it instead of compiling: much faster than cranelift.
    let started = std::time::Instant::now();
    let second = Executor::new(Some(cache.clone())).unwrap();
    second.warm_up(&Plugin::bundled().cid()).unwrap();
    let loaded_in = started.elapsed();
    assert!(
        loaded_in < std::time::Duration::from_millis(1500),
        "cache load took {loaded_in:?}"
    );
    let code = js(&read("examples/determinism.js"));
    let input = read("examples/determinism.input.json");
    let a = second.run(&code, input.as_bytes(), &small()).unwrap();
    let b = exec().run(&code, input.as_bytes(), &small()).unwrap();
    assert_eq!(
        (a.output, a.fuel_used),
        (b.output, b.fuel_used),
        "cached module must behave identically"
    );
    // A corrupt cache file is ignored, not fatal.
    std::fs::write(&files[0], b"not a module").unwrap();
    let third = Executor::new(Some(cache)).unwrap();
    third.warm_up(&Plugin::bundled().cid()).unwrap();
}

#[test]
fn bundled_plugin_matches_its_checked_in_sha256() {
    let want = read("exec/plugin/jobmesh-plugin.wasm.sha256");
    assert_eq!(
        want.split_whitespace().next().unwrap(),
        Plugin::bundled().sha256_hex()
    );
    assert!(Plugin::bundled().cid().to_string().starts_with("bafkrei"));
}

#[test]
fn callers_warming_up_the_same_plugin_at_once_share_one_compilation() {
    let exec = Executor::new(None).unwrap();
    let plugin = Plugin::bundled().cid();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| exec.warm_up(&plugin).unwrap());
        }
    });
    assert_eq!(exec.compilations(), 1);
    exec.warm_up(&plugin).unwrap();
    assert_eq!(exec.compilations(), 1);
}
