//! Power cuts at every I/O operation, on the simulated file system
//! (`powerd::storage::sim`).
//!
//! Guarantee under test: whatever instant the power goes, the directory a
//! restart finds opens, holds every acknowledged write, holds the write that
//! was in flight wholly or not at all, has a rollup index equal to brute
//! force, checks clean with `powerd check`'s code, and keeps working: more
//! writes, a checkpoint and a restart after it change nothing of the above.
//!
//! How: a deterministic random workload per seed (writes and overwrites over
//! a few ships, checkpoints, compaction, restarts; 4 KiB segments, so the log
//! rolls over often) runs once to count its file operations, then once per
//! operation with the power cut right after it (a fault countdown, as
//! SQLite's crash tests do). The simulated disk keeps what was synced; of
//! unsynced writes it keeps a random prefix, each 512-byte sector old or new;
//! each unsynced create, rename and removal may or may not have happened.
//! One cut in four also cuts the power again in the middle of the recovery.
//!
//! Every failure names its seed and cut and replays exactly:
//! `POWERCUT_SEED=<seed> POWERCUT_CUT=<cut> cargo test --release --test tests powercut`.
//! More seeds than CI runs: `POWERCUT_SEEDS=500 cargo test --release --test
//! tests powercut -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use powerd::model::{Span, BUCKET_SECONDS};
use powerd::storage::sim::{SimFs, SplitMix64};
use powerd::storage::timeline::Timeline;
use powerd::storage::{check_with, Engine, EngineOptions, StorageError};

use crate::rollup::{brute_fleet, brute_top};

const DIR: &str = "/data";
/// 2024-01-01T00:00:00Z; the workload writes in the two days after it.
const EPOCH_S: i64 = 1_704_067_200;
const HORIZON_S: i64 = 2 * 86_400;
const SHIPS: u64 = 4;
/// Seeds CI runs; `POWERCUT_SEEDS` asks for more.
const DEFAULT_SEEDS: u64 = 16;

fn options() -> EngineOptions {
    EngineOptions {
        checkpoint_log_bytes: 6 * 1024,
        checkpoint_memtable_spans: 1 << 20,
        compact_below_live_fraction: 0.5,
        segment_bytes: 4096,
        rollup_index: true,
        inline_background: true,
    }
}

#[derive(Clone, Debug)]
enum Step {
    Write { ship: u64, spans: Vec<Span> },
    Checkpoint,
    Restart,
}

/// A batch of spans as a POST makes them: a start anywhere, a spacing,
/// some readings skipped, powers with a few decimals or none.
fn spans(rng: &mut SplitMix64) -> Vec<Span> {
    let spacing = [300, 900, 3600, 1 + rng.below(2000) as i64][rng.below(4) as usize];
    let count = 1 + rng.below(40) as i64;
    let mut t = EPOCH_S + rng.below((HORIZON_S - count * spacing).max(1) as u64) as i64;
    let mut out = Vec::new();
    for _ in 0..count {
        if rng.below(8) == 0 {
            t += spacing; // a gap
            continue;
        }
        let power_kw = match rng.below(3) {
            0 => rng.below(200) as f64,
            1 => rng.below(2_000_000) as f64 / 1000.0,
            _ => rng.below(1 << 20) as f64 / 7.0,
        };
        out.push(Span {
            start_s: t,
            end_s: t + spacing,
            power_kw,
        });
        t += spacing;
    }
    if out.is_empty() {
        out.push(Span {
            start_s: t,
            end_s: t + 900,
            power_kw: 1.5,
        });
    }
    out
}

fn workload(seed: u64) -> Vec<Step> {
    let mut rng = SplitMix64(seed);
    let steps = 30 + rng.below(30);
    (0..steps)
        .map(|_| match rng.below(14) {
            0 => Step::Checkpoint,
            1 => Step::Restart,
            _ => Step::Write {
                ship: rng.below(SHIPS),
                spans: spans(&mut rng),
            },
        })
        .collect()
}

/// What the engine must hold: every acknowledged write, in order.
#[derive(Clone, Default)]
struct Model {
    ships: BTreeMap<u64, Timeline>,
}

impl Model {
    fn apply(&mut self, ship: u64, spans: &[Span]) {
        self.ships.entry(ship).or_default().overwrite_all(spans);
    }
}

