//! How a requester decides that a job's result is right (issue 21; docs/protocol.md, "Credibility"): the node's
//! [`VerificationPolicy`] and the per-job rule built on the arithmetic of [`crate::credibility`].
//!
//! - [`VerificationPolicy::Majority`] — today's behaviour and the default: a fixed number of replicas, a strict
//!   majority of them agreeing.
//! - [`VerificationPolicy::MFirst`] — plain M-first voting: add replicas until one output has `m` votes.
//! - [`VerificationPolicy::Credibility`] — Sarmenta's credibility-based voting with spot-checks: start with as
//!   few replicas as the assigned workers' credibility allows, add one while the best agreeing group's
//!   credibility is below `1 − ε`.
//!
//! Pure: no clock, network or disk.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use libp2p_identity::PeerId;

use crate::credibility::{
    self, Assumptions, CredibilityError, DEFAULT_ERROR_RATE, DEFAULT_MIN_STAKE_WEI,
    DEFAULT_SABOTEUR_SHARE, DEFAULT_UNSTAKED_SHARE,
};
use crate::messages::{JobSpec, Reveal};
use crate::tally::Verdict;

/// Replicas of the default [`VerificationPolicy::Majority`] (today's default).
pub const DEFAULT_REPLICAS: u8 = 3;
/// The default spot-check rate `q`: one assignment in ten is a spot-check (Sarmenta's experiments use
/// `q = 0.1`). It costs about 0.11 extra executions per real one (`q/(1 − q)`), and at the rate a busy worker is
/// assigned it earns the few passed spot-checks that let two staked workers agree at ε = 10⁻³ (3 each:
/// `1 − 0.1/(0.9·3·e) = 0.986`, two of them `1 − 2.6·10⁻⁴`); one worker alone needs 41.
pub const DEFAULT_SPOT_CHECK_RATE: f64 = 0.1;
pub use crate::messages::{error_rate_from_ppb, MAX_ERROR_RATE, MIN_ERROR_RATE};
/// The largest spot-check rate (a requester spot-checking every assignment does no real work).
pub const MAX_SPOT_CHECK_RATE: f64 = 0.5;
/// The most replicas M-first voting may require.
pub const MAX_M: u8 = crate::messages::MAX_REPLICAS;

/// Why a verification setting was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerificationError {
    /// The credibility arithmetic refused an input (a share or a rate out of range).
    #[error(transparent)]
    Credibility(#[from] CredibilityError),
    /// A job's target error rate outside [`MIN_ERROR_RATE`]..=[`MAX_ERROR_RATE`].
    #[error("error rate {0} is not between {MIN_ERROR_RATE} and {MAX_ERROR_RATE}")]
    ErrorRate(f64),
    /// A spot-check rate outside `0..=`[`MAX_SPOT_CHECK_RATE`].
    #[error("spot-check rate {0} is not between 0 and {MAX_SPOT_CHECK_RATE}")]
    SpotCheckRate(f64),
    /// An assumed saboteur share below 0.05 (the lowest the measurements use; the default is 0.1), or not below ½.
    #[error("assumed fault rate {0} is not in [0.05, 0.5)")]
    FaultRate(f64),
    /// A replica or vote count out of `1..=15`.
    #[error("{what} must be between 1 and {MAX_M}, not {value}")]
    Count {
        /// Which count.
        what: &'static str,
        /// Its value.
        value: u8,
    },
    /// An unknown policy name.
    #[error("unknown verification {0:?} (majority, m-first or credibility)")]
    UnknownPolicy(String),
}

/// The parameters of credibility-based verification.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CredibilityParams {
    /// The node's default target error rate ε of a job (a job may carry its own): [`DEFAULT_ERROR_RATE`].
    pub error_rate: f64,
    /// The assumed upper bound `f` on the share of saboteurs among staked workers: 0.1 by default.
    pub assumed_fault_rate: f64,
    /// The probability `q` that an assignment is a spot-check: [`DEFAULT_SPOT_CHECK_RATE`].
    pub spot_check_rate: f64,
    /// With no record of anyone, give the majority of a job's credibility only to staked workers: an unstaked
    /// identity then has the prior share ½ (no evidence either way); without it, every identity gets `f`.
    pub stake_required_for_cold_start: bool,
    /// The smallest verified stake that counts (0.01 ETH by default).
    pub min_stake_wei: u128,
}

