//! Real deadlocks from public Rust projects, sixth round: user code run under a re-entrant lock
//! (std's stdout and stderr locks held while an argument formats itself, which prints on the
//! other stream), user code run under a plain logger lock (a `Debug` impl that logs), a lock given
//! up and taken back inside a one-time initializer (pyo3's GIL released in a `lazy_static`),
//! `PartialEq` impls that lock both sides (compared with itself: a recursive read; two graphs
//! compared both ways: a read-read inversion between two locks of one class, which a writer
//! turns into a deadlock), guard temporaries of a `while` condition alive across its `||`, and
//! a mutex against the read side of an `RwLock` whose cycle closes only through a third thread's
//! write (wgpu's snatch lock). Kinds the first five rounds (`tests/async/real_bugs.rs`,
//! `tests/real_bugs_round2.rs`..`round5.rs`, `examples/scenarios.rs`) did not cover. Each is
//! reduced to its locking skeleton (not their code), cites its source, and is paired with the
//! look-alike the project's fix turned it into, which must stay silent. Every scenario runs under
//! a watchdog: a miss that really hangs fails the test instead of hanging CI.

#[path = "support/real_bugs.rs"]
mod real_bugs;
mod support;

use lockcheck::{Mutex, ReentrantMutex, RwLock, ViolationKind};
use real_bugs::{one_of_kind, setup, stopped};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::markers::Markers;
use support::{found, inversions, two_threads, watchdog};

/// This file's marker comments.
const M: Markers = Markers::new("real_bugs_round6.rs", include_str!("real_bugs_round6.rs"));

// ---------------------------------------------------------------------------------------------
// 1. Re-entrant locks held while user code runs: `print!` locks stdout (a re-entrant mutex) for
//    the whole `write_fmt`, so an argument's `Display` runs under it; one whose `Display` prints
//    on stderr takes stderr's lock under stdout's, and an `eprint!` of an argument that prints on
//    stdout takes them in the other order: two threads doing both deadlock.
//    Source: rust-lang/rust#82344 ("Standard streams hold a lock while executing arbitrary user
//    code", with this very program).
//    Look-alikes: the argument formatted into a `String` before the stream is locked (no user
//    code under the lock); and a thread re-entering stdout under stderr, which it took under its
//    own stdout hold (re-entry never waits: it orders nothing, both threads go stdout first).

struct Stdio {
    stdout: ReentrantMutex<RefCell<String>>,
    stderr: ReentrantMutex<RefCell<String>>,
}

/// What an argument prints while it is formatted: nothing, or on a stream, an argument of its own.
enum Arg {
    Plain,
    Print(bool, Box<Arg>),
}

impl Stdio {
    fn new(out: &'static str, err: &'static str) -> Arc<Stdio> {
        Arc::new(Stdio {
            stdout: ReentrantMutex::named(out, RefCell::new(String::new())),
            stderr: ReentrantMutex::named(err, RefCell::new(String::new())),
        })
    }

    /// `print!("{}", arg)` (`to_stderr`: `eprint!`); `format_first`: the text is made before the
    /// stream is locked.
    fn print(&self, to_stderr: bool, arg: &Arg, format_first: bool) {
        let stream = if to_stderr {
            &self.stderr
        } else {
            &self.stdout
        };
        if format_first {
            let text = self.format(arg, true);
            stream.lock().borrow_mut().push_str(&text); // STDIO_PRINT_FORMATTED
        } else {
            let out = stream.lock(); // STDIO_LOCK
            let text = self.format(arg, false);
            out.borrow_mut().push_str(&text);
        }
    }

    /// The argument's `Display`: it prints what it prints, and shows as `x`.
    fn format(&self, arg: &Arg, format_first: bool) -> String {
        if let Arg::Print(to_stderr, inner) = arg {
            self.print(*to_stderr, inner, format_first);
        }
        "x".to_owned()
    }
}

/// `Print::Err` (prints on stderr) and `Print::Out`.
fn prints_on(stderr: bool) -> Arg {
    Arg::Print(stderr, Box::new(Arg::Plain))
}

