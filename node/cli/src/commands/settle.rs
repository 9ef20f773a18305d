//! `jobmesh settle …`: the settlement contract from the command line — deploy it, manage the time-locked
//! deposit, commit a lottery from an owed list, list and claim lotteries, and check a deployment.
//!
//! Keys come from an encrypted keystore file (`--keystore`, password in `$JOBMESH_KEYSTORE_PASSWORD` or
//! `--password-file`) or from `$JOBMESH_SETTLEMENT_KEY`; never from the command line. Every command first
//! checks that the RPC endpoint's chain id is `--chain-id`. The heavy lifting lives in `jobmesh-contracts`.
//!
//! Files in the data dir: `settlement.json` (the deployed contract, its chain and deploy block, written by
//! `deploy`) and `settlement/lotteries/<id>.json` (announced lotteries this node pays or is paid by).
//! Turning the market's owed ledger into lotteries automatically waits for the market issue; `commit` takes
//! the owed list from a file meanwhile.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand};
use jobmesh_contracts::alloy::primitives::{Address, B256, U256};
use jobmesh_contracts::alloy::signers::local::PrivateKeySigner;
use jobmesh_contracts::lottery::{self, Lottery};
use jobmesh_contracts::rpc::RpcSettlement;
use jobmesh_contracts::{keys, runtime_code_matches, DeployParams, LotteryState, Settlement};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::context::Context;
use jobmesh_node::settlement::{ClaimTo, MIN_DRAW_IN};

pub use jobmesh_node::settlement::parse_amount;

/// File in the data dir recording the deployed contract.
pub const CONFIG_FILE: &str = "settlement.json";
/// Folder in the data dir holding announced lotteries.
pub const LOTTERIES_DIR: &str = "settlement/lotteries";

/// Where and as whom to settle: the chain endpoint, the contract and the key (shared by `settle` and
/// `node start`).
#[derive(Debug, Clone, Args)]
pub struct ChainArgs {
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "JOBMESH_RPC_URL", global = true, value_name = "URL")]
    pub rpc_url: Option<String>,
    /// Chain id the endpoint must serve (11155111 = Sepolia); the command refuses any other.
    #[arg(long, env = "JOBMESH_CHAIN_ID", global = true, value_name = "ID")]
    pub chain_id: Option<u64>,
    /// Settlement contract address. Default: the one `deploy` recorded in the data dir.
    #[arg(
        long,
        env = "JOBMESH_SETTLEMENT_CONTRACT",
        global = true,
        value_name = "ADDR"
    )]
    pub contract: Option<Address>,
    /// Encrypted JSON keystore holding the settlement key (else $JOBMESH_SETTLEMENT_KEY is used).
    #[arg(long, env = "JOBMESH_KEYSTORE", global = true, value_name = "FILE")]
    pub keystore: Option<PathBuf>,
    /// File holding the keystore password (else $JOBMESH_KEYSTORE_PASSWORD).
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// `jobmesh settle`: options shared by every settlement command, and the command.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    export JOBMESH_KEYSTORE_PASSWORD=...\n  \
    jobmesh settle --keystore payer.json keygen\n  \
    jobmesh settle --rpc-url http://127.0.0.1:8545 --chain-id 11155111 --keystore payer.json deploy\n  \
    jobmesh settle --rpc-url http://127.0.0.1:8545 --chain-id 11155111 check")]
pub struct SettleCommand {
    /// The chain, the contract and the key.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// What to do.
    #[command(subcommand)]
    pub action: SettleAction,
}

/// The settlement commands.
#[derive(Debug, Subcommand)]
pub enum SettleAction {
    /// Create a new random settlement key in an encrypted keystore file (--keystore).
    Keygen,
    /// Print the address of the configured settlement key.
    Address,
    /// Deploy the settlement contract and record it in the data dir.
    Deploy(DeployArgs),
    /// Deposit ETH into the settlement contract (e.g. `0.05eth`, `20gwei`, or wei).
    Deposit(AmountArg),
    /// Request a time-locked withdrawal, or complete one that is unlocked.
    Withdraw(WithdrawArgs),
    /// Show an account's deposit, pending withdrawal and reserved (committed) value.
    Status(StatusArgs),
    /// Commit a lottery paying an owed list (CSV lines `address,amount`); writes the announcement file.
    Commit(CommitArgs),
    /// List known lotteries (imported announcements and the ones this key committed) with their state.
    Lotteries(LotteriesArgs),
    /// Claim every pending lottery this key won with its payer's revealed secret (to its wallet unless
    /// `--to deposit`), and this key's share of every lottery nobody won in its claim window; or just one
    /// file's.
    Claim(ClaimArgs),
    /// Verify the deployed code is our artifact, then report deposit, reserved value, pending lotteries
    /// and unclaimed wins.
    #[command(after_help = "Examples:\n  \
        jobmesh settle --rpc-url http://127.0.0.1:8545 --chain-id 31337 check\n  \
        jobmesh settle --rpc-url http://127.0.0.1:8545 --chain-id 31337 check --address 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --json")]
    Check(StatusArgs),
}

