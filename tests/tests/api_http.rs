//! The node's HTTP surface beyond the CLI: the IPFS gateway, Prometheus metrics, the API token, and bad input
//! on every kind of route answered with a 4xx JSON error (never a 500).

mod mesh_util;

use std::process::{Command, Stdio};
use std::time::Duration;

use mesh_util::{http, post, NodeProc};

const LIMIT: Duration = Duration::from_secs(30);

fn json_message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    v["Message"].as_str().unwrap_or_default().to_string()
}

#[test]
fn gateway_metrics_and_bad_input() {
    let node = NodeProc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.txt");
    std::fs::write(&file, b"hello gateway\n").unwrap();
    let cid = String::from_utf8(node.cli(&["add", &file.display().to_string()]))
        .unwrap()
        .trim()
        .to_string();

    // The gateway serves the file, immutable and named by its CID.
    let (status, head, body) = http(&node.api, "GET", &format!("/ipfs/{cid}"), &[], b"", LIMIT);
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, b"hello gateway\n");
    assert!(head.to_ascii_lowercase().contains("immutable"), "{head}");
    // Bad input: 4xx with a JSON message.
    for (path, want) in [
        ("/ipfs/notacid".to_string(), 400),
        (format!("/ipfs/{cid}/no/such/path"), 404),
    ] {
        let (status, _, body) = http(&node.api, "GET", &path, &[], b"", LIMIT);
        assert_eq!(status, want, "{path}");
        assert!(!json_message(&body).is_empty());
    }
    let unknown_job = "00".repeat(32);
    for (route, want) in [
        ("cat?arg=notacid", 400),
        ("block/get?arg=bafkreinotacid", 400),
        ("job/status?arg=nothex", 400),
        (&format!("job/status?arg={unknown_job}") as &str, 400),
        ("job/cancel?arg=nothex", 400),
        ("job/submit?input=bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", 400),
        ("job/submit?code=x&input=y", 400),
        ("job/submit?code=bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku&input=bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku&replicas=99", 400),
        ("swarm/connect?arg=/not/a/multiaddr", 400),
    ] {
        let (status, body) = post(&node.api, route, b"", LIMIT);
        assert_eq!(status, want, "{route}: {}", String::from_utf8_lossy(&body));
        assert!(!json_message(&body).is_empty(), "{route}");
    }

    // Prometheus metrics.
    let (status, _, body) = http(&node.api, "GET", "/metrics", &[], b"", LIMIT);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    for metric in [
        "jobmesh_peers",
        "jobmesh_store_blocks",
        "jobmesh_bitswap_bytes_total",
        "jobmesh_gossip_messages_total",
        "jobmesh_bitswap_misbehaved_total 0",
        "jobmesh_peers_banned_total 0",
        "jobmesh_peers_trimmed_total 0",
        "jobmesh_dht_queries_total",
        "jobmesh_connections_opened_total",
        "jobmesh_exec_fuel",
    ] {
        assert!(text.contains(metric), "{metric} missing from:\n{text}");
    }
}

#[test]
fn the_gateway_lists_directories_serves_index_pages_and_paths() {
    use jobmesh_store::unixfs::{put_dir, DirEntry, Profile};
    // A small site built in a scratch store and imported into the node as a CAR.
    let scratch = tempfile::tempdir().unwrap();
    let store = jobmesh_store::Store::open(scratch.path()).unwrap();
    let add = |b: &[u8]| store.add_file(b, &Profile::KUBO).unwrap().root;
    let entry = |name: &str, cid| DirEntry {
        name: name.into(),
        cid,
    };
    let site = put_dir(
        &store,
        &[
            entry("index.html", add(b"<h1>home</h1>")),
            entry("style.css", add(b"h1 { color: teal }")),
        ],
    )
    .unwrap();
    let root = put_dir(
        &store,
        &[
            entry("site", site),
            entry("notes & more.txt", add(b"plain notes")),
        ],
    )
    .unwrap();
    let car = scratch.path().join("site.car");
    let mut out = std::fs::File::create(&car).unwrap();
    jobmesh_store::car::export(&store, &root, &mut out).unwrap();
    drop(out);

    // Imported while no node runs (the CLI then opens the store itself), then served by the node.
    let home = tempfile::tempdir().unwrap();
    let mut import = Command::new(jobmesh_tests::jobmesh_bin());
    import
        .arg("--data-dir")
        .arg(home.path())
        .args(["dag", "import", &car.display().to_string()]);
    jobmesh_tests::run_ok(&mut import, LIMIT).unwrap();
    let node = NodeProc::start_in(home, "/ip4/127.0.0.1/tcp/0", &[], &[]);
    let get = |path: &str| http(&node.api, "GET", path, &[], b"", LIMIT);

    let (status, head, body) = get(&format!("/ipfs/{root}"));
    assert_eq!(status, 200);
    assert!(head.contains("text/html"));
    let listing = String::from_utf8(body).unwrap();
    assert!(listing.contains("notes &amp; more.txt"), "{listing}");
    assert!(
        listing.contains(&format!("/ipfs/{root}/notes%20%26%20more.txt")),
        "{listing}"
    );
    let (status, _, body) = get(&format!("/ipfs/{root}/notes%20%26%20more.txt"));
    assert_eq!((status, body.as_slice()), (200, &b"plain notes"[..]));
    let (status, head, body) = get(&format!("/ipfs/{root}/site/"));
    assert_eq!((status, body.as_slice()), (200, &b"<h1>home</h1>"[..]));
    assert!(head.contains("text/html"));
    let (status, head, _) = get(&format!("/ipfs/{root}/site/style.css"));
    assert_eq!(status, 200);
    assert!(head.contains("text/css"), "{head}");
    let (status, _, _) = get(&format!("/ipfs/{root}/site/missing.js"));
    assert_eq!(status, 404);
}

