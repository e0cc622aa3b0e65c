//! The domain vocabulary shared by every layer: ships, readings, spans and
//! buckets. Nothing here knows about JSON, HTTP or bytes on disk.
//!
//! The one model behind every normalisation rule (SPEC.md): a ship's history
//! is a piecewise-constant *power* function over the seconds it covers. A
//! [`Span`] is one constant piece. A bucket's energy is the integral of that
//! function over the bucket's 900 seconds; its coverage is how many of those
//! seconds are covered at all.
//!
//! Spans carry power (kW) rather than energy because splitting a span when a
//! later write overwrites part of it must not change the part that stays:
//! a split keeps the power and only moves an edge, so no rounding creeps in.

/// Length of one storage bucket. Bucket `k` covers `[k*900, (k+1)*900)`.
pub const BUCKET_SECONDS: i64 = 900;

/// Seconds per hour: kWh = kW × seconds / 3600.
pub const SECONDS_PER_HOUR: f64 = 3600.0;

/// The bucket calendar, in one place: UTC days and hours are whole numbers
/// of buckets.
pub const SECONDS_PER_DAY: i64 = 86_400;
pub const BUCKETS_PER_DAY: i64 = SECONDS_PER_DAY / BUCKET_SECONDS;
pub const BUCKETS_PER_HOUR: i64 = 3_600 / BUCKET_SECONDS;

/// A ship's identifier (a non-negative integer on the wire).
pub type ShipId = u64;

/// How a batch's values are to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    /// Mean power over the reading's span.
    Kw,
    /// Energy over the reading's span.
    Kwh,
}

/// One meter reading as it arrived, before normalisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// Position in the request's `data` array, so errors can name it.
    pub index: usize,
    /// Interval-beginning timestamp, whole seconds since the Unix epoch (UTC).
    pub time_s: i64,
    /// The reading in the batch's units; finite and non-negative.
    pub value: f64,
}

/// A piece of a ship's timeline: constant power over `[start_s, end_s)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub start_s: i64,
    pub end_s: i64,
    pub power_kw: f64,
}

impl Span {
    pub fn len_s(&self) -> i64 {
        self.end_s - self.start_s
    }
}

/// One stored 15-minute bucket as queries see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Bucket number: the bucket starts at `index * 900` seconds.
    pub index: i64,
    /// The bucket's energy, by [the one definition](EnergySum).
    pub energy: NanoKwh,
    /// Covered seconds in the bucket, 1..=900; below 900 the bucket is partial.
    pub coverage_s: u32,
}

impl Bucket {
    /// The energy in kWh as an `f64`, for arithmetic that is not a sum of
    /// printed values (forecast models, outlier scores).
    pub fn kwh(&self) -> f64 {
        self.energy as f64 / 1e9
    }
}

/// Energy in nano-kWh (10^-9 kWh): how every bucket's energy is held,
/// stored, summed and printed.
///
/// Integers add exactly and in any order, and a value added and later
/// subtracted again (an overwrite) leaves nothing behind, so fleet and
/// per-ship totals are exact sums of the values `GET /data` prints.
/// 10^-9 kWh is the resolution responses print.
pub type NanoKwh = i128;

/// The most decimal places a power is read with (see [`decimal_of`]).
pub const MAX_DECIMALS: u8 = 9;

/// Integers of at most 53 bits: every one is an exact `f64`.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// `10^e` for `e` in `0..=9`, each exact in an `f64`.
const POWERS_OF_TEN: [f64; MAX_DECIMALS as usize + 1] = [
    1.0,
    10.0,
    100.0,
    1_000.0,
    10_000.0,
    100_000.0,
    1_000_000.0,
    10_000_000.0,
    100_000_000.0,
    1_000_000_000.0,
];

