//! The rollup index: fleet totals per bucket and per-ship totals per day,
//! kept up to date on every write, so fleet views and top-N rankings add a
//! few numbers per interval or per ship instead of reading every bucket.
//!
//! What it holds:
//! - per UTC day with data, the fleet's energy in each of the day's 96
//!   buckets, and how many ships have data in each bucket, each hour and
//!   the whole day;
//! - per UTC day, per ship, the day's energy and a 96-bit mask of its
//!   buckets that hold data;
//! - per 32-day group, each ship's energy in the group.
//!
//! Layout: day-major columns. A day keeps its ships' totals and masks in
//! vectors indexed by a dense ship number, so a ranking over whole days is
//! a pass over a few contiguous columns (streaming adds the compiler can
//! unroll) rather than a visit to every ship's own structure: 10,000 ships
//! × 30 days is 300,000 adds over 4.8 MB read in order.
//!
//! Invariants (the property tests check them against brute force):
//! - every energy is a sum of bucket energies ([`NanoKwh`], by the one
//!   definition, [`crate::model::EnergySum`]), in exact integer
//!   arithmetic; a bucket's contribution is always
//!   computed by [`crate::model::spans_to_buckets`] from the ship's spans in
//!   that bucket, which are the same whichever layer (memtable or block)
//!   holds them — so a value added once is removed exactly by the overwrite
//!   that replaces it, and the index after any history of writes, restarts
//!   and rebuilds equals the index built from scratch;
//! - a bucket "has data" when any second of it is covered (partial buckets
//!   count); coverage only grows, since writes never delete.
//!
//! The index knows nothing of how spans are stored: the engine hands it the
//! bucket changes of every write ([`BucketChanges`]) and answers edge
//! questions for it ([`Rollup::top_users`]).

use std::collections::{BTreeMap, HashMap};

pub use crate::model::BUCKETS_PER_DAY;
use crate::model::{
    for_each_bucket, Bucket, NanoKwh, ShipId, Span, BUCKETS_PER_HOUR, BUCKET_SECONDS,
};

const SLOTS: usize = BUCKETS_PER_DAY as usize;
/// Days per group: the coarse step of per-ship totals, so a ranking over a
/// year adds about a dozen group columns rather than 365 day columns.
pub const DAYS_PER_GROUP: i64 = 32;
/// The mask bits a day can use.
pub const DAY_MASK: u128 = (1u128 << BUCKETS_PER_DAY) - 1;

/// One ship's day, as the index file stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShipDay {
    pub day: i64,
    /// Bit `k` set: bucket `day * 96 + k` holds data.
    pub mask: u128,
    pub total: NanoKwh,
}

/// One day of the index.
#[derive(Clone, Debug)]
struct Day {
    sums: [NanoKwh; SLOTS],
    ships: [u32; SLOTS],
    hour_ships: [u32; 24],
    day_ships: u32,
    /// Per ship number: the day's total and bucket mask.
    cells: Column<DayCell>,
}

/// One ship's day in a [`Day`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct DayCell {
    mask: u128,
    total: NanoKwh,
}

/// Values per dense ship number, for the numbers from `base` on: a day or
/// a group holds the range of numbers that wrote in it, not every number
/// below the highest, so the index grows with the data, not with the
/// highest ship number times the days (a fleet whose ships come and go
/// over a year). Numbers outside the range hold nothing.
#[derive(Clone, Debug, Default)]
struct Column<T> {
    base: usize,
    values: Vec<T>,
}

impl<T: Copy + Default> Column<T> {
    /// The value of `number`, made room for (at either end) if needed.
    fn slot(&mut self, number: usize) -> &mut T {
        if self.values.is_empty() {
            self.base = number;
        } else if number < self.base {
            let missing = self.base - number;
            self.values
                .splice(0..0, std::iter::repeat_n(T::default(), missing));
            self.base = number;
        }
        let index = number - self.base;
        if index >= self.values.len() {
            self.values.resize(index + 1, T::default());
        }
        &mut self.values[index]
    }

