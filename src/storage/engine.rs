//! The engine proper: group commit into the segment log, the memtable, the
//! read path over blocks + memtable, checkpoints and recovery.
//!
//! Threads and who owns what:
//! - callers of [`Engine::submit`] encode their own log frame (CPU work off
//!   the commit path) and queue it;
//! - the *committer* thread takes everything queued, writes it with one
//!   `write` and one `fdatasync` (group commit), applies it to the active
//!   memtable, then runs the callbacks — so a write is visible exactly when
//!   it is acknowledged, and never before it is durable;
//! - when enough log has accumulated, the committer starts a new segment and
//!   *freezes* the active memtable (`frozen`); the *checkpointer* thread folds
//!   it into a new block file, writes the manifest, swaps the read view, and
//!   deletes the log segments and block files no longer needed.
//!
//! Reads layer, oldest to newest: block chunks, the frozen memtable, the
//! active memtable.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use tracing::{info, warn};

use super::block::{
    list_blocks, partition_of, partition_start, BlockBuilder, BlockFile, ChunkLocation,
    CHUNK_HEADER_LEN, MAX_SPANS_PER_CHUNK, PARTITION_BUCKETS,
};
use super::codec::{decode_spans_window, validate_spans, Reader};
use super::error::StorageError;
use super::manifest::Manifest;
use super::record::{decode_record, encode_write, KIND_WRITE};
use super::rollup::{BucketChanges, FleetInterval, Rollup};
use super::rollup_file;
use super::segment::{
    append_frame, list_segments, prepare_spare, scan_segment, segment_path, ScanEnd, SegmentWriter,
    SPARE_SUFFIX,
};
use super::timeline::{overlay_spans, Timeline};
use crate::model::{
    bucket_of, quantise, spans_to_buckets, Bucket, NanoKwh, ShipId, Span, BUCKET_SECONDS,
};

/// Called once a write is durable and visible (or has failed).
pub type CommitCallback = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

pub const LOG_DIR: &str = "log";
pub const BLOCK_DIR: &str = "blocks";
pub const LOCK_FILE: &str = "LOCK";

#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// A checkpoint starts once this much log has been written since the
    /// previous one. Bounds replay time.
    pub checkpoint_log_bytes: u64,
    /// ... or once this many spans have been written since the previous
    /// one. Bounds memtable memory (24 bytes a span), which the compact log
    /// alone would not: a span costs about 2 bytes of log.
    pub checkpoint_memtable_spans: u64,
    /// Blocks whose live chunks fill less than this fraction of the file are
    /// rewritten by the next checkpoint.
    pub compact_below_live_fraction: f64,
    /// Size of the zero-filled spare segments the log moves into. Appends
    /// inside preallocated space make `fdatasync` flush data only, no
    /// metadata: several times cheaper per commit.
    pub segment_bytes: u64,
    /// Keep the rollup index (fleet and per-ship totals) up to date on
    /// every write. Off only to measure what it costs: fleet questions then
    /// fall back to scanning every ship.
    pub rollup_index: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            checkpoint_log_bytes: 32 << 20,
            checkpoint_memtable_spans: 4 << 20,
            compact_below_live_fraction: 0.5,
            segment_bytes: 8 << 20,
            rollup_index: true,
        }
    }
}

/// Upper bounds, in milliseconds, of the checkpoint duration histogram
/// ([`EngineStats::checkpoint_duration_counts`]).
pub const CHECKPOINT_DURATION_BOUNDS_MS: [u64; 12] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];

/// Counters for operators and benchmarks.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    pub ships: usize,
    pub log_bytes_written: u64,
    pub fsyncs: u64,
    /// Batches committed (one per `submit`).
    pub writes: u64,
    /// Spans in the committed batches.
    pub spans_written: u64,
    pub checkpoints: u64,
    /// Checkpoints that failed (the log is kept; the next one retries).
    pub checkpoint_failures: u64,
    pub last_checkpoint_ms: u64,
    /// Successful checkpoints by duration: entry `i` counts those that
    /// took at most `CHECKPOINT_DURATION_BOUNDS_MS[i]` and more than the
    /// bound before (not cumulative); the last entry counts longer ones.
    pub checkpoint_duration_counts: [u64; CHECKPOINT_DURATION_BOUNDS_MS.len() + 1],
    /// The successful checkpoints' durations added up, in microseconds.
    pub checkpoint_micros_total: u64,
    pub block_files: usize,
    pub chunks: usize,
    /// Size of the rollup index file the last checkpoint wrote.
    pub rollup_file_bytes: u64,
    /// Whether the rollup index answers fleet questions (false when turned
    /// off, or after a block read failed while updating it).
    pub rollup_index: bool,
}

struct Pending {
    ship: ShipId,
    spans: Vec<Span>,
    frame: Vec<u8>,
    /// The batch's rollup change if the ship has no data where it writes
    /// (the usual append), computed by the caller off the commit path.
    fresh: Option<BucketChanges>,
    done: CommitCallback,
}

#[derive(Default)]
struct CommitQueue {
    pending: Vec<Pending>,
    /// Callers of [`Engine::checkpoint`] waiting for the next one to finish.
    checkpoint_waiters: Vec<std::sync::mpsc::Sender<Result<(), String>>>,
    closed: bool,
}

/// A chunk as the read path sees it.
#[derive(Clone)]
struct ChunkRef {
    block: Arc<BlockFile>,
    location: ChunkLocation,
}

/// Everything readers look at, behind one lock.
struct State {
    /// Writes since the last freeze.
    active: HashMap<ShipId, Timeline>,
    /// Writes being folded into blocks by the running checkpoint.
    frozen: Option<Arc<HashMap<ShipId, Timeline>>>,
    /// Durable chunks: ship → partition → chunk.
    chunks: HashMap<ShipId, BTreeMap<i64, ChunkRef>>,
    manifest: Manifest,
    blocks: HashMap<u64, Arc<BlockFile>>,
    /// Set when a log write or sync failed: the log can no longer be
    /// trusted, so every later write is refused.
    failed: Option<String>,
    stats: EngineStats,
    /// The rollup index of everything above (blocks, frozen, active).
    rollup: Option<Rollup>,
}

