//! `cargo +nightly fuzz run rollup_file`: see `checks::rollup_file` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::rollup_file(data));
