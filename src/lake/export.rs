//! Exporting: a pass writes every day whose rows changed since the lake
//! last got them.
//!
//! The first pass of an [`Exporter`] looks at every day with data (and
//! every day the lake or the state file has for the node); later passes
//! only at the days written since the previous pass began
//! ([`Engine::days_changed_since`]) and the days whose file is missing or
//! not the size recorded. Either way a day is rewritten only if
//! its rows' fingerprint differs from the one recorded, or its file is
//! missing or of another size.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parquet::file::metadata::KeyValue;

use super::parquet_file::{self, Columns};
use super::state::{DayRecord, Fingerprint, State};
use super::{day_dir, day_name, file_name, node_days, LakeError, NodeName};
use crate::model::{NanoKwh, ShipId, BUCKETS_PER_DAY, BUCKET_SECONDS};
use crate::storage::{Engine, EngineOptions, StorageError};

/// What a pass did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportSummary {
    /// Days looked at.
    pub days_checked: u64,
    /// Day files written (new or replaced).
    pub days_written: u64,
    /// Day files removed (the node has no data left that day).
    pub days_removed: u64,
    /// Rows and bytes of the files written.
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Where a pass is, for progress lines.
#[derive(Clone, Debug)]
pub struct ExportProgress {
    pub days_done: usize,
    pub days_total: usize,
    pub days_written: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// The continuous export's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct LakeStatus {
    pub passes: AtomicU64,
    pub failures: AtomicU64,
    pub files_written: AtomicU64,
    pub files_removed: AtomicU64,
    pub rows_written: AtomicU64,
    pub bytes_written: AtomicU64,
    /// When the last pass that succeeded started (ms since the epoch; 0:
    /// none yet): every write acknowledged before it is in the lake.
    pub last_success_start_ms: AtomicU64,
    /// When the exporter was made (ms since the epoch).
    pub created_ms: u64,
}

