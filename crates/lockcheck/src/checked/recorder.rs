//! Trace recording (`LOCKCHECK_TRACE=path`). Placeholder until the recorder lands.
#![allow(dead_code, unused_variables)]

use super::class::{ClassInfo, Ids};
use super::report::Violation;
use lockcheck_core::trace::{How, Mode};
use std::panic::Location;

#[inline]
pub(crate) fn recording() -> bool {
    false
}
pub(crate) fn on_class(c: u32, info: &ClassInfo) {}
pub(crate) fn on_thread(t: u64) {}
pub(crate) fn on_acquire(
    ids: Ids,
    mode: Mode,
    how: How,
    site: &'static Location<'static>,
    wait_ns: u64,
) {
}
pub(crate) fn on_fail(
    ids: Ids,
    mode: Mode,
    how: How,
    site: &'static Location<'static>,
    wait_ns: u64,
) {
}
pub(crate) fn on_release(ids: Ids, hold_ns: u64) {}
pub(crate) fn on_convert(ids: Ids, to: Mode) {}
pub(crate) fn on_drop(ids: Ids) {}
pub(crate) fn on_violation(v: &Violation) {}
pub(crate) fn on_cond_wait(cv: usize, mutex: &super::class::Meta) {}
pub(crate) fn on_fork(parent: u64, child: u64) {}
pub(crate) fn on_join(parent: u64, child: u64) {}
pub(crate) fn flush_thread() {}
