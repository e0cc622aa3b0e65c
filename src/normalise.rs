//! Readings → spans: the span and gap rules of SPEC.md.
//!
//! One POST's readings become constant-power [`Span`]s:
//! - Readings are sorted by time (they may arrive in any order); two readings
//!   with the same whole second are an error naming both (by their position
//!   in the request), never a silent pick.
//! - `nominal` is the batch's `interval` when given, else the most common
//!   spacing between consecutive readings (ties: the smaller), else — a single
//!   reading without `interval` — [`SINGLE_READING_S`] (15 minutes).
//! - Reading `i` covers `[t_i, t_i + d_i)` with `d_i = min(t_{i+1} - t_i,
//!   nominal)`; the last reading covers `nominal`. A spacing larger than
//!   `nominal` is missing data: the rest of that spacing stays uncovered (no
//!   span, not a zero span).
//! - kW: the span's power is the value. kWh: the reading's energy spreads
//!   evenly over its span, `power = value × 3600 / d_i`, so splitting and
//!   summing into buckets happen in one place ([`crate::model::spans_to_buckets`]).
//!
//! Output invariants: spans are sorted, disjoint and non-empty. Adjacent spans
//! (one ends where the next starts) with exactly equal power are merged into
//! one: they describe the same seconds with the same power, so the merge
//! changes neither coverage nor the density per second, and a steady meter
//! costs the engine one span instead of hundreds.

use std::borrow::Cow;

use crate::model::{Reading, Span, Units, SECONDS_PER_HOUR};

/// How long a lone reading without an `interval` lasts: one bucket.
pub const SINGLE_READING_S: i64 = 900;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NormaliseError {
    /// Two readings share a timestamp: indices into the request's `data`.
    DuplicateTimestamp {
        first: usize,
        second: usize,
    },
    Empty,
}

/// Turns one POST's readings into spans (see the module docs for the rules).
///
/// `interval_s` is the batch's declared spacing; the wire layer guarantees it
/// is positive, and a non-positive value is treated as absent rather than
/// producing empty or backwards spans. Readings' values are taken as they
/// are: the wire layer has checked they are in
/// `0..=`[`crate::wire::MAX_READING_VALUE`], which keeps even a kWh reading
/// spread over one second a finite power. Times near the ends of `i64`
/// saturate instead of overflowing.
pub fn normalise(
    units: Units,
    readings: &[Reading],
    interval_s: Option<i64>,
) -> Result<Vec<Span>, NormaliseError> {
    if readings.is_empty() {
        return Err(NormaliseError::Empty);
    }
    let sorted = sorted_by_time(readings);
    if let Some((a, b)) = pairs(&sorted).find(|(a, b)| a.time_s == b.time_s) {
        return Err(NormaliseError::DuplicateTimestamp {
            first: a.index.min(b.index),
            second: a.index.max(b.index),
        });
    }
    let nominal = match interval_s {
        Some(interval) if interval > 0 => interval,
        // A guessed spacing is capped like an explicit `interval`: two
        // readings years apart are two readings with a gap between them,
        // not one reading covering years.
        _ => most_common_spacing(&sorted)
            .unwrap_or(SINGLE_READING_S)
            .min(crate::wire::MAX_INTERVAL_S),
    };

    let mut spans: Vec<Span> = Vec::with_capacity(sorted.len());
    let next_times = sorted.iter().skip(1).map(|r| Some(r.time_s)).chain([None]);
    for (reading, next) in sorted.iter().zip(next_times) {
        let start = reading.time_s;
        let length = match next {
            Some(next) => next.saturating_sub(start).min(nominal),
            None => nominal,
        };
        let end = start.saturating_add(length);
        // Only empty when `start` is at the very end of time; nothing to cover.
        if end <= start {
            continue;
        }
        let power_kw = match units {
            Units::Kw => reading.value,
            // The actual length, so the energy stays whole even if `end` saturated.
            Units::Kwh => kwh_power(reading.value, end - start),
        };
        match spans.last_mut() {
            Some(last) if last.end_s == start && last.power_kw == power_kw => last.end_s = end,
            _ => spans.push(Span {
                start_s: start,
                end_s: end,
                power_kw,
            }),
        }
    }
    Ok(spans)
}