    /// `(number, value)` for every number held, ascending.
    fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.values
            .iter()
            .enumerate()
            .map(move |(index, value)| (self.base + index, value))
    }
}

impl Day {
    /// Updates the ship counts for one ship whose mask went from `old` to
    /// `new`.
    fn count_ships(&mut self, old: u128, new: u128) {
        if old == new {
            return;
        }
        let (added, removed) = (new & !old, old & !new);
        for (slot, ships) in self.ships.iter_mut().enumerate() {
            *ships = ships
                .wrapping_add((added >> slot) as u32 & 1)
                .wrapping_sub((removed >> slot) as u32 & 1);
        }
        let any = |mask: u128, hour: usize| u32::from(mask >> (hour * 4) & 0xF != 0);
        for (hour, ships) in self.hour_ships.iter_mut().enumerate() {
            *ships = ships
                .wrapping_add(any(new, hour))
                .wrapping_sub(any(old, hour));
        }
        self.day_ships = self
            .day_ships
            .wrapping_add(u32::from(new != 0))
            .wrapping_sub(u32::from(old != 0));
    }

    fn empty() -> Box<Day> {
        Box::new(Day {
            sums: [0; SLOTS],
            ships: [0; SLOTS],
            hour_ships: [0; 24],
            day_ships: 0,
            cells: Column::default(),
        })
    }
}

/// One 32-day group: per ship number, the energy and the days with data.
#[derive(Clone, Debug, Default)]
struct Group {
    cells: Column<GroupCell>,
}

#[derive(Clone, Copy, Debug, Default)]
struct GroupCell {
    total: NanoKwh,
    days_with_data: u8,
}

/// Per ship number.
#[derive(Clone, Copy, Debug)]
struct Ship {
    id: ShipId,
    /// Buckets holding data lie in `[first, end)`; empty when `first == end`.
    first: i64,
    end: i64,
}

impl Ship {
    /// Widens the range to the buckets of `day` that `mask` marks. Never
    /// narrows: the range only has to contain every bucket with data.
    fn include(&mut self, day: i64, mask: u128) {
        if mask == 0 {
            return;
        }
        let first = day * BUCKETS_PER_DAY + i64::from(mask.trailing_zeros());
        let end = day * BUCKETS_PER_DAY + 128 - i64::from(mask.leading_zeros());
        if self.first == self.end {
            (self.first, self.end) = (first, end);
        } else {
            (self.first, self.end) = (self.first.min(first), self.end.max(end));
        }
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

#[derive(Clone, Debug, Default)]
pub struct Rollup {
    days: BTreeMap<i64, Box<Day>>,
    groups: BTreeMap<i64, Group>,
    number_of: HashMap<ShipId, u32>,
    ships: Vec<Ship>,
}

/// One bucket's change: the difference of its energy, and
/// whether it holds data afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Change {
    index: i64,
    delta: NanoKwh,
    present: bool,
}

impl Change {
    #[inline]
    fn push(changes: &mut Vec<Change>, index: i64, delta: NanoKwh, present: bool) {
        changes.push(Change {
            index,
            delta,
            present,
        });
    }
}

/// What one write does to a ship's buckets, ascending by bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketChanges(Vec<Change>);

impl BucketChanges {
    /// From the buckets a write touched, before (`old`) and after (`new`),
    /// both sorted by index.
    pub fn between(old: &[Bucket], new: &[Bucket]) -> BucketChanges {
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
            let value = |b: Option<&Bucket>| b.map_or(0, |b| b.energy);
            Change::push(
                &mut changes,
                index,
                value(after).wrapping_sub(value(before)),
                after.is_some_and(|b| b.coverage_s > 0),
            );
        }
        BucketChanges(changes)
    }

