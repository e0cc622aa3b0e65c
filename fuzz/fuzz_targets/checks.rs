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

use std::path::Path;

use powerd::model::{Span, BUCKET_SECONDS};
use powerd::normalise::{normalise, NormaliseError};
use powerd::storage::fuzzing::{
    decode_spans, decode_spans_window, decode_write, encode_chunk, encode_spans, parse_chunk,
    push_record, rollup_file_properties, scan_segment, seal_frame, segment_header, v1_frame,
    v1_header, Reader, Role, ScanEnd, FRAME_COMMIT, FRAME_HEADER_LEN,
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

const V1_HEADER_LEN: u64 = 32;
const V2_HEADER_LEN: u64 = 48;
/// Record kind of a write (a ship and a span column).
const KIND_WRITE: u8 = 1;
const KEY: u64 = 0x00c0_ffee_5eed;
const SECTOR: usize = 512;

/// Arbitrary bytes as a log segment, and valid segments torn and damaged.
///
/// - The input as a whole segment file (sequence from its own header, and a
///   fixed one), in every role (newest, followed by a version 1 segment,
///   followed by a version 2 segment naming an end): never a panic; visited
///   records lie after the header and inside the file; `Clean` leaves only
///   zeros behind (or stops exactly at the named end); a torn tail only in
///   the newest segment. Every record body goes through `decode_write`.
/// - A valid version 2 header followed by the input, so frames need no
///   valid header: the same properties.
/// - A recipe ([`torn_segment`]): COMMIT frames built from the input, then
///   the last one torn sector by sector (each 512-byte sector old or new,
///   as storage-format.md's medium assumptions allow), or one byte of an
///   earlier frame flipped: a tear is always `Clean` or `TornTail` with
///   exactly the earlier frames' records, never corruption; a flipped byte
///   with a valid frame after it is always corruption at that frame.
pub fn segment_decode(data: &[u8]) {
    let header_sequence = data
        .get(16..24)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let named_end = data
        .get(24..32)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    for role in [Role::Newest, Role::Older, Role::EndsAt(named_end % 4096)] {
        check_scan(data, header_sequence, role);
        check_scan(data, 7, role);
    }
    let mut file = segment_header(7, 0, KEY);
    file.extend_from_slice(data);
    for role in [
        Role::Newest,
        Role::Older,
        Role::EndsAt(V2_HEADER_LEN + named_end % 512),
    ] {
        check_scan(&file, 7, role);
    }
    torn_segment(data);
}

type Record = (u64, u8, Vec<u8>);

fn scan(bytes: &[u8], sequence: u64, role: Role) -> (Result<ScanEnd, StorageError>, Vec<Record>) {
    let mut records = Vec::new();
    let result = scan_segment(
        Path::new("fuzz.log"),
        bytes,
        sequence,
        role,
        |offset, kind, body| {
            records.push((offset, kind, body.to_vec()));
            Ok(())
        },
    );
    (result.map(|(_, end)| end), records)
}

fn check_scan(bytes: &[u8], sequence: u64, role: Role) {
    let (result, records) = scan(bytes, sequence, role);
    let file_len = bytes.len() as u64;
    let mut last_offset = V1_HEADER_LEN;
    for (offset, kind, body) in &records {
        assert!(*offset >= last_offset, "records come in file order");
        assert!(*offset < file_len, "record at {offset}, past the file");
        last_offset = *offset;
        if *kind == KIND_WRITE {
            check_write_payload(body);
        }
    }
    match result {
        Ok(ScanEnd::Clean { len }) => {
            assert!(len <= file_len);
            match role {
                Role::EndsAt(end) => assert_eq!(len, end, "a named end is reached exactly"),
                _ => assert!(
                    all_zero(&bytes[len as usize..]),
                    "clean scan at {len} of {file_len} leaves non-zero bytes"
                ),
            }
        }
        Ok(ScanEnd::Rollover { offset, next }) => {
            assert_eq!(next, sequence + 1);
            assert!(offset < file_len && !matches!(role, Role::EndsAt(_)));
        }
        Ok(ScanEnd::TornTail {
            valid_len,
            dirty_end,
            file_len: torn_file_len,
            ..
        }) => {
            assert_eq!(
                role,
                Role::Newest,
                "a torn tail outside the newest segment is corruption"
            );
            assert_eq!(torn_file_len, file_len);
            assert!(valid_len < file_len && valid_len <= dirty_end && dirty_end <= file_len);
        }
        Err(StorageError::Corrupted { offset, .. }) => assert!(offset <= file_len),
        // A header naming a version this build does not read.
        Err(StorageError::Unsupported { .. }) => {}
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

/// Recipe: `tear: u64, flip: u16, pad: u16, (records: u8, (len: u8,
/// body: len bytes)*)*`: frames of that many records (at least one, up to
/// 16 frames), zero padding of `pad % 2048` bytes, then the last frame torn
/// by the sector pattern `tear` (bit i: sector i of the frame new), and
/// separately byte `flip` of the frames flipped.
fn torn_segment(data: &[u8]) {
    let mut input = Input::new(data);
    let tear = u64::from(input.u32()) | u64::from(input.u32()) << 32;
    let flip = usize::from(input.u16());
    let pad = usize::from(input.u16()) % 2048;
    let mut frames: Vec<Vec<Vec<u8>>> = Vec::new();
    while !input.is_empty() && frames.len() < 16 {
        let count = usize::from(input.u8() % 4) + 1;
        frames.push(
            (0..count)
                .map(|_| {
                    let len = usize::from(input.u8());
                    input.bytes(len).to_vec()
                })
                .collect(),
        );
    }
    if frames.is_empty() {
        return;
    }
    let mut file = segment_header(9, 0, KEY);
    let mut starts = Vec::new();
    for records in &frames {
        starts.push(file.len());
        let mut frame = vec![0u8; FRAME_HEADER_LEN];
        for body in records {
            push_record(&mut frame, KIND_WRITE, |out| out.extend_from_slice(body));
        }
        seal_frame(&mut frame, FRAME_COMMIT, KEY);
        file.extend_from_slice(&frame);
    }
    let data_len = file.len();
    file.resize(data_len + pad, 0);
    let all: Vec<&Vec<u8>> = frames.iter().flatten().collect();
    let (result, seen) = scan(&file, 9, Role::Newest);
    assert_eq!(
        result.expect("a whole segment scans"),
        ScanEnd::Clean {
            len: data_len as u64
        }
    );
    assert_eq!(seen.iter().map(|r| &r.2).collect::<Vec<_>>(), all);
    let (result, _) = scan(&file, 9, Role::EndsAt(data_len as u64));
    assert_eq!(
        result.expect("whole frames up to the named end"),
        ScanEnd::Clean {
            len: data_len as u64
        }
    );

    // The last frame torn, sector by sector.
    let last = *starts.last().expect("a frame");
    let mut torn = file.clone();
    for (i, sector_start) in (last / SECTOR * SECTOR..data_len)
        .step_by(SECTOR)
        .enumerate()
    {
        if tear >> (i % 64) & 1 == 0 {
            let from = sector_start.max(last);
            let to = (sector_start + SECTOR).min(data_len);
            torn[from..to].fill(0);
        }
    }
    let earlier: Vec<&Vec<u8>> = frames[..frames.len() - 1].iter().flatten().collect();
    let (result, seen) = scan(&torn, 9, Role::Newest);
    let end = result.unwrap_or_else(|e| panic!("a torn last frame is not corruption: {e}"));
    let got: Vec<&Vec<u8>> = seen.iter().map(|r| &r.2).collect();
    if torn == file {
        assert_eq!(got, all);
    } else {
        assert_eq!(got, earlier, "a tear keeps exactly the earlier frames");
        assert_eq!(end.data_end(), last as u64);
    }

    // One byte of a frame that is not the last flipped: a valid frame
    // follows, so it is damage, named at the damaged frame.
    if frames.len() >= 2 {
        let at = V2_HEADER_LEN as usize + flip % (last - V2_HEADER_LEN as usize);
        let mut damaged = file.clone();
        damaged[at] ^= 0x20;
        let frame = starts
            .iter()
            .rev()
            .find(|&&s| s <= at)
            .copied()
            .expect("a frame");
        match scan(&damaged, 9, Role::Newest).0 {
            Err(StorageError::Corrupted { offset, .. }) => assert_eq!(offset, frame as u64),
            other => panic!("flipped byte {at} in frame at {frame}: {other:?}"),
        }
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
    // As a chunk of a current block and of a version 2 block (whose old
    // energy columns are checked within their rounding).
    for legacy in [false, true] {
        if let Ok(header) = parse_chunk(data, legacy) {
            let end = CHUNK_HEADER_LEN + header.payload_len as usize;
            assert!(end <= data.len(), "chunk of {end} bytes in {}", data.len());
            check_chunk_payload(
                &data[CHUNK_HEADER_LEN..end],
                header.partition,
                header.span_count,
            );
        }
    }

    let mut input = Input::new(data);
    let span_count = input.u32();
    let ship = input.u64();
    let partition = input.i64();
    let span_bytes = input.u32();
    let payload = input.rest();
    let chunk = chunk_bytes(ship, partition, span_count, span_bytes, payload);
    if let Ok(header) = parse_chunk(&chunk, false) {
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
        let header = parse_chunk(&chunk, false)
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

    // Segments: version 2 with two COMMIT frames, whole and torn inside the
    // second; version 1 with two WRITE frames.
    let mut segment = segment_header(7, 0, KEY);
    for (ship, spans) in [(42u64, &day[..]), (7, &irregular[..])] {
        let mut frame = vec![0u8; FRAME_HEADER_LEN];
        push_record(&mut frame, KIND_WRITE, |out| {
            out.extend_from_slice(&write(ship, spans))
        });
        seal_frame(&mut frame, FRAME_COMMIT, KEY);
        segment.extend_from_slice(&frame);
    }
    let torn = segment[..segment.len() - 5].to_vec();
    seeds.push(("segment_decode", "hand-two-commits.log", segment));
    seeds.push(("segment_decode", "hand-torn-tail.log", torn));
    let mut old = v1_header(7);
    v1_frame(&mut old, &write(42, &day));
    v1_frame(&mut old, &write(7, &irregular));
    seeds.push(("segment_decode", "hand-v1-two-records.log", old));
    // The recipe layout: tear, flip, pad, (records, (len, body)*)*.
    let mut recipe = vec![0b1010, 0, 0, 0, 0, 0, 0, 0, 40, 0, 100, 0];
    for (ship, spans) in [(1u64, &irregular[..]), (2, &day[..8])] {
        let payload = write(ship, spans);
        recipe.extend_from_slice(&[0, payload.len() as u8]);
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
    scan(segment, 7, Role::Newest).1.len()
}
