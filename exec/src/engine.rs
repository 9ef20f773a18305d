//! The pinned wasmtime engine, the compiled-module cache (memory and disk), compiling JS through the
//! plugin and running jobs.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstancePre, Linker, Module, OptLevel, Store, Trap, UpdateDeadline,
};

use crate::trace::TraceState;
use crate::wasi::{add_scheduling, job_wasi, CappedPipe, JobState, MemoryLimiter};
use crate::{Cid, ExecError, JobCode, JobId, JsBytecode, Limits, Outcome, Plugin, Status, Trace};

/// The exact wasmtime version (pinned in Cargo.toml). Fuel counts depend on it.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// The engine's identity: wasmtime version and every engine flag that can change results or fuel.
/// Part of every [`JobId`] and of the module cache key.
pub const ENGINE_ID: &str =
    "wasmtime-48.0.8;consume_fuel;nan_canonicalization;relaxed_simd_deterministic;no_threads;opt=speed;stack=1MiB";

/// Limits for running the plugin's compiler (generous: compiling is cheap, but must still end).
const COMPILE_LIMITS: Limits = Limits {
    fuel: 50_000_000_000,
    memory_bytes: 512 << 20,
    output_bytes: 1 << 20,
    stderr_bytes: 64 << 10,
};

/// Stops a run from another thread: [`CancelToken::cancel`] makes the run it was handed to
/// ([`Executor::run_cancellable`]) end with [`Status::Cancelled`] at its next loop header or function entry.
///
/// It works through wasmtime's epoch interruption: cancelling bumps the engine's epoch, which makes every
/// run on that engine call back into the host once; the runs whose token is not cancelled carry on at once.
/// Epoch checks are not metered, so the fuel of a run that finishes is the same with or without them.
/// Cheap to clone; every clone cancels the same run.
#[derive(Clone)]
pub struct CancelToken {
    cancelled: Arc<AtomicBool>,
    engine: Option<Engine>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// Asks the run to stop. Returns at once; the run ends within one loop iteration of the job's code.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        if let Some(engine) = &self.engine {
            engine.increment_epoch();
        }
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

/// The error a cancelled run's epoch callback raises (classified as [`Status::Cancelled`]).
#[derive(Debug)]
struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// One module's compiled form, filled by the first caller that compiles it (see `Executor::load`).
type ModuleSlot = Mutex<Option<Arc<InstancePre<JobState>>>>;

/// Compiles and runs jobs. Cheap to share between threads (`&self` everywhere); holds one engine, a
/// cache of compiled modules (also on disk when given a cache dir) and the known plugins.
pub struct Executor {
    engine: Engine,
    metered: bool,
    /// Whether runs can be cancelled (epoch interruption); off only in [`Executor::new_uninterruptible`].
    interruptible: bool,
    /// Whether runs record a [`Trace`] (only executors made by [`Executor::traced`]).
    traced: bool,
    linker: Linker<JobState>,
    cache_dir: Option<PathBuf>,
    modules: Mutex<HashMap<[u8; 32], Arc<ModuleSlot>>>,
    /// Modules compiled (or read from the disk cache) by this executor so far.
    compilations: std::sync::atomic::AtomicU64,
    plugins: Mutex<HashMap<Cid, Plugin>>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

/// How compiled wasm is executed. Both back ends give the same output, status and fuel for every job
/// (`exec/tests/backends.rs` checks it byte for byte), so the back end is not part of [`ENGINE_ID`]: a node
/// on an unusual machine can run Pulley and still agree with native replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Cranelift's machine code for the host CPU (the default; fastest).
    #[default]
    Native,
    /// Wasmtime's portable Pulley interpreter: cranelift compiles to Pulley bytecode, which an interpreter
    /// written in Rust runs. Slower, but the same on every host wasmtime builds for.
    Pulley,
}

