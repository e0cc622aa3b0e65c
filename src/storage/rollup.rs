//! The rollup index: fleet totals per bucket and per-ship totals per day,
//! kept up to date on every write, so fleet views and top-N rankings add a
//! few numbers per interval or per ship instead of reading every bucket.
//!
//! What it holds:
//! - per UTC day with data, the fleet's energy in each of its 96 buckets and
//!   how many ships have data in each bucket, each hour and the whole day;
//! - per ship, per UTC day with data, the day's energy and a 96-bit mask of
//!   the buckets that hold data; per 32-day group, the group's energy.
//!
//! Invariants (the property tests check them against brute force):
//! - every energy is the sum of [`quantise`]d bucket energies, in exact
//!   integer arithmetic ([`NanoKwh`]); a bucket's contribution is always
//!   computed by [`crate::model::spans_to_buckets`] from the ship's spans in
//!   that bucket, which are the same whichever layer (memtable or block)
//!   holds them — so a value added once is removed exactly by the overwrite
//!   that replaces it, and the index after any history of writes, restarts
//!   and rebuilds equals the index built from scratch;
//! - a bucket "has data" when any second of it is covered (partial buckets
//!   count); coverage only grows, since writes never delete.
//!
//! The index knows nothing of how spans are stored: the engine hands it the
//! old and new buckets of every write ([`Rollup::apply`]) and answers edge
//! questions for it ([`Rollup::top_users`]).

use std::collections::{BTreeMap, HashMap};

use crate::model::{quantise, spans_to_buckets, Bucket, NanoKwh, ShipId, Span, BUCKET_SECONDS};

pub const BUCKETS_PER_DAY: i64 = 96;
const BUCKETS_PER_HOUR: i64 = 4;
/// Days per group: the coarse step of per-ship totals, so a ranking over a
/// year adds about a dozen group totals per ship rather than 365 days.
pub const DAYS_PER_GROUP: i64 = 32;
/// The mask bits a day can use.
pub const DAY_MASK: u128 = (1u128 << BUCKETS_PER_DAY) - 1;

/// One ship's day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShipDay {
    pub day: i64,
    /// Bit `k` set: bucket `day * 96 + k` holds data.
    pub mask: u128,
    pub total: NanoKwh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Group {
    group: i64,
    total: NanoKwh,
    /// Days of the group with data: a group with none contributes no data.
    days_with_data: u32,
}

/// One ship's totals, sorted by day. Vectors rather than maps: ships report
/// in time order, so the usual update touches the last element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShipRollup {
    days: Vec<ShipDay>,
    groups: Vec<Group>,
}

/// The fleet's day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetDay {
    pub sums: [NanoKwh; BUCKETS_PER_DAY as usize],
    pub ships: [u32; BUCKETS_PER_DAY as usize],
    pub hour_ships: [u32; 24],
    pub day_ships: u32,
}

impl FleetDay {
    fn empty() -> Box<FleetDay> {
        Box::new(FleetDay {
            sums: [0; BUCKETS_PER_DAY as usize],
            ships: [0; BUCKETS_PER_DAY as usize],
            hour_ships: [0; 24],
            day_ships: 0,
        })
    }
}

/// One interval of the fleet view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetInterval {
    /// First bucket of the interval (a multiple of the step).
    pub first_bucket: i64,
    pub sum: NanoKwh,
    /// Ships with data in the part of the interval inside the window.
    pub ships: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollup {
    fleet: BTreeMap<i64, Box<FleetDay>>,
    ships: HashMap<ShipId, ShipRollup>,
}

/// One bucket's change: its energy before and after, and whether it holds
/// data after.
struct Change {
    index: i64,
    delta: NanoKwh,
    present: bool,
}

impl Rollup {
    pub fn new() -> Rollup {
        Rollup::default()
    }

