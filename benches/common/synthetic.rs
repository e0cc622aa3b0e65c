//! The synthetic fleet the fleet and lake benchmarks write: 15-minute kW
//! readings per ship-day, deterministic per (ship, day).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use powerd::model::{Span, BUCKET_SECONDS};
use powerd::storage::Engine;

use super::timestamp;

pub const DAY_S: i64 = 86_400;
/// 2026-01-05T00:00:00Z, a Monday.
pub const EPOCH_S: i64 = 1_767_571_200;
/// Writer threads of [`ingest`].
pub const WRITERS: usize = 32;

pub fn ingest(engine: &Engine, ships: u64, days: i64) {
    let next = AtomicUsize::new(0);
    let total = ships as usize * days as usize;
    std::thread::scope(|scope| {
        for _ in 0..WRITERS {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let (day, ship) = ((n as u64 / ships) as i64, n as u64 % ships);
                engine.write(ship, ship_day(ship, day)).expect("write");
            });
        }
    });
}

/// A ship's level is log-uniform between 5 and 500 kW (shuttles to
/// carriers), with a daily cycle at its own phase, weekends at 85%, and
/// ±10% noise.
pub fn ship_day(ship: u64, day: i64) -> Vec<Span> {
    let level = 5.0 * 100f64.powf(unit(ship, 0));
    let phase = unit(ship, 1) * std::f64::consts::TAU;
    let weekend = if day % 7 >= 5 { 0.85 } else { 1.0 };
    (0..96)
        .map(|k| {
            let start_s = EPOCH_S + day * DAY_S + k * BUCKET_SECONDS;
            let cycle = 1.0 + 0.3 * (phase + k as f64 / 96.0 * std::f64::consts::TAU).sin();
            let noise = 0.9 + 0.2 * unit(ship, (day * 96 + k) as u64 + 2);
            let kw = (level * cycle * weekend * noise * 1000.0).round() / 1000.0;
            Span {
                start_s,
                end_s: start_s + BUCKET_SECONDS,
                power_kw: kw,
            }
        })
        .collect()
}

/// A deterministic number in [0, 1) for (ship, k): splitmix64.
fn unit(ship: u64, k: u64) -> f64 {
    let mut z = ship
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(k.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(0x94D0_49BB_1331_11EB);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// `ship_day(ship, day)` as a `POST /data` body: kW readings with an
/// explicit 15-minute interval.
pub fn day_post(ship: u64, day: i64) -> Vec<u8> {
    let mut body = format!(r#"{{"spaceship_id":{ship},"units":"kW","interval":"PT15M","data":["#);
    for (i, span) in ship_day(ship, day).iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            r#"{{"datetime":"{}","value":{}}}"#,
            timestamp(span.start_s),
            span.power_kw
        ));
    }
    body.push_str("]}");
    body.into_bytes()
}

/// POSTs every ship's `days` (one ship-day each) over 8 connections;
/// buckets/s.
pub async fn post_days(
    address: std::net::SocketAddr,
    ships: u64,
    days: std::ops::Range<i64>,
) -> f64 {
    const CONNECTIONS: usize = 8;
    let first_day = days.start;
    let posts = ships * (days.end - days.start) as u64;
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let next = std::sync::Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut client = super::Client::connect(address).await;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= posts {
                    break;
                }
                let (ship, day) = (n % ships, first_day + (n / ships) as i64);
                let (status, body) = client
                    .request("POST", "/data", Some(&day_post(ship, day)))
                    .await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            }
        }));
    }
    for task in tasks {
        task.await.expect("an ingest connection");
    }
    (posts * 96) as f64 / started.elapsed().as_secs_f64()
}
