//! Fixtures the market's unit tests share: CIDs, job specs and peer identities.

use cid::Cid;
use libp2p_identity::{Keypair, PeerId};

use crate::messages::{CodeKind, JobLimits, JobSpec};

/// A raw-codec blake3 CID of `bytes`.
pub fn cid(bytes: &[u8]) -> Cid {
    Cid::new_v1(
        0x55,
        cid::multihash::Multihash::wrap(0x1e, blake3::hash(bytes).as_bytes())
            .expect("32-byte digest"),
    )
}

/// A valid JavaScript job spec with `replicas` replicas and, if asked, a verifier.
pub fn spec(replicas: u8, verifier: bool) -> JobSpec {
    JobSpec {
        kind: CodeKind::JavyBytecode,
        plugin: Some(cid(b"plugin")),
        code: cid(b"code"),
        input: cid(b"input"),
        limits: JobLimits {
            max_fuel: 1_000_000,
            memory_bytes: 1 << 26,
            output_bytes: 1 << 20,
            stderr_bytes: 1 << 12,
        },
        engine: "test".into(),
        replicas,
        price_wei_per_mfuel: 1_000,
        verifier: verifier.then(|| cid(b"verifier")),
        nonce: 1,
        error_rate_ppb: None,
    }
}

/// `n` fresh peer identities.
pub fn peers(n: usize) -> Vec<PeerId> {
    (0..n)
        .map(|_| Keypair::generate_ed25519().public().to_peer_id())
        .collect()
}