/// The readings in time order (ties by request position, so a duplicate's
/// smaller index comes first). Ships usually send sorted data: then no copy.
fn sorted_by_time(readings: &[Reading]) -> Cow<'_, [Reading]> {
    if pairs(readings).all(|(a, b)| a.time_s < b.time_s) {
        return Cow::Borrowed(readings);
    }
    let mut owned = readings.to_vec();
    owned.sort_unstable_by_key(|r| (r.time_s, r.index));
    Cow::Owned(owned)
}

/// Consecutive pairs `(r[i], r[i+1])`.
fn pairs(readings: &[Reading]) -> impl Iterator<Item = (&Reading, &Reading)> {
    readings.iter().zip(readings.iter().skip(1))
}

/// The most common gap between consecutive (sorted, distinct) readings, the
/// smaller on a tie; `None` for a single reading.
fn most_common_spacing(sorted: &[Reading]) -> Option<i64> {
    let mut gaps = pairs(sorted).map(|(a, b)| b.time_s.saturating_sub(a.time_s));
    let first = gaps.next()?;
    // Regular data — nearly every POST — needs no counting.
    if gaps.all(|g| g == first) {
        return Some(first);
    }
    let mut all: Vec<i64> = pairs(sorted)
        .map(|(a, b)| b.time_s.saturating_sub(a.time_s))
        .collect();
    all.sort_unstable();
    // Ascending runs; a later run must be strictly longer to win, which
    // keeps the smaller spacing on a tie.
    let mut best = (first, 0usize);
    let mut run = (first, 0usize);
    for gap in all {
        if gap == run.0 {
            run.1 += 1;
        } else {
            run = (gap, 1);
        }
        if run.1 > best.1 {
            best = run;
        }
    }
    Some(best.0)
}

