//! Recording on the acquisition fast path (`fast::RECORDING`): acquisitions that take the fast
//! way while a trace is recorded (nothing held, or a dependency the thread already checked) write
//! the same records as the full path, in its order, and a warm cache still reports an inversion.

#[path = "support/trace_file.rs"]
mod trace_file;
use lockcheck::Mutex;
use lockcheck_core::trace::Event;
use std::sync::Arc;
use trace_file::{events, lock_of, tmp};

/// The request, acquire and release events of `locks`, in file order, as (kind, index in locks).
fn sequence(ev: &[Event], locks: &[u64]) -> Vec<(char, usize)> {
    let at = |l: &u64| locks.iter().position(|x| x == l);
    ev.iter()
        .filter_map(|e| match e {
            Event::Request { l, .. } => at(l).map(|i| ('q', i)),
            Event::Acquire { l, .. } => at(l).map(|i| ('a', i)),
            Event::Release { l, .. } => at(l).map(|i| ('r', i)),
            Event::Fail { l, .. } => at(l).map(|i| ('f', i)),
            _ => None,
        })
        .collect()
}

/// One recording per process: the steps run in sequence.
#[test]
fn fast_acquisitions_are_recorded_as_the_full_path_records_them() {
    let path = tmp("trace.json");
    lockcheck::set_action(lockcheck::Action::Panic);
    lockcheck::record::start(&path).unwrap();

    let a = Arc::new(Mutex::named("rf.a", 0));
    let b = Arc::new(Mutex::named("rf.b", 0));
    let c = Arc::new(Mutex::named("rf.c", 0));
    const ROUNDS: usize = 6;
    {
        let (a, b, c) = (a.clone(), b.clone(), c.clone());
        std::thread::spawn(move || {
            // The first round checks (full path), the others hit the thread's cache and memo.
            for _ in 0..ROUNDS {
                *a.lock() += 1;
                {
                    let _a = a.lock();
                    *b.lock() += 1;
                }
                {
                    let _a = a.lock();
                    let _b = b.lock();
                    *c.lock() += 1;
                }
            }
        })
        .join()
        .unwrap();
    }
    // A warm cache over a recorded hold still reports the inversion, before taking the lock.
    {
        let (a, b) = (a.clone(), b.clone());
        let r = std::thread::spawn(move || {
            let _b = b.lock();
            let _a = a.lock();
        })
        .join();
        assert!(r.is_err(), "the inversion must be reported (panic)");
    }
    lockcheck::record::stop().unwrap();

    let ev = events(&path);
    let locks = [
        lock_of(&ev, "rf.a"),
        lock_of(&ev, "rf.b"),
        lock_of(&ev, "rf.c"),
    ];
    let round = [
        ('a', 0),
        ('r', 0),
        ('a', 0),
        ('q', 1),
        ('a', 1),
        ('r', 1),
        ('r', 0),
        ('a', 0),
        ('q', 1),
        ('a', 1),
        ('q', 2),
        ('a', 2),
        ('r', 2),
        ('r', 1),
        ('r', 0),
    ];
    let mut want: Vec<(char, usize)> = round
        .iter()
        .copied()
        .cycle()
        .take(round.len() * ROUNDS)
        .collect();
    // The inverting thread: b taken, a requested (the deciding event), then b released while
    // the panic unwinds.
    want.extend([('a', 1), ('q', 0), ('r', 1)]);
    assert_eq!(sequence(&ev, &locks), want);
}