impl Default for CredibilityParams {
    fn default() -> Self {
        Self {
            error_rate: DEFAULT_ERROR_RATE,
            assumed_fault_rate: DEFAULT_SABOTEUR_SHARE,
            spot_check_rate: DEFAULT_SPOT_CHECK_RATE,
            stake_required_for_cold_start: true,
            min_stake_wei: DEFAULT_MIN_STAKE_WEI,
        }
    }
}

impl CredibilityParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), VerificationError> {
        check_error_rate(self.error_rate)?;
        check_fault_rate(self.assumed_fault_rate)?;
        if !(0.0..=MAX_SPOT_CHECK_RATE).contains(&self.spot_check_rate) {
            return Err(VerificationError::SpotCheckRate(self.spot_check_rate));
        }
        Ok(())
    }

    /// The assumptions the credibility arithmetic works under (blacklisting on: a failed spot-check excludes a
    /// worker from this requester's jobs for good).
    pub fn assumptions(&self) -> Assumptions {
        Assumptions {
            f: self.assumed_fault_rate,
            f_unstaked: if self.stake_required_for_cold_start {
                DEFAULT_UNSTAKED_SHARE.max(self.assumed_fault_rate)
            } else {
                self.assumed_fault_rate
            },
            blacklisting: true,
            min_stake_wei: self.min_stake_wei,
        }
    }
}

/// Checks a job's target error rate.
pub fn check_error_rate(epsilon: f64) -> Result<f64, VerificationError> {
    if (MIN_ERROR_RATE..=MAX_ERROR_RATE).contains(&epsilon) {
        Ok(epsilon)
    } else {
        Err(VerificationError::ErrorRate(epsilon))
    }
}

/// Checks an assumed saboteur share: never below 0.05 (the lowest of the curve; the default is 0.1),
/// below ½ (at ½ agreement proves nothing).
pub fn check_fault_rate(f: f64) -> Result<f64, VerificationError> {
    if (0.05..0.5).contains(&f) {
        Ok(f)
    } else {
        Err(VerificationError::FaultRate(f))
    }
}

/// A target error rate in parts per billion, the form a job spec carries it in (integers keep the spec's
/// encoding, and so its id, exact).
pub fn error_rate_to_ppb(epsilon: f64) -> Result<u32, VerificationError> {
    Ok((check_error_rate(epsilon)? * 1e9).round() as u32)
}

/// How a node's requester verifies results.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum VerificationPolicy {
    /// A strict majority of a fixed number of replicas (a job's own `replicas` overrides `replicas`).
    Majority {
        /// Replicas of a job that names none.
        replicas: u8,
    },
    /// Plain M-first voting: replicas are added until one output has `m` votes.
    MFirst {
        /// Votes needed.
        m: u8,
    },
    /// Credibility-based voting with spot-checks and stake.
    Credibility(CredibilityParams),
}

impl Default for VerificationPolicy {
    /// Today's behaviour, until the credibility policy is proven: a majority of [`DEFAULT_REPLICAS`].
    fn default() -> Self {
        VerificationPolicy::Majority {
            replicas: DEFAULT_REPLICAS,
        }
    }
}

impl VerificationPolicy {
    /// The policy named `name` (`majority`, `m-first`, `credibility`) with saboteur share `f`, spot-check rate
    /// `q` and default error rate `epsilon`; `m-first` gets the M that meets `epsilon` ([`plain_m_first_votes`]).
    pub fn from_name(
        name: &str,
        f: f64,
        q: f64,
        epsilon: f64,
    ) -> Result<VerificationPolicy, VerificationError> {
        let policy = match name {
            "majority" => VerificationPolicy::default(),
            "m-first" => VerificationPolicy::MFirst {
                m: plain_m_first_votes(check_fault_rate(f)?, check_error_rate(epsilon)?)?,
            },
            "credibility" => VerificationPolicy::Credibility(CredibilityParams {
                error_rate: epsilon,
                assumed_fault_rate: f,
                spot_check_rate: q,
                ..CredibilityParams::default()
            }),
            other => return Err(VerificationError::UnknownPolicy(other.to_string())),
        };
        policy.validate()?;
        Ok(policy)
    }

