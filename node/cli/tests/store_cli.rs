//! The store's command line, run as a user would: round trips, bad input and crashes.
//! Every failure must be one clear line on stderr with a non-zero exit, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        Node {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jobmesh"));
        c.arg("--data-dir")
            .arg(self.dir.path())
            .env_remove("JOBMESH_HOME");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout as text.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail with one clear line; returns that line.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should have failed");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: expected one line, got {stderr}"
        );
        assert!(stderr.starts_with("error: "), "{stderr}");
        stderr
    }

    fn block_count(&self) -> u64 {
        let stat: serde_json::Value =
            serde_json::from_str(&self.ok(&["--json", "repo", "stat"])).unwrap();
        stat["blocks"].as_u64().unwrap()
    }
}

/// Distinct pseudo-random bytes, fast to make (a xorshift stream).
fn write_random_file(path: &Path, len: usize, seed: u64) {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    std::fs::write(path, bytes).unwrap();
}

fn file_in(node: &Node, name: &str) -> PathBuf {
    node.dir.path().join(name)
}

#[test]
fn add_cat_get_export_import_round_trip() {
    let node = Node::new();
    let input = file_in(&node, "in.bin");
    write_random_file(&input, 3 * 256 * 1024 + 17, 1);
    let cid = node
        .ok(&["add", input.to_str().unwrap()])
        .trim()
        .to_string();
    assert!(cid.starts_with("bafybei"), "{cid}");
    let out = node.cmd().args(["cat", &cid]).output().unwrap();
    assert_eq!(out.stdout, std::fs::read(&input).unwrap());

    let restored = file_in(&node, "restored.bin");
    node.ok(&["get", &cid, "-o", restored.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&restored).unwrap(),
        std::fs::read(&input).unwrap()
    );

    let car = file_in(&node, "x.car");
    node.ok(&["dag", "export", &cid, "-o", car.to_str().unwrap()]);
    let other = Node::new();
    assert_eq!(
        other.ok(&["dag", "import", car.to_str().unwrap()]).trim(),
        cid
    );
    assert!(other.ok(&["pin", "ls"]).contains(&cid));
    let out = other.cmd().args(["cat", &cid]).output().unwrap();
    assert_eq!(out.stdout, std::fs::read(&input).unwrap());

    // Unpinned blocks go at gc, pinned ones stay.
    let blocks_before = other.block_count();
    other.ok(&["pin", "rm", &cid]);
    let gc: serde_json::Value = serde_json::from_str(&other.ok(&["--json", "repo", "gc"])).unwrap();
    assert_eq!(gc["removed_blocks"].as_u64().unwrap(), blocks_before);
    assert_eq!(other.block_count(), 0);
}

#[test]
fn block_put_get_stat_and_profiles() {
    let node = Node::new();
    let input = file_in(&node, "hello.txt");
    std::fs::write(&input, "hello world\n").unwrap();
    let path = input.to_str().unwrap();
    assert_eq!(
        node.ok(&["add", "--profile", "v0", path]).trim(),
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    );
    let blake = node.ok(&["add", "--hash", "blake3", path]);
    assert!(blake.starts_with("bafkr4"), "{blake}");
    node.fails(&["add", "--profile", "v0", "--hash", "blake3", path]);
    let cid = node.ok(&["block", "put", path]).trim().to_string();
    assert_eq!(
        node.ok(&["block", "stat", &cid]).trim(),
        format!("{cid} 12")
    );
    assert_eq!(
        node.cmd()
            .args(["block", "get", &cid])
            .output()
            .unwrap()
            .stdout,
        b"hello world\n"
    );
}

