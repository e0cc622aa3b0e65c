//! Fleet-scale benchmark of the rollup index. Run with
//! `cargo bench --bench fleet` (add `-- --quick` for 1,000 ships, and
//! `--keep` to leave the data directory behind for a look, `--cost-only`
//! to measure only what keeping the index costs ingest, `--skip-cost` to
//! skip that, `--days N` for N days instead of 30: `-- --days 365
//! --skip-cost` is the year of 10,000 ships, 350 M buckets, about 5 minutes).
//!
//! 1. What keeping the index costs: the same ingest (1,000 ships × 30 days,
//!    one ship-day per write) with the index on and off, alternating rounds.
//! 2. 10,000 ships × 30 days of 15-minute kW readings (28.8 M buckets)
//!    written through the engine, a checkpoint, then bytes on disk.
//! 3. Fleet and top-N questions in-process, from the index and by the
//!    brute-force scan of every ship's buckets (the baseline), and through
//!    HTTP from the real binary restarted on the same directory (response
//!    cache off: these are per-query costs); then a week more of every ship
//!    written through its `POST /data`, and a restart with a cold cache.
//!
//! Latencies are medians and 99th percentiles of sequential requests (one
//! keep-alive connection for HTTP), so they are per-query costs, not
//! throughput under load.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::synthetic::{ingest, post_days, DAY_S, EPOCH_S};
use common::{
    cpu_seconds, dir_bytes, ms, percentile, rss_kib, timestamp, wait_healthy, Client, Server,
};
use powerd::model::BUCKET_SECONDS;
use powerd::query;
use powerd::storage::{Engine, EngineOptions};

/// Days of the main data set: 30, or `--days N` (365 for the year of
/// issue 14's scale table).
fn days() -> i64 {
    static DAYS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *DAYS.get_or_init(|| {
        let args: Vec<String> = std::env::args().collect();
        args.iter()
            .position(|a| a == "--days")
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(30)
    })
}
/// Days of the ingest-cost rounds.
const COST_DAYS: i64 = 30;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let ships: u64 = if quick { 1_000 } else { 10_000 };
    let root = std::env::temp_dir().join(format!("powerd-bench-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench directory");
    println!(
        "powerd fleet benchmark: {ships} ships × {} days, data in {}",
        days(),
        root.display()
    );

    let mut table: Vec<[String; 4]> = Vec::new();
    if !std::env::args().any(|a| a == "--skip-cost") {
        index_cost(&root, if quick { 300 } else { 2_000 }, &mut table);
    }
    if std::env::args().any(|a| a == "--cost-only") {
        print_table(&table);
        return;
    }

    let data_dir = root.join("data");
    let engine = Engine::open(&data_dir, EngineOptions::default()).expect("open");
    let started = Instant::now();
    ingest(&engine, ships, days());
    let seconds = started.elapsed().as_secs_f64();
    engine.checkpoint().expect("checkpoint");
    let buckets = ships as f64 * days() as f64 * 96.0;
    table.push([
        format!("ingest {ships} ships × {} days, index on", days()),
        format!("{:.0} buckets/s", buckets / seconds),
        format!("{:.1} s", seconds),
        String::new(),
    ]);
    let rollup_bytes = std::fs::metadata(data_dir.join("ROLLUP")).map_or(0, |m| m.len());
    let all_bytes = dir_bytes(&data_dir);
    let data_bytes = all_bytes - rollup_bytes;
    table.push([
        "bytes on disk per bucket (all files)".into(),
        format!("{:.2} B", all_bytes as f64 / buckets),
        format!("{:.1} MiB", all_bytes as f64 / (1 << 20) as f64),
        String::new(),
    ]);
    table.push([
        "rollup index file / the rest of the data".into(),
        format!("{:.2}%", 100.0 * rollup_bytes as f64 / data_bytes as f64),
        format!("{:.2} MiB", rollup_bytes as f64 / (1 << 20) as f64),
        String::new(),
    ]);

    let queries = queries();
    table.push([
        "query (in-process)".into(),
        "index p50 / p99".into(),
        "scan p50".into(),
        "index vs scan".into(),
    ]);
    for q in &queries {
        let index = time(101, || q.run_index(&engine));
        let scan = time(3, || q.run_scan(&engine));
        q.check(&engine);
        table.push([
            q.name.clone(),
            format!("{} / {}", ms(index.0), ms(index.1)),
            ms(scan.0),
            format!(
                "{:.0}× faster",
                scan.0.as_secs_f64() / index.0.as_secs_f64()
            ),
        ]);
    }
    table.push([
        "resident memory of this process".into(),
        format!("{:.0} MiB", rss_kib(std::process::id()) as f64 / 1024.0),
        String::new(),
        String::new(),
    ]);
    engine.close().expect("close");
    drop(engine);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(over_http(&data_dir, ships, &queries, &mut table));

    print_table(&table);
    if std::env::args().any(|a| a == "--keep") {
        println!("data kept in {}", data_dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&root);
    }
}

