//! Determinism across back ends: the examples and the simulator's job mix give byte-identical output,
//! stderr, status and fuel on cranelift's native code and on wasmtime's portable Pulley interpreter (a
//! different code generator and executor, as an unusual machine would run). Receipts rely on this: a job's
//! identity names the engine (`ENGINE_ID`), not the back end or the CPU.

mod support;

use jobmesh_exec::{Backend, Executor, JobCode, Limits, Outcome, Plugin};
use support::read;

const LIMITS: Limits = Limits {
    fuel: 5_000_000_000,
    memory_bytes: 64 << 20,
    output_bytes: 1 << 20,
    stderr_bytes: 4096,
};

/// simnet's failing job (simnet/src/scenario.rs `THROWS_JS`): replicas must agree on the exception too.
const THROWS_JS: &str = "const buf = new Uint8Array(64); const n = Javy.IO.readSync(0, buf);\n\
    throw new Error('job input ' + new TextDecoder().decode(buf.subarray(0, n)));\n";

/// Grows memory until the limit stops it.
const GREEDY_JS: &str = "const keep = []; for (;;) { keep.push(new Uint8Array(1 << 20)); }\n";

/// Logs to stderr, then writes more output than its limit allows.
const CHATTY_JS: &str =
    "console.error('starting'); const line = new TextEncoder().encode('x'.repeat(1000));\n\
    for (let i = 0; i < 100; i++) { Javy.IO.writeSync(1, line); }\n";

/// One case: a name, JS source, input and limits.
struct Case {
    name: String,
    source: String,
    input: Vec<u8>,
    limits: Limits,
}

fn case(name: &str, source: &str, input: &[u8], limits: Limits) -> Case {
    Case {
        name: name.to_string(),
        source: source.to_string(),
        input: input.to_vec(),
        limits,
    }
}

/// The examples with their inputs, the simulator's job mix (every kind and input size it draws), and one
/// job per limit (fuel, memory, output) so the point where a run stops is compared too.
fn cases() -> Vec<Case> {
    let mut cases = vec![
        case(
            "determinism",
            &read("examples/determinism.js"),
            read("examples/determinism.input.json").as_bytes(),
            LIMITS,
        ),
        case(
            "wordcount",
            &read("examples/wordcount.js"),
            read("examples/wordcount.input.json").as_bytes(),
            LIMITS,
        ),
        case(
            "echo",
            &read("examples/echo.js"),
            read("examples/echo.input.txt").as_bytes(),
            LIMITS,
        ),
        case("simnet echo", &read("examples/echo.js"), b"job 7", LIMITS),
        case("simnet throws", THROWS_JS, b"job 3", LIMITS),
        case(
            "simnet out-of-fuel",
            &read("examples/cpu-heavy.js"),
            br#"{"rounds": 100000}"#,
            Limits {
                fuel: 3_000_000,
                ..LIMITS
            },
        ),
        case(
            "memory limit",
            GREEDY_JS,
            b"",
            Limits {
                memory_bytes: 16 << 20,
                ..LIMITS
            },
        ),
        case(
            "output limit",
            CHATTY_JS,
            b"",
            Limits {
                output_bytes: 10_000,
                ..LIMITS
            },
        ),
    ];
    for rounds in [20, 40, 80] {
        cases.push(case(
            &format!("simnet cpu-heavy {rounds}"),
            &read("examples/cpu-heavy.js"),
            format!("{{\"rounds\": {rounds}}}").as_bytes(),
            LIMITS,
        ));
    }
    cases
}

/// What must match byte for byte.
fn fingerprint(out: &Outcome) -> (String, Vec<u8>, Vec<u8>, u64) {
    (
        format!("{:?}", out.status),
        out.output.clone(),
        out.stderr.clone(),
        out.fuel_used,
    )
}

/// Per case: its name, the bytecode the back end's compiler made (the plugin runs as a job too, so a job's
/// code CID must not depend on where it was compiled) and the run's fingerprint.
type Results = Vec<(String, Vec<u8>, (String, Vec<u8>, Vec<u8>, u64))>;

fn run_all(exec: &Executor) -> Results {
    let plugin = Plugin::bundled().cid();
    cases()
        .into_iter()
        .map(|c| {
            let bytecode = exec
                .compile_js(&plugin, "job.js", &c.source)
                .unwrap_or_else(|e| panic!("{}: compiles: {e}", c.name));
            let out = exec
                .run(&JobCode::Js(bytecode.clone()), &c.input, &c.limits)
                .unwrap_or_else(|e| panic!("{}: runs: {e}", c.name));
            (c.name, bytecode.to_bytes(), fingerprint(&out))
        })
        .collect()
}

#[test]
fn native_and_pulley_agree_on_bytecode_output_stderr_status_and_fuel() {
    let native = Executor::with_backend(None, Backend::Native).expect("native executor");
    let pulley = Executor::with_backend(None, Backend::Pulley).expect("pulley executor");
    let on_native = run_all(&native);
    let on_pulley = run_all(&pulley);
    // The mix must exercise every way a run ends, or agreeing would prove little.
    let statuses: std::collections::BTreeSet<&str> = on_native
        .iter()
        .map(|(_, _, f)| f.0.split([' ', '{']).next().unwrap_or(""))
        .collect();
    assert!(
        statuses.len() >= 5,
        "too few distinct statuses: {statuses:?}"
    );
    assert_eq!(on_native.len(), on_pulley.len());
    for ((name, code_n, n), (_, code_p, p)) in on_native.iter().zip(&on_pulley) {
        assert!(code_n == code_p, "{name}: compiled bytecode differs");
        assert_eq!(n.0, p.0, "{name}: status differs");
        assert_eq!(n.3, p.3, "{name}: fuel differs");
        assert!(n.1 == p.1, "{name}: output differs");
        assert!(n.2 == p.2, "{name}: stderr differs");
    }
}
