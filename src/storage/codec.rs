//! Byte-level encoding shared by log records and block chunks: a bounds-
//! checked little-endian reader, LEB128 varints, and the span column codec.
//!
//! The span codec stores a sorted, disjoint list of spans as two columns:
//! - **time**: runs of contiguous, equal-length spans `(gap, length, count)`,
//!   so a day of regular readings costs a few bytes in all;
//! - **power**: when every power is a decimal with at most
//!   [`MAX_DECIMAL_EXPONENT`] fraction digits (what meters send), the scaled
//!   integers are bit-packed against their minimum; otherwise raw `f64`s.
//!
//! Decoding validates everything it returns (sorted, disjoint, non-empty,
//! finite, non-negative), so a damaged input is an error, never a panic and
//! never a timeline that breaks the engine's invariants. The exact layout is
//! in storage-format.md ("Span columns").

use crate::model::{Span, BUCKET_SECONDS};

/// Powers are tried as decimals with up to this many fraction digits.
pub const MAX_DECIMAL_EXPONENT: u8 = crate::model::MAX_DECIMALS;
/// Power column tag: raw little-endian `f64`s.
const POWER_RAW: u8 = 0;
/// Power column tag: bit-packed scaled decimals.
const POWER_DECIMAL: u8 = 1;
/// Integers beyond this are not exactly representable as `f64`.
pub(super) const MAX_EXACT_INT: i64 = 1 << 53;

/// Why bytes could not be decoded; the caller adds file and offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl DecodeError {
    pub(super) fn new(what: impl Into<String>) -> Self {
        DecodeError(what.into())
    }
}

/// A cursor over untrusted bytes; every read is bounds-checked.
#[derive(Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    pub fn position(&self) -> usize {
        self.position
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    pub fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .position
            .checked_add(count)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                DecodeError::new(format!(
                    "truncated: needed {count} more bytes at {}",
                    self.position
                ))
            })?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        match self.bytes.get(self.position) {
            Some(&byte) => {
                self.position += 1;
                Ok(byte)
            }
            None => Err(DecodeError::new(format!(
                "truncated: needed 1 more byte at {}",
                self.position
            ))),
        }
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        // Most varints of a chunk (run lengths, counts, gaps) are one byte.
        if let Some(&byte) = self.bytes.get(self.position) {
            if byte < 0x80 {
                self.position += 1;
                return Ok(u64::from(byte));
            }
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> Result<u64, DecodeError> {
        let rest = &self.bytes[self.position.min(self.bytes.len())..];
        let mut value = 0u64;
        for (index, &byte) in rest.iter().take(10).enumerate() {
            let bits = u64::from(byte & 0x7f);
            if index == 9 && bits > 1 {
                return Err(DecodeError::new("varint overflows 64 bits"));
            }
            value |= bits << (7 * index);
            if byte & 0x80 == 0 {
                self.position += index + 1;
                return Ok(value);
            }
        }
        Err(DecodeError::new(if rest.len() < 10 {
            format!("truncated: a varint runs past the end at {}", self.position)
        } else {
            "varint longer than 10 bytes".to_owned()
        }))
    }

    pub fn zigzag(&mut self) -> Result<i64, DecodeError> {
        let raw = self.varint()?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }
}

