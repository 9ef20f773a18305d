//! `jobmesh id`, `jobmesh swarm peers|connect`, `jobmesh dht findprovs`: questions to the running node.

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::context::Context;
use jobmesh_node::api::client;

/// Arguments of `jobmesh id`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  jobmesh id")]
pub struct IdArgs {}

/// `jobmesh swarm …`.
#[derive(Debug, Subcommand)]
pub enum SwarmCommand {
    /// List the peers the running node is connected to.
    #[command(after_help = "Example:\n  jobmesh swarm peers")]
    Peers,
    /// Connect the running node to a peer.
    #[command(
        after_help = "Example:\n  jobmesh swarm connect /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW..."
    )]
    Connect {
        /// The peer's multiaddr (ending in /p2p/<peer id> or not).
        multiaddr: String,
    },
}

/// `jobmesh dht …`.
#[derive(Debug, Subcommand)]
pub enum DhtCommand {
    /// Find the peers that provide a CID on the DHT.
    #[command(after_help = "Example:\n  jobmesh dht findprovs bafybei...")]
    Findprovs {
        /// The CID.
        cid: String,
        /// How long to search, in seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
}

/// `jobmesh id`: the node's PeerId and, when it runs, its addresses.
pub fn id(ctx: &Context, _args: &IdArgs) -> Result<()> {
    let info = match client::running(&ctx.home) {
        Some(api) => api.call("id", &[])?,
        None => {
            let peer = ctx.home.peer_id()?;
            json!({ "ID": peer.to_string(), "Addresses": [], "AgentVersion": jobmesh_p2p::AGENT_VERSION,
                    "Running": false })
        }
    };
    if ctx.json {
        ctx.print_json(&info)?;
    } else {
        crate::outln!("{}", info["ID"].as_str().unwrap_or_default())?;
        for a in info["Addresses"].as_array().into_iter().flatten() {
            crate::outln!("{}", a.as_str().unwrap_or_default())?;
        }
        if let Some(r) = info["Reachability"].as_str() {
            println!("reachability: {}", reachability_line(r, &info));
        }
        if info.get("Running") == Some(&Value::Bool(false)) {
            eprintln!("(no node is running: start one with `jobmesh node start`)");
        }
    }
    Ok(())
}

/// What `jobmesh id` says of the node's reachability.
fn reachability_line(r: &str, info: &Value) -> String {
    let relays = info["Relays"].as_array().map_or(0, Vec::len);
    match r {
        "public" => "public (peers can dial this node)".to_string(),
        "private" if relays > 0 => {
            format!("private (behind a NAT or firewall), reachable through {relays} relay(s)")
        }
        "private" => {
            "private (behind a NAT or firewall) and no relay yet: only outgoing connections"
                .to_string()
        }
        _ => "unknown (not tested yet)".to_string(),
    }
}

/// `jobmesh swarm …`.
pub fn swarm(ctx: &Context, command: &SwarmCommand) -> Result<()> {
    let api = client::require(&ctx.home)?;
    match command {
        SwarmCommand::Peers => {
            let v = api.call("swarm/peers", &[])?;
            if ctx.json {
                ctx.print_json(&v)?;
            } else {
                for p in v["Peers"].as_array().into_iter().flatten() {
                    let peer = p["Peer"].as_str().unwrap_or_default();
                    for c in p["Connections"].as_array().into_iter().flatten() {
                        let kind = if c["Relayed"].as_bool() == Some(true) {
                            "relayed"
                        } else {
                            "direct"
                        };
                        crate::outln!(
                            "{}/p2p/{peer} {kind}",
                            c["Addr"].as_str().unwrap_or_default()
                        )?;
                    }
                }
            }
        }
        SwarmCommand::Connect { multiaddr } => {
            let _: jobmesh_p2p::Multiaddr = multiaddr
                .parse()
                .with_context(|| format!("invalid multiaddr {multiaddr:?}"))?;
            let v = api.call("swarm/connect", &[("arg", multiaddr)])?;
            if ctx.json {
                ctx.print_json(&v)?;
            } else {
                crate::outln!("connected to {}", v["Peer"].as_str().unwrap_or_default())?;
            }
        }
    }
    Ok(())
}

/// `jobmesh dht …`.
pub fn dht(ctx: &Context, command: &DhtCommand) -> Result<()> {
    let DhtCommand::Findprovs { cid, timeout } = command;
    jobmesh_store::parse_cid(cid)?;
    anyhow::ensure!(
        timeout.is_finite() && *timeout > 0.0,
        "--timeout must be positive"
    );
    let api = client::require(&ctx.home)?;
    let v = api.call(
        "dht/findprovs",
        &[("arg", cid), ("timeout", &timeout.to_string())],
    )?;
    if ctx.json {
        ctx.print_json(&v)?;
    } else {
        for p in v["Providers"].as_array().into_iter().flatten() {
            crate::outln!("{}", p.as_str().unwrap_or_default())?;
        }
    }
    Ok(())
}
