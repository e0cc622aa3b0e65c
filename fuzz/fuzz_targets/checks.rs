//! The checks behind every fuzz target, shared with the CI replay.
//!
//! `pub fn <target>(data: &[u8])` is the whole body of
//! `fuzz_targets/<target>.rs`, and `tests/fuzz_replay.rs` (a plain
//! `cargo test`, no nightly) runs every file under `fuzz/seeds/<target>/`
//! through the same function. A check panics when a property breaks; a
//! decoder returning an error is always a fine outcome.
//!
//! Inputs are raw bytes read through [`Input`] (no `arbitrary`), so the main
//! crate's tests can include this file without new dependencies. Each check
//! reads the same bytes in several ways: as a file as it is, as a few
//! parameters followed by a file, and as a recipe for valid data whose
//! encoding must round-trip. Layouts: storage-format.md.

#![allow(dead_code)] // each fuzz target uses one check

use std::fmt::Debug;
use std::path::Path;

use powerd::model::{Span, BUCKET_SECONDS};
use powerd::normalise::{normalise, NormaliseError};
use powerd::storage::fuzzing::{
    append_frame, decode_spans, decode_spans_window, decode_write, encode_chunk, encode_spans,
    parse_chunk, rollup_file_properties, scan_segment, Reader,
};
use powerd::storage::StorageError;
use powerd::wire::{parse_post_body, MAX_INTERVAL_S};

/// The target names, which are also the seed directories' names.
pub const TARGETS: [&str; 5] = [
    "segment_decode",
    "span_codec",
    "block_chunk",
    "post_body",
    "rollup_file",
];

/// Runs `target`'s check on `data`.
pub fn check(target: &str, data: &[u8]) {
    match target {
        "segment_decode" => segment_decode(data),
        "span_codec" => span_codec(data),
        "block_chunk" => block_chunk(data),
        "post_body" => post_body(data),
        "rollup_file" => rollup_file(data),
        _ => panic!("unknown fuzz target {target}"),
    }
}

// ---------------------------------------------------------------------------
// segment_decode

const SEGMENT_HEADER_LEN: u64 = 32;
const FRAME_HEADER_LEN: u64 = 16;
/// Write records (`KIND_WRITE`) carry a ship and a span column.
const KIND_WRITE: u8 = 1;

/// Arbitrary bytes as a log segment, and a valid segment cut anywhere.
///
/// - The input as a whole segment file (sequence from its own header, and a
///   fixed one), newest and not: never a panic; visited frames are
///   contiguous from the header and inside the file; `Clean` ends at the last
///   frame, followed by nothing or by zeros (a preallocated tail);
///   a torn tail only in the newest segment, right after the last frame;
///   corruption at the next frame's offset. Every payload goes through
///   `decode_write` (see [`check_write_payload`]).
/// - A valid header followed by the input, so frames need no valid header.
/// - A recipe ([`truncated_segment`]): frames built with `append_frame` and
///   cut at any length after the header scan as `Clean` or `TornTail` (never
///   `Corrupted`) when newest, and yield exactly the whole frames' payloads;
///   padded with zeros (a preallocated segment) they scan `Clean` at the end
///   of the data once the zeros hold a frame header.
pub fn segment_decode(data: &[u8]) {
    let header_sequence = data
        .get(16..24)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    for newest in [true, false] {
        check_scan(data, header_sequence, newest);
        check_scan(data, 7, newest);
    }
    let mut file = segment_header(7);
    file.extend_from_slice(data);
    for newest in [true, false] {
        check_scan(&file, 7, newest);
    }
    truncated_segment(data);
}

/// How a scan ended, read back from `ScanEnd`'s `Debug` text: the type is not
/// re-exported by `powerd::storage::fuzzing`, so its variants cannot be named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Clean { len: u64 },
    Torn { valid_len: u64, file_len: u64 },
}

fn end_of(end: &impl Debug) -> End {
    let text = format!("{end:?}");
    let field = |name: &str| -> u64 {
        let key = format!("{name}: ");
        let at = text
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            + key.len();
        let digits: String = text[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("bad {name} in {text}"))
    };
    if text.starts_with("Clean") {
        End::Clean { len: field("len") }
    } else if text.starts_with("TornTail") {
        End::Torn {
            valid_len: field("valid_len"),
            file_len: field("file_len"),
        }
    } else {
        panic!("unknown scan end {text}")
    }
}

