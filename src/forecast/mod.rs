//! Forecasting a ship's energy use from its own 15-minute history.
//!
//! Pure and in-process: a [`History`] of buckets in, a [`Forecast`] out —
//! the expected kWh of every bucket of the horizon, their total, an 80%
//! interval for the total, and a [`ModelInfo`] saying what was fitted on
//! what. This module knows nothing of HTTP, JSON or storage; the HTTP layer
//! reads the buckets, calls [`forecast`], and maps [`ForecastError`] to a
//! status.
//!
//! # The model
//!
//! A forecast is a *level* (each day's total) times a *shape* (how that
//! total spreads over the day's 96 buckets), because the two are driven by
//! different things: the level by yesterday, the weekday and the trend; the
//! shape by stable habits of the time of day and week, best seen by
//! averaging many days. Each side is a blend of simple components:
//!
//! - levels: yesterday's total; the same weekday's total last week; the
//!   mean of the last 4 same weekdays; the mean of the last 7 days;
//!   yesterday and the last week's mean, each adjusted by weekday factors;
//!   least squares on trend + weekday over 8 weeks, alone and with its last
//!   residual carried forward (AR(1)); exponential smoothing of the level
//!   with weekday factors;
//! - shapes: yesterday; the same day last week; the mean of the last 4 same
//!   weekdays and an exponentially weighted mean of 8; the mean of the last
//!   7 and of the last 28 days; the mean of the last 4 same weekdays times
//!   the profile's recent drift (an exponentially weighted recent profile,
//!   half-life 3 days, over the flat 28-day one, smoothed over the hour);
//!   the curve of a recursive daily + weekly decomposition (level, daily
//!   and weekly profiles smoothed bucket by bucket in one pass, its state
//!   kept at every day boundary so past origins read it without a refit);
//! - intraday persistence, two deviations carried into the horizon with
//!   weights and decays learned jointly by least squares on the blend's
//!   day-ahead errors over the last 28 days (both 0 unless they cut the
//!   squared error by 1%): the *anchor* — where the first hour should
//!   start by continuity (the last hour before the origin plus the mean
//!   step across that hour on the same weekday over the last 12 weeks)
//!   less where this forecast starts it — with a fast decay; and the last
//!   six hours' deviation from the blend's day-ahead forecast of them, with
//!   a slow one (half-lives from 8 hours to 3.6 days). The level right
//!   before the origin carries into the next hours on regular demand, not
//!   on a single noisy house. The anchor is measured against the forecast
//!   being made, not a past forecast's residual: the new forecast's level
//!   has already absorbed part of yesterday's error (the residual-based
//!   hour earned vic 0.30 of weight, the anchor 0.6–0.7). The slow term
//!   never carries flat: the fit only sees day-ahead errors, and a 28-day
//!   window must not inherit one evening's deviation whole;
//! - the profile's drift, read in the blend's own errors: every shape is an
//!   average of past days, so a profile that shifts slowly through the
//!   weeks (winter evenings growing, mornings shrinking) is forecast late.
//!   The blend's relative day-ahead error at each time of day over the last
//!   [`DRIFT_DAYS`] days is that lag — the profile's error alone: each
//!   day's forecast scaled to the day's actual total first (the level's
//!   error is the level's), days missed by more than half (an outage, a
//!   spike) skipped, smoothed over ±2 buckets; each day's forecast is bent
//!   by a learned share of it ([`ModelInfo::profile_drift_gain`]) and
//!   scaled back to its total. The share is fitted on the 28 replayed
//!   days, each bent by the two weeks before it, and is 0 unless it cuts
//!   their squared error by 1% — on a single house the two weeks are noise
//!   and it stays 0.
//!
//! Every component reads the history with its *unusual days* set aside
//! (see `history::unusual_days`, reported in
//! [`ModelInfo::unusual_days`]): a day whose total was more than three
//! robust standard deviations of the usual days' misses (and 5%) off what
//! the week before it and its weekday predicted — a holiday on a weekday,
//! an outage, a spike — in a run of at most three such days, once the day
//! after it is back to usual, is read as missing and filled from nearby
//! days like a gap (a day off the same way as its weekday in each of the
//! two weeks before it is a new weekly habit, and is kept). Otherwise one
//! holiday Monday lowers every Monday's level and profile for a month, and
//! a spike of a million kWh is forecast again on its weekday for four
//! weeks. The weights below are learned on the usual days only (no
//! component could have forecast the others); the intervals on every day,
//! since the unusual ones happen to forecasts too. The last day before the
//! origin is never set aside: only the day after it tells a one-off from a
//! new level, and until then the model takes it at its word.
//!
//! No single component is best everywhere — on the backtest series of
//! `../shared/data` persistence wins on state-wide demand, trend + weekday
//! on an aggregate of households, long averages on a single noisy house —
//! so the model learns the blend per ship. It replays itself at the 28 past
//! daily origins whose horizon has already happened and takes the level
//! weights that minimise the squared relative error of the daily totals over
//! the simplex (stacking: complementary components share the weight; a
//! light ridge shrinks them towards equal, as 28 days are few for nine
//! weights), and shape weights proportional to the inverse square of each
//! shape's absolute error (shapes are all averages of past days and too
//! correlated for stacking to find anything but noise).
//!
//! The interval of the total is split-conformal: the relative errors of
//! the blend's own total at 28 recent past origins — each with the weights
//! it would have learned *then*, so the errors are honest, and with the
//! intraday persistence — ranked, and the ⌊(n+1)·10%⌋-th and
//! ⌈(n+1)·90%⌉-th taken. That covers at least 80% if the next error is
//! exchangeable with the past ones. For windows longer than a day the past
//! windows overlap and share their bias, so the ranks understate the spread
//! (7-day totals were covered 60% of the time in the backtest); there the
//! interval also spans ±1.28 root-mean-square past errors, bias included.
//!
//! A window of up to a day is then scaled 40% of the way towards where the
//! replayed day-ahead forecasts of the last 28 days would have had the
//! least absolute errors ([`ModelInfo::total_scale`], at most ±20%): the
//! geometric mean of the scale with the least absolute percentage error of
//! their daily totals and the one with the least absolute error of their
//! buckets. The stacking minimises squared relative errors, which sets a
//! house with occasional heavy days and hours above most of them, while
//! the errors a user reads (and the backtest scores) are absolute. The
//! interval's past errors are re-read against the scaled total, so the
//! interval of the actual total stays where it was. Longer windows are not
//! scaled: only day-ahead forecasts are replayed.
//!
//! Each bucket has its own 80% interval (`low_kwh`, `high_kwh`): the
//! conformal ranks of the blend's day-ahead bucket errors over the last 28
//! days in the bucket's hour of the day — after the carried deviation for
//! the first day, without it for later days, whose bands widen by how much
//! the blend's daily errors at that lead exceed the first day's.
//!
//! # Invariants
//!
//! - **Only the past is read**: nothing at or after the origin, and nothing
//!   more than [`LOOKBACK_DAYS`] before it (so the cost does not grow with
//!   the history: about 1 ms day-ahead, 2–3 ms for four weeks).
//! - **Everything learned is learned before the origin**: blend weights,
//!   smoothing constants and the interval come from past origins whose whole
//!   horizon lies before the forecast origin. A backtest at any origin is
//!   therefore what the model would have said then. The hyperparameters
//!   (window lengths, half-lives, the smoothing grid) are fixed constants,
//!   the same for every ship.
//! - **Days are counted back from the origin, not from midnight**: day
//!   `-1` is the 96 buckets just before the origin. Every seasonal lag is a
//!   whole number of rows and no time zone is needed; a forecast starting at
//!   a ship's local midnight forecasts its local days.
//! - **Gaps are filled but never believed**: missing buckets are imputed
//!   from the same slot on the nearest same weekdays (averaging both sides,
//!   so a trend does not bias them) so components need no gap logic, but
//!   only observed buckets, and days and horizons at least 90% observed,
//!   are ever scored. Partial buckets of at least [`MIN_PARTIAL_COVERAGE_S`]
//!   are scaled up to a full bucket; thinner ones count as missing.
//! - **Outputs are sane**: `values_kwh.len() == horizon`, every value finite
//!   and ≥ 0, `total_kwh` their sum, `low ≤ total ≤ high`, `low ≥ 0`, and
//!   per bucket `0 ≤ low_kwh[i] ≤ values_kwh[i] ≤ high_kwh[i]`; the
//!   same input always gives the same output.
//!
//! # Short or odd history
//!
//! - under [`MIN_HISTORY_BUCKETS`] usable buckets: [`ForecastError::InsufficientHistory`],
//!   saying how many are needed and how many there are;
//! - under a week: only weekday-blind components (a daily profile);
//! - under three weeks: no regressions or smoothing; components join as the
//!   history covers what they need, and are blended only once they can be
//!   scored at 3 past origins — or, once the history gives three weeks of
//!   past origins, at 14, so that a component needing four weeks does not
//!   cut a five-week history's validation to a week (with 8–12 weeks every
//!   component is weighed on 28 origins);
//! - a window too long for past origins with both its whole horizon after
//!   them and their own weights before them (28 days on 8–12 weeks): the
//!   interval from errors at past origins whose weights were learned on the
//!   days of earlier windows that had ended by each (partial windows, but
//!   out of sample); with fewer of those still (about six weeks), from
//!   today's weights' errors at the validation origins — in-sample for the
//!   weights, so optimistic, but the blend's own;
//! - too few past origins for weights or interval: equal weights, and an
//!   interval of ±1.28 coefficients of variation of the daily totals (at
//!   least ±32%);
//! - under four weeks: the profile's drift is not followed (it is read on
//!   at least half of [`DRIFT_DAYS`] of the blend's own past errors before
//!   each of the days its gain is fitted on);
//! - no data in the week before the origin: the model is fitted whole weeks
//!   earlier, where the data ends, keeping the time of week.
//!
//! Every such simplification is listed in [`ModelInfo::fallbacks`].

