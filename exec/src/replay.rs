//! What a replay shows a developer: the job's log lines with the fuel used at each, its stderr, the JS
//! exception with its stack, and the limit it hit (and where). Built from a traced run's [`Outcome`] and
//! [`Trace`]; pure, so the CLI only prints it.

use serde::{Deserialize, Serialize};

use crate::{Limits, Outcome, Status, Trace};

/// One line the job wrote, with the fuel used when it wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// `stdout` or `stderr`.
    pub stream: String,
    /// Fuel used by the job at the write.
    pub fuel_used: u64,
    /// The text (lossy UTF-8, without its final newline).
    pub text: String,
}

/// The limit a run hit, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitHit {
    /// `fuel`, `memory`, `output` or `time`.
    pub limit: String,
    /// The limit in words (`out of fuel (limit 1000)`).
    pub message: String,
    /// Fuel used when the run stopped.
    pub at_fuel: u64,
    /// The last line the job wrote before it stopped, if any.
    pub after_line: Option<String>,
}

/// Everything a replay found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// The job id (hex).
    pub job_id: String,
    /// How the run ended (`ok`, `js_exception`, …).
    pub status: String,
    /// The ending in words.
    pub message: String,
    /// Fuel used.
    pub fuel_used: u64,
    /// The job's stderr (lossy UTF-8, cut at its `stderr_bytes`).
    pub stderr: String,
    /// An uncaught JavaScript exception: its message and stack as QuickJS prints them.
    pub exception: Option<String>,
    /// The limit the run hit, if it hit one.
    pub limit: Option<LimitHit>,
    /// Every line written to stdout or stderr, in order, with the fuel used at it.
    pub lines: Vec<LogLine>,
    /// Writes past the trace's bound, not in `lines`.
    pub lines_dropped: u64,
}

impl ReplayReport {
    /// The report of a traced run under `limits`. `timed_out`: the run was stopped for taking too long
    /// (its status is then `cancelled`).
    pub fn new(outcome: &Outcome, trace: &Trace, limits: &Limits, timed_out: bool) -> ReplayReport {
        let lines = log_lines(trace);
        let limit = limit_hit(outcome, limits, timed_out).map(|(limit, message)| LimitHit {
            limit: limit.into(),
            message,
            at_fuel: outcome.fuel_used,
            after_line: lines.last().map(|l| l.text.clone()),
        });
        ReplayReport {
            job_id: outcome.job_id.to_hex(),
            status: outcome.status.name().into(),
            message: outcome.status.describe(limits),
            fuel_used: outcome.fuel_used,
            stderr: String::from_utf8_lossy(&outcome.stderr).into_owned(),
            exception: match &outcome.status {
                Status::JsException { message } => Some(message.clone()),
                _ => None,
            },
            limit,
            lines,
            lines_dropped: trace.dropped,
        }
    }
}

/// Which limit a status means, and its words.
fn limit_hit(
    outcome: &Outcome,
    limits: &Limits,
    timed_out: bool,
) -> Option<(&'static str, String)> {
    let name = match outcome.status {
        Status::OutOfFuel => "fuel",
        Status::MemoryLimit => "memory",
        Status::OutputTooLarge => "output",
        Status::Cancelled if timed_out => {
            return Some(("time", "the replay's time limit was reached".into()))
        }
        _ => return None,
    };
    Some((name, outcome.status.describe(limits)))
}

/// The trace's writes as lines: a write is split at its newlines, and a write without one is joined to
/// the next write on the same stream (so `console.log`'s text and newline are one line).
fn log_lines(trace: &Trace) -> Vec<LogLine> {
    let mut lines = Vec::new();
    let mut open: [Option<LogLine>; 2] = [None, None];
    for event in &trace.events {
        let slot = usize::from(event.fd != 1);
        let text = String::from_utf8_lossy(&event.bytes);
        for (i, piece) in text.split('\n').enumerate() {
            if i > 0 {
                lines.extend(open[slot].take());
            }
            if piece.is_empty() {
                continue;
            }
            let line = open[slot].get_or_insert_with(|| LogLine {
                stream: if slot == 0 { "stdout" } else { "stderr" }.into(),
                fuel_used: event.fuel_used,
                text: String::new(),
            });
            line.text.push_str(piece);
        }
    }
    lines.extend(open.into_iter().flatten());
    lines
}
