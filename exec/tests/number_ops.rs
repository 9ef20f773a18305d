//! The plugin's QuickJS carries patches that add fast paths to the interpreter (exec/plugin/patches/). They must
//! not change what any JavaScript computes: the same script, run in the plugin and in upstream QuickJS-ng (the
//! rquickjs crate at the version the plugin is built from, without our patches, as native code), prints the
//! same bytes.

mod support;

use jobmesh_exec::{Limits, Status};
use support::{read, run_js, run_native_quickjs};

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
    let upstream = run_native_quickjs("", &source);
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
