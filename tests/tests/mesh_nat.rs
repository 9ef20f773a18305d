//! The NAT testbed (`tests/netns/nat-testbed.sh`): real `jobmesh node start` processes in Linux network
//! namespaces behind nftables NATs — two that keep ports and one symmetric (`masquerade fully-random`) — and a
//! public bootstrap/relay node. Needs root, `ip` and `nft` (scripts/setup.d/60-netns.sh installs them): a
//! missing tool fails the test, it is never skipped.
//!
//! The script checks reachability (public vs private with a relay reservation), that cross-home pairs end up
//! direct after a hole punch behind the port-keeping NATs and relayed (mostly) with the symmetric one, that a file
//! added behind one NAT is fetched behind the others, and that jobs submitted from one home are run and
//! verified by workers behind the other NATs. It deletes its namespaces on exit; this test deletes them too
//! if the script has to be killed.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jobmesh_tests::{jobmesh_bin, workspace_root};

/// The script's own waits are bounded well below this.
const LIMIT: Duration = Duration::from_secs(240);

/// Deletes every namespace whose name starts with `prefix`.
fn delete_namespaces(prefix: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if name.starts_with(prefix) {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Runs the testbed; returns its `RESULT key=value` figures, or everything it printed on failure.
fn run_testbed(prefix: &str) -> Result<HashMap<String, String>, String> {
    let script = workspace_root().join("tests/netns/nat-testbed.sh");
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new("bash")
        .arg(&script)
        .arg(jobmesh_bin())
        .env("JOBMESH_NETNS_PREFIX", prefix)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > LIMIT {
            // SIGTERM runs the script's trap (nodes stopped, namespaces deleted); then make sure.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            std::thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            let _ = child.wait();
            delete_namespaces(prefix);
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = reader.join().unwrap_or_default();
    let err = std::fs::read_to_string(log.path()).unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(out
            .lines()
            .filter_map(|l| l.strip_prefix("RESULT "))
            .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect()),
        Some(s) => Err(format!("testbed failed ({s}):\n{out}\n{err}")),
        None => Err(format!(
            "testbed did not finish in {LIMIT:?}:\n{out}\n{err}"
        )),
    }
}

#[test]
fn nodes_behind_three_nats_find_each_other_fetch_and_run_jobs() {
    for tool in ["ip", "nft", "jq"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "{tool} is missing: run scripts/setup.d/60-netns.sh");
    }
    let prefix = format!("jmt{}x", std::process::id() % 100_000);
    let figures = run_testbed(&prefix).unwrap_or_else(|e| panic!("{e}"));
    // Nothing is left behind.
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&prefix),
        "namespaces left behind"
    );
    assert_eq!(
        figures.get("ok").map(String::as_str),
        Some("1"),
        "{figures:?}"
    );
    assert_eq!(figures["reachability_ok"], "1");
    // 12 cross-home pairs, every one connected: home 1 × home 2 (4) go direct (the script checks each pair); a
    // pair with the symmetric NAT (8) is relayed, or direct where a punch from home 3 happened to land.
    assert_eq!(figures["pairs"], "12", "{figures:?}");
    let direct: u32 = figures["direct"].parse().unwrap();
    let relayed: u32 = figures["relayed"].parse().unwrap();
    assert!(direct >= 4 && direct + relayed == 12, "{figures:?}");
}