    /// A write of `spans` (sorted, disjoint) where the ship has no data
    /// yet: every touched bucket is new. Computed off the commit path.
    pub fn fresh(spans: &[Span]) -> BucketChanges {
        let mut changes = Vec::with_capacity(spans.len());
        for_each_bucket(
            spans,
            i64::MIN / BUCKET_SECONDS,
            i64::MAX / BUCKET_SECONDS,
            |bucket| {
                Change::push(
                    &mut changes,
                    bucket.index,
                    bucket.energy,
                    bucket.coverage_s > 0,
                )
            },
        );
        BucketChanges(changes)
    }
}

impl Rollup {
    pub fn new() -> Rollup {
        Rollup::default()
    }

    /// Folds one write of `ship` into the index.
    pub fn apply(&mut self, ship: ShipId, changes: &BucketChanges) {
        let changes = &changes.0;
        if changes.is_empty() {
            return;
        }
        let number = self.number(ship);
        let mut position = 0;
        while position < changes.len() {
            let day = changes[position].index.div_euclid(BUCKETS_PER_DAY);
            let day_end = (day + 1) * BUCKETS_PER_DAY;
            let next = position
                + changes[position..]
                    .iter()
                    .take_while(|c| c.index < day_end)
                    .count();
            self.apply_day(number, day, &changes[position..next]);
            position = next;
        }
    }

    /// Adds the spans of one stored chunk (a rebuild from the blocks).
    /// Chunks are partition-aligned, so no bucket straddles two of them.
    pub fn add_chunk_spans(&mut self, ship: ShipId, spans: &[Span]) {
        self.apply(ship, &BucketChanges::fresh(spans));
    }

    /// The ship's number, assigned on first sight.
    fn number(&mut self, ship: ShipId) -> usize {
        let next = self.ships.len() as u32;
        let number = *self.number_of.entry(ship).or_insert(next);
        if number == next {
            self.ships.push(Ship {
                id: ship,
                first: 0,
                end: 0,
            });
        }
        number as usize
    }

    /// Applies `changes` (all in `day`, ascending) for ship `number`.
    fn apply_day(&mut self, number: usize, day: i64, changes: &[Change]) {
        let entry = self.days.entry(day).or_insert_with(Day::empty);
        // Sums first, in one tight loop; the counts follow from the masks
        // before and after, without a branch per bucket.
        let day_first = day * BUCKETS_PER_DAY;
        let (mut set, mut cleared) = (0u128, 0u128);
        let mut delta_total: NanoKwh = 0;
        for change in changes {
            let slot = (change.index - day_first) as usize;
            let delta = change.delta;
            entry.sums[slot] = entry.sums[slot].wrapping_add(delta);
            delta_total = delta_total.wrapping_add(delta);
            if change.present {
                set |= 1u128 << slot;
            } else {
                cleared |= 1u128 << slot;
            }
        }
        let cell = entry.cells.slot(number);
        let old = cell.mask;
        // Writes never remove coverage; clearing is kept for symmetry.
        let new = (old | set) & !(cleared & !set);
        cell.mask = new;
        cell.total = cell.total.wrapping_add(delta_total);
        entry.count_ships(old, new);
        self.ships[number].include(day, new);
        self.add_to_group(
            number,
            day,
            delta_total,
            i8::from(new != 0) - i8::from(old != 0),
        );
    }

    fn add_to_group(&mut self, number: usize, day: i64, delta: NanoKwh, days_delta: i8) {
        let group = self
            .groups
            .entry(day.div_euclid(DAYS_PER_GROUP))
            .or_default();
        let cell = group.cells.slot(number);
        cell.total = cell.total.wrapping_add(delta);
        cell.days_with_data = cell.days_with_data.wrapping_add_signed(days_delta);
    }

