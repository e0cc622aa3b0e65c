//! Questions answered from the engine. The HTTP layer parses parameters and
//! renders answers; everything in between lives here.

use std::collections::BTreeMap;

use crate::forecast::{History, BUCKETS_PER_DAY, LOOKBACK_DAYS, MIN_PARTIAL_COVERAGE_S};
use crate::model::{quantise, Bucket, NanoKwh, ShipId, BUCKET_SECONDS};
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

pub use crate::storage::FleetInterval;

/// The fleet's energy per interval of `step_buckets` buckets (aligned to
/// multiples of the step) over buckets `[start_bucket, end_bucket)`,
/// ascending, intervals without data left out. Answered by the rollup
/// index; by [`fleet_scan`] when the engine runs without one.
pub fn fleet(
    engine: &Engine,
    start_bucket: i64,
    end_bucket: i64,
    step_buckets: i64,
) -> Result<Vec<FleetInterval>, StorageError> {
    match engine.fleet(start_bucket, end_bucket, step_buckets) {
        Some(intervals) => Ok(intervals),
        None => fleet_scan(engine, start_bucket, end_bucket, step_buckets),
    }
}

/// The `count` ships with the most energy in buckets `[start_bucket,
/// end_bucket)`, descending, ties by ship id; ships without data in the
/// window are left out. Answered by the rollup index; by
/// [`top_users_scan`] when the engine runs without one.
pub fn top_users(
    engine: &Engine,
    start_bucket: i64,
    end_bucket: i64,
    count: usize,
) -> Result<Vec<(ShipId, NanoKwh)>, StorageError> {
    match engine.top_users(start_bucket, end_bucket, count)? {
        Some(ships) => Ok(ships),
        None => top_users_scan(engine, start_bucket, end_bucket, count),
    }
}

/// First and end (exclusive) bucket of all stored data, `None` when
/// nothing is stored.
pub fn stored_range(engine: &Engine) -> Result<Option<(i64, i64)>, StorageError> {
    if let Some(range) = engine.stored_range() {
        return Ok(range);
    }
    let mut range: Option<(i64, i64)> = None;
    for ship in engine.ships() {
        let buckets = engine
            .read_buckets(ship, i64::MIN / BUCKET_SECONDS, i64::MAX / BUCKET_SECONDS)?
            .unwrap_or_default();
        if let (Some(first), Some(last)) = (buckets.first(), buckets.last()) {
            let (a, b) = range.unwrap_or((first.index, last.index + 1));
            range = Some((a.min(first.index), b.max(last.index + 1)));
        }
    }
    Ok(range)
}

/// [`fleet`] by brute force: reads every ship's buckets. The reference
/// the rollup index is tested against, and the baseline it must beat.
pub fn fleet_scan(
    engine: &Engine,
    start_bucket: i64,
    end_bucket: i64,
    step_buckets: i64,
) -> Result<Vec<FleetInterval>, StorageError> {
    let mut intervals: BTreeMap<i64, (NanoKwh, u32)> = BTreeMap::new();
    for ship in engine.ships() {
        let Some(buckets) = engine.read_buckets(ship, start_bucket, end_bucket)? else {
            continue;
        };
        let mut last_interval = None;
        for bucket in buckets {
            let interval = bucket.index.div_euclid(step_buckets) * step_buckets;
            let entry = intervals.entry(interval).or_insert((0, 0));
            entry.0 += quantise(bucket.energy_kwh);
            if last_interval != Some(interval) {
                entry.1 += 1;
                last_interval = Some(interval);
            }
        }
    }
    Ok(intervals
        .into_iter()
        .map(|(first_bucket, (sum, ships))| FleetInterval {
            first_bucket,
            sum,
            ships,
        })
        .collect())
}

/// [`top_users`] by brute force, like [`fleet_scan`].
pub fn top_users_scan(
    engine: &Engine,
    start_bucket: i64,
    end_bucket: i64,
    count: usize,
) -> Result<Vec<(ShipId, NanoKwh)>, StorageError> {
    let mut totals = Vec::new();
    for ship in engine.ships() {
        let Some(buckets) = engine.read_buckets(ship, start_bucket, end_bucket)? else {
            continue;
        };
        if !buckets.is_empty() {
            totals.push((
                ship,
                buckets
                    .iter()
                    .map(|b| quantise(b.energy_kwh))
                    .sum::<NanoKwh>(),
            ));
        }
    }
    totals.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    totals.truncate(count);
    Ok(totals)
}

/// The history [`crate::forecast::forecast`] needs for a forecast of `ship`
/// from `origin_bucket`: the stored buckets before the origin, at most
/// [`LOOKBACK_DAYS`] days of them. For a ship silent in the week before the
/// origin the model fits whole weeks earlier, where its data ends
/// ([`crate::forecast::Fallback::StaleHistory`]); the window is then the
/// same span before that point, found by reading everything older. Either
/// way the model sees exactly what it would with all of the ship's history
/// before the origin, and nothing at or after it. `Ok(None)` when the ship
/// has never been written.
pub fn forecast_history(
    engine: &Engine,
    ship: ShipId,
    origin_bucket: i64,
) -> Result<Option<History>, StorageError> {
    const WEEK: i64 = 7 * BUCKETS_PER_DAY as i64;
    let lookback = (LOOKBACK_DAYS * BUCKETS_PER_DAY) as i64;
    let window_start = origin_bucket.saturating_sub(lookback);
    let Some(recent) = engine.read_buckets(ship, window_start, origin_bucket)? else {
        return Ok(None);
    };
    // The model's own test of a usable bucket: data over enough of it.
    let last_usable = |buckets: &[Bucket]| {
        buckets
            .iter()
            .rev()
            .find(|b| b.coverage_s >= MIN_PARTIAL_COVERAGE_S)
            .map(|b| b.index)
    };
    if let Some(last) = last_usable(&recent) {
        if origin_bucket - (last + 1) < WEEK {
            return Ok(Some(History::from_buckets(&recent)));
        }
    }
    let mut all = engine
        .read_buckets(ship, i64::MIN / BUCKET_SECONDS, window_start)?
        .unwrap_or_default();
    all.extend(recent);
    let Some(last) = last_usable(&all) else {
        return Ok(Some(History::empty()));
    };
    let end = origin_bucket - (origin_bucket - (last + 1)) / WEEK * WEEK;
    let start = end.saturating_sub(lookback);
    all.retain(|b| (start..end).contains(&b.index));
    Ok(Some(History::from_buckets(&all)))
}
