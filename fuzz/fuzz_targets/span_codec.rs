//! `cargo +nightly fuzz run span_codec`: see `checks::span_codec` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::span_codec(data));
