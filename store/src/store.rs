//! The block store: blocks keyed by multihash, recursive pins, garbage collection, verification.
//!
//! sled holds the index, the pins and every small block (dag-pb nodes, small files). The payload of a large
//! block (> [`INLINE_MAX`], i.e. file chunks) is appended to a pack file under `packs/` (see [`crate::pack`])
//! and its sled `large` index entry, written only after the bytes are in the pack, holds its location. Measured
//! reasons: sled 0.34 rewrites large inline values with their tree pages (400 MB of 256 KiB blocks took 954 MB on
//! disk and ran at ~64 MB/s), and one file per block spent ≈ 55 % of an add creating inodes (see BENCHMARKS.md).
//!
//! Stores written before packs existed keep their large blocks as one file each under `large/` (index value:
//! the 8-byte size instead of a 20-byte location). Those are still read, verified and collected in place — no
//! migration on open; new blocks always go to packs.
//!
//! [`Store::flush`] fsyncs the packs before it flushes sled, so a durable index entry or pin never points at
//! bytes that are not durable. [`Store::gc`] removes unpinned blocks and then compacts every pack that is at
//! least half garbage: live blocks are copied to the current pack, their index entries moved (compare-and-swap),
//! everything synced, and only then is the old pack deleted — a crash at any point leaves each block readable
//! in its old or its new place, and a new pack nothing points into yet is deleted on the next open.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cid::Cid;

use crate::hash::verify_block;
use crate::pack::{Loc, Packs};
use crate::{dag, StoreError};