    /// Loads one ship's day as the index file stores it. The fleet sums
    /// are the file's to set; counts, group totals and ranges follow.
    fn set_day(&mut self, number: usize, ship_day: ShipDay) {
        let ShipDay { day, mask, total } = ship_day;
        let entry = self.days.entry(day).or_insert_with(Day::empty);
        *entry.cells.slot(number) = DayCell { mask, total };
        entry.count_ships(0, mask);
        self.ships[number].include(day, mask);
        self.add_to_group(number, day, total, 1);
    }

    /// Whether `ship` may have data in buckets `[first, end)`: false only
    /// when every bucket it holds lies outside. Lets writes past the end of
    /// a ship's history skip reading what they replace.
    pub fn may_have_data(&self, ship: ShipId, first: i64, end: i64) -> bool {
        match self.number_of.get(&ship) {
            Some(&number) => {
                let ship = &self.ships[number as usize];
                ship.first < ship.end && first < ship.end && ship.first < end
            }
            None => false,
        }
    }

    /// First and end (exclusive) bucket of all stored data.
    pub fn stored_range(&self) -> Option<(i64, i64)> {
        let (first_day, first) = self.days.iter().find(|(_, d)| d.day_ships > 0)?;
        let (last_day, last) = self.days.iter().rev().find(|(_, d)| d.day_ships > 0)?;
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
        for (&day, entry) in self.days.range(days) {
            let day_first = day * BUCKETS_PER_DAY;
            let slots = (first.max(day_first) - day_first)
                ..(end.min(day_first + BUCKETS_PER_DAY) - day_first);
            for slot in slots {
                if entry.ships[slot as usize] == 0 {
                    continue;
                }
                let interval = (day_first + slot).div_euclid(step) * step;
                match out.last_mut() {
                    Some(last) if last.first_bucket == interval => {
                        last.sum = last.sum.wrapping_add(entry.sums[slot as usize]);
                    }
                    _ => out.push(FleetInterval {
                        first_bucket: interval,
                        sum: entry.sums[slot as usize],
                        ships: self.ships_in_interval(entry, slot, interval, step, first, end),
                    }),
                }
            }
        }
        out
    }

    /// Ships with data in `[interval, interval + step) ∩ [first, end)`;
    /// `slot` is a bucket of it in `entry`.
    fn ships_in_interval(
        &self,
        entry: &Day,
        slot: i64,
        interval: i64,
        step: i64,
        first: i64,
        end: i64,
    ) -> u32 {
        let whole = interval >= first && interval + step <= end;
        match step {
            1 => entry.ships[slot as usize],
            BUCKETS_PER_HOUR if whole => entry.hour_ships[(slot / BUCKETS_PER_HOUR) as usize],
            BUCKETS_PER_DAY if whole => entry.day_ships,
            // An interval cut by the window (or an unusual step): ask the
            // masks. At most two intervals per query get here.
            _ => {
                let (from, to) = (interval.max(first), (interval + step).min(end));
                let mut seen = vec![false; self.ships.len()];
                let days = from.div_euclid(BUCKETS_PER_DAY)..=(to - 1).div_euclid(BUCKETS_PER_DAY);
                for (&day, entry) in self.days.range(days) {
                    let inside = slot_mask(day, from, to);
                    for (number, cell) in entry.cells.iter() {
                        seen[number] |= cell.mask & inside != 0;
                    }
                }
                seen.iter().filter(|&&s| s).count() as u32
            }
        }
    }

