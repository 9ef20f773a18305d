//! Content-store subcommands: `add`, `cat`, `get`, `block`, `pin`, `repo`, `dag`.
//!
//! They open the node's sled store directly, except while a node runs on the data dir (it holds the store's
//! lock): then `add`, `cat`, `get` and `pin add` go through its control API ([`crate::api::client`]).

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use jobmesh_store::unixfs::{self, Profile};
use jobmesh_store::{car, cid_of, dag, parse_cid, Cid, HashAlg, Store, DAG_PB, RAW};
use serde_json::json;

use crate::cli::Context;

/// Inputs larger than this get a progress bar (when stderr is a terminal).
const PROGRESS_THRESHOLD: u64 = 16 * 1024 * 1024;

/// Import profiles, named after the implementation whose defaults they reproduce.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProfileName {
    /// kubo's `ipfs add --cid-version=1`: CIDv1, raw leaves, 256 KiB chunks, 174 links per node.
    Kubo,
    /// Helia's default: CIDv1, raw leaves, 1 MiB chunks, 1024 links per node.
    Helia,
    /// Legacy CIDv0 (`Qm…`): dag-pb leaves, 256 KiB chunks, 174 links per node.
    V0,
}

impl ProfileName {
    fn profile(self) -> Profile {
        match self {
            ProfileName::Kubo => Profile::KUBO,
            ProfileName::Helia => Profile::HELIA,
            ProfileName::V0 => Profile::V0,
        }
    }
}

/// Hash functions selectable on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HashName {
    /// sha2-256 (what `ipfs add` uses).
    #[value(name = "sha2-256")]
    Sha2_256,
    /// blake3 (multihash 0x1e): faster to compute.
    Blake3,
}

impl From<HashName> for HashAlg {
    fn from(h: HashName) -> Self {
        match h {
            HashName::Sha2_256 => HashAlg::Sha2_256,
            HashName::Blake3 => HashAlg::Blake3,
        }
    }
}

/// `jobmesh add`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  jobmesh add photo.jpg\n  echo hello | jobmesh add -\n  \
                        jobmesh add --profile helia --hash blake3 big.iso"
)]
pub struct AddArgs {
    /// File to add, or `-` for standard input.
    pub path: PathBuf,
    /// Chunking and layout profile (decides the CID).
    #[arg(long, value_enum, default_value = "kubo")]
    pub profile: ProfileName,
    /// Hash function of every block.
    #[arg(long, value_enum, default_value = "sha2-256")]
    pub hash: HashName,
}

/// `jobmesh cat`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  jobmesh cat bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku > out.bin"
)]
pub struct CatArgs {
    /// CID of a file (or raw block).
    pub cid: String,
    /// How long the running node may look for content it lacks on the mesh, e.g. 30s, 2m (default: its
    /// `--fetch-timeout`). Without a running node only the local store is read.
    #[arg(long, value_parser = super::job_market::parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

/// `jobmesh get`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  jobmesh get bafybei... -o ./restored.bin")]
pub struct GetArgs {
    /// CID of a file or directory.
    pub cid: String,
    /// Where to write it (must not exist yet).
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,
}

/// `jobmesh block …`.
#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Store one block as it is and print its CIDv1.
    #[command(after_help = "Example:\n  echo -n hi | jobmesh block put -")]
    Put {
        /// File holding the block's bytes, or `-` for standard input.
        path: PathBuf,
        /// Codec of the block.
        #[arg(long, value_enum, default_value = "raw")]
        codec: CodecName,
        /// Hash function.
        #[arg(long, value_enum, default_value = "sha2-256")]
        hash: HashName,
    },
    /// Write a block's raw bytes to standard output.
    #[command(after_help = "Example:\n  jobmesh block get bafkrei... > block.bin")]
    Get {
        /// CID of the block.
        cid: String,
    },
    /// Show a block's CID and size.
    #[command(after_help = "Example:\n  jobmesh block stat bafkrei...")]
    Stat {
        /// CID of the block.
        cid: String,
    },
}

/// Block codecs accepted by `block put`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CodecName {
    /// Raw bytes.
    Raw,
    /// A dag-pb node (checked to decode).
    DagPb,
}

