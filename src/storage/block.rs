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

use std::path::{Path, PathBuf};

use super::bucket_columns;
use super::codec::{
    decode_buckets_window, decode_spans, encode_spans, put_i64, put_u32, put_u64, DecodeError,
    Reader,
};
use super::error::StorageError;
use super::file_header::{self, FileKind, FILE_HEADER_LEN};
use super::fsutil::sync_dir;
use super::io::{Mapped, OpenMode, Vfs};
use crate::model::{Bucket, ShipId, Span, BUCKET_SECONDS};

pub const BLOCK_MAGIC: [u8; 8] = *b"PWRDBLK\0";
/// The version this build writes (storage-format.md, "Version changes").
pub const BLOCK_VERSION: u32 = 4;
/// From version 3 stored bucket energies are nano-kWh by the exact
/// definition; before, float kWh that are never served.
const EXACT_ENERGIES_VERSION: u32 = 3;
/// From version 4 a chunk with decimal powers has no bucket columns.
const DERIVED_BUCKETS_VERSION: u32 = 4;
/// Version 2 blocks still open; their float bucket energies are never
/// served (the buckets are recomputed from the spans on read), and
/// compaction rewrites their chunks in the current version.
pub const OLDEST_READABLE_BLOCK_VERSION: u32 = 2;
pub const BLOCK_HEADER_LEN: usize = FILE_HEADER_LEN;
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

pub fn partition_first_bucket(partition: i64) -> i64 {
    partition * PARTITION_BUCKETS
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
    /// Bytes of span columns at the start of the payload; the bucket
    /// columns follow them.
    pub span_bytes: u32,
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
        bytes.extend_from_slice(&file_header::encode(&BLOCK_KIND, id));
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
        let decimal = encode_spans(spans, partition_start(partition), &mut self.bytes);
        let span_bytes = (self.bytes.len() - offset - CHUNK_HEADER_LEN) as u32;
        // Decimal powers give the buckets by integer arithmetic in one pass
        // over the spans: storing them too would double the chunk. Binary
        // powers need exact rational sums, so their buckets are stored.
        if !decimal {
            bucket_columns::encode(spans, partition_first_bucket(partition), &mut self.bytes);
        }
        let payload_len = (self.bytes.len() - offset - CHUNK_HEADER_LEN) as u32;
        let mut header = Vec::with_capacity(CHUNK_HEADER_LEN);
        put_u32(&mut header, payload_len);
        put_u32(&mut header, spans.len() as u32);
        put_u64(&mut header, ship);
        put_i64(&mut header, partition);
        put_u32(&mut header, span_bytes);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(&self.bytes[offset + CHUNK_HEADER_LEN..]);
        put_u32(&mut header, crc.finalize());
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

    /// Writes and syncs the file at `path` and its directory entry: the
    /// block is sealed.
    pub fn write(self, vfs: &dyn Vfs, path: &Path) -> Result<u64, StorageError> {
        let file = vfs
            .open(path, OpenMode::CreateNew)
            .map_err(|e| StorageError::io(path, "create", e))?;
        file.write_at(0, &self.bytes)
            .map_err(|e| StorageError::io(path, "write", e))?;
        file.sync().map_err(|e| StorageError::io(path, "sync", e))?;
        sync_dir(vfs, path.parent().unwrap_or(Path::new(".")))?;
        Ok(self.bytes.len() as u64)
    }
}

/// One chunk exactly as [`BlockBuilder::add_chunk`] lays it out, alone:
/// for the fuzz targets and tests that need valid chunks.
pub fn encode_chunk(ship: ShipId, partition: i64, spans: &[Span]) -> Vec<u8> {
    let mut builder = BlockBuilder::new(0);
    builder.add_chunk(ship, partition, spans);
    builder.bytes.split_off(BLOCK_HEADER_LEN)
}

/// A sealed block file, mapped read-only.
pub struct BlockFile {
    pub id: u64,
    pub path: PathBuf,
    /// The header's version: 2 means the chunks' bucket energies are of
    /// the old definition.
    pub version: u32,
    map: Option<Mapped>,
}

impl BlockFile {
    /// Maps block `id` at `path` (through the seam's [`Vfs::map`], whose
    /// contract a sealed block meets: see the module invariant) and checks
    /// its header.
    pub fn open(vfs: &dyn Vfs, path: PathBuf, id: u64) -> Result<BlockFile, StorageError> {
        let map = vfs
            .map(&path)
            .map_err(|e| StorageError::io(&path, "map", e))?;
        let mut block = BlockFile {
            id,
            path,
            version: 0,
            map: Some(map),
        };
        block.version = check_block_header(&block.path, block.id, block.bytes())?;
        Ok(block)
    }

