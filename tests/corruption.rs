//! Damaged data files, through the real binary.
//!
//! Guarantees under test: a torn tail of the newest log segment (a crash in
//! the middle of an unacknowledged write) is cut back on start, reported,
//! and costs no acknowledged data; a flipped byte anywhere else — a log
//! record, a block chunk — stops the start with an error naming the file and
//! the byte offset, never a panic and never silently wrong numbers, and
//! `powerd check` reports the same.

use std::path::{Path, PathBuf};

use crate::process::{day_body, powerd, timestamp, Client, Server, DAY_S};
use crate::util::TempDir;

/// 2021-03-01T00:00:00Z
const EPOCH_S: i64 = 1_614_556_800;

fn day_post(ship: u64, day: i64) -> Vec<u8> {
    day_body(ship, "kWh", EPOCH_S + day * DAY_S, |_| {
        (day + 1).to_string()
    })
}

/// Starts the binary on `data_dir`, POSTs `days` ship-days for ship 1, and
/// stops it: with SIGKILL (the writes stay in the log) or SIGTERM (a
/// checkpoint moves them into a block file).
fn write_days(data_dir: &Path, days: i64, graceful: bool) {
    let server = Server::start(data_dir);
    let mut client = Client::connect(server.address).expect("connect");
    for day in 0..days {
        let (status, body) = client
            .request("POST", "/data", &day_post(1, day))
            .expect("POST");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    if graceful {
        assert!(server.terminate().success());
    } else {
        server.kill9();
    }
}

/// The total energy of ship 1 over the first `days` days, from a restarted
/// server, stopped gracefully afterwards.
fn total_energy(data_dir: &Path, days: i64) -> f64 {
    let server = Server::start(data_dir);
    let mut client = Client::connect(server.address).expect("connect");
    let path = format!(
        "/data?spaceship_id=1&start={}&end={}",
        timestamp(EPOCH_S),
        timestamp(EPOCH_S + days * DAY_S)
    );
    let (status, body) = client.request("GET", &path, b"").expect("GET");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert!(server.terminate().success(), "a graceful stop");
    json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|b| b["value"].as_f64().expect("value"))
        .sum()
}

/// The files with `extension` in `dir`, in name order (for segments and
/// blocks: oldest first).
fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("directory exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no .{extension} file in {}",
        dir.display()
    );
    files
}

