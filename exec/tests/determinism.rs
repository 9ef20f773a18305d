//! Determinism is the contract: the same (code, input, limits) gives byte-identical output and identical
//! fuel on every run, every thread and every machine. (Separate processes: node/tests/job_cli.rs.)

mod support;

use std::collections::BTreeSet;

use jobmesh_exec::{JobCode, Limits, Status};
use sha2::{Digest, Sha256};
use support::{exec, js, read};

fn limits() -> Limits {
    Limits {
        fuel: 5_000_000_000,
        memory_bytes: 64 << 20,
        output_bytes: 1 << 20,
        stderr_bytes: 4096,
    }
}

/// The example jobs with their inputs.
fn jobs() -> Vec<(&'static str, JobCode, Vec<u8>)> {
    vec![
        (
            "determinism",
            js(&read("examples/determinism.js")),
            read("examples/determinism.input.json").into_bytes(),
        ),
        (
            "wordcount",
            js(&read("examples/wordcount.js")),
            read("examples/wordcount.input.json").into_bytes(),
        ),
        (
            "cpu-heavy",
            js(&read("examples/cpu-heavy.js")),
            br#"{"rounds": 50}"#.to_vec(),
        ),
    ]
}

fn fingerprint(code: &JobCode, input: &[u8]) -> (String, u64) {
    let out = exec().run(code, input, &limits()).unwrap();
    assert_eq!(
        out.status,
        Status::Ok,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (hex::encode(Sha256::digest(&out.output)), out.fuel_used)
}

#[test]
fn many_runs_give_identical_output_and_fuel() {
    for (name, code, input) in jobs() {
        let runs: BTreeSet<_> = (0..12).map(|_| fingerprint(&code, &input)).collect();
        assert_eq!(runs.len(), 1, "{name} differed between runs: {runs:?}");
    }
}

#[test]
fn concurrent_runs_give_identical_output_and_fuel() {
    let jobs = jobs();
    let results: Vec<(String, (String, u64))> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .flat_map(|_| jobs.iter())
            .map(|(name, code, input)| {
                s.spawn(move || (name.to_string(), fingerprint(code, input)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, _, _) in &jobs {
        let distinct: BTreeSet<_> = results
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, f)| f)
            .collect();
        assert_eq!(
            distinct.len(),
            1,
            "{name} differed between threads: {distinct:?}"
        );
    }
}

/// The same results on every machine: checked against values recorded when the plugin was built. A
/// change here means the plugin, wasmtime or the engine config changed, and so every job's identity.
#[test]
fn results_match_the_recorded_golden_values() {
    let golden: serde_json::Value = serde_json::from_str(&read("exec/tests/golden.json")).unwrap();
    let mut actual = serde_json::Map::new();
    for (name, code, input) in jobs() {
        let (sha, fuel) = fingerprint(&code, &input);
        actual.insert(
            name.to_string(),
            serde_json::json!({ "output_sha256": sha, "fuel_used": fuel }),
        );
    }
    let actual = serde_json::Value::Object(actual);
    assert_eq!(actual, golden, "actual: {actual}");
}

#[test]
fn determinism_example_output_is_sane() {
    let (_, code, input) = jobs().remove(0);
    let out = exec().run(&code, &input, &limits()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.output).unwrap();
    assert_eq!(v["now"], 0);
    assert_eq!(v["date"], "1970-01-01T00:00:00.000Z");
    assert_eq!(v["i32"], serde_json::json!([-2147483648, -2147483648]));
    assert_eq!(v["nan"], serde_json::json!(["NaN", "NaN", "NaN"]));
    assert_eq!(v["roundTrip"]["tiny"], 5e-324);
    let randoms = v["randoms"].as_array().unwrap();
    let distinct: BTreeSet<String> = randoms.iter().map(|r| r.to_string()).collect();
    assert_eq!(distinct.len(), 5);
    assert!(randoms
        .iter()
        .all(|r| (0.0..1.0).contains(&r.as_f64().unwrap())));
}
