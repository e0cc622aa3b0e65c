//! The embedded time-series engine.
//!
//! Knows nothing of HTTP or JSON: it stores [`Span`](crate::model::Span)s
//! per ship and answers span and bucket queries. Data path: a write is
//! framed into the segment log ([`segment`], [`record`]), fsynced with group
//! commit, then applied to the memtable ([`timeline`]); checkpoints fold the
//! memtable into immutable, memory-mapped block files ([`block`]) named by
//! the [`manifest`], and retire old log segments. [`check`] verifies a data
//! directory offline. Byte layouts: storage-format.md.

mod block;
mod bucket_columns;
mod check;
mod codec;
mod engine;
mod error;
mod file_header;
mod fsutil;
mod manifest;
mod record;
mod rollup;
mod rollup_file;
mod segment;
pub mod timeline;

pub use check::{check, CheckReport};
pub use engine::{
    CommitCallback, Engine, EngineOptions, EngineStats, CHECKPOINT_DURATION_BOUNDS_MS,
};
pub use error::StorageError;
pub use rollup::FleetInterval;

/// Decoders exposed for the fuzz targets and corruption tests; not a
/// stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::block::{encode_chunk, parse_chunk};
    pub use super::codec::{decode_spans, decode_spans_window, encode_spans, Reader};
    pub use super::record::decode_write;
    pub use super::rollup_file::fuzz_properties as rollup_file_properties;
    pub use super::segment::{append_frame, scan_segment};
}
