//! Content-store subcommands: `add`, `cat`, `get`, `block`, `pin`, `repo`, `dag`.
//!
//! They open the node's sled store directly, except while a node runs on the data dir (it holds the store's
//! lock): then every command here goes through its control API ([`jobmesh_node::api::client`]), `add -r` as a CAR.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use jobmesh_store::unixfs::{self, Profile};
use jobmesh_store::{car, cid_of, dag, parse_cid, Cid, HashAlg, Store, DAG_PB, RAW};
use serde_json::json;

use crate::context::Context;
use jobmesh_node::api::client::{self, Api};

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
                        jobmesh add -r ./site          # a directory tree: kubo's `ipfs add -r --cid-version=1` CID\n  \
                        jobmesh add --profile helia --hash blake3 big.iso"
)]
pub struct AddArgs {
    /// File to add, `-` for standard input, or a directory with `-r`.
    pub path: PathBuf,
    /// Add a directory and everything below it (symlinks are refused).
    #[arg(short, long)]
    pub recursive: bool,
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
    #[arg(long, value_parser = crate::context::parse_duration)]
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
    if args.recursive {
        return add_tree(ctx, args);
    }
    if args.path.is_dir() {
        bail!("{} is a directory: add it with -r", args.path.display());
    }
    if let Some(api) = jobmesh_node::api::client::running(&ctx.home) {
        return add_remote(ctx, &api, args);
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

/// `jobmesh add -r`: the tree goes into the store directly, or, while a node holds the store, into a scratch
/// store whose CAR the node imports (and pins) through `dag/import`.
fn add_tree(ctx: &Context, args: &AddArgs) -> Result<()> {
    let profile = args.profile.profile().with_hash(args.hash.into())?;
    let what = || format!("cannot add {}", args.path.display());
    let imported = match client::running(&ctx.home) {
        None => open_store(ctx)?
            .add_dir(&args.path, &profile)
            .with_context(what)?,
        Some(api) => {
            let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
            let store = Store::open(scratch.path())?;
            let imported = store.add_dir(&args.path, &profile).with_context(what)?;
            let car_path = scratch.path().join("tree.car");
            let mut out = BufWriter::new(File::create(&car_path)?);
            car::export(&store, &imported.root, &mut out)?;
            out.into_inner().map_err(|e| e.into_error())?;
            api.call_with_body("dag/import", &[], File::open(&car_path)?)
                .with_context(what)?;
            imported
        }
    };
    report(
        ctx,
        json!({
            "cid": imported.root.to_string(), "size": imported.size, "blocks": imported.blocks,
            "profile": profile.name, "hash": profile.hash.to_string(),
        }),
        imported.root.to_string(),
    )?;
    Ok(())
}

/// `jobmesh cat`.
pub fn cat(ctx: &Context, args: &CatArgs) -> Result<()> {
    if let Some(api) = jobmesh_node::api::client::running(&ctx.home) {
        return cat_remote(&api, &args.cid, args.timeout);
    }
    let cid = cid_arg(&args.cid)?;
    let store = open_store(ctx)?;
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    unixfs::cat(&store, &cid, &mut out)?;
    Ok(())
}

/// `jobmesh get`.
pub fn get(ctx: &Context, args: &GetArgs) -> Result<()> {
    if let Some(api) = jobmesh_node::api::client::running(&ctx.home) {
        return get_remote(ctx, &api, &args.cid, &args.output);
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

/// Where a store command runs: on the store itself, or through the running node that holds it (sled allows one
/// process per store, so while a node runs every command goes through its API).
enum Access {
    Local(Store),
    Node(Api),
}

fn access(ctx: &Context) -> Result<Access> {
    Ok(match client::running(&ctx.home) {
        Some(api) => Access::Node(api),
        None => Access::Local(open_store(ctx)?),
    })
}

/// `jobmesh block …`.
pub fn block(ctx: &Context, command: &BlockCommand) -> Result<()> {
    let store = access(ctx)?;
    match command {
        BlockCommand::Put { path, codec, hash } => {
            let (mut input, _) = open_input(path)?;
            let mut bytes = Vec::new();
            input
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let v = match store {
                Access::Node(api) => {
                    let codec = name_of(codec.to_possible_value());
                    let hash = name_of(hash.to_possible_value());
                    api.call_with_body(
                        "block/put",
                        &[("codec", &codec), ("hash", &hash)],
                        bytes.as_slice(),
                    )?
                }
                Access::Local(store) => {
                    let codec = match codec {
                        CodecName::Raw => RAW,
                        CodecName::DagPb => DAG_PB,
                    };
                    let cid = cid_of(codec, (*hash).into(), &bytes);
                    dag::links(&cid, &bytes).context("not a valid block for that codec")?;
                    store.put(&cid, &bytes)?;
                    store.flush()?;
                    json!({ "cid": cid.to_string(), "size": bytes.len() })
                }
            };
            report(ctx, v.clone(), text_of(&v["cid"]))?;
        }
        BlockCommand::Get { cid } => {
            cid_arg(cid)?;
            let mut out = io::stdout().lock();
            match store {
                Access::Node(api) => {
                    io::copy(
                        &mut api.call_stream("block/get", &[("arg", cid)])?,
                        &mut out,
                    )
                    .context("cannot write the output")?;
                }
                Access::Local(store) => out
                    .write_all(&store.get_required(&cid_arg(cid)?)?)
                    .context("cannot write the output")?,
            }
        }
        BlockCommand::Stat { cid } => {
            let v = match store {
                Access::Node(api) => api.call("block/stat", &[("arg", cid)])?,
                Access::Local(store) => {
                    let cid = cid_arg(cid)?;
                    json!({ "cid": cid.to_string(), "size": store.get_required(&cid)?.len() })
                }
            };
            report(
                ctx,
                v.clone(),
                format!("{} {}", text_of(&v["cid"]), v["size"]),
            )?;
        }
    }
    Ok(())
}

/// A clap value's name (`raw`, `dag-pb`, `sha2-256` …).
fn name_of(v: Option<clap::builder::PossibleValue>) -> String {
    v.map(|p| p.get_name().to_string()).unwrap_or_default()
}

/// A JSON string's text (without quotes).
fn text_of(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// `jobmesh pin …`.
pub fn pin(ctx: &Context, command: &PinCommand) -> Result<()> {
    let store = access(ctx)?;
    match (command, store) {
        (PinCommand::Add { cid }, Access::Node(api)) => pin_add_remote(ctx, &api, cid)?,
        (PinCommand::Add { cid }, Access::Local(store)) => {
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
        (PinCommand::Rm { cid }, store) => {
            let cid = cid_arg(cid)?;
            match store {
                Access::Node(api) => {
                    api.call("pin/rm", &[("arg", &cid.to_string())])?;
                }
                Access::Local(store) => {
                    if !store.unpin(&cid)? {
                        bail!("{cid} is not pinned");
                    }
                }
            }
            report(
                ctx,
                json!({ "unpinned": cid.to_string() }),
                format!("unpinned {cid}"),
            )?;
        }
        (PinCommand::Ls, store) => {
            let pins: Vec<String> = match store {
                Access::Node(api) => {
                    serde_json::from_value(api.call("pin/ls", &[])?["pins"].take())
                        .context("the node sent an invalid pin list")?
                }
                Access::Local(store) => store.pins()?.iter().map(Cid::to_string).collect(),
            };
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
    let store = access(ctx)?;
    match command {
        RepoCommand::Gc => {
            let v = match store {
                Access::Node(api) => api.call("repo/gc", &[])?,
                Access::Local(store) => {
                    let stats = store.gc()?;
                    json!({ "removed_blocks": stats.removed_blocks, "removed_bytes": stats.removed_bytes,
                            "kept_blocks": stats.kept_blocks })
                }
            };
            let text = format!(
                "removed {} blocks ({} bytes), kept {}",
                v["removed_blocks"], v["removed_bytes"], v["kept_blocks"]
            );
            report(ctx, v, text)?;
        }
        RepoCommand::Verify => {
            let v = match store {
                Access::Node(api) => api.call("repo/verify", &[])?,
                Access::Local(store) => {
                    let r = store.verify()?;
                    let list = |c: &[Cid]| c.iter().map(Cid::to_string).collect::<Vec<_>>();
                    json!({ "ok": r.ok, "corrupt": list(&r.corrupt), "incomplete_pins": list(&r.incomplete_pins) })
                }
            };
            print_verify(ctx, &v)?;
        }
        RepoCommand::Stat => {
            let (blocks, bytes, pins) = match store {
                Access::Node(api) => {
                    let v = api.call("repo/stat", &[])?;
                    (v["blocks"].clone(), v["bytes"].clone(), v["pins"].clone())
                }
                Access::Local(store) => {
                    let (blocks, bytes) = store.usage()?;
                    (blocks.into(), bytes.into(), store.pins()?.len().into())
                }
            };
            let path = ctx.home.blocks_dir();
            let text = format!(
                "{blocks} blocks, {bytes} bytes, {pins} pins in {}",
                path.display()
            );
            report(
                ctx,
                json!({ "blocks": blocks, "bytes": bytes, "pins": pins, "path": path }),
                text,
            )?;
        }
    }
    Ok(())
}

/// Prints a `repo verify` report; an error when anything is corrupt or incomplete.
fn print_verify(ctx: &Context, v: &serde_json::Value) -> Result<()> {
    let list = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| a.iter().map(text_of).collect())
            .unwrap_or_default()
    };
    let (corrupt, incomplete) = (list("corrupt"), list("incomplete_pins"));
    if ctx.json {
        ctx.print_json(v)?;
    } else {
        crate::outln!(
            "{} blocks ok, {} corrupt, {} incomplete pins",
            v["ok"],
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
    Ok(())
}

/// `jobmesh dag …`.
pub fn dag(ctx: &Context, command: &DagCommand) -> Result<()> {
    match command {
        DagCommand::Export { cid, output } => {
            let root = cid_arg(cid)?;
            if output.is_none() && io::stdout().is_terminal() {
                bail!("refusing to write a binary CAR to a terminal: redirect standard output or use -o FILE");
            }
            let store = access(ctx)?;
            let write = |out: &mut dyn Write| -> Result<()> {
                match &store {
                    Access::Node(api) => {
                        io::copy(&mut api.call_stream("dag/export", &[("arg", cid)])?, out)?;
                    }
                    Access::Local(store) => {
                        car::export(store, &root, &mut BufWriter::with_capacity(1 << 20, out))?;
                    }
                }
                Ok(())
            };
            match output {
                Some(path) => write_atomically(path, write)?,
                None => write(&mut io::stdout().lock())?,
            }
        }
        DagCommand::Import { path } => {
            let (input, _) = open_input(path)?;
            let cannot = || format!("cannot import {}", path.display());
            let v = match access(ctx)? {
                Access::Node(api) => {
                    let v = api
                        .call_with_body("dag/import", &[], input)
                        .with_context(cannot)?;
                    json!({ "roots": v["Roots"], "pinned": v["Pinned"], "blocks": v["Blocks"],
                            "new_blocks": v["NewBlocks"] })
                }
                Access::Local(store) => {
                    let imported = car::import(&store, input).with_context(cannot)?;
                    for root in &imported.roots {
                        store.pin(root).with_context(|| {
                            format!(
                                "cannot pin root {root} of {} ({} blocks imported): the archive does not \
                                 hold its whole DAG",
                                path.display(),
                                imported.blocks
                            )
                        })?;
                    }
                    let pinned: Vec<String> = imported.roots.iter().map(Cid::to_string).collect();
                    json!({
                        "roots": imported.roots.iter().map(Cid::to_string).collect::<Vec<_>>(),
                        "pinned": pinned, "blocks": imported.blocks, "new_blocks": imported.new_blocks,
                    })
                }
            };
            print_import(ctx, &v)?;
        }
    }
    Ok(())
}

/// Writes a file through `write` under a `.partial` name, renamed into place only when complete.
fn write_atomically(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension("car.partial");
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let result = write(&mut out).and_then(|()| out.flush().map_err(Into::into));
    drop(out);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Prints what `dag import` imported and pinned.
fn print_import(ctx: &Context, v: &serde_json::Value) -> io::Result<()> {
    if ctx.json {
        return ctx.print_json(v);
    }
    let count = |key: &str| v[key].as_array().map_or(0, Vec::len);
    for r in v["roots"].as_array().into_iter().flatten() {
        crate::outln!("{}", text_of(r))?;
    }
    eprintln!(
        "imported {} blocks ({} new), pinned {} of {} roots",
        v["blocks"],
        v["new_blocks"],
        count("pinned"),
        count("roots")
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

/// `jobmesh add` through the running node (which stores, pins and provides the file).
fn add_remote(ctx: &Context, api: &Api, args: &AddArgs) -> Result<()> {
    use clap::ValueEnum;
    let name = |v: Option<clap::builder::PossibleValue>| {
        v.map(|p| p.get_name().to_string()).unwrap_or_default()
    };
    let profile = name(args.profile.to_possible_value());
    let hash = name(args.hash.to_possible_value());
    let input: Box<dyn Read> = if args.path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.path)
                .with_context(|| format!("cannot read {}", args.path.display()))?,
        )
    };
    let v = api
        .call_with_body("add", &[("profile", &profile), ("hash", &hash)], input)
        .with_context(|| format!("cannot add {}", args.path.display()))?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "cid": v["Hash"], "size": v["Size"], "blocks": v["Blocks"], "profile": v["Profile"], "hash": hash,
        }))?;
    } else {
        crate::outln!("{}", v["Hash"].as_str().unwrap_or_default())?;
    }
    Ok(())
}

/// `jobmesh cat` through the running node (fetching from the mesh what it lacks).
/// `timeout` bounds the node's search of the mesh (its `--fetch-timeout` when `None`).
fn cat_remote(api: &Api, cid: &str, timeout: Option<std::time::Duration>) -> Result<()> {
    jobmesh_store::parse_cid(cid)?;
    let timeout = timeout.map(|t| t.as_secs_f64().to_string());
    let mut query = vec![("arg", cid)];
    query.extend(timeout.as_deref().map(|t| ("timeout", t)));
    let mut body = api.call_stream("cat", &query)?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut body, &mut out).context("cannot write the output")?;
    Ok(())
}

/// `jobmesh get` through the running node. The node streams the DAG as a CAR (fetching what it lacks); this side
/// checks every block into a scratch store beside the output and writes the tree itself, so the node never
/// writes files at a path a caller names (a web page could otherwise make it write anywhere).
fn get_remote(ctx: &Context, api: &Api, cid: &str, output: &std::path::Path) -> Result<()> {
    let root = jobmesh_store::parse_cid(cid)?;
    if output.exists() {
        bail!("{} already exists", output.display());
    }
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let scratch = tempfile::Builder::new()
        .prefix(".jobmesh-get-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let store = jobmesh_store::Store::open(scratch.path())?;
    let car = api.call_stream("get", &[("arg", cid)])?;
    jobmesh_store::car::import(&store, car).context("the node sent a bad CAR")?;
    let bytes = jobmesh_store::unixfs::export_to_path(&store, &root, output)?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({ "cid": cid, "path": output, "bytes": bytes }))?;
    } else {
        eprintln!("wrote {bytes} bytes to {}", output.display());
    }
    Ok(())
}

/// `jobmesh pin add` through the running node (fetching from the mesh what it lacks).
fn pin_add_remote(ctx: &Context, api: &Api, cid: &str) -> Result<()> {
    jobmesh_store::parse_cid(cid)?;
    api.call("pin/add", &[("arg", cid)])?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({ "pinned": cid }))?;
    } else {
        crate::outln!("pinned {cid}")?;
    }
    Ok(())
}
