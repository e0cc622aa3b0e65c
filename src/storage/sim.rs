//! A simulated file system for the power-cut and fault tests: an in-memory
//! [`Vfs`] that keeps, per file and per directory, what is durable and what
//! is only written, in the manner of RocksDB's `FaultInjectionTestEnv` and
//! SQLite's crash-test VFS.
//!
//! - A file holds its *live* bytes (what reads see) and its *durable* bytes
//!   (as of its last [`VfsFile::sync`]).
//! - A directory holds its live entries, its durable entries (as of its
//!   last [`Vfs::sync_dir`]) and the creates, renames and removals made
//!   since.
//! - [`SimFs::cut_power_after`] makes every operation after the `n`-th
//!   fail, as if the machine had lost power there; [`SimFs::crash_image`]
//!   then builds the file system a restart would find, under the medium
//!   assumptions of storage-format.md: what was synced is kept; of a file's
//!   unsynced growth an arbitrary prefix is kept, in 512-byte sectors; each
//!   unsynced sector holds either its old or its new content; each unsynced
//!   directory operation may or may not have happened (in order).
//! - [`SimFs::set_fault`] fails chosen operations with chosen errors
//!   (ENOSPC, EIO), and [`SimFs::set_capacity`] makes writes that need more
//!   space than is left fail with ENOSPC, as a full disk does.
//!
//! Everything is deterministic: the crash image and the frame keys come
//! from seeds, so a failure found by a random run replays from its seed.
//! Not for production: it holds every file in memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::io::{LockGuard, LockMode, Mapped, OpenMode, Vfs, VfsFile};

/// The unit of a torn write: every sector of unsynced data independently
/// holds its old or its new bytes.
pub const SECTOR_BYTES: usize = 512;

/// What an operation was, for fault rules and traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    CreateDir,
    List,
    Read,
    Map,
    Open,
    Create,
    Write,
    SetLen,
    Sync,
    Rename,
    Remove,
    SyncDir,
    Lock,
}

impl OpKind {
    pub const ALL: [OpKind; 13] = [
        OpKind::CreateDir,
        OpKind::List,
        OpKind::Read,
        OpKind::Map,
        OpKind::Open,
        OpKind::Create,
        OpKind::Write,
        OpKind::SetLen,
        OpKind::Sync,
        OpKind::Rename,
        OpKind::Remove,
        OpKind::SyncDir,
        OpKind::Lock,
    ];
}

/// One operation, as a fault rule sees it.
#[derive(Clone, Debug)]
pub struct Op {
    /// 1 for the first operation of this file system.
    pub index: u64,
    pub kind: OpKind,
    pub path: PathBuf,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {:?} {}", self.index, self.kind, self.path.display())
    }
}

/// Decides, before an operation runs, whether it fails and with what.
pub type FaultRule = Box<dyn FnMut(&Op) -> Option<io::Error> + Send>;

/// The simulated file system. Clones share one state.
#[derive(Clone)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        write!(f, "SimFs({} operations)", state.ops)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir,
}

#[derive(Clone, Debug)]
enum DirOp {
    Insert(String, Entry),
    Rename(String, String),
    Remove(String),
}

#[derive(Clone, Default)]
struct Dir {
    live: BTreeMap<String, Entry>,
    durable: BTreeMap<String, Entry>,
    pending: Vec<DirOp>,
}

#[derive(Clone, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
}

struct State {
    dirs: BTreeMap<PathBuf, Dir>,
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    /// Operations attempted so far.
    ops: u64,
    /// Operations after this many fail: the power is cut.
    cut_after: Option<u64>,
    powered: bool,
    fault: Option<FaultRule>,
    /// Bytes the live files may hold in all; growth past it is ENOSPC.
    capacity: Option<u64>,
    rng: SplitMix64,
    trace: VecDeque<String>,
}

const TRACE_LEN: usize = 48;

fn root() -> PathBuf {
    PathBuf::from("/")
}

fn error(kind: io::ErrorKind, what: &str, path: &Path) -> io::Error {
    io::Error::new(kind, format!("{what}: {}", path.display()))
}

