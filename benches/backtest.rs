//! The forecast backtest through the API: starts the real `powerd` binary,
//! loads each series of `../shared/data` with its `.posts.jsonl` bodies
//! (one `POST /data` per UTC day), reads it back with `GET /data`, and runs
//! the rolling-origin day-ahead protocol of the data's README over the last
//! 28 days with `GET /forecast` (each origin at the series' local
//! midnight). Prints per series the table of `examples/forecast_backtest.rs`
//! (same protocol code, `benches/common/backtest.rs`): MAPE of the daily
//! total, MASE of the 96 buckets, 80% coverage, for the model and the three
//! baselines (computed from the `GET /data` answer); checks every HTTP
//! answer against the model run in-process on the same buckets; and gives
//! the forecast latency over HTTP, right after loading (the year still in
//! the memtable) and after a restart (checkpointed into blocks).
//!
//! `cargo bench --bench backtest`. Without `../shared/data` it says how to
//! obtain the series and exits 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

use common::backtest::{
    data_dir, missing_data_message, mstl_reference, test_origins, Scores, SeriesInfo,
    BUCKET_SECONDS, DAY, SERIES, TEST_DAYS,
};
use common::{ms, percentile, timestamp, wait_healthy, Client, Server};
use powerd::forecast::{forecast, History, MAX_HORIZON_BUCKETS};

/// Timed day-ahead requests per series and phase, cycling over the origins.
const LATENCY_REQUESTS: usize = 280;
/// Timed four-weeks-ahead requests per series and phase.
const LONG_REQUESTS: usize = 40;

fn main() {
    let data = data_dir();
    let missing = SERIES
        .iter()
        .any(|s| !data.join(format!("{}.posts.jsonl", s.name)).is_file());
    if missing {
        println!("{}", missing_data_message("backtest", &data));
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(&data));
}

/// A series as `GET /data` returned it: complete buckets from `first_bucket`.
struct Stored {
    first_bucket: i64,
    kwh: Vec<f64>,
}

