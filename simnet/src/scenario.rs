//! A scripted simulation: N complete nodes on the memory transport settling on one embedded chain, a mix of
//! jobs from `examples/`, and faults drawn from the seed (faulty workers, crashes with restarts, a crowd of
//! fresh identities that accept work and go silent). Produces a [`Summary`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobmesh_contracts::alloy::primitives::U256;
use jobmesh_contracts::DeployParams;
use jobmesh_exec::{JobCode, Limits, Plugin};
use jobmesh_node::market::messages::{CodeKind, JobLimits};
use jobmesh_node::market::tally::owed_wei;
use jobmesh_node::market::{Conduct, JobRequest, Market, WorkerPolicy};
use jobmesh_node::settlement::{LotteryStatus, SettlerConfig, Side};
use jobmesh_p2p::{p50_p95_p99, ConnLimits, GossipReport, Mesh, Transport};
use jobmesh_store::unixfs::{file_cid, Profile};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tracing::debug;

use crate::checks::Check;
use crate::links::{LinkConfig, LinkModel, LinkSummary};
use crate::trust::{Adversaries, VerificationCost};
use crate::{Cluster, ClusterError, ClusterSetup, SimChain};
use jobmesh_node::market::verification::VerificationPolicy;

/// What to simulate.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Nodes in the mesh (requesters + workers).
    pub nodes: usize,
    /// How many of them submit jobs (the others work).
    pub requesters: usize,
    /// Jobs submitted in all.
    pub jobs: usize,
    /// Replicas per job.
    pub replicas: u8,
    /// Share of workers that return wrong outputs (each its own).
    pub byzantine: f64,
    /// Share of workers that crash once and restart.
    pub crash: f64,
    /// Share of workers that are honest but slow (each run starts 1–3 s late).
    pub slow: f64,
    /// Fresh identities that join during the run, accept work and never answer.
    pub sybils: usize,
    /// How long the mesh is cut in two halves (once a seeded 20–40 % of the jobs are over), if at all.
    pub partition: Option<Duration>,
    /// Seed of every random choice (roles, job mix, fault times, block hashes).
    pub seed: u64,
    /// Jobs each requester keeps in flight at most (it starts with two and adds one per verified job).
    pub in_flight: usize,
    /// Time a job has to finish (a silent worker holds its replica for half of it).
    pub job_timeout: Duration,
    /// Peers each node stays connected to at most (its connection manager trims to half of it).
    pub max_peers: usize,
    /// Round-trip times, loss and bandwidth between members ([`crate::links`]).
    pub links: LinkConfig,
    /// Saboteurs, the cold-start Sybil crowd and worker stake ([`crate::trust`]).
    pub adversaries: Adversaries,
    /// How requesters verify results.
    pub verification: VerificationPolicy,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario does not make sense.
    #[error("invalid scenario: {0}")]
    Invalid(String),
    /// Building the cluster or a job failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// What the simulation reports while it runs.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Nodes are starting.
    Starting {
        /// How many.
        nodes: usize,
    },
    /// A job reached a terminal phase.
    JobDone {
        /// Jobs over so far.
        done: usize,
        /// All jobs.
        total: usize,
    },
    /// A fault was injected (in words).
    Fault(String),
    /// Waiting for the last lotteries to be drawn and claimed.
    Settling,
}

/// One finished job.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    /// The job id (hex; empty if it was never submitted).
    pub job_id: String,
    /// Which kind from the mix.
    pub kind: &'static str,
    /// Terminal phase.
    pub phase: String,
    /// Why (for failures).
    pub reason: String,
    /// Seconds from the start of the run to its submission.
    pub submitted_s: f64,
    /// Submit → terminal, in milliseconds.
    pub latency_ms: f64,
    /// Fuel of the accepted result.
    pub fuel_used: u64,
    /// Whether it was verified with an output other than the reference run's.
    pub wrong: bool,
    /// The requester that submitted it (member index).
    pub requester: usize,
    /// With a link model: the median round-trip time between the requester and its agreeing workers, in ms.
    pub rtt_ms: Option<f64>,
    /// With a link model: the longest of those round-trip times (the farthest agreeing worker), in ms.
    pub rtt_max_ms: Option<f64>,
    /// The workers of the accepted majority (PeerIds).
    #[serde(skip)]
    pub agreeing: Vec<String>,
}

/// The deterministic part of a run: the same seed gives the same outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Jobs submitted.
    pub jobs: usize,
    /// Jobs by terminal phase.
    pub by_phase: BTreeMap<String, usize>,
    /// Jobs by kind, then by `phase/status` of the accepted result.
    pub by_kind: BTreeMap<String, BTreeMap<String, usize>>,
    /// Failed jobs by reason.
    pub failed_by_reason: BTreeMap<String, usize>,
    /// Verified jobs whose output differs from the reference run (must be 0).
    pub wrong_results_accepted: usize,
    /// Fuel of every verified job's accepted result.
    pub fuel_used: u64,
    /// Faulty workers (member indices).
    pub byzantine: Vec<usize>,
    /// Crashing workers (member indices).
    pub crashing: Vec<usize>,
    /// Slow workers (member indices).
    pub slow: Vec<usize>,
    /// Saboteurs (member indices).
    pub saboteurs: Vec<usize>,
    /// The cold-start Sybil crowd of forgers (member indices).
    pub sybil_forgers: Vec<usize>,
}

/// One worker's settlement.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerPay {
    /// Member index.
    pub member: usize,
    /// Whether it is honest.
    pub honest: bool,
    /// What it earned: for every verified job it agreed on, fuel × price (from the requesters' job records).
    pub earned_wei: f64,
    /// What requesters owe it (in lotteries or still in their ledgers), in wei: must equal `earned_wei`.
    pub owed_wei: f64,
    /// What it won through lotteries, in wei.
    pub received_wei: f64,
}

