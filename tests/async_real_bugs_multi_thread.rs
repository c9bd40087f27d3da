//! Real async deadlock bugs from public projects, reproduced on the multi-thread runtime: each
//! reported with its kind and lines, each look-alike silent (the scenarios and their sources are
//! in `async/real_bugs.rs`).
// The scenarios hold sync guards across `.await` on purpose: that is what lockcheck reports.
#![allow(clippy::await_holding_lock)]

#[path = "support/rt.rs"]
mod rt;
mod support;

const FL: rt::Flavor = rt::Flavor::MultiThread;

include!("async/real_bugs.rs");
