//! The engine against the reference model of SPEC.md: a per-ship timeline
//! of power per second, where each write overwrites the seconds it covers.
//! Random batches (unaligned, overlapping, with gaps, over several ships),
//! interleaved with checkpoints and reopenings, must leave every bucket's
//! energy and coverage equal to the model's.

use std::collections::HashMap;

use powerd::model::{Bucket, Span, BUCKET_SECONDS};
use powerd::storage::{Engine, EngineOptions};
use proptest::prelude::*;

use crate::util::TempDir;

/// Seconds simulated per ship: two days.
const HORIZON_S: i64 = 2 * 86_400;
const SHIPS: u64 = 3;

#[derive(Clone, Debug)]
enum Op {
    Write { ship: u64, spans: Vec<Span> },
    Checkpoint,
    Reopen,
}

/// Sorted, disjoint spans with gaps, unaligned starts and assorted lengths.
fn batch() -> impl Strategy<Value = Vec<Span>> {
    let step = prop_oneof![Just(300i64), Just(900), Just(3600), 1i64..2000];
    (
        0i64..HORIZON_S - 1,
        step,
        prop::collection::vec((0u8..4, 0u32..50_000, any::<bool>()), 1..40),
    )
        .prop_map(|(start, step, readings)| {
            let mut spans = Vec::new();
            let mut t = start;
            for (gap_kind, raw_power, decimal) in readings {
                // Now and then a gap (missing data) or a short span.
                let len = if gap_kind == 0 { step / 2 + 1 } else { step };
                if gap_kind == 1 {
                    t += step;
                }
                if t + len > HORIZON_S {
                    break;
                }
                let power_kw = if decimal {
                    f64::from(raw_power) / 1000.0
                } else {
                    f64::from(raw_power) / 7.0
                };
                spans.push(Span {
                    start_s: t,
                    end_s: t + len,
                    power_kw,
                });
                t += len;
            }
            spans
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..SHIPS, batch()).prop_map(|(ship, spans)| Op::Write { ship, spans }),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
    ]
}

/// The SPEC's reference model: power per second, `None` where uncovered.
struct Model {
    seconds: HashMap<u64, Vec<Option<f64>>>,
}

impl Model {
    fn write(&mut self, ship: u64, spans: &[Span]) {
        let timeline = self
            .seconds
            .entry(ship)
            .or_insert_with(|| vec![None; HORIZON_S as usize]);
        for span in spans {
            for t in span.start_s..span.end_s {
                timeline[t as usize] = Some(span.power_kw);
            }
        }
    }

    fn buckets(&self, ship: u64) -> Option<Vec<Bucket>> {
        let timeline = self.seconds.get(&ship)?;
        let mut out = Vec::new();
        for (index, seconds) in timeline.chunks(BUCKET_SECONDS as usize).enumerate() {
            let covered: Vec<f64> = seconds.iter().flatten().copied().collect();
            if !covered.is_empty() {
                let energy_kwh = covered.iter().sum::<f64>() / 3600.0;
                out.push(Bucket {
                    index: index as i64,
                    energy_kwh,
                    coverage_s: covered.len() as u32,
                });
            }
        }
        Some(out)
    }
}

fn assert_matches(engine: &Engine, model: &Model) -> Result<(), TestCaseError> {
    for ship in 0..SHIPS + 1 {
        let got = engine
            .read_buckets(ship, 0, HORIZON_S / BUCKET_SECONDS)
            .expect("read");
        let want = model.buckets(ship);
        prop_assert_eq!(got.is_some(), want.is_some(), "ship {} existence", ship);
        let (Some(got), Some(want)) = (got, want) else {
            continue;
        };
        prop_assert_eq!(got.len(), want.len(), "ship {} bucket count", ship);
        for (g, w) in got.iter().zip(&want) {
            prop_assert_eq!(g.index, w.index);
            prop_assert_eq!(
                g.coverage_s,
                w.coverage_s,
                "ship {} bucket {}",
                ship,
                g.index
            );
            let tolerance = 1e-9 * w.energy_kwh.abs().max(1.0);
            prop_assert!(
                (g.energy_kwh - w.energy_kwh).abs() <= tolerance,
                "ship {} bucket {}: {} vs {}",
                ship,
                g.index,
                g.energy_kwh,
                w.energy_kwh
            );
        }
    }
    Ok(())
}

fn small_log() -> EngineOptions {
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
                Op::Write { ship, spans } => {
                    if spans.is_empty() {
                        continue;
                    }
                    engine.write(ship, spans.clone()).expect("write");
                    model.write(ship, &spans);
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
            .all(|b| b.energy_kwh == (1100 + ship) as f64 / 4.0));
    }
    let rare = engine
        .read_buckets(99, 0, 96)
        .expect("read")
        .expect("ship exists");
    assert_eq!(rare.len(), 6);
    assert!(rare.iter().all(|b| b.energy_kwh == 1.0));
}
