//! Helpers of the multi-process mesh tests: `jobmesh node start` processes on 127.0.0.1 and a minimal
//! HTTP/1.1 client for their control API (plain `std::net`, nothing beyond loopback).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jobmesh_tests::{jobmesh_bin, run_ok};

/// The path of a file in `examples/`.
pub fn example(name: &str) -> String {
    jobmesh_tests::workspace_root()
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

/// A running `jobmesh node start` process with its own data dir; killed (SIGTERM) on drop.
pub struct NodeProc {
    pub child: Child,
    pub home: tempfile::TempDir,
    pub peer_id: String,
    pub addr: String,
    pub api: String,
}

impl NodeProc {
    /// Starts a node listening on a free loopback port, bootstrapping through `bootstrap`.
    pub fn start(bootstrap: &[&str]) -> NodeProc {
        Self::start_with(bootstrap, &[])
    }

    /// Like [`NodeProc::start`], with more `node start` arguments.
    pub fn start_with(bootstrap: &[&str], extra: &[&str]) -> NodeProc {
        Self::start_in(
            tempfile::tempdir().unwrap(),
            "/ip4/127.0.0.1/tcp/0",
            bootstrap,
            extra,
        )
    }

    /// Starts a node on an existing data dir (a restart) listening on `listen`.
    pub fn start_in(
        home: tempfile::TempDir,
        listen: &str,
        bootstrap: &[&str],
        extra: &[&str],
    ) -> NodeProc {
        Self::try_start_in(home, listen, bootstrap, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`NodeProc::start_in`], but a node that fails to start (e.g. its port is still taken) is an
    /// `Err` with what it printed, not a panic.
    pub fn try_start_in(
        home: tempfile::TempDir,
        listen: &str,
        bootstrap: &[&str],
        extra: &[&str],
    ) -> Result<NodeProc, String> {
        Self::try_start_env(home, listen, bootstrap, extra, &[])
    }

    /// Like [`NodeProc::try_start_in`], with extra environment variables for the node process.
    pub fn try_start_env(
        home: tempfile::TempDir,
        listen: &str,
        bootstrap: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<NodeProc, String> {
        let mut cmd = Command::new(jobmesh_bin());
        cmd.envs(env.iter().copied());
        cmd.arg("--data-dir").arg(home.path()).arg("--json").args([
            "node",
            "start",
            "--listen",
            listen,
            "--api",
            "127.0.0.1:0",
        ]);
        for b in bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        cmd.args(extra);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("node did not start in 30 s".into());
            }
        };
        let v: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                let _ = child.wait();
                return Err(format!("node start printed {line:?}: {e}"));
            }
        };
        Ok(NodeProc {
            child,
            home,
            peer_id: v["peer_id"].as_str().unwrap().to_string(),
            addr: v["addresses"][0].as_str().unwrap().to_string(),
            api: v["api"].as_str().unwrap().to_string(),
        })
    }

    /// Runs a `jobmesh` CLI command against this node's data dir (so it goes through the API).
    pub fn cli(&self, args: &[&str]) -> Vec<u8> {
        let mut cmd = Command::new(jobmesh_bin());
        cmd.arg("--data-dir").arg(self.home.path()).args(args);
        run_ok(&mut cmd, Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("jobmesh {args:?}: {e}"))
    }

    /// Runs a `jobmesh` CLI command that must fail; returns its stderr.
    pub fn cli_fail(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(jobmesh_bin());
        cmd.arg("--data-dir")
            .arg(self.home.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = jobmesh_tests::run(&mut cmd, Duration::from_secs(60)).unwrap();
        assert!(!out.status.success(), "jobmesh {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_slice(&self.cli(&a)).unwrap()
    }

    /// `jobmesh --json job submit CODE --input INPUT --replicas N --price WEI` on this node: the final status.
    pub fn submit_job(
        &self,
        code: &str,
        input: &str,
        replicas: u8,
        price: u64,
    ) -> serde_json::Value {
        let (replicas, price) = (replicas.to_string(), price.to_string());
        self.cli_json(&[
            "job",
            "submit",
            code,
            "--input",
            input,
            "--replicas",
            &replicas,
            "--price",
            &price,
        ])
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Kills the process at once (SIGKILL, nothing flushed) and hands back its data dir for a restart.
    pub fn kill9(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let home = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.home, home)
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// Resident memory of the process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// POSTs to the control API and returns (status, body). `Connection: close`, bounded by `limit`.
pub fn post(api: &str, path_and_query: &str, body: &[u8], limit: Duration) -> (u16, Vec<u8>) {
    let (status, _, body) = http(
        api,
        "POST",
        &format!("/api/v0/{path_and_query}"),
        &[],
        body,
        limit,
    );
    (status, body)
}

/// One HTTP/1.1 request to the node: returns (status, head, body). `Connection: close`, bounded by `limit`.
/// A POST says `Content-Type: application/json` unless `headers` names a content type (an empty value leaves the
/// header out); `Host` is the API's address unless `headers` names one.
pub fn http(
    api: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    limit: Duration,
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(api).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    let named = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut extra: String = headers
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    if method == "POST" && !named("content-type") {
        extra.push_str("Content-Type: application/json\r\n");
    }
    if !named("host") {
        extra.push_str(&format!("Host: {api}\r\n"));
    }
    let head = format!(
        "{method} {path} HTTP/1.1\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // A server may answer (413 for an oversized body) and close before reading the whole body: the rest of
    // the body then fails to send, and the answer is still read. It is read while the body is sent, so that the
    // reset the kernel sends for unread bytes cannot discard the answer before it was read.
    let mut reading = s.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut raw = Vec::new();
        let res = reading.read_to_end(&mut raw);
        (raw, res)
    });
    let sent = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body));
    if let Err(e) = &sent {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "sending {method} {path}: {e}"
        );
    }
    let (raw, read) = reader.join().unwrap();
    if let Err(e) = read {
        assert!(
            sent.is_err() && raw.windows(4).any(|w| w == b"\r\n\r\n"),
            "reading the answer to {method} {path}: {e}"
        );
    }
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[head_end..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let len =
            usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if len == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + len]);
        b = &b[eol + 2 + len + 2..];
    }
    out
}

