//! The blend: component forecasts weighted by their own errors at past
//! origins, and an interval from the blend's own honest past errors.

use std::ops::Range;

use super::components::{
    around_the_hour, Level, Shape, LEVELS, MAX_COMPONENT_LOOKBACK_DAYS, SHAPES,
};
use super::history::{Grid, History};
use super::{
    ComponentWeight, Fallback, Forecast, ForecastError, Interval, IntradayPersistence, ModelInfo,
    BUCKETS_PER_DAY, INTERVAL_LEVEL, MAX_HORIZON_BUCKETS, MIN_HISTORY_BUCKETS,
};

const DAY: usize = BUCKETS_PER_DAY;
const WEEK: i64 = 7 * DAY as i64;

/// Past origins (one a day) the weights are learned from: four weeks, so
/// every weekday counts four times.
const WEIGHT_ORIGINS: usize = 28;
/// Past origins whose blended errors make the interval.
const ERROR_ORIGINS: usize = 28;
/// The days of history the model reads: an error origin needs the horizon
/// and its own weight-learning origins before it, and each of those its
/// components' lookback.
pub(super) const LOOKBACK_DAYS: usize =
    MAX_COMPONENT_LOOKBACK_DAYS + WEIGHT_ORIGINS + ERROR_ORIGINS + MAX_HORIZON_BUCKETS / DAY;
/// Below this many past origins, weights are equal; a component is blended
/// in only if it can be scored on at least this many (or on all there are).
const MIN_ORIGINS_FOR_WEIGHTS: usize = 3;
/// The horizon is validated as asked only if the history leaves at least
/// this many past origins for it; else a shorter horizon is validated.
const MIN_ORIGINS_AT_HORIZON: usize = 7;
/// With three weeks of past origins or more, a component is blended in
/// only if it can be scored on this many: a component that needs four weeks
/// must not cut a five-week history's validation to a week.
const MIN_ORIGINS_PER_COMPONENT: usize = 14;
/// Below this many past errors the conformal interval does not exist at 80%
/// (its ranks need (n + 1) × 10% ≥ 1); the daily spread stands in.
const MIN_ERRORS_FOR_INTERVAL: usize = 9;
/// Shapes are scored at the origins weights and errors are taken from.
const SHAPE_ORIGINS: usize = if WEIGHT_ORIGINS > ERROR_ORIGINS {
    WEIGHT_ORIGINS
} else {
    ERROR_ORIGINS
};
/// ... on at most this many leading days: every shape's curve for lead `L`
/// is its curve for lead `L mod 7`, so a week of leads scores every curve
/// it will ever give.
const SHAPE_SCORED_LEADS: usize = 7;
/// The stacking's ridge, as a multiple of the best level component's sum
/// of squared errors: it shrinks the level weights towards equal. 28 days
/// are few for nine weights. On the backtest's 18 series × periods, 0.3
/// gave the lowest mean ratio of daily MAPE to the best of the four
/// references computed in Rust (0.875, against 0.880 without a ridge, 0.885
/// at 1 and 0.889 at 2) and a bucket MASE ratio as good as any (0.879
/// against 0.882).
const STACKING_RIDGE: f64 = 0.3;
/// How far a window of up to a day moves from its blended total towards
/// the scale its replayed days would have wanted ([`Residuals::scale`]:
/// at most 29 days, so noisy). On the backtest's 30 series × periods, the
/// mean ratios of daily MAPE / MASE to the best reference (and the periods
/// not below it on both): not scaled 0.8992 / 0.9448 (7); 0.3 0.8860 /
/// 0.9366 (6), 0.4 0.8853 / 0.9344 (6), 0.5 0.8869 / 0.9324 (6), 0.7
/// 0.8939 / 0.9291 (7), 1 0.9142 / 0.9258 (9) — MAPE least at 0.4, and the
/// single house's MAPE is what the households need most. With the days'
/// scale alone (no buckets): 0.3 0.8900 / 0.9407, 0.5 0.8881 / 0.9389,
/// 0.7 0.8881 / 0.9377, 1 0.8945 / 0.9373; with the buckets' alone at 0.5,
/// 0.8992 / 0.9279. The days' scale from the interval's honest errors
/// instead of the replay, where they are of a day: 0.8900 / 0.9405 at 0.5
/// — but those are of the window asked for, and a window of an hour must
/// start as the day's does.
const TOTAL_SCALE_SHRINK: f64 = 0.4;
/// ... and by at most this share either way: 29 days cannot say more.
const MAX_TOTAL_SCALE: f64 = 0.2;
/// Shape weights are proportional to loss^-SHAPE_WEIGHT_POWER.
const SHAPE_WEIGHT_POWER: f64 = 2.0;
/// A past day or horizon is scored only if at least this share of it was
/// observed: the imputed rest is then too small to flatter any component.
const MIN_OBSERVED_SHARE: f64 = 0.9;

/// What the validation at past origins recorded, per origin `u` (0 = the
/// most recent), whose forecast starts at day `origins[u]`.
struct Validation {
    origins: Vec<usize>,
    leads: usize,
    levels: Vec<Level>,
    shapes: Vec<Shape>,
    /// `[u][level][lead]`: forecast daily totals.
    level_totals: Vec<f64>,
    /// `[u][i][j]`: Σ over the leads of r_i r_j, r the relative errors of
    /// the levels' daily totals (mostly observed days only).
    level_gram: Vec<f64>,
    /// `[u]`: how many days went into `level_gram[u]`.
    level_rows: Vec<usize>,
    /// `[u][shape]` for `u < SHAPE_ORIGINS`: Σ |shape × actual total −
    /// actual| over the observed buckets of the first `SHAPE_SCORED_LEADS`.
    shape_loss: Vec<f64>,
    /// `[u][shape]` for `u < SHAPE_ORIGINS`: share of the last lead day
    /// inside the horizon.
    shape_tail: Vec<f64>,
    /// `[u][shape][slot]` for `u < SHAPE_ORIGINS`: the first day's curve.
    shape_first: Vec<f64>,
    /// `[u]`: the actual total over the horizon, NaN if too little observed.
    actual_horizon: Vec<f64>,
    /// `[day]`: the grid's daily totals, NaN where too little observed.
    day_totals_actual: Vec<f64>,
}

