//! Bytes on disk per stored 15-minute bucket, on the fleet generator's data
//! (`../shared/tools/gen_fleet.py`), through the real binary: every file of
//! the data directory after a graceful stop, divided by the buckets the
//! fleet has (`buckets.csv`'s rows).
//!
//! (a) `posts.jsonl`: the raw readings as ships send them (5-minute kW,
//!     15-minute kWh, hourly kWh; about 1.4 readings a bucket);
//! (b) `buckets.csv`: the same fleet's buckets, one kWh reading per bucket
//!     (`"interval": "PT15M"`).
//!
//! Each also exported to a Parquet lake (`powerd export`): its bytes per
//! bucket. Then a year of one ship over HTTP (p50, the response cache
//! off), which compressed blocks must not slow down. `cargo bench --bench storage` (1,000 ships × 30 days; the
//! generator's output is cached under the target directory), `-- --quick`
//! for 100 ships × 30 days.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{dir_bytes, ms, parquet_bytes, percentile, timestamp, Client, Server};

const CONNECTIONS: usize = 8;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (ships, days) = if quick { (100, 30) } else { (1000, 30) };
    let generator = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/gen_fleet.py");
    if !generator.is_file() {
        println!(
            "storage bench: {} is missing; it ships with the project's shared folder, next to \
             the repository. Nothing measured.",
            generator.display()
        );
        return;
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let fleet = target.join(format!("gen-fleet-{ships}x{days}"));
    if !fleet.join("buckets.csv").is_file() {
        println!(
            "generating {ships} ships × {days} days into {}",
            fleet.display()
        );
        let status = Command::new("python3")
            .arg(&generator)
            .args(["--ships", &ships.to_string(), "--days", &days.to_string()])
            .arg("--out")
            .arg(&fleet)
            .arg("--no-lp")
            .status()
            .expect("python3 runs");
        assert!(status.success(), "gen_fleet.py failed");
    }
    let posts: Vec<Vec<u8>> = std::fs::read_to_string(fleet.join("posts.jsonl"))
        .expect("posts.jsonl")
        .lines()
        .map(|line| line.as_bytes().to_vec())
        .collect();
    let csv = std::fs::read_to_string(fleet.join("buckets.csv")).expect("buckets.csv");
    // The first line is the header.
    let buckets = csv.lines().skip(1).count() as u64;
    let bucket_posts = bucket_bodies(&csv);
    drop(csv);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_powerd"));
    let mut rows = Vec::new();
    for (name, bodies) in [
        ("(a) posts.jsonl: raw readings", &posts),
        ("(b) buckets.csv: one kWh reading per bucket", &bucket_posts),
    ] {
        let dir = std::env::temp_dir().join(format!("powerd-storage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut server = Server::start(&binary, &dir);
        let started = Instant::now();
        runtime.block_on(post_all(server.address, bodies));
        let elapsed = started.elapsed();
        server.terminate();
        let bytes = dir_bytes(&dir);
        let files = listing(&dir);
        let lake = dir.with_extension("lake");
        let _ = std::fs::remove_dir_all(&lake);
        let exported = Command::new(&binary)
            .args(["export", "--node", "bench", "--data-dir"])
            .arg(&dir)
            .arg("--to")
            .arg(&lake)
            .output()
            .expect("powerd export runs");
        assert!(exported.status.success(), "{exported:?}");
        let lake_bytes = parquet_bytes(&lake);
        let _ = std::fs::remove_dir_all(&lake);
        rows.push((
            format!("{name}, {} POSTs", bodies.len()),
            format!(
                "{:.2} B/bucket; in the lake {:.2} B/bucket",
                bytes as f64 / buckets as f64,
                lake_bytes as f64 / buckets as f64
            ),
            format!(
                "{:.1} MiB for {buckets} buckets ({:.1} MiB of Parquet after `powerd export`); \
                 {:.0} buckets/s in; {files}",
                bytes as f64 / 1048576.0,
                lake_bytes as f64 / 1048576.0,
                buckets as f64 / elapsed.as_secs_f64()
            ),
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    // A year of one ship: 35,040 buckets from 5-minute kW readings.
    let dir = std::env::temp_dir().join(format!("powerd-storage-year-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut server = Server::start(&binary, &dir);
    let start_s = 1_767_225_600; // 2026-01-01
    let year: Vec<Vec<u8>> = (0..365)
        .map(|day| {
            let data: Vec<String> = (0..288)
                .map(|i| {
                    let t = start_s + day * 86_400 + i * 300;
                    let kw = 100.0
                        + 40.0 * ((i as f64) / 288.0 * std::f64::consts::TAU).sin()
                        + (i % 7) as f64;
                    format!(r#"{{"datetime":"{}","value":{kw:.3}}}"#, timestamp(t))
                })
                .collect();
            format!(
                r#"{{"spaceship_id":7,"units":"kW","data":[{}]}}"#,
                data.join(",")
            )
            .into_bytes()
        })
        .collect();
    runtime.block_on(post_all(server.address, &year));
    server.terminate();
    // The response cache off: each GET decodes the year.
    let server = Server::start_with(&binary, &dir, &["--response-cache-mib", "0"]);
    let path = format!(
        "/data?spaceship_id=7&start={}&end={}",
        timestamp(start_s),
        timestamp(start_s + 365 * 86_400)
    );
    let mut latencies: Vec<Duration> = runtime.block_on(async {
        let mut client = Client::connect(server.address).await;
        let mut latencies = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            let (status, _) = client.request("GET", &path, None).await;
            assert_eq!(status, 200);
            latencies.push(t.elapsed());
        }
        latencies
    });
    rows.push((
        "(c) GET 1 ship × 365 days (35,040 buckets), 1 conn".into(),
        format!("p50 {}", ms(percentile(&mut latencies, 0.5))),
        format!("p99 {}", ms(percentile(&mut latencies, 0.99))),
    ));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!("| measurement | result | notes |");
    println!("|---|---|---|");
    for (name, result, notes) in rows {
        println!("| {name} | {result} | {notes} |");
    }
}

/// `buckets.csv` (`ship,bucket_start_s,kwh`) as one POST per ship-day:
/// one kWh reading per bucket, `"interval": "PT15M"`.
fn bucket_bodies(csv: &str) -> Vec<Vec<u8>> {
    let mut days: BTreeMap<(u64, i64), Vec<String>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let mut fields = line.split(',');
        let (Some(ship), Some(t), Some(kwh)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let ship: u64 = ship.parse().expect("ship");
        let t: i64 = t.parse().expect("time");
        days.entry((ship, t.div_euclid(86_400)))
            .or_default()
            .push(format!(
                r#"{{"datetime":"{}","value":{kwh}}}"#,
                timestamp(t)
            ));
    }
    days.into_iter()
        .map(|((ship, _), data)| {
            format!(
                r#"{{"spaceship_id":{ship},"units":"kWh","interval":"PT15M","data":[{}]}}"#,
                data.join(",")
            )
            .into_bytes()
        })
        .collect()
}

async fn post_all(address: std::net::SocketAddr, bodies: &[Vec<u8>]) {
    let bodies = Arc::new(bodies.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (bodies, next) = (Arc::clone(&bodies), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(address).await;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(n) else { break };
                let (status, answer) = client.request("POST", "/data", Some(body)).await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
            }
        }));
    }
    for task in tasks {
        task.await.expect("poster");
    }
}

/// What the data directory holds, by kind: `blocks 11.2 MiB, log 0.0 MiB, ROLLUP 0.4 MiB`.
fn listing(dir: &Path) -> String {
    let mib = |path: PathBuf| dir_bytes(&path) as f64 / 1048576.0;
    let file =
        |name: &str| std::fs::metadata(dir.join(name)).map_or(0.0, |m| m.len() as f64 / 1048576.0);
    format!(
        "blocks {:.2} MiB, log {:.2} MiB, ROLLUP {:.2} MiB, MANIFEST {:.2} MiB",
        mib(dir.join("blocks")),
        mib(dir.join("log")),
        file("ROLLUP"),
        file("MANIFEST")
    )
}
