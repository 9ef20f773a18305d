//! CI rebuilds the Javy plugin from the package registries and checks that it is byte-identical to the
//! checked-in `exec/plugin/jobmesh-plugin.wasm` (whose sha256 is in `jobmesh-plugin.wasm.sha256`).
//! Needs clang-19, wasi-libc, binaryen and the wasm32-wasip1 target (scripts/setup.d/20-exec.sh).

mod support;
#[path = "support/wizer.rs"]
mod wizer;

use sha2::{Digest, Sha256};

#[test]
fn plugin_rebuilds_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let optimized = dir.path().join("optimized.wasm");
    let script = support::repo().join("exec/plugin/build.sh");
    // Build the plugin in this test's own target dir (…/target/jobmesh-javy-plugin), never in the source
    // tree: a warm rebuild is then quick, and a concurrent build elsewhere is not disturbed.
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<test>")
        .join("jobmesh-javy-plugin");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .env("JOBMESH_PLUGIN_TARGET_DIR", &target)
        .arg("--optimized-only")
        .arg(&optimized)
        .status()
        .expect("runs exec/plugin/build.sh");
    assert!(
        status.success(),
        "exec/plugin/build.sh failed ({status}); see its output above"
    );
    let initialized = wizer::initialize_plugin(&std::fs::read(&optimized).unwrap()).expect("wizer");
    let got = hex::encode(Sha256::digest(&initialized));
    let want = support::read("exec/plugin/jobmesh-plugin.wasm.sha256");
    assert_eq!(
        got,
        want.split_whitespace().next().unwrap(),
        "the rebuilt plugin differs from the checked-in one"
    );
}