pub(super) fn forecast(
    history: &History,
    origin: i64,
    horizon: usize,
) -> Result<Forecast, ForecastError> {
    if horizon == 0 || horizon > MAX_HORIZON_BUCKETS {
        return Err(ForecastError::HorizonOutOfRange {
            requested: horizon,
            max: MAX_HORIZON_BUCKETS,
        });
    }
    let insufficient = |covered| ForecastError::InsufficientHistory {
        needed_buckets: MIN_HISTORY_BUCKETS,
        covered_buckets: covered,
    };
    let Some(last) = history.last_covered_before(origin) else {
        return Err(insufficient(0));
    };
    let mut fallbacks = Vec::new();
    // A ship silent for over a week: forecasting from an empty recent past
    // would be forecasting the imputation. The same time of week, whole
    // weeks earlier where the data ends, is the best the history can say.
    let stale_weeks = (origin - (last + 1)) / WEEK;
    let end = origin - stale_weeks * WEEK;
    if stale_weeks > 0 {
        fallbacks.push(Fallback::StaleHistory {
            weeks: stale_weeks as u64,
        });
    }
    let lookback_start = end.saturating_sub((LOOKBACK_DAYS * DAY) as i64);
    let first = history
        .first_covered_between(lookback_start, end)
        .unwrap_or(end);
    let n_days = ((end - first) as usize).div_ceil(DAY);
    let start = end - (n_days * DAY) as i64;
    let covered = history.covered_between(start, end);
    if covered < MIN_HISTORY_BUCKETS {
        return Err(insufficient(covered));
    }
    let mut grid = Grid::build(history, end, n_days);
    grid.seasonal = super::components::seasonal_snapshots(&grid);
    if n_days < 7 {
        fallbacks.push(Fallback::NoWeeklyStructure {
            history_days: n_days,
        });
    }

    let n_leads = horizon.div_ceil(DAY);
    let val_leads = n_leads.min(n_days.saturating_sub(MIN_ORIGINS_AT_HORIZON).max(1));
    if val_leads < n_leads {
        fallbacks.push(Fallback::ValidatedOnShorterHorizon { days: val_leads });
    }
    let val_horizon = horizon.min(val_leads * DAY);

    let mut levels: Vec<Level> = LEVELS.into_iter().filter(|c| c.available(n_days)).collect();
    let mut shapes: Vec<Shape> = SHAPES.into_iter().filter(|c| c.available(n_days)).collect();
    // Past origins, the most recent first, whose whole horizon is history.
    let mut origins: Vec<usize> = (0..WEIGHT_ORIGINS + val_leads + ERROR_ORIGINS)
        .map_while(|u| {
            (n_days + 1)
                .checked_sub(val_leads + 1 + u)
                .filter(|&e| e >= 1)
        })
        .collect();
    if origins.len() >= MIN_ORIGINS_FOR_WEIGHTS {
        // Keep the components that can be scored on enough origins, then
        // the origins where all of them can. A component that joins late
        // would cut the origins everything is weighed on (and the honest
        // errors the interval needs) below two weeks: it waits, once the
        // history gives three weeks of origins (before that, every
        // component that can be scored at all is worth more than origins).
        let need = if origins.len() >= 21 {
            MIN_ORIGINS_PER_COMPONENT
        } else {
            MIN_ORIGINS_FOR_WEIGHTS
        };
        let before = levels.len() + shapes.len();
        levels.retain(|c| origins.iter().filter(|&&e| c.available(e)).count() >= need);
        shapes.retain(|c| origins.iter().filter(|&&e| c.available(e)).count() >= need);
        let waiting = before - levels.len() - shapes.len();
        if waiting > 0 {
            fallbacks.push(Fallback::ComponentsAwaitingHistory {
                components: waiting,
            });
        }
        origins.retain(|&e| {
            levels.iter().all(|c| c.available(e)) && shapes.iter().all(|c| c.available(e))
        });
    } else {
        // Too few to learn from: equal weights, and no scoring at origins
        // where some components could not even run.
        origins.clear();
    }

    let val = validate(&grid, origins, val_leads, val_horizon, levels, shapes);
    let weight_set = 0..val.origins.len().min(WEIGHT_ORIGINS);
    if weight_set.len() < MIN_ORIGINS_FOR_WEIGHTS {
        fallbacks.push(Fallback::EqualWeights {
            validation_origins: weight_set.len(),
        });
    }
    let level_w = val.level_weights(weight_set.clone());
    let shape_w = val.shape_weights(weight_set.clone());

    // The intraday persistence: what the anchor and the last hours'
    // deviation at an origin say about the next hours, learned from the
    // blend's own day-ahead errors on the last weeks.
    let residuals = Residuals::replay(&grid, &val, &level_w, &shape_w);
    let persistence = residuals.persistence();
    if residuals.bias[0].is_none() || residuals.drift_days == 0 {
        fallbacks.push(Fallback::NoProfileDrift {
            replayed_days: residuals.replayed_days(),
        });
    }
    // A ship silent for weeks: the hours before its data ended say nothing
    // about the hours after the origin, so nothing is carried — neither
    // into the forecast nor into the past errors its interval comes from.
    let carries = stale_weeks == 0;

    // Honest errors: at each recent past origin, the blend with the level
    // weights it would have learned then, from origins whose horizon had
    // ended by it. The shape only counts here through a partial last day;
    // today's shape weights stand in for the ones learned back then.
    let error_at = |v: usize, level_w: &[f64]| {
        let actual = val.actual_horizon[v];
        let mut predicted = val.blended_total(v, level_w, &shape_w);
        if carries {
            if let Some(x) = residuals.origin_carry(n_days - 1 - val.origins[v]) {
                predicted += persistence.carried_sum(x, val_horizon);
            }
        }
        (predicted > 0.0 && !actual.is_nan()).then(|| actual / predicted - 1.0)
    };
    let mut errors = Vec::with_capacity(ERROR_ORIGINS);
    for v in 0..val.origins.len().min(ERROR_ORIGINS) {
        let from = v + val.leads;
        let to = (from + WEIGHT_ORIGINS).min(val.origins.len());
        if to < from + MIN_ORIGINS_FOR_WEIGHTS {
            break;
        }
        if !val.actual_horizon[v].is_nan() {
            errors.extend(error_at(v, &val.level_weights(from..to)));
        }
    }
    // A long window on a short history: too few past origins have both
    // their whole horizon and weights of their own before them. Weights
    // learned at each origin on the days of earlier windows that had ended
    // by then are still honest — they know nothing after the origin — and
    // there are as many of them as origins (on the backtest's 12-week
    // histories, 28-day windows: 74% inside the 80% interval, against 60%
    // with the next fallback).
    if errors.len() < MIN_ERRORS_FOR_INTERVAL {
        let partial: Vec<f64> = val
            .partial_window_weights(&grid, ERROR_ORIGINS)
            .iter()
            .enumerate()
            .filter_map(|(v, w)| error_at(v, w.as_ref()?))
            .collect();
        if partial.len() >= MIN_ERRORS_FOR_INTERVAL {
            fallbacks.push(Fallback::IntervalFromPartialWindows {
                past_errors: partial.len(),
            });
            errors = partial;
        }
    }
    // Shorter still: today's weights at the validation origins (learned on
    // them, so optimistic) still say far more about this blend's error than
    // the spread of single days (±32% at least).
    if errors.len() < MIN_ERRORS_FOR_INTERVAL {
        let fitted: Vec<f64> = (0..val.origins.len().min(ERROR_ORIGINS))
            .filter_map(|v| error_at(v, &level_w))
            .collect();
        if fitted.len() >= MIN_ERRORS_FOR_INTERVAL {
            fallbacks.push(Fallback::IntervalFromFittedErrors {
                past_errors: fitted.len(),
            });
            errors = fitted;
        }
    }

    // The forecast: each day's blended total spread by the blended shape.
    let mut totals = vec![0.0; n_leads];
    let mut day_totals = vec![0.0; n_leads];
    for (c, &w) in val.levels.iter().zip(&level_w) {
        c.forecast(&grid, n_days, &mut totals);
        for (b, t) in day_totals.iter_mut().zip(&totals) {
            *b += w * t;
        }
    }
    let mut curves = vec![0.0; n_leads * DAY];
    let mut shape = vec![0.0; n_leads * DAY];
    for (c, &w) in val.shapes.iter().zip(&shape_w) {
        if w > 0.0 {
            c.forecast(&grid, n_days, 0..n_leads, &mut curves);
            for (out, curve) in shape.chunks_exact_mut(DAY).zip(curves.chunks_exact(DAY)) {
                add_normalised(out, curve, w);
            }
        }
    }
    let mut curve: Vec<f64> = (0..n_leads * DAY)
        .map(|i| (shape[i] * day_totals[i / DAY]).max(0.0))
        .collect();
    for day in curve.chunks_exact_mut(DAY) {
        residuals.bend(day, 0);
    }
    // The carry is measured against this forecast's own first hour — the
    // whole hour, even when the window asked for is shorter.
    let first_hour = first_hour(&curve);
    curve.truncate(horizon);
    let mut values = curve;
    let carry = if carries {
        (
            anchor_deviation(&grid, n_days, first_hour).unwrap_or(0.0),
            residuals.long_tail(0).unwrap_or(0.0),
        )
    } else {
        (0.0, 0.0)
    };
    if persistence.weight > 0.0 || persistence.long_weight > 0.0 {
        for (i, v) in values.iter_mut().enumerate() {
            *v = (*v + persistence.carried(carry, i)).max(0.0);
        }
    }
    // A window of a day or less is scaled part of the way to where the
    // replayed days had the least absolute errors — the same scale for
    // every such window, so an hour starts as the day does. The interval's
    // past errors are re-read against the scaled forecast: the interval of
    // the actual total does not move.
    let wanted = if n_leads == 1 {
        residuals.scale(&grid, persistence, carries)
    } else {
        None
    };
    let total_scale = wanted.map_or(1.0, |k| {
        (1.0 + TOTAL_SCALE_SHRINK * (k - 1.0)).clamp(1.0 - MAX_TOTAL_SCALE, 1.0 + MAX_TOTAL_SCALE)
    });
    if total_scale != 1.0 {
        values.iter_mut().for_each(|v| *v *= total_scale);
        errors
            .iter_mut()
            .for_each(|e| *e = (1.0 + *e) / total_scale - 1.0);
    }
    let total: f64 = values.iter().sum();

    let n_errors = errors.len();
    let interval = if n_errors >= MIN_ERRORS_FOR_INTERVAL {
        let mut interval = conformal_interval(total, &mut errors);
        if val_leads > 1 {
            // Past windows of several days overlap and share their bias, so
            // their ranked errors understate the next window's: the interval
            // also spans ±1.28 root-mean-square errors (bias included).
            let rms = (errors.iter().map(|e| e * e).sum::<f64>() / n_errors as f64).sqrt();
            let z = 1.2816 * rms;
            interval.low_kwh = interval.low_kwh.min((total * (1.0 - z)).max(0.0));
            interval.high_kwh = interval.high_kwh.max(total * (1.0 + z));
        }
        interval
    } else {
        fallbacks.push(Fallback::IntervalFromDailySpread {
            past_errors: errors.len(),
        });
        spread_interval(total, &grid)
    };

    // Per-bucket intervals from the blend's own day-ahead bucket errors by
    // time of day, widened for later days as its daily errors widen.
    let (low, high) = match residuals.bucket_bands(persistence, &val.lead_error_scale(&level_w)) {
        Some(bands) => values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let (lo, hi) = bands(i);
                ((v + lo).clamp(0.0, v), (v + hi).max(v))
            })
            .unzip(),
        None => {
            fallbacks.push(Fallback::BucketIntervalsFromTotal);
            let (lo, hi) = if total > 0.0 {
                (interval.low_kwh / total, interval.high_kwh / total)
            } else {
                (1.0, 1.0)
            };
            values.iter().map(|&v| (v * lo, v * hi)).unzip()
        }
    };

    let (partial_buckets_scaled, partial_buckets_dropped) = history.partial_counts(start, end);
    let named = |names: Vec<&'static str>, w: &[f64]| -> Vec<ComponentWeight> {
        names
            .into_iter()
            .zip(w)
            .map(|(name, &weight)| ComponentWeight { name, weight })
            .collect()
    };
    Ok(Forecast {
        origin_bucket: origin,
        values_kwh: values,
        low_kwh: low,
        high_kwh: high,
        total_kwh: total,
        interval,
        model: ModelInfo {
            method: METHOD,
            history_start_bucket: start,
            history_end_bucket: end,
            history_buckets_used: covered,
            partial_buckets_scaled,
            partial_buckets_dropped,
            imputed_buckets: n_days * DAY - covered,
            unusual_days: grid
                .unusual
                .iter()
                .map(|&p| start + (p * DAY) as i64)
                .collect(),
            validation_origins: weight_set.len(),
            interval_errors: n_errors,
            level_weights: named(val.levels.iter().map(|c| c.name()).collect(), &level_w),
            shape_weights: named(val.shapes.iter().map(|c| c.name()).collect(), &shape_w),
            intraday_persistence: persistence,
            profile_drift_gain: residuals.drift_gain,
            total_scale,
            fallbacks,
        },
    })
}

