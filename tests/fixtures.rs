//! Data directories written by earlier builds open with today's binary and
//! answer as those builds did; files of a newer format are refused.
//!
//! Every directory under `tests/fixtures/` that holds an `answers.json` is
//! a fixture (so one for a future format needs no code here): `data/` was
//! written by an earlier build (`tests/fixtures/make_fixture.py`, which
//! ends it with `kill -9`, so the last writes are only in the log), and
//! `answers.json` holds each request asked of that build with the status
//! and body it answered. On a copy of `data/`, today's binary must pass
//! `powerd check`, answer every request with the same status and the same
//! JSON — bucket datetimes, coverage, fleet ship counts, rankings and ids
//! exactly, kWh values (`value`, `sum`, `avg`, `consumption`) within 10⁻⁹
//! relative (10⁻¹² absolute near zero) — and answer the same again after a
//! graceful stop (a checkpoint that folds the old log into blocks of
//! today's format) and a restart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{day_body, powerd, Client, Server};
use crate::util::TempDir;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Keys whose numbers are kWh: compared within [`RELATIVE`].
const KWH_KEYS: [&str; 4] = ["value", "sum", "avg", "consumption"];
const RELATIVE: f64 = 1e-9;
const ABSOLUTE: f64 = 1e-12;
/// Mismatches listed per fixture and round before the rest are counted.
const SHOWN: usize = 30;

/// The fixture directories (those with an `answers.json`), by name.
fn fixtures() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .expect("tests/fixtures is listable")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.join("answers.json").is_file())
        .collect();
    found.sort();
    found
}

/// One recorded request: its path and query, and what the old build said.
struct Answer {
    path: String,
    status: u16,
    body: Value,
}

fn answers(fixture: &Path) -> (String, Vec<Answer>) {
    let text = std::fs::read_to_string(fixture.join("answers.json")).expect("answers.json");
    let json: Value = serde_json::from_str(&text).expect("answers.json is JSON");
    let made_by = json["made_by"].as_str().unwrap_or_default().to_string();
    let answers = json["answers"]
        .as_array()
        .expect("answers is an array")
        .iter()
        .map(|answer| Answer {
            path: answer["path"].as_str().expect("path").to_string(),
            status: answer["status"].as_u64().expect("status") as u16,
            body: answer["body"].clone(),
        })
        .collect();
    (made_by, answers)
}

/// Copies a directory tree (a fixture onto a scratch directory).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Where `expected` and `got` differ, appended to `out` as one line each.
fn compare(expected: &Value, got: &Value, at: &str, key: &str, out: &mut Vec<String>) {
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => {
            let (ek, gk): (Vec<_>, Vec<_>) = (e.keys().collect(), g.keys().collect());
            if ek != gk {
                out.push(format!("{at}: keys {ek:?}, now {gk:?}"));
            }
            for (k, v) in e {
                if let Some(w) = g.get(k) {
                    compare(v, w, &format!("{at}.{k}"), k, out);
                }
            }
        }
        (Value::Array(e), Value::Array(g)) => {
            if e.len() != g.len() {
                out.push(format!("{at}: {} items, now {}", e.len(), g.len()));
            }
            for (i, (v, w)) in e.iter().zip(g).enumerate() {
                // Name a bucket or interval by its datetime, a ranked ship by its id.
                let name = v
                    .get("datetime")
                    .or_else(|| v.get("spaceship_id"))
                    .map_or(i.to_string(), |n| format!("{i} {n}"));
                compare(v, w, &format!("{at}[{name}]"), key, out);
            }
        }
        (Value::Number(e), Value::Number(g)) if KWH_KEYS.contains(&key) => {
            let (e, g) = (e.as_f64().expect("f64"), g.as_f64().expect("f64"));
            let close =
                (e - g).abs() <= RELATIVE * e.abs().max(g.abs()) || (e - g).abs() <= ABSOLUTE;
            if !close {
                out.push(format!("{at}: {e}, now {g}"));
            }
        }
        _ => {
            if expected != got {
                out.push(format!("{at}: {expected}, now {got}"));
            }
        }
    }
}

/// Asks every recorded request; the differences from the recorded answers.
fn differences(server: &Server, answers: &[Answer]) -> Vec<String> {
    let mut client = Client::connect(server.address).expect("connect");
    let mut out = Vec::new();
    for answer in answers {
        let (status, body) = client
            .request("GET", &answer.path, b"")
            .unwrap_or_else(|e| panic!("GET {}: {e}", answer.path));
        if status != answer.status {
            out.push(format!(
                "{}: status {}, now {status}",
                answer.path, answer.status
            ));
            continue;
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(got) => compare(&answer.body, &got, &answer.path, "", &mut out),
            Err(e) => out.push(format!("{}: not JSON now ({e})", answer.path)),
        }
    }
    out
}

fn check_passes(data: &Path, when: &str) -> Result<(), String> {
    let check = powerd(&["check"], data);
    if check.status.success() {
        return Ok(());
    }
    Err(format!(
        "powerd check {when} exited {}:\n{}{}",
        check.status,
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    ))
}

