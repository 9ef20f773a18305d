//! The deterministic WASI preview1 a job sees: stdin from memory, capped stdout/stderr, no filesystem,
//! network, environment or arguments, a clock fixed at 0, randomness seeded from the job id, and
//! scheduling calls (`poll_oneoff`, `sched_yield`) that return at once. Plus the memory limiter.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use rand_core::SeedableRng;
use rand_pcg::Pcg64Mcg;
use wasmtime::{Caller, Linker, ResourceLimiter};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use crate::JobId;

/// Everything a job's store holds.
pub(crate) struct JobState {
    pub wasi: WasiP1Ctx,
    pub limiter: MemoryLimiter,
    /// Only in a traced executor's stores (replays): the writes seen so far.
    pub trace: Option<Box<crate::trace::TraceState>>,
}

/// Caps each linear memory at the job's limit; going past it traps and is remembered, so the outcome is
/// `memory_limit` rather than a generic trap.
pub(crate) struct MemoryLimiter {
    pub max_bytes: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            wasmtime::bail!("memory limit of {} bytes exceeded", self.max_bytes);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        8
    }

    fn memories(&self) -> usize {
        1
    }
}

/// An in-memory stdout/stderr with a size cap. Over the cap, stdout traps (and remembers it), stderr
/// keeps what fits and drops the rest.
#[derive(Clone)]
pub(crate) struct CappedPipe {
    buf: Arc<Mutex<Vec<u8>>>,
    limit: usize,
    overflowed: Arc<AtomicBool>,
    trap_on_overflow: bool,
}

impl CappedPipe {
    pub fn new(limit: usize, trap_on_overflow: bool) -> Self {
        CappedPipe {
            buf: Arc::default(),
            limit,
            overflowed: Arc::default(),
            trap_on_overflow,
        }
    }

    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.buf.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Bytes held so far.
    pub fn written(&self) -> usize {
        self.buf.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A copy of at most `max` bytes from offset `from`.
    pub fn bytes_from(&self, from: usize, max: usize) -> Vec<u8> {
        let buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let from = from.min(buf.len());
        buf[from..buf.len().min(from.saturating_add(max))].to_vec()
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Appends what fits; `Err` when it did not all fit and this pipe traps on overflow.
    pub(crate) fn append(&self, bytes: &[u8]) -> Result<(), String> {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.limit - buf.len();
        if bytes.len() <= room {
            buf.extend_from_slice(bytes);
            return Ok(());
        }
        self.overflowed.store(true, Ordering::Relaxed);
        if self.trap_on_overflow {
            return Err(format!("output limit of {} bytes exceeded", self.limit));
        }
        buf.extend_from_slice(&bytes[..room]);
        Ok(())
    }
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes)
            .map_err(|e| StreamError::Trap(wasmtime::format_err!("{e}")))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always accept a chunk: the limit is enforced in `write`, so an overflow is seen, not a stall.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.append(buf)
                .map(|()| buf.len())
                .map_err(io::Error::other),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Builds the WASI context of one run. Returns it with handles on its stdout and stderr.
pub(crate) fn job_wasi(
    job_id: &JobId,
    input: &[u8],
    output_limit: usize,
    stderr_limit: usize,
) -> (WasiP1Ctx, CappedPipe, CappedPipe) {
    let stdout = CappedPipe::new(output_limit, true);
    let stderr = CappedPipe::new(stderr_limit, false);
    let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
    // Fixed clocks, no sockets, and a fixed-seed RNG, which is then replaced by one seeded from the job id.
    deterministic_wasi_ctx::add_determinism_to_wasi_ctx_builder(&mut builder);
    let seed = |domain: u8| {
        let mut s = [0u8; 16];
        for (i, b) in s.iter_mut().enumerate() {
            *b = job_id.0[i] ^ job_id.0[16 + i] ^ domain;
        }
        s
    };
    builder
        .secure_random(Pcg64Mcg::from_seed(seed(0x5e)))
        .insecure_random(Pcg64Mcg::from_seed(seed(0x1a)))
        .insecure_random_seed(u128::from_le_bytes(seed(0x33)))
        .stdin(MemoryInputPipe::new(input.to_vec()))
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    (builder.build_p1(), stdout, stderr)
}

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_INVAL: i32 = 28;
const ERRNO_FAULT: i32 = 21;
/// `subscription` is 48 bytes (userdata u64, tag u8, union of 40 bytes); `event` is 32 bytes.
const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;

/// Replaces `poll_oneoff` (every subscription fires at once, as if no time passed) and `sched_yield` (a
/// no-op), so that sleeping or polling cannot make a job depend on time. Unlike
/// `deterministic_wasi_ctx::replace_scheduling_functions`, a bad subscription is an error code for the guest,
/// never a host panic.
pub(crate) fn add_scheduling<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        |mut caller: Caller<'_, T>, in_ptr: i32, out_ptr: i32, n: i32, nevents_ptr: i32| -> i32 {
            let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
                return ERRNO_FAULT;
            };
            let mem = memory.data_mut(&mut caller);
            let (in_ptr, out_ptr, n, nevents_ptr) = (
                in_ptr as u32 as usize,
                out_ptr as u32 as usize,
                n as u32 as usize,
                nevents_ptr as u32 as usize,
            );
            let Some(subs_end) = n
                .checked_mul(SUBSCRIPTION_SIZE)
                .and_then(|l| l.checked_add(in_ptr))
            else {
                return ERRNO_FAULT;
            };
            let Some(events_end) = n
                .checked_mul(EVENT_SIZE)
                .and_then(|l| l.checked_add(out_ptr))
            else {
                return ERRNO_FAULT;
            };
            if subs_end > mem.len()
                || events_end > mem.len()
                || nevents_ptr.saturating_add(4) > mem.len()
            {
                return ERRNO_FAULT;
            }
            for i in 0..n {
                let sub = in_ptr + i * SUBSCRIPTION_SIZE;
                let tag = mem[sub + 8];
                if tag > 2 {
                    return ERRNO_INVAL;
                }
                let mut event = [0u8; EVENT_SIZE];
                event[..8].copy_from_slice(&mem[sub..sub + 8]); // userdata
                event[10] = tag; // error (u16) = 0 at 8..10, type (u8) at 10
                mem[out_ptr + i * EVENT_SIZE..out_ptr + (i + 1) * EVENT_SIZE]
                    .copy_from_slice(&event);
            }
            mem[nevents_ptr..nevents_ptr + 4].copy_from_slice(&(n as u32).to_le_bytes());
            ERRNO_SUCCESS
        },
    )?;
    linker.func_wrap("wasi_snapshot_preview1", "sched_yield", || -> i32 {
        ERRNO_SUCCESS
    })?;
    linker.allow_shadowing(false);
    Ok(())
}
