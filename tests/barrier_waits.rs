//! A wait at a barrier made holding **no** lock is a waiter of the wait-for graph too: a
//! participant that has not arrived and is stuck behind such a waiter (it joins the waiter, or
//! waits for a message only the waiter can send) is a `deadlock`, with both threads' names and
//! sites; the waiter gives up (its arrival counted) and the others go on. Look-alikes stay
//! silent: a joiner that is no participant while a known participant is late, a participant
//! that arrives late. Every scenario runs under a watchdog, ordered by the wait-for graph's
//! state (`__private::waits()`), not by sleeps; only the "late" look-alikes wait past the
//! graph's grace periods, which are times by design.

mod support;

use lockcheck::sync::Barrier;
use lockcheck::{Action, LockKind, Mutex, ViolationKind};
use std::sync::Arc;
use std::time::Duration;
use support::markers::Markers;
use support::{blocked_kind, wait_until, watchdog};

/// This file's marker comments.
const M: Markers = Markers::new("barrier_waits.rs", include_str!("barrier_waits.rs"));

/// The test threads of this file share the process's barrier waits: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    lockcheck::set_action(Action::Panic);
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The deadlocks reported at `marker`'s line since `before` findings (the scenarios of this
/// file share markers).
fn deadlocks_at(before: usize, marker: &str) -> Vec<lockcheck::Violation> {
    let at = M.at(marker);
    lockcheck::violations()[before..]
        .iter()
        .filter(|v| {
            v.kind == ViolationKind::Deadlock
                && support::markers::sites(v).iter().any(|s| s.contains(&at))
        })
        .cloned()
        .collect()
}

/// A thread started by `lockcheck::thread`, named.
fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> lockcheck::thread::JoinHandle<T> {
    lockcheck::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .unwrap()
}

/// `waiter` waits at a barrier of two holding nothing (but its own end); `joiner`, the other
/// participant, joins it before arriving. `rounds` generations are passed first (the joiner is
/// then a known participant). Returns the joiner's join outcome.
fn join_a_waiter(rounds: usize) -> Result<(), String> {
    let barrier = Arc::new(Barrier::new(2));
    let joiner = spawn("barrier.joiner", move || {
        let b = barrier.clone();
        let waiter = spawn("barrier.waiter", move || {
            for _ in 0..rounds {
                b.wait();
            }
            b.wait(); // JOINED_WAIT
        });
        for _ in 0..rounds {
            barrier.wait();
        }
        wait_until("the waiter at the barrier", || {
            blocked_kind(LockKind::Barrier) == 1
        });
        let r = waiter.join(); // JOIN_WAITER
                               // The waiter gave up (its arrival counted): this arrival opens the barrier.
        barrier.wait();
        r.map_err(|e| support::panic_message(&*e))
    });
    joiner.join().unwrap()
}

/// The joiner arrived at the previous generation: a known participant, stuck behind the waiter
/// (it waits for the waiter's end), never arrives. Without barrier waits holding nothing in the
/// graph, both threads hang (the watchdog fails the test).
#[test]
fn a_known_participant_joining_a_waiter_that_holds_nothing_is_a_deadlock() {
    let _s = serial();
    let before = lockcheck::violations().len();
    let r = watchdog(60, || {
        let r = join_a_waiter(1);
        let msg = r.expect_err("the waiter gave up, its thread panicked");
        assert!(msg.contains("deadlock"), "{msg}");
    });
    r.unwrap();
    let found = deadlocks_at(before, "JOIN_WAITER");
    assert_eq!(found.len(), 1, "{found:#?}");
    let v = &found[0];
    M.assert_sites(v, &["JOINED_WAIT", "JOIN_WAITER"]);
    let names: Vec<&str> = v.edges.iter().map(|e| e.thread.as_str()).collect();
    assert!(
        names.iter().any(|n| n.contains("barrier.waiter"))
            && names.iter().any(|n| n.contains("barrier.joiner")),
        "{v:#?}"
    );
    assert!(
        v.message.contains("arrived at its previous generation"),
        "{}",
        v.message
    );
}

/// The first generation: the joiner is only assumed to be the missing participant (it is the
/// one thread stuck behind the waiter), five seconds into the wait; the report says so.
#[test]
fn a_first_generation_joiner_of_a_waiter_is_assumed_a_participant() {
    let _s = serial();
    let before = lockcheck::violations().len();
    let r = watchdog(60, || {
        let msg = join_a_waiter(0).expect_err("the waiter gave up");
        assert!(msg.contains("deadlock"), "{msg}");
    });
    r.unwrap();
    let found = deadlocks_at(before, "JOIN_WAITER");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|v| v.message.contains("assumed a participant")),
        "{found:#?}"
    );
}

