//! `jobmesh node start`: run a long-lived node (the peer mesh plus the control API) until Ctrl-C/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use jobmesh_node::lifecycle::{self, ApiConfig, NodeConfig, Started};
use jobmesh_p2p::{Config, Multiaddr};
use jobmesh_store::Store;
use serde_json::json;

use crate::commands::settle::{self, ChainArgs};
use crate::context::Context;
use jobmesh_node::api::{self, DEFAULT_API};
use jobmesh_node::market::{db::MarketDb, MarketConfig, WorkerPolicy};
use jobmesh_node::settlement::{
    Chain, ClaimTo, SettlerConfig, DEFAULT_MAX_DRAW_AHEAD, MIN_DRAW_IN,
};

/// `jobmesh node …`.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Run a node: join the mesh, serve blocks and the control API until Ctrl-C or SIGTERM.
    #[command(after_help = "Examples:\n  jobmesh node start\n  \
        jobmesh --data-dir ./n2 node start --listen /ip4/127.0.0.1/tcp/4002 --api 127.0.0.1:5102 \\\n    \
        --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...")]
    Start(Box<StartArgs>),
}

/// Arguments of `jobmesh node start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Address to listen on for peers (repeatable): TCP (`/ip4/…/tcp/<port>`) or QUIC
    /// (`/ip4/…/udp/<port>/quic-v1`); both by default.
    #[arg(
        long,
        value_name = "MULTIADDR",
        default_values = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
    )]
    pub listen: Vec<String>,
    /// Relay connections for peers behind NATs (circuit relay v2): `auto` once AutoNAT found this node
    /// publicly reachable, `on` always, `off` never.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = RelayMode::Auto)]
    pub relay_server: RelayMode,
    /// A relay to reserve a slot on whatever this node's reachability (repeatable; `/…/p2p/<relay id>`).
    /// Without one, a node that finds itself behind a NAT reserves on the relays among its peers.
    #[arg(long, value_name = "MULTIADDR")]
    pub relay: Vec<String>,
    /// Peer to join the mesh through (repeatable); retried with backoff while unreachable.
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
    /// Address of the local control API (HTTP). Anything but a loopback address needs --api-token.
    #[arg(long, value_name = "IP:PORT", default_value = DEFAULT_API)]
    pub api: String,
    /// A secret every API request must carry (`Authorization: Bearer <token>`); the CLI on this data dir
    /// finds it in `<data-dir>/api.token`.
    #[arg(
        long,
        env = "JOBMESH_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<String>,
    /// A web origin (scheme://host[:port]) allowed to call the API from a browser besides the API's own
    /// (repeatable). Every other origin is refused, so that no web page can drive the node.
    #[arg(long, value_name = "ORIGIN")]
    pub api_allow_origin: Vec<String>,
    /// Run jobs for others: offer on announced jobs that fit the limits below.
    #[arg(long)]
    pub worker: bool,
    /// Peers to stay connected to at most: above it the least recently used peers that are not protected
    /// (new or recently used, gossip mesh, bootstrap) are disconnected down to half of it.
    #[arg(long, value_name = "N", default_value_t = 96)]
    pub max_peers: usize,
    /// As a worker: the largest fuel budget to take on.
    #[arg(long, value_name = "FUEL", default_value_t = jobmesh_exec::Limits::default().fuel)]
    pub max_fuel: u64,
    /// As a worker: the lowest price to work for, in wei per million fuel.
    #[arg(long, value_name = "WEI", default_value_t = 0)]
    pub min_price: u64,
    /// As a worker: how many jobs to run at once (default: the number of CPU cores).
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<usize>,
    /// Default timeout of a fetch from the mesh (cat/get/pin of content this node lacks), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub fetch_timeout: f64,
    /// How long a gateway request (`GET /ipfs/<cid>`) waits for content from the mesh before answering 504
    /// Gateway Timeout, in seconds (kubo's Gateway.RetrievalTimeout).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub gateway_timeout: f64,
    /// What to announce on the DHT for content this node adds or pins (kubo's Reprovider.Strategy): `all`
    /// announces every block, so peers find this node for any block (a file inside a directory, one chunk of a
    /// file), at the cost of one DHT announcement per block (4,096 for a 1 GiB file, re-announced every 12 h);
    /// `roots` announces only the root of each added file or pin (one announcement each), so only whole-DAG
    /// fetches by root find this node.
    #[arg(long, value_name = "STRATEGY", value_enum, default_value_t = Provide::All)]
    pub provide: Provide,
    /// How often provider records are re-announced on the DHT, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 12.0 * 3600.0, hide = true)]
    pub reprovide_interval: f64,
    /// Settle on a chain (given --rpc-url): as a requester, pay workers through lotteries from the deposit;
    /// as a worker, announce the key's address and claim winning lotteries.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Settlement: build a lottery once this much is owed (`0.001eth`, `20gwei`, wei).
    #[arg(long, value_name = "AMOUNT", default_value = "0.001eth")]
    pub lottery_threshold: String,
    /// Settlement: otherwise build one when anything is owed and this many seconds passed since the last.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub lottery_period: f64,
    /// Settlement: blocks from the chain's head to a lottery's draw (at least 2: the commit lands in a later
    /// block than the head it was built at, and the contract wants the draw after the commit's block).
    #[arg(long, value_name = "BLOCKS", default_value_t = SettlerConfig::default().draw_in_blocks,
          value_parser = clap::value_parser!(u64).range(MIN_DRAW_IN..))]
    pub draw_in: u64,
    /// Settlement: how often the chain is looked at, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub settle_poll: f64,
    /// Settlement, as a worker: where winnings go — `wallet` (claimAndWithdraw: sent to the key's address in
    /// the claim itself) or `deposit` (claim: credited to its deposit account, withdrawn after the time lock).
    #[arg(long, value_name = "TO", default_value_t = ClaimTo::Wallet)]
    pub claim_to: ClaimTo,
    /// Settlement, as a worker: the most a requester may owe this node unpaid (receipts not covered by a lottery
    /// it accepted) before it stops offering on that requester's jobs (`0.01eth`, `20gwei`, wei).
    #[arg(long, value_name = "AMOUNT", default_value = "0.01eth")]
    pub max_unpaid_credit: String,
    /// Settlement, as a worker: refuse a lottery whose draw block is more than this many blocks ahead.
    #[arg(long, value_name = "BLOCKS", default_value_t = DEFAULT_MAX_DRAW_AHEAD)]
    pub max_draw_ahead: u64,
    /// Settlement, as a worker: a lottery need not cover receipts that arrived less than this many seconds
    /// before its notice (they may have been on their way while the requester built it; they stay owed).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub receipt_grace: f64,
    /// Verification: majority, M-first or credibility, with its rates and the stake contract.
    #[command(flatten)]
    pub verify: crate::commands::verify_args::VerifyArgs,
}

