//! The component forecasts the blend chooses among.
//!
//! A forecast is split into a *level* (each day's total) and a *shape* (how
//! a day's total spreads over its 96 buckets), because the two are predicted
//! by different things: the level follows yesterday, the weekday and the
//! trend; the shape is a stable habit of the time of day and week, best
//! seen by averaging many days.
//!
//! Every component answers one question: standing at day `e` of a [`Grid`]
//! (days `0..e` are history), what are the next `n_leads` days? None reads
//! day `e` or later, which is what keeps the blend's validation honest.
//! Weekdays are `day index mod 7`, so "the same weekday" means "a whole
//! number of weeks earlier" whatever the calendar.

use std::ops::Range;

use super::history::Grid;
use super::BUCKETS_PER_DAY;

const DAY: usize = BUCKETS_PER_DAY;

/// Forecasts of daily totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// Yesterday's total.
    Yesterday,
    /// Mean total of the last 4 days with the target's weekday.
    MeanSameWeekdays4,
    /// Mean total of the last (up to) 7 days.
    MeanRecentDays7,
    /// Yesterday's total × (weekday factor of the target / of yesterday).
    WeekdayAdjustedYesterday,
    /// Mean of the last 7 days × the target's weekday factor.
    WeekMeanWeekdayAdjusted,
    /// Least squares on trend + weekday over the last 8 weeks.
    TrendWeekdayOls,
    /// The same, plus its last residual carried forward, decaying at the
    /// residuals' lag-1 autocorrelation: trend and weekday structure, and
    /// the persistence of whatever they do not explain.
    TrendWeekdayOlsAr,
    /// Exponential smoothing of the level with multiplicative weekday
    /// factors (Holt-Winters without a trend: the regressions carry it),
    /// smoothing constants chosen by one-step error over the last 12 weeks.
    SeasonalSmoothing,
    /// The total of the most recent day with the target's weekday.
    SameDayLastWeek,
}

pub(crate) const LEVELS: [Level; 9] = [
    Level::Yesterday,
    Level::MeanSameWeekdays4,
    Level::MeanRecentDays7,
    Level::WeekdayAdjustedYesterday,
    Level::WeekMeanWeekdayAdjusted,
    Level::TrendWeekdayOls,
    Level::TrendWeekdayOlsAr,
    Level::SeasonalSmoothing,
    Level::SameDayLastWeek,
];

/// Forecasts of within-day curves (only their shape is used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Yesterday's curve.
    Yesterday,
    /// The curve of the most recent day with the target's weekday.
    SameDayLastWeek,
    /// Mean curve of the last 4 days with the target's weekday.
    MeanSameWeekdays4,
    /// Exponentially weighted mean of up to 8 same weekdays (half-life 2 weeks).
    EwSameWeekdays,
    /// Mean curve of the last (up to) 7 days.
    MeanRecentDays7,
    /// Mean curve of the last 28 days: smooth, for noisy ships.
    MeanRecentDays28,
    /// The mean curve of the last 4 same weekdays, times the drift of the
    /// daily profile per slot: the exponentially weighted mean curve of the
    /// last 28 days (half-life 3 days) over their flat mean. Weekday habits
    /// with a profile that follows slow drift (the season, daylight).
    DriftAdjustedWeekdays,
    /// The day's curve of the recursive daily + weekly decomposition (see
    /// [`seasonal_snapshots`]). Its daily *total* is not a level component:
    /// the stacking gave it a fifth of the weight on past origins, and the
    /// backtest's daily MAPE got worse on most series and periods.
    SeasonalDecomposition,
}

pub(crate) const SHAPES: [Shape; 8] = [
    Shape::Yesterday,
    Shape::SameDayLastWeek,
    Shape::MeanSameWeekdays4,
    Shape::EwSameWeekdays,
    Shape::MeanRecentDays7,
    Shape::MeanRecentDays28,
    Shape::DriftAdjustedWeekdays,
    Shape::SeasonalDecomposition,
];