impl Backend {
    /// The cranelift target for this back end (`None`: the host).
    fn target(self) -> Option<&'static str> {
        match self {
            Backend::Native => None,
            Backend::Pulley if cfg!(target_pointer_width = "64") => Some("pulley64"),
            Backend::Pulley => Some("pulley32"),
        }
    }
}

/// The engine configuration behind [`ENGINE_ID`]. Epoch interruption (for cancelling) changes neither
/// results nor fuel, so it is not part of the id (the module cache key covers it through wasmtime's
/// compatibility hash); nor does the [`Backend`].
fn engine_config(
    metered: bool,
    interruptible: bool,
    backend: Backend,
) -> Result<Config, ExecError> {
    let mut config = Config::new();
    if let Some(target) = backend.target() {
        config
            .target(target)
            .map_err(|e| ExecError::Engine(format!("{e:#}")))?;
    }
    config
        .consume_fuel(metered)
        .epoch_interruption(interruptible)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .wasm_threads(false)
        .cranelift_opt_level(OptLevel::Speed)
        .max_wasm_stack(1 << 20);
    Ok(config)
}

impl Executor {
    /// An executor with the bundled plugin. `cache_dir` keeps compiled modules between processes
    /// (e.g. `<data-dir>/cache/modules`); it must be private to this node, since cached native code is
    /// loaded as is.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Executor, ExecError> {
        Executor::with_options(cache_dir, true, true, Backend::Native)
    }

    /// An executor for replays: as [`Executor::new`], and [`Executor::run_traced`] also returns every write to
    /// stdout/stderr with the fuel used at it. Output, status and fuel are those of an untraced run.
    pub fn traced(cache_dir: Option<PathBuf>) -> Result<Executor, ExecError> {
        let mut exec = Executor::with_options(cache_dir, true, true, Backend::Native)?;
        crate::trace::add_trace_hook(&mut exec.linker)
            .map_err(|e| ExecError::Engine(format!("{e:#}")))?;
        exec.traced = true;
        Ok(exec)
    }

    /// An executor on the given [`Backend`] (otherwise as [`Executor::new`]). Back ends can share a cache dir:
    /// the cache key covers the compilation target through wasmtime's compatibility hash.
    pub fn with_backend(
        cache_dir: Option<PathBuf>,
        backend: Backend,
    ) -> Result<Executor, ExecError> {
        Executor::with_options(cache_dir, true, true, backend)
    }

    /// For benchmarks only: the same engine without fuel metering. Jobs cannot be bounded or priced
    /// (`fuel_used` is 0 and the fuel limit is ignored), so never use it to run untrusted jobs.
    pub fn new_unmetered(cache_dir: Option<PathBuf>) -> Result<Executor, ExecError> {
        Executor::with_options(cache_dir, false, true, Backend::Native)
    }

    /// For benchmarks only: the metered engine without epoch interruption, to measure what being
    /// cancellable costs. Its cancel tokens stop a run only before it starts.
    pub fn new_uninterruptible(cache_dir: Option<PathBuf>) -> Result<Executor, ExecError> {
        Executor::with_options(cache_dir, true, false, Backend::Native)
    }

    fn with_options(
        cache_dir: Option<PathBuf>,
        metered: bool,
        interruptible: bool,
        backend: Backend,
    ) -> Result<Executor, ExecError> {
        let engine = Engine::new(&engine_config(metered, interruptible, backend)?)
            .map_err(|e| ExecError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut JobState| &mut s.wasi)
            .and_then(|()| add_scheduling(&mut linker))
            .map_err(|e| ExecError::Engine(format!("{e:#}")))?;
        let exec = Executor {
            engine,
            metered,
            interruptible,
            traced: false,
            linker,
            cache_dir,
            modules: Mutex::default(),
            compilations: Default::default(),
            plugins: Mutex::default(),
        };
        exec.add_plugin(Plugin::bundled());
        Ok(exec)
    }

    /// Makes another plugin build available to jobs that name its CID.
    pub fn add_plugin(&self, plugin: Plugin) {
        self.plugins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(plugin.cid(), plugin);
    }

    /// How many modules this executor has compiled (or read from its disk cache): each distinct module once,
    /// however many callers load it at the same time.
    pub fn compilations(&self) -> u64 {
        self.compilations.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The plugin with this CID, if known.
    pub fn plugin(&self, cid: &Cid) -> Option<Plugin> {
        self.plugins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(cid)
            .cloned()
    }

    /// Compiles (or loads from the cache) the plugin so that the first job does not pay for it.
    pub fn warm_up(&self, plugin: &Cid) -> Result<(), ExecError> {
        let plugin = self
            .plugin(plugin)
            .ok_or(ExecError::MissingPlugin(*plugin))?;
        self.load(plugin.bytes(), plugin.sha256())
            .map(|_| ())
            .map_err(ExecError::InvalidPlugin)
    }

    /// Compiles JavaScript source to QuickJS bytecode with the given plugin. `file_name` is used in syntax
    /// errors, which read `file_name:line:column: SyntaxError: message`.
    pub fn compile_js(
        &self,
        plugin_cid: &Cid,
        file_name: &str,
        source: &str,
    ) -> Result<JsBytecode, ExecError> {
        let plugin = self
            .plugin(plugin_cid)
            .ok_or(ExecError::MissingPlugin(*plugin_cid))?;
        let pre = self
            .load(plugin.bytes(), plugin.sha256())
            .map_err(ExecError::InvalidPlugin)?;
        let job_id = JobId([0; 32]);
        let (mut store, stdout, stderr) =
            self.store(&job_id, b"", &COMPILE_LIMITS, &self.cancel_token());
        let result = (|| -> wasmtime::Result<(u32, Vec<u8>)> {
            let instance = pre.instantiate(&mut store)?;
            let ptr = write_guest(&mut store, &instance, source.as_bytes())?;
            let compile = instance.get_typed_func::<(u32, u32), u32>(&mut store, "compile-src")?;
            let ret = compile.call(&mut store, (ptr, source.len() as u32))?;
            read_ret_area(&mut store, &instance, ret)
        })();
        match result {
            Ok((0, bytecode)) => Ok(JsBytecode {
                plugin: *plugin_cid,
                bytecode,
            }),
            Ok((_, message)) => Err(ExecError::Syntax(syntax_error(
                file_name,
                &String::from_utf8_lossy(&message),
            ))),
            Err(err) => {
                let status = classify(&err, &store, &stdout);
                let mut msg = status.describe(&COMPILE_LIMITS);
                let stderr = stderr.take();
                if !stderr.is_empty() {
                    msg = format!("{msg}: {}", String::from_utf8_lossy(&stderr).trim());
                }
                Err(ExecError::CompileFailed(msg))
            }
        }
    }

    /// A token that cancels the run it is handed to (see [`Executor::run_cancellable`]).
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken {
            cancelled: Arc::default(),
            engine: self.interruptible.then(|| self.engine.clone()),
        }
    }

    /// Runs a job on `input`. A job's own failure is a [`Status`] in the outcome; `Err` is never returned
    /// for anything the job does.
    pub fn run(&self, code: &JobCode, input: &[u8], limits: &Limits) -> Result<Outcome, ExecError> {
        self.run_cancellable(code, input, limits, &self.cancel_token())
    }

    /// [`Executor::run`] that stops with [`Status::Cancelled`] soon after `cancel` is cancelled (at once if
    /// it already is). A run that is not cancelled ends exactly as [`Executor::run`] would, with the same fuel.
    pub fn run_cancellable(
        &self,
        code: &JobCode,
        input: &[u8],
        limits: &Limits,
        cancel: &CancelToken,
    ) -> Result<Outcome, ExecError> {
        self.run_inner(code, input, limits, cancel).map(|(o, _)| o)
    }

    /// [`Executor::run_cancellable`] that also returns the run's [`Trace`] (empty unless this executor was
    /// made by [`Executor::traced`]).
    pub fn run_traced(
        &self,
        code: &JobCode,
        input: &[u8],
        limits: &Limits,
        cancel: &CancelToken,
    ) -> Result<(Outcome, Trace), ExecError> {
        self.run_inner(code, input, limits, cancel)
    }

    fn run_inner(
        &self,
        code: &JobCode,
        input: &[u8],
        limits: &Limits,
        cancel: &CancelToken,
    ) -> Result<(Outcome, Trace), ExecError> {
        let job_id = JobId::new(code, input, limits);
        let (mut store, stdout, stderr) = self.store(&job_id, input, limits, cancel);
        let finish = |status: Status, store: &Store<JobState>| Outcome {
            fuel_used: if self.metered {
                limits.fuel - store.get_fuel().unwrap_or(0)
            } else {
                0
            },
            status,
            output: stdout.take(),
            stderr: stderr.take(),
            job_id,
        };
        let result: Result<wasmtime::Result<Option<String>>, Status> = match code {
            _ if cancel.is_cancelled() => Err(Status::Cancelled),
            JobCode::Js(js) => match self.plugin(&js.plugin) {
                None => Err(Status::MissingPlugin {
                    plugin: js.plugin.to_string(),
                }),
                Some(plugin) => match self.load(plugin.bytes(), plugin.sha256()) {
                    Err(message) => Err(Status::InvalidModule {
                        message: format!("plugin: {message}"),
                    }),
                    Ok(pre) => Ok(run_js(&mut store, &pre, &js.bytecode)),
                },
            },
            JobCode::Wasm(wasm) => match self.load(wasm, Sha256::digest(wasm).into()) {
                Err(message) => Err(Status::InvalidModule { message }),
                Ok(pre) => Ok(run_wasi_command(&mut store, &pre)),
            },
        };
        let status = match result {
            Err(status) => status,
            Ok(Ok(None)) => Status::Ok,
            Ok(Ok(Some(message))) => Status::JsException { message },
            Ok(Err(err)) => classify(&err, &store, &stdout),
        };
        tracing::debug!(job = %job_id, status = status.name(), "job finished");
        let outcome = finish(status, &store);
        let trace = store
            .data_mut()
            .trace
            .take()
            .map(|t| t.trace)
            .unwrap_or_default();
        Ok((outcome, trace))
    }

    /// A fresh store for one run: WASI, memory limiter, fuel, and the epoch callback that ends it once
    /// `cancel` is cancelled.
    fn store(
        &self,
        job_id: &JobId,
        input: &[u8],
        limits: &Limits,
        cancel: &CancelToken,
    ) -> (Store<JobState>, CappedPipe, CappedPipe) {
        let clamp = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let (wasi, stdout, stderr) = job_wasi(
            job_id,
            input,
            clamp(limits.output_bytes),
            clamp(limits.stderr_bytes),
        );
        let trace = self.traced.then(|| {
            Box::new(TraceState {
                fuel_limit: limits.fuel,
                stdout: stdout.clone(),
                stderr: stderr.clone(),
                trace: Trace::default(),
            })
        });
        let state = JobState {
            wasi,
            limiter: MemoryLimiter {
                max_bytes: clamp(limits.memory_bytes),
                hit: false,
            },
            trace,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        if self.metered {
            store
                .set_fuel(limits.fuel)
                .expect("fuel is enabled in the engine config");
        }
        if self.interruptible {
            let cancelled = cancel.cancelled.clone();
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(move |_| {
                if cancelled.load(Ordering::SeqCst) {
                    Err(Cancelled.into())
                } else {
                    Ok(UpdateDeadline::Continue(1))
                }
            });
        }
        (store, stdout, stderr)
    }

    /// The linked, compiled module for these bytes: from memory, else from the disk cache, else compiled
    /// by cranelift (and then cached). The error is a one-line reason the module is invalid.
    /// The module's instance-pre, compiled once: callers asking for the same bytes at the same time wait
    /// for one compilation instead of each running their own (a hundred simulated workers warming up the
    /// plugin at once used to compile it a hundred times, ~50 CPU-seconds). A failed compilation is not
    /// remembered; the next caller tries again. `hash` is the sha256 of `wasm`: a plugin's is in its CID, so a
    /// JS job does not hash the 1.3 MB plugin again on every run (that was 80 % of a warm start).
    fn load(&self, wasm: &[u8], hash: [u8; 32]) -> Result<Arc<InstancePre<JobState>>, String> {
        let slot = self
            .modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(hash)
            .or_default()
            .clone();
        let mut ready = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pre) = ready.as_ref() {
            return Ok(pre.clone());
        }
        let module = self.compile_cached(wasm, &hash)?;
        self.compilations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| format!("{e:#}"))?;
        let pre = Arc::new(pre);
        *ready = Some(pre.clone());
        Ok(pre)
    }

    fn compile_cached(&self, wasm: &[u8], hash: &[u8; 32]) -> Result<Module, String> {
        let Some(dir) = &self.cache_dir else {
            return Module::new(&self.engine, wasm).map_err(|e| format!("{e:#}"));
        };
        let path = dir.join(format!("{}.cwasm", self.cache_key(hash)));
        // Read into memory rather than mmap the file: a cache file replaced or truncated by another process
        // while mapped would crash this one (SIGBUS).
        if let Ok(bytes) = std::fs::read(&path) {
            // SAFETY: the cache dir is private to this node and only ever holds `Module::serialize` output
            // written atomically by `store_in_cache`; a stale or foreign file fails wasmtime's header check.
            match unsafe { Module::deserialize(&self.engine, &bytes) } {
                Ok(module) => return Ok(module),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached module: {e:#}")
                }
            }
        }
        let module = Module::new(&self.engine, wasm).map_err(|e| format!("{e:#}"))?;
        if let Err(e) = store_in_cache(&module, &path) {
            tracing::warn!(path = %path.display(), "cannot write the module cache: {e}");
        }
        Ok(module)
    }

    /// Cache file name: sha256 of wasmtime version + engine config (incl. wasmtime's own compatibility
    /// hash, which covers the host CPU features) + module sha256.
    fn cache_key(&self, module_hash: &[u8; 32]) -> String {
        let mut compat = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut compat);
        let mut h = Sha256::new();
        h.update(ENGINE_ID.as_bytes());
        h.update([u8::from(self.metered)]);
        h.update(compat.finish().to_le_bytes());
        h.update(module_hash);
        hex::encode(h.finalize())
    }
}

