//! Stress: 64 threads on whatever cores there are, thousands of locks of mixed types (Mutex,
//! RwLock, Semaphore, `sync::Mutex`) created and dropped while other threads use them.
//!
//! - Every thread acquires in increasing global rank: lockcheck must stay silent.
//! - `k` distinct pairs taken in opposite orders by different concurrent threads, many times
//!   over: each pair is reported exactly once.
//! - Locks created and dropped in a loop leave the lock graph the size it was.
//! - `LOCKCHECK_STRESS=long`: 100 million acquisitions (or `LOCKCHECK_STRESS_N`), with resident
//!   memory read after each of 20 phases: after the first, it must stay flat.
//!
//! The tests of this file share lockcheck's global state (graph sizes, the violation list), so
//! they run one at a time.

#[path = "support/scratch.rs"]
mod scratch;
mod support;

use lockcheck::{Action, Mutex, RwLock, Semaphore};
use scratch::Scratch;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use support::{found, watchdog};

/// One test at a time (plain std lock: invisible to lockcheck).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn long_mode() -> bool {
    std::env::var("LOCKCHECK_STRESS").is_ok_and(|v| v == "long")
}

const THREADS: usize = 64;
const RANKS: usize = 16;
const POOL: usize = 64;

/// xorshift64*, per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A lock of one of the four kinds; the rank decides the kind and the class.
enum AnyLock {
    Mutex(Mutex<u64>),
    RwLock(RwLock<u64>),
    Semaphore(Semaphore),
    Std(lockcheck::sync::Mutex<u64>),
}

#[allow(dead_code)] // held for their drop
enum AnyGuard<'a> {
    Mutex(lockcheck::MutexGuard<'a, u64>),
    Read(lockcheck::RwLockReadGuard<'a, u64>),
    Write(lockcheck::RwLockWriteGuard<'a, u64>),
    Permit(lockcheck::SemaphorePermit<'a>),
    Std(lockcheck::sync::MutexGuard<'a, u64>),
}

/// Class names of the ranks, leaked once (lock names are `&'static str`).
fn rank_name(r: usize) -> &'static str {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        (0..RANKS)
            .map(|r| &*Box::leak(format!("stress.rank{r:02}").into_boxed_str()))
            .collect()
    })[r]
}

impl AnyLock {
    fn new(rank: usize) -> AnyLock {
        let name = rank_name(rank);
        match rank % 4 {
            0 => AnyLock::Mutex(Mutex::named(name, 0)),
            1 => AnyLock::RwLock(RwLock::named(name, 0)),
            2 => AnyLock::Semaphore(Semaphore::named(name, 4)),
            // `sync::Mutex` has no name: its class is its construction site, so every rank
            // needs a line of its own (one site shared by several ranks would be one class
            // taken both before and after other ranks: a true class inversion).
            _ => match rank {
                3 => AnyLock::Std(lockcheck::sync::Mutex::new(0)),
                7 => AnyLock::Std(lockcheck::sync::Mutex::new(0)),
                11 => AnyLock::Std(lockcheck::sync::Mutex::new(0)),
                _ => AnyLock::Std(lockcheck::sync::Mutex::new(0)),
            },
        }
    }

    fn acquire(&self, write: bool) -> AnyGuard<'_> {
        match self {
            AnyLock::Mutex(m) => AnyGuard::Mutex(m.lock()),
            AnyLock::RwLock(l) if write => AnyGuard::Write(l.write()),
            AnyLock::RwLock(l) => AnyGuard::Read(l.read()),
            AnyLock::Semaphore(s) => AnyGuard::Permit(s.acquire()),
            AnyLock::Std(m) => AnyGuard::Std(m.lock().expect("never poisoned here")),
        }
    }
}

/// Per rank, a pool of live locks; threads replace entries while others hold clones.
/// The pool itself is behind a plain parking_lot lock: the harness is invisible to lockcheck.
struct Pools(Vec<parking_lot::Mutex<Vec<Arc<AnyLock>>>>);

impl Pools {
    fn new() -> Pools {
        Pools(
            (0..RANKS)
                .map(|r| {
                    parking_lot::Mutex::new((0..POOL).map(|_| Arc::new(AnyLock::new(r))).collect())
                })
                .collect(),
        )
    }

    fn pick(&self, rank: usize, rng: &mut Rng) -> Arc<AnyLock> {
        let pool = self.0[rank].lock();
        Arc::clone(&pool[rng.below(pool.len())])
    }