    /// The `count` ships with the most energy in buckets `[first, end)`,
    /// descending, ties by ship id; ships without data there are left out.
    ///
    /// Whole days come from the group and day columns. A window edge that
    /// cuts a day needs the ship's buckets in the cut part, which only
    /// `edge(ship, first, end)` can give (it reads them); it is asked only
    /// for ships that could still make the ranking: a day's total bounds
    /// any part of it (energy is never negative), so ships are visited by
    /// that upper bound, best first, until the bound falls below the
    /// ranking's last place. Where a ship's data in a cut day lies wholly
    /// inside (or outside) the window, its mask says so and no read is
    /// needed.
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
        let n = self.ships.len();
        let mut low: Vec<NanoKwh> = vec![0; n];
        let mut slack: Vec<NanoKwh> = vec![0; n];
        // Bit 0: has data in the window; bits 1, 2: edge 0, 1 still open.
        let mut flags: Vec<u8> = vec![0; n];
        if let Some((first_day, end_day)) = window.whole_days {
            self.add_whole_days(first_day, end_day, &mut low, &mut flags);
        }
        for (k, &(from, to)) in window.edges.iter().enumerate() {
            let Some(day) = (from < to)
                .then(|| self.days.get(&from.div_euclid(BUCKETS_PER_DAY)))
                .flatten()
            else {
                continue;
            };
            let inside = slot_mask(from.div_euclid(BUCKETS_PER_DAY), from, to);
            for (number, &DayCell { mask, total }) in day.cells.iter() {
                if mask & inside == 0 {
                    continue;
                }
                flags[number] |= 1;
                if mask & !inside == 0 {
                    low[number] = low[number].wrapping_add(total);
                } else {
                    slack[number] = slack[number].wrapping_add(total);
                    flags[number] |= 2 << k;
                }
            }
        }

