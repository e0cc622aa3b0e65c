//! Log record kinds and their payloads. Framing (length, CRCs) belongs to
//! [`super::segment`]; this module only knows what a payload means.

use std::path::Path;

use super::codec::{decode_spans, encode_spans, put_u64, validate_spans, DecodeError, Reader};
use super::error::StorageError;
use crate::model::{ShipId, Span};

/// Record kind: one batch of spans for one ship (one `POST /data`).
pub const KIND_WRITE: u8 = 1;

/// The most spans one write record may carry; a decoder never allocates
/// more on behalf of a damaged count.
pub const MAX_SPANS_PER_RECORD: usize = 4 << 20;

#[derive(Clone, Debug, PartialEq)]
pub struct WriteRecord {
    pub ship: ShipId,
    pub spans: Vec<Span>,
}

/// Appends a `KIND_WRITE` payload.
pub fn encode_write(ship: ShipId, spans: &[Span], out: &mut Vec<u8>) {
    put_u64(out, ship);
    encode_spans(spans, 0, out);
}

pub fn decode_write(payload: &[u8]) -> Result<WriteRecord, DecodeError> {
    let mut reader = Reader::new(payload);
    let ship = reader.u64()?;
    let mut spans = Vec::new();
    decode_spans(&mut reader, 0, MAX_SPANS_PER_RECORD, &mut spans)?;
    if reader.remaining() != 0 {
        return Err(DecodeError(format!(
            "{} trailing bytes after the spans",
            reader.remaining()
        )));
    }
    validate_spans(&spans)?;
    Ok(WriteRecord { ship, spans })
}

/// The record of a frame found at `offset` of the log file `path`: a WRITE,
/// or corruption naming the file and offset (version 1 knows no other kind).
pub fn decode_record(
    path: &Path,
    offset: u64,
    kind: u8,
    payload: &[u8],
) -> Result<WriteRecord, StorageError> {
    if kind != KIND_WRITE {
        return Err(StorageError::corrupted(
            path,
            offset,
            format!("unknown record kind {kind}"),
        ));
    }
    decode_write(payload).map_err(|e| StorageError::corrupted(path, offset, e.0))
}
