//! One log segment: its header, its CRC-framed frames, and the rules that
//! tell a torn write from damage. The log as a whole (which segments are
//! live, how each one ends) is [`super::log`].
//!
//! Version 2 (written now):
//! - one frame per group commit: a COMMIT frame holds the records of every
//!   write in the group, written with one `write` and synced with one
//!   `fdatasync` before any of them is acknowledged. A crash can therefore
//!   tear at most the last frame of the newest segment, and nothing valid
//!   can follow a torn frame;
//! - frame header CRCs are keyed with the segment's random frame key, so
//!   bytes a client sent can never pass for a frame;
//! - a ROLLOVER frame ends every segment the log moved on from, naming the
//!   next one (so a lost newest segment is noticed), and each segment's
//!   header says where the previous segment's data ends (so a segment
//!   abandoned after a failed write needs no further write to be read).
//!
//! Version 1 segments (written before) are still read, with their own rules.
//! Byte layout and rules: storage-format.md, "Log segments".

use std::path::{Path, PathBuf};

use super::codec::{put_u32, put_u64, put_varint, Reader};
use super::error::StorageError;
use super::io::{OpenMode, Vfs, VfsFile};

pub const SEGMENT_MAGIC: [u8; 8] = *b"PWRDLOG\0";
/// The version this build writes.
pub const SEGMENT_VERSION: u32 = 2;
pub const SEGMENT_V1_HEADER_LEN: usize = 32;
pub const SEGMENT_V2_HEADER_LEN: usize = 48;
pub const FRAME_HEADER_LEN: usize = 16;
/// Largest payload a frame may declare; bigger is damage, not data.
pub const MAX_FRAME_PAYLOAD: u32 = 256 << 20;

/// Version 2 frame kinds.
pub const FRAME_COMMIT: u8 = 1;
pub const FRAME_ROLLOVER: u8 = 2;
/// The one version 1 frame kind: a frame holding one WRITE record.
pub const V1_FRAME_WRITE: u8 = 1;
/// Bytes of a ROLLOVER frame; every segment keeps this much room free so
/// the log can always move on.
pub const ROLLOVER_FRAME_LEN: u64 = FRAME_HEADER_LEN as u64 + 8;

/// A segment's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub version: u32,
    pub sequence: u64,
    /// Version 2: the offset where the previous segment's data ends (0 for
    /// a segment with no predecessor). Version 1: 0.
    pub previous_end: u64,
    /// Version 2: mixed into every frame header's CRC. Version 1: 0.
    pub frame_key: u64,
}

impl SegmentHeader {
    pub fn len(&self) -> u64 {
        if self.version == 1 {
            SEGMENT_V1_HEADER_LEN as u64
        } else {
            SEGMENT_V2_HEADER_LEN as u64
        }
    }
}

/// The version 2 header of segment `sequence`.
pub fn encode_header(sequence: u64, previous_end: u64, frame_key: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEGMENT_V2_HEADER_LEN);
    out.extend_from_slice(&SEGMENT_MAGIC);
    put_u32(&mut out, SEGMENT_VERSION);
    put_u32(&mut out, 0);
    put_u64(&mut out, sequence);
    put_u64(&mut out, previous_end);
    put_u64(&mut out, frame_key);
    let crc = crc32fast::hash(&out);
    put_u32(&mut out, crc);
    put_u32(&mut out, 0);
    out
}

