//! Questions answered from the engine. The HTTP layer parses parameters and
//! renders answers; everything in between lives here.

use std::collections::BTreeMap;

use crate::forecast::{History, BUCKETS_PER_DAY, LOOKBACK_DAYS, MIN_PARTIAL_COVERAGE_S};
use crate::model::BUCKETS_PER_DAY as DAY_BUCKETS;
use crate::model::{Bucket, NanoKwh, ShipId, BUCKET_SECONDS};
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

/// [`ship_buckets`] with the ship's version they are at least as new as
/// ([`Engine::read_buckets_versioned`]), for caching what is made of them.
pub fn ship_buckets_versioned(
    engine: &Engine,
    ship: ShipId,
    start_bucket: i64,
    end_bucket: i64,
) -> Result<Option<(u64, Vec<Bucket>)>, StorageError> {
    engine.read_buckets_versioned(ship, start_bucket, end_bucket)
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
            entry.0 += bucket.energy;
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
            totals.push((ship, buckets.iter().map(|b| b.energy).sum::<NanoKwh>()));
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

// The dashboard's questions: a page of ship ids, and data-quality alerts.

/// A page of [`ships_page`].
#[derive(Clone, Debug, PartialEq)]
pub struct ShipPage {
    /// Ships matching the prefix, all pages together.
    pub total: usize,
    /// This page's ships, ascending.
    pub ships: Vec<ShipId>,
}

/// The stored ships whose decimal id starts with `prefix` (every ship for
/// an empty prefix), ascending, page `page` (from 1) of `per_page`. A page
/// past the end is empty. Costs one pass over the ship list (10,000 ships:
/// well under a millisecond), never a read of any ship's data.
pub fn ships_page(engine: &Engine, prefix: &str, page: usize, per_page: usize) -> ShipPage {
    let mut digits = itoa::Buffer::new();
    let matching: Vec<ShipId> = engine
        .ships()
        .into_iter()
        .filter(|ship| prefix.is_empty() || digits.format(*ship).starts_with(prefix))
        .collect();
    let skip = page.saturating_sub(1).saturating_mul(per_page);
    ShipPage {
        total: matching.len(),
        ships: matching.into_iter().skip(skip).take(per_page).collect(),
    }
}

/// Longest window [`alerts`] examines: 7 days of buckets.
pub const ALERT_WINDOW_MAX_BUCKETS: i64 = 7 * BUCKETS_PER_DAY as i64;
/// Days of the same time-of-day slot an interval is compared with.
pub const OUTLIER_REFERENCE_DAYS: i64 = 7;
/// Fewest complete reference buckets (of [`OUTLIER_REFERENCE_DAYS`]) for an
/// interval to be judged at all.
pub const OUTLIER_MIN_REFERENCES: usize = 4;
/// `k`: an interval is an outlier when it lies more than `k` scales from
/// the median of its references.
pub const OUTLIER_THRESHOLD: f64 = 5.0;
/// The scale never drops below this fraction of the references' median...
pub const OUTLIER_SLOT_FLOOR: f64 = 0.1;
/// ...nor below this fraction of the ship's median complete bucket over
/// the window and the week before it (so a slot that is usually 0 does not
/// flag every small reading)...
pub const OUTLIER_SHIP_FLOOR: f64 = 0.05;
/// ...nor below this many kWh.
pub const OUTLIER_FLOOR_KWH: f64 = 0.001;
/// Runs (missing, partial) and outliers listed per ship and kind; the
/// counts cover them all.
pub const ALERT_ITEMS_MAX: usize = 20;

/// Consecutive buckets `[first_bucket, end_bucket)` of one kind: missing
/// (`covered_s` 0) or partial (`covered_s` their covered seconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketRun {
    pub first_bucket: i64,
    pub end_bucket: i64,
    pub covered_s: u64,
}

/// A complete bucket far from the ship's usual level for its time of day.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outlier {
    pub bucket: i64,
    /// The bucket's energy, as `GET /data` prints it.
    pub energy: NanoKwh,
    /// The median of the same slot over the previous days.
    pub expected_kwh: f64,
    /// `(energy - expected) / scale`: beyond ±[`OUTLIER_THRESHOLD`].
    pub score: f64,
}

