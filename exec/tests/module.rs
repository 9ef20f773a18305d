//! Javy dynamic modules (`jobmesh job build --wasm`): the module runs in plain wasmtime linked to the plugin,
//! and jobmesh runs it exactly as the bytecode it carries.

mod support;

use jobmesh_exec::{from_module, to_module, ExecError, JobCode, Limits, Plugin, Status};
use support::{bytecode, exec, read};
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::WasiCtxBuilder;

/// Runs `module` the way any runtime would: the plugin instantiated with a WASI of its own, its exports
/// linked under its import namespace, then the module's `_start`. Returns stdout.
fn run_in_plain_wasmtime(module: &[u8], input: &[u8]) -> Vec<u8> {
    let plugin = Plugin::bundled();
    let namespace = plugin
        .import_namespace()
        .expect("the plugin declares a namespace");
    let engine = Engine::default();
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx).unwrap();
    let stdout = MemoryOutputPipe::new(1 << 20);
    let wasi = WasiCtxBuilder::new()
        .stdin(MemoryInputPipe::new(input.to_vec()))
        .stdout(stdout.clone())
        .build_p1();
    let mut store = Store::new(&engine, wasi);
    let plugin_instance = linker
        .instantiate(&mut store, &Module::new(&engine, plugin.bytes()).unwrap())
        .unwrap();
    linker
        .instance(&mut store, &namespace, plugin_instance)
        .unwrap();
    let job = linker
        .instantiate(&mut store, &Module::new(&engine, module).unwrap())
        .unwrap();
    job.get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap()
        .call(&mut store, ())
        .unwrap();
    drop(store);
    stdout.contents().to_vec()
}

#[test]
fn a_javy_module_runs_in_plain_wasmtime_and_in_jobmesh_like_its_bytecode() {
    let bytecode = bytecode(&read("examples/wordcount.js"));
    let namespace = Plugin::bundled().import_namespace().unwrap();
    assert_eq!(namespace, "jobmesh_javy_v1");
    let module = to_module(&bytecode, &namespace);
    Module::validate(&Engine::default(), &module).unwrap();
    assert_eq!(from_module(&module).unwrap().as_ref(), Some(&bytecode));

    let input = read("examples/wordcount.input.json");
    let limits = Limits::default();
    let as_bytecode = exec()
        .run(&JobCode::Js(bytecode.clone()), input.as_bytes(), &limits)
        .unwrap();
    assert_eq!(as_bytecode.status, Status::Ok);
    let as_module = exec()
        .run(
            &JobCode::from_bytes(&module).unwrap(),
            input.as_bytes(),
            &limits,
        )
        .unwrap();
    assert_eq!(as_module.output, as_bytecode.output);
    assert_eq!(as_module.fuel_used, as_bytecode.fuel_used);

    let plain = run_in_plain_wasmtime(&module, input.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&plain),
        String::from_utf8_lossy(&as_bytecode.output)
    );
}

#[test]
fn wasm_without_a_plugin_section_stays_a_wasi_module_and_a_broken_one_is_refused() {
    let plain = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    assert!(from_module(&plain).unwrap().is_none());
    assert!(matches!(
        JobCode::from_bytes(&plain).unwrap(),
        JobCode::Wasm(_)
    ));

    // A plugin section but no import of the plugin's `invoke`: not a Javy module of ours.
    let module = to_module(
        &bytecode("Javy.IO.writeSync(1, new Uint8Array([104, 105]))"),
        "jobmesh_javy_v1",
    );
    let mut broken = module.clone();
    let at = broken
        .windows(6)
        .position(|w| w == b"invoke")
        .expect("the import name");
    broken[at..at + 6].copy_from_slice(b"evoke!");
    let err = from_module(&broken).unwrap_err();
    assert!(matches!(err, ExecError::NotAJob(_)), "{err}");
    assert!(err.to_string().contains("invoke"), "{err}");
}
