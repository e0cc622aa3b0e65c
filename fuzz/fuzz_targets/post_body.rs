//! `cargo +nightly fuzz run post_body`: see `checks::post_body` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::post_body(data));