/// `jobmesh pin …`.
#[derive(Debug, Subcommand)]
pub enum PinCommand {
    /// Pin a DAG (every block must be present) so `repo gc` keeps it.
    #[command(after_help = "Example:\n  jobmesh pin add bafybei...")]
    Add {
        /// Root CID.
        cid: String,
    },
    /// Remove a pin (the blocks stay until `repo gc`).
    #[command(after_help = "Example:\n  jobmesh pin rm bafybei...")]
    Rm {
        /// Root CID.
        cid: String,
    },
    /// List pinned roots.
    #[command(after_help = "Example:\n  jobmesh pin ls")]
    Ls,
}

/// `jobmesh repo …`.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Remove every block that no pin reaches.
    #[command(after_help = "Example:\n  jobmesh repo gc")]
    Gc,
    /// Re-hash every block and check every pinned DAG is complete; exits non-zero on any problem.
    #[command(after_help = "Example:\n  jobmesh repo verify")]
    Verify,
    /// Show the number of blocks, bytes stored and pins.
    #[command(after_help = "Example:\n  jobmesh repo stat")]
    Stat,
}

/// `jobmesh dag …`.
#[derive(Debug, Subcommand)]
pub enum DagCommand {
    /// Write a DAG as a CARv1 archive (to standard output unless -o).
    #[command(after_help = "Example:\n  jobmesh dag export bafybei... > file.car")]
    Export {
        /// Root CID.
        cid: String,
        /// Write to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Import every block of a CARv1 archive (each hash-checked) and pin its complete roots.
    #[command(after_help = "Example:\n  jobmesh dag import file.car")]
    Import {
        /// CAR file, or `-` for standard input.
        path: PathBuf,
    },
}

fn open_store(ctx: &Context) -> Result<Store> {
    let dir = ctx.home.blocks_dir();
    Store::open(&dir).with_context(|| {
        format!(
            "cannot open the block store in {}",
            ctx.home.root().display()
        )
    })
}

fn cid_arg(text: &str) -> Result<Cid> {
    Ok(parse_cid(text)?)
}

/// Opens a file or `-` (stdin) for reading, with its size when known.
fn open_input(path: &Path) -> Result<(Box<dyn Read>, Option<u64>)> {
    if path == Path::new("-") {
        return Ok((Box::new(io::stdin().lock()), None));
    }
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        bail!(
            "{} is a directory (only files can be added for now)",
            path.display()
        );
    }
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((
        Box::new(io::BufReader::with_capacity(1 << 20, file)),
        Some(meta.len()),
    ))
}

/// A progress bar on stderr for large inputs; hidden when stderr is not a terminal.
fn progress_for(len: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() || len.is_some_and(|l| l < PROGRESS_THRESHOLD) {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(l) => ProgressBar::new(l).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} {bytes_per_sec}")
                .expect("valid template"),
        ),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar
}

/// `jobmesh add`.
pub fn add(ctx: &Context, args: &AddArgs) -> Result<()> {
    if let Some(api) = crate::api::client::running(&ctx.home) {
        return crate::api::client::add(ctx, &api, args);
    }
    let profile = args.profile.profile().with_hash(args.hash.into())?;
    let (input, len) = open_input(&args.path)?;
    let store = open_store(ctx)?;
    let bar = progress_for(len);
    let imported = store
        .add_file(bar.wrap_read(input), &profile)
        .with_context(|| format!("cannot add {}", args.path.display()))?;
    bar.finish_and_clear();
    if ctx.json {
        ctx.print_json(&json!({
            "cid": imported.root.to_string(),
            "size": imported.size,
            "blocks": imported.blocks,
            "profile": profile.name,
            "hash": profile.hash.to_string(),
        }))?;
    } else {
        crate::outln!("{}", imported.root)?;
    }
    Ok(())
}

/// `jobmesh cat`.
pub fn cat(ctx: &Context, args: &CatArgs) -> Result<()> {
    if let Some(api) = crate::api::client::running(&ctx.home) {
        return crate::api::client::cat(&api, &args.cid, args.timeout);
    }
    let cid = cid_arg(&args.cid)?;
    let store = open_store(ctx)?;
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    unixfs::cat(&store, &cid, &mut out)?;
    Ok(())
}

