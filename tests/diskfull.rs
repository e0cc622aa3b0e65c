//! A full disk, for real: the data directory on a small tmpfs (the tests
//! run as root, as CI does; the test fails, not skips, when it cannot
//! mount), the server's stderr on the same filesystem, four concurrent
//! writers until the disk is full. Then: writes get 507 saying so, reads
//! keep working, `/health` says degraded and `/metrics` counts the
//! refusals; SIGTERM exits 0 in time; a restart on the still-full disk
//! serves every acknowledged write; once the filesystem is enlarged,
//! writes resume by themselves; and a last restart has every acknowledged
//! write.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::process::{day_body, timestamp, Client, Server, DAY_S};
use crate::util::Tmpfs;

/// 2018-08-01T00:00:00Z
const EPOCH_S: i64 = 1_533_081_600;
const GRACE_S: u64 = 3;
const WRITERS: u64 = 4;

/// Day `n` of `ship`: 96 fifteen-minute kW readings; bucket `i` holds
/// `value(ship, n, i) / 4` kWh.
fn body(ship: u64, n: i64) -> Vec<u8> {
    day_body(ship, "kW", EPOCH_S + n * DAY_S, |i| {
        value(ship, n, i).to_string()
    })
}

fn value(ship: u64, n: i64, i: i64) -> i64 {
    (ship as i64 * 7 + n * 3 + i) % 97 * 4 + 4
}

/// Whether day `n` of `ship` reads back exactly as written.
fn holds(client: &mut Client, ship: u64, n: i64) -> bool {
    let path = format!(
        "/data?spaceship_id={ship}&start={}&end={}",
        timestamp(EPOCH_S + n * DAY_S),
        timestamp(EPOCH_S + (n + 1) * DAY_S)
    );
    let (status, body) = client.request("GET", &path, b"").expect("GET");
    if status != 200 {
        return false;
    }
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let values: Vec<i64> = json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|b| b["value"].as_i64().unwrap_or(-1))
        .collect();
    values == (0..96).map(|i| value(ship, n, i) / 4).collect::<Vec<_>>()
}

fn all_hold(address: std::net::SocketAddr, acknowledged: &BTreeSet<(u64, i64)>) {
    let mut client = Client::connect(address).expect("connect");
    for &(ship, n) in acknowledged {
        assert!(
            holds(&mut client, ship, n),
            "ship {ship} day {n} was acknowledged"
        );
    }
}

fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut client = Client::connect(address).expect("connect");
    let (status, body) = client.request("GET", path, b"").expect("GET");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_recovers_by_itself() {
    let fs = Tmpfs::mount("diskfull", "24m");
    let data = fs.0.join("data");
    let log = || std::fs::File::create(fs.0.join("powerd.log")).expect("log file on the tmpfs");
    let flags = ["--shutdown-grace", "3"];
    let server = Server::start_logging_to(&data, &flags, log());
    let address = server.address;

    // Four writers, each its own ships, until every one has met the full disk.
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let statuses = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (acknowledged, statuses, stop) = (
                Arc::clone(&acknowledged),
                Arc::clone(&statuses),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut client = Client::connect(address).expect("connect");
                let mut refused = 0;
                for k in 0..200_000i64 {
                    let (ship, n) = (w + WRITERS * (k as u64 % 50), k / 50);
                    let (status, reply) = client
                        .request("POST", "/data", &body(ship, n))
                        .expect("POST");
                    statuses.lock().unwrap().insert(status);
                    match status {
                        200 => {
                            acknowledged.lock().unwrap().insert((ship, n));
                        }
                        507 => {
                            let text = String::from_utf8_lossy(&reply);
                            assert!(text.contains("disk is full"), "{text}");
                            refused += 1;
                            if refused >= 5 || stop.load(Ordering::Relaxed) {
                                stop.store(true, Ordering::Relaxed);
                                return;
                            }
                        }
                        other => {
                            panic!("POST answered {other}: {}", String::from_utf8_lossy(&reply))
                        }
                    }
                }
                panic!("the disk never filled up");
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 100,
        "{} writes fitted",
        acknowledged.len()
    );
    assert!(statuses.lock().unwrap().contains(&507));

    // Reads work, health and metrics say why writes are refused.
    all_hold(address, &acknowledged);
    let (status, health) = get(address, "/health");
    assert_eq!(status, 503, "{health}");
    assert!(
        health.contains("degraded") && health.contains("disk is full"),
        "{health}"
    );
    let (_, metrics) = get(address, "/metrics");
    assert!(
        metrics.contains("powerd_storage_refusing_writes 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("powerd_storage_writes_refused_total{reason=\"disk_full\"} 0\n"),
        "{metrics}"
    );

    // A stop on the full disk: in time, exit 0 (every acknowledged write
    // is in the log), and a start on the still-full disk serves them all.
    let exit = server
        .terminate_within(Duration::from_secs(GRACE_S + 5))
        .expect("SIGTERM ends the process in time on a full disk");
    assert!(exit.success(), "exit status {exit}");
    let server = Server::start_logging_to(&data, &flags, log());
    all_hold(server.address, &acknowledged);

    // Space comes back: writes resume by themselves.
    fs.resize("64m");
    let back = Instant::now();
    let mut client = Client::connect(server.address).expect("connect");
    let mut acknowledged = acknowledged;
    let resumed = loop {
        let (status, _) = client
            .request("POST", "/data", &body(999, 0))
            .expect("POST");
        if status == 200 {
            acknowledged.insert((999, 0));
            break back.elapsed();
        }
        assert_eq!(status, 507);
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "writes did not resume"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("space back to the first accepted write: {resumed:?}");
    for n in 1..20 {
        let (status, _) = client
            .request("POST", "/data", &body(999, n))
            .expect("POST");
        assert_eq!(status, 200);
        acknowledged.insert((999, n));
    }
    let (status, health) = get(server.address, "/health");
    assert_eq!((status, health.as_str()), (200, r#"{"status":"ok"}"#));

    let exit = server
        .terminate_within(Duration::from_secs(GRACE_S + 5))
        .expect("SIGTERM ends the process in time");
    assert!(exit.success(), "exit status {exit}");
    let server = Server::start_logging_to(&data, &flags, log());
    all_hold(server.address, &acknowledged);
    drop(server);
}

/// Started with stdin, stdout and stderr closed (as some service managers
/// do), powerd must not let its data files take descriptors 0–2 (log lines
/// would be written into them; Rust's runtime points them at /dev/null
/// before `main`, and this holds it to that), must serve, and must still
/// stop on SIGTERM with every acknowledged write.
#[test]
fn closed_standard_streams_neither_take_data_files_nor_block_a_stop() {
    let dir = crate::util::TempDir::new("closed-streams");
    let data = dir.path().join("data");
    // No banner without stdout: a fixed port, tried until one is free.
    let (mut child, address) = (0..20)
        .find_map(|attempt| {
            let port = 20_000 + (std::process::id() % 20_000) as u16 + attempt * 7;
            let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            std::net::TcpListener::bind(address).ok()?;
            let child = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "exec \"$0\" serve --data-dir \"$1\" --listen {address} <&- >&- 2>&-"
                ))
                .arg(env!("CARGO_BIN_EXE_powerd"))
                .arg(&data)
                .spawn()
                .expect("sh runs");
            Some((child, address))
        })
        .expect("a free port");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = loop {
        if let Ok(client) = Client::connect(address) {
            break client;
        }
        assert!(Instant::now() < deadline, "powerd did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (status, _) = client.request("POST", "/data", &body(1, 0)).expect("POST");
    assert_eq!(status, 200);
    drop(client);
    // Nothing of the data directory sits on descriptors 0-2.
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{}/fd/{fd}", child.id()))
            .expect("descriptor 0-2 is open");
        assert_eq!(target, Path::new("/dev/null"), "fd {fd}");
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("SIGTERM did not stop powerd with closed standard streams");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit}");
    let server = Server::start(&data);
    all_hold(server.address, &[(1, 0)].into_iter().collect());
}

/// A stderr nobody reads (a pipe whose reader hangs): once its buffer is
/// full, log lines are dropped; requests, which each log a line at `info`,
/// keep being answered, and SIGTERM still ends the process in time.
#[test]
fn a_stuck_stderr_blocks_neither_requests_nor_a_stop() {
    let dir = crate::util::TempDir::new("stuck-stderr");
    let data = dir.path().join("data");
    // The pipe's read end stays open, unread, in the child handle.
    let server = Server::start_logging_to(
        &data,
        &["--log-level", "debug", "--shutdown-grace", "3"],
        std::process::Stdio::piped(),
    );
    let mut client = Client::connect(server.address).expect("connect");
    // Far more than a 64 KiB pipe holds: ~150 bytes per request line.
    for _ in 0..3000 {
        let (status, _) = client.request("GET", "/health", b"").expect("GET /health");
        assert_eq!(status, 200);
    }
    let (status, _) = client.request("POST", "/data", &body(1, 0)).expect("POST");
    assert_eq!(status, 200);
    drop(client);
    let exit = server
        .terminate_within(Duration::from_secs(GRACE_S + 5))
        .expect("SIGTERM ends the process in time");
    assert!(exit.success(), "{exit}");
    let server = Server::start(&data);
    all_hold(server.address, &[(1, 0)].into_iter().collect());
}