/// Spans with adjacent equal powers merged: two timelines hold the same
/// history exactly when these are equal, however their time was split.
fn canonical(spans: impl IntoIterator<Item = Span>) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for span in spans {
        match out.last_mut() {
            Some(last) if last.end_s == span.start_s && last.power_kw == span.power_kw => {
                last.end_s = span.end_s
            }
            _ => out.push(span),
        }
    }
    out
}

struct Run {
    fs: SimFs,
    model: Model,
    /// The write that was being committed when the power went.
    in_flight: Option<(u64, Vec<Span>)>,
    steps_done: usize,
}

fn open(fs: &SimFs) -> Result<Engine, StorageError> {
    Engine::open_with(Arc::new(fs.clone()), Path::new(DIR), options())
}

/// Runs `steps` on a fresh simulated disk, cutting the power after `cut`
/// operations if given; stops at the first step the cut makes fail.
fn run(seed: u64, steps: &[Step], cut: Option<u64>) -> Run {
    let fs = SimFs::new(seed);
    fs.mkdir_durable(Path::new(DIR));
    if let Some(cut) = cut {
        fs.cut_power_after(cut);
    }
    let mut model = Model::default();
    let mut in_flight = None;
    let mut steps_done = 0;
    let mut engine = match open(&fs) {
        Ok(engine) => Some(engine),
        Err(e) => {
            assert!(!fs.powered(), "seed {seed}: open failed with power on: {e}");
            None
        }
    };
    while let (Some(current), Some(step)) = (&engine, steps.get(steps_done)) {
        match step {
            Step::Write { ship, spans } => match current.write(*ship, spans.clone()) {
                Ok(()) => model.apply(*ship, spans),
                Err(e) => {
                    assert!(
                        !fs.powered(),
                        "seed {seed}: write failed with power on: {e}"
                    );
                    in_flight = Some((*ship, spans.clone()));
                    break;
                }
            },
            Step::Checkpoint => {
                if let Err(e) = current.checkpoint() {
                    assert!(!fs.powered(), "seed {seed}: checkpoint failed: {e}");
                    break;
                }
            }
            Step::Restart => {
                engine = None;
                match open(&fs) {
                    Ok(reopened) => engine = Some(reopened),
                    Err(e) => {
                        assert!(!fs.powered(), "seed {seed}: reopen failed: {e}");
                        break;
                    }
                }
            }
        }
        steps_done += 1;
        if !fs.powered() {
            break;
        }
    }
    drop(engine);
    Run {
        fs,
        model,
        in_flight,
        steps_done,
    }
}

/// Whether the engine holds exactly `model` (ship by ship, every second).
fn holds(engine: &Engine, model: &Model) -> Result<(), String> {
    let mut ships: BTreeSet<u64> = model.ships.keys().copied().collect();
    ships.extend(engine.ships());
    for ship in ships {
        let stored = engine
            .read_spans(ship, i64::MIN / 2, i64::MAX / 2)
            .map_err(|e| format!("reading ship {ship}: {e}"))?
            .unwrap_or_default();
        let expected = model
            .ships
            .get(&ship)
            .map(|t| canonical(t.iter()))
            .unwrap_or_default();
        if canonical(stored.iter().copied()) != expected {
            return Err(format!(
                "ship {ship}: stored {} spans, expected {} (first difference at {:?})",
                stored.len(),
                expected.len(),
                canonical(stored.iter().copied())
                    .iter()
                    .zip(&expected)
                    .find(|(a, b)| a != b)
            ));
        }
    }
    Ok(())
}

/// The rollup index against brute force over the whole horizon and an
/// unaligned window.
fn index_agrees(engine: &Engine) -> Result<(), String> {
    let first = EPOCH_S / BUCKET_SECONDS - 10;
    let end = (EPOCH_S + HORIZON_S) / BUCKET_SECONDS + 50;
    for (from, to) in [(first, end), (first + 37, first + 150)] {
        for step in [1, 4, 96] {
            let index = engine.fleet(from, to, step).ok_or("the index is off")?;
            if index != brute_fleet(engine, from, to, step) {
                return Err(format!("fleet [{from}, {to}) step {step} differs"));
            }
        }
        let top = engine
            .top_users(from, to, SHIPS as usize)
            .map_err(|e| e.to_string())?
            .ok_or("the index is off")?;
        if top != brute_top(engine, from, to, SHIPS as usize) {
            return Err(format!("top users of [{from}, {to}) differ"));
        }
    }
    Ok(())
}

