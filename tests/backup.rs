//! `powerd backup` with the real binary: while a server takes writes (and
//! checkpoints and rolls its log over every few writes), with no server,
//! interrupted by kill -9, into bad or full destinations.
//!
//! Guarantee: a finished backup passes `powerd check`, a server on it
//! holds every write acknowledged before the backup started, and each
//! write whole or not at all; an unfinished one is refused by `serve` and
//! `check`, saying so.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use powerd::model::Span;
use powerd::storage::sim::SimFs;
use powerd::storage::{check_with, BackupOptions, Engine, EngineOptions, StorageError};

use crate::process::{day_body, timestamp, Client, Server, DAY_S};
use crate::util::{TempDir, Tmpfs};

/// 2025-01-01T00:00:00Z
const EPOCH_S: i64 = 1_735_689_600;
/// Checkpoints and segment roll-overs every few dozen writes, so a backup
/// taken under writes meets both.
const BUSY_FLAGS: [&str; 4] = [
    "--checkpoint-log-bytes",
    "65536",
    "--segment-bytes",
    "65536",
];

/// Day `day` of `ship`: 96 readings, distinct per (ship, day).
fn body(ship: u64, day: i64) -> Vec<u8> {
    day_body(ship, "kWh", EPOCH_S + day * DAY_S, |i| {
        format!("{}.{:03}", ship % 7 + 1, (day * 96 + i) % 1000)
    })
}

fn day_path(ship: u64, day: i64) -> String {
    format!(
        "/data?spaceship_id={ship}&start={}&end={}",
        timestamp(EPOCH_S + day * DAY_S),
        timestamp(EPOCH_S + (day + 1) * DAY_S)
    )
}

