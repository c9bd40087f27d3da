//! The `Mutex` and `RwLock` newtypes, generated for both raw backends (instrumented and plain).
//!
//! A newtype rather than a `lock_api` type alias because `new` must be `#[track_caller]` to name
//! the lock's class after its construction site, and `lock_api`'s `new` cannot be. The newtype
//! derefs to the `lock_api` lock, so every method of parking_lot's API (`lock`, `try_lock_for`,
//! `read_recursive`, `upgradable_read`, `data_ptr`, ...) is there, with the same guard types.

macro_rules! lock_wrappers {
    ($raw_mutex:ty, $raw_rwlock:ty, $mutex_init:expr, $rwlock_init:expr) => {
        /// A mutual-exclusion lock with parking_lot's API (it derefs to
        /// [`lock_api::Mutex`], exactly what `parking_lot::Mutex` is).
        ///
        /// Its class is its construction site, or the name given to [`Mutex::named`].
        pub struct Mutex<T: ?Sized> {
            inner: lock_api::Mutex<$raw_mutex, T>,
        }

        impl<T> Mutex<T> {
            /// Creates a mutex whose class is the caller's location (usable in statics).
            #[track_caller]
            #[inline]
            pub const fn new(value: T) -> Mutex<T> {
                let _site = std::panic::Location::caller();
                Mutex {
                    inner: lock_api::Mutex::from_raw($mutex_init(_site, None), value),
                }
            }

            /// Creates a mutex of the class `name` (reports and traces use the name).
            #[track_caller]
            #[inline]
            pub const fn named(name: &'static str, value: T) -> Mutex<T> {
                let _site = std::panic::Location::caller();
                Mutex {
                    inner: lock_api::Mutex::from_raw($mutex_init(_site, Some(name)), value),
                }
            }

            /// Consumes the mutex and returns its value.
            #[inline]
            pub fn into_inner(self) -> T {
                self.inner.into_inner()
            }
        }

        impl<T: ?Sized> std::ops::Deref for Mutex<T> {
            type Target = lock_api::Mutex<$raw_mutex, T>;
            #[inline]
            fn deref(&self) -> &Self::Target {
                &self.inner
            }
        }

        impl<T: ?Sized> std::ops::DerefMut for Mutex<T> {
            #[inline]
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.inner
            }
        }

        impl<T: Default> Default for Mutex<T> {
            #[track_caller]
            fn default() -> Mutex<T> {
                Mutex::new(T::default())
            }
        }

        impl<T> From<T> for Mutex<T> {
            #[track_caller]
            fn from(value: T) -> Mutex<T> {
                Mutex::new(value)
            }
        }

        impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for Mutex<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.inner.fmt(f)
            }
        }

        /// The guard of a [`Mutex`] (parking_lot's guard type over lockcheck's raw lock).
        pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, $raw_mutex, T>;
        /// A guard mapped to a part of the data, as parking_lot's.
        pub type MappedMutexGuard<'a, T> = lock_api::MappedMutexGuard<'a, $raw_mutex, T>;

        /// A reader-writer lock with parking_lot's API (it derefs to [`lock_api::RwLock`]).
        ///
        /// Its class is its construction site, or the name given to [`RwLock::named`].
        pub struct RwLock<T: ?Sized> {
            inner: lock_api::RwLock<$raw_rwlock, T>,
        }

        impl<T> RwLock<T> {
            /// Creates a reader-writer lock whose class is the caller's location.
            #[track_caller]
            #[inline]
            pub const fn new(value: T) -> RwLock<T> {
                let _site = std::panic::Location::caller();
                RwLock {
                    inner: lock_api::RwLock::from_raw($rwlock_init(_site, None), value),
                }
            }

            /// Creates a reader-writer lock of the class `name`.
            #[track_caller]
            #[inline]
            pub const fn named(name: &'static str, value: T) -> RwLock<T> {
                let _site = std::panic::Location::caller();
                RwLock {
                    inner: lock_api::RwLock::from_raw($rwlock_init(_site, Some(name)), value),
                }
            }

            /// Consumes the lock and returns its value.
            #[inline]
            pub fn into_inner(self) -> T {
                self.inner.into_inner()
            }
        }

        impl<T: ?Sized> std::ops::Deref for RwLock<T> {
            type Target = lock_api::RwLock<$raw_rwlock, T>;
            #[inline]
            fn deref(&self) -> &Self::Target {
                &self.inner
            }
        }

        impl<T: ?Sized> std::ops::DerefMut for RwLock<T> {
            #[inline]
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.inner
            }
        }

        impl<T: Default> Default for RwLock<T> {
            #[track_caller]
            fn default() -> RwLock<T> {
                RwLock::new(T::default())
            }
        }

        impl<T> From<T> for RwLock<T> {
            #[track_caller]
            fn from(value: T) -> RwLock<T> {
                RwLock::new(value)
            }
        }

        impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for RwLock<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.inner.fmt(f)
            }
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

pub(crate) use lock_wrappers;
