//! The committer thread (group commit, moving the log on, freezing the
//! memtable for a checkpoint) and the preparer thread (spare segments).
//!
//! Rules the log's durability rests on (storage-format.md, "Log segments"):
//! - frames go only into prepared, zero-filled space, with room left for a
//!   ROLLOVER frame, so a full disk can refuse a write before any byte of it
//!   goes down, and never tears a frame;
//! - a group is acknowledged only after its `fdatasync` returned;
//! - a failed write or sync is never retried on the same data (after
//!   "fsyncgate", the page cache can no longer be trusted): the segment is
//!   abandoned as it stands, and the next group goes into a fresh segment
//!   whose header names where the abandoned one's data ends.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::checkpoint::{self, CheckpointJob};
use super::{CheckpointWaiter, Pending, Shared};
use crate::storage::error::StorageError;
use crate::storage::fsutil::remove_file;
use crate::storage::manifest::Manifest;
use crate::storage::segment::{
    prepare_spare, seal_frame, SegmentWriter, FRAME_COMMIT, FRAME_HEADER_LEN, ROLLOVER_FRAME_LEN,
    SEGMENT_V2_HEADER_LEN,
};

/// The end of the log, owned by the committer.
pub(super) struct LogWriter {
    /// The segment frames go into; `None` after a failed write (or when no
    /// segment could be made yet).
    current: Option<SegmentWriter>,
    /// The newest segment when `current` is `None`: its number and where
    /// its data ends, which the next segment's header names.
    tail: Option<(u64, u64)>,
    /// The number the first segment gets when there is none.
    first: u64,
}

impl LogWriter {
    pub fn new(current: Option<SegmentWriter>, tail: Option<(u64, u64)>, first: u64) -> Self {
        LogWriter {
            current,
            tail,
            first,
        }
    }

    /// The number of the newest segment and where its data ends.
    fn newest(&self) -> Option<(u64, u64)> {
        match &self.current {
            Some(writer) => Some((writer.sequence(), writer.len())),
            None => self.tail,
        }
    }

    /// Gives up the current segment after a failed write or sync: nothing
    /// more is written to it, not even a ROLLOVER frame; the next segment's
    /// header says where its acknowledged data ends.
    fn abandon(&mut self, shared: &Shared, error: &StorageError) {
        if let Some(writer) = self.current.take() {
            warn!(
                segment = %writer.path().display(),
                data_end = writer.len(),
                "a log write or sync failed ({error}); abandoning the segment, the next write goes into a new one"
            );
            self.tail = Some((writer.sequence(), writer.len()));
            shared.state_mut().stats.segments_abandoned += 1;
        }
    }

    /// Moves the log on to a new segment of at least `min_capacity` bytes,
    /// made from a spare; ends the old one with a ROLLOVER frame naming it.
    /// Returns the new segment's number.
    pub fn roll_over(&mut self, shared: &Shared, min_capacity: u64) -> Result<u64, StorageError> {
        let (sequence, previous_end) = match self.newest() {
            Some((sequence, end)) => (sequence + 1, end),
            None => (self.first, 0),
        };
        let spare = take_spare(shared, min_capacity)?;
        let vfs = &*shared.vfs;
        let path = shared.layout.segment(sequence);
        let next =
            match SegmentWriter::from_spare(vfs, &spare, path.clone(), sequence, previous_end) {
                Ok(next) => next,
                Err(e) => {
                    // Neither name may be left half made; a later attempt makes
                    // the same segment again from a new spare.
                    let _ = remove_file(vfs, &spare);
                    let _ = remove_file(vfs, &path);
                    return Err(e);
                }
            };
        if let Some(mut old) = self.current.take() {
            // The forward link that lets a lost newest segment be noticed.
            // Without it the log is still whole (the new header names where
            // the old data ends); the next start writes it.
            if let Err(e) = old.end_with_rollover(sequence) {
                warn!(
                    "could not end {} with a rollover record: {e}",
                    old.path().display()
                );
            }
        }
        self.current = Some(next);
        self.tail = None;
        Ok(sequence)
    }

    /// At a graceful stop: an empty newest segment need not keep its
    /// megabytes of zeros on disk until the next start.
    fn trim_empty(&mut self) {
        if let Some(writer) = self.current.as_mut() {
            if let Err(e) = writer.trim_empty() {
                warn!("could not trim the empty newest log segment: {e}");
            }
        }
    }

    /// The current segment if it holds no frame yet and may take some: a
    /// checkpoint can retire everything before it without a new segment.
    fn empty_segment(&self) -> Option<u64> {
        self.current
            .as_ref()
            .filter(|w| w.is_empty() && !w.retired)
            .map(|w| w.sequence())
    }