/// What the server at `address` answers for a ship-day: `None` when it
/// holds nothing of it.
fn stored(client: &mut Client, ship: u64, day: i64) -> Option<String> {
    let (status, body) = client.request("GET", &day_path(ship, day), b"").unwrap();
    let text = String::from_utf8(body).unwrap();
    match status {
        404 => None,
        200 if text.contains(r#""data":[]"#) => None,
        200 => Some(text),
        _ => panic!("GET {ship}/{day}: {status} {text}"),
    }
}

fn powerd(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_powerd"));
    command.args(args);
    command
}

fn run_backup(source: &Path, dest: &Path, extra: &[&str]) -> Output {
    powerd(&["backup", "--data-dir"])
        .arg(source)
        .arg("--to")
        .arg(dest)
        .args(extra)
        .output()
        .expect("powerd backup runs")
}

fn check(dir: &Path) -> Output {
    powerd(&["check", "--data-dir"])
        .arg(dir)
        .output()
        .expect("powerd check runs")
}

fn seed(address: SocketAddr, ships: u64, days: i64) {
    let mut client = Client::connect(address).unwrap();
    for day in 0..days {
        for ship in 0..ships {
            let (status, answer) = client.request("POST", "/data", &body(ship, day)).unwrap();
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        }
    }
}

/// One acknowledged write: when it was acknowledged, and how long it took.
struct Ack {
    ship: u64,
    day: i64,
    at: Instant,
    took: Duration,
}

#[test]
fn a_backup_under_writes_holds_every_write_acknowledged_before_it() {
    let dir = TempDir::new("backup-busy");
    let source = dir.path().join("data");
    let server = Server::start_with(&source, &BUSY_FLAGS);
    // 300 ship-days before: block files and a live log to copy.
    seed(server.address, 30, 10);

    let stop = Arc::new(AtomicBool::new(false));
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let writers: Vec<_> = (0..2u64)
        .map(|writer| {
            let (stop, acks, address) = (Arc::clone(&stop), Arc::clone(&acks), server.address);
            std::thread::spawn(move || {
                let mut client = Client::connect(address).unwrap();
                // Writer w takes ships 100 + w, 102 + w, ...: no write
                // overwrites another, so each is found whole or not at all.
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let (ship, day) = (100 + writer + 2 * (n % 50), n as i64 / 50);
                    let started = Instant::now();
                    let (status, _) = client.request("POST", "/data", &body(ship, day)).unwrap();
                    assert_eq!(status, 200);
                    let at = Instant::now();
                    acks.lock().unwrap().push(Ack {
                        ship,
                        day,
                        at,
                        took: at - started,
                    });
                }
            })
        })
        .collect();

    // Writes before, three backups during, writes after.
    std::thread::sleep(Duration::from_millis(400));
    let mut backups = Vec::new();
    for round in 0..3 {
        let dest = dir.path().join(format!("backup-{round}"));
        let began = Instant::now();
        let output = run_backup(&source, &dest, &[]);
        let ended = Instant::now();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "backup {round}: {stderr}");
        assert!(
            stderr.contains("backup complete")
                && stderr.contains("taken while a server was writing"),
            "{stderr}"
        );
        assert!(stderr.contains("backup: "), "no progress lines: {stderr}");
        backups.push((dest, began, ended, stderr));
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let acks = std::mem::take(&mut *acks.lock().unwrap());

    let mut source_client = Client::connect(server.address).unwrap();
    let mut expected = std::collections::HashMap::new();
    for ack in &acks {
        let answer = stored(&mut source_client, ack.ship, ack.day);
        expected.insert(
            (ack.ship, ack.day),
            answer.expect("acknowledged, so stored"),
        );
    }
    drop(server);

    let first_began = backups[0].1;
    let last_ended = backups[backups.len() - 1].2;
    let worst = |from: Instant, to: Instant| {
        acks.iter()
            .filter(|a| a.at >= from && a.at - a.took <= to)
            .map(|a| a.took)
            .max()
            .unwrap_or_default()
    };
    let before = acks.iter().filter(|a| a.at < first_began).count();
    eprintln!(
        "{} writes acknowledged before the first backup, {} during the three; longest write \
         {:?} during backups, {:?} before them",
        before,
        acks.iter()
            .filter(|a| a.at >= first_began && a.at <= last_ended)
            .count(),
        worst(first_began, last_ended),
        worst(acks[0].at, first_began),
    );

    for (dest, began, ended, stderr) in &backups {
        let checked = check(dest);
        assert!(
            checked.status.success(),
            "check {}: {}{}",
            dest.display(),
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
        let copy = Server::start(dest);
        let mut client = Client::connect(copy.address).unwrap();
        let (mut held, mut during) = (0, 0);
        for ack in &acks {
            let answer = stored(&mut client, ack.ship, ack.day);
            if let Some(answer) = &answer {
                // Whole, never partly.
                assert_eq!(Some(answer), expected.get(&(ack.ship, ack.day)));
                held += 1;
            }
            if ack.at < *began {
                assert!(
                    answer.is_some(),
                    "{}: ship {} day {} was acknowledged before the backup began and is missing",
                    dest.display(),
                    ack.ship,
                    ack.day
                );
            } else if ack.at <= *ended && answer.is_some() {
                during += 1;
            }
        }
        // The seed is there too.
        assert!(stored(&mut client, 29, 9).is_some());
        eprintln!(
            "{}: {held} of {} writes, {during} of them acknowledged during the backup ({:.0} ms); {}",
            dest.display(),
            acks.len(),
            (*ended - *began).as_secs_f64() * 1e3,
            stderr.lines().last().unwrap_or_default()
        );
    }
}

#[test]
fn an_idle_directory_is_copied_whole() {
    let dir = TempDir::new("backup-idle");
    let source = dir.path().join("data");
    let server = Server::start_with(&source, &BUSY_FLAGS);
    seed(server.address, 20, 5);
    assert!(server.terminate().success());

    let dest = dir.path().join("copy");
    let output = run_backup(&source, &dest, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("no server was running"), "{stderr}");
    assert!(!dest.join("BACKUP-INCOMPLETE").exists());
    assert!(check(&dest).status.success());

    let original = Server::start(&source);
    let copy = Server::start(&dest);
    let mut a = Client::connect(original.address).unwrap();
    let mut b = Client::connect(copy.address).unwrap();
    for ship in 0..20 {
        for day in 0..5 {
            let answer = stored(&mut a, ship, day);
            assert!(answer.is_some());
            assert_eq!(answer, stored(&mut b, ship, day), "ship {ship} day {day}");
        }
    }
    for path in ["/topusers?count=20", "/data/fleet?step=1d"] {
        assert_eq!(
            a.request("GET", path, b"").unwrap(),
            b.request("GET", path, b"").unwrap(),
            "{path}"
        );
    }
}

#[test]
fn an_interrupted_backup_is_refused_by_serve_and_check() {
    let dir = TempDir::new("backup-killed");
    let source = dir.path().join("data");
    let server = Server::start(&source);
    seed(server.address, 40, 10);
    assert!(server.terminate().success());

    // 64 KiB/s: the copy of the block file takes a few seconds.
    let dest = dir.path().join("copy");
    let mut child = powerd(&["backup", "--max-rate", "65536", "--data-dir"])
        .arg(&source)
        .arg("--to")
        .arg(&dest)
        .stderr(Stdio::piped())
        .spawn()
        .expect("powerd backup starts");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.starts_with("backup: 0/"), "{line}");
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(dest.join("BACKUP-INCOMPLETE").exists());

    let serve = powerd(&["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dest)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&serve.stderr);
    assert!(!serve.status.success(), "served an incomplete backup");
    assert!(said.contains("is an incomplete backup"), "{said}");
    let checked = check(&dest);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(1), "{said}");
    assert!(said.contains("is an incomplete backup"), "{said}");
    // Nor backed up as if it were whole.
    let copy = run_backup(&dest, &dir.path().join("copy-of-copy"), &[]);
    let said = String::from_utf8_lossy(&copy.stderr);
    assert_eq!(copy.status.code(), Some(1), "{said}");
    assert!(said.contains("is an incomplete backup"), "{said}");
    assert!(!dir.path().join("copy-of-copy").exists());
    // Nor is it backed up over.
    let again = run_backup(&source, &dest, &[]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists and is not empty"),
        "{again:?}"
    );
}

#[test]
fn bad_and_full_destinations_are_refused() {
    let dir = TempDir::new("backup-bad");
    let source = dir.path().join("data");
    let server = Server::start(&source);
    seed(server.address, 40, 10);

    // Not a directory one can create.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let output = run_backup(&source, &file.join("copy"), &[]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("create backup directory"), "{said}");
    // No such source.
    let output = run_backup(&dir.path().join("nothing"), &dir.path().join("c"), &[]);
    assert!(!output.status.success());
    assert!(!dir.path().join("c").exists(), "a destination for nothing");

    // A read-only file system (root ignores permission bits, not this).
    let read_only = Tmpfs::mount("backup-ro", "1m");
    let remounted = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&read_only.0)
        .status()
        .unwrap();
    assert!(remounted.success());
    let output = run_backup(&source, &read_only.0.join("copy"), &[]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("create backup directory") && said.contains("Read-only file system"),
        "{said}"
    );
    drop(read_only);

    // A destination that fills up: the error says so, and the copy stays
    // marked incomplete.
    let fs = Tmpfs::mount("backup", "32k");
    let dest = fs.0.join("copy");
    let output = run_backup(&source, &dest, &[]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("No space left on device") && said.contains("BACKUP-INCOMPLETE"),
        "{said}"
    );
    assert!(dest.join("BACKUP-INCOMPLETE").exists());
    assert!(!check(&dest).status.success());
    drop(server);
}

