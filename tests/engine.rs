//! The engine against the reference model of SPEC.md: a per-ship timeline
//! of energy density per second, where each POST overwrites the seconds it
//! covers. Random POST bodies — kW and kWh, 5-minute, 15-minute, hourly and
//! odd spacings, unaligned starts, gaps, unsorted readings, with and without
//! `interval` — go through the real parser, normaliser and engine, over
//! several ships, interleaved with checkpoints and reopenings; every
//! bucket's energy and coverage must equal the model's, which applies the
//! SPEC's span rule itself, second by second.

use std::collections::HashMap;

use powerd::model::{Span, Units, BUCKET_SECONDS};
use powerd::storage::{Engine, EngineOptions};
use proptest::prelude::*;

use crate::util::TempDir;

/// Seconds simulated per ship: two days, starting at 2020-01-01T00:00:00Z.
pub const HORIZON_S: i64 = 2 * 86_400;
pub const EPOCH_S: i64 = 1_577_836_800;
const SHIPS: u64 = 3;

/// One POST: readings as (seconds from EPOCH_S, value), in request order.
#[derive(Clone, Debug)]
pub struct Post {
    units: Units,
    interval_s: Option<i64>,
    pub readings: Vec<(i64, f64)>,
}

#[derive(Clone, Debug)]
enum Op {
    Write { ship: u64, post: Post },
    Checkpoint,
    Reopen,
}

/// A POST: a start anywhere (unaligned), a spacing, some readings skipped
/// (gaps), now and then one early (a shorter span), shuffled.
pub fn post() -> impl Strategy<Value = Post> {
    let spacing = prop_oneof![Just(300i64), Just(900), Just(3600), 1i64..2000];
    (
        0i64..HORIZON_S - 2 * 3600,
        spacing,
        any::<bool>(),
        0u8..3,
        prop::collection::vec((0u8..6, 0u32..50_000, any::<bool>(), any::<u32>()), 1..40),
    )
        .prop_map(|(start, spacing, kilowatts, interval_kind, readings)| {
            let mut out: Vec<(i64, f64, u32)> = Vec::new();
            let mut t = start;
            for (kind, raw, decimal, order) in readings {
                match kind {
                    0 => t += spacing,     // a missing reading: a gap
                    1 => t -= spacing / 3, // an early reading
                    _ => {}
                }
                if t < 0
                    || t + spacing > HORIZON_S
                    || out.last().is_some_and(|&(last, _, _)| t <= last)
                {
                    t += spacing;
                    continue;
                }
                let value = if decimal {
                    f64::from(raw) / 1000.0
                } else {
                    f64::from(raw) / 7.0
                };
                out.push((t, value, order));
                t += spacing;
            }
            // Readings may arrive in any order.
            out.sort_by_key(|&(_, _, order)| order);
            let interval_s = match interval_kind {
                0 => None,
                1 => Some(spacing),
                _ => Some((spacing / 2).max(1)),
            };
            Post {
                units: if kilowatts { Units::Kw } else { Units::Kwh },
                interval_s,
                readings: out.into_iter().map(|(t, v, _)| (t, v)).collect(),
            }
        })
}

/// The JSON body of `post` for `ship`.
fn body(ship: u64, post: &Post) -> Vec<u8> {
    let data: Vec<String> = post
        .readings
        .iter()
        .map(|&(t, v)| {
            format!(
                r#"{{"datetime":"{}","value":{v}}}"#,
                powerd::wire::format_timestamp(EPOCH_S + t)
            )
        })
        .collect();
    let units = if post.units == Units::Kw { "kW" } else { "kWh" };
    let interval = post
        .interval_s
        .map(|s| format!(r#","interval":"PT{s}S""#))
        .unwrap_or_default();
    format!(
        r#"{{"spaceship_id":{ship},"units":"{units}"{interval},"data":[{}]}}"#,
        data.join(",")
    )
    .into_bytes()
}

/// The engine's side: parse, normalise, write, exactly as `POST /data` does.
pub fn write(engine: &Engine, ship: u64, post: &Post) {
    let parsed =
        powerd::wire::parse_post_body(&body(ship, post)).expect("generated bodies are valid");
    let spans = powerd::normalise::normalise(parsed.units, &parsed.readings, parsed.interval_s)
        .expect("no duplicates");
    engine.write(ship, spans).expect("write");
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..SHIPS, post()).prop_map(|(ship, post)| Op::Write { ship, post }),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
    ]
}

