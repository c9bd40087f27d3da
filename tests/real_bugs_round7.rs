//! Real deadlocks from public Rust projects, seventh round: a spin lock re-entered by its holder
//! (a `try_lock` retried until it succeeds, on a lock the thread holds itself: pyo3's
//! `ReleasePool`; found by a new rule, a try failed `TRY_RETRIES` times in a row is checked as a
//! blocking request, which also finds a spinner against a thread blocked on its lock), two read
//! guards of one channel's lock alive in one span's fields while the sender writes (zebra's chain
//! tip `watch` channel), a cache's eviction listener run under the entry's lock and writing the
//! entry back (moka), a cycle of two channels and no lock (notify's `watch()` waiting for the
//! reply of a watcher thread blocked on the full event channel the caller drains), and a
//! watcher's API called from its own event handler under the poller's lock (notify's
//! `PollWatcher`). Kinds or projects the first six rounds (`tests/async/real_bugs.rs`,
//! `tests/real_bugs_round2.rs`..`round6.rs`, `examples/scenarios.rs`) did not cover. Each is
//! reduced to its locking skeleton (not their code), cites its source, and is paired with the
//! look-alike the project's fix (or advice) turned it into, which must stay silent. Every
//! scenario runs under a watchdog: a miss that really hangs fails the test instead of hanging
//! CI.

#[path = "support/real_bugs.rs"]
mod real_bugs;
mod support;

use lockcheck::{Mutex, RwLock, ViolationKind};
use real_bugs::{one_of_kind, setup, stopped};
use std::collections::HashMap;
use std::sync::{mpsc, Arc};
use support::markers::Markers;
use support::{found, watchdog};

/// This file's marker comments.
const M: Markers = Markers::new("real_bugs_round7.rs", include_str!("real_bugs_round7.rs"));

// ---------------------------------------------------------------------------------------------
// 1. A spin lock re-entered by the thread that holds it: pyo3 0.10.0 replaced the `ReleasePool`'s
//    `parking_lot::Mutex` with an `AtomicBool` spin lock (a compare-and-swap retried until it
//    succeeds: a `try_lock` loop). `update_counts` held it while it decremented the reference
//    counts of the objects queued for release; a count reaching zero runs the object's
//    deallocator, which drops a `Py<T>` it owned, which queues that pointer: `register_pointer`
//    spins on the lock its own thread holds, forever, at 100% CPU. A `try_lock` never blocks,
//    so no wait was ever seen: lockcheck now takes a try of a lock the thread holds, failed
//    `OWN_TRY_RETRIES` times in a row at one site with the same held set, for a self-deadlock.
//    Source: PyO3/pyo3#916 ("Avoid spinlocks": the hang, and the line `register_pointer` spins
//    at, during a drop inside `update_counts`), introduced by PyO3/pyo3#899, fixed by
//    PyO3/pyo3#924 ("Fix deadlock in update_counts": the pending pointers are taken out of the
//    lock, which is released before the counts are decremented).
//    Look-alikes: the fix; and a try of a held lock that gives up (a `Debug` printing it, a
//    bounded retry): a few failures are no wait.

/// A Python object: dropping its last reference deallocates it, which drops the `Py<T>` handles
/// it owns (each queued in the pool).
struct PyObject {
    owns: Vec<PyObject>,
}

struct ReleasePool {
    /// The spin lock and the pointers it guards.
    pending: Mutex<Vec<PyObject>>,
    /// pyo3#924's way: take the pointers out, release the lock, then drop them.
    takes_first: bool,
}