        let rank = |a: &(ShipId, NanoKwh), b: &(ShipId, NanoKwh)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
        let mut exact: Vec<(ShipId, NanoKwh)> = Vec::new();
        let mut open: Vec<Bounds> = Vec::new();
        for number in 0..n {
            match flags[number] {
                0 => {}
                1 => exact.push((self.ships[number].id, low[number])),
                f => open.push(Bounds {
                    number,
                    low: low[number],
                    high: low[number].wrapping_add(slack[number]),
                    edges: f >> 1,
                }),
            }
        }
        // No ship whose upper bound is below the count-th best lower bound
        // can place: drop them before sorting.
        if open.len() + exact.len() > count && !open.is_empty() {
            let mut lows: Vec<NanoKwh> = exact
                .iter()
                .map(|e| e.1)
                .chain(open.iter().map(|b| b.low))
                .collect();
            let (_, &mut floor, _) = lows.select_nth_unstable_by(count - 1, |a, b| b.cmp(a));
            open.retain(|b| b.high >= floor);
        }
        if exact.len() > count {
            exact.select_nth_unstable_by(count - 1, rank);
            exact.truncate(count);
        }
        exact.sort_unstable_by(rank);
        let id = |b: &Bounds| self.ships[b.number].id;
        open.sort_unstable_by(|a, b| b.high.cmp(&a.high).then(id(a).cmp(&id(b))));
        for bounds in open {
            let ship = id(&bounds);
            if exact.len() == count {
                let last = exact[count - 1];
                if (bounds.high, std::cmp::Reverse(ship)) < (last.1, std::cmp::Reverse(last.0)) {
                    break;
                }
            }
            let mut total = bounds.low;
            for (k, &(from, to)) in window.edges.iter().enumerate() {
                if bounds.edges >> k & 1 == 1 {
                    total = total.wrapping_add(edge(ship, from, to)?);
                }
            }
            let entry = (ship, total);
            let at = exact.partition_point(|e| rank(e, &entry).is_lt());
            if at < count {
                exact.insert(at, entry);
                exact.truncate(count);
            }
        }
        Ok(exact)
    }

    /// Adds every ship's energy over whole days `[first_day, end_day)` to
    /// `low`, and marks ships with data there: group columns for the groups
    /// inside, day columns at the ragged ends.
    fn add_whole_days(&self, first_day: i64, end_day: i64, low: &mut [NanoKwh], flags: &mut [u8]) {
        // Streaming adds over a column's contiguous range of numbers.
        fn add<T>(
            low: &mut [NanoKwh],
            flags: &mut [u8],
            column: &Column<T>,
            total: impl Fn(&T) -> NanoKwh,
            has: impl Fn(&T) -> bool,
        ) {
            let (low, flags) = (&mut low[column.base..], &mut flags[column.base..]);
            for ((low, flag), value) in low.iter_mut().zip(flags.iter_mut()).zip(&column.values) {
                *low = low.wrapping_add(total(value));
                *flag |= u8::from(has(value));
            }
        }
        let first_group = ceil_div(first_day, DAYS_PER_GROUP);
        let end_group = end_day.div_euclid(DAYS_PER_GROUP);
        let mut days = |from: i64, to: i64| {
            for (_, day) in self.days.range(from..to) {
                add(low, flags, &day.cells, |c| c.total, |c| c.mask != 0);
            }
        };
        if first_group >= end_group {
            days(first_day, end_day);
            return;
        }
        days(first_day, first_group * DAYS_PER_GROUP);
        days(end_group * DAYS_PER_GROUP, end_day);
        for (_, group) in self.groups.range(first_group..end_group) {
            add(
                low,
                flags,
                &group.cells,
                |c| c.total,
                |c| c.days_with_data > 0,
            );
        }
    }

    /// Every ship's days with data, ascending by ship id and day (what the
    /// index file stores).
    pub fn ship_days(&self) -> Vec<(ShipId, Vec<ShipDay>)> {
        let mut by_number: Vec<Vec<ShipDay>> = vec![Vec::new(); self.ships.len()];
        for (&day, entry) in &self.days {
            for (number, &DayCell { mask, total }) in entry.cells.iter() {
                if mask != 0 {
                    by_number[number].push(ShipDay { day, mask, total });
                }
            }
        }
        let mut ships: Vec<(ShipId, Vec<ShipDay>)> = self
            .ships
            .iter()
            .zip(by_number)
            .filter(|(_, days)| !days.is_empty())
            .map(|(ship, days)| (ship.id, days))
            .collect();
        ships.sort_unstable_by_key(|&(ship, _)| ship);
        ships
    }

    /// The fleet's per-bucket sums of every day with data, ascending.
    pub fn fleet_days(&self) -> impl Iterator<Item = (i64, &[NanoKwh; SLOTS])> {
        self.days
            .iter()
            .filter(|(_, d)| d.day_ships > 0)
            .map(|(&day, d)| (day, &d.sums))
    }

    /// Rebuilds an index from what its file stores: per-ship days and the
    /// fleet's per-bucket sums. Counts and group totals are derived. Fails
    /// (with a reason) when the two disagree.
    pub fn from_parts(
        ships: Vec<(ShipId, Vec<ShipDay>)>,
        fleet_sums: Vec<(i64, [NanoKwh; SLOTS])>,
    ) -> Result<Rollup, String> {
        let mut rollup = Rollup::new();
        let mut day_totals: BTreeMap<i64, NanoKwh> = BTreeMap::new();
        for (ship, days) in ships {
            if rollup.number_of.contains_key(&ship) {
                return Err(format!("ship {ship} appears twice"));
            }
            let number = rollup.number(ship);
            let mut previous: Option<i64> = None;
            for day in days {
                if day.mask & !DAY_MASK != 0 || day.mask == 0 {
                    return Err(format!(
                        "ship {ship} day {} has an impossible bucket mask",
                        day.day
                    ));
                }
                if previous.is_some_and(|p| p >= day.day) {
                    return Err(format!("ship {ship}: days out of order at day {}", day.day));
                }
                previous = Some(day.day);
                let total = day_totals.entry(day.day).or_default();
                *total = total.wrapping_add(day.total);
                rollup.set_day(number, day);
            }
        }
        let mut sums_of: BTreeMap<i64, [NanoKwh; SLOTS]> = fleet_sums.into_iter().collect();
        for (day, entry) in rollup.days.iter_mut() {
            entry.sums = sums_of.remove(day).unwrap_or([0; SLOTS]);
            let sum = entry
                .sums
                .iter()
                .fold(0, |a: NanoKwh, &b| a.wrapping_add(b));
            if sum != day_totals[day] {
                return Err(format!(
                    "fleet day {day}: bucket sums ({sum}) disagree with the ships' day totals ({})",
                    day_totals[day]
                ));
            }
            if entry
                .sums
                .iter()
                .zip(&entry.ships)
                .any(|(&s, &n)| s != 0 && n == 0)
            {
                return Err(format!(
                    "fleet day {day} has energy in a bucket no ship has data in"
                ));
            }
        }
        if let Some((day, _)) = sums_of.into_iter().next() {
            return Err(format!(
                "fleet day {day} has sums but no ship has data that day"
            ));
        }
        Ok(rollup)
    }
}