/// One ship's data-quality findings in a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShipAlerts {
    pub ship: ShipId,
    /// Buckets the ship was expected to fill: the window from its first
    /// data (if that came later) to the end of the fleet's stored data (if
    /// that came earlier).
    pub expected_buckets: u64,
    pub missing_buckets: u64,
    /// The first [`ALERT_ITEMS_MAX`] runs of missing buckets.
    pub missing: Vec<BucketRun>,
    pub partial_buckets: u64,
    /// Seconds the partial buckets lack, all together.
    pub partial_missing_s: u64,
    /// The first [`ALERT_ITEMS_MAX`] runs of partial buckets.
    pub partial: Vec<BucketRun>,
    /// Complete buckets that had enough references to be judged.
    pub judged_buckets: u64,
    pub outlier_buckets: u64,
    /// The [`ALERT_ITEMS_MAX`] strongest outliers, in time order.
    pub outliers: Vec<Outlier>,
}

impl ShipAlerts {
    pub fn is_empty(&self) -> bool {
        self.missing_buckets == 0 && self.partial_buckets == 0 && self.outlier_buckets == 0
    }
}

/// A page of [`alerts`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertPage {
    /// End (exclusive) bucket of the fleet's stored data; `None` when
    /// nothing is stored.
    pub data_end_bucket: Option<i64>,
    pub ships_total: usize,
    pub ships_examined: usize,
    /// Ships examined that had data in the window or the week before it.
    pub ships_active: usize,
    /// Where the next page starts (exclusive), when ships remain.
    pub next_after: Option<ShipId>,
    /// Ships with findings, ascending.
    pub ships: Vec<ShipAlerts>,
}

/// Data-quality alerts for buckets `[first_bucket, end_bucket)`: for the
/// ships after `after` (ascending), at most `max_ships` of them, stopping
/// early once `limit` ships with findings are listed.
///
/// A ship is examined when it has data in the window or in the
/// [`OUTLIER_REFERENCE_DAYS`] days before it; others are silent for longer
/// and not reported. For an examined ship:
/// - **missing**: buckets without data, from the window's start (or the
///   ship's first data in the window, if it had none in the week before) to
///   its end (or the end of the fleet's stored data, if earlier);
/// - **partial**: buckets covered less than 900 s;
/// - **outlier**: a complete bucket `v` whose slot (same time of day) on
///   the previous 7 days has at least [`OUTLIER_MIN_REFERENCES`] complete
///   buckets with median `m` and median absolute deviation `MAD`, such that
///   `|v − m| > k · max(1.4826 · MAD, 0.1 · m, 0.05 · L, 0.001 kWh)`, with
///   `k` = [`OUTLIER_THRESHOLD`] and `L` the ship's median complete bucket
///   over the window and the week before it.
///
/// Cost: one read of (window + 7 days) of buckets per examined ship and a
/// few operations per bucket; the caller bounds the window
/// ([`ALERT_WINDOW_MAX_BUCKETS`]) and `max_ships`.
pub fn alerts(
    engine: &Engine,
    first_bucket: i64,
    end_bucket: i64,
    after: Option<ShipId>,
    max_ships: usize,
    limit: usize,
) -> Result<AlertPage, StorageError> {
    let data_end_bucket = stored_range(engine)?.map(|(_, end)| end);
    let ships = engine.ships();
    let from = match after {
        Some(after) => ships.partition_point(|ship| *ship <= after),
        None => 0,
    };
    let mut page = AlertPage {
        data_end_bucket,
        ships_total: ships.len(),
        ..AlertPage::default()
    };
    let Some(data_end) = data_end_bucket else {
        return Ok(page);
    };
    let expected_end = end_bucket.min(data_end);
    let lookback_start = first_bucket.saturating_sub(OUTLIER_REFERENCE_DAYS * DAY_BUCKETS);
    let mut last = None;
    for &ship in ships.iter().skip(from).take(max_ships) {
        if page.ships.len() >= limit {
            break;
        }
        last = Some(ship);
        page.ships_examined += 1;
        let buckets = engine
            .read_buckets(ship, lookback_start, end_bucket)?
            .unwrap_or_default();
        if buckets.is_empty() {
            continue;
        }
        page.ships_active += 1;
        let found = ship_alerts(
            ship,
            &buckets,
            lookback_start,
            first_bucket,
            end_bucket,
            expected_end,
        );
        if !found.is_empty() {
            page.ships.push(found);
        }
    }
    if let Some(last) = last {
        if ships.last().is_some_and(|newest| *newest > last) {
            page.next_after = Some(last);
        }
    }
    Ok(page)
}