/// Arguments of `settle deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Blocks between a withdrawal request and the withdrawal.
    #[arg(long, default_value_t = DeployParams::default().withdraw_delay)]
    pub withdraw_delay: u64,
    /// Blocks after a draw in which the winner claims the whole lottery; afterwards every payee may claim its
    /// share. At most 256 (8,191 on a chain with the EIP-2935 history contract).
    #[arg(long, default_value_t = DeployParams::default().claim_window)]
    pub claim_window: u64,
    /// Fewest blocks from a lottery's commit to its draw (at least 1).
    #[arg(long, default_value_t = DeployParams::default().min_draw_delay)]
    pub min_draw_delay: u64,
}

/// An amount of ETH.
#[derive(Debug, Args)]
pub struct AmountArg {
    /// Amount: `1.5eth`, `250gwei` or plain wei.
    pub amount: String,
}

/// Arguments of `settle withdraw`.
#[derive(Debug, Args)]
pub struct WithdrawArgs {
    /// Amount to request (`0.1eth`, wei…), or `complete` to withdraw an unlocked request.
    pub amount: String,
}

/// Arguments of `settle status` and `settle check`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Account to report on (default: the configured key's address).
    #[arg(long)]
    pub address: Option<Address>,
}

/// Arguments of `settle commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// CSV file of `address,amount` lines (amounts as for `deposit`).
    #[arg(long, value_name = "FILE")]
    pub owed: PathBuf,
    /// Blocks from now until the draw block (at least 2: the commit lands in a later block than now).
    #[arg(long, value_name = "BLOCKS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(MIN_DRAW_IN..))]
    pub draw_in: u64,
    /// Nonce (its low 16 bits pick the contract lane). Default: next free lane after the last commit.
    #[arg(long)]
    pub nonce: Option<u64>,
}

/// Arguments of `settle lotteries`.
#[derive(Debug, Args)]
pub struct LotteriesArgs {
    /// Import an announced lottery file (checked: root, exact interval cover) before listing.
    #[arg(long, value_name = "FILE")]
    pub import: Option<PathBuf>,
    /// Import a payer's revealed secret file (`<id>.secret`, checked against the lottery's secret hash).
    #[arg(long, value_name = "FILE")]
    pub secret: Option<PathBuf>,
}

/// Arguments of `settle claim`.
#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// Only this announced lottery file (imported first).
    #[arg(long, value_name = "FILE")]
    pub lottery: Option<PathBuf>,
    /// A payer's revealed secret file to import first (`<id>.secret`).
    #[arg(long, value_name = "FILE")]
    pub secret: Option<PathBuf>,
    /// Where the winnings go: `wallet` (claimAndWithdraw, sent to the key's address at once) or `deposit`
    /// (claim, credited to its deposit account).
    #[arg(long, value_name = "TO", default_value_t = ClaimTo::Wallet)]
    pub to: ClaimTo,
}

/// What `deploy` records in the data dir.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettlementConfig {
    /// Chain the contract lives on.
    pub chain_id: u64,
    /// Contract address.
    pub contract: Address,
    /// Block of the deployment (log scans start there).
    pub deploy_block: u64,
}

/// Runs a `settle` command.
pub fn run(ctx: &Context, cmd: &SettleCommand) -> Result<()> {
    match &cmd.action {
        SettleAction::Keygen => return keygen(ctx, cmd),
        SettleAction::Address => {
            let signer = signer(&cmd.chain)?;
            if ctx.json {
                ctx.print_json(&json!({ "address": signer.address() }))?;
            } else {
                crate::outln!("{}", signer.address())?;
            }
            return Ok(());
        }
        _ => {}
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(ctx, cmd))
}

