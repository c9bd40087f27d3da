//! cargo-fuzz entry point: `cargo +nightly fuzz run json` (see `lockcheck_fuzz::json`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lockcheck_fuzz::json(data));
