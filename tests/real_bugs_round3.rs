//! Real deadlocks from public Rust projects, third round: kinds the first two rounds
//! (`tests/async/real_bugs.rs`, `tests/real_bugs_round2.rs`, `examples/scenarios.rs`) did not
//! cover. Each is reduced to its locking skeleton (not their code), cites its source, and is
//! paired with the look-alike the project's fix turned it into, which must stay silent. Every
//! scenario runs under a watchdog: a miss that really hangs fails the test instead of hanging CI.
//! The recordable ones are also scenarios of `examples/scenarios.rs` (offline equals runtime).

#[path = "support/real_bugs.rs"]
mod real_bugs;
mod support;

use lockcheck::{Mutex, RwLock, Semaphore, ViolationKind};
use real_bugs::setup;
use std::collections::HashMap;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::markers::Markers;
use support::{condvar_warnings, found, notifier_seen, two_threads, watchdog};

/// This file's marker comments.
const M: Markers = Markers::new("real_bugs_round3.rs", include_str!("real_bugs_round3.rs"));

// ---------------------------------------------------------------------------------------------
// 1. A sharded map (one read-write lock per shard, all of one class): a reference into one
//    shard (a read guard) held while inserting a key of another shard (its write lock), while a
//    second thread does the same with the two keys swapped.
//    Source: xacrimon/dashmap#369 ("Cross-shard deadlock when holding `Ref` guard and calling
//    `insert()` on a different key"); the same shape fixed in maidsafe/temp_safe_network#357
//    ("Fix PrefixMap deadlock": the read reference collected and dropped before the write).
//    Look-alike (the fix): the value is copied out and the reference dropped before the insert.

struct ShardedMap {
    shards: Vec<RwLock<HashMap<u32, u32>>>,
}

impl ShardedMap {
    fn new(class: &'static str) -> ShardedMap {
        ShardedMap {
            shards: (0..4)
                .map(|_| RwLock::named(class, HashMap::new()))
                .collect(),
        }
    }

    fn shard(&self, key: u32) -> &RwLock<HashMap<u32, u32>> {
        &self.shards[key as usize % self.shards.len()]
    }

    /// `get` then `insert` of another key, the reference alive across the insert (or not).
    fn copy(&self, from: u32, to: u32, fixed: bool) {
        if fixed {
            let v = self.shard(from).read().get(&from).copied(); // DASHMAP_FIXED_GET
            if let Some(v) = v {
                self.shard(to).write().insert(to, v); // DASHMAP_FIXED_INSERT
            }
        } else {
            let r = self.shard(from).read(); // DASHMAP_GET
            if let Some(v) = r.get(&from) {
                self.shard(to).write().insert(to, *v); // DASHMAP_INSERT
            }
        }
    }
}

fn dashmap(class: &'static str, fixed: bool) -> (Result<(), String>, Result<(), String>) {
    let map = Arc::new(ShardedMap::new(class));
    map.shard(1).write().insert(1, 10);
    map.shard(2).write().insert(2, 20);
    let (m1, m2) = (map.clone(), map.clone());
    two_threads(move || m1.copy(1, 2, fixed), move || m2.copy(2, 1, fixed))
}

#[test]
fn a_shard_reference_held_across_an_insert_into_another_shard_is_an_inversion() {
    setup();
    watchdog(20, || {
        let (a, b) = dashmap("dashmap.shard", false);
        assert!(a.is_ok(), "the first thread's order alone is fine");
        assert!(b.is_err(), "the reverse order must be refused");
    })
    .unwrap();
    let v = found("dashmap.shard");
    assert!(!v.is_empty(), "the cross-shard inversion must be reported");
    assert!(
        v.iter()
            .any(|v| v.kind == ViolationKind::LockOrderInversion),
        "{v:#?}"
    );
    let inv = v
        .iter()
        .find(|v| v.kind == ViolationKind::LockOrderInversion)
        .unwrap();
    M.assert_sites(inv, &["DASHMAP_GET", "DASHMAP_INSERT"]);
}

