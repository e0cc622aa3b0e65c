//! Questions answered from the engine. The HTTP layer parses parameters and
//! renders answers; everything in between lives here.

use crate::model::{Bucket, ShipId};
use crate::storage::{Engine, StorageError};

/// The stored buckets of `ship` in `[start_bucket, end_bucket)`, ascending;
/// `Ok(None)` when the ship has never been written.
pub fn ship_buckets(
    engine: &Engine,
    ship: ShipId,
    start_bucket: i64,
    end_bucket: i64,
) -> Result<Option<Vec<Bucket>>, StorageError> {
    engine.read_buckets(ship, start_bucket, end_bucket)
}
