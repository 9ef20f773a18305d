//! The replay trace hook: every write with the fuel used at it, and a traced run is the same run (output,
//! status, stderr, fuel) as an untraced one.

mod support;

use jobmesh_exec::{Executor, Limits, ReplayReport, Status, MAX_TRACE_EVENTS};
use support::{exec, js, read};

fn limits() -> Limits {
    Limits {
        fuel: 2_000_000_000,
        memory_bytes: 32 << 20,
        output_bytes: 1 << 20,
        stderr_bytes: 4096,
    }
}

fn traced() -> Executor {
    Executor::traced(None).expect("traced executor")
}

const LOGS: &str = r#"
console.log("start");
let x = 0;
for (let i = 0; i < 20000; i++) x += i;
console.error("half way " + x);
for (let i = 0; i < 20000; i++) x -= i;
console.log("done " + x);
"#;

#[test]
fn tracing_changes_neither_output_nor_status_nor_fuel() {
    let t = traced();
    let jobs = [
        (LOGS.to_string(), Vec::new(), limits()),
        (
            read("examples/wordcount.js"),
            read("examples/wordcount.input.json").into_bytes(),
            limits(),
        ),
        (read("exec/tests/jobs/throws.js"), Vec::new(), limits()),
        (
            read("exec/tests/jobs/infinite_loop.js"),
            Vec::new(),
            Limits {
                fuel: 50_000_000,
                ..limits()
            },
        ),
        (
            read("exec/tests/jobs/big_output.js"),
            Vec::new(),
            Limits {
                output_bytes: 1000,
                ..limits()
            },
        ),
    ];
    for (source, input, limits) in jobs {
        let code = js(&source);
        let plain = exec().run(&code, &input, &limits).expect("runs");
        let (replayed, _) = t
            .run_traced(&code, &input, &limits, &t.cancel_token())
            .expect("runs traced");
        assert_eq!(replayed, plain, "traced run differs for {source:.60}");
    }
}

#[test]
fn each_log_line_carries_the_fuel_used_when_it_was_written() {
    let t = traced();
    let code = js(LOGS);
    let (outcome, trace) = t
        .run_traced(&code, b"", &limits(), &t.cancel_token())
        .expect("runs");
    assert_eq!(outcome.status, Status::Ok);
    let report = ReplayReport::new(&outcome, &trace, &limits(), false);
    let lines: Vec<(&str, &str)> = report
        .lines
        .iter()
        .map(|l| (l.stream.as_str(), l.text.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("stdout", "start"),
            ("stderr", "half way 199990000"),
            ("stdout", "done 0"),
        ]
    );
    let fuel: Vec<u64> = report.lines.iter().map(|l| l.fuel_used).collect();
    assert!(fuel[0] > 0 && fuel[1] > fuel[0] + 10_000_000, "{fuel:?}");
    assert!(fuel[2] > fuel[1] + 10_000_000, "{fuel:?}");
    assert!(
        fuel[2] <= outcome.fuel_used,
        "{fuel:?} {}",
        outcome.fuel_used
    );
}

#[test]
fn a_trace_is_bounded() {
    let t = traced();
    let n = MAX_TRACE_EVENTS + 500;
    let code = js(&format!(
        "for (let i = 0; i < {n}; i++) console.error('x');"
    ));
    let limits = Limits {
        stderr_bytes: 64,
        ..limits()
    };
    let plain = exec().run(&code, b"", &limits).expect("runs");
    let (outcome, trace) = t
        .run_traced(&code, b"", &limits, &t.cancel_token())
        .expect("runs");
    assert_eq!(outcome, plain);
    assert_eq!(trace.events.len(), MAX_TRACE_EVENTS);
    assert!(trace.dropped >= 500, "{}", trace.dropped);
    assert!(outcome.stderr.len() <= 64);
}

#[test]
fn a_report_names_the_exception_and_the_limit_and_where() {
    let t = traced();
    let replay = |source: &str, limits: &Limits| {
        let (outcome, trace) = t
            .run_traced(&js(source), b"", limits, &t.cancel_token())
            .expect("runs");
        ReplayReport::new(&outcome, &trace, limits, false)
    };
    let thrown = replay(&read("exec/tests/jobs/throws.js"), &limits());
    let exception = thrown.exception.expect("an exception");
    assert!(exception.contains("bad input: 42"), "{exception}");
    assert!(exception.contains("inner"), "no stack in {exception}");
    assert!(thrown.limit.is_none());

    let limits = Limits {
        fuel: 30_000_000,
        ..limits()
    };
    let looping = replay(
        "console.log('before the loop'); let i = 0; for (;;) { i++; }",
        &limits,
    );
    let hit = looping.limit.expect("a limit");
    assert_eq!(hit.limit, "fuel");
    assert_eq!(hit.at_fuel, limits.fuel);
    assert_eq!(hit.after_line.as_deref(), Some("before the loop"));
    assert_eq!(looping.lines.len(), 1);
    assert!(looping.lines[0].fuel_used < limits.fuel / 2);
}

#[test]
fn a_report_names_the_memory_and_output_limits() {
    let t = traced();
    let replay = |source: &str, limits: &Limits| {
        let (outcome, trace) = t
            .run_traced(&js(source), b"", limits, &t.cancel_token())
            .expect("runs");
        ReplayReport::new(&outcome, &trace, limits, false)
    };
    let memory = replay(
        &format!(
            "console.log('allocating');\n{}",
            read("exec/tests/jobs/alloc_bomb.js")
        ),
        &Limits {
            memory_bytes: 8 << 20,
            ..limits()
        },
    );
    let hit = memory.limit.expect("a limit");
    assert_eq!(
        (hit.limit.as_str(), memory.status.as_str()),
        ("memory", "memory_limit")
    );
    assert_eq!(hit.after_line.as_deref(), Some("allocating"));
    assert!(hit.at_fuel > memory.lines[0].fuel_used);

    let output = replay(
        &read("exec/tests/jobs/big_output.js"),
        &Limits {
            output_bytes: 100_000,
            ..limits()
        },
    );
    let hit = output.limit.expect("a limit");
    assert_eq!(
        (hit.limit.as_str(), output.status.as_str()),
        ("output", "output_too_large")
    );
    assert!(hit.message.contains("100000"), "{}", hit.message);
}