impl ReleasePool {
    /// The spin lock: a try retried until it succeeds (`while locked.compare_and_swap(..)`).
    fn spin(&self) -> lockcheck::MutexGuard<'_, Vec<PyObject>> {
        loop {
            let tried = self.pending.try_lock(); // PYO3_SPIN
            if let Some(g) = tried {
                return g;
            }
            std::hint::spin_loop();
        }
    }

    /// A `Py<T>` dropped without the GIL: queued for `update_counts`.
    fn register_pointer(&self, obj: PyObject) {
        self.spin().push(obj);
    }

    /// `Py_DECREF` of a queued pointer whose count reaches zero: its deallocator drops the
    /// handles it owns, which queue themselves.
    fn decref(&self, obj: PyObject) {
        for owned in obj.owns {
            self.register_pointer(owned);
        }
    }

    /// Releases the queued pointers (when the GIL is next taken).
    fn update_counts(&self) {
        if self.takes_first {
            let pending = std::mem::take(&mut *self.spin());
            for obj in pending {
                self.decref(obj);
            }
        } else {
            let mut pending = self.spin();
            while let Some(obj) = pending.pop() {
                self.decref(obj);
            }
        }
    }

    fn queued(&self) -> usize {
        self.pending.lock().len()
    }
}

fn release_pool(class: &'static str, takes_first: bool) -> ReleasePool {
    let pool = ReleasePool {
        pending: Mutex::named(class, Vec::new()),
        takes_first,
    };
    // A list object whose deallocation releases the item it holds.
    pool.register_pointer(PyObject {
        owns: vec![PyObject { owns: vec![] }],
    });
    pool
}

#[test]
fn a_spin_lock_retried_by_the_thread_that_holds_it_is_a_self_deadlock() {
    setup();
    let msg = stopped(|| release_pool("pyo3.release_pool", false).update_counts());
    assert!(msg.contains("self-deadlock"), "{msg}");
    one_of_kind(
        &M,
        &found("pyo3.release_pool"),
        ViolationKind::SelfDeadlock,
        &["PYO3_SPIN"],
    );
    let v = &found("pyo3.release_pool")[0];
    assert!(v.edges[0].held_site.contains(&M.at("PYO3_SPIN")), "{v:#?}");
}

#[test]
fn pending_pointers_taken_out_before_the_decrefs_and_a_try_that_gives_up_are_silent() {
    setup();
    watchdog(20, || {
        let pool = release_pool("pyo3.fixed.release_pool", true);
        pool.update_counts();
        // The item the list released is queued for the next round.
        assert_eq!(pool.queued(), 1);
        pool.update_counts();
        assert_eq!(pool.queued(), 0);
    })
    .unwrap();
    assert!(found("pyo3.fixed.release_pool").is_empty());

    // A held lock printed (its `Debug` peeks with a try) more times than a spin is allowed, and
    // a bounded retry of a held lock: each gives up, nothing hangs.
    watchdog(20, || {
        let m = Mutex::named("pyo3.peeked", 7);
        let sm = lockcheck::sync::Mutex::new(7);
        let rw = RwLock::named("pyo3.peeked.rw", 7);
        let _g = m.lock();
        let _sg = sm.lock().unwrap();
        let _w = rw.write();
        for _ in 0..2 * lockcheck_core::trace::TRY_RETRIES {
            assert!(format!("{m:?}").contains("<locked>"));
            assert!(format!("{sm:?}").contains("<locked>"));
            assert!(format!("{rw:?}").contains("<locked>"));
        }
        for _ in 0..3 {
            assert!(m.try_lock().is_none());
        }
    })
    .unwrap();
    assert!(
        found("pyo3.peeked").is_empty(),
        "{:#?}",
        found("pyo3.peeked")
    );
}

