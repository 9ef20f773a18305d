//! [`Mesh`]: a handle onto a running swarm. The swarm lives in one tokio task that owns it; the handle
//! sends it commands over a channel and awaits the answers, so the handle is cheap to clone and share.
//!
//! Split by concern, as rust-libp2p splits gossipsub: `handle` (the handle and starting a swarm), `cmd` (the
//! commands the handle sends), `driver` (the task that owns the swarm, with its connection manager, peer
//! scoring and Kademlia glue in files of their own), `swarm` (transports and the builder), `listen` (the
//! free-port check and listening errors) and `types` (what the mesh hands its users).

mod cmd;
mod driver;
mod handle;
mod listen;
mod swarm;
mod types;

pub use handle::Mesh;
pub use types::{ConnectionInfo, GossipMessage, NetStats, PeerInfo, Validator};
