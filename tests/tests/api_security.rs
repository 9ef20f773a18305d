//! Attacks on a node's local API from a web browser's position, each sent for real to a running node, each
//! checked by its effect (no job, no block, no file, the node still running), with a same-origin control that
//! does get through so that no check passes vacuously:
//! - a cross-site page posting a job or a shutdown (`Origin: http://evil.example`, `Content-Type: text/plain`);
//! - a page with an opaque origin (`Origin: null`: sandboxed frames, the path-style gateway) and a browser that
//!   omits `Origin` but says `Sec-Fetch-Site: cross-site`;
//! - DNS rebinding (a `Host` that names the attacker's domain);
//! - `get` writing a file tree at a path the caller chooses;
//! - untrusted HTML from the gateway on the API's origin, and the subdomain gateway reaching the API;
//! - bodies far larger than any handler needs.

mod mesh_util;

use std::time::Duration;

use mesh_util::{http, NodeProc};

const LIMIT: Duration = Duration::from_secs(30);
const EVIL: &str = "http://evil.example";

/// The node's job count and stored block count: what a successful attack would change.
fn footprint(node: &NodeProc) -> (usize, u64) {
    let jobs = node.cli_json(&["job", "list"]);
    let jobs = jobs
        .as_array()
        .or_else(|| jobs["jobs"].as_array())
        .map_or(0, Vec::len);
    let (status, _, body) = http(&node.api, "GET", "/api/v0/repo/stat", &[], b"", LIMIT);
    assert_eq!(status, 200);
    let stat: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (jobs, stat["NumObjects"].as_u64().unwrap())
}

fn alive(node: &mut NodeProc) -> bool {
    std::thread::sleep(Duration::from_millis(300));
    node.child.try_wait().unwrap().is_none()
        && http(&node.api, "POST", "/api/v0/id", &[], b"", LIMIT).0 == 200
}

const JOB: &[u8] = br#"{"source":"Javy.IO.writeSync(1, new TextEncoder().encode('pwned'))","replicas":1,"price":1000000000}"#;

/// What an attack is called, the headers it sends, and the status it must get.
type Attack<'a> = (&'a str, &'a [(&'a str, &'a str)], u16);

#[test]
fn cross_site_requests_are_refused_and_change_nothing() {
    // A requester with a worker, so that a job that gets through would be announced and run.
    let mut node = NodeProc::start(&[]);
    let _worker = NodeProc::start_with(&[&node.addr], &["--worker"]);
    mesh_util::wait_peers(&node, 1);
    let own = format!("http://{}", node.api);
    let before = footprint(&node);
    let attacks: [Attack; 6] = [
        (
            "cross-site, text/plain",
            &[("Origin", EVIL), ("Content-Type", "text/plain")],
            403,
        ),
        ("cross-site, JSON", &[("Origin", EVIL)], 403),
        ("opaque origin", &[("Origin", "null")], 403),
        (
            "no Origin, cross-site fetch",
            &[("Sec-Fetch-Site", "cross-site"), ("Content-Type", "")],
            403,
        ),
        (
            "same origin, text/plain",
            &[("Origin", &own), ("Content-Type", "text/plain")],
            415,
        ),
        (
            "no Origin, form post",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            415,
        ),
    ];
    for (what, headers, want) in attacks {
        for path in [
            "/api/v0/job/submit-js",
            "/api/v0/add",
            "/api/v0/settlement/withdraw?amount=1",
            "/api/v0/shutdown",
        ] {
            let (status, _, body) = http(&node.api, "POST", path, headers, JOB, LIMIT);
            assert_eq!(
                status,
                want,
                "{what} {path}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    assert!(alive(&mut node), "a refused shutdown stopped the node");
    assert_eq!(
        footprint(&node),
        before,
        "a refused request changed the node"
    );

    // Control: the same job from the API's own origin as JSON is taken (so the refusals above are the guard's).
    let (status, _, body) = http(
        &node.api,
        "POST",
        "/api/v0/job/submit-js",
        &[("Origin", &own)],
        JOB,
        LIMIT,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        footprint(&node).0,
        before.0 + 1,
        "the control job was not recorded"
    );
    let (status, _, _) = http(
        &node.api,
        "POST",
        "/api/v0/shutdown",
        &[("Origin", &own)],
        b"",
        LIMIT,
    );
    assert_eq!(status, 200);
    assert!(mesh_util::eventually(Duration::from_secs(10), || node
        .child
        .try_wait()
        .unwrap()
        .is_some()));
}

#[test]
fn a_rebinding_host_is_refused() {
    let mut node = NodeProc::start(&[]);
    let port = node.api.rsplit(':').next().unwrap().to_string();
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.example:{port}"),
        "localhost".to_string(),
    ] {
        for (method, path) in [
            ("GET", "/api/v0/repo/stat"),
            ("POST", "/api/v0/shutdown"),
            ("GET", "/"),
        ] {
            let (status, _, _) = http(&node.api, method, path, &[("Host", &host)], b"", LIMIT);
            assert_eq!(status, 403, "{method} {path} with Host {host}");
        }
    }
    assert!(alive(&mut node));
    let localhost = format!("localhost:{port}");
    let (status, _, _) = http(
        &node.api,
        "GET",
        "/api/v0/repo/stat",
        &[("Host", &localhost)],
        b"",
        LIMIT,
    );
    assert_eq!(status, 200, "localhost with the API's port is this API");
}

#[test]
fn get_streams_a_car_and_the_node_writes_no_file() {
    let node = NodeProc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), b"alpha").unwrap();
    std::fs::write(tree.join("sub/b.txt"), b"beta").unwrap();
    let cid = String::from_utf8(node.cli(&["add", "-r", &tree.display().to_string()]))
        .unwrap()
        .trim()
        .to_string();

    // The old API wrote the tree at `output` itself; now it ignores it and streams a CAR to the caller.
    let target = dir.path().join("written-by-the-node");
    let path = format!("/api/v0/get?arg={cid}&output={}", target.display());
    let (status, head, body) = http(&node.api, "POST", &path, &[], b"", LIMIT);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("application/vnd.ipld.car"),
        "{head}"
    );
    assert!(!target.exists(), "the node wrote a file at a caller's path");
    let scratch = tempfile::tempdir().unwrap();
    let store = jobmesh_store::Store::open(scratch.path()).unwrap();
    let car = jobmesh_store::car::import(&store, body.as_slice()).unwrap();
    assert!(
        car.blocks >= 4,
        "the CAR holds the tree: {} blocks",
        car.blocks
    );

    // The CLI writes the tree on its side, byte for byte.
    let out = dir.path().join("out");
    node.cli(&["get", &cid, "-o", &out.display().to_string()]);
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"alpha");
    assert_eq!(std::fs::read(out.join("sub/b.txt")).unwrap(), b"beta");
}

