//! The data directory: every name in it, in one place, and the structural
//! rules that say whether a directory is whole — which files must exist,
//! which are leftovers. Recovery and `powerd check` both take a [`Survey`],
//! so they can never disagree about whether a file is missing.
//! The layout is described in storage-format.md, "Directory layout".

use std::path::{Path, PathBuf};

use super::error::StorageError;
use super::io::Vfs;
use super::manifest::Manifest;

pub const LOG_DIR: &str = "log";
pub const BLOCK_DIR: &str = "blocks";
pub const LOCK_FILE: &str = "LOCK";
pub const MANIFEST_FILE: &str = "MANIFEST";
pub const ROLLUP_FILE: &str = "ROLLUP";
/// Present while `powerd backup` fills a directory: such a directory may
/// lack files, and nothing serves or trusts it.
pub const BACKUP_MARKER: &str = "BACKUP-INCOMPLETE";
/// Suffix of a file being replaced atomically (`MANIFEST.tmp`, `ROLLUP.tmp`).
pub const TMP_SUFFIX: &str = ".tmp";
const SEGMENT_SUFFIX: &str = ".log";
const BLOCK_SUFFIX: &str = ".blk";
/// Suffix of spare log segments: zero-filled, not yet numbered.
pub const SPARE_SUFFIX: &str = ".spare";

/// The paths of one data directory.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
    pub log_dir: PathBuf,
    pub block_dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
            log_dir: dir.join(LOG_DIR),
            block_dir: dir.join(BLOCK_DIR),
        }
    }

    pub fn segment(&self, sequence: u64) -> PathBuf {
        self.log_dir.join(format!("{sequence:020}{SEGMENT_SUFFIX}"))
    }

    /// Spare number `n`: `n` counts the spares the running process made.
    pub fn spare(&self, n: u64) -> PathBuf {
        self.log_dir.join(format!("{n:020}{SPARE_SUFFIX}"))
    }

    pub fn block(&self, id: u64) -> PathBuf {
        self.block_dir.join(format!("{id:020}{BLOCK_SUFFIX}"))
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.join(MANIFEST_FILE)
    }

    pub fn rollup(&self) -> PathBuf {
        self.dir.join(ROLLUP_FILE)
    }

    pub fn lock(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    pub fn backup_marker(&self) -> PathBuf {
        self.dir.join(BACKUP_MARKER)
    }

    /// Refuses a directory an unfinished backup left (it may lack any
    /// file): what `serve`, `check` and `backup` say of it.
    pub fn refuse_unfinished_backup(&self, vfs: &dyn Vfs) -> Result<(), StorageError> {
        if list(vfs, &self.dir)?.iter().any(|n| n == BACKUP_MARKER) {
            return Err(StorageError::IncompleteBackup {
                marker: self.backup_marker(),
            });
        }
        Ok(())
    }

    /// Sequence numbers of the segment files, ascending.
    pub fn list_segments(&self, vfs: &dyn Vfs) -> Result<Vec<u64>, StorageError> {
        list_numbered(vfs, &self.log_dir, SEGMENT_SUFFIX)
    }

    /// Ids of the block files, ascending.
    pub fn list_blocks(&self, vfs: &dyn Vfs) -> Result<Vec<u64>, StorageError> {
        list_numbered(vfs, &self.block_dir, BLOCK_SUFFIX)
    }

    /// Spare segments and half-written temporary files: never data.
    fn list_leftovers(&self, vfs: &dyn Vfs) -> Result<Vec<PathBuf>, StorageError> {
        let mut out = Vec::new();
        for (dir, suffix) in [(&self.log_dir, SPARE_SUFFIX), (&self.dir, TMP_SUFFIX)] {
            let mut names = list(vfs, dir)?;
            names.sort();
            out.extend(
                names
                    .into_iter()
                    .filter(|n| n.ends_with(suffix))
                    .map(|n| dir.join(n)),
            );
        }
        Ok(out)
    }
}

/// The names in `dir`; none when it does not exist (yet): a missing
/// `log/` or `blocks/` holds nothing, and whatever should have been in it
/// is named missing by the rules that need it.
fn list(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<String>, StorageError> {
    match vfs.list(dir) {
        Ok(names) => Ok(names),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StorageError::io(dir, "list", e)),
    }
}