    /// Whether the block is of an older version than this build writes:
    /// compaction rewrites its chunks from their spans rather than copying
    /// them, so old directories converge to the current version.
    pub fn is_legacy(&self) -> bool {
        self.version < BLOCK_VERSION
    }

    /// Whether the chunks' stored bucket energies predate the exact
    /// definition (version 2): they are never served.
    fn old_energies(&self) -> bool {
        self.version < EXACT_ENERGIES_VERSION
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
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

    /// Appends the buckets in `[start_bucket, end_bucket)` of a verified
    /// chunk, from its bucket columns, or, for a chunk whose energies are
    /// of the old definition, from its spans.
    pub fn read_buckets(
        &self,
        location: &ChunkLocation,
        partition: i64,
        start_bucket: i64,
        end_bucket: i64,
        out: &mut Vec<Bucket>,
    ) -> Result<(), StorageError> {
        let bytes = self.chunk_bytes(location)?;
        let corrupted = |what: String| StorageError::corrupted(&self.path, location.offset, what);
        let span_bytes = bytes
            .get(24..28)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| corrupted("chunk header cut short".into()))?;
        let columns = bytes
            .get(CHUNK_HEADER_LEN + span_bytes..)
            .ok_or_else(|| corrupted("span columns overrun the chunk".into()))?;
        let spans_part = &bytes[CHUNK_HEADER_LEN..CHUNK_HEADER_LEN + span_bytes];
        if columns.is_empty() && self.version >= DERIVED_BUCKETS_VERSION {
            // No bucket columns: the buckets of the window from its spans.
            return decode_buckets_window(
                &mut Reader::new(spans_part),
                partition_start(partition),
                MAX_SPANS_PER_CHUNK,
                start_bucket,
                end_bucket,
                out,
            )
            .map_err(|e| corrupted(e.0));
        }
        let first_out = out.len();
        let energies = bucket_columns::decode_window(
            &mut Reader::new(columns),
            partition_first_bucket(partition),
            PARTITION_BUCKETS as u64,
            start_bucket,
            end_bucket,
            self.old_energies(),
            out,
        )
        .map_err(|e| corrupted(e.0))?;
        if let bucket_columns::Energies::Legacy(_) = energies {
            out.truncate(first_out);
            let mut spans = Vec::new();
            decode_spans(
                &mut Reader::new(spans_part),
                partition_start(partition),
                MAX_SPANS_PER_CHUNK,
                &mut spans,
            )
            .map_err(|e| corrupted(e.0))?;
            crate::model::spans_to_buckets(&spans, start_bucket, end_bucket, out);
        }
        Ok(())
    }