#[test]
fn gateway_content_cannot_call_the_api() {
    let mut node = NodeProc::start(&[]);
    let port = node.api.rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(
        site.join("index.html"),
        b"<script>fetch('/api/v0/shutdown')</script>",
    )
    .unwrap();
    let cid = String::from_utf8(node.cli(&["add", "-r", &site.display().to_string()]))
        .unwrap()
        .trim()
        .to_string();

    // Path-style on the API's origin: sandboxed into an opaque origin (no allow-same-origin).
    let (status, head, _) = http(
        &node.api,
        "GET",
        &format!("/ipfs/{cid}/index.html"),
        &[],
        b"",
        LIMIT,
    );
    assert_eq!(status, 200);
    let csp = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .unwrap_or_else(|| panic!("no CSP on path-style gateway HTML: {head}"))
        .to_ascii_lowercase();
    assert!(
        csp.contains("sandbox") && !csp.contains("allow-same-origin"),
        "{csp}"
    );

    // Subdomain style: an origin of its own, which serves content and never the API.
    let gateway_host = format!("{cid}.ipfs.localhost:{port}");
    let (status, _, body) = http(
        &node.api,
        "GET",
        "/",
        &[("Host", &gateway_host)],
        b"",
        LIMIT,
    );
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"<script>fetch('/api/v0/shutdown')</script>"[..])
    );
    let (status, _, _) = http(
        &node.api,
        "POST",
        "/api/v0/shutdown",
        &[("Host", &gateway_host)],
        b"",
        LIMIT,
    );
    assert_eq!(status, 403);
    let gateway_origin = format!("http://{gateway_host}");
    let (status, _, _) = http(
        &node.api,
        "POST",
        "/api/v0/shutdown",
        &[("Origin", &gateway_origin)],
        b"",
        LIMIT,
    );
    assert_eq!(status, 403);
    assert!(alive(&mut node), "gateway content stopped the node");
}

#[test]
fn oversized_bodies_are_refused_without_reading_them_into_memory() {
    let node = NodeProc::start(&[]);
    let before = node.rss_kib();
    let big = vec![b'x'; 256 << 20];
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let api = node.api.clone();
            let big = big.clone();
            std::thread::spawn(move || {
                http(&api, "POST", "/api/v0/pubsub/pub?arg=t", &[], &big, LIMIT).0
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 413);
    }
    let grown_mib = node.rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "three 256 MiB posts grew the node by {grown_mib} MiB"
    );
}