type Frame = (u64, u8, Vec<u8>);

fn scan(bytes: &[u8], sequence: u64, newest: bool) -> (Result<End, StorageError>, Vec<Frame>) {
    let mut frames = Vec::new();
    let result = scan_segment(
        Path::new("fuzz.log"),
        bytes,
        sequence,
        newest,
        |offset, kind, payload| {
            frames.push((offset, kind, payload.to_vec()));
            Ok(())
        },
    );
    (result.map(|end| end_of(&end)), frames)
}

fn check_scan(bytes: &[u8], sequence: u64, newest: bool) {
    let (result, frames) = scan(bytes, sequence, newest);
    let file_len = bytes.len() as u64;
    let mut next = SEGMENT_HEADER_LEN;
    for (offset, _, payload) in &frames {
        assert_eq!(*offset, next, "frames must follow each other");
        next = offset + FRAME_HEADER_LEN + payload.len() as u64;
        assert!(next <= file_len, "frame ends at {next}, past the file");
        check_write_payload(payload);
    }
    match result {
        Ok(End::Clean { len }) => {
            assert_eq!(next, len, "clean scan must end on the last frame");
            // Past the data, only a preallocated tail: at least a frame
            // header's worth of zeros.
            let tail = &bytes[len as usize..];
            assert!(
                tail.is_empty() || (tail.len() as u64 >= FRAME_HEADER_LEN && all_zero(tail)),
                "clean scan at {len} of {file_len} leaves non-zero or short bytes"
            );
        }
        Ok(End::Torn {
            valid_len,
            file_len: torn_file_len,
        }) => {
            assert!(
                newest,
                "a torn tail outside the newest segment is corruption"
            );
            assert_eq!(torn_file_len, file_len);
            assert_eq!(valid_len, next, "torn tail must start after the last frame");
            assert!(valid_len < file_len);
        }
        Err(StorageError::Corrupted { offset, .. }) => {
            if frames.is_empty() {
                assert!(offset <= SEGMENT_HEADER_LEN, "corruption at {offset}");
            } else {
                assert_eq!(offset, next, "corruption must name the damaged frame");
            }
        }
        Err(other) => panic!("scanning bytes failed with a non-corruption error: {other}"),
    }
}