    /// The policy's name on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            VerificationPolicy::Majority { .. } => "majority",
            VerificationPolicy::MFirst { .. } => "m-first",
            VerificationPolicy::Credibility(_) => "credibility",
        }
    }

    /// Checks the policy's parameters.
    pub fn validate(&self) -> Result<(), VerificationError> {
        let count = |what, value: u8| {
            if (1..=MAX_M).contains(&value) {
                Ok(())
            } else {
                Err(VerificationError::Count { what, value })
            }
        };
        match self {
            VerificationPolicy::Majority { replicas } => count("replicas", *replicas),
            VerificationPolicy::MFirst { m } => count("m", *m),
            VerificationPolicy::Credibility(p) => p.validate(),
        }
    }

    /// The credibility parameters, under the credibility policy.
    pub fn credibility(&self) -> Option<&CredibilityParams> {
        match self {
            VerificationPolicy::Credibility(p) => Some(p),
            _ => None,
        }
    }
}

/// The M of plain M-first voting (accept the first output M workers return, even after disagreements) that
/// meets `epsilon` unconditionally against colluding saboteurs of share `f`: the least M with
/// [`credibility::m_first_error_rate`]` ≤ ε` — 5 at f = 0.1, ε = 10⁻³ (M = 4 errs 2.7·10⁻³). The unanimous
/// form, [`credibility::m_first_votes`], needs only 4, but accepting only unanimous groups is credibility-based
/// voting without spot-checks, not M-first voting.
pub fn plain_m_first_votes(f: f64, epsilon: f64) -> Result<u8, VerificationError> {
    (1..=MAX_M)
        .find(|&m| credibility::m_first_error_rate(f, u32::from(m)) <= epsilon)
        .ok_or(VerificationError::Credibility(
            CredibilityError::Unreachable { f, epsilon },
        ))
}

/// How one job's result is decided: the node's [`VerificationPolicy`] applied to the job (its own error rate
/// first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobRule {
    /// A strict majority of `spec.replicas` (today's rule).
    #[default]
    Majority,
    /// Plain M-first voting.
    MFirst {
        /// Votes needed.
        m: u8,
    },
    /// Credibility-based voting at this target error rate (parts per billion).
    Credibility {
        /// ε in parts per billion.
        error_rate_ppb: u32,
    },
}

impl JobRule {
    /// The rule `policy` gives a job with `spec`.
    pub fn for_job(policy: &VerificationPolicy, spec: &JobSpec) -> JobRule {
        match policy {
            VerificationPolicy::Majority { .. } => JobRule::Majority,
            VerificationPolicy::MFirst { m } => JobRule::MFirst { m: *m },
            VerificationPolicy::Credibility(p) => JobRule::Credibility {
                error_rate_ppb: spec
                    .error_rate_ppb
                    .unwrap_or_else(|| error_rate_to_ppb(p.error_rate).unwrap_or(1_000_000)),
            },
        }
    }
}

/// One offering worker's credibility at this requester when it offered, in parts per billion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credible {
    /// The worker.
    #[serde(with = "crate::wire_ids::peer")]
    pub peer: PeerId,
    /// Its credibility × 10⁹.
    pub ppb: u32,
}

/// What the M-first and credibility rules keep in a job's record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteState {
    /// Replicas wanted now (0: not decided yet).
    pub wanted: u8,
    /// Credibility of the workers whose offers are kept (credibility rule; as many as the job's offers).
    pub credible: Vec<Credible>,
    /// For a spot-check: the one worker it is for and the answer the requester already knows.
    #[serde(default)]
    pub spot_check: Option<SpotCheck>,
}

/// A spot-check: a job whose answer the requester already knows (a verified earlier result of its own,
/// announced again under a fresh job id), meant for one worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpotCheck {
    /// The worker checked.
    #[serde(with = "crate::wire_ids::peer")]
    pub worker: PeerId,
    /// The known result.
    pub answer: Verdict,
}

impl SpotCheck {
    /// Whether `reveal` is the known answer.
    pub fn passed_by(&self, reveal: &Reveal) -> bool {
        let a = &self.answer;
        reveal.output == a.output
            && reveal.fuel_used == a.fuel_used
            && reveal.status == a.status
            && reveal.detail.digest() == a.detail.digest()
    }
}

