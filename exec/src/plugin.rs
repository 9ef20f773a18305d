//! The Javy plugin: the bundled, checked-in build, its content address, and loading other builds.

use std::sync::Arc;

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// The initialized plugin checked in at `exec/plugin/jobmesh-plugin.wasm` (reproduced by `exec/plugin/build.sh`).
static BUNDLED: &[u8] = include_bytes!("../plugin/jobmesh-plugin.wasm");

/// Multicodec of raw bytes.
const RAW: u64 = 0x55;
/// Multihash code of sha2-256.
const SHA2_256: u64 = 0x12;

/// CIDv1, raw codec, sha2-256 of `data` (the same CID the store gives a raw block).
pub fn cid_of_raw(data: &[u8]) -> Cid {
    let digest = Sha256::digest(data);
    let mh = Multihash::<64>::wrap(SHA2_256, &digest)
        .expect("a 32-byte digest fits a 64-byte multihash");
    Cid::new_v1(RAW, mh)
}

/// A Javy plugin module (QuickJS for wasm32-wasip1), named by the CID of its bytes.
#[derive(Clone)]
pub struct Plugin {
    bytes: Arc<[u8]>,
    cid: Cid,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plugin({}, {} bytes)", self.cid, self.bytes.len())
    }
}

impl Plugin {
    /// The plugin built into this binary.
    pub fn bundled() -> Plugin {
        Plugin::from_bytes(BUNDLED.to_vec())
    }

    /// A plugin from its bytes (validated when an [`crate::Executor`] registers it).
    pub fn from_bytes(bytes: Vec<u8>) -> Plugin {
        let cid = cid_of_raw(&bytes);
        Plugin {
            bytes: bytes.into(),
            cid,
        }
    }

    /// The plugin's CID: CIDv1, raw, sha2-256 of its bytes.
    pub fn cid(&self) -> Cid {
        self.cid
    }

    /// The plugin's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The namespace its exports are imported from by Javy modules (its `import_namespace` custom section),
    /// if it declares one.
    pub fn import_namespace(&self) -> Option<String> {
        wasmparser::Parser::new(0)
            .parse_all(&self.bytes)
            .filter_map(Result::ok)
            .find_map(|payload| match payload {
                wasmparser::Payload::CustomSection(c) if c.name() == "import_namespace" => {
                    std::str::from_utf8(c.data()).ok().map(str::to_string)
                }
                _ => None,
            })
    }

    /// sha256 of the bytes (the digest in the CID).
    pub fn sha256(&self) -> [u8; 32] {
        self.cid
            .hash()
            .digest()
            .try_into()
            .expect("a plugin CID is made by `cid_of_raw`: a 32-byte sha2-256 digest")
    }

    /// sha256 of the bytes (hex), as in `exec/plugin/jobmesh-plugin.wasm.sha256`.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256())
    }
}
