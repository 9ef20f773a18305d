//! On-chain settlement (not built yet: see the settlement issue).
//!
//! Will own: the Solidity sources of the deposit and lottery contracts, their compiled artifacts, alloy
//! bindings, deployment, and the `Settlement` backends (JSON-RPC and an in-process EVM).
//!
//! Must not touch: job logic. It only commits, claims and reports lotteries and deposits.
