//! Lottery nanopayments (not built yet: see the settlement issue).
//!
//! Will own: lottery descriptions, interval assignment, the Merkle tree over payee leaves and its proofs, and
//! the winner draw, as pure functions that compute exactly what the contract computes.
//!
//! Must not touch: any I/O (chain, network, disk).