/// `jobmesh get`.
pub fn get(ctx: &Context, args: &GetArgs) -> Result<()> {
    if let Some(api) = crate::api::client::running(&ctx.home) {
        return crate::api::client::get(ctx, &api, &args.cid, &args.output);
    }
    let cid = cid_arg(&args.cid)?;
    let store = open_store(ctx)?;
    let bytes = unixfs::export_to_path(&store, &cid, &args.output)?;
    if ctx.json {
        ctx.print_json(&json!({ "cid": cid.to_string(), "path": args.output, "bytes": bytes }))?;
    } else {
        eprintln!("wrote {bytes} bytes to {}", args.output.display());
    }
    Ok(())
}

/// `jobmesh block …`.
pub fn block(ctx: &Context, command: &BlockCommand) -> Result<()> {
    let store = open_store(ctx)?;
    match command {
        BlockCommand::Put { path, codec, hash } => {
            let (mut input, _) = open_input(path)?;
            let mut bytes = Vec::new();
            input
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let codec = match codec {
                CodecName::Raw => RAW,
                CodecName::DagPb => DAG_PB,
            };
            let cid = cid_of(codec, (*hash).into(), &bytes);
            dag::links(&cid, &bytes).context("not a valid block for that codec")?;
            store.put(&cid, &bytes)?;
            store.flush()?;
            if ctx.json {
                ctx.print_json(&json!({ "cid": cid.to_string(), "size": bytes.len() }))?;
            } else {
                crate::outln!("{cid}")?;
            }
        }
        BlockCommand::Get { cid } => {
            let cid = cid_arg(cid)?;
            let bytes = store.get_required(&cid)?;
            io::stdout()
                .lock()
                .write_all(&bytes)
                .context("cannot write the output")?;
        }
        BlockCommand::Stat { cid } => {
            let cid = cid_arg(cid)?;
            let bytes = store.get_required(&cid)?;
            if ctx.json {
                ctx.print_json(&json!({ "cid": cid.to_string(), "size": bytes.len() }))?;
            } else {
                crate::outln!("{cid} {}", bytes.len())?;
            }
        }
    }
    Ok(())
}

/// `jobmesh pin …`.
pub fn pin(ctx: &Context, command: &PinCommand) -> Result<()> {
    if let (PinCommand::Add { cid }, Some(api)) = (command, crate::api::client::running(&ctx.home))
    {
        return crate::api::client::pin_add(ctx, &api, cid);
    }
    let store = open_store(ctx)?;
    match command {
        PinCommand::Add { cid } => {
            let cid = cid_arg(cid)?;
            store
                .pin(&cid)
                .with_context(|| format!("cannot pin {cid}"))?;
            report(
                ctx,
                json!({ "pinned": cid.to_string() }),
                format!("pinned {cid}"),
            )?;
        }
        PinCommand::Rm { cid } => {
            let cid = cid_arg(cid)?;
            if !store.unpin(&cid)? {
                bail!("{cid} is not pinned");
            }
            report(
                ctx,
                json!({ "unpinned": cid.to_string() }),
                format!("unpinned {cid}"),
            )?;
        }
        PinCommand::Ls => {
            let pins: Vec<String> = store.pins()?.iter().map(Cid::to_string).collect();
            if ctx.json {
                ctx.print_json(&json!({ "pins": pins }))?;
            } else {
                for p in &pins {
                    crate::outln!("{p}")?;
                }
            }
        }
    }
    Ok(())
}

