//! The credibility and M-first rules as steps of a requester's job ([`RequesterJob`]): offers weighed by
//! credibility, replicas added while the best agreeing group is below 1 − ε, spot-check verdicts. The rule's
//! types and arithmetic live in [`crate::verification`] and [`crate::credibility`]; this file holds only the
//! part that drives a [`RequesterJob`], so that `verification.rs` need not import `requester.rs`, which uses
//! its types.

use libp2p_identity::PeerId;

use crate::credibility::{self, *};
use crate::messages::{JobSpec, Reveal};
use std::sync::atomic::Ordering;

use crate::requester::{Action, Phase, RequesterJob, SlotState};
use crate::tally::{select_workers, Verdict};
use crate::verification::*;

/// Parts per billion.
const PPB: f64 = 1e9;

impl RequesterJob {
    /// A worker offered, with its credibility at this requester (credibility rule; under the others this is
    /// [`on_offer`](Self::on_offer)). A blacklisted worker (credibility 0) is ignored.
    pub fn on_credible_offer(
        &mut self,
        now_ms: u64,
        worker: PeerId,
        price_wei_per_mfuel: u64,
        reputation: i64,
        credibility: f64,
    ) -> Vec<Action> {
        if !matches!(self.rule, JobRule::Credibility { .. }) {
            return self.on_offer(now_ms, worker, price_wei_per_mfuel, reputation);
        }
        let someone_else = |c: &SpotCheck| c.worker != worker;
        if credibility <= 0.0
            || self.offers.iter().any(|o| o.peer == worker)
            || self.vote.spot_check.as_ref().is_some_and(someone_else)
        {
            return Vec::new();
        }
        self.vote.credible.push(Credible {
            peer: worker,
            ppb: (credibility.clamp(0.0, 1.0) * PPB).round() as u32,
        });
        let actions = self.on_offer(now_ms, worker, price_wei_per_mfuel, reputation);
        if !self.offers.iter().any(|o| o.peer == worker) {
            self.vote.credible.retain(|c| c.peer != worker);
        }
        actions
    }

    /// `worker` just failed a spot-check: it counts for nothing in this job any more (its offer is not
    /// assigned, a result of it already in does not raise a group).
    pub fn blacklist(&mut self, worker: &PeerId) {
        for c in self.vote.credible.iter_mut().filter(|c| c.peer == *worker) {
            c.ppb = 0;
        }
    }

    /// The worker a failed spot-check blacklisted, if this job is one.
    pub fn failed_spot_check(&self) -> Option<PeerId> {
        let check = self.vote.spot_check.as_ref()?;
        (self.phase == Phase::Failed && self.reason.starts_with("spot-check failed"))
            .then_some(check.worker)
    }

    /// With probability `q` for each worker in `assigned` (a real job's new assignments), a spot-check of it.
    pub fn draw_spot_checks(
        &self,
        q: f64,
        assigned: &[PeerId],
        answers: &KnownAnswers,
        now_ms: u64,
        invited: &[PeerId],
    ) -> Vec<RequesterJob> {
        if self.vote.spot_check.is_some() || answers.is_empty() {
            return Vec::new();
        }
        assigned
            .iter()
            .filter(|_| rand::random::<f64>() < q)
            .filter_map(|w| answers.spot_check(rand::random(), *w, now_ms, invited.to_vec()))
            .collect()
    }

    /// A worker's credibility as recorded with its offer (0 if it has none).
    pub fn credibility_of(&self, worker: &PeerId) -> f64 {
        self.vote
            .credible
            .iter()
            .find(|c| c.peer == *worker)
            .map_or(0.0, |c| f64::from(c.ppb) / PPB)
    }

    /// How many live replicas the job wants now.
    pub(crate) fn wanted_replicas(&self) -> usize {
        match self.rule {
            JobRule::Majority => usize::from(self.spec.replicas),
            JobRule::MFirst { m } if self.vote.wanted == 0 => usize::from(m),
            JobRule::Credibility { .. } if self.vote.spot_check.is_some() => 1,
            JobRule::Credibility { .. } if self.vote.wanted == 0 => {
                self.initial_credible_replicas()
            }
            _ => usize::from(self.vote.wanted),
        }
    }

    /// Fixes the number of replicas to start with, at the first assignment.
    pub(crate) fn settle_wanted(&mut self) {
        if self.rule != JobRule::Majority && self.vote.wanted == 0 && !self.offers.is_empty() {
            self.vote.wanted = self.wanted_replicas().min(usize::from(MAX_M)) as u8;
        }
    }

