//! The store's error type.

use cid::Cid;

/// Everything that can go wrong in the store. Messages are one line and name the block or file involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A block's bytes do not hash to its CID (on disk, in a CAR, or from a peer).
    #[error("block {cid} is corrupt: its bytes do not match its CID")]
    Corrupt {
        /// The CID the bytes were stored or sent under.
        cid: Cid,
    },
    /// A block needed to finish the operation is not in the store.
    #[error("block {0} is not in the store")]
    NotFound(Cid),
    /// The CID uses a hash function this store cannot check.
    #[error("unsupported hash function 0x{code:x} in {cid} (supported: sha2-256, blake3)")]
    UnsupportedHash {
        /// The multihash code.
        code: u64,
        /// The CID that carries it.
        cid: Cid,
    },
    /// The CID uses a codec this store cannot decode where decoding is needed.
    #[error("unsupported codec 0x{codec:x} in {cid} (supported: raw, dag-pb)")]
    UnsupportedCodec {
        /// The multicodec code.
        codec: u64,
        /// The CID that carries it.
        cid: Cid,
    },
    /// A dag-pb or UnixFS block could not be decoded.
    #[error("block {cid} is not valid {what}: {reason}")]
    Malformed {
        /// The block.
        cid: Cid,
        /// The format it should have been.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The UnixFS node is not the kind the operation needs (e.g. `cat` of a directory).
    #[error("{cid} is a UnixFS {kind}, not a file")]
    NotAFile {
        /// The node.
        cid: Cid,
        /// Its UnixFS type.
        kind: &'static str,
    },
    /// A path inside a UnixFS DAG names no entry (or goes through a file).
    #[error("{cid} has no entry {name:?}")]
    NoSuchEntry {
        /// The node the name was looked up in.
        cid: Cid,
        /// The name.
        name: String,
    },
    /// A directory entry name that UnixFS cannot hold (empty, `.`, `..`, or with a `/`).
    #[error("invalid directory entry name {0:?}")]
    InvalidEntryName(String),
    /// A directory whose node would exceed 256 KiB: kubo shards such a directory (HAMT), which is not made here.
    #[error("a directory of {entries} entries ({bytes} bytes as one block) is larger than a UnixFS directory block may be (256 KiB); sharded directories are not supported yet")]
    DirectoryTooLarge {
        /// Entries in the directory.
        entries: usize,
        /// Size its single block would have.
        bytes: usize,
    },
    /// A CAR file is truncated or malformed.
    #[error("invalid CAR: {0}")]
    InvalidCar(String),
    /// A text CID could not be parsed.
    #[error("invalid CID {text:?}: {reason}")]
    InvalidCid {
        /// What was given.
        text: String,
        /// Why it is not a CID.
        reason: String,
    },
    /// The requested combination of import settings does not exist (e.g. CIDv0 with blake3).
    #[error("invalid import settings: {0}")]
    InvalidProfile(String),
    /// The on-disk database failed.
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    /// Reading input or writing output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}
