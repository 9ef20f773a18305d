//! Deterministic job execution for jobmesh.
//!
//! Owns: the Javy plugin (QuickJS compiled to wasm32-wasip1, checked in at `exec/plugin/`), compiling
//! JavaScript to QuickJS bytecode through that plugin, the pinned wasmtime engine with fuel metering,
//! memory/output/stderr limits and a deterministic WASI (no filesystem, network or environment, a fixed
//! clock, randomness seeded from the [`JobId`]), the on-disk cache of compiled modules, and Javy dynamic modules
//! (bytecode wrapped in a `.wasm` that imports the plugin: [`to_module`], [`from_module`]).
//! Pure: (plugin, code, input, limits) → (output, fuel, status).
//!
//! Must not touch: the network or the block store (CIDs are computed here with `sha2`/`cid` directly).
//!
//! ```no_run
//! use jobmesh_exec::{Executor, JobCode, Limits, Plugin, Status};
//! let exec = Executor::new(None)?;
//! let code = exec.compile_js(&Plugin::bundled().cid(), "job.js",
//!     "Javy.IO.writeSync(1, new TextEncoder().encode('hi'))")?;
//! let outcome = exec.run(&JobCode::Js(code), b"", &Limits::default())?;
//! assert_eq!(outcome.status, Status::Ok);
//! assert_eq!(outcome.output, b"hi");
//! # Ok::<(), jobmesh_exec::ExecError>(())
//! ```

mod code;
mod engine;
mod error;
mod job;
mod module;
mod plugin;
mod replay;
mod trace;
mod wasi;

pub use cid::Cid;
pub use code::{JobCode, JsBytecode, JSBC_MAGIC};
pub use engine::{Backend, CancelToken, Executor, ENGINE_ID, WASMTIME_VERSION};
pub use error::ExecError;
pub use job::{JobId, Limits, Outcome, Status};
pub use module::{from_module, to_module, PLUGIN_SECTION};
pub use plugin::{cid_of_raw, Plugin};
pub use replay::{LimitHit, LogLine, ReplayReport};
pub use trace::{Trace, TraceEvent, MAX_TRACE_EVENTS, MAX_TRACE_TEXT};
