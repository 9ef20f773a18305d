//! The block store: blocks keyed by multihash, recursive pins, garbage collection, verification.
//!
//! sled holds the index, the pins and every small block (dag-pb nodes, small files). The payload of a large
//! block (> [`INLINE_MAX`], i.e. file chunks) is an immutable file under `large/`, named by its multihash and
//! written to a temporary name then renamed, so a crash never leaves a half-written block under a real name;
//! its sled index entry is written after the rename. Measured reason: sled 0.34 rewrites large inline values
//! with their tree pages (400 MB of 256 KiB blocks took 954 MB on disk and ran at ~64 MB/s; see BENCHMARKS.md).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cid::Cid;

use crate::hash::verify_block;
use crate::{dag, StoreError};

/// Page-cache size of the sled database. Kept small so that streaming a 4 GiB file stays within tens of MiB.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Blocks up to this size live inside sled; larger ones are files under `large/`.
pub const INLINE_MAX: usize = 16 * 1024;

/// What garbage collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Blocks removed.
    pub removed_blocks: u64,
    /// Bytes of block data removed.
    pub removed_bytes: u64,
    /// Blocks kept because a pin reaches them.
    pub kept_blocks: u64,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blocks whose bytes match their hash.
    pub ok: u64,
    /// Blocks whose bytes do not match (their raw multihash keys, as CIDv1 raw for display).
    pub corrupt: Vec<Cid>,
    /// Pins whose DAG is incomplete (a block is missing).
    pub incomplete_pins: Vec<Cid>,
}

/// A block store on disk. Cheap to clone; safe to share between threads.
///
/// Blocks are keyed by their multihash, as in kubo, so a CIDv0 and a CIDv1 dag-pb CID of the same bytes name the
/// same block. Only one process can open a store at a time (sled takes a file lock).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    blocks: sled::Tree,
    large: sled::Tree,
    pins: sled::Tree,
    large_dir: Arc<PathBuf>,
    tmp_counter: Arc<AtomicU64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Name of the sled tree holding block bytes (public so fault-injection tests can reach below the store).
