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

/// One interval of the fleet view: the fleet's energy in it and how many
/// ships have data there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FleetInterval {
    /// First bucket of the interval (a multiple of the step).
    pub first_bucket: i64,
    pub sum_kwh: f64,
    /// Ships with at least one stored bucket in the interval.
    pub ships: u32,
}

/// The fleet's energy per interval of `step_buckets` buckets (aligned to
/// multiples of the step) over buckets `[start_bucket, end_bucket)`,
/// ascending, intervals without data left out.
///
/// Brute force: reads every ship's buckets. It is the reference the rollup
/// index of the fleet issue must agree with and beat.
pub fn fleet(
    engine: &Engine,
    start_bucket: i64,
    end_bucket: i64,
    step_buckets: i64,
) -> Result<Vec<FleetInterval>, StorageError> {
    let mut intervals: std::collections::BTreeMap<i64, (f64, u32)> =
        std::collections::BTreeMap::new();
    for ship in engine.ships() {
        let Some(buckets) = engine.read_buckets(ship, start_bucket, end_bucket)? else {
            continue;
        };
        let mut last_interval = None;
        for bucket in buckets {
            let interval = bucket.index.div_euclid(step_buckets) * step_buckets;
            let entry = intervals.entry(interval).or_insert((0.0, 0));
            entry.0 += bucket.energy_kwh;
            if last_interval != Some(interval) {
                entry.1 += 1;
                last_interval = Some(interval);
            }
        }
    }
    Ok(intervals
        .into_iter()
        .map(|(first_bucket, (sum_kwh, ships))| FleetInterval {
            first_bucket,
            sum_kwh,
            ships,
        })
        .collect())
}

/// The `count` ships with the most energy in buckets `[start_bucket,
/// end_bucket)`, descending, ties by ship id; ships without data in the
/// window are left out. Brute force, like [`fleet`].
pub fn top_users(
    engine: &Engine,
    start_bucket: i64,
    end_bucket: i64,
    count: usize,
) -> Result<Vec<(ShipId, f64)>, StorageError> {
    let mut totals = Vec::new();
    for ship in engine.ships() {
        let Some(buckets) = engine.read_buckets(ship, start_bucket, end_bucket)? else {
            continue;
        };
        if !buckets.is_empty() {
            totals.push((ship, buckets.iter().map(|b| b.energy_kwh).sum::<f64>()));
        }
    }
    totals.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    totals.truncate(count);
    Ok(totals)
}