/// ENOSPC, as the operating system reports a full disk.
pub fn disk_full() -> io::Error {
    io::Error::from_raw_os_error(28)
}

/// EIO, a failing device.
pub fn io_error() -> io::Error {
    io::Error::from_raw_os_error(5)
}

impl State {
    fn new(seed: u64) -> State {
        let mut dirs = BTreeMap::new();
        dirs.insert(root(), Dir::default());
        State {
            dirs,
            inodes: HashMap::new(),
            next_inode: 1,
            ops: 0,
            cut_after: None,
            powered: true,
            fault: None,
            capacity: None,
            rng: SplitMix64(seed),
            trace: VecDeque::new(),
        }
    }

    /// Admits one operation: counts it, and fails it if the power is off,
    /// goes off now, or a fault rule says so.
    fn begin(&mut self, kind: OpKind, path: &Path) -> io::Result<()> {
        if !self.powered {
            return Err(io::Error::other("simulated power cut: the machine is off"));
        }
        if self.cut_after == Some(self.ops) {
            self.powered = false;
            self.note(format!("power cut before {kind:?} {}", path.display()));
            return Err(io::Error::other("simulated power cut"));
        }
        self.ops += 1;
        let op = Op {
            index: self.ops,
            kind,
            path: path.to_path_buf(),
        };
        if let Some(rule) = &mut self.fault {
            if let Some(e) = rule(&op) {
                self.note(format!("{op} -> injected {e}"));
                return Err(e);
            }
        }
        self.note(op.to_string());
        Ok(())
    }