/// Opens a copy of `fixture` twice (as written, then as today's code left
/// it after a graceful stop); a report of what went wrong, if anything.
fn open_and_ask(fixture: &Path) -> Result<(), String> {
    let name = fixture.file_name().expect("name").to_string_lossy();
    let (made_by, answers) = answers(fixture);
    if answers.is_empty() {
        return Err(format!("{name}: answers.json has no answers"));
    }
    let tmp = TempDir::new(&format!("fixture-{name}"));
    let data = tmp.path().join("data");
    copy_dir(&fixture.join("data"), &data);
    check_passes(&data, "on the fixture as written")?;

    let mut report = String::new();
    for round in ["as written", "after a graceful stop and a restart"] {
        let stderr = tmp.path().join("stderr");
        let log = std::fs::File::create(&stderr).expect("stderr file");
        let server = Server::start_logging_to(&data, &[], log);
        let differences = differences(&server, &answers);
        let status = server.terminate();
        if !differences.is_empty() {
            let _ = writeln!(
                report,
                "{name} (made by {made_by}), {round}: {} differences from its answers.json:",
                differences.len()
            );
            for line in differences.iter().take(SHOWN) {
                let _ = writeln!(report, "  {line}");
            }
            if differences.len() > SHOWN {
                let _ = writeln!(report, "  ... and {} more", differences.len() - SHOWN);
            }
        }
        if !status.success() {
            let log = std::fs::read_to_string(&stderr).unwrap_or_default();
            let _ = writeln!(
                report,
                "{name}, {round}: a graceful stop exited {status}:\n{log}"
            );
        }
        if let Err(e) = check_passes(&data, &format!("{round} (then stopped)")) {
            let _ = writeln!(report, "{name}: {e}");
        }
        if !report.is_empty() {
            return Err(report);
        }
    }
    Ok(())
}

#[test]
fn every_fixture_opens_and_answers_as_the_build_that_wrote_it() {
    let fixtures = fixtures();
    assert!(
        fixtures.len() >= 3,
        "tests/fixtures holds the fixtures of every earlier format: {fixtures:?}"
    );
    let failures: Vec<String> = fixtures
        .iter()
        .filter_map(|fixture| open_and_ask(fixture).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What a `powerd` command exited with and printed; `None` if it was still
/// running after `limit` (it is killed then).
fn run_briefly(command: &mut Command, limit: Duration) -> Option<(bool, String)> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("powerd runs");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            let output = child.wait_with_output().expect("output");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            return Some((output.status.success(), text));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Sets the version field (bytes 8..12) of the file at `path` to one more
/// than it is and recomputes the CRC over `crc_covers` stored at `crc_at`
/// (`None`: the file's last 4 bytes, over everything before them).
/// Returns (old, new) version.
fn bump_version(path: &Path, crc_covers: Option<(usize, usize)>) -> (u32, u32) {
    let mut bytes = std::fs::read(path).expect("read");
    let old = u32_at(&bytes, 8);
    bytes[8..12].copy_from_slice(&(old + 1).to_le_bytes());
    let (covered, at) = crc_covers.unwrap_or((bytes.len() - 4, bytes.len() - 4));
    let crc = crc32fast::hash(&bytes[..covered]);
    bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, bytes).expect("write");
    (old, old + 1)
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

#[test]
fn files_of_a_newer_version_are_refused_naming_both_versions() {
    // A directory this build wrote: one block file, a log segment and a
    // MANIFEST, each of the version this build writes.
    let tmp = TempDir::new("newer-version");
    let written = tmp.path().join("written");
    let server = Server::start(&written);
    let mut client = Client::connect(server.address).expect("connect");
    let body = day_body(7, "kWh", 1_548_288_000, |i| format!("{}.25", i % 7));
    let (status, _) = client.request("POST", "/data", &body).expect("post");
    assert_eq!(status, 200);
    assert!(server.terminate().success(), "a graceful stop checkpoints");

    // (what, noun in the message, the files, where the CRC is: covered bytes and offset)
    type Case = (
        &'static str,
        &'static str,
        fn(&Path) -> Vec<PathBuf>,
        Option<(usize, usize)>,
    );
    let cases: [Case; 3] = [
        (
            "block files",
            "block",
            |dir| files_ending(&dir.join("blocks"), ".blk"),
            Some((24, 24)),
        ),
        (
            "log segments",
            "segment",
            |dir| files_ending(&dir.join("log"), ".log"),
            Some((40, 40)),
        ),
        (
            "MANIFEST",
            "manifest",
            |dir| vec![dir.join("MANIFEST")],
            None,
        ),
    ];
    for (what, noun, files, crc) in cases {
        let dir = tmp.path().join(noun);
        copy_dir(&written, &dir);
        let files = files(&dir);
        assert!(!files.is_empty(), "the directory has {what}");
        let versions: Vec<(u32, u32)> = files.iter().map(|f| bump_version(f, crc)).collect();
        let (current, newer) = versions[0];
        assert!(
            versions.iter().all(|v| *v == (current, newer)),
            "{what}: {versions:?}"
        );

        let serve = run_briefly(
            Command::new(env!("CARGO_BIN_EXE_powerd"))
                .args([
                    "serve",
                    "--log-level",
                    "warn",
                    "--listen",
                    "127.0.0.1:0",
                    "--data-dir",
                ])
                .arg(&dir),
            Duration::from_secs(30),
        );
        let check = run_briefly(
            Command::new(env!("CARGO_BIN_EXE_powerd"))
                .arg("check")
                .arg("--data-dir")
                .arg(&dir),
            Duration::from_secs(30),
        );
        for (command, outcome) in [("serve", serve), ("check", check)] {
            let (success, text) = outcome
                .unwrap_or_else(|| panic!("{command} still ran on {what} of version {newer}"));
            assert!(
                !success,
                "{command} accepted {what} of version {newer}:\n{text}"
            );
            assert!(
                text.contains(&format!("{noun} version {newer}")),
                "{command} names the file's version ({noun} version {newer}):\n{text}"
            );
            let readable = text
                .split("this build reads")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .unwrap_or_else(|| panic!("{command} names the versions it reads:\n{text}"));
            assert!(
                readable.contains(&current.to_string()),
                "{command}: the versions read ({readable}) include {current}:\n{text}"
            );
        }
    }
}

// ---- The upgrade under power cuts (simulated file system) -----------------

/// Every fixture's `data/` on a fresh simulated disk at `/data`, durable.
fn simulated(fixture: &Path) -> powerd::storage::sim::SimFs {
    let fs = powerd::storage::sim::SimFs::new(11);
    fn load(fs: &powerd::storage::sim::SimFs, from: &Path, to: &Path) {
        use powerd::storage::io::{OpenMode, Vfs};
        fs.mkdir_durable(to);
        for entry in std::fs::read_dir(from).expect("list") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                load(fs, &entry.path(), &target);
            } else {
                let bytes = std::fs::read(entry.path()).expect("read");
                let file = fs.open(&target, OpenMode::CreateNew).expect("create");
                file.write_at(0, &bytes).expect("write");
                file.sync().expect("sync");
            }
        }
        fs.sync_dir(to).expect("sync the directory");
    }
    load(&fs, &fixture.join("data"), Path::new("/data"));
    fs
}

