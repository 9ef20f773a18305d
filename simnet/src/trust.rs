//! Adversaries and the cost of verification (issue 21): saboteurs that turn bad once trusted, a crowd of fresh
//! forging identities, worker stake on the embedded chain, and what verification cost — executions per accepted
//! job (spot-checks included) overall, in the warm-up and in the steady state, wrong results accepted with a
//! 95 % upper bound on their rate, and the requesters' mean credibility over the run.

use std::collections::HashMap;

use jobmesh_node::market::verification::{VerificationError, VerificationPolicy};
use jobmesh_node::market::{Conduct, Saboteur};
use serde::Serialize;

use jobmesh_contracts::alloy::primitives::{keccak256, Address, U256};
use jobmesh_contracts::embedded::EmbeddedSettlement;
use jobmesh_contracts::stake::{node_id, StakeClient, StakeParams};

use crate::scenario::JobRecord;
use crate::{Cluster, ClusterError, SimChain};

/// The adversaries of a run beside the byzantine, crashing, slow and silent workers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Adversaries {
    /// Share of the workers (0–1) that are saboteurs: honest until a requester has paid them for
    /// `trusted_after` results, then wrong on a seeded `sabotage_rate` of its jobs.
    pub saboteurs: f64,
    /// Share of a trusting requester's jobs a saboteur cheats on (0–1).
    pub sabotage_rate: f64,
    /// Results a requester must have paid a saboteur for before it cheats that requester.
    pub trusted_after: u64,
    /// Saboteurs and byzantine workers collude: they all return one common wrong output (and saboteurs cheat
    /// on the same jobs).
    pub collude: bool,
    /// Fresh identities present from the start (before any requester knows anyone) that offer on every job and
    /// return the colluders' common wrong output: the cold-start Sybil crowd. Never staked.
    pub sybil_forgers: usize,
    /// Every worker but the Sybil crowd locks [`STAKE_WEI`] in the stake contract, deployed on the simulator's
    /// chain, and its offers say so.
    pub stake: bool,
}

impl Default for Adversaries {
    fn default() -> Self {
        Self {
            saboteurs: 0.0,
            sabotage_rate: 0.3,
            trusted_after: 10,
            collude: false,
            sybil_forgers: 0,
            stake: false,
        }
    }
}

/// What each staked worker locks: 0.1 ETH (ten times the default minimum a requester counts).
pub const STAKE_WEI: u128 = 100_000_000_000_000_000;

impl Adversaries {
    /// Checks the shares.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("--saboteurs", self.saboteurs),
            ("--sabotage-rate", self.sabotage_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be a share between 0 and 1"));
            }
        }
        Ok(())
    }

    /// The conduct of a saboteur of this run (seeded from the scenario's seed: every saboteur picks from it).
    pub fn saboteur(&self, seed: u64) -> Conduct {
        Conduct::Saboteur(Saboteur {
            trusted_after: self.trusted_after,
            rate_ppm: (self.sabotage_rate * 1e6).round() as u32,
            seed,
            collude: self.collude,
        })
    }

    /// The conduct of a byzantine worker: the common forged output when colluding, its own otherwise.
    pub fn byzantine(&self) -> Conduct {
        if self.collude {
            Conduct::WrongOutput
        } else {
            Conduct::Faulty
        }
    }
}

/// Deploys the stake contract (`contracts/sol/Stake.sol`) on the simulator's chain, from the account that
/// deployed the settlement contract.
pub fn deploy_stake(chain: &SimChain) -> Result<StakeClient<EmbeddedSettlement>, ClusterError> {
    let deployer = Address::from_word(keccak256(b"jobmesh simnet deployer"));
    StakeClient::deploy_embedded(chain.chain.clone(), deployer, StakeParams::default()).map_err(
        |e| ClusterError::Start {
            index: 0,
            what: format!("cannot deploy the stake contract: {e}"),
        },
    )
}

