//! `powerd check`: verifies a data directory offline — every CRC, every
//! manifest entry against the chunk it names, every log record — and says
//! what it found. It changes nothing: a torn tail is reported, not cut.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::path::Path;

use super::block::{
    block_path, list_blocks, partition_start, walk_block, ChunkHeader, CHUNK_HEADER_LEN,
    MAX_SPANS_PER_CHUNK,
};
use super::codec::{decode_spans, Reader};
use super::engine::{BLOCK_DIR, LOCK_FILE, LOG_DIR};
use super::error::StorageError;
use super::manifest::{Manifest, MANIFEST_FILE};
use super::record::decode_record;
use super::rollup::Rollup;
use super::rollup_file::{self, ROLLUP_FILE};
use super::segment::{list_segments, scan_segment, segment_path, ScanEnd};

/// What [`check`] found. `problems` are damage; `notes` are states that
/// powerd handles by itself on start (a torn tail, leftovers of an
/// interrupted checkpoint).
#[derive(Debug, Default)]
pub struct CheckReport {
    pub block_files: usize,
    pub chunks: usize,
    pub segments: usize,
    pub records: u64,
    pub ships: usize,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The file's bytes, or `None` with the failure noted as a problem.
    fn read(&mut self, path: &Path) -> Option<Vec<u8>> {
        std::fs::read(path)
            .map_err(|e| {
                self.problems
                    .push(StorageError::io(path, "read", e).to_string())
            })
            .ok()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checked {} block files ({} chunks), {} log segments ({} records), {} ships",
            self.block_files, self.chunks, self.segments, self.records, self.ships
        )?;
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        for problem in &self.problems {
            writeln!(f, "PROBLEM: {problem}")?;
        }
        if self.is_ok() {
            write!(f, "OK: no damage found")
        } else {
            write!(f, "DAMAGED: {} problem(s) found", self.problems.len())
        }
    }
}

