//! Where the commit step of a job spends its time on this node: the requester's wait for an assignment's
//! answer, and the worker's fetch of code and input, wait for a blocking thread, run, and delivery of the
//! commitment. Recorded as they happen, read by the simulator (`summary.json`, `commit_path`) to find which step
//! made a job miss its commitment deadline.
//!
//! Owns: the samples and counters only. Must not touch: the state machines or the network.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Samples kept per step at most (later ones are counted in [`CommitPathSamples::dropped`] and not kept).
pub const MAX_SAMPLES: usize = 100_000;

/// One step of the commit path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Requester: assignment sent → the worker's answer (or giving up on it).
    Answer,
    /// Worker: assignment accepted → code and input in the store.
    Fetch,
    /// Worker: code and input stored → the run starts on a blocking thread.
    Queue,
    /// Worker: the wasm run, with storing its output.
    Run,
    /// Worker: output stored → the requester acknowledged the commitment.
    Deliver,
}

/// A step that did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The requester gave up on an assignment's answer (unreachable worker).
    Unanswered,
    /// The worker could not fetch code or input in time.
    FetchFailed,
    /// The run failed or was cancelled.
    RunFailed,
    /// The commitment was not acknowledged by its deadline.
    Undelivered,
}

/// Durations in milliseconds per step, and counts of the steps that did not complete.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommitPathSamples {
    /// [`Step::Answer`] durations.
    pub answer_ms: Vec<u32>,
    /// [`Step::Fetch`] durations.
    pub fetch_ms: Vec<u32>,
    /// [`Step::Queue`] durations.
    pub queue_ms: Vec<u32>,
    /// [`Step::Run`] durations.
    pub run_ms: Vec<u32>,
    /// [`Step::Deliver`] durations.
    pub deliver_ms: Vec<u32>,
    /// [`Miss::Unanswered`] count.
    pub unanswered: u64,
    /// [`Miss::FetchFailed`] count.
    pub fetch_failed: u64,
    /// [`Miss::RunFailed`] count.
    pub run_failed: u64,
    /// [`Miss::Undelivered`] count.
    pub undelivered: u64,
    /// Samples not kept because a step already held [`MAX_SAMPLES`].
    pub dropped: u64,
}

impl CommitPathSamples {
    /// Adds `other`'s samples and counts to these (samples beyond [`MAX_SAMPLES`] are not kept).
    pub fn merge(&mut self, other: &CommitPathSamples) {
        for (mine, theirs) in [
            (&mut self.answer_ms, &other.answer_ms),
            (&mut self.fetch_ms, &other.fetch_ms),
            (&mut self.queue_ms, &other.queue_ms),
            (&mut self.run_ms, &other.run_ms),
            (&mut self.deliver_ms, &other.deliver_ms),
        ] {
            mine.extend(theirs.iter().take(MAX_SAMPLES.saturating_sub(mine.len())));
        }
        self.unanswered += other.unanswered;
        self.fetch_failed += other.fetch_failed;
        self.run_failed += other.run_failed;
        self.undelivered += other.undelivered;
        self.dropped += other.dropped;
    }
}

/// The commit path's samples of one node.
#[derive(Debug, Default)]
pub struct CommitPath {
    samples: Mutex<CommitPathSamples>,
}

impl CommitPath {
    /// Records that `step` took `took`.
    pub fn record(&self, step: Step, took: Duration) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let ms = u32::try_from(took.as_millis()).unwrap_or(u32::MAX);
        let list = match step {
            Step::Answer => &mut s.answer_ms,
            Step::Fetch => &mut s.fetch_ms,
            Step::Queue => &mut s.queue_ms,
            Step::Run => &mut s.run_ms,
            Step::Deliver => &mut s.deliver_ms,
        };
        if list.len() < MAX_SAMPLES {
            list.push(ms);
        } else {
            s.dropped += 1;
        }
    }

    /// Counts a step that did not complete.
    pub fn missed(&self, miss: Miss) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        match miss {
            Miss::Unanswered => s.unanswered += 1,
            Miss::FetchFailed => s.fetch_failed += 1,
            Miss::RunFailed => s.run_failed += 1,
            Miss::Undelivered => s.undelivered += 1,
        }
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> CommitPathSamples {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_bounded_and_merge() {
        let p = CommitPath::default();
        for _ in 0..MAX_SAMPLES + 5 {
            p.record(Step::Fetch, Duration::from_millis(7));
        }
        p.missed(Miss::Undelivered);
        let s = p.snapshot();
        assert_eq!(s.fetch_ms.len(), MAX_SAMPLES);
        assert_eq!((s.dropped, s.undelivered), (5, 1));
        let mut all = CommitPathSamples::default();
        all.merge(&s);
        all.merge(&s);
        assert_eq!(all.fetch_ms.len(), MAX_SAMPLES);
        assert_eq!(all.undelivered, 2);
    }
}
