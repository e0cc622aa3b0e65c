//! The engine's one I/O seam: every file operation the storage engine makes
//! — create, open, positional write, set_len, sync, rename, remove,
//! directory sync, read, map, list, lock — goes through [`Vfs`].
//!
//! Production uses [`RealFs`] (the operating system's file system, and
//! memmap2 for sealed blocks). The power-cut tests use
//! [`SimFs`](super::sim::SimFs), which keeps per file and directory what is
//! durable and what is only written, so it can cut the power after any
//! operation and show what a real disk could have kept. The seam is the
//! habit of redb's `StorageBackend` and LevelDB's `Env`: small enough that a
//! test double can honour every method exactly.
//!
//! Semantics every implementation must keep (the engine's durability argument
//! rests on them, see storage-format.md, "Assumptions about the medium"):
//! - [`VfsFile::sync`] makes the file's data and size durable
//!   (`fdatasync`); it says nothing about the file's directory entry;
//! - [`Vfs::sync_dir`] makes a directory's entries durable (creates, renames,
//!   removals in it);
//! - [`Vfs::rename`] within one directory is atomic.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How [`Vfs::open`] opens a file for writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// A new file; fails if one exists.
    CreateNew,
    /// Created if missing, emptied if present.
    CreateTruncate,
    /// An existing file, contents kept.
    Existing,
}

/// Which lock [`Vfs::lock`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// One process at a time: the serving engine.
    Exclusive,
    /// Any number of readers, none while an exclusive holder exists.
    Shared,
}

/// A file open for writing. Methods take `&self`: positional writes need no
/// cursor, so one handle can be shared without a lock.
pub trait VfsFile: Send + Sync {
    /// Writes all of `bytes` at `offset`; durable only after [`VfsFile::sync`].
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Shortens or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data and length durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
}

/// A held lock; dropping it releases the lock.
pub type LockGuard = Box<dyn Send + Sync>;

/// The file system as the engine sees it. Paths are the engine's own
/// (the data directory joined with the names in [`super::layout`]).
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Creates `dir` and any missing parents; `Ok(true)` when `dir` itself
    /// was created (its parent's entry then needs a [`Vfs::sync_dir`]).
    fn create_dir_all(&self, dir: &Path) -> io::Result<bool>;
    /// Whether `path` names an existing directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// The names of the entries in `dir`, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// A read-only view of a file that will never change again (a sealed
    /// block); see [`Mapped`].
    fn map(&self, path: &Path) -> io::Result<Mapped>;
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>>;
    /// Atomically replaces `to` by `from` (same directory).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes a lock on `path` (created if missing); `ErrorKind::WouldBlock`
    /// when another holder has it.
    fn lock(&self, path: &Path, mode: LockMode) -> io::Result<LockGuard>;
    /// 64 unpredictable bits, for the log's frame keys. Part of the seam so
    /// that a simulated run is replayable from its seed.
    fn entropy(&self) -> u64;
}

/// A read-only view of a whole sealed file.
pub struct Mapped(MappedInner);

enum MappedInner {
    Map(memmap2::Mmap),
    Memory(Arc<[u8]>),
    Empty,
}

impl Mapped {
    /// A view of bytes held in memory (the simulated file system's).
    pub fn from_memory(bytes: Arc<[u8]>) -> Mapped {
        Mapped(MappedInner::Memory(bytes))
    }
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            MappedInner::Map(map) => map,
            MappedInner::Memory(bytes) => bytes,
            MappedInner::Empty => &[],
        }
    }
}

impl fmt::Debug for Mapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mapped({} bytes)", self.len())
    }
}

/// The operating system's file system.
#[derive(Debug, Default)]
pub struct RealFs;

impl RealFs {
    pub fn shared() -> Arc<dyn Vfs> {
        Arc::new(RealFs)
    }
}

struct RealFile(File);

impl VfsFile for RealFile {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, bytes, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl Vfs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<bool> {
        if dir.is_dir() {
            return Ok(false);
        }
        std::fs::create_dir_all(dir)?;
        Ok(true)
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            // A name that is not UTF-8 is none of ours.
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        let file = File::open(path)?;
        // A zero-length file cannot be mapped; its header check rejects it.
        if file.metadata()?.len() == 0 {
            return Ok(Mapped(MappedInner::Empty));
        }
        // SAFETY: only sealed files are mapped (the `map` contract): powerd
        // wrote and synced them whole before mapping, never writes to or
        // truncates them again, and unlinks them only when no manifest names
        // them (an unlinked file's existing maps stay valid on Unix). The
        // data directory is locked against other powerd processes, so the
        // bytes do not change while mapped. Exercised by every test that
        // reads sealed data, and by the block_chunk fuzz target's decoders.
        let map = unsafe { memmap2::Mmap::map(&file) }?;
        Ok(Mapped(MappedInner::Map(map)))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let mut options = OpenOptions::new();
        options.write(true);
        match mode {
            OpenMode::CreateNew => options.create_new(true),
            OpenMode::CreateTruncate => options.create(true).truncate(true),
            OpenMode::Existing => &mut options,
        };
        Ok(Box::new(RealFile(options.open(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path, mode: LockMode) -> io::Result<LockGuard> {
        let file = match mode {
            LockMode::Exclusive => OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)?,
            LockMode::Shared => File::open(path)?,
        };
        // A process forking a child holds a copy of every descriptor until
        // the child's `exec` closes it, flock included, so a lock just
        // released by another engine in this process can look taken for a
        // moment: retry briefly before calling it held.
        let deadline = match mode {
            LockMode::Exclusive => Instant::now() + Duration::from_secs(1),
            // A probe (`powerd check`) answers at once.
            LockMode::Shared => Instant::now(),
        };
        loop {
            let attempt = match mode {
                LockMode::Exclusive => file.try_lock(),
                LockMode::Shared => file.try_lock_shared(),
            };
            match attempt {
                Ok(()) => return Ok(Box::new(file)),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::from(io::ErrorKind::WouldBlock))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    fn entropy(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        // std's hash keys are drawn from the OS's random source once per
        // thread and stepped per `RandomState`; SipHash under them is
        // unpredictable to anyone outside this process.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.write_u32(std::process::id());
        hasher.finish()
    }
}