/// The SPEC's reference model: energy (kWh) per second, `None` where
/// uncovered.
struct Model {
    seconds: HashMap<u64, Vec<Option<f64>>>,
}

impl Model {
    /// SPEC.md's span rule, applied second by second: reading i covers
    /// `[t_i, t_i + min(t_(i+1) - t_i, nominal))`, `nominal` being the
    /// `interval` or the most common spacing (ties: the smaller; a lone
    /// reading: 900 s); kW is energy per hour, kWh is spread evenly.
    fn write(&mut self, ship: u64, post: &Post) {
        let mut readings = post.readings.clone();
        readings.sort_by_key(|&(t, _)| t);
        let mut spacings: HashMap<i64, usize> = HashMap::new();
        for pair in readings.windows(2) {
            *spacings.entry(pair[1].0 - pair[0].0).or_default() += 1;
        }
        let most_common = spacings
            .iter()
            .max_by_key(|&(&spacing, &count)| (count, std::cmp::Reverse(spacing)))
            .map(|(&s, _)| s);
        let nominal = post.interval_s.or(most_common).unwrap_or(900);
        let timeline = self
            .seconds
            .entry(ship)
            .or_insert_with(|| vec![None; HORIZON_S as usize]);
        for (i, &(t, value)) in readings.iter().enumerate() {
            let next = readings.get(i + 1).map_or(i64::MAX, |&(n, _)| n);
            let d = (next - t).min(nominal);
            let kwh_per_second = match post.units {
                Units::Kw => value / 3600.0,
                Units::Kwh => value / d as f64,
            };
            // The engine stores past the horizon too; only the horizon is compared.
            for second in t..(t + d).min(HORIZON_S) {
                timeline[second as usize] = Some(kwh_per_second);
            }
        }
    }

    /// (index, kWh, covered seconds) per bucket, summed second by second
    /// in floats: the reference, not the definition, so compared within
    /// its rounding.
    fn buckets(&self, ship: u64) -> Option<Vec<(i64, f64, u32)>> {
        let timeline = self.seconds.get(&ship)?;
        let mut out = Vec::new();
        for (index, seconds) in timeline.chunks(BUCKET_SECONDS as usize).enumerate() {
            let covered: Vec<f64> = seconds.iter().flatten().copied().collect();
            if !covered.is_empty() {
                out.push((
                    EPOCH_S / BUCKET_SECONDS + index as i64,
                    covered.iter().sum::<f64>(),
                    covered.len() as u32,
                ));
            }
        }
        Some(out)
    }
}

fn assert_matches(engine: &Engine, model: &Model) -> Result<(), TestCaseError> {
    for ship in 0..SHIPS + 1 {
        let got = engine
            .read_buckets(
                ship,
                EPOCH_S / BUCKET_SECONDS,
                (EPOCH_S + HORIZON_S) / BUCKET_SECONDS,
            )
            .expect("read");
        let want = model.buckets(ship);
        prop_assert_eq!(got.is_some(), want.is_some(), "ship {} existence", ship);
        let (Some(got), Some(want)) = (got, want) else {
            continue;
        };
        prop_assert_eq!(got.len(), want.len(), "ship {} bucket count", ship);
        for (g, &(index, kwh, coverage_s)) in got.iter().zip(&want) {
            prop_assert_eq!(g.index, index);
            prop_assert_eq!(g.coverage_s, coverage_s, "ship {} bucket {}", ship, g.index);
            // The engine's value is the exact energy rounded to the nano-kWh.
            let tolerance = 1e-9 * kwh.abs().max(1.0) + 0.5e-9;
            prop_assert!(
                (g.kwh() - kwh).abs() <= tolerance,
                "ship {} bucket {}: {} vs {}",
                ship,
                g.index,
                g.kwh(),
                kwh
            );
        }
    }
    Ok(())
}

