//! cargo-fuzz entry point: `cargo +nightly fuzz run rapidbin` (see `lockcheck_fuzz::rapidbin`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lockcheck_fuzz::rapidbin(data));
