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
    /// The recursive seasonal decomposition's state at each day boundary
    /// (see `components::seasonal_snapshots`); empty until filled.
    pub seasonal: Vec<f64>,
}

/// Imputation looks for the same slot this many days away, nearest and same
/// weekday first, because a ship's load depends on the time of week more
/// than on anything else the model knows. Both sides of an offset are
/// averaged when both exist, so a trend does not bias the fill.
const IMPUTE_OFFSETS: [usize; 8] = [7, 1, 14, 2, 3, 21, 4, 28];

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
        let observed_sum: f64 = vals.iter().filter(|v| !v.is_nan()).sum();
        let observed_count = observed.iter().filter(|&&o| o).count();
        let overall_mean = if observed_count > 0 {
            observed_sum / observed_count as f64
        } else {
            0.0
        };
        let mut slot_mean = [overall_mean; DAY];
        for (s, mean) in slot_mean.iter_mut().enumerate() {
            let (sum, count) = (0..n_days)
                .filter(|&p| observed[p * DAY + s])
                .fold((0.0, 0usize), |(sum, c), p| {
                    (sum + vals[p * DAY + s], c + 1)
                });
            if count > 0 {
                *mean = sum / count as f64;
            }
        }
        for p in 0..n_days {
            for s in 0..DAY {
                let i = p * DAY + s;
                if observed[i] {
                    continue;
                }
                let at = |q: Option<usize>| {
                    q.filter(|&q| q < n_days && observed[q * DAY + s])
                        .map(|q| vals[q * DAY + s])
                };
                vals[i] = IMPUTE_OFFSETS
                    .iter()
                    .find_map(|&d| match (at(p.checked_sub(d)), at(Some(p + d))) {
                        (Some(a), Some(b)) => Some((a + b) / 2.0),
                        (a, b) => a.or(b),
                    })
                    .unwrap_or(slot_mean[s]);
            }
        }
        let totals = vals.chunks_exact(DAY).map(|d| d.iter().sum()).collect();
        let observed_per_day = observed
            .chunks_exact(DAY)
            .map(|d| d.iter().filter(|&&o| o).count())
            .collect();
        Grid {
            n_days,
            vals,
            observed,
            totals,
            observed_per_day,
            seasonal: Vec::new(),
        }
    }

    pub fn day(&self, p: usize) -> &[f64] {
        &self.vals[p * DAY..(p + 1) * DAY]
    }

    pub fn day_observed(&self, p: usize) -> &[bool] {
        &self.observed[p * DAY..(p + 1) * DAY]
    }
}
