//! `lockcheck::tokio` on the current-thread runtime: every async finding reported, every
//! look-alike silent (the scenarios are in `async/scenarios.rs`).

#[path = "support/rt.rs"]
mod rt;
mod support;

const FL: rt::Flavor = rt::Flavor::CurrentThread;

include!("async/scenarios.rs");
