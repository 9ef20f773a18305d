//! The requester's side of one job as a pure state machine (`docs/protocol.md`, "Requester state machine").
//!
//! Events go in (`on_offer`, `on_answer`, `on_commitment`, `on_reveal`, `on_tick`, `cancel`) with the current
//! time in unix milliseconds; [`Action`]s come out for the caller to carry out (send a message, adjust a
//! reputation, record what is owed). No clock, no network and no disk here, so the same events give the same
//! actions — which the simnet relies on — and the whole job serializes into the node's job store after every
//! event, so a restarted requester resumes where it was.

use std::collections::{BTreeMap, HashSet};

use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use crate::messages::{reveal_matches, JobId, JobSpec, Receipt, Reveal};
use crate::tally::{owed_wei, slots_by_record, tally, Candidate, Verdict};

/// How long offers are collected before the first assignment, unless `replicas` offers arrive sooner of which a
/// majority come from workers with a positive record.
pub const OFFER_WINDOW_MS: u64 = 250;
/// How long the offer window stays open while too few of the workers with a record invited to a job have
/// offered to fill the slots that go by record; past it, the job goes to whoever offered.
pub const RECORD_WAIT_MS: u64 = 2_000;
/// How long an assigned worker has to accept or decline.
pub const ANSWER_TIMEOUT_MS: u64 = 5_000;
/// After a restart, how long workers get to reconnect before re-sent assignments count as unanswered.
pub const RESTART_GRACE_MS: u64 = 10_000;
/// How long revealing may take once asked.
pub const REVEAL_TIMEOUT_MS: u64 = 5_000;
/// A job short of workers (every offer tried, replicas missing) is announced again after this long, then after
/// twice as long each time, up to [`REANNOUNCE_MAX_MS`]: workers that joined (or restarted, or freed capacity)
/// after the first announcement hear of it.
pub const REANNOUNCE_FIRST_MS: u64 = 2_000;
/// The longest wait between two announcements of a job short of workers.
pub const REANNOUNCE_MAX_MS: u64 = 16_000;
/// Reputation changes.
pub const REP_AGREED: i64 = 1;
/// For revealing a result outside the majority, or one that does not open its commitment.
pub const REP_DISAGREED: i64 = -5;
/// For missing a deadline, or being unreachable for an assignment.
pub const REP_TIMED_OUT: i64 = -2;
/// For declining an assignment with an answer (busy, limits changed): nothing. Penalising it made every worker of
/// a loaded mesh fall below [`crate::tally::MIN_REPUTATION`] and the requester ignore all offers (simnet, 40 nodes).
pub const REP_DECLINED: i64 = 0;
/// The lowest score that missed deadlines alone can give: above [`crate::tally::MIN_REPUTATION`], so a worker that
/// was late (an overloaded machine, a mesh under load) loses its priority, never its access. Only results
/// outside the majority exclude a worker. (Without a floor, the timeouts of a loaded 100-node mesh pushed every
/// worker below the exclusion line and the requesters ignored all offers from then on.)
pub const TIMEOUT_FLOOR: i64 = crate::tally::MIN_REPUTATION / 2;

/// Why a worker's reputation changes, and by how much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepChange {
    /// In the accepted majority ([`REP_AGREED`]).
    Agreed,
    /// Outside the majority, or a reveal that does not open its commitment ([`REP_DISAGREED`]).
    Disagreed,
    /// A missed deadline, or unreachable for an assignment ([`REP_TIMED_OUT`], down to [`TIMEOUT_FLOOR`]).
    TimedOut,
    /// Declined an assignment with an answer ([`REP_DECLINED`]).
    Declined,
}

impl RepChange {
    /// The change to the score.
    pub fn delta(self) -> i64 {
        match self {
            RepChange::Agreed => REP_AGREED,
            RepChange::Disagreed => REP_DISAGREED,
            RepChange::TimedOut => REP_TIMED_OUT,
            RepChange::Declined => REP_DECLINED,
        }
    }

    /// The lowest score this kind of penalty can lead to.
    fn floor(self) -> i64 {
        match self {
            RepChange::TimedOut => TIMEOUT_FLOOR,
            _ => i64::MIN,
        }
    }
}

/// A worker's score after a reputation change: a penalty stops at its kind's floor (only timeouts have one,
/// [`TIMEOUT_FLOOR`]) and never lowers a score already below it.
pub fn next_reputation(old: i64, change: RepChange) -> i64 {
    old.saturating_add(change.delta())
        .max(old.min(change.floor()))
}

/// How a worker answered its assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// It takes the replica.
    Accepted,
    /// It said no, and why (busy, limits): no penalty.
    Declined(String),
    /// It could not be reached before the answer was due: penalised like a missed deadline.
    Unreachable(String),
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Published; collecting offers.
    Announced,
    /// Workers assigned; waiting for their commitments.
    Committing,
    /// Commitments in; waiting for reveals.
    Revealing,
    /// A majority agreed; the result is fetched and pinned, and the verifier job (if any) runs on it.
    Verifying,
    /// Done: the result is accepted.
    Verified,
    /// Done: no accepted result (reason recorded).
    Failed,
    /// Done: cancelled by the requester.
    Cancelled,
    /// Done: the deadline passed (reason names the phase it was in).
    Expired,
}

impl Phase {
    /// Whether the job is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Phase::Verified | Phase::Failed | Phase::Cancelled | Phase::Expired
        )
    }

    /// Lower-case name shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Announced => "announced",
            Phase::Committing => "committing",
            Phase::Revealing => "revealing",
            Phase::Verifying => "verifying",
            Phase::Verified => "verified",
            Phase::Failed => "failed",
            Phase::Cancelled => "cancelled",
            Phase::Expired => "expired",
        }
    }
}

/// What one assigned worker has done so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotState {
    /// Assignment sent at this time; no answer yet.
    Assigned {
        /// When.
        at_ms: u64,
    },
    /// The worker accepted and is running the job.
    Accepted,
    /// The worker sent this commitment.
    Committed {
        /// The hash.
        commitment: [u8; 32],
    },
    /// The worker revealed this (already checked against its commitment).
    Revealed(Reveal),
    /// The worker dropped out (declined, timed out, or its reveal did not open its commitment).
    Dropped {
        /// Why.
        reason: String,
    },
}

/// One replica's worker and its progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The worker.
    #[serde(with = "crate::wire_ids::peer")]
    pub worker: PeerId,
    /// Its price.
    pub price_wei_per_mfuel: u64,
    /// When it was assigned (unix ms).
    pub assigned_ms: u64,
    /// Its progress.
    pub state: SlotState,
}

impl Slot {
    /// Drops the worker out of the job for `reason`; returns the reputation change to apply.
    fn drop_out(&mut self, reason: impl Into<String>, change: RepChange) -> Action {
        let reason = reason.into();
        tracing::debug!(worker = %self.worker, %reason, "replica dropped");
        self.state = SlotState::Dropped { reason };
        Action::Reputation {
            peer: self.worker,
            change,
        }
    }
}

