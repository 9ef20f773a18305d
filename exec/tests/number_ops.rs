//! The plugin's QuickJS carries patches that add fast paths to the interpreter (exec/plugin/patches/). They must
//! not change what any JavaScript computes: the same script, run in the plugin and in upstream QuickJS-ng (the
//! rquickjs crate at the version the plugin is built from, without our patches, as native code), prints the
//! same bytes.

mod support;

use jobmesh_exec::{Limits, Status};
use support::{read, run_js};

/// Runs the script in upstream QuickJS-ng, collecting what it prints.
fn run_upstream(source: &str) -> String {
    use rquickjs::{Context, Function, Runtime};
    let runtime = Runtime::new().expect("runtime");
    let context = Context::full(&runtime).expect("context");
    let printed = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
    context.with(|ctx| {
        let sink = printed.clone();
        let print = Function::new(ctx.clone(), move |s: String| sink.borrow_mut().push_str(&s))
            .expect("print");
        ctx.globals().set("print", print).expect("global print");
        ctx.eval::<(), _>(source).expect("script runs");
    });
    let text = printed.borrow().clone();
    text
}

#[test]
fn number_operators_give_upstream_quickjs_results_on_every_edge_case_pair() {
    let source = read("exec/tests/jobs/number_ops.js");
    let out = run_js(&source, b"", &Limits::default());
    assert_eq!(
        out.status,
        Status::Ok,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plugin = String::from_utf8(out.output).expect("utf-8 output");
    let upstream = run_upstream(&source);
    assert_eq!(plugin.lines().count(), 33 * 33, "one line per pair");
    for (n, (ours, theirs)) in plugin.lines().zip(upstream.lines()).enumerate() {
        assert_eq!(ours, theirs, "line {n} differs (plugin, then upstream)");
    }
    assert_eq!(plugin, upstream);
    // The script exercises what the fast paths compute: mixed int32/float64 pairs, -0, NaN, big integers.
    assert!(
        plugin.contains("3 0.5 3.5 2.5 1.5 6 0 3.5 false false true true false true false true")
    );
    assert!(plugin.contains("-0 -0 -0 0 0 NaN NaN -0"));
}