#[test]
fn stdout_and_stderr_locked_around_arguments_that_print_on_the_other_are_an_inversion() {
    setup();
    let io = Stdio::new("stdio.stdout", "stdio.stderr");
    let io2 = io.clone();
    let (r1, r2) = watchdog_pair(
        move || io.print(false, &prints_on(true), false),
        move || io2.print(true, &prints_on(false), false),
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("stderr then stdout, against stdout then stderr");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = inversions("stdio.stdout");
    assert!(!v.is_empty(), "{:#?}", found("stdio.stdout"));
    for v in &v {
        assert!(v.involves("stdio.stderr"), "{v:#?}");
        M.assert_sites(v, &["STDIO_LOCK"]);
    }
}

#[test]
fn arguments_formatted_before_the_lock_and_stdout_re_entered_under_stderr_are_silent() {
    setup();
    // Formatted first: no stream is locked while an argument runs.
    let io = Stdio::new("stdio.formatted.stdout", "stdio.formatted.stderr");
    let io2 = io.clone();
    let (r1, r2) = watchdog_pair(
        move || io.print(false, &prints_on(true), true),
        move || io2.print(true, &prints_on(false), true),
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(found("stdio.formatted.stdout").is_empty());
    // Re-entered: stdout, stderr, stdout again (held already) on one thread, stdout then stderr
    // on the other.
    let io = Stdio::new("stdio.reentered.stdout", "stdio.reentered.stderr");
    let io2 = io.clone();
    let (r1, r2) = watchdog_pair(
        move || {
            let nested = Arg::Print(true, Box::new(prints_on(false)));
            io.print(false, &nested, false);
        },
        move || io2.print(false, &prints_on(true), false),
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(
        found("stdio.reentered.stdout").is_empty(),
        "{:#?}",
        found("stdio.reentered.stdout")
    );
}

/// [`two_threads`] under the watchdog.
fn watchdog_pair<A, B>(first: A, second: B) -> (Result<(), String>, Result<(), String>)
where
    A: FnOnce() + Send + 'static,
    B: FnOnce() + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    watchdog(30, move || tx.send(two_threads(first, second)).unwrap()).unwrap();
    rx.recv().unwrap()
}

// ---------------------------------------------------------------------------------------------
// 2. A logger's lock held while the record is formatted: log4rs's appenders write under a
//    `parking_lot::Mutex` and format the record's arguments there; a custom `Debug` impl that
//    logs (through a helper that logs) locks the same appender again.
//    Source: estk/log4rs#443 ("use parking_lot::ReentrantMutex instead of parking_lot::Mutex to
//    avoid deadlock": `impl Debug for A { fn fmt(..) { foo(); .. } }` with `foo` logging).
//    Look-alike (the change it asks for): the appender's lock a `ReentrantMutex`, the nested
//    record written by the same thread before the outer one.

enum Appender {
    Plain(Mutex<Vec<String>>),
    Reentrant(ReentrantMutex<RefCell<Vec<String>>>),
}

/// A record whose formatting logs `nested` records first.
struct Record {
    nested: Vec<Record>,
}

impl Appender {
    fn append(&self, record: &Record) {
        match self {
            Appender::Plain(writer) => {
                let mut w = writer.lock(); // LOG4RS_APPEND
                let line = self.format(record);
                w.push(line);
            }
            Appender::Reentrant(writer) => {
                let w = writer.lock(); // LOG4RS_REENTRANT_APPEND
                let line = self.format(record);
                w.borrow_mut().push(line);
            }
        }
    }

    /// The record's `Debug`, which logs its nested records.
    fn format(&self, record: &Record) -> String {
        for r in &record.nested {
            self.append(r);
        }
        format!("record of {} nested", record.nested.len())
    }

    fn lines(&self) -> usize {
        match self {
            Appender::Plain(w) => w.lock().len(),
            Appender::Reentrant(w) => w.lock().borrow().len(),
        }
    }
}

fn logging_debug() -> Record {
    Record {
        nested: vec![Record { nested: vec![] }],
    }
}

#[test]
fn a_debug_impl_that_logs_under_the_appenders_mutex_is_a_self_deadlock() {
    setup();
    let msg = stopped(|| {
        Appender::Plain(Mutex::named("log4rs.appender", Vec::new())).append(&logging_debug())
    });
    assert!(msg.contains("self-deadlock"), "{msg}");
    one_of_kind(
        &M,
        &found("log4rs.appender"),
        ViolationKind::SelfDeadlock,
        &["LOG4RS_APPEND"],
    );
}

#[test]
fn a_debug_impl_that_logs_under_a_reentrant_appender_lock_is_silent() {
    setup();
    watchdog(20, || {
        let appender = Appender::Reentrant(ReentrantMutex::named(
            "log4rs.reentrant.appender",
            RefCell::new(Vec::new()),
        ));
        appender.append(&logging_debug());
        assert_eq!(appender.lines(), 2);
    })
    .unwrap();
    assert!(found("log4rs.reentrant.appender").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3. A lock given up and taken back inside a one-time initializer: pyo3's `PyDateTimeAPI` was a
//    `lazy_static` forced only under the GIL, whose initializer (`PyDateTime_IMPORT`) releases
//    the GIL and takes it back. Thread 1 holds the GIL, starts the initialization and releases
//    the GIL; thread 2 takes the GIL and waits for the initialization; thread 1 waits for the
//    GIL. The cycle: the `Once` held by thread 1 (its initializer) and requested by thread 2
//    under the GIL; the GIL held by thread 2 and requested by thread 1 inside the initializer.
//    Source: rust-lang-nursery/lazy-static.rs#116 ("lazy_static without locks?", the deadlock
//    spelled out step by step), which led to pyo3's `GILOnceCell`.
//    Look-alike: an initializer that keeps the GIL (the GIL then orders every initialization
//    and every wait for it: thread 2 waits for the GIL, not for the `Once`).

fn gil_released_in_initializer(
    gil_class: &'static str,
    releases: bool,
) -> (Result<(), String>, Result<(), String>) {
    let gil = Arc::new(Mutex::named(gil_class, ()));
    let api = Arc::new(lockcheck::sync::Once::new()); // PY_API_ONCE
    let (in_init_tx, in_init_rx) = mpsc::channel::<()>();
    let (gil2, api2) = (gil.clone(), api.clone());
    let second = std::thread::spawn(move || {
        in_init_rx.recv().unwrap();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _gil = gil2.lock(); // PY_GIL_2
            api2.call_once(|| {}); // PY_FORCE_2
        }))
        .map_err(|e| support::panic_message(&*e))
    });
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut held = Some(gil.lock()); // PY_GIL_1
        api.call_once(|| {
            if releases {
                // `PyDateTime_IMPORT`: Python code that gives up the GIL and takes it back.
                drop(held.take());
                in_init_tx.send(()).unwrap();
                // The second thread has the GIL (and then waits for this initializer, whichever
                // comes first): a sleep did not make sure of it on a loaded machine.
                support::wait_until("the second thread takes the GIL", || gil.is_locked());
                held = Some(gil.lock()); // PY_GIL_RETAKE
            } else {
                in_init_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        }); // PY_FORCE_1
        drop(held);
    }))
    .map_err(|e| support::panic_message(&*e));
    let second = second.join().unwrap();
    (first, second)
}