/// Something the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send an `Assignment` for `replica` to `worker`.
    Assign {
        /// The worker.
        worker: PeerId,
        /// The replica slot.
        replica: u8,
        /// The commitment deadline to put in it.
        commit_by_ms: u64,
    },
    /// Send a `RevealRequest` to `worker`.
    RequestReveal {
        /// The worker.
        worker: PeerId,
    },
    /// Send this receipt to `worker`.
    SendReceipt {
        /// The worker.
        worker: PeerId,
        /// The receipt.
        receipt: Receipt,
    },
    /// Change `peer`'s reputation ([`next_reputation`]).
    Reputation {
        /// The peer.
        peer: PeerId,
        /// Why, and so by how much.
        change: RepChange,
    },
    /// Record new evidence about `peer` (credibility-based verification, [`crate::credibility::Evidence`]).
    Evidence {
        /// The peer.
        peer: PeerId,
        /// What was learnt.
        change: crate::credibility::EvidenceChange,
    },
    /// Record in the ledger that `worker` is owed `wei`.
    Owe {
        /// The worker.
        worker: PeerId,
        /// The amount.
        wei: u128,
    },
    /// Fetch and pin the verdict's output, run the spec's verifier on it if there is one, then call
    /// [`RequesterJob::on_verified`].
    CheckResult,
    /// Publish the job's announcement again: it is short of workers.
    Reannounce,
    /// Publish a `Cancellation` on the jobs topic.
    PublishCancellation {
        /// Why.
        reason: String,
    },
    /// The job reached a terminal phase (the record says which and why).
    Finished,
}

/// The requester's record of one job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequesterJob {
    /// The job's id.
    pub id: JobId,
    /// What is run.
    pub spec: JobSpec,
    /// When it was announced (unix ms).
    pub announced_ms: u64,
    /// When it must be terminal (unix ms).
    pub deadline_ms: u64,
    /// Where it is.
    pub phase: Phase,
    /// Offers received (a worker offers once; later offers from it are ignored).
    pub offers: Vec<Candidate>,
    /// Workers assigned so far, in every round, by slot number.
    pub slots: BTreeMap<u8, Slot>,
    /// When revealing started (unix ms).
    pub reveal_started_ms: Option<u64>,
    /// The accepted result.
    pub verdict: Option<Verdict>,
    /// Why the job ended as it did (or what it is waiting for).
    pub reason: String,
    /// Seed of the worker draw (from the job id, so it is reproducible).
    pub seed: [u8; 32],
    /// How many times the job was announced again for being short of workers.
    #[serde(default)]
    pub reannounced: u32,
    /// When it was last announced (unix ms; 0 = only at `announced_ms`).
    #[serde(default)]
    pub last_announced_ms: u64,
    /// Workers with a record invited by name to offer ([`JobAnnouncement::invited`](crate::messages::JobAnnouncement::invited)).
    #[serde(default, with = "crate::wire_ids::peers")]
    pub invited: Vec<PeerId>,
    /// The job's receipt block, once it is finished (`crate::receipt`).
    #[serde(default, with = "crate::wire_ids::opt_cid")]
    pub receipt: Option<cid::Cid>,
    /// How the result is decided (default: a majority of `spec.replicas`, today's rule).
    #[serde(default)]
    pub rule: crate::verification::JobRule,
    /// Under M-first and credibility rules: what the rule knows of each offering worker and how many replicas it
    /// wants now ([`crate::verification`]).
    #[serde(default)]
    pub vote: crate::verification::VoteState,
}

impl RequesterJob {
    /// A freshly announced job.
    pub fn new(spec: JobSpec, announced_ms: u64, deadline_ms: u64) -> RequesterJob {
        let id = spec.id();
        RequesterJob {
            id,
            seed: id.0,
            spec,
            announced_ms,
            deadline_ms,
            phase: Phase::Announced,
            offers: Vec::new(),
            slots: BTreeMap::new(),
            reveal_started_ms: None,
            verdict: None,
            reason: "waiting for offers".into(),
            reannounced: 0,
            last_announced_ms: announced_ms,
            invited: Vec::new(),
            receipt: None,
            rule: Default::default(),
            vote: Default::default(),
        }
    }

    /// The same job inviting `workers` (the requester's best record) to offer.
    pub fn inviting(mut self, workers: Vec<PeerId>) -> RequesterJob {
        self.invited = workers;
        self
    }

    /// When the first assignment is made without waiting for more offers: [`OFFER_WINDOW_MS`] after the
    /// announcement, or [`RECORD_WAIT_MS`] while enough workers with a record were invited to fill the slots
    /// that go by record and fewer of them have offered. Without that wait, invited workers slower to answer
    /// than a crowd of fresh identities would leave the majority of the slots to the crowd.
    fn offer_window_ends_ms(&self) -> u64 {
        let by_record = slots_by_record(self.spec.replicas as usize);
        if self.invited.len() >= by_record && self.offers_with_a_record() < by_record {
            self.announced_ms + RECORD_WAIT_MS
        } else {
            self.announced_ms + OFFER_WINDOW_MS
        }
    }

    /// Whether replicas are missing and no offer is left to assign them to: only new workers can help.
    fn short_of_workers(&self) -> bool {
        matches!(self.phase, Phase::Announced | Phase::Committing)
            && self.live_slots().count() < self.wanted_replicas()
            && self.choose(1).is_empty()
    }

    /// When a job short of workers is next announced again.
    fn next_announcement_ms(&self) -> u64 {
        let wait = (REANNOUNCE_FIRST_MS << self.reannounced.min(8)).min(REANNOUNCE_MAX_MS);
        self.last_announced_ms.max(self.announced_ms) + wait
    }

    /// Replicas still needed: assigned slots that are not dropped count as filled.
    pub(crate) fn live_slots(&self) -> impl Iterator<Item = (&u8, &Slot)> {
        self.slots
            .iter()
            .filter(|(_, s)| !matches!(s.state, SlotState::Dropped { .. }))
    }

    /// Workers ever assigned (never assigned twice).
    pub(crate) fn tried(&self) -> HashSet<PeerId> {
        self.slots.values().map(|s| s.worker).collect()
    }

    /// Counts of (assigned and live, committed, revealed) for progress displays.
    pub fn progress(&self) -> (usize, usize, usize) {
        let live: Vec<&Slot> = self.live_slots().map(|(_, s)| s).collect();
        let committed = live
            .iter()
            .filter(|s| {
                matches!(
                    s.state,
                    SlotState::Committed { .. } | SlotState::Revealed(_)
                )
            })
            .count();
        let revealed = live
            .iter()
            .filter(|s| matches!(s.state, SlotState::Revealed(_)))
            .count();
        (live.len(), committed, revealed)
    }