/// Days the trend + weekday regressions fit on.
const OLS_DAYS: usize = 56;
/// Days the seasonal smoothing runs over (the first two weeks warm it up).
const SMOOTHING_DAYS: usize = 84;
/// Whole weeks behind the weekday factors.
const WEEKDAY_FACTOR_WEEKS: usize = 4;
/// The farthest any component looks back from its origin, in days.
pub(crate) const MAX_COMPONENT_LOOKBACK_DAYS: usize = SMOOTHING_DAYS;

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Yesterday => "yesterday",
            Level::MeanSameWeekdays4 => "mean_4_same_weekdays",
            Level::MeanRecentDays7 => "mean_7_days",
            Level::WeekdayAdjustedYesterday => "weekday_adjusted_yesterday",
            Level::WeekMeanWeekdayAdjusted => "week_mean_weekday_adjusted",
            Level::TrendWeekdayOls => "trend_weekday_ols",
            Level::TrendWeekdayOlsAr => "trend_weekday_ols_ar1",
            Level::SeasonalSmoothing => "seasonal_exp_smoothing",
            Level::SameDayLastWeek => "same_day_last_week",
        }
    }

    /// Whether the component can forecast from day `e`, at any lead (every
    /// lookup's worst case is the first lead).
    pub fn available(self, e: usize) -> bool {
        match self {
            Level::Yesterday => e >= 1,
            Level::MeanRecentDays7 => e >= 2,
            Level::SameDayLastWeek => e >= 7,
            Level::MeanSameWeekdays4 => e >= 28,
            Level::WeekdayAdjustedYesterday | Level::WeekMeanWeekdayAdjusted => e >= 7,
            Level::TrendWeekdayOls | Level::TrendWeekdayOlsAr | Level::SeasonalSmoothing => e >= 21,
        }
    }

    /// Fills `totals`, one daily total per lead. Requires [`Level::available`].
    pub fn forecast(self, grid: &Grid, e: usize, totals: &mut [f64]) {
        debug_assert!(self.available(e));
        let t = &grid.totals;
        match self {
            Level::Yesterday => totals.fill(t[e - 1]),
            Level::MeanSameWeekdays4 => {
                for (lead, out) in totals.iter_mut().enumerate() {
                    *out = (0..4).map(|k| t[same_weekday(e, lead, k)]).sum::<f64>() / 4.0;
                }
            }
            Level::MeanRecentDays7 => {
                let days = e.min(7);
                totals.fill(t[e - days..e].iter().sum::<f64>() / days as f64);
            }
            Level::WeekdayAdjustedYesterday => {
                let f = weekday_factors(grid, e);
                for (lead, out) in totals.iter_mut().enumerate() {
                    *out = t[e - 1] * f[(e + lead) % 7] / f[(e - 1) % 7];
                }
            }
            Level::WeekMeanWeekdayAdjusted => {
                let f = weekday_factors(grid, e);
                let level = t[e - 7..e].iter().sum::<f64>() / 7.0;
                for (lead, out) in totals.iter_mut().enumerate() {
                    *out = level * f[(e + lead) % 7];
                }
            }
            Level::TrendWeekdayOls => trend_weekday_ols(t, e, false, totals),
            Level::TrendWeekdayOlsAr => trend_weekday_ols(t, e, true, totals),
            Level::SeasonalSmoothing => seasonal_smoothing(t, e, totals),
            Level::SameDayLastWeek => {
                for (lead, out) in totals.iter_mut().enumerate() {
                    *out = t[same_weekday(e, lead, 0)];
                }
            }
        }
        for v in totals.iter_mut() {
            *v = v.max(0.0);
        }
    }
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Yesterday => "yesterday",
            Shape::SameDayLastWeek => "same_day_last_week",
            Shape::MeanSameWeekdays4 => "mean_4_same_weekdays",
            Shape::EwSameWeekdays => "ew_same_weekdays",
            Shape::MeanRecentDays7 => "mean_7_days",
            Shape::MeanRecentDays28 => "mean_28_days",
            Shape::DriftAdjustedWeekdays => "drift_adjusted_4_same_weekdays",
            Shape::SeasonalDecomposition => "daily_weekly_decomposition",
        }
    }

    pub fn available(self, e: usize) -> bool {
        match self {
            Shape::Yesterday => e >= 1,
            Shape::MeanRecentDays7 => e >= 2,
            Shape::SameDayLastWeek | Shape::EwSameWeekdays => e >= 7,
            Shape::MeanSameWeekdays4 | Shape::MeanRecentDays28 | Shape::DriftAdjustedWeekdays => {
                e >= 28
            }
            Shape::SeasonalDecomposition => e >= DECOMPOSITION_WARMUP_DAYS,
        }
    }

    /// Fills `curves` with the curves of `leads` (96 values each).
    /// Requires [`Shape::available`].
    pub fn forecast(self, grid: &Grid, e: usize, leads: Range<usize>, curves: &mut [f64]) {
        debug_assert!(self.available(e));
        debug_assert_eq!(curves.len(), leads.len() * DAY);
        if let Shape::MeanRecentDays7 | Shape::MeanRecentDays28 = self {
            let days = e.min(if self == Shape::MeanRecentDays7 {
                7
            } else {
                28
            });
            let (first, rest) = curves.split_at_mut(DAY);
            recent_mean_curve(grid, e, days, f64::INFINITY, first);
            // Weekday-blind: every lead is the same curve.
            for out in rest.chunks_exact_mut(DAY) {
                out.copy_from_slice(first);
            }
            return;
        }
        // The drift depends on the origin only, not on the lead.
        let drift = (self == Shape::DriftAdjustedWeekdays)
            .then(|| profile_drift(grid, e))
            .flatten();
        for (lead, out) in leads.zip(curves.chunks_exact_mut(DAY)) {
            match self {
                Shape::Yesterday => out.copy_from_slice(grid.day(e - 1)),
                Shape::SameDayLastWeek => out.copy_from_slice(grid.day(same_weekday(e, lead, 0))),
                Shape::MeanSameWeekdays4 => {
                    out.fill(0.0);
                    for k in 0..4 {
                        add_scaled(out, grid.day(same_weekday(e, lead, k)), 0.25);
                    }
                }
                Shape::EwSameWeekdays => {
                    out.fill(0.0);
                    let mut weight_sum = 0.0;
                    for k in 0..8 {
                        if 7 * (lead / 7 + 1 + k) > e + lead {
                            break;
                        }
                        let w = 0.5f64.powf(k as f64 / 2.0);
                        add_scaled(out, grid.day(same_weekday(e, lead, k)), w);
                        weight_sum += w;
                    }
                    out.iter_mut().for_each(|v| *v /= weight_sum);
                }
                Shape::DriftAdjustedWeekdays => {
                    out.fill(0.0);
                    for k in 0..4 {
                        add_scaled(out, grid.day(same_weekday(e, lead, k)), 0.25);
                    }
                    if let Some(drift) = &drift {
                        for (o, d) in out.iter_mut().zip(drift) {
                            *o *= d;
                        }
                    }
                }
                Shape::SeasonalDecomposition => decomposition_curve(grid, e, lead, out),
                Shape::MeanRecentDays7 | Shape::MeanRecentDays28 => unreachable!("handled above"),
            }
        }
    }
}

