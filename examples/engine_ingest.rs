//! In-process ingest through the engine alone (no HTTP): 8 writer threads,
//! one ship-day of 288 five-minute spans per write. Prints writes/s and the
//! average group-commit size. `-- --no-rollup-index` runs without the
//! rollup index, to see what keeping it costs.
use std::sync::Arc;
use std::time::Instant;

use powerd::model::Span;
use powerd::storage::{Engine, EngineOptions};

fn main() {
    let dir = std::env::temp_dir().join(format!("powerd-engine-ingest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = EngineOptions {
        rollup_index: !std::env::args().any(|a| a == "--no-rollup-index"),
        ..EngineOptions::default()
    };
    let engine = Arc::new(Engine::open(&dir, options).expect("open"));
    let threads = 8;
    let per_thread = 1000u64;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for n in 0..per_thread {
                    let ship = t * per_thread + n % 100;
                    let day = (n / 100) as i64;
                    let spans: Vec<Span> = (0..288)
                        .map(|i| {
                            let start_s = 1_533_081_600 + day * 86_400 + i * 300;
                            Span {
                                start_s,
                                end_s: start_s + 300,
                                power_kw: ((i * 7919 + n as i64) % 50_000) as f64 / 1000.0,
                            }
                        })
                        .collect();
                    engine.write(ship, spans).expect("write");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = engine.stats();
    let writes = threads * per_thread;
    println!(
        "{writes} writes in {elapsed:.2}s: {:.0} writes/s, {:.0} spans/s, {} fsyncs ({:.1} writes per fsync), {} checkpoints",
        writes as f64 / elapsed,
        writes as f64 * 288.0 / elapsed,
        stats.fsyncs,
        writes as f64 / stats.fsyncs as f64,
        stats.checkpoints
    );
    engine.close().expect("close");
    let _ = std::fs::remove_dir_all(&dir);
}
