//! The lake: the stored buckets as Apache Parquet, one file per node per
//! UTC day, for Spark and every other engine that reads Parquet; and back
//! (`powerd import`) to rebuild a node from it.
//!
//! Layout (README, "The Parquet lake"; Hive-style partitions):
//!
//! ```text
//! LAKE/date=YYYY-MM-DD/<node>.parquet   a node's buckets of that UTC day
//! LAKE/_powerd/<node>/state.json        what that node exported (readers skip `_` dirs)
//! ```
//!
//! Invariants:
//! - A day file holds exactly the node's stored buckets of that day, as
//!   `GET /data` prints them (`kwh` is the `f64` nearest to the printed
//!   decimal, which prints back to it), sorted by ship, then time.
//! - A file is replaced whole: written under a hidden temporary name in its
//!   directory (`.` names are skipped by Hive readers), synced, renamed over
//!   the old one, the directory synced. A reader sees the old day or the new
//!   one, never half of either.
//! - The state file only ever records a day after its file is in place, so
//!   a crash leaves at worst a day exported again; a day whose file is gone
//!   or changed size is exported again whatever the state says.
//! - This module uses the engine's public API only; the engine knows
//!   nothing of Parquet.

mod export;
mod import;
mod parquet_file;
mod state;

use std::fmt;
use std::path::{Path, PathBuf};

pub use export::{export_snapshot, ExportProgress, ExportSummary, Exporter, LakeStatus};
pub use import::{import, ImportSummary};

/// A node's name in the lake: it names files, so it must be a safe one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeName(String);

/// Longest node name.
const MAX_NODE_NAME: usize = 64;

impl NodeName {
    /// `[A-Za-z0-9._-]`, 1 to 64 characters, not starting with `.` or `_`
    /// (Hive readers skip such files) nor `-` (it would read as a flag).
    pub fn parse(name: &str) -> Result<NodeName, String> {
        if name.is_empty() || name.len() > MAX_NODE_NAME {
            return Err(format!(
                "{name:?} must be 1 to {MAX_NODE_NAME} characters long"
            ));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!(
                "{name:?} may hold only letters, digits, '.', '_' and '-', not {bad:?}"
            ));
        }
        if name.starts_with(['.', '_', '-']) {
            return Err(format!(
                "{name:?} must not start with '.', '_' or '-' (Spark and Hive skip files \
                 named so)"
            ));
        }
        Ok(NodeName(name.to_owned()))
    }

    /// This machine's host name, as the default node name.
    pub fn from_host() -> Result<NodeName, String> {
        let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map_err(|e| format!("cannot read the host name ({e}); pass --node NAME"))?;
        NodeName::parse(raw.trim()).map_err(|e| format!("the host name {e}; pass --node NAME"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What went wrong with the lake.
#[derive(Debug)]
pub enum LakeError {
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// A Parquet file that is not what powerd writes.
    BadFile {
        path: PathBuf,
        problem: String,
    },
    Storage(crate::storage::StorageError),
}

impl LakeError {
    fn io(path: &Path, action: &'static str, source: std::io::Error) -> LakeError {
        LakeError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    }

    fn bad(path: &Path, problem: impl fmt::Display) -> LakeError {
        LakeError::BadFile {
            path: path.to_owned(),
            problem: problem.to_string(),
        }
    }
}

impl fmt::Display for LakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LakeError::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            LakeError::BadFile { path, problem } => {
                write!(f, "{}: {problem}", path.display())
            }
            LakeError::Storage(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LakeError {}

impl From<crate::storage::StorageError> for LakeError {
    fn from(e: crate::storage::StorageError) -> Self {
        LakeError::Storage(e)
    }
}

/// `LAKE/date=YYYY-MM-DD`.
fn day_dir(lake: &Path, day: i64) -> PathBuf {
    lake.join(format!("date={}", day_name(day)))
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
fn day_name(day: i64) -> String {
    let stamp = crate::wire::format_timestamp(day * crate::model::SECONDS_PER_DAY);
    stamp.get(..10).unwrap_or(&stamp).to_owned()
}

/// The day number of `YYYY-MM-DD`, if it is one.
fn parse_day_name(name: &str) -> Option<i64> {
    let secs = crate::wire::parse_timestamp(&format!("{name}T00:00:00Z")).ok()?;
    (day_name(secs.div_euclid(crate::model::SECONDS_PER_DAY)) == name)
        .then_some(secs.div_euclid(crate::model::SECONDS_PER_DAY))
}

/// `<node>.parquet`.
fn file_name(node: &NodeName) -> String {
    format!("{node}.parquet")
}

/// Every day of `node` in the lake, with its file: `date=*/<node>.parquet`.
fn node_days(lake: &Path, node: &NodeName) -> Result<Vec<(i64, PathBuf)>, LakeError> {
    let mut days = Vec::new();
    let entries = match std::fs::read_dir(lake) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(days),
        Err(e) => return Err(LakeError::io(lake, "list", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| LakeError::io(lake, "list", e))?;
        let name = entry.file_name();
        let Some(day) = name
            .to_str()
            .and_then(|n| n.strip_prefix("date="))
            .and_then(parse_day_name)
        else {
            continue;
        };
        let file = entry.path().join(file_name(node));
        if file.is_file() {
            days.push((day, file));
        }
    }
    days.sort();
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        for good in ["a", "node-1", "ship.yard_2", &"x".repeat(64)] {
            assert_eq!(NodeName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            ".hidden",
            "_powerd",
            "-rf",
            "a/b",
            "..",
            "a b",
            "nöde",
            &"x".repeat(65),
        ] {
            assert!(NodeName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn day_names_round_trip() {
        for day in [-719_162, -1, 0, 1, 20_454, 2_932_896] {
            let name = day_name(day);
            assert_eq!(parse_day_name(&name), Some(day), "{name}");
        }
        assert_eq!(day_name(20_454), "2026-01-01");
        for bad in ["2026-02-30", "2026-1-01", "x", "2026-01-01T00:00:00Z", ""] {
            assert_eq!(parse_day_name(bad), None, "{bad}");
        }
    }
}