/// Days of residuals the intraday persistence and the per-bucket intervals
/// are learned from: the blend's day-ahead bucket errors on the last 28 days.
const RESIDUAL_DAYS: usize = 28;
/// Weeks of same-weekday transitions the anchor's step is the mean of: a
/// step is a habit, stable for months, and a mean of few is noise that the
/// anchor then carries (the backtest's mean ratio of daily MAPE to the best
/// reference: 4 weeks 0.916, 8 0.913, 12 0.911, 16 0.912).
const ANCHOR_WEEKS: usize = 12;
/// The anchor compares hours of this many buckets: the last before the
/// origin, the forecast's first.
const CARRY_BUCKETS: usize = 4;
/// Per-bucket decays of the anchor the fit chooses among: half-lives from
/// 15 minutes to a day.
const CARRY_DECAYS: [f64; 7] = [0.5, 0.8, 0.9, 0.95, 0.97, 0.985, 0.993];
/// The slower deviation: the mean residual of this many buckets before the
/// origin (six hours), carried with one of these slow decays.
const LONG_CARRY_BUCKETS: usize = super::LONG_CARRY_HOURS * 4;
const LONG_CARRY_DECAYS: [f64; 4] = [0.98, 0.99, 0.995, 0.998];

/// The blend's day-ahead forecasts of the last [`RESIDUAL_DAYS`] (+ 1) days
/// before the origin, replayed with today's weights, and their errors.
struct Residuals {
    /// `[j][slot]`: actual − forecast of day `n_days − 1 − j` from its own
    /// midnight-of-the-grid origin; NaN where not observed or not forecast.
    res: Vec<f64>,
    /// `[j]`: the anchor deviation at the origin of day `n_days − 1 − j`
    /// (see [`anchor_deviation`]), where it can be taken.
    anchor: Vec<Option<f64>>,
    days: usize,
    /// `[j][slot]`, for `j` up to [`DRIFT_DAYS`] further back than `days`:
    /// the undrifted day-ahead forecast, NaN where it could not be made...
    forecast: Vec<f64>,
    /// ... and `[j]` its profile's errors ([`profile_errors`]), where
    /// they can be read: what the drift reads.
    profile: Vec<Option<[f64; DAY]>>,
    /// `[j0]`, `j0` in `0..=days`: [`Residuals::profile_bias`] of the
    /// [`DRIFT_DAYS`] from `j0` (0: the bias the forecast is bent by).
    bias: Vec<Option<[f64; DAY]>>,
    /// See [`Residuals::drift_gain`].
    drift_gain: f64,
    /// Replayed days the gain could be fitted on.
    drift_days: usize,
}

/// The mean of a forecast's first [`CARRY_BUCKETS`] (kWh per bucket).
fn first_hour(curve: &[f64]) -> f64 {
    curve[..CARRY_BUCKETS].iter().sum::<f64>() / CARRY_BUCKETS as f64
}

/// Days of the blend's own day-ahead bucket errors its profile's drift is
/// measured on: two weeks, so every weekday counts twice (the backtest's
/// mean ratios of MAPE / MASE to the best reference: 7 days 0.910 / 0.941,
/// 10 days 0.911 / 0.943, 14 days 0.910 / 0.938, 21 days 0.912 / 0.942;
/// without the drift 0.911 / 0.945).
const DRIFT_DAYS: usize = super::DRIFT_DAYS;
/// A replayed day whose total the forecast missed by more than this share
/// is not read for the profile's drift.
const MAX_DRIFT_LEVEL_ERROR: f64 = 0.5;

/// Bends a day's forecast `day` (kWh per bucket) by its profile's drift:
/// bucket `s` times `1 + gain × bias[s]`, then scaled back to the day's
/// total — the drift moves energy between the hours, the level stays the
/// level components'.
fn drift(day: &mut [f64], gain: f64, bias: &[f64]) {
    if gain <= 0.0 {
        return;
    }
    let before: f64 = day.iter().sum();
    for (v, b) in day.iter_mut().zip(bias) {
        *v *= (1.0 + gain * b).max(0.0);
    }
    let after: f64 = day.iter().sum();
    if after > 0.0 {
        let k = before / after;
        day.iter_mut().for_each(|v| *v *= k);
    }
}

/// The errors of a replayed day's forecast *profile*, from its observed
/// errors `raw` (actual − `forecast`, NaN where not observed): what is left
/// after the forecast is scaled to the day's observed total — a level's
/// error is the level components' business, and a day the level missed by
/// a lot would drown every hour's drift. `None` if the day is under 90%
/// observed, or its level is off by more than [`MAX_DRIFT_LEVEL_ERROR`] (an
/// outage, a spike: nothing to learn about the profile from).
fn profile_errors(raw: &[f64], forecast: &[f64]) -> Option<[f64; DAY]> {
    let (mut error, mut total, mut observed) = (0.0, 0.0, 0);
    for (&r, &f) in raw.iter().zip(forecast) {
        if !r.is_nan() {
            error += r;
            total += f;
            observed += 1;
        }
    }
    if (observed as f64) < MIN_OBSERVED_SHARE * DAY as f64 || total <= 0.0 {
        return None;
    }
    let level = error / total;
    if level.abs() > MAX_DRIFT_LEVEL_ERROR {
        return None;
    }
    let mut out = [f64::NAN; DAY];
    for ((o, &r), &f) in out.iter_mut().zip(raw).zip(forecast) {
        if !r.is_nan() {
            *o = r - f * level;
        }
    }
    Some(out)
}

/// Where the first hour after origin `e` (a day index) should start, by
/// continuity: the last hour before it plus the mean step from the last
/// hour of a day to the first of the next at the same weekday's origins of
/// the last [`ANCHOR_WEEKS`], less the forecast's own first hour
/// (`first_hour`, the mean of its first [`CARRY_BUCKETS`]). Measured against
/// the forecast made at `e` itself, unlike a past forecast's residual, whose
/// level the new forecast has already partly corrected. `None` without an
/// observed bucket in the last hour or a past transition to step by.
fn anchor_deviation(grid: &Grid, e: usize, first_hour: f64) -> Option<f64> {
    if e < 2 {
        return None;
    }
    let hour_mean = |day: usize, from: usize| -> Option<f64> {
        let (v, o) = (grid.day(day), grid.day_observed(day));
        let (sum, n) = (from..from + CARRY_BUCKETS)
            .filter(|&s| o[s])
            .fold((0.0, 0), |(a, n), s| (a + v[s], n + 1));
        (n > 0).then(|| sum / n as f64)
    };
    let last = hour_mean(e - 1, DAY - CARRY_BUCKETS)?;
    let (mut step, mut n) = (0.0, 0);
    // The same transition (Friday night to Saturday is not Sunday night to
    // Monday), over the last [`ANCHOR_WEEKS`].
    for p in (1..=ANCHOR_WEEKS)
        .filter_map(|k| e.checked_sub(7 * k))
        .filter(|&p| p >= 1)
    {
        if let (Some(a), Some(b)) = (hour_mean(p, 0), hour_mean(p - 1, DAY - CARRY_BUCKETS)) {
            step += a - b;
            n += 1;
        }
    }
    if n == 0 {
        return None;
    }
    Some(last + step / n as f64 - first_hour)
}

