//! End-to-end tests across crates: the `jobmesh` binary, multi-process meshes on loopback, and interop with
//! real third-party IPFS implementations installed from package registries. The tests live in `tests/tests/`;
//! this library holds only helpers they share:
//!
//! - [`jobmesh_bin`]: the `jobmesh` binary of the same build profile and target dir as the running test
//!   (built on first use);
//! - [`run`] / [`run_ok`]: run a command with a time limit, failing with its stderr in the message;
//! - [`node_script`]: a `node` command for a script under `tests/interop/<dir>/` (its `node_modules` is
//!   installed by `scripts/setup.d/`; a missing install is an error, never a skip);
//! - [`SeededRng`], [`write_seeded_file`]: reproducible pseudo-random test data.
//!
//! It owns no product logic and must not reach anything beyond loopback.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Path of the `jobmesh` binary that belongs to the running test: `target/<profile>/jobmesh`, i.e. the parent
/// of the test executable's `deps/` directory.
///
/// The first call in a process runs `cargo build -p jobmesh --bin jobmesh` for that profile into that
/// target dir (a no-op of about a second when up to date, and it keeps a stale binary from being tested).
/// `JOBMESH_BIN=<path>` skips the build and uses that binary. Panics with a one-line reason when the build fails.
pub fn jobmesh_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("JOBMESH_BIN") {
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps/")
            .to_path_buf();
        let bin = profile_dir.join(format!("jobmesh{}", std::env::consts::EXE_SUFFIX));
        build_jobmesh(&profile_dir, &bin);
        bin
    })
    .clone()
}

fn build_jobmesh(profile_dir: &Path, bin: &Path) {
    let target_dir = profile_dir.parent().expect("target/<profile> has a parent");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(name) => name.to_string(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut command = Command::new(cargo);
    // The variables cargo sets for the running test (CARGO_MANIFEST_DIR, CARGO_PKG_NAME…) must not reach the
    // build: some build scripts rerun when one changes (ring's on CARGO_MANIFEST_DIR), so the binary built with
    // them differed in fingerprint from the one `cargo build` builds, and every test run rebuilt ring and all
    // that depends on it (≈ 40 s of CPU, and the first end-to-end test waited for it), then the next plain build
    // rebuilt it back.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_set_by_cargo_for_the_test) {
            command.env_remove(&name);
        }
    }
    let status = command
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target_dir)
        .args([
            "build",
            "--quiet",
            "-p",
            "jobmesh",
            "--bin",
            "jobmesh",
            "--profile",
        ])
        .arg(&profile)
        .status();
    match status {
        Ok(s) if s.success() && bin.exists() => {}
        // No cargo here (e.g. an archived test run): an existing binary is the best we have.
        Err(_) if bin.exists() => {}
        Ok(s) => {
            panic!("`cargo build -p jobmesh --bin jobmesh --profile {profile}` failed ({s})")
        }
        Err(e) => panic!("cannot run cargo to build {}: {e}", bin.display()),
    }
}

/// Whether cargo sets this variable for the crate or test it runs (as opposed to configuration such as
/// CARGO_HOME or CARGO_BUILD_JOBS, which a nested build should see).
fn is_set_by_cargo_for_the_test(name: &str) -> bool {
    const PREFIXES: [&str; 5] = [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || matches!(name, "CARGO_TARGET_TMPDIR" | "CARGO_RUSTC_CURRENT_DIR")
}

/// `jobmesh --data-dir <home> <args>` with stdout and stderr captured, killed after `limit` (a panic names the
/// command when it could not run or overran).
pub fn jobmesh_in(home: &Path, args: &[&str], limit: Duration) -> Output {
    let mut cmd = Command::new(jobmesh_bin());
    cmd.arg("--data-dir")
        .arg(home)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run(&mut cmd, limit).unwrap_or_else(|e| panic!("{e}"))
}

/// Checks that a command failed without a panic, saying why in one line of stderr; returns that stderr.
pub fn fails_in_one_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "succeeded: {err}");
    assert_ne!(out.status.code(), Some(101), "panicked: {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    err
}

