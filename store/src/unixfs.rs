//! UnixFS files: the importer (bytes → blocks and a root CID) and the exporter (root CID → bytes).
//!
//! The importer streams: it holds a few chunks (one, plus ≤ 8 in flight to the writer thread of an add) and,
//! per tree level, at most `max_links` pending links, so memory stays flat whatever the file size. Its output
//! is byte-for-byte what kubo (`ipfs add --cid-version=1`) and the JS importer produce for the same
//! [`Profile`]: fixed-size chunks, balanced layout, `blocksizes` per child, cumulative `Tsize` on links, and a
//! one-chunk file reduced to its single leaf.
//!
//! [`Store::add_file`] is a two-stage pipeline on two threads: the caller's thread reads, chunks and hashes,
//! a writer thread stores the blocks (pack appends, index inserts), with a few chunks in flight between them
//! and the chunk buffers recycled, so neither stage waits for the other's disk or CPU work.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc;

use cid::{Cid, Version};

use crate::dag::{codec_of, malformed};
use crate::hash::HashAlg;
use crate::pb::{self, PbLink, UnixFsType};
use crate::{Store, StoreError, DAG_PB, RAW};

/// How a file is cut into blocks. The same bytes under the same profile always give the same root CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Short name shown to users (`kubo`, `helia`, `v0`).
    pub name: &'static str,
    /// CID version of every block.
    pub cid_version: Version,
    /// Leaves are raw blocks (true) or dag-pb UnixFS `file` nodes (false, the CIDv0 legacy layout).
    pub raw_leaves: bool,
    /// Bytes per chunk.
    pub chunk_size: usize,
    /// Links per internal node of the balanced tree.
    pub max_links: usize,
    /// Hash function of every block.
    pub hash: HashAlg,
}

impl Profile {
    /// kubo's `ipfs add --cid-version=1`: CIDv1, sha2-256, raw leaves, 256 KiB chunks, 174 links.
    pub const KUBO: Profile = Profile {
        name: "kubo",
        cid_version: Version::V1,
        raw_leaves: true,
        chunk_size: 256 * 1024,
        max_links: 174,
        hash: HashAlg::Sha2_256,
    };
    /// Helia's default: CIDv1, sha2-256, raw leaves, 1 MiB chunks, 1024 links.
    pub const HELIA: Profile = Profile {
        name: "helia",
        cid_version: Version::V1,
        raw_leaves: true,
        chunk_size: 1024 * 1024,
        max_links: 1024,
        hash: HashAlg::Sha2_256,
    };
    /// Legacy CIDv0 (`Qm…`): dag-pb leaves, sha2-256, 256 KiB chunks, 174 links.
    pub const V0: Profile = Profile {
        name: "v0",
        cid_version: Version::V0,
        raw_leaves: false,
        chunk_size: 256 * 1024,
        max_links: 174,
        hash: HashAlg::Sha2_256,
    };

    /// Every named profile.
    pub const ALL: [Profile; 3] = [Profile::KUBO, Profile::HELIA, Profile::V0];

    /// Looks a profile up by name.
    pub fn by_name(name: &str) -> Result<Profile, StoreError> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                StoreError::InvalidProfile(format!(
                    "unknown profile {name:?} (use kubo, helia or v0)"
                ))
            })
    }

    /// The same profile with another hash function (CIDv0 only allows sha2-256).
    pub fn with_hash(mut self, hash: HashAlg) -> Result<Profile, StoreError> {
        if self.cid_version == Version::V0 && hash != HashAlg::Sha2_256 {
            return Err(StoreError::InvalidProfile(format!(
                "CIDv0 (profile {}) only supports sha2-256, not {hash}",
                self.name
            )));
        }
        self.hash = hash;
        Ok(self)
    }

    fn cid(&self, codec: u64, data: &[u8]) -> Cid {
        let mh = self.hash.digest(data);
        match self.cid_version {
            Version::V0 => Cid::new_v0(mh).expect("v0 profile is sha2-256 dag-pb"),
            Version::V1 => Cid::new_v1(codec, mh),
        }
    }
}