    fn note(&mut self, line: String) {
        if self.trace.len() == TRACE_LEN {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    fn split(path: &Path) -> io::Result<(PathBuf, String)> {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        match (parent, path.file_name().and_then(|n| n.to_str())) {
            (Some(parent), Some(name)) if path.is_absolute() => {
                Ok((parent.to_path_buf(), name.to_string()))
            }
            _ => Err(error(
                io::ErrorKind::InvalidInput,
                "the simulated file system takes absolute paths",
                path,
            )),
        }
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs
            .get_mut(dir)
            .ok_or_else(|| error(io::ErrorKind::NotFound, "no such directory", dir))
    }

    fn entry(&self, path: &Path) -> io::Result<Entry> {
        let (parent, name) = State::split(path)?;
        self.dirs
            .get(&parent)
            .and_then(|d| d.live.get(&name))
            .copied()
            .ok_or_else(|| error(io::ErrorKind::NotFound, "no such file", path))
    }

    fn file(&self, path: &Path) -> io::Result<u64> {
        match self.entry(path)? {
            Entry::File(inode) => Ok(inode),
            Entry::Dir => Err(error(io::ErrorKind::IsADirectory, "is a directory", path)),
        }
    }

    fn used(&self) -> u64 {
        let mut counted = std::collections::HashSet::new();
        let mut used = 0u64;
        for dir in self.dirs.values() {
            for entry in dir.live.values() {
                if let Entry::File(inode) = entry {
                    if counted.insert(*inode) {
                        used += self.inodes[inode].live.len() as u64;
                    }
                }
            }
        }
        used
    }

    /// Fails with ENOSPC when growing a file by `growth` bytes would pass
    /// the capacity.
    fn reserve(&mut self, growth: u64, path: &Path) -> io::Result<()> {
        if let Some(capacity) = self.capacity {
            if growth > 0 && self.used() + growth > capacity {
                self.note(format!("ENOSPC growing {} by {growth}", path.display()));
                return Err(disk_full());
            }
        }
        Ok(())
    }
}

fn apply(entries: &mut BTreeMap<String, Entry>, op: &DirOp) {
    match op {
        DirOp::Insert(name, entry) => {
            entries.insert(name.clone(), *entry);
        }
        DirOp::Rename(from, to) => {
            if let Some(entry) = entries.remove(from) {
                entries.insert(to.clone(), entry);
            }
        }
        DirOp::Remove(name) => {
            entries.remove(name);
        }
    }
}

impl Default for SimFs {
    fn default() -> Self {
        SimFs::new(0)
    }
}

impl SimFs {
    /// An empty file system holding only `/`; `seed` drives its entropy.
    pub fn new(seed: u64) -> SimFs {
        SimFs {
            state: Arc::new(Mutex::new(State::new(seed))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding it leaves nothing worth saving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Operations attempted so far (the power-cut countdown counts these).
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Cuts the power after `ops` operations in all have run (counting
    /// those already run): every later operation fails.
    pub fn cut_power_after(&self, ops: u64) {
        let mut state = self.lock();
        state.cut_after = Some(ops);
        if state.ops >= ops {
            state.powered = false;
        }
    }

    /// Cuts the power now.
    pub fn cut_power(&self) {
        let mut state = self.lock();
        state.powered = false;
    }

    pub fn powered(&self) -> bool {
        self.lock().powered
    }

    /// Installs (or with `None` removes) a rule that may fail operations.
    pub fn set_fault(&self, rule: Option<FaultRule>) {
        self.lock().fault = rule;
    }

    /// Limits the bytes all files may hold (`None`: unlimited).
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// Bytes the live files hold in all.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used()
    }

    /// The last operations, oldest first, for a failure message.
    pub fn trace(&self) -> Vec<String> {
        self.lock().trace.iter().cloned().collect()
    }

    /// Creates `dir` (and parents) durably, as a test's starting point.
    pub fn mkdir_durable(&self, dir: &Path) {
        let mut state = self.lock();
        let mut path = PathBuf::from("/");
        for component in dir.components().skip(1) {
            let name = component.as_os_str().to_string_lossy().into_owned();
            let child = path.join(&name);
            if !state.dirs.contains_key(&child) {
                state.dirs.insert(child.clone(), Dir::default());
                let parent = state.dirs.get_mut(&path).expect("parent made first");
                parent.live.insert(name.clone(), Entry::Dir);
                parent.durable.insert(name, Entry::Dir);
            }
            path = child;
        }
    }

    /// The live bytes of a file, for tests that damage or inspect files.
    pub fn file_bytes(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.lock();
        let inode = state.file(path)?;
        Ok(state.inodes[&inode].live.clone())
    }

    /// Replaces a file's bytes durably (a test's hand-made damage).
    pub fn put_file_durable(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        let inode = state.file(path)?;
        let node = state.inodes.get_mut(&inode).expect("entry names an inode");
        node.live = bytes.to_vec();
        node.durable = bytes.to_vec();
        Ok(())
    }

    /// Removes a file durably (a test's lost file).
    pub fn remove_durable(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let (parent, name) = State::split(path)?;
        let dir = state.dir_mut(&parent)?;
        dir.live.remove(&name);
        dir.durable.remove(&name);
        Ok(())
    }

    /// What a restart after `kill -9` now would find: every write and
    /// directory operation made so far (the page cache survives a killed
    /// process), all of it durable.
    pub fn kill_image(&self) -> SimFs {
        let mut state = self.lock();
        let image = State {
            dirs: state
                .dirs
                .iter()
                .map(|(path, dir)| {
                    (
                        path.clone(),
                        Dir {
                            live: dir.live.clone(),
                            durable: dir.live.clone(),
                            pending: Vec::new(),
                        },
                    )
                })
                .collect(),
            inodes: state
                .inodes
                .iter()
                .map(|(&id, inode)| {
                    (
                        id,
                        Inode {
                            live: inode.live.clone(),
                            durable: inode.live.clone(),
                        },
                    )
                })
                .collect(),
            next_inode: state.next_inode,
            ..State::new(state.rng.next_u64())
        };
        SimFs {
            state: Arc::new(Mutex::new(image)),
        }
    }

    /// What a restart after a power cut now would find: a new, powered
    /// file system whose every byte and entry is durable. `seed` picks,
    /// reproducibly, which unsynced writes and directory operations made it.
    pub fn crash_image(&self, seed: u64) -> SimFs {
        let state = self.lock();
        let mut rng = SplitMix64(seed ^ 0x9e37_79b9_7f4a_7c15);
        let mut image = State::new(rng.next_u64());
        let mut contents: HashMap<u64, u64> = HashMap::new();
        let mut stack = vec![root()];
        while let Some(path) = stack.pop() {
            let dir = &state.dirs[&path];
            let mut entries = dir.durable.clone();
            for op in &dir.pending {
                if rng.coin() {
                    apply(&mut entries, op);
                }
            }
            let mut kept = BTreeMap::new();
            for (name, entry) in entries {
                match entry {
                    Entry::Dir => {
                        // A directory whose own entries were never made
                        // live (not possible here) would be skipped.
                        if state.dirs.contains_key(&path.join(&name)) {
                            stack.push(path.join(&name));
                            kept.insert(name, Entry::Dir);
                        }
                    }
                    Entry::File(inode) => {
                        let new_inode = *contents.entry(inode).or_insert_with(|| {
                            let bytes = crash_content(&state.inodes[&inode], &mut rng);
                            let id = image.next_inode;
                            image.next_inode += 1;
                            image.inodes.insert(
                                id,
                                Inode {
                                    live: bytes.clone(),
                                    durable: bytes,
                                },
                            );
                            id
                        });
                        kept.insert(name, Entry::File(new_inode));
                    }
                }
            }
            image.dirs.insert(
                path,
                Dir {
                    live: kept.clone(),
                    durable: kept,
                    pending: Vec::new(),
                },
            );
        }
        SimFs {
            state: Arc::new(Mutex::new(image)),
        }
    }
}

/// A file's bytes after a power cut: its durable bytes, plus a prefix (in
/// sectors) of its unsynced growth, with every unsynced sector old or new.
fn crash_content(inode: &Inode, rng: &mut SplitMix64) -> Vec<u8> {
    let (old, new) = (&inode.durable, &inode.live);
    if old == new {
        return old.clone();
    }
    // Mostly sector by sector; sometimes all or nothing, the common cases.
    match rng.below(4) {
        0 => return old.clone(),
        1 => return new.clone(),
        _ => {}
    }
    let len = if new.len() > old.len() {
        let growth_sectors = (new.len() - old.len()).div_ceil(SECTOR_BYTES) as u64;
        let kept = rng.below(growth_sectors + 1) as usize;
        (old.len() + kept * SECTOR_BYTES).min(new.len())
    } else if new.len() < old.len() && rng.coin() {
        old.len()
    } else {
        new.len()
    };
    let byte = |bytes: &Vec<u8>, i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(len);
    let mut start = 0;
    while start < len {
        let end = (start + SECTOR_BYTES - start % SECTOR_BYTES).min(len);
        let differs = (start..end).any(|i| byte(old, i) != byte(new, i));
        let source = if differs && rng.coin() { new } else { old };
        out.extend((start..end).map(|i| byte(source, i)));
        start = end;
    }
    out
}

/// A small, fast, seedable generator (Steele et al., "Fast splittable
/// pseudorandom number generators"); tests need reproducibility, not
/// cryptographic strength.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

struct SimFile {
    fs: SimFs,
    inode: u64,
    path: PathBuf,
}

impl SimFile {
    fn with<T>(
        &self,
        kind: OpKind,
        body: impl FnOnce(&mut State, u64) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut state = self.fs.lock();
        state.begin(kind, &self.path)?;
        body(&mut state, self.inode)
    }
}

impl VfsFile for SimFile {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.with(OpKind::Write, |state, inode| {
            let end = offset as usize + bytes.len();
            let len = state.inodes[&inode].live.len();
            state.reserve(end.saturating_sub(len) as u64, &self.path)?;
            let live = &mut state.inodes.get_mut(&inode).expect("open inode").live;
            if live.len() < end {
                live.resize(end, 0);
            }
            live[offset as usize..end].copy_from_slice(bytes);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(OpKind::SetLen, |state, inode| {
            let current = state.inodes[&inode].live.len() as u64;
            state.reserve(len.saturating_sub(current), &self.path)?;
            let live = &mut state.inodes.get_mut(&inode).expect("open inode").live;
            live.resize(len as usize, 0);
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with(OpKind::Sync, |state, inode| {
            let node = state.inodes.get_mut(&inode).expect("open inode");
            node.durable.clone_from(&node.live);
            Ok(())
        })
    }

    fn size(&self) -> io::Result<u64> {
        let state = self.fs.lock();
        Ok(state.inodes[&self.inode].live.len() as u64)
    }
}

struct SimLock;

impl Vfs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<bool> {
        let mut state = self.lock();
        if state.dirs.contains_key(dir) {
            return Ok(false);
        }
        state.begin(OpKind::CreateDir, dir)?;
        let mut path = root();
        for component in dir.components().skip(1) {
            let name = component.as_os_str().to_string_lossy().into_owned();
            let child = path.join(&name);
            if !state.dirs.contains_key(&child) {
                state.dirs.insert(child.clone(), Dir::default());
                let parent = state.dir_mut(&path)?;
                parent.live.insert(name.clone(), Entry::Dir);
                parent.pending.push(DirOp::Insert(name, Entry::Dir));
            }
            path = child;
        }
        Ok(true)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.lock().dirs.contains_key(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut state = self.lock();
        state.begin(OpKind::List, dir)?;
        Ok(state.dir_mut(dir)?.live.keys().cloned().collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut state = self.lock();
        state.begin(OpKind::Read, path)?;
        let inode = state.file(path)?;
        Ok(state.inodes[&inode].live.clone())
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        let mut state = self.lock();
        state.begin(OpKind::Map, path)?;
        let inode = state.file(path)?;
        Ok(Mapped::from_memory(Arc::from(
            state.inodes[&inode].live.as_slice(),
        )))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let mut state = self.lock();
        let kind = if mode == OpenMode::Existing {
            OpKind::Open
        } else {
            OpKind::Create
        };
        state.begin(kind, path)?;
        let (parent, name) = State::split(path)?;
        let existing = state.entry(path).ok();
        let inode = match (existing, mode) {
            (Some(Entry::Dir), _) => {
                return Err(error(io::ErrorKind::IsADirectory, "is a directory", path))
            }
            (Some(_), OpenMode::CreateNew) => {
                return Err(error(io::ErrorKind::AlreadyExists, "file exists", path))
            }
            (Some(Entry::File(inode)), OpenMode::CreateTruncate) => {
                state.inodes.get_mut(&inode).expect("entry").live.clear();
                inode
            }
            (Some(Entry::File(inode)), OpenMode::Existing) => inode,
            (None, OpenMode::Existing) => {
                return Err(error(io::ErrorKind::NotFound, "no such file", path))
            }
            (None, _) => {
                let inode = state.next_inode;
                state.next_inode += 1;
                state.inodes.insert(inode, Inode::default());
                let dir = state.dir_mut(&parent)?;
                dir.live.insert(name.clone(), Entry::File(inode));
                dir.pending.push(DirOp::Insert(name, Entry::File(inode)));
                inode
            }
        };
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode,
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.begin(OpKind::Rename, to)?;
        let (from_dir, from_name) = State::split(from)?;
        let (to_dir, to_name) = State::split(to)?;
        if from_dir != to_dir {
            return Err(error(
                io::ErrorKind::Unsupported,
                "the simulated file system renames within one directory",
                to,
            ));
        }
        let dir = state.dir_mut(&from_dir)?;
        let entry = dir
            .live
            .remove(&from_name)
            .ok_or_else(|| error(io::ErrorKind::NotFound, "no such file", from))?;
        dir.live.insert(to_name.clone(), entry);
        dir.pending.push(DirOp::Rename(from_name, to_name));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.begin(OpKind::Remove, path)?;
        state.file(path)?;
        let (parent, name) = State::split(path)?;
        let dir = state.dir_mut(&parent)?;
        dir.live.remove(&name);
        dir.pending.push(DirOp::Remove(name));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.begin(OpKind::SyncDir, dir)?;
        let dir = state.dir_mut(dir)?;
        dir.durable.clone_from(&dir.live);
        dir.pending.clear();
        Ok(())
    }

    fn lock(&self, path: &Path, _mode: LockMode) -> io::Result<LockGuard> {
        let mut state = self.lock();
        state.begin(OpKind::Lock, path)?;
        Ok(Box::new(SimLock))
    }

    fn entropy(&self) -> u64 {
        self.lock().rng.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(fs: &SimFs, path: &str, bytes: &[u8], sync: bool) {
        let file = fs.open(Path::new(path), OpenMode::CreateNew).unwrap();
        file.write_at(0, bytes).unwrap();
        if sync {
            file.sync().unwrap();
        }
    }

    #[test]
    fn synced_data_and_entries_survive_every_crash() {
        let fs = SimFs::new(1);
        fs.mkdir_durable(Path::new("/d"));
        write_file(&fs, "/d/a", &[7u8; 2000], true);
        fs.sync_dir(Path::new("/d")).unwrap();
        for seed in 0..50 {
            let image = fs.crash_image(seed);
            assert_eq!(image.read(Path::new("/d/a")).unwrap(), vec![7u8; 2000]);
        }
    }

    #[test]
    fn unsynced_writes_tear_at_sector_granularity() {
        let fs = SimFs::new(1);
        fs.mkdir_durable(Path::new("/d"));
        write_file(&fs, "/d/a", &[0u8; 4 * SECTOR_BYTES], true);
        fs.sync_dir(Path::new("/d")).unwrap();
        let file = fs.open(Path::new("/d/a"), OpenMode::Existing).unwrap();
        file.write_at(0, &[1u8; 4 * SECTOR_BYTES]).unwrap();
        let mut patterns = std::collections::HashSet::new();
        for seed in 0..200 {
            let bytes = fs.crash_image(seed).read(Path::new("/d/a")).unwrap();
            assert_eq!(bytes.len(), 4 * SECTOR_BYTES);
            let sectors: Vec<u8> = bytes.chunks(SECTOR_BYTES).map(|s| s[0]).collect();
            for sector in bytes.chunks(SECTOR_BYTES) {
                assert!(sector.iter().all(|&b| b == sector[0]), "a sector is whole");
            }
            patterns.insert(sectors);
        }
        assert_eq!(patterns.len(), 16, "every old/new combination of 4 sectors");
    }

    #[test]
    fn unsynced_directory_operations_may_or_may_not_happen() {
        let fs = SimFs::new(1);
        fs.mkdir_durable(Path::new("/d"));
        write_file(&fs, "/d/a.tmp", b"new", true);
        fs.rename(Path::new("/d/a.tmp"), Path::new("/d/a")).unwrap();
        let mut outcomes = std::collections::HashSet::new();
        for seed in 0..100 {
            let image = fs.crash_image(seed);
            let mut names = image.list(Path::new("/d")).unwrap();
            names.sort();
            outcomes.insert(names);
        }
        let expected: std::collections::HashSet<Vec<String>> =
            [vec![], vec!["a.tmp".to_string()], vec!["a".to_string()]]
                .into_iter()
                .collect();
        assert_eq!(outcomes, expected);
        fs.sync_dir(Path::new("/d")).unwrap();
        for seed in 0..20 {
            assert_eq!(
                fs.crash_image(seed).read(Path::new("/d/a")).unwrap(),
                b"new"
            );
        }
    }

    #[test]
    fn the_power_cut_fails_everything_after_it() {
        let fs = SimFs::new(1);
        fs.mkdir_durable(Path::new("/d"));
        fs.cut_power_after(2);
        write_file(&fs, "/d/a", b"x", false); // create + write
        assert!(fs.sync_dir(Path::new("/d")).is_err());
        assert!(fs.list(Path::new("/d")).is_err());
        assert_eq!(fs.ops(), 2);
        assert!(!fs.powered());
    }

    #[test]
    fn capacity_and_faults() {
        let fs = SimFs::new(1);
        fs.mkdir_durable(Path::new("/d"));
        fs.set_capacity(Some(1000));
        let file = fs.open(Path::new("/d/a"), OpenMode::CreateNew).unwrap();
        file.write_at(0, &[1u8; 1000]).unwrap();
        let full = file.write_at(1000, &[1]).unwrap_err();
        assert_eq!(full.raw_os_error(), Some(28));
        // Overwriting allocated bytes needs no space.
        file.write_at(0, &[2u8; 10]).unwrap();
        fs.set_fault(Some(Box::new(|op: &Op| {
            (op.kind == OpKind::Sync).then(io_error)
        })));
        assert_eq!(file.sync().unwrap_err().raw_os_error(), Some(5));
    }
}
