//! Opening a data directory: the structural survey (every file that must
//! exist does), the blocks the manifest names, the rollup index, the log
//! replayed through the same path as live writes, the leftovers of an
//! interrupted checkpoint removed, and where the log continues.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::commit::LogWriter;
use super::state::{
    count_ships, read_chunk_window, ChunkRef, ShipVersions, State, MAX_SHIP_VERSIONS,
};
use super::{EngineOptions, EngineStats};
use crate::model::ShipId;
use crate::storage::block::BlockFile;
use crate::storage::error::StorageError;
use crate::storage::fsutil::{remove_file, sync_dir};
use crate::storage::io::{LockGuard, LockMode, OpenMode, Vfs};
use crate::storage::layout::{Layout, Survey};
use crate::storage::log::{scan_log, LogScan};
use crate::storage::manifest::Manifest;
use crate::storage::record::decode_record;
use crate::storage::rollup::Rollup;
use crate::storage::rollup_file;
use crate::storage::segment::{rollover_frame, ScanEnd, SegmentWriter};

/// An opened data directory, ready for the engine's threads.
pub(super) struct Opened {
    pub layout: Layout,
    pub lock: LockGuard,
    pub state: State,
    pub log: LogWriter,
    /// Whether the log held writes: the committer checkpoints them first.
    pub replayed: bool,
    /// Whether `MANIFEST` must still be written (a directory gets one as
    /// soon as its first log segment exists).
    pub needs_manifest: bool,
}

pub(super) fn open(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    options: &EngineOptions,
) -> Result<Opened, StorageError> {
    let started = Instant::now();
    let vfs = &**vfs;
    let layout = Layout::new(dir);
    make_directories(vfs, &layout)?;
    let lock = vfs
        .lock(&layout.lock(), LockMode::Exclusive)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => StorageError::Locked {
                path: dir.to_path_buf(),
            },
            _ => StorageError::io(layout.lock(), "lock", e),
        })?;
    let survey = Survey::take(vfs, &layout)?;
    survey.ensure_whole()?;

    let (blocks, chunks) = open_blocks(vfs, &layout, &survey.manifest)?;
    let stats = EngineStats {
        block_files: blocks.len(),
        chunks: survey.manifest.chunks.len(),
        ..EngineStats::default()
    };
    let mut state = State {
        active: HashMap::new(),
        frozen: None,
        chunks,
        manifest: survey.manifest.clone(),
        blocks,
        stats,
        rollup: None,
        writes_applied: 0,
        versions: ShipVersions::new(MAX_SHIP_VERSIONS),
        day_versions: BTreeMap::new(),
    };
    if options.rollup_index {
        state.rollup = Some(load_rollup(vfs, &layout, &state)?);
    }
    let scan = scan_log(
        vfs,
        &layout,
        &survey.live_segments,
        |sequence, offset, kind, body| {
            let record = decode_record(&layout.segment(sequence), offset, kind, body)?;
            state.apply_write(record.ship, &record.spans, None);
            Ok(())
        },
    )?;
    // Versions tell readers what changed while this engine is open; what
    // the log replayed was there before anyone could read.
    state.versions = ShipVersions::new(MAX_SHIP_VERSIONS);
    state.day_versions = BTreeMap::new();
    if let Some(newest) = scan.newest() {
        if let ScanEnd::TornTail {
            valid_len,
            dirty_end,
            file_len,
            reason,
        } = &newest.end
        {
            warn!(
                segment = %layout.segment(newest.sequence).display(),
                offset = valid_len,
                dropped_bytes = dirty_end - valid_len,
                file_len,
                reason = %reason,
                "torn tail in the newest log segment (a crash during a write that was never acknowledged); it is not replayed"
            );
        }
    }
    remove_leftovers(vfs, &layout, &survey);
    link_predecessor(vfs, &layout, &scan);
    let replayed = scan.records > 0;
    let log = continue_log(vfs, &layout, &scan, survey.manifest.first_live_segment);
    state.stats.ships = count_ships(&state);
    info!(
        dir = %dir.display(),
        ships = state.stats.ships,
        block_files = state.blocks.len(),
        log_segments = scan.segments.len(),
        replayed_records = scan.records,
        replayed_ships = state.active.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "storage engine opened"
    );
    Ok(Opened {
        layout,
        lock,
        state,
        log,
        replayed,
        needs_manifest: !survey.manifest_present,
    })
}