/// Every member whose worker policy claims a stake locks it in `stake`, bound to its PeerId, from its own
/// account (the one its settlement uses); returns how many did.
pub async fn lock_stakes(
    stake: &StakeClient<EmbeddedSettlement>,
    cluster: &Cluster,
) -> Result<usize, ClusterError> {
    let mut locked = 0;
    for (index, m) in cluster.members.iter().enumerate() {
        let Some(wei) = m.worker.as_ref().and_then(|w| w.stake_wei) else {
            continue;
        };
        let peer = m.node.peer_id().to_bytes();
        let account = Address::from_word(keccak256(&peer));
        stake
            .as_sender(account)
            .stake(node_id(&peer), U256::from(wei))
            .await
            .map_err(|e| ClusterError::Start {
                index,
                what: format!("cannot stake: {e}"),
            })?;
        locked += 1;
    }
    Ok(locked)
}

/// Samples the requesters' mean credibility of the workers every [`SAMPLE_EVERY`] while the jobs run.
pub struct CredibilitySampler {
    task: tokio::task::JoinHandle<Vec<CredibilitySample>>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// How often [`CredibilitySampler`] samples.
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

impl CredibilitySampler {
    /// Starts sampling the first `requesters` members' view of every worker member, under `policy`'s
    /// assumptions (the default credibility parameters under other policies).
    pub fn spawn(cluster: &Cluster, requesters: usize, policy: &VerificationPolicy) -> Self {
        let assumptions = policy
            .credibility()
            .copied()
            .unwrap_or_default()
            .assumptions();
        let markets: Vec<_> = cluster.members[..requesters]
            .iter()
            .map(|m| m.market.clone())
            .collect();
        let workers: Vec<_> = cluster
            .members
            .iter()
            .filter(|m| m.worker.is_some())
            .map(|m| m.node.peer_id())
            .collect();
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let started = std::time::Instant::now();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let (mut sum, mut n) = (0.0, 0usize);
                for m in &markets {
                    for w in &workers {
                        let ev = m.db().evidence(w).unwrap_or_default();
                        sum += assumptions.worker_credibility(&ev);
                        n += 1;
                    }
                }
                samples.push(CredibilitySample {
                    at_s: started.elapsed().as_secs_f64(),
                    mean: if n == 0 { 0.0 } else { sum / n as f64 },
                });
                tokio::select! {
                    _ = tokio::time::sleep(SAMPLE_EVERY) => {}
                    _ = stopped.changed() => return samples,
                }
            }
        });
        CredibilitySampler { task, stop }
    }

    /// Stops sampling; the samples taken.
    pub async fn finish(self) -> Vec<CredibilitySample> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// Why a `--verification` value was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadVerification {
    /// Not one of the policy names.
    #[error("--verification must be majority, m-first, m-first:M or credibility, not {0:?}")]
    Name(String),
    /// A parameter out of range.
    #[error(transparent)]
    Range(#[from] VerificationError),
}

/// The requesters' policy named on the command line: `majority` (of `replicas`), `m-first` (M from `f` and
/// `epsilon`, plain M-first's), `m-first:M`, or `credibility` (to `epsilon` under `f`, spot-checking at `q`).
pub fn parse_verification(
    name: &str,
    replicas: u8,
    epsilon: f64,
    f: f64,
    q: f64,
) -> Result<VerificationPolicy, BadVerification> {
    let policy = match name {
        "majority" => VerificationPolicy::Majority { replicas },
        "m-first" | "credibility" => VerificationPolicy::from_name(name, f, q, epsilon)?,
        _ => VerificationPolicy::MFirst {
            m: name
                .strip_prefix("m-first:")
                .and_then(|m| m.parse().ok())
                .ok_or_else(|| BadVerification::Name(name.to_string()))?,
        },
    };
    policy.validate()?;
    Ok(policy)
}

/// What verification cost, from the workers' own records of what they ran.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerificationCost {
    /// Runs of every job by every worker (each replica that ran, spot-checks included).
    pub executions: u64,
    /// Of those, runs of jobs no requester submitted: spot-checks (answers the requester knew).
    pub spot_checks: u64,
    /// Fuel the spot-checks burned.
    pub spot_check_fuel: u64,
    /// What requesters owe for the spot-checks, in wei.
    pub spot_check_wei: u128,
    /// Verified jobs.
    pub accepted: usize,
    /// `executions / accepted`: the goal is at most 2.4 with credibility.
    pub executions_per_accepted_job: f64,
    /// The same over the warm-up (every job before the steady state).
    pub warm_up: Window,
    /// The same over the steady state: the last 1,000 jobs (the last half when fewer than 2,000 ran).
    pub steady_state: Window,
    /// Verified jobs whose output differs from the reference run.
    pub wrong_results_accepted: usize,
    /// One-sided 95 % Clopper–Pearson upper bound on the rate of wrong accepted results.
    pub wrong_rate_upper_95: f64,
    /// Executions per accepted job in consecutive slices of the run (by submission order).
    pub timeline: Vec<Slice>,
    /// The requesters' mean credibility of the workers they hold evidence on, sampled during the run.
    pub credibility: Vec<CredibilitySample>,
}