    /// Replaces a random entry with a new lock; the old one drops when its last user is done.
    fn churn(&self, rank: usize, rng: &mut Rng) {
        let fresh = Arc::new(AnyLock::new(rank));
        let old = {
            let mut pool = self.0[rank].lock();
            let i = rng.below(pool.len());
            std::mem::replace(&mut pool[i], fresh)
        };
        drop(old);
    }
}

/// One worker of the consistent load: sections over 1-4 ranks in increasing order, with
/// nested guards of mixed kinds; every 16th section replaces a lock. Returns acquisitions.
fn consistent_worker(pools: &Pools, seed: u64, stop: &AtomicBool, budget: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let mut acquisitions = 0u64;
    let mut section = 0u64;
    while acquisitions < budget && !stop.load(Ordering::Relaxed) {
        section += 1;
        let mut ranks: Vec<usize> = (0..1 + rng.below(4)).map(|_| rng.below(RANKS)).collect();
        ranks.sort_unstable();
        ranks.dedup();
        let locks: Vec<Arc<AnyLock>> = ranks.iter().map(|&r| pools.pick(r, &mut rng)).collect();
        {
            let mut guards = Vec::with_capacity(locks.len());
            for l in &locks {
                guards.push(l.acquire(rng.below(3) == 0));
                acquisitions += 1;
            }
            // Release in a random order, not only LIFO.
            while !guards.is_empty() {
                let i = rng.below(guards.len());
                drop(guards.swap_remove(i));
            }
        }
        if section % 16 == 0 {
            pools.churn(rng.below(RANKS), &mut rng);
        }
    }
    acquisitions
}

fn vm_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn lockcheck_findings() -> usize {
    lockcheck::violations()
        .iter()
        .filter(|v| {
            v.classes()
                .iter()
                .any(|c| c.starts_with("stress.rank") || c.starts_with("tests/stress.rs"))
        })
        .count()
}

#[test]
fn consistent_orders_over_64_threads_and_churning_locks_stay_silent() {
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    let long = long_mode();
    // CI: 96k acquisitions (a few seconds of a debug build on 2 cores); long: 10^8. In phases
    // of 64 fresh threads each, with resident memory read after each phase.
    let (mut total, phases): (u64, u64) = if long { (100_000_000, 20) } else { (96_000, 3) };
    // `LOCKCHECK_STRESS_N`: another total, for a run between the two sizes.
    if let Some(n) = std::env::var("LOCKCHECK_STRESS_N")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        total = n;
    }
    let per_thread = total / phases / THREADS as u64;
    let secs = if long { 4 * 3600 } else { 120 };
    let r = watchdog(secs, move || {
        let pools = Arc::new(Pools::new());
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut rss = Vec::new();
        for phase in 0..phases {
            let handles: Vec<_> = (0..THREADS)
                .map(|i| {
                    let (pools, stop, done) = (pools.clone(), stop.clone(), done.clone());
                    let seed = phase * 1000 + i as u64 + 1;
                    let body = move || {
                        let n = consistent_worker(&pools, seed, &stop, per_thread);
                        done.fetch_add(n, Ordering::Relaxed);
                    };
                    // Half through lockcheck::thread (spawn/join seen), half through std.
                    if i % 2 == 0 {
                        std::thread::spawn(body)
                    } else {
                        lockcheck::thread::spawn(body).into_inner()
                    }
                })
                .collect();
            for h in handles {
                h.join().expect("worker");
            }
            rss.push(vm_kb("VmRSS:"));
        }
        let n = done.load(Ordering::Relaxed);
        eprintln!(
            "stress: {n} acquisitions on {THREADS} threads x {phases} phases in {:.1?}; VmRSS after each phase (kB): {rss:?}; graph {:?}",
            started.elapsed(),
            lockcheck::__private::graph_sizes()
        );
        assert!(
            n >= per_thread * phases * THREADS as u64,
            "{n} acquisitions"
        );
        // The first phase fills the graph with the edges among the live locks (bounded by the
        // pools, whatever the number of acquisitions); after it, memory must stay flat.
        if let (Some(Some(a)), Some(Some(b))) = (rss.get(1).or(rss.first()), rss.last()) {
            assert!(
                *b < a + 32 * 1024,
                "VmRSS grew from {a} kB to {b} kB over {n} acquisitions: {rss:?}"
            );
        }
    });
    r.expect("no panic, no hang");
    assert_eq!(lockcheck_findings(), 0, "{:#?}", lockcheck::violations());
}

