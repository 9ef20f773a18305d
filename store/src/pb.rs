//! Byte-exact protobuf encoding of dag-pb nodes and UnixFS `Data` messages.
//!
//! Written by hand (a few varints and length-delimited fields) so the bytes — and therefore the CIDs — are
//! exactly the canonical ones kubo and the JS importer produce: links before data, empty link names written,
//! `blocksizes` not packed.

/// One link of a dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PbLink {
    /// The child's CID in binary form.
    pub hash: Vec<u8>,
    /// The entry name (empty for file chunks, the file name in directories).
    pub name: Option<String>,
    /// Cumulative size of the child's DAG.
    pub tsize: Option<u64>,
}

/// A decoded dag-pb node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PbNode {
    pub links: Vec<PbLink>,
    pub data: Option<Vec<u8>>,
}

/// UnixFS node types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnixFsType {
    Raw = 0,
    Directory = 1,
    File = 2,
    Metadata = 3,
    Symlink = 4,
    HamtShard = 5,
}

impl UnixFsType {
    fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            0 => UnixFsType::Raw,
            1 => UnixFsType::Directory,
            2 => UnixFsType::File,
            3 => UnixFsType::Metadata,
            4 => UnixFsType::Symlink,
            5 => UnixFsType::HamtShard,
            _ => return None,
        })
    }

    /// Human name, for errors.
    pub fn name(self) -> &'static str {
        match self {
            UnixFsType::Raw => "raw node",
            UnixFsType::Directory => "directory",
            UnixFsType::File => "file",
            UnixFsType::Metadata => "metadata node",
            UnixFsType::Symlink => "symlink",
            UnixFsType::HamtShard => "sharded directory",
        }
    }
}

/// A decoded UnixFS `Data` message (the fields the exporter needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnixFsData {
    pub kind: UnixFsType,
    pub data: Option<Vec<u8>>,
    pub filesize: Option<u64>,
    pub blocksizes: Vec<u64>,
}

// ---- encoding ----

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    put_varint(out, u64::from(field << 3));
    put_varint(out, v);
}

/// Encodes a UnixFS file node's `Data`: type File, optional inline data, filesize, blocksizes.
pub(crate) fn encode_unixfs_file(
    data: Option<&[u8]>,
    filesize: u64,
    blocksizes: &[u64],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.map_or(0, <[u8]>::len) + blocksizes.len() * 4);
    put_varint_field(&mut out, 1, UnixFsType::File as u64);
    if let Some(d) = data.filter(|d| !d.is_empty()) {
        put_bytes_field(&mut out, 2, d);
    }
    put_varint_field(&mut out, 3, filesize);
    for size in blocksizes {
        put_varint_field(&mut out, 4, *size);
    }
    out
}

/// Encodes a dag-pb node in canonical order: links first, then data.
pub(crate) fn encode_node(links: &[PbLink], data: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(links.len() * 48 + data.map_or(0, <[u8]>::len) + 8);
    let mut link_buf = Vec::with_capacity(64);
    for link in links {
        link_buf.clear();
        put_bytes_field(&mut link_buf, 1, &link.hash);
        if let Some(name) = &link.name {
            put_bytes_field(&mut link_buf, 2, name.as_bytes());
        }
        if let Some(tsize) = link.tsize {
            put_varint_field(&mut link_buf, 3, tsize);
        }
        put_bytes_field(&mut out, 2, &link_buf);
    }
    if let Some(d) = data {
        put_bytes_field(&mut out, 1, d);
    }
    out
}

// ---- decoding ----

/// A minimal protobuf reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or("truncated varint")?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (field, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => Value::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                if len > self.buf.len() {
                    return Err(format!(
                        "field {field} claims {len} bytes, {} left",
                        self.buf.len()
                    ));
                }
                let (bytes, rest) = self.buf.split_at(len);
                self.buf = rest;
                Value::Bytes(bytes)
            }
            other => return Err(format!("unsupported wire type {other} for field {field}")),
        };
        Ok(Some((field, value)))
    }
}

