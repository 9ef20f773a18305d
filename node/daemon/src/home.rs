//! The node's data directory: where it is, what lives in it, and the node identity stored there.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use libp2p_identity::{Keypair, PeerId};

/// File name of the node's ed25519 identity inside the data directory (protobuf-encoded libp2p keypair).
pub const IDENTITY_FILE: &str = "identity.key";
/// Folder of the sled block store inside the data directory.
pub const BLOCKS_DIR: &str = "blocks";

/// The data directory chosen by `--data-dir`, `$JOBMESH_HOME` or the platform default.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Uses the given folder (it may not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The platform default: `$XDG_DATA_HOME/jobmesh` (or its equivalent), else `~/.jobmesh`.
    pub fn platform_default() -> PathBuf {
        dirs::data_dir()
            .map(|d| d.join("jobmesh"))
            .or_else(|| dirs::home_dir().map(|h| h.join(".jobmesh")))
            .unwrap_or_else(|| PathBuf::from(".jobmesh"))
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The block store's folder.
    pub fn blocks_dir(&self) -> PathBuf {
        self.root.join(BLOCKS_DIR)
    }

    /// The market database's folder (jobs, reputation, the owed ledger).
    pub fn market_dir(&self) -> PathBuf {
        self.root.join("market")
    }

    /// The folder of cached compiled modules.
    pub fn module_cache_dir(&self) -> PathBuf {
        self.root.join("cache").join("modules")
    }

    /// Creates the folder if needed (owner-only permissions on Unix).
    pub fn ensure_exists(&self) -> Result<()> {
        fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create data dir {}", self.root.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }

    /// Loads the node identity, creating and saving a fresh ed25519 key on first use.
    /// Returns the keypair and whether it was just created.
    pub fn load_or_create_identity(&self) -> Result<(Keypair, bool)> {
        let path = self.root.join(IDENTITY_FILE);
        if path.exists() {
            return Ok((self.load_identity()?, false));
        }
        self.ensure_exists()?;
        let keypair = Keypair::generate_ed25519();
        let bytes = keypair
            .to_protobuf_encoding()
            .context("cannot encode the new identity")?;
        write_private_atomically(&path, &bytes)?;
        Ok((keypair, true))
    }

    /// Loads the existing node identity; a clear error if `jobmesh init` has not been run.
    pub fn load_identity(&self) -> Result<Keypair> {
        let path = self.root.join(IDENTITY_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "no node identity in {} (run `jobmesh init` first)",
                self.root.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Keypair::from_protobuf_encoding(&bytes)
            .with_context(|| format!("{} is not a valid identity key", path.display()))
    }

    /// The PeerId of the stored identity.
    pub fn peer_id(&self) -> Result<PeerId> {
        Ok(self.load_identity()?.public().to_peer_id())
    }
}

/// Writes a secret file so that a crash never leaves a half-written key behind: temp file, fsync, rename.
fn write_private_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
