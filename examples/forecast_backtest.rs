//! Rolling-origin backtest of `powerd::forecast` on the real load series in
//! `../shared/data/` (see its README for the sources and the protocol).
//!
//! Per series: the test period is the last 28 days; at each of its 28 local
//! midnights the model forecasts the next 96 buckets from every bucket before
//! the midnight. Reported, averaged over the origins: MAPE of the daily total,
//! MASE of the 96 buckets (scaled by the in-sample mean |y_t - y_(t-672)| over
//! all history before the origin) and the coverage of the 80% interval of the
//! daily total; the same for the README's three seasonal baselines, and the
//! model's fit + forecast time.
//!
//! Besides the data README's test period (the last 28 days with all history)
//! it runs the same 28 days with the series truncated to its last 12 weeks,
//! and four more 28-day periods through the year, each also truncated to
//! its last 12 weeks (see [`protocol::periods`]); the references include
//! the README's OLS (trend + time of day + weekday over 8 weeks), computed
//! for every period with the same code, and its MSTL + AutoETS, computed
//! for every period by `benches/mstl_reference.py` (statsforecast) and
//! stored. The summary gives every series x period against the best of the
//! five, and the coverage of the 80% interval of 1-, 7- and 28-day totals
//! pooled over all of them.
//!
//! `cargo run --release --example forecast_backtest` (add `-- --verbose` for
//! the per-origin blend weights; set `POWERD_BACKTEST_DATA` to run it on
//! other series under the same file names, e.g. the synthetic ones of
//! `benches/synthetic_regular.py`).
use std::path::PathBuf;
use std::time::{Duration, Instant};

use powerd::forecast::{
    forecast, ComponentWeight, Forecast, ForecastError, History, MAX_HORIZON_BUCKETS,
};
use powerd::model::BUCKET_SECONDS;
use powerd::wire::parse_timestamp;

// The protocol and its scoring, shared with the HTTP bench.
#[path = "../benches/common/backtest.rs"]
#[allow(dead_code)]
mod protocol;

use protocol::{missing_data_message, periods, Scores, SeriesInfo, DAY, SERIES};

struct Series {
    first_bucket: i64,
    kwh: Vec<f64>,
}

fn main() {
    let verbose = std::env::args().any(|a| a == "--verbose");
    let data = protocol::data_dir();
    if !data.join("vic_elec2014.csv").is_file() {
        println!("{}", missing_data_message("forecast_backtest", &data));
        return;
    }
    let mut rows = Vec::new();
    let mut coverage = Coverage::default();
    for info in &SERIES {
        let series = load(&data.join(format!("{}.csv", info.name)), info.name);
        rows.extend(run(&series, info, verbose, &mut coverage));
    }
    print_summary(&rows, &coverage);
}

fn load(path: &PathBuf, name: &str) -> Series {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let mut fields = line.split(',');
        let (Some(t), Some(v), Some("kW")) = (fields.next(), fields.next(), fields.next()) else {
            panic!("{}:{}: expected datetime,value,kW", path.display(), i + 1);
        };
        let t = parse_timestamp(t).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
        let v: f64 = v
            .parse()
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
        rows.push((t, v));
    }
    // The native step (15 or 30 minutes): every reading is the mean power
    // over [t, t + step), so each 15-minute bucket it covers gets kW × 0.25.
    let step = rows
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .min()
        .expect("two readings");
    assert_eq!(
        step % BUCKET_SECONDS,
        0,
        "{name}: step {step}s is not whole buckets"
    );
    let first_bucket = rows[0].0 / BUCKET_SECONDS;
    let end_bucket = (rows.last().expect("rows").0 + step) / BUCKET_SECONDS;
    let mut kwh = vec![f64::NAN; (end_bucket - first_bucket) as usize];
    for &(t, v) in &rows {
        for b in t / BUCKET_SECONDS..(t + step) / BUCKET_SECONDS {
            kwh[(b - first_bucket) as usize] = v * 0.25;
        }
    }
    Series { first_bucket, kwh }
}

/// Interval coverage of window totals, pooled over series and periods.
#[derive(Default)]
struct Coverage {
    /// (covered, windows) for 1-day, 7-day and 28-day totals.
    by_days: [(usize, usize); 3],
    /// The same for the per-bucket intervals of those windows.
    buckets: [(usize, usize); 3],
    /// (covered, windows) for 7-day and 28-day totals from *every* origin
    /// whose window the series holds: overlapping windows, so not
    /// independent, but a steadier figure than four and one per period.
    overlapping: [(usize, usize); 2],
}

impl Coverage {
    fn add(&mut self, k: usize, actual: &[f64], f: &Forecast) {
        let b = &mut self.buckets[k];
        for (i, a) in actual.iter().enumerate() {
            b.1 += 1;
            if (f.low_kwh[i]..=f.high_kwh[i]).contains(a) {
                b.0 += 1;
            }
        }
        count(&mut self.by_days[k], actual, f);
    }

