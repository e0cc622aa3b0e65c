//! The engine: its public API and the threads behind it, one module each.
//!
//! - [`state`]: what readers look at (block chunks, frozen and active
//!   memtables, the rollup index) behind one lock, and the read path;
//! - [`recovery`]: opening a data directory — the structural survey, the
//!   blocks, the rollup index, the log replay, where the log continues;
//! - [`commit`]: the *committer* thread — group commit into the log, moving
//!   the log on to a new segment, freezing the memtable — and the
//!   *preparer* thread that keeps a zero-filled spare segment ready;
//! - [`checkpoint`]: the *checkpointer* thread, folding a frozen memtable
//!   into a block file and retiring the log behind it.
//!
//! Callers of [`Engine::submit`] encode their own log record (CPU work off
//! the commit path) and queue it; the committer writes each group with one
//! `write` and one `fdatasync`, applies it to the active memtable, then runs
//! the callbacks — so a write is visible exactly when it is acknowledged,
//! and never before it is durable.
//!
//! Every file operation goes through the [`Vfs`] seam. With
//! [`EngineOptions::inline_background`] the checkpoints and spare segments
//! are made on the committer thread, so the order of file operations
//! depends only on the order of writes: the power-cut simulation replays
//! any failure from its seed that way.

mod checkpoint;
mod commit;
mod recovery;
mod state;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use super::block::{partition_of, PARTITION_BUCKETS};
use super::codec::validate_spans;
use super::error::StorageError;
use super::io::{LockGuard, RealFs, Vfs};
use super::layout::Layout;
use super::record::{encode_write, KIND_WRITE};
use super::rollup::{BucketChanges, FleetInterval};
use super::segment::push_record;
use crate::model::{spans_to_buckets, Bucket, NanoKwh, ShipId, Span, BUCKET_SECONDS};
use state::{count_ships, State};

/// Called once a write is durable and visible (or has failed).
pub type CommitCallback = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

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
    /// Make spare segments and run checkpoints on the committer thread
    /// instead of their own threads, so file operations happen in an order
    /// fixed by the writes alone (the power-cut simulation's setting).
    pub inline_background: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            checkpoint_log_bytes: 32 << 20,
            checkpoint_memtable_spans: 4 << 20,
            compact_below_live_fraction: 0.5,
            segment_bytes: 8 << 20,
            rollup_index: true,
            inline_background: false,
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
    /// Checkpoints that failed (the log is kept; a later one retries).
    pub checkpoint_failures: u64,
    pub last_checkpoint_ms: u64,
    /// Successful checkpoints by duration: entry `i` counts those that
    /// took at most `CHECKPOINT_DURATION_BOUNDS_MS[i]` and more than the
    /// bound before (not cumulative); the last entry counts longer ones.
    pub checkpoint_duration_counts: [u64; CHECKPOINT_DURATION_BOUNDS_MS.len() + 1],
    /// The successful checkpoints' durations added up, in microseconds.
    pub checkpoint_micros_total: u64,
    pub block_files: usize,
    /// Block files of an older format version than this build writes
    /// (checkpoints rewrite them; `powerd upgrade` does it all at once).
    pub older_block_files: usize,
    pub chunks: usize,
    /// Size of the rollup index file the last checkpoint wrote.
    pub rollup_file_bytes: u64,
    /// Whether the rollup index answers fleet questions (false when turned
    /// off, or after a block read failed while updating it).
    pub rollup_index: bool,
    /// Log segments abandoned after a failed write or sync.
    pub segments_abandoned: u64,
    /// Writes refused because the disk was full.
    pub writes_refused_disk_full: u64,
    /// Writes refused for another I/O failure.
    pub writes_refused_io_error: u64,
    /// Why writes are being refused right now (`None` while they are
    /// taken): set when a write is refused, cleared by the next write that
    /// lands or by a spare segment prepared again.
    pub refusing_writes: Option<String>,
}