/// The result of importing one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Root CID of the file.
    pub root: Cid,
    /// File size in bytes.
    pub size: u64,
    /// Number of blocks produced (duplicates included).
    pub blocks: u64,
}

/// A link waiting for its parent: child CID, cumulative DAG size, file bytes below it.
#[derive(Debug, Clone, Copy)]
struct Pending {
    cid: Cid,
    tsize: u64,
    file_size: u64,
}

/// Where the importer's blocks go: it takes each block (owned, so it can move to another thread) and lends
/// out the buffers chunks are read into.
trait BlockSink {
    /// Takes one block, children before parents.
    fn put(&mut self, cid: &Cid, block: Vec<u8>) -> Result<(), StoreError>;
    /// A buffer to read the next chunk into (any length; the importer resizes it).
    fn buffer(&mut self) -> Vec<u8>;
}

/// A sink over a borrowing callback: one buffer, reused for every chunk.
struct CallbackSink<F> {
    callback: F,
    spare: Vec<u8>,
}

impl<F: FnMut(&Cid, &[u8]) -> Result<(), StoreError>> BlockSink for CallbackSink<F> {
    fn put(&mut self, cid: &Cid, block: Vec<u8>) -> Result<(), StoreError> {
        (self.callback)(cid, &block)?;
        if block.capacity() > self.spare.capacity() {
            self.spare = block;
        }
        Ok(())
    }

    fn buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }
}

/// Streaming balanced-tree builder.
struct Builder<'a, S> {
    profile: &'a Profile,
    sink: S,
    levels: Vec<Vec<Pending>>,
    blocks: u64,
    size: u64,
}

impl<S: BlockSink> Builder<'_, S> {
    fn emit(&mut self, codec: u64, bytes: Vec<u8>) -> Result<Cid, StoreError> {
        let cid = self.profile.cid(codec, &bytes);
        self.sink.put(&cid, bytes)?;
        self.blocks += 1;
        Ok(cid)
    }

    fn leaf(&mut self, chunk: Vec<u8>) -> Result<Pending, StoreError> {
        self.size += chunk.len() as u64;
        let file_size = chunk.len() as u64;
        if self.profile.raw_leaves {
            let cid = self.emit(RAW, chunk)?;
            Ok(Pending {
                cid,
                tsize: file_size,
                file_size,
            })
        } else {
            let data = pb::encode_unixfs_file(Some(&chunk), file_size, &[]);
            let node = pb::encode_node(&[], Some(&data));
            let tsize = node.len() as u64;
            let cid = self.emit(DAG_PB, node)?;
            Ok(Pending {
                cid,
                tsize,
                file_size,
            })
        }
    }

    fn parent(&mut self, children: &[Pending]) -> Result<Pending, StoreError> {
        let file_size: u64 = children.iter().map(|c| c.file_size).sum();
        let blocksizes: Vec<u64> = children.iter().map(|c| c.file_size).collect();
        let links: Vec<PbLink> = children
            .iter()
            .map(|c| PbLink {
                hash: c.cid.to_bytes(),
                name: Some(String::new()),
                tsize: Some(c.tsize),
            })
            .collect();
        let data = pb::encode_unixfs_file(None, file_size, &blocksizes);
        let node = pb::encode_node(&links, Some(&data));
        let tsize = node.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>();
        let cid = self.emit(DAG_PB, node)?;
        Ok(Pending {
            cid,
            tsize,
            file_size,
        })
    }

    /// Adds a node at `level`, folding full levels into parents as it goes.
    fn push(&mut self, mut level: usize, mut node: Pending) -> Result<(), StoreError> {
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::with_capacity(self.profile.max_links));
            }
            self.levels[level].push(node);
            if self.levels[level].len() < self.profile.max_links {
                return Ok(());
            }
            let full = std::mem::take(&mut self.levels[level]);
            node = self.parent(&full)?;
            level += 1;
        }
    }

    /// Folds what is left, level by level, exactly like the reference balanced layout.
    fn finish(mut self) -> Result<Imported, StoreError> {
        let mut level = 0;
        loop {
            let is_top = self.levels[level + 1..].iter().all(Vec::is_empty);
            let pending = std::mem::take(&mut self.levels[level]);
            if is_top && pending.len() == 1 {
                return Ok(Imported {
                    root: pending[0].cid,
                    size: self.size,
                    blocks: self.blocks,
                });
            }
            if !pending.is_empty() {
                let parent = self.parent(&pending)?;
                if self.levels.len() <= level + 1 {
                    self.levels.push(Vec::new());
                }
                self.levels[level + 1].push(parent);
            }
            level += 1;
        }
    }
}

