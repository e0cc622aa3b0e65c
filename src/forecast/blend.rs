//! The blend: component forecasts weighted by their own recent errors.

use super::components::{Component, ALL};
use super::history::{Grid, History};
use super::{
    ComponentWeight, Fallback, Forecast, ForecastError, Interval, ModelInfo, BUCKETS_PER_DAY,
    INTERVAL_LEVEL, LOOKBACK_DAYS, MAX_HORIZON_BUCKETS, MIN_HISTORY_BUCKETS,
};

const DAY: usize = BUCKETS_PER_DAY;
const WEEK: i64 = 7 * DAY as i64;

/// Past origins (one a day, the most recent first) the blend learns from.
const VALIDATION_ORIGINS: usize = 28;
/// A component is only blended in if it can be scored on at least this many
/// past origins (or on all there are, if fewer).
const MIN_SCORED_ORIGINS: usize = 7;
/// Below this many past origins, weights are equal.
const MIN_ORIGINS_FOR_WEIGHTS: usize = 3;
/// Below this many past errors, the interval comes from the daily spread.
const MIN_ERRORS_FOR_INTERVAL: usize = 5;
/// Weights are proportional to loss^-WEIGHT_POWER.
const WEIGHT_POWER: f64 = 2.0;

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
    // would be forecasting imputation. The same time of week, whole weeks
    // earlier where the data ends, is the best the history can say.
    let gap = origin - (last + 1);
    let stale_weeks = gap / WEEK;
    let end = origin - stale_weeks * WEEK;
    if stale_weeks > 0 {
        fallbacks.push(Fallback::StaleHistory { weeks: stale_weeks as usize });
    }
    let lookback_start = end - (LOOKBACK_DAYS * DAY) as i64;
    let first = history.first_covered_between(lookback_start, end).unwrap_or(end);
    let n_days = ((end - first) as usize).div_ceil(DAY);
    let start = end - (n_days * DAY) as i64;
    let covered = history.covered_between(start, end);
    if covered < MIN_HISTORY_BUCKETS {
        return Err(insufficient(covered));
    }
    let grid = Grid::build(history, end, n_days);
    if n_days < 7 {
        fallbacks.push(Fallback::NoWeeklyStructure { history_days: n_days });
    }

    let n_leads = horizon.div_ceil(DAY);
    let mut enabled: Vec<Component> =
        ALL.iter().copied().filter(|c| c.available(n_days)).collect();

    // Validation: the same horizon, from past origins whose whole horizon
    // is history. If the history is too short for that, a shorter horizon.
    let mut val_leads = n_leads;
    if n_days < n_leads + 1 + MIN_SCORED_ORIGINS {
        val_leads = (n_days.saturating_sub(1 + MIN_SCORED_ORIGINS)).clamp(1, n_leads);
        if val_leads < n_leads {
            fallbacks.push(Fallback::ValidatedOnShorterHorizon { days: val_leads });
        }
    }
    let val_horizon = horizon.min(val_leads * DAY);
    let origins: Vec<usize> = (0..VALIDATION_ORIGINS)
        .map_while(|v| (n_days + 1).checked_sub(val_leads + 1 + v).filter(|&e| e >= 1))
        .collect();
    let scored = |c: Component| origins.iter().filter(|&&e| c.available(e)).count();
    let need = MIN_SCORED_ORIGINS.min(origins.len());
    if origins.len() >= MIN_ORIGINS_FOR_WEIGHTS {
        enabled.retain(|&c| scored(c) >= need);
    }
    let origins: Vec<usize> =
        origins.into_iter().filter(|&e| enabled.iter().all(|c| c.available(e))).collect();

    let nc = enabled.len();
    let mut curves = vec![0.0; val_leads.max(n_leads) * DAY];
    let mut totals = vec![0.0; val_leads.max(n_leads)];
    // Per component: sum of relative total errors, and of absolute shape
    // errors (shape × actual total against the actual buckets).
    let mut level_loss = vec![0.0; nc];
    let mut shape_loss = vec![0.0; nc];
    let mut level_count = 0usize;
    // Per origin and component: the daily totals, and the share of the
    // partial last day the horizon covers, to rebuild blended totals.
    let mut val_totals = vec![0.0; origins.len() * nc * val_leads];
    let mut val_share = vec![1.0; origins.len() * nc];
    let tail = val_horizon - (val_leads - 1) * DAY;
    for (vi, &e) in origins.iter().enumerate() {
        for (ci, &c) in enabled.iter().enumerate() {
            c.forecast(&grid, e, val_leads, &mut curves, &mut totals);
            val_totals[(vi * nc + ci) * val_leads..][..val_leads]
                .copy_from_slice(&totals[..val_leads]);
            for lead in 0..val_leads {
                let d = e + lead;
                let actual = grid.totals[d];
                if c.has_curve() {
                    let curve = &curves[lead * DAY..(lead + 1) * DAY];
                    let sum: f64 = curve.iter().sum();
                    let obs = grid.day_observed(d);
                    let truth = grid.day(d);
                    let mut err = 0.0;
                    for s in 0..DAY {
                        if obs[s] {
                            let shaped = if sum > 0.0 {
                                curve[s] / sum * actual
                            } else {
                                actual / DAY as f64
                            };
                            err += (shaped - truth[s]).abs();
                        }
                    }
                    shape_loss[ci] += err;
                    if lead == val_leads - 1 && tail < DAY {
                        val_share[vi * nc + ci] = if sum > 0.0 {
                            curve[..tail].iter().sum::<f64>() / sum
                        } else {
                            tail as f64 / DAY as f64
                        };
                    }
                }
                if grid.full_day[d] && actual > 0.0 {
                    level_loss[ci] += ((totals[lead] - actual) / actual).abs();
                    if ci == 0 {
                        level_count += 1;
                    }
                }
            }
        }
    }

    let curve_idx: Vec<usize> = (0..nc).filter(|&i| enabled[i].has_curve()).collect();
    let equal = origins.len() < MIN_ORIGINS_FOR_WEIGHTS;
    if equal {
        fallbacks.push(Fallback::EqualWeights { validation_origins: origins.len() });
    }
    let level_w = weights(&level_loss, &(0..nc).collect::<Vec<_>>(), equal || level_count == 0);
    let shape_w = weights(&shape_loss, &curve_idx, equal);

    // The blended total over the (validation) horizon at each past origin,
    // against what happened: the interval is built from these errors.
    let mut rel_errors = Vec::with_capacity(origins.len());
    for (vi, &e) in origins.iter().enumerate() {
        let window_start = e * DAY;
        let window = window_start..window_start + val_horizon;
        let observed = grid.observed[window.clone()].iter().filter(|&&o| o).count();
        if observed * 10 < val_horizon * 9 {
            continue;
        }
        let actual: f64 = grid.vals[window].iter().sum();
        let mut predicted = 0.0;
        let mut share = 0.0;
        for &ci in &curve_idx {
            share += shape_w[ci] * val_share[vi * nc + ci];
        }
        for lead in 0..val_leads {
            let total: f64 = (0..nc).map(|ci| level_w[ci] * val_totals[(vi * nc + ci) * val_leads + lead]).sum();
            predicted += if lead == val_leads - 1 { total * share } else { total };
        }
        if predicted > 0.0 {
            rel_errors.push(actual / predicted - 1.0);
        }
    }

    // The forecast itself.
    let mut blended_totals = vec![0.0; n_leads];
    let mut shapes = vec![0.0; n_leads * DAY];
    for (ci, &c) in enabled.iter().enumerate() {
        c.forecast(&grid, n_days, n_leads, &mut curves, &mut totals);
        for lead in 0..n_leads {
            blended_totals[lead] += level_w[ci] * totals[lead];
            if c.has_curve() && shape_w[ci] > 0.0 {
                let curve = &curves[lead * DAY..(lead + 1) * DAY];
                let sum: f64 = curve.iter().sum();
                for (o, &v) in shapes[lead * DAY..(lead + 1) * DAY].iter_mut().zip(curve) {
                    *o += shape_w[ci] * if sum > 0.0 { v / sum } else { 1.0 / DAY as f64 };
                }
            }
        }
    }
    let mut values = Vec::with_capacity(horizon);
    for i in 0..horizon {
        values.push((shapes[i] * blended_totals[i / DAY]).max(0.0));
    }
    let total: f64 = values.iter().sum();

    let interval = if rel_errors.len() >= MIN_ERRORS_FOR_INTERVAL {
        empirical_interval(total, &mut rel_errors)
    } else {
        fallbacks.push(Fallback::IntervalFromDailySpread { validation_origins: rel_errors.len() });
        spread_interval(total, &grid, horizon)
    };

    let (partial_buckets_scaled, partial_buckets_dropped) = history.partial_counts(start, end);
    let named = |w: &[f64], only_curves: bool| -> Vec<ComponentWeight> {
        enabled
            .iter()
            .zip(w)
            .filter(|(c, _)| !only_curves || c.has_curve())
            .map(|(c, &weight)| ComponentWeight { name: c.name(), weight })
            .collect()
    };
    Ok(Forecast {
        origin_bucket: origin,
        values_kwh: values,
        total_kwh: total,
        interval,
        model: ModelInfo {
            method: "blend of seasonal-profile and level-regression forecasts, \
                     weighted by their errors at past origins",
            history_start_bucket: start,
            history_end_bucket: end,
            history_buckets_used: covered,
            partial_buckets_scaled,
            partial_buckets_dropped,
            imputed_buckets: n_days * DAY - covered,
            validation_origins: origins.len(),
            level_weights: named(&level_w, false),
            shape_weights: named(&shape_w, true),
            fallbacks,
        },
    })
}

