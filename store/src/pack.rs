//! Append-only pack files: where the payloads of large blocks live.
//!
//! A pack is `packs/NNNNNNNN.pack`, a plain concatenation of block payloads with no framing; the sled `large`
//! index maps a block's multihash to its [`Loc`] (pack number, offset, length). Appends go to one current pack
//! under a mutex (the append position), and it is rolled to the next number once it would exceed
//! [`PACK_MAX`]. Reads are positional (`pread`) on a shared handle, so any number of threads read while one
//! appends. The bytes of a block are always in the pack before its index entry is written, so whatever lies
//! past the last indexed block of a pack is the garbage of an interrupted write: [`Packs::open`] truncates it
//! (and deletes packs no index entry points into). Reads are not checked here; the store hash-checks them.
//!
//! Durability: [`Packs::sync`] fsyncs every pack written since the last sync; the store calls it before it
//! flushes sled, so an index entry made durable never points at bytes that are not. While appending, the
//! kernel is asked to start writing back each [`WRITEBACK_STEP`] behind the append position
//! (`sync_file_range`), so the final fsync overlaps with the work instead of starting at the end.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::StoreError;

/// A pack is rolled before it would grow past this size.
pub const PACK_MAX: u64 = 1 << 30;

/// Writeback of appended bytes is started in steps of this size.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Where a block's payload lives: pack number, byte offset, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Pack number (the `NNNNNNNN` of its file name).
    pub pack: u32,
    /// Offset of the first byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Length of an encoded [`Loc`] (index values of other lengths are not pack locations).
pub const LOC_BYTES: usize = 20;

impl Loc {
    /// The index value: pack (u32), offset (u64), length (u64), big-endian.
    pub fn encode(&self) -> [u8; LOC_BYTES] {
        let mut out = [0u8; LOC_BYTES];
        out[..4].copy_from_slice(&self.pack.to_be_bytes());
        out[4..12].copy_from_slice(&self.offset.to_be_bytes());
        out[12..].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    /// Decodes an index value written by [`Loc::encode`].
    pub fn decode(v: &[u8]) -> Option<Loc> {
        if v.len() != LOC_BYTES {
            return None;
        }
        Some(Loc {
            pack: u32::from_be_bytes(v[..4].try_into().ok()?),
            offset: u64::from_be_bytes(v[4..12].try_into().ok()?),
            len: u64::from_be_bytes(v[12..].try_into().ok()?),
        })
    }

    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// The append position.
struct Writer {
    /// Number of the current pack.
    number: u32,
    /// Its handle (`None` until the first append creates the file).
    file: Option<Arc<File>>,
    /// Its length.
    len: u64,
    /// How far writeback has been started.
    hinted: u64,
    /// Packs written to since the last sync (the current one and any rolled away from).
    unsynced: BTreeSet<u32>,
}

/// The set of pack files of one store. Shared between threads behind an `Arc`.
pub struct Packs {
    dir: PathBuf,
    writer: Mutex<Writer>,
    files: RwLock<HashMap<u32, Arc<File>>>,
}

impl Packs {
    /// Opens the packs in `dir` (created if missing). `ends` gives, per pack, the end of its last indexed block:
    /// a longer pack is truncated to it, and a pack absent from `ends` holds no indexed block and is deleted.
    pub fn open(dir: &Path, ends: &HashMap<u32, u64>) -> Result<Packs, StoreError> {
        let io = |what: &str, e| StoreError::io(format!("cannot {what} {}", dir.display()), e);
        fs::create_dir_all(dir).map_err(|e| io("create", e))?;
        let mut files = HashMap::new();
        let mut last: Option<(u32, Arc<File>, u64)> = None;
        let mut numbers: Vec<(u32, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io("list", e))? {
            let path = entry.map_err(|e| io("list", e))?.path();
            if let Some(n) = pack_number(&path) {
                numbers.push((n, path));
            }
        }
        numbers.sort();
        for (n, path) in numbers {
            let Some(&end) = ends.get(&n) else {
                tracing::info!(pack = %path.display(), "deleting a pack no block points into");
                fs::remove_file(&path)
                    .map_err(|e| StoreError::io(format!("cannot delete {}", path.display()), e))?;
                continue;
            };
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| StoreError::io(format!("cannot open {}", path.display()), e))?;
            let len = file
                .metadata()
                .map_err(|e| StoreError::io(format!("cannot stat {}", path.display()), e))?
                .len();
            let len = if len > end {
                tracing::info!(pack = %path.display(), garbage = len - end,
                    "truncating the unindexed tail of a pack (an interrupted write)");
                file.set_len(end).map_err(|e| {
                    StoreError::io(format!("cannot truncate {}", path.display()), e)
                })?;
                file.sync_all().map_err(|e| {
                    StoreError::io(format!("cannot truncate {}", path.display()), e)
                })?;
                end
            } else {
                len
            };
            let file = Arc::new(file);
            files.insert(n, file.clone());
            last = Some((n, file, len));
        }
        // Never reuse the number of a pack the index still names (its file lost below the store): its stale
        // entries would point at new bytes. They would fail the hash check, but stay reported as missing.
        let indexed_max = ends.keys().max().copied();
        let writer = match last {
            _ if indexed_max > last.as_ref().map(|l| l.0) => {
                Writer::fresh(indexed_max.map_or(0, |n| n + 1))
            }
            Some((number, file, len)) if len < PACK_MAX => Writer {
                number,
                file: Some(file),
                len,
                hinted: len,
                unsynced: BTreeSet::new(),
            },
            Some((number, ..)) => Writer::fresh(number + 1),
            None => Writer::fresh(0),
        };
        Ok(Packs {
            dir: dir.to_path_buf(),
            writer: Mutex::new(writer),
            files: RwLock::new(files),
        })
    }

    fn path_of(&self, pack: u32) -> PathBuf {
        self.dir.join(format!("{pack:08}.pack"))
    }

    /// Appends `data` to the current pack and returns where it went. The bytes are in the file (page cache)
    /// when this returns; they are durable after [`Packs::sync`].
    pub fn append(&self, data: &[u8]) -> Result<Loc, StoreError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.len > 0 && w.len + data.len() as u64 > PACK_MAX {
            let next = w.number + 1;
            *w = Writer {
                unsynced: std::mem::take(&mut w.unsynced),
                ..Writer::fresh(next)
            };
        }
        let file = match &w.file {
            Some(f) => f.clone(),
            None => {
                let path = self.path_of(w.number);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(|e| StoreError::io(format!("cannot create {}", path.display()), e))?;
                // A leftover of the same number (not indexed, so garbage): start it afresh.
                file.set_len(0)
                    .map_err(|e| StoreError::io(format!("cannot create {}", path.display()), e))?;
                let file = Arc::new(file);
                self.files
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(w.number, file.clone());
                w.file = Some(file.clone());
                file
            }
        };
        let loc = Loc {
            pack: w.number,
            offset: w.len,
            len: data.len() as u64,
        };
        file.write_all_at(data, loc.offset).map_err(|e| {
            StoreError::io(
                format!("cannot write to {}", self.path_of(loc.pack).display()),
                e,
            )
        })?;
        w.len = loc.end();
        let number = w.number;
        w.unsynced.insert(number);
        if w.len - w.hinted >= WRITEBACK_STEP {
            start_writeback(&file, w.hinted, w.len - w.hinted);
            w.hinted = w.len;
        }
        Ok(loc)
    }