/// Parses and checks the header of segment `expected_sequence`.
pub fn parse_header(
    path: &Path,
    bytes: &[u8],
    expected_sequence: u64,
) -> Result<SegmentHeader, StorageError> {
    let bad = |offset: u64, what: String| StorageError::corrupted(path, offset, what);
    if bytes.len() < SEGMENT_V1_HEADER_LEN {
        return Err(bad(
            0,
            format!("segment is {} bytes, shorter than its header", bytes.len()),
        ));
    }
    if bytes[0..8] != SEGMENT_MAGIC {
        return Err(bad(0, "not a powerd log segment (bad magic)".into()));
    }
    let field = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let field32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = field32(8);
    let header = match version {
        1 => {
            if crc32fast::hash(&bytes[..24]) != field32(24) {
                return Err(bad(24, "segment header CRC mismatch".into()));
            }
            SegmentHeader {
                version,
                sequence: field(16),
                previous_end: 0,
                frame_key: 0,
            }
        }
        2 => {
            if bytes.len() < SEGMENT_V2_HEADER_LEN {
                return Err(bad(
                    0,
                    format!("segment is {} bytes, shorter than its header", bytes.len()),
                ));
            }
            if crc32fast::hash(&bytes[..40]) != field32(40) {
                return Err(bad(40, "segment header CRC mismatch".into()));
            }
            SegmentHeader {
                version,
                sequence: field(16),
                previous_end: field(24),
                frame_key: field(32),
            }
        }
        other => {
            return Err(StorageError::unsupported_version(
                path, "segment", other, 1, 2,
            ))
        }
    };
    if field32(12) != 0 || (version == 1 && field32(28) != 0) || (version == 2 && field32(44) != 0)
    {
        return Err(bad(12, "reserved header bytes are not zero".into()));
    }
    if header.sequence != expected_sequence {
        return Err(bad(
            16,
            format!(
                "header says segment {}, file name says {expected_sequence}",
                header.sequence
            ),
        ));
    }
    Ok(header)
}

fn header_crc(version: u32, frame_key: u64, header_start: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    if version >= 2 {
        hasher.update(&frame_key.to_le_bytes());
    }
    hasher.update(&header_start[..8]);
    hasher.finalize()
}

/// Fills in the 16-byte frame header at the start of `frame`, whose payload
/// follows it; `frame_key` is the segment's.
pub fn seal_frame(frame: &mut [u8], kind: u8, frame_key: u64) {
    let payload_len = (frame.len() - FRAME_HEADER_LEN) as u32;
    frame[0..4].copy_from_slice(&payload_len.to_le_bytes());
    frame[4] = kind;
    frame[5..8].fill(0);
    let crc = header_crc(SEGMENT_VERSION, frame_key, frame);
    frame[8..12].copy_from_slice(&crc.to_le_bytes());
    let payload_crc = crc32fast::hash(&frame[FRAME_HEADER_LEN..]);
    frame[12..16].copy_from_slice(&payload_crc.to_le_bytes());
}

/// Appends one record (kind, varint length, body) to a COMMIT payload
/// under construction; the body is whatever `write_body` appends.
pub fn push_record(out: &mut Vec<u8>, kind: u8, write_body: impl FnOnce(&mut Vec<u8>)) {
    let mut body = Vec::new();
    write_body(&mut body);
    out.push(kind);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(&body);
}

/// The whole ROLLOVER frame that ends a segment, naming segment `next`.
pub fn rollover_frame(next: u64, frame_key: u64) -> Vec<u8> {
    let mut frame = vec![0u8; FRAME_HEADER_LEN];
    put_u64(&mut frame, next);
    seal_frame(&mut frame, FRAME_ROLLOVER, frame_key);
    frame
}

/// A version 1 frame, as the previous release wrote them: for tests and
/// fixtures that need old segments.
#[doc(hidden)]
pub fn v1_frame(out: &mut Vec<u8>, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    out.extend_from_slice(payload);
    let header = &mut out[start..start + FRAME_HEADER_LEN];
    header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4] = V1_FRAME_WRITE;
    let crc = header_crc(1, 0, header);
    header[8..12].copy_from_slice(&crc.to_le_bytes());
    let payload_crc = crc32fast::hash(payload);
    out[start + 12..start + 16].copy_from_slice(&payload_crc.to_le_bytes());
}

/// A version 1 segment header, for tests and fixtures.
#[doc(hidden)]
pub fn v1_header(sequence: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEGMENT_V1_HEADER_LEN);
    out.extend_from_slice(&SEGMENT_MAGIC);
    put_u32(&mut out, 1);
    put_u32(&mut out, 0);
    put_u64(&mut out, sequence);
    let crc = crc32fast::hash(&out);
    put_u32(&mut out, crc);
    put_u32(&mut out, 0);
    out
}