/// Number of injected inversions. lockcheck reports one bug once per set of acquisition sites
/// (the same lines inverting on other objects are the same bug), so each pair needs lines of
/// its own: `forward` and `backward` have one arm per pair.
const PAIRS: usize = 4;

type Pair = (Mutex<u32>, RwLock<u32>);

fn forward(i: usize, p: &Pair) {
    match i {
        0 => drop((p.0.lock(), p.1.write())),
        1 => drop((p.0.lock(), p.1.write())),
        2 => drop((p.0.lock(), p.1.write())),
        _ => drop((p.0.lock(), p.1.write())),
    }
}

fn backward(i: usize, p: &Pair) {
    match i {
        0 => drop((p.1.write(), p.0.lock())),
        1 => drop((p.1.write(), p.0.lock())),
        2 => drop((p.1.write(), p.0.lock())),
        _ => drop((p.1.write(), p.0.lock())),
    }
}

#[test]
fn injected_inversions_among_64_threads_are_each_reported_once() {
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    const REPEAT: usize = 50;
    let r = watchdog(120, move || {
        let names: Vec<(&'static str, &'static str)> = (0..PAIRS)
            .map(|i| {
                (
                    &*Box::leak(format!("stress.inv{i}.a").into_boxed_str()),
                    &*Box::leak(format!("stress.inv{i}.b").into_boxed_str()),
                )
            })
            .collect();
        let pairs: Vec<Arc<Pair>> = names
            .iter()
            .map(|&(a, b)| Arc::new((Mutex::named(a, 0), RwLock::named(b, 0))))
            .collect();
        let pools = Arc::new(Pools::new());
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        // Background load on the remaining threads, in the consistent order.
        for i in 0..THREADS - 2 * PAIRS {
            let (pools, stop) = (pools.clone(), stop.clone());
            handles.push(std::thread::spawn(move || {
                consistent_worker(&pools, 1000 + i as u64, &stop, u64::MAX);
            }));
        }
        // Pair i: thread F takes a then b, REPEAT times; then thread B, concurrent (alive at the
        // same time, no spawn/join between them), takes b then a, REPEAT times. They never hold
        // at the same time: the hand-over is a std channel, invisible to lockcheck.
        let mut pair_handles = Vec::new();
        for (i, p) in pairs.iter().enumerate() {
            let (tx, rx) = mpsc::channel::<()>();
            let (back_tx, back_rx) = mpsc::channel::<()>();
            let f = p.clone();
            pair_handles.push(std::thread::spawn(move || {
                for _ in 0..REPEAT {
                    forward(i, &f);
                }
                tx.send(()).unwrap();
                // Stay alive until the other order is done.
                back_rx.recv_timeout(Duration::from_secs(60)).unwrap();
            }));
            let b = p.clone();
            pair_handles.push(std::thread::spawn(move || {
                rx.recv_timeout(Duration::from_secs(60)).unwrap();
                for _ in 0..REPEAT {
                    backward(i, &b);
                }
                back_tx.send(()).unwrap();
            }));
        }
        for h in pair_handles {
            h.join().expect("pair thread");
        }
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().expect("load thread");
        }
        for (a, _) in &names {
            let v = found(a);
            assert_eq!(v.len(), 1, "{a}: {v:#?}");
            assert!(matches!(
                v[0].kind,
                lockcheck::ViolationKind::LockOrderInversion
                    | lockcheck::ViolationKind::ClassInversion
            ));
        }
    });
    r.expect("no panic, no hang");
    assert_eq!(lockcheck_findings(), 0, "the background load stays silent");
}