/// Settlement over the run.
#[derive(Debug, Clone, Serialize)]
pub struct SettlementSummary {
    /// Lotteries committed.
    pub lotteries_committed: usize,
    /// Claimed by their winner.
    pub lotteries_paid: usize,
    /// Not won in their claim window (the payer withheld its secret, or the winner did not claim): paid out
    /// share by share to their payees.
    pub lotteries_shared: usize,
    /// Still pending at the end.
    pub lotteries_pending: usize,
    /// Gas of every settlement transaction (commits, claims, share claims).
    pub gas_used: u64,
    /// Paid replicas (one plain transfer each without lotteries).
    pub payments: usize,
    /// Gas of paying each of them with a plain 21,000-gas transfer.
    pub gas_plain_transfers: u64,
    /// Deposits made, in wei.
    pub deposits_wei: String,
    /// The contract's ETH balance at the end, in wei.
    pub contract_balance_wei: String,
    /// Whether contract balance = deposits − withdrawals (no withdrawals here).
    pub no_money_lost: bool,
    /// Owed to workers still in ledgers at the end, in wei.
    pub owed_unsettled_wei: String,
    /// Per worker.
    pub workers: Vec<WorkerPay>,
}

/// Network counters summed over nodes.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkSummary {
    /// Gossip (announcements, re-announcements, cancellations): published, delivered, delivery ratio and
    /// publication → delivery latency.
    pub gossip: GossipReport,
    /// After a partition: seconds from the heal until the members' connections formed one connected graph again.
    pub partition_healed_s: Option<f64>,
    /// Bytes moved by bitswap.
    pub bitswap_bytes: u64,
    /// Blocks moved by bitswap.
    pub bitswap_blocks: u64,
    /// Direct market requests sent.
    pub direct_requests: u64,
    /// DHT queries run (bootstraps, provider lookups and announcements).
    pub dht_queries: u64,
    /// Connections established, counted on both ends (each connection twice).
    pub connections_opened: u64,
    /// Peers disconnected by the members' connection managers.
    pub peers_trimmed: u64,
    /// Share of the expected gossip deliveries that arrived within 4 s of publication (Ethereum's anchor: 98 %
    /// of blocks reach the nodes within 4 s).
    pub gossip_within_4s: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// What ran.
    pub scenario: Scenario,
    /// The deterministic outcome.
    pub outcome: Outcome,
    /// Wall time of the whole run, in seconds.
    pub wall_s: f64,
    /// Where the wall time went.
    pub phases: PhaseTimes,
    /// Submit → terminal latency percentiles (p50, p95, p99), in milliseconds.
    pub latency_ms: [f64; 3],
    /// Submit → verified latency percentiles (p50, p95, p99) of the verified jobs, in milliseconds.
    pub verified_latency_ms: [f64; 3],
    /// With a link model: submit → verified against the requester–worker round-trip times.
    pub round_trips: Option<RoundTrips>,
    /// The link model, if any.
    pub links: Option<LinkSummary>,
    /// Peak resident memory of the process, in MiB (Linux; 0 elsewhere).
    pub peak_rss_mib: f64,
    /// Faults injected, in words, with their time.
    pub faults: Vec<String>,
    /// Network counters.
    pub network: NetworkSummary,
    /// Where the commit step spent its time ([`crate::commit_path`]).
    pub commit_path: crate::commit_path::CommitPathReport,
    /// Settlement.
    pub settlement: SettlementSummary,
    /// The run's expectations, each with its verdict ([`crate::checks`]).
    pub checks: Vec<Check>,
    /// What verification cost: executions per accepted job (spot-checks included), wrong results accepted
    /// and their 95 % upper bound, the requesters' mean credibility over time.
    #[serde(flatten)]
    pub cost: VerificationCost,
    /// Every job.
    pub jobs: Vec<JobRecord>,
}

/// Submit → verified latency in round trips between each job's requester and its workers (the protocol's
/// announce, offer, assign, fetch, commit and reveal are about six).
#[derive(Debug, Clone, Serialize)]
pub struct RoundTrips {
    /// Verified jobs counted.
    pub jobs: usize,
    /// Their submit → verified p50, in milliseconds.
    pub latency_p50_ms: f64,
    /// The median of their requester–worker round-trip times (each job's median over its agreeing workers).
    pub rtt_p50_ms: f64,
    /// `latency_p50_ms / rtt_p50_ms`: the goal is at most 6.
    pub ratio: f64,
    /// The median over jobs of the farthest agreeing worker's round-trip time (a job waits for all its
    /// replicas' commitments before the reveals).
    pub rtt_max_p50_ms: f64,
    /// The median over jobs of each job's latency over its own requester–worker RTT.
    pub per_job_ratio_p50: f64,
}

/// Seconds spent in each phase of a run (they add up to about [`Summary::wall_s`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseTimes {
    /// Starting the nodes and the chain, connecting the mesh, the requesters' deposits.
    pub start_s: f64,
    /// Compiling the job mix, adding code and inputs, the reference runs.
    pub plan_s: f64,
    /// First submission to the last job's end (faults happen here).
    pub jobs_s: f64,
    /// Waiting for the last lotteries to be drawn and claimed.
    pub settle_s: f64,
}

/// Longest job timeout and partition a scenario accepts.
const MAX_FAULT_OR_TIMEOUT: Duration = Duration::from_secs(3600);

/// Price every job offers, in wei per million fuel.
const PRICE: u64 = 1_000;
/// Deposit of each requester.
const DEPOSIT_WEI: u128 = 1_000_000_000_000_000_000; // 1 ETH

/// One kind of job of the mix: its source and how to draw an input.
struct Kind {
    name: &'static str,
    source: &'static str,
    max_fuel: Option<u64>,
    input: fn(&mut StdRng, usize) -> Vec<u8>,
}

const THROWS_JS: &str = "// throws.js: fails on purpose (replicas agree on the exception).\n\
    const buf = new Uint8Array(64); const n = Javy.IO.readSync(0, buf);\n\
    throw new Error('job input ' + new TextDecoder().decode(buf.subarray(0, n)));\n";

