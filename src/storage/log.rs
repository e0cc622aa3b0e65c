//! The log as a whole: reading every live segment in order, each with the
//! rule its place in the log gives it (storage-format.md, "Recovery").
//! Recovery replays through [`scan_log`] and `powerd check` verifies
//! through it, so the two apply the same rules with the same code.

use std::borrow::Cow;

use super::error::StorageError;
use super::io::Vfs;
use super::layout::Layout;
use super::segment::{has_rollover_at, parse_header, scan_segment, Role, ScanEnd, SegmentHeader};

/// How one live segment ended.
#[derive(Clone, Debug)]
pub struct SegmentScan {
    pub sequence: u64,
    pub header: SegmentHeader,
    pub end: ScanEnd,
    /// Records read from it.
    pub records: u64,
    /// Not the newest: whether it ends with the ROLLOVER frame naming the
    /// next segment (a crash during a roll-over, or a failed write, can
    /// leave it without one).
    pub linked: bool,
}

/// What [`scan_log`] read.
#[derive(Debug, Default)]
pub struct LogScan {
    pub segments: Vec<SegmentScan>,
    pub records: u64,
}

impl LogScan {
    pub fn newest(&self) -> Option<&SegmentScan> {
        self.segments.last()
    }
}

/// Reads the live segments `live` (consecutive, ascending) and calls
/// `visit(sequence, offset, record_kind, record_body)` for every record in
/// log order. A segment followed by another must hold whole frames up to
/// where its successor's header says it ends; only the newest may end in a
/// torn write, and if it ends with a ROLLOVER frame, the segment it names
/// is missing.
pub fn scan_log(
    vfs: &dyn Vfs,
    layout: &Layout,
    live: &[u64],
    visit: impl FnMut(u64, u64, u8, &[u8]) -> Result<(), StorageError>,
) -> Result<LogScan, StorageError> {
    let read = |sequence: u64| {
        let path = layout.segment(sequence);
        vfs.read(&path)
            .map(Cow::Owned)
            .map_err(|e| StorageError::io(&path, "read", e))
    };
    scan_segments(layout, live, read, visit)
}

/// [`scan_log`] over segment bytes that `read` gives (from the files, or
/// copies already in memory, as a backup holds them).
pub fn scan_segments<'a>(
    layout: &Layout,
    live: &[u64],
    mut read: impl FnMut(u64) -> Result<Cow<'a, [u8]>, StorageError>,
    mut visit: impl FnMut(u64, u64, u8, &[u8]) -> Result<(), StorageError>,
) -> Result<LogScan, StorageError> {
    let mut scan = LogScan::default();
    let mut next_bytes: Option<Cow<'a, [u8]>> = None;
    for (position, &sequence) in live.iter().enumerate() {
        let path = layout.segment(sequence);
        let bytes = match next_bytes.take() {
            Some(bytes) => bytes,
            None => read(sequence)?,
        };
        let role = match live.get(position + 1) {
            None => Role::Newest,
            Some(&next) => {
                let successor = read(next)?;
                let header = parse_header(&layout.segment(next), &successor, next)?;
                next_bytes = Some(successor);
                if header.version >= 2 {
                    Role::EndsAt(header.previous_end)
                } else {
                    Role::Older
                }
            }
        };
        let mut records = 0u64;
        let (header, end) = scan_segment(&path, &bytes, sequence, role, |offset, kind, body| {
            records += 1;
            visit(sequence, offset, kind, body)
        })?;
        if let (Role::Newest, ScanEnd::Rollover { next, .. }) = (role, &end) {
            return Err(StorageError::Missing {
                path: layout.segment(*next),
                why: format!("{} ends with a rollover record naming it", path.display()),
            });
        }
        let linked = match role {
            Role::EndsAt(at) => has_rollover_at(&bytes, &header, at),
            Role::Newest | Role::Older => false,
        };
        scan.records += records;
        scan.segments.push(SegmentScan {
            sequence,
            header,
            end,
            records,
            linked,
        });
    }
    Ok(scan)
}
