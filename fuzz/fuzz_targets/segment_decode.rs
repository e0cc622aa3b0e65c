//! `cargo +nightly fuzz run segment_decode`: see `checks::segment_decode` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::segment_decode(data));
