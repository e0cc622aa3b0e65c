//! `powerd backup`: a consistent copy of a data directory, taken while a
//! server writes to it, or while none runs.
//!
//! The protocol needs nothing from a running server beyond the format's
//! own promises (storage-format.md, "Backups"):
//!
//! - **A snapshot is one manifest's files.** Read `MANIFEST`, then map
//!   every block file it names, `ROLLUP`, and read every live log segment;
//!   then read `MANIFEST` again. Unchanged bytes mean no checkpoint landed
//!   in between, so every file was taken while that manifest was the
//!   current one: the blocks it names (sealed: never written again, and a
//!   map outlives their deletion) and the log from its first live segment
//!   on. A checkpoint in between (a changed manifest, or a file already
//!   deleted) means: start over. Writers are never waited for; a
//!   checkpoint is never held up.
//! - **The log ends at a write boundary.** The newest segment's copy is
//!   scanned as recovery would; whatever follows its last whole COMMIT
//!   frame (a write in flight, or the ROLLOVER frame naming a segment the
//!   snapshot does not have) is zeroed. Every write acknowledged before the
//!   snapshot was read is in the copy: it was synced into these segments
//!   before it was acknowledged.
//! - **Incomplete until marked complete.** `BACKUP-INCOMPLETE` is created
//!   first and removed last, after every file and directory is synced;
//!   `serve` and `check` refuse a directory that still has it.
//! - **No server running**: the backup holds the directory's lock
//!   (shared, like `check`), so none starts while it copies.
//!
//! The copy is written in pieces of at most [`SYNC_EVERY`] bytes, each
//! synced, so the backup never issues one long sync that could hold up the
//! server's log syncs on the same device; `max_bytes_per_s` slows it
//! further.
//!
//! Must never know: HTTP, JSON, the CLI. Progress goes to a callback.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::error::StorageError;
use super::fsutil::sync_dir;
use super::io::{LockMode, Mapped, OpenMode, Vfs};
use super::layout::Layout;
use super::log::scan_segments;
use super::manifest::Manifest;
use super::segment::{scan_segment, Role, ScanEnd};

/// Bytes written between syncs of a file being copied.
pub const SYNC_EVERY: usize = 8 << 20;
/// Snapshots attempted before giving up (each lost only to a checkpoint
/// landing while it was being read: seconds apart at full ingest).
const MAX_ATTEMPTS: u32 = 100;

#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Copy at most this many bytes per second (`None`: as fast as the
    /// disks go).
    pub max_bytes_per_s: Option<u64>,
}

/// Where a backup is.
#[derive(Clone, Debug)]
pub struct Progress {
    pub files_done: usize,
    pub files_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub elapsed: Duration,
}

/// What a finished backup holds.
#[derive(Clone, Debug)]
pub struct BackupReport {
    /// A server was writing to the source (its lock was held).
    pub alongside_server: bool,
    pub files: usize,
    pub bytes: u64,
    pub block_files: usize,
    pub segments: usize,
    /// Records in the copied log (writes not yet in blocks).
    pub log_records: u64,
    /// Snapshots taken until one was consistent (1: the first was).
    pub attempts: u32,
    pub started_at: SystemTime,
    /// When the log was read: every write acknowledged before this is in
    /// the backup; none acknowledged after it is.
    pub log_read_at: SystemTime,
    pub elapsed: Duration,
}

/// One manifest's files, held until they are copied.
struct Snapshot {
    manifest: Vec<u8>,
    blocks: Vec<(u64, Mapped)>,
    rollup: Option<Mapped>,
    /// Live segments, ascending; the newest already cut at its last whole
    /// frame.
    segments: Vec<(u64, Vec<u8>)>,
    log_records: u64,
    log_read_at: SystemTime,
}

