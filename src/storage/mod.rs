//! The embedded time-series engine.
//!
//! Knows nothing of HTTP or JSON: it stores [`Span`](crate::model::Span)s
//! per ship and answers span and bucket queries. Data path: a write is
//! framed into the segment log ([`segment`], [`record`]), fsynced with group
//! commit, then applied to the memtable ([`timeline`]); checkpoints fold the
//! memtable into immutable, memory-mapped block files ([`block`]) named by
//! the [`manifest`], and retire old log segments. [`layout`] names every
//! file and holds the structural rules; [`log`] reads the live log; [`check`]
//! verifies a data directory offline. Every file operation goes through the
//! [`io`] seam; [`sim`] is its simulated file system for the power-cut
//! tests. Byte layouts: storage-format.md.

mod backup;
mod block;
mod bucket_columns;
mod check;
mod codec;
mod engine;
mod error;
mod file_header;
mod fsutil;
pub mod io;
mod layout;
mod log;
mod manifest;
mod record;
mod rollup;
mod rollup_file;
mod segment;
#[doc(hidden)]
pub mod sim;
pub mod timeline;

pub use backup::{backup, BackupOptions, BackupReport, Progress as BackupProgress};
pub use block::BLOCK_VERSION;
pub use check::{check, check_with, CheckReport};
pub use engine::{
    CommitCallback, Engine, EngineOptions, EngineStats, CHECKPOINT_DURATION_BOUNDS_MS,
};
pub use error::StorageError;
pub use layout::BACKUP_MARKER;
pub use rollup::FleetInterval;

/// Decoders exposed for the fuzz targets and corruption tests; not a
/// stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::block::{encode_chunk, parse_chunk};
    pub use super::codec::{decode_spans, decode_spans_window, encode_spans, Reader};
    pub use super::record::decode_write;
    pub use super::rollup_file::fuzz_properties as rollup_file_properties;
    pub use super::segment::{
        encode_header as segment_header, push_record, rollover_frame, scan_segment, seal_frame,
        v1_frame, v1_header, Role, ScanEnd, FRAME_COMMIT, FRAME_HEADER_LEN,
    };
}
