//! What `GET /alerts` costs at fleet scale, in-process: writes `--ships N`
//! (default 10,000) ships × `--days D` (default 14) of 15-minute data
//! through the engine (a daily pattern with noise; every 10th ship with a
//! 6-hour gap, every 7th with a spike), checkpoints, then times
//! `query::alerts` for a page of 1,000 ships and for every ship, over 1 and
//! 7 days, and `query::ships_page`. `--keep DIR` writes into DIR and leaves
//! it, to time the same questions over HTTP with `powerd serve --data-dir DIR`.
use std::sync::mpsc;
use std::time::Instant;

use powerd::model::Span;
use powerd::query;
use powerd::storage::{Engine, EngineOptions};

const DAY_S: i64 = 86_400;
/// 2026-01-01T00:00:00Z.
const START_S: i64 = 1_767_225_600;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let ships: u64 = flag("--ships").map_or(10_000, |v| v.parse().expect("--ships N"));
    let days: i64 = flag("--days").map_or(14, |v| v.parse().expect("--days D"));
    let keep = flag("--keep");
    let dir = keep.clone().map_or_else(
        || std::env::temp_dir().join(format!("powerd-alerts-latency-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let engine = Engine::open(&dir, EngineOptions::default()).expect("open");

    let started = Instant::now();
    let (done_tx, done_rx) = mpsc::channel();
    let mut in_flight = 0usize;
    let mut noise = 0x9e37_79b9_7f4a_7c15u64;
    for ship in 0..ships {
        let mut spans = Vec::with_capacity(days as usize * 96);
        for bucket in 0..days * 96 {
            let start_s = START_S + bucket * 900;
            if ship % 10 == 3 && (days * 96 - 60..days * 96 - 36).contains(&bucket) {
                continue;
            }
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let phase = 2.0 * std::f64::consts::PI * (bucket % 96) as f64 / 96.0;
            let mut kw = (1.0 + (ship % 50) as f64)
                * (1.5 + phase.sin())
                * (1.0 + 0.05 * ((noise >> 11) as f64 / (1u64 << 53) as f64));
            if ship % 7 == 4 && bucket == days * 96 - 20 {
                kw *= 8.0;
            }
            spans.push(Span {
                start_s,
                end_s: start_s + 900,
                power_kw: kw,
            });
        }
        let tx = done_tx.clone();
        engine.submit(ship, spans, Box::new(move |r| drop(tx.send(r))));
        in_flight += 1;
        if in_flight >= 256 {
            done_rx.recv().expect("callback").expect("write");
            in_flight -= 1;
        }
    }
    for _ in 0..in_flight {
        done_rx.recv().expect("callback").expect("write");
    }
    engine.checkpoint().expect("checkpoint");
    println!(
        "wrote {ships} ships × {days} days ({} buckets) in {:.1} s, checkpointed",
        ships as i64 * days * 96,
        started.elapsed().as_secs_f64()
    );

    let end = (START_S + days * DAY_S) / 900;
    println!("| question | p50 ms | max ms | ships with alerts |");
    println!("|---|---|---|---|");
    for (label, window_days, per_page) in [
        ("1 day, page of 1,000 ships", 1, 1000),
        ("7 days, page of 1,000 ships", 7, 1000),
        ("1 day, all ships (one request)", 1, usize::MAX),
        ("7 days, all ships (one request)", 7, usize::MAX),
    ] {
        let first = end - window_days * 96;
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let page =
                query::alerts(&engine, first, end, None, per_page, usize::MAX).expect("alerts");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            found = page.ships.len();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| alerts, {label} | {:.1} | {:.1} | {found} |",
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let page = query::ships_page(&engine, "12", 3, 20);
        assert!(page.total > 0);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "| ships, prefix 12, page 3 of 20 | {:.2} | {:.2} | - |",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    engine.close().expect("close");
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
