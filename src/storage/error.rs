//! Storage errors, written for operators: each names the file and, for
//! damage, the byte offset.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
#[non_exhaustive]
pub enum StorageError {
    /// The operating system refused an operation on `path`.
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    /// A file's bytes are not what the format promises (bad CRC, bad magic,
    /// impossible field). Never returned for a torn log tail, which recovery
    /// cuts back instead.
    Corrupted {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    /// A file of a format version this build does not read (written by a
    /// newer powerd, most likely): nothing is changed.
    Unsupported { path: PathBuf, what: String },
    /// The engine has shut down, or a previous I/O failure stopped the log.
    Closed,
    /// A batch broke the engine's input contract (unsorted, overlapping,
    /// empty or non-finite spans). The HTTP layer never sends one.
    InvalidBatch(String),
    /// An earlier failure (a log write or sync, a checkpoint) stopped the
    /// engine from taking writes.
    Failed(String),
    /// Another process holds the data directory.
    Locked { path: PathBuf },
    /// A file that holds (or may hold) acknowledged data is gone: the
    /// directory is not whole, and nothing may serve it as if it were.
    Missing { path: PathBuf, why: String },
    /// The directory is a backup that never completed (its marker is
    /// there): files may be missing.
    IncompleteBackup { marker: PathBuf },
}

impl StorageError {
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// Whether the file system is out of space (or quota): the one failure
    /// that clears when an operator frees space, and that clients are told
    /// about as such.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StorageError::Io { source, .. }
            if matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded))
    }

    /// A format version outside `oldest..=newest`, as the one message
    /// every file kind gives.
    pub fn unsupported_version(
        path: impl Into<PathBuf>,
        noun: &str,
        version: u32,
        oldest: u32,
        newest: u32,
    ) -> Self {
        let readable = if oldest == newest {
            newest.to_string()
        } else {
            format!("{oldest} to {newest}")
        };
        StorageError::Unsupported {
            path: path.into(),
            what: format!("unsupported {noun} version {version} (this build reads {readable})"),
        }
    }

    pub fn corrupted(path: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        StorageError::Corrupted {
            path: path.into(),
            offset,
            what: what.into(),
        }
    }
}

/// A copy for every waiter of a failed group or checkpoint. An I/O error
/// keeps its OS code (ENOSPC stays a full disk) and its text.
impl Clone for StorageError {
    fn clone(&self) -> Self {
        match self {
            StorageError::Io { path, op, source } => StorageError::Io {
                path: path.clone(),
                op,
                source: match source.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                },
            },
            StorageError::Corrupted { path, offset, what } => StorageError::Corrupted {
                path: path.clone(),
                offset: *offset,
                what: what.clone(),
            },
            StorageError::Unsupported { path, what } => StorageError::Unsupported {
                path: path.clone(),
                what: what.clone(),
            },
            StorageError::Closed => StorageError::Closed,
            StorageError::InvalidBatch(what) => StorageError::InvalidBatch(what.clone()),
            StorageError::Failed(what) => StorageError::Failed(what.clone()),
            StorageError::Locked { path } => StorageError::Locked { path: path.clone() },
            StorageError::Missing { path, why } => StorageError::Missing {
                path: path.clone(),
                why: why.clone(),
            },
            StorageError::IncompleteBackup { marker } => StorageError::IncompleteBackup {
                marker: marker.clone(),
            },
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { path, op, source } => write!(f, "{op} {}: {source}", path.display()),
            StorageError::Corrupted { path, offset, what } => {
                write!(
                    f,
                    "corrupted data in {} at byte offset {offset}: {what}",
                    path.display()
                )
            }
            StorageError::Unsupported { path, what } => write!(
                f,
                "{}: {what}; it was written by a newer powerd (or not by powerd): open it \
                 with that version; nothing was changed",
                path.display()
            ),
            StorageError::Closed => write!(f, "the storage engine is closed"),
            StorageError::InvalidBatch(what) => write!(f, "invalid write batch: {what}"),
            StorageError::Failed(what) => {
                write!(f, "the storage engine stopped taking writes: {what}")
            }
            StorageError::Missing { path, why } => {
                write!(
                    f,
                    "{} is missing ({why}): acknowledged data may be lost; restore the file \
                     from a backup, or move the directory aside",
                    path.display()
                )
            }
            StorageError::Locked { path } => {
                write!(
                    f,
                    "data directory {} is in use by another powerd process",
                    path.display()
                )
            }
            StorageError::IncompleteBackup { marker } => {
                let dir = marker.parent().unwrap_or(Path::new("."));
                write!(
                    f,
                    "{} is an incomplete backup ({} is still there: `powerd backup` was \
                     interrupted or failed), so files may be missing; delete it and make a new \
                     backup",
                    dir.display(),
                    marker.display()
                )
            }
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