/// Byte offsets of the frames of a log segment and where its data ends
/// (header 48 bytes; a frame is a 16-byte header whose first 4 bytes are
/// the payload length; a preallocated segment ends in zeros).
fn frame_offsets(segment: &[u8]) -> (Vec<usize>, usize) {
    let mut offsets = Vec::new();
    let mut offset = 48;
    while offset + 16 <= segment.len() && segment[offset..offset + 16].iter().any(|&b| b != 0) {
        offsets.push(offset);
        let len =
            u32::from_le_bytes(segment[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        offset += 16 + len;
    }
    (offsets, offset)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_torn_tail_is_cut_back_and_reported() {
    let dir = TempDir::new("torn-tail");
    let data_dir = dir.path().join("data");
    write_days(&data_dir, 3, false);
    let segment = files(&data_dir.join("log"), "log")
        .pop()
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read segment");
    let whole_len = bytes.len();
    let (frames, data_end) = frame_offsets(&bytes);
    // The start of one more frame where the next write would have gone: a
    // valid header and half a payload, as a crash mid-write leaves it.
    let first = frames[0];
    let payload_len =
        u32::from_le_bytes(bytes[first..first + 4].try_into().expect("4 bytes")) as usize;
    let partial = bytes[first..first + 16 + payload_len / 2].to_vec();
    if bytes.len() < data_end + partial.len() {
        bytes.resize(data_end + partial.len(), 0);
    }
    bytes[data_end..data_end + partial.len()].copy_from_slice(&partial);
    std::fs::write(&segment, &bytes).expect("write segment");

    let check = powerd(&["check"], &data_dir);
    assert!(
        check.status.success(),
        "a torn tail is not damage: {}",
        text(&check.stdout)
    );
    assert!(
        text(&check.stdout).contains("torn tail"),
        "{}",
        text(&check.stdout)
    );

    // Days 1..3 hold 96 buckets of 1, 2, 3 kWh.
    assert_eq!(total_energy(&data_dir, 3), 96.0 * (1.0 + 2.0 + 3.0));
    let check = powerd(&["check"], &data_dir);
    assert!(
        check.status.success() && !text(&check.stdout).contains("torn tail"),
        "{}",
        text(&check.stdout)
    );
    // The restart replayed the whole records and folded them into a block,
    // which retired the segment with its torn tail.
    assert!(
        !segment.exists(),
        "{} is still there ({data_end} bytes of data, {whole_len} in all)",
        segment.display()
    );
}

#[test]
fn a_flipped_byte_in_a_log_record_is_an_error_naming_file_and_offset() {
    let dir = TempDir::new("flip-log");
    let data_dir = dir.path().join("data");
    write_days(&data_dir, 3, false);
    // The oldest record of all: whichever segment holds it, records follow
    // it, so damage there can only be corruption, never a torn tail.
    let segment = files(&data_dir.join("log"), "log").remove(0);
    let mut bytes = std::fs::read(&segment).expect("read segment");
    let second = frame_offsets(&bytes).0[0];
    bytes[second + 16 + 5] ^= 0x20;
    std::fs::write(&segment, &bytes).expect("write segment");

    let check = powerd(&["check"], &data_dir);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stdout));
    let report = text(&check.stdout);
    assert!(
        report.contains(
            &segment
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string()
        ),
        "{report}"
    );
    assert!(report.contains(&format!("offset {second}")), "{report}");

    let serve = powerd(&["serve", "--listen", "127.0.0.1:0"], &data_dir);
    assert_eq!(
        serve.status.code(),
        Some(1),
        "the server must refuse to start on damage"
    );
    let stderr = text(&serve.stderr);
    assert!(
        stderr.contains("corrupted") && stderr.contains(&format!("offset {second}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_flipped_byte_in_a_block_is_an_error_naming_file_and_offset() {
    let dir = TempDir::new("flip-block");
    let data_dir = dir.path().join("data");
    write_days(&data_dir, 3, true);
    let block = files(&data_dir.join("blocks"), "blk")
        .pop()
        .expect("a block");
    let mut bytes = std::fs::read(&block).expect("read block");
    // The block header is 32 bytes, the first chunk's header 32 more.
    bytes[32 + 32 + 3] ^= 0x01;
    std::fs::write(&block, &bytes).expect("write block");

    let check = powerd(&["check"], &data_dir);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stdout));
    let report = text(&check.stdout);
    assert!(
        report.contains(
            &block
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string()
        ) && report.contains("offset 32"),
        "{report}"
    );

    let serve = powerd(&["serve", "--listen", "127.0.0.1:0"], &data_dir);
    assert_eq!(serve.status.code(), Some(1));
    let stderr = text(&serve.stderr);
    assert!(
        stderr.contains("offset 32") && stderr.contains("CRC"),
        "{stderr}"
    );
}

#[test]
fn a_clean_directory_checks_clean_after_restarts() {
    let dir = TempDir::new("check-clean");
    let data_dir = dir.path().join("data");
    write_days(&data_dir, 2, true);
    write_days(&data_dir, 4, false);
    let check = powerd(&["check"], &data_dir);
    assert!(check.status.success(), "{}", text(&check.stdout));
    assert!(
        text(&check.stdout).contains("OK"),
        "{}",
        text(&check.stdout)
    );
    assert_eq!(total_energy(&data_dir, 4), 96.0 * (1.0 + 2.0 + 3.0 + 4.0));
}