/// `Some(m)` when the power `p` is the `f64` nearest to the decimal
/// `m / 10^e`: `m = round(p × 10^e)` (both in `f64`, `round` half away
/// from zero), `|m| < 2^53`, and `m / 10^e` (an `f64` division) equals `p`.
/// The span codec packs powers with it, and [`decimal_of`] reads them.
#[inline]
pub fn decimal_at(p: f64, e: u8) -> Option<i64> {
    let scale = POWERS_OF_TEN[usize::from(e)];
    let scaled = p * scale;
    // NaN-safe: a NaN product is not `Less`.
    if scaled.abs().partial_cmp(&MAX_EXACT_INT) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    // Rounding half away from zero without `f64::round` (a libm call on
    // the baseline x86-64 target): below 2^53 the truncation and the
    // fraction are exact.
    let whole = scaled as i64;
    let fraction = scaled - whole as f64;
    let m = if fraction >= 0.5 {
        whole + 1
    } else if fraction <= -0.5 {
        whole - 1
    } else {
        whole
    };
    let m_f = m as f64;
    (m_f.abs() < MAX_EXACT_INT && m_f / scale == p).then_some(m)
}

/// The decimal a power was sent as: `(m, e)` for the largest `e` in
/// `0..=9` for which [`decimal_at`] finds one, or `None` (a power derived
/// by division, say kWh over 7 minutes, is usually no short decimal).
/// Largest first: a reading of up to 9 decimals below 9,007,199 kW is
/// found at `e = 9` in one step (trailing zeros change nothing: `m / 10^e`
/// is the same rational), and only larger powers look further.
#[inline]
pub fn decimal_of(p: f64) -> Option<(i64, u8)> {
    if let Some(m) = decimal_at(p, MAX_DECIMALS) {
        return Some((m, MAX_DECIMALS));
    }
    // Below 2^51 at e = 9, nothing smaller works either: if p were the
    // nearest f64 to m/10^e, then m·10^(9−e) would be within 1/4 of p·10^9
    // (p's own rounding and the product's, each under 2^-53 relative), so
    // `decimal_at(p, 9)` would have found it. This keeps the usual answer
    // for a power that is no decimal to one step too.
    if (p * POWERS_OF_TEN[usize::from(MAX_DECIMALS)]).abs() < (1u64 << 51) as f64 {
        return None;
    }
    decimal_of_by_search(p)
}

/// [`decimal_of`] by trying every `e` from 9 down: the definition itself.
#[cold]
fn decimal_of_by_search(p: f64) -> Option<(i64, u8)> {
    (0..=MAX_DECIMALS)
        .rev()
        .find_map(|e| decimal_at(p, e).map(|m| (m, e)))
}

/// One power, read once for the energy definition: the decimal it was
/// sent as, or its exact binary value.
#[derive(Clone, Copy, Debug)]
pub enum Power {
    /// `m / 10^e`, held as `m × 10^(9−e)`: nano-kW, an exact integer.
    Decimal(i128),
    /// Not a decimal of at most 9 places: the `f64`'s own value.
    Binary(f64),
}

impl Power {
    #[inline]
    pub fn of(power_kw: f64) -> Power {
        match decimal_of(power_kw) {
            // |m| < 2^53 and 10^(9−e) ≤ 10^9 < 2^30: below 2^83.
            Some((m, e)) => Power::Decimal(
                i128::from(m) * i128::from(POWERS_OF_TEN[usize::from(MAX_DECIMALS - e)] as i64),
            ),
            None => Power::Binary(power_kw),
        }
    }
}