// ---- Power cuts during a backup (simulated file system) --------------------

/// A source directory on `fs` with blocks (two checkpoints) and a live log.
fn simulated_source(fs: &SimFs) {
    fs.mkdir_durable(Path::new("/src"));
    let options = EngineOptions {
        segment_bytes: 4096,
        inline_background: true,
        ..EngineOptions::default()
    };
    let engine = Engine::open_with(Arc::new(fs.clone()), Path::new("/src"), options).unwrap();
    for round in 0..3i64 {
        for ship in 0..6u64 {
            let start_s = EPOCH_S + round * DAY_S + ship as i64 * 900;
            let spans = (0..8)
                .map(|i| Span {
                    start_s: start_s + i * 900,
                    end_s: start_s + (i + 1) * 900,
                    power_kw: 1.5 + (ship as f64) + i as f64 / 4.0,
                })
                .collect();
            engine.write(ship, spans).unwrap();
        }
        if round < 2 {
            engine.checkpoint().unwrap();
        }
    }
    // Dropped without a checkpoint: the last round stays in the log.
    drop(engine);
}

fn every_bucket(engine: &Engine) -> Vec<(u64, Vec<powerd::model::Bucket>)> {
    let mut ships = engine.ships();
    ships.sort_unstable();
    ships
        .into_iter()
        .map(|ship| {
            let buckets = powerd::query::ship_buckets(engine, ship, i64::MIN / 900, i64::MAX / 900)
                .unwrap()
                .unwrap_or_default();
            (ship, buckets)
        })
        .collect()
}

