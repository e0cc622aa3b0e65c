//! What readers look at, behind the engine's one lock: the chunks of the
//! sealed blocks, the frozen and active memtables, the rollup index; and
//! the read path that layers them (oldest to newest: block chunks, the
//! frozen memtable, the active memtable).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::super::block::{
    partition_of, partition_start, BlockFile, ChunkLocation, CHUNK_HEADER_LEN, MAX_SPANS_PER_CHUNK,
};
use super::super::codec::{decode_spans_window, Reader};
use super::super::error::StorageError;
use super::super::manifest::Manifest;
use super::super::rollup::{BucketChanges, Rollup};
use super::super::timeline::{overlay_spans, Timeline};
use super::EngineStats;
use crate::model::{
    bucket_of, spans_to_buckets, NanoKwh, ShipId, Span, BUCKET_SECONDS, SECONDS_PER_DAY,
};

/// A chunk as the read path sees it.
#[derive(Clone)]
pub(super) struct ChunkRef {
    pub block: Arc<BlockFile>,
    pub location: ChunkLocation,
}

/// Everything readers look at, behind one lock.
pub(super) struct State {
    /// Writes since the last freeze.
    pub active: HashMap<ShipId, Timeline>,
    /// Writes being folded into blocks by the running checkpoint.
    pub frozen: Option<Arc<HashMap<ShipId, Timeline>>>,
    /// Durable chunks: ship → partition → chunk.
    pub chunks: HashMap<ShipId, BTreeMap<i64, ChunkRef>>,
    pub manifest: Manifest,
    pub blocks: HashMap<u64, Arc<BlockFile>>,
    pub stats: EngineStats,
    /// The rollup index of everything above (blocks, frozen, active).
    pub rollup: Option<Rollup>,
    /// Writes applied since the engine opened; numbers [`State::versions`].
    pub writes_applied: u64,
    /// Each ship's version: what a ship's data was at version `v` it still
    /// is while its version is `v` (checkpoints and upgrades move data
    /// without changing it, so only writes count).
    pub versions: ShipVersions,
    /// Per UTC day written since the engine opened, the number of the last
    /// write applied to it: what an exporter must look at again.
    pub day_versions: BTreeMap<i64, u64>,
}

/// Ships [`ShipVersions`] remembers at most (about 40 MiB).
pub const MAX_SHIP_VERSIONS: usize = 1 << 20;

/// Per ship written since the engine opened, the number of the last write
/// applied to it; every other ship is at `floor`. When the map would pass
/// its cap it is emptied and `floor` raised to the current write number:
/// every ship then looks changed once (a cache keyed by versions misses
/// once), and the memory stays bounded.
#[derive(Debug)]
pub struct ShipVersions {
    map: HashMap<ShipId, u64>,
    floor: u64,
    cap: usize,
}

impl ShipVersions {
    pub fn new(cap: usize) -> ShipVersions {
        ShipVersions {
            map: HashMap::new(),
            floor: 0,
            cap,
        }
    }

    pub fn get(&self, ship: ShipId) -> u64 {
        self.map.get(&ship).copied().unwrap_or(self.floor)
    }

    /// Write number `write` (above every earlier one) changed `ship`.
    pub fn note(&mut self, ship: ShipId, write: u64) {
        if self.map.len() >= self.cap && !self.map.contains_key(&ship) {
            self.map = HashMap::new();
            self.floor = write;
        }
        self.map.insert(ship, write);
    }
}

impl State {
    /// See [`State::versions`]; `None` for a ship never written.
    pub fn version(&self, ship: ShipId) -> Option<u64> {
        self.knows(ship).then(|| self.versions.get(ship))
    }

    pub fn knows(&self, ship: ShipId) -> bool {
        self.chunks.contains_key(&ship)
            || self.active.contains_key(&ship)
            || self.frozen.as_ref().is_some_and(|f| f.contains_key(&ship))
    }

    /// Sets `out` to the spans of `ship` that intersect `[start_s, end_s)`
    /// (not clipped), sorted and disjoint: blocks, then the frozen and
    /// active memtables laid over them.
    pub fn spans_into(
        &self,
        ship: ShipId,
        start_s: i64,
        end_s: i64,
        out: &mut Vec<Span>,
    ) -> Result<(), StorageError> {
        let mut base = std::mem::take(out);
        base.clear();
        if let Some(partitions) = self.chunks.get(&ship) {
            if start_s < end_s {
                for (&partition, chunk) in
                    partitions.range(partition_of(start_s)..=partition_of(end_s - 1))
                {
                    read_chunk_window(chunk, partition, start_s, end_s, &mut base)?;
                }
            }
        }
        let layers = [
            self.frozen.as_ref().and_then(|f| f.get(&ship)),
            self.active.get(&ship),
        ];
        for timeline in layers.into_iter().flatten() {
            let mut overlay = Vec::new();
            timeline.spans_in(start_s, end_s, &mut overlay);
            if !overlay.is_empty() {
                let mut merged = Vec::with_capacity(base.len() + overlay.len());
                overlay_spans(&base, &overlay, &mut merged);
                base = merged;
            }
        }
        *out = base;
        Ok(())
    }

