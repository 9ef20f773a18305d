//! The in-process network simulator behind `jobmesh simnet` (whose command-line side is in `node/cli`).
//!
//! Owns: building many complete nodes (the same swarm, market and settlement code as `jobmesh node start`) in
//! one process ([`Cluster`]) over loopback TCP or libp2p's memory transport, settling on one embedded EVM
//! ([`SimChain`]); the scripted scenario with its faults ([`scenario`]); and the report ([`report`]).
//!
//! Must not touch: node internals beyond their public API; it never copies node code.

pub mod checks;
mod cluster;
pub mod commit_path;
pub mod links;
pub mod report;
pub mod scenario;
pub mod trust;

pub use cluster::{Cluster, ClusterError, ClusterSetup, Member, SimChain};