/// Copies the data directory `source` into `dest` (which must not exist,
/// or be empty). On failure `dest` keeps its `BACKUP-INCOMPLETE` marker.
pub fn backup(
    vfs: &dyn Vfs,
    source: &Path,
    dest: &Path,
    options: &BackupOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<BackupReport, StorageError> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    if !vfs.is_dir(source) {
        return Err(StorageError::io(
            source,
            "back up data directory",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let from = Layout::new(source);
    let to = Layout::new(dest);
    // A copy of an unfinished backup would look finished.
    from.refuse_unfinished_backup(vfs)?;
    prepare_destination(vfs, &to)?;

    // Without a server, keep one from starting (and changing files) while
    // this copies; with one, the snapshot protocol is all it takes.
    let lock = match vfs.lock(&from.lock(), LockMode::Shared) {
        Ok(guard) => Some(guard),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(e) => return Err(StorageError::io(from.lock(), "lock", e)),
    };
    let alongside_server = lock.is_none();

    let (snapshot, attempts) = take_snapshot(vfs, &from)?;
    let mut files: Vec<(PathBuf, &[u8])> = Vec::new();
    for (id, map) in &snapshot.blocks {
        files.push((to.block(*id), map));
    }
    if let Some(rollup) = &snapshot.rollup {
        files.push((to.rollup(), rollup));
    }
    for (sequence, bytes) in &snapshot.segments {
        files.push((to.segment(*sequence), bytes));
    }
    // Last, so a directory with a manifest has everything it names.
    if !snapshot.manifest.is_empty() {
        files.push((to.manifest(), &snapshot.manifest));
    }

    let mut copier = Copier {
        vfs,
        options,
        started,
        progress: Progress {
            files_done: 0,
            files_total: files.len(),
            bytes_done: 0,
            bytes_total: files.iter().map(|(_, b)| b.len() as u64).sum(),
            elapsed: Duration::ZERO,
        },
        report: progress,
    };
    (copier.report)(&copier.progress);
    for (path, bytes) in &files {
        copier.copy(path, bytes)?;
    }
    for dir in [&to.block_dir, &to.log_dir, &to.dir] {
        sync_dir(vfs, dir)?;
    }
    // The backup is complete once the marker is gone, durably.
    vfs.remove(&to.backup_marker())
        .map_err(|e| StorageError::io(to.backup_marker(), "remove", e))?;
    sync_dir(vfs, &to.dir)?;
    Ok(BackupReport {
        alongside_server,
        files: files.len(),
        bytes: copier.progress.bytes_done,
        block_files: snapshot.blocks.len(),
        segments: snapshot.segments.len(),
        log_records: snapshot.log_records,
        attempts,
        started_at,
        log_read_at: snapshot.log_read_at,
        elapsed: started.elapsed(),
    })
}

/// Creates `dest` (or takes it if empty) with its marker, durably, before
/// anything else is written into it.
fn prepare_destination(vfs: &dyn Vfs, to: &Layout) -> Result<(), StorageError> {
    if vfs.is_dir(&to.dir) {
        let names = vfs
            .list(&to.dir)
            .map_err(|e| StorageError::io(&to.dir, "list", e))?;
        if !names.is_empty() {
            return Err(StorageError::io(
                &to.dir,
                "back up into",
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "it exists and is not empty; give a new or an empty directory",
                ),
            ));
        }
    }
    vfs.create_dir_all(&to.dir)
        .map_err(|e| StorageError::io(&to.dir, "create backup directory", e))?;
    let marker = to.backup_marker();
    let file = vfs
        .open(&marker, OpenMode::CreateNew)
        .map_err(|e| StorageError::io(&marker, "create", e))?;
    file.write_at(
        0,
        b"powerd backup in progress: this directory is not a complete copy until this file is gone\n",
    )
    .and_then(|()| file.sync())
    .map_err(|e| StorageError::io(&marker, "write", e))?;
    sync_dir(vfs, &to.dir)?;
    if let Some(parent) = to.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(vfs, parent)?;
    }
    for dir in [&to.log_dir, &to.block_dir] {
        vfs.create_dir_all(dir)
            .map_err(|e| StorageError::io(dir, "create directory", e))?;
    }
    Ok(())
}

/// Reads one manifest's files, again and again until no checkpoint landed
/// while they were read.
fn take_snapshot(vfs: &dyn Vfs, from: &Layout) -> Result<(Snapshot, u32), StorageError> {
    let mut last_reason = String::new();
    for attempt in 1..=MAX_ATTEMPTS {
        match try_snapshot(vfs, from)? {
            Ok(snapshot) => return Ok((snapshot, attempt)),
            Err(reason) => {
                tracing::debug!(attempt, %reason, "backup snapshot taken again");
                last_reason = reason;
                std::thread::sleep(Duration::from_millis(5 * u64::from(attempt.min(20))));
            }
        }
    }
    Err(StorageError::Failed(format!(
        "no consistent snapshot of {} after {MAX_ATTEMPTS} attempts ({last_reason})",
        from.dir.display()
    )))
}

/// `Ok(Err(reason))`: a checkpoint (or a write in flight) got in the way;
/// try again.
fn try_snapshot(vfs: &dyn Vfs, from: &Layout) -> Result<Result<Snapshot, String>, StorageError> {
    let read_manifest = || match vfs.read(&from.manifest()) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StorageError::io(from.manifest(), "read", e)),
    };
    let manifest_bytes = read_manifest()?;
    let manifest = if manifest_bytes.is_empty() {
        Manifest::empty()
    } else {
        Manifest::decode(&from.manifest(), &manifest_bytes)?
    };
    let gone = |path: &Path| format!("{} went away (a checkpoint)", path.display());

    let mut block_ids: Vec<u64> = manifest.chunks.values().map(|c| c.block).collect();
    block_ids.sort_unstable();
    block_ids.dedup();
    let mut blocks = Vec::with_capacity(block_ids.len());
    for id in block_ids {
        let path = from.block(id);
        match vfs.map(&path) {
            Ok(map) => blocks.push((id, map)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Err(gone(&path))),
            Err(e) => return Err(StorageError::io(&path, "map", e)),
        }
    }
    let rollup = match vfs.map(&from.rollup()) {
        Ok(map) => Some(map),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(StorageError::io(from.rollup(), "map", e)),
    };
    let live: Vec<u64> = from
        .list_segments(vfs)?
        .into_iter()
        .filter(|&s| s >= manifest.first_live_segment)
        .collect();
    let mut log_read_at = SystemTime::now();
    let mut segments = Vec::with_capacity(live.len());
    for &sequence in &live {
        let path = from.segment(sequence);
        if Some(&sequence) == live.last() {
            // Older segments are closed: only the newest still grows.
            log_read_at = SystemTime::now();
        }
        match vfs.read(&path) {
            Ok(bytes) => segments.push((sequence, bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Err(gone(&path))),
            Err(e) => return Err(StorageError::io(&path, "read", e)),
        }
    }
    if read_manifest()? != manifest_bytes {
        return Ok(Err("a checkpoint replaced MANIFEST".into()));
    }
    let log_records =
        match cut_newest(from, &mut segments).and_then(|()| count_records(from, &segments)) {
            Ok(records) => records,
            // A write landing while the newest segment was read can leave a
            // copy with a half-read frame before a whole one: read again.
            Err(StorageError::Corrupted { what, .. }) => {
                return Ok(Err(format!("the newest segment was being written: {what}")))
            }
            Err(e) => return Err(e),
        };
    Ok(Ok(Snapshot {
        manifest: manifest_bytes,
        blocks,
        rollup,
        segments,
        log_records,
        log_read_at,
    }))
}