/// The one definition of a bucket's energy (storage-format.md, "The data
/// model on disk"): the exact sum, over the pieces of the ship's power
/// history inside the bucket, of `power × seconds / 3600` kWh, rounded
/// once, half up, to a whole number of nano-kWh:
///
/// `energy = floor(Σ D(pᵢ)·sᵢ × 10⁹ / 3600 + 1/2)`
///
/// where `D(p)` is the decimal the power was sent as ([`decimal_of`]: a
/// meter's `12.345678901` kW counts as exactly that, not as the `f64`
/// nearest to it) or, for a power that is no such decimal, the exact value
/// of its `f64`; and the sum is computed without rounding.
///
/// Exactness makes the value a function of the history alone: the same
/// seconds at the same powers give the same integer however the time was
/// split into spans (a POST merges equal neighbours, replay and checkpoints
/// do not), in whatever order the pieces are added, in the log or in
/// blocks, before or after any checkpoint. A float sum depends on the
/// split (`p·600` and `p·300 + p·300` can differ in the last place), and
/// a sum of `f64` powers decides the many exact decimal ties (three
/// 5-minute readings of 9 decimals end in half a nano-kWh one time in
/// twelve) by the powers' binary rounding errors instead of by the rule.
///
/// Decimal powers add up as integers: `Σ m·s·10^(9−e)` stays below 2^104
/// for a bucket. Binary ones are `m·2^e` with `m < 2^53`, so each term
/// `m·s` is an integer below 2^63 at a binary exponent: their sum is kept
/// as an integer `acc` times `2^exp` (a `u128`, enough whenever those
/// powers lie within ~2^50 of each other), or in a 2,240-bit fixed-point
/// accumulator otherwise.
#[derive(Clone, Debug, Default)]
pub struct EnergySum {
    /// Σ over decimal powers of nano-kW × seconds.
    decimal: i128,
    /// The binary powers' sum is `acc × 2^exp`, `acc` with no trailing
    /// zero bits (or 0).
    acc: u128,
    exp: i32,
    /// The binary powers' whole sum, once the fast form would overflow.
    wide: Option<Box<WideSum>>,
}

/// The smallest binary exponent of an `f64` (its subnormal unit).
const MIN_EXP: i32 = -1074;

impl EnergySum {
    /// Adds `power_kw × seconds` exactly (`power_kw` finite, non-negative;
    /// `seconds` in `0..2^10`, one bucket's worth at most).
    #[inline]
    pub fn add(&mut self, power_kw: f64, seconds: i64) {
        self.add_power(Power::of(power_kw), seconds);
    }

    /// [`EnergySum::add`] for a power already read with [`Power::of`].
    #[inline]
    pub fn add_power(&mut self, power: Power, seconds: i64) {
        debug_assert!((0..1024).contains(&seconds));
        match power {
            // Each term is below 2^83 × 2^10, and a bucket's terms cover at
            // most 900 seconds, so the sum stays below 2^93: no overflow,
            // and no overflow-checking i128 arithmetic (a library call).
            Power::Decimal(nano_kw) => self.decimal += nano_kw * i128::from(seconds),
            Power::Binary(p) => self.add_binary(p, seconds),
        }
    }

    fn add_binary(&mut self, power_kw: f64, seconds: i64) {
        debug_assert!(power_kw >= 0.0 && power_kw.is_finite());
        let bits = power_kw.to_bits();
        let exponent_bits = ((bits >> 52) & 0x7ff) as i32;
        let fraction = bits & ((1 << 52) - 1);
        let (m, e) = if exponent_bits == 0 {
            (fraction, MIN_EXP)
        } else {
            (fraction | (1 << 52), exponent_bits - 1075)
        };
        let term = u128::from(m) * seconds as u128;
        if term == 0 {
            return;
        }
        let zeros = term.trailing_zeros();
        self.add_term(term >> zeros, e + zeros as i32);
    }
    /// Adds `term × 2^e` (`term` below 2^64, `e ≥ MIN_EXP`).
    #[inline]
    fn add_term(&mut self, term: u128, e: i32) {
        if let Some(wide) = &mut self.wide {
            wide.add(term as u64, e);
            return;
        }
        if self.acc == 0 {
            self.acc = term;
            self.exp = e;
            return;
        }
        let sum = if e >= self.exp {
            let shift = (e - self.exp) as u32;
            (shift < term.leading_zeros())
                .then(|| self.acc.checked_add(term << shift))
                .flatten()
        } else {
            let shift = (self.exp - e) as u32;
            (shift < self.acc.leading_zeros())
                .then(|| (self.acc << shift).checked_add(term))
                .flatten()
                .inspect(|_| self.exp = e)
        };
        match sum {
            Some(acc) => {
                let zeros = acc.trailing_zeros();
                self.acc = acc >> zeros;
                self.exp += zeros as i32;
            }
            None => {
                let mut wide = Box::new(WideSum::default());
                wide.add(self.acc as u64, self.exp);
                wide.add((self.acc >> 64) as u64, self.exp + 64);
                wide.add(term as u64, e);
                self.wide = Some(wide);
            }
        }
    }

