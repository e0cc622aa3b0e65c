//! File-system helpers the engine's durability rests on, over the I/O seam.

use std::path::Path;

use super::error::StorageError;
use super::io::{OpenMode, Vfs};
use super::layout::TMP_SUFFIX;

/// Makes a directory's entries (new, renamed or removed files) durable.
pub fn sync_dir(vfs: &dyn Vfs, dir: &Path) -> Result<(), StorageError> {
    vfs.sync_dir(dir)
        .map_err(|e| StorageError::io(dir, "sync directory", e))
}

/// Writes `bytes` to `path` atomically: `<path>.tmp`, synced, renamed over
/// `path`, and the directory synced.
pub fn write_atomic(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = std::path::PathBuf::from(tmp);
    let file = vfs
        .open(&tmp, OpenMode::CreateTruncate)
        .map_err(|e| StorageError::io(&tmp, "create", e))?;
    file.write_at(0, bytes)
        .map_err(|e| StorageError::io(&tmp, "write", e))?;
    file.sync().map_err(|e| StorageError::io(&tmp, "sync", e))?;
    drop(file);
    vfs.rename(&tmp, path)
        .map_err(|e| StorageError::io(path, "rename over", e))?;
    sync_dir(vfs, dir)
}

/// Removes a file; one already gone is fine.
pub fn remove_file(vfs: &dyn Vfs, path: &Path) -> Result<(), StorageError> {
    match vfs.remove(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, "remove", e)),
    }
}
