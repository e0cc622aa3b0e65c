//! The Parquet lake: `cargo bench --bench lake` (`-- --quick` for 1,000
//! ships). Prints a table:
//!
//! (a) `powerd export` of 10,000 ships × 30 days (28.8 M buckets, written
//!     through the engine first) into an empty lake, with no server running:
//!     seconds, buckets/s, bytes per bucket in the lake;
//! (b) the same export again, nothing changed (what checking costs);
//! (c) after one ship's overwrite of one past day: one file rewritten;
//! (d) the same export while a server serves the directory (a snapshot
//!     is copied first);
//! (e) what continuous export (`serve --lake --lake-every 1s`) costs HTTP
//!     ingest: the same POSTs (one ship-day each, 8 connections) to a
//!     server with it and one without, alternating rounds, each its own
//!     directory.
//!
//! Bytes per bucket of the fleet generator's data in the lake are in
//! `cargo bench --bench storage`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::synthetic::{ingest, post_days};
use common::{cpu_seconds, dir_bytes, parquet_bytes, parquet_files, Server};
use powerd::storage::{Engine, EngineOptions};

const DAYS: i64 = 30;
/// Alternating rounds of (e).
const ROUNDS: usize = 4;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let ships: u64 = if quick { 1_000 } else { 10_000 };
    let root = std::env::temp_dir().join(format!("powerd-bench-lake-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench directory");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_powerd"));
    let data = root.join("data");
    let lake = root.join("lake");
    let mut rows: Vec<[String; 3]> = Vec::new();

    println!("writing {ships} ships × {DAYS} days through the engine ...");
    {
        let engine = Engine::open(&data, EngineOptions::default()).expect("open");
        ingest(&engine, ships, DAYS);
        engine.close().expect("close");
    }
    let buckets = ships * DAYS as u64 * 96;

    let (seconds, summary) = export(&binary, &data, &lake);
    let lake_bytes = parquet_bytes(&lake);
    rows.push([
        format!("(a) export {ships} ships × {DAYS} days, empty lake, no server"),
        format!(
            "{seconds:.2} s ({:.1} M buckets/s)",
            buckets as f64 / seconds / 1e6
        ),
        format!(
            "{:.2} B/bucket in the lake ({:.1} MiB of Parquet; the data directory: {:.2} \
             B/bucket); {summary}",
            lake_bytes as f64 / buckets as f64,
            lake_bytes as f64 / 1048576.0,
            dir_bytes(&data) as f64 / buckets as f64
        ),
    ]);
    let (seconds, summary) = export(&binary, &data, &lake);
    rows.push([
        "(b) the same export again, nothing changed".into(),
        format!("{seconds:.2} s"),
        summary,
    ]);
    {
        let engine = Engine::open(&data, EngineOptions::default()).expect("open");
        let mut spans = common::synthetic::ship_day(7, 3);
        for span in &mut spans {
            span.power_kw += 1.0;
        }
        engine.write(7, spans).expect("write");
        engine.close().expect("close");
    }
    let (seconds, summary) = export(&binary, &data, &lake);
    rows.push([
        "(c) after one ship overwrote one past day".into(),
        format!("{seconds:.2} s"),
        summary,
    ]);
    {
        let server = Server::start(&binary, &data);
        let _ = std::fs::remove_dir_all(&lake);
        let (seconds, summary) = export(&binary, &data, &lake);
        rows.push([
            "(d) (a) while a server serves the directory".into(),
            format!("{seconds:.2} s"),
            summary,
        ]);
        drop(server);
    }

    // (e) ingest with and without continuous export.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ingest_ships = ships.min(1_000);
    let days_per_round = 30;
    let plain_dir = root.join("ingest-plain");
    let lake_dir = root.join("ingest-lake");
    let ingest_lake = root.join("ingest-lake-lake");
    let plain = Server::start_with(&binary, &plain_dir, &[]);
    let exporting = Server::start_with(
        &binary,
        &lake_dir,
        &[
            "--lake",
            ingest_lake.to_str().expect("a UTF-8 path"),
            "--node",
            "bench",
            "--lake-every",
            "1s",
        ],
    );
    let mut ratios = Vec::new();
    let (mut plain_total, mut lake_total) = (0.0, 0.0);
    let cpu = |server: &Server| cpu_seconds(&server.child.id().to_string());
    let (plain_cpu, lake_cpu) = (cpu(&plain), cpu(&exporting));
    for round in 0..ROUNDS as i64 {
        let days = round * days_per_round..(round + 1) * days_per_round;
        let without = runtime.block_on(post_days(plain.address, ingest_ships, days.clone()));
        let with = runtime.block_on(post_days(exporting.address, ingest_ships, days));
        plain_total += without;
        lake_total += with;
        ratios.push(with / without);
    }
    // Both got the same writes; the exporter's last pass may still run.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (plain_cpu, lake_cpu) = (cpu(&plain) - plain_cpu, cpu(&exporting) - lake_cpu);
    drop((plain, exporting));
    ratios.sort_by(f64::total_cmp);
    let text: Vec<String> = ratios.iter().map(|r| format!("{:.0}", r * 100.0)).collect();
    rows.push([
        format!(
            "(e) HTTP ingest with `serve --lake --lake-every 1s`, {ingest_ships} ships × \
             {days_per_round} days a round"
        ),
        format!(
            "{:.0}% of ingest without it (median of rounds: {})",
            ratios[ratios.len() / 2] * 100.0,
            text.join("/")
        ),
        format!(
            "{:.2} vs {:.2} M buckets/s over all rounds; server CPU for the same writes \
             {lake_cpu:.1} s vs {plain_cpu:.1} s (+{:.0}%); lake files: {}",
            lake_total / ROUNDS as f64 / 1e6,
            plain_total / ROUNDS as f64 / 1e6,
            (lake_cpu / plain_cpu - 1.0) * 100.0,
            parquet_files(&ingest_lake).len()
        ),
    ]);

    println!();
    println!("| measurement | result | notes |");
    println!("|---|---|---|");
    for [name, result, notes] in &rows {
        println!("| {name} | {result} | {notes} |");
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Runs `powerd export` (node `bench`): its seconds and its summary line.
fn export(binary: &Path, data: &Path, lake: &Path) -> (f64, String) {
    let started = Instant::now();
    let output = Command::new(binary)
        .args(["export", "--data-dir"])
        .arg(data)
        .arg("--to")
        .arg(lake)
        .args(["--node", "bench"])
        .output()
        .expect("powerd export runs");
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "export failed: {stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("export complete"))
        .unwrap_or_default()
        .trim_start_matches("export complete: ")
        .to_owned();
    (seconds, summary)
}