/// The textbook way out of the cycle below: hold A, *try* B, and when it fails give A back and
/// start over. This thread never waits for B while holding A, so the other thread taking B then A
/// (blocking) is no inversion, however many rounds the back-off takes: every round's try fails at
/// the same site under the same held set, but over a new hold of A each time, so the failures are
/// no retry loop (a streak counts only while every held lock stays held).
#[test]
fn a_try_lock_back_off_that_gives_its_lock_back_between_tries_is_silent() {
    setup();
    let retries = lockcheck_core::trace::TRY_RETRIES;
    watchdog(30, move || {
        let a = Arc::new(Mutex::named("backoff.a", 0u32));
        let b = Arc::new(Mutex::named("backoff.b", 0u32));
        let (a2, b2) = (a.clone(), b.clone());
        let (held_tx, held_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel();
        let other = std::thread::spawn(move || {
            let mut y = b2.lock();
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            *a2.lock() += 1; // B then A, blocking
            *y += 1;
        });
        held_rx.recv().unwrap();
        let mut failed = 0u32;
        loop {
            let mut x = a.lock();
            if let Some(mut y) = b.try_lock() {
                *x += 1;
                *y += 1;
                break;
            }
            drop(x);
            failed += 1;
            if failed == retries + 1 {
                go_tx.send(()).unwrap();
            }
            std::thread::yield_now();
        }
        other.join().unwrap();
        assert!(failed > retries, "{failed}");
        assert_eq!(*a.lock(), 2);
        assert_eq!(*b.lock(), 2);
    })
    .unwrap();
    assert!(found("backoff.a").is_empty(), "{:#?}", found("backoff.a"));
    assert!(found("backoff.b").is_empty(), "{:#?}", found("backoff.b"));
}

/// The same spin on another thread's lock is a plain wait that ends: silent.
#[test]
fn a_spin_on_a_lock_another_thread_holds_is_silent() {
    setup();
    watchdog(20, || {
        let m = Arc::new(Mutex::named("pyo3.contended", 0u32));
        let (held_tx, held_rx) = mpsc::channel();
        let m2 = m.clone();
        let holder = std::thread::spawn(move || {
            let mut g = m2.lock();
            held_tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(200));
            *g += 1;
        });
        held_rx.recv().unwrap();
        let mut spins = 0u64;
        let g = loop {
            if let Some(g) = m.try_lock() {
                break g;
            }
            spins += 1;
            std::thread::yield_now();
        };
        assert_eq!(*g, 1);
        assert!(spins > 0);
        drop(g);
        holder.join().unwrap();
    })
    .unwrap();
    assert!(found("pyo3.contended").is_empty());
}

/// Two threads, one spinning on the other's lock while holding its own, the other blocking on
/// it: a spin waits as `lock` does, so the cycle is found (before, neither the order nor the
/// wait was seen, and this hung). The thread that closes it panics, which lets the other go on.
#[test]
fn a_spin_on_a_lock_whose_holder_waits_for_the_spinners_lock_is_reported() {
    setup();
    let a = Arc::new(Mutex::named("spin.live.a", 0u32));
    let b = Arc::new(Mutex::named("spin.live.b", 0u32));
    let (a2, b2) = (a.clone(), b.clone());
    let (tx, rx) = mpsc::channel();
    watchdog(30, move || {
        let (held_tx, held_rx) = mpsc::channel();
        let blocker = std::thread::spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _y = b2.lock();
                held_tx.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(100));
                let _x = a2.lock(); // SPIN_LIVE_BLOCK
            }))
            .map_err(|e| support::panic_message(&*e))
        });
        let spinner = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _x = a.lock();
            held_rx.recv().unwrap();
            let _y = loop {
                let tried = b.try_lock(); // SPIN_LIVE_TRY
                if let Some(g) = tried {
                    break g;
                }
                std::thread::yield_now();
            };
        }))
        .map_err(|e| support::panic_message(&*e));
        tx.send((spinner, blocker.join().unwrap())).unwrap();
    })
    .unwrap();
    let (r1, r2) = rx.recv().unwrap();
    assert!(r1.is_err() || r2.is_err(), "{r1:?} {r2:?}");
    let v: Vec<_> = found("spin.live.a")
        .into_iter()
        .filter(|v| {
            matches!(
                v.kind,
                ViolationKind::LockOrderInversion | ViolationKind::Deadlock
            )
        })
        .collect();
    assert!(!v.is_empty(), "{:#?}", found("spin.live.a"));
    for v in &v {
        M.assert_sites(v, &["SPIN_LIVE_TRY", "SPIN_LIVE_BLOCK"]);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Two read guards of one channel's lock alive in one span's fields: tokio's `watch` channel
//    keeps its value under an `RwLock`; `borrow()` returns a read guard. zebra's chain tip
//    receiver was borrowed by two fields of one `#[instrument]` attribute (the span's fields
//    are recorded while both guards are alive), and the chain tip sender writes: a writer
//    queued between the two reads makes the second wait behind it, and the writer waits for
//    the first (a recursive read, a real hang in production: one thread waiting for a first
//    read, one for a second, one for the write).
//    Source: ZcashFoundation/zebra#3378 ("Fix deadlock in chain tip watch channel", fixing
//    #3379; the same hazard is documented on `watch::Receiver::borrow` by tokio-rs/tokio#4360).
//    Look-alike (the fix): `with_chain_tip_block`, one borrow per scope, whose closure reads
//    both fields.

#[derive(Clone, Copy, Default)]
struct ChainTipBlock {
    height: u32,
    hash: u64,
}

/// The `watch` channel's shared value.
struct ChainTip {
    shared: RwLock<Option<ChainTipBlock>>,
}

impl ChainTip {
    /// `borrow()` of the receiver: a read guard.
    fn borrow(&self) -> lockcheck::RwLockReadGuard<'_, Option<ChainTipBlock>> {
        self.shared.read() // ZEBRA_BORROW
    }

    /// The fix: one borrow, and the block given to a closure.
    fn with_chain_tip_block<R>(&self, f: impl FnOnce(&ChainTipBlock) -> R) -> Option<R> {
        self.shared.read().as_ref().map(f) // ZEBRA_WITH_BLOCK
    }

    /// The sender's `send`: a write.
    fn send(&self, block: ChainTipBlock) {
        *self.shared.write() = Some(block);
    }
}

