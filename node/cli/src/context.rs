//! What every command shares: the [`Context`] (data directory, `--json`), printing that survives a closed
//! stdout ([`write_stdout`], `outln!`) and the parsers of sizes and durations used by several commands'
//! arguments.
//!
//! Owns: these only. Must not touch: any command (it imports none, so every command can import it).

use std::time::Duration;

use jobmesh_node::home::Home;

/// What every subcommand receives: where the data lives and how to print.
#[derive(Debug, Clone)]
pub struct Context {
    /// The data directory.
    pub home: Home,
    /// `--json` was given.
    pub json: bool,
}

impl Context {
    /// Prints one JSON value on stdout (an error when stdout is gone: see [`outln!`](crate::outln)).
    pub fn print_json(&self, value: &serde_json::Value) -> std::io::Result<()> {
        crate::outln!("{value}")
    }
}

/// Writes one line to standard output like `println!`, but returns the write's `std::io::Result` instead of
/// panicking when stdout is gone. Every command prints through it (or [`Context::print_json`]) with `?`, so a
/// reader that went away (`jobmesh job list | head -1`) ends the command quietly: see `cli::run`.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::context::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes to standard output, returning the error (a closed pipe: `BrokenPipe`) instead of panicking.
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.flush()
}

/// Parses a byte size: a number with an optional unit (B, KiB, MiB, GiB, or K, M, G meaning the same).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 64MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown size unit in `{text}` (use KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses a duration: a number with a unit (ms, s, m, h), or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 60s, 5m)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in `{text}` (use ms, s, m or h)")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("`{text}` must be positive"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{text}` is too long"))
}