/// A payload as a write record: if it decodes, its spans keep the engine's
/// invariants and re-encoding them decodes to the same record.
fn check_write_payload(payload: &[u8]) {
    let Ok(record) = decode_write(payload) else {
        return;
    };
    assert_valid_spans(&record.spans, "decode_write");
    let mut again = record.ship.to_le_bytes().to_vec();
    encode_spans(&record.spans, 0, &mut again);
    let decoded = decode_write(&again).expect("a re-encoded write record decodes");
    // `==`, not bits: a raw -0.0 power comes back as +0.0 (same energy).
    assert_eq!(decoded, record, "write record must survive re-encoding");
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// A header as `SegmentWriter::create` writes it (storage-format.md).
fn segment_header(sequence: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    header.extend_from_slice(b"PWRDLOG\0");
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&sequence.to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header
}

/// Recipe: `cut: u32, sequence: u8, (kind: u8, len: u8, payload: len bytes)*`.
/// The frames go into a segment that is padded with `(cut >> 16) % 512`
/// zeros, and cut to `32 + cut % (frames' length + 1)` bytes.
fn truncated_segment(data: &[u8]) {
    let mut input = Input::new(data);
    let cut = input.u32() as usize;
    let sequence = u64::from(input.u8());
    let mut frames: Vec<(u8, &[u8])> = Vec::new();
    while !input.is_empty() && frames.len() < 64 {
        let kind = input.u8();
        let len = usize::from(input.u8());
        frames.push((kind, input.bytes(len)));
    }
    let mut file = segment_header(sequence);
    let mut ends = Vec::new();
    for &(kind, payload) in &frames {
        append_frame(&mut file, kind, |out| out.extend_from_slice(payload));
        ends.push(file.len() as u64);
    }
    let (result, seen) = scan(&file, sequence, false);
    assert_eq!(
        result.expect("a whole segment scans"),
        End::Clean {
            len: file.len() as u64
        }
    );
    assert_eq!(seen.len(), frames.len());

    // The same segment preallocated: zeros after the data are a clean end
    // in any segment once they hold a frame header; fewer are a torn tail.
    let pad = (cut >> 16) % 512;
    let data_len = file.len() as u64;
    let mut padded = file.clone();
    padded.resize(file.len() + pad, 0);
    for newest in [true, false] {
        let (result, seen) = scan(&padded, sequence, newest);
        assert_eq!(
            seen.len(),
            frames.len(),
            "zero padding of {pad} hides frames"
        );
        match result {
            Ok(End::Clean { len }) => assert!(pad == 0 || pad >= 16, "clean at {len}, pad {pad}"),
            Ok(End::Torn { valid_len, .. }) => {
                assert!(newest && pad < 16, "torn at {valid_len}, pad {pad}");
                assert_eq!(valid_len, data_len);
            }
            Err(StorageError::Corrupted { offset, .. }) => {
                assert!(!newest && pad < 16, "corrupted at {offset}, pad {pad}");
                assert_eq!(offset, data_len);
            }
            Err(e) => panic!("padded segment: {e}"),
        }
        if let Ok(End::Clean { len }) = result {
            assert_eq!(len, data_len);
        }
    }

    let header_len = SEGMENT_HEADER_LEN as usize;
    let cut = header_len + cut % (file.len() - header_len + 1);
    let cut_file = &file[..cut];
    let cut = cut as u64;
    let whole = ends.iter().take_while(|&&end| end <= cut).count();
    let valid_len = if whole == 0 {
        SEGMENT_HEADER_LEN
    } else {
        ends[whole - 1]
    };
    let (result, seen) = scan(cut_file, sequence, true);
    let end = result.unwrap_or_else(|e| panic!("segment cut at {cut} is not corruption: {e}"));
    if valid_len == cut {
        assert_eq!(end, End::Clean { len: cut });
    } else {
        assert_eq!(
            end,
            End::Torn {
                valid_len,
                file_len: cut
            }
        );
    }
    assert_eq!(seen.len(), whole, "scan must yield the whole frames");
    for (index, ((offset, kind, payload), &(want_kind, want_payload))) in
        seen.iter().zip(&frames).enumerate()
    {
        let want_offset = if index == 0 {
            SEGMENT_HEADER_LEN
        } else {
            ends[index - 1]
        };
        assert_eq!(*offset, want_offset);
        assert_eq!(*kind, want_kind);
        assert_eq!(payload.as_slice(), want_payload);
    }
    // The same cut in an older segment: clean stays clean, torn is damage.
    let (older, _) = scan(cut_file, sequence, false);
    match older {
        Ok(older_end) => assert_eq!(older_end, end, "older segment: {older_end:?}"),
        Err(StorageError::Corrupted { offset, .. }) => {
            assert_ne!(valid_len, cut, "a clean cut is not corruption");
            assert_eq!(offset, valid_len);
        }
        Err(e) => panic!("older segment: {e}"),
    }
}

// ---------------------------------------------------------------------------
// span_codec

/// Limit on spans for raw columns: large enough for any fuzz input.
const MAX_RAW_SPANS: usize = 1 << 16;

/// Arbitrary bytes as a span column, and an encode/decode round trip.
///
/// - The input as a column (base 0, window = all time), and again after a
///   prefix `base: i64, window_start: i64, window_end: i64`: no panic; what
///   `decode_spans` returns is sorted, disjoint, non-empty, finite and
///   non-negative; when it succeeds, `decode_spans_window` succeeds too,
///   consumes the same bytes and returns exactly the spans meeting the window;
///   both only append to `out`.
/// - A recipe ([`span_round_trip`]): `encode_spans` then `decode_spans` gives
///   the same spans, powers bit for bit, and `decode_spans_window` gives the
///   spans meeting a recipe-chosen window.
pub fn span_codec(data: &[u8]) {
    check_raw_column(data, 0, i64::MIN, i64::MAX);
    let mut input = Input::new(data);
    let base = input.i64();
    let window_start = input.i64();
    let window_end = input.i64();
    check_raw_column(input.rest(), base, window_start, window_end);
    span_round_trip(data);
}

/// A sentinel already in `out`, which the decoders must leave alone.
const SENTINEL: Span = Span {
    start_s: -1,
    end_s: 1,
    power_kw: 42.0,
};

fn check_raw_column(column: &[u8], base_s: i64, window_start_s: i64, window_end_s: i64) {
    let mut reader = Reader::new(column);
    let mut full = vec![SENTINEL];
    let full_result = decode_spans(&mut reader, base_s, MAX_RAW_SPANS, &mut full);
    let full_used = reader.position();
    assert!(
        same_spans(&full[..1], &[SENTINEL]),
        "decode_spans changed out[0]"
    );
    let full = &full[1..];

    let mut reader = Reader::new(column);
    let mut window = vec![SENTINEL];
    let window_result = decode_spans_window(
        &mut reader,
        base_s,
        MAX_RAW_SPANS,
        window_start_s,
        window_end_s,
        &mut window,
    );
    let window_used = reader.position();
    assert!(
        same_spans(&window[..1], &[SENTINEL]),
        "decode_spans_window changed out[0]"
    );
    let window = &window[1..];

    if window_result.is_ok() {
        assert_valid_spans(window, "decode_spans_window");
        for span in window {
            assert!(
                span.end_s > window_start_s && span.start_s < window_end_s,
                "{span:?} is outside the window [{window_start_s}, {window_end_s})"
            );
        }
    }
    if full_result.is_ok() {
        assert!(full.len() <= MAX_RAW_SPANS);
        assert_valid_spans(full, "decode_spans");
        if let Err(e) = window_result {
            panic!(
                "decode_spans accepts the column but decode_spans_window \
                 [{window_start_s}, {window_end_s}) fails: {e:?}"
            );
        }
        assert_eq!(full_used, window_used, "both decoders consume the column");
        let expected = meeting(full, window_start_s, window_end_s);
        assert!(
            same_spans(window, &expected),
            "window [{window_start_s}, {window_end_s}): got {window:?}, expected {expected:?}"
        );
    }
}

/// Recipe: `base: i64, first: i32, window_start: i32, window_len: i32`, then
/// spans as in [`recipe_spans`] from `(base >> 2) + first`.
fn span_round_trip(data: &[u8]) {
    let mut input = Input::new(data);
    let base_s = input.i64() >> 2;
    let first_start = base_s + i64::from(input.i32());
    let window_start_s = first_start + i64::from(input.i32());
    let window_end_s = window_start_s + i64::from(input.i32());
    let spans = recipe_spans(&mut input, first_start, i64::MAX, 2048);

    let mut bytes = Vec::new();
    encode_spans(&spans, base_s, &mut bytes);

    let mut reader = Reader::new(&bytes);
    let mut decoded = Vec::new();
    decode_spans(&mut reader, base_s, spans.len(), &mut decoded)
        .unwrap_or_else(|e| panic!("encoded spans do not decode: {e:?}\n{spans:?}"));
    assert_eq!(
        reader.remaining(),
        0,
        "decode_spans must consume the column"
    );
    assert!(
        same_spans(&decoded, &spans),
        "round trip changed the spans:\n{spans:?}\n{decoded:?}"
    );

    for (start, end) in [
        (window_start_s, window_end_s),
        (i64::MIN, i64::MAX),
        (first_start, first_start + 1),
    ] {
        let mut reader = Reader::new(&bytes);
        let mut window = Vec::new();
        decode_spans_window(&mut reader, base_s, spans.len(), start, end, &mut window)
            .unwrap_or_else(|e| panic!("window [{start}, {end}) does not decode: {e:?}"));
        assert_eq!(
            reader.remaining(),
            0,
            "decode_spans_window must consume the column"
        );
        let expected = meeting(&spans, start, end);
        assert!(
            same_spans(&window, &expected),
            "window [{start}, {end}): got {window:?}, expected {expected:?}"
        );
    }
}

/// Sorted, disjoint, non-empty spans with finite, non-negative (never -0)
/// powers, read from `input` until it runs out, `max` spans are made, or the
/// next span would end after `limit_s`.
///
/// Per span: `flags: u8`; bit 0 clear continues the previous run (no gap,
/// same length), set reads `gap: u16, len - 1: u16` (the first span reads
/// only the length and starts at `first_start`). Bits 1-2 pick the power:
/// the previous one, a `u16`, a `u32 / 10^(flags >> 4)` decimal, or the
/// absolute value of raw `f64` bits (non-finite becomes `f64::MAX`).
fn recipe_spans(input: &mut Input<'_>, first_start: i64, limit_s: i64, max: usize) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    while !input.is_empty() && spans.len() < max {
        let flags = input.u8();
        let (start, len) = match spans.last() {
            Some(last) if flags & 1 == 0 => (last.end_s, last.len_s()),
            Some(last) => (
                last.end_s + i64::from(input.u16()),
                i64::from(input.u16()) + 1,
            ),
            None => (first_start, i64::from(input.u16()) + 1),
        };
        let power_kw = match (flags >> 1) & 3 {
            0 => spans.last().map_or(0.0, |s| s.power_kw),
            1 => f64::from(input.u16()),
            2 => f64::from(input.u32()) / 10f64.powi(i32::from(flags >> 4)),
            _ => {
                let raw = f64::from_bits(input.u64()).abs();
                if raw.is_finite() {
                    raw
                } else {
                    f64::MAX
                }
            }
        };
        if start.checked_add(len).is_none_or(|end| end > limit_s) {
            break;
        }
        spans.push(Span {
            start_s: start,
            end_s: start + len,
            power_kw,
        });
    }
    spans
}

