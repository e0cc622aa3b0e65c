//! Block files: immutable, memory-mapped files of per-ship, per-partition
//! span chunks written by checkpoints.
//!
//! Time is cut into partitions of [`PARTITION_BUCKETS`] buckets; one chunk
//! holds one ship's whole timeline within one partition, so a checkpoint
//! rewrites only the (ship, partition) pairs that changed.
//!
//! Invariant: a block file is *sealed* once [`write_block`] returns — fully
//! written and synced — and nothing ever writes to it again. Maps of it are
//! therefore stable for their whole life; the file is unlinked only when no
//! manifest entry refers to it, and an unlinked file's existing maps stay
//! valid on Unix. Byte layout: storage-format.md, "Block files".

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::codec::{decode_spans, encode_spans, put_i64, put_u32, put_u64, DecodeError, Reader};
use super::error::StorageError;
use super::fsutil::sync_dir;
use crate::model::{ShipId, Span, BUCKET_SECONDS};

pub const BLOCK_MAGIC: [u8; 8] = *b"PWRDBLK\0";
pub const BLOCK_VERSION: u32 = 1;
pub const BLOCK_HEADER_LEN: usize = 32;
pub const CHUNK_HEADER_LEN: usize = 32;
/// Buckets per partition (≈ 42.7 days).
pub const PARTITION_BUCKETS: i64 = 4096;
pub const PARTITION_SECONDS: i64 = PARTITION_BUCKETS * BUCKET_SECONDS;
/// A partition holds at most one span per second.
pub const MAX_SPANS_PER_CHUNK: usize = PARTITION_SECONDS as usize;

pub fn partition_of(second: i64) -> i64 {
    second.div_euclid(PARTITION_SECONDS)
}

pub fn partition_start(partition: i64) -> i64 {
    partition * PARTITION_SECONDS
}

pub fn block_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.blk"))
}

/// Block ids of the block files in `dir`, ascending.
pub fn list_blocks(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, "list", e))? {
        let entry = entry.map_err(|e| StorageError::io(dir, "list", e))?;
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".blk"))
            .and_then(|s| s.parse().ok())
        {
            out.push(id);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Where a chunk lives: the manifest's view of one (ship, partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkLocation {
    pub block: u64,
    pub offset: u64,
    pub len: u32,
    pub span_count: u32,
}

/// One chunk's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    pub payload_len: u32,
    pub span_count: u32,
    pub ship: ShipId,
    pub partition: i64,
}

/// Builds a block file in memory, chunk by chunk.
pub struct BlockBuilder {
    id: u64,
    bytes: Vec<u8>,
}

impl BlockBuilder {
    pub fn new(id: u64) -> Self {
        let mut bytes = Vec::with_capacity(1 << 20);
        bytes.extend_from_slice(&BLOCK_MAGIC);
        put_u32(&mut bytes, BLOCK_VERSION);
        put_u32(&mut bytes, 0);
        put_u64(&mut bytes, id);
        let crc = crc32fast::hash(&bytes);
        put_u32(&mut bytes, crc);
        put_u32(&mut bytes, 0);
        BlockBuilder { id, bytes }
    }

    /// Appends the chunk of `ship` in `partition`; `spans` must be sorted,
    /// disjoint and inside the partition.
    pub fn add_chunk(&mut self, ship: ShipId, partition: i64, spans: &[Span]) -> ChunkLocation {
        debug_assert!(spans
            .iter()
            .all(|s| partition_of(s.start_s) == partition
                && s.end_s <= partition_start(partition + 1)));
        let offset = self.bytes.len();
        self.bytes.extend_from_slice(&[0u8; CHUNK_HEADER_LEN]);
        encode_spans(spans, partition_start(partition), &mut self.bytes);
        let payload_len = (self.bytes.len() - offset - CHUNK_HEADER_LEN) as u32;
        let mut header = Vec::with_capacity(CHUNK_HEADER_LEN);
        put_u32(&mut header, payload_len);
        put_u32(&mut header, spans.len() as u32);
        put_u64(&mut header, ship);
        put_i64(&mut header, partition);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(&self.bytes[offset + CHUNK_HEADER_LEN..]);
        put_u32(&mut header, crc.finalize());
        put_u32(&mut header, 0);
        self.bytes[offset..offset + CHUNK_HEADER_LEN].copy_from_slice(&header);
        ChunkLocation {
            block: self.id,
            offset: offset as u64,
            len: (CHUNK_HEADER_LEN as u32) + payload_len,
            span_count: spans.len() as u32,
        }
    }

