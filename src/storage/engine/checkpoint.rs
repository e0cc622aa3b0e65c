//! The checkpointer: folds a frozen memtable into a new block file, writes
//! the rollup index and the manifest, swaps the read view, and retires the
//! log segments and block files no longer needed. Runs on its own thread,
//! or on the committer's with [`EngineOptions::inline_background`].
//!
//! [`EngineOptions::inline_background`]: super::EngineOptions::inline_background

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use tracing::info;

use super::state::{read_chunk_window, ChunkRef};
use super::{CheckpointWaiter, Shared, CHECKPOINT_DURATION_BOUNDS_MS};
use crate::model::{ShipId, Span};
use crate::storage::block::{partition_of, partition_start, BlockBuilder, BlockFile};
use crate::storage::error::StorageError;
use crate::storage::fsutil::remove_file;
use crate::storage::manifest::Manifest;
use crate::storage::rollup::Rollup;
use crate::storage::rollup_file;
use crate::storage::timeline::{overlay_spans, Timeline};

pub(super) struct CheckpointJob {
    /// Log segments before this one hold nothing the frozen memtable and
    /// the blocks do not.
    pub first_live_segment: u64,
    pub waiters: Vec<CheckpointWaiter>,
    /// The rollup index as of the freeze: exactly the blocks plus the
    /// frozen memtable, i.e. what the blocks will hold once this is done.
    pub rollup: Option<super::super::rollup::Rollup>,
}

/// Bytes of older-version blocks one checkpoint rewrites in the current
/// version (see storage-format.md, "Version changes").
pub const UPGRADE_BYTES_PER_CHECKPOINT: u64 = 64 << 20;

/// The checkpointer's inbox.
#[derive(Default)]
pub(super) struct Inbox {
    slot: Mutex<Slot>,
    changed: Condvar,
}

#[derive(Default)]
struct Slot {
    /// The job waiting or running; `None` when idle.
    job: Option<CheckpointJob>,
    running: bool,
    stop: bool,
    /// Whether the last checkpoint succeeded, until the committer reads it.
    outcome: Option<bool>,
}

impl Inbox {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().expect("checkpoint lock poisoned")
    }

    /// Whether the last checkpoint succeeded, once.
    pub fn take_outcome(&self) -> Option<bool> {
        self.slot().outcome.take()
    }
}

/// Hands `job` to the checkpointer (or, inline, runs it now).
pub(super) fn start(shared: &Shared, job: CheckpointJob) {
    if shared.options.inline_background {
        let ok = run_job(shared, job);
        shared.checkpoint.slot().outcome = Some(ok);
        return;
    }
    let mut slot = shared.checkpoint.slot();
    slot.job = Some(job);
    drop(slot);
    shared.checkpoint.changed.notify_all();
}

/// Waits until no checkpoint is waiting or running.
pub(super) fn wait_idle(shared: &Shared) {
    let mut slot = shared.checkpoint.slot();
    while slot.job.is_some() || slot.running {
        slot = shared
            .checkpoint
            .changed
            .wait(slot)
            .expect("checkpoint lock poisoned");
    }
}

/// Lets a running checkpoint finish, then stops the checkpointer thread.
pub(super) fn stop(shared: &Shared) {
    wait_idle(shared);
    shared.checkpoint.slot().stop = true;
    shared.checkpoint.changed.notify_all();
}

pub(super) fn checkpointer_loop(shared: &Shared) {
    loop {
        let job = {
            let mut slot = shared.checkpoint.slot();
            loop {
                if let Some(job) = slot.job.take() {
                    slot.running = true;
                    break job;
                }
                if slot.stop {
                    return;
                }
                slot = shared
                    .checkpoint
                    .changed
                    .wait(slot)
                    .expect("checkpoint lock poisoned");
            }
        };
        let ok = run_job(shared, job);
        let mut slot = shared.checkpoint.slot();
        slot.running = false;
        slot.outcome = Some(ok);
        drop(slot);
        shared.checkpoint.changed.notify_all();
        shared.queue_ready.notify_all();
    }
}