/// [`alerts`] for one ship, from its stored `buckets` (ascending) in
/// `[lookback_start, end_bucket)`, judging `[first_bucket, end_bucket)`;
/// missing buckets count only before `expected_end`.
pub fn ship_alerts(
    ship: ShipId,
    buckets: &[Bucket],
    lookback_start: i64,
    first_bucket: i64,
    end_bucket: i64,
    expected_end: i64,
) -> ShipAlerts {
    let mut found = ShipAlerts {
        ship,
        ..ShipAlerts::default()
    };
    let Ok(span) = usize::try_from(end_bucket - lookback_start) else {
        return found;
    };
    // Dense: NaN where there is no complete bucket.
    let mut complete = vec![f64::NAN; span];
    let mut complete_energy: Vec<NanoKwh> = vec![0; span];
    let mut coverage = vec![0u32; span];
    for bucket in buckets {
        let Ok(at) = usize::try_from(bucket.index - lookback_start) else {
            continue;
        };
        if at >= span {
            continue;
        }
        coverage[at] = bucket.coverage_s;
        if bucket.coverage_s >= BUCKET_SECONDS as u32 {
            complete[at] = bucket.kwh();
            complete_energy[at] = bucket.energy;
        }
    }
    let window_at = usize::try_from(first_bucket - lookback_start).unwrap_or(0);
    // The ship is expected from the window's start, unless its data began
    // inside the window.
    let had_lookback = coverage[..window_at.min(span)].iter().any(|c| *c > 0);
    let expected_from = if had_lookback {
        window_at
    } else {
        coverage[window_at.min(span)..]
            .iter()
            .position(|c| *c > 0)
            .map_or(span, |p| window_at + p)
    };
    let expected_to = usize::try_from(expected_end - lookback_start)
        .unwrap_or(0)
        .min(span);
    found.expected_buckets = expected_to.saturating_sub(expected_from) as u64;

    // Runs of missing and of partial buckets.
    let mut at = window_at;
    while at < span {
        let kind = match coverage[at] {
            0 if at >= expected_from && at < expected_to => 0,
            c if c > 0 && c < BUCKET_SECONDS as u32 => 1,
            _ => {
                at += 1;
                continue;
            }
        };
        let start = at;
        let mut covered_s = 0u64;
        while at < span
            && match kind {
                0 => coverage[at] == 0 && at < expected_to,
                _ => coverage[at] > 0 && coverage[at] < BUCKET_SECONDS as u32,
            }
        {
            covered_s += u64::from(coverage[at]);
            at += 1;
        }
        let run = BucketRun {
            first_bucket: lookback_start + start as i64,
            end_bucket: lookback_start + at as i64,
            covered_s,
        };
        let length = (at - start) as u64;
        if kind == 0 {
            found.missing_buckets += length;
            if found.missing.len() < ALERT_ITEMS_MAX {
                found.missing.push(run);
            }
        } else {
            found.partial_buckets += length;
            found.partial_missing_s += length * BUCKET_SECONDS as u64 - covered_s;
            if found.partial.len() < ALERT_ITEMS_MAX {
                found.partial.push(run);
            }
        }
    }

    // Outliers against the same slot on the previous days.
    let mut level: Vec<f64> = complete.iter().copied().filter(|v| !v.is_nan()).collect();
    let ship_level = median(&mut level).unwrap_or(0.0);
    let floor = (OUTLIER_SHIP_FLOOR * ship_level).max(OUTLIER_FLOOR_KWH);
    let mut references = [0.0f64; OUTLIER_REFERENCE_DAYS as usize];
    let mut outliers = Vec::new();
    for at in window_at..span {
        let value = complete[at];
        if value.is_nan() {
            continue;
        }
        let mut count = 0;
        for day in 1..=OUTLIER_REFERENCE_DAYS as usize {
            if let Some(reference) = at.checked_sub(day * BUCKETS_PER_DAY).map(|i| complete[i]) {
                if !reference.is_nan() {
                    references[count] = reference;
                    count += 1;
                }
            }
        }
        if count < OUTLIER_MIN_REFERENCES {
            continue;
        }
        found.judged_buckets += 1;
        let expected = small_median(&mut references[..count]);
        let mut deviations = [0.0f64; OUTLIER_REFERENCE_DAYS as usize];
        for (deviation, reference) in deviations.iter_mut().zip(&references[..count]) {
            *deviation = (reference - expected).abs();
        }
        let mad = small_median(&mut deviations[..count]);
        let scale = (1.4826 * mad).max(OUTLIER_SLOT_FLOOR * expected).max(floor);
        let score = (value - expected) / scale;
        if score.abs() > OUTLIER_THRESHOLD {
            found.outlier_buckets += 1;
            outliers.push(Outlier {
                bucket: lookback_start + at as i64,
                energy: complete_energy[at],
                expected_kwh: expected,
                score,
            });
        }
    }
    if outliers.len() > ALERT_ITEMS_MAX {
        outliers.sort_by(|a, b| b.score.abs().total_cmp(&a.score.abs()));
        outliers.truncate(ALERT_ITEMS_MAX);
        outliers.sort_by_key(|o| o.bucket);
    }
    found.outliers = outliers;
    found
}