    /// Credibility rule: the fewest of the most credible offers whose unanimous agreement reaches `1 − ε`, or
    /// `spec.replicas` if no number of them does (then replicas are added one at a time).
    fn initial_credible_replicas(&self) -> usize {
        let JobRule::Credibility { error_rate_ppb } = self.rule else {
            return usize::from(self.spec.replicas);
        };
        let creds: Vec<f64> = self
            .choose(usize::from(MAX_M))
            .iter()
            .map(|w| self.credibility_of(w))
            .collect();
        credibility::replicas_needed(&creds, error_rate_from_ppb(error_rate_ppb))
            .ok()
            .flatten()
            .unwrap_or(usize::from(self.spec.replicas))
            .max(1)
    }

    /// Up to `count` untried workers to assign: by record under majority and M-first voting
    /// ([`select_workers`]), the most credible first under the credibility rule (ties broken by the job's seed).
    pub(crate) fn choose(&self, count: usize) -> Vec<PeerId> {
        if !matches!(self.rule, JobRule::Credibility { .. }) {
            return select_workers(&self.offers, &self.tried(), count, &self.seed);
        }
        let tried = self.tried();
        let tiebreak = |peer: &PeerId| {
            let mut h = blake3::Hasher::new_keyed(&self.seed);
            h.update(&peer.to_bytes());
            *h.finalize().as_bytes()
        };
        let mut pool: Vec<(u32, [u8; 32], PeerId)> = self
            .vote
            .credible
            .iter()
            .filter(|c| c.ppb > 0 && !tried.contains(&c.peer))
            .map(|c| (c.ppb, tiebreak(&c.peer), c.peer))
            .collect();
        pool.sort_by_key(|(ppb, tie, _)| (std::cmp::Reverse(*ppb), *tie));
        pool.into_iter().take(count).map(|(.., p)| p).collect()
    }

    /// Every committed replica revealed (or dropped): accept the group the rule accepts, or add replicas.
    pub(crate) fn decide_by_rule(
        &mut self,
        now_ms: u64,
        reveals: &[(PeerId, Reveal)],
    ) -> Vec<Action> {
        if let Some(check) = self.vote.spot_check.clone() {
            return self.decide_spot_check(now_ms, &check, reveals);
        }
        let groups = group_reveals(reveals);
        let best_votes = groups.iter().map(Vec::len).max().unwrap_or(0);
        let (accepted, more, why) = match self.rule {
            JobRule::MFirst { m } => {
                let m = usize::from(m);
                let accepted = groups.iter().position(|g| g.len() >= m);
                let why = format!("best output has {best_votes} of {m} votes");
                (accepted, m.saturating_sub(best_votes).max(1), why)
            }
            JobRule::Credibility { error_rate_ppb } => {
                let creds: Vec<Vec<f64>> = groups
                    .iter()
                    .map(|g| {
                        g.iter()
                            .map(|&i| self.credibility_of(&reveals[i].0))
                            .collect()
                    })
                    .collect();
                let epsilon = error_rate_from_ppb(error_rate_ppb);
                match credibility::decide(&creds, epsilon) {
                    Ok(credibility::Decision::Accept { group, .. }) => {
                        (Some(group), 0, String::new())
                    }
                    Ok(credibility::Decision::AddReplica { credibility, .. }) => (
                        None,
                        1,
                        format!("best group's credibility {credibility:.6} < 1 − {epsilon}"),
                    ),
                    Err(e) => (None, 1, e.to_string()),
                }
            }
            JobRule::Majority => (None, 0, "majority is tallied elsewhere".into()),
        };
        match accepted {
            Some(g) => self.verdict_of(reveals, &groups, g),
            None => self.add_replicas(now_ms, more, reveals, &why),
        }
    }

    /// A spot-check's worker revealed: a pass is evidence and is paid like any result; a failure is evidence,
    /// blacklists the worker (its credibility is 0 from now on) and its output is not accepted.
    fn decide_spot_check(
        &mut self,
        now_ms: u64,
        check: &SpotCheck,
        reveals: &[(PeerId, Reveal)],
    ) -> Vec<Action> {
        let Some((_, reveal)) = reveals.iter().find(|(w, _)| *w == check.worker) else {
            return self.add_replicas(
                now_ms,
                1,
                reveals,
                "the spot-check's worker revealed nothing",
            );
        };
        let passed = check.passed_by(reveal);
        let evidence = Action::Evidence {
            peer: check.worker,
            change: EvidenceChange::SpotCheck { passed },
        };
        tracing::info!(job = %self.id, worker = %check.worker, passed, "spot-check");
        if passed {
            let mut actions = vec![evidence];
            actions.extend(self.verdict_of(reveals, &group_reveals(reveals), 0));
            return actions;
        }
        self.finish(
            Phase::Failed,
            "spot-check failed: the worker is blacklisted".into(),
        );
        vec![
            evidence,
            Action::Reputation {
                peer: check.worker,
                change: crate::requester::RepChange::Disagreed,
            },
            self.receipt(check.worker, false, 0, "outside the accepted majority"),
            Action::Finished,
        ]
    }