#[test]
fn a_value_copied_out_of_the_shard_before_the_insert_is_silent() {
    setup();
    watchdog(20, || {
        let (a, b) = dashmap("dashmap.fixed.shard", true);
        a.unwrap();
        b.unwrap();
    })
    .unwrap();
    assert!(found("dashmap.fixed.shard").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 2. A recursive read of a writer-preferring read-write lock (parking_lot's, as
//    tracing-subscriber's span extensions use) with a writer queued in between: the second read
//    waits behind the writer, which waits for the first read.
//    Source: apollographql/router#7142 ("Tracing deadlock investigation": re-entrant reads of
//    `tracing-subscriber::registry::Extensions`, a root span's extensions read while the
//    current span's are), fixed in apollographql/router#7213.
//    Look-alike (the fix): what is needed is read once, under one guard, and the guard dropped
//    before the next read.

fn extensions(class: &'static str, fixed: bool) -> Result<(), String> {
    let ext = Arc::new(RwLock::named(class, vec![1u64]));
    let writer_queued = Arc::new(std::sync::Barrier::new(2));
    let (e2, q2) = (ext.clone(), writer_queued.clone());
    let writer = std::thread::spawn(move || {
        q2.wait();
        e2.write().push(2);
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let trace_id = if fixed {
            let id = ext.read()[0]; // ROUTER_FIXED_READ
            id + ext.read()[0] // ROUTER_FIXED_REREAD
        } else {
            let current = ext.read(); // ROUTER_READ
            writer_queued.wait();
            std::thread::sleep(Duration::from_millis(50));
            // `extract_dd_trace_id` reading the root span's extensions.
            let root = ext.read(); // ROUTER_REREAD
            current[0] + root[0]
        };
        assert!(trace_id > 0);
    }))
    .map_err(|e| support::panic_message(&*e));
    if fixed {
        writer_queued.wait();
    }
    writer.join().unwrap();
    r
}

#[test]
fn a_recursive_read_of_span_extensions_with_a_writer_queued_is_reported() {
    setup();
    watchdog(20, || {
        let r = extensions("router.extensions", false);
        assert!(r.is_err(), "the recursive read must be stopped");
    })
    .unwrap();
    let v = found("router.extensions");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::RecursiveRead);
    M.assert_sites(&v[0], &["ROUTER_READ", "ROUTER_REREAD"]);
}

#[test]
fn one_read_at_a_time_of_span_extensions_is_silent() {
    setup();
    watchdog(20, || extensions("router.fixed.extensions", true).unwrap()).unwrap();
    assert!(found("router.fixed.extensions").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3. A lazily initialized field whose initializer logs the whole value (`debug!("{config:?}")`),
//    whose `Debug` asks for that same field: the initializer re-enters its own `OnceLock`, which
//    waits for itself.
//    Source: jdx/mise#1830, fixed in jdx/mise#1851 ("fix: stuck mise with flag --verbose":
//    `OnceCell::get_or_try_init` re-entered from `impl Debug for Config`); the same with
//    `OnceLock::get_or_init` in yvgude/lean-ctx#301.
//    Look-alike (the fix): the value is logged after its initialization has returned.

struct Config {
    env: lockcheck::sync::OnceLock<Vec<String>>,
    log_in_init: bool,
    log: std::sync::Mutex<Vec<String>>,
}

impl Config {
    fn new(env: lockcheck::sync::OnceLock<Vec<String>>, log_in_init: bool) -> Config {
        Config {
            env,
            log_in_init,
            log: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn env(&self) -> &Vec<String> {
        let init = || {
            if self.log_in_init {
                let line = format!("{self:?}");
                self.log.lock().unwrap().push(line);
            }
            vec!["PATH=/bin".to_owned()]
        };
        self.env.get_or_init(init) // MISE_GET
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").field("env", self.env()).finish() // MISE_DEBUG
    }
}

#[test]
fn a_once_lock_re_entered_from_its_initializers_debug_is_a_self_deadlock() {
    setup();
    watchdog(20, || {
        let config = Config::new(lockcheck::sync::OnceLock::new(), true); // MISE_ONCE
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.env().len()));
        assert!(r.is_err(), "the re-entry must be stopped");
    })
    .unwrap();
    let v = M.found_at("MISE_ONCE");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::SelfDeadlock);
    M.assert_sites(&v[0], &["MISE_GET"]);
    // The re-entry goes through `Debug`, which the report's backtrace names (by its line: a
    // release build has no line tables unless asked, so there only the function is named).
    if cfg!(debug_assertions) {
        let debug_line = format!("real_bugs_round3.rs:{}", M.line_of("MISE_DEBUG"));
        assert!(
            v[0].message.contains(&debug_line),
            "the re-entering call is named: {}",
            v[0].message
        );
    } else {
        assert!(
            v[0].message.contains("as core::fmt::Debug>::fmt"),
            "the re-entering call is named: {}",
            v[0].message
        );
    }
}

#[test]
fn logging_the_value_after_its_initialization_is_silent() {
    setup();
    watchdog(20, || {
        let config = Config::new(lockcheck::sync::OnceLock::new(), false); // MISE_FIXED_ONCE
        assert_eq!(config.env().len(), 1);
        let line = format!("{config:?}");
        assert!(line.contains("PATH"));
    })
    .unwrap();
    assert!(M.found_at("MISE_FIXED_ONCE").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 4. A lock held across a fork-join of a work-stealing pool: while the holder waits for its
//    parallel part, it steals a pending job of the same kind, which takes the lock again on the
//    same thread.
//    Sources: rayon-rs/rayon#592 ("Using rayon under a Mutex can lead to deadlocks":
//    `some_mutex.lock().par_iter()` inside `par_iter().for_each`), jkitchin/feral#104 (a
//    per-thread workspace mutex held across a nested `par_chunks_mut`, re-locked by a stolen
//    job), BurtonQin/lockbud#117 ("Detect Rayon deadlocks").
//    Look-alike (the fix): what the parallel part needs is taken out under the lock, and the
//    lock released before the fork-join.

/// The pool's queue of pending jobs (rayon's deques; a plain std mutex, held only to pop).
type Jobs = Arc<std::sync::Mutex<Vec<Box<dyn FnOnce() + Send>>>>;

/// One `for_each` item: locks the driver, then forks a parallel part and, waiting for it,
/// runs pending jobs (work stealing).
fn mutex_and_par(driver: &Arc<Mutex<Vec<u32>>>, jobs: &Jobs, fixed: bool) {
    let steal = || loop {
        let job = jobs.lock().unwrap().pop();
        match job {
            Some(job) => job(),
            None => break,
        }
    };
    if fixed {
        let input = driver.lock().clone(); // RAYON_FIXED_LOCK
        steal();
        driver.lock().push(input.len() as u32);
    } else {
        let mut g = driver.lock(); // RAYON_LOCK
        steal();
        g.push(1);
    }
}

fn rayon(class: &'static str, fixed: bool) -> Result<(), String> {
    let driver = Arc::new(Mutex::named(class, vec![0u32]));
    let jobs: Jobs = Arc::new(std::sync::Mutex::new(Vec::new()));
    // The other `for_each` item, queued on this worker's deque.
    let (d2, j2) = (driver.clone(), jobs.clone());
    jobs.lock()
        .unwrap()
        .push(Box::new(move || mutex_and_par(&d2, &j2, fixed)));
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        mutex_and_par(&driver, &jobs, fixed)
    }))
    .map_err(|e| support::panic_message(&*e))
}

#[test]
fn a_stolen_job_retaking_the_lock_held_across_the_fork_join_is_a_self_deadlock() {
    setup();
    watchdog(20, || {
        let r = rayon("rayon.driver", false);
        assert!(r.is_err(), "the re-lock must be stopped");
    })
    .unwrap();
    let v = found("rayon.driver");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::SelfDeadlock);
    M.assert_sites(&v[0], &["RAYON_LOCK"]);
}

