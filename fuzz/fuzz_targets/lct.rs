//! cargo-fuzz entry point: `cargo +nightly fuzz run lct` (see `lockcheck_fuzz::lct`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lockcheck_fuzz::lct(data));