/// Decodes a dag-pb node.
pub(crate) fn decode_node(bytes: &[u8]) -> Result<PbNode, String> {
    let mut node = PbNode::default();
    let mut r = Reader { buf: bytes };
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (2, Value::Bytes(b)) => node.links.push(decode_link(b)?),
            (1, Value::Bytes(b)) => node.data = Some(b.to_vec()),
            (f, _) => return Err(format!("unexpected field {f} in PBNode")),
        }
    }
    Ok(node)
}

fn decode_link(bytes: &[u8]) -> Result<PbLink, String> {
    let (mut hash, mut name, mut tsize) = (None, None, None);
    let mut r = Reader { buf: bytes };
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => hash = Some(b.to_vec()),
            (2, Value::Bytes(b)) => {
                name = Some(String::from_utf8(b.to_vec()).map_err(|_| "link name is not UTF-8")?)
            }
            (3, Value::Varint(v)) => tsize = Some(v),
            (f, _) => return Err(format!("unexpected field {f} in PBLink")),
        }
    }
    Ok(PbLink {
        hash: hash.ok_or("link without a hash")?,
        name,
        tsize,
    })
}

/// Decodes a UnixFS `Data` message; unknown optional fields (mode, mtime, fanout…) are skipped.
pub(crate) fn decode_unixfs(bytes: &[u8]) -> Result<UnixFsData, String> {
    let (mut kind, mut data, mut filesize, mut blocksizes) = (None, None, None, Vec::new());
    let mut r = Reader { buf: bytes };
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (1, Value::Varint(v)) => {
                kind = Some(UnixFsType::from_u64(v).ok_or(format!("unknown UnixFS type {v}"))?)
            }
            (2, Value::Bytes(b)) => data = Some(b.to_vec()),
            (3, Value::Varint(v)) => filesize = Some(v),
            (4, Value::Varint(v)) => blocksizes.push(v),
            (4, Value::Bytes(packed)) => {
                let mut p = Reader { buf: packed };
                while !p.buf.is_empty() {
                    blocksizes.push(p.varint()?);
                }
            }
            _ => {}
        }
    }
    Ok(UnixFsData {
        kind: kind.ok_or("UnixFS data without a type")?,
        data,
        filesize,
        blocksizes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_node_matches_kubo_cidv0_bytes() {
        // QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH is `0a 04 08 02 18 00`.
        let data = encode_unixfs_file(Some(b""), 0, &[]);
        assert_eq!(
            encode_node(&[], Some(&data)),
            [0x0a, 0x04, 0x08, 0x02, 0x18, 0x00]
        );
    }

    #[test]
    fn node_round_trips() {
        let links = vec![
            PbLink {
                hash: vec![1, 2, 3],
                name: Some(String::new()),
                tsize: Some(300),
            },
            PbLink {
                hash: vec![4; 36],
                name: Some("a.txt".into()),
                tsize: None,
            },
        ];
        let data = encode_unixfs_file(None, 1000, &[600, 400]);
        let bytes = encode_node(&links, Some(&data));
        let node = decode_node(&bytes).unwrap();
        assert_eq!(node.links, links);
        let fs = decode_unixfs(node.data.as_deref().unwrap()).unwrap();
        assert_eq!(fs.kind, UnixFsType::File);
        assert_eq!(fs.filesize, Some(1000));
        assert_eq!(fs.blocksizes, vec![600, 400]);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let bytes = encode_node(&[], Some(&encode_unixfs_file(Some(b"hello"), 5, &[])));
        for cut in 0..bytes.len() {
            let _ = decode_node(&bytes[..cut]).and_then(|n| match n.data {
                Some(d) => decode_unixfs(&d).map(|_| ()),
                None => Ok(()),
            });
        }
    }
}
