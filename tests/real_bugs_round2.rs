//! Real deadlocks from public Rust projects, second round: kinds the first round
//! (`tests/async/real_bugs.rs`, `examples/scenarios.rs`) did not cover. Each is reduced to its
//! locking skeleton (not their code), cites its source, and is paired with the look-alike the
//! project's fix turned it into, which must stay silent. Every scenario runs under a watchdog:
//! a miss that really hangs fails the test instead of hanging CI.

#[path = "support/real_bugs.rs"]
mod real_bugs;
mod support;

use lockcheck::{Mutex, RwLock, RwLockUpgradableReadGuard, ViolationKind};
use real_bugs::setup;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::markers::Markers;
use support::{found, two_threads, watchdog};

/// This file's marker comments.
const M: Markers = Markers::new("real_bugs_round2.rs", include_str!("real_bugs_round2.rs"));

// ---------------------------------------------------------------------------------------------
// 1. User callbacks invoked under a library's internal lock, one of which takes a user lock,
//    while a user thread holds that user lock and calls into the library (internal lock):
//    an inversion through an `Arc<dyn Fn>`.
//    Source: eclipse-zenoh/zenoh#1092 ("Tables locks are held while calling liveliness
//    subscribers and matching status listeners user callbacks").
//    Look-alike (the fix): the callbacks are collected under the lock and called after it is
//    released.

type Callback = Arc<dyn Fn() + Send + Sync>;

struct Session {
    tables: Mutex<Vec<Callback>>,
}

impl Session {
    /// A library operation (`put`): takes the internal lock.
    fn put(&self) {
        let _t = self.tables.lock(); // ZENOH_PUT
    }

    /// Fires the listeners.
    fn notify(&self, release_first: bool) {
        if release_first {
            let callbacks: Vec<Callback> = self.tables.lock().clone();
            for cb in callbacks {
                cb();
            }
        } else {
            let t = self.tables.lock(); // ZENOH_NOTIFY
            for cb in t.iter() {
                cb();
            }
        }
    }
}

fn zenoh(prefix: &'static str, user: &'static str, release_first: bool) -> Vec<String> {
    let session = Arc::new(Session {
        tables: Mutex::named(prefix, Vec::new()),
    });
    let state = Arc::new(Mutex::named(user, 0u32));
    let st = state.clone();
    session.tables.lock().push(Arc::new(move || {
        *st.lock() += 1; // ZENOH_CALLBACK
    }));
    let (s1, s2, st2) = (session.clone(), session, state);
    let (r1, r2) = two_threads(
        move || s1.notify(release_first),
        move || {
            let _u = st2.lock(); // ZENOH_USER
            s2.put();
        },
    );
    [r1, r2].into_iter().filter_map(Result::err).collect()
}

#[test]
fn user_callback_under_the_tables_lock_taking_a_user_lock_is_an_inversion() {
    setup();
    watchdog(20, || {
        let panics = zenoh("zenoh.tables", "zenoh.user", false);
        assert_eq!(panics.len(), 1, "{panics:?}");
        assert!(panics[0].contains("lock order inversion"), "{}", panics[0]);
        let v = found("zenoh.tables");
        assert_eq!(v.len(), 1, "{v:#?}");
        assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
        let mut classes = v[0].classes();
        classes.sort();
        assert_eq!(classes, ["zenoh.tables", "zenoh.user"]);
        let sites = v[0].sites();
        assert!(
            sites.iter().any(|s| s.contains(&M.at("ZENOH_CALLBACK")))
                && sites.iter().any(|s| s.contains(&M.at("ZENOH_PUT"))),
            "{sites:?}"
        );
        let held: Vec<&str> = v[0].edges.iter().map(|e| e.held_site.as_str()).collect();
        assert!(
            held.iter().any(|s| s.contains(&M.at("ZENOH_NOTIFY")))
                && held.iter().any(|s| s.contains(&M.at("ZENOH_USER"))),
            "{held:?}"
        );
    })
    .unwrap();
}