    /// Folds one write of `ship` into the index: `old` are the ship's
    /// buckets before it, `new` after it, both sorted by index and covering
    /// the same bucket ranges (every bucket the write touched).
    pub fn apply(&mut self, ship: ShipId, old: &[Bucket], new: &[Bucket]) {
        let changes = diff(old, new);
        if changes.is_empty() {
            return;
        }
        let ship_rollup = self.ships.entry(ship).or_default();
        let mut position = 0;
        while position < changes.len() {
            let day = changes[position].index.div_euclid(BUCKETS_PER_DAY);
            let day_end = (day + 1) * BUCKETS_PER_DAY;
            let next = position
                + changes[position..]
                    .iter()
                    .take_while(|c| c.index < day_end)
                    .count();
            let fleet_day = self.fleet.entry(day).or_insert_with(FleetDay::empty);
            ship_rollup.apply_day(day, &changes[position..next], fleet_day);
            position = next;
        }
    }

    /// Adds a ship's stored buckets (tests).
    pub fn add_buckets(&mut self, ship: ShipId, buckets: &[Bucket]) {
        self.apply(ship, &[], buckets);
    }

    /// Adds the spans of one stored chunk (a rebuild from the blocks).
    /// Chunks are partition-aligned, so no bucket straddles two of them.
    pub fn add_chunk_spans(&mut self, ship: ShipId, spans: &[Span]) {
        let mut buckets = Vec::with_capacity(spans.len());
        spans_to_buckets(
            spans,
            i64::MIN / BUCKET_SECONDS,
            i64::MAX / BUCKET_SECONDS,
            &mut buckets,
        );
        self.add_buckets(ship, &buckets);
    }

    /// Whether `ship` may have data in buckets `[first, end)`: false only
    /// when every bucket it holds lies outside. Lets writes past the end of
    /// a ship's history skip reading what they replace.
    pub fn may_have_data(&self, ship: ShipId, first: i64, end: i64) -> bool {
        match self.ships.get(&ship).and_then(ShipRollup::bucket_range) {
            Some((ship_first, ship_end)) => first < ship_end && ship_first < end,
            None => false,
        }
    }

    /// First and end (exclusive) bucket of all stored data.
    pub fn stored_range(&self) -> Option<(i64, i64)> {
        let (first_day, first) = self.fleet.iter().next()?;
        let (last_day, last) = self.fleet.iter().next_back()?;
        let first_slot = first.ships.iter().position(|&s| s > 0)? as i64;
        let last_slot = last.ships.iter().rposition(|&s| s > 0)? as i64;
        Some((
            first_day * BUCKETS_PER_DAY + first_slot,
            last_day * BUCKETS_PER_DAY + last_slot + 1,
        ))
    }

    pub fn ship_count(&self) -> usize {
        self.ships.len()
    }

    /// The fleet's energy per interval of `step` buckets (aligned to
    /// multiples of the step) over buckets `[first, end)`, ascending;
    /// intervals without data are left out. A ship counts once per
    /// interval however many of its buckets hold data there.
    pub fn fleet(&self, first: i64, end: i64, step: i64) -> Vec<FleetInterval> {
        let mut out: Vec<FleetInterval> = Vec::new();
        if first >= end || step <= 0 {
            return out;
        }
        let days = first.div_euclid(BUCKETS_PER_DAY)..=(end - 1).div_euclid(BUCKETS_PER_DAY);
        for (&day, fleet_day) in self.fleet.range(days) {
            let day_first = day * BUCKETS_PER_DAY;
            let slots = (first.max(day_first) - day_first)
                ..(end.min(day_first + BUCKETS_PER_DAY) - day_first);
            for slot in slots {
                let ships = fleet_day.ships[slot as usize];
                if ships == 0 {
                    continue;
                }
                let index = day_first + slot;
                let interval = index.div_euclid(step) * step;
                match out.last_mut() {
                    Some(last) if last.first_bucket == interval => {
                        last.sum = last.sum.wrapping_add(fleet_day.sums[slot as usize]);
                    }
                    _ => out.push(FleetInterval {
                        first_bucket: interval,
                        sum: fleet_day.sums[slot as usize],
                        ships: self.ships_in_interval(fleet_day, slot, interval, step, first, end),
                    }),
                }
            }
        }
        out
    }