/// Days the decomposition is initialised on before it forecasts.
const DECOMPOSITION_WARMUP_DAYS: usize = 14;
/// Per-update smoothing of the decomposition: the level at every bucket,
/// the daily profile once a day per slot, the weekly once a week per slot.
const DECOMPOSITION_ALPHA: f64 = 0.02;
const DECOMPOSITION_GAMMA_DAY: f64 = 0.1;
const DECOMPOSITION_GAMMA_WEEK: f64 = 0.2;
const WEEK_SLOTS: usize = 7 * DAY;
/// One snapshot: the level, the daily profile, the weekly profile.
const SNAPSHOT: usize = 1 + DAY + WEEK_SLOTS;

/// A recursive additive decomposition of the grid's buckets into a level, a
/// daily and a weekly profile, `y = level + daily[t mod 96] + weekly[t mod
/// 672] + remainder`, each updated smoothly bucket by bucket in one pass
/// (exponential smoothing, like MSTL's seasonal components but without a
/// refit): initialised on the first two weeks, its state is kept at every
/// day boundary from then on, so a forecast from any past origin reads its
/// snapshot instead of refitting. Snapshot `e − warm-up` holds the state
/// after day `e − 1`.
pub(crate) fn seasonal_snapshots(grid: &Grid) -> Vec<f64> {
    let n = grid.n_days;
    if n < DECOMPOSITION_WARMUP_DAYS {
        return Vec::new();
    }
    let warm = DECOMPOSITION_WARMUP_DAYS * DAY;
    let y = &grid.vals;
    let mut level = y[..warm].iter().sum::<f64>() / warm as f64;
    let mut daily = [0.0; DAY];
    for (t, &v) in y[..warm].iter().enumerate() {
        daily[t % DAY] += (v - level) / DECOMPOSITION_WARMUP_DAYS as f64;
    }
    let mut weekly = vec![0.0; WEEK_SLOTS];
    let weeks = (DECOMPOSITION_WARMUP_DAYS / 7) as f64;
    for (t, &v) in y[..warm].iter().enumerate() {
        weekly[t % WEEK_SLOTS] += (v - level - daily[t % DAY]) / weeks;
    }
    let mut out = Vec::with_capacity((n - DECOMPOSITION_WARMUP_DAYS + 1) * SNAPSHOT);
    let snapshot = |out: &mut Vec<f64>, level: f64, daily: &[f64], weekly: &[f64]| {
        out.push(level);
        out.extend_from_slice(daily);
        out.extend_from_slice(weekly);
    };
    snapshot(&mut out, level, &daily, &weekly);
    for (t, &v) in y.iter().enumerate().skip(warm) {
        // An imputed cell is no news: the state carries over it.
        if grid.observed[t] {
            let (s, k) = (t % DAY, t % WEEK_SLOTS);
            level += DECOMPOSITION_ALPHA * (v - daily[s] - weekly[k] - level);
            daily[s] += DECOMPOSITION_GAMMA_DAY * (v - level - weekly[k] - daily[s]);
            weekly[k] += DECOMPOSITION_GAMMA_WEEK * (v - level - daily[s] - weekly[k]);
        }
        if (t + 1) % DAY == 0 {
            snapshot(&mut out, level, &daily, &weekly);
        }
    }
    out
}

