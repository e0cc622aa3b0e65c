//! The Parquet lake with the real binary: `powerd export` while a server
//! serves the directory and while none does, only changed days rewritten
//! (overwrites of the past included, a deleted file noticed), `powerd
//! import` rebuilding a node whose every answer equals the original's, and
//! `serve --lake` exporting continuously.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::process::{day_body, timestamp, Client, Server, DAY_S};
use crate::util::{TempDir, Tmpfs};

/// 2026-01-01T00:00:00Z
const EPOCH_S: i64 = 1_767_225_600;
const SHIPS: u64 = 12;
const DAYS: i64 = 3;

fn powerd(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_powerd"));
    command.args(args);
    command
}

#[track_caller]
fn ok(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    stderr
}

/// Where [`export`] copies a served directory first: beside the lake.
fn scratch_of(lake: &Path) -> PathBuf {
    lake.with_extension("scratch")
}

fn export(data: &Path, lake: &Path, node: &str) -> String {
    let scratch = scratch_of(lake);
    std::fs::create_dir_all(&scratch).unwrap();
    ok(powerd(&["export", "--data-dir"])
        .arg(data)
        .arg("--to")
        .arg(lake)
        .args(["--node", node, "--scratch"])
        .arg(&scratch)
        .output()
        .expect("powerd export runs"))
}

/// The number after `word` in an export summary (`..., 3 written, ...`).
fn count(summary: &str, word: &str) -> u64 {
    let line = summary
        .lines()
        .find(|l| l.starts_with("export complete"))
        .unwrap_or_else(|| panic!("no summary in {summary}"));
    let before = line
        .split(", ")
        .find(|part| part.ends_with(word))
        .unwrap_or_else(|| panic!("no {word:?} in {line}"));
    before.split(' ').next().unwrap().parse().unwrap()
}

