//! The compute market (`docs/protocol.md`): messages and their signatures, the requester's job state machine,
//! worker selection and the majority tally, the sled database of jobs, reputation and the owed ledger — and
//! the running service that drives them over the peer mesh.
//!
//! `messages`, `requester`, `tally` and `db` are pure logic and persistence: no clock, socket or job run in
//! them. `service` (the requester's actor and the inbound dispatcher) and `worker` are the glue: they use the
//! node's swarm through `jobmesh_p2p::Mesh`'s public API and run jobs through `jobmesh_exec`; [`exec_metrics`]
//! records the worker's runs.
//!
//! Owns: the market protocol, its state machines and its sled database (jobs, reputation, the owed ledger).
//! Must not touch: the chain (`jobmesh-settlement` settles the ledger), the control API, the command line or
//! the daemon's lifecycle (`jobmesh-node`, `jobmesh`): nothing here prints or reads arguments.

pub mod adversary;
pub mod challenge;
pub mod commit_path;
pub mod credibility;
pub mod db;
mod db_error;
pub mod evidence;
pub mod exec_metrics;
pub mod messages;
pub mod receipt;
pub mod receipt_store;
pub mod receipt_verify;
pub mod replay;
pub mod requester;
pub mod requester_rule;
pub mod runner;
pub mod service;
mod shared;
pub mod stake;
pub mod stderr_log;
pub mod tally;
#[cfg(test)]
mod testkit;
pub mod verification;
pub mod wire_ids;
pub mod worker;

pub use adversary::{Forgery, Saboteur};
pub use service::{JobRequest, JobStatus, Market, MarketConfig, MarketError};
pub use shared::{now_ms, AskError};
pub use worker::{Conduct, JobRunError, WorkerPolicy};