    /// Ships with data in `[interval, interval + step) ∩ [first, end)`;
    /// `slot` is a bucket of it in `fleet_day`.
    fn ships_in_interval(
        &self,
        fleet_day: &FleetDay,
        slot: i64,
        interval: i64,
        step: i64,
        first: i64,
        end: i64,
    ) -> u32 {
        let whole = interval >= first && interval + step <= end;
        match step {
            1 => fleet_day.ships[slot as usize],
            BUCKETS_PER_HOUR if whole => fleet_day.hour_ships[(slot / BUCKETS_PER_HOUR) as usize],
            BUCKETS_PER_DAY if whole => fleet_day.day_ships,
            // An interval cut by the window (or an unusual step): ask each
            // ship's masks. At most two intervals per query get here.
            _ => {
                let (from, to) = (interval.max(first), (interval + step).min(end));
                self.ships
                    .values()
                    .filter(|ship| ship.has_data(from, to))
                    .count() as u32
            }
        }
    }

    /// The `count` ships with the most energy in buckets `[first, end)`,
    /// descending, ties by ship id; ships without data there are left out.
    ///
    /// Whole days come from the per-ship day and group totals. A window
    /// edge that cuts a day needs the ship's buckets in the cut part, which
    /// only `edge(ship, first, end)` can give (it reads them); it is asked
    /// only for ships that could still make the ranking: a day's total
    /// bounds any part of it (energy is never negative), so ships are
    /// visited by that upper bound, best first, until the bound falls below
    /// the ranking's last place.
    pub fn top_users<E>(
        &self,
        first: i64,
        end: i64,
        count: usize,
        mut edge: impl FnMut(ShipId, i64, i64) -> Result<NanoKwh, E>,
    ) -> Result<Vec<(ShipId, NanoKwh)>, E> {
        if first >= end || count == 0 {
            return Ok(Vec::new());
        }
        let window = Window::new(first, end);
        let mut exact: Vec<(ShipId, NanoKwh)> = Vec::new();
        let mut open: Vec<Bounds> = Vec::new();
        for (&ship, rollup) in &self.ships {
            match rollup.bounds(&window) {
                Estimate::NoData => {}
                Estimate::Exact(total) => exact.push((ship, total)),
                Estimate::Between(bounds) => open.push(Bounds { ship, ..bounds }),
            }
        }
        let rank = |a: &(ShipId, NanoKwh), b: &(ShipId, NanoKwh)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
        // No ship whose upper bound is below the count-th best lower bound
        // can place: drop them before sorting.
        if open.len() + exact.len() > count {
            let mut lows: Vec<NanoKwh> = exact
                .iter()
                .map(|e| e.1)
                .chain(open.iter().map(|b| b.low))
                .collect();
            let (_, &mut floor, _) = lows.select_nth_unstable_by(count - 1, |a, b| b.cmp(a));
            open.retain(|b| b.high >= floor);
        }
        open.sort_unstable_by(|a, b| b.high.cmp(&a.high).then(a.ship.cmp(&b.ship)));
        exact.sort_unstable_by(rank);
        exact.truncate(count);
        for bounds in open {
            if exact.len() == count {
                let last = exact[count - 1];
                if (bounds.high, std::cmp::Reverse(bounds.ship))
                    < (last.1, std::cmp::Reverse(last.0))
                {
                    break;
                }
            }
            let mut total = bounds.low;
            for &(from, to) in &bounds.edges {
                if from < to {
                    total = total.wrapping_add(edge(bounds.ship, from, to)?);
                }
            }
            let entry = (bounds.ship, total);
            let at = exact.partition_point(|e| rank(e, &entry).is_lt());
            if at < count {
                exact.insert(at, entry);
                exact.truncate(count);
            }
        }
        Ok(exact)
    }

    /// Every ship's days, ascending by ship (for the index file).
    pub fn ship_days(&self) -> Vec<(ShipId, &[ShipDay])> {
        let mut ships: Vec<(ShipId, &[ShipDay])> = self
            .ships
            .iter()
            .map(|(&s, r)| (s, r.days.as_slice()))
            .collect();
        ships.sort_unstable_by_key(|&(ship, _)| ship);
        ships
    }

    /// The fleet's per-bucket sums of every day with data, ascending.
    pub fn fleet_days(&self) -> impl Iterator<Item = (i64, &[NanoKwh; BUCKETS_PER_DAY as usize])> {
        self.fleet.iter().map(|(&day, d)| (day, &d.sums))
    }