    /// Applies one durable batch: the rollup index first (it needs the
    /// buckets as they were), then the active memtable. `fresh` is the
    /// batch's change if the ship turns out to have no data where it writes.
    pub fn apply_write(&mut self, ship: ShipId, spans: &[Span], fresh: Option<&BucketChanges>) {
        self.writes_applied += 1;
        self.versions.note(ship, self.writes_applied);
        if let (Some(first), Some(last)) = (spans.first(), spans.last()) {
            let (first_day, last_day) = (
                first.start_s.div_euclid(SECONDS_PER_DAY),
                (last.end_s - 1).div_euclid(SECONDS_PER_DAY),
            );
            for day in first_day..=last_day {
                self.day_versions.insert(day, self.writes_applied);
            }
        }
        if let (Some(rollup), Some(first), Some(last)) =
            (&mut self.rollup, spans.first(), spans.last())
        {
            let (from, to) = (bucket_of(first.start_s), bucket_of(last.end_s - 1) + 1);
            if let Some(fresh) = fresh.filter(|_| !rollup.may_have_data(ship, from, to)) {
                rollup.apply(ship, fresh);
                self.active.entry(ship).or_default().overwrite_all(spans);
                return;
            }
        }
        if self.rollup.is_some() {
            match self.rollup_change(ship, spans) {
                Ok(changes) => {
                    if let Some(rollup) = &mut self.rollup {
                        rollup.apply(ship, &changes);
                    }
                }
                Err(e) => {
                    tracing::error!(
                        "could not read ship {ship}'s stored data to update the rollup index, \
                         so fleet questions fall back to scanning every ship until a restart \
                         rebuilds it: {e}"
                    );
                    self.rollup = None;
                }
            }
        }
        self.active.entry(ship).or_default().overwrite_all(spans);
    }

    /// The buckets a batch touches, before and after it.
    ///
    /// Both come from the ship's spans through [`spans_to_buckets`], the
    /// one function every rollup value is computed with, so what this write
    /// adds a later overwrite subtracts to the last nano-kWh. Buckets the
    /// batch touches are grouped into runs, so a batch with far-apart
    /// readings does not read the history between them.
    pub fn rollup_change(
        &self,
        ship: ShipId,
        spans: &[Span],
    ) -> Result<BucketChanges, StorageError> {
        let rollup = self.rollup.as_ref().expect("called with an index");
        let mut old_buckets = Vec::new();
        let mut new_buckets = Vec::with_capacity(spans.len());
        let mut old = Vec::new();
        let mut merged = Vec::new();
        let mut from = 0;
        while from < spans.len() {
            let first = bucket_of(spans[from].start_s);
            let mut end = bucket_of(spans[from].end_s - 1) + 1;
            let mut to = from + 1;
            while to < spans.len() && bucket_of(spans[to].start_s) <= end {
                end = end.max(bucket_of(spans[to].end_s - 1) + 1);
                to += 1;
            }
            old.clear();
            // Past the end of the ship's history (the usual append) there
            // is nothing to replace and nothing to read.
            if rollup.may_have_data(ship, first, end) {
                self.spans_into(
                    ship,
                    first.saturating_mul(BUCKET_SECONDS),
                    end.saturating_mul(BUCKET_SECONDS),
                    &mut old,
                )?;
                spans_to_buckets(&old, first, end, &mut old_buckets);
            }
            merged.clear();
            overlay_spans(&old, &spans[from..to], &mut merged);
            spans_to_buckets(&merged, first, end, &mut new_buckets);
            from = to;
        }
        Ok(BucketChanges::between(&old_buckets, &new_buckets))
    }

    /// The ship's energy in buckets `[first, end)`, in the rollup's units.
    pub fn energy(&self, ship: ShipId, first: i64, end: i64) -> Result<NanoKwh, StorageError> {
        let mut spans = Vec::new();
        self.spans_into(
            ship,
            first.saturating_mul(BUCKET_SECONDS),
            end.saturating_mul(BUCKET_SECONDS),
            &mut spans,
        )?;
        let mut buckets = Vec::new();
        spans_to_buckets(&spans, first, end, &mut buckets);
        Ok(buckets
            .iter()
            .fold(0, |sum: NanoKwh, b| sum.wrapping_add(b.energy)))
    }
}

pub(super) fn count_ships(state: &State) -> usize {
    let mut count = state.chunks.len();
    for ship in state.active.keys() {
        if !state.chunks.contains_key(ship) {
            count += 1;
        }
    }
    if let Some(frozen) = &state.frozen {
        for ship in frozen.keys() {
            if !state.chunks.contains_key(ship) && !state.active.contains_key(ship) {
                count += 1;
            }
        }
    }
    count
}

pub(super) fn read_chunk_window(
    chunk: &ChunkRef,
    partition: i64,
    start_s: i64,
    end_s: i64,
    out: &mut Vec<Span>,
) -> Result<(), StorageError> {
    let bytes = chunk.block.chunk_bytes(&chunk.location)?;
    let payload = bytes.get(CHUNK_HEADER_LEN..).unwrap_or(&[]);
    decode_spans_window(
        &mut Reader::new(payload),
        partition_start(partition),
        MAX_SPANS_PER_CHUNK,
        start_s,
        end_s,
        out,
    )
    .map_err(|e| StorageError::corrupted(&chunk.block.path, chunk.location.offset, e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ship_version_never_stays_the_same_across_a_write_even_past_the_cap() {
        let mut versions = ShipVersions::new(3);
        for write in 1..=50u64 {
            let ship = write * 7 % 11;
            let before: Vec<(ShipId, u64)> = (0..11).map(|s| (s, versions.get(s))).collect();
            versions.note(ship, write);
            assert_eq!(versions.get(ship), write);
            for (other, old) in before {
                // Another ship may look changed (a forced miss), never older.
                assert!(versions.get(other) >= old);
            }
            assert!(versions.map.len() <= 3);
        }
        assert!(
            versions.floor > 0,
            "the cap was reached and the floor raised"
        );
    }
}