/// The power of a kWh reading spread over `seconds`: `value × 3600 /
/// seconds`. When `seconds` divides the hour and the reading is a decimal,
/// the power is that decimal times an integer, and it is computed on the
/// decimal's integer so the result is the `f64` nearest to it — the power
/// the energy definition reads as the decimal sent (storage-format.md, "The
/// data model on disk") and the block encoder stores in a few bits —
/// rather than one rounding step off it, which would make it a binary
/// fraction of 8 stored bytes.
fn kwh_power(value: f64, seconds: i64) -> f64 {
    const HOUR: i64 = 3600;
    if seconds > 0 && HOUR % seconds == 0 {
        if let Some((m, e)) = crate::model::decimal_of(value) {
            let scaled = m
                .checked_mul(HOUR / seconds)
                .filter(|x| x.unsigned_abs() < 1 << 53);
            if let Some(scaled) = scaled {
                // Both operands are exact; the division rounds once.
                return scaled as f64 / 10f64.powi(i32::from(e));
            }
        }
    }
    value * SECONDS_PER_HOUR / seconds as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{spans_to_buckets, Bucket, BUCKET_SECONDS};
    use crate::wire::{parse_post_body, parse_timestamp};

    /// 2018-08-24T00:00:00Z, bucket-aligned.
    const DAY: i64 = 1_535_068_800;
    const MIN: i64 = 60;
    const HOUR: i64 = 3600;

    fn t(text: &str) -> i64 {
        parse_timestamp(text).expect(text)
    }

    /// Readings at `DAY + offset` in request order.
    fn readings(points: &[(i64, f64)]) -> Vec<Reading> {
        points
            .iter()
            .enumerate()
            .map(|(index, &(offset, value))| Reading {
                index,
                time_s: DAY + offset,
                value,
            })
            .collect()
    }

    fn buckets_of(spans: &[Span]) -> Vec<Bucket> {
        let mut out = Vec::new();
        spans_to_buckets(
            spans,
            i64::MIN / BUCKET_SECONDS,
            i64::MAX / BUCKET_SECONDS,
            &mut out,
        );
        out
    }

    /// (bucket start relative to `DAY`, energy, coverage) for compact asserts.
    fn buckets(
        units: Units,
        points: &[(i64, f64)],
        interval_s: Option<i64>,
    ) -> Vec<(i64, f64, u32)> {
        let spans = normalise(units, &readings(points), interval_s).expect("valid readings");
        check_invariants(&spans);
        buckets_of(&spans)
            .iter()
            .map(|b| (b.index * BUCKET_SECONDS - DAY, b.kwh(), b.coverage_s))
            .collect()
    }

    fn check_invariants(spans: &[Span]) {
        for s in spans {
            assert!(s.start_s < s.end_s, "empty span {s:?}");
        }
        for w in spans.windows(2) {
            assert!(w[0].end_s <= w[1].start_s, "overlap or disorder: {w:?}");
        }
    }

    fn full(start: i64, energy: f64) -> (i64, f64, u32) {
        (start, energy, 900)
    }

    #[test]
    fn kwh_powers_stay_the_decimals_they_stand_for() {
        // 187.719174 × 3600 / 900 in f64 is 750.8766960000002, one step
        // off 750.876696 (and no decimal of 9 places at all).
        assert_eq!(crate::model::decimal_of(187.719174 * 3600.0 / 900.0), None);
        assert_eq!(kwh_power(187.719174, 900), 750.876696);
        assert_eq!(
            crate::model::decimal_at(kwh_power(187.719174, 900), 6),
            Some(750_876_696)
        );
        // Likewise 844.214 over 5 minutes: 10130.568000000001 before.
        assert_ne!(844.214 * 3600.0 / 300.0, 10130.568);
        assert_eq!(kwh_power(844.214, 300), 10130.568);
        assert_eq!(kwh_power(7.5, 3600), 7.5);
        // Not dividing the hour, or no decimal: the plain quotient.
        assert_eq!(kwh_power(7.0, 420), 7.0 * 3600.0 / 420.0);
        assert_eq!(kwh_power(1e300, 900), 1e300 * 3600.0 / 900.0);
    }

    #[test]
    fn worked_example_1_kwh_hourly() {
        let got = buckets(
            Units::Kwh,
            &[(0, 12.0), (HOUR, 26.0), (2 * HOUR, 18.0)],
            None,
        );
        let mut want = Vec::new();
        for (hour, energy) in [(0, 3.0), (1, 6.5), (2, 4.5)] {
            for quarter in 0..4 {
                want.push(full(hour * HOUR + quarter * 15 * MIN, energy));
            }
        }
        assert_eq!(got, want);
    }

    #[test]
    fn worked_example_2_kw_five_minute() {
        let values = [22.0, 24.0, 23.0, 18.0, 22.0, 23.0, 8.0];
        let points: Vec<(i64, f64)> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 5 * MIN, v))
            .collect();
        let got = buckets(Units::Kw, &points, None);
        assert_eq!(
            got,
            vec![
                full(0, 69.0 / 12.0),
                full(15 * MIN, 63.0 / 12.0),
                // 8 × 5/60 = 0.666…, rounded once to the nano-kWh.
                (30 * MIN, 0.666_666_667, 300),
            ]
        );
        assert_eq!(got[0].1, 5.75);
        assert_eq!(got[1].1, 5.25);
    }

    #[test]
    fn worked_example_3_kwh_fifteen_minute_unchanged() {
        let points = [(0, 2.0), (15 * MIN, 5.0), (30 * MIN, 2.0), (45 * MIN, 6.0)];
        let got = buckets(Units::Kwh, &points, None);
        let want: Vec<_> = points.iter().map(|&(at, v)| full(at, v)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn kw_disaggregates_to_the_same_power() {
        // 8 kW for an hour: four buckets of 2 kWh.
        let want: Vec<_> = (0..4).map(|q| full(q * 15 * MIN, 2.0)).collect();
        assert_eq!(buckets(Units::Kw, &[(0, 8.0)], Some(HOUR)), want);
        // Same from hourly spacing without an interval.
        let got = buckets(Units::Kw, &[(0, 8.0), (HOUR, 8.0)], None);
        assert_eq!(got.len(), 8);
        assert!(got.iter().all(|&(_, e, c)| e == 2.0 && c == 900));
    }

    #[test]
    fn kw_aggregates_by_mean() {
        // 1, 4, 1 kW at five minutes: mean 2 kW for 15 minutes = 0.5 kWh.
        let got = buckets(
            Units::Kw,
            &[(0, 1.0), (5 * MIN, 4.0), (10 * MIN, 1.0)],
            None,
        );
        assert_eq!(got, vec![full(0, 0.5)]);
        // 6 kW for five minutes is 0.5 kWh.
        let got = buckets(Units::Kw, &[(0, 6.0)], Some(5 * MIN));
        assert_eq!(got, vec![(0, 0.5, 300)]);
    }

    #[test]
    fn kwh_splits_evenly_and_sums() {
        assert_eq!(
            buckets(Units::Kwh, &[(0, 12.0)], Some(HOUR)),
            (0..4).map(|q| full(q * 15 * MIN, 3.0)).collect::<Vec<_>>()
        );
        let got = buckets(
            Units::Kwh,
            &[(0, 1.0), (5 * MIN, 2.0), (10 * MIN, 3.0)],
            None,
        );
        assert_eq!(got, vec![full(0, 6.0)]);
    }

    #[test]
    fn unaligned_readings_split_proportionally() {
        // 12 kWh over [23:00:01, 00:00:01): 899 s, three whole buckets, 1 s;
        // then 24 kWh over [00:00:01, 01:00:01).
        let start = 23 * HOUR + 1;
        let got = buckets(Units::Kwh, &[(start, 12.0), (start + HOUR, 24.0)], None);
        assert_eq!(got.len(), 9);
        // 12 × 899/3600 = 2.99666…, rounded once to the nano-kWh.
        assert_eq!(got[0], (23 * HOUR, 2.996_666_667, 899));
        assert_eq!(got[1], full(23 * HOUR + 15 * MIN, 3.0));
        assert_eq!(got[3], full(23 * HOUR + 45 * MIN, 3.0));
        // The 00:00 bucket: 1 s of the first reading, 899 s of the second.
        assert_eq!(
            got[4],
            // (12 × 1 + 24 × 899) / 3600 = 5.99666…
            full(24 * HOUR, 5.996_666_667)
        );
        assert_eq!(got[5], full(24 * HOUR + 15 * MIN, 6.0));
        assert_eq!(got[8], (25 * HOUR, 0.006_666_667, 1));
        let total: f64 = got.iter().map(|b| b.1).sum();
        assert!((total - 36.0).abs() < 1e-9);
    }

    #[test]
    fn missing_data_stays_absent() {
        // Hourly kWh with 02:00 missing: its four buckets are absent, not zero.
        let points = [(0, 4.0), (HOUR, 4.0), (3 * HOUR, 4.0), (4 * HOUR, 4.0)];
        let got = buckets(Units::Kwh, &points, None);
        assert_eq!(got.len(), 16);
        assert!(got.iter().all(|&(_, e, c)| e == 1.0 && c == 900));
        let starts: Vec<i64> = got.iter().map(|b| b.0 / (15 * MIN)).collect();
        let want: Vec<i64> = (0..8).chain(12..20).collect();
        assert_eq!(starts, want);
        // A gap is never smeared: the reading before it keeps its own energy.
        let spans = normalise(Units::Kwh, &readings(&points), None).expect("valid");
        assert_eq!(
            spans,
            vec![
                Span {
                    start_s: DAY,
                    end_s: DAY + 2 * HOUR,
                    power_kw: 4.0
                },
                Span {
                    start_s: DAY + 3 * HOUR,
                    end_s: DAY + 5 * HOUR,
                    power_kw: 4.0
                },
            ]
        );
    }

    #[test]
    fn explicit_interval_shorter_than_spacing_leaves_gaps() {
        // Hourly readings that each describe only 15 minutes.
        let got = buckets(
            Units::Kwh,
            &[(0, 2.0), (HOUR, 3.0), (2 * HOUR, 4.0)],
            Some(15 * MIN),
        );
        assert_eq!(
            got,
            vec![full(0, 2.0), full(HOUR, 3.0), full(2 * HOUR, 4.0)]
        );
        // Longer than the spacing: each reading still ends at the next one.
        let got = buckets(Units::Kwh, &[(0, 2.0), (15 * MIN, 3.0)], Some(HOUR));
        assert_eq!(got.len(), 5);
        assert_eq!(got[0], full(0, 2.0));
        assert_eq!(got[1], full(15 * MIN, 0.75));
    }

    #[test]
    fn a_guessed_spacing_is_capped_at_seven_days() {
        // Two readings ten years apart: each covers at most 7 days.
        let ten_years = 10 * 365 * 86_400;
        let spans =
            normalise(Units::Kw, &readings(&[(0, 1.0), (ten_years, 2.0)]), None).expect("valid");
        let week = crate::wire::MAX_INTERVAL_S;
        assert_eq!(
            spans
                .iter()
                .map(|s| (s.start_s - DAY, s.end_s - DAY))
                .collect::<Vec<_>>(),
            vec![(0, week), (ten_years, ten_years + week)]
        );
    }

    #[test]
    fn nominal_is_the_most_common_spacing_smaller_on_ties() {
        let at = |times: &[i64]| -> Vec<Reading> {
            readings(&times.iter().map(|&t| (t, 1.0)).collect::<Vec<_>>())
        };
        assert_eq!(most_common_spacing(&at(&[0])), None);
        assert_eq!(most_common_spacing(&at(&[0, 300, 600])), Some(300));
        assert_eq!(most_common_spacing(&at(&[0, 900, 1800, 2100])), Some(900));
        // 300, 300, 900, 900: a tie, the smaller wins.
        assert_eq!(
            most_common_spacing(&at(&[0, 300, 600, 1500, 2400])),
            Some(300)
        );
        // 900, 900, 300, 300 (the order of gaps must not matter).
        assert_eq!(
            most_common_spacing(&at(&[0, 900, 1800, 2100, 2400])),
            Some(300)
        );
        // 3600, 900, 300: three-way tie.
        assert_eq!(most_common_spacing(&at(&[0, 3600, 4500, 4800])), Some(300));

        // Through normalise: the tie gives each reading 300 s; the last too.
        let got = buckets(
            Units::Kw,
            &[
                (0, 12.0),
                (300, 12.0),
                (600, 12.0),
                (1500, 12.0),
                (2400, 12.0),
            ],
            None,
        );
        assert_eq!(got, vec![full(0, 3.0), (900, 1.0, 300), (1800, 1.0, 300)]);
    }

    #[test]
    fn unsorted_input_is_sorted() {
        let sorted = [(0, 2.0), (15 * MIN, 5.0), (30 * MIN, 2.0), (45 * MIN, 6.0)];
        let shuffled = [(30 * MIN, 2.0), (0, 2.0), (45 * MIN, 6.0), (15 * MIN, 5.0)];
        for units in [Units::Kw, Units::Kwh] {
            assert_eq!(
                normalise(units, &readings(&shuffled), None),
                normalise(units, &readings(&sorted), None)
            );
        }
    }

    #[test]
    fn a_single_reading_covers_fifteen_minutes() {
        assert_eq!(buckets(Units::Kwh, &[(0, 7.0)], None), vec![full(0, 7.0)]);
        assert_eq!(buckets(Units::Kw, &[(0, 8.0)], None), vec![full(0, 2.0)]);
        // Unaligned: still 900 s, across two buckets.
        assert_eq!(
            buckets(Units::Kwh, &[(600, 9.0)], None),
            vec![(0, 3.0, 300), (900, 6.0, 600)]
        );
        assert_eq!(
            buckets(Units::Kwh, &[(0, 7.0)], Some(5 * MIN)),
            vec![(0, 7.0, 300)]
        );
    }

    #[test]
    fn duplicates_name_both_readings() {
        let points = [(600, 1.0), (0, 1.0), (300, 1.0), (600, 2.0)];
        assert_eq!(
            normalise(Units::Kw, &readings(&points), None),
            Err(NormaliseError::DuplicateTimestamp {
                first: 0,
                second: 3
            })
        );
        // Sorted input takes the no-copy path; still caught.
        let points = [(0, 1.0), (300, 1.0), (300, 1.0)];
        assert_eq!(
            normalise(Units::Kwh, &readings(&points), Some(300)),
            Err(NormaliseError::DuplicateTimestamp {
                first: 1,
                second: 2
            })
        );
    }

    #[test]
    fn empty_is_an_error() {
        assert_eq!(normalise(Units::Kw, &[], None), Err(NormaliseError::Empty));
        assert_eq!(
            normalise(Units::Kwh, &[], Some(900)),
            Err(NormaliseError::Empty)
        );
    }

    #[test]
    fn equal_adjacent_spans_merge_unequal_or_gapped_do_not() {
        let points: Vec<(i64, f64)> = (0..288).map(|i| (i * 5 * MIN, 3.5)).collect();
        let spans = normalise(Units::Kw, &readings(&points), None).expect("valid");
        assert_eq!(
            spans,
            vec![Span {
                start_s: DAY,
                end_s: DAY + 24 * HOUR,
                power_kw: 3.5
            }]
        );
        let spans = normalise(
            Units::Kw,
            &readings(&[(0, 1.0), (300, 2.0), (600, 2.0)]),
            None,
        )
        .expect("valid");
        assert_eq!(spans.len(), 2);
        let spans =
            normalise(Units::Kw, &readings(&[(0, 1.0), (300, 1.0)]), Some(200)).expect("valid");
        assert_eq!(spans.len(), 2);
    }

    #[test]
    fn non_positive_interval_counts_as_absent() {
        let points = [(0, 1.0), (HOUR, 1.0)];
        for bad in [0, -900] {
            assert_eq!(
                normalise(Units::Kwh, &readings(&points), Some(bad)),
                normalise(Units::Kwh, &readings(&points), None)
            );
        }
    }

    #[test]
    fn the_largest_reading_over_one_second_stays_finite() {
        let max = crate::wire::MAX_READING_VALUE;
        let spans = normalise(Units::Kwh, &readings(&[(0, max), (1, max)]), None).expect("valid");
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].power_kw, max * 3600.0);
        let energy: i128 = buckets_of(&spans).iter().map(|b| b.energy).sum();
        // 1e15 kWh in one second, then the next reading's second: exact.
        assert_eq!(energy, 2 * 1_000_000_000_000_000_000_000_000);
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let at = |points: &[(i64, f64)]| -> Vec<Reading> {
            points
                .iter()
                .enumerate()
                .map(|(index, &(time_s, value))| Reading {
                    index,
                    time_s,
                    value,
                })
                .collect()
        };
        for units in [Units::Kw, Units::Kwh] {
            let spans =
                normalise(units, &at(&[(i64::MIN, 1.0), (i64::MAX, 1.0)]), None).expect("valid");
            check_invariants(&spans);
            let spans = normalise(units, &at(&[(i64::MAX - 10, 1.0)]), None).expect("valid");
            assert_eq!(spans.len(), 1);
            assert_eq!(spans[0].end_s, i64::MAX);
            assert!(spans[0].power_kw.is_finite());
            let spans = normalise(units, &at(&[(i64::MAX, 1.0)]), Some(i64::MAX)).expect("valid");
            assert!(spans.is_empty());
        }
    }

    /// Offsets and fractions go through the wire parser and land on UTC whole
    /// seconds before the rules apply.
    #[test]
    fn offsets_and_fractions_from_the_wire() {
        let body = parse_post_body(
            br#"{"spaceship_id": 1, "units": "kWh", "data": [
                {"datetime": "2018-08-24T02:15:00.999+02:00", "value": 5},
                {"datetime": "2018-08-23T20:00:00.5-04:00", "value": 2}
            ]}"#,
        )
        .expect("valid");
        let spans = normalise(body.units, &body.readings, body.interval_s).expect("valid");
        let got: Vec<_> = buckets_of(&spans)
            .iter()
            .map(|b| (b.index * BUCKET_SECONDS - DAY, b.kwh(), b.coverage_s))
            .collect();
        assert_eq!(got, vec![full(0, 2.0), full(15 * MIN, 5.0)]);
        assert_eq!(spans[0].start_s, t("2018-08-24T00:00:00Z"));
    }

    #[test]
    fn duplicates_after_truncation_from_the_wire() {
        let body = parse_post_body(
            br#"{"spaceship_id": 1, "units": "kW", "data": [
                {"datetime": "2018-08-24T00:05:00Z", "value": 1},
                {"datetime": "2018-08-24T00:00:00.2Z", "value": 1},
                {"datetime": "2018-08-24T02:00:00.7+02:00", "value": 2}
            ]}"#,
        )
        .expect("the wire does not check duplicates");
        assert_eq!(
            normalise(body.units, &body.readings, body.interval_s),
            Err(NormaliseError::DuplicateTimestamp {
                first: 1,
                second: 2
            })
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Distinct times (in any order) with values, plus an optional interval.
        fn batch() -> impl Strategy<Value = (Vec<Reading>, Option<i64>, bool)> {
            (
                prop::collection::btree_map(-100_000i64..100_000, 0.0f64..1000.0, 1..40),
                prop::option::of(1i64..5000),
                any::<bool>(),
                any::<u64>(),
            )
                .prop_map(|(points, interval, kwh, seed)| {
                    let mut rs: Vec<Reading> = points
                        .into_iter()
                        .enumerate()
                        .map(|(index, (time_s, value))| Reading {
                            index,
                            time_s,
                            value,
                        })
                        .collect();
                    // A deterministic shuffle; indices stay with their readings.
                    let len = rs.len();
                    for i in 0..len {
                        let j = (seed.wrapping_mul(i as u64 + 1) >> 7) as usize % len;
                        rs.swap(i, j);
                    }
                    (rs, interval, kwh)
                })
        }

        proptest! {
            /// Spans are sorted, disjoint and non-empty; every reading's own
            /// second is covered; energy is conserved per reading.
            #[test]
            fn spans_follow_the_rules((rs, interval, kwh) in batch()) {
                let units = if kwh { Units::Kwh } else { Units::Kw };
                let spans = normalise(units, &rs, interval).expect("distinct times");
                check_invariants(&spans);

                let mut sorted = rs.clone();
                sorted.sort_by_key(|r| r.time_s);
                let nominal = interval.or_else(|| most_common_spacing(&sorted)).unwrap_or(900);
                let mut expected_energy = 0.0;
                let mut expected_cover = 0;
                for (i, r) in sorted.iter().enumerate() {
                    let d = sorted.get(i + 1).map_or(nominal, |n| (n.time_s - r.time_s).min(nominal));
                    expected_cover += d;
                    expected_energy += if kwh { r.value } else { r.value * d as f64 / 3600.0 };
                    let covering = spans.iter().find(|s| s.start_s <= r.time_s && r.time_s < s.end_s);
                    let s = covering.expect("a reading's first second is covered");
                    let power = if kwh { r.value * 3600.0 / d as f64 } else { r.value };
                    prop_assert!((s.power_kw - power).abs() <= 1e-9 * power.max(1.0));
                }
                let cover: i64 = spans.iter().map(Span::len_s).sum();
                prop_assert_eq!(cover, expected_cover);
                let buckets = buckets_of(&spans);
                let energy: f64 = buckets.iter().map(|b| b.kwh()).sum();
                // Each bucket is rounded to the nano-kWh once.
                let rounding = 0.5e-9 * buckets.len() as f64;
                prop_assert!(
                    (energy - expected_energy).abs() <= 1e-9 * expected_energy.max(1.0) + rounding
                );
            }
        }
    }
}