/// The decomposition's curve of day `e + lead` from its state at day `e`.
fn decomposition_curve(grid: &Grid, e: usize, lead: usize, out: &mut [f64]) {
    let state = &grid.seasonal[(e - DECOMPOSITION_WARMUP_DAYS) * SNAPSHOT..][..SNAPSHOT];
    let (level, daily, weekly) = (state[0], &state[1..=DAY], &state[1 + DAY..]);
    let first = (e + lead) * DAY;
    for (s, o) in out.iter_mut().enumerate() {
        *o = (level + daily[s] + weekly[(first + s) % WEEK_SLOTS]).max(0.0);
    }
}

/// Half-life of the recent profile [`Shape::DriftAdjustedWeekdays`] follows.
const DRIFT_HALF_LIFE_DAYS: f64 = 3.0;

/// The profile's recent drift at origin `e`, per slot: the normalised
/// recent profile over the flat 28-day one, bounded so a slot near zero
/// cannot explode, and averaged over the hour around it
/// ([`around_the_hour`]). `None` if either profile sums to nothing.
fn profile_drift(grid: &Grid, e: usize) -> Option<[f64; DAY]> {
    let mut flat = [0.0; DAY];
    let mut recent = [0.0; DAY];
    observed_mean_curve(grid, e, 28, f64::INFINITY, &mut flat);
    observed_mean_curve(grid, e, 28, DRIFT_HALF_LIFE_DAYS, &mut recent);
    let (fs, rs) = (flat.iter().sum::<f64>(), recent.iter().sum::<f64>());
    if !(fs > 0.0 && rs > 0.0) {
        return None;
    }
    let ratio: Vec<f64> = flat
        .iter()
        .zip(&recent)
        .map(|(&f, &r)| {
            if f > 0.0 && r > 0.0 {
                ((r / rs) / (f / fs)).clamp(0.5, 2.0)
            } else {
                1.0
            }
        })
        .collect();
    Some(around_the_hour(&ratio))
}

/// Slots either side a profile's drift is averaged over: drift is smooth
/// in the time of day, the noise of a few days is not.
const DRIFT_SMOOTHING: usize = 2;

