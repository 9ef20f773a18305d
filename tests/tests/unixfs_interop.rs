//! Interop of jobmesh's content store with the JavaScript reference implementation (ipfs-unixfs-importer,
//! ipfs-unixfs-exporter and @ipld/car, pinned in tests/interop/unixfs/package-lock.json and installed by
//! scripts/setup.d/10-js-unixfs.sh).
//!
//! For each profile (`kubo`, `helia`, `v0`, and `kubo` with blake3) and each file — 0 B, 1 B, exactly one chunk,
//! one chunk + 1 B, 10 MiB, 100 MiB of seeded pseudo-random bytes, and a file with a 12 MiB run of zeros:
//! 1. `jobmesh add` gives the same root CID as the JS importer with the same chunker and layout;
//! 2. the CAR from `jobmesh dag export` is read by @ipld/car (every block's hash checked) and reassembled by the JS
//!    exporter to the same bytes, under the same root;
//! 3. the JS CAR goes through `jobmesh dag import` (a second data dir, so our own blocks cannot stand in for
//!    missing ones) and `jobmesh cat` to the same bytes, and the import reports the same root.
//!
//! Every mismatch of a profile is collected and reported together, naming profile, file, size and both CIDs.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use jobmesh_tests::{
    jobmesh_bin, node_script, run, run_ok, write_seeded, write_seeded_file, SeededRng,
};

/// Upper bound for one command on a 100 MiB file in a debug build on 2 busy cores.
const LIMIT: Duration = Duration::from_secs(180);
const MIB: u64 = 1 << 20;
/// Base of every file's seed; the file's index in [`files`] is added to it.
const SEED: u64 = 0x6a6f_626d_6573_6800; // "jobmesh\0"

/// One test file: a name for reports and how to make it.
struct TestFile {
    name: &'static str,
    /// Pseudo-random bytes, or `random_head` random + `zeros` zero + `random_tail` random bytes.
    shape: Shape,
}

enum Shape {
    Random(u64),
    ZeroRun {
        random_head: u64,
        zeros: u64,
        random_tail: u64,
    },
}

impl TestFile {
    fn len(&self) -> u64 {
        match self.shape {
            Shape::Random(n) => n,
            Shape::ZeroRun {
                random_head,
                zeros,
                random_tail,
            } => random_head + zeros + random_tail,
        }
    }

    fn write(&self, path: &Path, seed: u64) -> std::io::Result<()> {
        match self.shape {
            Shape::Random(n) => write_seeded_file(path, n, seed),
            Shape::ZeroRun {
                random_head,
                zeros,
                random_tail,
            } => {
                let mut out = BufWriter::new(File::create(path)?);
                let mut rng = SeededRng::new(seed);
                write_seeded(&mut out, &mut rng, random_head)?;
                let zero = vec![0u8; MIB as usize];
                let mut left = zeros;
                while left > 0 {
                    let n = left.min(MIB) as usize;
                    out.write_all(&zero[..n])?;
                    left -= n as u64;
                }
                write_seeded(&mut out, &mut rng, random_tail)?;
                out.flush()
            }
        }
    }
}

/// The files every profile is checked with; `chunk` is the profile's chunk size.
fn files(chunk: u64) -> Vec<TestFile> {
    use Shape::*;
    vec![
        TestFile {
            name: "empty",
            shape: Random(0),
        },
        TestFile {
            name: "1 byte",
            shape: Random(1),
        },
        TestFile {
            name: "exactly one chunk",
            shape: Random(chunk),
        },
        TestFile {
            name: "one chunk + 1 byte",
            shape: Random(chunk + 1),
        },
        TestFile {
            name: "10 MiB",
            shape: Random(10 * MIB),
        },
        TestFile {
            name: "100 MiB",
            shape: Random(100 * MIB),
        },
        TestFile {
            name: "12 MiB zero run",
            // Unaligned on purpose: the zero chunks start mid-chunk and end mid-chunk.
            shape: ZeroRun {
                random_head: 300_000,
                zeros: 12 * MIB,
                random_tail: 100_001,
            },
        },
    ]
}

/// `jobmesh --data-dir <dir> <args…>`.
fn jobmesh(data_dir: &Path) -> Command {
    let mut cmd = Command::new(jobmesh_bin());
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env_remove("JOBMESH_HOME");
    cmd
}

fn first_line(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Runs `cmd` with stdout into the file `out`; must exit 0.
fn run_to_file(cmd: &mut Command, out: &Path) -> Result<(), String> {
    let file = File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let o = run(cmd.stdout(file).stderr(Stdio::piped()), LIMIT)?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

fn same_bytes(a: &Path, b: &Path) -> Result<bool, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()));
    Ok(read(a)? == read(b)?)
}