mod blend;
mod components;
mod history;
#[cfg(test)]
mod tests;

use std::fmt;

pub use history::{History, MIN_PARTIAL_COVERAGE_S};

/// 15-minute buckets per day (the model's calendar, as an index count).
pub const BUCKETS_PER_DAY: usize = crate::model::BUCKETS_PER_DAY as usize;
/// The least history the model forecasts from: one day's worth of usable
/// buckets within [`LOOKBACK_DAYS`] before the origin.
pub const MIN_HISTORY_BUCKETS: usize = BUCKETS_PER_DAY;
/// The longest horizon: four weeks.
pub const MAX_HORIZON_BUCKETS: usize = 28 * BUCKETS_PER_DAY;
/// The model never reads more than this many days before its fit origin.
pub const LOOKBACK_DAYS: usize = blend::LOOKBACK_DAYS;
/// Nominal coverage of [`Forecast::interval`].
pub const INTERVAL_LEVEL: f64 = 0.8;

/// A forecast of the `horizon` buckets from `origin_bucket` on. Every value
/// is finite and ≥ 0, and `interval.low_kwh ≤ total_kwh ≤ interval.high_kwh`.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    /// The first forecast bucket (bucket `k` starts at `k * 900` s).
    pub origin_bucket: i64,
    /// Expected kWh per bucket, `values_kwh[i]` for bucket `origin_bucket + i`.
    pub values_kwh: Vec<f64>,
    /// The 80% prediction interval of each bucket: `low_kwh[i] ≤
    /// values_kwh[i] ≤ high_kwh[i]`, `low_kwh[i] ≥ 0`.
    pub low_kwh: Vec<f64>,
    pub high_kwh: Vec<f64>,
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
    /// The first bucket of each day in the window the components read as
    /// missing (imputed like a gap) because it was far off what the days
    /// before it predicted — a holiday, an outage, a spike — and the day
    /// after it was back to usual. The blend's weights are learned without
    /// them; the interval's past errors still count what they held. See
    /// `history::unusual_days`.
    pub unusual_days: Vec<i64>,
    /// Past origins the blend weights were learned from.
    pub validation_origins: usize,
    /// Past errors of the blend the interval was built from.
    pub interval_errors: usize,
    /// Weights of the component forecasts in the daily totals.
    pub level_weights: Vec<ComponentWeight>,
    /// Weights of the component forecasts in the within-day shape.
    pub shape_weights: Vec<ComponentWeight>,
    /// The anchor and the last hours' deviation carried into the horizon
    /// (weights 0 where they did not earn their place).
    pub intraday_persistence: IntradayPersistence,
    /// How far the profile is bent towards its own recent bias (0 to 1):
    /// each bucket of the day times `1 + profile_drift_gain × b`, `b` the
    /// blend's relative day-ahead profile error (each day's forecast scaled
    /// to the day's actual total) in that time of day over the last
    /// [`DRIFT_DAYS`] days less its daily mean, the day then scaled back to
    /// its total. Learned on the blend's own errors of the last 28 days; 0
    /// unless it cuts their squared error by 1%.
    pub profile_drift_gain: f64,
    /// What a window of up to a day was multiplied by (1 for longer ones,
    /// or with under 9 replayed days): 40% of the way from 1 to the factor
    /// at which the blend's day-ahead forecasts of the last 28 days would
    /// have had the least absolute errors — the geometric mean of the one
    /// for their daily totals' percentage errors (the median of actual /
    /// forecast, each day weighted by forecast / actual) and the one for
    /// their buckets' errors in kWh (the median of actual / forecast, each
    /// bucket weighted by its forecast) — at most 20% either way. Below 1
    /// where the actual sometimes runs far above the usual (a house's heavy
    /// days and hours) and a forecast fitted to squared errors sits above
    /// where most of them fall.
    pub total_scale: f64,
    /// Simplifications forced by short or stale history.
    pub fallbacks: Vec<Fallback>,
}