fn kinds() -> Vec<(Kind, u32)> {
    vec![
        (
            Kind {
                name: "cpu-heavy",
                source: include_str!("../../examples/cpu-heavy.js"),
                max_fuel: None,
                input: |r, _| {
                    format!("{{\"rounds\": {}}}", [20, 40, 80][r.gen_range(0..3)]).into_bytes()
                },
            },
            4,
        ),
        (
            Kind {
                name: "wordcount",
                source: include_str!("../../examples/wordcount.js"),
                max_fuel: None,
                input: |_, _| include_bytes!("../../examples/wordcount.input.json").to_vec(),
            },
            2,
        ),
        (
            Kind {
                name: "echo",
                source: include_str!("../../examples/echo.js"),
                max_fuel: None,
                input: |_, j| format!("job {j}").into_bytes(),
            },
            2,
        ),
        (
            Kind {
                name: "out-of-fuel",
                source: include_str!("../../examples/cpu-heavy.js"),
                max_fuel: Some(3_000_000),
                input: |_, _| b"{\"rounds\": 100000}".to_vec(),
            },
            1,
        ),
        (
            Kind {
                name: "throws",
                source: THROWS_JS,
                max_fuel: None,
                input: |r, _| format!("{}", r.gen_range(0..4)).into_bytes(),
            },
            1,
        ),
    ]
}

impl Scenario {
    /// Checks the numbers make sense.
    pub fn check(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Invalid(m));
        if self.requesters == 0 || self.requesters >= self.nodes {
            return bad(format!(
                "--requesters must be between 1 and --nodes - 1 (got {} of {})",
                self.requesters, self.nodes
            ));
        }
        let workers = self.nodes - self.requesters;
        if self.replicas == 0 || usize::from(self.replicas) > workers {
            return bad(format!(
                "--replicas must be between 1 and the number of workers ({workers})"
            ));
        }
        for (name, v) in [
            ("--byzantine", self.byzantine),
            ("--crash", self.crash),
            ("--slow", self.slow),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be a share between 0 and 1"));
            }
        }
        self.adversaries.check().map_err(SimError::Invalid)?;
        let faulty = (self.byzantine * workers as f64).round() as usize;
        if workers - faulty < usize::from(self.replicas) / 2 + 1 {
            return bad("too many byzantine workers: honest ones cannot form a majority".into());
        }
        if self.max_peers < 4 {
            return bad("--max-peers must be at least 4".into());
        }
        if self.in_flight == 0 {
            return bad("--in-flight must be at least 1".into());
        }
        if self.job_timeout < Duration::from_secs(5) || self.job_timeout > MAX_FAULT_OR_TIMEOUT {
            return bad("--job-timeout must be between 5 s and 1 h".into());
        }
        if self.partition.is_some_and(|p| p > MAX_FAULT_OR_TIMEOUT) {
            return bad("--partition must be at most 1 h".into());
        }
        if !(0.0..0.5).contains(&self.links.loss) {
            return bad("--loss must be a share between 0 and 0.5".into());
        }
        Ok(())
    }
}