    fn add_overlapping(&mut self, k: usize, actual: &[f64], f: &Forecast) {
        count(&mut self.overlapping[k - 1], actual, f);
    }
}

/// Counts one window in `c`: (covered, windows) of its total's interval.
fn count(c: &mut (usize, usize), actual: &[f64], f: &Forecast) {
    let actual: f64 = actual.iter().sum();
    c.1 += 1;
    if (f.interval.low_kwh..=f.interval.high_kwh).contains(&actual) {
        c.0 += 1;
    }
}

/// Each component's mean weight over the day-ahead forecasts of a series.
#[derive(Default)]
struct Shares {
    level: Vec<(&'static str, f64)>,
    shape: Vec<(&'static str, f64)>,
    persistence: f64,
    decay: f64,
    long_persistence: f64,
    long_decay: f64,
    drift_gain: f64,
    drifted: usize,
    /// Sum, least and greatest of `total_scale`.
    scale: (f64, f64, f64),
    n: usize,
}

impl Shares {
    fn add(&mut self, f: &Forecast) {
        let add = |acc: &mut Vec<(&'static str, f64)>, w: &[ComponentWeight]| {
            for c in w {
                match acc.iter_mut().find(|(name, _)| *name == c.name) {
                    Some(slot) => slot.1 += c.weight,
                    None => acc.push((c.name, c.weight)),
                }
            }
        };
        add(&mut self.level, &f.model.level_weights);
        add(&mut self.shape, &f.model.shape_weights);
        let p = f.model.intraday_persistence;
        self.persistence += p.weight;
        self.decay += p.weight * p.decay_per_bucket;
        self.long_persistence += p.long_weight;
        self.long_decay += p.long_weight * p.long_decay_per_bucket;
        self.drift_gain += f.model.profile_drift_gain;
        self.drifted += usize::from(f.model.profile_drift_gain > 0.0);
        let k = f.model.total_scale;
        self.scale = if self.n == 0 {
            (k, k, k)
        } else {
            (self.scale.0 + k, self.scale.1.min(k), self.scale.2.max(k))
        };
        self.n += 1;
    }

    fn print(&self, series: &str) {
        let n = self.n.max(1) as f64;
        let list = |acc: &[(&str, f64)]| {
            acc.iter()
                .map(|(name, w)| format!("{name} {:.2}", w / n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!();
        println!(
            "{series}: mean weights over its {} day-ahead forecasts",
            self.n
        );
        println!("  level: {}", list(&self.level));
        println!("  shape: {}", list(&self.shape));
        println!(
            "  intraday persistence (decays weighted by their weights): anchor weight {:.2}, \
             decay per bucket {:.3}; last {} hours weight {:.2}, decay per bucket {:.4}",
            self.persistence / n,
            self.decay / self.persistence.max(f64::MIN_POSITIVE),
            powerd::forecast::LONG_CARRY_HOURS,
            self.long_persistence / n,
            self.long_decay / self.long_persistence.max(f64::MIN_POSITIVE)
        );
        println!(
            "  profile drift gain {:.2} (above 0 in {} of {})",
            self.drift_gain / n,
            self.drifted,
            self.n
        );
        println!(
            "  total scale {:.3} (from {:.3} to {:.3})",
            self.scale.0 / n,
            self.scale.1,
            self.scale.2
        );
    }
}

/// One line of the summary: series, period, the model's and the best
/// reference's MAPE and MASE, and the 1-day coverage.
struct Row {
    series: &'static str,
    period: String,
    model: (f64, f64, f64),
    best: (f64, f64),
}

fn run(series: &Series, info: &SeriesInfo, verbose: bool, coverage: &mut Coverage) -> Vec<Row> {
    let kwh = &series.kwh;
    let n = kwh.len();
    let missing = kwh.iter().filter(|v| v.is_nan()).count();
    assert_eq!(
        missing, 0,
        "{}: the baselines assume a complete series",
        info.name
    );
    let mut rows = Vec::new();
    let mut times = Vec::new();
    let mut shares = Shares::default();
    for (pi, period) in periods(series.first_bucket, n, info.utc_offset_h)
        .into_iter()
        .enumerate()
    {
        let h0 = period.history_start;
        let first = series.first_bucket + h0 as i64;
        let mut scores = Scores::default();
        for (k, &o) in period.origins.iter().enumerate() {
            // Only the past goes in, so nothing after the origin can leak.
            let history = History::from_kwh(first, &kwh[h0..o]);
            let origin_bucket = series.first_bucket + o as i64;
            let started = Instant::now();
            let f = forecast(&history, origin_bucket, DAY).expect("forecast");
            times.push(started.elapsed());
            shares.add(&f);
            scores.add(
                &kwh[h0..],
                o - h0,
                &f.values_kwh,
                (f.interval.low_kwh, f.interval.high_kwh),
            );
            coverage.add(0, &kwh[o..o + DAY], &f);
            if verbose {
                print_origin(&f, &kwh[o..o + DAY]);
            }
            // Longer windows where the series holds them: from every origin
            // (overlapping), and apart, the week from every 7th origin and
            // the 28 days from the first.
            for (c, days) in [(1, 7), (2, 28)] {
                if o + days * DAY <= n {
                    let f = forecast(&history, origin_bucket, days * DAY).expect("forecast");
                    let actual = &kwh[o..o + days * DAY];
                    coverage.add_overlapping(c, actual, &f);
                    if k % days == 0 {
                        coverage.add(c, actual, &f);
                    }
                }
            }
        }
        println!();
        println!(
            "{} / {} ({} test origins at local midnight, UTC{:+}, history from bucket {})",
            info.name,
            period.label,
            period.origins.len(),
            info.utc_offset_h,
            h0
        );
        // The target: the best of the five references on this period.
        let mstl = protocol::mstl_reference(info.name, pi);
        let best = scores.best_reference(mstl);
        scores.print("powerd::forecast (blend)", mstl, best);
        rows.push(Row {
            series: info.name,
            period: period.label,
            model: scores.model.means(),
            best,
        });
    }

    shares.print(info.name);

    // Fit + forecast with the whole year before the origin, day-ahead and
    // four weeks ahead.
    let full = History::from_kwh(series.first_bucket, kwh);
    let end = series.first_bucket + n as i64;
    let year_day = median_time(|| forecast(&full, end, DAY));
    let year_4w = median_time(|| forecast(&full, end, MAX_HORIZON_BUCKETS));
    times.sort();
    println!(
        "{}: fit+forecast day-ahead p50 {:.2} ms, max {:.2} ms over all test origins; with the \
         full year ({} buckets, median of 11 runs): {:.2} ms for 1 day, {:.2} ms for 28 days ahead",
        info.name,
        ms(times[times.len() / 2]),
        ms(*times.last().expect("origins")),
        n,
        ms(year_day),
        ms(year_4w)
    );
    rows
}

fn print_summary(rows: &[Row], coverage: &Coverage) {
    println!();
    println!(
        "summary: model MAPE % / MASE (1-day 80% coverage) vs the best of the five references"
    );
    println!(
        "| {:<13} | {:<19} | {:>15} | {:>7} | {:>15} | {:>9} |",
        "series", "period", "model", "cov", "best reference", "verdict"
    );
    println!(
        "|{:-<15}|{:-<21}|{:->17}|{:->9}|{:->17}|{:->11}|",
        "", "", "", "", "", ""
    );
    let mut met = 0;
    for r in rows {
        let ok = r.model.0 < r.best.0 && r.model.1 < r.best.1;
        met += usize::from(ok);
        println!(
            "| {:<13} | {:<19} | {:>6.2} / {:.3} | {:>6.1}% | {:>6.2} / {:.3} | {:>9} |",
            r.series,
            r.period,
            r.model.0,
            r.model.1,
            r.model.2 * 100.0,
            r.best.0,
            r.best.1,
            if ok { "beats" } else { "MISSED" }
        );
    }
    println!(
        "{met} of {} series x periods below the best reference on both metrics",
        rows.len()
    );
    for (k, days) in [1, 7, 28].iter().enumerate() {
        let (c, w) = coverage.by_days[k];
        println!(
            "pooled coverage of the 80% interval of {days}-day totals: {c}/{w} = {:.1}%; \
             of their buckets' intervals: {:.1}%",
            100.0 * c as f64 / w.max(1) as f64,
            100.0 * coverage.buckets[k].0 as f64 / coverage.buckets[k].1.max(1) as f64
        );
    }
    for (k, days) in [7, 28].iter().enumerate() {
        let (c, w) = coverage.overlapping[k];
        println!(
            "  the same from every origin whose {days} days the series holds (overlapping \
             windows): {c}/{w} = {:.1}%",
            100.0 * c as f64 / w.max(1) as f64
        );
    }
}

/// The median of 11 timed runs: one number that a busy machine's outliers
/// do not move (the per-origin max above shows those).
fn median_time(mut f: impl FnMut() -> Result<Forecast, ForecastError>) -> Duration {
    let mut times: Vec<Duration> = (0..11)
        .map(|_| {
            let started = Instant::now();
            f().expect("forecast");
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_origin(f: &Forecast, actual: &[f64]) {
    let a: f64 = actual.iter().sum();
    let weights = |w: &[ComponentWeight]| {
        w.iter()
            .map(|c| format!("{}={:.2}", c.name, c.weight))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "  origin {}: actual {:.4e} predicted {:.4e} ({:+.1}%) interval [{:.4e}, {:.4e}]\n    level: {}\n    shape: {}\n    persistence: {:?}",
        f.origin_bucket,
        a,
        f.total_kwh,
        (f.total_kwh / a - 1.0) * 100.0,
        f.interval.low_kwh,
        f.interval.high_kwh,
        weights(&f.model.level_weights),
        weights(&f.model.shape_weights),
        f.model.intraday_persistence
    );
}
