//! Bucket columns: a chunk's 15-minute buckets (index, energy, coverage),
//! computed from its spans when the chunk is written, so a read of sealed
//! data is a column decode with no span arithmetic at all. Since block
//! version 4 only chunks with binary (raw) powers carry them: with decimal
//! powers the buckets follow from the spans by integer arithmetic, and
//! storing them too cost more than half the chunk.
//!
//! The spans stay the truth (a later overwrite needs them); these columns
//! are derived from them once, at checkpoint time, and [`decode_window`]
//! gives exactly what [`crate::model::spans_to_buckets`] gives for the same
//! spans: energies are the one definition's integer nano-kWh
//! ([`crate::model::EnergySum`]), packed against their minimum.
//!
//! Chunks written before that definition (block version 2) carry energies
//! of an older, float definition (tags 0 and 1). They are never served:
//! [`decode_window`] reports them as [`Energies::Legacy`] and the caller
//! recomputes the buckets from the spans.
//! Byte layout: storage-format.md, "Bucket columns".

use super::codec::{put_varint, BitReader, BitWriter, DecodeError, Reader};
use crate::model::{spans_to_buckets, Bucket, NanoKwh, Span, BUCKET_SECONDS};

/// Legacy (block version 2): `f64` kWh per bucket.
const ENERGY_LEGACY_RAW: u8 = 0;
/// Legacy (block version 2): decimal-scaled integers over `3600 × 10^e`.
const ENERGY_LEGACY_SCALED: u8 = 1;
/// Nano-kWh, packed against the minimum in a fixed width.
const ENERGY_NANO_PACKED: u8 = 2;
/// Nano-kWh, 16 bytes each: for energies a packed column cannot hold.
const ENERGY_NANO_RAW: u8 = 3;
/// Widest packed value: one unaligned 8-byte load reads it at any offset.
const MAX_PACKED_WIDTH: u32 = 56;

/// What [`decode_window`] found in the energy column.
#[derive(Clone, Debug, PartialEq)]
pub enum Energies {
    /// The buckets' energies are filled in.
    Exact,
    /// An old chunk's energies (kWh, one per bucket of the window), which
    /// the current definition does not produce: the caller recomputes
    /// the buckets from the spans. Only `powerd check` looks at them.
    Legacy(Vec<f64>),
}

/// Appends the bucket columns of `spans` (sorted, disjoint, all inside the
/// partition starting at bucket `first_bucket`).
pub fn encode(spans: &[Span], first_bucket: i64, out: &mut Vec<u8>) {
    let mut buckets = Vec::new();
    spans_to_buckets(
        spans,
        i64::MIN / BUCKET_SECONDS,
        i64::MAX / BUCKET_SECONDS,
        &mut buckets,
    );
    put_varint(out, buckets.len() as u64);

    // Index: runs of consecutive buckets, each (gap, length).
    let mut runs: Vec<(i64, u64)> = Vec::new();
    for bucket in &buckets {
        match runs.last_mut() {
            Some((start, length)) if *start + *length as i64 == bucket.index => *length += 1,
            _ => runs.push((bucket.index, 1)),
        }
    }
    put_varint(out, runs.len() as u64);
    let mut previous_end = first_bucket;
    for &(start, length) in &runs {
        put_varint(out, (start - previous_end) as u64);
        put_varint(out, length);
        previous_end = start + length as i64;
    }

    // Coverage: runs of equal values, each (coverage, count).
    let mut coverage_runs: Vec<(u32, u64)> = Vec::new();
    for bucket in &buckets {
        match coverage_runs.last_mut() {
            Some((coverage, count)) if *coverage == bucket.coverage_s => *count += 1,
            _ => coverage_runs.push((bucket.coverage_s, 1)),
        }
    }
    put_varint(out, coverage_runs.len() as u64);
    for &(coverage, count) in &coverage_runs {
        put_varint(out, u64::from(coverage));
        put_varint(out, count);
    }

    // Energy: nano-kWh integers, packed when they fit.
    let min = buckets.iter().map(|b| b.energy).min().unwrap_or(0);
    let max = buckets.iter().map(|b| b.energy).max().unwrap_or(0);
    let width = u64::try_from(max - min).map_or(u32::MAX, |range| 64 - range.leading_zeros());
    match u64::try_from(min) {
        Ok(packed_min) if width <= MAX_PACKED_WIDTH => {
            out.push(ENERGY_NANO_PACKED);
            put_varint(out, packed_min);
            out.push(width as u8);
            let mut writer = BitWriter::new(out);
            for bucket in &buckets {
                writer.put((bucket.energy - min) as u64, width);
            }
            writer.finish();
        }
        _ => {
            out.push(ENERGY_NANO_RAW);
            for bucket in &buckets {
                out.extend_from_slice(&bucket.energy.to_le_bytes());
            }
        }
    }
}