fn day_file(lake: &Path, day: i64, node: &str) -> PathBuf {
    lake.join(format!("date={}", &timestamp(EPOCH_S + day * DAY_S)[..10]))
        .join(format!("{node}.parquet"))
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Mixed data: kW readings of three decimals every 5 minutes for even
/// ships, hourly kWh for odd ones, a gap, a partial bucket.
fn seed(address: std::net::SocketAddr) {
    let mut client = Client::connect(address).unwrap();
    for day in 0..DAYS {
        for ship in 0..SHIPS {
            let start = EPOCH_S + day * DAY_S;
            let body = if ship % 2 == 0 {
                let readings: Vec<String> = (0..288)
                    .filter(|i| !(100..110).contains(i))
                    .map(|i| {
                        format!(
                            r#"{{"datetime":"{}","value":{}.{:03}}}"#,
                            timestamp(start + i * 300),
                            ship + 1,
                            (i * 37 + day * 11) % 1000
                        )
                    })
                    .collect();
                format!(
                    r#"{{"spaceship_id":{ship},"units":"kW","data":[{}]}}"#,
                    readings.join(",")
                )
                .into_bytes()
            } else {
                day_body(ship, "kWh", start, |i| {
                    format!("{}.{:06}", ship, (i * 7919 + day) % 1_000_000)
                })
            };
            let (status, answer) = client.request("POST", "/data", &body).unwrap();
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        }
    }
}

/// Every question whose answer must survive export and import.
fn answers(address: std::net::SocketAddr) -> Vec<String> {
    let mut client = Client::connect(address).unwrap();
    let window = format!(
        "start={}&end={}",
        timestamp(EPOCH_S),
        timestamp(EPOCH_S + DAYS * DAY_S)
    );
    let mut paths: Vec<String> = (0..SHIPS)
        .map(|ship| format!("/data?spaceship_id={ship}"))
        .collect();
    paths.push(format!("/data/fleet?{window}&step=15m"));
    paths.push(format!("/data/fleet?{window}&step=1d"));
    paths.push(format!("/topusers?{window}&count=100"));
    paths
        .iter()
        .map(|path| {
            let (status, body) = client.request("GET", path, b"").unwrap();
            assert_eq!(status, 200, "{path}");
            format!("{path} {}", String::from_utf8(body).unwrap())
        })
        .collect()
}

fn post(address: std::net::SocketAddr, body: &str) {
    let mut client = Client::connect(address).unwrap();
    let (status, answer) = client.request("POST", "/data", body.as_bytes()).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
}

fn import(lake: &Path, node: &str, data: &Path) -> String {
    ok(powerd(&["import", "--from"])
        .arg(lake)
        .args(["--node", node, "--data-dir"])
        .arg(data)
        .output()
        .expect("powerd import runs"))
}

#[test]
fn export_is_incremental_and_import_gives_every_answer_back() {
    let dir = TempDir::new("lake");
    let (data, lake) = (dir.path().join("data"), dir.path().join("lake"));
    let server = Server::start(&data);
    seed(server.address);

    // While the server serves the directory: a snapshot is exported.
    let first = export(&data, &lake, "a");
    assert!(first.contains("exporting a snapshot"), "{first}");
    assert_eq!(count(&first, "written"), DAYS as u64, "{first}");
    let mut expected: Vec<String> = (0..DAYS)
        .map(|day| {
            day_file(&lake, day, "a")
                .strip_prefix(&lake)
                .unwrap()
                .display()
                .to_string()
        })
        .chain([
            "_powerd/a/lock".to_string(),
            "_powerd/a/state.json".to_string(),
        ])
        .collect();
    expected.sort();
    assert_eq!(files(&lake), expected, "one file per day, nothing else");
    let scratch = scratch_of(&lake);
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        0,
        "the snapshot is removed"
    );

    // Nothing changed: nothing written.
    let again = export(&data, &lake, "a");
    assert_eq!(count(&again, "written"), 0, "{again}");
    assert_eq!(count(&again, "checked"), DAYS as u64, "{again}");

    // An overwrite of the past rewrites that day only.
    let before: Vec<u64> = (0..DAYS)
        .map(|d| std::fs::metadata(day_file(&lake, d, "a")).unwrap().len())
        .collect();
    let modified_1 = std::fs::read(day_file(&lake, 1, "a")).unwrap();
    post(
        server.address,
        &format!(
            r#"{{"spaceship_id":3,"units":"kWh","data":[{{"datetime":"{}","value":123.456789}}]}}"#,
            timestamp(EPOCH_S + DAY_S + 3600)
        ),
    );
    let third = export(&data, &lake, "a");
    assert_eq!(count(&third, "written"), 1, "{third}");
    assert_ne!(std::fs::read(day_file(&lake, 1, "a")).unwrap(), modified_1);
    assert_eq!(
        std::fs::metadata(day_file(&lake, 0, "a")).unwrap().len(),
        before[0]
    );

    // A deleted day file is noticed and written again.
    std::fs::remove_file(day_file(&lake, 2, "a")).unwrap();
    let fourth = export(&data, &lake, "a");
    assert_eq!(count(&fourth, "written"), 1, "{fourth}");
    assert!(day_file(&lake, 2, "a").is_file());

    let original = answers(server.address);
    assert!(original.iter().all(|a| !a.contains(r#""data":[]"#)));
    server.terminate();

    // No server: the directory itself is exported; nothing is new.
    let stopped = export(&data, &lake, "a");
    assert!(!stopped.contains("snapshot"), "{stopped}");
    assert_eq!(count(&stopped, "written"), 0, "{stopped}");

    // Import into an empty directory: every answer the same.
    let rebuilt = dir.path().join("rebuilt");
    let imported = import(&lake, "a", &rebuilt);
    assert!(imported.contains(&format!("{SHIPS} ships")), "{imported}");
    let server = Server::start(&rebuilt);
    assert_eq!(answers(server.address), original);
    // The rebuilt node exports the same files, byte for byte.
    let relake = dir.path().join("relake");
    server.terminate();
    export(&rebuilt, &relake, "a");
    for day in 0..DAYS {
        assert_eq!(
            std::fs::read(day_file(&relake, day, "a")).unwrap(),
            std::fs::read(day_file(&lake, day, "a")).unwrap(),
            "day {day}"
        );
    }
}

#[test]
fn serve_exports_continuously() {
    let dir = TempDir::new("lake-serve");
    let (data, lake) = (dir.path().join("data"), dir.path().join("lake"));
    let lake_arg = lake.to_str().unwrap();
    let server = Server::start_with(
        &data,
        &["--lake", lake_arg, "--node", "n1", "--lake-every", "1s"],
    );
    seed(server.address);
    let metric = |name: &str| metric(server.address, name);
    wait_until("every day in the lake", || {
        (0..DAYS).all(|day| day_file(&lake, day, "n1").is_file())
            && metric("powerd_lake_files_written_total") >= DAYS as f64
    });
    assert_eq!(metric("powerd_lake_failures_total"), 0.0);
    assert!(metric("powerd_lake_lag_seconds") < 30.0);
    let day0 = std::fs::read(day_file(&lake, 0, "n1")).unwrap();
    let written = metric("powerd_lake_files_written_total");
    post(
        server.address,
        &format!(
            r#"{{"spaceship_id":1,"units":"kWh","data":[{{"datetime":"{}","value":7}}]}}"#,
            timestamp(EPOCH_S + 900)
        ),
    );
    wait_until("the overwritten day exported again", || {
        std::fs::read(day_file(&lake, 0, "n1")).unwrap() != day0
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        metric("powerd_lake_files_written_total"),
        written + 1.0,
        "only the day written to is exported again"
    );
    let original = answers(server.address);
    server.terminate();
    let rebuilt = dir.path().join("rebuilt");
    import(&lake, "n1", &rebuilt);
    let server = Server::start(&rebuilt);
    assert_eq!(answers(server.address), original);
}

#[test]
fn bad_node_names_and_lakes_are_refused() {
    let dir = TempDir::new("lake-bad");
    let data = dir.path().join("data");
    for node in ["../x", "_powerd", ".hidden", "a/b", ""] {
        let output = powerd(&["export", "--data-dir"])
            .arg(&data)
            .arg("--to")
            .arg(dir.path().join("lake"))
            .args(["--node", node])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{node:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--node"), "{stderr}");
    }
    // A data directory that does not exist is not created by an export.
    let output = powerd(&["export", "--data-dir"])
        .arg(&data)
        .arg("--to")
        .arg(dir.path().join("lake"))
        .args(["--node", "a"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(!data.exists());
    // A lake that is a file cannot be served.
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let output = powerd(&["serve", "--data-dir"])
        .arg(&data)
        .args(["--listen", "127.0.0.1:0", "--node", "a", "--lake"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("lake"));
}

/// `GET /metrics`' value of `name` (no labels) on `address`.
fn metric(address: std::net::SocketAddr, name: &str) -> f64 {
    let mut client = Client::connect(address).unwrap();
    let (_, body) = client.request("GET", "/metrics", b"").unwrap();
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name}"))
        .parse()
        .unwrap()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A lake on a full disk: passes fail, are counted and logged, the server
/// keeps taking writes and answering; once there is room the next pass
/// catches up, and nothing half-written is left. A second exporter of the
/// same node is refused; a lake emptied under the server is filled again.
#[test]
fn a_full_or_emptied_lake_is_not_an_outage() {
    let dir = TempDir::new("lake-full");
    let data = dir.path().join("data");
    let tmpfs = Tmpfs::mount("lake-full", "8k");
    let lake = tmpfs.0.join("lake");
    let server = Server::start_with(
        &data,
        &[
            "--lake",
            lake.to_str().unwrap(),
            "--node",
            "n",
            "--lake-every",
            "1s",
        ],
    );
    seed(server.address);
    wait_until("a failed pass", || {
        metric(server.address, "powerd_lake_failures_total") >= 1.0
    });
    // Still serving: a write and a read.
    post(
        server.address,
        &format!(
            r#"{{"spaceship_id":5,"units":"kWh","data":[{{"datetime":"{}","value":1.5}}]}}"#,
            timestamp(EPOCH_S + 600)
        ),
    );
    let original = answers(server.address);
    // No temporary file outlives a failed write.
    let leftovers: Vec<String> = files(&lake)
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Another exporter of node n into the same lake is refused.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let refused = powerd(&["export", "--data-dir"])
        .arg(&elsewhere)
        .arg("--to")
        .arg(&lake)
        .args(["--node", "n"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("another export of node n"), "{stderr}");

    // Room again: the next passes write every day.
    tmpfs.resize("64m");
    let failures = metric(server.address, "powerd_lake_failures_total");
    wait_until("every day exported", || {
        (0..DAYS).all(|day| day_file(&lake, day, "n").is_file())
            && metric(server.address, "powerd_lake_lag_seconds") < 3.0
    });
    assert!(metric(server.address, "powerd_lake_failures_total") <= failures + 1.0);

    // The lake emptied under the server: filled again from the data.
    std::fs::remove_dir_all(&lake).unwrap();
    wait_until("every day exported again", || {
        (0..DAYS).all(|day| day_file(&lake, day, "n").is_file())
    });
    server.terminate();
    let rebuilt = dir.path().join("rebuilt");
    import(&lake, "n", &rebuilt);
    let server = Server::start(&rebuilt);
    assert_eq!(answers(server.address), original);
}
