//! A data directory written before the one energy definition (commit
//! ee7ff7d: log segments version 1, block files version 2 whose bucket
//! energies are floats, ROLLUP version 1) opens, passes `powerd check`, and
//! serves every bucket by the exact definition — which
//! `tests/fixtures/make_legacy.py` computed with rational arithmetic,
//! independently of this code. 27 of its 2,979 buckets printed a different
//! last digit under the old code. Checkpoints, compaction (which rewrites
//! the old blocks) and restarts change nothing.

use std::path::Path;

use powerd::model::{NanoKwh, ShipId};
use powerd::storage::{Engine, EngineOptions};

use crate::fixtures::copy_dir;
use crate::util::TempDir;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/legacy-v1");

/// (bucket, energy, coverage) per ship, as `expected.json` has them.
type Expected = Vec<(ShipId, Vec<(i64, NanoKwh, u32)>)>;

fn expected() -> Expected {
    let text = std::fs::read_to_string(Path::new(FIXTURE).join("expected.json")).expect("read");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut out: Expected = json
        .as_object()
        .expect("object")
        .iter()
        .map(|(ship, rows)| {
            let rows = rows
                .as_array()
                .expect("rows")
                .iter()
                .map(|row| {
                    (
                        row[0].as_i64().expect("bucket"),
                        row[1].as_str().expect("energy").parse().expect("integer"),
                        row[2].as_u64().expect("coverage") as u32,
                    )
                })
                .collect();
            (ship.parse().expect("ship id"), rows)
        })
        .collect();
    out.sort_by_key(|(ship, _)| *ship);
    out
}

/// Every ship's buckets, fleet sums and the ranking, against the oracle.
fn holds(engine: &Engine, expected: &Expected) {
    let (first, end) = (0, i64::MAX / 900 / 2);
    let mut fleet: std::collections::BTreeMap<i64, NanoKwh> = Default::default();
    let mut totals: Vec<(ShipId, NanoKwh)> = Vec::new();
    for (ship, rows) in expected {
        let got: Vec<(i64, NanoKwh, u32)> = engine
            .read_buckets(*ship, first, end)
            .expect("read")
            .expect("ship exists")
            .iter()
            .map(|b| (b.index, b.energy, b.coverage_s))
            .collect();
        assert_eq!(&got, rows, "ship {ship}");
        for &(bucket, energy, _) in rows {
            *fleet.entry(bucket).or_default() += energy;
        }
        totals.push((*ship, rows.iter().map(|r| r.1).sum()));
    }
    let (lo, hi) = (
        *fleet.keys().next().expect("data"),
        *fleet.keys().last().expect("data") + 1,
    );
    let got: Vec<(i64, NanoKwh)> = engine
        .fleet(lo, hi, 1)
        .expect("index")
        .iter()
        .map(|f| (f.first_bucket, f.sum))
        .collect();
    assert_eq!(got, fleet.into_iter().collect::<Vec<_>>());
    totals.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top = engine
        .top_users(lo, hi, totals.len())
        .expect("rank")
        .expect("index");
    assert_eq!(top, totals);
}

#[test]
fn a_directory_from_before_the_exact_energies_opens_and_serves_them() {
    let expected = expected();
    let dir = TempDir::new("legacy-v1");
    copy_dir(&Path::new(FIXTURE).join("data"), dir.path());

    let report = powerd::storage::check(dir.path()).expect("check");
    assert!(report.is_ok(), "{report}");
    assert!(report.records > 0, "the fixture has writes only in the log");

    let options = EngineOptions {
        // Every block is rewritten by the first checkpoint.
        compact_below_live_fraction: 1.01,
        ..EngineOptions::default()
    };
    let engine = Engine::open(dir.path(), options.clone()).expect("open");
    holds(&engine, &expected);
    engine.checkpoint().expect("checkpoint");
    holds(&engine, &expected);
    engine.close().expect("close");
    drop(engine);

    // Only current-version blocks are left, and the ROLLUP is current.
    let blocks: Vec<_> = std::fs::read_dir(dir.path().join("blocks"))
        .expect("list")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("read"))
        .collect();
    assert!(!blocks.is_empty());
    for block in &blocks {
        assert_eq!(
            u32::from_le_bytes(block[8..12].try_into().unwrap()),
            powerd::storage::BLOCK_VERSION
        );
    }
    let report = powerd::storage::check(dir.path()).expect("check");
    assert!(report.is_ok() && report.notes.is_empty(), "{report}");

    let engine = Engine::open(dir.path(), options).expect("reopen");
    holds(&engine, &expected);
    engine.close().expect("close");
}
