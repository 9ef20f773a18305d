//! Errors of the host side of execution. A job's own failures (out of fuel, trap, JS exception…) are not
//! errors: they are a [`crate::Status`] in an [`crate::Outcome`].

/// Why compiling or running could not even be attempted.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The wasmtime engine could not be configured.
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(String),
    /// A JavaScript source did not compile; the message names `file:line:column` as the user wrote them.
    #[error("{0}")]
    Syntax(String),
    /// The job names a plugin this executor does not have.
    #[error("missing Javy plugin {0} (not bundled and not registered)")]
    MissingPlugin(cid::Cid),
    /// The plugin itself is not a valid Javy plugin module.
    #[error("invalid Javy plugin: {0}")]
    InvalidPlugin(String),
    /// The bytes are neither a wasm module nor jobmesh bytecode.
    #[error("not a job: {0}")]
    NotAJob(String),
    /// The plugin failed while compiling (trap, out of fuel, memory limit).
    #[error("compiling failed inside the plugin: {0}")]
    CompileFailed(String),
}