#[test]
fn callbacks_called_after_the_tables_lock_is_released_are_silent() {
    setup();
    watchdog(20, || {
        let panics = zenoh("zenoh.fixed.tables", "zenoh.fixed.user", true);
        assert!(panics.is_empty(), "{panics:?}");
        assert!(found("zenoh.fixed.tables").is_empty());
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 2. A validation callback (`Arc<dyn Fn>`) called under the read guard of the lock it is
//    registered under; from inside, the user re-registers a callback, which write-locks it:
//    the thread waits for its own read share.
//    Source: ZettaScaleLabs/hiroz#256, fixed by ZettaScaleLabs/hiroz#257 ("stop deadlocking on
//    re-entry from an on_set callback"), tracked with its class in ZettaScaleLabs/hiroz#282.
//    Look-alike (the fix): the callbacks are cloned out of the guard, which is dropped before
//    they run.

type OnSet = Arc<dyn Fn(&Params) + Send + Sync>;

struct Params {
    on_set: RwLock<Vec<OnSet>>,
}

impl Params {
    fn on_set_parameters(&self, cb: OnSet) {
        self.on_set.write().push(cb); // HIROZ_WRITE
    }

    fn validate_and_apply(&self, fixed: bool) {
        if fixed {
            let callbacks: Vec<OnSet> = self.on_set.read().clone();
            for cb in callbacks {
                cb(self);
            }
        } else {
            let callbacks = self.on_set.read(); // HIROZ_READ
            for cb in callbacks.iter() {
                cb(self);
            }
        }
    }
}

fn hiroz(name: &'static str, fixed: bool) -> Result<(), String> {
    let params = Params {
        on_set: RwLock::named(name, Vec::new()),
    };
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    params.on_set_parameters(Arc::new(move |p: &Params| {
        if !d.swap(true, Ordering::SeqCst) {
            p.on_set_parameters(Arc::new(|_: &Params| {}));
        }
    }));
    watchdog(20, move || params.validate_and_apply(fixed))
}

#[test]
fn re_registering_from_a_callback_run_under_the_read_guard_is_a_self_deadlock() {
    setup();
    let msg = hiroz("hiroz.on_set", false).expect_err("reported before it hangs");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = found("hiroz.on_set");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::SelfDeadlock);
    let e = &v[0].edges[0];
    assert!(e.site.contains(&M.at("HIROZ_WRITE")), "{e:?}");
    assert!(e.held_site.contains(&M.at("HIROZ_READ")), "{e:?}");
}

#[test]
fn callbacks_cloned_out_of_the_read_guard_may_re_register() {
    setup();
    hiroz("hiroz.fixed", true).unwrap();
    assert!(found("hiroz.fixed").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3. A value dropped inside a critical section whose `Drop` takes the same lock: an object pool
//    whose `entry(..).or_insert(vec![new object])` drops the unused argument (the key was
//    present) while the pool's guard is alive; the object's `Drop` returns it to the pool.
//    Source: rust-lang-nursery/lazy-static.rs#56 ("How to mutate lazy-static at runtime": the
//    pool hangs in `or_insert`).
//    Look-alike (the fix): `or_insert_with`, which builds the object only when needed.

struct Pool {
    free: lockcheck::sync::Mutex<std::collections::HashMap<u32, Vec<Pooled>>>,
}

struct Pooled {
    key: u32,
    pool: Option<Arc<Pool>>,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let mut free = pool.free.lock().unwrap(); // POOL_DROP
            free.entry(self.key).or_default().push(Pooled {
                key: self.key,
                pool: None,
            });
        }
    }
}

fn take(pool: &Arc<Pool>, key: u32, fixed: bool) -> Option<Pooled> {
    let new = || Pooled {
        key,
        pool: Some(pool.clone()),
    };
    let mut free = pool.free.lock().unwrap(); // POOL_TAKE
    if fixed {
        free.entry(key).or_insert_with(|| vec![new()]).pop()
    } else {
        free.entry(key).or_insert(vec![new()]).pop()
    }
}

#[test]
fn a_drop_that_locks_the_pool_inside_the_pools_critical_section_is_a_self_deadlock() {
    setup();
    let r = watchdog(20, || {
        let pool = Arc::new(Pool {
            free: lockcheck::sync::Mutex::new(Default::default()), // POOL_NEW
        });
        // The key is present: the argument of `or_insert` is built and dropped under the guard.
        pool.free.lock().unwrap().insert(7, Vec::new());
        let _ = take(&pool, 7, false);
    });
    let msg = r.expect_err("reported before it hangs");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = M.found_at("POOL_DROP");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::SelfDeadlock);
    let e = &v[0].edges[0];
    assert!(e.held.class.contains(&M.at("POOL_NEW")), "{e:?}");
    assert!(e.site.contains(&M.at("POOL_DROP")), "{e:?}");
    assert!(e.held_site.contains(&M.at("POOL_TAKE")), "{e:?}");
}

#[test]
fn or_insert_with_builds_nothing_under_the_guard_and_is_silent() {
    setup();
    let before = M.found_at("POOL_DROP").len();
    watchdog(20, || {
        let pool = Arc::new(Pool {
            free: lockcheck::sync::Mutex::new(Default::default()),
        });
        // Absent: built under the guard, handed out, returned by its `Drop` (no guard alive).
        let obj = take(&pool, 8, true);
        assert!(obj.as_ref().is_some_and(|o| o.pool.is_some()));
        drop(obj);
        // Present: nothing built, the returned object is handed out again.
        let again = take(&pool, 8, true);
        assert!(again.is_some_and(|o| o.pool.is_none()));
    })
    .unwrap();
    assert_eq!(M.found_at("POOL_DROP").len(), before);
}

// ---------------------------------------------------------------------------------------------
// 4. A lazily initialized value whose initializer gives up a global lock and takes it back
//    (Python's GIL around an import), while another thread holding that lock waits for the
//    initializer: the initializer waits for the lock, the holder waits for the initializer.
//    Source: rust-lang-nursery/lazy-static.rs#116 ("lazy_static without locks?", pyo3's
//    datetime API import releasing and retaking the GIL).
//    Look-alike: an initializer that does not touch the lock; a holder of the lock waiting for
//    it waits for a finite computation.

fn gil_init(prefix: &'static str, retakes: bool) -> (Result<(), String>, Result<(), String>) {
    let gil = Arc::new(Mutex::named(prefix, ()));
    let api = Arc::new(lockcheck::sync::OnceLock::<u32>::new());
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (g1, a1) = (gil.clone(), api.clone());
    let t1 = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut held = Some(g1.lock());
            a1.get_or_init(|| {
                if retakes {
                    held.take(); // the import releases the GIL ...
                }
                let _ = started_tx.send(());
                if retakes {
                    // The holder has the GIL (and then waits for this initializer, whichever
                    // comes first): a sleep did not make sure of it on a loaded machine.
                    support::wait_until("the holder takes the GIL", || g1.is_locked());
                    // ... and takes it back.
                    held = Some(g1.lock()); // GIL_RETAKE
                } else {
                    std::thread::sleep(Duration::from_millis(300));
                }
                1
            });
        }))
        .map_err(|e| support::panic_message(&*e))
    });
    let _ = started_rx.recv_timeout(Duration::from_secs(10));
    if !retakes {
        // The fixed initializer never gave the lock up: wait for it, then the holder.
        let r1 = t1.join().unwrap();
        let _g = gil.lock();
        api.get_or_init(|| 2);
        return (r1, Ok(()));
    }
    let r2 = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = gil.lock(); // GIL_HOLDER
        api.get_or_init(|| 2); // GIL_WAIT
    }))
    .map_err(|e| support::panic_message(&*e));
    (t1.join().unwrap(), r2)
}