impl State {
    fn knows(&self, ship: ShipId) -> bool {
        self.chunks.contains_key(&ship)
            || self.active.contains_key(&ship)
            || self.frozen.as_ref().is_some_and(|f| f.contains_key(&ship))
    }

    /// Sets `out` to the spans of `ship` that intersect `[start_s, end_s)`
    /// (not clipped), sorted and disjoint: blocks, then the frozen and
    /// active memtables laid over them.
    fn spans_into(
        &self,
        ship: ShipId,
        start_s: i64,
        end_s: i64,
        out: &mut Vec<Span>,
    ) -> Result<(), StorageError> {
        let mut base = std::mem::take(out);
        base.clear();
        if let Some(partitions) = self.chunks.get(&ship) {
            if start_s < end_s {
                for (&partition, chunk) in
                    partitions.range(partition_of(start_s)..=partition_of(end_s - 1))
                {
                    read_chunk_window(chunk, partition, start_s, end_s, &mut base)?;
                }
            }
        }
        let layers = [
            self.frozen.as_ref().and_then(|f| f.get(&ship)),
            self.active.get(&ship),
        ];
        for timeline in layers.into_iter().flatten() {
            let mut overlay = Vec::new();
            timeline.spans_in(start_s, end_s, &mut overlay);
            if !overlay.is_empty() {
                let mut merged = Vec::with_capacity(base.len() + overlay.len());
                overlay_spans(&base, &overlay, &mut merged);
                base = merged;
            }
        }
        *out = base;
        Ok(())
    }

    /// Applies one durable batch: the rollup index first (it needs the
    /// buckets as they were), then the active memtable. `fresh` is the
    /// batch's change if the ship turns out to have no data where it writes.
    fn apply_write(&mut self, ship: ShipId, spans: &[Span], fresh: Option<&BucketChanges>) {
        if let (Some(rollup), Some(first), Some(last)) =
            (&mut self.rollup, spans.first(), spans.last())
        {
            let (from, to) = (bucket_of(first.start_s), bucket_of(last.end_s - 1) + 1);
            if let Some(fresh) = fresh.filter(|_| !rollup.may_have_data(ship, from, to)) {
                rollup.apply(ship, fresh);
                self.active.entry(ship).or_default().overwrite_all(spans);
                return;
            }
        }
        if self.rollup.is_some() {
            match self.rollup_change(ship, spans) {
                Ok(changes) => {
                    if let Some(rollup) = &mut self.rollup {
                        rollup.apply(ship, &changes);
                    }
                }
                Err(e) => {
                    tracing::error!(
                        "could not read ship {ship}'s stored data to update the rollup index, \
                         so fleet questions fall back to scanning every ship until a restart \
                         rebuilds it: {e}"
                    );
                    self.rollup = None;
                }
            }
        }
        self.active.entry(ship).or_default().overwrite_all(spans);
    }

    /// The buckets a batch touches, before and after it.
    ///
    /// Both come from the ship's spans through [`spans_to_buckets`], the
    /// one function every rollup value is computed with, so what this write
    /// adds a later overwrite subtracts to the last nano-kWh. Buckets the
    /// batch touches are grouped into runs, so a batch with far-apart
    /// readings does not read the history between them.
    fn rollup_change(&self, ship: ShipId, spans: &[Span]) -> Result<BucketChanges, StorageError> {
        let rollup = self.rollup.as_ref().expect("called with an index");
        let mut old_buckets = Vec::new();
        let mut new_buckets = Vec::with_capacity(spans.len());
        let mut old = Vec::new();
        let mut merged = Vec::new();
        let mut from = 0;
        while from < spans.len() {
            let first = bucket_of(spans[from].start_s);
            let mut end = bucket_of(spans[from].end_s - 1) + 1;
            let mut to = from + 1;
            while to < spans.len() && bucket_of(spans[to].start_s) <= end {
                end = end.max(bucket_of(spans[to].end_s - 1) + 1);
                to += 1;
            }
            old.clear();
            // Past the end of the ship's history (the usual append) there
            // is nothing to replace and nothing to read.
            if rollup.may_have_data(ship, first, end) {
                self.spans_into(
                    ship,
                    first.saturating_mul(BUCKET_SECONDS),
                    end.saturating_mul(BUCKET_SECONDS),
                    &mut old,
                )?;
                spans_to_buckets(&old, first, end, &mut old_buckets);
            }
            merged.clear();
            overlay_spans(&old, &spans[from..to], &mut merged);
            spans_to_buckets(&merged, first, end, &mut new_buckets);
            from = to;
        }
        Ok(BucketChanges::between(&old_buckets, &new_buckets))
    }

    /// The ship's energy in buckets `[first, end)`, in the rollup's units.
    fn energy(&self, ship: ShipId, first: i64, end: i64) -> Result<NanoKwh, StorageError> {
        let mut spans = Vec::new();
        self.spans_into(
            ship,
            first.saturating_mul(BUCKET_SECONDS),
            end.saturating_mul(BUCKET_SECONDS),
            &mut spans,
        )?;
        let mut buckets = Vec::new();
        spans_to_buckets(&spans, first, end, &mut buckets);
        Ok(buckets.iter().fold(0, |sum: NanoKwh, b| {
            sum.wrapping_add(quantise(b.energy_kwh))
        }))
    }
}

#[derive(Default)]
struct SpareSlot {
    ready: Option<PathBuf>,
    closed: bool,
}

struct CheckpointJob {
    first_live_segment: u64,
    waiters: Vec<std::sync::mpsc::Sender<Result<(), String>>>,
    /// The rollup index as of the freeze: exactly the blocks plus the
    /// frozen memtable, i.e. what the blocks will hold once this is done.
    rollup: Option<Rollup>,
}