#[test]
fn a_gil_released_and_retaken_inside_a_lazy_initializer_is_reported() {
    setup();
    let (tx, rx) = mpsc::channel();
    watchdog(20, move || {
        tx.send(gil_released_in_initializer("pyo3.gil", true))
            .unwrap()
    })
    .unwrap();
    let (r1, r2) = rx.recv().unwrap();
    assert!(r1.is_err() || r2.is_err(), "{r1:?} {r2:?}");
    let v: Vec<_> = found("pyo3.gil")
        .into_iter()
        .filter(|v| {
            matches!(
                v.kind,
                ViolationKind::LockOrderInversion | ViolationKind::Deadlock
            )
        })
        .collect();
    assert!(!v.is_empty(), "{:#?}", found("pyo3.gil"));
    for v in &v {
        M.assert_sites(v, &["PY_GIL_RETAKE"]);
    }
}

#[test]
fn an_initializer_that_keeps_the_gil_is_silent() {
    setup();
    let (tx, rx) = mpsc::channel();
    watchdog(20, move || {
        tx.send(gil_released_in_initializer("pyo3.kept.gil", false))
            .unwrap()
    })
    .unwrap();
    let (r1, r2) = rx.recv().unwrap();
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(found("pyo3.kept.gil").is_empty());
}