/// The span of `#[instrument(fields(height = ?tip.borrow().height, hash = ?tip.borrow().hash))]`:
/// both fields formatted while both guards live (`fixed`: `with_chain_tip_block`).
fn instrumented_span(tip: &ChainTip, fixed: bool) -> String {
    if fixed {
        tip.with_chain_tip_block(|b| format!("height={} hash={}", b.height, b.hash))
            .unwrap_or_default()
    } else {
        format!(
            "height={:?} hash={:?}",
            tip.borrow().map(|b| b.height),
            tip.borrow().map(|b| b.hash)
        )
    }
}

fn chain_tip_scenario(class: &'static str, fixed: bool) -> Result<(), String> {
    let tip = Arc::new(ChainTip {
        shared: RwLock::named(class, None),
    });
    // The sender: the chain tip changes as blocks are committed.
    let sender = {
        let tip = tip.clone();
        std::thread::spawn(move || {
            for height in 0..3 {
                tip.send(ChainTipBlock {
                    height,
                    hash: u64::from(height) * 7,
                });
            }
        })
    };
    sender.join().unwrap();
    let (tx, rx) = mpsc::channel();
    watchdog(20, move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            instrumented_span(&tip, fixed)
        }));
        tx.send(r.map_err(|e| support::panic_message(&*e))).unwrap();
    })
    .unwrap();
    rx.recv()
        .unwrap()
        .map(|span| assert!(span.contains("height=")))
}

#[test]
fn two_borrows_of_a_watch_channel_in_one_span_are_a_recursive_read() {
    setup();
    let msg = chain_tip_scenario("zebra.chain_tip", false).expect_err("a recursive read");
    assert!(msg.contains("recursive"), "{msg}");
    one_of_kind(
        &M,
        &found("zebra.chain_tip"),
        ViolationKind::RecursiveRead,
        &["ZEBRA_BORROW"],
    );
}