impl Residuals {
    fn replay(grid: &Grid, val: &Validation, level_w: &[f64], shape_w: &[f64]) -> Residuals {
        let n = grid.n_days;
        let days = (RESIDUAL_DAYS + 1).min(n);
        // The drift of day `j` is measured on the [`DRIFT_DAYS`] before it.
        let stored = (days + DRIFT_DAYS).min(n);
        let mut forecast = vec![f64::NAN; stored * DAY];
        let mut raw = vec![f64::NAN; stored * DAY];
        let mut total = [0.0];
        let mut curve = [0.0; DAY];
        let mut shape = [0.0; DAY];
        for j in 0..stored {
            let e = n - 1 - j;
            let usable = |w: f64, ok: bool| w <= 0.0 || ok;
            if !(val
                .levels
                .iter()
                .zip(level_w)
                .all(|(c, &w)| usable(w, c.available(e)))
                && val
                    .shapes
                    .iter()
                    .zip(shape_w)
                    .all(|(c, &w)| usable(w, c.available(e))))
            {
                break;
            }
            // A validation origin's first day is already forecast.
            let known = val.origin_index(e);
            let mut level = 0.0;
            for (li, (c, &w)) in val.levels.iter().zip(level_w).enumerate() {
                if w > 0.0 {
                    match known {
                        Some(u) => total[0] = val.level_total(u, li, 0),
                        None => c.forecast(grid, e, &mut total),
                    }
                    level += w * total[0];
                }
            }
            shape.fill(0.0);
            for (si, (c, &w)) in val.shapes.iter().zip(shape_w).enumerate() {
                if w > 0.0 {
                    match known.and_then(|u| val.first_day_curve(u, si)) {
                        Some(first) => curve.copy_from_slice(first),
                        None => c.forecast(grid, e, 0..1, &mut curve),
                    }
                    add_normalised(&mut shape, &curve, w);
                }
            }
            let (truth, observed) = (grid.truth_day(e), grid.truth_day_observed(e));
            for s in 0..DAY {
                let f = (shape[s] * level).max(0.0);
                forecast[j * DAY + s] = f;
                if observed[s] {
                    raw[j * DAY + s] = truth[s] - f;
                }
            }
        }
        let mut r = Residuals::with_drift(days, forecast, raw);
        // The errors of the forecasts the model would have made: drifted.
        let mut day = [0.0; DAY];
        for j in 0..days {
            day.copy_from_slice(&r.forecast[j * DAY..(j + 1) * DAY]);
            if day[0].is_nan() {
                continue;
            }
            r.bend(&mut day, j + 1);
            let e = n - 1 - j;
            r.anchor[j] = anchor_deviation(grid, e, first_hour(&day));
            let (truth, observed) = (grid.truth_day(e), grid.truth_day_observed(e));
            for s in 0..DAY {
                if observed[s] {
                    r.res[j * DAY + s] = truth[s] - day[s];
                }
            }
        }
        r
    }

    /// Residuals of `days` replayed days, before their drift is known:
    /// the undrifted forecasts and errors of `days` + [`DRIFT_DAYS`] days,
    /// the bias read at every origin, and the gain fitted on them.
    fn with_drift(days: usize, forecast: Vec<f64>, raw: Vec<f64>) -> Residuals {
        let profile = raw
            .chunks_exact(DAY)
            .zip(forecast.chunks_exact(DAY))
            .map(|(raw, forecast)| profile_errors(raw, forecast))
            .collect();
        let mut r = Residuals {
            res: vec![f64::NAN; days * DAY],
            anchor: vec![None; days],
            days,
            forecast,
            profile,
            bias: Vec::new(),
            drift_gain: 0.0,
            drift_days: 0,
        };
        r.bias = (0..=days).map(|j0| r.profile_bias(j0)).collect();
        (r.drift_gain, r.drift_days) = r.drift_gain();
        r
    }

    /// Bends a day's forecast by the drift read on the days from `j0` back
    /// (0: the forecast being made).
    fn bend(&self, day: &mut [f64], j0: usize) {
        if let Some(bias) = &self.bias[j0] {
            drift(day, self.drift_gain, bias);
        }
    }

    /// The days whose day-ahead forecast the replay could make.
    fn replayed_days(&self) -> usize {
        self.forecast
            .chunks_exact(DAY)
            .filter(|day| !day[0].is_nan())
            .count()
    }

    /// The blend profile's relative bias per bucket of the day over the
    /// [`DRIFT_DAYS`] days `j0..` (0 = the day before the origin): the sum
    /// of its undrifted day-ahead profile errors ([`profile_errors`]) over
    /// the sum of its forecasts,
    /// averaged over the hour around each bucket, less its mean over the
    /// day. `None` unless at least half of those days can be read.
    fn profile_bias(&self, j0: usize) -> Option<[f64; DAY]> {
        let days = self.profile.get(j0..j0 + DRIFT_DAYS)?;
        let (mut err, mut fc) = ([0.0; DAY], [0.0; DAY]);
        let mut used = 0;
        for (j, errors) in (j0..).zip(days) {
            let Some(errors) = errors else {
                continue;
            };
            used += 1;
            for (s, (&r, &f)) in errors.iter().zip(&self.forecast[j * DAY..]).enumerate() {
                if !r.is_nan() {
                    err[s] += r;
                    fc[s] += f;
                }
            }
        }
        if 2 * used < DRIFT_DAYS {
            return None;
        }
        let rel: Vec<f64> = err
            .iter()
            .zip(&fc)
            .map(|(&e, &f)| if f > 0.0 { e / f } else { 0.0 })
            .collect();
        let mut bias = around_the_hour(&rel);
        let mean = bias.iter().sum::<f64>() / DAY as f64;
        bias.iter_mut().for_each(|b| *b -= mean);
        Some(bias)
    }

    /// How much of its measured drift the profile is bent by: least squares
    /// of each replayed day's profile errors on what bending by its own past
    /// [`DRIFT_DAYS`] would change (to first order, the bend less its
    /// rescaling), in [0, 1]; 0 unless it cuts the squared error by 1%.
    /// Also how many days it was fitted on.
    fn drift_gain(&self) -> (f64, usize) {
        let (mut rx, mut xx, mut rr) = (0.0, 0.0, 0.0);
        let mut fitted = 0;
        for j in 0..self.days {
            let Some(bias) = &self.bias[j + 1] else {
                break;
            };
            // A readable day was forecast, with a positive total.
            let Some(errors) = &self.profile[j] else {
                continue;
            };
            fitted += 1;
            let f = &self.forecast[j * DAY..(j + 1) * DAY];
            let sum: f64 = f.iter().sum();
            let shift = f.iter().zip(bias).map(|(f, b)| f * b).sum::<f64>() / sum;
            for ((&r, &f), &b) in errors.iter().zip(f).zip(bias) {
                if !r.is_nan() {
                    let x = f * (b - shift);
                    rx += r * x;
                    xx += x * x;
                    rr += r * r;
                }
            }
        }
        if xx <= 0.0 {
            return (0.0, fitted);
        }
        let gain = (rx / xx).clamp(0.0, 1.0);
        let sse = rr - 2.0 * gain * rx + gain * gain * xx;
        (if sse < 0.99 * rr { gain } else { 0.0 }, fitted)
    }

    /// The factor the replayed days' forecasts (carry included) would have
    /// had the least absolute errors at: the geometric mean of the one for
    /// their daily totals' percentage errors (the median of actual /
    /// forecast over the days at least 90% observed, each weighted by
    /// forecast / actual) and the one for their buckets' errors in kWh
    /// (the median of actual / forecast over the observed buckets, each
    /// weighted by its forecast) — a user reads both. Both are below 1
    /// where the actual sometimes runs far above the usual (a house's
    /// heavy days and hours), as the stacking minimises squared errors,
    /// which sets the forecast above where most days and hours fall. `None`
    /// with fewer than [`MIN_ERRORS_FOR_INTERVAL`] such days.
    fn scale(&self, grid: &Grid, persistence: IntradayPersistence, carries: bool) -> Option<f64> {
        let (mut days, mut buckets) = (Vec::new(), Vec::new());
        for j in 0..self.days {
            let truth = grid.truth_day(grid.n_days - 1 - j);
            let x = if carries { self.origin_carry(j) } else { None };
            let (mut actual, mut predicted, mut observed) = (0.0, 0.0, 0);
            for (s, &r) in self.day(j).iter().enumerate() {
                if !r.is_nan() {
                    let carried = x.map_or(0.0, |x| persistence.carried(x, s));
                    let f = (truth[s] - r + carried).max(0.0);
                    if f > 0.0 {
                        buckets.push((truth[s] / f, f));
                    }
                    predicted += f;
                    actual += truth[s];
                    observed += 1;
                }
            }
            if (observed as f64) >= MIN_OBSERVED_SHARE * DAY as f64
                && actual > 0.0
                && predicted > 0.0
            {
                days.push((actual / predicted, predicted / actual));
            }
        }
        if days.len() < MIN_ERRORS_FOR_INTERVAL {
            return None;
        }
        Some((weighted_median(days)? * weighted_median(buckets)?).sqrt())
    }

