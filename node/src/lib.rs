//! The jobmesh node: the command-line interface, the node's on-disk layout and identity, and (as their issues
//! land) the market protocol, the ledger and the HTTP API.
//!
//! This is the only crate that wires the others together (store, exec, p2p, contracts, lottery). It owns no
//! block format, no VM and no contract code of its own: it calls the crates that do.

pub mod api;
pub mod cli;
pub mod commands;
pub mod home;
pub mod launch;
pub mod market;
pub mod metrics;
pub mod settlement;
