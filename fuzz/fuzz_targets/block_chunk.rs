//! `cargo +nightly fuzz run block_chunk`: see `checks::block_chunk` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::block_chunk(data));