/// Reveals grouped by what they agree on (output, fuel, status, failure detail), in order of first appearance:
/// indices into `reveals`, one worker counted once.
pub fn group_reveals(reveals: &[(PeerId, Reveal)]) -> Vec<Vec<usize>> {
    type Key = (Vec<u8>, u64, String, [u8; 32]);
    let mut keys: Vec<Key> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, (peer, r)) in reveals.iter().enumerate() {
        if !seen.insert(*peer) {
            continue;
        }
        let key = (
            r.output.to_bytes(),
            r.fuel_used,
            r.status.clone(),
            r.detail.digest(),
        );
        match keys.iter().position(|k| *k == key) {
            Some(g) => groups[g].push(i),
            None => {
                keys.push(key);
                groups.push(vec![i]);
            }
        }
    }
    groups
}

/// What a requester's verification cost so far: counted as its jobs finish.
#[derive(Debug, Default)]
pub struct VerificationCounters {
    pub(crate) jobs: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) executions: AtomicU64,
    pub(crate) spot_checks: AtomicU64,
}

/// A reading of [`VerificationCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSnapshot {
    /// Jobs finished (spot-checks not included).
    pub jobs: u64,
    /// Jobs whose result was accepted (verified).
    pub accepted: u64,
    /// Executions paid for: replicas that revealed a result, in every job and spot-check.
    pub executions: u64,
    /// Spot-checks finished (each one execution, counted in `executions` too).
    pub spot_checks: u64,
}

impl VerificationCounters {
    /// The counts now.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            jobs: self.jobs.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            executions: self.executions.load(Ordering::Relaxed),
            spot_checks: self.spot_checks.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_policy_defaults_names_and_bounds() {
        assert_eq!(
            VerificationPolicy::default(),
            VerificationPolicy::Majority { replicas: 3 }
        );
        let c = CredibilityParams::default();
        assert_eq!(
            (c.error_rate, c.assumed_fault_rate, c.spot_check_rate),
            (1e-3, 0.1, 0.1)
        );
        assert!(c.validate().is_ok());
        // The plain M-first baseline at f = 0.1, ε = 10⁻³ is M = 5 (M = 4 errs 2.7·10⁻³ > 10⁻³).
        assert_eq!(plain_m_first_votes(0.1, 1e-3).unwrap(), 5);
        assert_eq!(
            VerificationPolicy::from_name("m-first", 0.1, 0.1, 1e-3).unwrap(),
            VerificationPolicy::MFirst { m: 5 }
        );
        let p = VerificationPolicy::from_name("credibility", 0.2, 0.05, 1e-4).unwrap();
        assert_eq!(p.name(), "credibility");
        assert_eq!(p.credibility().unwrap().assumed_fault_rate, 0.2);
        assert_eq!(
            VerificationPolicy::from_name("vote", 0.1, 0.1, 1e-3),
            Err(VerificationError::UnknownPolicy("vote".into()))
        );
        // Out of range: f below the floor or at ½, q above ½, ε of 0 or above ½, zero replicas.
        for (f, q, e) in [(0.01, 0.1, 1e-3), (0.5, 0.1, 1e-3), (0.1, 0.6, 1e-3)] {
            assert!(VerificationPolicy::from_name("credibility", f, q, e).is_err());
        }
        assert!(check_error_rate(0.0).is_err() && check_error_rate(0.6).is_err());
        assert!(VerificationPolicy::Majority { replicas: 0 }
            .validate()
            .is_err());
        // The spec's integer form round-trips.
        assert_eq!(error_rate_to_ppb(1e-3).unwrap(), 1_000_000);
        assert_eq!(error_rate_from_ppb(1_000_000), 1e-3);
        assert!(error_rate_to_ppb(1e-12).is_err());
        // Cold start: unstaked identities get the prior ½ only when stake is required.
        assert_eq!(c.assumptions().f_unstaked, 0.5);
        let open = CredibilityParams {
            stake_required_for_cold_start: false,
            ..c
        };
        assert_eq!(open.assumptions().f_unstaked, 0.1);
    }

    mod rule {
        use std::collections::HashMap;

        use libp2p_identity::PeerId;

        use super::super::*;
        use crate::credibility::spot_check_credibility;
        use crate::messages::commitment_hash;
        use crate::requester::{Action, Phase, RequesterJob};
        use crate::requester::{Answer, OFFER_WINDOW_MS};
        use crate::tally::select_workers;
        use crate::testkit::{cid, peers, spec};