    /// Rebuilds an index from what its file stores: per-ship days and the
    /// fleet's per-bucket sums. Counts and group totals are derived. Fails
    /// (with a reason) when the two disagree.
    pub fn from_parts(
        ships: Vec<(ShipId, Vec<ShipDay>)>,
        fleet_sums: Vec<(i64, [NanoKwh; BUCKETS_PER_DAY as usize])>,
    ) -> Result<Rollup, String> {
        let mut rollup = Rollup::new();
        let mut day_totals: BTreeMap<i64, NanoKwh> = BTreeMap::new();
        for (ship, days) in ships {
            let mut ship_rollup = ShipRollup::default();
            for day in days {
                if day.mask & !DAY_MASK != 0 || day.mask == 0 {
                    return Err(format!(
                        "ship {ship} day {} has an impossible bucket mask",
                        day.day
                    ));
                }
                if ship_rollup
                    .days
                    .last()
                    .is_some_and(|last| last.day >= day.day)
                {
                    return Err(format!("ship {ship}: days out of order at day {}", day.day));
                }
                let fleet_day = rollup.fleet.entry(day.day).or_insert_with(FleetDay::empty);
                fleet_day.day_ships += 1;
                for slot in 0..BUCKETS_PER_DAY as usize {
                    if day.mask >> slot & 1 == 1 {
                        fleet_day.ships[slot] += 1;
                    }
                }
                for hour in 0..24 {
                    if day.mask >> (hour * 4) & 0xF != 0 {
                        fleet_day.hour_ships[hour] += 1;
                    }
                }
                let total = day_totals.entry(day.day).or_default();
                *total = total.wrapping_add(day.total);
                ship_rollup.add_group_total(day.day, day.total, 1);
                ship_rollup.days.push(day);
            }
            if rollup.ships.insert(ship, ship_rollup).is_some() {
                return Err(format!("ship {ship} appears twice"));
            }
        }
        for (day, sums) in fleet_sums {
            let Some(fleet_day) = rollup.fleet.get_mut(&day) else {
                return Err(format!(
                    "fleet day {day} has sums but no ship has data that day"
                ));
            };
            fleet_day.sums = sums;
        }
        for (day, fleet_day) in &rollup.fleet {
            let sum = fleet_day
                .sums
                .iter()
                .fold(0, |a: NanoKwh, &b| a.wrapping_add(b));
            if sum != day_totals[day] {
                return Err(format!(
                    "fleet day {day}: bucket sums ({sum}) disagree with the ships' day totals ({})",
                    day_totals[day]
                ));
            }
            if fleet_day
                .sums
                .iter()
                .zip(&fleet_day.ships)
                .any(|(&s, &n)| s != 0 && n == 0)
            {
                return Err(format!(
                    "fleet day {day} has energy in a bucket no ship has data in"
                ));
            }
        }
        Ok(rollup)
    }
}

/// Merges old and new buckets into per-bucket changes, ascending.
fn diff(old: &[Bucket], new: &[Bucket]) -> Vec<Change> {
    let mut changes = Vec::with_capacity(new.len().max(old.len()));
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let index = match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) => o.index.min(n.index),
            (Some(o), None) => o.index,
            (None, Some(n)) => n.index,
            (None, None) => break,
        };
        let before = old.get(i).filter(|b| b.index == index);
        let after = new.get(j).filter(|b| b.index == index);
        i += usize::from(before.is_some());
        j += usize::from(after.is_some());
        let value = |b: Option<&Bucket>| b.map_or(0, |b| quantise(b.energy_kwh));
        changes.push(Change {
            index,
            delta: value(after).wrapping_sub(value(before)),
            present: after.is_some_and(|b| b.coverage_s > 0),
        });
    }
    changes
}

