//! The market database's error, in a file of its own so that the tables kept beside `db.rs` (the credibility
//! evidence in `evidence.rs`) can return it without importing `db.rs`, which imports them.

use crate::messages::MessageError;

/// Why the market database failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// sled failed (I/O, or another process holds the database).
    #[error("market database: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record does not decode (written by an incompatible version, or corrupt).
    #[error("market database record {key}: {source}")]
    Record {
        /// Which record.
        key: String,
        /// The decoding error.
        source: Box<MessageError>,
    },
}
