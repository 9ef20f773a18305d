//! The files of a submitted job as the CLI reads them: through the running node's API, else from the store on
//! disk; and the whole stderr of a failed job in place of the part its reveal carried inline.

use std::io::Read;

use anyhow::{Context as _, Result};
use jobmesh_node::api::client;
use jobmesh_node::market::messages::MAX_STORED_STDERR;
use jobmesh_node::market::JobStatus;

use crate::context::Context;

/// For a failed job whose workers stored their whole stderr (`stderr_cid`): that stderr in place of the part
/// the reveal carried inline. Left as it is when the file cannot be read (the inline part is still right).
pub(crate) fn with_full_stderr(ctx: &Context, s: &mut JobStatus) {
    let (Some(cid), Some(_)) = (&s.stderr_cid, &s.error) else {
        return;
    };
    match read_file(ctx, cid, MAX_STORED_STDERR as u64) {
        Ok(bytes) => s.stderr = Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => tracing::warn!(%cid, "cannot read the job's stored stderr: {e:#}"),
    }
}

/// A file of the job (its first `limit` bytes): through the running node, else from the store on disk.
pub(crate) fn read_file(ctx: &Context, cid: &str, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match client::running(&ctx.home) {
        Some(api) => {
            api.call_stream("cat", &[("arg", cid)])?
                .take(limit)
                .read_to_end(&mut bytes)
                .context("cannot read from the node")?;
        }
        None => {
            let store = jobmesh_store::Store::open(&ctx.home.blocks_dir())?;
            jobmesh_store::unixfs::cat(&store, &jobmesh_store::parse_cid(cid)?, &mut bytes)?;
            bytes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
    }
    Ok(bytes)
}