/// One queued batch.
struct Pending {
    ship: ShipId,
    spans: Vec<Span>,
    /// The batch's WRITE record (kind, length, body), ready for a COMMIT
    /// frame.
    record: Vec<u8>,
    /// The batch's rollup change if the ship has no data where it writes
    /// (the usual append), computed by the caller off the commit path.
    fresh: Option<BucketChanges>,
    done: CommitCallback,
}

type CheckpointWaiter = std::sync::mpsc::Sender<Result<(), StorageError>>;

#[derive(Default)]
struct CommitQueue {
    pending: Vec<Pending>,
    /// Callers of [`Engine::checkpoint`] waiting for the next one to finish.
    checkpoint_waiters: Vec<CheckpointWaiter>,
    closed: bool,
}

/// State shared by the engine's threads.
struct Shared {
    vfs: Arc<dyn Vfs>,
    layout: Layout,
    options: EngineOptions,
    state: RwLock<State>,
    queue: Mutex<CommitQueue>,
    queue_ready: Condvar,
    checkpoint: checkpoint::Inbox,
    spares: commit::Spares,
    /// Held for the engine's lifetime: one powerd per data directory.
    _lock: LockGuard,
}

/// Locks, named. A poisoned lock means a thread panicked while holding it;
/// the state it guards can no longer be trusted, so these panic too.
impl Shared {
    fn state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().expect("engine state lock poisoned")
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().expect("engine state lock poisoned")
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, CommitQueue> {
        self.queue.lock().expect("commit queue lock poisoned")
    }
}

/// The engine. Every method takes `&self`; share it behind an `Arc`.
pub struct Engine {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    /// Opens (or creates) the data directory on the real file system,
    /// recovers, and starts the engine's threads.
    pub fn open(dir: &Path, options: EngineOptions) -> Result<Engine, StorageError> {
        Engine::open_with(RealFs::shared(), dir, options)
    }