impl LakeStatus {
    /// Seconds the lake may be behind: since the start of the last pass
    /// that succeeded (or since start-up, before one has).
    pub fn lag_seconds(&self) -> f64 {
        let since = match self.last_success_start_ms.load(Relaxed) {
            0 => self.created_ms,
            ms => ms,
        };
        now_ms().saturating_sub(since) as f64 / 1e3
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Exports one node's data to a lake, pass after pass.
pub struct Exporter {
    lake: PathBuf,
    node: NodeName,
    state: State,
    /// The engine's write number the last pass started at; `None` before
    /// the first pass.
    since: Option<u64>,
    status: Arc<LakeStatus>,
    /// The state changed since it was last saved.
    unsaved: bool,
    /// `LAKE/_powerd/<node>/lock`, held (flock) while this exporter lives:
    /// two exporters of one node would write the same files.
    _lock: File,
}

impl Exporter {
    /// Opens the node's state in `lake` (creating the lake if needed).
    pub fn new(lake: &Path, node: NodeName) -> Result<Exporter, LakeError> {
        std::fs::create_dir_all(lake).map_err(|e| LakeError::io(lake, "create", e))?;
        let state = State::load(lake, &node)?;
        let lock_path = State::dir(lake, &node).join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| LakeError::io(&lock_path, "open", e))?;
        if let Err(e) = lock.try_lock() {
            return Err(LakeError::io(
                &lock_path,
                "lock",
                std::io::Error::other(format!(
                    "another export of node {node} into this lake is running ({e})"
                )),
            ));
        }
        let status = LakeStatus {
            created_ms: now_ms(),
            ..LakeStatus::default()
        };
        Ok(Exporter {
            lake: lake.to_owned(),
            node,
            state,
            since: None,
            status: Arc::new(status),
            unsaved: false,
            _lock: lock,
        })
    }

    pub fn status(&self) -> Arc<LakeStatus> {
        Arc::clone(&self.status)
    }

    /// One pass (see the module docs). `stop` is checked between days: a
    /// stopped pass leaves every day it did not reach to the next one.
    pub fn pass(
        &mut self,
        engine: &Engine,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(&ExportProgress),
    ) -> Result<ExportSummary, LakeError> {
        let started = Instant::now();
        let started_ms = now_ms();
        let mut result = self.run_pass(engine, stop, progress);
        // Once per pass, also after a failed one (what it wrote stays
        // recorded). A crash before it leaves day files in place but not
        // recorded: the next pass writes them again, nothing worse.
        if self.unsaved {
            match self.state.save() {
                Ok(()) => self.unsaved = false,
                Err(e) if result.is_ok() => result = Err(e),
                Err(_) => {}
            }
        }
        self.status.passes.fetch_add(1, Relaxed);
        match &result {
            Ok(summary) => {
                self.status
                    .files_written
                    .fetch_add(summary.days_written, Relaxed);
                self.status
                    .files_removed
                    .fetch_add(summary.days_removed, Relaxed);
                self.status.rows_written.fetch_add(summary.rows, Relaxed);
                self.status.bytes_written.fetch_add(summary.bytes, Relaxed);
                if !stop.load(Relaxed) {
                    self.status.last_success_start_ms.store(started_ms, Relaxed);
                }
            }
            Err(_) => {
                self.status.failures.fetch_add(1, Relaxed);
            }
        }
        result.map(|mut summary| {
            summary.seconds = started.elapsed().as_secs_f64();
            summary
        })
    }

    fn run_pass(
        &mut self,
        engine: &Engine,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(&ExportProgress),
    ) -> Result<ExportSummary, LakeError> {
        // Taken before any data is read: what is read is at least as new.
        let (number, changed) = engine.days_changed_since(self.since.unwrap_or(0));
        let days: Vec<i64> = match self.since {
            // Plus any day whose file went missing or changed size under
            // us: a stat per exported day, cheap next to reading a day.
            Some(_) => {
                let mut days = changed;
                days.extend(self.state.days.iter().filter_map(|(&day, record)| {
                    let path = day_dir(&self.lake, day).join(file_name(&self.node));
                    let size = std::fs::metadata(&path).ok().map(|m| m.len());
                    (size != Some(record.bytes)).then_some(day)
                }));
                days.sort_unstable();
                days.dedup();
                days
            }
            None => {
                self.remove_stale_temporaries()?;
                let mut all = days_with_data(engine)?;
                all.extend(self.state.days.keys());
                all.extend(
                    node_days(&self.lake, &self.node)?
                        .iter()
                        .map(|(day, _)| day),
                );
                all.extend(changed);
                all.sort_unstable();
                all.dedup();
                all
            }
        };
        let ships = engine.ships();
        let mut summary = ExportSummary::default();
        let mut rows = Columns::default();
        for (done, &day) in days.iter().enumerate() {
            if stop.load(Relaxed) {
                return Ok(summary);
            }
            read_day(engine, &ships, day, &mut rows)?;
            summary.days_checked += 1;
            self.export_day(day, &rows, &mut summary)?;
            progress(&ExportProgress {
                days_done: done + 1,
                days_total: days.len(),
                days_written: summary.days_written,
                rows: summary.rows,
                bytes: summary.bytes,
            });
        }
        self.since = Some(number);
        Ok(summary)
    }

    /// Brings one day's file in line with `rows`.
    fn export_day(
        &mut self,
        day: i64,
        rows: &Columns,
        summary: &mut ExportSummary,
    ) -> Result<(), LakeError> {
        let dir = day_dir(&self.lake, day);
        let path = dir.join(file_name(&self.node));
        let on_disk = std::fs::metadata(&path).ok().map(|m| m.len());
        if rows.len() == 0 {
            if on_disk.is_some() {
                std::fs::remove_file(&path).map_err(|e| LakeError::io(&path, "remove", e))?;
                sync_dir(&dir)?;
                summary.days_removed += 1;
            }
            self.unsaved |= self.state.days.remove(&day).is_some();
            return Ok(());
        }
        let fingerprint = fingerprint(rows);
        let unchanged = self.state.days.get(&day).is_some_and(|record| {
            record.fingerprint == fingerprint
                && record.rows == rows.len() as u64
                && on_disk == Some(record.bytes)
        });
        if unchanged {
            return Ok(());
        }
        if on_disk.is_none() {
            std::fs::create_dir_all(&dir).map_err(|e| LakeError::io(&dir, "create", e))?;
            sync_dir(&self.lake)?;
        }
        let temporary = dir.join(temporary_name(&self.node));
        let metadata = vec![
            KeyValue::new("powerd.node".into(), self.node.to_string()),
            KeyValue::new("powerd.date".into(), day_name(day)),
        ];
        let bytes = match parquet_file::write(&temporary, rows, metadata) {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = std::fs::remove_file(&temporary);
                return Err(e);
            }
        };
        std::fs::rename(&temporary, &path).map_err(|e| LakeError::io(&path, "rename into", e))?;
        sync_dir(&dir)?;
        self.state.days.insert(
            day,
            DayRecord {
                rows: rows.len() as u64,
                bytes,
                fingerprint,
            },
        );
        self.unsaved = true;
        summary.days_written += 1;
        summary.rows += rows.len() as u64;
        summary.bytes += bytes;
        Ok(())
    }

    /// Temporary files of this node that a crash left in the day folders.
    fn remove_stale_temporaries(&self) -> Result<(), LakeError> {
        let prefix = temporary_name(&self.node);
        let Ok(entries) = std::fs::read_dir(&self.lake) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with("date=") {
                continue;
            }
            let stale = entry.path().join(&prefix);
            if stale.exists() {
                std::fs::remove_file(&stale).map_err(|e| LakeError::io(&stale, "remove", e))?;
            }
        }
        Ok(())
    }
}

/// `.<node>.parquet.tmp`: hidden from Hive readers, and one per node (one
/// exporter per node at a time, which the engine's lock or the snapshot
/// makes so).
fn temporary_name(node: &NodeName) -> String {
    format!(".{}.tmp", file_name(node))
}

