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

/// Runs `prelude` then `source` in native QuickJS-ng (the rquickjs crate: upstream, unless a build patches it)
/// with a `print` like the qjs shell's (minus its newline); returns what was printed.
pub fn run_native_quickjs(prelude: &str, source: &str) -> String {
    use rquickjs::{Context, Function, Runtime};
    let runtime = Runtime::new().expect("runtime");
    let context = Context::full(&runtime).expect("context");
    let printed = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
    context.with(|ctx| {
        let sink = printed.clone();
        let print = Function::new(ctx.clone(), move |s: String| sink.borrow_mut().push_str(&s))
            .expect("print");
        ctx.globals().set("print", print).expect("global print");
        ctx.eval::<(), _>(prelude).expect("prelude runs");
        ctx.eval::<(), _>(source).expect("script runs");
    });
    let text = printed.borrow().clone();
    text
}