/// What a node announces on the DHT (`node start --provide`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provide {
    /// Every block of what the node adds or pins.
    All,
    /// Only the root of what the node adds or pins.
    Roots,
}

impl std::fmt::Display for Provide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        jobmesh_p2p::ProvideStrategy::from(*self).fmt(f)
    }
}

impl From<Provide> for jobmesh_p2p::ProvideStrategy {
    fn from(p: Provide) -> Self {
        match p {
            Provide::All => Self::All,
            Provide::Roots => Self::Roots,
        }
    }
}

/// Whether a node relays for others (`node start --relay-server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RelayMode {
    /// Once this node is known to be publicly reachable.
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl std::fmt::Display for RelayMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RelayMode::Auto => "auto",
            RelayMode::On => "on",
            RelayMode::Off => "off",
        })
    }
}

impl From<RelayMode> for jobmesh_p2p::RelayServer {
    fn from(m: RelayMode) -> Self {
        match m {
            RelayMode::Auto => Self::Auto,
            RelayMode::On => Self::On,
            RelayMode::Off => Self::Off,
        }
    }
}

/// Runs `jobmesh node …`.
pub fn run(ctx: &Context, command: &NodeCommand) -> Result<()> {
    match command {
        NodeCommand::Start(args) => start(ctx, args),
    }
}