/// Runs one checkpoint, records it, and answers its waiters; `true` when
/// it succeeded.
fn run_job(shared: &Shared, job: CheckpointJob) -> bool {
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
        Err(e) => tracing::error!(
            "checkpoint failed; the log keeps every write and a later checkpoint retries: {e}"
        ),
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
    let ok = result.is_ok();
    let reply = result.map(|_| ());
    for waiter in job.waiters {
        let _ = waiter.send(reply.clone());
    }
    ok
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
    // copying their live chunks (bytes and CRCs unchanged) into this block;
    // an older version's chunks are re-encoded from their spans.
    let mut live_bytes: HashMap<u64, u64> = HashMap::new();
    for location in next_manifest.chunks.values() {
        *live_bytes.entry(location.block).or_default() += u64::from(location.len);
    }
    // Sorted, so the file operations come in an order fixed by the data.
    let blocks: BTreeMap<u64, Arc<BlockFile>> = shared
        .state()
        .blocks
        .iter()
        .map(|(id, block)| (*id, Arc::clone(block)))
        .collect();
    let mut sparse: BTreeSet<u64> = blocks
        .iter()
        .filter(|(id, block)| {
            let live = live_bytes.get(id).copied().unwrap_or(0) as f64;
            live < block.bytes().len() as f64 * shared.options.compact_below_live_fraction
        })
        .map(|(id, _)| *id)
        .collect();
    // The upgrade of an older directory: blocks of an older version are
    // rewritten in the current one, oldest first, up to a budget per
    // checkpoint, so a large directory converges over a few checkpoints
    // without one of them holding gigabytes.
    let mut budget = UPGRADE_BYTES_PER_CHECKPOINT;
    for (id, block) in &blocks {
        if block.is_legacy() && !sparse.contains(id) && budget > 0 {
            budget = budget.saturating_sub(block.bytes().len() as u64);
            sparse.insert(*id);
        }
    }
    for (&(ship, partition), location) in next_manifest.chunks.iter_mut() {
        if sparse.contains(&location.block) {
            let block = &blocks[&location.block];
            if block.is_legacy() {
                // Energies of the old definition: rewritten from the spans
                // in the current version rather than copied.
                let chunk = ChunkRef {
                    block: Arc::clone(block),
                    location: *location,
                };
                base.clear();
                read_chunk_window(&chunk, partition, i64::MIN, i64::MAX, &mut base)?;
                *location = builder.add_chunk(ship, partition, &base);
            } else {
                let bytes = block.chunk_bytes(location)?;
                *location = builder.add_raw_chunk(bytes, location.span_count);
            }
            summary.chunks_moved += 1;
        }
    }

    let vfs = &*shared.vfs;
    let new_block = if builder.chunk_bytes() > 0 {
        let path = shared.layout.block(block_id);
        // A failed earlier attempt may have left this id's file: no manifest
        // names it, and no map of it is held.
        remove_file(vfs, &path)?;
        summary.block_bytes = builder.write(vfs, &path)?;
        Some(Arc::new(BlockFile::open(vfs, path, block_id)?))
    } else {
        next_manifest.next_block_id = manifest.next_block_id;
        None
    };
    // The index first: a crash between the two renames leaves an index
    // naming a manifest that never landed, which the next start rebuilds.
    let (manifest_bytes, identity) = next_manifest.encode_with_identity();
    if let Some(rollup) = rollup {
        summary.rollup_bytes = rollup_file::store(vfs, &shared.layout.rollup(), rollup, &identity)?;
    }
    Manifest::store_bytes(vfs, &shared.layout.manifest(), &manifest_bytes)?;

    let live_blocks: BTreeSet<u64> = next_manifest.chunks.values().map(|c| c.block).collect();
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

    // The checkpoint is done; what follows only frees space. A file that
    // cannot be removed now is removed by the next start.
    let mut obsolete: Vec<std::path::PathBuf> = Vec::new();
    match shared.layout.list_segments(vfs) {
        Ok(segments) => {
            for sequence in segments.into_iter().filter(|&s| s < first_live_segment) {
                obsolete.push(shared.layout.segment(sequence));
                summary.segments_removed += 1;
            }
        }
        Err(e) => tracing::warn!("could not list the log to retire segments: {e}"),
    }
    // Readers may still hold a map of a dead block; on Unix the map
    // outlives the name.
    for id in dead_blocks {
        obsolete.push(shared.layout.block(id));
        summary.blocks_removed += 1;
    }
    for path in obsolete {
        if let Err(e) = remove_file(vfs, &path) {
            tracing::warn!("could not remove an obsolete file; the next start does: {e}");
        }
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
