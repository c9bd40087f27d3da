//! cargo-fuzz entry point: `cargo +nightly fuzz run analyze` (see `lockcheck_fuzz::analyze`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lockcheck_fuzz::analyze(data));