fn list_numbered(vfs: &dyn Vfs, dir: &Path, suffix: &str) -> Result<Vec<u64>, StorageError> {
    let names = list(vfs, dir)?;
    let mut out: Vec<u64> = names
        .iter()
        .filter_map(|name| name.strip_suffix(suffix)?.parse().ok())
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// What a data directory holds, sorted into what is live and what is
/// left over, with every structural problem found.
#[derive(Debug)]
pub struct Survey {
    pub manifest: Manifest,
    /// Whether `MANIFEST` exists (a directory gets one when first opened).
    pub manifest_present: bool,
    /// The log segments recovery replays: consecutive, from the manifest's
    /// `first_live_segment` to the newest.
    pub live_segments: Vec<u64>,
    /// Segments already folded into blocks, left by an interrupted
    /// checkpoint.
    pub stale_segments: Vec<u64>,
    /// Block files no manifest entry names, left by an interrupted
    /// checkpoint.
    pub orphan_blocks: Vec<u64>,
    /// Spare segments and temporary files.
    pub leftovers: Vec<PathBuf>,
    /// Files that must exist and do not: acknowledged data may be lost, so
    /// nothing may serve this directory. Each names the missing file.
    pub problems: Vec<StorageError>,
}

impl Survey {
    /// Lists `layout`'s files and applies the structural rules
    /// (storage-format.md, "What must exist"). `Err` only when the
    /// directory cannot be listed or the manifest cannot be read; missing
    /// files are [`Survey::problems`].
    pub fn take(vfs: &dyn Vfs, layout: &Layout) -> Result<Survey, StorageError> {
        layout.refuse_unfinished_backup(vfs)?;
        let (manifest, manifest_present) = match Manifest::load(vfs, &layout.manifest())? {
            Some(manifest) => (manifest, true),
            None => (Manifest::empty(), false),
        };
        let blocks = layout.list_blocks(vfs)?;
        let segments = layout.list_segments(vfs)?;
        let first_live = manifest.first_live_segment;
        let mut problems = Vec::new();
        let missing = |path: PathBuf, why: String| StorageError::Missing { path, why };

        if !manifest_present {
            if let Some(&block) = blocks.first() {
                problems.push(missing(
                    layout.manifest(),
                    format!(
                        "{} holds {} block file(s) ({} first), which only a MANIFEST can name",
                        layout.block_dir.display(),
                        blocks.len(),
                        layout.block(block).display()
                    ),
                ));
            }
            if let Some(&first) = segments.first().filter(|&&s| s != 1) {
                problems.push(missing(
                    layout.manifest(),
                    format!(
                        "the log starts at segment {first}: the segments before it were folded \
                         into blocks by a checkpoint whose MANIFEST is gone"
                    ),
                ));
            }
        }
        for &block in manifest
            .chunks
            .values()
            .map(|c| &c.block)
            .collect::<std::collections::BTreeSet<_>>()
        {
            if blocks.binary_search(&block).is_err() {
                problems.push(missing(
                    layout.block(block),
                    format!("{} names it", layout.manifest().display()),
                ));
            }
        }
        let live_segments: Vec<u64> = segments
            .iter()
            .copied()
            .filter(|&s| s >= first_live)
            .collect();
        if manifest_present && live_segments.first() != Some(&first_live) {
            problems.push(missing(
                layout.segment(first_live),
                format!(
                    "{} says the log starts with it",
                    layout.manifest().display()
                ),
            ));
        }
        problems.extend(live_segment_holes(layout, &live_segments));
        let named: std::collections::HashSet<u64> =
            manifest.chunks.values().map(|c| c.block).collect();
        Ok(Survey {
            orphan_blocks: blocks
                .iter()
                .copied()
                .filter(|b| !named.contains(b))
                .collect(),
            stale_segments: segments
                .iter()
                .copied()
                .filter(|&s| s < first_live)
                .collect(),
            leftovers: layout.list_leftovers(vfs)?,
            live_segments,
            manifest,
            manifest_present,
            problems,
        })
    }

    /// The first problem, as an error: what refuses a start.
    pub fn ensure_whole(&self) -> Result<(), StorageError> {
        self.problems.first().cloned().map_or(Ok(()), Err)
    }
}

/// The one rule for live segments: they are consecutive. A gap is a lost
/// segment, named.
fn live_segment_holes(layout: &Layout, live: &[u64]) -> Vec<StorageError> {
    live.windows(2)
        .filter(|pair| pair[1] != pair[0] + 1)
        .flat_map(|pair| (pair[0] + 1..pair[1]).take(3).map(move |m| (pair, m)))
        .map(|(pair, m)| StorageError::Missing {
            path: layout.segment(m),
            why: format!(
                "the log has a hole between segments {} and {}",
                pair[0], pair[1]
            ),
        })
        .collect()
}