#[test]
fn bad_input_gives_one_clear_line() {
    let node = Node::new();
    assert!(node.fails(&["cat", "not-a-cid"]).contains("invalid CID"));
    let unknown = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    assert!(node.fails(&["cat", unknown]).contains("not in the store"));
    assert!(node
        .fails(&["pin", "add", unknown])
        .contains("not in the store"));
    assert!(node
        .fails(&["add", "/definitely/not/here"])
        .contains("cannot read"));
    // A path that cannot be read even by root: a "directory" that is a regular file.
    let file = file_in(&node, "plain");
    std::fs::write(&file, "x").unwrap();
    let through_file = file.join("child");
    assert!(node
        .fails(&["add", through_file.to_str().unwrap()])
        .contains("cannot read"));
    assert!(node
        .fails(&["add", node.dir.path().to_str().unwrap()])
        .contains("is a directory"));
    // Usage errors come from clap: several lines with the allowed values, exit code 2, no panic.
    let usage = node.run(&["add", "--profile", "nope", file.to_str().unwrap()]);
    assert_eq!(usage.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&usage.stderr);
    assert!(
        stderr.contains("possible values: kubo, helia, v0") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn truncated_and_corrupt_cars_are_refused_and_touch_nothing() {
    let source = Node::new();
    let input = file_in(&source, "in.bin");
    write_random_file(&input, 600_000, 2);
    let cid = source
        .ok(&["add", input.to_str().unwrap()])
        .trim()
        .to_string();
    let car = file_in(&source, "x.car");
    source.ok(&["dag", "export", &cid, "-o", car.to_str().unwrap()]);
    let bytes = std::fs::read(&car).unwrap();

    let target = Node::new();
    let keep = file_in(&target, "keep.txt");
    std::fs::write(&keep, "keep me").unwrap();
    let kept = target
        .ok(&["add", keep.to_str().unwrap()])
        .trim()
        .to_string();

    let truncated = file_in(&target, "truncated.car");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(target
        .fails(&["dag", "import", truncated.to_str().unwrap()])
        .contains("truncated"));

    let mut flipped = bytes.clone();
    let at = flipped.len() - 1000;
    flipped[at] ^= 0x55;
    let corrupt = file_in(&target, "corrupt.car");
    std::fs::write(&corrupt, &flipped).unwrap();
    assert!(target
        .fails(&["dag", "import", corrupt.to_str().unwrap()])
        .contains("corrupt"));

    let garbage = file_in(&target, "garbage.car");
    std::fs::write(&garbage, b"\x05hello world").unwrap();
    assert!(target
        .fails(&["dag", "import", garbage.to_str().unwrap()])
        .contains("invalid CAR"));

    assert_eq!(
        target.block_count(),
        1,
        "only the block added before remains"
    );
    assert_eq!(target.ok(&["pin", "ls"]).trim(), kept);
}

#[test]
fn a_block_corrupted_on_disk_is_reported_never_returned() {
    let node = Node::new();
    let input = file_in(&node, "in.bin");
    write_random_file(&input, 2 * 256 * 1024, 3);
    let cid = node
        .ok(&["add", input.to_str().unwrap()])
        .trim()
        .to_string();
    // Rot one byte of the first large block, below the store (large blocks are appended to pack files).
    let victim = walk_files(&node.dir.path().join("blocks/packs"))
        .into_iter()
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&victim, bytes).unwrap();

    let out = node.cmd().args(["cat", &cid]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is corrupt"));
    assert!(node.fails(&["repo", "verify"]).contains("1 corrupt"));
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn kill_dash_nine_during_add_leaves_a_consistent_store() {
    let node = Node::new();
    let input = file_in(&node, "big.bin");
    write_random_file(&input, 256 * 1024 * 1024, 4);
    let mut child = node
        .cmd()
        .args(["add", input.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the add is well under way, then kill it without warning.
    let packs = node.dir.path().join("blocks/packs");
    let started = Instant::now();
    let written = |dir: &Path| -> u64 {
        if dir.exists() {
            walk_files(dir)
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        } else {
            0
        }
    };
    // 100 blocks of 256 KiB appended.
    while written(&packs) < 100 * 256 * 1024 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the add finished before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the add made no progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    assert!(node.ok(&["repo", "verify"]).contains("0 corrupt"));
    assert_eq!(
        node.ok(&["pin", "ls"]).trim(),
        "",
        "nothing half-written is pinned"
    );
    let cid = node
        .ok(&["add", input.to_str().unwrap()])
        .trim()
        .to_string();
    assert!(node.ok(&["pin", "ls"]).contains(&cid));
    let restored = file_in(&node, "restored.bin");
    node.ok(&["get", &cid, "-o", restored.to_str().unwrap()]);
    assert!(std::fs::read(&restored).unwrap() == std::fs::read(&input).unwrap());
    node.ok(&["repo", "verify"]);
}