fn keygen(ctx: &Context, cmd: &SettleCommand) -> Result<()> {
    let path = cmd
        .chain
        .keystore
        .as_deref()
        .ok_or_else(|| anyhow!("keygen needs --keystore FILE"))?;
    let signer = keys::create_keystore(path, cmd.chain.password_file.as_deref())?;
    if ctx.json {
        ctx.print_json(&json!({ "address": signer.address(), "keystore": path }))?;
    } else {
        crate::outln!(
            "created {} for address {}",
            path.display(),
            signer.address()
        )?;
    }
    Ok(())
}

fn signer(cmd: &ChainArgs) -> Result<PrivateKeySigner> {
    Ok(keys::load_signer(
        cmd.keystore.as_deref(),
        cmd.password_file.as_deref(),
    )?)
}

fn rpc_url(cmd: &ChainArgs) -> Result<&str> {
    cmd.rpc_url
        .as_deref()
        .ok_or_else(|| anyhow!("--rpc-url (or $JOBMESH_RPC_URL) is required"))
}

fn chain_id(cmd: &ChainArgs) -> Result<u64> {
    cmd.chain_id
        .ok_or_else(|| anyhow!("--chain-id (or $JOBMESH_CHAIN_ID) is required"))
}

fn config_path(ctx: &Context) -> PathBuf {
    ctx.home.root().join(CONFIG_FILE)
}