/// The days with data, ascending: from the rollup index, or, without one,
/// from every ship's buckets.
fn days_with_data(engine: &Engine) -> Result<Vec<i64>, LakeError> {
    if let Some(range) = engine.stored_range() {
        let Some((first, end)) = range else {
            return Ok(Vec::new());
        };
        let first_day = first.div_euclid(BUCKETS_PER_DAY);
        let end_day = (end - 1).div_euclid(BUCKETS_PER_DAY) + 1;
        let days = engine
            .fleet(
                first_day * BUCKETS_PER_DAY,
                end_day * BUCKETS_PER_DAY,
                BUCKETS_PER_DAY,
            )
            .unwrap_or_default();
        return Ok(days
            .iter()
            .map(|interval| interval.first_bucket.div_euclid(BUCKETS_PER_DAY))
            .collect());
    }
    let mut days = std::collections::BTreeSet::new();
    for ship in engine.ships() {
        for bucket in engine
            .read_buckets(ship, i64::MIN / BUCKET_SECONDS, i64::MAX / BUCKET_SECONDS)?
            .unwrap_or_default()
        {
            days.insert(bucket.index.div_euclid(BUCKETS_PER_DAY));
        }
    }
    Ok(days.into_iter().collect())
}

/// Every ship's buckets of `day`, sorted by ship, then time.
fn read_day(
    engine: &Engine,
    ships: &[ShipId],
    day: i64,
    rows: &mut Columns,
) -> Result<(), StorageError> {
    rows.clear();
    let first = day * BUCKETS_PER_DAY;
    for &ship in ships {
        let Some(buckets) = engine.read_buckets(ship, first, first + BUCKETS_PER_DAY)? else {
            continue;
        };
        for bucket in buckets {
            rows.ships.push(ship);
            rows.starts_s.push(bucket.index * BUCKET_SECONDS);
            rows.kwh.push(kwh_of(bucket.energy));
            rows.coverage_s.push(bucket.coverage_s as i32);
        }
    }
    Ok(())
}

/// The `f64` nearest to the decimal `GET /data` prints for `nano` × 10⁻⁹
/// kWh (so it prints back to that decimal).
fn kwh_of(nano: NanoKwh) -> f64 {
    // Below 2^53 both operands are exact and the division rounds once.
    if nano.unsigned_abs() < 1 << 53 {
        return nano as f64 / 1e9;
    }
    let mut text = [0u8; crate::wire::NANOKWH_MAX_LEN];
    let len = crate::wire::format_nanokwh(&mut text, nano);
    std::str::from_utf8(&text[..len])
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(f64::MAX)
}

fn fingerprint(rows: &Columns) -> u64 {
    let mut hash = Fingerprint::default();
    for i in 0..rows.len() {
        hash.add(rows.ships[i]);
        hash.add(rows.starts_s[i] as u64);
        hash.add(rows.kwh[i].to_bits());
        hash.add(rows.coverage_s[i] as u64);
    }
    hash.value()
}

/// Syncs a directory, so a rename or a new entry in it is durable.
fn sync_dir(dir: &Path) -> Result<(), LakeError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LakeError::io(dir, "sync", e))
}

/// Replaces `path` whole: `write` fills a temporary file beside it, which
/// is synced and renamed over it, and the directory synced.
pub(super) fn replace_file(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), LakeError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let temporary = dir.join(format!(".{name}.tmp"));
    let result = File::create(&temporary)
        .and_then(|mut file| {
            write(&mut file)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(LakeError::io(path, "replace", e));
    }
    sync_dir(dir)
}

/// `powerd export`: one pass over `data_dir`. A directory a server is
/// serving (its lock is taken) is first copied with `powerd backup`'s
/// snapshot into `scratch` (removed afterwards) and exported from there.
pub fn export_snapshot(
    data_dir: &Path,
    lake: &Path,
    node: NodeName,
    scratch: &Path,
    progress: &mut dyn FnMut(&ExportProgress),
    note: &mut dyn FnMut(&str),
) -> Result<ExportSummary, LakeError> {
    if !data_dir.is_dir() {
        return Err(LakeError::io(
            data_dir,
            "export",
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such data directory"),
        ));
    }
    let mut exporter = Exporter::new(lake, node)?;
    let never = AtomicBool::new(false);
    match Engine::open(data_dir, EngineOptions::default()) {
        Ok(engine) => {
            let summary = exporter.pass(&engine, &never, progress);
            engine.close()?;
            summary
        }
        Err(StorageError::Locked { .. }) => {
            let copy = scratch.join(format!("powerd-export-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&copy);
            note(&format!(
                "a server is using {}: exporting a snapshot of it, copied to {}",
                data_dir.display(),
                copy.display()
            ));
            let result = (|| {
                crate::storage::backup(
                    &*crate::storage::io::RealFs::shared(),
                    data_dir,
                    &copy,
                    &crate::storage::BackupOptions::default(),
                    &mut |_| {},
                )?;
                let engine = Engine::open(&copy, EngineOptions::default())?;
                let summary = exporter.pass(&engine, &never, progress);
                engine.close()?;
                summary
            })();
            let _ = std::fs::remove_dir_all(&copy);
            result
        }
        Err(e) => Err(e.into()),
    }
}
