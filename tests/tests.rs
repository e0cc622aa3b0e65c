//! Integration tests: one binary, one module per theme.

mod auth;
mod backup;
mod corruption;
mod crash;
mod dashboard;
mod deploy;
mod diskfull;
mod energy;
mod engine;
mod faults;
mod fixtures;
mod forecast;
mod fuzz_replay;
mod http;
mod lake;
mod legacy;
mod lostfiles;
mod metrics;
mod openapi;
mod powercut;
mod process;
mod rollup;
mod shards;
mod tls;
mod tokens;
mod util;

#[test]
fn engine_round_trip() {
    let dir = std::env::temp_dir().join(format!("powerd-smoke-{}", std::process::id()));
    let engine = powerd::storage::Engine::open(&dir, Default::default()).unwrap();
    let span = powerd::model::Span {
        start_s: 0,
        end_s: 3600,
        power_kw: 12.0,
    };
    engine.write(7, vec![span]).unwrap();
    let buckets = engine.read_buckets(7, 0, 4).unwrap().unwrap();
    assert_eq!(buckets.len(), 4);
    assert!(buckets
        .iter()
        .all(|b| b.energy == 3_000_000_000 && b.coverage_s == 900));
    let _ = std::fs::remove_dir_all(&dir);
}
