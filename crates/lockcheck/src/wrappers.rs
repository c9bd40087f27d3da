//! The lock newtypes (`Mutex`, `FairMutex`, `ReentrantMutex`, `RwLock`) and their `const_*`
//! constructors, generated for both raw backends (instrumented and plain).
//!
//! A newtype rather than a `lock_api` type alias because `new` must be `#[track_caller]` to name
//! the lock's class after its construction site, and `lock_api`'s `new` cannot be. The newtype
//! derefs to the `lock_api` lock, so every method of parking_lot's API (`lock`, `try_lock_for`,
//! `read_recursive`, `upgradable_read`, `data_ptr`, ...) is there, with the same guard types.
//! It is `repr(transparent)`, which is what lets the `arc_lock` methods (`lock_arc`, `read_arc`,
//! ...) view an `Arc` of the newtype as an `Arc` of the `lock_api` lock.

/// The constructors and trait impls shared by every newtype: `new`, `named`, `into_inner`,
/// `Deref`/`DerefMut` to the `lock_api` lock, `Default`, `From`, `Debug`.
macro_rules! newtype_common {
    ($Lock:ident, $Inner:ty, |$site:ident, $name:ident, $value:ident| $make:expr, $what:literal) => {
        impl<T> $Lock<T> {
            #[doc = concat!("Creates a ", $what, " whose class is the caller's location (usable in statics).")]
            #[track_caller]
            #[inline]
            pub const fn new(value: T) -> $Lock<T> {
                let $site = std::panic::Location::caller();
                let $name: Option<&'static str> = None;
                let $value = value;
                $Lock { inner: $make }
            }

            #[doc = concat!("Creates a ", $what, " of the class `name` (reports and traces use the name).")]
            #[track_caller]
            #[inline]
            pub const fn named(name: &'static str, value: T) -> $Lock<T> {
                let $site = std::panic::Location::caller();
                let $name = Some(name);
                let $value = value;
                $Lock { inner: $make }
            }

            /// Consumes the lock and returns its value.
            #[inline]
            pub fn into_inner(self) -> T {
                self.inner.into_inner()
            }
        }

        impl<T: ?Sized> std::ops::Deref for $Lock<T> {
            type Target = $Inner;
            #[inline]
            fn deref(&self) -> &Self::Target {
                &self.inner
            }
        }

        impl<T: ?Sized> std::ops::DerefMut for $Lock<T> {
            #[inline]
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.inner
            }
        }

        impl<T: Default> Default for $Lock<T> {
            #[track_caller]
            fn default() -> $Lock<T> {
                $Lock::new(T::default())
            }
        }

        impl<T> From<T> for $Lock<T> {
            #[track_caller]
            fn from(value: T) -> $Lock<T> {
                $Lock::new(value)
            }
        }

        impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for $Lock<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.inner.fmt(f)
            }
        }

        impl<T: ?Sized> $Lock<T> {
            /// The `Arc` of the `lock_api` lock that `this` is (the newtype is transparent).
            #[cfg(feature = "arc_lock")]
            #[inline]
            fn arc_inner(this: &std::sync::Arc<Self>) -> std::sync::Arc<$Inner> {
                let ptr = std::sync::Arc::as_ptr(this);
                // SAFETY: `$Lock` is `repr(transparent)` over `$Inner` (same size, alignment and
                // pointer metadata), has no `Drop` of its own, and the strong count taken here
                // is the one the returned `Arc` gives back.
                unsafe {
                    std::sync::Arc::increment_strong_count(ptr);
                    std::sync::Arc::from_raw(ptr as *const $Inner)
                }
            }
        }
    };
}

