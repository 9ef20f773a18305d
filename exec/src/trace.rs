//! The trace hook of replays: which bytes a job wrote to stdout and stderr, and how much fuel it had used
//! at each write (each `console.log` line is one write).
//!
//! It lives only in the linker of a traced executor ([`crate::Executor::traced`]): that linker's
//! `fd_write` reads the fuel before it writes to the job's pipes as WASI's own does. Host code consumes no
//! fuel, so a traced run ends with the same output, status and fuel as an untraced one
//! (`exec/tests/trace.rs` checks it); untraced executors never see this code.

use serde::{Deserialize, Serialize};
use wasmtime::{Caller, Linker};

use crate::wasi::{CappedPipe, JobState};

/// Most write events a trace keeps; later writes are counted in [`Trace::dropped`].
pub const MAX_TRACE_EVENTS: usize = 10_000;
/// Most bytes of one write a trace keeps (the rest is still in the run's stdout/stderr).
pub const MAX_TRACE_TEXT: usize = 1024;

/// One write by the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// `1` for stdout, `2` for stderr.
    pub fd: u32,
    /// Fuel used by the job when it made the write.
    pub fuel_used: u64,
    /// What it wrote (at most [`MAX_TRACE_TEXT`] bytes; a write past a full stderr keeps nothing).
    pub bytes: Vec<u8>,
}

/// Every write of one traced run, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The writes, at most [`MAX_TRACE_EVENTS`].
    pub events: Vec<TraceEvent>,
    /// Writes left out past [`MAX_TRACE_EVENTS`].
    pub dropped: u64,
}

/// What a traced store holds besides the job's own state.
pub(crate) struct TraceState {
    pub fuel_limit: u64,
    pub stdout: CappedPipe,
    pub stderr: CappedPipe,
    pub trace: Trace,
}

impl TraceState {
    fn record(&mut self, fd: u32, fuel_used: u64, before: usize) {
        let pipe = if fd == 1 { &self.stdout } else { &self.stderr };
        let bytes = pipe.bytes_from(before, MAX_TRACE_TEXT);
        if self.trace.events.len() >= MAX_TRACE_EVENTS {
            self.trace.dropped += 1;
            return;
        }
        self.trace.events.push(TraceEvent {
            fd,
            fuel_used,
            bytes,
        });
    }
}

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_FAULT: i32 = 21;
/// WASI writes stdio in chunks of this size (`wasmtime_wasi::p1`'s `BlockingMode::write`).
const CHUNK: usize = 4096;

/// Replaces `fd_write` in `linker` by one that records each write to stdout or stderr with the fuel used.
///
/// A host function called from another cannot see the guest's memory, so it cannot wrap WASI's own
/// `fd_write`: it does what that one does for a job's only writable descriptors, stdout and stderr (write the
/// first non-empty iovec in 4 KiB chunks to the pipe, trap when stdout overflows, report the whole length
/// written), and answers `EBADF` for any other descriptor, as WASI does for jobs that have no files.
pub(crate) fn add_trace_hook(linker: &mut Linker<JobState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "fd_write",
        |mut caller: Caller<'_, JobState>,
         fd: i32,
         iovs: i32,
         iovs_len: i32,
         nwritten: i32|
         -> wasmtime::Result<i32> {
            let fuel_left = caller.get_fuel().unwrap_or(0);
            let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
                return Ok(ERRNO_FAULT);
            };
            let Some(buf) = first_non_empty(memory.data(&caller), iovs, iovs_len) else {
                return Ok(ERRNO_FAULT);
            };
            let Some(t) = caller.data_mut().trace.as_deref_mut() else {
                return Ok(ERRNO_BADF);
            };
            let pipe = match fd {
                1 => t.stdout.clone(),
                2 => t.stderr.clone(),
                _ => return Ok(ERRNO_BADF),
            };
            let before = pipe.written();
            let written = buf.chunks(CHUNK).try_for_each(|c| pipe.append(c));
            let used = t.fuel_limit.saturating_sub(fuel_left);
            t.record(fd as u32, used, before);
            written.map_err(|e| wasmtime::format_err!("{e}"))?;
            let at = nwritten as u32 as usize;
            match memory.data_mut(&mut caller).get_mut(at..at + 4) {
                Some(slot) => slot.copy_from_slice(&(buf.len() as u32).to_le_bytes()),
                None => return Ok(ERRNO_FAULT),
            }
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A copy of the first non-empty buffer of a ciovec array (empty if all are), `None` if out of bounds.
fn first_non_empty(mem: &[u8], iovs: i32, iovs_len: i32) -> Option<Vec<u8>> {
    let word = |at: usize| -> Option<usize> {
        let b = mem.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(b.try_into().ok()?) as usize)
    };
    let base = iovs as u32 as usize;
    for i in 0..iovs_len as u32 as usize {
        let at = base.checked_add(i.checked_mul(8)?)?;
        let (ptr, len) = (word(at)?, word(at + 4)?);
        if len > 0 {
            return Some(mem.get(ptr..ptr.checked_add(len)?)?.to_vec());
        }
    }
    Some(Vec::new())
}
