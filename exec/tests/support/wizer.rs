//! The plugin's initialization step (shared by `examples/init_plugin.rs` and `tests/plugin_reproducible.rs`):
//! wizer (the `wasmtime-wizer` crate at the same pinned wasmtime) runs the plugin's `initialize-runtime`
//! export under a deterministic WASI, keeps that export, and snapshots the initialized memory into a new
//! module. Same input bytes → same output bytes.

use wasmtime::{Config, Engine, Linker, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wizer::Wizer;

/// Runs wizer on the wasm-opt'ed plugin and returns the initialized plugin.
pub fn initialize_plugin(optimized: &[u8]) -> wasmtime::Result<Vec<u8>> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(async {
        let engine = Engine::new(&Config::new())?;
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        deterministic_wasi_ctx::add_determinism_to_wasi_ctx_builder(&mut builder);
        let wasi: WasiP1Ctx = builder.build_p1();
        let mut store = Store::new(&engine, wasi);
        let mut wizer = Wizer::new();
        wizer.init_func("initialize-runtime").keep_init_func(true);
        wizer
            .run(&mut store, optimized, async |store, module| {
                let mut linker: Linker<WasiP1Ctx> = Linker::new(store.engine());
                wasmtime_wasi::p1::add_to_linker_async(&mut linker, |cx| cx)?;
                linker.instantiate_async(store, module).await
            })
            .await
    })
}