pub fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn put_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub fn put_zigzag(out: &mut Vec<u8>, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Appends the span columns of `spans` (sorted, disjoint, non-empty), with
/// times stored relative to `base_s`. Returns whether the powers went in
/// as decimals (tag 1): then the buckets' exact energies follow from the
/// stored integers with integer arithmetic alone.
pub fn encode_spans(spans: &[Span], base_s: i64, out: &mut Vec<u8>) -> bool {
    put_varint(out, spans.len() as u64);
    encode_times(spans, base_s, out);
    encode_powers(spans, out)
}

fn encode_times(spans: &[Span], base_s: i64, out: &mut Vec<u8>) {
    let mut runs: Vec<(i64, i64, u64)> = Vec::new(); // (start, length, count)
    for span in spans {
        let length = span.len_s();
        match runs.last_mut() {
            Some((start, run_length, count))
                if *run_length == length
                    && *start + *run_length * (*count as i64) == span.start_s =>
            {
                *count += 1
            }
            _ => runs.push((span.start_s, length, 1)),
        }
    }
    put_varint(out, runs.len() as u64);
    let mut previous_end = base_s;
    for (index, &(start, length, count)) in runs.iter().enumerate() {
        if index == 0 {
            put_zigzag(out, start - base_s);
        } else {
            put_varint(out, (start - previous_end) as u64);
        }
        put_varint(out, length as u64);
        put_varint(out, count);
        previous_end = start + length * count as i64;
    }
}

/// The smallest exponent `e` for which every power is the decimal
/// `i / 10^e` ([`crate::model::decimal_at`]), with those integers.
pub(super) fn decimal_form(spans: &[Span]) -> Option<(u8, Vec<i64>)> {
    (0..=MAX_DECIMAL_EXPONENT).find_map(|exponent| {
        let ints = spans
            .iter()
            .map(|span| crate::model::decimal_at(span.power_kw, exponent))
            .collect::<Option<Vec<i64>>>()?;
        Some((exponent, ints))
    })
}

/// The packing of non-negative integers against their minimum: `(min,
/// width)`, if every value the packed column could hold — up to `min +
/// 2^width - 1` — is below 2^53, which is what decoders check once per
/// column instead of once per value.
pub(super) fn packing(values: &[i64]) -> Option<(i64, u32)> {
    let min = values.iter().copied().min().unwrap_or(0);
    let max = values.iter().copied().max().unwrap_or(0);
    let width = 64 - ((max - min) as u64).leading_zeros();
    packable(min, width).then_some((min, width))
}

/// See [`packing`]: the decoders' one check of a packed column's range.
pub(super) fn packable(min: i64, width: u32) -> bool {
    width <= 53
        && 1i64
            .checked_shl(width)
            .and_then(|span| min.checked_add(span - 1))
            .is_some_and(|max| min >= 0 && max < MAX_EXACT_INT)
}

/// Whether the column went in as decimals (tag 1).
fn encode_powers(spans: &[Span], out: &mut Vec<u8>) -> bool {
    let packed =
        decimal_form(spans).and_then(|(exponent, ints)| Some((exponent, packing(&ints)?, ints)));
    let Some((exponent, (min, width), ints)) = packed else {
        out.push(POWER_RAW);
        for span in spans {
            out.extend_from_slice(&span.power_kw.to_le_bytes());
        }
        return false;
    };
    out.push(POWER_DECIMAL);
    out.push(exponent);
    put_zigzag(out, min);
    out.push(width as u8);
    let mut writer = BitWriter::new(out);
    for value in ints {
        writer.put((value - min) as u64, width);
    }
    writer.finish();
    true
}

/// Decodes span columns written by [`encode_spans`] with the same `base_s`,
/// appending to `out`. At most `max_spans` spans are accepted, so a damaged
/// count cannot make the decoder allocate without bound.
pub fn decode_spans(
    reader: &mut Reader<'_>,
    base_s: i64,
    max_spans: usize,
    out: &mut Vec<Span>,
) -> Result<(), DecodeError> {
    decode_spans_window(reader, base_s, max_spans, i64::MIN, i64::MAX, out)
}

/// Like [`decode_spans`], but appends only the spans that intersect
/// `[window_start_s, window_end_s)`, unclipped. The power column is
/// fixed-width, so only the powers of those spans are decoded: a one-day
/// read of a long chunk costs a walk over its time runs and a few hundred
/// values, not the whole chunk.
pub fn decode_spans_window(
    reader: &mut Reader<'_>,
    base_s: i64,
    max_spans: usize,
    window_start_s: i64,
    window_end_s: i64,
    out: &mut Vec<Span>,
) -> Result<(), DecodeError> {
    let first = out.len();
    let (count, first_index) =
        decode_times_window(reader, base_s, max_spans, window_start_s, window_end_s, out)?;
    decode_powers_range(reader, count, first_index, &mut out[first..])
}

/// The buckets in `[start_bucket, end_bucket)` of span columns written by
/// [`encode_spans`] with the same `base_s`, appended to `out` in order, by
/// the one definition ([`crate::model::for_each_bucket`]). A decimal column
/// (tag 1) hands over its powers as the decimals they were stored as, so
/// no `f64` is made or classified.
pub fn decode_buckets_window(
    reader: &mut Reader<'_>,
    base_s: i64,
    max_spans: usize,
    start_bucket: i64,
    end_bucket: i64,
    out: &mut Vec<crate::model::Bucket>,
) -> Result<(), DecodeError> {
    let mut spans = Vec::new();
    let (count, first_index) = decode_times_window(
        reader,
        base_s,
        max_spans,
        start_bucket.saturating_mul(BUCKET_SECONDS),
        end_bucket.saturating_mul(BUCKET_SECONDS),
        &mut spans,
    )?;
    let mut peek = reader.clone();
    let decimal = decimal_column(&mut peek, count)?.filter(|&(exponent, min, width, _)| {
        // The definition's D(p) is the decimal at the largest exponent
        // that gives back p. Below 2^51 nano-kW that is m·10^(9−e) itself
        // (the argument at `model::decimal_of`); above, a longer decimal
        // may also give back p, and `Power::of` finds which.
        let largest = i128::from(min) + (1i128 << width) - 1;
        largest * 10i128.pow(u32::from(MAX_DECIMAL_EXPONENT - exponent)) < 1i128 << 51
    });
    let Some((exponent, min, width, column)) = decimal else {
        decode_powers_range(reader, count, first_index, &mut spans)?;
        crate::model::spans_to_buckets(&spans, start_bucket, end_bucket, out);
        return Ok(());
    };
    *reader = peek;
    let unit = 10i128.pow(u32::from(MAX_DECIMAL_EXPONENT - exponent));
    let width_bits = width as usize;
    crate::model::for_each_bucket_with(
        &spans,
        |index, _| {
            let m = min
                + BitReader::at_bit(column, (first_index + index) * width_bits).get(width) as i64;
            crate::model::Power::Decimal(i128::from(m) * unit)
        },
        start_bucket,
        end_bucket,
        |bucket| out.push(bucket),
    );
    Ok(())
}

/// The times of the spans intersecting `[window_start_s, window_end_s)`,
/// appended to `out` with zero powers; returns the column's span count
/// and the index of the first appended span in it. Leaves the reader at
/// the power column.
fn decode_times_window(
    reader: &mut Reader<'_>,
    base_s: i64,
    max_spans: usize,
    window_start_s: i64,
    window_end_s: i64,
    out: &mut Vec<Span>,
) -> Result<(usize, usize), DecodeError> {
    let count = reader.varint()?;
    if count > max_spans as u64 {
        return Err(DecodeError::new(format!(
            "span count {count} exceeds the limit {max_spans}"
        )));
    }
    let run_count = reader.varint()?;
    if run_count > count {
        return Err(DecodeError::new(format!(
            "{run_count} runs for {count} spans"
        )));
    }
    let first = out.len();
    // Index (in the whole column) of the first span pushed to `out`.
    let mut first_index: Option<u64> = None;
    let mut index = 0u64;
    let mut previous_end = base_s;
    for run in 0..run_count {
        let start = if run == 0 {
            base_s.checked_add(reader.zigzag()?)
        } else {
            i64::try_from(reader.varint()?)
                .ok()
                .and_then(|gap| previous_end.checked_add(gap))
        }
        .ok_or_else(|| DecodeError::new("run start out of range"))?;
        let length = i64::try_from(reader.varint()?)
            .map_err(|_| DecodeError::new("span length out of range"))?;
        let run_spans = reader.varint()?;
        if length <= 0 {
            return Err(DecodeError::new("span length is zero"));
        }
        if run_spans == 0 || run_spans > count - index {
            return Err(DecodeError::new(
                "run span count does not match the column count",
            ));
        }
        // In i128: `length × spans` may overflow where the end itself fits.
        let run_end = i64::try_from(i128::from(start) + i128::from(length) * i128::from(run_spans))
            .map_err(|_| DecodeError::new("run end out of range"))?;
        if run_end > window_start_s && start < window_end_s {
            // Spans k in [k0, k1) of this run intersect the window.
            // In i128: offsets within a run can exceed i64 on hostile input.
            let (start_wide, length_wide) = (i128::from(start), i128::from(length));
            let k0 = if window_start_s <= start {
                0
            } else {
                ((i128::from(window_start_s) - start_wide) / length_wide) as u64
            };
            let k1 = if window_end_s >= run_end {
                run_spans
            } else {
                ((i128::from(window_end_s) - start_wide + length_wide - 1) / length_wide) as u64
            };
            if first_index.is_none() {
                first_index = Some(index + k0);
            } else if first_index.map(|f| f + (out.len() - first) as u64) != Some(index + k0) {
                // Intersecting spans are contiguous in the column, so a later
                // run can only continue where the previous one stopped.
                return Err(DecodeError::new("window spans are not contiguous"));
            }
            // k < run_spans, so every span start and end lies within the run.
            let mut span_start = (start_wide + i128::from(k0) * length_wide) as i64;
            for _ in k0..k1 {
                out.push(Span {
                    start_s: span_start,
                    end_s: span_start + length,
                    power_kw: 0.0,
                });
                span_start = span_start.saturating_add(length);
            }
        }
        index += run_spans;
        previous_end = run_end;
    }
    if index != count {
        return Err(DecodeError::new(
            "runs cover fewer spans than the column count",
        ));
    }
    Ok((count as usize, first_index.unwrap_or(0) as usize))
}

/// A decimal power column: exponent, minimum, bit width, packed values.
type DecimalColumn<'a> = (u8, i64, u32, &'a [u8]);

