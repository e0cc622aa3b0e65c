//! File-system helpers the engine's durability rests on.

use std::fs::File;
use std::path::Path;

use super::error::StorageError;

/// Makes a directory's entries (new, renamed or removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, "sync directory", e))
}

/// Writes `bytes` to `path` atomically: a temporary file, synced, renamed
/// over `path`, and the directory synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(|e| StorageError::io(&tmp, "create", e))?;
    file.write_all(bytes)
        .map_err(|e| StorageError::io(&tmp, "write", e))?;
    file.sync_all()
        .map_err(|e| StorageError::io(&tmp, "sync", e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| StorageError::io(path, "rename over", e))?;
    sync_dir(dir)
}