/// A method of an `Arc`-held lock (parking_lot's `arc_lock` feature), forwarded to `lock_api`'s
/// through [`newtype_common`]'s `arc_inner`.
macro_rules! arc_methods {
    ($( $(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {
        $(
            $(#[$m])*
            #[cfg(feature = "arc_lock")]
            #[inline]
            #[track_caller]
            $vis fn $name(self: &std::sync::Arc<Self>, $($arg: $ty),*) -> $ret {
                Self::arc_inner(self).$name($($arg),*)
            }
        )*
    };
}

macro_rules! mutex_type {
    (
        $(#[$doc:meta])*
        $Mutex:ident, $Guard:ident, $Mapped:ident, $const_fn:ident, $raw:ty, $init:expr
    ) => {
        $(#[$doc])*
        #[repr(transparent)]
        pub struct $Mutex<T: ?Sized> {
            inner: lock_api::Mutex<$raw, T>,
        }

        crate::wrappers::newtype_common!(
            $Mutex,
            lock_api::Mutex<$raw, T>,
            |site, name, value| lock_api::Mutex::from_raw($init(site, name), value),
            "mutex"
        );

        impl<T: ?Sized> $Mutex<T> {
            crate::wrappers::arc_methods! {
                /// Locks through an `Arc`: the guard owns a clone of the `Arc` (`arc_lock`).
                pub fn lock_arc() -> lock_api::ArcMutexGuard<$raw, T>;
                /// Attempts to lock through an `Arc` without blocking (`arc_lock`).
                pub fn try_lock_arc() -> Option<lock_api::ArcMutexGuard<$raw, T>>;
                /// Attempts to lock through an `Arc` for at most `timeout` (`arc_lock`).
                pub fn try_lock_arc_for(timeout: std::time::Duration) -> Option<lock_api::ArcMutexGuard<$raw, T>>;
                /// Attempts to lock through an `Arc` until `timeout` (`arc_lock`).
                pub fn try_lock_arc_until(timeout: std::time::Instant) -> Option<lock_api::ArcMutexGuard<$raw, T>>;
            }
        }

        #[doc = concat!("Creates a [`", stringify!($Mutex), "`] in a `const` context (parking_lot's `", stringify!($const_fn), "`).")]
        #[track_caller]
        #[inline]
        pub const fn $const_fn<T>(value: T) -> $Mutex<T> {
            $Mutex::new(value)
        }

        #[doc = concat!("The guard of a [`", stringify!($Mutex), "`] (parking_lot's guard type over this crate's raw lock).")]
        pub type $Guard<'a, T> = lock_api::MutexGuard<'a, $raw, T>;
        #[doc = concat!("A [`", stringify!($Guard), "`] mapped to a part of the data, as parking_lot's.")]
        pub type $Mapped<'a, T> = lock_api::MappedMutexGuard<'a, $raw, T>;
    };
}

macro_rules! lock_wrappers {
    (
        mutex: $raw_mutex:ty = $mutex_init:expr,
        fair_mutex: $raw_fair:ty = $fair_init:expr,
        reentrant: $raw_re:ty = $re_init:expr, $re_site:path,
        rwlock: $raw_rwlock:ty = $rwlock_init:expr $(,)?
    ) => {
        crate::wrappers::mutex_type!(
            /// A mutual-exclusion lock with parking_lot's API (it derefs to
            /// [`lock_api::Mutex`], exactly what `parking_lot::Mutex` is).
            ///
            /// Its class is its construction site, or the name given to [`Mutex::named`].
            Mutex, MutexGuard, MappedMutexGuard, const_mutex, $raw_mutex, $mutex_init
        );

        crate::wrappers::mutex_type!(
            /// A mutex that always unlocks fairly (parking_lot's `FairMutex`): a waiting thread
            /// gets the lock before the unlocking one can take it again. For ordering it is a
            /// [`Mutex`].
            FairMutex, FairMutexGuard, MappedFairMutexGuard, const_fair_mutex, $raw_fair, $fair_init
        );

        /// A mutex its owner may lock again (parking_lot's `ReentrantMutex`; it derefs to
        /// [`lock_api::ReentrantMutex`]). Re-entering by the owner is no self-deadlock; the first
        /// acquisition takes part in the lock order as a [`Mutex`] does.
        ///
        /// Its class is its construction site, or the name given to [`ReentrantMutex::named`].
        #[repr(transparent)]
        pub struct ReentrantMutex<T: ?Sized> {
            inner: lock_api::ReentrantMutex<$raw_re, parking_lot::RawThreadId, T>,
        }

        crate::wrappers::newtype_common!(
            ReentrantMutex,
            lock_api::ReentrantMutex<$raw_re, parking_lot::RawThreadId, T>,
            |site, name, value| lock_api::ReentrantMutex::from_raw(
                $re_init(site, name),
                <parking_lot::RawThreadId as lock_api::GetThreadId>::INIT,
                value
            ),
            "reentrant mutex"
        );

        // `lock_api`'s raw reentrant mutex is not `#[track_caller]`, so these methods hand the
        // caller's location to the raw lock themselves (`$re_site`).
        impl<T: ?Sized> ReentrantMutex<T> {
            /// Locks, blocking unless this thread already owns the lock.
            #[track_caller]
            #[inline]
            pub fn lock(&self) -> ReentrantMutexGuard<'_, T> {
                $re_site(std::panic::Location::caller(), || self.inner.lock())
            }

            /// Attempts to lock without blocking.
            #[track_caller]
            #[inline]
            pub fn try_lock(&self) -> Option<ReentrantMutexGuard<'_, T>> {
                $re_site(std::panic::Location::caller(), || self.inner.try_lock())
            }

            /// Attempts to lock for at most `timeout`.
            #[track_caller]
            #[inline]
            pub fn try_lock_for(
                &self,
                timeout: std::time::Duration,
            ) -> Option<ReentrantMutexGuard<'_, T>> {
                $re_site(std::panic::Location::caller(), || {
                    self.inner.try_lock_for(timeout)
                })
            }

            /// Attempts to lock until `timeout`.
            #[track_caller]
            #[inline]
            pub fn try_lock_until(
                &self,
                timeout: std::time::Instant,
            ) -> Option<ReentrantMutexGuard<'_, T>> {
                $re_site(std::panic::Location::caller(), || {
                    self.inner.try_lock_until(timeout)
                })
            }

            /// Locks through an `Arc`: the guard owns a clone of the `Arc` (`arc_lock`).
            #[cfg(feature = "arc_lock")]
            #[track_caller]
            #[inline]
            pub fn lock_arc(
                self: &std::sync::Arc<Self>,
            ) -> lock_api::ArcReentrantMutexGuard<$raw_re, parking_lot::RawThreadId, T> {
                let inner = Self::arc_inner(self);
                $re_site(std::panic::Location::caller(), || inner.lock_arc())
            }

            /// Attempts to lock through an `Arc` without blocking (`arc_lock`).
            #[cfg(feature = "arc_lock")]
            #[track_caller]
            #[inline]
            pub fn try_lock_arc(
                self: &std::sync::Arc<Self>,
            ) -> Option<lock_api::ArcReentrantMutexGuard<$raw_re, parking_lot::RawThreadId, T>>
            {
                let inner = Self::arc_inner(self);
                $re_site(std::panic::Location::caller(), || inner.try_lock_arc())
            }

            /// Attempts to lock through an `Arc` for at most `timeout` (`arc_lock`).
            #[cfg(feature = "arc_lock")]
            #[track_caller]
            #[inline]
            pub fn try_lock_arc_for(
                self: &std::sync::Arc<Self>,
                timeout: std::time::Duration,
            ) -> Option<lock_api::ArcReentrantMutexGuard<$raw_re, parking_lot::RawThreadId, T>>
            {
                let inner = Self::arc_inner(self);
                $re_site(std::panic::Location::caller(), || {
                    inner.try_lock_arc_for(timeout)
                })
            }

            /// Attempts to lock through an `Arc` until `timeout` (`arc_lock`).
            #[cfg(feature = "arc_lock")]
            #[track_caller]
            #[inline]
            pub fn try_lock_arc_until(
                self: &std::sync::Arc<Self>,
                timeout: std::time::Instant,
            ) -> Option<lock_api::ArcReentrantMutexGuard<$raw_re, parking_lot::RawThreadId, T>>
            {
                let inner = Self::arc_inner(self);
                $re_site(std::panic::Location::caller(), || {
                    inner.try_lock_arc_until(timeout)
                })
            }
        }

        /// Creates a [`ReentrantMutex`] in a `const` context (parking_lot's
        /// `const_reentrant_mutex`).
        #[track_caller]
        #[inline]
        pub const fn const_reentrant_mutex<T>(value: T) -> ReentrantMutex<T> {
            ReentrantMutex::new(value)
        }

        /// The guard of a [`ReentrantMutex`] (shared access only, as parking_lot's).
        pub type ReentrantMutexGuard<'a, T> =
            lock_api::ReentrantMutexGuard<'a, $raw_re, parking_lot::RawThreadId, T>;
        /// A [`ReentrantMutexGuard`] mapped to a part of the data.
        pub type MappedReentrantMutexGuard<'a, T> =
            lock_api::MappedReentrantMutexGuard<'a, $raw_re, parking_lot::RawThreadId, T>;

        /// A reader-writer lock with parking_lot's API (it derefs to [`lock_api::RwLock`]).
        ///
        /// Its class is its construction site, or the name given to [`RwLock::named`].
        #[repr(transparent)]
        pub struct RwLock<T: ?Sized> {
            inner: lock_api::RwLock<$raw_rwlock, T>,
        }

        crate::wrappers::newtype_common!(
            RwLock,
            lock_api::RwLock<$raw_rwlock, T>,
            |site, name, value| lock_api::RwLock::from_raw($rwlock_init(site, name), value),
            "reader-writer lock"
        );

        impl<T: ?Sized> RwLock<T> {
            crate::wrappers::arc_methods! {
                /// Read-locks through an `Arc` (`arc_lock`).
                pub fn read_arc() -> lock_api::ArcRwLockReadGuard<$raw_rwlock, T>;
                /// Attempts to read-lock through an `Arc` without blocking (`arc_lock`).
                pub fn try_read_arc() -> Option<lock_api::ArcRwLockReadGuard<$raw_rwlock, T>>;
                /// Attempts to read-lock through an `Arc` for at most `timeout` (`arc_lock`).
                pub fn try_read_arc_for(timeout: std::time::Duration) -> Option<lock_api::ArcRwLockReadGuard<$raw_rwlock, T>>;
                /// Attempts to read-lock through an `Arc` until `timeout` (`arc_lock`).
                pub fn try_read_arc_until(timeout: std::time::Instant) -> Option<lock_api::ArcRwLockReadGuard<$raw_rwlock, T>>;
                /// Read-locks recursively through an `Arc` (`arc_lock`).
                pub fn read_arc_recursive() -> lock_api::ArcRwLockReadGuard<$raw_rwlock, T>;
                /// Attempts a recursive read lock through an `Arc` (`arc_lock`).
                pub fn try_read_recursive_arc() -> Option<lock_api::ArcRwLockReadGuard<$raw_rwlock, T>>;
                /// Attempts a recursive read lock through an `Arc` for at most `timeout` (`arc_lock`).
                pub fn try_read_arc_recursive_for(timeout: std::time::Duration) -> Option<lock_api::ArcRwLockReadGuard<$raw_rwlock, T>>;
                /// Attempts a recursive read lock through an `Arc` until `timeout` (`arc_lock`).
                pub fn try_read_arc_recursive_until(timeout: std::time::Instant) -> Option<lock_api::ArcRwLockReadGuard<$raw_rwlock, T>>;
                /// Write-locks through an `Arc` (`arc_lock`).
                pub fn write_arc() -> lock_api::ArcRwLockWriteGuard<$raw_rwlock, T>;
                /// Attempts to write-lock through an `Arc` without blocking (`arc_lock`).
                pub fn try_write_arc() -> Option<lock_api::ArcRwLockWriteGuard<$raw_rwlock, T>>;
                /// Attempts to write-lock through an `Arc` for at most `timeout` (`arc_lock`).
                pub fn try_write_arc_for(timeout: std::time::Duration) -> Option<lock_api::ArcRwLockWriteGuard<$raw_rwlock, T>>;
                /// Attempts to write-lock through an `Arc` until `timeout` (`arc_lock`).
                pub fn try_write_arc_until(timeout: std::time::Instant) -> Option<lock_api::ArcRwLockWriteGuard<$raw_rwlock, T>>;
                /// Takes an upgradable read lock through an `Arc` (`arc_lock`).
                pub fn upgradable_read_arc() -> lock_api::ArcRwLockUpgradableReadGuard<$raw_rwlock, T>;
                /// Attempts an upgradable read lock through an `Arc` without blocking (`arc_lock`).
                pub fn try_upgradable_read_arc() -> Option<lock_api::ArcRwLockUpgradableReadGuard<$raw_rwlock, T>>;
                /// Attempts an upgradable read lock through an `Arc` for at most `timeout` (`arc_lock`).
                pub fn try_upgradable_read_arc_for(timeout: std::time::Duration) -> Option<lock_api::ArcRwLockUpgradableReadGuard<$raw_rwlock, T>>;
                /// Attempts an upgradable read lock through an `Arc` until `timeout` (`arc_lock`).
                pub fn try_upgradable_read_arc_until(timeout: std::time::Instant) -> Option<lock_api::ArcRwLockUpgradableReadGuard<$raw_rwlock, T>>;
            }
        }

        /// Creates an [`RwLock`] in a `const` context (parking_lot's `const_rwlock`).
        #[track_caller]
        #[inline]
        pub const fn const_rwlock<T>(value: T) -> RwLock<T> {
            RwLock::new(value)
        }

        /// Shared guard of an [`RwLock`].
        pub type RwLockReadGuard<'a, T> = lock_api::RwLockReadGuard<'a, $raw_rwlock, T>;
        /// Exclusive guard of an [`RwLock`].
        pub type RwLockWriteGuard<'a, T> = lock_api::RwLockWriteGuard<'a, $raw_rwlock, T>;
        /// Upgradable guard of an [`RwLock`].
        pub type RwLockUpgradableReadGuard<'a, T> =
            lock_api::RwLockUpgradableReadGuard<'a, $raw_rwlock, T>;
        /// A shared guard mapped to a part of the data.
        pub type MappedRwLockReadGuard<'a, T> = lock_api::MappedRwLockReadGuard<'a, $raw_rwlock, T>;
        /// An exclusive guard mapped to a part of the data.
        pub type MappedRwLockWriteGuard<'a, T> =
            lock_api::MappedRwLockWriteGuard<'a, $raw_rwlock, T>;
    };
}

pub(crate) use {arc_methods, lock_wrappers, mutex_type, newtype_common};