    /// Checks the chunk at `location`: bounds, CRC, and that it belongs to
    /// `ship` and `partition`. Run once per chunk when the engine opens:
    /// the CRC proves the bytes are the ones written, so the columns are
    /// not decoded here (`powerd check` does that, with [`parse_chunk`]);
    /// every read decodes defensively anyway.
    pub fn verify_chunk(
        &self,
        location: &ChunkLocation,
        ship: ShipId,
        partition: i64,
    ) -> Result<(), StorageError> {
        let bytes = self.chunk_bytes(location)?;
        let header = parse_chunk_frame(bytes)
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

const BLOCK_KIND: FileKind = FileKind {
    magic: BLOCK_MAGIC,
    version: BLOCK_VERSION,
    oldest_readable: OLDEST_READABLE_BLOCK_VERSION,
    noun: "block",
    description: "powerd block file",
};

/// Checks a block's header; returns its version.
pub fn check_block_header(
    path: &Path,
    expected_id: u64,
    bytes: &[u8],
) -> Result<u32, StorageError> {
    file_header::check(&BLOCK_KIND, path, bytes, expected_id)
}

/// Parses one whole chunk (header and payload), checks its CRC, decodes
/// its columns and checks the bucket columns, if any (version 4 may leave
/// them out), against the spans: exactly, or, for a chunk of a version 2
/// block (`legacy`) whose energies are of the old float definition, within
/// that definition's rounding (they are never served, but damage there is
/// still damage).
pub fn parse_chunk(bytes: &[u8], legacy: bool) -> Result<ChunkHeader, DecodeError> {
    let header = parse_chunk_frame(bytes)?;
    let payload = &bytes[CHUNK_HEADER_LEN..CHUNK_HEADER_LEN + header.payload_len as usize];
    let (span_bytes, partition) = (header.span_bytes, header.partition);
    let (span_part, bucket_part) =
        payload
            .split_at_checked(span_bytes as usize)
            .ok_or_else(|| {
                DecodeError(format!(
                    "span columns of {span_bytes} bytes overrun the payload"
                ))
            })?;
    let mut spans = Vec::new();
    let mut span_reader = Reader::new(span_part);
    decode_spans(
        &mut span_reader,
        partition_start(partition),
        MAX_SPANS_PER_CHUNK,
        &mut spans,
    )?;
    if span_reader.remaining() != 0 {
        return Err(DecodeError("bytes left over after the span columns".into()));
    }
    if bucket_part.is_empty() && !legacy {
        // Version 4: no bucket columns; the spans are all there is.
        return check_spans(&header, &spans);
    }
    // The bucket columns must be exactly what the spans say.
    let mut buckets = Vec::new();
    let mut bucket_reader = Reader::new(bucket_part);
    let energies = bucket_columns::decode_window(
        &mut bucket_reader,
        partition_first_bucket(partition),
        PARTITION_BUCKETS as u64,
        i64::MIN,
        i64::MAX,
        legacy,
        &mut buckets,
    )?;
    if bucket_reader.remaining() != 0 {
        return Err(DecodeError(
            "bytes left over after the bucket columns".into(),
        ));
    }
    let mut expected = Vec::new();
    crate::model::spans_to_buckets(
        &spans,
        i64::MIN / BUCKET_SECONDS,
        i64::MAX / BUCKET_SECONDS,
        &mut expected,
    );
    let agrees = match energies {
        bucket_columns::Energies::Exact => buckets == expected,
        bucket_columns::Energies::Legacy(values) => {
            buckets.len() == expected.len()
                && buckets
                    .iter()
                    .zip(&expected)
                    .zip(&values)
                    .all(|((b, e), &v)| {
                        let exact = e.kwh();
                        b.index == e.index
                            && b.coverage_s == e.coverage_s
                            && (v == exact || (v - exact).abs() <= 1e-9 * v.abs().max(1.0) + 1e-9)
                    })
        }
    };
    if !agrees {
        return Err(DecodeError("bucket columns disagree with the spans".into()));
    }
    check_spans(&header, &spans)
}

/// The chunk header's promises about its decoded spans.
fn check_spans(header: &ChunkHeader, spans: &[Span]) -> Result<ChunkHeader, DecodeError> {
    let (span_count, partition) = (header.span_count, header.partition);
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
    Ok(*header)
}

/// Parses a chunk's header and checks its CRC and bounds, without decoding
/// the columns.
fn parse_chunk_frame(bytes: &[u8]) -> Result<ChunkHeader, DecodeError> {
    let mut reader = Reader::new(bytes);
    let payload_len = reader.u32()?;
    let span_count = reader.u32()?;
    let ship = reader.u64()?;
    let partition = reader.i64()?;
    let span_bytes = reader.u32()?;
    let crc = reader.u32()?;
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
    hasher.update(&bytes[..28]);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Err(DecodeError("chunk CRC mismatch".into()));
    }
    if span_bytes > payload_len {
        return Err(DecodeError(format!(
            "span columns of {span_bytes} bytes overrun the payload"
        )));
    }
    Ok(ChunkHeader {
        payload_len,
        span_bytes,
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
    let version = check_block_header(path, id, bytes)?;
    let legacy = version < EXACT_ENERGIES_VERSION;
    let mut out = Vec::new();
    let mut offset = BLOCK_HEADER_LEN;
    while offset < bytes.len() {
        let header = parse_chunk(&bytes[offset..], legacy)
            .map_err(|e| StorageError::corrupted(path, offset as u64, e.0))?;
        if version < DERIVED_BUCKETS_VERSION && header.span_bytes == header.payload_len {
            return Err(StorageError::corrupted(
                path,
                offset as u64,
                format!("a version {version} chunk without bucket columns"),
            ));
        }
        out.push((offset as u64, header));
        offset += CHUNK_HEADER_LEN + header.payload_len as usize;
    }
    Ok(out)
}
