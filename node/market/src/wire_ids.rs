//! Serde helpers that encode CIDs and PeerIds as their binary forms, so the market's records need neither the
//! `cid` nor the `libp2p-identity` serde features (turning those on would rebuild all of libp2p).

use ::cid::Cid;
use libp2p_identity::PeerId;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

fn cid_from(bytes: &[u8]) -> Result<Cid, String> {
    Cid::try_from(bytes).map_err(|e| format!("bad CID: {e}"))
}

fn peer_from(bytes: &[u8]) -> Result<PeerId, String> {
    PeerId::from_bytes(bytes).map_err(|e| format!("bad PeerId: {e}"))
}

/// `#[serde(with = "wire_ids::cid")]`
pub mod cid {
    use super::*;

    /// Writes the CID's bytes.
    pub fn serialize<S: Serializer>(cid: &Cid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&cid.to_bytes())
    }

    /// Reads a CID from its bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        cid_from(&bytes).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "wire_ids::opt_cid")]`
pub mod opt_cid {
    use super::*;

    /// Writes the CID's bytes, or nothing.
    pub fn serialize<S: Serializer>(cid: &Option<Cid>, s: S) -> Result<S::Ok, S::Error> {
        match cid {
            Some(c) => s.serialize_some(&serde_bytes::Bytes::new(&c.to_bytes())),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional CID.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cid>, D::Error> {
        Option::<serde_bytes::ByteBuf>::deserialize(d)?
            .map(|b| cid_from(&b).map_err(D::Error::custom))
            .transpose()
    }
}

/// `#[serde(with = "wire_ids::peer")]`
pub mod peer {
    use super::*;

    /// Writes the PeerId's bytes.
    pub fn serialize<S: Serializer>(peer: &PeerId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&peer.to_bytes())
    }

    /// Reads a PeerId from its bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PeerId, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        peer_from(&bytes).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "wire_ids::peers")]`
pub mod peers {
    use super::*;
    use serde::ser::SerializeSeq;

    /// Writes each PeerId's bytes.
    pub fn serialize<S: Serializer>(peers: &[PeerId], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(peers.len()))?;
        for p in peers {
            seq.serialize_element(&serde_bytes::Bytes::new(&p.to_bytes()))?;
        }
        seq.end()
    }

    /// Reads a list of PeerIds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PeerId>, D::Error> {
        Vec::<serde_bytes::ByteBuf>::deserialize(d)?
            .iter()
            .map(|b| peer_from(b).map_err(D::Error::custom))
            .collect()
    }
}
