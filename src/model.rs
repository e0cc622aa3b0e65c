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
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Bucket number: the bucket starts at `index * 900` seconds.
    pub index: i64,
    pub energy_kwh: f64,
    /// Covered seconds in the bucket, 1..=900; below 900 the bucket is partial.
    pub coverage_s: u32,
}

/// Energy in nano-kWh (10^-9 kWh): the fixed point of the rollup index.
///
/// Sums of `f64` drift when a value is added and later subtracted again (an
/// overwrite), so fleet and per-ship totals add these integers instead:
/// exact, order-independent, and equal after any sequence of overwrites,
/// restarts or rebuilds. 10^-9 kWh is the resolution responses print.
pub type NanoKwh = i128;

/// A bucket's energy in [`NanoKwh`], rounded half up exactly as responses
/// round it to 9 decimals, so fleet sums equal the sums of printed values.
pub fn quantise(energy_kwh: f64) -> NanoKwh {
    let scaled = energy_kwh * 1e9 + 0.5;
    // Energies are never negative, so truncation is the floor; and below
    // 2^63 the conversion is one instruction, where `floor` and a direct
    // f64 → i128 conversion are library calls (a fifth of the index's cost
    // on the write path). The largest bucket energy (1e15 kWh readings
    // squeezed into a second) is ~9e26 nano-kWh: far inside i128, and `as`
    // saturates regardless.
    if (0.0..9.2e18).contains(&scaled) {
        scaled as i64 as NanoKwh
    } else {
        scaled.floor() as NanoKwh
    }
}

/// The bucket that contains second `t` (floor division, also before 1970).
pub fn bucket_of(t_s: i64) -> i64 {
    t_s.div_euclid(BUCKET_SECONDS)
}

/// Folds sorted, disjoint spans into the buckets they touch, restricted to
/// buckets `[first_bucket, end_bucket)`.
///
/// Energy is accumulated as Σ power × seconds and divided by 3600 once per
/// bucket, so whole-number inputs such as the SPEC's worked examples come out
/// exact.
pub fn spans_to_buckets(spans: &[Span], first_bucket: i64, end_bucket: i64, out: &mut Vec<Bucket>) {
    for_each_bucket(spans, first_bucket, end_bucket, |bucket| out.push(bucket));
}

/// [`spans_to_buckets`], handing each bucket to `emit` in ascending order
/// instead of collecting them: the same arithmetic, bit for bit.
#[inline]
pub fn for_each_bucket(
    spans: &[Span],
    first_bucket: i64,
    end_bucket: i64,
    mut emit: impl FnMut(Bucket),
) {
    let window_start = first_bucket.saturating_mul(BUCKET_SECONDS);
    let window_end = end_bucket.saturating_mul(BUCKET_SECONDS);
    // (bucket, Σ kW·s, covered seconds) of the bucket being filled.
    let mut open: Option<(i64, f64, i64)> = None;
    for span in spans {
        let mut start = span.start_s.max(window_start);
        let end = span.end_s.min(window_end);
        // The common case: the span lies inside the bucket being filled.
        if let Some((bucket, kw_seconds, coverage)) = &mut open {
            if start >= *bucket * BUCKET_SECONDS
                && end <= (*bucket + 1) * BUCKET_SECONDS
                && start < end
            {
                *kw_seconds += span.power_kw * (end - start) as f64;
                *coverage += end - start;
                continue;
            }
        }
        while start < end {
            // Consecutive spans usually start the bucket right after the
            // open one: known without a division.
            let next =
                open.and_then(|(b, _, _)| Some((b + 1, (b + 1).checked_mul(BUCKET_SECONDS)?)));
            let bucket = match next {
                Some((next, next_start))
                    if start >= next_start && start - next_start < BUCKET_SECONDS =>
                {
                    next
                }
                _ => bucket_of(start),
            };
            let piece_end = end.min((bucket + 1) * BUCKET_SECONDS);
            let seconds = piece_end - start;
            let kw_seconds = span.power_kw * seconds as f64;
            match &mut open {
                Some((b, e, c)) if *b == bucket => {
                    *e += kw_seconds;
                    *c += seconds;
                }
                _ => {
                    if let Some(done) = open.take() {
                        emit(finish(done));
                    }
                    open = Some((bucket, kw_seconds, seconds));
                }
            }
            start = piece_end;
        }
    }
    if let Some(done) = open {
        emit(finish(done));
    }
}

fn finish((index, kw_seconds, coverage): (i64, f64, i64)) -> Bucket {
    Bucket {
        index,
        energy_kwh: kw_seconds / SECONDS_PER_HOUR,
        coverage_s: coverage as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    energy_kwh: 4.0 * 300.0 / 3600.0,
                    coverage_s: 300
                },
                Bucket {
                    index: 1,
                    energy_kwh: 4.0 * 600.0 / 3600.0,
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
                energy_kwh: 3.0,
                coverage_s: 900
            }
        );
        assert_eq!(out[1].index, 2);
    }
}