fn parse_addrs(list: &[String], what: &str) -> Result<Vec<Multiaddr>> {
    list.iter()
        .map(|s| {
            let a: Multiaddr = s
                .parse()
                .with_context(|| format!("invalid {what} address {s:?}: not a multiaddr"))?;
            jobmesh_p2p::check_dialable(&a).with_context(|| format!("invalid {what} address"))?;
            Ok(a)
        })
        .collect()
}

fn secs(v: f64, what: &str) -> Result<Duration> {
    anyhow::ensure!(
        v.is_finite() && v > 0.0,
        "{what} must be a positive number of seconds"
    );
    Duration::try_from_secs_f64(v).map_err(|_| anyhow::anyhow!("{what} is too long"))
}

fn start(ctx: &Context, args: &StartArgs) -> Result<()> {
    // Validate everything before touching the store or the network.
    let listen = parse_addrs(&args.listen, "listen")?;
    let bootstrap = parse_addrs(&args.bootstrap, "bootstrap")?;
    let relays = parse_addrs(&args.relay, "relay")?;
    if let Some(r) = relays.iter().find(|a| jobmesh_p2p::peer_id_of(a).is_none()) {
        anyhow::bail!("invalid relay address {r}: it must end in /p2p/<relay peer id>");
    }
    let api_addr: SocketAddr = args
        .api
        .parse()
        .with_context(|| format!("invalid --api address {:?} (expected IP:PORT)", args.api))?;
    let fetch_timeout = secs(args.fetch_timeout, "--fetch-timeout")?;
    let gateway_timeout = secs(args.gateway_timeout, "--gateway-timeout")?;
    let token = args.api_token.clone().filter(|t| !t.is_empty());
    if token.is_none() && !api_addr.ip().is_loopback() {
        anyhow::bail!(
            "refusing to serve the control API on {api_addr} without a token: anyone who reaches it could add \
             content and run jobs as this node. Pass --api-token <secret> (or JOBMESH_API_TOKEN), or use a \
             127.0.0.1 address"
        );
    }
    if token.as_ref().is_some_and(|t| t.len() < 16) {
        anyhow::bail!("--api-token must be at least 16 characters");
    }
    // The real policy is built once the port is bound (port 0 picks one); this checks the origins now.
    api::guard::AccessPolicy::new(api_addr, &args.api_allow_origin)?;
    let reprovide = secs(args.reprovide_interval, "--reprovide-interval")?;
    let settler_cfg = SettlerConfig {
        threshold_wei: settle::parse_amount(&args.lottery_threshold)
            .context("invalid --lottery-threshold")?
            .try_into()
            .map_err(|_| anyhow::anyhow!("--lottery-threshold is too large"))?,
        period: secs(args.lottery_period, "--lottery-period")?,
        draw_in_blocks: args.draw_in,
        poll: secs(args.settle_poll, "--settle-poll")?,
        claim_to: args.claim_to,
        max_draw_ahead: args.max_draw_ahead,
        receipt_grace: Duration::try_from_secs_f64(args.receipt_grace)
            .map_err(|_| anyhow::anyhow!("--receipt-grace must be a number of seconds"))?,
        ..SettlerConfig::default()
    };
    let max_unpaid_credit: u128 = settle::parse_amount(&args.max_unpaid_credit)
        .context("invalid --max-unpaid-credit")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("--max-unpaid-credit is too large"))?;
    let settles = args.chain.rpc_url.is_some();
    anyhow::ensure!(args.max_jobs != Some(0), "--max-jobs must be at least 1");
    anyhow::ensure!(args.max_fuel > 0, "--max-fuel must be positive");
    anyhow::ensure!(args.max_peers >= 4, "--max-peers must be at least 4");
    let (keypair, _) = ctx.home.load_or_create_identity()?;
    if let Some(running) = api::client::running(&ctx.home) {
        let _ = running;
        anyhow::bail!("a node is already running on {}", ctx.home.root().display());
    }
    let store = Store::open(&ctx.home.blocks_dir()).with_context(|| {
        format!(
            "cannot open the block store in {}",
            ctx.home.root().display()
        )
    })?;

    let market_db = MarketDb::open(&ctx.home.market_dir()).with_context(|| {
        format!(
            "cannot open the market database in {}",
            ctx.home.market_dir().display()
        )
    })?;
    let exec = jobmesh_exec::Executor::new(Some(ctx.home.module_cache_dir()))
        .context("cannot start the job executor")?;
    let market_cfg = MarketConfig {
        worker: args.worker.then(|| WorkerPolicy {
            max_fuel: args.max_fuel,
            min_price_wei_per_mfuel: args.min_price,
            max_concurrent: args
                .max_jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            // Without settlement no lottery ever pays: the limit only applies to a node that settles.
            max_unpaid_credit_wei: settles.then_some(max_unpaid_credit),
            ..WorkerPolicy::default()
        }),
        eth_address: None,
        verification: args.verify.policy()?,
        stake_contract: args.verify.stake_contract(),
        // Built by the launch from the stake contract and the settlement chain.
        stake_oracle: None,
    };
    let mut cfg = Config::new(keypair);
    cfg.listen = listen;
    cfg.bootstrap = bootstrap;
    cfg.relays = relays;
    cfg.nat.relay_server = args.relay_server.into();
    cfg.reprovide_interval = reprovide;
    cfg.provide_strategy = args.provide.into();
    cfg.connections = jobmesh_p2p::ConnLimits::with_high(args.max_peers);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let api = ApiConfig {
        addr: api_addr,
        fetch_timeout,
        gateway_timeout,
        token,
        allow_origins: args.api_allow_origin.clone(),
    };
    rt.block_on(async {
        let settlement = match settles.then_some((&args.chain, settler_cfg)) {
            Some((chain, policy)) => Some((chain_client(ctx, chain).await?, policy)),
            None => None,
        };
        let cfg = NodeConfig {
            home: ctx.home.clone(),
            p2p: cfg,
            store,
            db: market_db,
            exec: Arc::new(exec),
            market: market_cfg,
            settlement,
            api,
        };
        lifecycle::run(cfg, |started| print_banner(ctx, started)).await?;
        Ok::<(), anyhow::Error>(())
    })?;
    if !ctx.json {
        eprintln!("node stopped");
    }
    Ok(())
}