fn print_table(table: &[[String; 4]]) {
    let widths: Vec<usize> = (0..4)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    println!();
    for row in table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        println!("| {} |", cells.join(" | "));
    }
}

/// Ingest with the index on and off, five alternating rounds each on fresh
/// directories: medians of throughput and of CPU time (all threads) per
/// write. On a shared two-core machine the CPU time is the steadier figure.
fn index_cost(root: &Path, ships: u64, table: &mut Vec<[String; 4]>) {
    let mut rates: [Vec<f64>; 2] = Default::default();
    let mut cpu_us: [Vec<f64>; 2] = Default::default();
    let writes = (ships * COST_DAYS as u64) as f64;
    for round in 0..10 {
        let on = round % 2 == 0;
        let dir = root.join(format!("cost-{round}"));
        let engine = Engine::open(
            &dir,
            EngineOptions {
                rollup_index: on,
                ..EngineOptions::default()
            },
        )
        .expect("open");
        let (started, cpu) = (Instant::now(), cpu_seconds("self"));
        ingest(&engine, ships, COST_DAYS);
        engine.close().expect("close");
        rates[usize::from(on)].push(writes * 96.0 / started.elapsed().as_secs_f64());
        cpu_us[usize::from(on)].push((cpu_seconds("self") - cpu) / writes * 1e6);
        drop(engine);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (on, off) = (median(&mut rates[1]), median(&mut rates[0]));
    let (cpu_on, cpu_off) = (median(&mut cpu_us[1]), median(&mut cpu_us[0]));
    table.push([
        format!(
            "ingest {ships} ships × {COST_DAYS} days, index on vs off (incl. final checkpoint)"
        ),
        format!("{on:.0} vs {off:.0} buckets/s"),
        format!("{:+.1}% throughput", 100.0 * (on / off - 1.0)),
        format!(
            "rounds on {:?} off {:?}",
            round_all(&rates[1]),
            round_all(&rates[0])
        ),
    ]);
    table.push([
        "  CPU time per write (all threads), index on vs off".into(),
        format!("{cpu_on:.1} vs {cpu_off:.1} µs"),
        format!("{:+.1}% CPU", 100.0 * (cpu_on / cpu_off - 1.0)),
        String::new(),
    ]);
}

/// User + system CPU seconds of this process so far (`/proc/self/stat`,
/// in clock ticks of 1/100 s).
fn round_all(rates: &[f64]) -> Vec<u64> {
    rates
        .iter()
        .map(|r| (r / 1000.0).round() as u64 * 1000)
        .collect()
}

/// Every ship reports each day's 96 fifteen-minute kW readings (meter
/// values with three decimals), day after day; `WRITERS` threads share
/// the ships.
enum Kind {
    Fleet { step: i64 },
    Top { count: usize },
}

struct Question {
    name: String,
    kind: Kind,
    start_s: i64,
    end_s: i64,
}

/// Answers reduced to comparable integers: (key, nano-kWh, ships).
type Answer = Vec<(i64, i128, u32)>;

impl Question {
    fn buckets(&self) -> (i64, i64) {
        (self.start_s / BUCKET_SECONDS, self.end_s / BUCKET_SECONDS)
    }

    fn run_index(&self, engine: &Engine) -> Answer {
        let (first, end) = self.buckets();
        match self.kind {
            Kind::Fleet { step } => fleet_answer(query::fleet(engine, first, end, step)),
            Kind::Top { count } => top_answer(query::top_users(engine, first, end, count)),
        }
    }

    fn run_scan(&self, engine: &Engine) -> Answer {
        let (first, end) = self.buckets();
        match self.kind {
            Kind::Fleet { step } => fleet_answer(query::fleet_scan(engine, first, end, step)),
            Kind::Top { count } => top_answer(query::top_users_scan(engine, first, end, count)),
        }
    }

    /// Asserts the index and the scan give the same answer. Both add
    /// quantised bucket energies, but bucket columns and span arithmetic may
    /// round a bucket's last bit differently: one nano-kWh per bucket is
    /// allowed for that.
    fn check(&self, engine: &Engine) {
        let (index, scan) = (self.run_index(engine), self.run_scan(engine));
        let (first, end) = self.buckets();
        let slack = i128::from(end - first);
        assert_eq!(index.len(), scan.len(), "{}", self.name);
        for (a, b) in index.iter().zip(&scan) {
            assert!(
                a.0 == b.0 && a.2 == b.2 && (a.1 - b.1).abs() <= slack,
                "{}: index {a:?}, scan {b:?}",
                self.name
            );
        }
    }

    fn path(&self) -> String {
        let window = format!(
            "start={}&end={}",
            timestamp(self.start_s),
            timestamp(self.end_s)
        );
        match self.kind {
            Kind::Fleet { step } => {
                let step = match step {
                    1 => "15m",
                    4 => "1h",
                    _ => "1d",
                };
                format!("/data/fleet?{window}&step={step}")
            }
            Kind::Top { count } => format!("/topusers?count={count}&{window}"),
        }
    }
}

fn fleet_answer(
    intervals: Result<Vec<powerd::storage::FleetInterval>, powerd::storage::StorageError>,
) -> Answer {
    intervals
        .expect("fleet")
        .iter()
        .map(|i| (i.first_bucket, i.sum, i.ships))
        .collect()
}

fn top_answer(ships: Result<Vec<(u64, i128)>, powerd::storage::StorageError>) -> Answer {
    ships
        .expect("top users")
        .iter()
        .map(|&(ship, total)| (ship as i64, total, 0))
        .collect()
}

fn queries() -> Vec<Question> {
    let day = |d: i64| EPOCH_S + d * DAY_S;
    let unaligned_start = day(10) + 5 * 3600 + 15 * 60;
    let q = |name: &str, kind: Kind, start_s: i64, end_s: i64| Question {
        name: name.into(),
        kind,
        start_s,
        end_s,
    };
    vec![
        q(
            "fleet, all days, step 15m",
            Kind::Fleet { step: 1 },
            day(0),
            day(days()),
        ),
        q(
            "fleet, all days, step 1d",
            Kind::Fleet { step: 96 },
            day(0),
            day(days()),
        ),
        q(
            "fleet, 1 day, step 15m",
            Kind::Fleet { step: 1 },
            day(12),
            day(13),
        ),
        q(
            "fleet, 1 day, step 1h",
            Kind::Fleet { step: 4 },
            day(12),
            day(13),
        ),
        q(
            "top-10, all days",
            Kind::Top { count: 10 },
            day(0),
            day(days()),
        ),
        q(
            "top-10, 3 d 7 h from 05:15",
            Kind::Top { count: 10 },
            unaligned_start,
            unaligned_start + 3 * DAY_S + 7 * 3600,
        ),
    ]
}

/// p50 and p99 of `runs` calls.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(f());
        times.push(started.elapsed());
    }
    (percentile(&mut times, 0.5), percentile(&mut times, 0.99))
}

