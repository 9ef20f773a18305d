//! The jobmesh Javy plugin: QuickJS (through `javy-plugin-api`) compiled to wasm32-wasip1.
//!
//! Exports the standard Javy plugin functions (`initialize-runtime`, `compile-src`, `invoke`, `cabi_realloc`)
//! and one of its own, `jobmesh-invoke`, which runs bytecode like `invoke` but reports a JavaScript
//! exception as a return value instead of aborting, so the host can tell an uncaught exception from a trap.
//!
//! Owns nothing else: the host (jobmesh-exec) provides a deterministic WASI and all limits.

use std::cell::Cell;

use javy_plugin_api::javy::quickjs::{prelude::Func, Object};
use javy_plugin_api::{import_namespace, javy::Runtime, Config};

import_namespace!("jobmesh_javy_v1");

fn config() -> Config {
    let mut config = Config::default();
    config.text_encoding(true).javy_stream_io(true);
    config
}

fn modify_runtime(runtime: Runtime) -> Runtime {
    runtime.context().with(|ctx| {
        let math: Object = ctx.globals().get("Math").expect("Math is a global");
        math.set("random", Func::from(math_random))
            .expect("Math.random can be replaced");
    });
    runtime
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    #[link_name = "random_get"]
    fn wasi_random_get(buf: *mut u8, len: usize) -> i32;
}

thread_local! {
    /// splitmix64 state; `None` until the first `Math.random()` call of a job.
    static RNG: Cell<Option<u64>> = const { Cell::new(None) };
}

/// `Math.random()`: splitmix64 seeded on first use from WASI `random_get`, which the host seeds from the
/// job id. Seeding lazily (not in `initialize-runtime`) keeps the seed out of the wizer snapshot.
fn math_random() -> f64 {
    RNG.with(|rng| {
        let mut state = rng.get().unwrap_or_else(|| {
            let mut seed = [0u8; 8];
            // SAFETY: `seed` is 8 writable bytes.
            let errno = unsafe { wasi_random_get(seed.as_mut_ptr(), seed.len()) };
            if errno != 0 {
                seed = [0; 8];
            }
            u64::from_le_bytes(seed)
        });
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        rng.set(Some(state));
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    })
}

/// Builds the QuickJS runtime; wizer runs this once at build time and snapshots the result.
#[export_name = "initialize-runtime"]
pub extern "C" fn initialize_runtime() {
    javy_plugin_api::initialize_runtime(config, modify_runtime)
        .expect("the Javy runtime could not be initialized");
}

static mut INVOKE_RET_AREA: [u32; 3] = [0; 3];
static mut INVOKE_ERROR: Vec<u8> = Vec::new();

/// Runs QuickJS bytecode. Returns a pointer to `[status, error_ptr, error_len]`: status 0 is success,
/// 1 an uncaught JavaScript exception whose text (message and stack) is at `error_ptr`.
///
/// # Safety
/// `bytecode_ptr` must point to `bytecode_len` readable bytes (written by the host after `cabi_realloc`).
#[export_name = "jobmesh-invoke"]
pub unsafe extern "C" fn jobmesh_invoke(bytecode_ptr: *const u8, bytecode_len: usize) -> *const u32 {
    let bytecode = unsafe { std::slice::from_raw_parts(bytecode_ptr, bytecode_len) };
    let result = javy_plugin_api::invoke(bytecode, None);
    #[allow(static_mut_refs)]
    unsafe {
        match result {
            Ok(()) => INVOKE_RET_AREA = [0, 0, 0],
            Err(err) => {
                INVOKE_ERROR = format!("{err}").into_bytes();
                INVOKE_RET_AREA = [1, INVOKE_ERROR.as_ptr() as u32, INVOKE_ERROR.len() as u32];
            }
        }
        INVOKE_RET_AREA.as_ptr()
    }
}