    /// Back to zero, for the next bucket.
    #[inline]
    pub fn clear(&mut self) {
        self.decimal = 0;
        self.acc = 0;
        self.exp = 0;
        self.wide = None;
    }

    /// The energy: with `N` the decimal powers' nano-kW·s and `B` the
    /// binary powers' kW·s, `floor((N + 10⁹·B) / 3600 + 1/2)` nano-kWh,
    /// which is `floor((N + 1800 + floor(10⁹·B)) / 3600)` (adding the
    /// fraction of `10⁹·B` to an integer cannot reach the next multiple
    /// of 3600). Saturates at `i128::MAX`, far beyond what validated
    /// readings reach (1e15 kWh in one second is 1e24 nano-kWh).
    pub fn nano_kwh(&self) -> NanoKwh {
        // The usual bucket: decimal powers only, and a sum that fits a
        // u64, where dividing by the constant 3600 is a multiply (an i128
        // division is a library call, the most expensive step here).
        if self.acc == 0 && self.wide.is_none() {
            if let Some(n) = u64::try_from(self.decimal)
                .ok()
                .and_then(|n| n.checked_add(1800))
            {
                return NanoKwh::from(n / 3600);
            }
        }
        let binary = match &self.wide {
            Some(wide) => wide.floor_times_1e9(),
            None => floor_scaled(self.acc, self.exp),
        };
        let numerator = binary
            .and_then(|b| i128::try_from(b).ok())
            .and_then(|b| b.checked_add(self.decimal)?.checked_add(1800));
        match numerator {
            Some(n) => n.div_euclid(3600),
            None => i128::MAX,
        }
    }
}

/// `floor(10⁹ × acc × 2^exp)`, or `None` if it does not fit a `u128`.
fn floor_scaled(acc: u128, exp: i32) -> Option<u128> {
    const SCALE: u128 = 1_000_000_000;
    if exp >= 0 {
        let shifted = acc.checked_shl(exp as u32).filter(|v| v >> exp == acc)?;
        return shifted.checked_mul(SCALE);
    }
    // acc × 10⁹ is below 2^158: as a 256-bit (high, low) pair.
    let lo = (acc as u64 as u128) * SCALE;
    let hi = (acc >> 64) * SCALE;
    let (low, carry) = lo.overflowing_add(hi << 64);
    let high = (hi >> 64) + u128::from(carry);
    let n = exp.unsigned_abs();
    if n >= 256 {
        return Some(0);
    }
    if n >= 128 {
        return Some(high >> (n - 128));
    }
    if n == 0 {
        return (high == 0).then_some(low);
    }
    if high >> n != 0 {
        return None;
    }
    Some((low >> n) | (high << (128 - n)))
}

/// Fixed point with unit 2^-1074: enough bits for any sum of up to 1,024
/// terms `m·s·2^e` of `f64` powers (up to 2^1024 × 2^10 × 2^10).
#[derive(Clone, Debug)]
struct WideSum {
    limbs: [u64; WIDE_LIMBS],
}

const WIDE_LIMBS: usize = 35;

impl Default for WideSum {
    fn default() -> Self {
        WideSum {
            limbs: [0; WIDE_LIMBS],
        }
    }
}