// ---------------------------------------------------------------------------
// block_chunk

/// Seconds per block partition: 4096 buckets (storage-format.md, "Block files").
const PARTITION_SECONDS: i64 = 4096 * BUCKET_SECONDS;
const CHUNK_HEADER_LEN: usize = 32;

/// Arbitrary bytes as a rollup index file, as a file body, and as a recipe
/// of writes: see `powerd::storage::fuzzing::rollup_file_properties`, which
/// holds the properties because the index's types are not public.
pub fn rollup_file(data: &[u8]) {
    rollup_file_properties(data);
}

/// Arbitrary bytes as a block chunk.
///
/// - The input as a chunk: no panic; an accepted chunk lies inside the
///   input, and its payload holds `span_count` valid spans in its partition.
/// - The input as header fields `span_count: u32, ship: u64, partition: i64,
///   span_bytes: u32` and a payload, with a correct CRC and length, so the
///   span and bucket decoders and the partition checks see arbitrary
///   payloads: the same guarantees.
/// - A recipe: a chunk built by `encode_chunk` (as `BlockBuilder` builds it) from
///   `ship: u64, partition: i16, first: u32` and [`recipe_spans`] inside the
///   partition parses, with or without bytes after it, to its header.
pub fn block_chunk(data: &[u8]) {
    if let Ok(header) = parse_chunk(data) {
        let end = CHUNK_HEADER_LEN + header.payload_len as usize;
        assert!(end <= data.len(), "chunk of {end} bytes in {}", data.len());
        check_chunk_payload(
            &data[CHUNK_HEADER_LEN..end],
            header.partition,
            header.span_count,
        );
    }

    let mut input = Input::new(data);
    let span_count = input.u32();
    let ship = input.u64();
    let partition = input.i64();
    let span_bytes = input.u32();
    let payload = input.rest();
    let chunk = chunk_bytes(ship, partition, span_count, span_bytes, payload);
    if let Ok(header) = parse_chunk(&chunk) {
        assert_eq!(
            (
                header.payload_len as usize,
                header.span_count,
                header.ship,
                header.partition
            ),
            (payload.len(), span_count, ship, partition)
        );
        check_chunk_payload(payload, partition, span_count);
    }

    let mut input = Input::new(data);
    let ship = input.u64();
    let partition = i64::from(input.i16());
    let partition_start = partition * PARTITION_SECONDS;
    let first_start = partition_start + i64::from(input.u32()) % PARTITION_SECONDS;
    let spans = recipe_spans(
        &mut input,
        first_start,
        partition_start + PARTITION_SECONDS,
        4096,
    );
    let mut chunk = encode_chunk(ship, partition, &spans);
    let payload_len = chunk.len() - CHUNK_HEADER_LEN;
    for trailing in [&[][..], data] {
        chunk.truncate(CHUNK_HEADER_LEN + payload_len);
        chunk.extend_from_slice(trailing);
        let header = parse_chunk(&chunk)
            .unwrap_or_else(|e| panic!("a valid chunk does not parse: {e:?}\n{spans:?}"));
        assert_eq!(
            (
                header.payload_len as usize,
                header.span_count as usize,
                header.ship,
                header.partition
            ),
            (payload_len, spans.len(), ship, partition)
        );
    }
}