/// Page-cache size of the sled database. Kept small so that streaming a 4 GiB file stays within tens of MiB.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Blocks up to this size live inside sled; larger ones are appended to pack files under `packs/`.
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
    /// Pack files rewritten or deleted because at least half of their bytes were garbage.
    pub compacted_packs: u64,
    /// Bytes of disk space given back (deleted block files and packs, minus what compaction rewrote).
    pub reclaimed_bytes: u64,
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
    packs: Arc<Packs>,
    /// `large/` of stores written before packs: read-only fallback for blocks stored one file each.
    legacy_dir: Arc<PathBuf>,
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
const PACKS_DIR: &str = "packs";

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .mode(sled::Mode::HighThroughput)
            // No background flusher thread: adds, pins and imports flush before they report success; blocks
            // fetched from the network are a cache, made durable by the next flush (a lost one is fetched
            // again).
            .flush_every_ms(None);
        let db = open_sled(&config).map_err(|e| match e {
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
        let legacy_dir = dir.join(LARGE_DIR);
        // Leftovers of legacy writes a crash interrupted: never referenced, safe to drop.
        if let Ok(entries) = fs::read_dir(legacy_dir.join("tmp")) {
            for entry in entries.flatten() {
                let _ = fs::remove_file(entry.path());
            }
        }
        let large = db.open_tree(LARGE_TREE)?;
        // The end of the last indexed block of every pack: anything past it is an interrupted write.
        let mut ends: HashMap<u32, u64> = HashMap::new();
        for entry in large.iter().values() {
            if let Some(loc) = Loc::decode(&entry?) {
                let end = ends.entry(loc.pack).or_default();
                *end = (*end).max(loc.end());
            }
        }
        let packs = Packs::open(&dir.join(PACKS_DIR), &ends)?;
        Ok(Store {
            blocks: db.open_tree(BLOCKS_TREE)?,
            large,
            pins: db.open_tree(PINS_TREE)?,
            db,
            packs: Arc::new(packs),
            legacy_dir: Arc::new(legacy_dir),
        })
    }

    /// Where the payload of a legacy large block lives (stores written before packs).
    fn legacy_path(&self, key: &[u8]) -> PathBuf {
        let hex = hex_of(key);
        self.legacy_dir.join(&hex[hex.len() - 2..]).join(hex)
    }

    /// The payload of a large block from its index value.
    fn read_large(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some(loc) = Loc::decode(value) else {
            let path = self.legacy_path(key);
            return fs::read(&path).map_err(|e| {
                StoreError::io(format!("cannot read block file {}", path.display()), e)
            });
        };
        if let Some(bytes) = self.packs.read(loc)? {
            return Ok(bytes);
        }
        // The pack is gone: garbage collection moved the block and deleted its old pack after we looked it
        // up. Look again (the new location), or report the block as unreadable.
        if let Some(now) = self.large.get(key)? {
            if let Some(moved) = Loc::decode(&now).filter(|l| *l != loc) {
                if let Some(bytes) = self.packs.read(moved)? {
                    return Ok(bytes);
                }
            }
        }
        Err(StoreError::io(
            format!("pack {:08} of a block is missing", loc.pack),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ))
    }

    /// Raw bytes under a key, wherever they live (not verified).
    fn raw_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.blocks.get(key)? {
            return Ok(Some(v.to_vec()));
        }
        if let Some(v) = self.large.get(key)? {
            return Ok(Some(self.read_large(key, &v)?));
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
        // Bytes first, index entry second: a crash in between leaves only an unindexed pack tail.
        let loc = self.packs.append(data)?;
        self.large.insert(key, &loc.encode())?;
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
        let key = cid.hash().to_bytes();
        if let Some(b) = self.blocks.get(&key)? {
            return Ok(Some(b.len() as u64));
        }
        Ok(self.large.get(&key)?.map(|v| size_of_entry(&v)))
    }

    /// Removes a block; returns whether it was present. Pins are not consulted: use [`Store::gc`] for that.
    pub fn remove(&self, cid: &Cid) -> Result<bool, StoreError> {
        self.remove_key(&cid.hash().to_bytes())
    }

    fn remove_key(&self, key: &[u8]) -> Result<bool, StoreError> {
        if self.blocks.remove(key)?.is_some() {
            return Ok(true);
        }
        if let Some(v) = self.large.remove(key)? {
            // A pack block's bytes stay until gc compacts its pack; a legacy block file goes now.
            if Loc::decode(&v).is_none() {
                let _ = fs::remove_file(self.legacy_path(key));
            }
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

    /// Makes everything written so far durable: the packs first, then the index.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.packs.sync()?;
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

    /// Removes every block no pin reaches, then compacts packs that are at least half garbage. Not for use
    /// while adds run in the same store (their blocks are unpinned until the add ends, and a block appended to
    /// a pack being compacted could be lost with it): `repo gc` opens the store exclusively.
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
                if let Some(v) = self.large.get(&key)? {
                    if Loc::decode(&v).is_none() {
                        stats.reclaimed_bytes += size; // a legacy block file, deleted right away
                    }
                }
                self.remove_key(&key)?;
                stats.removed_blocks += 1;
                stats.removed_bytes += size;
            }
        }
        self.flush()?;
        self.compact(&mut stats)?;
        Ok(stats)
    }

    /// Rewrites every pack that is at least half garbage (see the module doc for the crash-safe order).
    fn compact(&self, stats: &mut GcStats) -> Result<(), StoreError> {
        let mut live: HashMap<u32, u64> = HashMap::new();
        for value in self.large.iter().values() {
            if let Some(loc) = Loc::decode(&value?) {
                *live.entry(loc.pack).or_default() += loc.len;
            }
        }
        let victims: Vec<(u32, u64)> = self
            .packs
            .sizes()?
            .into_iter()
            .filter(|&(pack, size)| {
                let live = live.get(&pack).copied().unwrap_or(0);
                size > 0 && live * 2 <= size
            })
            .collect();
        if victims.is_empty() {
            return Ok(());
        }
        // Appends (the copies included) must not go into a pack about to be deleted.
        let current = self.packs.roll();
        let victims: HashMap<u32, u64> =
            victims.into_iter().filter(|(p, _)| *p != current).collect();
        let mut moves: Vec<(Vec<u8>, Loc)> = Vec::new();
        for entry in self.large.iter() {
            let (key, value) = entry?;
            if let Some(loc) = Loc::decode(&value).filter(|l| victims.contains_key(&l.pack)) {
                moves.push((key.to_vec(), loc));
            }
        }
        let mut copied = 0u64;
        for (key, old) in moves {
            // Copied as they are: a corrupt block stays corrupt (and reported by verify), it is not dropped.
            let Some(bytes) = self.packs.read(old)? else {
                continue;
            };
            let new = self.packs.append(&bytes)?;
            copied += new.len;
            // Only if nobody removed or moved the block meanwhile; otherwise the copy is garbage.
            let _ = self.large.compare_and_swap(
                &key,
                Some(&old.encode()[..]),
                Some(&new.encode()[..]),
            )?;
        }
        self.flush()?;
        for (&pack, &size) in &victims {
            self.packs.delete(pack)?;
            stats.compacted_packs += 1;
            stats.reclaimed_bytes += size;
        }
        stats.reclaimed_bytes = stats.reclaimed_bytes.saturating_sub(copied);
        tracing::info!(packs = victims.len(), copied, "compacted packs");
        Ok(())
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

/// How long [`open_sled`] waits for a file lock held by a handle that is still closing.
const LOCK_RETRY_FOR: Duration = Duration::from_secs(2);

/// Opens a sled database (every sled database of a node goes through here). sled releases its file lock only
/// when the last background log write of a closed handle ends, so reopening right after a close in the same
/// process (a restart in a test, a simulated crash) can find it still held: a lock conflict is retried for up
/// to 2 s (blocking) before it is returned — then another process holds the database.
pub fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if is_lock_conflict(&e) && started.elapsed() < LOCK_RETRY_FOR =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Size of a large block from its index value (a pack location, or the 8-byte size of a legacy file).
fn size_of_entry(v: &[u8]) -> u64 {
    match Loc::decode(v) {
        Some(loc) => loc.len,
        None => v.try_into().map(u64::from_be_bytes).unwrap_or(0),
    }
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

    /// Total size of the pack files on disk.
    fn pack_bytes(dir: &Path) -> u64 {
        fs::read_dir(dir.join(PACKS_DIR))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    }

    fn only_pack(dir: &Path) -> PathBuf {
        let packs: Vec<PathBuf> = fs::read_dir(dir.join(PACKS_DIR))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(packs.len(), 1, "{packs:?}");
        packs[0].clone()
    }

    fn flip_byte(path: &Path, at: u64) {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut b = [0u8];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ 1], at).unwrap();
    }

    fn loc_of(store: &Store, cid: &Cid) -> Loc {
        Loc::decode(&store.large.get(cid.hash().to_bytes()).unwrap().unwrap()).unwrap()
    }

    #[test]
    fn a_lock_released_soon_is_waited_for_and_one_kept_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let config = sled::Config::new().path(dir.path()).flush_every_ms(None);
        // Held, then released 300 ms later (a handle still closing): the open waits for it.
        let held = config.open().unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let started = std::time::Instant::now();
        let db = open_sled(&config).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        releaser.join().unwrap();
        // Held for good: a lock conflict, after the retry period.
        let started = std::time::Instant::now();
        match open_sled(&config) {
            Err(sled::Error::Io(e)) => assert!(is_lock_conflict(&e), "{e}"),
            other => panic!("expected a lock conflict, got {:?}", other.map(|_| ())),
        }
        assert!(started.elapsed() >= LOCK_RETRY_FOR);
        drop(db);
    }

    fn large_block(seed: u8, len: usize) -> (Cid, Vec<u8>) {
        let data: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(seed) ^ seed)
            .collect();
        (cid_of_raw(&data), data)
    }

    #[test]
    fn large_blocks_live_in_packs_and_a_flipped_byte_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (first, first_data) = large_block(3, INLINE_MAX + 1);
        let (cid, data) = large_block(5, 100_000);
        assert!(store.put(&first, &first_data).unwrap());
        assert!(store.put(&cid, &data).unwrap());
        assert!(!store.put(&cid, &data).unwrap());
        let total = (first_data.len() + data.len()) as u64;
        assert_eq!(store.usage().unwrap(), (2, total));
        assert_eq!(store.size(&cid).unwrap(), Some(data.len() as u64));
        assert_eq!(store.get(&cid).unwrap().unwrap(), data);
        assert_eq!(pack_bytes(dir.path()), total);
        // Rot one byte in the middle of the second block, below the store.
        let loc = loc_of(&store, &cid);
        assert_eq!(loc.offset, first_data.len() as u64);
        flip_byte(&only_pack(dir.path()), loc.offset + 5_000);
        assert!(matches!(store.get(&cid), Err(StoreError::Corrupt { .. })));
        assert_eq!(store.get(&first).unwrap().unwrap(), first_data);
        let report = store.verify().unwrap();
        assert_eq!(report.ok, 1);
        assert_eq!(report.corrupt, vec![Cid::new_v1(crate::RAW, *cid.hash())]);
        assert!(store.remove(&cid).unwrap());
        assert!(store.get(&cid).unwrap().is_none());
    }

    #[test]
    fn pack_tail_garbage_after_a_crash_is_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let (a, a_data) = large_block(7, 40_000);
        let indexed_end;
        {
            let store = Store::open(dir.path()).unwrap();
            store.put(&a, &a_data).unwrap();
            store.flush().unwrap();
            indexed_end = loc_of(&store, &a).end();
        }
        // What a crash between "bytes appended" and "index entry written" leaves: a half-written block past
        // the last indexed one, plus a whole pack nothing points into yet (an interrupted compaction).
        let pack = only_pack(dir.path());
        let mut torn = fs::read(&pack).unwrap();
        torn.extend_from_slice(&large_block(9, 30_000).1[..12_345]);
        fs::write(&pack, &torn).unwrap();
        fs::write(dir.path().join(PACKS_DIR).join("00000001.pack"), b"orphan").unwrap();

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(fs::metadata(&pack).unwrap().len(), indexed_end);
        assert_eq!(only_pack(dir.path()), pack);
        let report = store.verify().unwrap();
        assert_eq!((report.ok, report.corrupt.len()), (1, 0));
        // Adds carry on right after the last indexed block, and both blocks read back.
        let (b, b_data) = large_block(11, 50_000);
        store.put(&b, &b_data).unwrap();
        assert_eq!(loc_of(&store, &b).offset, indexed_end);
        assert_eq!(store.get(&a).unwrap().unwrap(), a_data);
        assert_eq!(store.get(&b).unwrap().unwrap(), b_data);
        assert_eq!(store.verify().unwrap().ok, 2);
    }

    #[test]
    fn a_block_whose_pack_was_cut_short_is_reported_not_returned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, a_data) = large_block(13, 40_000);
        store.put(&a, &a_data).unwrap();
        store.flush().unwrap();
        // The index survived but the bytes did not all reach the disk (power loss without a flush).
        fs::OpenOptions::new()
            .write(true)
            .open(only_pack(dir.path()))
            .unwrap()
            .set_len(1_000)
            .unwrap();
        assert!(matches!(store.get(&a), Err(StoreError::Corrupt { .. })));
        assert_eq!(store.verify().unwrap().corrupt.len(), 1);
    }

    #[test]
    fn gc_compacts_packs_reclaims_space_and_keeps_pinned_blocks() {
        use crate::unixfs::{self, Profile};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let profile = Profile {
            chunk_size: 32 * 1024,
            ..Profile::KUBO
        };
        let bytes = |seed: u64, len: usize| -> Vec<u8> {
            let mut x = seed;
            (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 56) as u8
                })
                .collect()
        };
        let garbage = bytes(1, 3 * 1024 * 1024);
        let kept = bytes(2, 1024 * 1024 + 7);
        let g = store.add_file(garbage.as_slice(), &profile).unwrap();
        let k = store.add_file(kept.as_slice(), &profile).unwrap();
        let before = pack_bytes(dir.path());
        assert!(before >= (garbage.len() + kept.len() - 7) as u64);
        assert!(store.unpin(&g.root).unwrap());

        let stats = store.gc().unwrap();
        assert_eq!(stats.compacted_packs, 1);
        let after = pack_bytes(dir.path());
        assert!(after < kept.len() as u64, "{after} bytes of packs left");
        assert_eq!(stats.reclaimed_bytes, before - after);
        assert!(stats.removed_bytes >= garbage.len() as u64);
        let mut out = Vec::new();
        unixfs::cat(&store, &k.root, &mut out).unwrap();
        assert_eq!(out, kept);
        assert!(store.get(&g.root).unwrap().is_none());
        let report = store.verify().unwrap();
        assert!(report.corrupt.is_empty() && report.incomplete_pins.is_empty());

        // A second gc finds nothing to do; the store reopens as it was and takes new adds.
        assert_eq!(store.gc().unwrap().compacted_packs, 0);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(pack_bytes(dir.path()), after);
        let again = store.add_file(garbage.as_slice(), &profile).unwrap();
        let mut out = Vec::new();
        unixfs::cat(&store, &again.root, &mut out).unwrap();
        assert_eq!(out, garbage);
        out.clear();
        unixfs::cat(&store, &k.root, &mut out).unwrap();
        assert_eq!(out, kept);
    }

    #[test]
    fn concurrent_gets_during_an_add_see_whole_blocks() {
        use crate::unixfs::{self, Profile};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let profile = Profile {
            chunk_size: 64 * 1024,
            ..Profile::KUBO
        };
        let first: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let second: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 241) as u8).collect();
        let root = store.add_file(first.as_slice(), &profile).unwrap().root;
        let done = std::sync::atomic::AtomicBool::new(false);
        let reads = std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let store = store.clone();
                    let (done, first, root) = (&done, &first, root);
                    s.spawn(move || {
                        let mut reads = 0u32;
                        let mut out = Vec::with_capacity(first.len());
                        // At least one full read, then as many as fit while the add runs.
                        while reads == 0 || !done.load(std::sync::atomic::Ordering::Acquire) {
                            out.clear();
                            unixfs::cat(&store, &root, &mut out).unwrap();
                            assert!(out == *first);
                            reads += 1;
                        }
                        reads
                    })
                })
                .collect();
            let added = store.add_file(second.as_slice(), &profile).unwrap();
            done.store(true, std::sync::atomic::Ordering::Release);
            let mut out = Vec::new();
            unixfs::cat(&store, &added.root, &mut out).unwrap();
            assert!(out == second);
            readers.into_iter().map(|r| r.join().unwrap()).sum::<u32>()
        });
        assert!(reads >= 2);
        assert!(store.verify().unwrap().corrupt.is_empty());
    }

    #[test]
    fn legacy_block_files_are_still_read_verified_and_collected() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (cid, data) = large_block(17, 20_000);
        // The layout before packs: `large/<last two hex digits>/<hex of the multihash>`, index value = size.
        let key = cid.hash().to_bytes();
        let path = store.legacy_path(&key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &data).unwrap();
        store
            .large
            .insert(&key, &(data.len() as u64).to_be_bytes())
            .unwrap();
        assert_eq!(store.get(&cid).unwrap().unwrap(), data);
        assert_eq!(store.size(&cid).unwrap(), Some(data.len() as u64));
        assert_eq!(store.verify().unwrap().ok, 1);
        let stats = store.gc().unwrap();
        assert_eq!((stats.removed_blocks, stats.reclaimed_bytes), (1, 20_000));
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
