//! The store commands while a node holds the data dir (sled allows one process per store: they go through the
//! node's API), directory adds against the JavaScript reference importer, and a refused `get` that leaves
//! nothing behind.

mod mesh_util;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mesh_util::NodeProc;

const LIMIT: Duration = Duration::from_secs(60);

fn text(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap().trim().to_string()
}

#[test]
fn every_store_command_works_while_a_node_runs() {
    let node = NodeProc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.txt");
    std::fs::write(&file, b"one block of text").unwrap();
    let cid = text(node.cli(&["add", &file.display().to_string()]));

    let pins = node.cli_json(&["pin", "ls"]);
    assert!(
        pins["pins"].as_array().unwrap().iter().any(|p| p == &cid),
        "{pins}"
    );
    assert_eq!(node.cli(&["block", "get", &cid]), b"one block of text");
    assert_eq!(node.cli_json(&["block", "stat", &cid])["size"], 17);
    let stat = node.cli_json(&["repo", "stat"]);
    assert!(
        stat["blocks"].as_u64().unwrap() >= 1 && stat["pins"].as_u64().unwrap() >= 1,
        "{stat}"
    );
    assert!(node.cli_json(&["repo", "verify"])["ok"].as_u64().unwrap() >= 1);

    let car = dir.path().join("f.car");
    node.cli(&["dag", "export", &cid, "-o", &car.display().to_string()]);
    let scratch = tempfile::tempdir().unwrap();
    let store = jobmesh_store::Store::open(scratch.path()).unwrap();
    let imported = jobmesh_store::car::import(&store, std::fs::File::open(&car).unwrap()).unwrap();
    assert_eq!(imported.roots, [jobmesh_store::parse_cid(&cid).unwrap()]);

    // A block put through the node, unpinned and collected, then a CAR imported (and pinned) again.
    let raw = dir.path().join("raw.bin");
    std::fs::write(&raw, b"a loose block").unwrap();
    let loose = node.cli_json(&["block", "put", &raw.display().to_string()])["cid"]
        .as_str()
        .unwrap()
        .to_string();
    node.cli(&["pin", "rm", &cid]);
    let gc = node.cli_json(&["repo", "gc"]);
    assert!(gc["removed_blocks"].as_u64().unwrap() >= 2, "{gc}");
    assert!(!node.cli_fail(&["block", "stat", &loose]).is_empty());
    let again = node.cli_json(&["dag", "import", &car.display().to_string()]);
    assert_eq!(again["pinned"][0], cid.as_str(), "{again}");
    assert_eq!(node.cli(&["block", "get", &cid]), b"one block of text");
}

/// A tree with nested, empty and multi-block entries.
fn sample_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("a.txt"), b"alpha\n").unwrap();
    std::fs::write(root.join("sub/b.txt"), b"beta\n").unwrap();
    jobmesh_tests::write_seeded_file(&root.join("sub/deeper/big.bin"), 700_000, 7).unwrap();
    jobmesh_tests::write_seeded_file(&root.join("Z-upper.bin"), 262_144, 8).unwrap();
}