fn store_in_cache(module: &Module, path: &Path) -> std::io::Result<()> {
    let bytes = module
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Allocates `bytes.len()` in the guest with `cabi_realloc` and copies `bytes` there.
fn write_guest(
    store: &mut Store<JobState>,
    instance: &wasmtime::Instance,
    bytes: &[u8],
) -> wasmtime::Result<u32> {
    let realloc =
        instance.get_typed_func::<(u32, u32, u32, u32), u32>(&mut *store, "cabi_realloc")?;
    let ptr = realloc.call(&mut *store, (0, 0, 1, bytes.len() as u32))?;
    let memory = instance
        .get_memory(&mut *store, "memory")
        .ok_or_else(|| wasmtime::format_err!("the plugin exports no memory"))?;
    memory.write(&mut *store, ptr as usize, bytes)?;
    Ok(ptr)
}

/// Reads a `[status, ptr, len]` return area and the bytes it points to.
fn read_ret_area(
    store: &mut Store<JobState>,
    instance: &wasmtime::Instance,
    ret: u32,
) -> wasmtime::Result<(u32, Vec<u8>)> {
    let memory = instance
        .get_memory(&mut *store, "memory")
        .ok_or_else(|| wasmtime::format_err!("the plugin exports no memory"))?;
    let mut area = [0u8; 12];
    memory.read(&*store, ret as usize, &mut area)?;
    let word = |i: usize| u32::from_le_bytes(area[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let mut bytes = vec![0u8; word(2) as usize];
    memory.read(&*store, word(1) as usize, &mut bytes)?;
    Ok((word(0), bytes))
}

/// Runs bytecode through the plugin's `jobmesh-invoke`: `Ok(None)` on success, `Ok(Some(message))` on an
/// uncaught JS exception.
fn run_js(
    store: &mut Store<JobState>,
    pre: &InstancePre<JobState>,
    bytecode: &[u8],
) -> wasmtime::Result<Option<String>> {
    let instance = pre.instantiate(&mut *store)?;
    let invoke = instance.get_typed_func::<(u32, u32), u32>(&mut *store, "jobmesh-invoke")?;
    let ptr = write_guest(store, &instance, bytecode)?;
    let ret = invoke.call(&mut *store, (ptr, bytecode.len() as u32))?;
    let (status, message) = read_ret_area(store, &instance, ret)?;
    Ok((status != 0).then(|| String::from_utf8_lossy(&message).into_owned()))
}

/// Runs a WASI command module's `_start`.
fn run_wasi_command(
    store: &mut Store<JobState>,
    pre: &InstancePre<JobState>,
) -> wasmtime::Result<Option<String>> {
    let instance = pre.instantiate(&mut *store)?;
    let start = instance
        .get_typed_func::<(), ()>(&mut *store, "_start")
        .map_err(|_| wasmtime::Error::from(NotACommand))?;
    start.call(&mut *store, ())?;
    Ok(None)
}

/// Marker: the module has no `_start() -> ()` export.
#[derive(Debug)]
struct NotACommand;

impl std::fmt::Display for NotACommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a WASI command module: no `_start` function export")
    }
}

impl std::error::Error for NotACommand {}

/// Turns a failed call into a status. Limits are checked first: they are what the trap came from.
fn classify(err: &wasmtime::Error, store: &Store<JobState>, stdout: &CappedPipe) -> Status {
    if store.data().limiter.hit {
        return Status::MemoryLimit;
    }
    if stdout.overflowed() {
        return Status::OutputTooLarge;
    }
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return if exit.0 == 0 {
            Status::Ok
        } else {
            Status::Exit { code: exit.0 }
        };
    }
    if err.downcast_ref::<Cancelled>().is_some() {
        return Status::Cancelled;
    }
    if err.downcast_ref::<NotACommand>().is_some() {
        return Status::InvalidModule {
            message: err.to_string(),
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Status::OutOfFuel,
        Some(trap) => Status::Trap {
            message: trap.to_string(),
        },
        None => Status::Trap {
            message: format!("{err:#}")
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        },
    }
}

/// Rewrites QuickJS's compile error (`SyntaxError: msg\n    at function.mjs:L:C`) as `file:L:C: SyntaxError: msg`.
fn syntax_error(file_name: &str, raw: &str) -> String {
    let raw = raw.trim();
    let first = raw.lines().next().unwrap_or(raw).trim();
    // Javy reports QuickJS's parse errors as a plain `Error: …`; compiling only parses, so name it for what it is.
    let renamed;
    let first = match first.strip_prefix("Error: ") {
        Some(rest) => {
            renamed = format!("SyntaxError: {rest}");
            renamed.as_str()
        }
        None => first,
    };
    let location = raw.lines().find_map(|line| {
        let at = line.rfind("function.mjs:")?;
        let loc = line[at + "function.mjs:".len()..]
            .trim_end_matches(')')
            .trim();
        let mut parts = loc.split(':');
        let l: u32 = parts.next()?.parse().ok()?;
        let c: u32 = parts.next()?.parse().ok()?;
        Some((l, c))
    });
    match location {
        Some((l, c)) => format!("{file_name}:{l}:{c}: {first}"),
        None => format!("{file_name}: {}", raw.replace("function.mjs", file_name)),
    }
}