/// Creates the data directory and its `log/` and `blocks/`, each made
/// durable in its parent.
fn make_directories(vfs: &dyn Vfs, layout: &Layout) -> Result<(), StorageError> {
    let parent = layout.dir.parent().filter(|p| !p.as_os_str().is_empty());
    for (dir, parent) in [
        (&layout.dir, parent),
        (&layout.log_dir, Some(layout.dir.as_path())),
        (&layout.block_dir, Some(layout.dir.as_path())),
    ] {
        let created = vfs
            .create_dir_all(dir)
            .map_err(|e| StorageError::io(dir, "create directory", e))?;
        if let (true, Some(parent)) = (created, parent) {
            sync_dir(vfs, parent)?;
        }
    }
    Ok(())
}

/// Where the log continues: the newest segment, when it is version 2 and
/// can take more frames; otherwise a new segment on the first write.
fn continue_log(vfs: &dyn Vfs, layout: &Layout, scan: &LogScan, first: u64) -> LogWriter {
    let Some(newest) = scan.newest() else {
        return LogWriter::new(None, None, first);
    };
    let data_end = newest.end.data_end();
    let tail = Some((newest.sequence, data_end));
    if newest.header.version < 2 {
        return LogWriter::new(None, tail, first);
    }
    let reopened = SegmentWriter::reopen(
        vfs,
        layout.segment(newest.sequence),
        &newest.header,
        data_end,
    )
    .and_then(|mut writer| {
        if newest.records > 0 {
            // Its writes are checkpointed first, which needs the log
            // to move on; its torn bytes, if any, end up behind the
            // rollover frame.
            writer.retired = true;
        } else if let ScanEnd::TornTail { dirty_end, .. } = newest.end {
            // New frames must not sit in front of old torn ones.
            writer.zero_tail(dirty_end)?;
        }
        Ok(writer)
    });
    match reopened {
        Ok(writer) => LogWriter::new(Some(writer), None, first),
        Err(e) => {
            warn!("the newest log segment cannot take more writes; the next write starts a new one: {e}");
            LogWriter::new(None, tail, first)
        }
    }
}

/// Gives the segment before the newest its ROLLOVER frame if a crash (or a
/// failed write) left it without one, so that a lost newest segment is
/// noticed from now on.
fn link_predecessor(vfs: &dyn Vfs, layout: &Layout, scan: &LogScan) {
    let [.., previous, newest] = scan.segments.as_slice() else {
        return;
    };
    if previous.header.version < 2 || previous.linked {
        return;
    }
    let path = layout.segment(previous.sequence);
    let frame = rollover_frame(newest.sequence, previous.header.frame_key);
    let result = vfs.open(&path, OpenMode::Existing).and_then(|file| {
        file.write_at(previous.end.data_end(), &frame)?;
        file.sync()
    });
    match result {
        Ok(()) => info!(segment = %path.display(), "wrote the rollover record a crash left out"),
        Err(e) => warn!(
            segment = %path.display(),
            "could not write the rollover record a crash left out; a lost newest segment would go unnoticed until it is: {e}"
        ),
    }
}

/// Deletes what an interrupted checkpoint or a stopped process left:
/// segments already folded into blocks, blocks no manifest entry names,
/// spare segments and half-written temporary files. None of them holds
/// data, so a failure only leaves them for the next start.
fn remove_leftovers(vfs: &dyn Vfs, layout: &Layout, survey: &Survey) {
    let paths = survey
        .stale_segments
        .iter()
        .map(|&s| layout.segment(s))
        .chain(survey.orphan_blocks.iter().map(|&b| layout.block(b)))
        .chain(survey.leftovers.iter().cloned());
    for path in paths {
        if let Err(e) = remove_file(vfs, &path) {
            warn!("could not remove a leftover file: {e}");
        }
    }
}

/// Maps every block the manifest names and verifies each chunk it lists.
#[allow(clippy::type_complexity)]
fn open_blocks(
    vfs: &dyn Vfs,
    layout: &Layout,
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
                let block = Arc::new(BlockFile::open(
                    vfs,
                    layout.block(location.block),
                    location.block,
                )?);
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
fn load_rollup(vfs: &dyn Vfs, layout: &Layout, state: &State) -> Result<Rollup, StorageError> {
    let started = Instant::now();
    let identity = state.manifest.identity();
    let reason = match rollup_file::load(vfs, &layout.rollup(), &identity) {
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
    if let Err(e) = rollup_file::store(vfs, &layout.rollup(), &rollup, &identity) {
        warn!("could not save the rebuilt rollup index; the next start rebuilds it again: {e}");
    }
    Ok(rollup)
}