/// One sample of the requesters' mean credibility.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CredibilitySample {
    /// Seconds since the first submission.
    pub at_s: f64,
    /// Mean over requesters and the workers each holds evidence on.
    pub mean: f64,
}

/// A stretch of the run's jobs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Window {
    /// Jobs in it.
    pub jobs: usize,
    /// Verified among them.
    pub accepted: usize,
    /// Executions of its jobs, plus the spot-checks assigned while it ran.
    pub executions: u64,
    /// Spot-checks among the executions.
    pub spot_checks: u64,
    /// `executions / accepted`.
    pub executions_per_accepted_job: f64,
    /// Wrong results accepted in it.
    pub wrong_results_accepted: usize,
}

/// One slice of the timeline.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Slice {
    /// Index of its first job.
    pub first_job: usize,
    /// Executions per accepted job in it.
    pub executions_per_accepted_job: f64,
}

/// One worker's run: the job and, for a spot-check, when it was assigned (its commitment deadline, ms).
struct Run {
    job: String,
    commit_by_ms: u64,
    fuel: u64,
    owed_wei: u128,
}

/// Every run the workers recorded.
fn runs(cluster: &Cluster) -> Vec<Run> {
    let mut out = Vec::new();
    for m in cluster.members.iter().filter(|m| m.worker.is_some()) {
        for (id, job) in m.market.db().worker_jobs().unwrap_or_default() {
            let Some((_, fuel, ..)) = &job.result else {
                continue;
            };
            out.push(Run {
                job: id.to_hex(),
                commit_by_ms: job.commit_by_ms,
                fuel: *fuel,
                owed_wei: job.receipt.map_or(0, |(ok, wei)| if ok { wei } else { 0 }),
            });
        }
    }
    out
}

/// Jobs in the steady state: the last 1,000, or the last half of a shorter run.
pub fn steady_jobs(jobs: usize) -> usize {
    1_000.min(jobs / 2)
}

/// What verification cost in this run. `started_ms` is the wall clock (ms since the epoch) at the first
/// submission: records' times are relative to it.
pub fn cost_of(cluster: &Cluster, records: &[JobRecord], started_ms: u64) -> VerificationCost {
    let mut per_job: HashMap<&str, u64> = HashMap::new();
    let runs = runs(cluster);
    let mut spot: Vec<&Run> = Vec::new();
    let submitted: std::collections::HashSet<&str> =
        records.iter().map(|r| r.job_id.as_str()).collect();
    for r in &runs {
        if submitted.contains(r.job.as_str()) {
            *per_job.entry(r.job.as_str()).or_default() += 1;
        } else {
            spot.push(r);
        }
    }
    let steady_from = records.len() - steady_jobs(records.len());
    let window = |from: usize, to: usize| -> Window {
        let jobs = &records[from..to];
        let t0 = jobs
            .iter()
            .map(|r| started_ms + (r.submitted_s * 1e3) as u64)
            .min()
            .unwrap_or(u64::MAX);
        let t1 = if to == records.len() {
            u64::MAX
        } else {
            started_ms + (records[to].submitted_s * 1e3) as u64
        };
        let spot_checks = spot
            .iter()
            .filter(|s| (t0..t1).contains(&s.commit_by_ms))
            .count() as u64;
        let ran: u64 = jobs
            .iter()
            .map(|r| per_job.get(r.job_id.as_str()).copied().unwrap_or(0))
            .sum();
        let accepted = jobs.iter().filter(|r| r.phase == "verified").count();
        Window {
            jobs: jobs.len(),
            accepted,
            executions: ran + spot_checks,
            spot_checks,
            executions_per_accepted_job: ratio(ran + spot_checks, accepted),
            wrong_results_accepted: jobs.iter().filter(|r| r.wrong).count(),
        }
    };
    let accepted = records.iter().filter(|r| r.phase == "verified").count();
    let wrong = records.iter().filter(|r| r.wrong).count();
    let executions = runs.len() as u64;
    let slice = (records.len() / 20).max(1);
    VerificationCost {
        executions,
        spot_checks: spot.len() as u64,
        spot_check_fuel: spot.iter().map(|s| s.fuel).sum(),
        spot_check_wei: spot.iter().map(|s| s.owed_wei).sum(),
        accepted,
        executions_per_accepted_job: ratio(executions, accepted),
        warm_up: window(0, steady_from),
        steady_state: window(steady_from, records.len()),
        wrong_results_accepted: wrong,
        wrong_rate_upper_95: clopper_pearson_upper(wrong as u64, accepted as u64, 0.05),
        timeline: (0..records.len())
            .step_by(slice)
            .map(|from| Slice {
                first_job: from,
                executions_per_accepted_job: window(from, (from + slice).min(records.len()))
                    .executions_per_accepted_job,
            })
            .collect(),
        credibility: Vec::new(),
    }
}