/// Where a segment's data must end, as the rest of the log says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The newest segment: it may end in a torn write.
    Newest,
    /// Followed by a version 2 segment whose header says this one's data
    /// ends at this offset: whole frames up to exactly there; what follows
    /// (a ROLLOVER frame, or the remains of a write that failed) is not data.
    EndsAt(u64),
    /// Followed by a version 1 segment: whole frames up to the end of the
    /// data (end of file, or zeros to the end of file).
    Older,
}

/// How a scan ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanEnd {
    /// The data ends at `len`; only zeros (or nothing) follow, or the end
    /// the next segment names was reached.
    Clean { len: u64 },
    /// A valid ROLLOVER frame at `offset` names segment `next`: the data
    /// ends there.
    Rollover { offset: u64, next: u64 },
    /// The newest segment ends in a write that never completed: whole
    /// frames end at `valid_len`; non-zero bytes reach up to `dirty_end`.
    TornTail {
        valid_len: u64,
        dirty_end: u64,
        file_len: u64,
        reason: String,
    },
}

impl ScanEnd {
    /// Where the segment's data ends.
    pub fn data_end(&self) -> u64 {
        match *self {
            ScanEnd::Clean { len } => len,
            ScanEnd::Rollover { offset, .. } => offset,
            ScanEnd::TornTail { valid_len, .. } => valid_len,
        }
    }
}

/// Why the frame at some offset is not a valid frame.
#[derive(Debug)]
enum Damage {
    /// Could be a write cut short: (incomplete or bad header, payload past
    /// the end of the file, payload CRC mismatch).
    Torn(&'static str),
    /// A header whose CRC holds but which says something impossible: never
    /// a torn write.
    Invalid(String),
}

struct Frame<'a> {
    kind: u8,
    payload: &'a [u8],
    len: usize,
}

fn parse_frame<'a>(rest: &'a [u8], header: &SegmentHeader) -> Result<Frame<'a>, Damage> {
    if rest.len() < FRAME_HEADER_LEN {
        return Err(Damage::Torn("incomplete frame header"));
    }
    let payload_len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
    let stored_header_crc = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
    let payload_crc = u32::from_le_bytes(rest[12..16].try_into().expect("4 bytes"));
    if header_crc(header.version, header.frame_key, rest) != stored_header_crc {
        return Err(Damage::Torn("frame header CRC mismatch"));
    }
    if payload_len > MAX_FRAME_PAYLOAD {
        return Err(Damage::Invalid(format!(
            "frame declares {payload_len} payload bytes, more than any frame holds"
        )));
    }
    let kind = rest[4];
    if rest[5..8] != [0, 0, 0] {
        return Err(Damage::Invalid(
            "reserved frame header bytes are not zero".into(),
        ));
    }
    let known = match header.version {
        1 => kind == V1_FRAME_WRITE,
        _ => kind == FRAME_COMMIT || kind == FRAME_ROLLOVER,
    };
    if !known {
        return Err(Damage::Invalid(format!("unknown frame kind {kind}")));
    }
    let len = FRAME_HEADER_LEN + payload_len as usize;
    let Some(payload) = rest.get(FRAME_HEADER_LEN..len) else {
        return Err(Damage::Torn("incomplete frame payload"));
    };
    if crc32fast::hash(payload) != payload_crc {
        return Err(Damage::Torn("frame payload CRC mismatch"));
    }
    Ok(Frame { kind, payload, len })
}