struct Shared {
    dir: PathBuf,
    log_dir: PathBuf,
    block_dir: PathBuf,
    options: EngineOptions,
    state: RwLock<State>,
    queue: Mutex<CommitQueue>,
    queue_ready: Condvar,
    /// The checkpointer's inbox; `None` inside means idle.
    checkpoint: Mutex<Option<CheckpointJob>>,
    checkpoint_changed: Condvar,
    /// The next log segment, zero-filled ahead of time by the preparer.
    spare: Mutex<SpareSlot>,
    spare_changed: Condvar,
    /// Held for the engine's lifetime: one powerd per data directory.
    _lock: File,
}

/// Locks, named. A poisoned lock means a thread panicked while holding it;
/// the state it guards can no longer be trusted, so these panic too.
impl Shared {
    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().expect("engine state lock poisoned")
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().expect("engine state lock poisoned")
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, CommitQueue> {
        self.queue.lock().expect("commit queue lock poisoned")
    }

    fn checkpoint_slot(&self) -> std::sync::MutexGuard<'_, Option<CheckpointJob>> {
        self.checkpoint.lock().expect("checkpoint lock poisoned")
    }

    fn spare_slot(&self) -> std::sync::MutexGuard<'_, SpareSlot> {
        self.spare.lock().expect("spare lock poisoned")
    }
}