/// `jobmesh repo …`.
pub fn repo(ctx: &Context, command: &RepoCommand) -> Result<()> {
    let store = open_store(ctx)?;
    match command {
        RepoCommand::Gc => {
            let stats = store.gc()?;
            report(
                ctx,
                json!({ "removed_blocks": stats.removed_blocks, "removed_bytes": stats.removed_bytes,
                        "kept_blocks": stats.kept_blocks }),
                format!(
                    "removed {} blocks ({} bytes), kept {}",
                    stats.removed_blocks, stats.removed_bytes, stats.kept_blocks
                ),
            )?;
        }
        RepoCommand::Verify => {
            let r = store.verify()?;
            let corrupt: Vec<String> = r.corrupt.iter().map(Cid::to_string).collect();
            let incomplete: Vec<String> = r.incomplete_pins.iter().map(Cid::to_string).collect();
            if ctx.json {
                ctx.print_json(
                    &json!({ "ok": r.ok, "corrupt": corrupt, "incomplete_pins": incomplete }),
                )?;
            } else {
                crate::outln!(
                    "{} blocks ok, {} corrupt, {} incomplete pins",
                    r.ok,
                    corrupt.len(),
                    incomplete.len()
                )?;
                for c in &corrupt {
                    crate::outln!("corrupt: {c}")?;
                }
                for c in &incomplete {
                    crate::outln!("incomplete pin: {c}")?;
                }
            }
            if !corrupt.is_empty() || !incomplete.is_empty() {
                bail!(
                    "the store has {} corrupt blocks and {} incomplete pins",
                    corrupt.len(),
                    incomplete.len()
                );
            }
        }
        RepoCommand::Stat => {
            let (blocks, bytes) = store.usage()?;
            let pins = store.pins()?.len();
            report(
                ctx,
                json!({ "blocks": blocks, "bytes": bytes, "pins": pins, "path": ctx.home.blocks_dir() }),
                format!(
                    "{blocks} blocks, {bytes} bytes, {pins} pins in {}",
                    ctx.home.blocks_dir().display()
                ),
            )?;
        }
    }
    Ok(())
}

/// `jobmesh dag …`.
pub fn dag(ctx: &Context, command: &DagCommand) -> Result<()> {
    match command {
        DagCommand::Export { cid, output } => {
            let cid = cid_arg(cid)?;
            if output.is_none() && io::stdout().is_terminal() {
                bail!("refusing to write a binary CAR to a terminal: redirect standard output or use -o FILE");
            }
            let store = open_store(ctx)?;
            match output {
                Some(path) => {
                    let tmp = path.with_extension("car.partial");
                    let file = File::create(&tmp)
                        .with_context(|| format!("cannot create {}", tmp.display()))?;
                    let mut out = BufWriter::with_capacity(1 << 20, file);
                    let result = car::export(&store, &cid, &mut out);
                    drop(out);
                    if let Err(e) = result {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(e.into());
                    }
                    std::fs::rename(&tmp, path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                None => {
                    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
                    car::export(&store, &cid, &mut out)?;
                }
            }
        }
        DagCommand::Import { path } => dag_import(ctx, path)?,
    }
    Ok(())
}

/// `jobmesh dag import`: every block, then a pin on every root. As kubo's `dag import`, an archive whose roots
/// are not complete (in it or already in the store) is an error, not "pinned 0 of 1 roots" and exit 0; the
/// blocks it did hold stay (unpinned, for `repo gc`).
fn dag_import(ctx: &Context, path: &Path) -> Result<()> {
    let (input, _) = open_input(path)?;
    let store = open_store(ctx)?;
    let imported =
        car::import(&store, input).with_context(|| format!("cannot import {}", path.display()))?;
    for root in &imported.roots {
        store.pin(root).with_context(|| {
            format!(
                "cannot pin root {root} of {} ({} blocks imported): the archive does not hold its whole DAG",
                path.display(),
                imported.blocks
            )
        })?;
    }
    let roots: Vec<String> = imported.roots.iter().map(Cid::to_string).collect();
    if ctx.json {
        ctx.print_json(&json!({
            "roots": roots, "pinned": roots, "blocks": imported.blocks, "new_blocks": imported.new_blocks,
        }))?;
        return Ok(());
    }
    for r in &roots {
        crate::outln!("{r}")?;
    }
    eprintln!(
        "imported {} blocks ({} new), pinned {} roots",
        imported.blocks,
        imported.new_blocks,
        roots.len()
    );
    Ok(())
}

fn report(ctx: &Context, value: serde_json::Value, text: String) -> io::Result<()> {
    if ctx.json {
        ctx.print_json(&value)
    } else {
        crate::outln!("{text}")
    }
}