/// Walks the frames of a segment file's bytes and calls `visit(offset,
/// record_kind, record_body)` for every record, in order (`offset` is the
/// frame's). `role` says where the data must end.
pub fn scan_segment(
    path: &Path,
    bytes: &[u8],
    expected_sequence: u64,
    role: Role,
    mut visit: impl FnMut(u64, u8, &[u8]) -> Result<(), StorageError>,
) -> Result<(SegmentHeader, ScanEnd), StorageError> {
    let header = parse_header(path, bytes, expected_sequence)?;
    let corrupted =
        |offset: usize, what: String| StorageError::corrupted(path, offset as u64, what);
    let limit = match role {
        Role::EndsAt(end) => {
            if end < header.len() || end > bytes.len() as u64 {
                return Err(corrupted(
                    0,
                    format!(
                        "the next segment's header says this segment's data ends at offset {end}, \
                         which is outside it ({} bytes)",
                        bytes.len()
                    ),
                ));
            }
            end as usize
        }
        Role::Newest | Role::Older => bytes.len(),
    };
    let mut offset = header.len() as usize;
    loop {
        if offset == limit && matches!(role, Role::EndsAt(_)) {
            return Ok((header, ScanEnd::Clean { len: offset as u64 }));
        }
        let rest = &bytes[offset..limit];
        if all_zero(rest) {
            if let Role::EndsAt(end) = role {
                return Err(corrupted(
                    offset,
                    format!(
                        "the data ends here, but the next segment's header says it ends at offset {end}"
                    ),
                ));
            }
            // Preallocated space (or nothing) after the last frame: the clean
            // end, whatever its length.
            return Ok((header, ScanEnd::Clean { len: offset as u64 }));
        }
        let damage = match parse_frame(rest, &header) {
            Ok(frame) if frame.kind == FRAME_ROLLOVER && header.version >= 2 => {
                let next = Reader::new(frame.payload).u64().ok();
                if frame.payload.len() != 8 || next != Some(expected_sequence + 1) {
                    return Err(corrupted(
                        offset,
                        format!(
                            "rollover record must name segment {}, not {next:?}",
                            expected_sequence + 1
                        ),
                    ));
                }
                if let Role::EndsAt(end) = role {
                    return Err(corrupted(
                        offset,
                        format!(
                            "rollover record before offset {end}, where the next segment's header says the data ends"
                        ),
                    ));
                }
                return Ok((
                    header,
                    ScanEnd::Rollover {
                        offset: offset as u64,
                        next: expected_sequence + 1,
                    },
                ));
            }
            Ok(frame) => {
                if header.version == 1 {
                    visit(offset as u64, super::record::KIND_WRITE, frame.payload)?;
                } else {
                    visit_records(path, offset, frame.payload, &mut visit)?;
                }
                offset += frame.len;
                continue;
            }
            Err(damage) => damage,
        };
        let reason = match damage {
            Damage::Invalid(what) => return Err(corrupted(offset, what)),
            Damage::Torn(reason) => reason,
        };
        if role != Role::Newest {
            return Err(corrupted(
                offset,
                format!("{reason} in a segment that is not the newest"),
            ));
        }
        let torn = ScanEnd::TornTail {
            valid_len: offset as u64,
            dirty_end: bytes
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |last| last as u64 + 1)
                .max(offset as u64),
            file_len: bytes.len() as u64,
            reason: reason.to_string(),
        };
        if header.version == 1 {
            return v1_torn_rules(path, bytes, offset, reason).map(|()| (header, torn));
        }
        // Only the last group commit can be torn, and it is one frame: a
        // valid frame anywhere after the damage was written after it, so
        // the damage is not a torn write.
        if let Some(later) = later_valid_frame(bytes, offset + 1, &header) {
            return Err(corrupted(
                offset,
                format!("{reason}, but a valid frame follows at offset {later}: damage, not a torn write"),
            ));
        }
        return Ok((header, torn));
    }
}

/// Version 1 wrote one frame per record, several per group commit, so a
/// valid frame may follow a torn one; its rule is the one it shipped with:
/// a damaged frame is torn only if nothing but zeros follows it.
fn v1_torn_rules(
    path: &Path,
    bytes: &[u8],
    offset: usize,
    reason: &str,
) -> Result<(), StorageError> {
    let rest = &bytes[offset..];
    let after = match reason {
        "frame header CRC mismatch" => FRAME_HEADER_LEN,
        "frame payload CRC mismatch" => {
            let payload_len = u32::from_le_bytes(rest[0..4].try_into().expect("a whole header"));
            FRAME_HEADER_LEN + payload_len as usize
        }
        // Cut off by the end of the file.
        _ => rest.len(),
    };
    if all_zero(&rest[after..]) {
        Ok(())
    } else {
        Err(StorageError::corrupted(
            path,
            offset as u64,
            format!("{reason}, and non-zero bytes follow"),
        ))
    }
}