    /// The segment the next frame of `frame_len` bytes goes into, moving
    /// the log on first when it does not fit.
    fn room_for(
        &mut self,
        shared: &Shared,
        frame_len: u64,
    ) -> Result<&mut SegmentWriter, StorageError> {
        if !self.current.as_ref().is_some_and(|w| w.fits(frame_len)) {
            let needed = SEGMENT_V2_HEADER_LEN as u64 + frame_len + ROLLOVER_FRAME_LEN;
            self.roll_over(shared, needed)?;
        }
        Ok(self.current.as_mut().expect("made room"))
    }
}

/// The spare segment the preparer keeps ready.
#[derive(Default)]
pub(super) struct Spares {
    slot: Mutex<SpareSlot>,
    changed: Condvar,
}

#[derive(Default)]
struct SpareSlot {
    /// A prepared spare and its size.
    ready: Option<(PathBuf, u64)>,
    /// Why the last attempt to prepare one failed (cleared by a success).
    failure: Option<StorageError>,
    /// Spares made by this process so far: names the next one.
    made: u64,
    /// When a committer last made a spare itself while the preparer was
    /// failing.
    inline_attempt: Option<Instant>,
    closed: bool,
}

impl Spares {
    fn slot(&self) -> MutexGuard<'_, SpareSlot> {
        self.slot.lock().expect("spare lock poisoned")
    }

    pub fn close(&self) {
        self.slot().closed = true;
        self.changed.notify_all();
    }

    fn next_name(&self, shared: &Shared) -> PathBuf {
        let mut slot = self.slot();
        slot.made += 1;
        shared.layout.spare(slot.made)
    }
}

/// How often a write may try to make a spare itself while the preparer's
/// attempts fail (a full disk).
const INLINE_RETRY: Duration = Duration::from_millis(200);

/// The smallest segment: a header and the room for its ROLLOVER frame.
const MIN_SEGMENT_BYTES: u64 = SEGMENT_V2_HEADER_LEN as u64 + ROLLOVER_FRAME_LEN;

/// Makes a spare of `len` bytes on the calling thread.
fn make_spare(shared: &Shared, len: u64) -> Result<PathBuf, StorageError> {
    let path = shared.spares.next_name(shared);
    match prepare_spare(&*shared.vfs, &path, len) {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = remove_file(&*shared.vfs, &path);
            Err(e)
        }
    }
}

/// A spare of at least `min_len` bytes: the preparer's, or one made here
/// when it cannot serve (inline mode, an oversized frame, closing). Fails
/// at once while the preparer is failing: a full disk refuses writes
/// instead of stalling them.
fn take_spare(shared: &Shared, min_len: u64) -> Result<PathBuf, StorageError> {
    let standard = shared.options.segment_bytes.max(min_len);
    if shared.options.inline_background {
        return make_spare(shared, standard);
    }
    let spares = &shared.spares;
    let mut slot = spares.slot();
    loop {
        if let Some((path, len)) = slot.ready.take() {
            if len >= min_len {
                drop(slot);
                spares.changed.notify_all();
                return Ok(path);
            }
            slot.ready = Some((path, len));
            drop(slot);
            return make_spare(shared, min_len);
        }
        if let Some(failure) = &slot.failure {
            // The preparer retries every second; a write that comes in
            // between tries once itself (at most every INLINE_RETRY), so
            // writes resume as soon as space is back, while a disk that is
            // still full refuses at once instead of stalling the write.
            let due = slot
                .inline_attempt
                .is_none_or(|at| at.elapsed() >= INLINE_RETRY);
            if !due {
                return Err(failure.clone());
            }
            slot.inline_attempt = Some(Instant::now());
            drop(slot);
            let made = make_spare(shared, standard);
            let mut slot = spares.slot();
            match &made {
                Ok(_) => slot.failure = None,
                Err(e) => slot.failure = Some(e.clone()),
            }
            return made;
        }
        if slot.closed {
            // Closing: this segment only marks where the last checkpoint's
            // log ends and will be trimmed; no need to zero-fill megabytes.
            drop(slot);
            return make_spare(shared, min_len.max(MIN_SEGMENT_BYTES));
        }
        slot = spares
            .changed
            .wait_timeout(slot, Duration::from_millis(100))
            .expect("spare lock poisoned")
            .0;
    }
}