/// A decimal power column (the reader left after it); `None`, with the
/// reader unmoved, for a raw column.
fn decimal_column<'a>(
    reader: &mut Reader<'a>,
    count: usize,
) -> Result<Option<DecimalColumn<'a>>, DecodeError> {
    let mut peek = reader.clone();
    if peek.u8()? != POWER_DECIMAL {
        return Ok(None);
    }
    let exponent = peek.u8()?;
    if exponent > MAX_DECIMAL_EXPONENT {
        return Err(DecodeError::new(format!(
            "decimal exponent {exponent} out of range"
        )));
    }
    let min = peek.zigzag()?;
    let width = u32::from(peek.u8()?);
    if width > 53 {
        return Err(DecodeError::new(format!("bit width {width} out of range")));
    }
    // Every value lies in [min, min + 2^width - 1]: checking both ends once
    // proves them all non-negative and exact.
    if !packable(min, width) {
        return Err(DecodeError::new(format!(
            "decimal powers from {min} over {width} bits are out of range"
        )));
    }
    let column = peek.take((count * width as usize).div_ceil(8))?;
    *reader = peek;
    Ok(Some((exponent, min, width, column)))
}

/// Decodes the powers of spans `[skip, skip + spans.len())` of a column of
/// `count` spans, leaving the reader after the column.
fn decode_powers_range(
    reader: &mut Reader<'_>,
    count: usize,
    skip: usize,
    spans: &mut [Span],
) -> Result<(), DecodeError> {
    if let Some((exponent, min, width, column)) = decimal_column(reader, count)? {
        let scale = 10f64.powi(i32::from(exponent));
        let mut bits = BitReader::at_bit(column, skip * width as usize);
        for span in spans.iter_mut() {
            span.power_kw = (min + bits.get(width) as i64) as f64 / scale;
        }
        return Ok(());
    }
    match reader.u8()? {
        POWER_RAW => {
            let column = reader.take(
                count
                    .checked_mul(8)
                    .ok_or_else(|| DecodeError::new("power column too long"))?,
            )?;
            let mut values = Reader::new(column.get(skip * 8..).unwrap_or(&[]));
            for span in spans.iter_mut() {
                span.power_kw = values.f64()?;
            }
        }
        tag => return Err(DecodeError::new(format!("unknown power column tag {tag}"))),
    }
    if let Some(bad) = spans
        .iter()
        .find(|s| !s.power_kw.is_finite() || s.power_kw < 0.0)
    {
        return Err(DecodeError::new(format!(
            "power {} is not a finite non-negative number",
            bad.power_kw
        )));
    }
    Ok(())
}