/// The engine. Every method takes `&self`; share it behind an `Arc`.
pub struct Engine {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    /// Opens (or creates) the data directory, recovers, and starts the
    /// committer and checkpointer threads.
    pub fn open(dir: &Path, options: EngineOptions) -> Result<Engine, StorageError> {
        let started = Instant::now();
        let log_dir = dir.join(LOG_DIR);
        let block_dir = dir.join(BLOCK_DIR);
        for d in [dir, &log_dir, &block_dir] {
            std::fs::create_dir_all(d).map_err(|e| StorageError::io(d, "create directory", e))?;
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StorageError::io(&lock_path, "open", e))?;
        lock_directory(&lock, &lock_path, dir)?;

        let manifest = Manifest::load(dir)?.unwrap_or(Manifest {
            first_live_segment: 1,
            next_block_id: 1,
            chunks: BTreeMap::new(),
        });
        let (blocks, chunks) = open_blocks(&block_dir, &manifest)?;
        let stats = EngineStats {
            block_files: blocks.len(),
            chunks: manifest.chunks.len(),
            ..EngineStats::default()
        };
        let mut state = State {
            active: HashMap::new(),
            frozen: None,
            chunks,
            manifest,
            blocks,
            failed: None,
            stats,
            rollup: None,
        };
        if options.rollup_index {
            state.rollup = Some(load_rollup(dir, &state)?);
        }
        let first_live = state.manifest.first_live_segment;
        let replay = replay_log(&log_dir, first_live, |ship, spans| {
            state.apply_write(ship, spans, None)
        })?;
        remove_stale_files(&log_dir, &block_dir, &state.manifest)?;

        let next_segment = replay
            .last_segment
            .map_or(first_live, |s| s + 1)
            .max(first_live);
        let writer = SegmentWriter::create(&log_dir, next_segment)?;
        let replayed_ships = state.active.len();
        // Whatever was replayed lives only in old segments: hand it to the
        // checkpointer straight away so the next restart need not replay it.
        let first_job = if state.active.is_empty() {
            None
        } else {
            state.frozen = Some(Arc::new(std::mem::take(&mut state.active)));
            Some(CheckpointJob {
                first_live_segment: next_segment,
                waiters: Vec::new(),
                rollup: state.rollup.clone(),
            })
        };
        state.stats.ships = count_ships(&state);
        info!(
            dir = %dir.display(),
            ships = state.stats.ships,
            block_files = state.blocks.len(),
            replayed_records = replay.records,
            replayed_ships,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "storage engine opened"
        );

        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            log_dir,
            block_dir,
            options,
            state: RwLock::new(state),
            queue: Mutex::new(CommitQueue::default()),
            queue_ready: Condvar::new(),
            checkpoint: Mutex::new(first_job),
            checkpoint_changed: Condvar::new(),
            spare: Mutex::new(SpareSlot::default()),
            spare_changed: Condvar::new(),
            _lock: lock,
        });
        let spawn = |name: &str, body: Box<dyn FnOnce(&Shared) + Send>| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || body(&shared))
                .map_err(|e| StorageError::io(dir, "spawn a thread", e))
        };
        let committer = spawn(
            "powerd-commit",
            Box::new(move |shared| committer_loop(shared, writer)),
        )?;
        let checkpointer = spawn("powerd-checkpoint", Box::new(checkpointer_loop))?;
        let preparer = spawn("powerd-prealloc", Box::new(preparer_loop))?;
        Ok(Engine {
            shared,
            threads: Mutex::new(vec![committer, checkpointer, preparer]),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Queues one batch (one POST) for `ship`. The spans must be sorted,
    /// disjoint, non-empty and of finite non-negative power. `done` runs
    /// after the batch is durable and visible to reads, or with the error
    /// that prevented it; a batch is applied whole or not at all.
    pub fn submit(&self, ship: ShipId, spans: Vec<Span>, done: CommitCallback) {
        if let Err(e) = validate_spans(&spans) {
            done(Err(StorageError::InvalidBatch(e.0)));
            return;
        }
        let mut frame = Vec::with_capacity(64 + spans.len() * 2);
        append_frame(&mut frame, KIND_WRITE, |out| {
            encode_write(ship, &spans, out)
        });
        let fresh = self
            .shared
            .options
            .rollup_index
            .then(|| BucketChanges::fresh(&spans));
        let mut queue = self.shared.queue();
        if queue.closed {
            drop(queue);
            done(Err(StorageError::Closed));
            return;
        }
        queue.pending.push(Pending {
            ship,
            spans,
            frame,
            fresh,
            done,
        });
        drop(queue);
        self.shared.queue_ready.notify_one();
    }

    /// [`Engine::submit`], blocking until the batch is durable.
    pub fn write(&self, ship: ShipId, spans: Vec<Span>) -> Result<(), StorageError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.submit(ship, spans, Box::new(move |r| drop(tx.send(r))));
        rx.recv().unwrap_or(Err(StorageError::Closed))
    }

    fn state(&self) -> RwLockReadGuard<'_, State> {
        self.shared.state()
    }

    pub fn ship_exists(&self, ship: ShipId) -> bool {
        self.state().knows(ship)
    }

    /// Every ship with stored data, ascending.
    pub fn ships(&self) -> Vec<ShipId> {
        let state = self.state();
        let mut ships: HashSet<ShipId> = state.chunks.keys().copied().collect();
        ships.extend(state.active.keys());
        if let Some(frozen) = &state.frozen {
            ships.extend(frozen.keys());
        }
        let mut ships: Vec<ShipId> = ships.into_iter().collect();
        ships.sort_unstable();
        ships
    }

    /// The spans of `ship` that intersect `[start_s, end_s)` (not clipped),
    /// sorted and disjoint; `None` for a ship never written.
    pub fn read_spans(
        &self,
        ship: ShipId,
        start_s: i64,
        end_s: i64,
    ) -> Result<Option<Vec<Span>>, StorageError> {
        let state = self.state();
        if !state.knows(ship) {
            return Ok(None);
        }
        let mut spans = Vec::with_capacity(512);
        state.spans_into(ship, start_s, end_s, &mut spans)?;
        Ok(Some(spans))
    }

    /// Stored buckets of `ship` in `[start_bucket, end_bucket)`, ascending;
    /// `Ok(None)` for a ship never written.
    pub fn read_buckets(
        &self,
        ship: ShipId,
        start_bucket: i64,
        end_bucket: i64,
    ) -> Result<Option<Vec<Bucket>>, StorageError> {
        let start_s = start_bucket.saturating_mul(BUCKET_SECONDS);
        let end_s = end_bucket.saturating_mul(BUCKET_SECONDS);
        let window = usize::try_from(end_bucket.saturating_sub(start_bucket)).unwrap_or(usize::MAX);
        {
            // Fast path: nothing in the memtables touches the window, so the
            // sealed chunks' bucket columns are the answer as they stand.
            let state = self.state();
            if !state.knows(ship) {
                return Ok(None);
            }
            let layers = [
                state.frozen.as_ref().and_then(|f| f.get(&ship)),
                state.active.get(&ship),
            ];
            if !layers
                .into_iter()
                .flatten()
                .any(|t| t.intersects(start_s, end_s))
            {
                let mut out = Vec::with_capacity(window.min(PARTITION_BUCKETS as usize));
                if let (Some(partitions), true) = (state.chunks.get(&ship), start_s < end_s) {
                    for (&partition, chunk) in
                        partitions.range(partition_of(start_s)..=partition_of(end_s - 1))
                    {
                        chunk.block.read_buckets(
                            &chunk.location,
                            partition,
                            start_bucket,
                            end_bucket,
                            &mut out,
                        )?;
                    }
                }
                return Ok(Some(out));
            }
        }
        let Some(spans) = self.read_spans(ship, start_s, end_s)? else {
            return Ok(None);
        };
        // Each span touches at least one bucket and usually few more.
        let mut out = Vec::with_capacity(window.min(spans.len().saturating_mul(4)));
        spans_to_buckets(&spans, start_bucket, end_bucket, &mut out);
        Ok(Some(out))
    }

    /// Runs a checkpoint now and waits for it: everything acknowledged so
    /// far moves into blocks and the log behind it is deleted.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let mut queue = self.shared.queue();
            if queue.closed {
                return Err(StorageError::Closed);
            }
            queue.checkpoint_waiters.push(tx);
        }
        self.shared.queue_ready.notify_one();
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StorageError::Failed(message)),
            Err(_) => Err(StorageError::Closed),
        }
    }

    pub fn stats(&self) -> EngineStats {
        let state = self.state();
        let mut stats = state.stats.clone();
        stats.ships = count_ships(&state);
        stats.block_files = state.blocks.len();
        stats.chunks = state.manifest.chunks.len();
        stats.rollup_index = state.rollup.is_some();
        stats
    }

    /// The fleet's energy per interval of `step` buckets over buckets
    /// `[first, end)` (see [`Rollup::fleet`]); `None` without an index.
    pub fn fleet(&self, first: i64, end: i64, step: i64) -> Option<Vec<FleetInterval>> {
        Some(self.state().rollup.as_ref()?.fleet(first, end, step))
    }

    /// First and end (exclusive) bucket of all stored data: `None` without
    /// an index, `Some(None)` when nothing is stored.
    pub fn stored_range(&self) -> Option<Option<(i64, i64)>> {
        Some(self.state().rollup.as_ref()?.stored_range())
    }

    /// The `count` ships with the most energy in buckets `[first, end)`,
    /// descending, ties by id (see [`Rollup::top_users`]); `Ok(None)`
    /// without an index.
    pub fn top_users(
        &self,
        first: i64,
        end: i64,
        count: usize,
    ) -> Result<Option<Vec<(ShipId, NanoKwh)>>, StorageError> {
        let state = self.state();
        let Some(rollup) = &state.rollup else {
            return Ok(None);
        };
        rollup
            .top_users(first, end, count, |ship, from, to| {
                state.energy(ship, from, to)
            })
            .map(Some)
    }

    /// Stops taking writes, commits what is queued, checkpoints, and stops
    /// the engine's threads. Later writes fail with [`StorageError::Closed`].
    pub fn close(&self) -> Result<(), StorageError> {
        {
            let mut queue = self.shared.queue();
            queue.closed = true;
        }
        self.shared.queue_ready.notify_all();
        {
            let mut spare = self.shared.spare_slot();
            spare.closed = true;
        }
        self.shared.spare_changed.notify_all();
        let threads: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.threads.lock().expect("thread list lock poisoned"));
        for thread in threads {
            let _ = thread.join();
        }
        match &self.state().failed {
            Some(message) => Err(StorageError::Failed(message.clone())),
            None => Ok(()),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn count_ships(state: &State) -> usize {
    let mut count = state.chunks.len();
    for ship in state.active.keys() {
        if !state.chunks.contains_key(ship) {
            count += 1;
        }
    }
    if let Some(frozen) = &state.frozen {
        for ship in frozen.keys() {
            if !state.chunks.contains_key(ship) && !state.active.contains_key(ship) {
                count += 1;
            }
        }
    }
    count
}

fn read_chunk_window(
    chunk: &ChunkRef,
    partition: i64,
    start_s: i64,
    end_s: i64,
    out: &mut Vec<Span>,
) -> Result<(), StorageError> {
    let bytes = chunk.block.chunk_bytes(&chunk.location)?;
    let payload = bytes.get(CHUNK_HEADER_LEN..).unwrap_or(&[]);
    decode_spans_window(
        &mut Reader::new(payload),
        partition_start(partition),
        MAX_SPANS_PER_CHUNK,
        start_s,
        end_s,
        out,
    )
    .map_err(|e| StorageError::corrupted(&chunk.block.path, chunk.location.offset, e.0))
}

/// Takes the directory's exclusive lock. A process forking a child holds a
/// copy of every descriptor until the child's `exec` closes it, flock
/// included, so a lock just released by another engine in this process can
/// look taken for a moment: retry briefly before calling it held.
fn lock_directory(lock: &File, lock_path: &Path, dir: &Path) -> Result<(), StorageError> {
    let deadline = Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StorageError::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StorageError::io(lock_path, "lock", e))
            }
        }
    }
}