    /// Reads the bytes at `loc`. `Ok(None)`: the pack does not exist (any more). A pack shorter than `loc`
    /// says (a torn write) gives the bytes that are there, which then fail the hash check.
    pub fn read(&self, loc: Loc) -> Result<Option<Vec<u8>>, StoreError> {
        let file = match self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&loc.pack)
        {
            Some(f) => f.clone(),
            None => return Ok(None),
        };
        let len = usize::try_from(loc.len).map_err(|_| {
            StoreError::io(
                "block length in the index is too large",
                std::io::Error::from(std::io::ErrorKind::InvalidData),
            )
        })?;
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match file.read_at(&mut buf[filled..], loc.offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(StoreError::io(
                        format!("cannot read {}", self.path_of(loc.pack).display()),
                        e,
                    ))
                }
            }
        }
        buf.truncate(filled);
        Ok(Some(buf))
    }

    /// Makes every appended byte durable (fsync of each pack written since the last sync).
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let unsynced = std::mem::take(&mut w.unsynced);
        for pack in unsynced {
            let file = self
                .files
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&pack)
                .cloned();
            if let Some(file) = file {
                file.sync_data().map_err(|e| {
                    StoreError::io(format!("cannot sync {}", self.path_of(pack).display()), e)
                })?;
            }
        }
        Ok(())
    }

    /// Starts a new pack for the following appends if the current one has bytes; returns the number of the
    /// pack appends now go to.
    pub fn roll(&self) -> u32 {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.len > 0 {
            let next = w.number + 1;
            *w = Writer {
                unsynced: std::mem::take(&mut w.unsynced),
                ..Writer::fresh(next)
            };
        }
        w.number
    }

    /// Every pack with its size on disk.
    pub fn sizes(&self) -> Result<Vec<(u32, u64)>, StoreError> {
        let files: Vec<(u32, Arc<File>)> = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(n, f)| (*n, f.clone()))
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for (n, f) in files {
            let len = f
                .metadata()
                .map_err(|e| {
                    StoreError::io(format!("cannot stat {}", self.path_of(n).display()), e)
                })?
                .len();
            out.push((n, len));
        }
        out.sort();
        Ok(out)
    }

    /// Deletes a pack no index entry points into any more (never the one appends go to).
    pub fn delete(&self, pack: u32) -> Result<(), StoreError> {
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.number == pack {
            return Ok(());
        }
        self.files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pack);
        drop(w);
        let path = self.path_of(pack);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(
                format!("cannot delete {}", path.display()),
                e,
            )),
        }
    }
}

impl Writer {
    fn fresh(number: u32) -> Writer {
        Writer {
            number,
            file: None,
            len: 0,
            hinted: 0,
            unsynced: BTreeSet::new(),
        }
    }
}

/// `NNNNNNNN` of a `packs/NNNNNNNN.pack` path.
fn pack_number(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_suffix(".pack")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Asks the kernel to start writing `len` bytes at `offset` back to disk, without waiting. Best effort: a
/// failure only means the later fsync does all the work.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a valid open descriptor and plain integers; the call only schedules writeback.
    let rc = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "sync_file_range failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loc_round_trips_and_rejects_other_lengths() {
        let loc = Loc {
            pack: 7,
            offset: 1 << 33,
            len: 262_144,
        };
        assert_eq!(Loc::decode(&loc.encode()), Some(loc));
        assert_eq!(Loc::decode(&[0u8; 8]), None);
    }

    #[test]
    fn pack_names() {
        assert_eq!(pack_number(Path::new("x/00000012.pack")), Some(12));
        assert_eq!(pack_number(Path::new("x/12.pack")), None);
        assert_eq!(pack_number(Path::new("x/0000001a.pack")), None);
    }
}
