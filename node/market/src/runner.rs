//! Running a job's files: reading them from the store ([`read_file`]), loading code ([`load_code`]), the exec
//! limits of a spec ([`limits_of`]) and a job's verifier ([`run_verifier`]). The worker runs jobs with them,
//! the requester's service runs verifiers, settlement reads lottery files.
//!
//! Owns: these helpers and their errors. Must not touch: the network or the market's state (it imports no
//! other module of the market but `messages`).

use jobmesh_exec::{ExecError, Executor, JobCode, Limits};
use jobmesh_store::{unixfs, Cid, Store, StoreError};

use crate::messages::{CodeKind, JobSpec};

/// Largest code, input or verifier file a worker loads into memory.
pub const MAX_JOB_FILE: usize = 64 << 20;

/// Why a job's file could not be read or its verifier refused the output.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file is missing, damaged or larger than [`MAX_JOB_FILE`].
    #[error("cannot read {cid}: {source}")]
    Read {
        /// The file.
        cid: Cid,
        /// Why.
        source: Box<StoreError>,
    },
    /// The job's code is not bytecode or WebAssembly exec can load.
    #[error("the job's code: {0}")]
    Code(#[source] Box<ExecError>),
    /// The verifier's code is not bytecode exec can load.
    #[error("the verifier's code: {0}")]
    VerifierCode(#[source] Box<ExecError>),
    /// The verifier could not be started.
    #[error("the verifier did not run: {0}")]
    VerifierRun(#[source] Box<ExecError>),
    /// The verifier ran out of fuel, trapped or threw.
    #[error("the verifier failed: {0}")]
    VerifierFailed(String),
    /// The verifier printed something other than `true`.
    #[error("the verifier printed {0:?}, not true")]
    Refused(String),
}

/// The exec limits of a spec.
pub fn limits_of(spec: &JobSpec) -> Limits {
    Limits {
        fuel: spec.limits.max_fuel,
        memory_bytes: spec.limits.memory_bytes,
        output_bytes: spec.limits.output_bytes,
        stderr_bytes: spec.limits.stderr_bytes,
    }
}

/// The code of a job from its file's bytes.
pub fn load_code(kind: CodeKind, bytes: &[u8]) -> Result<JobCode, RunError> {
    match kind {
        CodeKind::JavyBytecode => {
            JobCode::from_bytes(bytes).map_err(|e| RunError::Code(Box::new(e)))
        }
        CodeKind::WasiCommand => Ok(JobCode::Wasm(bytes.to_vec())),
    }
}

/// The bytes of a UnixFS file in the store (at most [`MAX_JOB_FILE`]).
pub fn read_file(store: &Store, cid: &Cid) -> Result<Vec<u8>, RunError> {
    struct Capped(Vec<u8>);
    impl std::io::Write for Capped {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0.len() + b.len() > MAX_JOB_FILE {
                return Err(std::io::Error::other(format!(
                    "larger than {} MiB",
                    MAX_JOB_FILE >> 20
                )));
            }
            self.0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Capped(Vec::new());
    unixfs::cat(store, cid, &mut out).map_err(|source| RunError::Read {
        cid: *cid,
        source: Box::new(source),
    })?;
    Ok(out.0)
}

/// Runs a job's verifier on (input, output): its stdin is `{"input": …, "output": …}` (both as text), and it
/// accepts the output by printing `true`.
pub fn run_verifier(
    store: &Store,
    exec: &Executor,
    spec: &JobSpec,
    verifier: &Cid,
    output: &Cid,
) -> Result<(), RunError> {
    let code = read_file(store, verifier)?;
    let code = JobCode::from_bytes(&code).map_err(|e| RunError::VerifierCode(Box::new(e)))?;
    let input = read_file(store, &spec.input)?;
    let out = read_file(store, output)?;
    let stdin = serde_json::json!({
        "input": String::from_utf8_lossy(&input),
        "output": String::from_utf8_lossy(&out),
    })
    .to_string()
    .into_bytes();
    let limits = limits_of(spec);
    let outcome = exec
        .run(&code, &stdin, &limits)
        .map_err(|e| RunError::VerifierRun(Box::new(e)))?;
    if outcome.status != jobmesh_exec::Status::Ok {
        return Err(RunError::VerifierFailed(outcome.status.describe(&limits)));
    }
    let said = String::from_utf8_lossy(&outcome.output);
    if said.trim() == "true" {
        Ok(())
    } else {
        Err(RunError::Refused(said.chars().take(200).collect()))
    }
}