/// Appends the buckets with index in `[start_bucket, end_bucket)` from
/// columns written by [`encode`] with the same `first_bucket`, and leaves
/// the reader after the columns. At most `max_buckets` are accepted.
/// `legacy` says whether the old energy tags may appear (block version 2);
/// when they do, the energies are [`Energies::Legacy`] and the buckets'
/// `energy` fields are left zero.
pub fn decode_window(
    reader: &mut Reader<'_>,
    first_bucket: i64,
    max_buckets: u64,
    start_bucket: i64,
    end_bucket: i64,
    legacy: bool,
    out: &mut Vec<Bucket>,
) -> Result<Energies, DecodeError> {
    let count = reader.varint()?;
    if count > max_buckets {
        return Err(DecodeError::new(format!(
            "bucket count {count} exceeds the limit {max_buckets}"
        )));
    }
    // Index runs: which positions in the columns fall in the window.
    let run_count = reader.varint()?;
    if run_count > count {
        return Err(DecodeError::new(format!(
            "{run_count} bucket runs for {count} buckets"
        )));
    }
    let first_out = out.len();
    let mut first_position: Option<u64> = None;
    let mut position = 0u64;
    let mut previous_end = first_bucket;
    for _ in 0..run_count {
        let gap = i64::try_from(reader.varint()?)
            .map_err(|_| DecodeError::new("bucket gap out of range"))?;
        let length = reader.varint()?;
        let start = previous_end
            .checked_add(gap)
            .ok_or_else(|| DecodeError::new("bucket run out of range"))?;
        if length == 0 || length > count - position {
            return Err(DecodeError::new(
                "bucket run lengths do not match the bucket count",
            ));
        }
        let end = i64::try_from(length)
            .ok()
            .and_then(|l| start.checked_add(l))
            .ok_or_else(|| DecodeError::new("bucket run out of range"))?;
        let from = start.max(start_bucket);
        let to = end.min(end_bucket);
        if from < to {
            first_position.get_or_insert(position + (from - start) as u64);
            out.extend((from..to).map(|index| Bucket {
                index,
                energy: 0,
                coverage_s: 0,
            }));
        }
        position += length;
        previous_end = end;
    }
    if position != count {
        return Err(DecodeError::new(
            "bucket runs cover fewer buckets than the count",
        ));
    }
    let skip = first_position.unwrap_or(0);
    let wanted = &mut out[first_out..];

    // Coverage runs: walk to the window's positions.
    let coverage_runs = reader.varint()?;
    if coverage_runs > count {
        return Err(DecodeError::new("more coverage runs than buckets"));
    }
    let mut position = 0u64;
    let mut filled = 0usize;
    for _ in 0..coverage_runs {
        let coverage = reader.varint()?;
        let run = reader.varint()?;
        if coverage == 0 || coverage > BUCKET_SECONDS as u64 || run == 0 || run > count - position {
            return Err(DecodeError::new("coverage runs are out of range"));
        }
        let from = position.max(skip);
        let to = (position + run).min(skip + wanted.len() as u64);
        for bucket in wanted
            .iter_mut()
            .take(to.saturating_sub(skip) as usize)
            .skip(from.saturating_sub(skip) as usize)
        {
            bucket.coverage_s = coverage as u32;
            filled += 1;
        }
        position += run;
    }
    if position != count || filled != wanted.len() {
        return Err(DecodeError::new(
            "coverage runs do not match the bucket count",
        ));
    }

    // Energy: fixed width, so only the window's values are decoded.
    let skip = skip as usize;
    let count = count as usize;
    let tag = reader.u8()?;
    match tag {
        ENERGY_NANO_PACKED => {
            let min = reader.varint()?;
            let width = u32::from(reader.u8()?);
            if width > MAX_PACKED_WIDTH {
                return Err(DecodeError::new(format!(
                    "energy bit width {width} out of range"
                )));
            }
            let column = reader.take((count * width as usize).div_ceil(8))?;
            let mut bits = BitReader::at_bit(column, skip * width as usize);
            for bucket in wanted.iter_mut() {
                bucket.energy = NanoKwh::from(min) + NanoKwh::from(bits.get(width));
            }
        }
        ENERGY_NANO_RAW => {
            let column = reader.take(
                count
                    .checked_mul(16)
                    .ok_or_else(|| DecodeError::new("energy column too long"))?,
            )?;
            let values = column.get(skip * 16..).unwrap_or(&[]);
            for (bucket, value) in wanted.iter_mut().zip(values.chunks_exact(16)) {
                let energy = NanoKwh::from_le_bytes(value.try_into().expect("16 bytes"));
                if energy < 0 {
                    return Err(DecodeError::new(format!(
                        "bucket energy {energy} nano-kWh is negative"
                    )));
                }
                bucket.energy = energy;
            }
        }
        ENERGY_LEGACY_RAW | ENERGY_LEGACY_SCALED if legacy => {
            return decode_legacy(reader, tag, count, skip, wanted.len()).map(Energies::Legacy);
        }
        tag => return Err(DecodeError::new(format!("unknown energy column tag {tag}"))),
    }
    Ok(Energies::Exact)
}

