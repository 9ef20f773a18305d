//! The in-process network simulator (not built yet: see the simnet issue).
//!
//! Will own: building many complete nodes (the same code as `jobmesh node start`) in one process over
//! libp2p's memory transport, scripted faults reproducible from a seed, workloads, and the report.
//!
//! Must not touch: node internals beyond their public API; it never copies node code.