fn check_clean(fs: &SimFs) -> Result<(), String> {
    let report = check_with(fs, Path::new(DIR)).map_err(|e| e.to_string())?;
    if report.is_ok() {
        Ok(())
    } else {
        Err(format!("powerd check: {report}"))
    }
}

/// What one crash point showed, for the summary.
#[derive(Default)]
struct Tally {
    crash_points: u64,
    in_flight_kept: u64,
    in_flight_lost: u64,
    nested_cuts: u64,
}

/// Recovers `fs` (a crash image) and holds it to the guarantee; then writes
/// more, checkpoints, restarts, and holds it again. `Err` says what broke.
fn verify(
    seed: u64,
    cut: u64,
    fs: SimFs,
    model: &Model,
    in_flight: &Option<(u64, Vec<Span>)>,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut rng = SplitMix64(seed ^ cut.rotate_left(17));
    check_clean(&fs).map_err(|e| format!("before recovery: {e}"))?;
    let mut fs = fs;
    if rng.below(4) == 0 {
        // The power goes again, during the recovery.
        let before = fs.ops();
        fs.cut_power_after(before + 1 + rng.below(40));
        let engine = open(&fs);
        drop(engine);
        if !fs.powered() {
            tally.nested_cuts += 1;
            fs = fs.crash_image(rng.next_u64());
            check_clean(&fs).map_err(|e| format!("after a cut during recovery: {e}"))?;
        } else {
            fs.cut_power_after(u64::MAX);
        }
    }
    let engine = open(&fs).map_err(|e| format!("recovery refused: {e}"))?;
    let mut expected = model.clone();
    if let Some((ship, spans)) = in_flight {
        let mut with = model.clone();
        with.apply(*ship, spans);
        match (holds(&engine, model), holds(&engine, &with)) {
            (Ok(()), _) => tally.in_flight_lost += 1,
            (_, Ok(())) => {
                tally.in_flight_kept += 1;
                expected = with;
            }
            (Err(without), Err(_)) => {
                return Err(format!(
                    "the in-flight write is neither wholly there nor wholly absent: {without}"
                ))
            }
        }
    } else {
        holds(&engine, model).map_err(|e| format!("after recovery: {e}"))?;
    }
    index_agrees(&engine).map_err(|e| format!("after recovery: {e}"))?;

    // The recovered directory keeps working.
    for _ in 0..3 {
        let ship = rng.below(SHIPS);
        let spans = spans(&mut rng);
        engine
            .write(ship, spans.clone())
            .map_err(|e| format!("write after recovery: {e}"))?;
        expected.apply(ship, &spans);
    }
    engine
        .checkpoint()
        .map_err(|e| format!("checkpoint after recovery: {e}"))?;
    let ship = rng.below(SHIPS);
    let more = spans(&mut rng);
    engine
        .write(ship, more.clone())
        .map_err(|e| format!("write after the checkpoint: {e}"))?;
    expected.apply(ship, &more);
    drop(engine);
    check_clean(&fs).map_err(|e| format!("after more writes: {e}"))?;
    let engine = open(&fs).map_err(|e| format!("restart after recovery refused: {e}"))?;
    holds(&engine, &expected).map_err(|e| format!("after a second restart: {e}"))?;
    index_agrees(&engine).map_err(|e| format!("after a second restart: {e}"))?;
    Ok(())
}

