//! The in-process network simulator.
//!
//! Owns: building many complete nodes (the same market and swarm code as `jobmesh node start`) in one
//! process ([`Cluster`]), over loopback TCP or libp2p's memory transport. The scenarios, scripted faults and
//! the report of `jobmesh simnet` will grow here (see the simnet issue); the market's end-to-end tests and
//! its latency benchmark already use [`Cluster`].
//!
//! Must not touch: node internals beyond their public API; it never copies node code.

mod cluster;

pub use cluster::{Cluster, ClusterError, Member, SimChain};