#[test]
fn an_api_beyond_loopback_needs_a_token_and_enforces_it() {
    let home = tempfile::tempdir().unwrap();
    let start = |extra: &[&str]| {
        let mut cmd = Command::new(jobmesh_tests::jobmesh_bin());
        cmd.arg("--data-dir")
            .arg(home.path())
            .args(["node", "start", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(extra)
            .env_remove("JOBMESH_API_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        jobmesh_tests::run(&mut cmd, Duration::from_secs(30)).unwrap()
    };
    let out = start(&["--api", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve the control API"), "{err}");
    let out = start(&["--api", "0.0.0.0:0", "--api-token", "short"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16 characters"));

    // With a token (on loopback here, so the test stays on 127.0.0.1): refused without it, fine with it, and
    // the CLI on the same data dir finds it by itself.
    let token = "a-long-enough-secret-token";
    let node = NodeProc::start_with(&[], &["--api-token", token]);
    let (status, body) = post(&node.api, "id", b"", LIMIT);
    assert_eq!(status, 401);
    assert!(json_message(&body).contains("token"));
    let (status, _, _) = http(
        &node.api,
        "POST",
        "/api/v0/id",
        &[("Authorization", "Bearer wrong-token-of-some-length")],
        b"",
        LIMIT,
    );
    assert_eq!(status, 401);
    let auth = format!("Bearer {token}");
    let (status, _, _) = http(
        &node.api,
        "POST",
        "/api/v0/id",
        &[("Authorization", &auth)],
        b"",
        LIMIT,
    );
    assert_eq!(status, 200);
    // The dashboard page and its assets load without it (the page sends the token on its API calls).
    for path in ["/", "/dashboard/app.js"] {
        let (status, _, _) = http(&node.api, "GET", path, &[], b"", LIMIT);
        assert_eq!(status, 200, "{path}");
    }
    let (status, _, _) = http(&node.api, "GET", "/api/v0/repo/stat", &[], b"", LIMIT);
    assert_eq!(status, 401);
    // The token is taken from the header only (a URL lands in histories and logs), its scheme in any case.
    let with_query = format!("/api/v0/repo/stat?token={token}");
    let (status, _, _) = http(&node.api, "GET", &with_query, &[], b"", LIMIT);
    assert_eq!(status, 401);
    let lower = format!("bearer {token}");
    let (status, _, _) = http(
        &node.api,
        "GET",
        "/api/v0/repo/stat",
        &[("Authorization", &lower)],
        b"",
        LIMIT,
    );
    assert_eq!(status, 200);
    let id = node.cli_json(&["id"]);
    assert!(
        id["id"].as_str().is_some() || id["ID"].as_str().is_some(),
        "{id}"
    );
    let file = node.home().join("t.txt");
    std::fs::write(&file, b"x").unwrap();
    node.cli(&["add", &file.display().to_string()]);
}

/// Every route the OpenAPI document lists, called with garbage arguments (and with none), answers without a
/// server error: a success where the arguments do not matter, else a 4xx with a JSON message. (Streaming
/// routes get an argument that cannot be followed; `shutdown` is left out.)
#[test]
fn every_route_answers_garbage_with_a_client_error_never_a_500() {
    let node = NodeProc::start(&[]);
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(jobmesh_tests::workspace_root().join("docs/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    let garbage = "arg=%25not%20a%20cid&amount=lots&timeout=-1s&replicas=99&code=x&input=y&topic=";
    let mut checked = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        if path.ends_with("/shutdown") {
            continue;
        }
        let path = path
            .replace("{cid}", "notacid")
            .replace("{path}", "no/such");
        for method in methods.as_object().unwrap().keys() {
            for query in ["", garbage] {
                // Any topic name is valid: a subscription to it would stream until the node stops.
                if path.ends_with("/pubsub/sub") && !query.is_empty() {
                    continue;
                }
                let url = if query.is_empty() {
                    path.clone()
                } else {
                    format!("{path}?{query}")
                };
                let (status, head, body) = http(
                    &node.api,
                    &method.to_ascii_uppercase(),
                    &url,
                    &[],
                    b"{not json",
                    LIMIT,
                );
                assert!(status < 500, "{method} {url}: {status} {head}");
                if status >= 400 {
                    assert!(
                        !json_message(&body).is_empty(),
                        "{method} {url}: no JSON message"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 50, "only {checked} calls made");
}