#[test]
fn add_r_gives_the_reference_importers_directory_cid() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    sample_tree(&tree);
    let tree_arg = tree.display().to_string();
    for profile in ["kubo", "v0", "helia"] {
        let mut js = jobmesh_tests::node_script("unixfs", "dir-cid.mjs").unwrap();
        js.args([profile, &tree_arg]);
        let want = text(jobmesh_tests::run_ok(&mut js, LIMIT).unwrap());
        let home = tempfile::tempdir().unwrap();
        let mut ours = Command::new(jobmesh_tests::jobmesh_bin());
        ours.arg("--data-dir").arg(home.path()).args([
            "add",
            "-r",
            "--profile",
            profile,
            &tree_arg,
        ]);
        let got = text(jobmesh_tests::run_ok(&mut ours, LIMIT).unwrap());
        assert_eq!(got, want, "profile {profile}");
    }

    // Through a running node: the same CID, pinned there, and `get` writes the same tree back.
    let node = NodeProc::start(&[]);
    let cid = text(node.cli(&["add", "-r", &tree_arg]));
    let mut js = jobmesh_tests::node_script("unixfs", "dir-cid.mjs").unwrap();
    js.args(["kubo", &tree_arg]);
    assert_eq!(cid, text(jobmesh_tests::run_ok(&mut js, LIMIT).unwrap()));
    let pins = node.cli_json(&["pin", "ls"]);
    assert!(
        pins["pins"].as_array().unwrap().iter().any(|p| p == &cid),
        "{pins}"
    );
    let back = dir.path().join("back");
    node.cli(&["get", &cid, "-o", &back.display().to_string()]);
    for rel in ["a.txt", "sub/b.txt", "sub/deeper/big.bin", "Z-upper.bin"] {
        assert_eq!(
            std::fs::read(back.join(rel)).unwrap(),
            std::fs::read(tree.join(rel)).unwrap(),
            "{rel}"
        );
    }
    assert!(back.join("empty").is_dir());

    // A plain `add` of a directory says how to add one.
    let err = node.cli_fail(&["add", &tree_arg]);
    assert!(err.contains("add it with -r"), "{err}");
}

/// A dag-pb UnixFS directory block, encoded by hand (the store refuses to make one with unsafe names).
fn dag_pb_dir(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
        out.push(tag);
        let mut len = bytes.len();
        while len >= 0x80 {
            out.push((len as u8) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(bytes);
    }
    let mut node = Vec::new();
    for (name, hash) in entries {
        let mut link = Vec::new();
        field(&mut link, 0x0a, hash); // Hash
        field(&mut link, 0x12, name.as_bytes()); // Name
        link.extend_from_slice(&[0x18, 4]); // Tsize
        field(&mut node, 0x12, &link); // Links
    }
    field(&mut node, 0x0a, &[0x08, 0x01]); // Data: UnixFS { Type: Directory }
    node
}

#[test]
fn a_refused_get_leaves_no_output_behind() {
    // A directory holding a good file and an entry named `..`: written out, it would escape the output.
    let scratch = tempfile::tempdir().unwrap();
    let store = jobmesh_store::Store::open(scratch.path()).unwrap();
    let good = store
        .add_file(&b"fine"[..], &jobmesh_store::unixfs::Profile::KUBO)
        .unwrap()
        .root;
    let block = dag_pb_dir(&[("a-good-file", good.to_bytes()), ("..", good.to_bytes())]);
    let evil = jobmesh_store::cid_of(
        jobmesh_store::DAG_PB,
        jobmesh_store::HashAlg::Sha2_256,
        &block,
    );
    store.put(&evil, &block).unwrap();
    let car = scratch.path().join("evil.car");
    jobmesh_store::car::export(&store, &evil, &mut std::fs::File::create(&car).unwrap()).unwrap();

    let out_dir = tempfile::tempdir().unwrap();
    // Without a node (the CLI writes) and with one (the CLI writes what the node streams).
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(jobmesh_tests::jobmesh_bin());
        cmd.arg("--data-dir").arg(home.path()).args(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        jobmesh_tests::run(&mut cmd, LIMIT).unwrap()
    };
    assert!(cli(&["dag", "import", &car.display().to_string()])
        .status
        .success());
    let target = out_dir.path().join("offline");
    let out = cli(&[
        "get",
        &evil.to_string(),
        "-o",
        &target.display().to_string(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsafe entry name"));
    let node = NodeProc::start_in(home, "/ip4/127.0.0.1/tcp/0", &[], &[]);
    let online = out_dir.path().join("online");
    let err = node.cli_fail(&[
        "get",
        &evil.to_string(),
        "-o",
        &online.display().to_string(),
    ]);
    assert!(err.contains("unsafe entry name"), "{err}");
    let left: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "a refused get left {left:?} behind");
}
