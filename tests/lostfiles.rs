//! Lost files, through the real binary (issue: a deleted log segment nobody
//! noticed).
//!
//! Guarantee under test: when a file that holds acknowledged data is gone —
//! the first log segment, one in the middle, the head segment after a
//! checkpoint, the newest segment, a block file the manifest names, the
//! manifest itself — `powerd check` exits 1 naming it and `powerd serve`
//! refuses to start with the same message; neither ever serves without it.
//! Files that hold no data of their own (the rollup index, spare segments,
//! the lock) may go: the next start rebuilds or recreates them.

use std::path::{Path, PathBuf};

use crate::process::{day_body, powerd, Client, Server, DAY_S};
use crate::util::TempDir;

/// 2022-05-01T00:00:00Z
const EPOCH_S: i64 = 1_651_363_200;
/// Small segments, so a few hundred POSTs span several of them, and no
/// checkpoint unless the test asks for one.
const SMALL_LOG: [&str; 4] = [
    "--segment-bytes",
    "65536",
    "--checkpoint-log-bytes",
    "1073741824",
];

fn day_post(ship: u64, day: i64) -> Vec<u8> {
    day_body(ship, "kW", EPOCH_S + day * DAY_S, |i| {
        format!("{}.{}", ship + 1, i * 7 % 1000)
    })
}

/// POSTs `count` ship-days (ship i % 5, day i / 5) starting at `first`.
fn post_days(server: &Server, first: i64, count: i64) {
    let mut client = Client::connect(server.address).expect("connect");
    for n in first..first + count {
        let (status, body) = client
            .request("POST", "/data", &day_post((n % 5) as u64, n / 5))
            .expect("POST");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

fn segments(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("log"))
        .expect("log directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `check` exits 1 with a PROBLEM naming `missing`, and `serve` exits 1
/// with the same sentence; neither answers as if the directory were whole.
fn assert_refused(data_dir: &Path, missing: &Path) {
    let name = missing
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .to_string();
    let check = powerd(&["check"], data_dir);
    let report = text(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{report}");
    let problem = report
        .lines()
        .find(|l| l.starts_with("PROBLEM:") && l.contains(&name) && l.contains("is missing"))
        .unwrap_or_else(|| panic!("no PROBLEM naming {name}:\n{report}"))
        .trim_start_matches("PROBLEM: ")
        .to_string();
    let serve = powerd(&["serve", "--listen", "127.0.0.1:0"], data_dir);
    let stderr = text(&serve.stderr);
    assert_eq!(serve.status.code(), Some(1), "serve must refuse: {stderr}");
    assert!(
        stderr.contains(&problem),
        "serve's error differs from check's:\ncheck: {problem}\nserve: {stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn a_lost_first_segment_without_a_checkpoint_is_refused() {
    let dir = TempDir::new("lost-first");
    let data_dir = dir.path().join("data");
    let server = Server::start_with(&data_dir, &SMALL_LOG);
    post_days(&server, 0, 2);
    server.kill9();
    let all = segments(&data_dir);
    assert_eq!(all.len(), 1, "{all:?}");
    std::fs::remove_file(&all[0]).expect("delete");
    assert_refused(&data_dir, &all[0]);
}

#[test]
fn lost_middle_newest_and_head_segments_are_refused() {
    let dir = TempDir::new("lost-segments");
    let data_dir = dir.path().join("data");
    // A checkpoint first, so the log's head is not segment 1.
    let server = Server::start_with(&data_dir, &SMALL_LOG);
    post_days(&server, 0, 10);
    assert!(server.terminate().success());
    let server = Server::start_with(&data_dir, &SMALL_LOG);
    post_days(&server, 10, 1200);
    server.kill9();
    let all = segments(&data_dir);
    assert!(
        all.len() >= 3,
        "the log should span several segments: {all:?}"
    );
    assert!(
        !all[0].ends_with("00000000000000000001.log"),
        "the checkpoint retired segment 1: {all:?}"
    );
    for lost in [
        all[all.len() / 2].clone(),
        all[all.len() - 1].clone(),
        all[0].clone(),
    ] {
        let copy = std::fs::read(&lost).expect("read");
        std::fs::remove_file(&lost).expect("delete");
        assert_refused(&data_dir, &lost);
        std::fs::write(&lost, copy).expect("put back");
    }
    // Whole again, it opens with every acknowledged write.
    let check = powerd(&["check"], &data_dir);
    assert!(check.status.success(), "{}", text(&check.stdout));
}

#[test]
fn a_lost_block_file_or_manifest_is_refused_and_a_lost_index_is_rebuilt() {
    let dir = TempDir::new("lost-block");
    let data_dir = dir.path().join("data");
    let server = Server::start(&data_dir);
    post_days(&server, 0, 20);
    assert!(server.terminate().success());
    let mut blocks: Vec<PathBuf> = std::fs::read_dir(data_dir.join("blocks"))
        .expect("blocks")
        .map(|e| e.expect("entry").path())
        .collect();
    blocks.sort();
    let block = blocks.pop().expect("a checkpoint wrote a block");
    let copy = std::fs::read(&block).expect("read");
    std::fs::remove_file(&block).expect("delete");
    assert_refused(&data_dir, &block);
    std::fs::write(&block, copy).expect("put back");

    let manifest = data_dir.join("MANIFEST");
    let copy = std::fs::read(&manifest).expect("read");
    std::fs::remove_file(&manifest).expect("delete");
    assert_refused(&data_dir, &manifest);
    std::fs::write(&manifest, copy).expect("put back");

    // The rollup index is derived data: a note, then rebuilt.
    std::fs::remove_file(data_dir.join("ROLLUP")).expect("delete");
    let check = powerd(&["check"], &data_dir);
    assert!(check.status.success(), "{}", text(&check.stdout));
    let server = Server::start(&data_dir);
    let mut client = Client::connect(server.address).expect("connect");
    let (status, body) = client
        .request("GET", "/topusers?count=5", b"")
        .expect("GET");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(json["ships"].as_array().expect("ships").len(), 5, "{json}");
}
