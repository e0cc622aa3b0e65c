//! The rollup index against brute force. Random POSTs (overwrites, partial
//! buckets, gaps, unaligned starts; see `engine.rs`) over several ships,
//! interleaved with checkpoints, reopenings, and a rollup file that goes
//! missing or is damaged; after every step, fleet views and rankings over
//! random windows (unaligned too) must equal the sums of every ship's
//! buckets — exactly, to the nano-kWh, since both add the same bucket
//! energies.

use std::collections::BTreeMap;

use powerd::model::{spans_to_buckets, NanoKwh, ShipId, BUCKET_SECONDS};
use powerd::storage::{Engine, FleetInterval};
use proptest::prelude::*;

use crate::engine::{post, small_log, write, Post, EPOCH_S, HORIZON_S};
use crate::util::TempDir;

const SHIPS: u64 = 5;
const FIRST: i64 = EPOCH_S / BUCKET_SECONDS;
const END: i64 = (EPOCH_S + HORIZON_S) / BUCKET_SECONDS;

#[derive(Clone, Debug)]
enum Op {
    Write {
        ship: u64,
        post: Post,
    },
    Checkpoint,
    Reopen,
    /// Reopen without the rollup file (deleted) or with a damaged one.
    ReopenWithout {
        damage: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..SHIPS, post()).prop_map(|(ship, post)| Op::Write { ship, post }),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
        1 => any::<bool>().prop_map(|damage| Op::ReopenWithout { damage }),
    ]
}

/// A window of buckets, often not aligned to hours or days, sometimes
/// empty or outside the data.
fn window() -> impl Strategy<Value = (i64, i64)> {
    (FIRST - 20..END + 20, 0i64..(END - FIRST + 40)).prop_map(|(first, len)| (first, first + len))
}

/// Every ship's bucket energies in `[first, end)`, from its spans.
fn ship_buckets(engine: &Engine, first: i64, end: i64) -> BTreeMap<ShipId, Vec<(i64, NanoKwh)>> {
    let mut out = BTreeMap::new();
    for ship in engine.ships() {
        let spans = engine
            .read_spans(ship, first * BUCKET_SECONDS, end * BUCKET_SECONDS)
            .expect("read")
            .expect("a listed ship exists");
        let mut buckets = Vec::new();
        spans_to_buckets(&spans, first, end, &mut buckets);
        out.insert(ship, buckets.iter().map(|b| (b.index, b.energy)).collect());
    }
    out
}

pub(crate) fn brute_fleet(engine: &Engine, first: i64, end: i64, step: i64) -> Vec<FleetInterval> {
    let mut intervals: BTreeMap<i64, (NanoKwh, u32)> = BTreeMap::new();
    for buckets in ship_buckets(engine, first, end).values() {
        let mut last = None;
        for &(index, energy) in buckets {
            let interval = index.div_euclid(step) * step;
            let entry = intervals.entry(interval).or_default();
            entry.0 += energy;
            if last != Some(interval) {
                entry.1 += 1;
                last = Some(interval);
            }
        }
    }
    intervals
        .into_iter()
        .map(|(first_bucket, (sum, ships))| FleetInterval {
            first_bucket,
            sum,
            ships,
        })
        .collect()
}

pub(crate) fn brute_top(
    engine: &Engine,
    first: i64,
    end: i64,
    count: usize,
) -> Vec<(ShipId, NanoKwh)> {
    let mut totals: Vec<(ShipId, NanoKwh)> = ship_buckets(engine, first, end)
        .into_iter()
        .filter(|(_, buckets)| !buckets.is_empty())
        .map(|(ship, buckets)| (ship, buckets.iter().map(|b| b.1).sum()))
        .collect();
    totals.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    totals.truncate(count);
    totals
}