pub const BLOCKS_TREE: &str = "blocks";
const PINS_TREE: &str = "pins";
const LARGE_TREE: &str = "large";
const LARGE_DIR: &str = "large";

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if is_lock_conflict(&io) => StoreError::io(
                    format!(
                        "the block store {} is in use by another process (is a node running?)",
                        dir.display()
                    ),
                    io,
                ),
                sled::Error::Io(io) => {
                    StoreError::io(format!("cannot open the block store {}", dir.display()), io)
                }
                other => StoreError::Db(other),
            })?;
        let large_dir = dir.join(LARGE_DIR);
        fs::create_dir_all(large_dir.join("tmp"))
            .map_err(|e| StoreError::io(format!("cannot create {}", large_dir.display()), e))?;
        // Leftovers of writes a crash interrupted: never referenced, safe to drop.
        if let Ok(entries) = fs::read_dir(large_dir.join("tmp")) {
            for entry in entries.flatten() {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Store {
            blocks: db.open_tree(BLOCKS_TREE)?,
            large: db.open_tree(LARGE_TREE)?,
            pins: db.open_tree(PINS_TREE)?,
            db,
            large_dir: Arc::new(large_dir),
            tmp_counter: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Where the payload of a large block lives.
    fn large_path(&self, key: &[u8]) -> PathBuf {
        let hex = hex_of(key);
        self.large_dir.join(&hex[hex.len() - 2..]).join(hex)
    }

    fn read_large(&self, key: &[u8]) -> Result<Vec<u8>, StoreError> {
        let path = self.large_path(key);
        fs::read(&path)
            .map_err(|e| StoreError::io(format!("cannot read block file {}", path.display()), e))
    }

    /// Raw bytes under a key, wherever they live (not verified).
    fn raw_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.blocks.get(key)? {
            return Ok(Some(v.to_vec()));
        }
        if self.large.contains_key(key)? {
            return Ok(Some(self.read_large(key)?));
        }
        Ok(None)
    }

    fn contains(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.blocks.contains_key(key)? || self.large.contains_key(key)?)
    }

    /// Every block key with its size.
    fn keys_and_sizes(&self) -> impl Iterator<Item = Result<(Vec<u8>, u64), StoreError>> + '_ {
        let small = self.blocks.iter().map(|e| {
            let (k, v) = e?;
            Ok((k.to_vec(), v.len() as u64))
        });
        let large = self.large.iter().map(|e| {
            let (k, v) = e?;
            Ok((k.to_vec(), size_of_entry(&v)))
        });
        small.chain(large)
    }

    /// Stores a block after checking that `data` matches `cid`. Returns whether it was new.
    pub fn put(&self, cid: &Cid, data: &[u8]) -> Result<bool, StoreError> {
        verify_block(cid, data)?;
        self.put_verified(cid, data)
    }

    /// Stores a block the caller has just hashed itself.
    pub(crate) fn put_verified(&self, cid: &Cid, data: &[u8]) -> Result<bool, StoreError> {
        let key = cid.hash().to_bytes();
        if self.contains(&key)? {
            return Ok(false);
        }
        if data.len() <= INLINE_MAX {
            self.blocks.insert(key, data)?;
            return Ok(true);
        }
        let path = self.large_path(&key);
        let tmp = self.large_dir.join("tmp").join(format!(
            "{}-{}",
            std::process::id(),
            self.tmp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        let io = |e| StoreError::io(format!("cannot write block file {}", path.display()), e);
        fs::write(&tmp, data).map_err(io)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        fs::rename(&tmp, &path).map_err(io)?;
        self.large.insert(key, &(data.len() as u64).to_be_bytes())?;
        Ok(true)
    }

    /// Reads a block and checks its bytes against the CID; a mismatch is `Err(Corrupt)`, never returned data.
    pub fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        match self.raw_get(&cid.hash().to_bytes())? {
            None => Ok(None),
            Some(bytes) => {
                verify_block(cid, &bytes)?;
                Ok(Some(bytes))
            }
        }
    }

    /// Like [`Store::get`] but a missing block is an error.
    pub fn get_required(&self, cid: &Cid) -> Result<Vec<u8>, StoreError> {
        self.get(cid)?.ok_or(StoreError::NotFound(*cid))
    }

    /// Whether the block is present (not verified).
    pub fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        self.contains(&cid.hash().to_bytes())
    }

    /// Size of a block in bytes, if present (not verified).
    pub fn size(&self, cid: &Cid) -> Result<Option<u64>, StoreError> {
        Ok(self
            .blocks
            .get(cid.hash().to_bytes())?
            .map(|b| b.len() as u64))
    }

    /// Removes a block; returns whether it was present. Pins are not consulted: use [`Store::gc`] for that.
    pub fn remove(&self, cid: &Cid) -> Result<bool, StoreError> {
        self.remove_key(&cid.hash().to_bytes())
    }

    fn remove_key(&self, key: &[u8]) -> Result<bool, StoreError> {
        if self.blocks.remove(key)?.is_some() {
            return Ok(true);
        }
        if self.large.remove(key)?.is_some() {
            let _ = fs::remove_file(self.large_path(key));
            return Ok(true);
        }
        Ok(false)
    }

    /// Number of blocks and total bytes stored.
    pub fn usage(&self) -> Result<(u64, u64), StoreError> {
        let mut count = 0;
        let mut bytes = 0;
        for entry in self.keys_and_sizes() {
            let (_, size) = entry?;
            count += 1;
            bytes += size;
        }
        Ok((count, bytes))
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Pins `root` recursively. Every block of its DAG must be present, so a pin always means "complete here".
    pub fn pin(&self, root: &Cid) -> Result<(), StoreError> {
        dag::walk(self, root, |_, _| Ok(()))?;
        self.pin_complete(root)
    }

    /// Pins a root whose whole DAG the caller has just written or found present (an import): no re-walk.
    /// The blocks are made durable before the pin is, so a crash never leaves a pin over missing blocks.
    pub(crate) fn pin_complete(&self, root: &Cid) -> Result<(), StoreError> {
        self.flush()?;
        self.pins.insert(root.to_bytes(), b"recursive".as_slice())?;
        self.flush()
    }

    /// Removes a pin; returns whether it existed.
    pub fn unpin(&self, root: &Cid) -> Result<bool, StoreError> {
        let existed = self.pins.remove(root.to_bytes())?.is_some();
        self.flush()?;
        Ok(existed)
    }

    /// Whether `root` is pinned directly.
    pub fn is_pinned(&self, root: &Cid) -> Result<bool, StoreError> {
        Ok(self.pins.contains_key(root.to_bytes())?)
    }

    /// Every pinned root.
    pub fn pins(&self) -> Result<Vec<Cid>, StoreError> {
        self.pins
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                Cid::try_from(k.as_ref()).map_err(|e| StoreError::InvalidCid {
                    text: hex_of(&k),
                    reason: format!("bad pin key: {e}"),
                })
            })
            .collect()
    }

    /// Removes every block no pin reaches.
    pub fn gc(&self) -> Result<GcStats, StoreError> {
        let mut live: HashSet<Vec<u8>> = HashSet::new();
        for root in self.pins()? {
            dag::walk_present(self, &root, &mut |cid| {
                live.insert(cid.hash().to_bytes());
            })?;
        }
        let mut stats = GcStats::default();
        let all: Vec<(Vec<u8>, u64)> = self.keys_and_sizes().collect::<Result<_, _>>()?;
        for (key, size) in all {
            if live.contains(&key) {
                stats.kept_blocks += 1;
            } else {
                self.remove_key(&key)?;
                stats.removed_blocks += 1;
                stats.removed_bytes += size;
            }
        }
        self.flush()?;
        Ok(stats)
    }

    /// Re-hashes every block and checks that every pinned DAG is complete.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        for entry in self.keys_and_sizes() {
            let (key, _) = entry?;
            let value = match self.raw_get(&key) {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(StoreError::Io { .. }) => Vec::new(), // an unreadable payload counts as corrupt
                Err(e) => return Err(e),
            };
            let mh = multihash::Multihash::<64>::from_bytes(&key).map_err(|e| {
                StoreError::InvalidCid {
                    text: hex_of(&key),
                    reason: format!("bad block key: {e}"),
                }
            })?;
            let cid = Cid::new_v1(crate::RAW, mh);
            match verify_block(&cid, &value) {
                Ok(()) => report.ok += 1,
                Err(StoreError::Corrupt { cid } | StoreError::UnsupportedHash { cid, .. }) => {
                    report.corrupt.push(cid)
                }
                Err(other) => return Err(other),
            }
        }
        for root in self.pins()? {
            let mut complete = true;
            let result = dag::walk(self, &root, |_, _| Ok(()));
            if let Err(StoreError::NotFound(_) | StoreError::Corrupt { .. }) = result {
                complete = false;
            } else {
                result?;
            }
            if !complete {
                report.incomplete_pins.push(root);
            }
        }
        Ok(report)
    }

    /// Iterates over the multihash keys of all blocks (for providing them on the network).
    pub fn block_keys(&self) -> impl Iterator<Item = Result<Vec<u8>, StoreError>> + '_ {
        self.keys_and_sizes().map(|e| e.map(|(k, _)| k))
    }
}