impl WideSum {
    /// Adds `value × 2^e`.
    fn add(&mut self, value: u64, e: i32) {
        if value == 0 {
            return;
        }
        let offset = (e - MIN_EXP) as usize;
        let (limb, bit) = (offset / 64, offset % 64);
        let shifted = u128::from(value) << bit;
        let mut carry = 0u128;
        for (i, part) in [shifted as u64, (shifted >> 64) as u64]
            .into_iter()
            .enumerate()
        {
            let sum = u128::from(self.limbs[limb + i]) + u128::from(part) + carry;
            self.limbs[limb + i] = sum as u64;
            carry = sum >> 64;
        }
        let mut i = limb + 2;
        while carry != 0 && i < WIDE_LIMBS {
            let sum = u128::from(self.limbs[i]) + carry;
            self.limbs[i] = sum as u64;
            carry = sum >> 64;
            i += 1;
        }
    }

    /// `floor(10⁹ × value)`, or `None` if it does not fit a `u128`.
    fn floor_times_1e9(&self) -> Option<u128> {
        let mut product = [0u64; WIDE_LIMBS + 1];
        let mut carry = 0u128;
        for (i, &limb) in self.limbs.iter().enumerate() {
            let p = u128::from(limb) * 1_000_000_000 + carry;
            product[i] = p as u64;
            carry = p >> 64;
        }
        product[WIDE_LIMBS] = carry as u64;
        // Shift right by 1074 bits = 16 limbs and 50 bits.
        let (skip, bit) = ((-MIN_EXP) as usize / 64, (-MIN_EXP) as u32 % 64);
        let word = |i: usize| -> u64 {
            let at = skip + i;
            let low = product.get(at).copied().unwrap_or(0) >> bit;
            let high = product.get(at + 1).copied().unwrap_or(0) << (64 - bit);
            low | high
        };
        if (2..WIDE_LIMBS).any(|i| word(i) != 0) {
            return None;
        }
        Some(u128::from(word(0)) | (u128::from(word(1)) << 64))
    }
}

/// The bucket that contains second `t` (floor division, also before 1970).
pub fn bucket_of(t_s: i64) -> i64 {
    t_s.div_euclid(BUCKET_SECONDS)
}

/// Folds sorted, disjoint spans into the buckets they touch, restricted to
/// buckets `[first_bucket, end_bucket)`, each bucket's energy by the one
/// definition ([`EnergySum`]).
pub fn spans_to_buckets(spans: &[Span], first_bucket: i64, end_bucket: i64, out: &mut Vec<Bucket>) {
    for_each_bucket(spans, first_bucket, end_bucket, |bucket| out.push(bucket));
}

/// [`spans_to_buckets`], handing each bucket to `emit` in ascending order
/// instead of collecting them.
#[inline]
pub fn for_each_bucket(
    spans: &[Span],
    first_bucket: i64,
    end_bucket: i64,
    emit: impl FnMut(Bucket),
) {
    for_each_bucket_with(
        spans,
        |_, span| Power::of(span.power_kw),
        first_bucket,
        end_bucket,
        emit,
    );
}

