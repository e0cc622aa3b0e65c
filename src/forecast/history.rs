//! A ship's history as the model sees it: a dense run of 15-minute buckets,
//! and the day grid the components read.

use crate::model::{Bucket, BUCKET_SECONDS};

use super::BUCKETS_PER_DAY;

const DAY: usize = BUCKETS_PER_DAY;

/// A partial bucket covering at least this many seconds is scaled up to a
/// full-bucket estimate (energy × 900 / coverage); below it, it counts as
/// missing. Scaling assumes the uncovered seconds drew what the covered
/// ones did; the thinner the coverage the less that holds, and below a third
/// of a bucket the same slot on nearby same weekdays (the imputation) is the
/// better guess. Above it, the common partials — the edge of a gap, a
/// reading spacing that does not divide 15 minutes — keep their data.
pub const MIN_PARTIAL_COVERAGE_S: u32 = 300;

/// A ship's 15-minute energy history: bucket `first_bucket + i` holds
/// `kwh[i]`, already scaled to a full bucket, or NaN when missing.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    first_bucket: i64,
    kwh: Vec<f64>,
    /// Whether bucket `i` was a partial bucket scaled up to a full one.
    scaled: Vec<bool>,
    /// Partial buckets too thin to use (counted, then treated as missing).
    dropped_partial: Vec<bool>,
}

impl History {
    /// A history with no buckets at all.
    pub fn empty() -> History {
        History {
            first_bucket: 0,
            kwh: Vec::new(),
            scaled: Vec::new(),
            dropped_partial: Vec::new(),
        }
    }

    /// Dense, full buckets starting at `first_bucket`. A NaN, infinite or
    /// negative value marks a missing bucket.
    pub fn from_kwh(first_bucket: i64, kwh: &[f64]) -> History {
        let kwh: Vec<f64> = kwh
            .iter()
            .map(|&v| {
                if v.is_finite() && v >= 0.0 {
                    v
                } else {
                    f64::NAN
                }
            })
            .collect();
        let n = kwh.len();
        History {
            first_bucket,
            kwh,
            scaled: vec![false; n],
            dropped_partial: vec![false; n],
        }
    }

    /// Dense buckets with their covered seconds (0 = missing, 900 = full).
    /// Partial buckets are scaled up or dropped per [`MIN_PARTIAL_COVERAGE_S`].
    ///
    /// # Panics
    /// If the two slices differ in length.
    pub fn from_kwh_with_coverage(first_bucket: i64, kwh: &[f64], coverage_s: &[u32]) -> History {
        assert_eq!(kwh.len(), coverage_s.len(), "one coverage per bucket");
        let mut history = History {
            first_bucket,
            kwh: vec![f64::NAN; kwh.len()],
            scaled: vec![false; kwh.len()],
            dropped_partial: vec![false; kwh.len()],
        };
        for (i, (&v, &c)) in kwh.iter().zip(coverage_s).enumerate() {
            history.set(i, v, c);
        }
        history
    }

    /// The stored buckets of one ship, in any order, gaps allowed (a bucket
    /// index seen twice keeps the later one). The result is dense over
    /// `[first, last]` of the given buckets, so callers pass a bounded window
    /// (a year is 35,040 buckets); the model reads at most
    /// [`super::LOOKBACK_DAYS`] days of it.
    pub fn from_buckets(buckets: &[Bucket]) -> History {
        let Some(first) = buckets.iter().map(|b| b.index).min() else {
            return History::empty();
        };
        let last = buckets.iter().map(|b| b.index).max().unwrap_or(first);
        let n = usize::try_from(last - first + 1).expect("bucket range fits in memory");
        let mut history = History {
            first_bucket: first,
            kwh: vec![f64::NAN; n],
            scaled: vec![false; n],
            dropped_partial: vec![false; n],
        };
        for b in buckets {
            history.set((b.index - first) as usize, b.kwh(), b.coverage_s);
        }
        history
    }

    fn set(&mut self, i: usize, kwh: f64, coverage_s: u32) {
        let full = BUCKET_SECONDS as u32;
        self.kwh[i] = f64::NAN;
        self.scaled[i] = false;
        self.dropped_partial[i] = false;
        if !(kwh.is_finite() && kwh >= 0.0) || coverage_s == 0 {
            return;
        }
        if coverage_s >= full {
            self.kwh[i] = kwh;
        } else if coverage_s >= MIN_PARTIAL_COVERAGE_S {
            self.kwh[i] = kwh * f64::from(full) / f64::from(coverage_s);
            self.scaled[i] = true;
        } else {
            self.dropped_partial[i] = true;
        }
    }