impl ShipRollup {
    /// Applies `changes` (all in `day`, ascending) to this ship and to the
    /// fleet's `fleet_day`.
    fn apply_day(&mut self, day: i64, changes: &[Change], fleet_day: &mut FleetDay) {
        let at = match self.days.last() {
            Some(last) if last.day == day => self.days.len() - 1,
            Some(last) if last.day < day => self.push_day(self.days.len(), day),
            None => self.push_day(0, day),
            _ => match self.days.binary_search_by_key(&day, |d| d.day) {
                Ok(at) => at,
                Err(at) => self.push_day(at, day),
            },
        };
        let entry = &mut self.days[at];
        let had_data = entry.mask != 0;
        let mut delta_total: NanoKwh = 0;
        for change in changes {
            let slot = (change.index - day * BUCKETS_PER_DAY) as usize;
            let bit = 1u128 << slot;
            let hour = 0xFu128 << (slot / 4 * 4);
            fleet_day.sums[slot] = fleet_day.sums[slot].wrapping_add(change.delta);
            delta_total = delta_total.wrapping_add(change.delta);
            let was_present = entry.mask & bit != 0;
            if change.present && !was_present {
                if entry.mask & hour == 0 {
                    fleet_day.hour_ships[slot / 4] += 1;
                }
                if entry.mask == 0 {
                    fleet_day.day_ships += 1;
                }
                entry.mask |= bit;
                fleet_day.ships[slot] += 1;
            } else if !change.present && was_present {
                // Writes never remove coverage; kept symmetric regardless.
                entry.mask &= !bit;
                fleet_day.ships[slot] -= 1;
                if entry.mask & hour == 0 {
                    fleet_day.hour_ships[slot / 4] -= 1;
                }
                if entry.mask == 0 {
                    fleet_day.day_ships -= 1;
                }
            }
        }
        entry.total = entry.total.wrapping_add(delta_total);
        let days_delta = i32::from(entry.mask != 0) - i32::from(had_data);
        self.add_group_total(day, delta_total, days_delta);
    }

    fn push_day(&mut self, at: usize, day: i64) -> usize {
        self.days.insert(
            at,
            ShipDay {
                day,
                mask: 0,
                total: 0,
            },
        );
        at
    }

    fn add_group_total(&mut self, day: i64, delta: NanoKwh, days_delta: i32) {
        let group = day.div_euclid(DAYS_PER_GROUP);
        let at = match self.groups.last() {
            Some(last) if last.group == group => self.groups.len() - 1,
            _ => match self.groups.binary_search_by_key(&group, |g| g.group) {
                Ok(at) => at,
                Err(at) => {
                    self.groups.insert(
                        at,
                        Group {
                            group,
                            total: 0,
                            days_with_data: 0,
                        },
                    );
                    at
                }
            },
        };
        let entry = &mut self.groups[at];
        entry.total = entry.total.wrapping_add(delta);
        entry.days_with_data = entry.days_with_data.wrapping_add_signed(days_delta);
    }

    /// First and end (exclusive) bucket holding data.
    fn bucket_range(&self) -> Option<(i64, i64)> {
        let first = self.days.iter().find(|d| d.mask != 0)?;
        let last = self.days.iter().rev().find(|d| d.mask != 0)?;
        Some((
            first.day * BUCKETS_PER_DAY + i64::from(first.mask.trailing_zeros()),
            last.day * BUCKETS_PER_DAY + 128 - i64::from(last.mask.leading_zeros()),
        ))
    }

    /// Whether any bucket in `[from, to)` (within one day or spanning
    /// several) holds data.
    fn has_data(&self, from: i64, to: i64) -> bool {
        let first_day = from.div_euclid(BUCKETS_PER_DAY);
        let start = self.days.partition_point(|d| d.day < first_day);
        self.days[start..]
            .iter()
            .take_while(|d| d.day * BUCKETS_PER_DAY < to)
            .any(|d| d.mask & slot_mask(d.day, from, to) != 0)
    }

    /// The day entry of `day`, if it has one.
    fn day(&self, day: i64) -> Option<&ShipDay> {
        self.days
            .binary_search_by_key(&day, |d| d.day)
            .ok()
            .map(|at| &self.days[at])
    }

    /// Energy and data presence over whole days `[first_day, end_day)`:
    /// group totals for the groups inside, day totals at the ragged ends.
    fn whole_days(&self, first_day: i64, end_day: i64) -> (NanoKwh, bool) {
        let mut total: NanoKwh = 0;
        let mut has_data = false;
        let first_group = ceil_div(first_day, DAYS_PER_GROUP);
        let end_group = end_day.div_euclid(DAYS_PER_GROUP);
        let mut add_days = |from: i64, to: i64| {
            let start = self.days.partition_point(|d| d.day < from);
            for d in self.days[start..].iter().take_while(|d| d.day < to) {
                total = total.wrapping_add(d.total);
                has_data |= d.mask != 0;
            }
        };
        if first_group >= end_group {
            add_days(first_day, end_day);
        } else {
            add_days(first_day, first_group * DAYS_PER_GROUP);
            add_days(end_group * DAYS_PER_GROUP, end_day);
            let start = self.groups.partition_point(|g| g.group < first_group);
            for g in self.groups[start..]
                .iter()
                .take_while(|g| g.group < end_group)
            {
                total = total.wrapping_add(g.total);
                has_data |= g.days_with_data > 0;
            }
        }
        (total, has_data)
    }