/// A chunk header as storage-format.md lays it out, with a correct CRC,
/// around an arbitrary payload.
fn chunk_bytes(
    ship: u64,
    partition: i64,
    span_count: u32,
    span_bytes: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut chunk = Vec::with_capacity(CHUNK_HEADER_LEN + payload.len());
    chunk.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    chunk.extend_from_slice(&span_count.to_le_bytes());
    chunk.extend_from_slice(&ship.to_le_bytes());
    chunk.extend_from_slice(&partition.to_le_bytes());
    chunk.extend_from_slice(&span_bytes.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&chunk);
    crc.update(payload);
    chunk.extend_from_slice(&crc.finalize().to_le_bytes());
    chunk.extend_from_slice(payload);
    chunk
}

/// What an accepted chunk promises about its payload.
fn check_chunk_payload(payload: &[u8], partition: i64, span_count: u32) {
    let start = partition * PARTITION_SECONDS;
    let mut spans = Vec::new();
    decode_spans(
        &mut Reader::new(payload),
        start,
        PARTITION_SECONDS as usize,
        &mut spans,
    )
    .unwrap_or_else(|e| panic!("accepted chunk's payload does not decode: {e:?}"));
    assert_eq!(spans.len(), span_count as usize);
    assert_valid_spans(&spans, "parse_chunk");
    for span in &spans {
        assert!(
            span.start_s >= start && span.end_s <= start + PARTITION_SECONDS,
            "{span:?} outside partition {partition}"
        );
    }
}