    /// The first bucket index held (meaningless when empty).
    pub fn first_bucket(&self) -> i64 {
        self.first_bucket
    }

    /// One past the last bucket index held.
    pub fn end_bucket(&self) -> i64 {
        self.first_bucket + self.kwh.len() as i64
    }

    /// The full-bucket energy estimate of `bucket`, or `None` if missing.
    pub fn get(&self, bucket: i64) -> Option<f64> {
        let i = usize::try_from(bucket - self.first_bucket).ok()?;
        self.kwh.get(i).copied().filter(|v| !v.is_nan())
    }

    /// Usable buckets in `[from, to)`.
    pub fn covered_between(&self, from: i64, to: i64) -> usize {
        let (a, b) = self.clamp(from, to);
        self.kwh[a..b].iter().filter(|v| !v.is_nan()).count()
    }

    /// The last usable bucket before `before`, if any.
    pub fn last_covered_before(&self, before: i64) -> Option<i64> {
        let (a, b) = self.clamp(self.first_bucket, before);
        self.kwh[a..b]
            .iter()
            .rposition(|v| !v.is_nan())
            .map(|i| self.first_bucket + (a + i) as i64)
    }

    /// The first usable bucket in `[from, before)`, if any.
    pub fn first_covered_between(&self, from: i64, before: i64) -> Option<i64> {
        let (a, b) = self.clamp(from, before);
        self.kwh[a..b]
            .iter()
            .position(|v| !v.is_nan())
            .map(|i| self.first_bucket + (a + i) as i64)
    }

    /// (scaled partial, dropped partial) buckets in `[from, to)`.
    pub(crate) fn partial_counts(&self, from: i64, to: i64) -> (usize, usize) {
        let (a, b) = self.clamp(from, to);
        let scaled = self.scaled[a..b].iter().filter(|&&s| s).count();
        let dropped = self.dropped_partial[a..b].iter().filter(|&&s| s).count();
        (scaled, dropped)
    }

    fn clamp(&self, from: i64, to: i64) -> (usize, usize) {
        let len = self.kwh.len() as i64;
        let a = (from - self.first_bucket).clamp(0, len) as usize;
        let b = (to - self.first_bucket).clamp(0, len) as usize;
        (a, b.max(a))
    }
}

/// The history before a fit origin laid out as whole days, oldest first:
/// day `p` covers buckets `[end - 96 (n_days - p), end - 96 (n_days - p - 1))`.
/// Days are counted back from the origin, not from UTC midnight, so every
/// seasonal lag (a day, a week) is a whole number of rows whatever the
/// origin's time of day or the ship's time zone.
///
/// Missing cells are imputed (see [`Grid::build`]) so the components never
/// branch on gaps; `observed` remembers which cells are real, and only real
/// cells are ever scored against.
pub(crate) struct Grid {
    pub n_days: usize,
    pub vals: Vec<f64>,
    pub observed: Vec<bool>,
    /// Per-day sum of `vals`.
    pub totals: Vec<f64>,
    /// Per-day count of observed cells.
    pub observed_per_day: Vec<usize>,
    /// What the days really held, to score forecasts against: `vals`,
    /// `observed`, `totals` and `observed_per_day` before the unusual days
    /// were set aside (equal to them when none was).
    pub truth_vals: Vec<f64>,
    pub truth_observed: Vec<bool>,
    pub truth_totals: Vec<f64>,
    pub truth_observed_per_day: Vec<usize>,
    /// Days set aside as unusual (see [`unusual_days`]), oldest first.
    pub unusual: Vec<usize>,
    /// The recursive seasonal decomposition's state at each day boundary
    /// (see `components::seasonal_snapshots`); empty until filled.
    pub seasonal: Vec<f64>,
}

/// Imputation looks for the same slot this many days away, nearest and same
/// weekday first, because a ship's load depends on the time of week more
/// than on anything else the model knows. Both sides of an offset are
/// averaged when both exist, so a trend does not bias the fill.
const IMPUTE_OFFSETS: [usize; 8] = [7, 1, 14, 2, 3, 21, 4, 28];