/// Weights over `idx` proportional to loss^-p (equal if asked or degenerate);
/// zero elsewhere.
fn weights(loss: &[f64], idx: &[usize], equal: bool) -> Vec<f64> {
    let mut w = vec![0.0; loss.len()];
    if idx.is_empty() {
        return w;
    }
    let min = idx.iter().map(|&i| loss[i]).fold(f64::INFINITY, f64::min);
    if equal || !(min > 0.0) || !min.is_finite() {
        for &i in idx {
            w[i] = 1.0 / idx.len() as f64;
        }
        return w;
    }
    let mut sum = 0.0;
    for &i in idx {
        // Relative to the best, so the powers cannot underflow.
        w[i] = (min / loss[i]).powf(WEIGHT_POWER);
        sum += w[i];
    }
    w.iter_mut().for_each(|v| *v /= sum);
    w
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn empirical_interval(total: f64, rel_errors: &mut [f64]) -> Interval {
    rel_errors.sort_by(f64::total_cmp);
    let tail = (1.0 - INTERVAL_LEVEL) / 2.0;
    let lo = quantile(rel_errors, tail);
    let hi = quantile(rel_errors, 1.0 - tail);
    Interval {
        level: INTERVAL_LEVEL,
        low_kwh: (total * (1.0 + lo.min(0.0))).max(0.0),
        high_kwh: total * (1.0 + hi.max(0.0)),
    }
}

fn spread_interval(total: f64, grid: &Grid, _horizon: usize) -> Interval {
    let n = grid.n_days as f64;
    let mean = grid.totals.iter().sum::<f64>() / n;
    let var = grid.totals.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / n;
    // With a day or two of history the spread says little; a floor of 25%
    // keeps the interval honest about that.
    let cv = if mean > 0.0 { (var.sqrt() / mean).max(0.25) } else { 0.25 };
    let z = 1.2816 * cv;
    Interval {
        level: INTERVAL_LEVEL,
        low_kwh: (total * (1.0 - z)).max(0.0),
        high_kwh: total * (1.0 + z),
    }
}
