//! std's API, poisoning included: change `use std::sync::{Mutex, RwLock, Condvar}` to
//! `use lockcheck::sync::{Mutex, RwLock, Condvar}`. `mpsc` is std's API with bounded channels
//! checked (see [`checked::mpsc`](crate::checked::mpsc)), and `Barrier` checked too. Everything else of `std::sync` is
//! re-exported unchanged, so a glob import keeps working. With instrumentation compiled out
//! these are std's own types.

pub use std::sync::{
    atomic, Arc, LockResult, OnceState, PoisonError, TryLockError, TryLockResult, Weak,
};

#[cfg(not(lockcheck_on))]
pub use std::sync::{Barrier, BarrierWaitResult};

/// std's `Barrier`, checked: a wait made while holding locks is in the wait-for graph, and a
/// participant stuck behind those locks is a `deadlock` (see `checked/barrier.rs`).
#[cfg(lockcheck_on)]
pub use crate::checked::{Barrier, BarrierWaitResult};

/// std's channels; in instrumented builds, [`checked::mpsc`](crate::checked::mpsc): a send into a
/// full bounded channel is checked as a wait for the thread that receives from it, and a receive
/// that waits holding locks as a wait for any of the channel's senders.
#[cfg(not(lockcheck_on))]
pub use std::sync::mpsc;

#[cfg(lockcheck_on)]
pub use crate::checked::mpsc;

#[cfg(not(lockcheck_on))]
#[allow(deprecated)]
pub use std::sync::{LazyLock, Once, OnceLock, ONCE_INIT};

// One-time initialization, instrumented, and `Condvar::wait_timeout_ms`: see `sync_once.rs`.
#[cfg(lockcheck_on)]
#[allow(deprecated)]
pub use crate::sync_once::{LazyLock, Once, OnceLock, ONCE_INIT};

#[cfg(not(lockcheck_on))]
pub use std::sync::{
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, WaitTimeoutResult,
};

#[cfg(lockcheck_on)]
pub use checked_std::{
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, WaitTimeoutResult,
};

#[cfg(lockcheck_on)]
mod checked_std {
    use crate::checked;
    use std::fmt;
    use std::ops::{Deref, DerefMut};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
    use std::time::Duration;

    pub use crate::checked::WaitTimeoutResult;

    /// `Err(PoisonError)` around `value` if `poisoned`, as std reports it.
    fn poisoned_if<T>(poisoned: bool, value: T) -> LockResult<T> {
        if poisoned {
            Err(PoisonError::new(value))
        } else {
            Ok(value)
        }
    }

    /// Records a panic that unwinds through a guard, as std does.
    struct Poison {
        flag: AtomicBool,
    }

    impl Poison {
        const fn new() -> Poison {
            Poison {
                flag: AtomicBool::new(false),
            }
        }
        fn get(&self) -> bool {
            self.flag.load(Ordering::Relaxed)
        }
        fn result<G>(&self, guard: G) -> LockResult<G> {
            poisoned_if(self.get(), guard)
        }
    }