/// Runs `cmd` to completion within `limit`, capturing stdout and stderr unless the caller redirected them.
/// Kills the process and returns an error when the limit is exceeded.
pub fn run(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let shown = describe(cmd);
    cmd.stdin(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    let out_reader = child.stdout.take().map(drain);
    let err_reader = child.stderr.take().map(drain);
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{shown}` did not finish within {limit:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for `{shown}`: {e}")),
        }
    };
    let join =
        |h: Option<std::thread::JoinHandle<Vec<u8>>>| h.map(|h| h.join().unwrap_or_default());
    Ok(Output {
        status,
        stdout: join(out_reader).unwrap_or_default(),
        stderr: join(err_reader).unwrap_or_default(),
    })
}

/// Like [`run`] with piped stdout/stderr, and the command must exit 0: returns its stdout, or an error that
/// names the command and carries its stderr.
pub fn run_ok(cmd: &mut Command, limit: Duration) -> Result<Vec<u8>, String> {
    let shown = describe(cmd);
    let out = run(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()), limit)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn drain<R: Read + Send + 'static>(mut pipe: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// A `node` command for `tests/interop/<dir>/<script>`, run from that directory. Errors (never skips) when
/// `node` or the directory's `node_modules` is missing, naming the setup script that installs them.
pub fn node_script(dir: &str, script: &str) -> Result<Command, String> {
    let base = workspace_root().join("tests/interop").join(dir);
    if !base.join("node_modules").is_dir() {
        return Err(format!(
            "{}/node_modules is missing: run the scripts in scripts/setup.d/ (npm ci)",
            base.display()
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("`node` is not on PATH: run the scripts in scripts/setup.d/".into());
    }
    let mut cmd = Command::new("node");
    cmd.current_dir(&base).arg(base.join(script));
    Ok(cmd)
}

/// A tiny deterministic generator (splitmix64): the same seed gives the same bytes on every machine.
/// Not for anything but test data.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRng(seed)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `buf` with pseudo-random bytes (little-endian words).
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }
}

/// Appends `len` bytes from `rng` to `out`, in 1 MiB pieces.
pub fn write_seeded(out: &mut impl Write, rng: &mut SeededRng, len: u64) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Writes a file of `len` pseudo-random bytes from `seed` (see [`SeededRng`]).
pub fn write_seeded_file(path: &Path, len: u64, seed: u64) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    write_seeded(&mut out, &mut SeededRng::new(seed), len)?;
    out.flush()
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat` (`None`: this process), in
/// clock ticks of 10 ms. Tests that check work stopped measure it over a window rather than trusting a log line.
pub fn process_cpu(pid: Option<u32>) -> Duration {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_string(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    // Fields after the command name (which may hold spaces, so it is skipped up to its closing parenthesis):
    // utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').expect("a stat line names its command") + 2..];
    let ticks: u64 = rest
        .split(' ')
        .skip(11)
        .take(2)
        .map(|f| f.parse::<u64>().expect("utime and stime are numbers"))
        .sum();
    Duration::from_millis(ticks * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_rng_is_reproducible_and_fills_odd_lengths() {
        let (mut a, mut b) = (SeededRng::new(7), SeededRng::new(7));
        let (mut x, mut y) = (vec![0u8; 1001], vec![0u8; 1001]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert_ne!(x[..8], x[8..16]);
        // splitmix64's first output for seed 0, a published reference value.
        assert_eq!(SeededRng::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn the_nested_build_drops_what_cargo_set_for_the_test_and_keeps_configuration() {
        for set_for_the_test in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_EXE_jobmesh",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
        ] {
            assert!(
                is_set_by_cargo_for_the_test(set_for_the_test),
                "{set_for_the_test}"
            );
        }
        for configuration in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "RUSTFLAGS",
        ] {
            assert!(
                !is_set_by_cargo_for_the_test(configuration),
                "{configuration}"
            );
        }
    }

    #[test]
    fn run_reports_failure_and_timeout() {
        let err = run_ok(
            Command::new("sh").args(["-c", "echo boom >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(err.contains("boom"), "{err}");
        let err = run_ok(Command::new("sleep").arg("5"), Duration::from_millis(200)).unwrap_err();
        assert!(err.contains("did not finish"), "{err}");
        let out = run_ok(
            Command::new("sh").args(["-c", "printf hi"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out, b"hi");
    }
}
