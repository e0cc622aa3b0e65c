//! End-to-end benchmark: starts the real `powerd` binary and drives it over
//! HTTP from several keep-alive connections on this machine, then prints a
//! table. Run with `cargo bench --bench http` (add `-- --quick` for a smaller
//! data set).
//!
//! (a) ingest: one ship-day per POST (288 five-minute kW readings, values with
//!     three decimals as meters send them), durable acknowledgements;
//! (b) GET one ship, one day, at 32 connections, in alternating rounds with a minimal hyper
//!     server answering a fixed body of the same size (this binary re-run in
//!     baseline mode), measured in the same run with the same load generator;
//! (c) GET one ship, 365 days;
//! (d) restart time, resident memory, bytes on disk per stored bucket;
//! (e) (b)'s GETs with tokens on (`--auth-file` of 10,001 tokens) against
//!     tokens off, on copies of the same data, in alternating rounds;
//! (f) `powerd backup` of the whole directory while ingest goes on: its
//!     duration and rate, and POST latency during it against before it;
//! (g) (b) and (c) with the response cache off, so every GET decodes the
//!     blocks and prints every bucket.
//!
//! The load generator is a small raw HTTP/1.1 client on a single-threaded
//! tokio runtime, so it takes one core at most and leaves the other to the
//! server (the box has two).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{
    dir_bytes, mean, ms, percentile, read_listen_line, timestamp, wait_healthy, Client, Server,
};

const DAY_S: i64 = 86_400;
/// 2018-08-01T00:00:00Z
const EPOCH_S: i64 = 1_533_081_600;
/// Alternating powerd/baseline rounds of the GET comparison (b).
const GET_ROUNDS: usize = 5;
const BASELINE_ENV: &str = "POWERD_BENCH_BASELINE_BODY_BYTES";

struct Settings {
    ships: u64,
    days: i64,
    ingest_connections: usize,
    get_connections: usize,
    get_seconds: f64,
}

