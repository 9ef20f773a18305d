//! Errors of the peer mesh.

/// Everything that can go wrong in the peer mesh, as one-line messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An address or setting this node cannot use.
    #[error("unsupported address {0}")]
    Unsupported(String),
    /// Listening on an address failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Dialing a peer failed.
    #[error("cannot connect to {addr}: {reason}")]
    Dial {
        /// The address or peer.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A block or DAG could not be found in time.
    #[error("timed out after {secs:.1}s fetching {what}")]
    Timeout {
        /// What was being fetched or looked up.
        what: String,
        /// How long we waited.
        secs: f64,
    },
    /// Bitswap reported an error for a block.
    #[error("bitswap: {0}")]
    Bitswap(String),
    /// Gossipsub refused an operation.
    #[error("gossipsub: {0}")]
    Gossip(String),
    /// Kademlia refused an operation.
    #[error("dht: {0}")]
    Dht(String),
    /// The content store failed.
    #[error("store: {0}")]
    Store(Box<jobmesh_store::StoreError>),
    /// A block's links could not be decoded.
    #[error("cannot decode links of {cid}: {reason}")]
    Links {
        /// The block.
        cid: String,
        /// Why.
        reason: String,
    },
    /// A direct request failed (unreachable peer, timeout, protocol not supported).
    #[error("request to {peer}: {reason}")]
    Request {
        /// The peer asked.
        peer: String,
        /// Why.
        reason: String,
    },
    /// Building the swarm failed (transport, key type).
    #[error("cannot build the swarm: {0}")]
    Build(String),
    /// The node has shut down.
    #[error("the node has shut down")]
    Shutdown,
}

impl From<jobmesh_store::StoreError> for Error {
    fn from(e: jobmesh_store::StoreError) -> Self {
        Error::Store(Box::new(e))
    }
}