/// The JSON-RPC chain `--rpc-url` … names, with this node's settlement key.
async fn chain_client(ctx: &Context, chain: &ChainArgs) -> Result<Chain> {
    let (client, _) = settle::client(ctx, chain, true)
        .await
        .context("cannot settle on the configured chain")?;
    Ok(Chain::Rpc(client))
}

/// What `node start` prints once it runs: its PeerId, addresses and API (one JSON object with `--json`).
fn print_banner(ctx: &Context, s: &Started<'_>) -> std::io::Result<()> {
    if ctx.json {
        ctx.print_json(&json!({
            "peer_id": s.node.peer_id().to_string(),
            "addresses": s.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "api": s.api.to_string(),
            "worker": s.worker,
            "settlement_address": s.settler.map(|s| s.address()),
        }))?;
    } else {
        crate::outln!("peer id {}", s.node.peer_id())?;
        for a in s.addrs {
            crate::outln!("listening on {a}")?;
        }
        crate::outln!("api on http://{}", s.api)?;
        if s.worker {
            crate::outln!("running jobs for others (worker)")?;
        }
        if let Some(settler) = s.settler {
            crate::outln!(
                "settling as {} on contract {}",
                settler.address(),
                jobmesh_contracts::Settlement::contract(settler.chain())
            )?;
        }
    }
    Ok(())
}
