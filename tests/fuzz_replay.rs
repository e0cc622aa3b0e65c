//! Replays the fuzz seeds on stable: every file under `fuzz/seeds/<target>/`
//! (hand-made inputs, minimized corpora and crash reproducers) goes through
//! the same check as the cargo-fuzz target (`fuzz/fuzz_targets/checks.rs`),
//! so a decoder that once panicked or broke a property on an input cannot
//! silently do so again. Running the fuzzers themselves: fuzz/README.md.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../fuzz/fuzz_targets/checks.rs"]
mod checks;

fn seed_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target)
}

/// Runs every input, then fails once naming each input that failed.
fn replay(inputs: Vec<(String, &str, Vec<u8>)>) {
    let mut failures = Vec::new();
    for (name, target, bytes) in &inputs {
        let outcome = catch_unwind(AssertUnwindSafe(|| checks::check(target, bytes)));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{name}: {message}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fuzz inputs failed:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}

#[test]
fn checked_in_seeds_pass_their_checks() {
    let mut inputs = Vec::new();
    for target in checks::TARGETS {
        let dir = seed_dir(target);
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        let before = inputs.len();
        for entry in entries {
            let path = entry.expect("seed directory entry").path();
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            inputs.push((path.display().to_string(), target, bytes));
        }
        assert!(inputs.len() > before, "no seeds in {}", dir.display());
    }
    replay(inputs);
}

#[test]
fn hand_made_seeds_pass_their_checks() {
    let inputs = checks::hand_made_seeds()
        .into_iter()
        .map(|(target, name, bytes)| (format!("{target}/{name}"), target, bytes))
        .collect();
    replay(inputs);
}

/// The hand-made seeds reach the decoders' accepting paths, so the fuzzers
/// start from valid data rather than having to find a CRC.
#[test]
fn hand_made_seeds_are_valid_where_meant_to_be() {
    use powerd::storage::fuzzing::{decode_spans, parse_chunk, Reader};
    for (target, name, bytes) in checks::hand_made_seeds() {
        let accepted = match target {
            "segment_decode" | "span_codec" if name.ends_with(".bin") => continue,
            "segment_decode" => {
                checks::scans_whole_frames(&bytes) == if name.contains("torn") { 1 } else { 2 }
            }
            "span_codec" => {
                decode_spans(&mut Reader::new(&bytes), 0, 1 << 10, &mut Vec::new()).is_ok()
            }
            "block_chunk" if name.ends_with(".bin") => continue,
            "block_chunk" => parse_chunk(&bytes, false).is_ok(),
            _ => powerd::wire::parse_post_body(&bytes).is_ok() != name.contains("-bad-"),
        };
        assert!(accepted, "{target}/{name}");
    }
}

/// Regenerates the hand-made seeds:
/// `cargo test --test tests fuzz_replay::write_hand_made_seeds -- --ignored`.
#[test]
#[ignore = "writes files under fuzz/seeds/"]
fn write_hand_made_seeds() {
    for (target, name, bytes) in checks::hand_made_seeds() {
        let dir = seed_dir(target);
        std::fs::create_dir_all(&dir).expect("create seed directory");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}