async fn run(data: &Path) {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_powerd"));
    let data_dir = std::env::temp_dir().join(format!("powerd-backtest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut server = Server::start(&binary, &data_dir);
    wait_healthy(server.address).await;
    println!(
        "powerd under test at {} (data in {})",
        server.address,
        data_dir.display()
    );

    let mut client = Client::connect(server.address).await;
    let mut stored = Vec::new();
    for info in &SERIES {
        let started = Instant::now();
        let posts = load(
            &mut client,
            &data.join(format!("{}.posts.jsonl", info.name)),
        )
        .await;
        let series = read_back(&mut client, info.ship).await;
        println!();
        println!(
            "{} (ship {}, {} buckets from {} POSTs in {:.2} s, {} test origins at local \
             midnight, UTC{:+}) through GET /forecast",
            info.name,
            info.ship,
            series.kwh.len(),
            posts,
            started.elapsed().as_secs_f64(),
            TEST_DAYS,
            info.utc_offset_h
        );
        backtest(&mut client, info, &series).await;
        stored.push(series);
    }

    println!();
    println!("GET /forecast latency over HTTP, one keep-alive connection (a year of history):");
    println!(
        "| {:<14} | {:<8} | {:>26} | {:>26} |",
        "series", "window", "after loading", "after a restart"
    );
    println!("|{:-<16}|{:-<10}|{:->28}|{:->28}|", "", "", "", "");
    let mut fresh = Vec::new();
    for (info, series) in SERIES.iter().zip(&stored) {
        fresh.push(latencies(server.address, info, series).await);
    }
    // SIGTERM checkpoints everything into blocks; the next start reads
    // them memory-mapped, as a long-running server mostly does.
    server.terminate();
    let server = Server::start(&binary, &data_dir);
    wait_healthy(server.address).await;
    for ((info, series), before) in SERIES.iter().zip(&stored).zip(fresh) {
        let after = latencies(server.address, info, series).await;
        for (window, (mut a, mut b)) in ["1 day", "28 days"]
            .into_iter()
            .zip(before.into_iter().zip(after))
        {
            println!(
                "| {:<14} | {:<8} | {:>26} | {:>26} |",
                info.name,
                window,
                p50_p99(&mut a),
                p50_p99(&mut b)
            );
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// POSTs every line of a `.posts.jsonl` file; returns how many.
async fn load(client: &mut Client, path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut posts = 0;
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let (status, body) = client.request("POST", "/data", Some(line.as_bytes())).await;
        assert_eq!(
            status,
            200,
            "{}:{}: {}",
            path.display(),
            i + 1,
            String::from_utf8_lossy(&body)
        );
        posts += 1;
    }
    posts
}

/// The ship's whole series from `GET /data`, which must be complete.
async fn read_back(client: &mut Client, ship: u64) -> Stored {
    let (status, body) = client
        .request("GET", &format!("/data?spaceship_id={ship}"), None)
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let items = json["data"].as_array().expect("data");
    let bucket = |item: &serde_json::Value| {
        let t = powerd::wire::parse_timestamp(item["datetime"].as_str().expect("datetime"))
            .expect("a timestamp");
        t / BUCKET_SECONDS
    };
    let first_bucket = bucket(&items[0]);
    let kwh = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            assert_eq!(bucket(item), first_bucket + i as i64, "ship {ship}: a gap");
            assert!(
                item.get("coverage").is_none(),
                "ship {ship}: a partial bucket"
            );
            item["value"].as_f64().expect("value")
        })
        .collect();
    Stored { first_bucket, kwh }
}

fn forecast_path(ship: u64, origin_bucket: i64, buckets: usize) -> String {
    format!(
        "/forecast?spaceship_id={ship}&start={}&end={}",
        timestamp(origin_bucket * BUCKET_SECONDS),
        timestamp((origin_bucket + buckets as i64) * BUCKET_SECONDS)
    )
}

/// What `GET /forecast` said: the curve, the total and the interval.
struct Answer {
    values: Vec<f64>,
    total: f64,
    interval: (f64, f64),
}

async fn get_forecast(client: &mut Client, path: &str) -> Answer {
    let (status, body) = client.request("GET", path, None).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let number = |v: &serde_json::Value| v.as_f64().expect("a number");
    Answer {
        values: json["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|item| number(&item["value"]))
            .collect(),
        total: number(&json["expected_consumption"]),
        interval: (
            number(&json["interval"]["low"]),
            number(&json["interval"]["high"]),
        ),
    }
}

/// The rolling-origin day-ahead protocol through `GET /forecast`, each
/// answer checked against the model run in-process on the same buckets.
async fn backtest(client: &mut Client, info: &SeriesInfo, series: &Stored) {
    let kwh = &series.kwh;
    let mut scores = Scores::default();
    let mut worst_difference: f64 = 0.0;
    let mut times = Vec::new();
    for o in test_origins(series.first_bucket, kwh.len(), info.utc_offset_h) {
        let origin_bucket = series.first_bucket + o as i64;
        let path = forecast_path(info.ship, origin_bucket, DAY);
        times.push(timed(client, &path).await);
        let answer = get_forecast(client, &path).await;
        assert_eq!(answer.values.len(), DAY);
        scores.add(kwh, o, &answer.values, answer.interval);

        let history = History::from_kwh(series.first_bucket, &kwh[..o]);
        let local = forecast(&history, origin_bucket, DAY).expect("in-process forecast");
        let relative = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-9);
        worst_difference = worst_difference
            .max(relative(answer.total, local.total_kwh))
            .max(relative(answer.interval.0, local.interval.low_kwh))
            .max(relative(answer.interval.1, local.interval.high_kwh));
    }
    // The data README's period: the first of `periods`.
    scores.print(
        "GET /forecast (blend)",
        mstl_reference(info.name, 0),
        (info.best_mape, info.best_mase),
    );
    println!(
        "same model in-process on the same buckets: largest relative difference of a total or \
         interval edge {worst_difference:.1e}; HTTP round trip p50 {}, max {}",
        ms(percentile(&mut times, 0.5)),
        ms(*times.iter().max().expect("origins"))
    );
}

/// Timed day-ahead requests cycling over the test origins, and four-week
/// requests from the end of the series, on a fresh connection.
async fn latencies(address: SocketAddr, info: &SeriesInfo, series: &Stored) -> [Vec<Duration>; 2] {
    let mut client = Client::connect(address).await;
    let origins = test_origins(series.first_bucket, series.kwh.len(), info.utc_offset_h);
    let end_bucket = series.first_bucket + series.kwh.len() as i64;
    let day_paths: Vec<String> = origins
        .iter()
        .map(|&o| forecast_path(info.ship, series.first_bucket + o as i64, DAY))
        .collect();
    let long_path = forecast_path(info.ship, end_bucket, MAX_HORIZON_BUCKETS);
    // Warm-up: the first touch of mapped blocks is not what is measured.
    for path in day_paths.iter().chain([&long_path]) {
        get_forecast(&mut client, path).await;
    }
    let mut day = Vec::with_capacity(LATENCY_REQUESTS);
    for i in 0..LATENCY_REQUESTS {
        day.push(timed(&mut client, &day_paths[i % day_paths.len()]).await);
    }
    let mut long = Vec::with_capacity(LONG_REQUESTS);
    for _ in 0..LONG_REQUESTS {
        long.push(timed(&mut client, &long_path).await);
    }
    [day, long]
}

fn p50_p99(times: &mut [Duration]) -> String {
    format!(
        "p50 {} p99 {}",
        ms(percentile(times, 0.5)),
        ms(percentile(times, 0.99))
    )
}

/// One request's round trip (the answer is not parsed).
async fn timed(client: &mut Client, path: &str) -> Duration {
    let started = Instant::now();
    let (status, body) = client.request("GET", path, None).await;
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    elapsed
}
