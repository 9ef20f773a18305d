//! The peer mesh of a jobmesh node (not built yet: see the peer-mesh issue).
//!
//! Will own: the libp2p swarm (TCP + noise + yamux, identify, ping, Kademlia, gossipsub, bitswap through
//! `beetswap`, request-response for the market protocol), content routing (provide / find providers) and
//! fetching whole DAGs block by block.
//!
//! Must not touch: job logic or payments. It moves bytes and messages and reads/writes blocks only through
//! the store crate's block-store interface.