/// sled reports a held file lock as a wrapped `WouldBlock` ("could not acquire lock on …").
fn is_lock_conflict(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::WouldBlock
        || err.to_string().contains("could not acquire lock")
}

fn size_of_entry(v: &[u8]) -> u64 {
    v.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid_of_raw;

    #[test]
    fn put_get_round_trip_and_rejects_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cid = cid_of_raw(b"hello");
        assert!(store.put(&cid, b"hello").unwrap());
        assert!(!store.put(&cid, b"hello").unwrap());
        assert_eq!(store.get(&cid).unwrap().unwrap(), b"hello");
        assert!(matches!(
            store.put(&cid, b"HELLO"),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(store.get(&cid_of_raw(b"other")).unwrap().is_none());
    }

    #[test]
    fn corrupted_bytes_on_disk_are_reported_not_returned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cid = cid_of_raw(b"hello");
        store.put(&cid, b"hello").unwrap();
        // Flip the stored bytes below the store's API, as bit rot would.
        store
            .blocks
            .insert(cid.hash().to_bytes(), b"jello".as_slice())
            .unwrap();
        assert!(matches!(store.get(&cid), Err(StoreError::Corrupt { .. })));
        let report = store.verify().unwrap();
        assert_eq!(report.corrupt.len(), 1);
    }

    #[test]
    fn large_blocks_live_in_files_and_are_checked_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let data = vec![9u8; INLINE_MAX + 1];
        let cid = cid_of_raw(&data);
        assert!(store.put(&cid, &data).unwrap());
        assert!(!store.put(&cid, &data).unwrap());
        assert_eq!(store.usage().unwrap(), (1, data.len() as u64));
        assert_eq!(store.get(&cid).unwrap().unwrap(), data);
        let path = store.large_path(&cid.hash().to_bytes());
        fs::write(&path, b"rotten").unwrap();
        assert!(matches!(store.get(&cid), Err(StoreError::Corrupt { .. })));
        assert_eq!(
            store.verify().unwrap().corrupt,
            vec![Cid::new_v1(crate::RAW, *cid.hash())]
        );
        assert!(store.remove(&cid).unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn second_open_reports_store_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use"), "{err}");
    }
}