/// A day is unusual when its total is off what the days before it predicted
/// by more than this many robust standard deviations of such misses...
const UNUSUAL_SIGMAS: f64 = 3.0;
/// ... and by more than this share of the prediction, so that on a very
/// regular ship an ordinary day is never set aside.
const UNUSUAL_MIN_SHARE: f64 = 0.05;
/// The longest run of unusual days (off the same way) that is set aside: a
/// holiday, a long weekend, Christmas. A longer run is a new normal.
const UNUSUAL_MAX_RUN_DAYS: usize = 3;
/// Days before the first that can be judged: four weeks of weekday factors.
const UNUSUAL_WARMUP_DAYS: usize = 28;
/// Days of past misses that set the scale, and the fewest that may.
const UNUSUAL_SCALE_DAYS: usize = 56;
const UNUSUAL_MIN_SCALE_DAYS: usize = 14;

/// Days the components should not learn from: a holiday on a weekday, an
/// outage, a spike, each of which would otherwise distort that weekday's
/// level and profile for a month, and the next day's level at once.
///
/// Day `p`'s prediction is the mean total of the 7 days before it times its
/// weekday's factor over the 28 before it; its miss `r = total / prediction
/// − 1` is unusual past [`UNUSUAL_SIGMAS`] × 1.4826 × the median |miss| of
/// the usual days among the [`UNUSUAL_SCALE_DAYS`] before it (and past
/// [`UNUSUAL_MIN_SHARE`]): the scale is that of ordinary days, so one
/// holiday does not hide the next (measured on every day, it did: Victoria's
/// Queen's Birthday, 11.15% down, was under a threshold of 11.18%).
/// Each unusual day counts as its prediction in the predictions after it,
/// so a holiday does not make the next day look unusual; but a day off the
/// same way as its weekday in each of the two weeks before it is a new
/// weekly habit, and is kept. A run of unusual
/// days off the same way is set aside only when it is at most
/// [`UNUSUAL_MAX_RUN_DAYS`] long and the day after it is back to usual: so
/// the last day of the history is never set aside — whether it starts a new
/// level or was a one-off, only the next day tells, and until then the
/// model takes it at its word. Each day's miss is judged from the days
/// before it only, so a later origin adds nothing to the verdict but the
/// days after it that the run rule waits for.
fn unusual_days(totals: &[f64], observed_per_day: &[usize]) -> Vec<usize> {
    let n = totals.len();
    let mut usual = totals.to_vec();
    let mut miss = vec![f64::NAN; n];
    let mut unusual = vec![false; n];
    let mut off = vec![false; n];
    let mut window = Vec::with_capacity(UNUSUAL_SCALE_DAYS);
    for p in UNUSUAL_WARMUP_DAYS..n {
        // A day mostly imputed holds little news either way.
        if 2 * observed_per_day[p] < DAY {
            continue;
        }
        let mut by_weekday = [0.0; 7];
        for q in p - 28..p {
            by_weekday[q % 7] += usual[q];
        }
        let week = by_weekday.iter().sum::<f64>() / 7.0;
        let recent = usual[p - 7..p].iter().sum::<f64>() / 7.0;
        if week <= 0.0 || by_weekday[p % 7] <= 0.0 {
            continue;
        }
        let predicted = recent * by_weekday[p % 7] / week;
        miss[p] = totals[p] / predicted - 1.0;
        window.clear();
        let from = p
            .saturating_sub(UNUSUAL_SCALE_DAYS)
            .max(UNUSUAL_WARMUP_DAYS);
        window.extend(
            miss[from..p]
                .iter()
                .zip(&unusual[from..p])
                .filter(|(m, &u)| !m.is_nan() && !u)
                .map(|(m, _)| m.abs()),
        );
        if window.len() < UNUSUAL_MIN_SCALE_DAYS {
            continue;
        }
        let mid = window.len() / 2;
        let median = *window.select_nth_unstable_by(mid, f64::total_cmp).1;
        let threshold = (UNUSUAL_SIGMAS * 1.4826 * median).max(UNUSUAL_MIN_SHARE);
        off[p] = miss[p].abs() > threshold;
        // Off the same way as the same weekday in each of the two weeks
        // before it: a new weekly habit, not a one-off.
        let off_a_week_before =
            |weeks: usize| off[p - 7 * weeks] && miss[p - 7 * weeks].signum() == miss[p].signum();
        let habit = off_a_week_before(1) && off_a_week_before(2);
        if off[p] && !habit {
            unusual[p] = true;
            usual[p] = predicted;
        }
    }
    let mut out = Vec::new();
    let mut p = 0;
    while p < n {
        if !unusual[p] {
            p += 1;
            continue;
        }
        let mut q = p;
        while q + 1 < n && unusual[q + 1] && miss[q + 1].signum() == miss[p].signum() {
            q += 1;
        }
        if q + 1 < n && !unusual[q + 1] && q + 1 - p <= UNUSUAL_MAX_RUN_DAYS {
            out.extend(p..=q);
        }
        p = q + 1;
    }
    out
}