/// Opens a pubsub subscription stream; returns a receiver of raw bytes read from it (a reader thread
/// forwards them) once the node has confirmed the subscription.
pub fn subscribe(api: &str, topic: &str) -> mpsc::Receiver<Vec<u8>> {
    let mut s = TcpStream::connect(api).unwrap();
    write!(
        s,
        "POST /api/v0/pubsub/sub?arg={topic} HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    // Wait for the `{}` line that confirms the subscription.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains("{}") {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.extend(rx.recv_timeout(left).expect("subscription not confirmed"));
    }
    rx
}

/// Waits until `rx` has delivered bytes containing `needle`.
pub fn wait_for(rx: &mpsc::Receiver<Vec<u8>>, needle: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        if String::from_utf8_lossy(&seen).contains(needle) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(b) => seen.extend(b),
            Err(_) => return false,
        }
    }
}

/// Retries `f` every 200 ms until it returns true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// The CID of the first leaf of `file` added with the kubo profile: its first 256 KiB as a raw block (CIDv1,
/// sha2-256).
pub fn first_kubo_leaf(file: &Path) -> String {
    let data = std::fs::read(file).unwrap();
    jobmesh_store::cid_of_raw(&data[..data.len().min(256 * 1024)]).to_string()
}

/// Whether `node`'s `dht findprovs <cid>` (waiting `secs` seconds at most) names `provider`.
pub fn finds_provider(node: &NodeProc, cid: &str, provider: &str, secs: u32) -> bool {
    let v = node.cli_json(&["dht", "findprovs", cid, "--timeout", &secs.to_string()]);
    v["Providers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p.as_str() == Some(provider))
}

pub fn tmp_file(dir: &Path, name: &str, len: u64, seed: u64) -> PathBuf {
    let p = dir.join(name);
    jobmesh_tests::write_seeded_file(&p, len, seed).unwrap();
    p
}

/// A third-party peer process driven by JSON lines (tests/interop/mesh/peer.mjs for Helia,
/// tests/interop/mesh/kubo_peer.py for kubo): one answer line per command, gossip as `{"msg": …}`.
pub struct ScriptPeer {
    pub child: Child,
    stdin: std::process::ChildStdin,
    answers: mpsc::Receiver<serde_json::Value>,
    msgs: mpsc::Receiver<serde_json::Value>,
    pub peer_id: String,
    pub addr: String,
}

impl ScriptPeer {
    pub fn spawn(mut cmd: Command) -> ScriptPeer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (atx, answers) = mpsc::channel();
        let (mtx, msgs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    eprintln!("peer: {line}");
                    continue;
                };
                let _ = if v.get("msg").is_some() {
                    mtx.send(v)
                } else {
                    atx.send(v)
                };
            }
        });
        let hello = answers
            .recv_timeout(Duration::from_secs(60))
            .expect("the peer did not start in 60 s");
        let peer_id = hello["peerId"].as_str().expect("peerId").to_string();
        let addr = hello["addrs"][0].as_str().expect("an address").to_string();
        ScriptPeer {
            child,
            stdin,
            answers,
            msgs,
            peer_id,
            addr,
        }
    }

    /// Sends a command and returns its answer's `ok` value; panics on `error` or after `limit`.
    pub fn cmd(&mut self, v: serde_json::Value, limit: Duration) -> serde_json::Value {
        writeln!(self.stdin, "{v}").unwrap();
        self.stdin.flush().unwrap();
        let a = self
            .answers
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("no answer to {v} in {limit:?}"));
        if let Some(e) = a.get("error") {
            panic!("{v} failed: {e}");
        }
        a["ok"].clone()
    }

    /// Like [`ScriptPeer::cmd`] but returns the error instead of panicking.
    pub fn try_cmd(
        &mut self,
        v: serde_json::Value,
        limit: Duration,
    ) -> Result<serde_json::Value, String> {
        writeln!(self.stdin, "{v}").unwrap();
        self.stdin.flush().unwrap();
        let a = self
            .answers
            .recv_timeout(limit)
            .map_err(|_| format!("no answer to {v}"))?;
        match a.get("error") {
            Some(e) => Err(e.to_string()),
            None => Ok(a["ok"].clone()),
        }
    }

    /// Waits for a gossip message whose data is `data`.
    pub fn wait_msg(&self, data: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.msgs.recv_timeout(left) {
                Ok(m) if m["msg"]["data"].as_str() == Some(data) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }
}