    /// Appends an already-encoded chunk (header and payload, CRC intact)
    /// copied from another block, as compaction does.
    pub fn add_raw_chunk(&mut self, chunk: &[u8], span_count: u32) -> ChunkLocation {
        let offset = self.bytes.len();
        self.bytes.extend_from_slice(chunk);
        ChunkLocation {
            block: self.id,
            offset: offset as u64,
            len: chunk.len() as u32,
            span_count,
        }
    }

    pub fn chunk_bytes(&self) -> usize {
        self.bytes.len() - BLOCK_HEADER_LEN
    }

    /// Writes and syncs the file and its directory entry: the block is sealed.
    pub fn write(self, dir: &Path) -> Result<u64, StorageError> {
        let path = block_path(dir, self.id);
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, "create", e))?;
        file.write_all(&self.bytes)
            .map_err(|e| StorageError::io(&path, "write", e))?;
        file.sync_all()
            .map_err(|e| StorageError::io(&path, "sync", e))?;
        sync_dir(dir)?;
        Ok(self.bytes.len() as u64)
    }
}

/// A sealed block file, mapped read-only.
pub struct BlockFile {
    pub id: u64,
    pub path: PathBuf,
    map: Option<Mmap>,
}

impl BlockFile {
    /// Maps block `id` and checks its header.
    pub fn open(dir: &Path, id: u64) -> Result<BlockFile, StorageError> {
        let path = block_path(dir, id);
        let file = File::open(&path).map_err(|e| StorageError::io(&path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| StorageError::io(&path, "stat", e))?
            .len();
        // A zero-length file cannot be mapped; the header check below rejects it.
        let map = if len == 0 {
            None
        } else {
            // SAFETY: block files are sealed before any reader opens them (see
            // the module invariant): powerd never writes to or truncates a
            // sealed block, and the data directory is locked against other
            // powerd processes, so the mapped bytes do not change while mapped.
            Some(unsafe { Mmap::map(&file) }.map_err(|e| StorageError::io(&path, "map", e))?)
        };
        let block = BlockFile { id, path, map };
        block.check_header()?;
        Ok(block)
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    fn check_header(&self) -> Result<(), StorageError> {
        check_block_header(&self.path, self.id, self.bytes())
    }

    /// The raw bytes of a chunk (header and payload), bounds-checked.
    pub fn chunk_bytes(&self, location: &ChunkLocation) -> Result<&[u8], StorageError> {
        let start = usize::try_from(location.offset).unwrap_or(usize::MAX);
        start
            .checked_add(location.len as usize)
            .and_then(|end| self.bytes().get(start..end))
            .ok_or_else(|| {
                StorageError::corrupted(&self.path, location.offset, "chunk lies outside the file")
            })
    }

    /// Checks the chunk at `location`: bounds, CRC, and that it belongs to
    /// `ship` and `partition`. Run once per chunk when the engine opens.
    pub fn verify_chunk(
        &self,
        location: &ChunkLocation,
        ship: ShipId,
        partition: i64,
    ) -> Result<(), StorageError> {
        let bytes = self.chunk_bytes(location)?;
        let header = parse_chunk(bytes)
            .map_err(|e| StorageError::corrupted(&self.path, location.offset, e.0))?;
        if header.ship != ship
            || header.partition != partition
            || header.span_count != location.span_count
        {
            return Err(StorageError::corrupted(
                &self.path,
                location.offset,
                format!("chunk holds ship {} partition {}, the manifest expects ship {ship} partition {partition}", header.ship, header.partition),
            ));
        }
        Ok(())
    }
}

fn check_block_header(path: &Path, expected_id: u64, bytes: &[u8]) -> Result<(), StorageError> {
    let header = bytes.get(..BLOCK_HEADER_LEN).ok_or_else(|| {
        StorageError::corrupted(
            path,
            0,
            format!("block is {} bytes, shorter than its header", bytes.len()),
        )
    })?;
    if header[0..8] != BLOCK_MAGIC {
        return Err(StorageError::corrupted(
            path,
            0,
            "not a powerd block file (bad magic)",
        ));
    }
    let mut reader = Reader::new(&header[8..]);
    let version = reader.u32().unwrap_or(0);
    let _reserved = reader.u32();
    let id = reader.u64().unwrap_or(0);
    let crc = reader.u32().unwrap_or(0);
    if crc32fast::hash(&header[..24]) != crc {
        return Err(StorageError::corrupted(
            path,
            24,
            "block header CRC mismatch",
        ));
    }
    if version != BLOCK_VERSION {
        return Err(StorageError::corrupted(
            path,
            8,
            format!("unsupported block version {version} (this build reads {BLOCK_VERSION})"),
        ));
    }
    if id != expected_id {
        return Err(StorageError::corrupted(
            path,
            16,
            format!("header says block {id}, file name says {expected_id}"),
        ));
    }
    Ok(())
}

/// Parses and CRC-checks one whole chunk (header and payload).
pub fn parse_chunk(bytes: &[u8]) -> Result<ChunkHeader, DecodeError> {
    let mut reader = Reader::new(bytes);
    let payload_len = reader.u32()?;
    let span_count = reader.u32()?;
    let ship = reader.u64()?;
    let partition = reader.i64()?;
    let crc = reader.u32()?;
    let _reserved = reader.u32()?;
    let payload = reader.take(payload_len as usize)?;
    if partition
        .checked_add(1)
        .and_then(|p| p.checked_mul(PARTITION_SECONDS))
        .is_none()
        || partition.checked_mul(PARTITION_SECONDS).is_none()
    {
        return Err(DecodeError(format!("partition {partition} out of range")));
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..24]);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Err(DecodeError("chunk CRC mismatch".into()));
    }
    let mut spans = Vec::new();
    decode_spans(
        &mut Reader::new(payload),
        partition_start(partition),
        MAX_SPANS_PER_CHUNK,
        &mut spans,
    )?;
    if spans.len() != span_count as usize {
        return Err(DecodeError(format!(
            "chunk header says {span_count} spans, payload holds {}",
            spans.len()
        )));
    }
    if let (Some(first), Some(last)) = (spans.first(), spans.last()) {
        if partition_of(first.start_s) != partition || last.end_s > partition_start(partition + 1) {
            return Err(DecodeError("chunk spans lie outside its partition".into()));
        }
    }
    Ok(ChunkHeader {
        payload_len,
        span_count,
        ship,
        partition,
    })
}

/// Checks a block file's header and walks every chunk in it, in order:
/// `(offset, header)` for each. Stops at the first damaged chunk with an
/// error naming its offset, since the lengths after it cannot be trusted.
pub fn walk_block(
    path: &Path,
    id: u64,
    bytes: &[u8],
) -> Result<Vec<(u64, ChunkHeader)>, StorageError> {
    let block = BlockFile {
        id,
        path: path.to_path_buf(),
        map: None,
    };
    check_block_header(&block.path, id, bytes)?;
    let mut out = Vec::new();
    let mut offset = BLOCK_HEADER_LEN;
    while offset < bytes.len() {
        let header = parse_chunk(&bytes[offset..])
            .map_err(|e| StorageError::corrupted(path, offset as u64, e.0))?;
        out.push((offset as u64, header));
        offset += CHUNK_HEADER_LEN + header.payload_len as usize;
    }
    Ok(out)
}