/// Whether a valid ROLLOVER frame naming the next segment sits at
/// `offset`: the forward link a version 2 segment ends with.
pub fn has_rollover_at(bytes: &[u8], header: &SegmentHeader, offset: u64) -> bool {
    header.version >= 2
        && usize::try_from(offset)
            .ok()
            .and_then(|at| bytes.get(at..))
            .and_then(|rest| parse_frame(rest, header).ok())
            .is_some_and(|frame| {
                frame.kind == FRAME_ROLLOVER && frame.payload == (header.sequence + 1).to_le_bytes()
            })
}

/// The offset of the first valid frame at or after `from`, if any.
fn later_valid_frame(bytes: &[u8], from: usize, header: &SegmentHeader) -> Option<usize> {
    let last = bytes.len().checked_sub(FRAME_HEADER_LEN)?;
    (from..=last).find(|&at| {
        let rest = &bytes[at..];
        // Cheap filters first: a known kind and zero reserved bytes.
        (rest[4] == FRAME_COMMIT || rest[4] == FRAME_ROLLOVER)
            && rest[5..8] == [0, 0, 0]
            && parse_frame(rest, header).is_ok()
    })
}

fn visit_records(
    path: &Path,
    offset: usize,
    payload: &[u8],
    visit: &mut impl FnMut(u64, u8, &[u8]) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let bad = |what: String| StorageError::corrupted(path, offset as u64, what);
    if payload.is_empty() {
        return Err(bad("commit frame holds no record".into()));
    }
    let mut reader = Reader::new(payload);
    while reader.remaining() > 0 {
        let kind = reader.u8().map_err(|e| bad(e.0))?;
        let len = reader.varint().map_err(|e| bad(e.0))?;
        let body = usize::try_from(len)
            .ok()
            .and_then(|len| reader.take(len).ok())
            .ok_or_else(|| bad(format!("record of {len} bytes overruns its frame")))?;
        visit(offset as u64, kind, body)?;
    }
    Ok(())
}

/// Whether every byte is zero. Start-up runs this over a segment's
/// preallocated megabytes: OR-folding 64-byte blocks vectorises, and an
/// early exit at the first non-zero block keeps damage cheap to find.
fn all_zero(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(64);
    blocks.all(|block| block.iter().fold(0u8, |acc, &b| acc | b) == 0)
        && blocks.remainder().iter().all(|&b| b == 0)
}

/// The segment being appended to.
pub struct SegmentWriter {
    file: Box<dyn VfsFile>,
    path: PathBuf,
    sequence: u64,
    frame_key: u64,
    /// Where the next frame goes: the end of the data.
    len: u64,
    /// The file's length: zero-filled and synced beyond `len`, so a write
    /// below it changes no metadata and `fdatasync` flushes data only.
    capacity: u64,
    /// Set when the log must move on before the next frame (the segment
    /// holds writes replayed at start-up that a checkpoint will retire).
    pub retired: bool,
}

impl SegmentWriter {
    /// Turns a spare file made by [`prepare_spare`] into segment `sequence`:
    /// header written and synced, renamed into place, directory synced.
    pub fn from_spare(
        vfs: &dyn Vfs,
        spare: &Path,
        path: PathBuf,
        sequence: u64,
        previous_end: u64,
    ) -> Result<SegmentWriter, StorageError> {
        let frame_key = vfs.entropy();
        let file = vfs
            .open(spare, OpenMode::Existing)
            .map_err(|e| StorageError::io(spare, "open", e))?;
        let capacity = file
            .size()
            .map_err(|e| StorageError::io(spare, "stat", e))?;
        let header = encode_header(sequence, previous_end, frame_key);
        file.write_at(0, &header)
            .map_err(|e| StorageError::io(spare, "write", e))?;
        file.sync()
            .map_err(|e| StorageError::io(spare, "sync", e))?;
        vfs.rename(spare, &path)
            .map_err(|e| StorageError::io(&path, "rename spare segment to", e))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        vfs.sync_dir(dir)
            .map_err(|e| StorageError::io(dir, "sync directory", e))?;
        Ok(SegmentWriter {
            file,
            path,
            sequence,
            frame_key,
            len: header.len() as u64,
            capacity,
            retired: false,
        })
    }