/// The days with at least one cell not observed.
fn days_with_gaps(observed_per_day: &[usize]) -> impl Iterator<Item = usize> + '_ {
    (0..observed_per_day.len()).filter(|&p| observed_per_day[p] < DAY)
}

/// Fills every cell of `days` not `observed` from the same slot on nearby
/// days; where no nearby day has it, from the slot's mean over all days.
fn impute(vals: &mut [f64], observed: &[bool], days: impl IntoIterator<Item = usize>) {
    let n_days = observed.len() / DAY;
    // The fallback is rarely needed (a slot unobserved four weeks either
    // way): computed on first use.
    let mut slot_mean: Option<[f64; DAY]> = None;
    let slot_means = |vals: &[f64]| {
        let (sum, count) = vals
            .iter()
            .zip(observed)
            .filter(|(_, &o)| o)
            .fold((0.0, 0usize), |(sum, c), (v, _)| (sum + v, c + 1));
        let overall = if count > 0 { sum / count as f64 } else { 0.0 };
        let mut means = [overall; DAY];
        for (s, mean) in means.iter_mut().enumerate() {
            let (sum, count) = (0..n_days)
                .filter(|&p| observed[p * DAY + s])
                .fold((0.0, 0usize), |(sum, c), p| {
                    (sum + vals[p * DAY + s], c + 1)
                });
            if count > 0 {
                *mean = sum / count as f64;
            }
        }
        means
    };
    for p in days {
        for s in 0..DAY {
            let i = p * DAY + s;
            if observed[i] {
                continue;
            }
            let at = |q: Option<usize>| {
                q.filter(|&q| q < n_days && observed[q * DAY + s])
                    .map(|q| vals[q * DAY + s])
            };
            let nearby = IMPUTE_OFFSETS.iter().find_map(|&d| {
                match (at(p.checked_sub(d)), at(Some(p + d))) {
                    (Some(a), Some(b)) => Some((a + b) / 2.0),
                    (a, b) => a.or(b),
                }
            });
            vals[i] = match nearby {
                Some(v) => v,
                None => slot_mean.get_or_insert_with(|| slot_means(vals))[s],
            };
        }
    }
}

impl Grid {
    /// The `n_days` whole days before bucket `end`.
    pub fn build(history: &History, end: i64, n_days: usize) -> Grid {
        let n = n_days * DAY;
        let start = end - n as i64;
        let mut vals = vec![f64::NAN; n];
        let mut observed = vec![false; n];
        for (i, (v, o)) in vals.iter_mut().zip(observed.iter_mut()).enumerate() {
            if let Some(x) = history.get(start + i as i64) {
                *v = x;
                *o = true;
            }
        }
        let observed_per_day: Vec<usize> = observed
            .chunks_exact(DAY)
            .map(|d| d.iter().filter(|&&o| o).count())
            .collect();
        impute(&mut vals, &observed, days_with_gaps(&observed_per_day));
        let totals: Vec<f64> = vals.chunks_exact(DAY).map(|d| d.iter().sum()).collect();
        let mut grid = Grid {
            n_days,
            truth_vals: vals.clone(),
            truth_observed: observed.clone(),
            truth_totals: totals.clone(),
            truth_observed_per_day: observed_per_day.clone(),
            vals,
            observed,
            totals,
            observed_per_day,
            unusual: Vec::new(),
            seasonal: Vec::new(),
        };
        grid.set_aside_unusual_days();
        grid
    }

