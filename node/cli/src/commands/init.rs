//! `jobmesh init`: create the data directory and the node identity.

use anyhow::Result;
use clap::Args;

use crate::context::Context;

/// Arguments of `jobmesh init`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  jobmesh --data-dir ./node1 init")]
pub struct InitArgs {}

/// Creates the data dir and identity (idempotent: an existing identity is kept).
pub fn run(ctx: &Context, _args: &InitArgs) -> Result<()> {
    let (keypair, created) = ctx.home.load_or_create_identity()?;
    let peer_id = keypair.public().to_peer_id();
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "peer_id": peer_id.to_string(),
            "data_dir": ctx.home.root(),
            "created": created,
        }))?;
    } else if created {
        crate::outln!(
            "initialized {} with peer id {peer_id}",
            ctx.home.root().display()
        )?;
    } else {
        crate::outln!(
            "already initialized: {} has peer id {peer_id}",
            ctx.home.root().display()
        )?;
    }
    Ok(())
}