/// Verifies the data directory `dir`. `Err` only when it cannot be read at
/// all; damage is reported in the [`CheckReport`].
pub fn check(dir: &Path) -> Result<CheckReport, StorageError> {
    if !dir.is_dir() {
        return Err(StorageError::io(
            dir,
            "open data directory",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let mut report = CheckReport::default();
    if let Ok(lock) = File::open(dir.join(LOCK_FILE)) {
        if matches!(
            lock.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        ) {
            report.notes.push(
                "a powerd process is using this directory; files may change while they are checked"
                    .into(),
            );
        }
    }
    let mut manifest_ok = true;
    let manifest = match Manifest::load(dir) {
        Ok(Some(manifest)) => manifest,
        Ok(None) => {
            report.notes.push(format!(
                "no {MANIFEST_FILE}: nothing has been checkpointed yet"
            ));
            Manifest {
                first_live_segment: 1,
                next_block_id: 1,
                ..Manifest::default()
            }
        }
        Err(e) => {
            report.problems.push(e.to_string());
            manifest_ok = false;
            Manifest::default()
        }
    };
    let mut ships: HashSet<u64> = manifest.chunks.keys().map(|(ship, _)| *ship).collect();

    let block_dir = dir.join(BLOCK_DIR);
    let mut walked: HashMap<u64, HashMap<u64, ChunkHeader>> = HashMap::new();
    let mut block_bytes: HashMap<u64, Vec<u8>> = HashMap::new();
    for id in list_blocks(&block_dir).unwrap_or_default() {
        let path = block_path(&block_dir, id);
        report.block_files += 1;
        let Some(bytes) = report.read(&path) else {
            continue;
        };
        match walk_block(&path, id, &bytes) {
            Ok(chunks) => {
                report.chunks += chunks.len();
                walked.insert(id, chunks.into_iter().collect());
                block_bytes.insert(id, bytes);
            }
            Err(e) => report.problems.push(e.to_string()),
        }
        if !manifest.chunks.values().any(|c| c.block == id) {
            report.notes.push(format!("{} is named by no manifest entry (left by an interrupted checkpoint or compaction); powerd deletes it on start", path.display()));
        }
    }
    for (&(ship, partition), location) in &manifest.chunks {
        let path = block_path(&block_dir, location.block);
        let Some(chunks) = walked.get(&location.block) else {
            if !path.exists() {
                report.problems.push(format!(
                    "{MANIFEST_FILE} names block file {} which is missing",
                    path.display()
                ));
            }
            continue;
        };
        match chunks.get(&location.offset) {
            Some(header) if header.ship == ship && header.partition == partition && header.span_count == location.span_count => {}
            Some(header) => report.problems.push(format!(
                "{MANIFEST_FILE} expects ship {ship} partition {partition} at {} offset {}, the chunk there holds ship {} partition {}",
                path.display(),
                location.offset,
                header.ship,
                header.partition
            )),
            None => report.problems.push(format!("{MANIFEST_FILE} names offset {} of {}, where no chunk starts", location.offset, path.display())),
        }
    }

    if manifest_ok && report.problems.is_empty() {
        check_rollup(dir, &manifest, &block_bytes, &mut report);
    }

    let log_dir = dir.join(LOG_DIR);
    let segments = list_segments(&log_dir).unwrap_or_default();
    let live: Vec<u64> = segments
        .iter()
        .copied()
        .filter(|&s| s >= manifest.first_live_segment)
        .collect();
    for &sequence in segments
        .iter()
        .filter(|&&s| s < manifest.first_live_segment)
    {
        report.notes.push(format!(
            "{} is already checkpointed; powerd deletes it on start",
            segment_path(&log_dir, sequence).display()
        ));
    }
    for (position, &sequence) in live.iter().enumerate() {
        report.segments += 1;
        let path = segment_path(&log_dir, sequence);
        if position > 0 && sequence != live[position - 1] + 1 {
            report.problems.push(format!(
                "log segment {} is missing: the log has a hole",
                segment_path(&log_dir, live[position - 1] + 1).display()
            ));
        }
        let Some(bytes) = report.read(&path) else {
            continue;
        };
        let newest = position + 1 == live.len();
        let mut records = 0u64;
        let result = scan_segment(&path, &bytes, sequence, newest, |offset, kind, payload| {
            let record = decode_record(&path, offset, kind, payload)?;
            ships.insert(record.ship);
            records += 1;
            Ok(())
        });
        report.records += records;
        match result {
            Ok(ScanEnd::Clean { .. }) => {}
            Ok(ScanEnd::TornTail { valid_len, file_len, reason }) => report.notes.push(format!(
                "{} ends in a torn tail at offset {valid_len} ({} bytes, {reason}): a write cut off by a crash, never acknowledged; powerd cuts it off on start",
                path.display(),
                file_len - valid_len
            )),
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    report.ships = ships.len();
    Ok(report)
}

/// The rollup index file must equal the index rebuilt from the blocks it
/// names. One that cannot be used is a note (powerd rebuilds it on start);
/// one that can be used but disagrees would serve wrong fleet answers, so
/// it is a problem.
fn check_rollup(
    dir: &Path,
    manifest: &Manifest,
    block_bytes: &HashMap<u64, Vec<u8>>,
    report: &mut CheckReport,
) {
    let stored = match rollup_file::load(dir, &manifest.identity()) {
        Ok(rollup) => rollup,
        Err(reason) => {
            if !(manifest.chunks.is_empty() && reason == rollup_file::MISSING) {
                report.notes.push(format!(
                    "{ROLLUP_FILE} cannot be used ({reason}); powerd rebuilds the rollup index from the blocks on start"
                ));
            }
            return;
        }
    };
    let mut rebuilt = Rollup::new();
    let mut spans = Vec::new();
    for (&(ship, partition), location) in &manifest.chunks {
        let chunk = block_bytes.get(&location.block).and_then(|bytes| {
            let start = usize::try_from(location.offset).ok()?;
            bytes.get(start + CHUNK_HEADER_LEN..start + location.len as usize)
        });
        spans.clear();
        let decoded = chunk.map(|payload| {
            decode_spans(
                &mut Reader::new(payload),
                partition_start(partition),
                MAX_SPANS_PER_CHUNK,
                &mut spans,
            )
        });
        if !matches!(decoded, Some(Ok(()))) {
            // Damage the block checks above did not name; they report it.
            return;
        }
        rebuilt.add_chunk_spans(ship, &spans);
    }
    if rebuilt != stored {
        report.problems.push(format!(
            "{ROLLUP_FILE} disagrees with the blocks it indexes: fleet answers would be wrong; delete it and powerd rebuilds it on start"
        ));
    }
}