/// Keeps one zero-filled spare segment ready, so moving the log on never
/// waits for the zero-fill. A failure (a full disk) is published for the
/// committer and retried every second.
pub(super) fn preparer_loop(shared: &Shared) {
    let spares = &shared.spares;
    loop {
        {
            let mut slot = spares.slot();
            while slot.ready.is_some() && !slot.closed {
                slot = spares.changed.wait(slot).expect("spare lock poisoned");
            }
            if slot.closed {
                if let Some((unused, _)) = slot.ready.take() {
                    let _ = remove_file(&*shared.vfs, &unused);
                }
                return;
            }
        }
        let len = shared.options.segment_bytes;
        match make_spare(shared, len) {
            Ok(path) => {
                let mut slot = spares.slot();
                if slot.failure.take().is_some() {
                    info!("a spare log segment could be prepared again; writes resume");
                    // The next write will land: stop reporting refusals.
                    shared.state_mut().stats.refusing_writes = None;
                }
                if slot.closed {
                    let _ = remove_file(&*shared.vfs, &path);
                    return;
                }
                slot.ready = Some((path, len));
                drop(slot);
                spares.changed.notify_all();
            }
            Err(e) => {
                let mut slot = spares.slot();
                if slot.failure.is_none() {
                    warn!("could not prepare a spare log segment, retrying every second: {e}");
                }
                slot.failure = Some(e);
                spares.changed.notify_all();
                let _ = spares.changed.wait_timeout(slot, Duration::from_secs(1));
            }
        }
    }
}

/// How long the committer waits before retrying a checkpoint that could not
/// start or failed: doubling from 1 s up to a minute.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

pub(super) fn committer_loop(shared: &Shared, mut log: LogWriter, replayed: bool) {
    let mut bytes_since_freeze = 0u64;
    let mut spans_since_freeze = 0u64;
    let mut buffer = Vec::new();
    // Writes replayed at start-up live only in old segments: checkpoint
    // them straight away so the next start need not replay them.
    let mut retry_at = replayed.then(Instant::now);
    let mut retry_delay = RETRY_FIRST;
    loop {
        let (batch, waiters, closing) = {
            let mut queue = shared.queue();
            loop {
                if !queue.pending.is_empty() || !queue.checkpoint_waiters.is_empty() || queue.closed
                {
                    break;
                }
                match shared.checkpoint.take_outcome() {
                    Some(true) => retry_delay = RETRY_FIRST,
                    Some(false) => {
                        retry_at = Some(Instant::now() + retry_delay);
                        retry_delay = (retry_delay * 2).min(RETRY_MAX);
                    }
                    None => {}
                }
                if retry_at.is_some_and(|at| at <= Instant::now()) {
                    break;
                }
                queue = shared
                    .queue_ready
                    .wait_timeout(queue, Duration::from_millis(500))
                    .expect("commit queue lock poisoned")
                    .0;
            }
            (
                std::mem::take(&mut queue.pending),
                std::mem::take(&mut queue.checkpoint_waiters),
                queue.closed,
            )
        };
        if !batch.is_empty() {
            spans_since_freeze += batch.iter().map(|p| p.spans.len() as u64).sum::<u64>();
            bytes_since_freeze += commit_batch(shared, &mut log, batch, &mut buffer);
        }
        let due = bytes_since_freeze >= shared.options.checkpoint_log_bytes
            || spans_since_freeze >= shared.options.checkpoint_memtable_spans
            || retry_at.is_some_and(|at| at <= Instant::now());
        if due || !waiters.is_empty() || closing {
            match freeze(shared, &mut log, waiters) {
                Ok(()) => {
                    bytes_since_freeze = 0;
                    spans_since_freeze = 0;
                    retry_at = None;
                }
                Err(e) => {
                    warn!(
                        "could not start a checkpoint (the log keeps every write); retrying in {retry_delay:?}: {e}"
                    );
                    retry_at = Some(Instant::now() + retry_delay);
                    retry_delay = (retry_delay * 2).min(RETRY_MAX);
                }
            }
        }
        if closing {
            checkpoint::stop(shared);
            log.trim_empty();
            return;
        }
    }
}

/// A new directory's first segment, then its MANIFEST (in that order: a
/// MANIFEST promises that the log's first segment exists). Either may wait
/// for the first write (a full disk), and a checkpoint writes the MANIFEST
/// too.
pub(super) fn start_log(shared: &Shared, log: &mut LogWriter, needs_manifest: bool) {
    if log.newest().is_none() {
        if let Err(e) = log.roll_over(shared, 0) {
            warn!("could not create the first log segment; the first write tries again: {e}");
            return;
        }
    }
    if needs_manifest {
        let bytes = shared.state().manifest.encode();
        if let Err(e) = Manifest::store_bytes(&*shared.vfs, &shared.layout.manifest(), &bytes) {
            warn!("could not write the directory's first MANIFEST; the first checkpoint does: {e}");
        }
    }
}