pub fn small_log() -> EngineOptions {
    // Tiny checkpoint threshold so automatic checkpoints happen mid-run too.
    EngineOptions {
        checkpoint_log_bytes: 4096,
        ..EngineOptions::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_reference_model(ops in prop::collection::vec(op(), 1..30)) {
        let dir = TempDir::new("engine-model");
        let mut engine = Engine::open(dir.path(), small_log()).expect("open");
        let mut model = Model { seconds: HashMap::new() };
        for op in ops {
            match op {
                Op::Write { ship, post } => {
                    if post.readings.is_empty() {
                        continue;
                    }
                    write(&engine, ship, &post);
                    model.write(ship, &post);
                }
                Op::Checkpoint => engine.checkpoint().expect("checkpoint"),
                Op::Reopen => {
                    engine.close().expect("close");
                    drop(engine);
                    engine = Engine::open(dir.path(), small_log()).expect("reopen");
                }
            }
            assert_matches(&engine, &model)?;
        }
        engine.close().expect("close");
        drop(engine);
        let engine = Engine::open(dir.path(), small_log()).expect("final reopen");
        assert_matches(&engine, &model)?;
        let report = powerd::storage::check(dir.path()).expect("check");
        prop_assert!(report.is_ok(), "{}", report);
    }
}

#[test]
fn a_second_engine_on_the_same_directory_is_refused() {
    let dir = TempDir::new("engine-lock");
    let _first = Engine::open(dir.path(), EngineOptions::default()).expect("open");
    let second = Engine::open(dir.path(), EngineOptions::default());
    assert!(
        matches!(second, Err(powerd::storage::StorageError::Locked { .. })),
        "{:?}",
        second.err()
    );
}

#[test]
fn reads_see_writes_across_checkpoint_and_compaction() {
    let dir = TempDir::new("engine-compaction");
    let engine = Engine::open(dir.path(), EngineOptions::default()).expect("open");
    // Rewrite the same day many times; each checkpoint replaces the chunk,
    // so older blocks die and compaction must keep the live ones readable.
    for round in 0..12i64 {
        for ship in 0..20u64 {
            let spans: Vec<Span> = (0..96)
                .map(|i| Span {
                    start_s: i * 900,
                    end_s: (i + 1) * 900,
                    power_kw: (round as u64 * 100 + ship) as f64,
                })
                .collect();
            engine.write(ship, spans).expect("write");
        }
        if round % 2 == 0 {
            // Ship 99 changes rarely, so its chunk sits in an old block.
            engine
                .write(
                    99,
                    vec![Span {
                        start_s: round * 900,
                        end_s: round * 900 + 900,
                        power_kw: 4.0,
                    }],
                )
                .expect("write");
        }
        engine.checkpoint().expect("checkpoint");
    }
    let stats = engine.stats();
    assert!(
        stats.block_files <= 3,
        "compaction should keep few block files, found {}",
        stats.block_files
    );
    for ship in 0..20u64 {
        let buckets = engine
            .read_buckets(ship, 0, 96)
            .expect("read")
            .expect("ship exists");
        assert_eq!(buckets.len(), 96);
        assert!(buckets
            .iter()
            .all(|b| b.energy == (1100 + ship as i128) * 250_000_000));
    }
    let rare = engine
        .read_buckets(99, 0, 96)
        .expect("read")
        .expect("ship exists");
    assert_eq!(rare.len(), 6);
    assert!(rare.iter().all(|b| b.energy == 1_000_000_000));
}