    /// [`Engine::open`] through any [`Vfs`] (the power-cut tests' seam).
    pub fn open_with(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        options: EngineOptions,
    ) -> Result<Engine, StorageError> {
        let opened = recovery::open(&vfs, dir, &options)?;
        let shared = Arc::new(Shared {
            vfs,
            layout: opened.layout,
            options,
            state: RwLock::new(opened.state),
            queue: Mutex::new(CommitQueue::default()),
            queue_ready: Condvar::new(),
            checkpoint: checkpoint::Inbox::default(),
            spares: commit::Spares::default(),
            _lock: opened.lock,
        });
        let spawn = |name: &str, body: Box<dyn FnOnce(&Shared) + Send>| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || body(&shared))
                .map_err(|e| StorageError::io(dir, "spawn a thread", e))
        };
        let mut threads = Vec::new();
        if !shared.options.inline_background {
            threads.push(spawn("powerd-prealloc", Box::new(commit::preparer_loop))?);
        }
        // A new directory's first segment and MANIFEST exist before `open`
        // returns, so a `check` right after a start sees a whole directory.
        let mut log = opened.log;
        commit::start_log(&shared, &mut log, opened.needs_manifest);
        let replayed = opened.replayed;
        threads.push(spawn(
            "powerd-commit",
            Box::new(move |shared| commit::committer_loop(shared, log, replayed)),
        )?);
        if !shared.options.inline_background {
            threads.push(spawn(
                "powerd-checkpoint",
                Box::new(checkpoint::checkpointer_loop),
            )?);
        }
        Ok(Engine {
            shared,
            threads: Mutex::new(threads),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.shared.layout.dir
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
        let mut record = Vec::with_capacity(64 + spans.len() * 2);
        push_record(&mut record, KIND_WRITE, |out| {
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
            record,
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
        Ok(self
            .read_buckets_versioned(ship, start_bucket, end_bucket)?
            .map(|(_, buckets)| buckets))
    }

    /// A number that changes whenever `ship`'s data may have changed, while
    /// this engine is open (it starts again at a restart); `None` for a
    /// ship never written. For a cache of what was computed from the data.
    pub fn ship_version(&self, ship: ShipId) -> Option<u64> {
        self.state().version(ship)
    }

    /// The UTC days (day numbers since the epoch, ascending) written to
    /// after write number `since`, and the number of the last write applied
    /// now, to pass as `since` next time (0 asks for every day written since
    /// the engine opened). Data read after this call is at least as new as
    /// the number returned.
    pub fn days_changed_since(&self, since: u64) -> (u64, Vec<i64>) {
        let state = self.state();
        let days = state
            .day_versions
            .iter()
            .filter(|&(_, &written)| written > since)
            .map(|(&day, _)| day)
            .collect();
        (state.writes_applied, days)
    }

    /// [`Engine::read_buckets`] with the ship's [`Engine::ship_version`]
    /// read no later than the buckets: the buckets are at least as new as
    /// the version says, so a cache keyed by it may miss needlessly but
    /// never hands out data older than the current version.
    pub fn read_buckets_versioned(
        &self,
        ship: ShipId,
        start_bucket: i64,
        end_bucket: i64,
    ) -> Result<Option<(u64, Vec<Bucket>)>, StorageError> {
        let start_s = start_bucket.saturating_mul(BUCKET_SECONDS);
        let end_s = end_bucket.saturating_mul(BUCKET_SECONDS);
        let window = usize::try_from(end_bucket.saturating_sub(start_bucket)).unwrap_or(usize::MAX);
        let version = {
            // Fast path: nothing in the memtables touches the window, so the
            // sealed chunks' bucket columns are the answer as they stand.
            let state = self.state();
            let Some(version) = state.version(ship) else {
                return Ok(None);
            };
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
                return Ok(Some((version, out)));
            }
            version
        };
        // The version was read first: the spans read next are at least as
        // new, never older than it says.
        let Some(spans) = self.read_spans(ship, start_s, end_s)? else {
            return Ok(None);
        };
        // Each span touches at least one bucket and usually few more.
        let mut out = Vec::with_capacity(window.min(spans.len().saturating_mul(4)));
        spans_to_buckets(&spans, start_bucket, end_bucket, &mut out);
        Ok(Some((version, out)))
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
        rx.recv().unwrap_or(Err(StorageError::Closed))
    }

    /// Why writes are refused right now, if they are (see
    /// [`EngineStats::refusing_writes`]); cheap enough for every health check.
    pub fn refusing_writes(&self) -> Option<String> {
        self.state().stats.refusing_writes.clone()
    }

    pub fn stats(&self) -> EngineStats {
        let state = self.state();
        let mut stats = state.stats.clone();
        stats.ships = count_ships(&state);
        stats.block_files = state.blocks.len();
        stats.older_block_files = state.blocks.values().filter(|b| b.is_legacy()).count();
        stats.chunks = state.manifest.chunks.len();
        stats.rollup_index = state.rollup.is_some();
        stats
    }

    /// The fleet's energy per interval of `step` buckets over buckets
    /// `[first, end)` (see [`Rollup::fleet`](super::rollup::Rollup::fleet));
    /// `None` without an index.
    pub fn fleet(&self, first: i64, end: i64, step: i64) -> Option<Vec<FleetInterval>> {
        Some(self.state().rollup.as_ref()?.fleet(first, end, step))
    }

    /// First and end (exclusive) bucket of all stored data: `None` without
    /// an index, `Some(None)` when nothing is stored.
    pub fn stored_range(&self) -> Option<Option<(i64, i64)>> {
        Some(self.state().rollup.as_ref()?.stored_range())
    }

    /// The `count` ships with the most energy in buckets `[first, end)`,
    /// descending, ties by id (see
    /// [`Rollup::top_users`](super::rollup::Rollup::top_users)); `Ok(None)`
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
    /// Every acknowledged write is durable in the log whatever happens here;
    /// a final checkpoint that cannot be written only means the next start
    /// replays the log.
    pub fn close(&self) -> Result<(), StorageError> {
        {
            let mut queue = self.shared.queue();
            queue.closed = true;
        }
        self.shared.queue_ready.notify_all();
        self.shared.spares.close();
        let threads: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.threads.lock().expect("thread list lock poisoned"));
        for thread in threads {
            let _ = thread.join();
        }
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