/// Writes, syncs and applies the queued batches, one group commit per
/// frame; returns the bytes logged.
fn commit_batch(
    shared: &Shared,
    log: &mut LogWriter,
    batch: Vec<Pending>,
    buffer: &mut Vec<u8>,
) -> u64 {
    // A group fits a standard segment, so one large batch does not need a
    // spare of its own; a single larger record still gets one.
    let group_limit = (shared.options.segment_bytes / 2).max(1) as usize;
    let mut written = 0;
    let mut rest = batch.into_iter().peekable();
    while rest.peek().is_some() {
        let mut group = Vec::new();
        let mut group_bytes = 0;
        while let Some(next) = rest.peek() {
            if !group.is_empty() && group_bytes + next.record.len() > group_limit {
                break;
            }
            group_bytes += next.record.len();
            group.extend(rest.next());
        }
        match commit_group(shared, log, &group, buffer) {
            Ok(frame_len) => {
                written += frame_len;
                apply(shared, group, frame_len);
            }
            Err(e) => {
                let refused: Vec<Pending> = group.into_iter().chain(rest).collect();
                {
                    let mut state = shared.state_mut();
                    let stats = &mut state.stats;
                    if e.is_disk_full() {
                        stats.writes_refused_disk_full += refused.len() as u64;
                    } else {
                        stats.writes_refused_io_error += refused.len() as u64;
                    }
                    if stats.refusing_writes.is_none() {
                        warn!("refusing writes: {e}");
                    }
                    stats.refusing_writes = Some(if e.is_disk_full() {
                        "the disk is full: writes are refused until space is freed".to_owned()
                    } else {
                        format!("log writes are failing: {e}")
                    });
                }
                for pending in refused {
                    (pending.done)(Err(e.clone()));
                }
                break;
            }
        }
    }
    written
}

/// Writes one group as one COMMIT frame and syncs it.
fn commit_group(
    shared: &Shared,
    log: &mut LogWriter,
    group: &[Pending],
    buffer: &mut Vec<u8>,
) -> Result<u64, StorageError> {
    let frame_len = FRAME_HEADER_LEN + group.iter().map(|p| p.record.len()).sum::<usize>();
    let writer = log.room_for(shared, frame_len as u64)?;
    buffer.clear();
    buffer.resize(FRAME_HEADER_LEN, 0);
    for pending in group {
        buffer.extend_from_slice(&pending.record);
    }
    seal_frame(buffer, FRAME_COMMIT, writer.frame_key());
    if let Err(e) = writer.append(buffer) {
        log.abandon(shared, &e);
        return Err(e);
    }
    Ok(frame_len as u64)
}

/// Applies a durable group to the memtable and the index, then
/// acknowledges it.
fn apply(shared: &Shared, group: Vec<Pending>, frame_len: u64) {
    let mut callbacks = Vec::with_capacity(group.len());
    {
        let mut state = shared.state_mut();
        for pending in group {
            state.apply_write(pending.ship, &pending.spans, pending.fresh.as_ref());
            state.stats.writes += 1;
            state.stats.spans_written += pending.spans.len() as u64;
            callbacks.push(pending.done);
        }
        state.stats.fsyncs += 1;
        state.stats.log_bytes_written += frame_len;
        if state.stats.refusing_writes.take().is_some() {
            info!("writes are taken again");
        }
    }
    for done in callbacks {
        done(Ok(()));
    }
}

/// Moves the log on and hands the active memtable (and any frozen one a
/// failed checkpoint left) to a checkpoint. Waits first for a running
/// checkpoint: that is the engine's backpressure.
fn freeze(
    shared: &Shared,
    log: &mut LogWriter,
    waiters: Vec<CheckpointWaiter>,
) -> Result<(), StorageError> {
    checkpoint::wait_idle(shared);
    let nothing_new = {
        let state = shared.state();
        state.active.is_empty() && state.frozen.is_none()
    };
    if nothing_new {
        for waiter in waiters {
            let _ = waiter.send(Ok(()));
        }
        return Ok(());
    }
    // Everything before the boundary segment is what the memtables hold.
    let boundary = match log.empty_segment() {
        Some(sequence) => Ok(sequence),
        None => log.roll_over(shared, 0),
    };
    let first_live_segment = match boundary {
        Ok(sequence) => sequence,
        Err(e) => {
            for waiter in waiters {
                let _ = waiter.send(Err(e.clone()));
            }
            return Err(e);
        }
    };
    let rollup;
    {
        let mut state = shared.state_mut();
        let active = std::mem::take(&mut state.active);
        // A frozen memtable still here means the last checkpoint failed: its
        // writes are still only in the log, so fold them into this one.
        let frozen = match state.frozen.take() {
            None => active,
            Some(previous) => {
                let mut merged = (*previous).clone();
                for (ship, timeline) in active {
                    merged
                        .entry(ship)
                        .or_default()
                        .overwrite_all(timeline.as_slice());
                }
                merged
            }
        };
        state.frozen = Some(Arc::new(frozen));
        rollup = state.rollup.clone();
    }
    checkpoint::start(
        shared,
        CheckpointJob {
            first_live_segment,
            waiters,
            rollup,
        },
    );
    Ok(())
}
