//! CARv1 archives: export a DAG to a stream of blocks, import one back (every block hash-checked).
//!
//! Format: `varint(len) header` where the header is dag-cbor `{"roots": [CID…], "version": 1}`, then for each
//! block `varint(len(cid) + len(data)) cid data`.

use std::io::{Read, Write};

use cid::Cid;

use crate::{dag, verify_block, Store, StoreError};

/// What an import brought in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarImport {
    /// Roots named in the header.
    pub roots: Vec<Cid>,
    /// Blocks read.
    pub blocks: u64,
    /// Blocks that were not in the store before.
    pub new_blocks: u64,
}

/// Largest header or block section accepted (a block larger than this is not an IPFS block).
const MAX_SECTION: u64 = 8 * 1024 * 1024;

fn write_varint(out: &mut impl Write, mut v: u64) -> std::io::Result<()> {
    let mut buf = [0u8; 10];
    let mut i = 0;
    while v >= 0x80 {
        buf[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    out.write_all(&buf[..=i])
}

/// The canonical dag-cbor header for `roots`.
fn encode_header(roots: &[Cid]) -> Vec<u8> {
    fn head(out: &mut Vec<u8>, major: u8, n: u64) {
        let m = major << 5;
        match n {
            0..=23 => out.push(m | n as u8),
            24..=0xff => out.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                out.push(m | 25);
                out.extend((n as u16).to_be_bytes())
            }
            0x1_0000..=0xffff_ffff => {
                out.push(m | 26);
                out.extend((n as u32).to_be_bytes())
            }
            _ => {
                out.push(m | 27);
                out.extend(n.to_be_bytes())
            }
        }
    }
    let mut out = Vec::new();
    head(&mut out, 5, 2); // map(2), keys in dag-cbor order: "roots" before "version"
    head(&mut out, 3, 5);
    out.extend_from_slice(b"roots");
    head(&mut out, 4, roots.len() as u64);
    for root in roots {
        let bytes = root.to_bytes();
        out.extend([0xd8, 42]); // tag 42: CID
        head(&mut out, 2, bytes.len() as u64 + 1);
        out.push(0); // multibase identity prefix
        out.extend_from_slice(&bytes);
    }
    head(&mut out, 3, 7);
    out.extend_from_slice(b"version");
    head(&mut out, 0, 1);
    out
}

/// Writes the DAG under `root` as a CARv1 to `out` (blocks depth-first, each once). Returns the block count.
pub fn export(store: &Store, root: &Cid, out: &mut impl Write) -> Result<u64, StoreError> {
    let io = |e| StoreError::io("cannot write the CAR", e);
    let header = encode_header(&[*root]);
    write_varint(out, header.len() as u64).map_err(io)?;
    out.write_all(&header).map_err(io)?;
    let mut blocks = 0;
    dag::walk(store, root, |cid, data| {
        let cid_bytes = cid.to_bytes();
        write_varint(out, (cid_bytes.len() + data.len()) as u64).map_err(io)?;
        out.write_all(&cid_bytes).map_err(io)?;
        out.write_all(data).map_err(io)?;
        blocks += 1;
        Ok(())
    })?;
    out.flush().map_err(io)?;
    Ok(blocks)
}

/// Reads a varint; `Ok(None)` at a clean end of input.
fn read_varint(input: &mut impl Read) -> Result<Option<u64>, StoreError> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let mut byte = [0u8];
        match input.read(&mut byte) {
            Ok(0) if i == 0 => return Ok(None),
            Ok(0) => return Err(StoreError::InvalidCar("truncated length prefix".into())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StoreError::io("cannot read the CAR", e)),
        }
        v |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(Some(v));
        }
    }
    Err(StoreError::InvalidCar("length prefix too long".into()))
}

fn read_section(input: &mut impl Read, len: u64, what: &str) -> Result<Vec<u8>, StoreError> {
    if len == 0 || len > MAX_SECTION {
        return Err(StoreError::InvalidCar(format!(
            "{what} has an impossible length {len}"
        )));
    }
    let mut buf = vec![0u8; len as usize];
    input.read_exact(&mut buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => StoreError::InvalidCar(format!("truncated {what}")),
        _ => StoreError::io("cannot read the CAR", e),
    })?;
    Ok(buf)
}

