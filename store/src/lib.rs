//! The content store of a jobmesh node: IPFS-compatible blocks on disk.
//!
//! Owns: block addressing (CIDv0/CIDv1 with sha2-256 or blake3 multihashes), the sled-backed block store with
//! pins and garbage collection, the UnixFS file importer/exporter (dag-pb + raw leaves, fixed-size chunks,
//! balanced layout — the same CIDs as kubo and Helia for the same settings), DAG walking and CARv1 import/export,
//! and the on-disk layout (sled for the index, pins and small blocks; append-only pack files for large blocks).
//!
//! Must not touch: the network, jobs or payments. Other crates (p2p, node) read and write blocks through
//! [`Store`]; every block read back is hash-checked against its CID, so a corrupted block is reported, never
//! returned.

// Errors carry the CID they are about (~90 bytes inline); they are on cold paths, so the size is fine.
#![allow(clippy::result_large_err)]

pub mod car;
pub mod dag;
mod error;
mod hash;
mod pack;
mod pb;
mod store;
pub mod unixfs;

pub use cid::Cid;
pub use error::StoreError;
pub use hash::{cid_of, cid_of_raw, parse_cid, verify_block, HashAlg, DAG_CBOR, DAG_PB, RAW};
pub use store::{open_sled, GcStats, Store, VerifyReport};