#[test]
fn one_borrow_per_scope_is_silent() {
    setup();
    chain_tip_scenario("zebra.fixed.chain_tip", true).unwrap();
    assert!(found("zebra.fixed.chain_tip").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3. A cache's eviction listener run under the entry's lock, writing the entry back: moka's
//    `sync::Cache` delivers eviction notifications (in its default, immediate mode) while it
//    holds the key's lock, so that notifications and writes of one key stay ordered; a
//    listener that inserts the evicted (or a modified) entry back into the cache takes that
//    key's lock again.
//    Source: moka-rs/moka#298 ("How can i add something to the cache inside the
//    eviction_listener?": "it may lead to a deadlock"; the maintainer's way: send the evicted
//    entry through a channel to a thread that inserts it).
//    Look-alike (that way): the listener sends, a separate thread re-inserts.

type Listener = Box<dyn Fn(&Cache, u32, String) + Send + Sync>;

struct Cache {
    /// Per-key locks (moka's `KeyLockMap`), made on demand.
    key_locks: Mutex<HashMap<u32, Arc<Mutex<()>>>>,
    entries: Mutex<HashMap<u32, String>>,
    listener: Listener,
    class: &'static str,
}

impl Cache {
    fn key_lock(&self, key: u32) -> Arc<Mutex<()>> {
        self.key_locks
            .lock()
            .entry(key)
            .or_insert_with(|| Arc::new(Mutex::named(self.class, ())))
            .clone()
    }

    /// `insert`: under the key's lock, the old value (if any) is replaced, and the listener is
    /// told (`RemovalCause::Replaced`) before the lock is released.
    fn insert(&self, key: u32, value: String) {
        let lock = self.key_lock(key);
        let _key = lock.lock(); // MOKA_KEY_LOCK
        let old = self.entries.lock().insert(key, value);
        if let Some(old) = old {
            (self.listener)(self, key, old);
        }
    }

    fn get(&self, key: u32) -> Option<String> {
        self.entries.lock().get(&key).cloned()
    }
}

fn cache(class: &'static str, listener: Listener) -> Arc<Cache> {
    Arc::new(Cache {
        key_locks: Mutex::new(HashMap::new()),
        entries: Mutex::new(HashMap::new()),
        listener,
        class,
    })
}

#[test]
fn an_eviction_listener_that_inserts_under_the_key_lock_is_a_self_deadlock() {
    setup();
    let msg = stopped(|| {
        let c = cache(
            "moka.key_lock",
            Box::new(|cache, key, old| {
                if !old.ends_with('\'') {
                    cache.insert(key, format!("{old}'"));
                }
            }),
        );
        c.insert(1, "one".into());
        c.insert(1, "uno".into());
    });
    assert!(msg.contains("self-deadlock"), "{msg}");
    one_of_kind(
        &M,
        &found("moka.key_lock"),
        ViolationKind::SelfDeadlock,
        &["MOKA_KEY_LOCK"],
    );
}

#[test]
fn an_eviction_listener_that_hands_the_entry_to_a_thread_is_silent() {
    setup();
    watchdog(20, || {
        let (tx, rx) = lockcheck::sync::mpsc::channel::<(u32, String)>();
        let tx = Mutex::new(tx);
        let c = cache(
            "moka.fixed.key_lock",
            Box::new(move |_, key, old| {
                if !old.ends_with('\'') {
                    tx.lock().send((key, format!("{old}'"))).unwrap();
                }
            }),
        );
        let c2 = c.clone();
        let reinsert = std::thread::spawn(move || {
            let (key, value) = rx.recv().unwrap();
            c2.insert(key, value);
        });
        c.insert(1, "one".into());
        c.insert(1, "uno".into());
        reinsert.join().unwrap();
        assert_eq!(c.get(1).as_deref(), Some("one'"));
    })
    .unwrap();
    assert!(
        found("moka.fixed.key_lock").is_empty(),
        "{:#?}",
        found("moka.fixed.key_lock")
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A cycle of two channels and no lock: notify's watchers are actors; the watcher thread runs
//    the user's event handler, which here sends each event into a bounded channel, and
//    `watch()` / `unwatch()` send a command to the watcher thread and wait for its reply. A
//    consumer that calls `watch()` in response to an event waits for the reply while the
//    watcher thread is blocked sending the next event into the full channel that only this
//    consumer drains. The consumer holds no lock: it owns the event channel's receiving end,
//    which the full send waits for (a bounded channel is a lock held by its receiving thread),
//    and its receive of the reply waits for the reply's sender, which travels inside the
//    command, never used yet (assumed with the blocked watcher thread, after five seconds).
//    Source: notify-rs/notify#463 ("Watching and Unwatching files can deadlock when consuming
//    events with an unbounded channel": the event handler fills a bounded channel, the
//    caller's `watch()` waits for the actor, which waits for the channel).
//    Look-alike: the events through an unbounded channel (the watcher thread never waits).

/// `watch(path)`'s command, with the channel of its reply.
enum Command {
    Watch(lockcheck::sync::mpsc::Sender<()>),
}

/// The watcher thread: handles commands, then emits events through the handler. `bounded`:
/// the handler sends into a channel of capacity 1, else an unbounded one.
fn notify_scenario(bounded: bool) -> Result<usize, String> {
    use lockcheck::sync::mpsc as lmpsc;
    let (cmd_tx, cmd_rx) = lmpsc::channel::<Command>();
    enum Events {
        Bounded(lmpsc::SyncSender<u32>),
        Unbounded(lmpsc::Sender<u32>),
    }
    let (events, event_rx) = if bounded {
        let (tx, rx) = lmpsc::sync_channel(1);
        (Events::Bounded(tx), rx)
    } else {
        let (tx, rx) = lmpsc::channel();
        (Events::Unbounded(tx), rx)
    };
    let watcher = std::thread::spawn(move || {
        let mut watched = 1;
        for event in 0..4u32 {
            for cmd in cmd_rx.try_iter() {
                let Command::Watch(reply) = cmd;
                watched += 1;
                let _ = reply.send(());
            }
            // The user's event handler.
            let sent = match &events {
                Events::Bounded(tx) => tx.send(event), // NOTIFY_EVENT_SEND
                Events::Unbounded(tx) => tx.send(event),
            };
            if sent.is_err() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Late commands still get their reply.
        while let Ok(Command::Watch(reply)) =
            cmd_rx.recv_timeout(std::time::Duration::from_millis(200))
        {
            watched += 1;
            let _ = reply.send(());
        }
        watched
    });
    // The consumer: on the first event, `watch()` another path and wait for the reply.
    let consumer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let first = event_rx.recv().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let (reply_tx, reply_rx) = lmpsc::channel();
        assert_eq!(first, 0);
        cmd_tx.send(Command::Watch(reply_tx)).unwrap();
        reply_rx.recv().unwrap(); // NOTIFY_WAIT_REPLY
        let rest: Vec<u32> = event_rx.iter().collect();
        rest.len()
    }))
    .map_err(|e| support::panic_message(&*e));
    // A consumer stopped by a report gives the channels up: the watcher thread's send fails.
    drop((cmd_tx, event_rx));
    let watched = watcher.join().unwrap();
    consumer.map(|_| watched)
}

#[test]
fn a_watch_call_waiting_for_an_actor_blocked_on_its_full_event_channel_is_reported() {
    setup();
    let (tx, rx) = mpsc::channel();
    watchdog(30, move || tx.send(notify_scenario(true)).unwrap()).unwrap();
    let msg = rx.recv().unwrap().expect_err("a deadlock of two channels");
    assert!(msg.contains("deadlock"), "{msg}");
    let v: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| v.kind == ViolationKind::Deadlock)
        .filter(|v| {
            support::markers::sites(v)
                .iter()
                .any(|s| s.contains(&M.at("NOTIFY_WAIT_REPLY")))
        })
        .collect();
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["NOTIFY_WAIT_REPLY", "NOTIFY_EVENT_SEND"]);
}