// ---------------------------------------------------------------------------
// post_body

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, widened by the largest
/// offset (±23:59).
const FIRST_INSTANT_S: i64 = -62_135_596_800 - 86_400;
const LAST_INSTANT_S: i64 = 253_402_300_799 + 86_400;

/// Arbitrary bytes as a `POST /data` body: `parse_post_body` never panics
/// and what it accepts keeps the wire module's documented invariants
/// (readings non-empty and in request order, values finite, non-negative
/// and never -0, timestamps between years 0001 and 9999, interval in
/// `1..=MAX_INTERVAL_S`); `normalise` on it never panics and returns sorted,
/// disjoint, non-empty spans with finite, non-negative power, or names two
/// readings that really share a second.
pub fn post_body(data: &[u8]) {
    let Ok(body) = parse_post_body(data) else {
        return;
    };
    assert!(
        !body.readings.is_empty(),
        "accepted a body without readings"
    );
    for (position, reading) in body.readings.iter().enumerate() {
        assert_eq!(reading.index, position, "readings must keep request order");
        assert!(
            reading.value.is_finite() && reading.value >= 0.0 && reading.value.is_sign_positive(),
            "reading {position} has value {:?}",
            reading.value
        );
        assert!(
            (FIRST_INSTANT_S..=LAST_INSTANT_S).contains(&reading.time_s),
            "reading {position} at {} is outside years 0001..9999",
            reading.time_s
        );
    }
    if let Some(interval) = body.interval_s {
        assert!(
            (1..=MAX_INTERVAL_S).contains(&interval),
            "interval {interval} s out of range"
        );
    }
    match normalise(body.units, &body.readings, body.interval_s) {
        Ok(spans) => {
            assert!(!spans.is_empty(), "readings normalised to no spans");
            assert_valid_spans(&spans, "normalise");
        }
        Err(NormaliseError::DuplicateTimestamp { first, second }) => {
            assert!(first < second && second < body.readings.len());
            assert_eq!(
                body.readings[first].time_s, body.readings[second].time_s,
                "duplicate error names readings {first} and {second} at different times"
            );
        }
        Err(NormaliseError::Empty) => panic!("normalise found no readings in an accepted body"),
    }
}

// ---------------------------------------------------------------------------
// Shared helpers

/// The engine's span invariants: sorted, disjoint, non-empty, finite,
/// non-negative power.
fn assert_valid_spans(spans: &[Span], what: &str) {
    for (index, span) in spans.iter().enumerate() {
        assert!(
            span.start_s < span.end_s,
            "{what}: empty span {index}: {span:?}"
        );
        assert!(
            span.power_kw.is_finite() && span.power_kw >= 0.0,
            "{what}: span {index} has power {:?}",
            span.power_kw
        );
    }
    for (index, pair) in spans.windows(2).enumerate() {
        assert!(
            pair[0].end_s <= pair[1].start_s,
            "{what}: spans {index} and {} overlap or are unsorted: {:?} {:?}",
            index + 1,
            pair[0],
            pair[1]
        );
    }
}

/// Equal bounds and bit-identical powers.
fn same_spans(a: &[Span], b: &[Span]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.start_s == y.start_s
                && x.end_s == y.end_s
                && x.power_kw.to_bits() == y.power_kw.to_bits()
        })
}