    /// Accepts group `g` of `reveals`: its output goes to the result check.
    fn verdict_of(
        &mut self,
        reveals: &[(PeerId, Reveal)],
        groups: &[Vec<usize>],
        g: usize,
    ) -> Vec<Action> {
        let first = &reveals[groups[g][0]].1;
        let agreeing: Vec<PeerId> = groups[g].iter().map(|&i| reveals[i].0).collect();
        let disagreeing = groups
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != g)
            .flat_map(|(_, members)| members.iter().map(|&i| reveals[i].0))
            .collect();
        self.verdict = Some(Verdict {
            output: first.output,
            fuel_used: first.fuel_used,
            status: first.status.clone(),
            agreeing,
            disagreeing,
            detail: (*first.detail).clone(),
        });
        self.phase = Phase::Verifying;
        self.reason = "fetching the result".into();
        vec![Action::CheckResult]
    }

    /// Not accepted yet: assigns `more` fresh workers; with none at hand the job waits for new offers (it is
    /// announced again while short of workers) until its deadline, rather than accept less.
    fn add_replicas(
        &mut self,
        now_ms: u64,
        more: usize,
        reveals: &[(PeerId, Reveal)],
        why: &str,
    ) -> Vec<Action> {
        let live = self.live_slots().count();
        self.vote.wanted = (live + more).min(usize::from(u8::MAX)) as u8;
        self.phase = Phase::Committing;
        self.reason = format!("{why}: adding {more} replica(s)");
        let before = self.slots.len();
        let actions = self.assign_fresh(more, now_ms);
        if self.slots.len() == before {
            self.reason = format!(
                "{why} after {} reveals: waiting for another worker",
                reveals.len()
            );
        }
        actions
    }
}

/// How many verified results a requester keeps to make spot-checks of.
pub const MAX_KNOWN_ANSWERS: usize = 64;

/// The verified results a requester makes spot-checks of: its latest credibility-verified jobs (not
/// spot-checks), at most [`MAX_KNOWN_ANSWERS`], in memory (a restarted requester starts collecting again).
#[derive(Debug, Default)]
pub struct KnownAnswers {
    answers: std::collections::VecDeque<(JobSpec, Verdict, u64, JobRule)>,
}

impl KnownAnswers {
    /// Keeps a finished job's result if it is a verified real job (not a spot-check).
    pub fn record(&mut self, job: &RequesterJob) {
        let Some(verdict) = job.verdict.as_ref() else {
            return;
        };
        if job.phase != Phase::Verified || job.vote.spot_check.is_some() {
            return;
        }
        if self.answers.len() >= MAX_KNOWN_ANSWERS {
            self.answers.pop_front();
        }
        let timeout = job.deadline_ms.saturating_sub(job.announced_ms);
        self.answers
            .push_back((job.spec.clone(), verdict.clone(), timeout, job.rule));
    }

    /// Forgets every result `worker` agreed with (it failed a spot-check: what it vouched for is suspect).
    pub fn purge(&mut self, worker: &PeerId) {
        self.answers
            .retain(|(_, v, ..)| !v.agreeing.contains(worker));
    }

    /// Whether there is nothing to make a spot-check of.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// A spot-check of `worker` from the known result `pick` (taken modulo their number): the same code, input
    /// and limits under a fresh nonce, so a fresh job id, announced like any job (inviting `invited` and the
    /// worker). `None` with no known result.
    pub fn spot_check(
        &self,
        pick: usize,
        worker: PeerId,
        now_ms: u64,
        mut invited: Vec<PeerId>,
    ) -> Option<RequesterJob> {
        let (spec, answer, timeout, rule) = self.answers.get(pick % self.answers.len().max(1))?;
        let mut spec = spec.clone();
        spec.nonce = rand::random();
        if !invited.contains(&worker) {
            invited.push(worker);
        }
        let mut job = RequesterJob::new(spec, now_ms, now_ms + timeout).inviting(invited);
        job.rule = *rule;
        job.vote.spot_check = Some(SpotCheck {
            worker,
            answer: answer.clone(),
        });
        Some(job)
    }
}

impl VerificationCounters {
    /// Counts a finished job.
    pub fn job_finished(&self, job: &RequesterJob) {
        let ran = job
            .slots
            .values()
            .filter(|s| matches!(s.state, SlotState::Revealed(_)))
            .count() as u64;
        self.executions.fetch_add(ran, Ordering::Relaxed);
        if job.vote.spot_check.is_some() {
            self.spot_checks.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.jobs.fetch_add(1, Ordering::Relaxed);
        if job.phase == Phase::Verified {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
    }
}