    /// A worker offered to run the job.
    pub fn on_offer(
        &mut self,
        now_ms: u64,
        worker: PeerId,
        price_wei_per_mfuel: u64,
        reputation: i64,
    ) -> Vec<Action> {
        if self.phase.is_terminal()
            || price_wei_per_mfuel > self.spec.price_wei_per_mfuel
            || self.offers.iter().any(|o| o.peer == worker)
            || self.enough_spares_at_least_as_good(reputation)
        {
            return Vec::new();
        }
        self.offers.push(Candidate {
            peer: worker,
            price_wei_per_mfuel,
            reputation,
        });
        if self.phase == Phase::Announced
            && (self.enough_offers() || now_ms >= self.offer_window_ends_ms())
        {
            return self.fill_slots(now_ms);
        }
        if self.phase == Phase::Committing {
            return self.fill_slots(now_ms);
        }
        Vec::new()
    }

    /// Once the first workers are assigned, a late offer is kept only if it could matter: fewer than
    /// `2 × replicas` untried offers with at least its reputation are waiting (enough to replace every slot and
    /// still run a whole new round after a vote without a majority). (Every worker of a large mesh
    /// offers; recording them all made each job's record, and each step writing it, grow with the mesh.)
    fn enough_spares_at_least_as_good(&self, reputation: i64) -> bool {
        if self.phase == Phase::Announced {
            return false;
        }
        let tried = self.tried();
        let spares = self
            .offers
            .iter()
            .filter(|o| !tried.contains(&o.peer) && o.reputation >= reputation)
            .filter(|o| o.reputation >= crate::tally::MIN_REPUTATION)
            .count();
        spares >= 2 * self.spec.replicas as usize
    }

    /// Whether the offer window can close early: `replicas` offers of which a majority of the slots can go to
    /// workers with a positive record. Counting offers alone would let a crowd of fresh identities, offering
    /// first, close the window before the workers with a record are heard.
    fn enough_offers(&self) -> bool {
        let replicas = self.spec.replicas as usize;
        self.offers.len() >= replicas && self.offers_with_a_record() >= slots_by_record(replicas)
    }

    /// How many offers come from workers with a positive record here.
    fn offers_with_a_record(&self) -> usize {
        self.offers.iter().filter(|o| o.reputation > 0).count()
    }

    /// A worker answered its assignment.
    pub fn on_answer(&mut self, now_ms: u64, worker: PeerId, answer: Answer) -> Vec<Action> {
        let Some(slot) = self.slot_of(worker) else {
            return Vec::new();
        };
        if !matches!(slot.state, SlotState::Assigned { .. }) {
            return Vec::new();
        }
        let drop = match answer {
            Answer::Accepted => {
                slot.state = SlotState::Accepted;
                return Vec::new();
            }
            Answer::Declined(reason) => {
                slot.drop_out(format!("declined: {reason}"), RepChange::Declined)
            }
            Answer::Unreachable(e) => {
                slot.drop_out(format!("unreachable: {e}"), RepChange::TimedOut)
            }
        };
        let mut actions = vec![drop];
        actions.extend(self.fill_slots(now_ms));
        actions
    }

    /// A worker sent its commitment.
    pub fn on_commitment(
        &mut self,
        now_ms: u64,
        worker: PeerId,
        commitment: [u8; 32],
    ) -> Vec<Action> {
        if self.phase != Phase::Committing {
            return Vec::new();
        }
        let Some(slot) = self.slot_of(worker) else {
            return Vec::new();
        };
        if !matches!(slot.state, SlotState::Assigned { .. } | SlotState::Accepted) {
            return Vec::new();
        }
        slot.state = SlotState::Committed { commitment };
        self.maybe_start_reveal(now_ms)
    }

    /// A worker answered its reveal request.
    pub fn on_reveal(&mut self, now_ms: u64, worker: PeerId, reveal: Reveal) -> Vec<Action> {
        if self.phase != Phase::Revealing || reveal.job_id != self.id {
            return Vec::new();
        }
        let fits = reveal.detail.fits(&self.spec);
        let Some(slot) = self.slot_of(worker) else {
            return Vec::new();
        };
        let SlotState::Committed { commitment } = slot.state else {
            return Vec::new();
        };
        if fits && reveal_matches(&reveal, &commitment, &worker) {
            slot.state = SlotState::Revealed(reveal);
        } else {
            let why = if fits {
                "reveal does not open its commitment"
            } else {
                "reveal carries a detail over its bounds"
            };
            let mut actions = vec![slot.drop_out(why, RepChange::Disagreed)];
            actions.extend(self.maybe_tally(now_ms));
            return actions;
        }
        self.maybe_tally(now_ms)
    }

    /// The result check of [`Action::CheckResult`] is done: the output was fetched and the verifier (if any)
    /// accepted it (`true`), or not, for the reason `why`.
    pub fn on_verified(&mut self, ok: bool, why: &str) -> Vec<Action> {
        if self.phase != Phase::Verifying {
            return Vec::new();
        }
        if ok {
            self.accept()
        } else {
            let verdict = self.verdict.take().expect("verifying has a verdict");
            self.finish(
                Phase::Failed,
                format!("the majority result was not accepted: {why}"),
            );
            let mut actions = Vec::new();
            for worker in verdict.agreeing.iter().chain(&verdict.disagreeing) {
                actions.push(self.receipt(
                    *worker,
                    false,
                    0,
                    "the majority result was not accepted",
                ));
            }
            actions.push(Action::Finished);
            actions
        }
    }

    /// Time passed: handles every timeout that is due.
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<Action> {
        if self.phase.is_terminal() {
            return Vec::new();
        }
        if now_ms >= self.deadline_ms {
            let (assigned, committed, revealed) = self.progress();
            let why = format!(
                "deadline passed while {} ({} offers, {assigned} assigned, {committed} committed, {revealed} revealed)",
                self.phase.name(),
                self.offers.len()
            );
            self.finish(Phase::Expired, why.clone());
            let mut actions = self.receipts_for_all_live("job expired");
            actions.push(Action::PublishCancellation { reason: why });
            actions.push(Action::Finished);
            return actions;
        }
        let mut actions = Vec::new();
        match self.phase {
            Phase::Announced
                if now_ms >= self.offer_window_ends_ms() && !self.offers.is_empty() =>
            {
                actions.extend(self.fill_slots(now_ms));
            }
            Phase::Committing => {
                for slot in self.slots.values_mut() {
                    if matches!(slot.state, SlotState::Assigned { at_ms } if now_ms >= at_ms + ANSWER_TIMEOUT_MS)
                    {
                        actions.push(
                            slot.drop_out("no answer to the assignment", RepChange::TimedOut),
                        );
                    }
                }
                // Accepted workers that have not committed by their slot's deadline are dropped too.
                let overdue: Vec<u8> = self
                    .slots
                    .iter()
                    .filter(|(_, s)| matches!(s.state, SlotState::Accepted))
                    .filter(|(replica, _)| now_ms >= self.slot_commit_by(**replica))
                    .map(|(r, _)| *r)
                    .collect();
                for replica in overdue {
                    let slot = self.slots.get_mut(&replica).expect("listed above");
                    actions.push(slot.drop_out("no commitment in time", RepChange::TimedOut));
                }
                actions.extend(self.fill_slots(now_ms));
                actions.extend(self.maybe_start_reveal(now_ms));
            }
            Phase::Revealing => {
                let started = self.reveal_started_ms.unwrap_or(now_ms);
                if now_ms >= started + REVEAL_TIMEOUT_MS {
                    for slot in self.slots.values_mut() {
                        if matches!(slot.state, SlotState::Committed { .. }) {
                            actions.push(slot.drop_out("no reveal in time", RepChange::TimedOut));
                        }
                    }
                    actions.extend(self.maybe_tally(now_ms));
                }
            }
            _ => {}
        }
        if self.short_of_workers() && now_ms >= self.next_announcement_ms() {
            self.reannounced += 1;
            self.last_announced_ms = now_ms;
            actions.push(Action::Reannounce);
        }
        actions
    }