#[test]
fn an_initializer_retaking_a_lock_whose_holder_waits_for_it_is_reported() {
    setup();
    watchdog(30, || {
        let (r1, r2) = gil_init("gil.retake", true);
        let panics: Vec<String> = [r1, r2].into_iter().filter_map(Result::err).collect();
        assert_eq!(panics.len(), 1, "{panics:?}");
    })
    .unwrap();
    let v = found("gil.retake");
    assert!(!v.is_empty(), "{v:#?}");
    assert!(
        v.iter().all(|v| matches!(
            v.kind,
            ViolationKind::LockOrderInversion | ViolationKind::Deadlock
        )),
        "{v:#?}"
    );
    let sites: Vec<&str> = v[0].sites();
    assert!(
        sites.iter().any(|s| s.contains(&M.at("GIL_RETAKE")))
            && sites.iter().any(|s| s.contains(&M.at("GIL_WAIT"))),
        "{sites:?}"
    );
}

#[test]
fn an_initializer_that_keeps_off_the_lock_is_silent() {
    setup();
    watchdog(30, || {
        let (r1, r2) = gil_init("gil.keeps", false);
        assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    })
    .unwrap();
    assert!(found("gil.keeps").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 5. An upgradable read upgraded while another thread holds a read share and reads the same
//    lock again: the upgrade waits for the readers, the second read waits behind the upgrade.
//    Source: Amanieu/parking_lot#489 ("Deadlock when upgrading an upgradable_read lock").
//    Look-alike: the reader re-reads with `read_recursive` (which does not queue behind the
//    upgrade), as parking_lot's documentation advises.

fn upgrade_vs_reread(name: &'static str, recursive: bool) -> Vec<String> {
    let lock = Arc::new(RwLock::named(name, 0u32));
    let (l1, l2) = (lock.clone(), lock);
    let (r1, r2) = two_threads(
        move || {
            let u = l1.upgradable_read();
            let mut w = RwLockUpgradableReadGuard::upgrade(u);
            *w += 1;
        },
        move || {
            let _a = l2.read(); // REREAD_FIRST
            let _b = if recursive {
                l2.read_recursive()
            } else {
                l2.read() // REREAD_SECOND
            };
        },
    );
    [r1, r2].into_iter().filter_map(Result::err).collect()
}

#[test]
fn a_second_read_of_a_lock_that_is_upgraded_elsewhere_is_a_recursive_read() {
    setup();
    watchdog(20, || {
        let panics = upgrade_vs_reread("pl489.state", false);
        assert_eq!(panics.len(), 1, "{panics:?}");
    })
    .unwrap();
    let v = found("pl489.state");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::RecursiveRead);
    let e = &v[0].edges[0];
    assert!(e.site.contains(&M.at("REREAD_SECOND")), "{e:?}");
    assert!(e.held_site.contains(&M.at("REREAD_FIRST")), "{e:?}");
}

#[test]
fn read_recursive_next_to_an_upgrade_is_silent() {
    setup();
    watchdog(20, || {
        let panics = upgrade_vs_reread("pl489.fixed", true);
        assert!(panics.is_empty(), "{panics:?}");
    })
    .unwrap();
    assert!(found("pl489.fixed").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 6. The upgrade of an upgradable read made while holding a read share of another lock, whose
//    writer holds a read share of the first: the upgrade waits for that reader, the reader's
//    write waits for the upgrader's read share. Neither lock is ever held by two upgradable
//    readers, so the deadlock is made by the upgrade itself, an acquisition of the write mode.
//    Pattern: the upgradable reads of salsa's derived queries, removed for deadlocks in
//    salsa-rs/salsa#75 (see salsa-rs/salsa#99 and the FIXME kept in salsa-rs/salsa#229).
//    Look-alike: the upgradable read is released and the write taken after the other lock's
//    read share is dropped (or the write taken first, in the one order).

fn upgrade_under_read(prefix: (&'static str, &'static str), fixed: bool) -> Vec<String> {
    let memo = Arc::new(RwLock::named(prefix.0, 0u32));
    let deps = Arc::new(RwLock::named(prefix.1, 0u32));
    let (m1, d1, m2, d2) = (memo.clone(), deps.clone(), memo, deps);
    let (r1, r2) = two_threads(
        move || {
            let d = d1.read(); // SALSA_DEPS_READ
            let u = m1.upgradable_read(); // SALSA_UPGRADABLE
            if fixed {
                drop(u);
                drop(d);
                *m1.write() += 1;
            } else {
                let mut w = RwLockUpgradableReadGuard::upgrade(u); // SALSA_UPGRADE
                *w += 1;
            }
        },
        move || {
            if fixed {
                *m2.write() += 1;
                *d2.write() += 1;
            } else {
                let _m = m2.read(); // SALSA_MEMO_READ
                *d2.write() += 1; // SALSA_DEPS_WRITE
            }
        },
    );
    [r1, r2].into_iter().filter_map(Result::err).collect()
}

#[test]
fn an_upgrade_under_another_locks_read_share_against_its_writer_is_an_inversion() {
    setup();
    watchdog(20, || {
        let panics = upgrade_under_read(("salsa.memo", "salsa.deps"), false);
        assert_eq!(panics.len(), 1, "{panics:?}");
        assert!(panics[0].contains("lock order inversion"), "{}", panics[0]);
    })
    .unwrap();
    let v = found("salsa.memo");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
    let mut classes = v[0].classes();
    classes.sort();
    assert_eq!(classes, ["salsa.deps", "salsa.memo"]);
    let sites = v[0].sites();
    assert!(
        sites.iter().any(|s| s.contains(&M.at("SALSA_UPGRADE")))
            && sites.iter().any(|s| s.contains(&M.at("SALSA_DEPS_WRITE"))),
        "{sites:?}"
    );
}

#[test]
fn an_upgrade_after_the_other_read_share_is_dropped_is_silent() {
    setup();
    watchdog(20, || {
        let panics = upgrade_under_read(("salsa.fixed.memo", "salsa.fixed.deps"), true);
        assert!(panics.is_empty(), "{panics:?}");
    })
    .unwrap();
    assert!(found("salsa.fixed.memo").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 7. A service's `stop` joins its worker thread while still holding the write guard of the
//    state the worker reads in its loop (`self.0.write().handle.take().map(JoinHandle::join)`:
//    the temporary guard lives to the end of the statement).
//    Source: rustdesk/rustdesk#622 ("fix_deadlock_general_service").
//    Look-alike (the fix): the handle is taken out in one statement, joined in the next.

struct ServiceInner {
    active: bool,
    handle: Option<lockcheck::thread::JoinHandle<()>>,
}

/// `worker_first`: the worker blocks on the guard before the join starts (else the join waits
/// first, and the worker's read closes the cycle).
fn service(name: &'static str, fixed: bool, worker_first: bool) {
    let sp = Arc::new(RwLock::named(
        name,
        ServiceInner {
            active: true,
            handle: None,
        },
    ));
    let worker = sp.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    // The joiner, for the worker that must read only once the join waits (`!worker_first`,
    // unfixed): its join's class (the spawn site) is the same in every test that calls this, so
    // the wait is told by the thread.
    let joiner = (!fixed && !worker_first).then(lockcheck::__private::waiter_id);
    let body = move || loop {
        let _ = ready_tx.send(());
        if let Some(joiner) = joiner {
            // The join waits first (holding the write), then this read closes the cycle. A
            // 20 ms sleep did not make sure of it on a loaded machine.
            support::wait_until("the joiner waits in its join", || {
                support::blocked_by(joiner, lockcheck::LockKind::End) == 1
            });
        }
        let active = worker.read().active; // SERVICE_ACTIVE
        if !active {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let handle = lockcheck::thread::spawn(body); // SERVICE_SPAWN
    sp.write().handle = Some(handle);
    let _ = ready_rx.recv();
    if fixed {
        let h = {
            let mut s = sp.write();
            s.active = false;
            s.handle.take()
        };
        if let Some(h) = h {
            h.join().unwrap();
        }
    } else {
        // rustdesk's `self.0.write().handle.take().map(JoinHandle::join)`, with the join called
        // directly (through `map`, a function pointer, `#[track_caller]` reports the line of
        // core's `FnOnce` shim instead of this one).
        let mut s = sp.write(); // SERVICE_STOP
        s.active = false;
        if worker_first {
            // The worker's read waits for `s` before the join (without this, a worker still in
            // its 20 ms sleep under load could come to the read after the join, and close the
            // cycle itself): the wait-for graph shows it blocked (a sleep did not make sure).
            support::wait_until("the worker's read waits for the write", || {
                support::blocked_on(name) == 1
            });
        }
        if let Some(h) = s.handle.take() {
            let _ = h.join(); // SERVICE_JOIN
        }
    }
}

fn assert_join_deadlock(name: &str, closer: &str) {
    let v = found(name);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::Deadlock);
    let classes = v[0].classes();
    let spawned = format!("end of thread spawned at tests/{}", &M.at("SERVICE_SPAWN"));
    assert_eq!(classes.len(), 2, "{classes:?}");
    assert!(classes.contains(&name), "{classes:?}");
    assert!(
        classes.iter().any(|c| c.starts_with(&spawned)),
        "{classes:?}"
    );
    let sites = v[0].sites();
    assert!(
        sites.iter().any(|s| s.contains(&M.at("SERVICE_JOIN")))
            && sites.iter().any(|s| s.contains(&M.at("SERVICE_ACTIVE"))),
        "{sites:?}"
    );
    assert!(
        v[0].message.contains(&M.at(closer)) || v[0].edges[0].site.contains(&M.at(closer)),
        "{}",
        v[0].message
    );
}

#[test]
fn joining_a_worker_blocked_on_the_joiners_lock_is_a_deadlock() {
    setup();
    // The joiner closes the cycle: it panics at the join, its guard unwinds, the worker ends.
    // The joiner is itself started by `lockcheck::thread` (it holds its own end too, which the
    // report leaves out of what else it holds).
    let r = watchdog(10, || {
        let joiner = lockcheck::thread::spawn(|| service("rustdesk.service", false, true));
        if let Err(e) = joiner.join() {
            std::panic::resume_unwind(e);
        }
    });
    let msg = r.expect_err("reported before it hangs");
    assert!(msg.contains("deadlock"), "{msg}");
    assert!(msg.contains(&M.at("SERVICE_JOIN")), "{msg}");
    assert_join_deadlock("rustdesk.service", "SERVICE_JOIN");
    let v = found("rustdesk.service");
    assert!(!v[0].message.contains("also holding"), "{}", v[0].message);
    assert!(v[0].edges.iter().all(|e| e.other_held.is_empty()), "{v:#?}");
}

#[test]
fn a_worker_blocking_on_the_lock_of_its_waiting_joiner_is_a_deadlock() {
    setup();
    // The worker closes the cycle: it panics at its read and ends; the join returns its panic.
    watchdog(10, || service("rustdesk.service.late", false, false)).unwrap();
    assert_join_deadlock("rustdesk.service.late", "SERVICE_ACTIVE");
}

#[test]
fn joining_after_the_guard_is_dropped_is_silent() {
    setup();
    watchdog(20, || service("rustdesk.fixed", true, false)).unwrap();
    assert!(found("rustdesk.fixed").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 8. A condvar wait made while holding a second lock that the notifier must take before it can
//    notify: the waiter sleeps holding it, the notifier blocks on it. (The opt-in condvar rule,
//    `set_condvar_check`; the wait here has a timeout so that the test ends.)
//    Source: Amanieu/parking_lot#87 ("Support Condvar in deadlock_detection", Parity's
//    example of a waiter holding a lock its notifier needs).
//    Look-alike: the waiter holds only the condvar's own mutex.

#[test]
fn a_condvar_wait_holding_the_notifiers_lock_is_reported_and_its_look_alike_is_not() {
    setup();
    lockcheck::watchdog::set_condvar_check(true);
    watchdog(20, || {
        let client = Arc::new(Mutex::named("parity.client", ()));
        let queue = Arc::new((
            Mutex::named("parity.queue", false),
            lockcheck::Condvar::new(),
        ));
        let notify = |client: &Mutex<()>, queue: &(Mutex<bool>, lockcheck::Condvar)| {
            let _c = client.lock();
            *queue.0.lock() = true;
            queue.1.notify_all();
        };
        // The notifier's habit, seen once.
        notify(&client, &queue);
        *queue.0.lock() = false;
        // The hazard.
        let (c2, q2) = (client.clone(), queue.clone());
        let notifier = std::thread::spawn(move || {
            // After the waiter took the client lock: it then waits on the condvar before this
            // notify can come (a 20 ms sleep let the notify come first on a loaded machine, and
            // the waiter found the flag set and never waited).
            support::wait_until("the waiter takes the client lock", || c2.is_locked());
            notify(&c2, &q2);
        });
        {
            let _c = client.lock(); // PARITY_CLIENT
            let mut ready = queue.0.lock();
            let limit = Duration::from_millis(200);
            while !*ready {
                let r = queue.1.wait_for(&mut ready, limit); // PARITY_WAIT
                if r.timed_out() {
                    break;
                }
            }
        }
        notifier.join().unwrap();
    })
    .unwrap();
    let v: Vec<_> = found("parity.client")
        .into_iter()
        .filter(|v| matches!(v.kind, ViolationKind::CondvarWait { .. }))
        .collect();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].message.contains(&M.at("PARITY_WAIT")),
        "{}",
        v[0].message
    );

    // The look-alike.
    watchdog(20, || {
        let queue = Arc::new((
            Mutex::named("parity.fixed.queue", false),
            lockcheck::Condvar::new(),
        ));
        let q2 = queue.clone();
        let notifier = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            *q2.0.lock() = true;
            q2.1.notify_all();
        });
        let mut ready = queue.0.lock();
        while !*ready {
            queue.1.wait(&mut ready);
        }
        drop(ready);
        notifier.join().unwrap();
    })
    .unwrap();
    assert!(found("parity.fixed.queue").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 9. Locks taken in a `thread_local!` destructor, at thread exit: lockcheck keeps its own
//    per-thread state in thread-locals, which may be gone by then. Such a lock must work (not
//    panic, not abort), and an inversion made there must not hide the rest.
//    Sources: bertptrs/tracing-mutex#61 ("Allow using locks while TLS is destructed": the
//    detector panicked on drop, aborting), Amanieu/parking_lot#37 (parking_lot's primitives in
//    thread destructors), rust-lang/rust#41512 (std's TLS destructors taking a lock another
//    thread holds while it takes the loader lock).

struct Registry {
    exit: Arc<Mutex<u32>>,
    registry: Arc<Mutex<u32>>,
    /// Which copy of the code runs: a cycle through the same lines is one bug, reported once
    /// (not again for other locks), so each case has lines of its own.
    late: bool,
}

impl Drop for Registry {
    fn drop(&mut self) {
        if self.late {
            let _e = self.exit.lock();
            *self.registry.lock() += 1; // TLS_LATE_REGISTRY
        } else {
            let _e = self.exit.lock();
            *self.registry.lock() += 1; // TLS_EARLY_REGISTRY
        }
    }
}

thread_local! {
    static REGISTRY: std::cell::RefCell<Option<Registry>> = const { std::cell::RefCell::new(None) };
}

/// Runs a thread whose thread-local `Registry` takes `exit` then `registry` at thread exit; with
/// `lock_first`, the thread takes a lock before setting the thread-local (so lockcheck's own
/// per-thread state is made first; destructors run in reverse order of registration). Then the
/// main side takes them in the other order: an inversion, if the destructor's order was seen.
fn tls_dtor(prefix: (&'static str, &'static str), lock_first: bool) -> Result<(), String> {
    let exit = Arc::new(Mutex::named(prefix.0, 0));
    let registry = Arc::new(Mutex::named(prefix.1, 0));
    let (e, r) = (exit.clone(), registry.clone());
    std::thread::spawn(move || {
        if lock_first {
            drop(e.lock());
        }
        REGISTRY.with(|t| {
            *t.borrow_mut() = Some(Registry {
                exit: e,
                registry: r,
                late: lock_first,
            })
        });
    })
    .join()
    .expect("the thread (and its thread-local destructors) ends without a panic");
    assert_eq!(*registry.lock(), 1);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _r = registry.lock();
        if lock_first {
            let _e = exit.lock(); // TLS_LATE_REVERSE
        } else {
            let _e = exit.lock(); // TLS_EARLY_REVERSE
        }
    }))
    .map_err(|e| support::panic_message(&*e))
}

fn assert_tls_inversion(name: &str, case: &str) {
    let v = found(name);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
    let sites = v[0].sites();
    assert!(
        sites
            .iter()
            .any(|s| s.contains(&M.at(&format!("TLS_{case}_REGISTRY"))))
            && sites
                .iter()
                .any(|s| s.contains(&M.at(&format!("TLS_{case}_REVERSE")))),
        "{sites:?}"
    );
}

#[test]
fn an_inversion_made_in_a_thread_local_destructor_is_reported() {
    setup();
    watchdog(20, || {
        let r = tls_dtor(("tls.early.exit", "tls.early.registry"), false);
        assert!(r.is_err(), "the reverse order must be refused (early)");
        let r = tls_dtor(("tls.late.exit", "tls.late.registry"), true);
        assert!(r.is_err(), "the reverse order must be refused (late)");
    })
    .unwrap();
    assert_tls_inversion("tls.late.exit", "LATE");
    assert_tls_inversion("tls.early.exit", "EARLY");
}

#[test]
fn one_order_in_a_thread_local_destructor_and_elsewhere_is_silent() {
    setup();
    watchdog(20, || {
        let exit = Arc::new(Mutex::named("tls.same.exit", 0));
        let registry = Arc::new(Mutex::named("tls.same.registry", 0));
        let (e, r) = (exit.clone(), registry.clone());
        std::thread::spawn(move || {
            REGISTRY.with(|t| {
                *t.borrow_mut() = Some(Registry {
                    exit: e,
                    registry: r,
                    late: false,
                })
            });
        })
        .join()
        .unwrap();
        let _e = exit.lock();
        let _r = registry.lock();
    })
    .unwrap();
    assert!(found("tls.same.exit").is_empty());
}

/// The look-alike most programs are: a lock held while joining workers that never wait for
/// it. Silent, and each join ends when its thread does (woken by the thread's end, not by the
/// wait-for graph's 10 ms look).
#[test]
fn joining_many_workers_while_holding_a_lock_they_never_take_is_silent_and_prompt() {
    setup();
    watchdog(60, || {
        let state = Mutex::named("join.many.state", 0u32);
        let other = Arc::new(Mutex::named("join.many.other", 0u32));
        let join_one = || {
            let o = other.clone();
            let start = std::time::Instant::now();
            lockcheck::thread::spawn(move || *o.lock() += 1)
                .join()
                .unwrap();
            start.elapsed()
        };
        // Each join holding the lock next to the same join holding nothing (not watched, no
        // polling): what spawning and joining cost on this machine at that moment. A fixed
        // 1.5 s for the 200 failed on a loaded machine (3 of 3 runs on one core shared with two
        // busy loops), and so did a bare run before the held one (the load changed between).
        let (mut bare, mut took) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..200 {
            bare += join_one();
            let g = state.lock();
            took += join_one();
            drop(g);
        }
        // Polling alone would add about 200 x 10 ms (2 s) to the bare joins.
        let limit = bare * 2 + Duration::from_millis(1000);
        assert!(took < limit, "{took:?} holding a lock, {bare:?} without");
        assert_eq!(*other.lock(), 400);
    })
    .unwrap();
    assert!(found("join.many.state").is_empty());
    assert!(found("join.many.other").is_empty());
}