    fn day(&self, j: usize) -> &[f64] {
        &self.res[j * DAY..(j + 1) * DAY]
    }

    /// The deviations carried from the origin of day `j`: its anchor, and
    /// the mean observed residual of the last [`LONG_CARRY_BUCKETS`] of the
    /// day before.
    fn origin_carry(&self, j: usize) -> Option<(f64, f64)> {
        Some(((*self.anchor.get(j)?)?, self.long_tail(j + 1)?))
    }

    /// The mean observed residual of the last [`LONG_CARRY_BUCKETS`] of day `j`.
    fn long_tail(&self, j: usize) -> Option<f64> {
        if j >= self.days {
            return None;
        }
        let tail = &self.day(j)[DAY - LONG_CARRY_BUCKETS..];
        let (sum, n) = tail
            .iter()
            .filter(|v| !v.is_nan())
            .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        (n > 0).then(|| sum / n as f64)
    }

    /// Per-bucket additive 80% bands, `bands(i)` = (low, high) offsets for
    /// bucket `i` of the horizon: the conformal ranks of the residuals in
    /// the bucket's hour of the day over the last days — the first day's
    /// after the carried deviation is taken off, later days' without it,
    /// times `lead_scale[day]`. `None` if an hour has too few residuals.
    fn bucket_bands(
        &self,
        persistence: IntradayPersistence,
        lead_scale: &[f64],
    ) -> Option<impl Fn(usize) -> (f64, f64)> {
        const HOURS: usize = DAY / 4;
        let mut first: Vec<Vec<f64>> = vec![Vec::new(); HOURS];
        let mut later: Vec<Vec<f64>> = vec![Vec::new(); HOURS];
        for j in 0..self.days {
            let x = self.origin_carry(j);
            for (s, &r) in self.day(j).iter().enumerate() {
                if !r.is_nan() {
                    later[s / 4].push(r);
                    if let Some(x) = x {
                        first[s / 4].push(r - persistence.carried(x, s));
                    }
                }
            }
        }
        let ranks = |errors: &mut Vec<f64>| -> Option<(f64, f64)> {
            if errors.len() < MIN_ERRORS_FOR_INTERVAL {
                return None;
            }
            let (lo, hi) = conformal_ranks(errors);
            Some((lo.min(0.0), hi.max(0.0)))
        };
        let first: Vec<(f64, f64)> = first.iter_mut().map(ranks).collect::<Option<_>>()?;
        let later: Vec<(f64, f64)> = later.iter_mut().map(ranks).collect::<Option<_>>()?;
        let lead_scale = lead_scale.to_vec();
        Some(move |i: usize| {
            let (day, hour) = (i / DAY, (i % DAY) / 4);
            if day == 0 {
                first[hour]
            } else {
                let k = lead_scale[day.min(lead_scale.len() - 1)];
                (later[hour].0 * k, later[hour].1 * k)
            }
        })
    }

    /// Least squares of each day's residuals on its origin's anchor ×
    /// decay^slot and the previous day's last-hours deviation ×
    /// long_decay^slot, over every pair of [`CARRY_DECAYS`] and
    /// [`LONG_CARRY_DECAYS`]: both weights free, or one of them 0, each kept
    /// in [0, 1]; both 0 when that does not reduce the squared error by at
    /// least 1%.
    fn persistence(&self) -> IntradayPersistence {
        let pairs: Vec<(usize, (f64, f64))> = (0..self.days.saturating_sub(1))
            .filter_map(|j| self.origin_carry(j).map(|x| (j, x)))
            .collect();
        if pairs.len() < MIN_ORIGINS_FOR_WEIGHTS {
            return IntradayPersistence::default();
        }
        let base: f64 = pairs
            .iter()
            .flat_map(|&(j, _)| self.day(j).iter().filter(|v| !v.is_nan()))
            .map(|r| r * r)
            .sum();
        let mut best = (base, IntradayPersistence::default());
        for decay in CARRY_DECAYS {
            for long_decay in LONG_CARRY_DECAYS {
                // Normal equations of r ≈ a g + b h, g the anchor decaying
                // fast, h the last hours' deviation decaying slowly.
                let (mut rg, mut rh, mut gg, mut gh, mut hh) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for &(j, (x, y)) in &pairs {
                    let (mut g, mut h) = (x, y);
                    for &r in self.day(j) {
                        if !r.is_nan() {
                            rg += r * g;
                            rh += r * h;
                            gg += g * g;
                            gh += g * h;
                            hh += h * h;
                        }
                        g *= decay;
                        h *= long_decay;
                    }
                }
                let mut candidates = Vec::with_capacity(3);
                if gg > 0.0 {
                    candidates.push(((rg / gg).clamp(0.0, 1.0), 0.0));
                }
                if hh > 0.0 {
                    candidates.push((0.0, (rh / hh).clamp(0.0, 1.0)));
                }
                let det = gg * hh - gh * gh;
                if det > 1e-9 * gg * hh {
                    let a = (rg * hh - rh * gh) / det;
                    let b = (rh * gg - rg * gh) / det;
                    if (0.0..=1.0).contains(&a) && (0.0..=1.0).contains(&b) {
                        candidates.push((a, b));
                    }
                }
                for (a, b) in candidates {
                    let sse =
                        base - 2.0 * (a * rg + b * rh) + a * a * gg + 2.0 * a * b * gh + b * b * hh;
                    if sse < best.0 {
                        best = (
                            sse,
                            IntradayPersistence {
                                weight: a,
                                decay_per_bucket: if a > 0.0 { decay } else { 0.0 },
                                long_weight: b,
                                long_decay_per_bucket: if b > 0.0 { long_decay } else { 0.0 },
                            },
                        );
                    }
                }
            }
        }
        if best.0 < 0.99 * base {
            best.1
        } else {
            IntradayPersistence::default()
        }
    }
}

/// [`ModelInfo::method`].
pub(super) const METHOD: &str = "level x shape blend: daily totals stacked from trend, weekday \
    and persistence models; within-day shape from seasonal profiles; weights learned from \
    errors at past origins; conformal 80% interval";

/// Adds `w × curve / Σ curve` (a flat day if the curve sums to nothing).
fn add_normalised(out: &mut [f64], curve: &[f64], w: f64) {
    let sum: f64 = curve.iter().sum();
    if sum > 0.0 {
        let k = w / sum;
        for (o, &c) in out.iter_mut().zip(curve) {
            *o += k * c;
        }
    } else {
        for o in out.iter_mut() {
            *o += w / DAY as f64;
        }
    }
}