/// Cuts `reader` into blocks under `profile`, handing each block to `sink` (children before parents), and
/// returns the root. An empty input gives the CID of an empty file, as kubo does.
pub fn import<R: Read>(
    reader: R,
    profile: &Profile,
    sink: impl FnMut(&Cid, &[u8]) -> Result<(), StoreError>,
) -> Result<Imported, StoreError> {
    import_into(
        reader,
        profile,
        CallbackSink {
            callback: sink,
            spare: Vec::new(),
        },
    )
}

fn import_into<R: Read>(
    mut reader: R,
    profile: &Profile,
    sink: impl BlockSink,
) -> Result<Imported, StoreError> {
    if profile.chunk_size == 0 || profile.max_links < 2 {
        return Err(StoreError::InvalidProfile(
            "chunk size must be > 0 and links per node ≥ 2".into(),
        ));
    }
    let mut builder = Builder {
        profile,
        sink,
        levels: vec![Vec::new()],
        blocks: 0,
        size: 0,
    };
    let mut first = true;
    loop {
        let mut chunk = builder.sink.buffer();
        chunk.resize(profile.chunk_size, 0);
        let filled = read_full(&mut reader, &mut chunk)?;
        if filled == 0 && !first {
            break;
        }
        first = false;
        chunk.truncate(filled);
        let leaf = builder.leaf(chunk)?;
        builder.push(0, leaf)?;
        if filled < profile.chunk_size {
            break;
        }
    }
    builder.finish()
}

/// Blocks in flight between the hashing and the writing thread of [`Store::add_file`].
const PIPELINE_DEPTH: usize = 8;

/// The hashing side of the [`Store::add_file`] pipeline: hands blocks to the writer thread and takes its
/// emptied buffers back.
struct PipeSink {
    blocks: mpsc::SyncSender<(Cid, Vec<u8>)>,
    recycled: mpsc::Receiver<Vec<u8>>,
}

impl BlockSink for PipeSink {
    fn put(&mut self, cid: &Cid, block: Vec<u8>) -> Result<(), StoreError> {
        // Fails only when the writer has stopped on an error, which the caller reports instead.
        self.blocks.send((*cid, block)).map_err(|_| {
            StoreError::io(
                "the block writer stopped",
                std::io::Error::from(std::io::ErrorKind::BrokenPipe),
            )
        })
    }

    fn buffer(&mut self) -> Vec<u8> {
        self.recycled.try_recv().unwrap_or_default()
    }
}

/// The root CID `bytes` get as a UnixFS file under `profile`, computed without storing anything (for one chunk
/// under a raw-leaves profile, the raw block's CID). This is how job outputs are named on the market.
pub fn file_cid(bytes: &[u8], profile: &Profile) -> Result<Cid, StoreError> {
    import(bytes, profile, |_, _| Ok(())).map(|imported| imported.root)
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, StoreError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::io("cannot read the input", e)),
        }
    }
    Ok(filled)
}

impl Store {
    /// Imports a file into the store and pins it. On any error the blocks this call added are removed again,
    /// so a failed add leaves the store as it was; after a crash, unpinned leftovers are removed by `gc`.
    pub fn add_file<R: Read>(&self, reader: R, profile: &Profile) -> Result<Imported, StoreError> {
        let imported = self.import_file(reader, profile)?;
        self.pin_complete(&imported.root)?;
        Ok(imported)
    }