    /// The requester gives up on the job.
    pub fn cancel(&mut self, reason: &str) -> Vec<Action> {
        if self.phase.is_terminal() {
            return Vec::new();
        }
        self.finish(Phase::Cancelled, format!("cancelled: {reason}"));
        let mut actions = self.receipts_for_all_live("job cancelled");
        actions.push(Action::PublishCancellation {
            reason: reason.into(),
        });
        actions.push(Action::Finished);
        actions
    }

    /// The requester restarted: assignments still waiting for an answer may never have left, or their answers
    /// were lost with the crash, so they are sent again (a worker acknowledges a repeated assignment) and
    /// their answer timeout starts over after [`RESTART_GRACE_MS`] for the workers to reconnect.
    pub fn on_restart(&mut self, now_ms: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        for (replica, slot) in self.slots.iter_mut() {
            if let SlotState::Assigned { at_ms } = &mut slot.state {
                *at_ms = now_ms + RESTART_GRACE_MS;
                actions.push(Action::Assign {
                    worker: slot.worker,
                    replica: *replica,
                    commit_by_ms: 0,
                });
            }
        }
        for action in &mut actions {
            if let Action::Assign {
                replica,
                commit_by_ms,
                ..
            } = action
            {
                *commit_by_ms = self.slot_commit_by(*replica);
            }
        }
        actions
    }

    /// The job cannot go on (e.g. its announcement could not be published): it fails with `reason`.
    pub fn fail(&mut self, reason: &str) -> Vec<Action> {
        if self.phase.is_terminal() {
            return Vec::new();
        }
        self.finish(Phase::Failed, reason.to_string());
        let mut actions = self.receipts_for_all_live(reason);
        actions.push(Action::Finished);
        actions
    }

    /// The earliest time at which [`on_tick`](Self::on_tick) has something to do.
    pub fn next_wakeup_ms(&self) -> Option<u64> {
        if self.phase.is_terminal() {
            return None;
        }
        let mut t = self.deadline_ms;
        let short = self.short_of_workers();
        if short {
            t = t.min(self.next_announcement_ms());
        }
        match self.phase {
            // The window's end matters only with offers to assign (else the actor would tick without end).
            Phase::Announced if !short => t = t.min(self.offer_window_ends_ms()),
            Phase::Committing => {
                for (replica, slot) in &self.slots {
                    match slot.state {
                        SlotState::Assigned { at_ms } => t = t.min(at_ms + ANSWER_TIMEOUT_MS),
                        SlotState::Accepted => t = t.min(self.slot_commit_by(*replica)),
                        _ => {}
                    }
                }
            }
            Phase::Revealing => {
                if let Some(s) = self.reveal_started_ms {
                    t = t.min(s + REVEAL_TIMEOUT_MS);
                }
            }
            _ => {}
        }
        Some(t)
    }

    /// The commitment deadline given to a worker assigned at `now_ms`: a quarter of the time left, at least the
    /// answer timeout, so replacements still have time to run.
    fn commit_by(&self, now_ms: u64) -> u64 {
        let left = self.deadline_ms.saturating_sub(now_ms);
        (now_ms + (left / 4).max(ANSWER_TIMEOUT_MS)).min(self.deadline_ms)
    }

    /// The commitment deadline recorded for a slot (from when it was assigned).
    fn slot_commit_by(&self, replica: u8) -> u64 {
        self.slots
            .get(&replica)
            .map(|s| self.commit_by(s.assigned_ms))
            .unwrap_or(self.deadline_ms)
    }

    fn slot_of(&mut self, worker: PeerId) -> Option<&mut Slot> {
        self.slots.values_mut().find(|s| s.worker == worker)
    }

    /// Assigns fresh workers to every missing replica, from the offers not yet tried.
    fn fill_slots(&mut self, now_ms: u64) -> Vec<Action> {
        self.settle_wanted();
        let missing = self
            .wanted_replicas()
            .saturating_sub(self.live_slots().count());
        if missing == 0 || now_ms >= self.deadline_ms {
            return Vec::new();
        }
        let actions = self.assign_fresh(missing, now_ms);
        if !actions.is_empty() {
            self.phase = Phase::Committing;
            self.reason = "waiting for commitments".into();
        }
        actions
    }

    /// Assigns up to `count` workers that were never assigned to this job.
    pub(crate) fn assign_fresh(&mut self, count: usize, now_ms: u64) -> Vec<Action> {
        let chosen = self.choose(count);
        let mut actions = Vec::new();
        for worker in chosen {
            let replica = self.slots.len() as u8;
            let price = self
                .offers
                .iter()
                .find(|o| o.peer == worker)
                .map(|o| o.price_wei_per_mfuel)
                .unwrap_or(0);
            let state = SlotState::Assigned { at_ms: now_ms };
            self.slots.insert(
                replica,
                Slot {
                    worker,
                    price_wei_per_mfuel: price,
                    assigned_ms: now_ms,
                    state,
                },
            );
            actions.push(Action::Assign {
                worker,
                replica,
                commit_by_ms: self.commit_by(now_ms),
            });
        }
        actions
    }

    /// Starts revealing once every live slot has committed and the replica count is met (or nothing else can
    /// be assigned and a majority is still possible).
    fn maybe_start_reveal(&mut self, now_ms: u64) -> Vec<Action> {
        // Slots revealed in an earlier round count as committed.
        let (live, committed, _) = self.progress();
        let all_in = live > 0 && committed == live;
        let full = live >= self.wanted_replicas();
        let majority_possible = match self.rule {
            crate::verification::JobRule::Majority => committed * 2 > self.spec.replicas as usize,
            _ => committed > 0,
        };
        let no_more_candidates = self.choose(1).is_empty();
        if !(all_in && (full || (majority_possible && no_more_candidates))) {
            return Vec::new();
        }
        self.phase = Phase::Revealing;
        self.reveal_started_ms = Some(now_ms);
        self.reason = "waiting for reveals".into();
        self.slots
            .values()
            .filter(|s| matches!(s.state, SlotState::Committed { .. }))
            .map(|s| Action::RequestReveal { worker: s.worker })
            .collect()
    }

