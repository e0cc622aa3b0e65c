//! The 32-byte header that opens every log segment and block file: magic,
//! version, the file's number (segment sequence or block id, which must
//! match its name) and a CRC. One layout, one writer, one checker.
//! Byte layout: storage-format.md ("Segment header", "Block header").

use std::path::Path;

use super::codec::{put_u32, put_u64, Reader};
use super::error::StorageError;

pub const FILE_HEADER_LEN: usize = 32;

/// What distinguishes one kind of file from another.
pub struct FileKind {
    pub magic: [u8; 8],
    /// The version this build writes.
    pub version: u32,
    /// The oldest version this build still reads (`..= version`).
    pub oldest_readable: u32,
    /// How messages name the file: "segment", "block".
    pub noun: &'static str,
    /// How messages name the kind when the magic is wrong.
    pub description: &'static str,
}

/// The header of file `number` of `kind`.
pub fn encode(kind: &FileKind, number: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(FILE_HEADER_LEN);
    header.extend_from_slice(&kind.magic);
    put_u32(&mut header, kind.version);
    put_u32(&mut header, 0);
    put_u64(&mut header, number);
    let crc = crc32fast::hash(&header);
    put_u32(&mut header, crc);
    put_u32(&mut header, 0);
    header
}

/// Checks that `bytes` open with the header of file `expected_number` of
/// `kind`; damage is [`StorageError::Corrupted`] naming `path` and the
/// offset of the bad field. Returns the file's version.
pub fn check(
    kind: &FileKind,
    path: &Path,
    bytes: &[u8],
    expected_number: u64,
) -> Result<u32, StorageError> {
    let noun = kind.noun;
    let header = bytes.get(..FILE_HEADER_LEN).ok_or_else(|| {
        StorageError::corrupted(
            path,
            0,
            format!("{noun} is {} bytes, shorter than its header", bytes.len()),
        )
    })?;
    if header[0..8] != kind.magic {
        return Err(StorageError::corrupted(
            path,
            0,
            format!("not a {} (bad magic)", kind.description),
        ));
    }
    let mut reader = Reader::new(&header[8..]);
    let version = reader.u32().unwrap_or(0);
    let _reserved = reader.u32();
    let number = reader.u64().unwrap_or(0);
    let crc = reader.u32().unwrap_or(0);
    // The version before the CRC: a later version may lay out (and
    // checksum) its header differently, and must be named as such.
    if !(kind.oldest_readable..=kind.version).contains(&version) {
        return Err(StorageError::unsupported_version(
            path,
            noun,
            version,
            kind.oldest_readable,
            kind.version,
        ));
    }
    if crc32fast::hash(&header[..24]) != crc {
        return Err(StorageError::corrupted(
            path,
            24,
            format!("{noun} header CRC mismatch"),
        ));
    }
    if header[12..16] != [0; 4] || header[28..32] != [0; 4] {
        return Err(StorageError::corrupted(
            path,
            12,
            format!("reserved {noun} header bytes are not zero"),
        ));
    }
    if number != expected_number {
        return Err(StorageError::corrupted(
            path,
            16,
            format!("header says {noun} {number}, file name says {expected_number}"),
        ));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: FileKind = FileKind {
        magic: *b"PWRDTST\0",
        version: 3,
        oldest_readable: 3,
        noun: "test",
        description: "test file",
    };

    #[test]
    fn round_trip_and_every_damage_is_named() {
        let header = encode(&KIND, 42);
        assert_eq!(header.len(), FILE_HEADER_LEN);
        check(&KIND, Path::new("t"), &header, 42).unwrap();
        assert!(check(&KIND, Path::new("t"), &header, 43).is_err());
        assert!(check(&KIND, Path::new("t"), &header[..31], 42).is_err());
        for index in 0..32 {
            let mut damaged = header.clone();
            damaged[index] ^= 0x04;
            assert!(
                check(&KIND, Path::new("t"), &damaged, 42).is_err(),
                "flip at {index}"
            );
        }
    }
}