/// The spans that meet `[start_s, end_s)`, unclipped.
fn meeting(spans: &[Span], start_s: i64, end_s: i64) -> Vec<Span> {
    spans
        .iter()
        .copied()
        .filter(|s| s.end_s > start_s && s.start_s < end_s)
        .collect()
}

/// Fuzz bytes handed out front to back; past the end every read is zero,
/// so any input is a complete recipe.
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Input { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Up to `count` bytes (fewer at the end).
    pub fn bytes(&mut self, count: usize) -> &'a [u8] {
        let (head, tail) = self.bytes.split_at(count.min(self.bytes.len()));
        self.bytes = tail;
        head
    }

    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(usize::MAX)
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let head = self.bytes(N);
        out[..head.len()].copy_from_slice(head);
        out
    }

    pub fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    pub fn i16(&mut self) -> i16 {
        i16::from_le_bytes(self.array())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    pub fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.array())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    pub fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.array())
    }
}

// ---------------------------------------------------------------------------
// Hand-made seeds

/// The hand-made seed inputs: `(target, file name, bytes)`. Written to
/// `fuzz/seeds/<target>/` by `cargo test fuzz_replay::write_hand_made_seeds
/// -- --ignored`, and replayed from memory by the replay test as well.
pub fn hand_made_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    const DAY: i64 = 1_535_068_800; // 2018-08-24T00:00:00Z
    let day: Vec<Span> = (0..96)
        .map(|i| Span {
            start_s: DAY + i * 900,
            end_s: DAY + (i + 1) * 900,
            power_kw: 12.0 + (i % 5) as f64 * 0.25,
        })
        .collect();
    let irregular = vec![
        Span {
            start_s: DAY,
            end_s: DAY + 300,
            power_kw: 1.0 / 3.0,
        },
        Span {
            start_s: DAY + 600,
            end_s: DAY + 3600,
            power_kw: 0.0,
        },
    ];
    let write = |ship: u64, spans: &[Span]| {
        let mut payload = ship.to_le_bytes().to_vec();
        encode_spans(spans, 0, &mut payload);
        payload
    };
    let mut seeds = Vec::new();

    // Segments: two write records, whole and torn inside the second frame.
    let mut segment = segment_header(7);
    append_frame(&mut segment, KIND_WRITE, |out| {
        out.extend_from_slice(&write(42, &day))
    });
    append_frame(&mut segment, KIND_WRITE, |out| {
        out.extend_from_slice(&write(7, &irregular))
    });
    let torn = segment[..segment.len() - 5].to_vec();
    seeds.push(("segment_decode", "hand-two-records.log", segment));
    seeds.push(("segment_decode", "hand-torn-tail.log", torn));
    // The recipe layout: cut, sequence, (kind, len, payload)*.
    let mut recipe = vec![0xff, 0xff, 0xff, 0x7f, 3];
    for (ship, spans) in [(1u64, &irregular[..]), (2, &day[..8])] {
        let payload = write(ship, spans);
        recipe.extend_from_slice(&[KIND_WRITE, payload.len() as u8]);
        recipe.extend_from_slice(&payload);
    }
    seeds.push(("segment_decode", "hand-recipe.bin", recipe));

    // Span columns: decimal and raw powers, bare and after the 24-byte prefix.
    for (name, spans, base) in [
        ("hand-day-decimal.col", &day[..], 0),
        ("hand-irregular-raw.col", &irregular[..], 0),
    ] {
        let mut column = Vec::new();
        encode_spans(spans, base, &mut column);
        seeds.push(("span_codec", name, column));
    }
    let mut prefixed = Vec::new();
    for value in [DAY - 3600, DAY + 1000, DAY + 5000] {
        prefixed.extend_from_slice(&value.to_le_bytes());
    }
    encode_spans(&day, DAY - 3600, &mut prefixed);
    seeds.push(("span_codec", "hand-day-window.bin", prefixed));
    // The recipe layout: base, first, window start, window length, spans.
    let mut recipe = Vec::new();
    recipe.extend_from_slice(&(DAY * 4).to_le_bytes());
    recipe.extend_from_slice(&0i32.to_le_bytes());
    recipe.extend_from_slice(&1000i32.to_le_bytes());
    recipe.extend_from_slice(&4000i32.to_le_bytes());
    recipe.extend_from_slice(&[0b011, 0x83, 0x03, 0x10, 0x00]); // 900 s at 16 kW
    recipe.extend_from_slice(&[0, 0, 0, 0b010, 0x11, 0x00]); // a run, then 17 kW
    recipe.extend_from_slice(&[0b0010_0101, 0x10, 0x00, 0x2b, 0x01]); // gap 16, 300 s
    recipe.extend_from_slice(&123_456u32.to_le_bytes()); // 1234.56 kW
    recipe.push(0b111); // gap, length, raw f64
    recipe.extend_from_slice(&[5, 0, 59, 0]);
    recipe.extend_from_slice(&std::f64::consts::PI.to_bits().to_le_bytes());
    seeds.push(("span_codec", "hand-recipe.bin", recipe));

    // Block chunks: a day in its partition, and the field-first layout.
    let partition = DAY.div_euclid(PARTITION_SECONDS);
    let chunk = encode_chunk(42, partition, &day);
    let span_bytes = u32::from_le_bytes(chunk[24..28].try_into().expect("4 bytes"));
    let payload = chunk[CHUNK_HEADER_LEN..].to_vec();
    seeds.push(("block_chunk", "hand-day.chunk", chunk));
    let mut fields = Vec::new();
    fields.extend_from_slice(&(day.len() as u32).to_le_bytes());
    fields.extend_from_slice(&42u64.to_le_bytes());
    fields.extend_from_slice(&partition.to_le_bytes());
    fields.extend_from_slice(&span_bytes.to_le_bytes());
    fields.extend_from_slice(&payload);
    seeds.push(("block_chunk", "hand-fields.bin", fields));

    // POST bodies: SPEC.md's worked examples, and malformed ones.
    let examples: [(&str, &str); 6] = [
        (
            "hand-example-1-kwh-hourly.json",
            r#"{"spaceship_id": 1, "units": "kWh", "data": [{"datetime": "2018-08-24T00:00:00Z", "value": 12}, {"datetime": "2018-08-24T01:00:00Z", "value": 26}, {"datetime": "2018-08-24T02:00:00Z", "value": 18}]}"#,
        ),
        (
            "hand-example-2-kw-5min.json",
            r#"{"spaceship_id": 2, "units": "kW", "data": [{"datetime": "2018-08-24T00:00:00Z", "value": 22}, {"datetime": "2018-08-24T00:05:00Z", "value": 24}, {"datetime": "2018-08-24T00:10:00Z", "value": 23}, {"datetime": "2018-08-24T00:15:00Z", "value": 18}, {"datetime": "2018-08-24T00:20:00Z", "value": 22}, {"datetime": "2018-08-24T00:25:00Z", "value": 23}, {"datetime": "2018-08-24T00:30:00Z", "value": 8}]}"#,
        ),
        (
            "hand-example-3-kwh-15min.json",
            r#"{"spaceship_id": 3, "units": "KWH", "interval": "PT15M", "data": [{"datetime": "2018-08-24T00:45:00+00:00", "value": 6}, {"datetime": "2018-08-24T00:00:00Z", "value": 2}, {"datetime": "2018-08-24T00:15:00Z", "value": 5.0}, {"datetime": "2018-08-24T00:30:00.5Z", "value": 2e0}]}"#,
        ),
        (
            "hand-bad-datetime.json",
            r#"{"spaceship_id": 4, "units": "kW", "data": [{"datetime": "2018-08-24T00:00:00Z", "value": 1}, {"datetime": "2019-01-05T04:42:00ZZ", "value": 1}]}"#,
        ),
        (
            "hand-duplicate.json",
            r#"{"spaceship_id": 5, "units": "kwh", "interval": null, "data": [{"datetime": "2018-08-24T00:00:00.9Z", "value": 1}, {"datetime": "2018-08-24T00:00:00Z", "value": 1e15}]}"#,
        ),
        (
            "hand-extremes.json",
            r#"{"spaceship_id": 18446744073709551615, "units": "kWh", "interval": "P7D", "data": [{"datetime": "0001-01-01T23:59:00+23:59", "value": 1e-400}, {"datetime": "9999-12-31T00:00:59-23:59", "value": 0}]}"#,
        ),
    ];
    for (name, body) in examples {
        seeds.push(("post_body", name, body.as_bytes().to_vec()));
    }
    seeds
}

/// How many whole frames a segment with sequence 7 yields when newest.
pub fn scans_whole_frames(segment: &[u8]) -> usize {
    scan(segment, 7, true).1.len()
}