#[test]
fn releasing_the_lock_before_the_fork_join_is_silent() {
    setup();
    watchdog(20, || rayon("rayon.fixed.driver", true).unwrap()).unwrap();
    assert!(found("rayon.fixed.driver").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 5. A panic raised while a write guard is alive, whose panic hook reads the same lock: the hook
//    runs before the unwinding drops the guard, and the thread waits for itself. lockcheck
//    reports it from inside the hook (it cannot panic there: a panic while panicking aborts), and
//    the thread then hangs as it would without lockcheck.
//    Source: getsentry/sentry-rust#536 ("Avoid Deadlock popping ScopeGuards out of order": the
//    out-of-order check panicked inside `with_mut`, holding the stack's `RwLock`, and the
//    `PanicIntegration`'s hook read that lock to capture the panic).
//    Look-alike (the fix): the check is made, and the panic raised, after the guard is dropped.

static HUB: std::sync::OnceLock<Hub> = std::sync::OnceLock::new();
static HUB_FIXED: std::sync::OnceLock<Hub> = std::sync::OnceLock::new();

/// Installs, once, the `PanicIntegration`: a hook that, on the scope threads only, reads the
/// hub's stack to capture the panic, then calls the previous hook.
fn install_panic_integration() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let hub = match std::thread::current().name() {
                Some("sentry.scope") => HUB.get(),
                Some("sentry.fixed.scope") => HUB_FIXED.get(),
                _ => None,
            };
            if let Some(hub) = hub {
                let depth = hub.read().map(|s| s.len()).unwrap_or(0); // SENTRY_HOOK_READ
                assert!(depth < 1000);
            }
            prev(info)
        }));
    });
}