    /// Marks poison when dropped during a panic that started after it was created.
    struct PoisonOnPanic<'a> {
        poison: &'a Poison,
        panicking: bool,
    }

    impl<'a> PoisonOnPanic<'a> {
        fn new(poison: &'a Poison) -> Self {
            PoisonOnPanic {
                poison,
                panicking: std::thread::panicking(),
            }
        }
    }

    impl Drop for PoisonOnPanic<'_> {
        fn drop(&mut self) {
            if !self.panicking && std::thread::panicking() {
                self.poison.flag.store(true, Ordering::Relaxed);
            }
        }
    }

    /// What `Mutex` and `RwLock` share besides locking: `into_inner`, the poison flag, `get_mut`
    /// (the last two std-poisoned as the lock is), `Default`, `From`, and `Debug` (the value
    /// through `$peek`, or `<locked>`). The three doc lines are those of `into_inner`,
    /// `is_poisoned` and `get_mut`.
    macro_rules! lock_common {
        ($lock:ident, $name:literal, $peek:ident,
         #[doc = $into_doc:literal] #[doc = $poisoned_doc:literal] #[doc = $get_mut_doc:literal] $(,)?) => {
            impl<T> $lock<T> {
                #[doc = $into_doc]
                pub fn into_inner(self) -> LockResult<T> {
                    let poisoned = self.poison.get();
                    poisoned_if(poisoned, self.inner.into_inner())
                }
            }

            impl<T: ?Sized> $lock<T> {
                #[doc = $poisoned_doc]
                pub fn is_poisoned(&self) -> bool {
                    self.poison.get()
                }

                /// Clears the poisoned state.
                pub fn clear_poison(&self) {
                    self.poison.flag.store(false, Ordering::Relaxed);
                }

                #[doc = $get_mut_doc]
                pub fn get_mut(&mut self) -> LockResult<&mut T> {
                    let poisoned = self.poison.get();
                    poisoned_if(poisoned, self.inner.get_mut())
                }
            }

            impl<T: Default> Default for $lock<T> {
                #[track_caller]
                fn default() -> $lock<T> {
                    $lock::new(T::default())
                }
            }

            impl<T> From<T> for $lock<T> {
                #[track_caller]
                fn from(t: T) -> $lock<T> {
                    $lock::new(t)
                }
            }

            impl<T: ?Sized + fmt::Debug> fmt::Debug for $lock<T> {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    let mut d = f.debug_struct($name);
                    match self.inner.$peek() {
                        Some(g) => d.field("data", &&*g),
                        None => d.field("data", &format_args!("<locked>")),
                    };
                    d.field("poisoned", &self.poison.get())
                        .finish_non_exhaustive()
                }
            }
        };
    }

    /// `Deref` (and `DerefMut` for `mut` guards) to the inner guard's value, and `Debug` and
    /// `Display` of that value, as std's guards.
    macro_rules! guard_deref {
        (@mut mut, $guard:ident) => {
            impl<T: ?Sized> DerefMut for $guard<'_, T> {
                fn deref_mut(&mut self) -> &mut T {
                    &mut self.guard
                }
            }
        };
        (@mut ro, $guard:ident) => {};
        ($($guard:ident $m:ident),* $(,)?) => {$(
            impl<T: ?Sized> Deref for $guard<'_, T> {
                type Target = T;
                fn deref(&self) -> &T {
                    &self.guard
                }
            }

            guard_deref!(@mut $m, $guard);

            impl<T: ?Sized + fmt::Debug> fmt::Debug for $guard<'_, T> {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    fmt::Debug::fmt(&**self, f)
                }
            }

            impl<T: ?Sized + fmt::Display> fmt::Display for $guard<'_, T> {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    fmt::Display::fmt(&**self, f)
                }
            }
        )*};
    }

    /// std's `Mutex` API over lockcheck's instrumented mutex.
    pub struct Mutex<T: ?Sized> {
        poison: Poison,
        inner: checked::Mutex<T>,
    }

    /// std's `MutexGuard` API.
    #[must_use = "if unused the Mutex will immediately unlock"]
    pub struct MutexGuard<'a, T: ?Sized> {
        // Field order: the poison marker drops before the guard unlocks, as in std.
        mark: PoisonOnPanic<'a>,
        guard: checked::MutexGuard<'a, T>,
    }

    impl<T> Mutex<T> {
        /// Creates a mutex whose class is the caller's location.
        #[track_caller]
        pub const fn new(t: T) -> Mutex<T> {
            Mutex {
                poison: Poison::new(),
                inner: checked::Mutex::new(t),
            }
        }
    }

    impl<T: ?Sized> Mutex<T> {
        /// Acquires the mutex, blocking; an error if another holder panicked.
        #[track_caller]
        pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
            self.held(self.inner.lock())
        }

        /// Attempts to acquire the mutex without blocking.
        #[track_caller]
        pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
            match self.inner.try_lock() {
                None => Err(TryLockError::WouldBlock),
                Some(guard) => Ok(self.held(guard)?),
            }
        }

        /// The guard of `guard`, marked poisoned by a panic from here on; an error if already
        /// poisoned.
        fn held<'a>(&'a self, guard: checked::MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
            self.poison.result(MutexGuard {
                mark: PoisonOnPanic::new(&self.poison),
                guard,
            })
        }
    }

    lock_common!(
        Mutex,
        "Mutex",
        try_lock,
        /// Consumes the mutex, returning the data (an error if poisoned).
        /// Whether a holder panicked.
        /// A mutable reference to the data (no locking needed).
    );

    // As std: poisoning makes a lock observable after a panic, so it is unwind safe.
    impl<T: ?Sized> std::panic::UnwindSafe for Mutex<T> {}
    impl<T: ?Sized> std::panic::RefUnwindSafe for Mutex<T> {}
    impl<T: ?Sized> std::panic::UnwindSafe for RwLock<T> {}
    impl<T: ?Sized> std::panic::RefUnwindSafe for RwLock<T> {}

    guard_deref!(MutexGuard mut, RwLockReadGuard ro, RwLockWriteGuard mut);

    /// std's `RwLock` API over lockcheck's instrumented reader-writer lock.
    pub struct RwLock<T: ?Sized> {
        poison: Poison,
        inner: checked::RwLock<T>,
    }

    /// std's `RwLockReadGuard` API.
    #[must_use = "if unused the RwLock will immediately unlock"]
    pub struct RwLockReadGuard<'a, T: ?Sized> {
        guard: checked::RwLockReadGuard<'a, T>,
    }

    /// std's `RwLockWriteGuard` API.
    #[must_use = "if unused the RwLock will immediately unlock"]
    pub struct RwLockWriteGuard<'a, T: ?Sized> {
        _mark: PoisonOnPanic<'a>,
        guard: checked::RwLockWriteGuard<'a, T>,
    }

    impl<T> RwLock<T> {
        /// Creates a reader-writer lock whose class is the caller's location.
        #[track_caller]
        pub const fn new(t: T) -> RwLock<T> {
            RwLock {
                poison: Poison::new(),
                inner: checked::RwLock::new(t),
            }
        }
    }

    impl<T: ?Sized> RwLock<T> {
        /// Acquires a shared read lock, blocking.
        #[track_caller]
        pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
            let guard = self.inner.read();
            self.poison.result(RwLockReadGuard { guard })
        }

        /// Attempts a shared read lock without blocking.
        #[track_caller]
        pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
            match self.inner.try_read() {
                None => Err(TryLockError::WouldBlock),
                Some(guard) => Ok(self.poison.result(RwLockReadGuard { guard })?),
            }
        }

        /// Acquires the exclusive write lock, blocking.
        #[track_caller]
        pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
            self.written(self.inner.write())
        }

        /// Attempts the write lock without blocking.
        #[track_caller]
        pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
            match self.inner.try_write() {
                None => Err(TryLockError::WouldBlock),
                Some(guard) => Ok(self.written(guard)?),
            }
        }

        /// The write guard of `guard`, marked poisoned by a panic from here on; an error if
        /// already poisoned.
        fn written<'a>(
            &'a self,
            guard: checked::RwLockWriteGuard<'a, T>,
        ) -> LockResult<RwLockWriteGuard<'a, T>> {
            self.poison.result(RwLockWriteGuard {
                _mark: PoisonOnPanic::new(&self.poison),
                guard,
            })
        }
    }

    lock_common!(
        RwLock,
        "RwLock",
        try_read,
        /// Consumes the lock, returning the data (an error if poisoned).
        /// Whether a writer panicked.
        /// A mutable reference to the data.
    );

    /// std's `Condvar` API for [`Mutex`].
    #[derive(Debug, Default)]
    pub struct Condvar {
        inner: checked::Condvar,
    }

    impl Condvar {
        /// Creates a condition variable.
        pub const fn new() -> Condvar {
            Condvar {
                inner: checked::Condvar::new(),
            }
        }

        /// Blocks until notified, releasing the mutex meanwhile.
        #[track_caller]
        pub fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
            self.inner.wait(&mut guard.guard);
            guard.mark.poison.result(guard)
        }

        /// Blocks while `condition` returns true.
        #[track_caller]
        pub fn wait_while<'a, T, F: FnMut(&mut T) -> bool>(
            &self,
            mut guard: MutexGuard<'a, T>,
            mut condition: F,
        ) -> LockResult<MutexGuard<'a, T>> {
            while condition(&mut *guard) {
                guard = self.wait(guard)?;
            }
            Ok(guard)
        }

        /// Blocks until notified or `dur` elapsed.
        #[track_caller]
        pub fn wait_timeout<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            dur: Duration,
        ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
            let r = self.inner.wait_for(&mut guard.guard, dur);
            poisoned_if(guard.mark.poison.get(), (guard, r))
        }

        /// Blocks while `condition` returns true, for at most `dur`.
        #[track_caller]
        pub fn wait_timeout_while<'a, T, F: FnMut(&mut T) -> bool>(
            &self,
            mut guard: MutexGuard<'a, T>,
            dur: Duration,
            condition: F,
        ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
            let r = self.inner.wait_while_for(&mut guard.guard, condition, dur);
            poisoned_if(guard.mark.poison.get(), (guard, r))
        }

        /// Wakes one waiter.
        #[track_caller]
        pub fn notify_one(&self) {
            self.inner.notify_one();
        }

        /// Wakes all waiters.
        #[track_caller]
        pub fn notify_all(&self) {
            self.inner.notify_all();
        }
    }
}