impl Drop for ScriptPeer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{{\"cmd\":\"stop\"}}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Both directions of blocks and gossip between a jobmesh node and a third-party peer.
pub fn exchange_with(peer: &mut ScriptPeer, label: &str, peer_add_cid_prefix: &str) {
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("[{label} {:>6.2}s] {what}", t0.elapsed().as_secs_f64());
    let node = NodeProc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // Connect the peer to our node.
    peer.cmd(
        serde_json::json!({"cmd": "dial", "addr": node.addr}),
        Duration::from_secs(20),
    );

    // 1. The peer fetches by CID a multi-block file our node added (3 MiB + 7 = 13 leaves + root).
    let ours = tmp_file(dir.path(), "ours.bin", 3 * 1024 * 1024 + 7, 11);
    let cid = String::from_utf8(node.cli(&["add", ours.to_str().unwrap()]))
        .unwrap()
        .trim()
        .to_string();
    let got = dir.path().join("peer-got.bin");
    peer.cmd(
        serde_json::json!({"cmd": "cat", "cid": cid, "out": got}),
        Duration::from_secs(90),
    );
    assert_eq!(
        std::fs::read(&got).unwrap(),
        std::fs::read(&ours).unwrap(),
        "{label} fetched different bytes"
    );

    step("peer fetched ours");
    // 2. Our node fetches by CID a multi-block file the peer added; the CID is the one we compute too.
    let theirs = tmp_file(dir.path(), "theirs.bin", 2 * 1024 * 1024 + 99, 12);
    let their_cid = peer.cmd(
        serde_json::json!({"cmd": "add", "path": theirs}),
        Duration::from_secs(60),
    );
    let their_cid = their_cid.as_str().unwrap().to_string();
    assert!(
        their_cid.starts_with(peer_add_cid_prefix),
        "{label} CID {their_cid}"
    );
    let fetched = node.cli(&["cat", &their_cid]);
    assert_eq!(
        fetched,
        std::fs::read(&theirs).unwrap(),
        "we fetched different bytes from {label}"
    );
    let profile = if their_cid.starts_with("Qm") {
        "v0"
    } else {
        "kubo"
    };
    let offline = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(jobmesh_bin());
    cmd.arg("--data-dir").arg(offline.path()).args([
        "add",
        "--profile",
        profile,
        theirs.to_str().unwrap(),
    ]);
    let ours_of_theirs = run_ok(&mut cmd, Duration::from_secs(60)).unwrap();
    assert_eq!(
        String::from_utf8(ours_of_theirs).unwrap().trim(),
        their_cid,
        "CIDs differ from {label}'s"
    );

    step("we fetched theirs");
    // 3. Gossip both ways on one topic.
    let topic = "jobmesh-interop";
    let sub = subscribe(&node.api, topic);
    peer.cmd(
        serde_json::json!({"cmd": "sub", "topic": topic}),
        Duration::from_secs(10),
    );
    let to_us = format!("hello jobmesh from {label}");
    assert!(
        eventually(Duration::from_secs(20), || {
            peer.try_cmd(
                serde_json::json!({"cmd": "pub", "topic": topic, "data": to_us}),
                Duration::from_secs(10),
            )
            .is_ok_and(|n| n.as_u64().unwrap_or(1) > 0)
        }),
        "{label} could not publish to our node"
    );
    let hex: String = to_us.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        wait_for(&sub, &hex, Duration::from_secs(20)),
        "our node never got {label}'s message"
    );
    step("their gossip reached us");
    let to_them = format!("hello {label} from jobmesh");
    assert!(
        eventually(Duration::from_secs(20), || {
            post(
                &node.api,
                &format!("pubsub/pub?arg={topic}"),
                to_them.as_bytes(),
                Duration::from_secs(5),
            )
            .0 == 200
        }),
        "our node could not publish to {label}"
    );
    assert!(
        peer.wait_msg(&to_them, Duration::from_secs(20)),
        "{label} never got our message"
    );
}

/// Waits (at most 30 s) until `node` has `n` peers, then a moment for gossipsub to exchange subscriptions.
pub fn wait_peers(node: &NodeProc, n: usize) {
    let started = Instant::now();
    loop {
        let (_, body) = post(&node.api, "swarm/peers", b"", Duration::from_secs(5));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if v["Peers"].as_array().map_or(0, Vec::len) >= n {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "peers: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
}