/// Parses the header and returns its roots.
fn decode_header(bytes: &[u8]) -> Result<Vec<Cid>, StoreError> {
    use ciborium::value::Value;
    let bad = |why: &str| StoreError::InvalidCar(format!("bad header: {why}"));
    let value: Value = ciborium::de::from_reader(bytes).map_err(|e| bad(&e.to_string()))?;
    let map = value.as_map().ok_or_else(|| bad("not a map"))?;
    let field = |name: &str| {
        map.iter()
            .find(|(k, _)| k.as_text() == Some(name))
            .map(|(_, v)| v)
    };
    match field("version").and_then(Value::as_integer) {
        Some(v) if i128::from(v) == 1 => {}
        Some(v) => {
            return Err(bad(&format!(
                "version {} (only CARv1 is supported)",
                i128::from(v)
            )))
        }
        None => return Err(bad("no version")),
    }
    let roots = field("roots")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no roots"))?;
    roots
        .iter()
        .map(|r| match r {
            Value::Tag(42, inner) => {
                let bytes = inner.as_bytes().ok_or_else(|| bad("root is not bytes"))?;
                let cid_bytes = bytes
                    .strip_prefix(&[0u8])
                    .ok_or_else(|| bad("root without identity prefix"))?;
                Cid::try_from(cid_bytes).map_err(|e| bad(&format!("root CID: {e}")))
            }
            _ => Err(bad("root is not a tag-42 CID")),
        })
        .collect()
}

/// Imports every block of a CARv1, checking each against its CID. If anything is wrong (truncated, corrupt
/// block, bad header), the blocks this import added are removed again and the store is as it was.
pub fn import(store: &Store, mut input: impl Read) -> Result<CarImport, StoreError> {
    let mut added = Vec::new();
    let result = import_inner(store, &mut input, &mut added);
    if result.is_err() {
        for cid in &added {
            let _ = store.remove(cid);
        }
    }
    store.flush()?;
    result
}

fn import_inner(
    store: &Store,
    input: &mut impl Read,
    added: &mut Vec<Cid>,
) -> Result<CarImport, StoreError> {
    let header_len =
        read_varint(input)?.ok_or_else(|| StoreError::InvalidCar("empty file".into()))?;
    let roots = decode_header(&read_section(input, header_len, "header")?)?;
    let mut blocks = 0;
    while let Some(len) = read_varint(input)? {
        let section = read_section(input, len, "block section")?;
        let mut cursor = std::io::Cursor::new(section.as_slice());
        let cid = Cid::read_bytes(&mut cursor)
            .map_err(|e| StoreError::InvalidCar(format!("block {blocks}: bad CID: {e}")))?;
        let data = &section[cursor.position() as usize..];
        verify_block(&cid, data)?;
        if store.put_verified(&cid, data)? {
            added.push(cid);
        }
        blocks += 1;
    }
    Ok(CarImport {
        roots,
        blocks,
        new_blocks: added.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unixfs::{self, Profile};

    fn store_with_file(len: usize) -> (tempfile::TempDir, Store, Cid, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let profile = Profile {
            chunk_size: 64,
            max_links: 4,
            ..Profile::KUBO
        };
        let root = store.add_file(bytes.as_slice(), &profile).unwrap().root;
        (dir, store, root, bytes)
    }

    #[test]
    fn export_then_import_into_a_fresh_store() {
        let (_d, store, root, bytes) = store_with_file(5000);
        let mut car = Vec::new();
        let n = export(&store, &root, &mut car).unwrap();
        assert!(n > 20);
        let dir2 = tempfile::tempdir().unwrap();
        let other = Store::open(dir2.path()).unwrap();
        let imported = import(&other, car.as_slice()).unwrap();
        assert_eq!(imported.roots, vec![root]);
        assert_eq!(imported.blocks, n);
        let mut out = Vec::new();
        unixfs::cat(&other, &root, &mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn truncated_or_corrupt_car_is_rejected_and_leaves_nothing() {
        let (_d, store, root, _) = store_with_file(3000);
        let mut car = Vec::new();
        export(&store, &root, &mut car).unwrap();
        let dir2 = tempfile::tempdir().unwrap();
        let other = Store::open(dir2.path()).unwrap();
        for cut in [0, 1, 5, car.len() / 2, car.len() - 1] {
            assert!(import(&other, &car[..cut]).is_err(), "cut at {cut}");
            assert_eq!(other.usage().unwrap().0, 0, "cut at {cut}");
        }
        let mut corrupt = car.clone();
        let last = corrupt.len() - 3;
        corrupt[last] ^= 0xff;
        let err = import(&other, corrupt.as_slice()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert_eq!(other.usage().unwrap().0, 0);
    }
}