/// `values` (one per slot of the day) averaged over the
/// ±[`DRIFT_SMOOTHING`] slots around each, round the clock.
pub(crate) fn around_the_hour(values: &[f64]) -> [f64; DAY] {
    let width = (2 * DRIFT_SMOOTHING + 1) as f64;
    let mut out = [0.0; DAY];
    for (s, o) in out.iter_mut().enumerate() {
        *o = (DAY + s - DRIFT_SMOOTHING..=DAY + s + DRIFT_SMOOTHING)
            .map(|k| values[k % DAY])
            .sum::<f64>()
            / width;
    }
    out
}

/// The mean curve of the last `days` days before `e` (at most `e`), each
/// weighted by 0.5^(age / half_life).
fn recent_mean_curve(grid: &Grid, e: usize, days: usize, half_life: f64, out: &mut [f64]) {
    let days = e.min(days);
    out.fill(0.0);
    let mut weight_sum = 0.0;
    for p in e - days..e {
        let w = 0.5f64.powf((e - 1 - p) as f64 / half_life);
        add_scaled(out, grid.day(p), w);
        weight_sum += w;
    }
    out.iter_mut().for_each(|v| *v /= weight_sum);
}

/// [`recent_mean_curve`] over observed cells only (a slot never observed
/// is 0): imputed cells are filled from other weeks, which would pass for
/// drift.
fn observed_mean_curve(grid: &Grid, e: usize, days: usize, half_life: f64, out: &mut [f64]) {
    let days = e.min(days);
    let mut weight_sum = [0.0; DAY];
    out.fill(0.0);
    for p in e - days..e {
        let w = 0.5f64.powf((e - 1 - p) as f64 / half_life);
        // Branch-free, so it vectorises: an imputed cell adds exactly 0
        // (grid values are finite).
        let cells = out.iter_mut().zip(weight_sum.iter_mut());
        for ((o, ws), (&v, &seen)) in cells.zip(grid.day(p).iter().zip(grid.day_observed(p))) {
            let k = if seen { w } else { 0.0 };
            *o += k * v;
            *ws += k;
        }
    }
    for (o, w) in out.iter_mut().zip(weight_sum) {
        if w > 0.0 {
            *o /= w;
        }
    }
}

/// Index of the `k`-th most recent history day (k = 0: the most recent)
/// with the weekday of day `e + lead`.
fn same_weekday(e: usize, lead: usize, k: usize) -> usize {
    e + lead - 7 * (lead / 7 + 1 + k)
}

fn add_scaled(out: &mut [f64], day: &[f64], w: f64) {
    for (o, &v) in out.iter_mut().zip(day) {
        *o += w * v;
    }
}

/// Mean total per weekday (indexed by day mod 7) over the last whole weeks,
/// relative to their overall mean.
fn weekday_factors(grid: &Grid, e: usize) -> [f64; 7] {
    let weeks = (e / 7).clamp(1, WEEKDAY_FACTOR_WEEKS);
    let mut sums = [0.0; 7];
    for p in e - 7 * weeks..e {
        sums[p % 7] += grid.totals[p];
    }
    let mean = sums.iter().sum::<f64>() / 7.0;
    if mean <= 0.0 {
        return [1.0; 7];
    }
    // A weekday that used nothing would make every ratio through it
    // infinite; a floor keeps the adjusted forecasts finite.
    sums.map(|s| (s / mean).max(0.05))
}