/// The same bug from a lucky run: the second thread takes the GIL and forces the cell after
/// the initialization finished (no wait at all). Had it come during the initialization, it
/// would have waited for it under the GIL, the initializer waiting for the GIL: predicted from
/// the order of a caller that found the cell done while holding locks (before, such a call
/// checked nothing and this run was silent).
#[test]
fn a_gil_released_inside_the_initializer_is_predicted_from_a_caller_that_came_after() {
    setup();
    let gil = Arc::new(Mutex::named("pyo3.late.gil", ()));
    let api = Arc::new(lockcheck::sync::Once::new());
    let (gil2, api2) = (gil.clone(), api.clone());
    let (r1, r2) = watchdog_pair(
        move || {
            let mut held = Some(gil.lock());
            api.call_once(|| {
                drop(held.take());
                held = Some(gil.lock()); // PY_LATE_RETAKE
            });
        },
        move || {
            let _gil = gil2.lock();
            api2.call_once(|| {}); // PY_LATE_FORCE
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("the GIL then the done cell, against the cell then the GIL");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = inversions("pyo3.late.gil");
    assert!(!v.is_empty(), "{:#?}", found("pyo3.late.gil"));
    for v in &v {
        M.assert_sites(v, &["PY_LATE_RETAKE", "PY_LATE_FORCE"]);
    }
}

/// The other side of the prediction: a caller that holds the lock the initializer took, but
/// runs on a thread spawned (through `lockcheck::thread`) after the initialization, cannot
/// have come during it: silent.
#[test]
fn a_caller_holding_the_initializers_lock_spawned_after_it_is_silent() {
    setup();
    watchdog(20, || {
        let gil = Arc::new(Mutex::named("pyo3.spawned.gil", ()));
        let api = Arc::new(lockcheck::sync::Once::new());
        api.call_once(|| drop(gil.lock()));
        let (gil2, api2) = (gil.clone(), api.clone());
        lockcheck::thread::spawn(move || {
            let _gil = gil2.lock();
            api2.call_once(|| {});
        })
        .join()
        .unwrap();
    })
    .unwrap();
    assert!(found("pyo3.spawned.gil").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 4. A `PartialEq` that read-locks both sides, called with one value on both: the second read
//    of the same `parking_lot::RwLock` waits behind any writer queued since the first (a
//    recursive read).
//    Sources: sigp/lighthouse#1241 ("fix possible deadlocks when comparing with itself":
//    `OperationPool` and `ProtoArrayForkChoice`), the same in paritytech/substrate#6277 and
//    antifuchs/ratelimit_meter#37.
//    Look-alike (the fix): `ptr::eq` first; and two different pools compared.

struct OperationPool {
    attestations: RwLock<HashMap<u64, u64>>,
    checks_identity: bool,
}

impl PartialEq for OperationPool {
    fn eq(&self, other: &Self) -> bool {
        if self.checks_identity && std::ptr::eq(self, other) {
            return true;
        }
        *self.attestations.read() == *other.attestations.read() // OP_POOL_EQ
    }
}

fn op_pool(class: &'static str, checks_identity: bool) -> Arc<OperationPool> {
    Arc::new(OperationPool {
        attestations: RwLock::named(class, HashMap::from([(1, 2)])),
        checks_identity,
    })
}

#[test]
fn a_pool_compared_with_itself_is_a_recursive_read() {
    setup();
    let msg = stopped(|| {
        let pool = op_pool("lighthouse.op_pool", false);
        let (a, b) = (pool.clone(), pool);
        assert!(*a == *b);
    });
    assert!(msg.contains("recursive"), "{msg}");
    one_of_kind(
        &M,
        &found("lighthouse.op_pool"),
        ViolationKind::RecursiveRead,
        &["OP_POOL_EQ"],
    );
}

#[test]
fn a_pool_compared_with_itself_after_ptr_eq_and_two_pools_compared_are_silent() {
    setup();
    watchdog(20, || {
        let pool = op_pool("lighthouse.fixed.op_pool", true);
        let (a, b) = (pool.clone(), pool);
        assert!(*a == *b);
        let other = op_pool("lighthouse.fixed.op_pool", true);
        assert!(*a == *other);
    })
    .unwrap();
    assert!(found("lighthouse.fixed.op_pool").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 5. A `PartialEq` that read-locks both sides, called both ways on two threads: `a == b` reads
//    `a` then `b`, `b == a` reads `b` then `a`. Read-read alone cannot block; with a writer (a
//    gossip update of either graph) queued between, each reader waits behind it and the writer
//    behind the other reader.
//    Source: lightningdevkit/rust-lightning#2190 ("`NetworkGraph` `PartialEq` impl is
//    deadlock-prone: it needs a total lockorder").
//    Look-alike (the fix of rust-lightning#2284, as `ChannelMonitor`'s `PartialEq`): the two
//    graphs locked in the order of their addresses.

struct NetworkGraph {
    channels: lockcheck::sync::RwLock<BTreeMap<u64, u32>>,
}

impl NetworkGraph {
    fn new() -> Arc<NetworkGraph> {
        Arc::new(NetworkGraph {
            channels: lockcheck::sync::RwLock::new(BTreeMap::new()), // LN_GRAPH_NEW
        })
    }

    fn new_fixed() -> Arc<NetworkGraph> {
        Arc::new(NetworkGraph {
            channels: lockcheck::sync::RwLock::new(BTreeMap::new()), // LN_FIXED_GRAPH_NEW
        })
    }

    fn same_as(&self, other: &NetworkGraph, by_address: bool) -> bool {
        if by_address {
            let (first, second) = if (self as *const Self) < (other as *const Self) {
                (self, other)
            } else {
                (other, self)
            };
            let a = first.channels.read().unwrap();
            let b = second.channels.read().unwrap();
            *a == *b
        } else {
            let a = self.channels.read().unwrap(); // LN_EQ_SELF
            let b = other.channels.read().unwrap(); // LN_EQ_OTHER
            *a == *b
        }
    }
}

fn graphs_compared_both_ways(
    a: Arc<NetworkGraph>,
    b: Arc<NetworkGraph>,
    by_address: bool,
) -> (Result<(), String>, Result<(), String>) {
    // The gossip thread updates both graphs.
    let (a1, b1) = (a.clone(), b.clone());
    std::thread::spawn(move || {
        a1.channels.write().unwrap().insert(7, 1);
        b1.channels.write().unwrap().insert(7, 1);
    })
    .join()
    .unwrap();
    let (a2, b2) = (a.clone(), b.clone());
    watchdog_pair(
        move || assert!(a.same_as(&b, by_address)),
        move || assert!(b2.same_as(&a2, by_address)),
    )
}

#[test]
fn two_graphs_compared_both_ways_with_a_writer_are_an_inversion() {
    setup();
    let (r1, r2) = graphs_compared_both_ways(NetworkGraph::new(), NetworkGraph::new(), false);
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("b then a against a then b, with writes");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = M.found_at("LN_GRAPH_NEW");
    assert!(
        v.iter()
            .any(|v| v.kind == ViolationKind::LockOrderInversion),
        "{v:#?}"
    );
    for v in &v {
        M.assert_sites(v, &["LN_EQ_SELF", "LN_EQ_OTHER"]);
    }
}

#[test]
fn two_graphs_compared_in_the_order_of_their_addresses_are_silent() {
    setup();
    let (r1, r2) =
        graphs_compared_both_ways(NetworkGraph::new_fixed(), NetworkGraph::new_fixed(), true);
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(M.found_at("LN_FIXED_GRAPH_NEW").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 6. Guard temporaries of a `while` condition: `data.read().unwrap()[0].is_some() ||
//    data.read().unwrap()[1].is_some()` kept the first read guard to the end of the condition,
//    so the second operand read the lock again while it was held; std's futex `RwLock` (since
//    Rust 1.62) made that second read wait behind the writers the loop was waiting for.
//    Source: rust-lang/rust#101194 ("Deadlock with Rwlock and Thread with version 1.62 and
//    1.63"; answered: two read locks at once can deadlock). Since rust-lang/rust#103293 (Rust
//    1.66) each operand of `||` is a temporary scope of its own: the program of the issue, built
//    today, drops the first guard before the second read, and must stay silent. The same
//    condition written with the eager `|` still keeps both guards to its end: reported.
//    Look-alikes: the issue's `||` as compiled today, and one `while` per flag (the reporter's
//    working variant).

/// How the loop waits for both flags to be cleared.
#[derive(Clone, Copy, PartialEq)]
enum FlagsLoop {
    /// `a | b`: both guards alive to the end of the condition.
    Eager,
    /// `a || b`: each operand's guard dropped at the end of the operand (Rust 1.66 on).
    Lazy,
    /// One `while` per flag.
    OnePerFlag,
}

fn wait_for_flags(how: FlagsLoop) -> usize {
    let data = Arc::new(match how {
        FlagsLoop::Eager => lockcheck::sync::RwLock::new(vec![Some(true); 2]), // FLAGS_EAGER_NEW
        FlagsLoop::Lazy => lockcheck::sync::RwLock::new(vec![Some(true); 2]),  // FLAGS_LAZY_NEW
        FlagsLoop::OnePerFlag => lockcheck::sync::RwLock::new(vec![Some(true); 2]), // FLAGS_ONE_NEW
    });
    let writers: Vec<_> = (0..2)
        .map(|i| {
            let data = data.clone();
            std::thread::spawn(move || data.write().unwrap()[i] = None)
        })
        .collect();
    let mut spins = 0;
    match how {
        FlagsLoop::Eager => {
            while data.read().unwrap()[0].is_some() | data.read().unwrap()[1].is_some() {
                spins += 1; // FLAGS_EAGER_BODY
                std::thread::yield_now();
            }
        }
        FlagsLoop::Lazy => {
            while data.read().unwrap()[0].is_some() || data.read().unwrap()[1].is_some() {
                spins += 1;
                std::thread::yield_now();
            }
        }
        FlagsLoop::OnePerFlag => {
            while data.read().unwrap()[0].is_some() {
                spins += 1;
                std::thread::yield_now();
            }
            while data.read().unwrap()[1].is_some() {
                spins += 1;
                std::thread::yield_now();
            }
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    spins
}

#[test]
fn an_eager_condition_reading_the_lock_twice_is_a_recursive_read() {
    setup();
    let msg = stopped(|| {
        wait_for_flags(FlagsLoop::Eager);
    });
    assert!(msg.contains("recursive"), "{msg}");
    let v = M.found_at("FLAGS_EAGER_NEW");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::RecursiveRead);
    // Both reads are on the `while` line, just above the body's first line.
    let line = M.line_of("FLAGS_EAGER_BODY") - 1;
    let sites = support::markers::sites(&v[0]);
    let on_line = format!("real_bugs_round6.rs:{line}:");
    assert_eq!(
        sites.iter().filter(|s| s.contains(&on_line)).count(),
        2,
        "{sites:?}"
    );
}

#[test]
fn the_lazy_condition_as_compiled_today_and_one_while_per_flag_are_silent() {
    setup();
    watchdog(20, || {
        wait_for_flags(FlagsLoop::Lazy);
        wait_for_flags(FlagsLoop::OnePerFlag);
    })
    .unwrap();
    assert!(M.found_at("FLAGS_LAZY_NEW").is_empty());
    assert!(M.found_at("FLAGS_ONE_NEW").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 7. A mutex against the read side of an `RwLock`: wgpu's queue and device maintenance read the
//    device's snatch lock and then lock its trackers; `Queue::write_texture` locked the trackers
//    first and then read the snatch lock. Both sides only read the snatch lock, so the cycle
//    closes only when a writer (destroying a resource snatches it: a write) is queued on it
//    between: the reader waits behind the writer, the writer behind the other reader, which
//    waits for the trackers.
//    Sources: gfx-rs/wgpu#5737 ("Deadlock between device.tracker and device.snatchable_lock"),
//    fixed by gfx-rs/wgpu#7004 (the snatch lock first in `write_texture` as well); the same
//    with the queue's pending writes in gfx-rs/wgpu#7582.
//    Look-alikes: the fix's order; and the old order on a snatch lock nobody writes (a reader
//    never waits for a reader).

struct Device {
    snatchable: RwLock<()>,
    trackers: Mutex<Vec<u32>>,
}

impl Device {
    fn new(snatch: &'static str, trackers: &'static str) -> Arc<Device> {
        Arc::new(Device {
            snatchable: RwLock::named(snatch, ()),
            trackers: Mutex::named(trackers, Vec::new()),
        })
    }

    /// `Queue::submit` / `Device::maintain`.
    fn maintain(&self) {
        let _snatch = self.snatchable.read(); // WGPU_MAINTAIN_SNATCH
        self.trackers.lock().push(1); // WGPU_MAINTAIN_TRACKERS
    }

    /// `Queue::write_texture`.
    fn write_texture(&self, fixed: bool) {
        if fixed {
            let _snatch = self.snatchable.read();
            self.trackers.lock().push(2);
        } else {
            let mut trackers = self.trackers.lock(); // WGPU_WRITE_TEXTURE_TRACKERS
            let _snatch = self.snatchable.read(); // WGPU_WRITE_TEXTURE_SNATCH
            trackers.push(2);
        }
    }

    /// `Buffer::destroy`: snatches the raw resource.
    fn destroy(&self) {
        let _snatch = self.snatchable.write();
    }
}

fn wgpu_device(
    snatch: &'static str,
    trackers: &'static str,
    fixed: bool,
    destroys: bool,
) -> (Result<(), String>, Result<(), String>) {
    let device = Device::new(snatch, trackers);
    if destroys {
        let d = device.clone();
        std::thread::spawn(move || d.destroy()).join().unwrap();
    }
    let d2 = device.clone();
    watchdog_pair(move || device.maintain(), move || d2.write_texture(fixed))
}

#[test]
fn trackers_then_snatch_read_against_snatch_read_then_trackers_with_a_writer_is_an_inversion() {
    setup();
    let (r1, r2) = wgpu_device("wgpu.snatchable", "wgpu.trackers", false, true);
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("the cycle closes through the snatch lock's writer");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = inversions("wgpu.snatchable");
    assert!(!v.is_empty(), "{:#?}", found("wgpu.snatchable"));
    for v in &v {
        assert!(v.involves("wgpu.trackers"), "{v:#?}");
        M.assert_sites(v, &["WGPU_WRITE_TEXTURE_SNATCH", "WGPU_MAINTAIN_TRACKERS"]);
    }
}

#[test]
fn the_snatch_lock_first_everywhere_and_a_snatch_lock_never_written_are_silent() {
    setup();
    let (r1, r2) = wgpu_device("wgpu.fixed.snatchable", "wgpu.fixed.trackers", true, true);
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(found("wgpu.fixed.snatchable").is_empty());
    let (r1, r2) = wgpu_device(
        "wgpu.unwritten.snatchable",
        "wgpu.unwritten.trackers",
        false,
        false,
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(
        found("wgpu.unwritten.snatchable").is_empty(),
        "{:#?}",
        found("wgpu.unwritten.snatchable")
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Hand over hand, then back: bevy's asset processor locked `asset_infos`, then one asset's
//    file-transaction lock, and then dropped `asset_infos`, keeping the asset's lock while it
//    processed it; loading a nested asset during processing needs `asset_infos` again. One thread
//    goes `asset_infos` -> transaction, the other transaction -> `asset_infos`.
//    Source: bevyengine/bevy#22017 ("Release the asset infos lock before acquiring the file
//    transaction lock": "A classic deadlock!"; bevy's locks are `async_lock` ones, reduced here
//    to blocking ones).
//    Look-alike (the fix): the asset's `Arc<RwLock>` cloned out of `asset_infos`, which is
//    dropped before the asset's lock is taken.

struct Processor {
    asset_infos: RwLock<HashMap<u32, Arc<RwLock<u32>>>>,
}

impl Processor {
    fn new(infos: &'static str, transaction: &'static str) -> Arc<Processor> {
        Arc::new(Processor {
            asset_infos: RwLock::named(
                infos,
                HashMap::from([(1, Arc::new(RwLock::named(transaction, 0)))]),
            ),
        })
    }

    /// Processes asset `id`; `nested`: it loads a nested asset, registered in `asset_infos`.
    fn process(&self, id: u32, nested: bool, fixed: bool) {
        let lock: Arc<RwLock<u32>>;
        let transaction;
        if fixed {
            lock = self.asset_infos.read()[&id].clone();
            transaction = lock.write();
        } else {
            let infos = self.asset_infos.read(); // BEVY_INFOS_READ
            lock = infos[&id].clone();
            transaction = lock.write(); // BEVY_TRANSACTION
            drop(infos);
        }
        if nested {
            let nested_lock = Arc::new(RwLock::named("bevy.nested.transaction", 0));
            self.asset_infos.write().insert(id + 100, nested_lock); // BEVY_NESTED_INFOS
        }
        drop(transaction);
    }
}

#[test]
fn an_asset_lock_taken_under_asset_infos_then_infos_taken_under_it_is_an_inversion() {
    setup();
    let p = Processor::new("bevy.asset_infos", "bevy.transaction");
    let p2 = p.clone();
    let (r1, r2) = watchdog_pair(
        move || p.process(1, true, false),
        move || p2.process(1, false, false),
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("asset_infos then the transaction, against the reverse");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = inversions("bevy.asset_infos");
    assert!(!v.is_empty(), "{:#?}", found("bevy.asset_infos"));
    for v in &v {
        assert!(v.involves("bevy.transaction"), "{v:#?}");
        M.assert_sites(v, &["BEVY_TRANSACTION", "BEVY_NESTED_INFOS"]);
    }
}

#[test]
fn an_asset_lock_taken_after_asset_infos_is_dropped_is_silent() {
    setup();
    let p = Processor::new("bevy.fixed.asset_infos", "bevy.fixed.transaction");
    let p2 = p.clone();
    let (r1, r2) = watchdog_pair(
        move || p.process(1, true, true),
        move || p2.process(1, false, true),
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    assert!(found("bevy.fixed.asset_infos").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 9. A task spawned under a lock, which takes the lock: harmless when the task runs on another
//    thread (it waits until the spawner lets go), a self-deadlock when the task pool runs it on
//    the spawning thread. bevy's asset server kept its `infos` write guard across spawning the
//    load task; without the `multi_threaded` feature the task pool runs tasks on the calling
//    thread, and the load task locks `infos`.
//    Sources: bevyengine/bevy#15807 ("Possible deadlock in AssetServer in single-threaded
//    modes": the guard was no longer dropped before the call since bevyengine/bevy#15509),
//    fixed by bevyengine/bevy#15808 (the guard moved into the function and dropped before the
//    task is spawned); bevyengine/bevy#15522 (the same, first fix).
//    Look-alikes: the guard dropped first (the fix); and the multi-threaded pool, whose task
//    runs on a thread of its own and waits for the guard's release.

/// The task pool: `inline` runs each task on the spawning thread (single-threaded mode).
fn spawn_task(
    inline: bool,
    task: impl FnOnce() + Send + 'static,
) -> Option<lockcheck::thread::JoinHandle<()>> {
    if inline {
        task();
        None
    } else {
        Some(lockcheck::thread::spawn(task))
    }
}

fn load_asset(infos_class: &'static str, inline: bool, guard_dropped_first: bool) -> u32 {
    let infos = Arc::new(RwLock::named(infos_class, 0u32));
    let mut guard = infos.write(); // BEVY_SERVER_INFOS
    *guard += 1;
    let task_infos = infos.clone();
    let task = move || *task_infos.write() += 1; // BEVY_LOAD_TASK
    let handle = if guard_dropped_first {
        drop(guard);
        spawn_task(inline, task)
    } else {
        let h = spawn_task(inline, task);
        drop(guard);
        h
    };
    if let Some(h) = handle {
        h.join().unwrap();
    }
    let n = *infos.read();
    n
}

#[test]
fn a_load_task_run_inline_under_the_infos_guard_is_a_self_deadlock() {
    setup();
    let msg = stopped(|| {
        load_asset("bevy.server.infos", true, false);
    });
    assert!(msg.contains("self-deadlock"), "{msg}");
    one_of_kind(
        &M,
        &found("bevy.server.infos"),
        ViolationKind::SelfDeadlock,
        &["BEVY_SERVER_INFOS", "BEVY_LOAD_TASK"],
    );
}

#[test]
fn the_guard_dropped_before_the_task_and_a_task_on_its_own_thread_are_silent() {
    setup();
    watchdog(20, || {
        assert_eq!(load_asset("bevy.fixed.server.infos", true, true), 2);
        assert_eq!(load_asset("bevy.threaded.server.infos", false, false), 2);
    })
    .unwrap();
    assert!(found("bevy.fixed.server.infos").is_empty());
    assert!(
        found("bevy.threaded.server.infos").is_empty(),
        "{:#?}",
        found("bevy.threaded.server.infos")
    );
}