/// `ScopeGuard::drop`: pops the scope it pushed; out of order, it panics.
fn pop_scope(hub: &lockcheck::sync::RwLock<Vec<u32>>, expected: u32, fixed: bool) {
    if fixed {
        let top = hub.write().unwrap().pop(); // SENTRY_FIXED_WRITE
        if top != Some(expected) {
            panic!("Tried to pop guards out of order");
        }
    } else {
        let mut stack = hub.write().unwrap(); // SENTRY_WRITE
        if stack.last() != Some(&expected) {
            panic!("Tried to pop guards out of order");
        }
        stack.pop();
    }
}

type Hub = Arc<lockcheck::sync::RwLock<Vec<u32>>>;

fn sentry(
    cell: &'static std::sync::OnceLock<Hub>,
    hub: Hub,
    thread: &str,
    fixed: bool,
) -> mpsc::Receiver<bool> {
    install_panic_integration();
    let hub = cell.get_or_init(|| hub).clone();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            // The guard of scope 1 dropped while scope 2 is on top.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pop_scope(&hub, 1, fixed)
            }));
            let _ = tx.send(r.is_err());
        })
        .unwrap();
    rx
}

/// The bug's side runs in a child process (this test binary, re-run on this one test): the
/// panicking thread cannot unwind out of the self-deadlock its hook walks into, so lockcheck
/// reports it and aborts the process (a panic while panicking aborts too) instead of letting the
/// thread hang, blocked in the hook with std's hook lock held.
#[test]
fn a_panic_hook_reading_a_lock_the_panicking_thread_holds_is_a_self_deadlock() {
    const NAME: &str = "a_panic_hook_reading_a_lock_the_panicking_thread_holds_is_a_self_deadlock";
    if std::env::var_os("ROUND3_SENTRY_CHILD").is_some() {
        sentry_child();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env("ROUND3_SENTRY_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(6),
            "the child must abort (SIGABRT): {:?}\n{stdout}\n{stderr}",
            out.status
        );
    }
    assert!(
        !out.status.success(),
        "{:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        !stdout.contains("sentry child: not aborted"),
        "{stdout}\n{stderr}"
    );
    let report = stderr
        .find("self-deadlock")
        .map(|i| &stderr[i..])
        .unwrap_or_else(|| panic!("no self-deadlock report:\n{stderr}"));
    for marker in ["SENTRY_HOOK_READ", "SENTRY_WRITE"] {
        assert!(report.contains(&M.at(marker)), "{marker} not in:\n{stderr}");
    }
    assert!(
        stderr.contains("already panicking") && stderr.contains("aborts the process"),
        "{stderr}"
    );
}