fn ratio(n: u64, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// The one-sided `1 − alpha` Clopper–Pearson upper bound on a rate after `k` events in `n` trials: the `p` at
/// which seeing at most `k` has probability `alpha` (`1 − alpha^(1/n)` for `k = 0`, about 3/n at 95 %: the rule
/// of three). 1 for `n = 0`.
pub fn clopper_pearson_upper(k: u64, n: u64, alpha: f64) -> f64 {
    if n == 0 || k >= n {
        return 1.0;
    }
    if k == 0 {
        return 1.0 - alpha.powf(1.0 / n as f64);
    }
    // P(X ≤ k; n, p) falls as p grows: bisect for the p where it equals alpha.
    let (mut lo, mut hi) = (k as f64 / n as f64, 1.0);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if binomial_cdf(k, n, mid) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// P(X ≤ k) for X ~ Binomial(n, p), summed in logs.
fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut log_choose = 0.0; // ln C(n, 0)
    let mut sum = 0.0;
    for i in 0..=k {
        if i > 0 {
            log_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        sum += (log_choose + i as f64 * lp + (n - i) as f64 * lq).exp();
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clopper_pearson_matches_the_rule_of_three_and_published_values() {
        // k = 0: 1 − 0.05^(1/n) ≈ 3/n.
        let u = clopper_pearson_upper(0, 3_000, 0.05);
        assert!((u - 9.98e-4).abs() < 1e-5, "{u}");
        // k = 1, n = 100: the one-sided 95 % upper bound is 0.0466 (tables of the exact binomial bound).
        let u = clopper_pearson_upper(1, 100, 0.05);
        assert!((u - 0.0466).abs() < 2e-4, "{u}");
        // k = 5, n = 1000: 0.01051.
        let u = clopper_pearson_upper(5, 1_000, 0.05);
        assert!((u - 0.0105).abs() < 2e-4, "{u}");
        assert_eq!(clopper_pearson_upper(0, 0, 0.05), 1.0);
    }

    #[test]
    fn verification_flags_parse_and_nonsense_is_refused() {
        let parse = |name| parse_verification(name, 3, 1e-3, 0.1, 0.1);
        assert_eq!(
            parse("majority"),
            Ok(VerificationPolicy::Majority { replicas: 3 })
        );
        assert_eq!(parse("m-first:4"), Ok(VerificationPolicy::MFirst { m: 4 }));
        assert_eq!(parse("m-first"), Ok(VerificationPolicy::MFirst { m: 5 }));
        let c = parse_verification("credibility", 3, 1e-4, 0.2, 0.1).unwrap();
        assert_eq!(
            c.credibility()
                .map(|p| (p.error_rate, p.assumed_fault_rate)),
            Some((1e-4, 0.2))
        );
        for bad in ["m-first:0", "m-first:x", "vote", "m-first:99"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_steady_state_is_the_last_thousand_jobs_or_the_last_half() {
        assert_eq!(steady_jobs(3_000), 1_000);
        assert_eq!(steady_jobs(1_000), 500);
        assert_eq!(steady_jobs(1), 0);
    }
}
