//! Content addressing: multihashes (sha2-256, blake3), CIDs and block verification.

use cid::{Cid, Version};
use multihash::Multihash;
use sha2::Digest as _;

use crate::StoreError;

/// Multicodec of raw bytes (`bafkrei…` CIDs with sha2-256).
pub const RAW: u64 = 0x55;
/// Multicodec of dag-pb, the protobuf DAG format UnixFS nodes use.
pub const DAG_PB: u64 = 0x70;
/// Multicodec of DAG-CBOR (`bafyrei…` CIDs with sha2-256): jobmesh's job receipts.
pub const DAG_CBOR: u64 = 0x71;

const SHA2_256: u64 = 0x12;
const BLAKE3: u64 = 0x1e;

/// The hash functions the store can produce and check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// sha2-256 (multihash 0x12): what `ipfs add` produces by default.
    Sha2_256,
    /// blake3 with a 32-byte digest (multihash 0x1e).
    Blake3,
}

impl HashAlg {
    /// The multihash code.
    pub fn code(self) -> u64 {
        match self {
            HashAlg::Sha2_256 => SHA2_256,
            HashAlg::Blake3 => BLAKE3,
        }
    }

    /// The algorithm of a multihash code, if supported.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            SHA2_256 => Some(HashAlg::Sha2_256),
            BLAKE3 => Some(HashAlg::Blake3),
            _ => None,
        }
    }

    /// Hashes `data` into a multihash.
    pub fn digest(self, data: &[u8]) -> Multihash<64> {
        let digest: [u8; 32] = match self {
            HashAlg::Sha2_256 => sha2::Sha256::digest(data).into(),
            HashAlg::Blake3 => *blake3::hash(data).as_bytes(),
        };
        Multihash::wrap(self.code(), &digest).expect("32-byte digest fits in 64")
    }
}

impl std::str::FromStr for HashAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha2-256" | "sha256" => Ok(HashAlg::Sha2_256),
            "blake3" => Ok(HashAlg::Blake3),
            other => Err(format!("unknown hash {other:?} (use sha2-256 or blake3)")),
        }
    }
}

impl std::fmt::Display for HashAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HashAlg::Sha2_256 => "sha2-256",
            HashAlg::Blake3 => "blake3",
        })
    }
}

/// The CIDv1 of `data` under `codec`, hashed with `hash`.
pub fn cid_of(codec: u64, hash: HashAlg, data: &[u8]) -> Cid {
    Cid::new_v1(codec, hash.digest(data))
}

/// The CIDv1 of raw bytes with sha2-256 (`bafkrei…`): how jobmesh names job inputs, outputs and plugins.
pub fn cid_of_raw(data: &[u8]) -> Cid {
    cid_of(RAW, HashAlg::Sha2_256, data)
}

/// Checks that `data` hashes to `cid`'s multihash.
pub fn verify_block(cid: &Cid, data: &[u8]) -> Result<(), StoreError> {
    let expected = cid.hash();
    let alg = HashAlg::from_code(expected.code()).ok_or(StoreError::UnsupportedHash {
        code: expected.code(),
        cid: *cid,
    })?;
    if expected.size() != 32 || alg.digest(data).digest() != expected.digest() {
        return Err(StoreError::Corrupt { cid: *cid });
    }
    Ok(())
}

/// Parses a CID in any multibase (or a base58 `Qm…` CIDv0) with a clear error.
pub fn parse_cid(text: &str) -> Result<Cid, StoreError> {
    let trimmed = text.trim();
    Cid::try_from(trimmed).map_err(|e| StoreError::InvalidCid {
        text: trimmed.to_string(),
        reason: e.to_string(),
    })
}

/// Whether a CID is version 0 (implicitly dag-pb + sha2-256).
pub(crate) fn is_v0(cid: &Cid) -> bool {
    cid.version() == Version::V0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_raw_block_has_the_well_known_cid() {
        // `ipfs add --cid-version=1` of an empty file.
        assert_eq!(
            cid_of_raw(b"").to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn blake3_cids_use_code_0x1e() {
        let cid = cid_of(RAW, HashAlg::Blake3, b"hello");
        assert_eq!(cid.hash().code(), 0x1e);
        assert!(cid.to_string().starts_with("bafkr4"));
        verify_block(&cid, b"hello").unwrap();
        assert!(matches!(
            verify_block(&cid, b"hellO"),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn parse_cid_rejects_garbage_with_the_text() {
        let err = parse_cid("not-a-cid").unwrap_err().to_string();
        assert!(err.contains("not-a-cid"), "{err}");
    }
}