/// [`for_each_bucket`] with span `i`'s power read by `power(i, span)`
/// (only for the spans inside the window): for a reader that holds the
/// decimal a power was sent as (a block's decimal column) and need not
/// recover it from the `f64`. `power` must give what [`Power::of`] would.
#[inline]
pub fn for_each_bucket_with(
    spans: &[Span],
    mut power: impl FnMut(usize, &Span) -> Power,
    first_bucket: i64,
    end_bucket: i64,
    mut emit: impl FnMut(Bucket),
) {
    let window_start = first_bucket.saturating_mul(BUCKET_SECONDS);
    let window_end = end_bucket.saturating_mul(BUCKET_SECONDS);
    // The bucket being filled, its energy so far and its covered seconds;
    // reused from bucket to bucket rather than moved.
    let mut open: Option<i64> = None;
    let mut energy = EnergySum::default();
    let mut coverage = 0i64;
    for (index, span) in spans.iter().enumerate() {
        let mut start = span.start_s.max(window_start);
        let end = span.end_s.min(window_end);
        if start >= end {
            continue;
        }
        let power = power(index, span);
        // The common case: the span lies inside the bucket being filled.
        if let Some(bucket) = open {
            if start >= bucket * BUCKET_SECONDS && end <= (bucket + 1) * BUCKET_SECONDS {
                energy.add_power(power, end - start);
                coverage += end - start;
                continue;
            }
        }
        while start < end {
            // Consecutive spans usually start the bucket right after the
            // open one: known without a division.
            let next = open.and_then(|b| Some((b + 1, (b + 1).checked_mul(BUCKET_SECONDS)?)));
            let bucket = match next {
                Some((next, next_start))
                    if start >= next_start && start - next_start < BUCKET_SECONDS =>
                {
                    next
                }
                _ => bucket_of(start),
            };
            let piece_end = end.min((bucket + 1) * BUCKET_SECONDS);
            if open != Some(bucket) {
                if let Some(done) = open {
                    emit(Bucket {
                        index: done,
                        energy: energy.nano_kwh(),
                        coverage_s: coverage as u32,
                    });
                }
                energy.clear();
                coverage = 0;
                open = Some(bucket);
            }
            energy.add_power(power, piece_end - start);
            coverage += piece_end - start;
            start = piece_end;
        }
    }
    if let Some(done) = open {
        emit(Bucket {
            index: done,
            energy: energy.nano_kwh(),
            coverage_s: coverage as u32,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn energy(pieces: &[(f64, i64)]) -> NanoKwh {
        let mut sum = EnergySum::default();
        for &(power, seconds) in pieces {
            sum.add(power, seconds);
        }
        sum.nano_kwh()
    }

    /// The same sum, forced through the wide accumulator from the start.
    fn energy_wide(pieces: &[(f64, i64)]) -> NanoKwh {
        let mut sum = EnergySum {
            wide: Some(Box::default()),
            ..EnergySum::default()
        };
        for &(power, seconds) in pieces {
            sum.add(power, seconds);
        }
        sum.nano_kwh()
    }

    #[test]
    fn energies_match_exact_rational_arithmetic() {
        // Expected values from Python's fractions.Fraction, with D(p) as
        // documented: floor(sum(D(p) * s) * 10**9 / 3600 + Fraction(1, 2)).
        let cases: [(&[(f64, i64)], NanoKwh); 12] = [
            // Half a nano-kWh exactly: rounds up.
            (&[(2e-9, 900)], 1),
            (&[(2e-9, 450), (2e-9, 450)], 1),
            (&[(1e-9, 300), (2e-9, 300), (3e-9, 300)], 1),
            // Three 5-minute readings of 9 decimals ending in half a
            // nano-kWh: the decimal tie rounds up, whatever the f64s'
            // rounding errors say.
            (
                &[
                    (12.345678901, 300),
                    (12.345678902, 300),
                    (12.345678903, 300),
                ],
                3_086_419_726,
            ),
            (&[(0.1, 300), (0.2, 300), (0.3, 300)], 50_000_000),
            // No decimal: the f64's own value.
            (&[(1.0 / 3.0, 900)], 83_333_333),
            (&[(1.0 / 3.0, 450), (0.1, 450)], 54_166_667),
            (&[(22.0, 300), (24.0, 300), (23.0, 300)], 5_750_000_000),
            (&[(123_456.789, 7), (0.001, 893)], 240_055_115_556),
            // 1e15 kWh in one second next to powers 2^1000 times smaller.
            (
                &[(3.6e18, 1), (1e-300, 899)],
                1_000_000_000_000_000_000_000_000,
            ),
            (
                &[(3.6e18, 1), (12.345, 899)],
                1_000_000_000_000_003_082_820_833,
            ),
            (&[(5e-324, 900)], 0),
        ];
        for (pieces, want) in cases {
            assert_eq!(energy(pieces), want, "{pieces:?}");
            assert_eq!(energy_wide(pieces), want, "{pieces:?} (wide)");
        }
        // Beyond every validated input: saturates instead of wrapping.
        assert_eq!(energy(&[(f64::MAX, 1)]), i128::MAX);
        assert_eq!(EnergySum::default().nano_kwh(), 0);
        assert_eq!(decimal_of(12.345), Some((12_345_000_000, 9)));
        assert_eq!(decimal_of(1e10), Some((1_000_000_000_000_000, 5)));
        assert_eq!(decimal_of(1.0 / 3.0), None);
    }

    fn power() -> impl Strategy<Value = f64> {
        prop_oneof![
            // Meter-like decimals.
            (0u64..100_000_000, 0u32..=9).prop_map(|(m, e)| m as f64 / 10f64.powi(e as i32)),
            // Any non-negative finite f64, subnormals included.
            any::<u64>()
                .prop_map(|bits| f64::from_bits(bits & !(1 << 63)))
                .prop_filter("finite, and below 1e15 kWh per second", |p| p.is_finite()
                    && *p <= 3.6e18),
        ]
    }

    proptest! {
        /// The one-step answer is the search's, decimals or not, small or
        /// large.
        #[test]
        fn decimal_of_takes_one_step_and_agrees_with_the_search(
            p in prop_oneof![
                power(),
                (0u64..1 << 53, 0u32..=18).prop_map(|(m, e)| m as f64 / 10f64.powi(e as i32)),
                (1u64 << 40..1 << 53).prop_map(|m| m as f64 / 1e9),
                any::<f64>(),
            ],
        ) {
            prop_assert_eq!(decimal_of(p), decimal_of_by_search(p));
        }

        /// The definition depends on the history alone: how its seconds
        /// are split into pieces and in which order they are added change
        /// nothing, and both accumulators agree.
        #[test]
        fn energy_ignores_splits_and_order(
            pieces in prop::collection::vec((power(), 1i64..=900), 1..12),
            split_at in any::<prop::sample::Index>(),
            rotate in any::<prop::sample::Index>(),
        ) {
            let whole = energy(&pieces);
            prop_assert_eq!(energy_wide(&pieces), whole);
            let mut split = pieces.clone();
            let at = split_at.index(split.len());
            let (power, seconds) = split[at];
            if seconds > 1 {
                split[at] = (power, seconds / 2);
                split.push((power, seconds - seconds / 2));
            }
            prop_assert_eq!(energy(&split), whole);
            let by = rotate.index(split.len());
            split.rotate_left(by);
            prop_assert_eq!(energy(&split), whole);
        }
    }

    #[test]
    fn bucket_of_floors_before_epoch() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(899), 0);
        assert_eq!(bucket_of(900), 1);
        assert_eq!(bucket_of(-1), -1);
    }

    #[test]
    fn unaligned_span_splits_proportionally() {
        // 4 kW from 00:10 to 00:25: 300 s in bucket 0, 600 s in bucket 1.
        let spans = [Span {
            start_s: 600,
            end_s: 1500,
            power_kw: 4.0,
        }];
        let mut out = Vec::new();
        spans_to_buckets(&spans, 0, 10, &mut out);
        assert_eq!(
            out,
            vec![
                Bucket {
                    index: 0,
                    energy: 333_333_333,
                    coverage_s: 300
                },
                Bucket {
                    index: 1,
                    energy: 666_666_667,
                    coverage_s: 600
                },
            ]
        );
    }

    #[test]
    fn window_clips_spans() {
        let spans = [Span {
            start_s: 0,
            end_s: 3600,
            power_kw: 12.0,
        }];
        let mut out = Vec::new();
        spans_to_buckets(&spans, 1, 3, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0],
            Bucket {
                index: 1,
                energy: 3_000_000_000,
                coverage_s: 900
            }
        );
        assert_eq!(out[1].index, 2);
    }
}
