//! Replaying a job with logs (`jobmesh job replay`): what of a spec a replay needs ([`ReplaySpec`], carried in
//! [`crate::JobStatus`]) and the traced re-run itself ([`replay`]), which says whether it agrees with the
//! accepted result.
//!
//! Owns: these. Must not touch: the network or the market's state; the caller hands in the code and input.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use jobmesh_exec::{ExecError, Executor, Limits, ReplayReport};
use serde::{Deserialize, Serialize};

use crate::messages::{CodeKind, JobLimits, JobSpec};
use crate::runner::{load_code, RunError};

/// What a replay needs of a job's spec besides its code and input files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaySpec {
    /// What the code is.
    pub kind: CodeKind,
    /// The Javy plugin CID (bytecode names it too).
    pub plugin: Option<String>,
    /// The limits the job ran under.
    pub limits: JobLimits,
}

impl ReplaySpec {
    /// The replay part of a spec.
    pub fn of(spec: &JobSpec) -> ReplaySpec {
        ReplaySpec {
            kind: spec.kind,
            plugin: spec.plugin.map(|c| c.to_string()),
            limits: spec.limits,
        }
    }

    /// The exec limits.
    pub fn exec_limits(&self) -> Limits {
        Limits {
            fuel: self.limits.max_fuel,
            memory_bytes: self.limits.memory_bytes,
            output_bytes: self.limits.output_bytes,
            stderr_bytes: self.limits.stderr_bytes,
        }
    }
}

/// Why a replay could not run (a job's own failure is in the report, not here).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The code is not something exec can load.
    #[error(transparent)]
    Code(#[from] RunError),
    /// The executor could not start the run.
    #[error("the replay did not run: {0}")]
    Exec(#[from] ExecError),
}

/// A replay's report, with the output and how long it took.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The report (lines, fuel, exception, limit).
    pub report: ReplayReport,
    /// The output the replay produced.
    pub output: Vec<u8>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Re-runs a job traced. A run longer than `timeout` is stopped and reported as hitting the time limit.
pub fn replay(
    exec: &Executor,
    spec: &ReplaySpec,
    code: &[u8],
    input: &[u8],
    timeout: Duration,
) -> Result<Replayed, ReplayError> {
    let code = load_code(spec.kind, code)?;
    let limits = spec.exec_limits();
    let cancel = exec.cancel_token();
    let (done, finished) = mpsc::channel::<()>();
    let timer = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            if finished.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
                cancel.cancel();
            }
        })
    };
    let started = Instant::now();
    let result = exec.run_traced(&code, input, &limits, &cancel);
    let elapsed = started.elapsed();
    let _ = done.send(());
    let _ = timer.join();
    let (outcome, trace) = result?;
    tracing::debug!(job = %outcome.job_id, status = outcome.status.name(), "replayed");
    Ok(Replayed {
        report: ReplayReport::new(&outcome, &trace, &limits, cancel.is_cancelled()),
        output: outcome.output,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobmesh_exec::Plugin;

    #[test]
    fn a_replay_that_runs_too_long_is_stopped_and_names_the_time_limit() {
        let exec = Executor::traced(None).unwrap();
        let source = "console.log('looping'); for (;;) {}";
        let code = exec
            .compile_js(&Plugin::bundled().cid(), "loop.js", source)
            .unwrap()
            .to_bytes();
        let spec = ReplaySpec::of(&crate::testkit::spec(1, false));
        let spec = ReplaySpec {
            limits: JobLimits {
                max_fuel: u64::MAX / 2,
                ..spec.limits
            },
            ..spec
        };
        let started = Instant::now();
        let replayed = replay(&exec, &spec, &code, b"", Duration::from_millis(300)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(20));
        let hit = replayed.report.limit.expect("a limit");
        assert_eq!(hit.limit, "time");
        assert_eq!(hit.after_line.as_deref(), Some("looping"));
        assert_eq!(replayed.report.status, "cancelled");
    }
}
