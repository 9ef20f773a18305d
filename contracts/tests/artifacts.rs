//! The checked-in artifacts are exactly what the pinned compiler produces from the checked-in sources.
//! Needs node and the npm `solc` installed by `scripts/setup.d/30-chain.sh`: it fails (never skips) without them.

use std::path::Path;
use std::process::Command;

use jobmesh_contracts::{settlement_artifact, SOLC_VERSION};

#[test]
fn artifacts_match_a_fresh_compilation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("node")
        .arg(root.join("scripts/build.js"))
        .arg("--out")
        .arg(out.path())
        .status()
        .expect("node must be installed (scripts/setup.d/30-chain.sh installs solc for it)");
    assert!(
        status.success(),
        "contracts/scripts/build.js failed: is npm solc installed? run scripts/setup.d/30-chain.sh"
    );
    for name in [
        "Settlement.json",
        "ReentrantAttacker.json",
        "Stake.json",
        "StakeAttacker.json",
    ] {
        let fresh = std::fs::read(out.path().join(name)).unwrap();
        let checked_in = std::fs::read(root.join("artifacts").join(name)).unwrap();
        assert!(
            fresh == checked_in,
            "artifacts/{name} differs from a fresh compilation: run `node contracts/scripts/build.js` and commit"
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("artifacts/Settlement.json")).unwrap())
            .unwrap();
    assert_eq!(json["compiler"], SOLC_VERSION);
    assert!(!settlement_artifact().deployed_bytecode.is_empty());
}