/// Checks the engine's span invariants on decoded or incoming spans.
pub fn validate_spans(spans: &[Span]) -> Result<(), DecodeError> {
    let mut previous_end = i64::MIN;
    for span in spans {
        if span.start_s >= span.end_s {
            return Err(DecodeError::new(format!("empty span at {}", span.start_s)));
        }
        if span.start_s < previous_end {
            return Err(DecodeError::new(format!(
                "spans overlap or are unsorted at {}",
                span.start_s
            )));
        }
        if !span.power_kw.is_finite() || span.power_kw < 0.0 {
            return Err(DecodeError::new(format!(
                "power {} is not a finite non-negative number",
                span.power_kw
            )));
        }
        previous_end = span.end_s;
    }
    Ok(())
}

/// Packs values LSB-first into bytes.
pub(super) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    pending: u128,
    pending_bits: u32,
}

impl<'a> BitWriter<'a> {
    pub(super) fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            pending: 0,
            pending_bits: 0,
        }
    }

    pub(super) fn put(&mut self, value: u64, width: u32) {
        if width == 0 {
            return;
        }
        self.pending |= u128::from(value) << self.pending_bits;
        self.pending_bits += width;
        while self.pending_bits >= 8 {
            self.out.push(self.pending as u8);
            self.pending >>= 8;
            self.pending_bits -= 8;
        }
    }

    pub(super) fn finish(self) {
        if self.pending_bits > 0 {
            self.out.push(self.pending as u8);
        }
    }
}