fn validate(
    grid: &Grid,
    origins: Vec<usize>,
    leads: usize,
    horizon: usize,
    levels: Vec<Level>,
    shapes: Vec<Shape>,
) -> Validation {
    let (nu, nl, ns) = (origins.len(), levels.len(), shapes.len());
    let nsu = nu.min(SHAPE_ORIGINS);
    let mut val = Validation {
        level_totals: vec![0.0; nu * nl * leads],
        level_gram: vec![0.0; nu * nl * nl],
        level_rows: vec![0; nu],
        shape_loss: vec![0.0; nsu * ns],
        shape_tail: vec![1.0; nsu * ns],
        shape_first: vec![0.0; nsu * ns * DAY],
        actual_horizon: vec![f64::NAN; nu],
        day_totals_actual: grid
            .truth_totals
            .iter()
            .zip(&grid.truth_observed_per_day)
            .map(|(&t, &o)| {
                if o as f64 >= MIN_OBSERVED_SHARE * DAY as f64 && t > 0.0 {
                    t
                } else {
                    f64::NAN
                }
            })
            .collect(),
        origins,
        leads,
        levels,
        shapes,
    };
    let mut r = vec![0.0; nl];
    for (u, &e) in val.origins.iter().enumerate() {
        let window = e * DAY..e * DAY + horizon;
        let observed = grid.truth_observed[window.clone()]
            .iter()
            .filter(|&&o| o)
            .count();
        if observed as f64 >= MIN_OBSERVED_SHARE * horizon as f64 {
            val.actual_horizon[u] = grid.truth_vals[window].iter().sum();
        }
        for (li, c) in val.levels.iter().enumerate() {
            c.forecast(
                grid,
                e,
                &mut val.level_totals[(u * nl + li) * leads..][..leads],
            );
        }
        for lead in 0..leads {
            if val.level_errors(grid, u, lead, &mut r) {
                add_outer(&mut val.level_gram[u * nl * nl..(u + 1) * nl * nl], &r);
                val.level_rows[u] += 1;
            }
        }
    }
    let scored = leads.min(SHAPE_SCORED_LEADS);
    let tail = horizon - (leads - 1) * DAY;
    let mut curves = vec![0.0; scored * DAY];
    let mut last = [0.0; DAY];
    for (u, &e) in val.origins.iter().enumerate().take(nsu) {
        for (si, c) in val.shapes.iter().enumerate() {
            c.forecast(grid, e, 0..scored, &mut curves);
            val.shape_first[(u * ns + si) * DAY..][..DAY].copy_from_slice(&curves[..DAY]);
            let mut loss = 0.0;
            let mut shaped = [0.0; DAY];
            for (lead, curve) in curves.chunks_exact(DAY).enumerate() {
                let d = e + lead;
                // As for the levels: scored on usual days only.
                let (truth, observed) = (grid.truth_day(d), grid.day_observed(d));
                shaped.fill(0.0);
                add_normalised(&mut shaped, curve, grid.truth_totals[d]);
                for s in 0..DAY {
                    if observed[s] {
                        loss += (shaped[s] - truth[s]).abs();
                    }
                }
            }
            val.shape_loss[u * ns + si] = loss;
            if tail < DAY {
                let last = if leads <= scored {
                    &curves[(leads - 1) * DAY..]
                } else {
                    c.forecast(grid, e, leads - 1..leads, &mut last);
                    &last[..]
                };
                let sum: f64 = last.iter().sum();
                val.shape_tail[u * ns + si] = if sum > 0.0 {
                    last[..tail].iter().sum::<f64>() / sum
                } else {
                    tail as f64 / DAY as f64
                };
            }
        }
    }
    val
}

impl Validation {
    /// The index `u` of the validation origin at day `e`, if it is one
    /// (the origins are consecutive days, the most recent first).
    fn origin_index(&self, e: usize) -> Option<usize> {
        let u = self.origins.first()?.checked_sub(e)?;
        (self.origins.get(u) == Some(&e)).then_some(u)
    }

    /// Level `li`'s total for day `lead` after origin `u`.
    fn level_total(&self, u: usize, li: usize, lead: usize) -> f64 {
        self.level_totals[(u * self.levels.len() + li) * self.leads + lead]
    }

    /// Shape `si`'s curve for the first day after origin `u`, if `u` is
    /// among the origins shapes are scored at.
    fn first_day_curve(&self, u: usize, si: usize) -> Option<&[f64]> {
        let ns = self.shapes.len();
        self.shape_first
            .get((u * ns + si) * DAY..(u * ns + si + 1) * DAY)
    }

    /// The levels' relative errors `r` on day `lead` after origin `u`, if
    /// that day is scored: what the day held, but only on usual days (an
    /// unusual one reads as unobserved in `observed_per_day`): no component
    /// could have forecast it, and it would pull the weights for a month.
    fn level_errors(&self, grid: &Grid, u: usize, lead: usize, r: &mut [f64]) -> bool {
        let day = self.origins[u] + lead;
        let actual = grid.truth_totals[day];
        let observed = grid.observed_per_day[day] as f64;
        if !(observed >= MIN_OBSERVED_SHARE * DAY as f64 && actual > 0.0) {
            return false;
        }
        for (li, ri) in r.iter_mut().enumerate() {
            *ri = self.level_total(u, li, lead) / actual - 1.0;
        }
        true
    }

    /// Level weights learned from origins `set`: the convex combination with
    /// the least squared relative error (stacking), so that complementary
    /// components share the weight rather than the best taking all, with a
    /// ridge ([`STACKING_RIDGE`]) towards equal weights.
    fn level_weights(&self, set: Range<usize>) -> Vec<f64> {
        let nl = self.levels.len();
        let rows: usize = self.level_rows[set.clone()].iter().sum();
        if set.len() < MIN_ORIGINS_FOR_WEIGHTS || rows < MIN_ORIGINS_FOR_WEIGHTS {
            return vec![1.0 / nl as f64; nl];
        }
        let mut gram = vec![0.0; nl * nl];
        for u in set {
            add_assign(&mut gram, &self.level_gram[u * nl * nl..(u + 1) * nl * nl]);
        }
        stack(gram, nl)
    }

    /// For each of the (at most `count`) most recent origins, the level
    /// weights its forecast could have learned: stacked on every day of the
    /// earlier origins' windows that had ended before its own window began
    /// — partial windows, but nothing it could not have known. `None` under
    /// [`MIN_ORIGINS_FOR_WEIGHTS`] such days.
    fn partial_window_weights(&self, grid: &Grid, count: usize) -> Vec<Option<Vec<f64>>> {
        let nl = self.levels.len();
        let Some(&first) = self.origins.last() else {
            return Vec::new();
        };
        // Each scored day's errors once, by the day they fell on...
        let days = self.origins[0] + self.leads - first;
        let mut by_day = vec![0.0; days * nl * nl];
        let mut rows = vec![0usize; days];
        let mut r = vec![0.0; nl];
        for u in 0..self.origins.len() {
            for lead in 0..self.leads {
                if self.level_errors(grid, u, lead, &mut r) {
                    let d = self.origins[u] + lead - first;
                    add_outer(&mut by_day[d * nl * nl..(d + 1) * nl * nl], &r);
                    rows[d] += 1;
                }
            }
        }
        // ... summed up to each origin's first day, the oldest origin first
        // (origins are the most recent first).
        let count = count.min(self.origins.len());
        let mut weights = vec![None; count];
        let (mut gram, mut n, mut next) = (vec![0.0; nl * nl], 0, 0);
        for v in (0..self.origins.len()).rev() {
            let upto = self.origins[v] - first;
            for d in next..upto {
                add_assign(&mut gram, &by_day[d * nl * nl..(d + 1) * nl * nl]);
                n += rows[d];
            }
            next = upto;
            if v < count && n >= MIN_ORIGINS_FOR_WEIGHTS {
                weights[v] = Some(stack(gram.clone(), nl));
            }
        }
        weights
    }

    /// Shape weights learned from origins `set` (within `SHAPE_ORIGINS`):
    /// proportional to loss^-p. Shapes are all averages of past days and
    /// their errors highly correlated, so stacking would only chase noise.
    fn shape_weights(&self, set: Range<usize>) -> Vec<f64> {
        let ns = self.shapes.len();
        let set = set.start..set.end.min(self.shape_loss.len() / ns.max(1));
        if set.len() < MIN_ORIGINS_FOR_WEIGHTS {
            return vec![1.0 / ns as f64; ns];
        }
        let mut loss = vec![0.0; ns];
        for u in set {
            for (l, x) in loss.iter_mut().zip(&self.shape_loss[u * ns..(u + 1) * ns]) {
                *l += x;
            }
        }
        let min = loss.iter().copied().fold(f64::INFINITY, f64::min);
        if !(min > 0.0 && min.is_finite()) {
            return vec![1.0 / ns as f64; ns];
        }
        // Relative to the best, so the powers cannot underflow.
        let w: Vec<f64> = loss
            .iter()
            .map(|l| (min / l).powf(SHAPE_WEIGHT_POWER))
            .collect();
        let sum: f64 = w.iter().sum();
        w.iter().map(|x| x / sum).collect()
    }

    /// Per lead day, how much wider the blend's daily errors are than the
    /// first day's: the root-mean-square relative error of the blended
    /// daily totals (weights `level_w`) at that lead over the validation
    /// origins, over the first lead's, at least 1 (and 1 without data).
    fn lead_error_scale(&self, level_w: &[f64]) -> Vec<f64> {
        let leads = self.leads;
        let mut sums = vec![(0.0, 0usize); leads];
        for (u, &e) in self.origins.iter().enumerate() {
            for (lead, sum) in sums.iter_mut().enumerate() {
                let actual = self.day_totals_actual[e + lead];
                if actual.is_nan() {
                    continue;
                }
                let blended: f64 = level_w
                    .iter()
                    .enumerate()
                    .map(|(li, w)| w * self.level_total(u, li, lead))
                    .sum();
                if blended > 0.0 {
                    sum.0 += (actual / blended - 1.0).powi(2);
                    sum.1 += 1;
                }
            }
        }
        let rms: Vec<f64> = sums
            .iter()
            .map(|&(s, n)| {
                if n > 0 {
                    (s / n as f64).sqrt()
                } else {
                    f64::NAN
                }
            })
            .collect();
        let base = rms.first().copied().unwrap_or(f64::NAN);
        rms.iter()
            .map(|&r| {
                let k = r / base;
                if k.is_finite() {
                    k.max(1.0)
                } else {
                    1.0
                }
            })
            .collect()
    }

