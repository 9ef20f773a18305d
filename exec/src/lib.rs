//! Deterministic job execution (not built yet: see the execution issue).
//!
//! Will own: the Javy plugin (QuickJS compiled to wasm32-wasip1), compiling JavaScript to QuickJS bytecode,
//! the pinned wasmtime engine with fuel metering, memory/output limits and a deterministic WASI, and the
//! on-disk cache of compiled modules. Pure: (plugin, code, input, limits) → (output, fuel, status).
//!
//! Must not touch: the network or the block store.