#[test]
fn creating_and_dropping_locks_in_a_loop_does_not_grow_the_graph() {
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    let rounds = if long_mode() { 200 } else { 12 };
    let r = watchdog(120, move || {
        let round = || {
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    std::thread::spawn(move || {
                        let mut rng = Rng::new(t + 7);
                        for _ in 0..100 {
                            let a = Mutex::named("stress.churn.a", 0u32);
                            let b = RwLock::named("stress.churn.b", 0u32);
                            let c = Semaphore::named("stress.churn.c", 2);
                            let _ga = a.lock();
                            let _gb = b.write();
                            let _gc = c.acquire();
                            if rng.below(2) == 0 {
                                let d = lockcheck::sync::Mutex::new(());
                                let _gd = d.lock().unwrap();
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            lockcheck::__private::graph_sizes()
        };
        let first = round();
        for i in 1..rounds {
            let now = round();
            assert_eq!(now, first, "graph sizes after round {i} (first: {first:?})");
        }
    });
    r.expect("no panic, no hang");
    assert!(found("stress.churn.a").is_empty());
}

/// Records ROUNDS rounds of RACERS threads racing on the first use of a fresh lock of class
/// `stress.idrace` (the lock is dropped after each round); returns the trace's events, the class
/// number and the racers per round.
fn id_race_trace(name: &str) -> (Vec<lockcheck_core::trace::Event>, u32) {
    use lockcheck_core::trace::Event;
    let dir = Scratch::new(&format!("idrace-{name}"));
    let path = dir.join("race.json");
    lockcheck::record::start(&path).expect("start recording");
    let r = watchdog(60, || {
        for _ in 0..ROUNDS {
            let m = Arc::new(Mutex::named("stress.idrace", 0u32));
            let barrier = Arc::new(std::sync::Barrier::new(RACERS));
            let threads: Vec<_> = (0..RACERS)
                .map(|i| {
                    let (m, barrier) = (m.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        // Both first-use paths: blocking and try.
                        if i % 2 == 0 {
                            *m.lock() += 1;
                        } else {
                            while m.try_lock().map(|mut g| *g += 1).is_none() {
                                std::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(*m.lock(), RACERS as u32);
        }
    });
    let written = lockcheck::record::stop().expect("stop recording");
    r.expect("no hang");
    assert!(written.is_some());
    let reader = lockcheck_analyze::read::TraceReader::open(&path, None).unwrap();
    let events: Vec<Event> = reader.map(|e| e.expect("the trace reads")).collect();
    let _ = std::fs::remove_dir_all(&dir);
    let class = events
        .iter()
        .find_map(|e| match e {
            Event::Class { c, key, .. } if key == "stress.idrace" => Some(*c),
            _ => None,
        })
        .expect("the class is declared");
    (events, class)
}

const ROUNDS: usize = 100;
const RACERS: usize = 8;

/// The one lock-free protocol of the fast path: a lock's id word starts at 0 and is set once by
/// a compare-exchange on first use (losers take the winner's value), then only gains flag bits.
/// Many threads racing on the first use of one lock must all see the same id: recorded, every
/// acquisition of a round's lock names one lock number.
#[test]
fn threads_racing_on_the_first_use_of_a_lock_all_see_one_id() {
    use lockcheck_core::trace::Event;
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    let (events, class) = id_race_trace("ids");
    let mut declared: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Lock { l, c, .. } if *c == class => Some(*l),
            _ => None,
        })
        .collect();
    declared.sort_unstable();
    declared.dedup();
    assert_eq!(declared.len(), ROUNDS, "one id per lock: {declared:?}");
    let mut per_lock = std::collections::HashMap::<u64, usize>::new();
    for e in &events {
        if let Event::Acquire { l, .. } = e {
            if declared.binary_search(l).is_ok() {
                *per_lock.entry(*l).or_default() += 1;
            }
        }
    }
    // Every racer's acquisition, plus the final check, under the one id of its round's lock.
    assert_eq!(per_lock.len(), ROUNDS);
    assert!(per_lock.values().all(|&n| n == RACERS + 1), "{per_lock:?}");
}

/// The trace format says a dropped lock's number is never used again, and a lock is declared
/// once. The recorder buffers per thread, so a `drop` written from the dropping thread's buffer
/// can precede other threads' acquisitions of that lock, which then declare it again.
#[test]
fn a_recorded_lock_is_declared_once_and_not_used_after_its_drop() {
    use lockcheck_core::trace::Event;
    let _serial = serial();
    lockcheck::set_action(Action::Warn);
    let (events, class) = id_race_trace("drop");
    let mut ours = std::collections::HashSet::new();
    let mut dropped = std::collections::HashSet::new();
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::Lock { l, c, .. } if *c == class => {
                assert!(ours.insert(*l), "event {i}: lock {l} declared again");
            }
            Event::Drop { l } if ours.contains(l) => {
                dropped.insert(*l);
            }
            Event::Acquire { l, .. } | Event::Release { l, .. } if dropped.contains(l) => {
                panic!("event {i}: lock {l} used after its drop: {e:?}");
            }
            _ => {}
        }
    }
}