/// One component forecast and its weight in a blend.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ComponentWeight {
    pub name: &'static str,
    pub weight: f64,
}

/// Hours before the origin whose mean deviation the slow term of
/// [`IntradayPersistence`] carries.
pub const LONG_CARRY_HOURS: usize = 6;

/// Days of the blend's own errors [`ModelInfo::profile_drift_gain`] reads.
pub const DRIFT_DAYS: usize = 14;

/// Intraday persistence: bucket `i` of the horizon (0 = the first) gains
/// `weight × decay_per_bucket^i × a + long_weight × long_decay_per_bucket^i
/// × D`. `a`, the anchor: the mean of the last hour's observed buckets
/// before the origin, plus the mean step from that hour to the next on the
/// same weekday over the last 12 weeks, less the mean of the forecast's own
/// first hour — where the next hours start. `D`: the mean deviation of the
/// last [`LONG_CARRY_HOURS`] from the blend's day-ahead forecast of them —
/// how far the day's level has moved.
/// All four are learned together by least squares on the blend's own
/// day-ahead errors over the last 28 days (each weight in [0, 1], a decay
/// 0 where its weight is); both weights are 0 unless that cuts the squared
/// error by at least 1%.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IntradayPersistence {
    pub weight: f64,
    pub decay_per_bucket: f64,
    pub long_weight: f64,
    pub long_decay_per_bucket: f64,
}