        fn job(rule: JobRule) -> RequesterJob {
            let mut job = RequesterJob::new(spec(3, false), 1_000, 1_000_000);
            job.rule = rule;
            job
        }

        fn credibility_rule() -> JobRule {
            JobRule::Credibility {
                error_rate_ppb: 1_000_000,
            }
        }

        /// Offers from `workers` (with their credibility), then answers every assignment with the worker's
        /// output in `outputs` until the job stops asking; returns the workers assigned, in order.
        fn run(
            job: &mut RequesterJob,
            workers: &[(PeerId, f64)],
            outputs: &HashMap<PeerId, &'static [u8]>,
        ) -> Vec<PeerId> {
            let now = job.announced_ms;
            let mut actions = Vec::new();
            for (w, c) in workers {
                actions.extend(job.on_credible_offer(now, *w, 500, 0, *c));
            }
            actions.extend(job.on_tick(now + OFFER_WINDOW_MS));
            let mut assigned = Vec::new();
            let mut reveals: HashMap<PeerId, Reveal> = HashMap::new();
            while !actions.is_empty() {
                let mut next = Vec::new();
                for a in std::mem::take(&mut actions) {
                    match a {
                        Action::Assign { worker, .. } => {
                            assigned.push(worker);
                            let out = cid(outputs[&worker]);
                            let salt = [7; 32];
                            let detail = Box::default();
                            let c = commitment_hash(&out, 5, "ok", &detail, &salt, &worker);
                            next.extend(job.on_answer(now, worker, Answer::Accepted));
                            next.extend(job.on_commitment(now, worker, c));
                            let reveal = Reveal {
                                job_id: job.id,
                                output: out,
                                fuel_used: 5,
                                status: "ok".into(),
                                salt,
                                detail,
                            };
                            reveals.insert(worker, reveal);
                        }
                        Action::RequestReveal { worker } => {
                            let r = reveals[&worker].clone();
                            next.extend(job.on_reveal(now, worker, r));
                        }
                        Action::CheckResult => next.extend(job.on_verified(true, "")),
                        _ => {}
                    }
                }
                actions = next;
            }
            assigned
        }

        #[test]
        fn rule_a_credible_worker_alone_is_accepted_with_one_execution() {
            let ps = peers(3);
            let veteran = spot_check_credibility(0.1, 41, true); // 0.999003
            let workers = [(ps[0], 0.9), (ps[1], veteran), (ps[2], 0.9)];
            let outputs: HashMap<_, &'static [u8]> = ps.iter().map(|p| (*p, &b"ok"[..])).collect();
            let mut j = job(credibility_rule());
            let assigned = run(&mut j, &workers, &outputs);
            assert_eq!(assigned, vec![ps[1]], "only the veteran runs it");
            assert_eq!(j.phase, Phase::Verified, "{}", j.reason);
            assert_eq!(j.verdict.as_ref().unwrap().agreeing, vec![ps[1]]);
        }

        #[test]
        fn rule_staked_strangers_need_four_unanimous_and_blacklisted_offers_are_ignored() {
            let ps = peers(6);
            let mut workers: Vec<(PeerId, f64)> = ps[..5].iter().map(|p| (*p, 0.9)).collect();
            workers.push((ps[5], 0.0)); // blacklisted: never assigned
            let outputs: HashMap<_, &'static [u8]> = ps.iter().map(|p| (*p, &b"ok"[..])).collect();
            let mut j = job(credibility_rule());
            let assigned = run(&mut j, &workers, &outputs);
            // Three agreeing strangers: 0.99863 < 0.999; four: 0.99985.
            assert_eq!(assigned.len(), 4, "{assigned:?}");
            assert!(!assigned.contains(&ps[5]));
            assert!(!j.offers.iter().any(|o| o.peer == ps[5]));
            assert_eq!(j.phase, Phase::Verified, "{}", j.reason);
        }

