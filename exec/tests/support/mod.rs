//! Shared test helpers: one executor (and so one compiled plugin) per test binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jobmesh_exec::{Executor, JobCode, JsBytecode, Limits, Outcome, Plugin};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("exec/ has a parent")
        .to_path_buf()
}

/// One executor for the whole test binary (cranelift compiles the plugin once).
pub fn exec() -> &'static Executor {
    static EXEC: OnceLock<Executor> = OnceLock::new();
    EXEC.get_or_init(|| Executor::new(None).expect("executor"))
}

/// Reads a file of the repo.
pub fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// Compiles JS to bytecode with the bundled plugin.
pub fn bytecode(source: &str) -> JsBytecode {
    exec()
        .compile_js(&Plugin::bundled().cid(), "test.js", source)
        .expect("compiles")
}

/// Compiles JS with the bundled plugin.
pub fn js(source: &str) -> JobCode {
    JobCode::Js(bytecode(source))
}

/// Runs JS source on input with the given limits.
pub fn run_js(source: &str, input: &[u8], limits: &Limits) -> Outcome {
    exec().run(&js(source), input, limits).expect("runs")
}