    /// Decides once no committed slot is still waiting to reveal.
    fn maybe_tally(&mut self, now_ms: u64) -> Vec<Action> {
        if self
            .slots
            .values()
            .any(|s| matches!(s.state, SlotState::Committed { .. }))
        {
            return Vec::new();
        }
        let reveals: Vec<(PeerId, Reveal)> = self
            .slots
            .values()
            .filter_map(|s| match &s.state {
                SlotState::Revealed(r) => Some((s.worker, r.clone())),
                _ => None,
            })
            .collect();
        if self.rule != crate::verification::JobRule::Majority {
            return self.decide_by_rule(now_ms, &reveals);
        }
        // A strict majority of everything revealed across rounds, and never less than a majority of the replicas.
        let assigned = (self.spec.replicas as usize).max(reveals.len());
        match tally(assigned, &reveals) {
            Some(verdict) => {
                self.verdict = Some(verdict);
                self.phase = Phase::Verifying;
                self.reason = if self.spec.verifier.is_some() {
                    "fetching the result and running the verifier".into()
                } else {
                    "fetching the result".into()
                };
                vec![Action::CheckResult]
            }
            None => {
                // No majority: those who revealed stay counted; fresh workers are added for a new round.
                let mut actions = Vec::new();
                let disagreeing: Vec<PeerId> = reveals.iter().map(|(p, _)| *p).collect();
                self.phase = Phase::Committing;
                self.reason = format!("no majority among {} reveals: re-assigning", reveals.len());
                let before = self.slots.len();
                actions.extend(self.assign_fresh(self.spec.replicas as usize, now_ms));
                if self.slots.len() == before {
                    self.finish(
                        Phase::Failed,
                        format!(
                            "no majority among {} reveals and no fresh worker to ask",
                            disagreeing.len()
                        ),
                    );
                    for worker in disagreeing {
                        actions.push(self.receipt(worker, false, 0, "no majority"));
                    }
                    actions.push(Action::Finished);
                }
                actions
            }
        }
    }

    /// Accepts the verdict: reputation, ledger and receipts for everyone who revealed.
    fn accept(&mut self) -> Vec<Action> {
        let verdict = self.verdict.clone().expect("accepting a verdict");
        let mut actions = Vec::new();
        for worker in &verdict.agreeing {
            let price = self
                .slots
                .values()
                .find(|s| s.worker == *worker)
                .map(|s| s.price_wei_per_mfuel)
                .unwrap_or(0);
            let wei = owed_wei(verdict.fuel_used, price);
            actions.push(Action::Reputation {
                peer: *worker,
                change: RepChange::Agreed,
            });
            actions.push(vote_evidence(*worker, true));
            actions.push(Action::Owe {
                worker: *worker,
                wei,
            });
            actions.push(self.receipt(*worker, true, wei, "in the accepted majority"));
        }
        for worker in &verdict.disagreeing {
            actions.push(Action::Reputation {
                peer: *worker,
                change: RepChange::Disagreed,
            });
            actions.push(vote_evidence(*worker, false));
            actions.push(self.receipt(*worker, false, 0, "outside the accepted majority"));
        }
        self.finish(
            Phase::Verified,
            format!(
                "{} of {} replicas agreed",
                verdict.agreeing.len(),
                verdict.agreeing.len() + verdict.disagreeing.len()
            ),
        );
        actions.push(Action::Finished);
        actions
    }

    fn receipts_for_all_live(&self, why: &str) -> Vec<Action> {
        self.live_slots()
            .map(|(_, s)| self.receipt(s.worker, false, 0, why))
            .collect()
    }

    pub(crate) fn receipt(
        &self,
        worker: PeerId,
        accepted: bool,
        owed_wei: u128,
        reason: &str,
    ) -> Action {
        Action::SendReceipt {
            worker,
            receipt: Receipt {
                job_id: self.id,
                accepted,
                owed_wei,
                reason: reason.into(),
            },
        }
    }

    pub(crate) fn finish(&mut self, phase: Phase, reason: String) {
        self.phase = phase;
        self.reason = reason;
    }
}