/// Ends the copied log at a write boundary: the newest segment keeps its
/// whole frames up to the last COMMIT, and zeros after it (no write in
/// flight, no ROLLOVER naming a segment the copy does not hold).
fn cut_newest(from: &Layout, segments: &mut [(u64, Vec<u8>)]) -> Result<(), StorageError> {
    let Some((sequence, bytes)) = segments.last_mut() else {
        return Ok(());
    };
    let path = from.segment(*sequence);
    // (Its header was written and synced before the file got its name.)
    let (_, end) = scan_segment(&path, bytes, *sequence, Role::Newest, |_, _, _| Ok(()))?;
    if !matches!(end, ScanEnd::Clean { .. }) {
        let data_end = usize::try_from(end.data_end()).map_or(bytes.len(), |e| e.min(bytes.len()));
        bytes[data_end..].fill(0);
    }
    Ok(())
}

/// Reads the copied log as recovery will (each segment by its role, with
/// the same code) and counts its records: a copy whose log would not
/// replay is never declared complete.
fn count_records(from: &Layout, segments: &[(u64, Vec<u8>)]) -> Result<u64, StorageError> {
    let sequences: Vec<u64> = segments.iter().map(|(sequence, _)| *sequence).collect();
    let copy_of = |sequence: u64| {
        let (_, bytes) = &segments[sequences.partition_point(|&s| s < sequence)];
        Ok(Cow::Borrowed(bytes.as_slice()))
    };
    Ok(scan_segments(from, &sequences, copy_of, |_, _, _, _| Ok(()))?.records)
}

struct Copier<'a> {
    vfs: &'a dyn Vfs,
    options: &'a BackupOptions,
    started: Instant,
    progress: Progress,
    report: &'a mut dyn FnMut(&Progress),
}

impl Copier<'_> {
    /// Writes `bytes` as the new file `path` in synced pieces; a run of
    /// zeros at the end is left as a hole (log segments are preallocated).
    fn copy(&mut self, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
        let file = self
            .vfs
            .open(path, OpenMode::CreateNew)
            .map_err(|e| StorageError::io(path, "create", e))?;
        let data_len = bytes.len() - bytes.iter().rev().take_while(|&&b| b == 0).count();
        let mut offset = 0;
        while offset < data_len {
            let end = (offset + SYNC_EVERY).min(data_len);
            file.write_at(offset as u64, &bytes[offset..end])
                .and_then(|()| file.sync())
                .map_err(|e| StorageError::io(path, "write", e))?;
            self.advance((end - offset) as u64);
            offset = end;
        }
        if data_len < bytes.len() {
            file.set_len(bytes.len() as u64)
                .and_then(|()| file.sync())
                .map_err(|e| StorageError::io(path, "extend", e))?;
            self.advance((bytes.len() - data_len) as u64);
        }
        self.progress.files_done += 1;
        self.progress.elapsed = self.started.elapsed();
        (self.report)(&self.progress);
        Ok(())
    }

    /// Counts `bytes` copied, and sleeps as long as the rate limit asks.
    fn advance(&mut self, bytes: u64) {
        self.progress.bytes_done += bytes;
        if let Some(rate) = self.options.max_bytes_per_s.filter(|&r| r > 0) {
            let due = Duration::from_secs_f64(self.progress.bytes_done as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(self.started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        self.progress.elapsed = self.started.elapsed();
        (self.report)(&self.progress);
    }
}