/// Maps every block the manifest names and verifies each chunk it lists.
#[allow(clippy::type_complexity)]
fn open_blocks(
    block_dir: &Path,
    manifest: &Manifest,
) -> Result<
    (
        HashMap<u64, Arc<BlockFile>>,
        HashMap<ShipId, BTreeMap<i64, ChunkRef>>,
    ),
    StorageError,
> {
    let mut blocks: HashMap<u64, Arc<BlockFile>> = HashMap::new();
    let mut chunks: HashMap<ShipId, BTreeMap<i64, ChunkRef>> = HashMap::new();
    for (&(ship, partition), location) in &manifest.chunks {
        let block = match blocks.get(&location.block) {
            Some(block) => Arc::clone(block),
            None => {
                let block = Arc::new(BlockFile::open(block_dir, location.block)?);
                blocks.insert(location.block, Arc::clone(&block));
                block
            }
        };
        block.verify_chunk(location, ship, partition)?;
        chunks.entry(ship).or_default().insert(
            partition,
            ChunkRef {
                block,
                location: *location,
            },
        );
    }
    Ok((blocks, chunks))
}

/// The rollup index of what the blocks hold: the file the last checkpoint
/// wrote, or, when that cannot be used, one rebuilt from every chunk.
fn load_rollup(dir: &Path, state: &State) -> Result<Rollup, StorageError> {
    let started = Instant::now();
    let identity = state.manifest.identity();
    let reason = match rollup_file::load(dir, &identity) {
        Ok(rollup) => {
            info!(
                ships = rollup.ship_count(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "rollup index loaded"
            );
            return Ok(rollup);
        }
        Err(reason) => reason,
    };
    let mut rollup = Rollup::new();
    let mut spans = Vec::new();
    for (&ship, partitions) in &state.chunks {
        for (&partition, chunk) in partitions {
            spans.clear();
            read_chunk_window(chunk, partition, i64::MIN, i64::MAX, &mut spans)?;
            rollup.add_chunk_spans(ship, &spans);
        }
    }
    if state.chunks.is_empty() && reason == rollup_file::MISSING {
        // A new data directory: nothing to say.
        return Ok(rollup);
    }
    warn!(
        chunks = state.manifest.chunks.len(),
        ships = rollup.ship_count(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "the rollup index file cannot be used ({reason}); rebuilt the index from the blocks"
    );
    // Saved now: without writes no checkpoint would, and every start would
    // rebuild again.
    if let Err(e) = rollup_file::store(dir, &rollup, &identity) {
        warn!("could not save the rebuilt rollup index; the next start rebuilds it again: {e}");
    }
    Ok(rollup)
}

struct ReplaySummary {
    records: u64,
    /// The newest segment that holds a record.
    last_segment: Option<u64>,
}

/// Applies every record of the live segments to `active`, cutting a torn
/// tail of the newest segment back to its last whole frame.
fn replay_log(
    log_dir: &Path,
    first_live: u64,
    mut apply: impl FnMut(ShipId, &[Span]),
) -> Result<ReplaySummary, StorageError> {
    let segments: Vec<u64> = list_segments(log_dir)?
        .into_iter()
        .filter(|&s| s >= first_live)
        .collect();
    let mut records = 0u64;
    let mut empty: Vec<u64> = Vec::new();
    for (position, &sequence) in segments.iter().enumerate() {
        let expected = first_live + position as u64;
        if sequence != expected && position > 0 {
            return Err(StorageError::corrupted(
                segment_path(log_dir, expected),
                0,
                "log segment is missing: the log has a hole",
            ));
        }
        let path = segment_path(log_dir, sequence);
        let bytes = std::fs::read(&path).map_err(|e| StorageError::io(&path, "read", e))?;
        let newest = position + 1 == segments.len();
        let records_before = records;
        let end = scan_segment(&path, &bytes, sequence, newest, |offset, kind, payload| {
            let record = decode_record(&path, offset, kind, payload)?;
            apply(record.ship, &record.spans);
            records += 1;
            Ok(())
        })?;
        if records == records_before {
            empty.push(sequence);
        }
        if let ScanEnd::TornTail {
            valid_len,
            file_len,
            reason,
        } = end
        {
            warn!(
                segment = %path.display(),
                offset = valid_len,
                // Preallocated zeros are not data: count what was written.
                dropped_bytes = bytes.iter().rposition(|&b| b != 0).map_or(0, |last| last as u64 + 1).max(valid_len) - valid_len,
                file_len,
                reason = %reason,
                "torn tail in the newest log segment (a crash during a write that was never acknowledged); cutting it off"
            );
            let file = File::options()
                .write(true)
                .open(&path)
                .map_err(|e| StorageError::io(&path, "open", e))?;
            file.set_len(valid_len)
                .map_err(|e| StorageError::io(&path, "truncate", e))?;
            file.sync_all()
                .map_err(|e| StorageError::io(&path, "sync", e))?;
        }
    }
    // Segments after the last record hold nothing (a start without
    // writes creates one); removed, so restarts do not pile them up.
    let last_segment = segments.iter().rev().find(|s| !empty.contains(s)).copied();
    for &sequence in segments
        .iter()
        .rev()
        .take_while(|&&s| Some(s) > last_segment)
    {
        remove_file(&segment_path(log_dir, sequence))?;
    }
    Ok(ReplaySummary {
        records,
        last_segment,
    })
}

/// Deletes what a crash may have left behind: segments already folded into
/// blocks, blocks no manifest entry names, half-written temporary files.
fn remove_stale_files(
    log_dir: &Path,
    block_dir: &Path,
    manifest: &Manifest,
) -> Result<(), StorageError> {
    for sequence in list_segments(log_dir)? {
        if sequence < manifest.first_live_segment {
            remove_file(&segment_path(log_dir, sequence))?;
        }
    }
    for entry in std::fs::read_dir(log_dir).map_err(|e| StorageError::io(log_dir, "list", e))? {
        let path = entry
            .map_err(|e| StorageError::io(log_dir, "list", e))?
            .path();
        if path.to_str().is_some_and(|p| p.ends_with(SPARE_SUFFIX)) {
            remove_file(&path)?;
        }
    }
    let live: HashSet<u64> = manifest.chunks.values().map(|c| c.block).collect();
    for id in list_blocks(block_dir)? {
        if !live.contains(&id) {
            remove_file(&super::block::block_path(block_dir, id))?;
        }
    }
    Ok(())
}

fn remove_file(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, "remove", e)),
    }
}