/// The evidence action for a worker whose result agreed (or not) with the accepted one.
pub(crate) fn vote_evidence(peer: PeerId, agreed: bool) -> Action {
    Action::Evidence {
        peer,
        change: crate::credibility::EvidenceChange::Vote { agreed },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::commitment_hash;
    use crate::testkit::{cid, peers, spec};

    #[test]
    fn timeouts_cost_priority_but_never_exclude_only_disagreements_do() {
        let mut score = 0;
        for _ in 0..100 {
            score = next_reputation(score, RepChange::TimedOut);
        }
        assert_eq!(score, TIMEOUT_FLOOR);
        const { assert!(TIMEOUT_FLOOR > crate::tally::MIN_REPUTATION) };
        assert_eq!(
            next_reputation(TIMEOUT_FLOOR + 1, RepChange::TimedOut),
            TIMEOUT_FLOOR
        );
        // Wrong results go all the way down, and a timeout does not lift a score below the floor.
        let mut liar = 0;
        for _ in 0..5 {
            liar = next_reputation(liar, RepChange::Disagreed);
        }
        assert!(liar < crate::tally::MIN_REPUTATION);
        assert_eq!(next_reputation(liar, RepChange::TimedOut), liar);
        assert_eq!(next_reputation(3, RepChange::Agreed), 4);
    }

    /// A worker's answer: commit to `output` and reveal it.
    fn commit_and_reveal(
        job: &RequesterJob,
        worker: PeerId,
        output: &[u8],
        fuel: u64,
    ) -> ([u8; 32], Reveal) {
        let salt = *blake3::hash(&worker.to_bytes()).as_bytes();
        let out = cid(output);
        let detail = Box::default();
        let c = commitment_hash(&out, fuel, "ok", &detail, &salt, &worker);
        (
            c,
            Reveal {
                job_id: job.id,
                output: out,
                fuel_used: fuel,
                status: "ok".into(),
                salt,
                detail,
            },
        )
    }

    fn assigned(actions: &[Action]) -> Vec<PeerId> {
        actions
            .iter()
            .filter_map(|a| {
                if let Action::Assign { worker, .. } = a {
                    Some(*worker)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Runs a job to its end with workers answering `outputs[worker]` (None = silent), returns the job and every
    /// action it asked for.
    fn drive(
        job: &mut RequesterJob,
        workers: &[PeerId],
        answer: impl Fn(&PeerId) -> Option<&'static [u8]>,
    ) -> Vec<Action> {
        drive_with_reputation(job, workers, answer, |_| 0)
    }

    fn drive_with_reputation(
        job: &mut RequesterJob,
        workers: &[PeerId],
        answer: impl Fn(&PeerId) -> Option<&'static [u8]>,
        reputation: impl Fn(&PeerId) -> i64,
    ) -> Vec<Action> {
        let mut all = Vec::new();
        let mut now = job.announced_ms;
        for w in workers {
            all.extend(job.on_offer(now, *w, 500, reputation(w)));
        }
        now += OFFER_WINDOW_MS;
        all.extend(job.on_tick(now));
        let mut answered = HashSet::new();
        while !job.phase.is_terminal() {
            let to_answer: Vec<PeerId> = assigned(&all)
                .into_iter()
                .filter(|w| !answered.contains(w))
                .collect();
            for w in to_answer {
                answered.insert(w);
                if let Some(out) = answer(&w) {
                    let (c, _) = commit_and_reveal(job, w, out, 77);
                    all.extend(job.on_answer(now, w, Answer::Accepted));
                    all.extend(job.on_commitment(now, w, c));
                }
            }
            let asks: Vec<PeerId> = all
                .iter()
                .filter_map(|a| {
                    if let Action::RequestReveal { worker } = a {
                        Some(*worker)
                    } else {
                        None
                    }
                })
                .collect();
            for w in asks {
                if let (Some(out), SlotState::Committed { .. }) = (
                    answer(&w),
                    job.slots
                        .values()
                        .find(|s| s.worker == w)
                        .map(|s| s.state.clone())
                        .unwrap(),
                ) {
                    let (_, r) = commit_and_reveal(job, w, out, 77);
                    all.extend(job.on_reveal(now, w, r));
                }
            }
            // Workers answer new assignments before any time passes.
            if assigned(&all).iter().any(|w| !answered.contains(w)) {
                continue;
            }
            if job.phase == Phase::Verifying {
                all.extend(job.on_verified(true, ""));
                continue;
            }
            if let Some(t) = job.next_wakeup_ms() {
                now = now.max(t);
            }
            all.extend(job.on_tick(now));
        }
        all
    }

    fn owed(actions: &[Action]) -> Vec<(PeerId, u128)> {
        actions
            .iter()
            .filter_map(|a| {
                if let Action::Owe { worker, wei } = a {
                    Some((*worker, *wei))
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn honest_replicas_are_verified_and_paid() {
        let w = peers(4);
        let mut job = RequesterJob::new(spec(3, false), 1_000, 60_000);
        let actions = drive(&mut job, &w, |_| Some(b"right"));
        assert_eq!(job.phase, Phase::Verified, "{}", job.reason);
        let paid = owed(&actions);
        assert_eq!(paid.len(), 3);
        assert!(paid.iter().all(|(_, wei)| *wei == owed_wei(77, 500)));
        assert_eq!(job.verdict.as_ref().unwrap().output, cid(b"right"));
        assert!(actions.contains(&Action::Finished));
    }

    #[test]
    fn a_byzantine_worker_is_outvoted_unpaid_and_scored_down() {
        let w = peers(3);
        let liar = w[1];
        let mut job = RequesterJob::new(spec(3, false), 0, 60_000);
        let actions = drive(&mut job, &w, |p| {
            Some(if *p == liar { b"wrong" } else { b"right" })
        });
        assert_eq!(job.phase, Phase::Verified);
        assert_eq!(job.verdict.as_ref().unwrap().output, cid(b"right"));
        assert!(owed(&actions).iter().all(|(p, _)| *p != liar));
        assert!(actions.contains(&Action::Reputation {
            peer: liar,
            change: RepChange::Disagreed
        }));
    }

    #[test]
    fn a_silent_worker_is_replaced() {
        let w = peers(5);
        let silent = w[0];
        let mut job = RequesterJob::new(spec(3, false), 0, 60_000);
        // the silent worker has the best record, so it is surely among the first three assigned
        let actions = drive_with_reputation(
            &mut job,
            &w,
            |p| if *p == silent { None } else { Some(b"right") },
            |p| if *p == silent { 10 } else { 0 },
        );
        assert_eq!(job.phase, Phase::Verified, "{}", job.reason);
        assert_eq!(owed(&actions).len(), 3);
        assert!(owed(&actions).iter().all(|(p, _)| *p != silent));
        assert!(assigned(&actions).contains(&silent));
        assert!(actions.contains(&Action::Reputation {
            peer: silent,
            change: RepChange::TimedOut
        }));
    }

    #[test]
    fn a_decline_costs_nothing_an_unreachable_worker_is_penalised_and_both_are_replaced() {
        let w = peers(5);
        let mut job = RequesterJob::new(spec(3, false), 0, 60_000);
        for p in &w {
            job.on_offer(0, *p, 500, 0);
        }
        let first = assigned(&job.on_tick(OFFER_WINDOW_MS));
        assert_eq!(first.len(), 3);
        let declined = job.on_answer(OFFER_WINDOW_MS, first[0], Answer::Declined("busy".into()));
        assert!(declined.contains(&Action::Reputation {
            peer: first[0],
            change: RepChange::Declined
        }));
        assert_eq!(assigned(&declined).len(), 1, "a replacement is assigned");
        let gone = job.on_answer(
            OFFER_WINDOW_MS,
            first[1],
            Answer::Unreachable("dial".into()),
        );
        assert!(gone.contains(&Action::Reputation {
            peer: first[1],
            change: RepChange::TimedOut
        }));
        assert_eq!(assigned(&gone).len(), 1, "a replacement is assigned");
    }

    #[test]
    fn a_job_short_of_workers_is_announced_again_with_backoff_until_its_slots_fill() {
        let w = peers(2);
        let mut job = RequesterJob::new(spec(2, false), 0, 60_000);
        let reannounces = |actions: &[Action]| {
            actions
                .iter()
                .filter(|a| matches!(a, Action::Reannounce))
                .count()
        };
        job.on_offer(0, w[0], 500, 0);
        assert_eq!(assigned(&job.on_tick(OFFER_WINDOW_MS)), vec![w[0]]);
        job.on_answer(OFFER_WINDOW_MS, w[0], Answer::Accepted);
        assert_eq!(job.next_wakeup_ms(), Some(REANNOUNCE_FIRST_MS));
        assert_eq!(reannounces(&job.on_tick(REANNOUNCE_FIRST_MS - 1)), 0);
        assert_eq!(reannounces(&job.on_tick(REANNOUNCE_FIRST_MS)), 1);
        // The next one waits twice as long.
        let second = REANNOUNCE_FIRST_MS + 2 * REANNOUNCE_FIRST_MS;
        assert_eq!(job.next_wakeup_ms(), Some(second));
        assert_eq!(reannounces(&job.on_tick(second - 1)), 0);
        assert_eq!(reannounces(&job.on_tick(second)), 1);
        // A worker that hears it offers and fills the slot: no more announcements.
        let filled = job.on_offer(second + 10, w[1], 500, 0);
        assert_eq!(assigned(&filled), vec![w[1]]);
        job.on_answer(second + 10, w[1], Answer::Accepted);
        // When the third announcement would have been due (and before the first worker's commitment is).
        let third = second + 4 * REANNOUNCE_FIRST_MS;
        assert_eq!(job.slots[&0].worker, w[0]);
        assert!(third < job.slot_commit_by(0));
        assert_eq!(reannounces(&job.on_tick(third)), 0);
        assert_eq!(job.reannounced, 2);
    }

    #[test]
    fn a_job_without_any_offer_is_announced_again_and_never_more_often_than_the_cap() {
        let mut job = RequesterJob::new(spec(1, false), 0, 600_000);
        let mut times = Vec::new();
        let mut now = 0;
        while now < 120_000 {
            let next = job.next_wakeup_ms().expect("live");
            assert!(next > now || now == 0, "woken at {now} and again at {next}");
            now = next;
            if job
                .on_tick(now)
                .iter()
                .any(|a| matches!(a, Action::Reannounce))
            {
                times.push(now);
            }
        }
        let gaps: Vec<u64> = times.windows(2).map(|t| t[1] - t[0]).collect();
        assert_eq!(&gaps[..3], &[4_000, 8_000, 16_000]);
        assert!(
            gaps[3..].iter().all(|g| *g == REANNOUNCE_MAX_MS),
            "{gaps:?}"
        );
        assert_eq!(job.phase, Phase::Announced);
    }

    #[test]
    fn offers_that_cannot_be_assigned_do_not_wake_the_requester_in_a_loop() {
        let w = peers(2);
        let mut job = RequesterJob::new(spec(2, false), 0, 600_000);
        for p in &w {
            job.on_offer(0, *p, 500, crate::tally::MIN_REPUTATION - 1);
        }
        let mut now = OFFER_WINDOW_MS;
        for _ in 0..20 {
            assert!(assigned(&job.on_tick(now)).is_empty());
            let next = job.next_wakeup_ms().expect("live");
            assert!(next > now, "woken at {now} and again at {next}");
            now = next;
        }
        assert_eq!(job.phase, Phase::Announced);
    }

    #[test]
    fn late_offers_are_kept_only_while_they_could_replace_someone() {
        let w = peers(12);
        let mut job = RequesterJob::new(spec(2, false), 0, 60_000);
        job.on_offer(0, w[0], 500, 0);
        job.on_offer(0, w[1], 500, 0);
        assert_eq!(assigned(&job.on_tick(OFFER_WINDOW_MS)).len(), 2);
        // Four spares are enough for two replicas; a fifth as good is not recorded.
        for p in &w[2..7] {
            job.on_offer(OFFER_WINDOW_MS, *p, 500, 0);
        }
        assert_eq!(job.offers.len(), 6);
        // A better one still is (a crowd of fresh identities offering first cannot crowd out a record).
        job.on_offer(OFFER_WINDOW_MS, w[7], 500, 3);
        assert_eq!(job.offers.len(), 7);
        assert!(job.offers.iter().any(|o| o.peer == w[7]));
    }

    #[test]
    fn invited_workers_with_a_record_are_awaited_before_a_crowd_gets_the_slots() {
        let w = peers(16);
        let invited = w[..6].to_vec();
        let mut job = RequesterJob::new(spec(3, false), 0, 60_000).inviting(invited.clone());
        // Ten fresh identities offer at once; the window does not close on them alone.
        for p in &w[6..] {
            assert!(job.on_offer(10, *p, 500, 0).is_empty());
        }
        assert!(assigned(&job.on_tick(OFFER_WINDOW_MS)).is_empty());
        assert_eq!(job.next_wakeup_ms(), Some(RECORD_WAIT_MS));
        // One invited worker is not enough for the two slots that go by record.
        assert!(job.on_offer(600, w[0], 500, 4).is_empty());
        // A second one is: they take the majority, a fresh identity the third slot.
        let chosen = assigned(&job.on_offer(700, w[1], 500, 2));
        assert_eq!(chosen.len(), 3);
        assert!(
            chosen.contains(&w[0]) && chosen.contains(&w[1]),
            "{chosen:?}"
        );

        // When the invited stay silent, the job goes to whoever offered once the longer wait is over.
        let mut job = RequesterJob::new(spec(3, false), 0, 60_000).inviting(invited);
        for p in &w[6..] {
            job.on_offer(10, *p, 500, 0);
        }
        assert!(assigned(&job.on_tick(RECORD_WAIT_MS - 1)).is_empty());
        assert_eq!(assigned(&job.on_tick(RECORD_WAIT_MS)).len(), 3);

        // Fewer invited than the slots by record: the usual window.
        let mut job = RequesterJob::new(spec(3, false), 0, 60_000).inviting(w[..1].to_vec());
        job.on_offer(10, w[6], 500, 0);
        assert_eq!(job.next_wakeup_ms(), Some(OFFER_WINDOW_MS));
    }

    #[test]
    fn no_majority_and_nobody_left_fails_with_a_reason() {
        let w = peers(3);
        let outputs: [&'static [u8]; 3] = [b"a", b"b", b"c"];
        let mut job = RequesterJob::new(spec(3, false), 0, 60_000);
        let w2 = w.clone();
        drive(&mut job, &w, |p| {
            Some(outputs[w2.iter().position(|x| x == p).unwrap()])
        });
        assert_eq!(job.phase, Phase::Failed);
        assert!(job.reason.contains("no majority"), "{}", job.reason);
    }

    #[test]
    fn no_majority_then_fresh_workers_settle_it() {
        let w = peers(6);
        let (first, liar) = (w[0], w[1]);
        let mut job = RequesterJob::new(spec(3, false), 0, 60_000);
        // the first round has two liars (best records, so both surely picked) disagreeing with each other
        let actions = drive_with_reputation(
            &mut job,
            &w,
            |p| {
                Some(if *p == first {
                    b"x"
                } else if *p == liar {
                    b"y"
                } else {
                    b"right"
                })
            },
            |p| if *p == first || *p == liar { 10 } else { 0 },
        );
        assert!(job.slots.len() > 3, "a second round was needed");
        assert_eq!(job.phase, Phase::Verified, "{}", job.reason);
        assert_eq!(job.verdict.as_ref().unwrap().output, cid(b"right"));
        assert!(owed(&actions)
            .iter()
            .all(|(p, _)| *p != first && *p != liar));
    }

    #[test]
    fn a_reveal_that_does_not_open_its_commitment_is_dropped() {
        let w = peers(3);
        let mut job = RequesterJob::new(spec(3, false), 0, 60_000);
        let mut actions = Vec::new();
        for p in &w {
            actions.extend(job.on_offer(0, *p, 1, 0));
        }
        actions.extend(job.on_tick(OFFER_WINDOW_MS));
        for p in &w {
            let (c, _) = commit_and_reveal(&job, *p, b"right", 5);
            actions.extend(job.on_commitment(300, *p, c));
        }
        assert_eq!(job.phase, Phase::Revealing);
        let (_, mut forged) = commit_and_reveal(&job, w[0], b"right", 5);
        forged.fuel_used = 4;
        let a = job.on_reveal(301, w[0], forged);
        assert!(a.contains(&Action::Reputation {
            peer: w[0],
            change: RepChange::Disagreed
        }));
        for p in &w[1..] {
            let (_, r) = commit_and_reveal(&job, *p, b"right", 5);
            job.on_reveal(302, *p, r);
        }
        assert_eq!(
            job.phase,
            Phase::Verifying,
            "2 of 3 assigned still make a majority"
        );
        assert!(owed(&job.on_verified(true, "")).len() == 2);
        assert_eq!(job.phase, Phase::Verified);
    }

    #[test]
    fn verifier_runs_before_acceptance_and_can_reject() {
        let w = peers(3);
        let mut job = RequesterJob::new(spec(3, true), 0, 60_000);
        let actions = drive_until_verifying(&mut job, &w);
        assert!(actions.contains(&Action::CheckResult));
        assert!(
            owed(&actions).is_empty(),
            "nothing is owed before the verifier accepts"
        );
        let end = job.on_verified(false, "printed 'bad'");
        assert_eq!(job.phase, Phase::Failed);
        assert!(owed(&end).is_empty());

        let mut job = RequesterJob::new(spec(3, true), 0, 60_000);
        drive_until_verifying(&mut job, &w);
        let end = job.on_verified(true, "");
        assert_eq!(job.phase, Phase::Verified);
        assert_eq!(owed(&end).len(), 3);
    }

    fn drive_until_verifying(job: &mut RequesterJob, w: &[PeerId]) -> Vec<Action> {
        let mut actions = Vec::new();
        for p in w {
            actions.extend(job.on_offer(0, *p, 1, 0));
        }
        actions.extend(job.on_tick(OFFER_WINDOW_MS));
        for p in w {
            let (c, _) = commit_and_reveal(job, *p, b"right", 5);
            actions.extend(job.on_commitment(300, *p, c));
        }
        for p in w {
            let (_, r) = commit_and_reveal(job, *p, b"right", 5);
            actions.extend(job.on_reveal(301, *p, r));
        }
        assert_eq!(job.phase, Phase::Verifying);
        actions
    }

    #[test]
    fn every_job_ends_by_its_deadline_with_a_reason() {
        // nobody offers
        let mut job = RequesterJob::new(spec(3, false), 0, 10_000);
        assert!(job
            .on_tick(9_999)
            .iter()
            .all(|a| matches!(a, Action::Reannounce)));
        let a = job.on_tick(10_000);
        assert_eq!(job.phase, Phase::Expired);
        assert!(job.reason.contains("0 offers"), "{}", job.reason);
        assert!(a.contains(&Action::Finished));
        // workers accept and then fall silent
        let w = peers(3);
        let mut job = RequesterJob::new(spec(3, false), 0, 10_000);
        for p in &w {
            job.on_offer(0, *p, 1, 0);
            job.on_answer(0, *p, Answer::Accepted);
        }
        job.on_tick(OFFER_WINDOW_MS);
        let mut now = OFFER_WINDOW_MS;
        while let Some(t) = job.next_wakeup_ms() {
            assert!(
                t > now || job.phase.is_terminal() || t == now,
                "time goes forward"
            );
            now = t.max(now + 1);
            job.on_tick(now);
        }
        assert!(job.phase.is_terminal());
        assert!(now <= 10_000);
    }

    #[test]
    fn cancel_is_terminal_and_idempotent() {
        let mut job = RequesterJob::new(spec(1, false), 0, 10_000);
        let a = job.cancel("user asked");
        assert_eq!(job.phase, Phase::Cancelled);
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::PublishCancellation { .. })));
        assert!(job.cancel("again").is_empty());
        assert!(job.on_tick(20_000).is_empty());
    }

    #[test]
    fn the_record_survives_a_round_trip_through_its_encoding() {
        let w = peers(3);
        let mut job = RequesterJob::new(spec(3, false), 0, 60_000);
        for p in &w {
            job.on_offer(0, *p, 1, 0);
        }
        job.on_tick(OFFER_WINDOW_MS);
        let (c, _) = commit_and_reveal(&job, w[0], b"right", 5);
        job.on_commitment(300, w[0], c);
        let bytes = crate::messages::to_cbor(&job);
        let back: RequesterJob = crate::messages::from_cbor(&bytes).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn the_offer_window_closes_early_only_for_workers_with_a_record() {
        let w = peers(3);
        // three fresh identities: the window stays open until it ends
        let mut job = RequesterJob::new(spec(3, false), 0, 10_000);
        for p in &w {
            assert!(assigned(&job.on_offer(1, *p, 1, 0)).is_empty());
        }
        assert_eq!(assigned(&job.on_tick(OFFER_WINDOW_MS)).len(), 3);
        // two of three with a record: assigned at the third offer
        let mut job = RequesterJob::new(spec(3, false), 0, 10_000);
        job.on_offer(1, w[0], 1, 3);
        job.on_offer(1, w[1], 1, 0);
        assert_eq!(assigned(&job.on_offer(2, w[2], 1, 1)).len(), 3);
    }

    #[test]
    fn a_restart_keeps_assigned_workers_until_their_commit_deadline() {
        let w = peers(3);
        let mut job = RequesterJob::new(spec(3, false), 0, 60_000);
        for p in &w {
            job.on_offer(0, *p, 1, 0);
        }
        job.on_tick(OFFER_WINDOW_MS);
        // back long after the answer timeout: the assignments go out again and nobody is dropped yet
        let back = OFFER_WINDOW_MS + 10 * ANSWER_TIMEOUT_MS;
        assert_eq!(assigned(&job.on_restart(back)).len(), 3);
        assert!(job.on_tick(back + 1).is_empty());
        let (c, _) = commit_and_reveal(&job, w[0], b"right", 5);
        job.on_commitment(back + 1, w[0], c);
        assert_eq!(job.progress(), (3, 1, 0));
    }

    #[test]
    fn offers_above_the_price_or_repeated_are_ignored() {
        let w = peers(1);
        let mut job = RequesterJob::new(spec(1, false), 0, 10_000);
        assert!(job.on_offer(0, w[0], 1_001, 0).is_empty());
        assert!(job.offers.is_empty());
        job.on_offer(0, w[0], 10, 0);
        job.on_offer(0, w[0], 5, 0);
        assert_eq!(job.offers.len(), 1);
    }
}
