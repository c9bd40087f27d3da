//! cargo-fuzz entry point: `cargo +nightly fuzz run std` (see `lockcheck_fuzz::std_text`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lockcheck_fuzz::std_text(data));