/// Checks one profile (with `hash`, `None` = the profile's default) against the JS implementation.
fn check_profile(profile: &str, hash: Option<&str>, chunk: u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    // One data dir for our adds, one for importing the JS CARs.
    let ours_dir = tmp.path().join("store-add");
    let import_dir = tmp.path().join("store-import");
    let label = match hash {
        Some(h) => format!("profile {profile} --hash {h}"),
        None => format!("profile {profile}"),
    };
    let mut failures = Vec::new();

    for (index, file) in files(chunk).iter().enumerate() {
        let seed = SEED + index as u64;
        let what = format!(
            "{label}, file {:?} ({} B, seed {seed:#x})",
            file.name,
            file.len()
        );
        let input = tmp.path().join("input");
        file.write(&input, seed).expect("write test file");
        if let Err(e) = check_file(profile, hash, &input, &ours_dir, &import_dir, tmp.path()) {
            eprintln!("MISMATCH {what}: {e}");
            failures.push(format!("{what}: {e}"));
        } else {
            eprintln!("ok {what}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files differ from the JS reference:\n{}",
        failures.len(),
        files(chunk).len(),
        failures.join("\n")
    );
}

fn check_file(
    profile: &str,
    hash: Option<&str>,
    input: &Path,
    ours_dir: &Path,
    import_dir: &Path,
    tmp: &Path,
) -> Result<(), String> {
    let hash_args: Vec<&str> = hash.map(|h| vec!["--hash", h]).unwrap_or_default();

    // 1. Root CIDs.
    let mut add = jobmesh(ours_dir);
    add.args(["add", "--profile", profile])
        .args(&hash_args)
        .arg(input);
    let ours = String::from_utf8_lossy(&run_ok(&mut add, LIMIT)?)
        .trim()
        .to_string();
    let their_car = tmp.join("theirs.car");
    let mut write = node_script("unixfs", "car-write.mjs")?;
    write
        .args(&hash_args)
        .arg(profile)
        .arg(input)
        .arg(&their_car);
    let theirs = first_line(&run_ok(&mut write, LIMIT)?);
    if ours != theirs {
        return Err(format!(
            "root CID differs: ours {ours}, JS importer {theirs}"
        ));
    }

    // 2. Our CAR → @ipld/car + JS exporter.
    let our_car = tmp.join("ours.car");
    run_to_file(jobmesh(ours_dir).args(["dag", "export", &ours]), &our_car)
        .map_err(|e| format!("jobmesh dag export {ours}: {e}"))?;
    let out = tmp.join("js-exported");
    let mut read = node_script("unixfs", "car-read.mjs")?;
    read.arg(&our_car).arg(&out);
    let root =
        first_line(&run_ok(&mut read, LIMIT).map_err(|e| format!("JS reading our CAR: {e}"))?);
    if root != ours {
        return Err(format!(
            "our CAR's root read by @ipld/car is {root}, expected {ours}"
        ));
    }
    if !same_bytes(&out, input)? {
        return Err("the JS exporter reassembled different bytes from our CAR".into());
    }

    // 3. Their CAR → jobmesh dag import → jobmesh cat.
    let mut import = jobmesh(import_dir);
    import.args(["dag", "import"]).arg(&their_car);
    let imported = run_ok(&mut import, LIMIT).map_err(|e| format!("importing the JS CAR: {e}"))?;
    let roots: Vec<String> = String::from_utf8_lossy(&imported)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if roots != [theirs.clone()] {
        return Err(format!(
            "jobmesh dag import of the JS CAR printed {roots:?}, expected [{theirs}]"
        ));
    }
    let catted = tmp.join("jobmesh-cat");
    run_to_file(jobmesh(import_dir).args(["cat", &theirs]), &catted)
        .map_err(|e| format!("jobmesh cat {theirs} after importing the JS CAR: {e}"))?;
    if !same_bytes(&catted, input)? {
        return Err("jobmesh cat of the imported JS CAR gave different bytes".into());
    }

    for p in [&their_car, &our_car, &out, &catted] {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

#[test]
fn kubo_profile_matches_js_importer() {
    check_profile("kubo", None, 262_144);
}

#[test]
fn helia_profile_matches_js_importer() {
    check_profile("helia", None, 1_048_576);
}

#[test]
fn v0_profile_matches_js_importer() {
    check_profile("v0", None, 262_144);
}

#[test]
fn kubo_blake3_matches_js_importer() {
    check_profile("kubo", Some("blake3"), 262_144);
}

/// A JS CAR with one flipped byte in a block must be refused with one line on stderr and a non-zero exit.
#[test]
fn corrupted_js_car_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("input");
    write_seeded_file(&input, MIB, SEED + 100).unwrap();
    let car = tmp.path().join("theirs.car");
    let mut write = node_script("unixfs", "car-write.mjs").unwrap();
    write.arg("kubo").arg(&input).arg(&car);
    run_ok(&mut write, LIMIT).unwrap();
    let mut bytes = std::fs::read(&car).unwrap();
    let at = bytes.len() - 1000; // inside the last leaf's data
    bytes[at] ^= 0x55;
    std::fs::write(&car, &bytes).unwrap();

    let out = run(
        jobmesh(&tmp.path().join("store"))
            .args(["dag", "import"])
            .arg(&car)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        LIMIT,
    )
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a corrupted CAR was accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "expected one line on stderr, got: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