/// Daily totals from least squares on `[1, trend, weekday dummies ×6]` over
/// the last [`OLS_DAYS`] days; with `ar`, plus the last residual × ρ^(lead+1),
/// ρ the residuals' lag-1 autocorrelation clamped to [0, 1].
fn trend_weekday_ols(t: &[f64], e: usize, ar: bool, totals: &mut [f64]) {
    const K: usize = 8;
    let first = e.saturating_sub(OLS_DAYS);
    let features = |p: usize| -> [f64; K] {
        let mut x = [0.0; K];
        x[0] = 1.0;
        x[1] = (p as f64 - e as f64) / 28.0;
        let dow = (p + 7 - e % 7) % 7;
        if dow > 0 {
            x[1 + dow] = 1.0;
        }
        x
    };
    let mut xtx = [[0.0; K]; K];
    let mut xty = [0.0; K];
    for (p, &y) in t.iter().enumerate().take(e).skip(first) {
        let x = features(p);
        for i in 0..K {
            xty[i] += x[i] * y;
            for j in 0..K {
                xtx[i][j] += x[i] * x[j];
            }
        }
    }
    // A whisper of ridge keeps the system solvable when a weekday has no
    // row yet, without biasing the fit otherwise.
    let ridge = 1e-6 * (1.0 + xtx[0][0]);
    for (i, row) in xtx.iter_mut().enumerate().skip(1) {
        row[i] += ridge;
    }
    let predict = |beta: &[f64; K], p: usize| -> f64 {
        features(p).iter().zip(beta).map(|(a, b)| a * b).sum()
    };
    let Some(beta) = solve(xtx, xty) else {
        let mean = t[first..e].iter().sum::<f64>() / (e - first) as f64;
        totals.fill(mean);
        return;
    };
    let (mut rho, mut last) = (0.0, 0.0);
    if ar {
        let (mut num, mut den) = (0.0, 0.0);
        let mut prev = t[first] - predict(&beta, first);
        for (p, &y) in t.iter().enumerate().take(e).skip(first + 1) {
            let r = y - predict(&beta, p);
            num += r * prev;
            den += prev * prev;
            prev = r;
        }
        rho = if den > 0.0 {
            (num / den).clamp(0.0, 1.0)
        } else {
            0.0
        };
        last = prev;
    }
    let mut decay = rho;
    for (lead, out) in totals.iter_mut().enumerate() {
        *out = predict(&beta, e + lead) + decay * last;
        decay *= rho;
    }
}

/// Runs exponential smoothing of the level with multiplicative weekday
/// factors over days `first..e`; returns (level, weekday factors, Σ absolute
/// one-step relative error after the first two weeks).
fn seasonal_smoothing_run(
    t: &[f64],
    first: usize,
    e: usize,
    alpha: f64,
    gamma: f64,
) -> (f64, [f64; 7], f64) {
    let mut level = t[first..first + 7].iter().sum::<f64>() / 7.0;
    let mut season = [1.0; 7];
    if level > 0.0 {
        for p in first..first + 7 {
            season[p % 7] = t[p] / level;
        }
    }
    let mut error = 0.0;
    for p in first + 7..e {
        let s = season[p % 7].max(1e-3);
        if t[p] > 0.0 && p >= first + 14 {
            error += (1.0 - level * s / t[p]).abs();
        }
        level = alpha * t[p] / s + (1.0 - alpha) * level;
        if level > 0.0 {
            season[p % 7] = gamma * t[p] / level + (1.0 - gamma) * s;
        }
    }
    (level, season, error)
}

fn seasonal_smoothing(t: &[f64], e: usize, totals: &mut [f64]) {
    let first = e.saturating_sub(SMOOTHING_DAYS);
    let mut best = (f64::INFINITY, 0.25, 0.05);
    for alpha in [0.1, 0.25, 0.5, 0.8] {
        for gamma in [0.05, 0.2] {
            let (_, _, error) = seasonal_smoothing_run(t, first, e, alpha, gamma);
            if error < best.0 {
                best = (error, alpha, gamma);
            }
        }
    }
    let (level, season, _) = seasonal_smoothing_run(t, first, e, best.1, best.2);
    for (lead, out) in totals.iter_mut().enumerate() {
        *out = level * season[(e + lead) % 7];
    }
}

/// Solves `a x = b` for a small well-conditioned system by Gaussian
/// elimination with partial pivoting; `None` if singular.
// Index loops read as the textbook algorithm; iterators would hide it.
#[allow(clippy::needless_range_loop)]
fn solve<const K: usize>(mut a: [[f64; K]; K], mut b: [f64; K]) -> Option<[f64; K]> {
    let scale = (0..K).map(|i| a[i][i].abs()).fold(0.0, f64::max);
    for col in 0..K {
        let pivot = (col..K).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-12 * scale {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..K {
            let f = a[row][col] / a[col][col];
            for k in col..K {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; K];
    for row in (0..K).rev() {
        let s: f64 = (row + 1..K).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}