/// The child's side: the hook's read must end the process (the parent checks how); if it is
/// still alive after 20 s, the thread hangs as it would without lockcheck.
fn sentry_child() -> ! {
    setup();
    let hub = Arc::new(lockcheck::sync::RwLock::new(vec![1, 2])); // SENTRY_HUB
    let done = sentry(&HUB, hub, "sentry.scope", false);
    let r = done.recv_timeout(Duration::from_secs(20));
    println!("sentry child: not aborted ({r:?})");
    // Not through the harness, whose end would wait for the hook lock.
    std::process::exit(1)
}

#[test]
fn panicking_after_the_guard_is_dropped_is_silent() {
    setup();
    let hub = Arc::new(lockcheck::sync::RwLock::new(vec![1, 2])); // SENTRY_FIXED_HUB
    let done = sentry(&HUB_FIXED, hub, "sentry.fixed.scope", true);
    let panicked = done
        .recv_timeout(Duration::from_secs(20))
        .expect("the fixed scope thread ends");
    assert!(
        panicked,
        "the out-of-order pop still panics, after the guard"
    );
    assert!(M.found_at("SENTRY_FIXED_HUB").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 6. A layer that locks its span table and, inside, asks for the current span's id through a
//    helper that clones the span, which locks the table again: a std mutex taken twice by one
//    thread through a call chain.
//    Source: tokio-rs/tracing#369 ("deadlock in TraceLogger": `current_id` -> `clone_span`
//    relocking `self.spans`), duplicate tokio-rs/tracing#381.
//    Look-alike (the fix): the id is looked up under the one guard, without the helper.

struct TraceLogger {
    spans: lockcheck::sync::Mutex<HashMap<u64, usize>>,
    current: u64,
}

impl TraceLogger {
    fn clone_span(&self, id: u64) -> u64 {
        *self.spans.lock().unwrap().entry(id).or_insert(0) += 1; // TRACING_CLONE
        id
    }

    fn current_id(&self) -> u64 {
        self.clone_span(self.current)
    }

    fn record(&self, fixed: bool) {
        let mut spans = self.spans.lock().unwrap(); // TRACING_RECORD
        let id = if fixed {
            *spans.entry(self.current).or_insert(0) += 1;
            self.current
        } else {
            self.current_id()
        };
        spans.insert(id + 1, 0);
    }
}

fn trace_logger(
    spans: lockcheck::sync::Mutex<HashMap<u64, usize>>,
    fixed: bool,
) -> Result<(), String> {
    let logger = TraceLogger { spans, current: 7 };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| logger.record(fixed)))
        .map_err(|e| support::panic_message(&*e))
}

#[test]
fn current_id_relocking_the_span_table_is_a_self_deadlock() {
    setup();
    watchdog(20, || {
        let spans = lockcheck::sync::Mutex::new(HashMap::new()); // TRACING_SPANS
        assert!(trace_logger(spans, false).is_err());
    })
    .unwrap();
    let v = M.found_at("TRACING_SPANS");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::SelfDeadlock);
    M.assert_sites(&v[0], &["TRACING_CLONE", "TRACING_RECORD"]);
}