fn committer_loop(shared: &Shared, mut writer: SegmentWriter) {
    let mut bytes_since_freeze = 0u64;
    let mut spans_since_freeze = 0u64;
    let mut buffer = Vec::new();
    loop {
        let (batch, waiters, closing) = {
            let mut queue = shared.queue();
            while queue.pending.is_empty() && queue.checkpoint_waiters.is_empty() && !queue.closed {
                queue = shared
                    .queue_ready
                    .wait(queue)
                    .expect("commit queue lock poisoned");
            }
            (
                std::mem::take(&mut queue.pending),
                std::mem::take(&mut queue.checkpoint_waiters),
                queue.closed,
            )
        };
        if !batch.is_empty() {
            spans_since_freeze += batch.iter().map(|p| p.spans.len() as u64).sum::<u64>();
            bytes_since_freeze += commit_batch(shared, &mut writer, batch, &mut buffer);
        }
        let due = bytes_since_freeze >= shared.options.checkpoint_log_bytes
            || spans_since_freeze >= shared.options.checkpoint_memtable_spans;
        if due || !waiters.is_empty() || closing {
            match freeze(shared, &mut writer, waiters) {
                Ok(()) => {
                    bytes_since_freeze = 0;
                    spans_since_freeze = 0;
                }
                Err(e) => fail(shared, &format!("could not start a new log segment: {e}")),
            }
        }
        if closing {
            wait_for_checkpoint(shared);
            let mut checkpoint = shared.checkpoint_slot();
            *checkpoint = Some(CheckpointJob {
                first_live_segment: u64::MAX,
                waiters: Vec::new(),
                rollup: None,
            });
            drop(checkpoint);
            shared.checkpoint_changed.notify_all();
            return;
        }
    }
}

/// Writes, syncs and applies one group of batches; returns the bytes logged.
fn commit_batch(
    shared: &Shared,
    writer: &mut SegmentWriter,
    batch: Vec<Pending>,
    buffer: &mut Vec<u8>,
) -> u64 {
    if let Some(message) = shared.state().failed.clone() {
        for pending in batch {
            (pending.done)(Err(StorageError::Failed(message.clone())));
        }
        return 0;
    }
    buffer.clear();
    for pending in &batch {
        buffer.extend_from_slice(&pending.frame);
    }
    let written = buffer.len() as u64;
    if !writer.fits_preallocated(written) {
        if let Some(spare) = take_spare(shared) {
            match SegmentWriter::from_spare(&shared.log_dir, &spare, writer.sequence() + 1) {
                Ok(next) => *writer = next,
                Err(e) => {
                    tracing::warn!("could not move the log into a spare segment, staying put: {e}")
                }
            }
        }
    }
    if let Err(e) = writer.append(buffer).and_then(|()| writer.sync()) {
        let message = format!("log write failed, refusing further writes: {e}");
        fail(shared, &message);
        for pending in batch {
            (pending.done)(Err(StorageError::Failed(message.clone())));
        }
        return 0;
    }
    let mut callbacks = Vec::with_capacity(batch.len());
    {
        let mut state = shared.state_mut();
        for pending in batch {
            state.apply_write(pending.ship, &pending.spans, pending.fresh.as_ref());
            state.stats.writes += 1;
            state.stats.spans_written += pending.spans.len() as u64;
            callbacks.push(pending.done);
        }
        state.stats.fsyncs += 1;
        state.stats.log_bytes_written += written;
    }
    for done in callbacks {
        done(Ok(()));
    }
    written
}

fn fail(shared: &Shared, message: &str) {
    tracing::error!("{message}");
    let mut state = shared.state_mut();
    state.failed.get_or_insert_with(|| message.to_string());
}

