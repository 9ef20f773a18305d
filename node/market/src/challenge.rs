//! Challenges (docs/protocol.md, "Challenges"): the signed message a challenger publishes, the rules by which a
//! requester admits one before it spends CPU on a firm re-run ([`ChallengeGate`]), and the judgement of that
//! re-run ([`judge`]). Pure: no clock, network, database or job run here; the caller passes the time, the
//! accepted result and the re-run's result. (Wiring it to the mesh, the job's phase and reputation is the next
//! step.)

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cid::Cid;
use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use crate::messages::{open, JobId, MessageError};

/// Largest sealed challenge accepted (a challenge is a few fixed-size fields; it is refused unread beyond this).
pub const MAX_CHALLENGE_BYTES: usize = 1024;
/// Longest status name a challenge may carry.
pub const MAX_STATUS_LEN: usize = 32;
/// How long after the requester's acceptance a result can be challenged, unless configured otherwise: 24 h.
pub const DEFAULT_CHALLENGE_WINDOW_MS: u64 = 24 * 3_600_000;
/// Firm re-runs a requester grants one challenger per hour.
pub const CHALLENGES_PER_HOUR: usize = 4;

/// "This job's accepted result is wrong: my re-run gives this." Signed by the challenger (the envelope of
/// [`crate::messages::seal`]), so it cannot be forged for someone else, and it names the job and the
/// receipt, so it cannot be replayed onto another job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The job.
    pub job_id: JobId,
    /// The receipt the challenger checked.
    #[serde(with = "crate::wire_ids::cid")]
    pub receipt: Cid,
    /// The output CID of the challenger's re-run.
    #[serde(with = "crate::wire_ids::cid")]
    pub output: Cid,
    /// Its status name.
    pub status: String,
    /// Its fuel.
    pub fuel_used: u64,
}

/// The accepted result a requester holds for a job, which a challenge disputes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The job.
    pub job_id: JobId,
    /// Its receipt.
    pub receipt: Cid,
    /// The accepted output CID.
    pub output: Cid,
    /// The accepted status name.
    pub status: String,
    /// The accepted fuel.
    pub fuel_used: u64,
    /// When the requester accepted it (unix ms).
    pub accepted_ms: u64,
}

/// Why a challenge is refused before any re-run. Each is one line.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    /// Too large, not a challenge, or its signature does not verify.
    #[error("not a valid signed challenge: {0}")]
    Message(#[from] MessageError),
    /// The status name is longer than [`MAX_STATUS_LEN`].
    #[error("the challenge's status is longer than {MAX_STATUS_LEN} bytes")]
    Status,
    /// This node accepted no result for the job.
    #[error("no accepted result for job {0} on this node")]
    UnknownJob(JobId),
    /// The challenge names another receipt than the one this node issued.
    #[error("the challenge names receipt {given}, not this job's {issued}")]
    WrongReceipt {
        /// What it named.
        given: String,
        /// The job's receipt.
        issued: String,
    },
    /// The window after acceptance is over: the result is final.
    #[error("the challenge window of job {0} is closed: its result is final")]
    WindowClosed(JobId),
    /// The challenge claims the accepted result itself: nothing is disputed.
    #[error("the challenge agrees with the accepted result: nothing to resolve")]
    NoDispute,
    /// This challenger already challenged this job (a challenge replayed, or a second one).
    #[error("{0} already challenged this job")]
    Duplicate(PeerId),
    /// This challenger used up its firm re-runs for the hour.
    #[error("{0} has challenged {CHALLENGES_PER_HOUR} times in the last hour: try later")]
    RateLimited(PeerId),
}

/// What a firm re-run decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The re-run agrees with the challenger, not the accepted result: the result is overturned and its signers
    /// lose standing.
    Upheld,
    /// The re-run agrees with the accepted result: nothing changes and the challenger loses standing.
    Rejected,
    /// The re-run agrees with neither (another engine, a bug): nothing changes for anyone; worth a log line.
    Inconclusive,
}

/// One run's result as compared: output CID, status and fuel.
pub type RunResult<'a> = (&'a Cid, &'a str, u64);

/// Compares the requester's own re-run with the accepted result and the challenger's claim.
pub fn judge(accepted: &Accepted, challenge: &Challenge, rerun: RunResult<'_>) -> Resolution {
    let same = |output: &Cid, status: &str, fuel: u64| (output, status, fuel) == rerun;
    if same(&accepted.output, &accepted.status, accepted.fuel_used) {
        Resolution::Rejected
    } else if same(&challenge.output, &challenge.status, challenge.fuel_used) {
        Resolution::Upheld
    } else {
        Resolution::Inconclusive
    }
}

/// A requester's admission rules for challenges: one per challenger per job, within the window, at most
/// [`CHALLENGES_PER_HOUR`] per challenger, so false challenges cannot make it burn CPU. In memory: a restart
/// forgets the hour's counts (and a repeated challenge is then judged again, at the cost of one re-run).
#[derive(Debug)]
pub struct ChallengeGate {
    window_ms: u64,
    seen: BTreeSet<(JobId, PeerId)>,
    recent: BTreeMap<PeerId, VecDeque<u64>>,
}

impl ChallengeGate {
    /// A gate with this challenge window (ms after acceptance).
    pub fn new(window_ms: u64) -> ChallengeGate {
        ChallengeGate {
            window_ms,
            seen: BTreeSet::new(),
            recent: BTreeMap::new(),
        }
    }

    /// Opens a sealed challenge and decides whether it earns a firm re-run. `accepted` is this node's accepted
    /// result for the job the challenge names (`None`: none). On `Ok` the challenger's slot for the job and one
    /// of its hourly re-runs are used.
    pub fn admit(
        &mut self,
        sealed: &[u8],
        accepted: impl FnOnce(&JobId) -> Option<Accepted>,
        now_ms: u64,
    ) -> Result<(PeerId, Challenge, Accepted), ChallengeError> {
        let (challenger, challenge): (PeerId, Challenge) = open(sealed, MAX_CHALLENGE_BYTES)?;
        if challenge.status.len() > MAX_STATUS_LEN {
            return Err(ChallengeError::Status);
        }
        let job = challenge.job_id;
        let accepted = accepted(&job).ok_or(ChallengeError::UnknownJob(job))?;
        if accepted.receipt != challenge.receipt {
            return Err(ChallengeError::WrongReceipt {
                given: challenge.receipt.to_string(),
                issued: accepted.receipt.to_string(),
            });
        }
        if now_ms > accepted.accepted_ms.saturating_add(self.window_ms) {
            return Err(ChallengeError::WindowClosed(job));
        }
        if (
            &accepted.output,
            accepted.status.as_str(),
            accepted.fuel_used,
        ) == (
            &challenge.output,
            challenge.status.as_str(),
            challenge.fuel_used,
        ) {
            return Err(ChallengeError::NoDispute);
        }
        if self.seen.contains(&(job, challenger)) {
            return Err(ChallengeError::Duplicate(challenger));
        }
        let recent = self.recent.entry(challenger).or_default();
        while recent.front().is_some_and(|&t| t + 3_600_000 <= now_ms) {
            recent.pop_front();
        }
        if recent.len() >= CHALLENGES_PER_HOUR {
            return Err(ChallengeError::RateLimited(challenger));
        }
        recent.push_back(now_ms);
        self.seen.insert((job, challenger));
        Ok((challenger, challenge, accepted))
    }
}

#[cfg(test)]
mod tests;
