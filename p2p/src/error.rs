//! Errors of the peer mesh.

use std::sync::Arc;

use libp2p::{gossipsub, kad, request_response, swarm::DialError};

/// Everything that can go wrong in the peer mesh, as one-line messages. Where libp2p said why, its error is
/// kept, typed, in the variant (as rust-libp2p's `OutboundFailure` keeps its `io::Error`), so callers can
/// match on it instead of parsing text.
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
        reason: ListenFailure,
    },
    /// Dialing a peer failed.
    #[error("cannot connect to {addr}: {reason}")]
    Dial {
        /// The address or peer.
        addr: String,
        /// Why.
        reason: DialFailure,
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
    Bitswap(beetswap::Error),
    /// Storing a received block did not finish (its task panicked or was cancelled).
    #[error("storing a received block failed: {0}")]
    StoreTask(tokio::task::JoinError),
    /// Gossipsub refused an operation.
    #[error("gossipsub: {0}")]
    Gossip(GossipFailure),
    /// Kademlia refused an operation.
    #[error("dht: {0}")]
    Dht(DhtFailure),
    /// The content store failed.
    #[error("store: {0}")]
    Store(Box<jobmesh_store::StoreError>),
    /// A block's links could not be decoded.
    #[error("cannot decode links of {cid}: {reason}")]
    Links {
        /// The block.
        cid: String,
        /// Why, as the store's decoder said.
        reason: Box<jobmesh_store::StoreError>,
    },
    /// A direct request failed (unreachable peer, timeout, protocol not supported).
    #[error("request to {peer}: {}", one_line(.reason))]
    Request {
        /// The peer asked.
        peer: String,
        /// Why, as libp2p's request-response behaviour reported it.
        reason: request_response::OutboundFailure,
    },
    /// Building the swarm failed (transport, key type, gossipsub settings).
    #[error("cannot build the swarm: {what}: {reason}")]
    Build {
        /// The part that failed.
        what: &'static str,
        /// Why, as libp2p said.
        reason: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The node has shut down.
    #[error("the node has shut down")]
    Shutdown,
}

// Errors cross tasks and are boxed as `dyn Error + Send + Sync` by callers: keep them so (checked at compile time).
const _: fn() = || {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Error>();
};

impl From<jobmesh_store::StoreError> for Error {
    fn from(e: jobmesh_store::StoreError) -> Self {
        Error::Store(Box::new(e))
    }
}

/// Why listening on an address failed.
#[derive(Debug, thiserror::Error)]
pub enum ListenFailure {
    /// Another process (another node?) listens on the port already.
    #[error("port {0} is already in use (is another node running on it?)")]
    PortInUse(u16),
    /// The listener was not bound within the start-up time limit.
    #[error("timed out")]
    Timeout,
    /// The listener closed before it was bound.
    #[error("closed")]
    Closed,
    /// The operating system refused.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The transport refused the address.
    #[error("{0}")]
    Transport(libp2p::TransportError<std::io::Error>),
}

/// Why a connection attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DialFailure {
    /// No connection within the caller's time limit.
    #[error("timed out")]
    Timeout,
    /// The swarm refused the dial or every address failed (shared: one failed dial answers every caller
    /// that waited for it).
    #[error("{}", one_line(.0))]
    Swarm(Arc<DialError>),
}

/// Why gossipsub refused to subscribe or publish.
#[derive(Debug, thiserror::Error)]
pub enum GossipFailure {
    /// Publishing found no connected peer subscribed to the topic.
    #[error("no connected peer is subscribed to this topic")]
    NoPeers,
    /// The same payload was published moments ago (messages are identified by their content).
    #[error(
        "the same message was published moments ago (gossip messages are identified by their content)"
    )]
    Duplicate,
    /// Any other publishing failure.
    #[error("{0}")]
    Publish(gossipsub::PublishError),
    /// Subscribing failed.
    #[error("{0}")]
    Subscribe(gossipsub::SubscriptionError),
}

impl From<gossipsub::PublishError> for GossipFailure {
    fn from(e: gossipsub::PublishError) -> Self {
        match e {
            gossipsub::PublishError::NoPeersSubscribedToTopic => GossipFailure::NoPeers,
            gossipsub::PublishError::Duplicate => GossipFailure::Duplicate,
            e => GossipFailure::Publish(e),
        }
    }
}

/// Why a DHT operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DhtFailure {
    /// Providing while the routing table is empty: the record is kept and announced once peers come.
    #[error("no DHT peer known yet to announce to (will re-announce)")]
    NoPeers,
    /// The local record store refused the provider record.
    #[error("{0}")]
    Store(kad::store::Error),
    /// The announcement reached no peer.
    #[error("{0}")]
    Announce(kad::AddProviderError),
    /// The walk of the DAG to provide stopped (its task panicked or was cancelled).
    #[error("the DAG walk of {root} failed: {reason}")]
    Walk {
        /// The DAG's root.
        root: String,
        /// The walking task's failure.
        reason: tokio::task::JoinError,
    },
}

/// Maps a failure while building the swarm to [`Error::Build`], naming the part that failed.
pub(crate) fn build_error<E>(what: &'static str) -> impl FnOnce(E) -> Error
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    move |e| Error::Build {
        what,
        reason: e.into(),
    }
}

/// An error in one line (libp2p's dial errors list every address tried on separate lines).
pub(crate) fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