fn assert_agrees(engine: &Engine, windows: &[(i64, i64)]) -> Result<(), TestCaseError> {
    for &(first, end) in windows {
        for step in [1, 3, 4, 96] {
            let got = engine.fleet(first, end, step).expect("the index is on");
            prop_assert_eq!(
                got,
                brute_fleet(engine, first, end, step),
                "fleet [{}, {}) step {}",
                first,
                end,
                step
            );
        }
        for count in [1, 2, SHIPS as usize + 1] {
            let got = engine
                .top_users(first, end, count)
                .expect("read")
                .expect("the index is on");
            prop_assert_eq!(
                got,
                brute_top(engine, first, end, count),
                "top {} of [{}, {})",
                count,
                first,
                end
            );
        }
    }
    // The whole range at bucket resolution covers every stored value.
    let everything = (FIRST - 200, END + 200);
    prop_assert_eq!(
        engine.fleet(everything.0, everything.1, 1).expect("on"),
        brute_fleet(engine, everything.0, everything.1, 1)
    );
    let stored = engine.stored_range().expect("on");
    let all = brute_fleet(engine, everything.0, everything.1, 1);
    prop_assert_eq!(
        stored,
        all.first().map(|f| (
            f.first_bucket,
            all.last().expect("non-empty").first_bucket + 1
        ))
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn rollups_agree_with_brute_force(
        ops in prop::collection::vec(op(), 1..30),
        windows in prop::collection::vec(window(), 3),
    ) {
        let dir = TempDir::new("rollup-model");
        let mut engine = Engine::open(dir.path(), small_log()).expect("open");
        for op in ops {
            match op {
                Op::Write { ship, post } => {
                    if post.readings.is_empty() {
                        continue;
                    }
                    write(&engine, ship, &post);
                }
                Op::Checkpoint => engine.checkpoint().expect("checkpoint"),
                Op::Reopen => {
                    engine.close().expect("close");
                    drop(engine);
                    engine = Engine::open(dir.path(), small_log()).expect("reopen");
                }
                Op::ReopenWithout { damage } => {
                    engine.close().expect("close");
                    drop(engine);
                    let path = dir.path().join("ROLLUP");
                    if damage {
                        if let Ok(mut bytes) = std::fs::read(&path) {
                            let middle = bytes.len() / 2;
                            bytes[middle] ^= 0x40;
                            std::fs::write(&path, bytes).expect("damage");
                        }
                    } else {
                        let _ = std::fs::remove_file(&path);
                    }
                    engine = Engine::open(dir.path(), small_log()).expect("reopen");
                }
            }
            assert_agrees(&engine, &windows)?;
        }
    }
}

/// Overwriting a bucket again and again with values whose float sums drift
/// (0.1 + 0.2 ...) leaves the fleet total at exactly the last value, also
/// across a restart.
#[test]
fn overwrites_leave_no_drift() {
    let dir = TempDir::new("rollup-drift");
    let engine = Engine::open(dir.path(), Default::default()).expect("open");
    let span = |kw: f64| powerd::model::Span {
        start_s: 0,
        end_s: 900,
        power_kw: kw,
    };
    for k in 0..1000 {
        engine
            .write(1, vec![span(0.1 * f64::from(k % 7) + 0.2)])
            .expect("write");
        engine.write(2, vec![span(0.3)]).expect("write");
    }
    engine.write(1, vec![span(4.0)]).expect("write");
    let want = vec![FleetInterval {
        first_bucket: 0,
        sum: 1_075_000_000,
        ships: 2,
    }];
    assert_eq!(engine.fleet(0, 1, 1), Some(want.clone()));
    engine.close().expect("close");
    drop(engine);
    let engine = Engine::open(dir.path(), Default::default()).expect("reopen");
    assert_eq!(engine.fleet(0, 1, 1), Some(want));
}

/// Without the index (turned off), the same questions are answered by
/// scanning, with the same answers.
#[test]
fn scanning_answers_match_the_index() {
    let dir = TempDir::new("rollup-scan");
    let engine = Engine::open(dir.path(), Default::default()).expect("open");
    for ship in 0..20u64 {
        let spans = (0..200)
            .map(|k| powerd::model::Span {
                start_s: k * 700 + ship as i64 * 13,
                end_s: k * 700 + 650 + ship as i64 * 13,
                power_kw: (ship * 7 + k as u64 % 11) as f64 / 3.0,
            })
            .collect();
        engine.write(ship, spans).expect("write");
    }
    let windows = [(0, 200), (5, 77), (-10, 10_000), (96, 97)];
    for (first, end) in windows {
        for step in [1, 4, 96] {
            let index = powerd::query::fleet(&engine, first, end, step).expect("fleet");
            let scan = powerd::query::fleet_scan(&engine, first, end, step).expect("scan");
            assert_eq!(index.len(), scan.len());
            for (a, b) in index.iter().zip(&scan) {
                assert_eq!((a.first_bucket, a.ships), (b.first_bucket, b.ships));
                // Bucket columns and span arithmetic may differ in the last
                // place of a bucket's energy: one nano-kWh per bucket at most.
                assert!(
                    (a.sum - b.sum).abs() <= i128::from(20 * step as i32),
                    "{a:?} {b:?}"
                );
            }
        }
        let index = powerd::query::top_users(&engine, first, end, 5).expect("top");
        let scan = powerd::query::top_users_scan(&engine, first, end, 5).expect("scan");
        assert_eq!(
            index.iter().map(|e| e.0).collect::<Vec<_>>(),
            scan.iter().map(|e| e.0).collect::<Vec<_>>()
        );
    }
}

/// `powerd check` compares the rollup file with the blocks: a damaged one
/// is a note (it gets rebuilt), one that fits the manifest but disagrees
/// with the data is a problem.
#[test]
fn check_verifies_the_rollup_file() {
    let write_one = |dir: &std::path::Path, kw: f64| {
        let engine = Engine::open(dir, Default::default()).expect("open");
        let span = powerd::model::Span {
            start_s: 0,
            end_s: 3600,
            power_kw: kw,
        };
        engine.write(1, vec![span]).expect("write");
        engine.close().expect("close");
    };
    let (a, b) = (
        TempDir::new("rollup-check-a"),
        TempDir::new("rollup-check-b"),
    );
    // Powers whose chunks have the same length, so the manifests are equal.
    write_one(a.path(), 2.0);
    write_one(b.path(), 3.0);
    let report = powerd::storage::check(a.path()).expect("check");
    assert!(report.is_ok() && report.notes.is_empty(), "{report}");

    // Same manifest, other data: the index of 2 kW in the directory of 3 kW.
    std::fs::copy(a.path().join("ROLLUP"), b.path().join("ROLLUP")).expect("copy");
    let report = powerd::storage::check(b.path()).expect("check");
    assert!(!report.is_ok(), "{report}");
    assert!(report.to_string().contains("ROLLUP disagrees"), "{report}");

    let path = a.path().join("ROLLUP");
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).expect("damage");
    let report = powerd::storage::check(a.path()).expect("check");
    assert!(report.is_ok(), "{report}");
    assert!(
        report
            .to_string()
            .contains("ROLLUP cannot be used (CRC mismatch)"),
        "{report}"
    );
    // And the engine rebuilds it: the fleet answer is right again.
    let engine = Engine::open(a.path(), Default::default()).expect("open");
    assert_eq!(
        engine.fleet(0, 4, 4),
        Some(vec![FleetInterval {
            first_bucket: 0,
            sum: 2_000_000_000,
            ships: 1
        }])
    );
}

/// A rebuilt index is saved at once (a start without writes checkpoints
/// nothing), and starts without writes leave no empty log segments behind.
#[test]
fn a_rebuilt_index_is_saved_and_idle_restarts_leave_no_segments() {
    let dir = TempDir::new("rollup-saved");
    let engine = Engine::open(dir.path(), Default::default()).expect("open");
    let span = powerd::model::Span {
        start_s: 0,
        end_s: 900,
        power_kw: 4.0,
    };
    engine.write(3, vec![span]).expect("write");
    engine.close().expect("close");
    drop(engine);
    let rollup = dir.path().join("ROLLUP");
    let saved = std::fs::read(&rollup).expect("the checkpoint wrote it");
    std::fs::remove_file(&rollup).expect("remove");
    for _ in 0..3 {
        let engine = Engine::open(dir.path(), Default::default()).expect("open");
        assert_eq!(std::fs::read(&rollup).ok().as_ref(), Some(&saved));
        engine.close().expect("close");
    }
    let segments = std::fs::read_dir(dir.path().join("log"))
        .expect("log")
        .count();
    assert!(segments <= 1, "{segments} segments after idle restarts");
}