/// Random-access reader of fixed-width, LSB-first packed values.
pub(super) struct BitReader<'a> {
    bytes: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    /// Starts reading at bit `bit` of `bytes`.
    pub(super) fn at_bit(bytes: &'a [u8], bit: usize) -> Self {
        BitReader { bytes, bit }
    }

    /// The next `width`-bit value (`width` ≤ 56, so one unaligned 8-byte
    /// load holds it whatever the bit offset). The caller sized `bytes` for
    /// every value it reads; bits past the end read as zero.
    #[inline]
    pub(super) fn get(&mut self, width: u32) -> u64 {
        debug_assert!(width <= 56);
        let start = self.bit / 8;
        let shift = (self.bit % 8) as u32;
        self.bit += width as usize;
        let word = match self.bytes.get(start..start + 8) {
            Some(eight) => u64::from_le_bytes(eight.try_into().unwrap_or([0; 8])),
            None => {
                let mut padded = [0u8; 8];
                let tail = self.bytes.get(start..).unwrap_or(&[]);
                padded[..tail.len().min(8)].copy_from_slice(&tail[..tail.len().min(8)]);
                u64::from_le_bytes(padded)
            }
        };
        (word >> shift) & ((1u64 << width) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(spans: &[Span], base: i64) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_spans(spans, base, &mut bytes);
        let mut out = Vec::new();
        let mut reader = Reader::new(&bytes);
        decode_spans(&mut reader, base, 1 << 20, &mut out).unwrap();
        assert_eq!(reader.remaining(), 0);
        assert_eq!(out.len(), spans.len());
        for (a, b) in out.iter().zip(spans) {
            assert_eq!(a.start_s, b.start_s);
            assert_eq!(a.end_s, b.end_s);
            assert_eq!(a.power_kw.to_bits(), b.power_kw.to_bits());
        }
        bytes
    }

    #[test]
    fn regular_decimal_day_is_compact() {
        let spans: Vec<Span> = (0..288)
            .map(|i| Span {
                start_s: 1_535_068_800 + i * 300,
                end_s: 1_535_068_800 + (i + 1) * 300,
                power_kw: 20.0 + (i % 17) as f64 * 0.125 + 0.001,
            })
            .collect();
        let bytes = round_trip(&spans, 1_535_068_800 - 3600);
        // 288 values of 12 bits plus a few header bytes.
        assert!(bytes.len() < 288 * 2 + 16, "{} bytes", bytes.len());
    }

    #[test]
    fn irregular_and_raw_powers_round_trip() {
        let spans = vec![
            Span {
                start_s: -5000,
                end_s: -4000,
                power_kw: 1.0 / 3.0,
            },
            Span {
                start_s: -4000,
                end_s: -3999,
                power_kw: 0.0,
            },
            Span {
                start_s: 10,
                end_s: 910,
                power_kw: 1e300,
            },
        ];
        round_trip(&spans, 0);
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let spans: Vec<Span> = (0..50)
            .map(|i| Span {
                start_s: i * 900,
                end_s: (i + 1) * 900,
                power_kw: i as f64,
            })
            .collect();
        let mut bytes = Vec::new();
        encode_spans(&spans, 0, &mut bytes);
        for cut in 0..bytes.len() {
            let mut out = Vec::new();
            assert!(decode_spans(&mut Reader::new(&bytes[..cut]), 0, 1000, &mut out).is_err());
        }
        for index in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[index] ^= 1 << bit;
                let mut out = Vec::new();
                let _ = decode_spans(&mut Reader::new(&damaged), 0, 1000, &mut out);
            }
        }
    }

    #[test]
    fn window_decoding_matches_full_decoding() {
        let mut spans: Vec<Span> = (0..200)
            .map(|i| Span {
                start_s: i * 300,
                end_s: (i + 1) * 300,
                power_kw: (i % 7) as f64 * 0.5,
            })
            .collect();
        spans.push(Span {
            start_s: 70_000,
            end_s: 70_001,
            power_kw: 1.0 / 3.0,
        });
        spans.push(Span {
            start_s: 80_000,
            end_s: 90_000,
            power_kw: 2.0,
        });
        for raw in [false, true] {
            if raw {
                spans[0].power_kw = std::f64::consts::PI;
            }
            let mut bytes = Vec::new();
            encode_spans(&spans, -100, &mut bytes);
            for (lo, hi) in [
                (0, 1),
                (-50, 10),
                (299, 301),
                (1000, 20_000),
                (59_999, 70_001),
                (70_001, 85_000),
                (95_000, 99_000),
                (-500, 100_000),
            ] {
                let mut window = Vec::new();
                let mut reader = Reader::new(&bytes);
                decode_spans_window(&mut reader, -100, 1000, lo, hi, &mut window).unwrap();
                assert_eq!(reader.remaining(), 0);
                let expected: Vec<Span> = spans
                    .iter()
                    .copied()
                    .filter(|s| s.end_s > lo && s.start_s < hi)
                    .collect();
                assert_eq!(window, expected, "window [{lo}, {hi}) raw={raw}");
            }
        }
    }

    /// The integer path of [`decode_buckets_window`] is the one energy
    /// definition: it equals `spans_to_buckets` on the decoded spans, for
    /// every exponent, partial buckets, gaps, long spans and any window.
    #[test]
    fn buckets_from_decimal_columns_equal_the_definition() {
        let mut rng = crate::storage::sim::SplitMix64(5);
        for round in 0..300 {
            let exponent = (round % 10) as u32;
            let mut spans = Vec::new();
            let mut t = -7_200 + rng.below(900) as i64;
            for _ in 0..(1 + rng.below(60)) {
                t += [0, 0, 0, 1, 300, 7][rng.below(6) as usize];
                let length = [1, 7, 300, 300, 900, 900, 3600, 5400][rng.below(8) as usize];
                let m = rng.below(1 << 40) as i64 >> rng.below(40);
                spans.push(Span {
                    start_s: t,
                    end_s: t + length,
                    power_kw: m as f64 / 10f64.powi(exponent as i32),
                });
                t += length;
            }
            if round % 7 == 0 {
                spans[0].power_kw = std::f64::consts::PI; // a raw column
            }
            let mut bytes = Vec::new();
            encode_spans(&spans, -3_600, &mut bytes);
            for (lo, hi) in [(i64::MIN / 900, i64::MAX / 900), (-4, 3), (0, 1), (2, 40)] {
                let mut got = Vec::new();
                let mut reader = Reader::new(&bytes);
                decode_buckets_window(&mut reader, -3_600, 10_000, lo, hi, &mut got).unwrap();
                assert_eq!(reader.remaining(), 0);
                let mut decoded = Vec::new();
                decode_spans(&mut Reader::new(&bytes), -3_600, 10_000, &mut decoded).unwrap();
                let mut expected = Vec::new();
                crate::model::spans_to_buckets(&decoded, lo, hi, &mut expected);
                assert_eq!(got, expected, "round {round}, window [{lo}, {hi})");
            }
        }
    }

    #[test]
    fn varint_and_zigzag_edges() {
        for value in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            let mut bytes = Vec::new();
            put_zigzag(&mut bytes, value);
            assert_eq!(Reader::new(&bytes).zigzag().unwrap(), value);
        }
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
    }
}
