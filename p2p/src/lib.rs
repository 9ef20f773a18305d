//! The peer mesh of a jobmesh node: one libp2p swarm per node that moves blocks and messages.
//! [`Mesh`] is the handle onto it (a swarm per node, so not called a node: the `jobmesh-node` crate and
//! the `jobmesh node` command are the whole node); `mesh/` holds the handle, the task that drives the swarm
//! (connection manager, peer scoring, Kademlia glue) and the swarm builder.
//!
//! Owns: the libp2p swarm (TCP and QUIC with NAT traversal — AutoNAT v2, circuit relay v2, DCUtR hole punching,
//! see `nat.rs` — or the in-memory transport for simulations, without; noise and yamux;
//! identify, ping, Kademlia, gossipsub v1.1 with signing, validation before forwarding and peer scoring,
//! bitswap 1.2, and direct request-response messages between two peers ([`Mesh::request`])), content routing (provide, re-provide, find providers) and fetching whole DAGs block by
//! block with many blocks in flight ([`Mesh::fetch_dag`]).
//!
//! Must not touch: job logic or payments. It moves bytes and messages and reads/writes blocks only through
//! [`StoreBlockstore`], a thin adapter onto `jobmesh_store::Store`.
//!
//! # Why libp2p 0.56 + `beetswap`
//! `rust-ipfs` interoperates with kubo and Helia but is hard-wired to its own repository types (our sled
//! store would need a fork) and always builds ~500 crates (QUIC, UPnP, relay, RSA…). `beetswap` 0.5 is a
//! maintained bitswap 1.2 `NetworkBehaviour` on libp2p 0.56 that works with kubo and Helia in both
//! directions; it reads and writes blocks through the `blockstore` crate's trait only, which
//! [`StoreBlockstore`] implements over our store. Kademlia provide/lookup and the DAG walk are ours.
//! The Kademlia protocol is `/jobmesh/kad/1.0.0`, so a jobmesh mesh never joins the public IPFS DHT;
//! bitswap and gossipsub use the standard protocol ids, so kubo and Helia peers exchange blocks and
//! pubsub messages with a jobmesh node they are connected to.
//!
//! # Content routing
//! [`Mesh::provide`] announces a CID on the DHT; Kademlia keeps the record and re-announces it every
//! [`Config::reprovide_interval`]. [`Mesh::provide_dag`] announces the content a node adds or pins, following
//! [`Config::provide_strategy`] (kubo's `Reprovider.Strategy`): [`ProvideStrategy::All`] (the default) announces
//! the root, then every other block of the DAG, [`PROVIDE_CONCURRENCY`] at a time, so a peer looking for any
//! block (a file inside a directory, one chunk) finds this node; [`ProvideStrategy::Roots`] announces the root
//! only (one DHT announcement per file instead of one per block). The record store holds up to
//! [`Config::max_provided_keys`] keys. What was provided while the routing table was empty (content added by a
//! node alone, pins announced at start before the bootstrap peer answered) is announced again, a few keys at a
//! time, as soon as the table gets its first peer, not hours later. A fetch asks connected peers by bitswap
//! first and the DHT's providers next ([`Mesh::fetch_dag`]).
//!
//! # How many peers
//! bitswap and gossipsub keep a stream open on every connection, so libp2p never closes one as idle: without
//! a limit a node stays connected to every peer it ever met (in a 100-node simulation, to almost all of
//! them, and bitswap sends each want to every connected peer). A connection manager in the swarm's driver
//! (kubo's `ConnMgr`, [`ConnLimits`]) disconnects the least recently used peers above a high watermark, down
//! to a low one, sparing new and recently used peers (direct requests, dials for content), gossipsub mesh
//! peers and bootstrap peers. Fetches for a market job go to the peers known to hold the blocks
//! ([`Mesh::fetch_dag_from`]) before the DHT is asked.
//!
//! # Hostile peers
//! Gossip: messages are signed when published (kubo and Helia require it) but no signature is checked here
//! (rust-libp2p checks every copy before de-duplicating); messages are identified by a hash of their content,
//! so copies are dropped before anything else, and each new message is validated before it is forwarded
//! (size limit, the topic's validator, which checks the payload's own signature); invalid ones cost their
//! sender peer score. A message's author is therefore not known here: payloads that need one sign themselves.
//! Bitswap (`beetswap`): a stream carrying an undecodable frame or one announcing more than 4 MiB is closed
//! at once, a peer's wantlist is capped at 1,024 entries, and blocks nobody asked for are ignored (not held
//! against their sender: duplicates are normal). Each bad frame costs its sender a penalty of 10 that halves
//! every minute; at 45 (five bad frames within seconds) the peer is banned: disconnected, dropped from the
//! routing table and refused through the same block list as [`Mesh::block_peer`] for
//! [`Config::misbehaviour_ban`] (10 minutes by default), counted in [`NetStats`].
//!
//! beetswap 0.5.0 reported no misbehaviour and buffered a frame of any announced size until it was complete,
//! so it is vendored in `p2p/vendor/beetswap` with a small patch: a new `Event::PeerMisbehaved { peer,
//! reason }`, raised from the connection handler, and a frame-size check on the announced length
//! (`p2p/vendor/README.md` has the details).