    /// Sets aside the [`unusual_days`]: the components read them as
    /// missing (imputed from nearby days like any gap), while `truth_*`
    /// keeps what they held, so past forecasts are still scored on them.
    fn set_aside_unusual_days(&mut self) {
        self.unusual = unusual_days(&self.totals, &self.observed_per_day);
        if self.unusual.is_empty() {
            return;
        }
        for &p in &self.unusual {
            self.observed[p * DAY..(p + 1) * DAY].fill(false);
            self.observed_per_day[p] = 0;
        }
        // Gaps filled from an unusual day are filled again without it.
        let days: Vec<usize> = days_with_gaps(&self.observed_per_day).collect();
        impute(&mut self.vals, &self.observed, days.iter().copied());
        for p in days {
            self.totals[p] = self.day(p).iter().sum();
        }
    }

    pub fn day(&self, p: usize) -> &[f64] {
        &self.vals[p * DAY..(p + 1) * DAY]
    }

    pub fn day_observed(&self, p: usize) -> &[bool] {
        &self.observed[p * DAY..(p + 1) * DAY]
    }

    pub fn truth_day(&self, p: usize) -> &[f64] {
        &self.truth_vals[p * DAY..(p + 1) * DAY]
    }

    pub fn truth_day_observed(&self, p: usize) -> &[bool] {
        &self.truth_observed[p * DAY..(p + 1) * DAY]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20 weeks of daily totals: 1000 on weekdays, 600 on the two weekend
    /// days, ±2% of alternating noise; `off` days multiplied by `factor`.
    fn totals(off: std::ops::Range<usize>, factor: f64) -> Vec<f64> {
        (0..140)
            .map(|p| {
                let usual = if p % 7 >= 5 { 600.0 } else { 1000.0 };
                let noise = 1.0 + 0.02 * [1.0, -0.5, 0.3, -1.0, 0.6, -0.2, 0.8][(p * 3) % 7];
                usual * noise * if off.contains(&p) { factor } else { 1.0 }
            })
            .collect()
    }

    #[test]
    fn runs_of_up_to_three_days_are_set_aside_and_longer_ones_are_a_new_level() {
        let full = [DAY; 140];
        assert!(unusual_days(&totals(0..0, 1.0), &full).is_empty());
        for run in 1..=3 {
            for factor in [0.3, 1.8] {
                let days = unusual_days(&totals(100..100 + run, factor), &full);
                assert_eq!(
                    days,
                    (100..100 + run).collect::<Vec<_>>(),
                    "{run} × {factor}"
                );
            }
        }
        assert!(unusual_days(&totals(100..104, 0.3), &full).is_empty());
        // A new level from day 100 on, and a one-off on the last day.
        assert!(unusual_days(&totals(100..140, 1.8), &full).is_empty());
        assert!(unusual_days(&totals(139..140, 0.3), &full).is_empty());
        // 4% off is never unusual, however regular the days around it.
        let flat = vec![1000.0; 140];
        let mut slightly = flat.clone();
        slightly[100] = 960.0;
        assert!(unusual_days(&slightly, &full).is_empty());
        slightly[100] = 940.0;
        assert_eq!(unusual_days(&slightly, &full), [100]);
    }

    #[test]
    fn one_offs_do_not_widen_the_threshold_for_the_next() {
        let full = [DAY; 140];
        // A spike every other day for eight weeks (on the other weekdays
        // the next week, so never a habit), then a day 20% down: a
        // threshold measured on every day would by then be the spikes'.
        let mut t = totals(121..122, 0.8);
        for p in (60..120).step_by(2) {
            t[p] *= 1.5;
        }
        let days = unusual_days(&t, &full);
        let spikes: Vec<usize> = (60..120).step_by(2).collect();
        assert_eq!(days, [&spikes[..], &[121]].concat());
    }

    #[test]
    fn a_new_weekly_habit_is_kept_from_its_third_week() {
        let full = [DAY; 140];
        // From day 100 (weekday 2) on, that weekday draws twice as much.
        let t: Vec<f64> = totals(0..0, 1.0)
            .iter()
            .enumerate()
            .map(|(p, &v)| if p >= 100 && p % 7 == 2 { 2.0 * v } else { v })
            .collect();
        assert_eq!(unusual_days(&t, &full), [100, 107]);
    }

    #[test]
    fn a_mostly_missing_day_is_not_judged() {
        let mut observed = [DAY; 140];
        observed[100] = DAY / 2 - 1;
        assert!(!unusual_days(&totals(100..101, 0.3), &observed).contains(&100));
        observed[100] = DAY / 2;
        assert_eq!(unusual_days(&totals(100..101, 0.3), &observed), [100]);
    }
}