impl Rollup {
    fn nonempty_days(&self) -> Vec<(i64, &Day)> {
        self.days
            .iter()
            .filter(|(_, d)| d.day_ships > 0 || d.sums.iter().any(|&s| s != 0))
            .map(|(&day, d)| (day, &**d))
            .collect()
    }
}

/// Equal when they index the same data, whatever numbers the ships got.
impl PartialEq for Rollup {
    fn eq(&self, other: &Rollup) -> bool {
        let same_day = |(a, x): &(i64, &Day), (b, y): &(i64, &Day)| {
            a == b
                && x.sums == y.sums
                && x.ships == y.ships
                && x.hour_ships == y.hour_ships
                && x.day_ships == y.day_ships
        };
        let (mine, theirs) = (self.nonempty_days(), other.nonempty_days());
        mine.len() == theirs.len()
            && mine.iter().zip(&theirs).all(|(x, y)| same_day(x, y))
            && self.ship_days() == other.ship_days()
    }
}

impl Eq for Rollup {}

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

/// A ship whose energy in the window is in `[low, high]`; the exact value
/// is `low` plus its energy in the window edges flagged in `edges`.
struct Bounds {
    number: usize,
    low: NanoKwh,
    high: NanoKwh,
    edges: u8,
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

    fn nano(kwh: f64) -> NanoKwh {
        (kwh * 1e9).round() as NanoKwh
    }

