//! lockcheck's offline analyzer: reads traces (lockcheck JSON Lines, RAPID STD, RAPID binary),
//! merges them, finds lock-order violations, and suggests a hierarchy and timeouts.
#![warn(missing_docs, rust_2018_idioms)]

pub mod read;