        #[test]
        fn rule_disagreement_adds_replicas_until_credible_or_out_of_workers() {
            // Two credible workers (k = 15: 0.99728 each; together 0.9999926) disagree: one more replica at a
            // time; the third (a stranger, 0.9) sides with one of them: 0.8997 against the other, below
            // 1 − ε, and no fourth worker: the job waits for one, and expires rather than accept.
            let ps = peers(3);
            let c = spot_check_credibility(0.1, 15, true);
            let workers = [(ps[0], c), (ps[1], c), (ps[2], 0.9)];
            let outputs: HashMap<_, &'static [u8]> = [
                (ps[0], &b"right"[..]),
                (ps[1], &b"wrong"[..]),
                (ps[2], &b"right"[..]),
            ]
            .into_iter()
            .collect();
            let mut j = job(credibility_rule());
            let assigned = run(&mut j, &workers, &outputs);
            assert_eq!(&assigned[2..], &[ps[2]], "the stranger comes third");
            assert_eq!(assigned.len(), 3);
            assert!(j.verdict.is_none());
            assert!(
                j.reason.contains("waiting for another worker"),
                "{}",
                j.reason
            );
            let deadline = j.deadline_ms;
            j.on_tick(deadline);
            assert_eq!(j.phase, Phase::Expired, "{}", j.reason);
            assert!(j.verdict.is_none());
            // With a fourth credible worker (k = 14: 0.99708, so assigned third, after the two at k = 15 and
            // before the stranger) siding with "right": {c, c14} against {c} is 0.99708, still short; the
            // stranger's agreement lifts it to 0.99967: accepted after four executions.
            let ps4 = [ps[0], ps[1], ps[2], PeerId::random()];
            let mut outputs4 = outputs.clone();
            outputs4.insert(ps4[3], b"right");
            let c14 = spot_check_credibility(0.1, 14, true);
            let workers4 = [(ps4[0], c), (ps4[1], c), (ps4[2], 0.9), (ps4[3], c14)];
            let mut j = job(credibility_rule());
            let assigned = run(&mut j, &workers4, &outputs4);
            assert_eq!(j.phase, Phase::Verified, "{}", j.reason);
            assert_eq!(assigned.len(), 4, "{assigned:?}");
            assert_eq!((assigned[2], assigned[3]), (ps4[3], ps[2]));
            let v = j.verdict.unwrap();
            assert_eq!(v.output, cid(b"right"));
            assert_eq!(v.disagreeing, vec![ps[1]]);
        }

        #[test]
        fn rule_m_first_adds_replicas_until_one_output_has_m_votes() {
            let ps = peers(5);
            let workers: Vec<(PeerId, f64)> = ps.iter().map(|p| (*p, 0.0)).collect();
            // Plain M-first ignores credibility: the two first assigned disagree, so more are added.
            let outputs: HashMap<_, &'static [u8]> =
                ps.iter().map(|p| (*p, &b"same"[..])).collect();
            let mut j = job(JobRule::MFirst { m: 2 });
            let assigned = run(&mut j, &workers, &outputs);
            assert_eq!(assigned.len(), 2);
            assert_eq!(j.phase, Phase::Verified, "{}", j.reason);
            let mut mixed = outputs.clone();
            let first_two = select_workers(&j.offers, &Default::default(), 2, &j.seed);
            mixed.insert(first_two[1], b"other");
            let mut j = job(JobRule::MFirst { m: 2 });
            let assigned = run(&mut j, &workers, &mixed);
            assert_eq!(assigned.len(), 3, "one more after a 1–1 split");
            assert_eq!(j.phase, Phase::Verified, "{}", j.reason);
            assert_eq!(j.verdict.unwrap().output, cid(b"same"));
        }

        #[test]
        fn rule_a_unanimous_crowd_of_unstaked_strangers_is_never_accepted() {
            // Stake required at cold start: every unstaked identity has credibility ½, so ten of them forging
            // one output are no evidence; with no staked worker the job fails instead of accepting it.
            let ps = peers(10);
            let workers: Vec<(PeerId, f64)> = ps.iter().map(|p| (*p, 0.5)).collect();
            let outputs: HashMap<_, &'static [u8]> =
                ps.iter().map(|p| (*p, &b"forged"[..])).collect();
            let mut j = job(credibility_rule());
            let assigned = run(&mut j, &workers, &outputs);
            assert_eq!(
                assigned.len(),
                10,
                "every stranger tried, one at a time after the first three"
            );
            assert!(j.verdict.is_none(), "{}", j.reason);
            let deadline = j.deadline_ms;
            j.on_tick(deadline);
            assert_eq!(j.phase, Phase::Expired, "{}", j.reason);
            assert!(j.verdict.is_none());
        }
    }
}