    /// Imports a directory tree (files and directories; a symlink, device or non-UTF-8 name is refused) into the
    /// store and pins its root. Directories are UnixFS directories as kubo's `add -r` makes them under the same
    /// profile (entries sorted by name, links carrying cumulative DAG sizes), so the same tree gets kubo's CID.
    /// `size` and `blocks` of the answer add up the files (blocks include the directory nodes). A failure
    /// part-way leaves unpinned blocks, which `gc` removes.
    pub fn add_dir(&self, dir: &Path, profile: &Profile) -> Result<Imported, StoreError> {
        let imported = self.import_tree(dir, profile)?;
        self.pin_complete(&imported.root)?;
        Ok(imported)
    }

    fn import_tree(&self, path: &Path, profile: &Profile) -> Result<Imported, StoreError> {
        let cannot = |e| StoreError::io(format!("cannot read {}", path.display()), e);
        let meta = fs::symlink_metadata(path).map_err(cannot)?;
        if meta.is_file() {
            return self.import_file(fs::File::open(path).map_err(cannot)?, profile);
        }
        if !meta.is_dir() {
            return Err(StoreError::io(
                format!(
                    "{} is not a file or directory (symlinks are not added)",
                    path.display()
                ),
                std::io::Error::from(std::io::ErrorKind::InvalidInput),
            ));
        }
        let (mut entries, mut size, mut blocks) = (Vec::new(), 0, 1);
        for item in fs::read_dir(path).map_err(cannot)? {
            let item = item.map_err(cannot)?;
            let name = item
                .file_name()
                .into_string()
                .map_err(|raw| StoreError::InvalidEntryName(raw.to_string_lossy().into_owned()))?;
            let child = self.import_tree(&item.path(), profile)?;
            size += child.size;
            blocks += child.blocks;
            entries.push(DirEntry {
                name,
                cid: child.root,
            });
        }
        let root = put_dir_as(self, &entries, profile)?;
        Ok(Imported { root, size, blocks })
    }

    /// Imports a file without pinning it (see [`Store::add_file`] for what happens on an error).
    fn import_file<R: Read>(&self, reader: R, profile: &Profile) -> Result<Imported, StoreError> {
        let chunk_size = profile.chunk_size;
        let (blocks_tx, blocks_rx) = mpsc::sync_channel::<(Cid, Vec<u8>)>(PIPELINE_DEPTH);
        let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<u8>>();
        let (imported, (added, written)) = std::thread::scope(|s| {
            let writer = s.spawn(move || {
                let mut added: Vec<Cid> = Vec::new();
                for (cid, block) in blocks_rx {
                    match self.put_verified(&cid, &block) {
                        Ok(true) => added.push(cid),
                        Ok(false) => {}
                        Err(e) => return (added, Err(e)),
                    }
                    // Chunk-sized buffers go back to the reader; small dag-pb nodes are just dropped, so the
                    // pool never holds more buffers than were in flight at once.
                    if block.capacity() >= chunk_size {
                        let _ = recycle_tx.send(block);
                    }
                }
                (added, Ok(()))
            });
            let sink = PipeSink {
                blocks: blocks_tx,
                recycled: recycle_rx,
            };
            let imported = import_into(reader, profile, sink);
            let written = writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (imported, written)
        });
        // A writer error is the cause of any "writer stopped" on the reading side.
        let result = written.and(imported);
        if result.is_err() {
            for cid in &added {
                let _ = self.remove(cid);
            }
            let _ = self.flush();
        }
        result
    }
}

/// Writes the bytes of the UnixFS file (or raw block) `root` to `out`; returns the number of bytes written.
/// Blocks are read one at a time, hash-checked, so memory stays flat for any file size.
pub fn cat(store: &Store, root: &Cid, out: &mut impl Write) -> Result<u64, StoreError> {
    let mut written = 0u64;
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        let block = store.get_required(&cid)?;
        let (data, children) = file_parts(&cid, &block, &cid == root)?;
        if let Some(data) = data {
            out.write_all(data.as_ref())
                .map_err(|e| StoreError::io("cannot write the output", e))?;
            written += data.as_ref().len() as u64;
        }
        stack.extend(children.into_iter().rev());
    }
    out.flush()
        .map_err(|e| StoreError::io("cannot write the output", e))?;
    Ok(written)
}