    /// What the index alone says about this ship's energy in `window`.
    fn bounds(&self, window: &Window) -> Estimate {
        let (mut low, mut has_data) = match window.whole_days {
            Some((from, to)) => self.whole_days(from, to),
            None => (0, false),
        };
        let mut high = low;
        let mut edges = [(0, 0); 2];
        for (k, &(from, to)) in window.edges.iter().enumerate() {
            if from >= to {
                continue;
            }
            let Some(day) = self.day(from.div_euclid(BUCKETS_PER_DAY)) else {
                continue;
            };
            let inside = slot_mask(day.day, from, to);
            if day.mask & inside == 0 {
                continue;
            }
            has_data = true;
            if day.mask & !inside == 0 {
                // Every bucket of the day with data is inside the window.
                low = low.wrapping_add(day.total);
                high = high.wrapping_add(day.total);
            } else {
                high = high.wrapping_add(day.total);
                edges[k] = (from, to);
            }
        }
        if !has_data {
            Estimate::NoData
        } else if edges.iter().all(|&(from, to)| from >= to) {
            Estimate::Exact(low)
        } else {
            Estimate::Between(Bounds {
                ship: 0,
                low,
                high,
                edges,
            })
        }
    }
}

/// A window split into whole days and the (at most two) cut days' parts.
struct Window {
    whole_days: Option<(i64, i64)>,
    edges: [(i64, i64); 2],
}

impl Window {
    fn new(first: i64, end: i64) -> Window {
        let first_day = ceil_div(first, BUCKETS_PER_DAY);
        let end_day = end.div_euclid(BUCKETS_PER_DAY);
        if first_day > end_day {
            // Inside one day.
            return Window {
                whole_days: None,
                edges: [(first, end), (0, 0)],
            };
        }
        Window {
            whole_days: (first_day < end_day).then_some((first_day, end_day)),
            edges: [
                (first, first_day * BUCKETS_PER_DAY),
                (end_day * BUCKETS_PER_DAY, end),
            ],
        }
    }
}

enum Estimate {
    NoData,
    Exact(NanoKwh),
    Between(Bounds),
}

/// A ship whose energy in the window is in `[low, high]`; the exact value
/// is `low` plus its energy in the `edges` still to be read.
struct Bounds {
    ship: ShipId,
    low: NanoKwh,
    high: NanoKwh,
    edges: [(i64, i64); 2],
}

/// The bits of `day`'s mask for buckets in `[from, to)`.
fn slot_mask(day: i64, from: i64, to: i64) -> u128 {
    let day_first = day * BUCKETS_PER_DAY;
    let a = (from - day_first).clamp(0, BUCKETS_PER_DAY) as u32;
    let b = (to - day_first).clamp(0, BUCKETS_PER_DAY) as u32;
    if a >= b {
        return 0;
    }
    ((1u128 << (b - a)) - 1) << a
}