    fn bucket(index: i64, kwh: f64, coverage_s: u32) -> Bucket {
        Bucket {
            index,
            energy: nano(kwh),
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
        let add = |rollup: &mut Rollup, ship, buckets: &[Bucket]| {
            rollup.apply(ship, &BucketChanges::between(&[], buckets));
        };
        add(&mut rollup, 1, &[day(0, 1.0), day(1, 1.0)].concat());
        add(&mut rollup, 2, &day(1, 2.0));
        add(&mut rollup, 2, &[bucket(2 * 96 + 5, 0.5, 300)]);
        rollup
    }

    /// Ships that each write one day of their own (a fleet whose ships
    /// come and go) cost one cell a day each, not one per ship number
    /// below them: the index grows with the data.
    #[test]
    fn days_hold_only_the_ships_that_wrote_in_them() {
        let mut rollup = Rollup::new();
        let ships = 500u64;
        for ship in 0..ships {
            let day = ship as i64;
            let buckets = [bucket(day * BUCKETS_PER_DAY + 3, 1.0, 900)];
            rollup.apply(ship * 1_000_003, &BucketChanges::between(&[], &buckets));
        }
        let day_cells: usize = rollup.days.values().map(|d| d.cells.values.len()).sum();
        let group_cells: usize = rollup.groups.values().map(|g| g.cells.values.len()).sum();
        assert_eq!(day_cells, ships as usize);
        // A group spans 32 days: at most the 32 ships of its days.
        assert!(group_cells <= ships as usize, "{group_cells} group cells");
        // And a ship written out of order (a lower number later) still
        // lands in its place, with the rest where they were.
        let early = [bucket(7 * BUCKETS_PER_DAY, 2.0, 900)];
        rollup.apply(0, &BucketChanges::between(&[], &early));
        let top = rollup
            .top_users(7 * BUCKETS_PER_DAY, 8 * BUCKETS_PER_DAY, 3, |_, _, _| {
                Ok::<_, ()>(0)
            })
            .unwrap();
        assert_eq!(top[0], (0, nano(2.0)));
        assert_eq!(top[1], (7 * 1_000_003, nano(1.0)));
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
        let overwrite = |rollup: &mut Rollup, old: f64, new: f64| {
            rollup.apply(
                1,
                &BucketChanges::between(&[bucket(10, old, 900)], &[bucket(10, new, 900)]),
            );
        };
        overwrite(&mut rollup, 1.0, 0.1 + 0.2);
        assert_ne!(rollup, before);
        overwrite(&mut rollup, 0.1 + 0.2, 1.0);
        assert_eq!(rollup, before);
    }

    /// What keeping the index costs a write, alone: one ship-day of 96
    /// fifteen-minute spans, its changes computed (`fresh`, on the writer's
    /// thread) and applied (on the committer), for 1,000 ships × 30 days.
    /// Run with `cargo test --release --lib -- --ignored --nocapture
    /// index_write_cost`. Best of several rounds, as for `parse_throughput`.
    #[test]
    #[ignore = "measurement, not a check"]
    fn index_write_cost() {
        let day_spans = |ship: u64, day: i64| -> Vec<Span> {
            (0..96)
                .map(|k| Span {
                    start_s: (day * 96 + k) * BUCKET_SECONDS,
                    end_s: (day * 96 + k + 1) * BUCKET_SECONDS,
                    power_kw: ((ship * 7 + k as u64 * 13) % 500) as f64 / 8.0,
                })
                .collect()
        };
        let (ships, days) = (1_000u64, 30i64);
        let inputs: Vec<(u64, Vec<Span>)> = (0..days)
            .flat_map(|day| (0..ships).map(move |ship| (ship, day_spans(ship, 20_000 + day))))
            .collect();
        let (mut best_fresh, mut best_apply) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..5 {
            let started = std::time::Instant::now();
            let changes: Vec<BucketChanges> = inputs
                .iter()
                .map(|(_, spans)| BucketChanges::fresh(spans))
                .collect();
            best_fresh = best_fresh.min(started.elapsed().as_secs_f64());
            let mut rollup = Rollup::new();
            let started = std::time::Instant::now();
            for ((ship, _), change) in inputs.iter().zip(&changes) {
                assert!(!rollup.may_have_data(*ship, 0, 1));
                rollup.apply(*ship, change);
            }
            best_apply = best_apply.min(started.elapsed().as_secs_f64());
            assert_eq!(rollup.ship_count(), ships as usize);
        }
        let writes = inputs.len() as f64;
        println!(
            "rollup index per 96-bucket write: fresh {:.2} µs (writer thread) + apply {:.2} µs (committer), one core",
            best_fresh / writes * 1e6,
            best_apply / writes * 1e6
        );
    }

    #[test]
    fn energies_beyond_i64_nano_kwh_are_carried_whole() {
        let mut rollup = Rollup::new();
        let huge = 9e17; // kWh in one bucket: 9e26 nano-kWh
        rollup.apply(7, &BucketChanges::between(&[], &[bucket(3, huge, 1)]));
        let want = nano(huge);
        assert!(want > NanoKwh::from(i64::MAX));
        assert_eq!(
            rollup.fleet(0, 96, 1),
            vec![FleetInterval {
                first_bucket: 3,
                sum: want,
                ships: 1
            }]
        );
        rollup.apply(
            7,
            &BucketChanges::between(&[bucket(3, huge, 1)], &[bucket(3, 1.0, 900)]),
        );
        assert_eq!(rollup.fleet(0, 96, 96)[0].sum, 1_000_000_000);
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
