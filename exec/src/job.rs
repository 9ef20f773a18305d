//! A job's identity, limits and outcome.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{cid_of_raw, JobCode, ENGINE_ID};

/// Resource limits of one run. All of them are part of the [`JobId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Fuel (wasmtime's unit of work: roughly one per wasm instruction). Work is priced in fuel.
    pub fuel: u64,
    /// Largest linear memory, in bytes.
    pub memory_bytes: u64,
    /// Largest stdout (the job's output), in bytes; more is the `output_too_large` status.
    pub output_bytes: u64,
    /// Largest stderr kept, in bytes; more is cut off silently (stderr is diagnostics, not output).
    pub stderr_bytes: u64,
}

impl Default for Limits {
    /// 10 billion fuel (seconds of JS), 64 MiB memory, 16 MiB output, 64 KiB stderr.
    fn default() -> Self {
        Limits {
            fuel: 10_000_000_000,
            memory_bytes: 64 << 20,
            output_bytes: 16 << 20,
            stderr_bytes: 64 << 10,
        }
    }
}

/// The identity of a job: two honest workers given the same id produce the same output and fuel.
///
/// `sha256("jobmesh/job/v1\0" ‖ ENGINE_ID ‖ 0x00 ‖ u64le(len(code)) ‖ sha256(code) ‖ input CID (binary,
/// length-prefixed by one byte) ‖ u64le(fuel) ‖ u64le(memory) ‖ u64le(output) ‖ u64le(stderr))`, where `code`
/// is [`JobCode::to_bytes`] (the `.jsbc` bytes name the plugin CID, so the plugin is covered) and
/// `ENGINE_ID` names the wasmtime version and engine flags. It also seeds the job's randomness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub [u8; 32]);

impl JobId {
    /// Computes the id of running `code` on `input` under `limits`.
    pub fn new(code: &JobCode, input: &[u8], limits: &Limits) -> JobId {
        let code = code.to_bytes();
        let input_cid = cid_of_raw(input).to_bytes();
        let mut h = Sha256::new();
        h.update(b"jobmesh/job/v1\0");
        h.update(ENGINE_ID.as_bytes());
        h.update([0u8]);
        h.update((code.len() as u64).to_le_bytes());
        h.update(Sha256::digest(&code));
        h.update([input_cid.len() as u8]);
        h.update(&input_cid);
        for v in [
            limits.fuel,
            limits.memory_bytes,
            limits.output_bytes,
            limits.stderr_bytes,
        ] {
            h.update(v.to_le_bytes());
        }
        JobId(h.finalize().into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// How a run ended. Each but [`Status::Cancelled`] is deterministic: the same job always ends the same way
/// with the same fuel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Finished normally (or a WASI module called `proc_exit(0)`).
    Ok,
    /// A WASI module called `proc_exit` with a non-zero code.
    Exit {
        /// The exit code.
        code: i32,
    },
    /// The fuel limit was reached.
    OutOfFuel,
    /// Linear memory would have grown past the memory limit.
    MemoryLimit,
    /// The job wrote more than the output limit to stdout.
    OutputTooLarge,
    /// An uncaught JavaScript exception.
    JsException {
        /// Message and stack as QuickJS prints them.
        message: String,
    },
    /// A WebAssembly trap (unreachable, out-of-bounds access, stack exhaustion, …).
    Trap {
        /// What trapped.
        message: String,
    },
    /// The code is not a valid module, or not a runnable WASI command module.
    InvalidModule {
        /// Why.
        message: String,
    },
    /// The bytecode names a plugin this node does not have.
    MissingPlugin {
        /// The plugin's CID.
        plugin: String,
    },
    /// The run was stopped from outside ([`crate::CancelToken::cancel`]) before it ended. Unlike every
    /// other status it is not deterministic: it says nothing about the job, only that it was not finished.
    Cancelled,
}

impl Status {
    /// The short name used in JSON and logs (`ok`, `out_of_fuel`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Exit { .. } => "exit",
            Status::OutOfFuel => "out_of_fuel",
            Status::MemoryLimit => "memory_limit",
            Status::OutputTooLarge => "output_too_large",
            Status::JsException { .. } => "js_exception",
            Status::Trap { .. } => "trap",
            Status::InvalidModule { .. } => "invalid_module",
            Status::MissingPlugin { .. } => "missing_plugin",
            Status::Cancelled => "cancelled",
        }
    }

    /// A one-line human description.
    pub fn describe(&self, limits: &Limits) -> String {
        match self {
            Status::Ok => "ok".into(),
            Status::Exit { code } => format!("the module exited with code {code}"),
            Status::OutOfFuel => format!("out of fuel (limit {})", limits.fuel),
            Status::MemoryLimit => {
                format!("memory limit of {} bytes exceeded", limits.memory_bytes)
            }
            Status::OutputTooLarge => format!(
                "output larger than the limit of {} bytes",
                limits.output_bytes
            ),
            Status::JsException { message } => format!("uncaught JavaScript exception: {message}"),
            Status::Trap { message } => format!("wasm trap: {message}"),
            Status::InvalidModule { message } => format!("invalid module: {message}"),
            Status::MissingPlugin { plugin } => format!("missing Javy plugin {plugin}"),
            Status::Cancelled => "cancelled before it finished".into(),
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// stdout (possibly partial when the status is not `Ok`).
    pub output: Vec<u8>,
    /// stderr, cut at the stderr limit.
    pub stderr: Vec<u8>,
    /// Fuel consumed (equal to the limit when out of fuel).
    pub fuel_used: u64,
    /// The job's identity (also its random seed).
    pub job_id: JobId,
}
