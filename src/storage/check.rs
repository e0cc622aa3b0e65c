//! `powerd check`: verifies a data directory offline — the structural rules
//! recovery applies (the same [`Survey`] and [`scan_log`], so the two never
//! disagree about whether a directory is whole), then every CRC, every
//! manifest entry against the chunk it names, every chunk's columns, every
//! log record — and says what it found. It changes nothing: a torn tail is
//! reported, not cut.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use super::block::{
    partition_start, walk_block, ChunkHeader, CHUNK_HEADER_LEN, MAX_SPANS_PER_CHUNK,
};
use super::codec::{decode_spans, Reader};
use super::error::StorageError;
use super::io::{LockMode, RealFs, Vfs};
use super::layout::{Layout, Survey, MANIFEST_FILE, ROLLUP_FILE};
use super::log::scan_log;
use super::manifest::Manifest;
use super::record::decode_record;
use super::rollup::Rollup;
use super::rollup_file;
use super::segment::ScanEnd;

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

/// Verifies the data directory `dir` on the real file system.
pub fn check(dir: &Path) -> Result<CheckReport, StorageError> {
    check_with(&RealFs, dir)
}

/// Verifies the data directory `dir` through `vfs`. `Err` only when it
/// cannot be read at all; damage is reported in the [`CheckReport`].
pub fn check_with(vfs: &dyn Vfs, dir: &Path) -> Result<CheckReport, StorageError> {
    if !vfs.is_dir(dir) {
        return Err(StorageError::io(
            dir,
            "open data directory",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let layout = Layout::new(dir);
    let mut report = CheckReport::default();
    if let Err(e) = vfs.lock(&layout.lock(), LockMode::Shared) {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            report.notes.push(
                "a powerd process is using this directory; files may change while they are checked"
                    .into(),
            );
        }
    }
    let survey = match Survey::take(vfs, &layout) {
        Ok(survey) => survey,
        Err(e) => {
            report.problems.push(e.to_string());
            return Ok(report);
        }
    };
    report
        .problems
        .extend(survey.problems.iter().map(|p| p.to_string()));
    let manifest = &survey.manifest;
    if !survey.manifest_present && !survey.live_segments.is_empty() {
        report.notes.push(format!(
            "no {MANIFEST_FILE} yet: nothing has been checkpointed; powerd writes one on start"
        ));
    }
    let mut ships: HashSet<u64> = manifest.chunks.keys().map(|(ship, _)| *ship).collect();

    let mut walked: HashMap<u64, HashMap<u64, ChunkHeader>> = HashMap::new();
    let mut block_bytes: HashMap<u64, Vec<u8>> = HashMap::new();
    for id in layout.list_blocks(vfs).unwrap_or_default() {
        let path = layout.block(id);
        report.block_files += 1;
        if survey.orphan_blocks.contains(&id) {
            // Never data: a checkpoint that did not finish (its bytes may
            // be torn), or a block compaction emptied.
            report.notes.push(format!("{} is named by no manifest entry (left by an interrupted checkpoint or compaction); powerd deletes it on start", path.display()));
            continue;
        }
        let bytes = match vfs.read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                report
                    .problems
                    .push(StorageError::io(&path, "read", e).to_string());
                continue;
            }
        };
        match walk_block(&path, id, &bytes) {
            Ok(chunks) => {
                report.chunks += chunks.len();
                walked.insert(id, chunks.into_iter().collect());
                block_bytes.insert(id, bytes);
            }
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    for (&(ship, partition), location) in &manifest.chunks {
        let path = layout.block(location.block);
        // A missing block file is one of the survey's problems.
        let Some(chunks) = walked.get(&location.block) else {
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

    if report.problems.is_empty() {
        check_rollup(vfs, &layout, manifest, &block_bytes, &mut report);
    }

    for &sequence in &survey.stale_segments {
        report.notes.push(format!(
            "{} is already checkpointed; powerd deletes it on start",
            layout.segment(sequence).display()
        ));
    }
    report.segments = survey.live_segments.len();
    if !survey.problems.is_empty() {
        report
            .notes
            .push("the log was not replayed: files it needs are missing (see the problems)".into());
    } else {
        let mut records = 0u64;
        let scanned = scan_log(
            vfs,
            &layout,
            &survey.live_segments,
            |sequence, offset, kind, body| {
                let record = decode_record(&layout.segment(sequence), offset, kind, body)?;
                ships.insert(record.ship);
                records += 1;
                Ok(())
            },
        );
        report.records = records;
        match scanned {
            Ok(scan) => {
                if let Some(newest) = scan.newest() {
                    if let ScanEnd::TornTail {
                        valid_len,
                        dirty_end,
                        reason,
                        ..
                    } = &newest.end
                    {
                        report.notes.push(format!(
                            "{} ends in a torn tail at offset {valid_len} ({} bytes, {reason}): a write cut off by a crash, never acknowledged; powerd does not replay it",
                            layout.segment(newest.sequence).display(),
                            dirty_end - valid_len
                        ));
                    }
                }
                if let [.., previous, _] = scan.segments.as_slice() {
                    if previous.header.version >= 2 && !previous.linked {
                        report.notes.push(format!(
                            "{} has no rollover record naming the next segment (a crash while the log moved on); powerd writes it on start",
                            layout.segment(previous.sequence).display()
                        ));
                    }
                }
            }
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
    vfs: &dyn Vfs,
    layout: &Layout,
    manifest: &Manifest,
    block_bytes: &HashMap<u64, Vec<u8>>,
    report: &mut CheckReport,
) {
    let stored = match rollup_file::load(vfs, &layout.rollup(), &manifest.identity()) {
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