fn main() {
    if let Ok(size) = std::env::var(BASELINE_ENV) {
        run_baseline_server(size.parse().expect("body size"));
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let settings = if quick {
        Settings {
            ships: 100,
            days: 30,
            ingest_connections: 8,
            get_connections: 32,
            get_seconds: 3.0,
        }
    } else {
        Settings {
            ships: 1000,
            days: 30,
            ingest_connections: 8,
            get_connections: 32,
            get_seconds: 10.0,
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(settings));
}

async fn run(settings: Settings) {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_powerd"));
    let data_dir = std::env::temp_dir().join(format!("powerd-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut rows: Vec<(String, String, String)> = Vec::new();

    let mut server = Server::start(&binary, &data_dir);
    println!(
        "powerd under test at {} (data in {})",
        server.address,
        data_dir.display()
    );

    // (a) ingest
    let posts = settings.ships * settings.days as u64;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..settings.ingest_connections {
        let next = Arc::clone(&next);
        let address = server.address;
        let ships = settings.ships;
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(address).await;
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= posts {
                    break latencies;
                }
                // Day-major order: every ship's day d before any day d+1, as a
                // fleet reporting daily would send it.
                let (day, ship) = ((n / ships) as i64, n % ships);
                let body = day_body(ship, day);
                let t = Instant::now();
                let (status, response) = client.request("POST", "/data", Some(&body)).await;
                latencies.push(t.elapsed());
                assert_eq!(
                    status,
                    200,
                    "POST failed: {}",
                    String::from_utf8_lossy(&response)
                );
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("ingest task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let readings = posts as f64 * 288.0;
    rows.push((
        format!(
            "(a) ingest {} ships × {} days, {} conns",
            settings.ships, settings.days, settings.ingest_connections
        ),
        format!(
            "{:.0} readings/s ({:.0} POST/s)",
            readings / elapsed,
            posts as f64 / elapsed
        ),
        format!(
            "p50 {} p99 {}",
            ms(percentile(&mut latencies, 0.50)),
            ms(percentile(&mut latencies, 0.99))
        ),
    ));

    // One ship with a year of history for (c).
    let year_ship = 1_000_000u64;
    {
        let mut client = Client::connect(server.address).await;
        for day in 0..365 {
            let (status, _) = client
                .request("POST", "/data", Some(&day_body(year_ship, day)))
                .await;
            assert_eq!(status, 200);
        }
    }

    // (b) GET one ship-day vs. the fixed-body baseline.
    let day_path = |ship: u64, day: i64| {
        format!(
            "/data?spaceship_id={ship}&start={}&end={}",
            timestamp(EPOCH_S + day * DAY_S),
            timestamp(EPOCH_S + (day + 1) * DAY_S)
        )
    };
    let sample_body = {
        let mut client = Client::connect(server.address).await;
        let (status, body) = client.request("GET", &day_path(0, 0), None).await;
        assert_eq!(status, 200);
        assert!(
            body.windows(10).filter(|w| w == b"\"datetime\"").count() == 96,
            "a ship-day must have 96 buckets"
        );
        body
    };
    let ships = settings.ships;
    let days = settings.days;
    // The ratio is the median of the rounds' ratios (see `take_turns`).
    let mut baseline = Baseline::start(sample_body.len());
    let round_seconds = settings.get_seconds / GET_ROUNDS as f64;
    // Every request line is rendered before the clock starts, so the load
    // generator spends the same per request on both servers.
    let day_paths: Arc<Vec<String>> = Arc::new(
        (0..ships * days as u64)
            .map(|i| {
                let i = i.wrapping_mul(2_654_435_761) % (ships * days as u64);
                day_path(i % ships, (i / ships) as i64)
            })
            .collect(),
    );
    let powerd_side = Side {
        address: server.address,
        paths: Arc::clone(&day_paths),
        token: None,
    };
    let baseline_side = Side {
        address: baseline.address,
        paths: Arc::new(vec!["/data".to_string()]),
        token: None,
    };
    let mut turns = take_turns(
        &powerd_side,
        &baseline_side,
        settings.get_connections,
        round_seconds,
    )
    .await;
    baseline.stop();
    let (powerd_rps, baseline_rps) = turns.mean_rps();
    let (ratio_median, ratio_text) = turns.ratios(|(powerd, baseline)| powerd / baseline);
    let (mut powerd_latencies, mut baseline_latencies) = std::mem::take(&mut turns.latencies);
    rows.push((
        format!(
            "(b) GET 1 ship × 1 day (96 buckets, {} B), {} conns",
            sample_body.len(),
            settings.get_connections
        ),
        format!(
            "{powerd_rps:.0} req/s = {:.0}% of baseline (median of rounds: {ratio_text})",
            100.0 * ratio_median,
        ),
        format!(
            "p50 {} p99 {}",
            ms(percentile(&mut powerd_latencies, 0.5)),
            ms(percentile(&mut powerd_latencies, 0.99))
        ),
    ));
    rows.push((
        format!(
            "    baseline: fixed {} B body, minimal hyper server",
            sample_body.len()
        ),
        format!("{baseline_rps:.0} req/s"),
        format!(
            "p50 {} p99 {}",
            ms(percentile(&mut baseline_latencies, 0.5)),
            ms(percentile(&mut baseline_latencies, 0.99))
        ),
    ));

    // (c) GET one ship, 365 days.
    let year_path = format!(
        "/data?spaceship_id={year_ship}&start={}&end={}",
        timestamp(EPOCH_S),
        timestamp(EPOCH_S + 365 * DAY_S)
    );
    let year_bytes = {
        let mut client = Client::connect(server.address).await;
        let (status, body) = client.request("GET", &year_path, None).await;
        assert_eq!(status, 200);
        body.len()
    };
    let (year_rps, mut year_latencies) = get_year(server.address, &year_path).await;
    rows.push((
        format!(
            "(c) GET 1 ship × 365 days (35,040 buckets, {:.1} MB), 1 conn",
            year_bytes as f64 / 1e6
        ),
        format!("{year_rps:.0} req/s"),
        format!(
            "p50 {} p99 {}",
            ms(percentile(&mut year_latencies, 0.5)),
            ms(percentile(&mut year_latencies, 0.99))
        ),
    ));

    // (d) restart, memory, disk.
    let stored_buckets = (settings.ships * settings.days as u64 + 365) * 96;
    let rss_loaded = server.rss_kib();
    let kill_restart = {
        server.kill9();
        let t = Instant::now();
        server = Server::start(&binary, &data_dir);
        wait_healthy(server.address).await;
        t.elapsed()
    };
    let rss_after_kill_restart = server.rss_kib();
    let graceful = {
        let t = Instant::now();
        server.terminate();
        let stop = t.elapsed();
        let t = Instant::now();
        server = Server::start(&binary, &data_dir);
        wait_healthy(server.address).await;
        (stop, t.elapsed())
    };
    // Touch every ship once so the resident figure includes the mapped data in use.
    {
        let mut client = Client::connect(server.address).await;
        for ship in 0..settings.ships {
            let path = format!(
                "/data?spaceship_id={ship}&start={}&end={}",
                timestamp(EPOCH_S),
                timestamp(EPOCH_S + days * DAY_S)
            );
            let (status, _) = client.request("GET", &path, None).await;
            assert_eq!(status, 200);
        }
    }
    let rss_warm = server.rss_kib();
    server.terminate();
    let disk_bytes = dir_bytes(&data_dir);
    rows.push((
        "(d) restart after kill -9 (log replay), to /health answering".into(),
        ms(kill_restart),
        format!(
            "RSS before kill {:.1} MiB, after restart {:.1} MiB",
            rss_loaded as f64 / 1024.0,
            rss_after_kill_restart as f64 / 1024.0
        ),
    ));
    rows.push((
        "    graceful stop (SIGTERM, checkpoint) / restart".into(),
        format!("{} / {}", ms(graceful.0), ms(graceful.1)),
        format!(
            "RSS after reading every ship {:.1} MiB",
            rss_warm as f64 / 1024.0
        ),
    ));
    rows.push((
        format!("    bytes on disk per stored bucket ({stored_buckets} buckets)"),
        format!("{:.2} B/bucket", disk_bytes as f64 / stored_buckets as f64),
        format!(
            "{:.1} MiB in {}",
            disk_bytes as f64 / 1048576.0,
            data_dir.display()
        ),
    ));

    // (e) what tokens cost: the same GETs against the same data, tokens
    // off and on (an auth file of 10,000 ship tokens and a reader), in
    // alternating rounds.
    let auth_dir = data_dir.with_extension("auth");
    let _ = std::fs::remove_dir_all(&auth_dir);
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&data_dir)
        .arg(&auth_dir)
        .status()
        .expect("cp runs");
    assert!(copied.success(), "copy the data directory");
    let auth_file = data_dir.with_extension("auth.json");
    let reader: Arc<str> = {
        let mut auth = powerd::auth::AuthFile::default();
        for ship in 0..10_000u64 {
            let write = powerd::auth::WriteScope::parse(&ship.to_string()).expect("a ship id");
            auth.add(&format!("ship-{ship}"), write, false, false)
                .expect("a new token");
        }
        let reader = auth
            .add("reader", powerd::auth::WriteScope::None, true, false)
            .expect("a new token");
        auth.store(&auth_file).expect("store the auth file");
        reader.into()
    };
    let open = Server::start(&binary, &data_dir);
    let guarded = Server::start_with(
        &binary,
        &auth_dir,
        &["--auth-file", auth_file.to_str().expect("a UTF-8 path")],
    );
    // Tokens off first in each round, then on.
    let mut turns = take_turns(
        &Side {
            address: open.address,
            paths: Arc::clone(&day_paths),
            token: None,
        },
        &Side {
            address: guarded.address,
            paths: Arc::clone(&day_paths),
            token: Some(Arc::clone(&reader)),
        },
        settings.get_connections,
        round_seconds,
    )
    .await;
    drop((open, guarded));
    let (off_rps, on_rps) = turns.mean_rps();
    let (ratio_median, ratio_text) = turns.ratios(|(off, on)| on / off);
    let mut on_latencies = std::mem::take(&mut turns.latencies.1);
    rows.push((
        format!(
            "(e) GET 1 ship × 1 day with a token (10,001 in the file), {} conns",
            settings.get_connections
        ),
        format!(
            "{on_rps:.0} req/s = {:.0}% of tokens off, {off_rps:.0} req/s (median of rounds: \
             {ratio_text})",
            100.0 * ratio_median,
        ),
        format!(
            "p50 {} p99 {}",
            ms(percentile(&mut on_latencies, 0.5)),
            ms(percentile(&mut on_latencies, 0.99))
        ),
    ));
    let _ = std::fs::remove_dir_all(&auth_dir);
    let _ = std::fs::remove_file(&auth_file);

    // (f) `powerd backup` while ingest goes on: how long it takes, and what
    // it does to the writers (POST latency in the backup's window against
    // an equally long window before it).
    let mut server = Server::start(&binary, &data_dir);
    let backup_dir = data_dir.with_extension("backup");
    let _ = std::fs::remove_dir_all(&backup_dir);
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let acks: Arc<std::sync::Mutex<Vec<(Instant, Duration)>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..settings.ingest_connections as u64 {
        let (writing, acks, address) = (Arc::clone(&writing), Arc::clone(&acks), server.address);
        let ships = settings.ships;
        writers.push(tokio::spawn(async move {
            let mut client = Client::connect(address).await;
            let mut n = writer;
            while writing.load(Ordering::Relaxed) {
                let (ship, day) = (n % ships, days + (n / ships) as i64);
                let body = day_body(ship, day);
                let t = Instant::now();
                let (status, _) = client.request("POST", "/data", Some(&body)).await;
                assert_eq!(status, 200);
                acks.lock()
                    .expect("acks")
                    .push((Instant::now(), t.elapsed()));
                n += settings.ingest_connections as u64;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let began = Instant::now();
    let output = tokio::task::spawn_blocking({
        let (binary, data_dir, backup_dir) = (binary.clone(), data_dir.clone(), backup_dir.clone());
        move || {
            Command::new(&binary)
                .args(["backup", "--data-dir"])
                .arg(&data_dir)
                .arg("--to")
                .arg(&backup_dir)
                .output()
                .expect("powerd backup runs")
        }
    })
    .await
    .expect("backup task");
    let took = began.elapsed();
    assert!(
        output.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    writing.store(false, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    server.terminate();
    let acks = std::mem::take(&mut *acks.lock().expect("acks"));
    let window = |from: Instant, to: Instant| -> Vec<Duration> {
        acks.iter()
            .filter(|(at, took)| *at >= from && *at - *took <= to)
            .map(|(_, took)| *took)
            .collect()
    };
    let mut during = window(began, began + took);
    let mut before = window(began - took.max(Duration::from_millis(500)), began);
    let backup_bytes = dir_bytes(&backup_dir);
    let summary = String::from_utf8_lossy(&output.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    rows.push((
        format!(
            "(f) backup while {} conns ingest ({:.0} MiB copied)",
            settings.ingest_connections,
            backup_bytes as f64 / 1048576.0
        ),
        format!(
            "{} ({:.0} MiB/s)",
            ms(took),
            backup_bytes as f64 / 1048576.0 / took.as_secs_f64()
        ),
        format!(
            "POSTs during it: {}, p99 {} max {}; before it: p99 {} max {}",
            during.len(),
            ms(percentile(&mut during, 0.99)),
            ms(during.iter().max().copied().unwrap_or_default()),
            ms(percentile(&mut before, 0.99)),
            ms(before.iter().max().copied().unwrap_or_default()),
        ),
    ));
    println!("backup said: {summary}");
    let _ = std::fs::remove_dir_all(&backup_dir);

    // (g) (b) and (c) with the response cache off: what decoding the blocks
    // and printing every bucket cost on each request.
    let uncached = Server::start_with(&binary, &data_dir, &["--response-cache-mib", "0"]);
    let mut baseline = Baseline::start(sample_body.len());
    let mut turns = take_turns(
        &Side {
            address: uncached.address,
            paths: Arc::clone(&day_paths),
            token: None,
        },
        &Side {
            address: baseline.address,
            paths: Arc::new(vec!["/data".to_string()]),
            token: None,
        },
        settings.get_connections,
        round_seconds,
    )
    .await;
    baseline.stop();
    let (uncached_rps, _) = turns.mean_rps();
    let (ratio_median, ratio_text) = turns.ratios(|(powerd, baseline)| powerd / baseline);
    let mut uncached_latencies = std::mem::take(&mut turns.latencies.0);
    rows.push((
        "(g) (b) with the response cache off (--response-cache-mib 0)".into(),
        format!(
            "{uncached_rps:.0} req/s = {:.0}% of baseline (median of rounds: {ratio_text})",
            100.0 * ratio_median,
        ),
        format!(
            "p50 {} p99 {}",
            ms(percentile(&mut uncached_latencies, 0.5)),
            ms(percentile(&mut uncached_latencies, 0.99))
        ),
    ));
    let (year_rps, mut year_latencies) = get_year(uncached.address, &year_path).await;
    rows.push((
        "    (c) with the response cache off".into(),
        format!("{year_rps:.0} req/s"),
        format!(
            "p50 {} p99 {}",
            ms(percentile(&mut year_latencies, 0.5)),
            ms(percentile(&mut year_latencies, 0.99))
        ),
    ));
    drop(uncached);
    let _ = std::fs::remove_dir_all(&data_dir);

    let widths = [
        rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0),
        rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0),
    ];
    println!();
    println!(
        "| {:w0$} | {:w1$} | latency / notes |",
        "measurement",
        "result",
        w0 = widths[0],
        w1 = widths[1]
    );
    println!(
        "|{}|{}|---|",
        "-".repeat(widths[0] + 2),
        "-".repeat(widths[1] + 2)
    );
    for (name, result, notes) in rows {
        println!(
            "| {name:w0$} | {result:w1$} | {notes} |",
            w0 = widths[0],
            w1 = widths[1]
        );
    }
}

/// One ship-day: 288 five-minute kW readings with three decimals.
///
/// Built from pre-rendered pieces with hand-written digits: the load
/// generator shares the machine's two cores with the server, so every
/// microsecond it spends formatting is taken from the thing measured.
/// 200 GETs of `path` on one connection: requests/s and every latency.
async fn get_year(address: SocketAddr, path: &str) -> (f64, Vec<Duration>) {
    let mut client = Client::connect(address).await;
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let (status, _) = client.request("GET", path, None).await;
        latencies.push(t.elapsed());
        assert_eq!(status, 200);
    }
    (1.0 / mean(&latencies), latencies)
}

fn day_body(ship: u64, day: i64) -> Vec<u8> {
    thread_local! {
        static PIECES: std::cell::RefCell<Option<(i64, Vec<Vec<u8>>)>> = const { std::cell::RefCell::new(None) };
    }
    let mut body = Vec::with_capacity(288 * 52 + 64);
    body.extend_from_slice(b"{\"spaceship_id\":");
    push_u64(&mut body, ship);
    body.extend_from_slice(b",\"units\":\"kW\",\"data\":[");
    PIECES.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|(d, _)| *d != day) {
            let pieces = (0..288i64)
                .map(|i| {
                    format!(
                        "{{\"datetime\":\"{}\",\"value\":",
                        timestamp(EPOCH_S + day * DAY_S + i * 300)
                    )
                    .into_bytes()
                })
                .collect();
            *cell = Some((day, pieces));
        }
        let (_, pieces) = cell.as_ref().expect("just filled");
        let mut state = ship.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (day as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        for (i, piece) in pieces.iter().enumerate() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // A daily shape plus noise, 0.000..60.000 kW.
            let base = 20_000.0 + 15_000.0 * ((i as f64 / 288.0) * std::f64::consts::TAU).sin();
            let milli_kw = (base + (state % 10_000) as f64).max(0.0) as u64;
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(piece);
            push_u64(&mut body, milli_kw / 1000);
            let fraction = milli_kw % 1000;
            body.extend_from_slice(&[
                b'.',
                b'0' + (fraction / 100) as u8,
                b'0' + (fraction / 10 % 10) as u8,
                b'0' + (fraction % 10) as u8,
                b'}',
            ]);
        }
    });
    body.extend_from_slice(b"]}");
    body
}

fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut position = digits.len();
    loop {
        position -= 1;
        digits[position] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[position..]);
}

/// One side of a comparison: a server, the requests to send it, the
/// token to send with them.
struct Side {
    address: SocketAddr,
    paths: Arc<Vec<String>>,
    token: Option<Arc<str>>,
}

/// Two servers driven in turns, first then second, for `GET_ROUNDS` short
/// rounds: the box is shared and noisy, so a burst of outside load spoils
/// one round, not the comparison.
struct Turns {
    /// Requests/s of (first, second) per round.
    rps: Vec<(f64, f64)>,
    latencies: (Vec<Duration>, Vec<Duration>),
}

impl Turns {
    /// Requests/s of (first, second), averaged over the rounds.
    fn mean_rps(&self) -> (f64, f64) {
        let rounds = self.rps.len() as f64;
        let (a, b) = self
            .rps
            .iter()
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        (a / rounds, b / rounds)
    }

    /// `ratio` of each round's pair: the median, and every round in
    /// percent, ascending (`61/62/65/65/69`).
    fn ratios(&self, ratio: impl Fn((f64, f64)) -> f64) -> (f64, String) {
        let mut ratios: Vec<f64> = self.rps.iter().map(|&pair| ratio(pair)).collect();
        ratios.sort_by(f64::total_cmp);
        let text: Vec<String> = ratios.iter().map(|r| format!("{:.0}", r * 100.0)).collect();
        (ratios[ratios.len() / 2], text.join("/"))
    }
}

async fn take_turns(first: &Side, second: &Side, connections: usize, seconds: f64) -> Turns {
    let mut turns = Turns {
        rps: Vec::new(),
        latencies: (Vec::new(), Vec::new()),
    };
    for _ in 0..GET_ROUNDS {
        let (a, latencies) = drive_gets(first, connections, seconds).await;
        turns.latencies.0.extend(latencies);
        let (b, latencies) = drive_gets(second, connections, seconds).await;
        turns.latencies.1.extend(latencies);
        turns.rps.push((a, b));
    }
    turns
}

/// GETs of `side`'s paths from `connections` connections for `seconds`:
/// requests/s and every latency.
async fn drive_gets(side: &Side, connections: usize, seconds: f64) -> (f64, Vec<Duration>) {
    let address = side.address;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let counter = Arc::clone(&counter);
        let paths = Arc::clone(&side.paths);
        let token = side.token.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(address).await;
            if let Some(token) = token {
                client = client.with_token(&token);
            }
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let path = &paths[counter.fetch_add(1, Ordering::Relaxed) as usize % paths.len()];
                let t = Instant::now();
                let (status, _) = client.request("GET", path, None).await;
                latencies.push(t.elapsed());
                assert_eq!(status, 200);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("get task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    (latencies.len() as f64 / elapsed, latencies)
}

struct Baseline {
    child: Child,
    address: SocketAddr,
}

impl Baseline {
    fn start(body_bytes: usize) -> Baseline {
        let mut child = Command::new(std::env::current_exe().expect("bench binary"))
            .env(BASELINE_ENV, body_bytes.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start baseline");
        let address = read_listen_line(&mut child);
        Baseline { child, address }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reference point for (b): hyper answering every request with a fixed
/// body, on a two-worker runtime like powerd's.
fn run_baseline_server(body_bytes: usize) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let body = Bytes::from(vec![b'x'; body_bytes]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!(
            "baseline listening on http://{}",
            listener.local_addr().expect("address")
        );
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let body = body.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(body))
                                .expect("static response"),
                        )
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