/// Runs every crash point of one seed; panics naming the first failure.
fn crash_every_operation(seed: u64, only_cut: Option<u64>) -> Tally {
    let steps = workload(seed);
    let whole = run(seed, &steps, None);
    assert_eq!(
        whole.steps_done,
        steps.len(),
        "seed {seed}: the uncut run stopped early"
    );
    let total = whole.fs.ops();
    let mut tally = Tally::default();
    let cuts: Vec<u64> = match only_cut {
        Some(cut) => vec![cut],
        None => (0..=total).collect(),
    };
    for cut in cuts {
        let crashed = run(seed, &steps, Some(cut));
        let image = crashed.fs.crash_image(seed ^ cut);
        if let Err(what) = verify(
            seed,
            cut,
            image,
            &crashed.model,
            &crashed.in_flight,
            &mut tally,
        ) {
            panic!(
                "seed {seed}, power cut after operation {cut} of {total} (step {} of {}): {what}\n\
                 last operations before the cut:\n  {}\n\
                 replay: POWERCUT_SEED={seed} POWERCUT_CUT={cut} cargo test --release --test tests powercut",
                crashed.steps_done,
                steps.len(),
                crashed.fs.trace().join("\n  ")
            );
        }
        tally.crash_points += 1;
    }
    tally
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

#[test]
fn every_power_cut_leaves_a_directory_that_recovers_every_acknowledged_write() {
    let seeds: Vec<u64> = match env("POWERCUT_SEED") {
        Some(seed) => vec![seed],
        None => (1..=env("POWERCUT_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    let only_cut = env("POWERCUT_CUT");
    // Two threads: the machines CI runs on have two cores.
    let seeds = Arc::new(std::sync::Mutex::new(seeds.into_iter()));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let seeds = Arc::clone(&seeds);
            std::thread::spawn(move || {
                let mut total = Tally::default();
                let mut count = 0;
                loop {
                    let Some(seed) = seeds.lock().expect("seed list").next() else {
                        break;
                    };
                    let tally = crash_every_operation(seed, only_cut);
                    total.crash_points += tally.crash_points;
                    total.in_flight_kept += tally.in_flight_kept;
                    total.in_flight_lost += tally.in_flight_lost;
                    total.nested_cuts += tally.nested_cuts;
                    count += 1;
                }
                (count, total)
            })
        })
        .collect();
    let mut seeds_run = 0;
    let mut total = Tally::default();
    for worker in workers {
        let (count, tally) = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        seeds_run += count;
        total.crash_points += tally.crash_points;
        total.in_flight_kept += tally.in_flight_kept;
        total.in_flight_lost += tally.in_flight_lost;
        total.nested_cuts += tally.nested_cuts;
    }
    eprintln!(
        "power cuts: {seeds_run} seeds, {} crash points, {} cut again during recovery; \
         in-flight writes kept {} / lost {}",
        total.crash_points, total.nested_cuts, total.in_flight_kept, total.in_flight_lost
    );
    assert!(total.crash_points > 0);
    if only_cut.is_none() {
        assert!(
            total.in_flight_kept > 0 && total.in_flight_lost > 0,
            "the crash images should sometimes keep and sometimes lose the write in flight"
        );
    }
}

/// Issue 9's first finding: a write that filled the newest segment to within
/// 1–15 bytes of its end, then a write that moved the log on, then
/// `kill -9`, left a directory the next start called corrupted. Every
/// remainder a segment can be left with, from 0 to more than a frame: the
/// start after the kill, and the start after more writes, must succeed with
/// every write.
#[test]
fn a_segment_filled_to_its_last_bytes_rolls_over_and_restarts_after_a_kill() {
    let spans = |i: i64| -> Vec<Span> {
        (0..8)
            .map(|k| Span {
                start_s: EPOCH_S + (i * 8 + k) * 900,
                end_s: EPOCH_S + (i * 8 + k + 1) * 900,
                power_kw: (i * 8 + k) as f64 + 0.5,
            })
            .collect()
    };
    for extra in 0..96u64 {
        let fs = SimFs::new(extra);
        fs.mkdir_durable(Path::new(DIR));
        let options = EngineOptions {
            segment_bytes: 1024 + extra,
            ..options()
        };
        let open = |fs: &SimFs| {
            Engine::open_with(Arc::new(fs.clone()), Path::new(DIR), options.clone())
                .unwrap_or_else(|e| panic!("segment of {} bytes: {e}", 1024 + extra))
        };
        let mut model = Model::default();
        let mut fs = fs;
        for round in 0..3 {
            let engine = open(&fs);
            holds(&engine, &model).unwrap_or_else(|e| panic!("extra {extra}, round {round}: {e}"));
            for i in round * 20..round * 20 + 20 {
                engine.write(1, spans(i)).expect("write");
                model.apply(1, &spans(i));
            }
            // kill -9: the page cache survives, the process does not.
            let image = fs.kill_image();
            drop(engine);
            fs = image;
            check_clean(&fs).unwrap_or_else(|e| panic!("extra {extra}, round {round}: {e}"));
        }
        holds(&open(&fs), &model).unwrap_or_else(|e| panic!("extra {extra}: {e}"));
    }
}