/// Power cut at every operation of a backup: what a restart finds is
/// either marked incomplete (refused, saying so), or no backup at all, or
/// a complete one that opens, checks clean and holds every write.
#[test]
fn a_power_cut_at_any_point_of_a_backup_never_leaves_a_copy_that_looks_complete() {
    let fs = SimFs::new(7);
    simulated_source(&fs);
    let source = Engine::open_with(
        Arc::new(fs.kill_image()),
        Path::new("/src"),
        EngineOptions::default(),
    )
    .unwrap();
    let expected = every_bucket(&source);
    assert!(expected.len() == 6 && expected.iter().all(|(_, b)| b.len() >= 24));
    drop(source);

    let backup = |fs: &SimFs| {
        powerd::storage::backup(
            fs,
            Path::new("/src"),
            Path::new("/dest"),
            &BackupOptions::default(),
            &mut |_| {},
        )
    };
    let whole = SimFs::new(7);
    simulated_source(&whole);
    let before = whole.ops();
    backup(&whole).expect("an uninterrupted backup");
    let total = whole.ops() - before;

    let (mut incomplete, mut complete, mut absent) = (0, 0, 0);
    for cut in 0..=total {
        let fs = SimFs::new(7);
        simulated_source(&fs);
        fs.cut_power_after(fs.ops() + cut);
        let finished = backup(&fs).is_ok();
        let image = fs.crash_image(cut);
        let dest = Path::new("/dest");
        let vfs: Arc<dyn powerd::storage::io::Vfs> = Arc::new(image.clone());
        if !vfs.is_dir(dest) || vfs.list(dest).unwrap().is_empty() {
            assert!(!finished, "cut {cut}: a finished backup vanished");
            absent += 1;
            continue;
        }
        match Engine::open_with(Arc::clone(&vfs), dest, EngineOptions::default()) {
            Err(StorageError::IncompleteBackup { .. }) => {
                let report = check_with(&image, dest).unwrap();
                assert!(
                    !report.is_ok(),
                    "cut {cut}: check passed an incomplete backup"
                );
                incomplete += 1;
            }
            Err(e) => panic!("cut {cut}: {e}"),
            Ok(engine) => {
                assert_eq!(every_bucket(&engine), expected, "cut {cut}");
                drop(engine);
                let report = check_with(&image, dest).unwrap();
                assert!(report.is_ok(), "cut {cut}: {report}");
                complete += 1;
            }
        }
    }
    eprintln!(
        "{total} operations in a backup; power cut after each: {incomplete} incomplete (refused), \
         {complete} complete, {absent} without a backup directory"
    );
    assert!(incomplete > 0 && complete > 0);
}
