//! `lockcheck::tokio` on the multi-thread runtime: every async finding reported, every
//! look-alike silent (the scenarios are in `async/scenarios.rs`).
// The scenarios hold sync guards across `.await` on purpose: that is what lockcheck reports.
#![allow(clippy::await_holding_lock)]

#[path = "support/rt.rs"]
mod rt;
mod support;

const FL: rt::Flavor = rt::Flavor::MultiThread;

include!("async/scenarios.rs");