/// The bytes one block of a file carries itself (borrowed for raw leaves) and its children, in order.
type FileParts<'a> = (Option<std::borrow::Cow<'a, [u8]>>, Vec<Cid>);

/// Splits one block of a file into the bytes it carries and its children.
fn file_parts<'a>(cid: &Cid, block: &'a [u8], is_root: bool) -> Result<FileParts<'a>, StoreError> {
    match codec_of(cid) {
        RAW => Ok((Some(std::borrow::Cow::Borrowed(block)), Vec::new())),
        DAG_PB => {
            let node = pb::decode_node(block).map_err(|r| malformed(cid, "dag-pb", r))?;
            let fs = pb::decode_unixfs(node.data.as_deref().unwrap_or_default())
                .map_err(|r| malformed(cid, "UnixFS", r))?;
            match fs.kind {
                UnixFsType::File | UnixFsType::Raw => {}
                other if is_root => {
                    return Err(StoreError::NotAFile {
                        cid: *cid,
                        kind: other.name(),
                    })
                }
                other => {
                    return Err(malformed(
                        cid,
                        "UnixFS file",
                        format!("a {} inside a file", other.name()),
                    ))
                }
            }
            let children = node
                .links
                .iter()
                .map(|l| {
                    Cid::try_from(l.hash.as_slice())
                        .map_err(|e| malformed(cid, "dag-pb", format!("bad link: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((fs.data.map(std::borrow::Cow::Owned), children))
        }
        codec => Err(StoreError::UnsupportedCodec { codec, cid: *cid }),
    }
}

/// One entry of a UnixFS directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name in the directory.
    pub name: String,
    /// Its root block.
    pub cid: Cid,
}

/// The entries of `cid` if it is a UnixFS directory, `None` if it is a file or a raw block.
pub fn list_dir(store: &Store, cid: &Cid) -> Result<Option<Vec<DirEntry>>, StoreError> {
    if codec_of(cid) != DAG_PB {
        return Ok(None);
    }
    let block = store.get_required(cid)?;
    let node = pb::decode_node(&block).map_err(|r| malformed(cid, "dag-pb", r))?;
    let fs = pb::decode_unixfs(node.data.as_deref().unwrap_or_default())
        .map_err(|r| malformed(cid, "UnixFS", r))?;
    if fs.kind != UnixFsType::Directory {
        return Ok(None);
    }
    node.links
        .iter()
        .map(|link| {
            let child = Cid::try_from(link.hash.as_slice())
                .map_err(|e| malformed(cid, "dag-pb", format!("bad link: {e}")))?;
            Ok(DirEntry {
                name: link.name.clone().unwrap_or_default(),
                cid: child,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Stores a UnixFS directory (CIDv1 dag-pb, sha2-256) holding `entries` (sorted by name, as UnixFS requires;
/// names must be non-empty and contain no `/`) and returns its CID. The entries' root blocks must be local.
pub fn put_dir(store: &Store, entries: &[DirEntry]) -> Result<Cid, StoreError> {
    put_dir_as(store, entries, &Profile::KUBO)
}

/// The largest directory node written: kubo shards a directory into a HAMT above 256 KiB, which is not made
/// here, so a larger one is refused rather than given a CID kubo would not give it.
const MAX_DIR_BLOCK: usize = 256 * 1024;

/// [`put_dir`] with the CID version and hash of `profile` (kubo makes a directory's CID like its files').
pub fn put_dir_as(
    store: &Store,
    entries: &[DirEntry],
    profile: &Profile,
) -> Result<Cid, StoreError> {
    let mut sorted: Vec<&DirEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut links = Vec::with_capacity(sorted.len());
    for e in sorted {
        if e.name.is_empty() || e.name.contains('/') || e.name == "." || e.name == ".." {
            return Err(StoreError::InvalidEntryName(e.name.clone()));
        }
        links.push(PbLink {
            hash: e.cid.to_bytes(),
            name: Some(e.name.clone()),
            tsize: Some(dag_size(store, &e.cid)?),
        });
    }
    // UnixFS `Data { Type: Directory }`.
    let block = pb::encode_node(&links, Some(&[0x08, UnixFsType::Directory as u8]));
    if block.len() > MAX_DIR_BLOCK {
        return Err(StoreError::DirectoryTooLarge {
            entries: links.len(),
            bytes: block.len(),
        });
    }
    let cid = profile.cid(DAG_PB, &block);
    store.put(&cid, &block)?;
    Ok(cid)
}

/// The cumulative size of the DAG under `cid` as dag-pb links record it: its root block's size plus the sizes
/// its links record (a raw block: its size).
fn dag_size(store: &Store, cid: &Cid) -> Result<u64, StoreError> {
    let block = store.get_required(cid)?;
    if codec_of(cid) != DAG_PB {
        return Ok(block.len() as u64);
    }
    let node = pb::decode_node(&block).map_err(|r| malformed(cid, "dag-pb", r))?;
    Ok(block.len() as u64 + node.links.iter().filter_map(|l| l.tsize).sum::<u64>())
}

/// Follows `path` (names separated by `/`; empty segments ignored) from `root` through UnixFS directories.
/// A name that is not there, or a path through a file, is [`StoreError::NoSuchEntry`].
pub fn resolve_path(store: &Store, root: &Cid, path: &str) -> Result<Cid, StoreError> {
    let mut at = *root;
    for name in path.split('/').filter(|n| !n.is_empty()) {
        let missing = || StoreError::NoSuchEntry {
            cid: at,
            name: name.to_string(),
        };
        let entries = list_dir(store, &at)?.ok_or_else(missing)?;
        at = entries
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| e.cid)
            .ok_or_else(missing)?;
    }
    Ok(at)
}

/// Writes `root` to `path`: a file's bytes, or a directory tree (created fresh; existing paths are refused).
/// The whole tree is written under a `.jobmesh-partial` sibling first and renamed into place at the end, so a
/// failure (an unsafe entry name, a missing block, a full disk) leaves nothing at `path`.
pub fn export_to_path(store: &Store, root: &Cid, path: &Path) -> Result<u64, StoreError> {
    if path.exists() {
        return Err(StoreError::io(
            format!("{} already exists", path.display()),
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        ));
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".jobmesh-partial");
    let partial = std::path::PathBuf::from(partial);
    remove_tree(&partial); // left over by a crash
    let written = write_tree(store, root, &partial).inspect_err(|_| remove_tree(&partial))?;
    fs::rename(&partial, path).map_err(|e| {
        remove_tree(&partial);
        StoreError::io(format!("cannot write {}", path.display()), e)
    })?;
    Ok(written)
}

/// Removes a file or directory tree, ignoring what is not there.
fn remove_tree(path: &Path) {
    let _ = fs::remove_dir_all(path).or_else(|_| fs::remove_file(path));
}

/// Writes `root` at `path` (which does not exist yet), recursing into directories.
fn write_tree(store: &Store, root: &Cid, path: &Path) -> Result<u64, StoreError> {
    let block = store.get_required(root)?;
    if codec_of(root) == DAG_PB {
        let node = pb::decode_node(&block).map_err(|r| malformed(root, "dag-pb", r))?;
        let fs = pb::decode_unixfs(node.data.as_deref().unwrap_or_default())
            .map_err(|r| malformed(root, "UnixFS", r))?;
        if fs.kind == UnixFsType::Directory {
            fs::create_dir(path)
                .map_err(|e| StoreError::io(format!("cannot create {}", path.display()), e))?;
            let mut total = 0;
            for link in &node.links {
                let child = Cid::try_from(link.hash.as_slice())
                    .map_err(|e| malformed(root, "dag-pb", format!("bad link: {e}")))?;
                let name = link.name.as_deref().unwrap_or_default();
                if name.is_empty()
                    || name.contains(['/', '\\', '\0'])
                    || name == "."
                    || name == ".."
                {
                    return Err(malformed(
                        root,
                        "UnixFS directory",
                        format!("unsafe entry name {name:?}"),
                    ));
                }
                total += write_tree(store, &child, &path.join(name))?;
            }
            return Ok(total);
        }
    }
    let file = fs::File::create(path)
        .map_err(|e| StoreError::io(format!("cannot create {}", path.display()), e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let written = cat(store, root, &mut out)?;
    std::io::Write::flush(&mut out)
        .map_err(|e| StoreError::io(format!("cannot write {}", path.display()), e))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid_of(bytes: &[u8], profile: &Profile) -> Cid {
        file_cid(bytes, profile).unwrap()
    }

    #[test]
    fn directories_list_resolve_and_refuse_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.add_file(&b"alpha"[..], &Profile::KUBO).unwrap().root;
        let b = store.add_file(&b"beta"[..], &Profile::KUBO).unwrap().root;
        let inner = put_dir(
            &store,
            &[DirEntry {
                name: "b.txt".into(),
                cid: b,
            }],
        )
        .unwrap();
        let root = put_dir(
            &store,
            &[
                DirEntry {
                    name: "sub".into(),
                    cid: inner,
                },
                DirEntry {
                    name: "a.txt".into(),
                    cid: a,
                },
            ],
        )
        .unwrap();
        let names: Vec<String> = list_dir(&store, &root)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["a.txt", "sub"], "sorted by name");
        assert_eq!(
            list_dir(&store, &a).unwrap(),
            None,
            "a file is no directory"
        );
        assert_eq!(resolve_path(&store, &root, "/sub/b.txt").unwrap(), b);
        assert_eq!(resolve_path(&store, &root, "").unwrap(), root);
        assert!(matches!(
            resolve_path(&store, &root, "sub/nope"),
            Err(StoreError::NoSuchEntry { .. })
        ));
        assert!(matches!(
            resolve_path(&store, &root, "a.txt/deeper"),
            Err(StoreError::NoSuchEntry { .. })
        ));
        let out = dir.path().join("out");
        export_to_path(&store, &root, &out).unwrap();
        assert_eq!(std::fs::read(out.join("sub/b.txt")).unwrap(), b"beta");
        assert!(put_dir(
            &store,
            &[DirEntry {
                name: "x/y".into(),
                cid: a
            }]
        )
        .is_err());
    }

    #[test]
    fn well_known_cids() {
        // `ipfs add --cid-version=1` / `ipfs add` of an empty file and of "hello world\n".
        assert_eq!(
            cid_of(b"", &Profile::KUBO).to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        assert_eq!(
            cid_of(b"", &Profile::V0).to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        assert_eq!(
            cid_of(b"hello world\n", &Profile::V0).to_string(),
            "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
        );
    }

    #[test]
    fn round_trip_through_store_for_every_profile_and_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for profile in Profile::ALL {
            let profile = Profile {
                chunk_size: 16,
                max_links: 3,
                ..profile
            };
            for len in [
                0usize,
                1,
                15,
                16,
                17,
                48,
                49,
                16 * 9,
                16 * 9 + 1,
                16 * 27 + 5,
            ] {
                let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
                let imported = store.add_file(bytes.as_slice(), &profile).unwrap();
                assert_eq!(imported.size, len as u64);
                let mut out = Vec::new();
                cat(&store, &imported.root, &mut out).unwrap();
                assert_eq!(out, bytes, "profile {} len {len}", profile.name);
            }
        }
    }

    #[test]
    fn cidv0_with_blake3_is_refused() {
        assert!(Profile::V0.with_hash(HashAlg::Blake3).is_err());
        assert!(Profile::KUBO.with_hash(HashAlg::Blake3).is_ok());
    }

    #[test]
    fn failed_add_leaves_no_blocks_behind() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(7);
                self.0 -= n;
                Ok(n)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let profile = Profile {
            chunk_size: 16,
            ..Profile::KUBO
        };
        let err = store.add_file(Failing(100), &profile).unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
        assert_eq!(store.usage().unwrap(), (0, 0));
        assert!(store.pins().unwrap().is_empty());
    }
}
