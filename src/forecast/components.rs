//! The component forecasts the blend chooses among.
//!
//! Every component answers the same question: standing at day `e` of a
//! [`Grid`] (days `0..e` are history), what are the next `n_leads` days?
//! Each either gives whole curves (and so their totals too) or only daily
//! totals (a level model). None of them may read day `e` or later, which is
//! what makes the blend's rolling validation honest.

use super::history::Grid;
use super::BUCKETS_PER_DAY;

const DAY: usize = BUCKETS_PER_DAY;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Component {
    /// The last day, repeated.
    Yesterday,
    /// The most recent day with the target's weekday.
    SameDayLastWeek,
    /// Mean of the last 4 days with the target's weekday.
    MeanSameWeekdays4,
    /// Exponentially weighted mean of up to 8 same weekdays (half-life 2 weeks).
    EwSameWeekdays,
    /// Mean of the last (up to) 7 days: the daily profile, weekday-blind.
    MeanRecentDays7,
    /// Mean of the last 28 days: a smooth daily profile for noisy ships.
    MeanRecentDays28,
    /// Yesterday's total carried over, scaled by the weekday factors.
    WeekdayAdjustedYesterday,
    /// Recency-weighted ridge regression of daily totals on trend, weekday
    /// and lagged daily levels (totals only).
    LevelRegression,
}

pub(crate) const ALL: [Component; 8] = [
    Component::Yesterday,
    Component::SameDayLastWeek,
    Component::MeanSameWeekdays4,
    Component::EwSameWeekdays,
    Component::MeanRecentDays7,
    Component::MeanRecentDays28,
    Component::WeekdayAdjustedYesterday,
    Component::LevelRegression,
];

/// Half-life, in days, of the row weights of the level regression: recent
/// weeks dominate, but eight weeks still inform the weekday terms.
const REGRESSION_HALF_LIFE_DAYS: f64 = 21.0;
/// Days of history the level regression fits on.
const REGRESSION_ROWS: usize = 56;
/// Ridge penalty (on a level normalised to 1) for every term but the intercept.
const REGRESSION_RIDGE: f64 = 0.5;

impl Component {
    pub fn name(self) -> &'static str {
        match self {
            Component::Yesterday => "yesterday",
            Component::SameDayLastWeek => "same_day_last_week",
            Component::MeanSameWeekdays4 => "mean_4_same_weekdays",
            Component::EwSameWeekdays => "ew_same_weekdays",
            Component::MeanRecentDays7 => "mean_7_days",
            Component::MeanRecentDays28 => "mean_28_days",
            Component::WeekdayAdjustedYesterday => "weekday_adjusted_yesterday",
            Component::LevelRegression => "level_regression",
        }
    }

    /// Whether the component gives curves (and so a shape), not only totals.
    pub fn has_curve(self) -> bool {
        !matches!(self, Component::LevelRegression)
    }

    /// Whether the component can forecast from day `e` (at any lead: every
    /// lookup's worst case is the first lead).
    pub fn available(self, e: usize) -> bool {
        match self {
            Component::Yesterday => e >= 1,
            // The first lead needs the day 7 days before it.
            Component::SameDayLastWeek => e >= 7,
            Component::MeanSameWeekdays4 => e >= 28,
            Component::EwSameWeekdays => e >= 14,
            Component::MeanRecentDays7 => e >= 2,
            Component::MeanRecentDays28 => e >= 28,
            Component::WeekdayAdjustedYesterday => e >= 14,
            Component::LevelRegression => e >= 21,
        }
    }

    /// Fills `curves` (n_leads × 96, curve components only) and `totals`
    /// (n_leads). Requires [`Component::available`].
    pub fn forecast(
        self,
        grid: &Grid,
        e: usize,
        n_leads: usize,
        curves: &mut [f64],
        totals: &mut [f64],
    ) {
        debug_assert!(self.available(e));
        match self {
            Component::Yesterday => {
                for lead in 0..n_leads {
                    copy_day(grid, e - 1, lead, curves);
                }
            }
            Component::SameDayLastWeek => {
                for lead in 0..n_leads {
                    copy_day(grid, same_weekday(e, lead, 0), lead, curves);
                }
            }
            Component::MeanSameWeekdays4 => {
                for lead in 0..n_leads {
                    let out = &mut curves[lead * DAY..(lead + 1) * DAY];
                    out.fill(0.0);
                    for k in 0..4 {
                        add_scaled(out, grid.day(same_weekday(e, lead, k)), 0.25);
                    }
                }
            }
            Component::EwSameWeekdays => {
                for lead in 0..n_leads {
                    let out = &mut curves[lead * DAY..(lead + 1) * DAY];
                    out.fill(0.0);
                    let mut weight_sum = 0.0;
                    for k in 0..8 {
                        let back = 7 * (k + (lead / 7) + 1) - lead;
                        if back > e {
                            break;
                        }
                        let w = 0.5f64.powf(k as f64 / 2.0);
                        add_scaled(out, grid.day(e + lead - 7 * (k + lead / 7 + 1)), w);
                        weight_sum += w;
                    }
                    out.iter_mut().for_each(|v| *v /= weight_sum);
                }
            }
            Component::MeanRecentDays7 => mean_recent(grid, e, 7, n_leads, curves),
            Component::MeanRecentDays28 => mean_recent(grid, e, 28, n_leads, curves),
            Component::WeekdayAdjustedYesterday => {
                let factors = weekday_factors(grid, e);
                let yesterday = grid.day(e - 1);
                for lead in 0..n_leads {
                    let scale = factors[(e + lead) % 7] / factors[(e - 1) % 7];
                    let shape_day = same_weekday(e, lead, 0);
                    // Yesterday's level, in the shape of the target's weekday:
                    // the shape of a weekday is stable, its level is not.
                    let level: f64 = yesterday.iter().sum::<f64>() * scale;
                    let shape = grid.day(shape_day);
                    let shape_total: f64 = shape.iter().sum();
                    let out = &mut curves[lead * DAY..(lead + 1) * DAY];
                    if shape_total > 0.0 {
                        for (o, &v) in out.iter_mut().zip(shape) {
                            *o = v * level / shape_total;
                        }
                    } else {
                        out.fill(level / DAY as f64);
                    }
                }
            }
            Component::LevelRegression => level_regression(grid, e, n_leads, totals),
        }
        if self.has_curve() {
            for (t, c) in totals.iter_mut().zip(curves.chunks_exact(DAY)) {
                *t = c.iter().sum();
            }
        }
    }
}