mod behaviour;
mod blocks;
mod config;
mod direct;
mod error;
mod fetch;
pub mod link;
mod mesh;
mod nat;
mod provide;
mod trace;

pub use blocks::StoreBlockstore;
pub use config::{
    Config, ConnLimits, NatConfig, ProvideStrategy, RelayLimits, RelayServer, Transport,
};
pub use direct::{InboundRequest, DIRECT_PROTOCOL, MAX_DIRECT_MESSAGE};
pub use error::{DhtFailure, DialFailure, Error, GossipFailure, ListenFailure};
pub use fetch::{FetchStats, HOLDER_GRACE};
pub use mesh::{ConnectionInfo, GossipMessage, Mesh, NetStats, PeerInfo, Validator};

pub use nat::{is_relayed, NatStatus, Reachability, RELAYED_GRACE};
pub use provide::{Provided, PROVIDE_CONCURRENCY};
pub use trace::{p50_p95_p99, GossipReport, GossipTrace};

pub use libp2p::{identity, multiaddr, Multiaddr, PeerId};
/// Why libp2p failed a dial or a direct request, as kept in [`DialFailure::Swarm`] and [`Error::Request`].
pub use libp2p::{request_response::OutboundFailure, swarm::DialError};

/// The agent version this node announces through identify.
pub const AGENT_VERSION: &str = concat!("jobmesh/", env!("CARGO_PKG_VERSION"));

/// Checks that a multiaddr is one this node can dial: `/ip4|ip6|dns|dns4|dns6/…/tcp/<port>` or
/// `/ip4|ip6|dns…/…/udp/<port>/quic-v1`, `/dnsaddr/<host>` (resolved through its `_dnsaddr` TXT records, as
/// kubo's bootstrap list is) or `/memory/<n>`, then optionally `/p2p/<id>`, then optionally
/// `/p2p-circuit[/p2p/<id>]` (through that relay). Returns a one-line reason otherwise.
pub fn check_dialable(addr: &Multiaddr) -> Result<(), Error> {
    use libp2p::multiaddr::Protocol;
    let mut it = addr.iter().peekable();
    let ok = match it.next() {
        Some(Protocol::Ip4(_) | Protocol::Ip6(_) | Protocol::Dns(_))
        | Some(Protocol::Dns4(_) | Protocol::Dns6(_)) => match it.next() {
            Some(Protocol::Tcp(_)) => true,
            Some(Protocol::Udp(_)) => matches!(it.next(), Some(Protocol::QuicV1)),
            _ => false,
        },
        Some(Protocol::Dnsaddr(_) | Protocol::Memory(_)) => true,
        _ => false,
    };
    let rest: Vec<_> = it.collect();
    let circuit = rest.iter().position(|p| matches!(p, Protocol::P2pCircuit));
    let rest_ok = match circuit {
        // `/p2p/<relay>/p2p-circuit[/p2p/<target>]`
        Some(i) => {
            i == 1
                && matches!(rest[0], Protocol::P2p(_))
                && rest[2..].len() <= 1
                && rest[2..].iter().all(|p| matches!(p, Protocol::P2p(_)))
        }
        None => rest.len() <= 1 && rest.iter().all(|p| matches!(p, Protocol::P2p(_))),
    };
    if ok && rest_ok {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "{addr}: expected /ip4/<ip>/tcp/<port> or /ip4/<ip>/udp/<port>/quic-v1 (or /ip6, /dns4, /dns6, /dns; \
             or /dnsaddr/<host>), then /p2p/<peer id> (and /p2p-circuit/p2p/<peer id> to go through that relay)"
        )))
    }
}

/// The peer a multiaddr names: its last `/p2p/<peer id>` (through a relay,
/// `…/p2p/<relay>/p2p-circuit/p2p/<peer>`, the peer behind it), if any.
pub fn peer_id_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter()
        .filter_map(|p| match p {
            libp2p::multiaddr::Protocol::P2p(id) => Some(id),
            _ => None,
        })
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialable_addresses() {
        for ok in [
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp",
            "/ip6/::1/tcp/1",
            "/dns4/localhost/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp",
            "/dns6/localhost/tcp/4001",
            "/dnsaddr/bootstrap.example/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp",
            "/memory/42",
            "/ip4/10.0.0.1/udp/4001/quic-v1",
            "/ip4/10.0.0.1/udp/4001/quic-v1/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp",
            "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp/p2p-circuit",
            "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp/p2p-circuit/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp",
        ] {
            check_dialable(&ok.parse().unwrap()).unwrap();
        }
        for bad in [
            "/ip4/127.0.0.1/udp/4001",
            "/ip4/127.0.0.1/udp/4001/quic",
            "/ip4/127.0.0.1/tcp/4001/p2p-circuit",
            "/ip4/127.0.0.1",
            "/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp",
        ] {
            assert!(check_dialable(&bad.parse().unwrap()).is_err(), "{bad}");
        }
    }
}
