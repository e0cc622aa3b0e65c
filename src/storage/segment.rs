//! The append-only segment log: numbered files of CRC-framed records.
//!
//! Invariants:
//! - a frame is written whole by one `write` call of a group commit and
//!   synced before any write in it is acknowledged;
//! - a torn tail can only be a suffix of the newest segment, so recovery cuts
//!   the newest segment back to its last whole frame; damage anywhere else is
//!   [`StorageError::Corrupted`] naming the file and offset.
//!
//! Byte layout: storage-format.md, "Log segments".

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::codec::Reader;
use super::error::StorageError;
use super::file_header::{self, FileKind, FILE_HEADER_LEN};
use super::fsutil::sync_dir;

pub const SEGMENT_MAGIC: [u8; 8] = *b"PWRDLOG\0";
pub const SEGMENT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_LEN: usize = FILE_HEADER_LEN;
pub const FRAME_HEADER_LEN: usize = 16;
/// Largest payload a frame may declare; bigger is damage, not data.
pub const MAX_FRAME_PAYLOAD: u32 = 256 << 20;

pub fn segment_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("{sequence:020}.log"))
}

/// Sequence numbers of the segment files in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, "list", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(dir, "list", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(sequence) = stem.parse::<u64>() {
                out.push(sequence);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Appends a whole frame (header and payload) for `kind` to `out`; the
/// payload is whatever `write_payload` appends.
pub fn append_frame(out: &mut Vec<u8>, kind: u8, write_payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    write_payload(out);
    let payload_len = (out.len() - start - FRAME_HEADER_LEN) as u32;
    let header = &mut out[start..start + FRAME_HEADER_LEN];
    header[0..4].copy_from_slice(&payload_len.to_le_bytes());
    header[4] = kind;
    let header_crc = crc32fast::hash(&header[0..8]);
    header[8..12].copy_from_slice(&header_crc.to_le_bytes());
    let payload_crc = crc32fast::hash(&out[start + FRAME_HEADER_LEN..]);
    out[start + 12..start + 16].copy_from_slice(&payload_crc.to_le_bytes());
}

const SEGMENT_KIND: FileKind = FileKind {
    magic: SEGMENT_MAGIC,
    version: SEGMENT_VERSION,
    noun: "segment",
    description: "powerd log segment",
};

fn segment_header(sequence: u64) -> Vec<u8> {
    file_header::encode(&SEGMENT_KIND, sequence)
}

/// The segment being appended to.
pub struct SegmentWriter {
    file: File,
    path: PathBuf,
    sequence: u64,
    /// Bytes of header and frames written so far: where the next frame goes.
    len: u64,
    /// Bytes already allocated and zero-filled on disk. Writes inside this
    /// range change no file metadata, so `fdatasync` has only data to flush.
    preallocated: u64,
}

impl SegmentWriter {
    /// Creates segment `sequence` in `dir`, header written and synced, and
    /// the directory entry synced, so the file survives a crash from now on.
    pub fn create(dir: &Path, sequence: u64) -> Result<SegmentWriter, StorageError> {
        let path = segment_path(dir, sequence);
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, "create", e))?;
        file.write_all(&segment_header(sequence))
            .map_err(|e| StorageError::io(&path, "write", e))?;
        file.sync_all()
            .map_err(|e| StorageError::io(&path, "sync", e))?;
        sync_dir(dir)?;
        Ok(SegmentWriter {
            file,
            path,
            sequence,
            len: SEGMENT_HEADER_LEN as u64,
            preallocated: 0,
        })
    }

    /// Turns a spare file made by [`prepare_spare`] into segment `sequence`:
    /// header written and synced, then renamed into place and the directory
    /// synced.
    pub fn from_spare(
        dir: &Path,
        spare: &Path,
        sequence: u64,
    ) -> Result<SegmentWriter, StorageError> {
        let path = segment_path(dir, sequence);
        let mut file = OpenOptions::new()
            .write(true)
            .open(spare)
            .map_err(|e| StorageError::io(spare, "open", e))?;
        let preallocated = file
            .metadata()
            .map_err(|e| StorageError::io(spare, "stat", e))?
            .len();
        file.write_all(&segment_header(sequence))
            .map_err(|e| StorageError::io(spare, "write", e))?;
        file.sync_data()
            .map_err(|e| StorageError::io(spare, "sync", e))?;
        std::fs::rename(spare, &path)
            .map_err(|e| StorageError::io(&path, "rename spare segment to", e))?;
        sync_dir(dir)?;
        Ok(SegmentWriter {
            file,
            path,
            sequence,
            len: SEGMENT_HEADER_LEN as u64,
            preallocated,
        })
    }

    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    pub fn is_empty(&self) -> bool {
        self.len == SEGMENT_HEADER_LEN as u64
    }

    /// Whether the next append of `bytes` stays inside the zero-filled,
    /// preallocated part of the file.
    pub fn fits_preallocated(&self, bytes: u64) -> bool {
        self.len + bytes <= self.preallocated
    }

    /// Appends whole frames; durable only after [`SegmentWriter::sync`].
    pub fn append(&mut self, frames: &[u8]) -> Result<(), StorageError> {
        self.file
            .write_all(frames)
            .map_err(|e| StorageError::io(&self.path, "append to", e))?;
        self.len += frames.len() as u64;
        Ok(())
    }

    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.file
            .sync_data()
            .map_err(|e| StorageError::io(&self.path, "sync", e))
    }
}