/// Runs the scenario; `progress` hears what happens as it happens. The phases, in order: draw the cast (who is
/// faulty, crashing, slow), start the cluster and the chain, plan the jobs, run them while injecting the faults,
/// let settlement finish, then summarize and run the [`crate::checks`].
pub async fn run(
    s: &Scenario,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> Result<Summary, SimError> {
    s.check()?;
    let progress: Arc<dyn Fn(Progress) + Send + Sync> = Arc::new(progress);
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(s.seed);
    let cast = Cast::draw(s, &mut rng);
    let links = LinkModel::new(s.links, s.seed);
    progress(Progress::Starting { nodes: s.nodes });
    let (mut cluster, net) = start(s, &cast, links.clone()).await?;
    let mut phases = PhaseTimes {
        start_s: started.elapsed().as_secs_f64(),
        ..PhaseTimes::default()
    };
    let planned = plan(s, &cluster, &mut rng)?;
    let faults = FaultPlan::draw(s, &cast, &mut rng);
    phases.plan_s = started.elapsed().as_secs_f64() - phases.start_s;
    let jobs_started = Instant::now();
    let jobs_started_ms = jobmesh_node::market::now_ms();
    let sampler = crate::trust::CredibilitySampler::spawn(&cluster, s.requesters, &s.verification);
    let (mut records, faults, partition_healed_s) =
        run_jobs(s, &mut cluster, planned, faults, progress.clone()).await?;
    let credibility = sampler.finish().await;
    phases.jobs_s = jobs_started.elapsed().as_secs_f64();
    let settle_started = Instant::now();
    progress(Progress::Settling);
    settle(&cluster).await;
    phases.settle_s = settle_started.elapsed().as_secs_f64();
    if let Some(model) = &links {
        note_round_trips(&mut records, &cluster, model);
    }
    let mut cost = crate::trust::cost_of(&cluster, &records, jobs_started_ms);
    cost.credibility = credibility;
    let mut outcome = outcome_of(&records, cast.byzantine, cast.crashing, cast.slow);
    (outcome.saboteurs, outcome.sybil_forgers) = (cast.saboteurs, cast.sybil_forgers);
    let mut summary = Summary {
        scenario: s.clone(),
        outcome,
        wall_s: started.elapsed().as_secs_f64(),
        phases,
        latency_ms: percentiles(records.iter().map(|r| r.latency_ms)),
        verified_latency_ms: percentiles(
            records
                .iter()
                .filter(|r| r.phase == "verified")
                .map(|r| r.latency_ms),
        ),
        round_trips: links.as_ref().map(|_| round_trips_of(&records)),
        links: links.as_ref().map(|m| m.summary(s.nodes)),
        peak_rss_mib: peak_rss_mib(),
        faults,
        network: network_of(&cluster, partition_healed_s),
        commit_path: crate::commit_path::report(&cluster),
        settlement: settlement_of(&cluster, &net.chain, net.deposits, s.requesters),
        checks: Vec::new(),
        cost,
        jobs: records,
    };
    summary.checks = crate::checks::all(&summary);
    net.miner.abort();
    cluster.shutdown().await;
    Ok(summary)
}

/// Who does what: the roles of the members, drawn from the seed.
struct Cast {
    roles: Vec<Option<WorkerPolicy>>,
    byzantine: Vec<usize>,
    crashing: Vec<usize>,
    slow: Vec<usize>,
    saboteurs: Vec<usize>,
    sybil_forgers: Vec<usize>,
}

impl Cast {
    /// Draws the faulty, crashing and slow workers (and the slow ones' delays).
    fn draw(s: &Scenario, rng: &mut StdRng) -> Cast {
        let workers: Vec<usize> = (s.requesters..s.nodes).collect();
        let mut shuffled = workers.clone();
        shuffled.shuffle(rng);
        let n_byz = (s.byzantine * workers.len() as f64).round() as usize;
        let n_crash =
            ((s.crash * workers.len() as f64).round() as usize).min(workers.len() - n_byz);
        let n_slow =
            ((s.slow * workers.len() as f64).round() as usize).min(workers.len() - n_byz - n_crash);
        let sorted = |mut v: Vec<usize>| {
            v.sort_unstable();
            v
        };
        let byzantine = sorted(shuffled[..n_byz].to_vec());
        let crashing = sorted(shuffled[n_byz..n_byz + n_crash].to_vec());
        let slow = sorted(shuffled[n_byz + n_crash..n_byz + n_crash + n_slow].to_vec());
        // Saboteurs and the Sybil crowd come from the workers left (drawn after the others, so adding them
        // leaves the byzantine, crashing and slow workers of a seed as they were).
        let adv = &s.adversaries;
        let rest = &shuffled[n_byz + n_crash + n_slow..];
        let n_sab = ((adv.saboteurs * workers.len() as f64).round() as usize).min(rest.len());
        let saboteurs = sorted(rest[..n_sab].to_vec());
        let n_forgers = adv.sybil_forgers.min(rest.len() - n_sab);
        let sybil_forgers = sorted(rest[n_sab..n_sab + n_forgers].to_vec());
        let delays: HashMap<usize, u64> = slow
            .iter()
            .map(|&i| (i, rng.gen_range(1_000..3_000)))
            .collect();
        let roles = (0..s.nodes)
            .map(|i| {
                (i >= s.requesters).then(|| WorkerPolicy {
                    conduct: if byzantine.contains(&i) {
                        adv.byzantine()
                    } else if sybil_forgers.contains(&i) {
                        Conduct::WrongOutput
                    } else if saboteurs.contains(&i) {
                        adv.saboteur(s.seed)
                    } else if let Some(&delay_ms) = delays.get(&i) {
                        Conduct::Slow { delay_ms }
                    } else {
                        Conduct::Honest
                    },
                    // Queue runs rather than refuse work: the simulated machines share this one's cores anyway.
                    max_concurrent: 8,
                    stake_wei: (adv.stake && !sybil_forgers.contains(&i))
                        .then_some(crate::trust::STAKE_WEI),
                    ..WorkerPolicy::default()
                })
            })
            .collect();
        Cast {
            roles,
            byzantine,
            crashing,
            slow,
            saboteurs,
            sybil_forgers,
        }
    }
}

/// The chain side of a running simulation.
struct Net {
    chain: SimChain,
    miner: tokio::task::JoinHandle<()>,
    deposits: U256,
}

/// Starts the chain (a block per 200 ms; each requester pays what it owes in one lottery every 3 s), the
/// members, and the requesters' deposits (all in the same blocks).
async fn start(
    s: &Scenario,
    cast: &Cast,
    links: Option<Arc<LinkModel>>,
) -> Result<(Cluster, Net), SimError> {
    let policy = SettlerConfig {
        threshold_wei: u128::MAX,
        period: Duration::from_secs(3),
        poll: Duration::from_millis(500),
        draw_in_blocks: 10,
        ..SettlerConfig::default()
    };
    let params = DeployParams {
        claim_window: 100,
        ..DeployParams::default()
    };
    let chain = SimChain::new(s.seed, params, policy)?;
    let stake = if s.adversaries.stake {
        Some(crate::trust::deploy_stake(&chain)?)
    } else {
        None
    };
    let miner = chain.spawn_miner(Duration::from_millis(200));
    let setup = ClusterSetup {
        transport: Transport::Memory,
        chain: Some(chain.clone()),
        connections: ConnLimits::with_high(s.max_peers),
        links,
        verification: s.verification,
        stake_contract: stake.as_ref().map(|c| c.contract().into_array()),
    };
    let cluster = Cluster::start_setup(&cast.roles, setup).await?;
    if let Some(stake) = &stake {
        crate::trust::lock_stakes(stake, &cluster).await?;
    }
    let mut depositing = tokio::task::JoinSet::new();
    for m in &cluster.members[..s.requesters] {
        let settler = m.settler.clone().expect("every member settles");
        depositing.spawn(async move { settler.deposit(U256::from(DEPOSIT_WEI)).await });
    }
    let mut deposits = U256::ZERO;
    while let Some(done) = depositing.join_next().await {
        done.map_err(|e| ClusterError::Job(format!("deposit: {e}")))?
            .map_err(|e| ClusterError::Job(format!("deposit: {e}")))?;
        deposits += U256::from(DEPOSIT_WEI);
    }
    let net = Net {
        chain,
        miner,
        deposits,
    };
    Ok((cluster, net))
}

/// The job mix drawn from the seed, each job's code and input stored at its requester, and each distinct
/// input's reference result (computed here once). One list per requester.
fn plan(s: &Scenario, cluster: &Cluster, rng: &mut StdRng) -> Result<Vec<Vec<Planned>>, SimError> {
    let mix = kinds();
    let weights: u32 = mix.iter().map(|(_, w)| w).sum();
    let plugin = Plugin::bundled().cid();
    let exec = cluster.executor().clone();
    let mut compiled: HashMap<&'static str, Vec<u8>> = HashMap::new();
    let mut reference: HashMap<(&'static str, Vec<u8>), (String, String)> = HashMap::new();
    let mut planned: Vec<Vec<Planned>> = (0..s.requesters).map(|_| Vec::new()).collect();
    for j in 0..s.jobs {
        let mut pick = rng.gen_range(0..weights);
        let (kind, _) = mix
            .iter()
            .find(|(_, w)| {
                let hit = pick < *w;
                pick = pick.saturating_sub(*w);
                hit
            })
            .expect("weights cover the range");
        let input = (kind.input)(rng, j);
        let requester = j % s.requesters;
        if !compiled.contains_key(kind.name) {
            let code =
                tokio::task::block_in_place(|| exec.compile_js(&plugin, "job.js", kind.source))
                    .map_err(|e| ClusterError::Job(format!("{}: {e}", kind.name)))?;
            compiled.insert(kind.name, JobCode::Js(code).to_bytes());
        }
        let code_bytes = &compiled[kind.name];
        let mut limits = Limits::default();
        if let Some(f) = kind.max_fuel {
            limits.fuel = f;
        }
        let key = (kind.name, input.clone());
        if !reference.contains_key(&key) {
            reference.insert(
                key.clone(),
                reference_run(&exec, code_bytes, &input, &limits)?,
            );
        }
        let m = &cluster.members[requester];
        let req = JobRequest {
            kind: CodeKind::JavyBytecode,
            plugin: Some(plugin),
            code: m.add(code_bytes)?,
            input: m.add(&input)?,
            limits: JobLimits {
                max_fuel: limits.fuel,
                memory_bytes: limits.memory_bytes,
                output_bytes: limits.output_bytes,
                stderr_bytes: limits.stderr_bytes,
            },
            replicas: s.replicas,
            price_wei_per_mfuel: PRICE,
            verifier: None,
            timeout: s.job_timeout,
            error_rate: None,
        };
        let (want_cid, want_status) = reference[&key].clone();
        planned[requester].push(Planned {
            index: j,
            requester,
            kind: kind.name,
            request: req,
            want_cid,
            want_status,
        });
    }
    Ok(planned)
}

/// The output CID and status of one run of `code` on `input` here.
fn reference_run(
    exec: &jobmesh_exec::Executor,
    code_bytes: &[u8],
    input: &[u8],
    limits: &Limits,
) -> Result<(String, String), SimError> {
    let code = JobCode::from_bytes(code_bytes).map_err(|e| ClusterError::Job(e.to_string()))?;
    let out = tokio::task::block_in_place(|| exec.run(&code, input, limits))
        .map_err(|e| ClusterError::Job(e.to_string()))?;
    let cid =
        file_cid(&out.output, &Profile::KUBO).map_err(|e| ClusterError::Job(e.to_string()))?;
    Ok((cid.to_string(), out.status.name().to_string()))
}

/// The faults of a run, drawn from the seed: crash times and downtimes, the moment the silent crowd arrives,
/// and the partition (after how many jobs, which side, how long).
struct FaultPlan {
    timed: Vec<(Duration, Fault)>,
    cut: Option<(usize, Vec<usize>, Duration)>,
}

impl FaultPlan {
    fn draw(s: &Scenario, cast: &Cast, rng: &mut StdRng) -> FaultPlan {
        let mut timed: Vec<(Duration, Fault)> = cast
            .crashing
            .iter()
            .map(|&i| {
                (
                    Duration::from_millis(rng.gen_range(1_000..8_000)),
                    Fault::Crash {
                        member: i,
                        down: Duration::from_millis(rng.gen_range(500..3_000)),
                    },
                )
            })
            .collect();
        if s.sybils > 0 {
            timed.push((
                Duration::from_millis(rng.gen_range(500..4_000)),
                Fault::Sybils(s.sybils),
            ));
        }
        timed.sort_by_key(|(t, _)| *t);
        // The cut starts once a seeded share (20–40 %) of the jobs is over, so it always falls among
        // submissions however fast the machine is; it heals `length` later.
        let cut = s.partition.map(|length| {
            let after = s.jobs * rng.gen_range(20..40) / 100;
            let mut everyone: Vec<usize> = (0..s.nodes).collect();
            everyone.shuffle(rng);
            let mut side = everyone[..s.nodes / 2].to_vec();
            side.sort_unstable();
            (after, side, length)
        });
        FaultPlan { timed, cut }
    }
}

/// What [`run_jobs`] gives back: every job's record, the faults in words, and how long the healed partition
/// took to reconnect.
type Ran = (Vec<JobRecord>, Vec<String>, Option<f64>);

/// Requesters submit in parallel (their markets are cheap clones) while the faults are applied.
async fn run_jobs(
    s: &Scenario,
    cluster: &mut Cluster,
    planned: Vec<Vec<Planned>>,
    faults: FaultPlan,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<Ran, SimError> {
    let jobs_started = Instant::now();
    let total = s.jobs;
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut drivers = tokio::task::JoinSet::new();
    for (r, list) in planned.into_iter().enumerate() {
        let market = cluster.members[r].market.clone();
        let (done, progress, in_flight) = (done.clone(), progress.clone(), s.in_flight);
        drivers.spawn(drive(market, list, in_flight, jobs_started, move || {
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(Progress::JobDone { done: n, total });
        }));
    }
    let (faults, partition_healed_s) =
        inject_faults(cluster, faults, &done, jobs_started, &*progress).await?;
    let mut records = Vec::new();
    while let Some(r) = drivers.join_next().await {
        records.extend(r.map_err(|e| ClusterError::Job(e.to_string()))?);
    }
    records.sort_by_key(|(j, _)| *j);
    Ok((
        records.into_iter().map(|(_, r)| r).collect(),
        faults,
        partition_healed_s,
    ))
}

/// Applies the planned faults as their time (or, for the cut, their share of jobs over) comes; returns them in
/// words, and how long the healed partition took to reconnect.
async fn inject_faults(
    cluster: &mut Cluster,
    plan: FaultPlan,
    done: &std::sync::atomic::AtomicUsize,
    jobs_started: Instant,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(Vec<String>, Option<f64>), SimError> {
    let FaultPlan { timed, mut cut } = plan;
    let mut faults = Vec::new();
    let mut healing = None;
    let mut timed = timed.into_iter().peekable();
    let mut heal_at: Option<Instant> = None;
    loop {
        // The next fault: a timed one, the heal, or (polled) the cut once enough jobs are over.
        let next_timed = timed.peek().map(|(at, _)| jobs_started + *at);
        let poll_cut = cut
            .as_ref()
            .map(|_| Instant::now() + Duration::from_millis(50));
        let Some(wake) = [next_timed, heal_at, poll_cut].into_iter().flatten().min() else {
            break;
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
        let now = Instant::now();
        let jobs_over = done.load(std::sync::atomic::Ordering::Relaxed);
        let fault = if cut.as_ref().is_some_and(|(after, ..)| jobs_over >= *after) {
            let (_, side, length) = cut.take().expect("checked");
            heal_at = Some(now + length);
            Fault::Partition { side, length }
        } else if heal_at.is_some_and(|h| now >= h) {
            heal_at = None;
            Fault::Heal
        } else if next_timed.is_some_and(|t| now >= t) {
            timed.next().expect("peeked").1
        } else {
            continue;
        };
        let at = now.duration_since(jobs_started).as_secs_f64();
        let line = apply_fault(cluster, fault, jobs_over, &mut healing).await?;
        let line = format!("{at:.1}s: {line}");
        progress(Progress::Fault(line.clone()));
        faults.push(line);
    }
    let mut partition_healed_s = None;
    if let Some(watch) = healing {
        partition_healed_s = watch.await.ok().flatten().map(|d| d.as_secs_f64());
        faults.push(match partition_healed_s {
            Some(s) => format!("the two sides were reconnected {s:.1}s after the heal"),
            None => format!("the two sides were not reconnected {HEAL_WATCH:?} after the heal"),
        });
    }
    Ok((faults, partition_healed_s))
}

/// Applies one fault; returns it in words. A heal starts watching for the sides to reconnect (`healing`).
async fn apply_fault(
    cluster: &mut Cluster,
    fault: Fault,
    jobs_over: usize,
    healing: &mut Option<tokio::task::JoinHandle<Option<Duration>>>,
) -> Result<String, SimError> {
    Ok(match fault {
        Fault::Crash { member, down } => {
            cluster.restart(member, down).await?;
            format!(
                "worker {member} crashed, restarted after {:.1}s",
                down.as_secs_f64()
            )
        }
        Fault::Sybils(n) => {
            let silent = WorkerPolicy {
                conduct: Conduct::SilentAfterAccept,
                ..WorkerPolicy::default()
            };
            for _ in 0..n {
                cluster.join(Some(silent.clone())).await?;
            }
            format!("{n} fresh identities joined, accepting work and never answering")
        }
        Fault::Partition { side, length } => {
            cluster.partition(&side).await;
            format!(
                "the mesh was cut in two ({} | {} nodes) for {:.1}s, {jobs_over} jobs in",
                side.len(),
                cluster.members.len() - side.len(),
                length.as_secs_f64()
            )
        }
        Fault::Heal => {
            cluster.heal().await;
            let nodes = cluster.members.iter().map(|m| m.node.clone()).collect();
            *healing = Some(tokio::spawn(reconnected(nodes)));
            "the partition healed (nobody dialed by hand: bootstrap retries reconnect the sides)"
                .into()
        }
    })
}

/// Lets settlement finish: what every requester still owes goes into lotteries at once (rather than at its next
/// period), then waits (at most a minute) until every lottery is drawn and settled and every ledger is empty.
async fn settle(cluster: &Cluster) {
    let mut flushing = tokio::task::JoinSet::new();
    for m in cluster.members.iter().filter(|m| m.worker.is_none()) {
        if let Some(settler) = m.settler.clone() {
            flushing.spawn(async move { settler.settle_now().await });
        }
    }
    while let Some(flushed) = flushing.join_next().await {
        if let Ok(Err(e)) = flushed {
            debug!(error = %e, "settling what is owed failed; the periodic rounds retry");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while settling(cluster) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether a lottery is still open or a requester's ledger still holds what it owes.
fn settling(cluster: &Cluster) -> bool {
    cluster.members.iter().any(|m| {
        let Some(st) = &m.settler else { return false };
        let open = st
            .records()
            .unwrap_or_default()
            .iter()
            .any(|r| !r.status.is_final());
        let owing = m.worker.is_none()
            && m.market
                .db()
                .ledger()
                .map(|l| !l.is_empty())
                .unwrap_or(false);
        open || owing
    })
}

/// p50, p95 and p99 of some latencies.
fn percentiles(values: impl Iterator<Item = f64>) -> [f64; 3] {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    p50_p95_p99(&v)
}

/// Notes in each job's record the median round-trip time between its requester and its agreeing workers.
fn note_round_trips(records: &mut [JobRecord], cluster: &Cluster, model: &LinkModel) {
    let index: HashMap<String, usize> = cluster
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.node.peer_id().to_string(), i))
        .collect();
    for r in records {
        let mut rtts: Vec<f64> = r
            .agreeing
            .iter()
            .filter_map(|w| index.get(w))
            .map(|&w| model.rtt(r.requester, w).as_secs_f64() * 1e3)
            .collect();
        rtts.sort_by(f64::total_cmp);
        r.rtt_ms = (!rtts.is_empty()).then(|| rtts[rtts.len() / 2]);
        r.rtt_max_ms = rtts.last().copied();
    }
}

/// Submit → verified against the requester–worker round-trip times of the verified jobs.
fn round_trips_of(records: &[JobRecord]) -> RoundTrips {
    let verified: Vec<&JobRecord> = records
        .iter()
        .filter(|r| r.phase == "verified" && r.rtt_ms.is_some())
        .collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            0.0
        } else {
            v[v.len() / 2]
        }
    };
    let latency_p50_ms = median(verified.iter().map(|r| r.latency_ms).collect());
    let rtt_p50_ms = median(verified.iter().filter_map(|r| r.rtt_ms).collect());
    let rtt_max_p50_ms = median(verified.iter().filter_map(|r| r.rtt_max_ms).collect());
    RoundTrips {
        jobs: verified.len(),
        latency_p50_ms,
        rtt_p50_ms,
        ratio: if rtt_p50_ms > 0.0 {
            latency_p50_ms / rtt_p50_ms
        } else {
            0.0
        },
        rtt_max_p50_ms,
        per_job_ratio_p50: median(
            verified
                .iter()
                .filter_map(|r| r.rtt_ms.filter(|t| *t > 0.0).map(|t| r.latency_ms / t))
                .collect(),
        ),
    }
}

/// A job ready to submit, with the reference run's output CID and status.
struct Planned {
    index: usize,
    requester: usize,
    kind: &'static str,
    request: JobRequest,
    want_cid: String,
    want_status: String,
}

enum Fault {
    Crash {
        member: usize,
        down: Duration,
    },
    Sybils(usize),
    /// The members in `side` and the others can no longer reach each other for `length`.
    Partition {
        side: Vec<usize>,
        length: Duration,
    },
    Heal,
}

/// Submits one requester's jobs, `in_flight` at a time, and records how each ended.
async fn drive(
    market: Market,
    list: Vec<Planned>,
    in_flight: usize,
    t0: Instant,
    on_done: impl Fn() + Send + Sync + 'static,
) -> Vec<(usize, JobRecord)> {
    let on_done = Arc::new(on_done);
    let window = Arc::new(Window::new(in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    for Planned {
        index: j,
        requester,
        kind,
        request: req,
        want_cid,
        want_status,
    } in list
    {
        let permit = window
            .gate
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let (market, on_done, window) = (market.clone(), on_done.clone(), window.clone());
        tasks.spawn(async move {
            let submitted = t0.elapsed().as_secs_f64();
            let sent = Instant::now();
            let timeout = req.timeout + Duration::from_secs(10);
            let record = match market.submit(req).await {
                Ok(id) => match market.wait(&id, timeout).await {
                    Ok(st) => JobRecord {
                        job_id: st.id.clone(),
                        kind,
                        wrong: st.phase == "verified"
                            && (st.output.as_deref() != Some(want_cid.as_str())
                                || st.status.as_deref() != Some(want_status.as_str())),
                        phase: st.phase,
                        reason: st.reason,
                        submitted_s: submitted,
                        latency_ms: sent.elapsed().as_secs_f64() * 1e3,
                        fuel_used: st.fuel_used.unwrap_or(0),
                        requester,
                        rtt_ms: None,
                        rtt_max_ms: None,
                        agreeing: st.agreeing,
                    },
                    Err(e) => JobRecord {
                        job_id: id.to_hex(),
                        ..failed(kind, requester, submitted, sent, format!("lost track: {e}"))
                    },
                },
                Err(e) => failed(
                    kind,
                    requester,
                    submitted,
                    sent,
                    format!("not submitted: {e}"),
                ),
            };
            window.job_over(permit, &record.phase);
            on_done();
            (j, record)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(r) = r {
            out.push(r);
        }
    }
    out
}

/// A requester's admission window (TCP's slow start, for jobs): it starts with [`Window::START`] jobs in
/// flight, grows by one with each verified job up to the scenario's `in_flight`, and shrinks by one with each
/// expired job (never below one). A whole mesh starting at once is CPU-bound for its first seconds; submitting
/// every requester's full share of jobs into that made every job late, and late jobs made more work (re-announced,
/// re-assigned) until none finished.
struct Window {
    gate: Arc<tokio::sync::Semaphore>,
    size: std::sync::Mutex<usize>,
    max: usize,
}

impl Window {
    const START: usize = 2;

    fn new(max: usize) -> Window {
        let start = Self::START.min(max).max(1);
        Window {
            gate: Arc::new(tokio::sync::Semaphore::new(start)),
            size: std::sync::Mutex::new(start),
            max: max.max(1),
        }
    }

    /// A job ended in `phase`: its slot is given back, and the window grows or shrinks.
    fn job_over(&self, permit: tokio::sync::OwnedSemaphorePermit, phase: &str) {
        let mut size = self.size.lock().unwrap_or_else(|e| e.into_inner());
        match phase {
            "verified" if *size < self.max => {
                *size += 1;
                self.gate.add_permits(1);
            }
            "expired" if *size > 1 => {
                *size -= 1;
                permit.forget();
                return;
            }
            _ => {}
        }
        drop(permit);
    }
}

fn failed(
    kind: &'static str,
    requester: usize,
    submitted_s: f64,
    sent: Instant,
    reason: String,
) -> JobRecord {
    JobRecord {
        job_id: String::new(),
        kind,
        phase: "failed".into(),
        reason,
        submitted_s,
        latency_ms: sent.elapsed().as_secs_f64() * 1e3,
        fuel_used: 0,
        wrong: false,
        requester,
        rtt_ms: None,
        rtt_max_ms: None,
        agreeing: Vec::new(),
    }
}

fn outcome_of(
    records: &[JobRecord],
    byzantine: Vec<usize>,
    crashing: Vec<usize>,
    slow: Vec<usize>,
) -> Outcome {
    let mut o = Outcome {
        jobs: records.len(),
        by_phase: BTreeMap::new(),
        by_kind: BTreeMap::new(),
        failed_by_reason: BTreeMap::new(),
        wrong_results_accepted: records.iter().filter(|r| r.wrong).count(),
        fuel_used: 0,
        byzantine,
        crashing,
        slow,
        saboteurs: Vec::new(),
        sybil_forgers: Vec::new(),
    };
    for r in records {
        *o.by_phase.entry(r.phase.clone()).or_default() += 1;
        *o.by_kind
            .entry(r.kind.to_string())
            .or_default()
            .entry(r.phase.clone())
            .or_default() += 1;
        if r.phase == "verified" {
            o.fuel_used += r.fuel_used;
        } else {
            *o.failed_by_reason.entry(r.reason.clone()).or_default() += 1;
        }
    }
    o
}

/// How long after a heal [`reconnected`] waits at most.
const HEAL_WATCH: Duration = Duration::from_secs(60);

/// Waits until the running members form one connected graph again (every one reachable from every other
/// through connections: gossip can cross); returns how long that took (`None`: not within [`HEAL_WATCH`]).
/// Not "everyone connected to everyone": nodes keep only a few dozen peers each (the connection manager).
async fn reconnected(nodes: Vec<Mesh>) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < HEAL_WATCH {
        if crate::cluster::one_component(&nodes).await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

fn network_of(cluster: &Cluster, partition_healed_s: Option<f64>) -> NetworkSummary {
    use std::sync::atomic::Ordering::Relaxed;
    let (mut bytes, mut blocks, mut direct, mut dht) = (0, 0, 0, 0);
    let (mut opened, mut trimmed) = (0, 0);
    for m in &cluster.members {
        let st = m.node.stats();
        bytes += st.bitswap_bytes.load(Relaxed);
        blocks += st.bitswap_blocks.load(Relaxed);
        direct += st.direct_sent.load(Relaxed);
        dht += st.dht_queries.load(Relaxed);
        opened += st.connections_opened.load(Relaxed);
        trimmed += st.peers_trimmed.load(Relaxed);
    }
    NetworkSummary {
        gossip: cluster.gossip_trace().report(),
        partition_healed_s,
        bitswap_bytes: bytes,
        bitswap_blocks: blocks,
        direct_requests: direct,
        dht_queries: dht,
        connections_opened: opened,
        peers_trimmed: trimmed,
        gossip_within_4s: cluster.gossip_trace().share_within(Duration::from_secs(4)),
    }
}

fn settlement_of(
    cluster: &Cluster,
    chain: &SimChain,
    deposits: U256,
    requesters: usize,
) -> SettlementSummary {
    let f = |v: U256| -> f64 { v.into() };
    let index: HashMap<_, usize> = cluster
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.node.peer_id(), i))
        .collect();
    let by_text: HashMap<String, usize> = index.iter().map(|(p, i)| (p.to_string(), *i)).collect();
    let mut earned: HashMap<usize, f64> = HashMap::new();
    let mut owed: HashMap<usize, f64> = HashMap::new();
    let mut received: HashMap<usize, f64> = HashMap::new();
    let (mut committed, mut paid, mut shared, mut pending, mut gas, mut payments) =
        (0, 0, 0, 0, 0u64, 0usize);
    let mut unsettled = 0u128;
    for (i, m) in cluster.members.iter().enumerate() {
        let Some(st) = &m.settler else { continue };
        for r in st.records().unwrap_or_default() {
            gas += r.gas_used;
            match &r.side {
                Side::Payer { payees } => {
                    if r.status == LotteryStatus::Abandoned {
                        continue;
                    }
                    committed += 1;
                    match r.status {
                        LotteryStatus::Paid => paid += 1,
                        LotteryStatus::Shared | LotteryStatus::Reclaimed => shared += 1,
                        _ => pending += 1,
                    }
                    for p in payees {
                        if let Some(&w) = index.get(&p.peer) {
                            *owed.entry(w).or_default() += p.wei as f64;
                        }
                    }
                }
                Side::Payee { .. } if r.status == LotteryStatus::Claimed => {
                    *received.entry(i).or_default() += f(r.lottery.description.total);
                }
                Side::Payee { leaf, .. } if r.status == LotteryStatus::Shared => {
                    if let Some(l) = r.lottery.leaves.get(*leaf) {
                        *received.entry(i).or_default() += f(l.length);
                    }
                }
                Side::Payee { .. } => {}
            }
        }
        if i < requesters {
            for (peer, wei) in m.market.db().ledger().unwrap_or_default() {
                unsettled += wei;
                if let Some(&w) = index.get(&peer) {
                    *owed.entry(w).or_default() += wei as f64;
                }
            }
            for job in m.market.list().unwrap_or_default() {
                payments += job.agreeing.len();
                for w in &job.agreeing {
                    if let Some(&w) = by_text.get(w) {
                        *earned.entry(w).or_default() +=
                            owed_wei(job.fuel_used.unwrap_or(0), PRICE) as f64;
                    }
                }
            }
        }
    }
    let contract_balance = chain.chain.balance(chain.contract);
    let workers = (requesters..cluster.members.len())
        .map(|i| WorkerPay {
            member: i,
            honest: cluster.members[i]
                .worker
                .as_ref()
                // A saboteur is paid for the right results it returns, as an honest worker is.
                .is_some_and(|w| {
                    matches!(
                        w.conduct,
                        Conduct::Honest | Conduct::Slow { .. } | Conduct::Saboteur(_)
                    )
                }),
            earned_wei: earned.get(&i).copied().unwrap_or(0.0),
            owed_wei: owed.get(&i).copied().unwrap_or(0.0),
            received_wei: received.get(&i).copied().unwrap_or(0.0),
        })
        .collect();
    SettlementSummary {
        lotteries_committed: committed,
        lotteries_paid: paid,
        lotteries_shared: shared,
        lotteries_pending: pending,
        gas_used: gas,
        payments,
        gas_plain_transfers: payments as u64 * 21_000,
        deposits_wei: deposits.to_string(),
        contract_balance_wei: contract_balance.to_string(),
        no_money_lost: contract_balance == deposits,
        owed_unsettled_wei: unsettled.to_string(),
        workers,
    }
}

/// Peak resident set size of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::Window;

    /// Takes a slot and ends its job in `phase`.
    fn end_one(window: &Window, phase: &str) {
        let permit = window
            .gate
            .clone()
            .try_acquire_owned()
            .expect("a free slot");
        window.job_over(permit, phase);
    }

    #[test]
    fn the_admission_window_starts_small_grows_with_verified_jobs_and_shrinks_with_expired_ones() {
        let window = Window::new(4);
        assert_eq!(window.gate.available_permits(), 2);
        end_one(&window, "verified");
        assert_eq!(window.gate.available_permits(), 3);
        for _ in 0..5 {
            end_one(&window, "verified");
        }
        assert_eq!(
            window.gate.available_permits(),
            4,
            "never above the maximum"
        );
        for _ in 0..10 {
            end_one(&window, "expired");
        }
        assert_eq!(window.gate.available_permits(), 1, "never below one");
        end_one(&window, "failed");
        assert_eq!(
            window.gate.available_permits(),
            1,
            "other endings leave it as it is"
        );
        assert_eq!(Window::new(1).gate.available_permits(), 1);
    }
}
