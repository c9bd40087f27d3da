//! The plain locks: what the crate root exports when instrumentation is compiled out.
//!
//! parking_lot's locks behind the same newtypes: same size, same speed (`new` and `named` only
//! forward; the class is not kept). Always compiled, so that sizes and speeds can be compared.

use std::panic::Location;

const fn raw_mutex(
    _site: &'static Location<'static>,
    _name: Option<&'static str>,
) -> parking_lot::RawMutex {
    <parking_lot::RawMutex as lock_api::RawMutex>::INIT
}

const fn raw_rwlock(
    _site: &'static Location<'static>,
    _name: Option<&'static str>,
) -> parking_lot::RawRwLock {
    <parking_lot::RawRwLock as lock_api::RawRwLock>::INIT
}

crate::wrappers::lock_wrappers!(
    parking_lot::RawMutex,
    parking_lot::RawRwLock,
    raw_mutex,
    raw_rwlock
);

pub use parking_lot::{Condvar, WaitTimeoutResult};