/// The energies of the window from an old chunk's column (tags 0 and 1,
/// block version 2), checked as that version checked them.
fn decode_legacy(
    reader: &mut Reader<'_>,
    tag: u8,
    count: usize,
    skip: usize,
    wanted: usize,
) -> Result<Vec<f64>, DecodeError> {
    let mut values = Vec::with_capacity(wanted);
    if tag == ENERGY_LEGACY_RAW {
        let column = reader.take(
            count
                .checked_mul(8)
                .ok_or_else(|| DecodeError::new("energy column too long"))?,
        )?;
        let mut column = Reader::new(column.get(skip * 8..).unwrap_or(&[]));
        for _ in 0..wanted {
            values.push(column.f64()?);
        }
    } else {
        let exponent = reader.u8()?;
        if exponent > super::codec::MAX_DECIMAL_EXPONENT {
            return Err(DecodeError::new(format!(
                "energy exponent {exponent} out of range"
            )));
        }
        let min = reader.zigzag()?;
        let width = u32::from(reader.u8()?);
        if width > 53 || !super::codec::packable(min, width) {
            return Err(DecodeError::new("scaled energies out of range"));
        }
        let divisor = crate::model::SECONDS_PER_HOUR * 10f64.powi(i32::from(exponent));
        let column = reader.take((count * width as usize).div_ceil(8))?;
        let mut bits = BitReader::at_bit(column, skip * width as usize);
        for _ in 0..wanted {
            values.push((min + bits.get(width) as i64) as f64 / divisor);
        }
    }
    if let Some(bad) = values.iter().find(|v| v.is_nan() || **v < 0.0) {
        return Err(DecodeError::new(format!(
            "bucket energy {bad} is not a non-negative number"
        )));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spans: &[Span], first_bucket: i64) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode(spans, first_bucket, &mut bytes);
        let mut all = Vec::new();
        spans_to_buckets(
            spans,
            i64::MIN / BUCKET_SECONDS,
            i64::MAX / BUCKET_SECONDS,
            &mut all,
        );
        let last = all.last().map_or(first_bucket, |b| b.index + 1);
        for (lo, hi) in [
            (i64::MIN / 2, i64::MAX / 2),
            (first_bucket, first_bucket + 1),
            (first_bucket + 3, last - 2),
            (last - 1, last + 5),
        ] {
            let mut got = Vec::new();
            let mut reader = Reader::new(&bytes);
            let energies =
                decode_window(&mut reader, first_bucket, 1 << 20, lo, hi, false, &mut got).unwrap();
            assert_eq!(energies, Energies::Exact);
            assert_eq!(reader.remaining(), 0);
            let want: Vec<Bucket> = all
                .iter()
                .filter(|b| b.index >= lo && b.index < hi)
                .copied()
                .collect();
            assert_eq!(got, want, "window [{lo}, {hi})");
        }
        bytes
    }

    #[test]
    fn five_minute_decimals_are_exact_and_compact() {
        let base = 4096 * 900 * 7;
        let spans: Vec<Span> = (0..288)
            .map(|i| Span {
                start_s: base + i * 300,
                end_s: base + (i + 1) * 300,
                power_kw: f64::from((i * 7919 % 50_000) as u32) / 1000.0,
            })
            .collect();
        let bytes = check(&spans, 4096 * 7);
        // Energies up to 12.5 kWh need 34 bits at nano-kWh resolution.
        assert!(
            bytes.len() <= 96 * 34 / 8 + 16,
            "{} bytes for 96 buckets",
            bytes.len()
        );
        // 22, 24, 23 kW for five minutes each: 69/12 kWh exactly as SPEC example 2.
        let example = [22.0, 24.0, 23.0]
            .iter()
            .enumerate()
            .map(|(i, &p)| Span {
                start_s: i as i64 * 300,
                end_s: (i as i64 + 1) * 300,
                power_kw: p,
            })
            .collect::<Vec<_>>();
        let mut bytes = Vec::new();
        encode(&example, 0, &mut bytes);
        let mut got = Vec::new();
        decode_window(&mut Reader::new(&bytes), 0, 10, 0, 1, false, &mut got).unwrap();
        assert_eq!(
            got,
            vec![Bucket {
                index: 0,
                energy: 5_750_000_000,
                coverage_s: 900
            }]
        );
    }

    #[test]
    fn gaps_partial_buckets_and_raw_powers() {
        let spans = vec![
            Span {
                start_s: 100,
                end_s: 400,
                power_kw: 1.0 / 3.0,
            },
            Span {
                start_s: 3600,
                end_s: 7300,
                power_kw: 2.5,
            },
            Span {
                start_s: 9000,
                end_s: 9001,
                power_kw: 0.0,
            },
        ];
        check(&spans, 0);
        let decimal: Vec<Span> = spans
            .iter()
            .map(|s| Span {
                power_kw: 0.125,
                ..*s
            })
            .collect();
        check(&decimal, 0);
        // Energies no packed column holds: 1e15 kWh readings squeezed into
        // seconds, next to tiny ones.
        let huge = vec![
            Span {
                start_s: 0,
                end_s: 1,
                power_kw: 3.6e18,
            },
            Span {
                start_s: 900,
                end_s: 1800,
                power_kw: 1e-300,
            },
        ];
        let bytes = check(&huge, 0);
        assert!(bytes.contains(&ENERGY_NANO_RAW));
    }

    #[test]
    fn damaged_columns_are_errors_not_panics() {
        let spans: Vec<Span> = (0..40)
            .map(|i| Span {
                start_s: i * 450,
                end_s: i * 450 + 300,
                power_kw: i as f64,
            })
            .collect();
        let mut bytes = Vec::new();
        encode(&spans, 0, &mut bytes);
        for cut in 0..bytes.len() {
            let mut out = Vec::new();
            assert!(decode_window(
                &mut Reader::new(&bytes[..cut]),
                0,
                100,
                0,
                100,
                false,
                &mut out
            )
            .is_err());
        }
        for index in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[index] ^= 1 << bit;
                let mut out = Vec::new();
                let _ = decode_window(&mut Reader::new(&damaged), 0, 100, -5, 100, true, &mut out);
            }
        }
    }
}