    /// The blended forecast of the horizon's total at origin `u`.
    fn blended_total(&self, u: usize, level_w: &[f64], shape_w: &[f64]) -> f64 {
        let (ns, leads) = (self.shapes.len(), self.leads);
        let tail: f64 = shape_w
            .iter()
            .zip(&self.shape_tail[u * ns..(u + 1) * ns])
            .map(|(w, t)| w * t)
            .sum();
        let mut total = 0.0;
        for lead in 0..leads {
            let day: f64 = level_w
                .iter()
                .enumerate()
                .map(|(li, w)| w * self.level_total(u, li, lead))
                .sum();
            total += if lead + 1 == leads { day * tail } else { day };
        }
        total
    }
}

/// `a += b`, element by element.
fn add_assign(a: &mut [f64], b: &[f64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Adds `r rᵀ` to the `n × n` matrix `gram` (row-major).
fn add_outer(gram: &mut [f64], r: &[f64]) {
    let n = r.len();
    for i in 0..n {
        for j in 0..n {
            gram[i * n + j] += r[i] * r[j];
        }
    }
}

/// The stacking weights of a Gram matrix of relative errors, with the
/// ridge towards equal weights.
fn stack(mut gram: Vec<f64>, nl: usize) -> Vec<f64> {
    // The best single component's own squared error: the shrinkage
    // matters when components are about as good as each other (where
    // stacking 28 days chases noise), not when one is near exact.
    let ridge = STACKING_RIDGE
        * (0..nl)
            .map(|i| gram[i * nl + i])
            .fold(f64::INFINITY, f64::min);
    for i in 0..nl {
        gram[i * nl + i] += ridge;
    }
    simplex_least_squares(&gram, nl)
}

/// argmin over the simplex {w ≥ 0, Σ w = 1} of wᵀ G w.
///
/// The sum constraint becomes a stiff penalty M (Σ w − 1)², which turns the
/// problem into non-negative least squares in Gram form, solved exactly by
/// Lawson and Hanson's active-set method (a few passes for 8 weights); the
/// result is then renormalised to sum to exactly 1.
fn simplex_least_squares(gram: &[f64], n: usize) -> Vec<f64> {
    let trace: f64 = (0..n).map(|i| gram[i * n + i]).sum();
    if !(trace > 0.0 && trace.is_finite()) {
        return vec![1.0 / n as f64; n];
    }
    let m = 1e4 * trace;
    let g = |i: usize, j: usize| gram[i * n + j] + m;
    // The negative half-gradient at w: M·1 − G' w.
    let slack = |w: &[f64], j: usize| m - (0..n).map(|i| g(j, i) * w[i]).sum::<f64>();
    let mut w = vec![0.0; n];
    let mut passive = vec![false; n];
    for _ in 0..3 * n {
        let Some(j) = (0..n)
            .filter(|&j| !passive[j])
            .max_by(|&a, &b| slack(&w, a).total_cmp(&slack(&w, b)))
            .filter(|&j| slack(&w, j) > 1e-12 * m)
        else {
            break;
        };
        passive[j] = true;
        loop {
            let idx: Vec<usize> = (0..n).filter(|&i| passive[i]).collect();
            let a: Vec<f64> = idx
                .iter()
                .flat_map(|&i| idx.iter().map(move |&k| g(i, k)))
                .collect();
            let Some(z) = solve_dense(a, vec![m; idx.len()]) else {
                passive[j] = false;
                break;
            };
            if z.iter().all(|&x| x > 0.0) {
                w.fill(0.0);
                for (&i, &x) in idx.iter().zip(&z) {
                    w[i] = x;
                }
                break;
            }
            // Step towards z until the first weight reaches zero; drop it.
            let mut alpha = 1.0f64;
            for (&i, &x) in idx.iter().zip(&z) {
                if x <= 0.0 {
                    alpha = alpha.min(w[i] / (w[i] - x));
                }
            }
            for (&i, &x) in idx.iter().zip(&z) {
                w[i] += alpha * (x - w[i]);
                if w[i] <= 1e-15 {
                    w[i] = 0.0;
                    passive[i] = false;
                }
            }
        }
    }
    let sum: f64 = w.iter().sum();
    if sum > 0.0 {
        w.iter().map(|x| x / sum).collect()
    } else {
        vec![1.0 / n as f64; n]
    }
}

/// Solves the row-major `n × n` system `a x = b` by Gaussian elimination
/// with partial pivoting; `None` if it is singular.
fn solve_dense(mut a: Vec<f64>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    let scale = (0..n).map(|i| a[i * n + i].abs()).fold(0.0, f64::max);
    for col in 0..n {
        let pivot =
            (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        if a[pivot * n + col].abs() <= 1e-13 * scale {
            return None;
        }
        for k in 0..n {
            a.swap(col * n + k, pivot * n + k);
        }
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row * n + col] / a[col * n + col];
            for k in col..n {
                a[row * n + k] -= f * a[col * n + k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row * n + k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row * n + row];
    }
    Some(x)
}

/// Split-conformal interval from the relative errors `actual / predicted − 1`
/// of past forecasts: the ⌊(n+1)·10%⌋-th smallest and ⌈(n+1)·90%⌉-th
/// smallest, which cover at least 80% if tomorrow's error is exchangeable
/// with those past ones.
fn conformal_interval(total: f64, errors: &mut [f64]) -> Interval {
    let (lo, hi) = conformal_ranks(errors);
    Interval {
        level: INTERVAL_LEVEL,
        low_kwh: (total * (1.0 + lo.min(0.0))).max(0.0),
        high_kwh: total * (1.0 + hi.max(0.0)),
    }
}

/// The ⌊(n+1)·10%⌋-th and ⌈(n+1)·90%⌉-th smallest of `errors` (sorted).
fn conformal_ranks(errors: &mut [f64]) -> (f64, f64) {
    errors.sort_by(f64::total_cmp);
    let n = errors.len();
    let tail = (1.0 - INTERVAL_LEVEL) / 2.0;
    let lo_rank = (((n + 1) as f64 * tail).floor() as usize).clamp(1, n);
    let hi_rank = (((n + 1) as f64 * (1.0 - tail)).ceil() as usize).clamp(1, n);
    (errors[lo_rank - 1], errors[hi_rank - 1])
}

/// The value at which the weights of `(value, weight)` pairs below and
/// above balance: the `k` minimising Σ weight × |k − value| (the lowest
/// such `k`). For ratios q = actual / forecast weighted by 1 / q it is the
/// scale with the least mean absolute percentage error, |k − q| / q; by
/// the forecast f, the least sum of absolute errors, |k f − actual|.
/// `None` without a positive weight.
fn weighted_median(mut pairs: Vec<(f64, f64)>) -> Option<f64> {
    pairs.retain(|&(v, w)| v.is_finite() && w > 0.0 && w.is_finite());
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = pairs.iter().map(|p| p.1).sum::<f64>() / 2.0;
    let mut below = 0.0;
    pairs.into_iter().find_map(|(v, w)| {
        below += w;
        (below >= half).then_some(v)
    })
}

/// For when there are too few past errors: ±1.28 coefficients of variation
/// of the daily totals (at least 25%, since a few days say little).
fn spread_interval(total: f64, grid: &Grid) -> Interval {
    let n = grid.n_days as f64;
    let mean = grid.truth_totals.iter().sum::<f64>() / n;
    let var = grid
        .truth_totals
        .iter()
        .map(|t| (t - mean).powi(2))
        .sum::<f64>()
        / n;
    let cv = if mean > 0.0 {
        (var.sqrt() / mean).max(0.25)
    } else {
        0.25
    };
    let z = 1.2816 * cv;
    Interval {
        level: INTERVAL_LEVEL,
        low_kwh: (total * (1.0 - z)).max(0.0),
        high_kwh: total * (1.0 + z),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weighted_median_is_where_the_weighted_absolute_error_is_least() {
        // Against a fine search, on sets of every size and skew, weighted
        // both ways the scale uses.
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for n in [1, 2, 3, 9, 28, 96] {
            for skew in [0.0, 1.0, 3.0] {
                // Ratios of actual to forecast, and forecasts.
                let data: Vec<(f64, f64)> = (0..n)
                    .map(|_| {
                        let u = next();
                        (0.7 + 0.6 * u + skew * u.powi(8), 0.1 + next())
                    })
                    .collect();
                // The mean absolute percentage error of k × forecast, and
                // the sum of its absolute errors.
                let ape = |k: f64| data.iter().map(|&(q, _)| (k - q).abs() / q).sum::<f64>();
                let abs = |k: f64| {
                    data.iter()
                        .map(|&(q, f)| (k * f - q * f).abs())
                        .sum::<f64>()
                };
                for (pairs, loss) in [
                    (
                        data.iter().map(|&(q, _)| (q, 1.0 / q)).collect::<Vec<_>>(),
                        &ape as &dyn Fn(f64) -> f64,
                    ),
                    (data.iter().map(|&(q, f)| (q, f)).collect(), &abs),
                ] {
                    let k = weighted_median(pairs).unwrap();
                    let best = (0..=40_000)
                        .map(|i| 0.5 + i as f64 * 1e-4)
                        .map(loss)
                        .fold(f64::INFINITY, f64::min);
                    assert!(loss(k) <= best + 1e-12, "n {n} skew {skew}: k {k}");
                }
            }
        }
        // Most days as forecast, a few far heavier: the least percentage
        // error is below the plain median of the ratios (1.01).
        let q = [0.95, 0.98, 1.0, 1.01, 1.03, 1.9, 2.2];
        let k = weighted_median(q.iter().map(|&q| (q, 1.0 / q)).collect()).unwrap();
        assert_eq!(k, 1.0);
        // Nothing with a weight: nothing to scale to.
        assert_eq!(weighted_median(vec![(1.0, 0.0), (f64::NAN, 1.0)]), None);
        assert_eq!(weighted_median(Vec::new()), None);
    }

    /// A load whose step across the origin's hour depends on the weekday
    /// (+3 into day 5 of each week, +1 into day 6, −4 into day 0), with an
    /// evening ramp, and `shift` added to the last `shifted` buckets.
    fn weekly(days: usize, shift: f64, shifted: usize) -> Vec<f64> {
        let mut kwh: Vec<f64> = (0..days * DAY)
            .map(|i| {
                let (day, slot) = (i / DAY, i % DAY);
                10.0 + [0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 4.0][day % 7] + slot as f64 / 48.0
            })
            .collect();
        let n = kwh.len();
        for v in &mut kwh[n - shifted..] {
            *v += shift;
        }
        kwh
    }

    fn grid(kwh: &[f64]) -> Grid {
        let history = History::from_kwh(0, kwh);
        Grid::build(&history, kwh.len() as i64, kwh.len() / DAY)
    }

    /// The first hour after day `e` starts, had the pattern gone on.
    fn true_first_hour(e: usize) -> f64 {
        let next = weekly(e + 1, 0.0, 0);
        next[e * DAY..e * DAY + CARRY_BUCKETS].iter().sum::<f64>() / CARRY_BUCKETS as f64
    }

    #[test]
    fn the_anchor_steps_across_the_origin_as_the_same_weekday_did() {
        // Every weekday's transition: a forecast whose first hour is the
        // pattern's has nothing to carry (a step averaged over all
        // weekdays would be off by up to 4 kWh here).
        for days in 84..91 {
            let g = grid(&weekly(days, 0.0, 0));
            let a = anchor_deviation(&g, days, true_first_hour(days)).unwrap();
            assert!(a.abs() < 1e-9, "{days} days: anchor {a}");
        }
    }

    #[test]
    fn the_anchor_is_how_far_the_last_hour_moved() {
        // The last six hours 2 kWh up: a forecast that did not see it
        // starts 2 kWh low.
        for days in 84..91 {
            let g = grid(&weekly(days, 2.0, 24));
            let a = anchor_deviation(&g, days, true_first_hour(days)).unwrap();
            assert!((a - 2.0).abs() < 1e-9, "{days} days: anchor {a}");
        }
    }

    #[test]
    fn no_anchor_without_the_last_hour_or_a_past_transition() {
        let mut kwh = weekly(84, 0.0, 0);
        let n = kwh.len();
        let g = grid(&kwh[..DAY]);
        assert_eq!(
            anchor_deviation(&g, 1, 10.0),
            None,
            "one day: no last day before it"
        );
        let g = grid(&kwh[..3 * DAY]);
        assert_eq!(
            anchor_deviation(&g, 3, 10.0),
            None,
            "three days: no same-weekday transition"
        );
        // The last hour missing (imputed, not observed): nothing to anchor on.
        for v in &mut kwh[n - CARRY_BUCKETS..] {
            *v = f64::NAN;
        }
        assert_eq!(anchor_deviation(&grid(&kwh), 84, 10.0), None);
    }

    #[test]
    fn a_drift_moves_energy_between_the_hours_and_keeps_the_days_total() {
        let mut day: Vec<f64> = (0..DAY).map(|s| 5.0 + (s % 7) as f64).collect();
        let total: f64 = day.iter().sum();
        let before = day.clone();
        let bias: Vec<f64> = (0..DAY).map(|s| if s < 48 { 0.1 } else { -0.1 }).collect();
        drift(&mut day, 0.5, &bias);
        assert!((day.iter().sum::<f64>() - total).abs() < 1e-9 * total);
        for s in 0..DAY {
            // Each half keeps its own profile, the first half raised
            // against the second by 1.05 / 0.95.
            let ratio = (day[s] / before[s]) / (day[DAY - 1] / before[DAY - 1]);
            let expected = if s < 48 { 1.05 / 0.95 } else { 1.0 };
            assert!((ratio - expected).abs() < 1e-12, "slot {s}: {ratio}");
        }
        let mut day = before.clone();
        drift(&mut day, 0.0, &bias);
        assert_eq!(day, before);
    }

    /// Residuals of `days` (+ [`DRIFT_DAYS`]) replayed days, each forecast
    /// `10 + slot / 10` with the error `error(j, slot)`.
    fn residuals(days: usize, error: impl Fn(usize, usize) -> f64) -> Residuals {
        let stored = days + DRIFT_DAYS;
        let forecast: Vec<f64> = (0..stored * DAY)
            .map(|i| 10.0 + (i % DAY) as f64 / 10.0)
            .collect();
        let raw = (0..stored * DAY).map(|i| error(i / DAY, i % DAY)).collect();
        Residuals::with_drift(days, forecast, raw)
    }

    #[test]
    fn partial_window_weights_know_nothing_after_their_origin() {
        // 28-day windows at the origins of an 8-week history; the weights of
        // the origin at day 20 must not change when every day from 20 on
        // does, and must when a day before it does.
        let noisy = |day: usize| 1.0 + 0.05 * ((day * 7919) % 13) as f64 / 13.0;
        let series = |tripled_from: usize, bumped: Option<usize>| -> Vec<f64> {
            let mut kwh = weekly(56, 0.0, 0);
            for (i, v) in kwh.iter_mut().enumerate() {
                let day = i / DAY;
                *v *= noisy(day);
                if day >= tripled_from {
                    *v *= 3.0;
                }
                if Some(day) == bumped {
                    *v *= 1.3;
                }
            }
            kwh
        };
        let weights = |kwh: &[f64]| {
            let g = grid(kwh);
            let levels: Vec<Level> = LEVELS.into_iter().filter(|c| c.available(8)).collect();
            let origins: Vec<usize> = (8..=28).rev().collect();
            let v = origins.iter().position(|&e| e == 20).unwrap();
            let val = validate(&g, origins, 28, 28 * DAY, levels, vec![Shape::Yesterday]);
            val.partial_window_weights(&g, v + 1)
                .swap_remove(v)
                .expect("enough earlier days")
        };
        let base = weights(&series(usize::MAX, None));
        assert_eq!(base, weights(&series(20, None)));
        assert_ne!(base, weights(&series(usize::MAX, Some(15))));
    }

    #[test]
    fn a_bias_that_lasts_is_followed_and_one_that_flips_daily_is_not() {
        let wave = |s: usize| (2.0 * std::f64::consts::PI * s as f64 / DAY as f64).sin();
        // 5% of the forecast too low in the morning, too high in the
        // evening, every day: the bias read on any two weeks is it, and
        // bending by all of it would take off the whole error.
        let lasting = residuals(29, |_, s| 0.05 * wave(s) * (10.0 + s as f64 / 10.0));
        let bias = lasting.profile_bias(3).unwrap();
        for (s, b) in bias.iter().enumerate() {
            // ±2 buckets of averaging flatten a sine of one day by 0.5%.
            assert!((b - 0.05 * wave(s)).abs() < 0.05 * 0.006, "slot {s}: {b}");
        }
        assert_eq!(lasting.drift_gain, 1.0);
        // The same error with its sign flipped every day: two weeks of it
        // average out, and the gain stays 0.
        let flipping = residuals(29, |j, s| {
            let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
            sign * 0.05 * wave(s) * (10.0 + s as f64 / 10.0)
        });
        assert_eq!(flipping.drift_gain, 0.0);
        // Under half of two weeks observed: no bias to read.
        let gaps = residuals(29, |j, _| if j % 3 == 0 { 0.0 } else { f64::NAN });
        assert!(gaps.profile_bias(0).is_none());
    }
}
