//! The commit path of a run, summed over members (`summary.json`, `commit_path`): how long requesters waited for
//! assignments' answers, and how long workers took to fetch code and input, to get a thread, to run and to have
//! their commitment acknowledged — with the steps that did not complete. A job that expires "while committing"
//! waited in one of these.

use jobmesh_node::market::commit_path::CommitPathSamples;
use serde::Serialize;

use crate::Cluster;

/// One step's durations: how many, p50, p95, p99 and the longest, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepTimes {
    /// Samples.
    pub count: usize,
    /// p50, p95, p99.
    pub ms: [f64; 3],
    /// The longest.
    pub max_ms: f64,
}

impl StepTimes {
    fn of(samples: &[u32]) -> StepTimes {
        let mut v: Vec<f64> = samples.iter().map(|m| f64::from(*m)).collect();
        v.sort_by(f64::total_cmp);
        StepTimes {
            count: v.len(),
            ms: jobmesh_p2p::p50_p95_p99(&v),
            max_ms: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// The commit path over every member.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommitPathReport {
    /// Requester: assignment sent → answered.
    pub answer: StepTimes,
    /// Worker: accepted → code and input stored.
    pub fetch: StepTimes,
    /// Worker: fetched → the run starts on a blocking thread.
    pub queue: StepTimes,
    /// Worker: the run.
    pub run: StepTimes,
    /// Worker: output stored → commitment acknowledged.
    pub deliver: StepTimes,
    /// Assignments whose answer never came.
    pub unanswered: u64,
    /// Fetches of code or input that failed.
    pub fetch_failed: u64,
    /// Runs that failed or were cancelled.
    pub run_failed: u64,
    /// Commitments not acknowledged by their deadline.
    pub undelivered: u64,
}

/// Sums the members' commit paths (a restarted member counts from its restart).
pub fn report(cluster: &Cluster) -> CommitPathReport {
    let mut all = CommitPathSamples::default();
    for m in &cluster.members {
        all.merge(&m.market.commit_path());
    }
    CommitPathReport {
        answer: StepTimes::of(&all.answer_ms),
        fetch: StepTimes::of(&all.fetch_ms),
        queue: StepTimes::of(&all.queue_ms),
        run: StepTimes::of(&all.run_ms),
        deliver: StepTimes::of(&all.deliver_ms),
        unanswered: all.unanswered,
        fetch_failed: all.fetch_failed,
        run_failed: all.run_failed,
        undelivered: all.undelivered,
    }
}
