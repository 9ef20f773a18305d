//! What a job runs: QuickJS bytecode for a named plugin, or a plain WASI preview1 command module.

use cid::Cid;

use crate::ExecError;

/// The first bytes of a jobmesh bytecode file (`.jsbc`).
pub const JSBC_MAGIC: &[u8; 8] = b"JMJSBC\x00\x01";
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// QuickJS bytecode compiled by, and only runnable with, one plugin.
///
/// File format (`.jsbc`): [`JSBC_MAGIC`], one byte n, the plugin CID's n binary bytes, then the bytecode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsBytecode {
    /// The plugin that compiled it (and must run it).
    pub plugin: Cid,
    /// QuickJS bytecode as produced by the plugin's `compile-src`.
    pub bytecode: Vec<u8>,
}

impl JsBytecode {
    /// Serializes to the `.jsbc` file format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let cid = self.plugin.to_bytes();
        let mut out = Vec::with_capacity(JSBC_MAGIC.len() + 1 + cid.len() + self.bytecode.len());
        out.extend_from_slice(JSBC_MAGIC);
        out.push(cid.len() as u8);
        out.extend_from_slice(&cid);
        out.extend_from_slice(&self.bytecode);
        out
    }

    /// Parses the `.jsbc` file format.
    pub fn from_bytes(bytes: &[u8]) -> Result<JsBytecode, ExecError> {
        let rest = bytes
            .strip_prefix(JSBC_MAGIC.as_slice())
            .ok_or_else(|| ExecError::NotAJob("no jobmesh bytecode header".into()))?;
        let (&n, rest) = rest
            .split_first()
            .ok_or_else(|| ExecError::NotAJob("truncated bytecode header".into()))?;
        let n = n as usize;
        if rest.len() < n {
            return Err(ExecError::NotAJob("truncated bytecode header".into()));
        }
        let plugin = Cid::try_from(&rest[..n])
            .map_err(|e| ExecError::NotAJob(format!("bad plugin CID in bytecode header: {e}")))?;
        Ok(JsBytecode {
            plugin,
            bytecode: rest[n..].to_vec(),
        })
    }
}

/// The code of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCode {
    /// JavaScript compiled to QuickJS bytecode, run by a Javy plugin.
    Js(JsBytecode),
    /// A WASI preview1 command module (`_start`), e.g. Rust or C compiled to wasm32-wasip1.
    Wasm(Vec<u8>),
}

impl JobCode {
    /// Recognises a `.jsbc` file or a wasm binary by its first bytes. A Javy module from `job build --wasm`
    /// (see [`crate::to_module`]) is the bytecode it carries, on the plugin it names.
    pub fn from_bytes(bytes: &[u8]) -> Result<JobCode, ExecError> {
        if bytes.starts_with(JSBC_MAGIC) {
            JsBytecode::from_bytes(bytes).map(JobCode::Js)
        } else if bytes.starts_with(WASM_MAGIC) {
            Ok(match crate::from_module(bytes)? {
                Some(js) => JobCode::Js(js),
                None => JobCode::Wasm(bytes.to_vec()),
            })
        } else {
            Err(ExecError::NotAJob(
                "neither jobmesh bytecode (.jsbc) nor a WebAssembly module".into(),
            ))
        }
    }

    /// The bytes that are hashed into the job id and stored as the job's code block.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            JobCode::Js(js) => js.to_bytes(),
            JobCode::Wasm(wasm) => wasm.clone(),
        }
    }
}