#[test]
fn events_through_an_unbounded_channel_are_silent() {
    setup();
    let (tx, rx) = mpsc::channel();
    watchdog(30, move || tx.send(notify_scenario(false)).unwrap()).unwrap();
    assert_eq!(rx.recv().unwrap(), Ok(2));
}

// ---------------------------------------------------------------------------------------------
// 5. A watcher's API called from its own event handler: notify's `PollWatcher` thread rescans
//    the watched paths holding its `watches` and `data_builder` mutexes, and the rescan runs the
//    user's event handler (through the data builder's emitter). A handler that adds a watch
//    (`watcher.watch(path)`, on the watcher it was given through an `Arc<Mutex<Option<_>>>`)
//    takes `data_builder` again on the same thread: the poll thread hangs (std's mutex).
//    Source: notify-rs/notify#410 ("PollWatcher may deadlock when user try change watch path in
//    event_handler", with the program). Look-alike: the handler hands the path to another thread,
//    which calls `watch`.

/// The user's event handler (the data builder's emitter calls it).
type EventHandler = Box<dyn FnMut(&str) + Send>;

struct PollWatcher {
    watches: Mutex<Vec<String>>,
    data_builder: Mutex<EventHandler>,
}

impl PollWatcher {
    /// `watch(path)`: the initial scan builds the path's data with the data builder.
    fn watch(&self, path: &str) {
        let _builder = self.data_builder.lock(); // NOTIFY_WATCH_BUILDER
        self.watches.lock().push(path.to_owned());
    }