/// Suffix of spare segment files: zero-filled, not yet numbered.
pub const SPARE_SUFFIX: &str = ".spare";

/// Writes a zero-filled file of `len` bytes at `path` and syncs it and its
/// directory. Real zeros rather than `fallocate`: an allocated-but-unwritten
/// extent would still need a metadata update on first write.
pub fn prepare_spare(path: &Path, len: u64) -> Result<(), StorageError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io(path, "create", e))?;
    let zeros = vec![0u8; 1 << 20];
    let mut written = 0;
    while written < len {
        let chunk = (len - written).min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..chunk])
            .map_err(|e| StorageError::io(path, "zero-fill", e))?;
        written += chunk as u64;
    }
    file.sync_all()
        .map_err(|e| StorageError::io(path, "sync", e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// How a segment scan ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte belongs to a whole, valid frame.
    Clean { len: u64 },
    /// The file ends in an incomplete or unsynced frame starting at
    /// `valid_len`; only possible for the newest segment.
    TornTail {
        valid_len: u64,
        file_len: u64,
        reason: String,
    },
}

/// Walks every frame of a segment file's bytes, calling `visit(offset,
/// kind, payload)` for each valid frame in order.
///
/// `newest` says whether this is the newest segment: only there can a torn
/// tail be legitimate; elsewhere the same damage is corruption.
pub fn scan_segment(
    path: &Path,
    bytes: &[u8],
    expected_sequence: u64,
    newest: bool,
    mut visit: impl FnMut(u64, u8, &[u8]) -> Result<(), StorageError>,
) -> Result<ScanEnd, StorageError> {
    check_segment_header(path, bytes, expected_sequence)?;
    let file_len = bytes.len() as u64;
    let mut offset = SEGMENT_HEADER_LEN;
    let torn = |offset: usize, reason: &str| -> Result<ScanEnd, StorageError> {
        if newest {
            Ok(ScanEnd::TornTail {
                valid_len: offset as u64,
                file_len,
                reason: reason.to_string(),
            })
        } else {
            Err(StorageError::corrupted(
                path,
                offset as u64,
                format!("{reason} in a segment that is not the newest"),
            ))
        }
    };
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        // A preallocated segment ends in zeros: an all-zero frame header
        // followed only by zeros is the clean end of the data, in any segment.
        if rest.len() >= FRAME_HEADER_LEN && all_zero(rest) {
            return Ok(ScanEnd::Clean { len: offset as u64 });
        }
        if rest.len() < FRAME_HEADER_LEN {
            return torn(offset, "incomplete frame header");
        }
        let mut reader = Reader::new(rest);
        let parsed = (|| -> Result<(u32, u8, u32, u32), super::codec::DecodeError> {
            let payload_len = reader.u32()?;
            let kind = reader.u8()?;
            reader.take(3)?;
            let header_crc = reader.u32()?;
            let payload_crc = reader.u32()?;
            Ok((payload_len, kind, header_crc, payload_crc))
        })();
        let Ok((payload_len, kind, header_crc, payload_crc)) = parsed else {
            return torn(offset, "incomplete frame header");
        };
        if crc32fast::hash(&rest[0..8]) != header_crc || payload_len > MAX_FRAME_PAYLOAD {
            // A header cut short by a crash, with nothing written after it.
            if all_zero(&rest[FRAME_HEADER_LEN..]) {
                return torn(offset, "damaged frame header followed only by zeros");
            }
            return Err(StorageError::corrupted(
                path,
                offset as u64,
                "frame header CRC mismatch",
            ));
        }
        let frame_end = FRAME_HEADER_LEN + payload_len as usize;
        if rest.len() < frame_end {
            return torn(offset, "incomplete frame payload");
        }
        let payload = &rest[FRAME_HEADER_LEN..frame_end];
        if crc32fast::hash(payload) != payload_crc {
            // The last frame, partly written when the crash came.
            if all_zero(&rest[frame_end..]) {
                return torn(offset, "payload CRC mismatch in the last frame");
            }
            return Err(StorageError::corrupted(
                path,
                offset as u64,
                "frame payload CRC mismatch",
            ));
        }
        visit(offset as u64, kind, payload)?;
        offset += frame_end;
    }
    Ok(ScanEnd::Clean { len: file_len })
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

fn check_segment_header(
    path: &Path,
    bytes: &[u8],
    expected_sequence: u64,
) -> Result<(), StorageError> {
    file_header::check(&SEGMENT_KIND, path, bytes, expected_sequence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment_with(frames: &[&[u8]]) -> Vec<u8> {
        let mut bytes = segment_header(7);
        for payload in frames {
            append_frame(&mut bytes, 1, |out| out.extend_from_slice(payload));
        }
        bytes
    }

    fn scan(bytes: &[u8], newest: bool) -> Result<(ScanEnd, Vec<Vec<u8>>), StorageError> {
        let mut seen = Vec::new();
        let end = scan_segment(Path::new("x.log"), bytes, 7, newest, |_, _, p| {
            seen.push(p.to_vec());
            Ok(())
        })?;
        Ok((end, seen))
    }

    #[test]
    fn every_prefix_is_clean_or_torn_never_corrupt() {
        let bytes = segment_with(&[b"first", b"second record", b""]);
        for cut in SEGMENT_HEADER_LEN..=bytes.len() {
            let (_, seen) = scan(&bytes[..cut], true).unwrap();
            assert!(seen.len() <= 3);
        }
        let (end, seen) = scan(&bytes, true).unwrap();
        assert_eq!(
            end,
            ScanEnd::Clean {
                len: bytes.len() as u64
            }
        );
        assert_eq!(
            seen,
            vec![b"first".to_vec(), b"second record".to_vec(), Vec::new()]
        );
    }

    #[test]
    fn flipped_byte_mid_segment_is_corruption_with_offset() {
        let bytes = segment_with(&[b"first", b"second", b"third"]);
        let second_frame = SEGMENT_HEADER_LEN + FRAME_HEADER_LEN + 5;
        let mut damaged = bytes.clone();
        damaged[second_frame + FRAME_HEADER_LEN + 2] ^= 0x40;
        match scan(&damaged, true) {
            Err(StorageError::Corrupted { offset, .. }) => assert_eq!(offset, second_frame as u64),
            other => panic!("expected corruption, got {other:?}"),
        }
        let mut damaged = bytes;
        damaged[second_frame] ^= 0x01;
        assert!(matches!(
            scan(&damaged, true),
            Err(StorageError::Corrupted { .. })
        ));
    }

    #[test]
    fn torn_tail_is_corruption_in_an_older_segment() {
        let bytes = segment_with(&[b"first", b"second"]);
        let cut = &bytes[..bytes.len() - 2];
        assert!(matches!(scan(cut, true), Ok((ScanEnd::TornTail { .. }, _))));
        assert!(matches!(
            scan(cut, false),
            Err(StorageError::Corrupted { .. })
        ));
    }

    #[test]
    fn zero_tail_is_the_clean_end_of_a_preallocated_segment() {
        let mut bytes = segment_with(&[b"first"]);
        let data_len = bytes.len() as u64;
        bytes.extend_from_slice(&[0u8; 100]);
        for newest in [true, false] {
            let (end, seen) = scan(&bytes, newest).unwrap();
            assert_eq!(seen.len(), 1);
            assert_eq!(end, ScanEnd::Clean { len: data_len });
        }
    }

    #[test]
    fn a_partly_written_frame_in_preallocated_space_is_torn() {
        let whole = segment_with(&[b"first", b"second frame"]);
        let second = SEGMENT_HEADER_LEN + FRAME_HEADER_LEN + 5;
        // Every prefix of the second frame, then zeros to the end of the file.
        for cut in second + 1..whole.len() {
            let mut bytes = whole[..cut].to_vec();
            bytes.resize(whole.len() + 64, 0);
            let (end, seen) = scan(&bytes, true).unwrap();
            assert_eq!(seen, vec![b"first".to_vec()], "cut at {cut}");
            assert_eq!(
                end,
                ScanEnd::TornTail {
                    valid_len: second as u64,
                    file_len: bytes.len() as u64,
                    reason: match end {
                        ScanEnd::TornTail { ref reason, .. } => reason.clone(),
                        _ => String::new(),
                    }
                }
            );
            assert!(
                scan(&bytes, false).is_err(),
                "only the newest segment may be torn"
            );
        }
    }
}