type Everything = Vec<(u64, Vec<powerd::model::Bucket>)>;

/// Every bucket of every ship, and the rollup's fleet per day.
fn everything(
    engine: &powerd::storage::Engine,
) -> (Everything, Vec<powerd::storage::FleetInterval>) {
    let mut ships = engine.ships();
    ships.sort_unstable();
    let buckets = ships
        .into_iter()
        .map(|ship| {
            let all = powerd::query::ship_buckets(engine, ship, i64::MIN / 900, i64::MAX / 900)
                .expect("read")
                .unwrap_or_default();
            (ship, all)
        })
        .collect();
    let fleet = powerd::query::fleet(engine, i64::MIN / 900, i64::MAX / 900, 96).expect("fleet");
    (buckets, fleet)
}

/// The upgrade of each fixture (its first start, which replays the log
/// and checkpoints, then checkpoints until no older block is left — what
/// `powerd upgrade` does) with the power cut after every file operation
/// in turn: what a restart finds opens, checks clean, holds every bucket
/// the uncut upgrade holds, and finishes the upgrade.
#[test]
fn an_upgrade_cut_at_any_operation_loses_nothing_and_carries_on() {
    use powerd::storage::{check_with, Engine, EngineOptions};
    use std::sync::Arc;
    let options = EngineOptions {
        inline_background: true,
        ..EngineOptions::default()
    };
    let upgrade =
        |fs: &powerd::storage::sim::SimFs| -> Result<Engine, powerd::storage::StorageError> {
            let engine =
                Engine::open_with(Arc::new(fs.clone()), Path::new("/data"), options.clone())?;
            while engine.stats().older_block_files > 0 {
                engine.checkpoint()?;
            }
            Ok(engine)
        };
    for fixture in fixtures() {
        let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
        let fs = simulated(&fixture);
        let before = fs.ops();
        let engine = upgrade(&fs).expect("an uncut upgrade");
        let expected = everything(&engine);
        assert!(!expected.0.is_empty());
        drop(engine);
        let total = fs.ops() - before;
        for cut in 0..total {
            let fs = simulated(&fixture);
            fs.cut_power_after(fs.ops() + cut);
            let _ = upgrade(&fs);
            let image = fs.crash_image(cut);
            let engine =
                upgrade(&image).unwrap_or_else(|e| panic!("{name}, cut {cut} of {total}: {e}"));
            assert_eq!(
                everything(&engine),
                expected,
                "{name}, cut {cut} of {total}"
            );
            assert_eq!(engine.stats().older_block_files, 0);
            drop(engine);
            let report = check_with(&image, Path::new("/data")).expect("check");
            assert!(report.is_ok(), "{name}, cut {cut}: {report}");
        }
        eprintln!("{name}: upgrade cut after each of its {total} file operations; nothing lost");
    }
}