    /// One round of the poll thread: every watch rescanned, events emitted to the handler.
    fn poll_once(&self) {
        let watches = self.watches.lock().clone();
        let mut handler = self.data_builder.lock(); // NOTIFY_POLL_BUILDER
        for path in &watches {
            (*handler)(path);
        }
    }
}

fn poll_watcher(
    class: &'static str,
    hand_over: Option<lockcheck::sync::mpsc::Sender<String>>,
) -> Arc<PollWatcher> {
    // The user's `Arc<Mutex<Option<PollWatcher>>>`, filled once the watcher exists.
    let slot: Arc<Mutex<Option<Arc<PollWatcher>>>> = Arc::new(Mutex::new(None));
    let in_handler = slot.clone();
    let hand_over = hand_over.map(Mutex::new);
    let handler = move |path: &str| {
        if path != "mew.txt" {
            return;
        }
        match &hand_over {
            Some(tx) => {
                // Later rounds find the adder gone: nothing more to add.
                let _ = tx.lock().send("bow.txt".to_owned());
            }
            None => {
                if let Some(w) = in_handler.lock().as_ref() {
                    w.watch("bow.txt");
                }
            }
        }
    };
    let watcher = Arc::new(PollWatcher {
        watches: Mutex::new(vec!["mew.txt".to_owned()]),
        data_builder: Mutex::named(class, Box::new(handler)),
    });
    *slot.lock() = Some(watcher.clone());
    watcher
}

#[test]
fn a_poll_watcher_watched_from_its_event_handler_is_a_self_deadlock() {
    setup();
    let msg = stopped(|| poll_watcher("notify.data_builder", None).poll_once());
    assert!(msg.contains("self-deadlock"), "{msg}");
    one_of_kind(
        &M,
        &found("notify.data_builder"),
        ViolationKind::SelfDeadlock,
        &["NOTIFY_WATCH_BUILDER", "NOTIFY_POLL_BUILDER"],
    );
}

#[test]
fn a_watch_handed_to_another_thread_from_the_event_handler_is_silent() {
    setup();
    watchdog(20, || {
        let (tx, rx) = lockcheck::sync::mpsc::channel();
        let w = poll_watcher("notify.fixed.data_builder", Some(tx));
        let w2 = w.clone();
        let adder = std::thread::spawn(move || {
            let path = rx.recv().unwrap();
            w2.watch(&path);
        });
        w.poll_once();
        adder.join().unwrap();
        w.poll_once();
        assert_eq!(w.watches.lock().len(), 2);
    })
    .unwrap();
    assert!(
        found("notify.fixed.data_builder").is_empty(),
        "{:#?}",
        found("notify.fixed.data_builder")
    );
}
