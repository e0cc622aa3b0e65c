//! Forecasting a ship's energy use from its own 15-minute history.
//!
//! Pure and in-process: buckets in ([`History`]), a [`Forecast`] out. This
//! module knows nothing of HTTP, JSON or storage.
//!
//! TODO: module docs.

mod blend;
mod components;
mod history;
#[cfg(test)]
mod tests;

use std::fmt;

pub use history::{History, MIN_PARTIAL_COVERAGE_S};

/// 15-minute buckets per day.
pub const BUCKETS_PER_DAY: usize = 96;
/// The least history the model forecasts from: one day's worth of usable
/// buckets within [`LOOKBACK_DAYS`] before the origin.
pub const MIN_HISTORY_BUCKETS: usize = BUCKETS_PER_DAY;
/// The longest horizon: four weeks.
pub const MAX_HORIZON_BUCKETS: usize = 28 * BUCKETS_PER_DAY;
/// The model never reads more than this many days before its fit origin.
pub const LOOKBACK_DAYS: usize = blend::LOOKBACK_DAYS;
/// Nominal coverage of [`Forecast::interval`].
pub const INTERVAL_LEVEL: f64 = 0.8;

/// A forecast of the `horizon` buckets from `origin_bucket` on.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    /// The first forecast bucket (bucket `k` starts at `k * 900` s).
    pub origin_bucket: i64,
    /// Expected kWh per bucket, `values_kwh[i]` for bucket `origin_bucket + i`.
    pub values_kwh: Vec<f64>,
    /// Sum of `values_kwh`.
    pub total_kwh: f64,
    /// The 80% prediction interval of the total.
    pub interval: Interval,
    pub model: ModelInfo,
}

/// A prediction interval for a total.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// Nominal probability that the actual total lies in `[low_kwh, high_kwh]`.
    pub level: f64,
    pub low_kwh: f64,
    pub high_kwh: f64,
}

/// What the model was and what it saw.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// A short name of the method.
    pub method: &'static str,
    /// The history window the model read: buckets `[start, end)`. `end` is
    /// the origin unless a [`Fallback::StaleHistory`] moved it back.
    pub history_start_bucket: i64,
    pub history_end_bucket: i64,
    /// Usable buckets in that window (full, or partial scaled up).
    pub history_buckets_used: usize,
    /// Partial buckets among them, scaled up to a full bucket.
    pub partial_buckets_scaled: usize,
    /// Partial buckets too thin to use, treated as missing.
    pub partial_buckets_dropped: usize,
    /// Missing buckets in the window, filled from the same time of week.
    pub imputed_buckets: usize,
    /// Past origins the blend weights and the interval were learned from.
    pub validation_origins: usize,
    /// Weights of the component forecasts in the daily totals.
    pub level_weights: Vec<ComponentWeight>,
    /// Weights of the component forecasts in the within-day shape.
    pub shape_weights: Vec<ComponentWeight>,
    /// Simplifications forced by short or stale history.
    pub fallbacks: Vec<Fallback>,
}

/// One component forecast and its weight in a blend.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ComponentWeight {
    pub name: &'static str,
    pub weight: f64,
}

/// A simplification the model made because the history did not allow better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Under a week of history: no day-of-week structure, daily profile only.
    NoWeeklyStructure { history_days: usize },
    /// Not enough past origins to learn blend weights: equal weights.
    EqualWeights { validation_origins: usize },
    /// Too few past errors for an empirical interval: the interval comes
    /// from the spread of the daily totals instead.
    IntervalFromDailySpread { past_errors: usize },
    /// Weights and interval learned at a shorter horizon than asked for,
    /// because the history is shorter than the horizon allows.
    ValidatedOnShorterHorizon { days: usize },
    /// No data in the week before the origin: the fit origin was moved back
    /// by whole weeks to where the history ends, keeping the time of week.
    StaleHistory { weeks: u64 },
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fallback::NoWeeklyStructure { history_days } => write!(
                f,
                "only {history_days} day(s) of history: daily profile only, no day-of-week terms"
            ),
            Fallback::EqualWeights { validation_origins } => write!(
                f,
                "{validation_origins} past origin(s) to validate on: components weighted equally"
            ),
            Fallback::IntervalFromDailySpread { past_errors } => write!(
                f,
                "{past_errors} past error(s): interval from the spread of daily totals"
            ),
            Fallback::ValidatedOnShorterHorizon { days } => {
                write!(
                    f,
                    "history too short to validate the full horizon: validated on {days} day(s)"
                )
            }
            Fallback::StaleHistory { weeks } => {
                write!(
                    f,
                    "no data in the week before the origin: fitted {weeks} week(s) earlier"
                )
            }
        }
    }
}

/// Why no forecast could be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForecastError {
    /// Fewer than [`MIN_HISTORY_BUCKETS`] usable buckets before the origin.
    InsufficientHistory {
        needed_buckets: usize,
        covered_buckets: usize,
    },
    /// The horizon is 0 or above [`MAX_HORIZON_BUCKETS`].
    HorizonOutOfRange { requested: usize, max: usize },
}

impl fmt::Display for ForecastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ForecastError::InsufficientHistory {
                needed_buckets,
                covered_buckets,
            } => write!(
                f,
                "not enough history to forecast: need at least {needed_buckets} 15-minute buckets \
                 ({} hours) before the start, have {covered_buckets}",
                needed_buckets / 4
            ),
            ForecastError::HorizonOutOfRange { requested, max } => write!(
                f,
                "forecast horizon of {requested} 15-minute buckets is outside 1..={max}"
            ),
        }
    }
}

impl std::error::Error for ForecastError {}

/// Forecasts buckets `[origin_bucket, origin_bucket + horizon_buckets)` from
/// the usable buckets of `history` strictly before `origin_bucket`.
pub fn forecast(
    history: &History,
    origin_bucket: i64,
    horizon_buckets: usize,
) -> Result<Forecast, ForecastError> {
    blend::forecast(history, origin_bucket, horizon_buckets)
}