/// The waiter holds nothing but the only sender of a channel; the other participant (known: it
/// passed the previous generation) receives from it holding a lock, before arriving. The
/// receive waits for the waiter, the waiter for the receiver: a deadlock, the waiter gives up
/// (its sender dropped as it unwinds, the receive ends, the receiver arrives).
#[test]
fn a_participant_receiving_what_only_a_waiter_sends_is_a_deadlock() {
    let _s = serial();
    let before = lockcheck::violations().len();
    let r = watchdog(60, || {
        let barrier = Arc::new(Barrier::new(2));
        let (tx, rx) = lockcheck::sync::mpsc::channel::<u32>();
        let b = barrier.clone();
        let feeder = spawn("barrier.feeder", move || {
            tx.send(1).unwrap(); // FEEDER_SEND
            b.wait();
            b.wait(); // FEEDER_WAIT
            tx.send(2).unwrap();
        });
        let receiver = spawn("barrier.receiver", move || {
            let state = Mutex::named("barrier_waits.receiver.state", ());
            assert_eq!(rx.recv().unwrap(), 1);
            barrier.wait();
            wait_until("the feeder at the barrier", || {
                blocked_kind(LockKind::Barrier) == 1
            });
            let got = {
                let _g = state.lock();
                rx.recv() // RECEIVE_FROM_WAITER
            };
            assert!(got.is_err(), "the feeder gave up: its sender is gone");
            barrier.wait();
        });
        receiver.join().unwrap();
        let msg = support::panic_message(&*feeder.join().expect_err("the feeder gave up"));
        assert!(msg.contains("deadlock"), "{msg}");
    });
    r.unwrap();
    let found = deadlocks_at(before, "RECEIVE_FROM_WAITER");
    assert_eq!(found.len(), 1, "{found:#?}");
    M.assert_sites(&found[0], &["FEEDER_WAIT", "RECEIVE_FROM_WAITER"]);
}

/// Look-alike: the joiner of the waiter is no participant; the other participant (known from
/// the previous generation) is late, past the five seconds after which the first generation
/// guesses, and arrives. Silent: with known participants enough for the missing count, no
/// other thread is taken for one.
#[test]
fn a_joiner_that_is_no_participant_while_a_known_one_is_late_is_silent() {
    let _s = serial();
    let r = watchdog(60, || {
        let barrier = Arc::new(Barrier::new(2));
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let b = barrier.clone();
        let late = spawn("barrier.late", move || {
            b.wait();
            wait_go.recv().unwrap();
            b.wait(); // LATE_ARRIVAL
        });
        let b = barrier.clone();
        let waiter = spawn("barrier.lone_waiter", move || {
            b.wait();
            b.wait(); // LONE_WAIT
        });
        let joiner = spawn("barrier.bystander", move || {
            wait_until("the waiter at the barrier", || {
                blocked_kind(LockKind::Barrier) == 1
            });
            waiter.join().unwrap(); // BYSTANDER_JOIN
        });
        wait_until("the bystander's join", || blocked_kind(LockKind::End) == 1);
        // Past the first generation's guess (five seconds): a time by design.
        std::thread::sleep(Duration::from_secs(6));
        go.send(()).unwrap();
        late.join().unwrap();
        joiner.join().unwrap();
    });
    r.unwrap();
    for m in ["LONE_WAIT", "BYSTANDER_JOIN", "LATE_ARRIVAL"] {
        assert!(M.found_at(m).is_empty(), "{m}: {:#?}", M.found_at(m));
    }
}

/// Look-alike: the first generation, a participant that joins a thread which then ends (it
/// waits on nothing of the barrier's) and arrives. Silent.
#[test]
fn a_participant_joining_a_thread_that_ends_is_silent() {
    let _s = serial();
    let r = watchdog(60, || {
        let barrier = Arc::new(Barrier::new(2));
        let b = barrier.clone();
        let waiter = spawn("barrier.early", move || {
            b.wait(); // EARLY_WAIT
        });
        let participant = spawn("barrier.participant", move || {
            let (go, wait_go) = std::sync::mpsc::channel::<()>();
            let helper = spawn("barrier.helper", move || wait_go.recv().unwrap());
            let h = std::thread::spawn(move || {
                wait_until("the participant's join", || {
                    blocked_kind(LockKind::End) == 1
                });
                go.send(()).unwrap();
            });
            wait_until("the waiter at the barrier", || {
                blocked_kind(LockKind::Barrier) == 1
            });
            helper.join().unwrap(); // JOIN_HELPER
            h.join().unwrap();
            barrier.wait();
        });
        participant.join().unwrap();
        waiter.join().unwrap();
    });
    r.unwrap();
    for m in ["EARLY_WAIT", "JOIN_HELPER"] {
        assert!(M.found_at(m).is_empty(), "{m}: {:#?}", M.found_at(m));
    }
}
