//! The commands a [`super::Mesh`] handle sends to the task that drives its swarm.

use jobmesh_store::Cid;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, oneshot};

use crate::nat::NatStatus;
use crate::Error;

use super::types::{GossipMessage, PeerInfo, Validator};

pub(super) type Reply<T> = oneshot::Sender<T>;

/// A `connect` call waiting for its connection: the address (for errors) and who waits.
pub(super) type PendingDial = (String, Reply<Result<PeerId, Error>>);

pub(super) enum Cmd {
    ListenAddrs(Reply<Vec<Multiaddr>>),
    Nat(Reply<NatStatus>),
    Peers(Reply<Vec<PeerInfo>>),
    TopicPeers(String, Reply<usize>),
    MeshPeers(String, Reply<usize>),
    AnyConnected(Vec<PeerId>, Reply<bool>),
    Dial(Multiaddr, Reply<Result<PeerId, Error>>),
    DialPeer(PeerId),
    Block(PeerId, bool),
    Provide(Cid, Reply<Result<(), Error>>),
    FindProviders(Cid, Reply<Vec<PeerId>>),
    LocalProviders(Cid, Reply<Vec<PeerId>>),
    GetBlock {
        req: u64,
        cid: Cid,
        /// Peers to ask (its known holders); empty: every connected peer.
        from: Vec<PeerId>,
        reply: Reply<Result<Vec<u8>, Error>>,
    },
    CancelGet(u64),
    /// A `GetBlock` with named holders is asked of every connected peer from now on.
    WidenGet(u64),
    Subscribe {
        topic: String,
        validator: Option<Validator>,
        reply: Reply<Result<broadcast::Receiver<GossipMessage>, Error>>,
    },
    Publish {
        topic: String,
        data: Vec<u8>,
        reply: Reply<Result<(), Error>>,
    },
    Request {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        data: Vec<u8>,
        reply: Reply<Result<Vec<u8>, Error>>,
    },
    Shutdown(Reply<()>),
}