fn wait_for_checkpoint(shared: &Shared) {
    let mut checkpoint = shared.checkpoint_slot();
    while checkpoint.is_some() {
        checkpoint = shared
            .checkpoint_changed
            .wait(checkpoint)
            .expect("checkpoint lock poisoned");
    }
}

/// Starts a new segment and hands the active memtable to the checkpointer.
/// Waits first for a running checkpoint: that is the engine's backpressure.
fn freeze(
    shared: &Shared,
    writer: &mut SegmentWriter,
    waiters: Vec<std::sync::mpsc::Sender<Result<(), String>>>,
) -> Result<(), StorageError> {
    wait_for_checkpoint(shared);
    let nothing_new = shared.state().active.is_empty();
    if nothing_new && writer.is_empty() {
        for waiter in waiters {
            let _ = waiter.send(Ok(()));
        }
        return Ok(());
    }
    let next = match take_spare(shared) {
        Some(spare) => SegmentWriter::from_spare(&shared.log_dir, &spare, writer.sequence() + 1)?,
        None => SegmentWriter::create(&shared.log_dir, writer.sequence() + 1)?,
    };
    let first_live_segment = next.sequence();
    *writer = next;
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
    let mut checkpoint = shared.checkpoint_slot();
    *checkpoint = Some(CheckpointJob {
        first_live_segment,
        waiters,
        rollup,
    });
    drop(checkpoint);
    shared.checkpoint_changed.notify_all();
    Ok(())
}

/// The spare segment, if one is ready; the preparer starts the next one.
fn take_spare(shared: &Shared) -> Option<PathBuf> {
    let spare = shared.spare_slot().ready.take();
    shared.spare_changed.notify_all();
    spare
}

/// Keeps one zero-filled spare segment ready, so moving the log into
/// preallocated space never waits for the zero-fill.
fn preparer_loop(shared: &Shared) {
    let mut made = 0u64;
    loop {
        {
            let mut slot = shared.spare_slot();
            while slot.ready.is_some() && !slot.closed {
                slot = shared
                    .spare_changed
                    .wait(slot)
                    .expect("spare lock poisoned");
            }
            if slot.closed {
                if let Some(unused) = slot.ready.take() {
                    let _ = remove_file(&unused);
                }
                return;
            }
        }
        made += 1;
        let path = shared.log_dir.join(format!("{made:020}{SPARE_SUFFIX}"));
        match prepare_spare(&path, shared.options.segment_bytes) {
            Ok(()) => {
                let mut slot = shared.spare_slot();
                if slot.closed {
                    let _ = remove_file(&path);
                    return;
                }
                slot.ready = Some(path);
            }
            Err(e) => {
                tracing::warn!("could not prepare a spare log segment, retrying in a second: {e}");
                let _ = remove_file(&path);
                let slot = shared.spare_slot();
                let _ = shared
                    .spare_changed
                    .wait_timeout(slot, std::time::Duration::from_secs(1));
            }
        }
    }
}

fn checkpointer_loop(shared: &Shared) {
    loop {
        let job = {
            let mut checkpoint = shared.checkpoint_slot();
            loop {
                match checkpoint.as_mut() {
                    Some(job) if job.first_live_segment == u64::MAX => {
                        *checkpoint = None;
                        shared.checkpoint_changed.notify_all();
                        return;
                    }
                    Some(job) => {
                        break CheckpointJob {
                            first_live_segment: job.first_live_segment,
                            waiters: std::mem::take(&mut job.waiters),
                            rollup: job.rollup.take(),
                        }
                    }
                    None => {
                        checkpoint = shared
                            .checkpoint_changed
                            .wait(checkpoint)
                            .expect("checkpoint lock poisoned")
                    }
                }
            }
        };
        let started = Instant::now();
        let result = run_checkpoint(shared, job.first_live_segment, job.rollup.as_ref());
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        match &result {
            Ok(summary) => info!(
                chunks_written = summary.chunks_written,
                chunks_moved = summary.chunks_moved,
                block_bytes = summary.block_bytes,
                segments_removed = summary.segments_removed,
                blocks_removed = summary.blocks_removed,
                rollup_bytes = summary.rollup_bytes,
                elapsed_ms,
                "checkpoint done"
            ),
            Err(e) => {
                tracing::error!("checkpoint failed, the log is kept and it will be retried: {e}")
            }
        }
        {
            let mut state = shared.state_mut();
            let stats = &mut state.stats;
            match &result {
                Ok(summary) => {
                    stats.checkpoints += 1;
                    stats.last_checkpoint_ms = elapsed_ms;
                    stats.checkpoint_micros_total += elapsed.as_micros() as u64;
                    let slot = CHECKPOINT_DURATION_BOUNDS_MS
                        .iter()
                        .position(|&bound| elapsed.as_secs_f64() * 1e3 <= bound as f64)
                        .unwrap_or(CHECKPOINT_DURATION_BOUNDS_MS.len());
                    stats.checkpoint_duration_counts[slot] += 1;
                    if summary.rollup_bytes > 0 {
                        stats.rollup_file_bytes = summary.rollup_bytes;
                    }
                }
                Err(_) => stats.checkpoint_failures += 1,
            }
        }
        let reply = result.map(|_| ()).map_err(|e| e.to_string());
        for waiter in job.waiters {
            let _ = waiter.send(reply.clone());
        }
        let mut checkpoint = shared.checkpoint_slot();
        *checkpoint = None;
        drop(checkpoint);
        shared.checkpoint_changed.notify_all();
    }
}

#[derive(Default)]
struct CheckpointSummary {
    chunks_written: usize,
    chunks_moved: usize,
    block_bytes: u64,
    segments_removed: usize,
    blocks_removed: usize,
    rollup_bytes: u64,
}

