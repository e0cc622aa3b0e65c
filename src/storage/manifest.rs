//! The manifest: which chunk holds each (ship, partition), and which log
//! segments are already folded into blocks. Rewritten whole and atomically
//! (temporary file, sync, rename, directory sync) by every checkpoint, so a
//! crash leaves either the old or the new manifest, never a mix.
//! Byte layout: storage-format.md, "Manifest".

use std::collections::BTreeMap;
use std::path::Path;

use super::block::ChunkLocation;
use super::codec::{put_i64, put_u32, put_u64, Reader};
use super::error::StorageError;
use super::fsutil::write_atomic;
use super::io::Vfs;
use crate::model::ShipId;

pub const MANIFEST_MAGIC: [u8; 8] = *b"PWRDMAN\0";
pub const MANIFEST_VERSION: u32 = 1;
const HEADER_LEN: usize = 16;
const BODY_FIXED_LEN: usize = 24;
const ENTRY_LEN: usize = 40;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Log segments with a smaller sequence are wholly in blocks; replay
    /// starts here.
    pub first_live_segment: u64,
    /// The id the next block file will get; ids are never reused.
    pub next_block_id: u64,
    /// (ship, partition) → chunk.
    pub chunks: BTreeMap<(ShipId, i64), ChunkLocation>,
}

/// What names one manifest exactly: its sequence numbers and the CRC and
/// length of its bytes. The rollup index file records the identity of the
/// manifest whose blocks it indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManifestIdentity {
    pub first_live_segment: u64,
    pub next_block_id: u64,
    pub crc: u32,
    pub len: u32,
}

impl Manifest {
    /// The manifest of a directory that has none yet: the log starts at
    /// segment 1, no block exists.
    pub fn empty() -> Manifest {
        Manifest {
            first_live_segment: 1,
            next_block_id: 1,
            chunks: BTreeMap::new(),
        }
    }

    /// The identity of this manifest's encoding.
    pub fn identity(&self) -> ManifestIdentity {
        self.encode_with_identity().1
    }

    /// The manifest's bytes and their identity, encoded once: a checkpoint
    /// names the manifest in the rollup file, then stores the same bytes.
    pub fn encode_with_identity(&self) -> (Vec<u8>, ManifestIdentity) {
        let bytes = self.encode();
        let identity = identity_of(self, &bytes);
        (bytes, identity)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(HEADER_LEN + BODY_FIXED_LEN + self.chunks.len() * ENTRY_LEN + 4);
        out.extend_from_slice(&MANIFEST_MAGIC);
        put_u32(&mut out, MANIFEST_VERSION);
        put_u32(&mut out, 0);
        put_u64(&mut out, self.first_live_segment);
        put_u64(&mut out, self.next_block_id);
        put_u64(&mut out, self.chunks.len() as u64);
        for (&(ship, partition), location) in &self.chunks {
            put_u64(&mut out, ship);
            put_i64(&mut out, partition);
            put_u64(&mut out, location.block);
            put_u64(&mut out, location.offset);
            put_u32(&mut out, location.len);
            put_u32(&mut out, location.span_count);
        }
        let crc = crc32fast::hash(&out);
        put_u32(&mut out, crc);
        out
    }

    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Manifest, StorageError> {
        let bad = |offset: usize, what: &str| {
            StorageError::corrupted(path, offset as u64, what.to_string())
        };
        if bytes.len() >= 12 && bytes[0..8] == MANIFEST_MAGIC {
            // The version before the length and the CRC, which a later
            // version may lay out differently.
            let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            if version != MANIFEST_VERSION {
                return Err(StorageError::unsupported_version(
                    path,
                    "manifest",
                    version,
                    MANIFEST_VERSION,
                    MANIFEST_VERSION,
                ));
            }
        }
        if bytes.len() < HEADER_LEN + BODY_FIXED_LEN + 4 {
            return Err(bad(0, "manifest is shorter than its fixed fields"));
        }
        if bytes[0..8] != MANIFEST_MAGIC {
            return Err(bad(0, "not a powerd manifest (bad magic)"));
        }
        let (body, crc_bytes) = bytes.split_at(bytes.len() - 4);
        let crc = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        if crc32fast::hash(body) != crc {
            return Err(bad(body.len(), "manifest CRC mismatch"));
        }
        let mut reader = Reader::new(&body[8..]);
        let read = |r: &mut Reader<'_>| -> Result<Manifest, super::codec::DecodeError> {
            let version = r.u32()?;
            if version != MANIFEST_VERSION {
                return Err(super::codec::DecodeError(format!(
                    "unsupported manifest version {version} (this build reads {MANIFEST_VERSION})"
                )));
            }
            if r.u32()? != 0 {
                return Err(super::codec::DecodeError(
                    "reserved manifest bytes are not zero".into(),
                ));
            }
            let first_live_segment = r.u64()?;
            let next_block_id = r.u64()?;
            let count = r.u64()?;
            if count.checked_mul(ENTRY_LEN as u64) != Some(r.remaining() as u64) {
                return Err(super::codec::DecodeError(format!(
                    "{count} entries do not fit the manifest's length"
                )));
            }
            let mut chunks = BTreeMap::new();
            for _ in 0..count {
                let ship = r.u64()?;
                let partition = r.i64()?;
                let location = ChunkLocation {
                    block: r.u64()?,
                    offset: r.u64()?,
                    len: r.u32()?,
                    span_count: r.u32()?,
                };
                if location.block >= next_block_id {
                    return Err(super::codec::DecodeError(format!(
                        "entry names block {} but the next block id is {next_block_id}",
                        location.block
                    )));
                }
                chunks.insert((ship, partition), location);
            }
            Ok(Manifest {
                first_live_segment,
                next_block_id,
                chunks,
            })
        };
        read(&mut reader).map_err(|e| bad(8 + reader.position(), &e.0))
    }

    /// Loads the manifest at `path`; `None` when there is none.
    pub fn load(vfs: &dyn Vfs, path: &Path) -> Result<Option<Manifest>, StorageError> {
        match vfs.read(path) {
            Ok(bytes) => Manifest::decode(path, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(path, "read", e)),
        }
    }

    /// Writes manifest bytes (from [`Manifest::encode_with_identity`])
    /// atomically to `path`.
    pub fn store_bytes(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
        write_atomic(vfs, path, bytes)
    }
}

fn identity_of(manifest: &Manifest, bytes: &[u8]) -> ManifestIdentity {
    ManifestIdentity {
        first_live_segment: manifest.first_live_segment,
        next_block_id: manifest.next_block_id,
        // The stored CRC covers everything before it.
        crc: crc32fast::hash(&bytes[..bytes.len() - 4]),
        len: bytes.len() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut manifest = Manifest {
            first_live_segment: 3,
            next_block_id: 9,
            chunks: BTreeMap::new(),
        };
        manifest.chunks.insert(
            (42, -1),
            ChunkLocation {
                block: 2,
                offset: 32,
                len: 100,
                span_count: 7,
            },
        );
        manifest.chunks.insert(
            (1, 5000),
            ChunkLocation {
                block: 8,
                offset: 132,
                len: 50,
                span_count: 1,
            },
        );
        let bytes = manifest.encode();
        assert_eq!(Manifest::decode(Path::new("M"), &bytes).unwrap(), manifest);
        for index in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x10;
            assert!(
                Manifest::decode(Path::new("M"), &damaged).is_err(),
                "flip at {index} undetected"
            );
        }
    }
}