fn ceil_div(a: i64, b: i64) -> i64 {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 {
        q
    } else {
        q + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(index: i64, kwh: f64, coverage_s: u32) -> Bucket {
        Bucket {
            index,
            energy_kwh: kwh,
            coverage_s,
        }
    }

    /// Ship 1: days 0 and 1 full at 1 kWh per bucket; ship 2: 2 kWh per
    /// bucket on day 1 only, and one partial bucket on day 2.
    fn sample() -> Rollup {
        let mut rollup = Rollup::new();
        let day = |d: i64, kwh: f64| -> Vec<Bucket> {
            (0..96).map(|k| bucket(d * 96 + k, kwh, 900)).collect()
        };
        rollup.add_buckets(1, &[day(0, 1.0), day(1, 1.0)].concat());
        rollup.add_buckets(2, &day(1, 2.0));
        rollup.add_buckets(2, &[bucket(2 * 96 + 5, 0.5, 300)]);
        rollup
    }

    #[test]
    fn fleet_counts_ships_per_bucket_hour_and_day() {
        let rollup = sample();
        let buckets = rollup.fleet(96, 97, 1);
        assert_eq!(
            buckets,
            vec![FleetInterval {
                first_bucket: 96,
                sum: 3_000_000_000,
                ships: 2
            }]
        );
        let days = rollup.fleet(0, 3 * 96, 96);
        assert_eq!(
            days.iter()
                .map(|d| (d.first_bucket, d.sum, d.ships))
                .collect::<Vec<_>>(),
            vec![
                (0, 96_000_000_000, 1),
                (96, 288_000_000_000, 2),
                (192, 500_000_000, 1)
            ]
        );
        // A cut day counts the ships with data in the part inside.
        let cut = rollup.fleet(2 * 96 + 6, 3 * 96, 96);
        assert!(cut.is_empty(), "{cut:?}");
        let hours = rollup.fleet(2 * 96, 3 * 96, 4);
        assert_eq!(
            hours,
            vec![FleetInterval {
                first_bucket: 2 * 96 + 4,
                sum: 500_000_000,
                ships: 1
            }]
        );
        assert_eq!(rollup.stored_range(), Some((0, 2 * 96 + 6)));
    }

    #[test]
    fn overwrites_change_totals_by_exactly_the_difference() {
        let mut rollup = sample();
        let before = rollup.clone();
        // 0.1 + 0.2 kWh written, then overwritten back to 1 kWh.
        rollup.apply(1, &[bucket(10, 1.0, 900)], &[bucket(10, 0.1 + 0.2, 900)]);
        assert_ne!(rollup, before);
        rollup.apply(1, &[bucket(10, 0.1 + 0.2, 900)], &[bucket(10, 1.0, 900)]);
        assert_eq!(rollup, before);
    }

    #[test]
    fn top_users_reads_edges_only_for_ships_that_can_place() {
        let rollup = sample();
        let mut asked = Vec::new();
        // Whole days 1..2 plus half of day 0: ship 2 (192) beats ship 1
        // (96 + 48) without its edge being read, since it has no data on
        // day 0; ship 1's edge on day 0 must be read.
        let top = rollup
            .top_users(48, 2 * 96, 2, |ship, from, to| {
                asked.push((ship, from, to));
                Ok::<_, ()>((to - from) as NanoKwh * 1_000_000_000)
            })
            .unwrap();
        assert_eq!(top, vec![(2, 192_000_000_000), (1, 144_000_000_000)]);
        assert_eq!(asked, vec![(1, 48, 96)]);
        // Count 1: ship 1's bound (192) ties ship 2's exact 192, and ship 1
        // has the smaller id, so its edge must be read; it then loses.
        asked.clear();
        let top = rollup
            .top_users(48, 2 * 96, 1, |ship, from, to| {
                asked.push((ship, from, to));
                Ok::<_, ()>((to - from) as NanoKwh * 1_000_000_000)
            })
            .unwrap();
        assert_eq!(top, vec![(2, 192_000_000_000)]);
        assert_eq!(asked.len(), 1);
        // Without data in the window: left out; a partial bucket counts.
        let top = rollup
            .top_users(2 * 96, 3 * 96, 5, |_, _, _| Err(()))
            .unwrap();
        assert_eq!(top, vec![(2, 500_000_000)]);
    }

    #[test]
    fn parts_round_trip_and_inconsistency_is_refused() {
        let rollup = sample();
        let ships: Vec<(ShipId, Vec<ShipDay>)> = rollup
            .ship_days()
            .into_iter()
            .map(|(s, d)| (s, d.to_vec()))
            .collect();
        let sums: Vec<_> = rollup.fleet_days().map(|(d, s)| (d, *s)).collect();
        assert_eq!(
            Rollup::from_parts(ships.clone(), sums.clone()).unwrap(),
            rollup
        );
        let mut wrong = sums.clone();
        wrong[0].1[3] += 1;
        assert!(Rollup::from_parts(ships.clone(), wrong).is_err());
        let mut wrong = ships;
        wrong[0].1[0].mask |= 1 << 100;
        assert!(Rollup::from_parts(wrong, sums).is_err());
    }
}