#[test]
fn the_id_looked_up_under_the_one_guard_is_silent() {
    setup();
    watchdog(20, || {
        let spans = lockcheck::sync::Mutex::new(HashMap::new()); // TRACING_FIXED_SPANS
        trace_logger(spans, true).unwrap();
    })
    .unwrap();
    assert!(M.found_at("TRACING_FIXED_SPANS").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 7. A bounded channel and a lock: the publisher holds the subscriber registry's read guard
//    while it sends into a full bounded channel; the subscriber, instead of receiving, drops its
//    `Subscriber`, whose `Drop` write-locks the registry before the receiver is dropped. The
//    send waits for the receiver, the receiver's thread waits for the registry.
//    Sources: spacejam/sled#1515 ("Deadlock in Subscriber impl of Drop"), spacejam/sled#1152
//    (transactions blocked on `Subscribers::reserve`, rust-lang/rust#76220).
//    Look-alike (the fix of sled#1515): the receiver is dropped before the registry is locked.
//
//    Reported through `lockcheck::sync::mpsc`: the bounded channel is a lock held by the thread
//    that owns its receiver (here the subscriber's, from the channel's creation), and the send
//    that finds it full requests it. The publisher's `registry -> channel` against the
//    subscriber's `channel -> registry` is an inversion, reported before the write blocks; the
//    panic drops the receiver, which lets the send fail and the publisher finish.

type Registry = HashMap<u64, lockcheck::sync::mpsc::SyncSender<u32>>;

struct Subscriber {
    id: u64,
    home: Arc<RwLock<Registry>>,
    rx: Option<lockcheck::sync::mpsc::Receiver<u32>>,
    drop_rx_first: bool,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if self.drop_rx_first {
            drop(self.rx.take());
        }
        self.home.write().remove(&self.id); // SLED_DROP_WRITE
    }
}

fn sled(class: &'static str, drop_rx_first: bool) {
    let home = Arc::new(RwLock::named(class, HashMap::new()));
    // As sled's `Subscribers::register`: the channel is made and its sender inserted under the
    // registry's write guard, and the receiver returned after it is dropped.
    let rx = {
        let mut senders = home.write();
        let (tx, rx) = lockcheck::sync::mpsc::sync_channel(1); // SLED_CHANNEL
        senders.insert(1, tx);
        rx
    };
    let sub = Subscriber {
        id: 1,
        home: home.clone(),
        rx: Some(rx),
        drop_rx_first,
    };
    let (sent_one, wait_first) = mpsc::channel();
    let publisher = std::thread::spawn(move || {
        let senders = home.read(); // SLED_PUBLISH_READ
        for (n, tx) in senders.values().enumerate() {
            for i in 0..2 {
                // The second send finds the channel full and waits for its receiver (an error
                // once the receiver is dropped).
                let _ = tx.send(i); // SLED_SEND
                if n == 0 && i == 0 {
                    let _ = sent_one.send(());
                }
            }
        }
    });
    wait_first.recv().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(sub);
    publisher.join().unwrap();
}

#[test]
fn a_send_into_a_full_channel_under_the_registry_lock_against_its_subscribers_drop_is_reported() {
    setup();
    let r = watchdog(20, || sled("sled.home", false));
    assert!(r.is_err(), "the subscriber's write must be stopped: {r:?}");
    let v = found("sled.home");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
    // The channel is named by its creation site.
    let channel = format!("{}", v[0]);
    let channel = channel
        .lines()
        .find(|l| l.contains("= `channel created at "))
        .unwrap_or_default();
    assert!(channel.contains(&M.at("SLED_CHANNEL")), "{}", v[0]);
    M.assert_sites(
        &v[0],
        &["SLED_DROP_WRITE", "SLED_PUBLISH_READ", "SLED_SEND"],
    );
}

#[test]
fn dropping_the_receiver_before_the_registry_is_locked_is_silent() {
    setup();
    watchdog(20, || sled("sled.fixed.home", true)).unwrap();
    assert!(found("sled.fixed.home").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 8. Two semaphores of one permit each (distributed semaphores, one per key, capacity 1), taken
//    in the order their requests arrive: one process gets `B`'s permit then waits for `A`'s,
//    another gets `A`'s then waits for `B`'s. A permit cycle, no mutex in it.
//    Source: databendlabs/databend#17986 ("fix(meta-semaphore): deadlock between meta-service
//    semaphores": a smaller sequence number inserted after a larger one could not be acquired).
//    Look-alike (the fix): permits are taken in sequence order (the smaller one is always
//    granted first), one order for everyone.

fn meta_semaphores(
    prefix: (&'static str, &'static str),
    in_seq_order: bool,
) -> Vec<Result<(), String>> {
    let a = Arc::new(Semaphore::named(prefix.0, 1));
    let b = Arc::new(Semaphore::named(prefix.1, 1));
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = two_threads(
        move || {
            // Received `B` first.
            if in_seq_order {
                let _a = a2.acquire(); // DATABEND_FIXED_A
                let _b = b2.acquire();
            } else {
                let _b = b2.acquire(); // DATABEND_B_FIRST
                let _a = a2.acquire(); // DATABEND_THEN_A
            }
        },
        move || {
            let _a = a.acquire(); // DATABEND_A_FIRST
            let _b = b.acquire(); // DATABEND_THEN_B
        },
    );
    vec![r1, r2]
}

#[test]
fn two_one_permit_semaphores_taken_in_arrival_order_are_an_inversion() {
    setup();
    watchdog(20, || {
        let r = meta_semaphores(("databend.sem.a", "databend.sem.b"), false);
        assert!(r[0].is_ok() && r[1].is_err(), "{r:?}");
    })
    .unwrap();
    let v = found("databend.sem.a");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
    M.assert_sites(
        &v[0],
        &[
            "DATABEND_B_FIRST",
            "DATABEND_THEN_A",
            "DATABEND_A_FIRST",
            "DATABEND_THEN_B",
        ],
    );
}

#[test]
fn permits_taken_in_sequence_order_are_silent() {
    setup();
    watchdog(20, || {
        let r = meta_semaphores(("databend.fixed.sem.a", "databend.fixed.sem.b"), true);
        assert!(r.iter().all(Result::is_ok), "{r:?}");
    })
    .unwrap();
    assert!(found("databend.fixed.sem.a").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 9. The other form of 4: the lock's holder blocks in the fork-join (a latch: a condvar) while a
//    worker of the pool runs the forked job, which takes the lock before it can set the latch.
//    The worker waits for the lock, the holder for the latch.
//    Sources: BurtonQin/lockbud#117 ("Detect Rayon deadlocks": "they are waiting for the thread
//    to release the lock, but the thread is waiting for them to complete"), rayon-rs/rayon#592;
//    a pool's `join` waiting on one condvar shared by all jobs is rust-threadpool's.
//    Look-alike (the fix): the lock is released before the fork-join.
//
//    Reported by the opt-in condvar rule (`set_condvar_check`) when the latch is new (rayon makes
//    one per job): before any notify of a condvar, a wait holding any other lock is reported.
//    When the latch is shared and was notified before, the rule reports the locks a notifier
//    held *or took* in its window on the condvar (since its last wait on it or notify of it, or
//    its last such event on any condvar): the job takes the lock and releases it before it
//    notifies, inside its window (it was missed while the rule knew only the locks held at the
//    notify). The wait-for graph has no edge for a condvar wait. Look-alikes of the window:
//    `tests/condvar_latch.rs`.

/// A one-worker pool: jobs come through a channel.
type Latch = Arc<(Mutex<bool>, lockcheck::Condvar)>;

fn pool() -> mpsc::Sender<Box<dyn FnOnce() + Send>> {
    let (tx, rx) = mpsc::channel::<Box<dyn FnOnce() + Send>>();
    std::thread::spawn(move || {
        while let Ok(job) = rx.recv() {
            job();
        }
    });
    tx
}

fn latch(class: &'static str) -> Latch {
    Arc::new((Mutex::named(class, false), lockcheck::Condvar::new()))
}

/// `pool.join(job)`, with `held` (a guard of `driver`, or none) kept across; the job takes
/// `driver`, then sets the latch and notifies under the latch's mutex. Returns whether the latch
/// was set in time (the bug: it is not, the wait gives up).
fn join_on_pool(
    pool: &mpsc::Sender<Box<dyn FnOnce() + Send>>,
    driver: &Arc<Mutex<u32>>,
    latch: &Latch,
    held: Option<lockcheck::MutexGuard<'_, u32>>,
) -> bool {
    *latch.0.lock() = false;
    let (d2, l2) = (driver.clone(), latch.clone());
    pool.send(Box::new(move || {
        *d2.lock() += 1;
        let mut set = l2.0.lock();
        *set = true;
        l2.1.notify_all();
    }))
    .unwrap();
    let mut set = latch.0.lock();
    let deadline = std::time::Instant::now() + Duration::from_millis(300);
    while !*set {
        if latch.1.wait_until(&mut set, deadline).timed_out() {
            break;
        }
    }
    let done = *set;
    drop(set);
    drop(held);
    done
}

#[test]
fn a_fork_join_waited_on_a_new_latch_holding_the_jobs_lock_is_reported() {
    setup();
    lockcheck::watchdog::set_condvar_check(true);
    watchdog(20, || {
        let driver = Arc::new(Mutex::named("pool.new.driver", 0));
        let p = pool();
        // A warm pool: a job done before, on its own latch.
        assert!(join_on_pool(&p, &driver, &latch("pool.new.latch"), None));
        let g = driver.lock(); // POOL_NEW_HOLD
        assert!(!join_on_pool(
            &p,
            &driver,
            &latch("pool.new.latch"),
            Some(g)
        ));
    })
    .unwrap();
    let v = condvar_warnings("pool.new.driver");
    assert_eq!(v.len(), 1, "{v:#?}");
    M.assert_sites(&v[0], &["POOL_NEW_HOLD"]);
}

#[test]
fn a_fork_join_waited_on_a_shared_latch_holding_the_jobs_lock_is_reported() {
    setup();
    lockcheck::watchdog::set_condvar_check(true);
    watchdog(20, || {
        let driver = Arc::new(Mutex::named("pool.shared.driver", 0));
        let p = pool();
        let shared = latch("pool.shared.latch");
        assert!(join_on_pool(&p, &driver, &shared, None));
        let g = driver.lock(); // POOL_SHARED_HOLD
        assert!(!join_on_pool(&p, &driver, &shared, Some(g)));
    })
    .unwrap();
    let v = condvar_warnings("pool.shared.driver");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(notifier_seen(&v[0]), "{v:#?}");
    M.assert_sites(&v[0], &["POOL_SHARED_HOLD"]);
}

#[test]
fn a_fork_join_after_the_lock_is_released_is_silent() {
    setup();
    lockcheck::watchdog::set_condvar_check(true);
    watchdog(20, || {
        let driver = Arc::new(Mutex::named("pool.fixed.driver", 0));
        let p = pool();
        let shared = latch("pool.fixed.latch");
        for _ in 0..2 {
            assert!(join_on_pool(&p, &driver, &latch("pool.fixed.latch"), None));
            assert!(join_on_pool(&p, &driver, &shared, None));
        }
    })
    .unwrap();
    assert!(found("pool.fixed.driver").is_empty());
    assert!(found("pool.fixed.latch").is_empty());
}