    /// Continues an existing version 2 segment whose data ends at `len`
    /// and whose bytes after `len` are zero.
    pub fn reopen(
        vfs: &dyn Vfs,
        path: PathBuf,
        header: &SegmentHeader,
        len: u64,
    ) -> Result<SegmentWriter, StorageError> {
        let file = vfs
            .open(&path, OpenMode::Existing)
            .map_err(|e| StorageError::io(&path, "open", e))?;
        let capacity = file
            .size()
            .map_err(|e| StorageError::io(&path, "stat", e))?;
        Ok(SegmentWriter {
            file,
            path,
            sequence: header.sequence,
            frame_key: header.frame_key,
            len,
            capacity,
            retired: false,
        })
    }

    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn frame_key(&self) -> u64 {
        self.frame_key
    }

    /// Where the data ends.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == SEGMENT_V2_HEADER_LEN as u64
    }

    /// Whether a frame of `bytes` fits, leaving room for the ROLLOVER frame.
    pub fn fits(&self, bytes: u64) -> bool {
        !self.retired && self.len + bytes + ROLLOVER_FRAME_LEN <= self.capacity
    }

    /// Writes one sealed frame at the end of the data and syncs it; the
    /// data end moves only if both succeed.
    pub fn append(&mut self, frame: &[u8]) -> Result<(), StorageError> {
        debug_assert!(frame.len() as u64 + self.len + ROLLOVER_FRAME_LEN <= self.capacity);
        self.file
            .write_at(self.len, frame)
            .map_err(|e| StorageError::io(&self.path, "append to", e))?;
        self.file
            .sync()
            .map_err(|e| StorageError::io(&self.path, "sync", e))?;
        self.len += frame.len() as u64;
        Ok(())
    }

    /// Ends the segment with a ROLLOVER frame naming `next`, synced.
    pub fn end_with_rollover(&mut self, next: u64) -> Result<(), StorageError> {
        let frame = rollover_frame(next, self.frame_key);
        self.file
            .write_at(self.len, &frame)
            .map_err(|e| StorageError::io(&self.path, "write rollover record to", e))?;
        self.file
            .sync()
            .map_err(|e| StorageError::io(&self.path, "sync", e))
    }

    /// Gives an empty segment's preallocated zeros back to the file system
    /// (at a graceful stop): the file keeps its header and the room for a
    /// ROLLOVER frame, so it ends cleanly and the next start continues the
    /// log with a new segment. Any crash-torn length in between is still
    /// header plus zeros.
    pub fn trim_empty(&mut self) -> Result<(), StorageError> {
        let keep = SEGMENT_V2_HEADER_LEN as u64 + ROLLOVER_FRAME_LEN;
        if !self.is_empty() || self.capacity <= keep {
            return Ok(());
        }
        self.file
            .set_len(keep)
            .map_err(|e| StorageError::io(&self.path, "trim", e))?;
        self.file
            .sync()
            .map_err(|e| StorageError::io(&self.path, "sync", e))?;
        self.capacity = keep;
        Ok(())
    }

    /// Overwrites `[len, dirty_end)` with zeros and syncs: the remains of a
    /// torn write must not sit behind the frames that will follow.
    pub fn zero_tail(&mut self, dirty_end: u64) -> Result<(), StorageError> {
        if dirty_end > self.len {
            let zeros = vec![0u8; (dirty_end - self.len) as usize];
            self.file
                .write_at(self.len, &zeros)
                .map_err(|e| StorageError::io(&self.path, "zero the torn tail of", e))?;
            self.file
                .sync()
                .map_err(|e| StorageError::io(&self.path, "sync", e))?;
        }
        Ok(())
    }
}