fn load_config(ctx: &Context) -> Result<Option<SettlementConfig>> {
    let path = config_path(ctx);
    match std::fs::read(&path) {
        Ok(b) => {
            Ok(Some(serde_json::from_slice(&b).with_context(|| {
                format!("{} is not valid", path.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The contract address and the block to scan logs from.
fn contract(ctx: &Context, cmd: &ChainArgs) -> Result<(Address, u64)> {
    let config = load_config(ctx)?;
    let chain = chain_id(cmd)?;
    match (cmd.contract, config) {
        (Some(addr), Some(c)) if c.contract == addr && c.chain_id == chain => {
            Ok((addr, c.deploy_block))
        }
        (Some(addr), _) => Ok((addr, 0)),
        (None, Some(c)) if c.chain_id == chain => Ok((c.contract, c.deploy_block)),
        (None, Some(c)) => bail!(
            "{} records a contract on chain {}, not {chain}: pass --contract",
            config_path(ctx).display(),
            c.chain_id
        ),
        (None, None) => {
            bail!("no settlement contract: pass --contract or run `jobmesh settle deploy` first")
        }
    }
}

/// Connects to the contract (the endpoint must serve `--chain-id` and have code at the address); returns the
/// client and the block to scan logs from. Without `with_key` the key is optional (read-only use).
pub(crate) async fn client(
    ctx: &Context,
    cmd: &ChainArgs,
    with_key: bool,
) -> Result<(RpcSettlement, u64)> {
    let (addr, from_block) = contract(ctx, cmd)?;
    let signer = if with_key {
        Some(signer(cmd)?)
    } else {
        keys::load_signer(cmd.keystore.as_deref(), cmd.password_file.as_deref()).ok()
    };
    let c = RpcSettlement::connect(rpc_url(cmd)?, chain_id(cmd)?, signer, addr).await?;
    let code = c.code_at(addr).await?;
    if code.is_empty() {
        bail!("no contract at {addr} on chain {}", c.chain_id());
    }
    Ok((c, from_block))
}

async fn run_async(ctx: &Context, cmd: &SettleCommand) -> Result<()> {
    match &cmd.action {
        SettleAction::Keygen | SettleAction::Address => unreachable!("handled synchronously"),
        SettleAction::Deploy(a) => deploy(ctx, cmd, a).await,
        SettleAction::Deposit(a) => {
            let amount = parse_amount(&a.amount)?;
            let (c, _) = client(ctx, &cmd.chain, true).await?;
            let r = c.deposit(amount).await.context("deposit failed")?;
            let acct = c.account(c.sender()).await?;
            report(
                ctx,
                json!({ "deposited": amount.to_string(), "balance": acct.balance.to_string(), "tx": r.tx_hash, "gas_used": r.gas_used }),
                || {
                    format!(
                        "deposited {} wei; free balance {} wei (tx {})",
                        amount, acct.balance, r.tx_hash
                    )
                },
            )?;
            Ok(())
        }
        SettleAction::Withdraw(a) => withdraw(ctx, cmd, a).await,
        SettleAction::Status(a) => status(ctx, cmd, a, false).await,
        SettleAction::Check(a) => status(ctx, cmd, a, true).await,
        SettleAction::Commit(a) => commit(ctx, cmd, a).await,
        SettleAction::Lotteries(a) => lotteries(ctx, cmd, a).await,
        SettleAction::Claim(a) => claim(ctx, cmd, a).await,
    }
}

fn report(
    ctx: &Context,
    value: serde_json::Value,
    text: impl FnOnce() -> String,
) -> std::io::Result<()> {
    if ctx.json {
        ctx.print_json(&value)
    } else {
        crate::outln!("{}", text())
    }
}

async fn deploy(ctx: &Context, cmd: &SettleCommand, a: &DeployArgs) -> Result<()> {
    let params = DeployParams {
        withdraw_delay: a.withdraw_delay,
        claim_window: a.claim_window,
        min_draw_delay: a.min_draw_delay,
    };
    let chain = chain_id(&cmd.chain)?;
    let (c, r) = RpcSettlement::deploy(rpc_url(&cmd.chain)?, chain, signer(&cmd.chain)?, params)
        .await
        .context("deployment failed")?;
    let config = SettlementConfig {
        chain_id: chain,
        contract: c.contract(),
        deploy_block: r.block_number,
    };
    ctx.home.ensure_exists()?;
    std::fs::write(config_path(ctx), serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("cannot write {}", config_path(ctx).display()))?;
    report(
        ctx,
        json!({ "contract": c.contract(), "chain_id": chain, "block": r.block_number, "tx": r.tx_hash, "gas_used": r.gas_used }),
        || {
            format!(
                "deployed settlement contract {} on chain {chain} at block {} (recorded in {})",
                c.contract(),
                r.block_number,
                config_path(ctx).display()
            )
        },
    )?;
    Ok(())
}

async fn withdraw(ctx: &Context, cmd: &SettleCommand, a: &WithdrawArgs) -> Result<()> {
    let (c, _) = client(ctx, &cmd.chain, true).await?;
    if a.amount == "complete" {
        let pending = c.account(c.sender()).await?.unlocking;
        let r = c.withdraw().await.context("withdrawal failed")?;
        report(
            ctx,
            json!({ "withdrawn": pending.to_string(), "tx": r.tx_hash }),
            || format!("withdrew {pending} wei (tx {})", r.tx_hash),
        )?;
    } else {
        let amount = parse_amount(&a.amount)?;
        let r = c
            .request_withdrawal(amount)
            .await
            .context("withdrawal request failed")?;
        let acct = c.account(c.sender()).await?;
        report(
            ctx,
            json!({ "requested": amount.to_string(), "unlock_block": acct.unlock_block, "tx": r.tx_hash }),
            || {
                format!(
                    "requested {amount} wei; run `settle withdraw complete` from block {}",
                    acct.unlock_block
                )
            },
        )?;
    }
    Ok(())
}

/// A known lottery and what the chain says about it.
#[derive(Debug, Serialize)]
struct LotteryRow {
    id: String,
    payer: Address,
    nonce: u64,
    total: String,
    draw_block: u64,
    state: LotteryState,
    /// This key's interval length, if it is a payee.
    my_share: Option<String>,
    /// Whether this key won (once the draw hash is obtainable).
    won: Option<bool>,
}

async fn status(ctx: &Context, cmd: &SettleCommand, a: &StatusArgs, check: bool) -> Result<()> {
    let (c, from_block) = client(ctx, &cmd.chain, false).await?;
    let me = a.address.unwrap_or(c.sender());
    let mut out = serde_json::Map::new();
    if check {
        let code = c.code_at(c.contract()).await?;
        let matches = runtime_code_matches(&code);
        out.insert("code_matches_artifact".into(), json!(matches));
        if !matches {
            if ctx.json {
                ctx.print_json(&serde_json::Value::Object(out))?;
            }
            bail!(
                "the code at {} is NOT the jobmesh settlement artifact",
                c.contract()
            );
        }
        // Only our artifact answers these calls meaningfully.
        out.insert("params".into(), json!(c.params().await?));
    }
    let head = c.block_number().await?;
    let acct = c.account(me).await?;
    let committed = if me == Address::ZERO {
        Vec::new()
    } else {
        c.committed_by(me, from_block).await?
    };
    let mut reserved = U256::ZERO;
    let mut pending = 0usize;
    for d in &committed {
        if c.lottery_state(d).await? == LotteryState::Pending {
            reserved += d.total;
            pending += 1;
        }
    }
    let rows = known_lotteries(ctx, &c, me).await?;
    let unclaimed: Vec<&LotteryRow> = rows
        .iter()
        .filter(|r| r.won == Some(true) && r.state == LotteryState::Pending)
        .collect();
    out.insert("chain_id".into(), json!(c.chain_id()));
    out.insert("contract".into(), json!(c.contract()));
    out.insert("block".into(), json!(head));
    out.insert("address".into(), json!(me));
    out.insert("balance".into(), json!(acct.balance.to_string()));
    out.insert("unlocking".into(), json!(acct.unlocking.to_string()));
    out.insert("unlock_block".into(), json!(acct.unlock_block));
    out.insert("reserved".into(), json!(reserved.to_string()));
    out.insert("pending_lotteries".into(), json!(pending));
    out.insert(
        "unclaimed_wins".into(),
        json!(unclaimed.iter().map(|r| &r.id).collect::<Vec<_>>()),
    );
    if ctx.json {
        ctx.print_json(&serde_json::Value::Object(out))?;
    } else {
        if check {
            crate::outln!(
                "code: matches the jobmesh settlement artifact (solc {})",
                jobmesh_contracts::SOLC_VERSION
            )?;
        }
        crate::outln!(
            "chain {} block {head}, contract {}",
            c.chain_id(),
            c.contract()
        )?;
        crate::outln!("account {me}")?;
        crate::outln!("  free balance   {} wei", acct.balance)?;
        crate::outln!("  reserved       {reserved} wei in {pending} pending lotteries")?;
        if !acct.unlocking.is_zero() {
            crate::outln!(
                "  unlocking      {} wei from block {}",
                acct.unlocking,
                acct.unlock_block
            )?;
        }
        crate::outln!("  unclaimed wins {}", unclaimed.len())?;
        for r in unclaimed {
            crate::outln!("    {} ({} wei)", r.id, r.total)?;
        }
    }
    Ok(())
}

fn lotteries_dir(ctx: &Context) -> PathBuf {
    ctx.home.root().join(LOTTERIES_DIR)
}

fn store_lottery(ctx: &Context, l: &Lottery) -> Result<PathBuf> {
    let dir = lotteries_dir(ctx);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}.json", l.id()));
    std::fs::write(&path, serde_json::to_vec_pretty(l)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A payer's lottery secret, as the payer keeps it and hands it to the payees once the draw block is mined.
#[derive(Debug, Serialize, Deserialize)]
struct SecretFile {
    lottery_id: B256,
    secret: B256,
}

fn secret_path(ctx: &Context, id: B256) -> PathBuf {
    lotteries_dir(ctx).join(format!("{id}.secret"))
}

fn store_secret(ctx: &Context, lottery_id: B256, secret: B256) -> Result<PathBuf> {
    let path = secret_path(ctx, lottery_id);
    let file = SecretFile { lottery_id, secret };
    std::fs::write(&path, serde_json::to_vec_pretty(&file)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Imports a revealed secret file, checked against the stored lottery it names.
fn import_secret(ctx: &Context, path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let f: SecretFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a lottery secret", path.display()))?;
    let l = stored_lotteries(ctx)?
        .into_iter()
        .find(|l| l.id() == f.lottery_id)
        .ok_or_else(|| anyhow!("import the lottery {} before its secret", f.lottery_id))?;
    l.check_secret(f.secret)
        .with_context(|| format!("{} is not the secret of {}", path.display(), f.lottery_id))?;
    store_secret(ctx, f.lottery_id, f.secret)?;
    Ok(())
}

fn stored_secret(ctx: &Context, id: B256) -> Result<Option<B256>> {
    let path = secret_path(ctx, id);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice::<SecretFile>(&bytes)
                .with_context(|| format!("{} is not a lottery secret", path.display()))?
                .secret,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn read_lottery(path: &Path) -> Result<Lottery> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let l: Lottery = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a lottery", path.display()))?;
    l.validate()
        .with_context(|| format!("{} fails the payee checks", path.display()))?;
    Ok(l)
}

fn stored_lotteries(ctx: &Context) -> Result<Vec<Lottery>> {
    let dir = lotteries_dir(ctx);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            out.push(read_lottery(&path)?);
        }
    }
    out.sort_by_key(|l| (l.description.draw_block, l.description.nonce));
    Ok(out)
}

async fn known_lotteries(ctx: &Context, c: &RpcSettlement, me: Address) -> Result<Vec<LotteryRow>> {
    let mut rows = Vec::new();
    for l in stored_lotteries(ctx)? {
        let d = l.description;
        let state = c.lottery_state(&d).await?;
        let mine = l.leaf_index(me);
        let won = match (mine, state, stored_secret(ctx, l.id())?) {
            (Some(i), LotteryState::Pending, Some(secret)) => c
                .draw_hash(&d)
                .await?
                .map(|h| l.winner(h, secret) == Some(i)),
            _ => None,
        };
        rows.push(LotteryRow {
            id: l.id().to_string(),
            payer: d.payer,
            nonce: d.nonce,
            total: d.total.to_string(),
            draw_block: d.draw_block,
            state,
            my_share: mine.map(|i| l.leaves[i].length.to_string()),
            won,
        });
    }
    Ok(rows)
}

async fn commit(ctx: &Context, cmd: &SettleCommand, a: &CommitArgs) -> Result<()> {
    let (c, from_block) = client(ctx, &cmd.chain, true).await?;
    let owed = parse_owed(&a.owed)?;
    if owed.iter().any(|(payee, _)| *payee == c.sender()) {
        bail!(
            "{} cannot be a payee of its own lottery (the contract never pays that leaf)",
            c.sender()
        );
    }
    let nonce = match a.nonce {
        Some(n) => n,
        None => {
            let committed = c.committed_by(c.sender(), from_block).await?;
            let mut busy = std::collections::HashSet::new();
            for d in &committed {
                if c.lottery_state(d).await? == LotteryState::Pending {
                    busy.insert(d.lane());
                }
            }
            let next = committed.iter().map(|d| d.nonce + 1).max().unwrap_or(0);
            (next..next + 65_536)
                .find(|n| !busy.contains(&(*n as u16)))
                .ok_or_else(|| anyhow!("all 65,536 lanes hold pending lotteries"))?
        }
    };
    let head = c.block_number().await?;
    let secret = B256::from(rand::random::<[u8; 32]>());
    let l = lottery::build(
        c.sender(),
        nonce,
        &owed,
        head + a.draw_in,
        lottery::secret_hash(secret),
    )?;
    // The secret is on disk before the commit: a crash after it cannot leave a lottery nobody can win.
    let path = store_lottery(ctx, &l)?;
    let secret_file = store_secret(ctx, l.id(), secret)?;
    let r = match c.commit(&l.description).await {
        Ok(r) => r,
        // Refused: nothing to announce. (An unknown outcome keeps both files: it may have landed.)
        Err(e @ jobmesh_contracts::SettlementError::Reverted { .. }) => {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&secret_file);
            return Err(e).context("commit failed");
        }
        Err(e) => return Err(e).context("commit failed"),
    };
    report(
        ctx,
        json!({ "id": l.id(), "nonce": nonce, "total": l.description.total.to_string(), "payees": l.leaves.len(),
                "draw_block": l.description.draw_block, "announcement": path, "secret_file": secret_file,
                "tx": r.tx_hash, "gas_used": r.gas_used }),
        || {
            format!(
            "committed lottery {} paying {} wei to {} payees, drawn at block {}; send {} to the payees now, \
             and {} once block {} is mined",
            l.id(), l.description.total, l.leaves.len(), l.description.draw_block, path.display(),
            secret_file.display(), l.description.draw_block
        )
        },
    )?;
    Ok(())
}

async fn lotteries(ctx: &Context, cmd: &SettleCommand, a: &LotteriesArgs) -> Result<()> {
    if let Some(path) = &a.import {
        let l = read_lottery(path)?;
        store_lottery(ctx, &l)?;
    }
    if let Some(path) = &a.secret {
        import_secret(ctx, path)?;
    }
    let (c, from_block) = client(ctx, &cmd.chain, false).await?;
    let me = c.sender();
    let mut rows = known_lotteries(ctx, &c, me).await?;
    // Lotteries this key committed but whose announcement is not stored here.
    if me != Address::ZERO {
        for d in c.committed_by(me, from_block).await? {
            let id = d.id().to_string();
            if rows.iter().any(|r| r.id == id) {
                continue;
            }
            rows.push(LotteryRow {
                id,
                payer: d.payer,
                nonce: d.nonce,
                total: d.total.to_string(),
                draw_block: d.draw_block,
                state: c.lottery_state(&d).await?,
                my_share: None,
                won: None,
            });
        }
    }
    if ctx.json {
        ctx.print_json(&json!(rows))?;
    } else if rows.is_empty() {
        crate::outln!("no lotteries known")?;
    } else {
        for r in rows {
            let role = if r.payer == me {
                "payer".to_string()
            } else {
                format!("payee ({} wei)", r.my_share.as_deref().unwrap_or("?"))
            };
            let won = match r.won {
                Some(true) => ", WON",
                Some(false) => ", lost",
                None => "",
            };
            crate::outln!(
                "{} {:?} {} wei, draw block {}, {role}{won}",
                r.id,
                r.state,
                r.total,
                r.draw_block
            )?;
        }
    }
    Ok(())
}

async fn claim(ctx: &Context, cmd: &SettleCommand, a: &ClaimArgs) -> Result<()> {
    let (c, _) = client(ctx, &cmd.chain, true).await?;
    let candidates = match &a.lottery {
        Some(path) => {
            let l = read_lottery(path)?;
            store_lottery(ctx, &l)?;
            vec![l]
        }
        None => stored_lotteries(ctx)?,
    };
    if let Some(path) = &a.secret {
        import_secret(ctx, path)?;
    }
    let window = c.params().await?.claim_window;
    let head = c.block_number().await?;
    let (mut claimed, mut waiting, mut no_secret) = (Vec::new(), 0usize, 0usize);
    for l in candidates {
        let Some(i) = l.leaf_index(c.sender()) else {
            continue;
        };
        let d = l.description;
        if c.lottery_state(&d).await? != LotteryState::Pending {
            continue;
        }
        if d.draw_block >= head {
            waiting += 1;
            continue;
        }
        let (leaf, proof) = (l.leaves[i], l.proof(i));
        // Nobody won in the claim window (the payer withheld its secret): this key's share.
        if head > d.draw_block + window {
            let r = c
                .claim_share(&d, &leaf, &proof)
                .await
                .with_context(|| format!("share claim of {} failed", l.id()))?;
            claimed.push(json!({ "id": l.id(), "amount": leaf.length.to_string(), "to": ClaimTo::Deposit, "share": true, "tx": r.tx_hash, "gas_used": r.gas_used, "fee_wei": r.fee().to_string() }));
            continue;
        }
        let (Some(secret), Some(hash)) = (stored_secret(ctx, l.id())?, c.draw_hash(&d).await?)
        else {
            no_secret += 1;
            continue;
        };
        if l.winner(hash, secret) != Some(i) {
            continue;
        }
        let r = match a.to {
            ClaimTo::Wallet => c.claim_and_withdraw(&d, &leaf, &proof, secret).await,
            ClaimTo::Deposit => c.claim(&d, &leaf, &proof, secret).await,
        }
        .with_context(|| format!("claim of {} failed", l.id()))?;
        claimed.push(json!({ "id": l.id(), "amount": d.total.to_string(), "to": a.to, "share": false, "tx": r.tx_hash, "gas_used": r.gas_used, "fee_wei": r.fee().to_string() }));
    }
    let n = claimed.len();
    report(
        ctx,
        json!({ "claimed": claimed, "waiting_for_draw": waiting, "waiting_for_secret": no_secret }),
        || {
            format!(
                "claimed {n} lotteries; {waiting} waiting for their draw, {no_secret} for their payer's secret"
            )
        },
    )?;
    Ok(())
}

fn parse_owed(path: &Path) -> Result<Vec<(Address, U256)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (addr, amount) = line
            .split_once(',')
            .ok_or_else(|| anyhow!("{}:{}: expected `address,amount`", path.display(), n + 1))?;
        let addr: Address = addr
            .trim()
            .parse()
            .map_err(|_| anyhow!("{}:{}: bad address {addr:?}", path.display(), n + 1))?;
        let amount =
            parse_amount(amount.trim()).with_context(|| format!("{}:{}", path.display(), n + 1))?;
        out.push((addr, amount));
    }
    Ok(out)
}