async fn over_http(
    data_dir: &Path,
    ships: u64,
    queries: &[Question],
    table: &mut Vec<[String; 4]>,
) {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_powerd"));
    // Per-query costs: the response cache off, or every repeat of a ship's
    // year would be a cache hit.
    const NO_CACHE: &[&str] = &["--response-cache-mib", "0"];
    let started = Instant::now();
    let server = Server::start_with(&binary, data_dir, NO_CACHE);
    wait_healthy(server.address).await;
    table.push([
        "restart of powerd on this directory, to /health".into(),
        ms(started.elapsed()),
        String::new(),
        String::new(),
    ]);
    table.push([
        "query (HTTP, 1 keep-alive connection)".into(),
        "p50 / p99".into(),
        "response bytes".into(),
        String::new(),
    ]);
    let mut client = Client::connect(server.address).await;
    for q in queries {
        let path = Arc::new(q.path());
        let mut times = Vec::with_capacity(101);
        let mut bytes = 0;
        for _ in 0..101 {
            let started = Instant::now();
            let (status, body) = client.request("GET", &path, None).await;
            times.push(started.elapsed());
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
            bytes = body.len();
        }
        table.push([
            q.name.clone(),
            format!(
                "{} / {}",
                ms(percentile(&mut times, 0.5)),
                ms(percentile(&mut times, 0.99))
            ),
            format!("{bytes} B"),
            String::new(),
        ]);
    }
    let (anon, mapped) = common::rss_split_kib(server.child.id());
    table.push([
        "resident memory of powerd after the queries".into(),
        format!("{:.0} MiB", server.rss_kib() as f64 / 1024.0),
        format!("{:.0} MiB its own", anon as f64 / 1024.0),
        format!(
            "{:.0} MiB mapped file pages (reclaimable)",
            mapped as f64 / 1024.0
        ),
    ]);
    drop(client);
    ingest_over_http(&server, ships, table).await;
    let mut server = server;
    server.terminate();
    // A cold start: the page cache emptied (needs root; says so if not).
    let _ = std::process::Command::new("sync").status();
    let cold = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    let started = Instant::now();
    let server = Server::start_with(&binary, data_dir, NO_CACHE);
    wait_healthy(server.address).await;
    table.push([
        if cold {
            "restart with the page cache dropped, to /health".into()
        } else {
            "restart again (page cache NOT dropped: not root), to /health".into()
        },
        ms(started.elapsed()),
        String::new(),
        String::new(),
    ]);
    drop(server);
}

/// Days [`ingest_over_http`] adds after the stored ones.
const HTTP_INGEST_DAYS: i64 = 7;

/// Writes one more week of every ship through the real binary's `POST
/// /data` (one ship-day of 96 fifteen-minute kW readings per request, 8
/// keep-alive connections, durable acknowledgements) into the directory
/// as it stands, and reports buckets/s.
async fn ingest_over_http(server: &Server, ships: u64, table: &mut Vec<[String; 4]>) {
    let started = Instant::now();
    let rate = post_days(server.address, ships, days()..days() + HTTP_INGEST_DAYS).await;
    let posts = ships * HTTP_INGEST_DAYS as u64;
    table.push([
        format!("ingest over HTTP, {HTTP_INGEST_DAYS} more days of every ship, 8 conns"),
        format!("{:.2} M buckets/s", rate / 1e6),
        format!(
            "{:.0} POST/s",
            posts as f64 / started.elapsed().as_secs_f64()
        ),
        String::new(),
    ]);
}