/// Writes a zero-filled file of `len` bytes at `path` and syncs it and its
/// directory. Real zeros rather than `fallocate`: an allocated-but-unwritten
/// extent would still need a metadata update on first write.
pub fn prepare_spare(vfs: &dyn Vfs, path: &Path, len: u64) -> Result<(), StorageError> {
    let file = vfs
        .open(path, OpenMode::CreateTruncate)
        .map_err(|e| StorageError::io(path, "create", e))?;
    let zeros = vec![0u8; (1 << 20).min(len as usize)];
    let mut written = 0;
    while written < len {
        let chunk = (len - written).min(zeros.len() as u64) as usize;
        file.write_at(written, &zeros[..chunk])
            .map_err(|e| StorageError::io(path, "zero-fill", e))?;
        written += chunk as u64;
    }
    file.sync().map_err(|e| StorageError::io(path, "sync", e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    vfs.sync_dir(dir)
        .map_err(|e| StorageError::io(dir, "sync directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: u64 = 0x5eed;

    fn commit(records: &[&[u8]]) -> Vec<u8> {
        let mut frame = vec![0u8; FRAME_HEADER_LEN];
        for body in records {
            push_record(&mut frame, 1, |out| out.extend_from_slice(body));
        }
        seal_frame(&mut frame, FRAME_COMMIT, KEY);
        frame
    }

    fn segment_with(frames: &[Vec<u8>], zeros: usize) -> Vec<u8> {
        let mut bytes = encode_header(7, 0, KEY);
        for frame in frames {
            bytes.extend_from_slice(frame);
        }
        bytes.resize(bytes.len() + zeros, 0);
        bytes
    }

    fn scan(bytes: &[u8], role: Role) -> Result<(ScanEnd, Vec<Vec<u8>>), StorageError> {
        let mut seen = Vec::new();
        let (_, end) = scan_segment(Path::new("x.log"), bytes, 7, role, |_, _, body| {
            seen.push(body.to_vec());
            Ok(())
        })?;
        Ok((end, seen))
    }

    #[test]
    fn records_come_back_in_order_and_zeros_end_cleanly_at_any_length() {
        let frames = [commit(&[b"a", b"bb"]), commit(&[b"ccc"])];
        let data_len = segment_with(&frames, 0).len() as u64;
        for zeros in [0, 1, 8, 15, 16, 17, 600] {
            let bytes = segment_with(&frames, zeros);
            for role in [Role::Newest, Role::Older] {
                let (end, seen) = scan(&bytes, role).unwrap();
                assert_eq!(seen, vec![b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]);
                assert_eq!(end, ScanEnd::Clean { len: data_len }, "{zeros} zeros");
            }
            let (end, _) = scan(&bytes, Role::EndsAt(data_len)).unwrap();
            assert_eq!(end, ScanEnd::Clean { len: data_len });
        }
    }

    #[test]
    fn every_sector_tear_of_the_last_frame_is_a_torn_tail() {
        let first = commit(&[b"first"]);
        let last = commit(&[&[9u8; 1500], b"x"]);
        let whole = segment_with(&[first.clone(), last.clone()], 2048);
        let start = SEGMENT_V2_HEADER_LEN + first.len();
        let end = start + last.len();
        // Each 512-byte sector of the last frame old (zero) or new.
        let sectors: Vec<(usize, usize)> = (start / 512..end.div_ceil(512))
            .map(|s| ((s * 512).max(start), ((s + 1) * 512).min(end)))
            .collect();
        for pattern in 0..(1u32 << sectors.len()) - 1 {
            let mut bytes = whole.clone();
            for (i, &(from, to)) in sectors.iter().enumerate() {
                if pattern & (1 << i) == 0 {
                    bytes[from..to].fill(0);
                }
            }
            let (end_state, seen) = scan(&bytes, Role::Newest).unwrap();
            assert_eq!(seen, vec![b"first".to_vec()], "pattern {pattern:b}");
            match end_state {
                ScanEnd::TornTail { valid_len, .. } | ScanEnd::Clean { len: valid_len } => {
                    assert_eq!(valid_len, start as u64)
                }
                other => panic!("{other:?}"),
            }
            assert!(scan(&bytes, Role::Older).is_err() || pattern == 0);
        }
    }

    #[test]
    fn damage_followed_by_a_valid_frame_is_corruption() {
        let frames = [commit(&[b"one"]), commit(&[b"two"]), commit(&[b"three"])];
        let bytes = segment_with(&frames, 100);
        let second = SEGMENT_V2_HEADER_LEN + frames[0].len();
        for at in [second, second + 3, second + FRAME_HEADER_LEN + 2] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            match scan(&damaged, Role::Newest) {
                Err(StorageError::Corrupted { offset, .. }) => assert_eq!(offset, second as u64),
                other => panic!("flip at {at}: {other:?}"),
            }
        }
        // The last frame damaged: indistinguishable from a torn write.
        let mut damaged = bytes;
        let third = second + frames[1].len();
        damaged[third + FRAME_HEADER_LEN] ^= 1;
        assert!(matches!(
            scan(&damaged, Role::Newest),
            Ok((ScanEnd::TornTail { .. }, _))
        ));
    }

    #[test]
    fn a_frame_keyed_for_another_segment_is_not_a_frame() {
        let mut foreign = vec![0u8; FRAME_HEADER_LEN];
        push_record(&mut foreign, 1, |out| out.extend_from_slice(b"forged"));
        seal_frame(&mut foreign, FRAME_COMMIT, KEY + 1);
        let bytes = segment_with(&[commit(&[b"real"]), foreign], 10);
        let (end, seen) = scan(&bytes, Role::Newest).unwrap();
        assert_eq!(seen, vec![b"real".to_vec()]);
        assert!(matches!(end, ScanEnd::TornTail { .. }));
    }

    #[test]
    fn rollover_ends_the_data_and_must_name_the_next_segment() {
        let mut bytes = segment_with(&[commit(&[b"a"])], 0);
        let at = bytes.len() as u64;
        bytes.extend_from_slice(&rollover_frame(8, KEY));
        bytes.extend_from_slice(&[0xAB; 5]);
        let (end, seen) = scan(&bytes, Role::Newest).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            end,
            ScanEnd::Rollover {
                offset: at,
                next: 8
            }
        );
        assert!(scan(&bytes, Role::EndsAt(at)).is_ok());
        let mut wrong = segment_with(&[commit(&[b"a"])], 0);
        wrong.extend_from_slice(&rollover_frame(9, KEY));
        assert!(scan(&wrong, Role::Newest).is_err());
    }

    #[test]
    fn ends_at_demands_whole_frames_up_to_the_named_offset() {
        let frames = [commit(&[b"a"]), commit(&[b"b"])];
        let bytes = segment_with(&frames, 64);
        let full = (SEGMENT_V2_HEADER_LEN + frames[0].len() + frames[1].len()) as u64;
        // Garbage after the named end is not read.
        let mut garbage = bytes.clone();
        garbage[full as usize + 3] = 0x77;
        assert!(scan(&garbage, Role::EndsAt(full)).is_ok());
        // The named end inside a frame, or beyond the data: damage.
        assert!(scan(&bytes, Role::EndsAt(full - 1)).is_err());
        assert!(scan(&bytes, Role::EndsAt(full + 16)).is_err());
        assert!(scan(&bytes, Role::EndsAt(bytes.len() as u64 + 1)).is_err());
    }

    #[test]
    fn version_1_segments_keep_their_rules() {
        let mut bytes = v1_header(7);
        v1_frame(&mut bytes, b"old one");
        v1_frame(&mut bytes, b"old two");
        let (end, seen) = scan(&bytes, Role::Older).unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            end,
            ScanEnd::Clean {
                len: bytes.len() as u64
            }
        );
        // The rollover gap: fewer zeros than a frame header at the end of
        // an older segment is a clean end, not damage.
        let mut gap = bytes.clone();
        gap.extend_from_slice(&[0u8; 8]);
        assert!(scan(&gap, Role::Older).is_ok());
        // A cut-off last frame is torn in the newest, corruption elsewhere.
        let cut = &bytes[..bytes.len() - 2];
        assert!(matches!(
            scan(cut, Role::Newest),
            Ok((ScanEnd::TornTail { .. }, _))
        ));
        assert!(scan(cut, Role::Older).is_err());
    }

    #[test]
    fn header_damage_is_always_named() {
        let header = encode_header(7, 123, KEY);
        assert_eq!(header.len(), SEGMENT_V2_HEADER_LEN);
        let parsed = parse_header(Path::new("x"), &header, 7).unwrap();
        assert_eq!((parsed.previous_end, parsed.frame_key), (123, KEY));
        assert!(parse_header(Path::new("x"), &header, 8).is_err());
        for index in 0..SEGMENT_V2_HEADER_LEN {
            let mut damaged = header.clone();
            damaged[index] ^= 0x04;
            assert!(
                parse_header(Path::new("x"), &damaged, 7).is_err(),
                "flip at {index}"
            );
        }
    }
}