impl IntradayPersistence {
    /// What bucket `i` of the horizon gains from the deviations `(anchor, long)`.
    pub(crate) fn carried(&self, (anchor, long): (f64, f64), i: usize) -> f64 {
        self.weight * anchor * self.decay_per_bucket.powi(i as i32)
            + self.long_weight * long * self.long_decay_per_bucket.powi(i as i32)
    }

    /// What the first `len` buckets of the horizon gain in all: the
    /// geometric sums in closed form, as the honest errors ask it at every
    /// past origin for up to 2,688 buckets.
    pub(crate) fn carried_sum(&self, (anchor, long): (f64, f64), len: usize) -> f64 {
        let sum = |d: f64| {
            if d < 1.0 {
                (1.0 - d.powi(len as i32)) / (1.0 - d)
            } else {
                len as f64
            }
        };
        self.weight * anchor * sum(self.decay_per_bucket)
            + self.long_weight * long * sum(self.long_decay_per_bucket)
    }
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
    /// Too few past origins have both the whole horizon after them and
    /// weights of their own before them (a long window on a short history):
    /// the interval comes from errors at past origins with weights learned
    /// on what had happened by each — the days of earlier windows that had
    /// ended by then.
    IntervalFromPartialWindows { past_errors: usize },
    /// Too few of those either: the interval comes from today's weights'
    /// errors at the validation origins, which those weights were learned
    /// on.
    IntervalFromFittedErrors { past_errors: usize },
    /// Weights and interval learned at a shorter horizon than asked for,
    /// because the history is shorter than the horizon allows.
    ValidatedOnShorterHorizon { days: usize },
    /// Components that need more history than the validation origins give
    /// were left out, so that the rest are weighed on at least two weeks of
    /// origins (they join as the history grows).
    ComponentsAwaitingHistory { components: usize },
    /// Too few past bucket errors for per-bucket intervals: each bucket's
    /// interval is the total's, scaled to the bucket.
    BucketIntervalsFromTotal,
    /// Too few days of the blend's own past errors to read its profile's
    /// drift from (at least half of [`DRIFT_DAYS`] before each day its
    /// gain is fitted on: about four weeks of history): the profile is not
    /// bent.
    NoProfileDrift { replayed_days: usize },
    /// No data in the week before the origin: the fit origin was moved back
    /// by whole weeks to where the history ends, keeping the time of week,
    /// and no intraday persistence is carried (the hours before the data
    /// ended are weeks before the window).
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
            Fallback::IntervalFromPartialWindows { past_errors } => write!(
                f,
                "too little history for past windows this long with weights of their own: \
                 interval from errors at {past_errors} past origin(s), each with weights \
                 learned on the days of earlier windows that had ended by then"
            ),
            Fallback::IntervalFromFittedErrors { past_errors } => write!(
                f,
                "too little history for out-of-sample errors over this window: interval \
                 from today's weights' errors at {past_errors} past origin(s), the origins \
                 they were learned on: likely too narrow"
            ),
            Fallback::ValidatedOnShorterHorizon { days } => {
                write!(
                    f,
                    "history too short to validate the full horizon: validated on {days} day(s)"
                )
            }
            Fallback::NoProfileDrift { replayed_days } => write!(
                f,
                "{replayed_days} day(s) of the model's own past errors: too few to follow \
                 the profile's drift"
            ),
            Fallback::ComponentsAwaitingHistory { components } => write!(
                f,
                "{components} component(s) left out until the history lets them be validated \
                 on enough past origins"
            ),
            Fallback::BucketIntervalsFromTotal => write!(
                f,
                "too few past bucket errors: each bucket's interval is the total's, scaled"
            ),
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
                "not enough history to forecast: need at least {needed_buckets} usable \
                 15-minute buckets ({} hours) in the {LOOKBACK_DAYS} days before the start, \
                 have {covered_buckets}",
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
/// the usable buckets of `history` strictly before `origin_bucket` —
/// for an origin in the past, what the model would have said then.
///
/// The model reads at most [`LOOKBACK_DAYS`] days before the origin, so that
/// window is all `history` needs to hold; for a ship silent in the week
/// before the origin it reads the same span before the ship's last bucket
/// instead (see [`Fallback::StaleHistory`]), so pass that too (passing all
/// the ship's history before the origin is always right, a year is
/// 35,040 buckets).
///
/// Horizons run from 1 bucket to [`MAX_HORIZON_BUCKETS`]. Takes about 1 ms
/// day-ahead and 2–3 ms four weeks ahead, whatever the history's length.
pub fn forecast(
    history: &History,
    origin_bucket: i64,
    horizon_buckets: usize,
) -> Result<Forecast, ForecastError> {
    blend::forecast(history, origin_bucket, horizon_buckets)
}