/// The median of a few `values` (at least one; sorted in place): an
/// insertion sort beats selection at 4 to 7 values, and this runs for every
/// judged bucket.
fn small_median(values: &mut [f64]) -> f64 {
    for i in 1..values.len() {
        let mut j = i;
        while j > 0 && values[j - 1] > values[j] {
            values.swap(j - 1, j);
            j -= 1;
        }
    }
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// The median of `values` (reordered), `None` when empty.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let middle = values.len() / 2;
    let (_, upper, _) = values.select_nth_unstable_by(middle, f64::total_cmp);
    let upper = *upper;
    if values.len() % 2 == 1 {
        return Some(upper);
    }
    let lower = values[..middle]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    Some((lower + upper) / 2.0)
}

#[cfg(test)]
mod dashboard_tests {
    use super::*;

    const DAY: i64 = DAY_BUCKETS;

    /// `days` days of complete buckets from bucket 0 with a daily shape.
    fn steady(days: i64) -> Vec<Bucket> {
        (0..days * DAY)
            .map(|index| Bucket {
                index,
                energy: 2_000_000_000 + (index % DAY) as i128 * 100_000_000,
                coverage_s: 900,
            })
            .collect()
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(small_median(&mut [3.0]), 3.0);
        assert_eq!(small_median(&mut [5.0, 1.0, 3.0, 9.0, 7.0]), 5.0);
        assert_eq!(small_median(&mut [4.0, 1.0, 3.0, 2.0, 6.0, 5.0]), 3.5);
    }

    #[test]
    fn a_steady_ship_has_no_alerts() {
        let buckets = steady(14);
        let found = ship_alerts(1, &buckets, 0, 7 * DAY, 14 * DAY, 14 * DAY);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(found.expected_buckets, 7 * DAY as u64);
        assert_eq!(found.judged_buckets, 7 * DAY as u64);
    }

    #[test]
    fn gaps_partials_and_outliers_are_found_where_they_are() {
        let mut buckets = steady(14);
        // A 6-hour gap on day 10, a partial bucket on day 11, a spike on day 12.
        buckets.retain(|b| !(10 * DAY + 24..10 * DAY + 48).contains(&b.index));
        let partial = buckets
            .iter_mut()
            .find(|b| b.index == 11 * DAY + 5)
            .unwrap();
        partial.coverage_s = 300;
        partial.energy /= 3;
        let spike = buckets
            .iter_mut()
            .find(|b| b.index == 12 * DAY + 50)
            .unwrap();
        spike.energy *= 10;
        let found = ship_alerts(1, &buckets, 0, 7 * DAY, 14 * DAY, 14 * DAY);
        assert_eq!(found.missing_buckets, 24);
        assert_eq!(
            found.missing,
            vec![BucketRun {
                first_bucket: 10 * DAY + 24,
                end_bucket: 10 * DAY + 48,
                covered_s: 0
            }]
        );
        assert_eq!(found.partial_buckets, 1);
        assert_eq!(found.partial_missing_s, 600);
        assert_eq!(found.partial[0].first_bucket, 11 * DAY + 5);
        assert_eq!(found.outlier_buckets, 1, "{:?}", found.outliers);
        assert_eq!(found.outliers[0].bucket, 12 * DAY + 50);
        assert!(found.outliers[0].score > OUTLIER_THRESHOLD);
        assert_eq!(found.outliers[0].expected_kwh, 2.0 + 5.0);
    }

    #[test]
    fn silence_at_the_end_is_missing_but_not_past_the_fleet_data() {
        let mut buckets = steady(14);
        buckets.retain(|b| b.index < 13 * DAY);
        // The fleet's data ends 4 buckets into the last day.
        let found = ship_alerts(1, &buckets, 0, 7 * DAY, 14 * DAY, 13 * DAY + 4);
        assert_eq!(found.missing_buckets, 4);
        assert_eq!(found.expected_buckets, 6 * DAY as u64 + 4);
    }

    #[test]
    fn a_ship_that_starts_inside_the_window_is_expected_from_its_start() {
        let buckets: Vec<Bucket> = steady(14)
            .into_iter()
            .filter(|b| b.index >= 9 * DAY)
            .collect();
        let found = ship_alerts(1, &buckets, 0, 7 * DAY, 14 * DAY, 14 * DAY);
        assert_eq!(found.missing_buckets, 0);
        assert_eq!(found.expected_buckets, 5 * DAY as u64);
        // Too few references for its first days; judged after 4.
        assert_eq!(found.judged_buckets, DAY as u64);
    }
}
