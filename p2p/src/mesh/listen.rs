//! Listening: the free-port check before binding, and naming a listener that failed.

use libp2p::{multiaddr::Protocol, Multiaddr};

use crate::{Error, ListenFailure};

/// libp2p's TCP transport binds its listeners with `SO_REUSEPORT`, so a second node on a port that another
/// node already listens on would bind without a word and share its connections. The same bind without
/// `SO_REUSEPORT` first (as the API port is bound) fails with "address in use" when anything listens there.
pub(super) fn ensure_port_free(addr: &Multiaddr) -> Result<(), Error> {
    let mut it = addr.iter();
    let ip: std::net::IpAddr = match it.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    let port = match it.next() {
        Some(Protocol::Tcp(port)) if port != 0 => port,
        _ => return Ok(()),
    };
    probe_bind(std::net::SocketAddr::new(ip, port)).map_err(|e| Error::Listen {
        addr: addr.to_string(),
        reason: if e.kind() == std::io::ErrorKind::AddrInUse {
            ListenFailure::PortInUse(port)
        } else {
            ListenFailure::Io(e)
        },
    })
}

/// Binds and listens on `addr` as libp2p's TCP transport does (address reuse, IPv6 only for IPv6), without
/// port sharing, then lets go.
fn probe_bind(addr: std::net::SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1)
}

/// The listening failure of one of `listeners`, named by its address.
pub(super) fn listen_error(
    listeners: &[(libp2p::core::transport::ListenerId, Multiaddr)],
    id: libp2p::core::transport::ListenerId,
    reason: ListenFailure,
) -> Error {
    let addr = listeners
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, a)| a.to_string())
        .unwrap_or_default();
    Error::Listen { addr, reason }
}
