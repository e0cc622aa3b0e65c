//! `powerd import`: a node's buckets back from the lake into a data
//! directory, as kWh per bucket (the raw readings are not in the lake).
//!
//! A row becomes one span from the bucket's start over its `coverage_s`
//! seconds at `kwh × 3600 / coverage_s` kW. The engine's energy of that
//! span is the row's `kwh` again to the nano-kWh: the power is within one
//! rounding of the exact quotient, so the product lands within far less
//! than half a nano-kWh of the decimal `kwh` stands for. Where inside its
//! bucket a partial bucket's seconds were is not in the lake; imported,
//! they are its first seconds.

use std::path::Path;
use std::time::Instant;

use super::parquet_file::{self, Columns};
use super::{node_days, LakeError, NodeName};
use crate::model::{Span, BUCKET_SECONDS, SECONDS_PER_HOUR};
use crate::storage::Engine;

/// What an import did.
#[derive(Clone, Debug, Default)]
pub struct ImportSummary {
    pub days: u64,
    pub rows: u64,
    pub ships: u64,
    pub seconds: f64,
}

/// Writes every row of `node`'s day files in `lake` into `engine`, one
/// write per ship-day. `progress(days_done, days_total)` after each day.
pub fn import(
    engine: &Engine,
    lake: &Path,
    node: &NodeName,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ImportSummary, LakeError> {
    let started = Instant::now();
    let days = node_days(lake, node)?;
    let mut summary = ImportSummary::default();
    let mut ships = std::collections::HashSet::new();
    for (done, (_, path)) in days.iter().enumerate() {
        let rows = parquet_file::read(path)?;
        check_rows(path, &rows)?;
        let mut start = 0;
        while start < rows.len() {
            let ship = rows.ships[start];
            let mut end = start;
            let mut spans = Vec::new();
            while end < rows.len() && rows.ships[end] == ship {
                let coverage = i64::from(rows.coverage_s[end]);
                let start_s = rows.starts_s[end];
                spans.push(Span {
                    start_s,
                    end_s: start_s + coverage,
                    power_kw: rows.kwh[end] * SECONDS_PER_HOUR / coverage as f64,
                });
                end += 1;
            }
            engine.write(ship, spans)?;
            ships.insert(ship);
            start = end;
        }
        summary.days += 1;
        summary.rows += rows.len() as u64;
        progress(done + 1, days.len());
    }
    summary.ships = ships.len() as u64;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// What the engine needs of the rows: sorted by ship then time, one row
/// per bucket, coverage in 1..=900 seconds, energies finite and not
/// negative.
fn check_rows(path: &Path, rows: &Columns) -> Result<(), LakeError> {
    for i in 0..rows.len() {
        let at = |problem: String| LakeError::bad(path, format!("row {i}: {problem}"));
        if rows.starts_s[i].rem_euclid(BUCKET_SECONDS) != 0 {
            return Err(at(format!(
                "datetime {} s is not the start of a 15-minute bucket",
                rows.starts_s[i]
            )));
        }
        if !(1..=BUCKET_SECONDS as i32).contains(&rows.coverage_s[i]) {
            return Err(at(format!(
                "coverage_s {} is outside 1..=900",
                rows.coverage_s[i]
            )));
        }
        if !(rows.kwh[i].is_finite() && rows.kwh[i] >= 0.0) {
            return Err(at(format!(
                "kwh {} is not a finite, non-negative number",
                rows.kwh[i]
            )));
        }
        if i > 0 && (rows.ships[i - 1], rows.starts_s[i - 1]) >= (rows.ships[i], rows.starts_s[i]) {
            return Err(at(
                "rows are not sorted by ship, then time, once each".into()
            ));
        }
    }
    Ok(())
}
