//! Walking DAGs: the links of a block, and depth-first traversal of everything below a root.

use std::collections::HashSet;

use cid::Cid;

use crate::hash::is_v0;
use crate::{pb, Store, StoreError, DAG_CBOR, DAG_PB, RAW};

/// The children of a block, in link order. Raw blocks have none; dag-pb blocks are decoded. DAG-CBOR blocks
/// (jobmesh's receipts) are leaves here: their CID links are not followed.
pub fn links(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, StoreError> {
    match codec_of(cid) {
        RAW | DAG_CBOR => Ok(Vec::new()),
        DAG_PB => {
            let node = pb::decode_node(data).map_err(|reason| malformed(cid, "dag-pb", reason))?;
            node.links
                .iter()
                .map(|l| {
                    Cid::try_from(l.hash.as_slice())
                        .map_err(|e| malformed(cid, "dag-pb", format!("link with a bad CID: {e}")))
                })
                .collect()
        }
        codec => Err(StoreError::UnsupportedCodec { codec, cid: *cid }),
    }
}

/// The codec of a CID (CIDv0 is always dag-pb).
pub fn codec_of(cid: &Cid) -> u64 {
    if is_v0(cid) {
        DAG_PB
    } else {
        cid.codec()
    }
}

/// Visits every block of the DAG under `root` once, depth-first in link order (the order of a file's bytes and
/// of a CAR export). Each block is read hash-checked; a missing block is `Err(NotFound)`.
pub fn walk(
    store: &Store,
    root: &Cid,
    mut visit: impl FnMut(&Cid, &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid.to_bytes()) {
            continue;
        }
        let data = store.get_required(&cid)?;
        visit(&cid, &data)?;
        let children = links(&cid, &data)?;
        stack.extend(children.into_iter().rev());
    }
    Ok(())
}

/// Like [`walk`] but only marks present blocks and does not stop at missing or unreadable ones (for GC).
pub(crate) fn walk_present(
    store: &Store,
    root: &Cid,
    mark: &mut impl FnMut(&Cid),
) -> Result<(), StoreError> {
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid.to_bytes()) {
            continue;
        }
        mark(&cid);
        let data = match store.get(&cid) {
            Ok(Some(d)) => d,
            Ok(None) | Err(StoreError::Corrupt { .. }) => continue,
            Err(e) => return Err(e),
        };
        if let Ok(children) = links(&cid, &data) {
            stack.extend(children);
        }
    }
    Ok(())
}

pub(crate) fn malformed(cid: &Cid, what: &'static str, reason: String) -> StoreError {
    StoreError::Malformed {
        cid: *cid,
        what,
        reason,
    }
}
