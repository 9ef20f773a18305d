//! Building the swarm: transports (TCP, QUIC, relay client, DNS, memory), noise, yamux and the behaviour.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use libp2p::{
    core::{muxing::StreamMuxerBox, transport::MemoryTransport, upgrade::Version, Transport as _},
    noise, tcp, yamux, PeerId, Swarm, SwarmBuilder,
};
use tracing::warn;

use crate::behaviour::{Behaviour, NatParts};
use crate::error::build_error;
use crate::{blocks::StoreBlockstore, config::Config, Error};

/// The swarm, and on TCP the flag AutoNAT sets once this node is known to be reachable.
type Built = (Swarm<Behaviour>, Option<Arc<AtomicBool>>);

/// Builds the swarm on the transport `cfg` chooses, both on TCP with noise and yamux:
/// - [`Transport::Memory`](crate::Transport::Memory): plus libp2p's in-process [`memory_transport`]
///   (simulations), without NAT traversal;
/// - [`Transport::Tcp`](crate::Transport::Tcp): plus QUIC, the memory transport, DNS, the relay client
///   transport and the NAT traversal protocols.
pub(super) fn build_swarm(cfg: &Config, blocks: StoreBlockstore) -> Result<Built, Error> {
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(cfg.idle_timeout);
    let tcp = SwarmBuilder::with_existing_identity(cfg.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux_config,
        )
        .map_err(build_error("tcp"))?;
    match cfg.transport {
        crate::Transport::Memory => {
            let swarm = tcp
                .with_other_transport(|key| memory_transport(key, cfg.links.clone()))
                .map_err(build_error("memory transport"))?
                .with_behaviour(|key| Behaviour::new(key, cfg, blocks, None).map_err(Box::from))
                .map_err(build_error("behaviour"))?
                .with_swarm_config(idle)
                .build();
            Ok((swarm, None))
        }
        crate::Transport::Tcp => {
            let dns_resolver = dns_config();
            let public = Arc::new(AtomicBool::new(false));
            let swarm = tcp
                .with_quic()
                .with_other_transport(|key| memory_transport(key, cfg.links.clone()))
                .map_err(build_error("memory transport"))?
                .with_dns_config(dns_resolver.0, dns_resolver.1)
                .with_relay_client(noise::Config::new, yamux_config)
                .map_err(build_error("relay client"))?
                .with_behaviour(|key, relay_client| {
                    let nat = NatParts {
                        relay_client,
                        public: public.clone(),
                    };
                    Behaviour::new(key, cfg, blocks, Some(nat)).map_err(Box::from)
                })
                .map_err(build_error("behaviour"))?
                .with_swarm_config(idle)
                .build();
            Ok((swarm, Some(public)))
        }
    }
}

fn yamux_config() -> yamux::Config {
    let mut c = yamux::Config::default();
    c.set_max_num_streams(512);
    c
}

/// The system's resolver settings for `/dns4`, `/dns6`, `/dns` and `/dnsaddr` addresses (`/etc/resolv.conf`;
/// `/etc/hosts` and `localhost` are answered locally). Without a readable configuration only those local
/// names resolve: a node still starts, and names it cannot resolve fail like unreachable peers.
fn dns_config() -> (libp2p::dns::ResolverConfig, libp2p::dns::ResolverOpts) {
    hickory_resolver::system_conf::read_system_conf().unwrap_or_else(|e| {
        warn!("no system DNS configuration ({e}): only /etc/hosts names resolve");
        // No name server (`ResolverConfig::default()` would be a public one).
        (
            libp2p::dns::ResolverConfig::new(),
            libp2p::dns::ResolverOpts::default(),
        )
    })
}

type BoxedErr = Box<dyn std::error::Error + Send + Sync>;

/// libp2p's in-process transport with noise and yamux.
fn memory_transport(
    key: &libp2p::identity::Keypair,
    links: Option<Arc<dyn crate::link::Links>>,
) -> Result<libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>, BoxedErr> {
    Ok(MemoryTransport::default()
        .map(move |io, point| crate::link::shape(io, &point, links.as_deref()))
        .upgrade(Version::V1)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux_config())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed())
}