/// Index of the `k`-th most recent history day with the weekday of `e + lead`.
fn same_weekday(e: usize, lead: usize, k: usize) -> usize {
    e + lead - 7 * (lead / 7 + 1 + k)
}

fn copy_day(grid: &Grid, p: usize, lead: usize, curves: &mut [f64]) {
    curves[lead * DAY..(lead + 1) * DAY].copy_from_slice(grid.day(p));
}

fn add_scaled(out: &mut [f64], day: &[f64], w: f64) {
    for (o, &v) in out.iter_mut().zip(day) {
        *o += w * v;
    }
}

fn mean_recent(grid: &Grid, e: usize, days: usize, n_leads: usize, curves: &mut [f64]) {
    let days = days.min(e);
    let mut mean = [0.0; DAY];
    for p in e - days..e {
        add_scaled(&mut mean, grid.day(p), 1.0 / days as f64);
    }
    for lead in 0..n_leads {
        curves[lead * DAY..(lead + 1) * DAY].copy_from_slice(&mean);
    }
}

/// Mean total per weekday (indexed by day mod 7) over the last whole weeks
/// (up to 4), relative to their overall mean.
pub(crate) fn weekday_factors(grid: &Grid, e: usize) -> [f64; 7] {
    let weeks = (e / 7).clamp(1, 4);
    let mut sums = [0.0; 7];
    for p in e - 7 * weeks..e {
        sums[p % 7] += grid.totals[p];
    }
    let mean = sums.iter().sum::<f64>() / 7.0;
    if mean <= 0.0 {
        return [1.0; 7];
    }
    let mut f = [1.0; 7];
    for (f, s) in f.iter_mut().zip(sums) {
        // A weekday that used nothing would make every ratio through it
        // infinite; a floor keeps the adjusted forecasts finite.
        *f = (s / mean).max(0.05);
    }
    f
}

/// Daily totals from a weighted ridge regression on
/// `[1, trend, weekday dummies ×6, total yesterday, total a week ago]`,
/// applied recursively across leads.
fn level_regression(grid: &Grid, e: usize, n_leads: usize, totals: &mut [f64]) {
    const K: usize = 10;
    let first = e.saturating_sub(REGRESSION_ROWS).max(7);
    let scale = {
        let from = e.saturating_sub(28);
        let mean = grid.totals[from..e].iter().sum::<f64>() / (e - from) as f64;
        if mean > 0.0 {
            mean
        } else {
            1.0
        }
    };
    let y = |p: usize| grid.totals[p] / scale;
    let features = |p: usize, lag1: f64, lag7: f64| -> [f64; K] {
        let mut x = [0.0; K];
        x[0] = 1.0;
        x[1] = (p as f64 - e as f64) / 28.0;
        let dow = (p + 7 - e % 7) % 7;
        if dow > 0 {
            x[1 + dow] = 1.0;
        }
        x[8] = lag1;
        x[9] = lag7;
        x
    };
    let mut xtx = [[0.0; K]; K];
    let mut xty = [0.0; K];
    for p in first..e {
        let observed = grid.day_observed(p).iter().filter(|&&o| o).count() as f64 / DAY as f64;
        let w = 0.5f64.powf((e - 1 - p) as f64 / REGRESSION_HALF_LIFE_DAYS) * observed;
        let x = features(p, y(p - 1), y(p - 7));
        let target = y(p);
        for i in 0..K {
            xty[i] += w * x[i] * target;
            for j in 0..K {
                xtx[i][j] += w * x[i] * x[j];
            }
        }
    }
    for (i, row) in xtx.iter_mut().enumerate().skip(1) {
        row[i] += REGRESSION_RIDGE;
    }
    let beta = solve(xtx, xty).unwrap_or_else(|| {
        let mut b = [0.0; K];
        b[0] = 1.0;
        b
    });
    for lead in 0..n_leads {
        let p = e + lead;
        let lag1 = if lead == 0 { y(e - 1) } else { totals[lead - 1] / scale };
        let lag7 = if lead < 7 { y(p - 7) } else { totals[lead - 7] / scale };
        let x = features(p, lag1, lag7);
        let pred: f64 = x.iter().zip(&beta).map(|(a, b)| a * b).sum();
        totals[lead] = pred.max(0.0) * scale;
    }
}

/// Solves `a x = b` for a small symmetric positive definite system by
/// Gaussian elimination with partial pivoting.
fn solve<const K: usize>(mut a: [[f64; K]; K], mut b: [f64; K]) -> Option<[f64; K]> {
    for col in 0..K {
        let pivot = (col..K).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
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
