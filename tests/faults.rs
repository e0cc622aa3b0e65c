//! The fault matrix through the I/O seam: every kind of file operation ×
//! {ENOSPC, EIO}, failing every time while writes, reads and a checkpoint
//! go on; then the fault clears. For each cell: what a write gets (the
//! status the HTTP layer answers for that error: 507 for a full disk, 503
//! for other I/O failures, 200), whether `/health` would say degraded,
//! that reads keep working, that writes resume by themselves once the
//! fault clears, and — after a power cut taken then, and a restart — that
//! every acknowledged write is there and no refused one is partly there.
//! `cargo test --release --test tests faults -- --nocapture` prints the
//! table.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use powerd::model::Span;
use powerd::storage::sim::{disk_full, io_error, OpKind, SimFs};
use powerd::storage::{Engine, EngineOptions, StorageError};

const DIR: &str = "/data";

/// Small segments and checkpoints, so that while the fault lasts the log
/// moves on (new spare segments) and checkpoints run.
fn options() -> EngineOptions {
    EngineOptions {
        checkpoint_log_bytes: 8 * 1024,
        segment_bytes: 4096,
        ..EngineOptions::default()
    }
}

/// Write `n`: one hour of ship `n % 3` in one-minute readings, on its own
/// hour (a few hundred bytes of log).
fn write(n: u64) -> (u64, Vec<Span>) {
    let start = 1_533_081_600 + n as i64 * 3600;
    let spans = (0..60)
        .map(|m| Span {
            start_s: start + m * 60,
            end_s: start + (m + 1) * 60,
            power_kw: (n * 60 + m as u64) as f64 / 7.0,
        })
        .collect();
    (n % 3, spans)
}

/// The status `POST /data` answers for a write's outcome (the mapping is
/// `http::error::status`, unit-tested there).
fn status(result: &Result<(), StorageError>) -> u16 {
    match result {
        Ok(()) => 200,
        Err(e) if e.is_disk_full() => 507,
        Err(StorageError::Io { .. }) => 503,
        Err(e) => panic!("a write failed with neither a full disk nor an I/O error: {e}"),
    }
}

/// Every acknowledged write is there whole; every refused one is wholly
/// there or wholly absent.
fn holds(engine: &Engine, outcomes: &BTreeMap<u64, bool>) -> Result<(), String> {
    for (&n, &acknowledged) in outcomes {
        let (ship, spans) = write(n);
        let got = engine
            .read_spans(ship, spans[0].start_s, spans[spans.len() - 1].end_s)
            .map_err(|e| format!("read: {e}"))?
            .unwrap_or_default();
        let whole = got == spans;
        if !(whole || (!acknowledged && got.is_empty())) {
            return Err(format!(
                "write {n} (acknowledged: {acknowledged}) reads {got:?}"
            ));
        }
    }
    Ok(())
}

struct Cell {
    statuses: Vec<u16>,
    degraded: bool,
    resumed_after: std::time::Duration,
}

fn run_cell(kind: OpKind, full: bool) -> Result<Cell, String> {
    let fs = SimFs::new(kind as u64 * 2 + u64::from(full));
    fs.mkdir_durable(Path::new(DIR));
    let engine = Engine::open_with(Arc::new(fs.clone()), Path::new(DIR), options())
        .map_err(|e| format!("open: {e}"))?;
    let mut outcomes = BTreeMap::new();
    let mut n = 0u64;
    let mut submit = |engine: &Engine, outcomes: &mut BTreeMap<u64, bool>| {
        let (ship, spans) = write(n);
        let result = engine.write(ship, spans);
        outcomes.insert(n, result.is_ok());
        n += 1;
        result
    };
    for _ in 0..20 {
        submit(&engine, &mut outcomes).map_err(|e| format!("write before the fault: {e}"))?;
    }
    engine
        .checkpoint()
        .map_err(|e| format!("checkpoint: {e}"))?;

    // The fault: every operation of this kind fails from now on.
    let error = if full { disk_full } else { io_error };
    fs.set_fault(Some(Box::new(move |op| (op.kind == kind).then(error))));
    let mut statuses = Vec::new();
    for round in 0..40 {
        let result = submit(&engine, &mut outcomes);
        statuses.push(status(&result));
        if let Err(e) = &result {
            let expected = if full { 507 } else { 503 };
            if status(&result) != expected {
                return Err(format!("a {kind:?} fault answered {e}"));
            }
        }
        if round == 20 {
            // A checkpoint that cannot be written fails; the log keeps it all.
            let _ = engine.checkpoint();
        }
    }
    let degraded = engine.stats().refusing_writes.is_some();
    if degraded != (statuses.last() != Some(&200)) {
        return Err(format!(
            "/health degraded: {degraded}, last write answered {:?}",
            statuses.last()
        ));
    }
    holds(&engine, &outcomes).map_err(|e| format!("while failing: {e}"))?;

    // The fault clears: writes resume by themselves, as a client that
    // retries every 20 ms sees it.
    fs.set_fault(None);
    let cleared = std::time::Instant::now();
    while submit(&engine, &mut outcomes).is_err() {
        if cleared.elapsed() > std::time::Duration::from_secs(3) {
            return Err("writes did not resume within 3 s of the fault clearing".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let resumed_after = cleared.elapsed();
    if engine.stats().refusing_writes.is_some() {
        return Err("/health still degraded after a write landed".into());
    }
    for _ in 0..5 {
        submit(&engine, &mut outcomes).map_err(|e| format!("write after the fault: {e}"))?;
    }
    engine
        .checkpoint()
        .map_err(|e| format!("checkpoint after the fault: {e}"))?;
    holds(&engine, &outcomes).map_err(|e| format!("after the fault: {e}"))?;

    // A power cut now, and a restart: every acknowledged write is durable.
    let image = fs.crash_image(kind as u64 + 99);
    drop(engine);
    let engine = Engine::open_with(Arc::new(image.clone()), Path::new(DIR), options())
        .map_err(|e| format!("restart after a power cut: {e}"))?;
    holds(&engine, &outcomes).map_err(|e| format!("after a power cut: {e}"))?;
    drop(engine);
    let report = powerd::storage::check_with(&image, Path::new(DIR)).map_err(|e| e.to_string())?;
    if !report.is_ok() {
        return Err(format!("check after the power cut: {report}"));
    }
    Ok(Cell {
        statuses,
        degraded,
        resumed_after,
    })
}

fn summary(statuses: &[u16]) -> String {
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    for &s in statuses {
        *counts.entry(s).or_default() += 1;
    }
    counts
        .iter()
        .map(|(s, c)| format!("{s}×{c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_operation_failing_with_enospc_or_eio_refuses_cleanly_and_recovers() {
    let mut failures = Vec::new();
    println!("| operation | error | writes while failing | /health | after the fault clears |");
    println!("|---|---|---|---|---|");
    for kind in OpKind::ALL {
        for full in [true, false] {
            let name = if full { "ENOSPC" } else { "EIO" };
            match run_cell(kind, full) {
                Ok(cell) => println!(
                    "| {kind:?} | {name} | {} | {} | writes taken after {:.0?}; every acknowledged write survives a power cut |",
                    summary(&cell.statuses),
                    if cell.degraded { "503 degraded" } else { "200 ok" },
                    cell.resumed_after
                ),
                Err(e) => failures.push(format!("{kind:?} × {name}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