/// Folds the frozen memtable into a new block file, writes the manifest,
/// swaps the read view, then deletes what is no longer needed.
///
/// Crash safety: until the manifest rename, the old manifest and the log
/// still describe everything (the new block is an orphan that recovery
/// deletes); after it, the new manifest does, and leftover segments and
/// blocks are deleted by recovery.
fn run_checkpoint(
    shared: &Shared,
    first_live_segment: u64,
    rollup: Option<&Rollup>,
) -> Result<CheckpointSummary, StorageError> {
    let (frozen, manifest, chunks_of) = {
        let state = shared.state();
        let Some(frozen) = state.frozen.clone() else {
            return Ok(CheckpointSummary::default());
        };
        let chunks_of: HashMap<ShipId, BTreeMap<i64, ChunkRef>> = frozen
            .keys()
            .filter_map(|ship| state.chunks.get(ship).map(|c| (*ship, c.clone())))
            .collect();
        (frozen, state.manifest.clone(), chunks_of)
    };
    let mut summary = CheckpointSummary::default();
    let block_id = manifest.next_block_id;
    let mut builder = BlockBuilder::new(block_id);
    let mut next_manifest = Manifest {
        first_live_segment,
        next_block_id: block_id + 1,
        chunks: manifest.chunks.clone(),
    };

    let mut ships: Vec<&ShipId> = frozen.keys().collect();
    ships.sort_unstable();
    let mut overlay: Vec<Span> = Vec::new();
    let mut base: Vec<Span> = Vec::new();
    let mut merged: Vec<Span> = Vec::new();
    for &ship in ships {
        let timeline = &frozen[&ship];
        for (partition, spans) in split_by_partition(timeline) {
            overlay.clear();
            overlay.extend(spans);
            base.clear();
            if let Some(chunk) = chunks_of.get(&ship).and_then(|c| c.get(&partition)) {
                read_chunk_window(chunk, partition, i64::MIN, i64::MAX, &mut base)?;
            }
            merged.clear();
            overlay_spans(&base, &overlay, &mut merged);
            let location = builder.add_chunk(ship, partition, &merged);
            next_manifest.chunks.insert((ship, partition), location);
            summary.chunks_written += 1;
        }
    }

    // Compaction: blocks mostly made of replaced chunks are rewritten by
    // copying their live chunks (bytes and CRCs unchanged) into this block.
    let mut live_bytes: HashMap<u64, u64> = HashMap::new();
    for location in next_manifest.chunks.values() {
        *live_bytes.entry(location.block).or_default() += u64::from(location.len);
    }
    let blocks: HashMap<u64, Arc<BlockFile>> = shared.state().blocks.clone();
    let sparse: HashSet<u64> = blocks
        .iter()
        .filter(|(id, block)| {
            let live = live_bytes.get(id).copied().unwrap_or(0) as f64;
            live < block.bytes().len() as f64 * shared.options.compact_below_live_fraction
        })
        .map(|(id, _)| *id)
        .collect();
    for location in next_manifest.chunks.values_mut() {
        if sparse.contains(&location.block) {
            let block = &blocks[&location.block];
            let bytes = block.chunk_bytes(location)?;
            *location = builder.add_raw_chunk(bytes, location.span_count);
            summary.chunks_moved += 1;
        }
    }

    let new_block = if builder.chunk_bytes() > 0 {
        summary.block_bytes = builder.write(&shared.block_dir)?;
        Some(Arc::new(BlockFile::open(&shared.block_dir, block_id)?))
    } else {
        next_manifest.next_block_id = manifest.next_block_id;
        None
    };
    // The index first: a crash between the two renames leaves an index
    // naming a manifest that never landed, which the next start rebuilds.
    let (manifest_bytes, identity) = next_manifest.encode_with_identity();
    if let Some(rollup) = rollup {
        summary.rollup_bytes = rollup_file::store(&shared.dir, rollup, &identity)?;
    }
    Manifest::store_bytes(&shared.dir, &manifest_bytes)?;

    let live_blocks: HashSet<u64> = next_manifest.chunks.values().map(|c| c.block).collect();
    let dead_blocks: Vec<u64> = blocks
        .keys()
        .copied()
        .filter(|id| !live_blocks.contains(id))
        .collect();
    {
        let mut state = shared.state_mut();
        if let Some(block) = &new_block {
            state.blocks.insert(block_id, Arc::clone(block));
        }
        for id in &dead_blocks {
            state.blocks.remove(id);
        }
        let mut chunks: HashMap<ShipId, BTreeMap<i64, ChunkRef>> =
            HashMap::with_capacity(state.chunks.len());
        for (&(ship, partition), location) in &next_manifest.chunks {
            let block = Arc::clone(&state.blocks[&location.block]);
            chunks.entry(ship).or_default().insert(
                partition,
                ChunkRef {
                    block,
                    location: *location,
                },
            );
        }
        state.chunks = chunks;
        state.manifest = next_manifest;
        state.frozen = None;
    }

    for sequence in list_segments(&shared.log_dir)? {
        if sequence < first_live_segment {
            remove_file(&segment_path(&shared.log_dir, sequence))?;
            summary.segments_removed += 1;
        }
    }
    for id in dead_blocks {
        // Readers may still hold a map of it; on Unix the map outlives the name.
        remove_file(&super::block::block_path(&shared.block_dir, id))?;
        summary.blocks_removed += 1;
    }
    Ok(summary)
}

/// A timeline's spans grouped by partition, spans cut at partition edges.
fn split_by_partition(timeline: &Timeline) -> Vec<(i64, Vec<Span>)> {
    let mut out: Vec<(i64, Vec<Span>)> = Vec::new();
    for span in timeline.iter() {
        let mut start = span.start_s;
        while start < span.end_s {
            let partition = partition_of(start);
            let end = span.end_s.min(partition_start(partition + 1));
            let piece = Span {
                start_s: start,
                end_s: end,
                power_kw: span.power_kw,
            };
            match out.last_mut() {
                Some((p, spans)) if *p == partition => spans.push(piece),
                _ => out.push((partition, vec![piece])),
            }
            start = end;
        }
    }
    out
}
