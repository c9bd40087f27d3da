//! `lockcheck::sync::mpsc`: a receive that waits for a message while its thread holds locks is
//! a wait for the channel's senders (any one of them: an OR-wait). When every sender is stuck
//! behind the receiving thread's locks, the hang is a `deadlock` report; the receiving thread
//! gives up its locks (under `panic` and `warn` alike, as for every wait-for cycle). Each
//! deadlock is paired with look-alikes that must stay silent; all of it runs under a watchdog.

mod support;

use lockcheck::sync::mpsc;
use lockcheck::{Action, Mutex, ViolationKind};
use std::sync::Arc;
use std::time::Duration;
use support::watchdog;

fn setup() {
    lockcheck::set_action(Action::Panic);
}

/// Deadlock reports naming `lock` (a class name), made since `before` reports.
fn deadlocks_naming(before: usize, lock: &str) -> usize {
    lockcheck::violations()[before..]
        .iter()
        .filter(|v| {
            v.kind == ViolationKind::Deadlock && v.edges.iter().any(|e| e.held.class == lock)
        })
        .count()
}

/// The test threads of this file share the process's report list: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The classic shape: the receiver holds `state` across `recv`; the only sender takes `state`
/// before it sends (its first use of the handle). A hang without lockcheck; here a report, and
/// the receive panics, which frees the sender.
#[test]
fn a_receive_under_the_lock_its_only_sender_needs_is_a_deadlock() {
    let _s = serial();
    setup();
    let before = lockcheck::violations().len();
    let r = watchdog(30, || {
        let state = Arc::new(Mutex::named("recv.classic.state", 0u32));
        let (tx, rx) = mpsc::channel::<u32>();
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let s2 = state.clone();
        let sender = std::thread::spawn(move || {
            wait_go.recv().unwrap();
            let g = s2.lock(); // waits for the receiver
            let _ = tx.send(*g);
        });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _g = state.lock();
            go.send(()).unwrap();
            rx.recv()
        }));
        let msg = support::panic_message(&*r.expect_err("the receive gives up"));
        assert!(msg.contains("deadlock"), "{msg}");
        sender.join().unwrap();
    });
    r.unwrap();
    assert_eq!(deadlocks_naming(before, "recv.classic.state"), 1);
}

/// The sender sent before (its handle is placed), then takes `state` and *releases* it before
/// its next send: it still cannot reach the send while the receiver holds `state`. A bounded
/// channel, received through its iterator.
#[test]
fn a_sender_that_releases_the_lock_before_its_send_still_deadlocks_an_iterating_receiver() {
    let _s = serial();
    setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("recv.released.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(4);
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let s2 = state.clone();
        let sender = std::thread::spawn(move || {
            tx.send(0).unwrap();
            wait_go.recv().unwrap();
            let v = *s2.lock(); // waits for the receiver
            let _ = tx.send(v);
        });
        assert_eq!(rx.recv(), Ok(0));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _g = state.lock();
            go.send(()).unwrap();
            rx.iter().next()
        }));
        let msg = support::panic_message(&*r.expect_err("the receive gives up"));
        assert!(msg.contains("deadlock"), "{msg}");
        sender.join().unwrap();
    })
    .unwrap();
    assert_eq!(deadlocks_naming(before, "recv.released.state"), 1);
}

/// A longer chain: the only sender waits for `inner`, whose holder waits for `state`, which the
/// receiver holds across `recv_timeout` (a long one: the wait is the same while it lasts).
#[test]
fn a_chain_through_another_lock_to_the_receivers_lock_is_a_deadlock() {
    let _s = serial();
    setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("recv.chain.state", 0u32));
        let inner = Arc::new(Mutex::named("recv.chain.inner", 0u32));
        let (tx, rx) = mpsc::channel::<u32>();
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let (held, wait_held) = std::sync::mpsc::channel::<()>();
        let (s2, i2, i3) = (state.clone(), inner.clone(), inner.clone());
        let middle = std::thread::spawn(move || {
            let _i = i2.lock();
            held.send(()).unwrap();
            wait_go.recv().unwrap();
            let _s = s2.lock(); // waits for the receiver
        });
        wait_held.recv().unwrap();
        let sender = std::thread::spawn(move || {
            let v = *i3.lock(); // waits for `middle`
            let _ = tx.send(v);
        });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _g = state.lock();
            go.send(()).unwrap();
            rx.recv_timeout(Duration::from_secs(20))
        }));
        let msg = support::panic_message(&*r.expect_err("the receive gives up"));
        assert!(msg.contains("deadlock"), "{msg}");
        middle.join().unwrap();
        sender.join().unwrap();
    })
    .unwrap();
    assert_eq!(deadlocks_naming(before, "recv.chain.state"), 1);
}

/// The receiving thread kept a `Sender` of its own (used, say to clone it for the workers):
/// that handle cannot send while its thread waits in the receive, so the one worker, stuck on
/// the receiver's lock, is every sender there is. A deadlock.
#[test]
fn a_sender_kept_by_the_receiving_thread_does_not_hide_the_deadlock() {
    let _s = serial();
    setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("recv.kept.state", 0u32));
        let (tx, rx) = mpsc::channel::<u32>();
        tx.send(0).unwrap();
        assert_eq!(rx.recv(), Ok(0));
        let worker_tx = tx.clone();
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let s2 = state.clone();
        let worker = std::thread::spawn(move || {
            worker_tx.send(1).unwrap();
            wait_go.recv().unwrap();
            let v = *s2.lock(); // waits for the receiver
            let _ = worker_tx.send(v);
        });
        assert_eq!(rx.recv(), Ok(1));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _g = state.lock();
            go.send(()).unwrap();
            rx.recv()
        }));
        let msg = support::panic_message(&*r.expect_err("the receive gives up"));
        assert!(msg.contains("deadlock"), "{msg}");
        worker.join().unwrap();
        drop(tx);
    })
    .unwrap();
    assert_eq!(deadlocks_naming(before, "recv.kept.state"), 1);
}

// ---------------------------------------------------------------------------------------------
// Silent.

/// Two senders, each used before: one waits for the receiver's lock, the other is free and
/// delivers (late, past the receive's grace): no deadlock.
#[test]
fn another_free_sender_that_delivers_is_silent() {
    let _s = serial();
    setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("recv.free.state", 0u32));
        let (tx, rx) = mpsc::channel::<u32>();
        let tx2 = tx.clone();
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let (go2, wait_go2) = std::sync::mpsc::channel::<()>();
        let s2 = state.clone();
        let blocked = std::thread::spawn(move || {
            tx.send(1).unwrap();
            wait_go.recv().unwrap();
            let v = *s2.lock(); // waits until the receiver is done
            let _ = tx.send(v);
        });
        let free = std::thread::spawn(move || {
            tx2.send(2).unwrap();
            wait_go2.recv().unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            tx2.send(3).unwrap();
        });
        let mut got = vec![rx.recv().unwrap(), rx.recv().unwrap()];
        {
            let _g = state.lock();
            go.send(()).unwrap();
            go2.send(()).unwrap();
            got.push(rx.recv().unwrap());
        }
        got.push(rx.recv().unwrap());
        got.sort();
        assert_eq!(got, vec![0, 1, 2, 3]);
        blocked.join().unwrap();
        free.join().unwrap();
    })
    .unwrap();
    assert_eq!(deadlocks_naming(before, "recv.free.state"), 0);
}

/// A receiver that holds a lock no sender needs, and waits (past its grace) for a slow sender
/// whose handle was never used: silent.
#[test]
fn a_receiver_holding_a_lock_no_sender_needs_is_silent() {
    let _s = serial();
    setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let results = Arc::new(Mutex::named("recv.unneeded.results", Vec::new()));
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let worker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            tx.send(7).unwrap();
        });
        {
            let mut r = results.lock();
            for v in rx.iter() {
                r.push(v);
            }
        }
        assert_eq!(*results.lock(), vec![7]);
        worker.join().unwrap();
    })
    .unwrap();
    assert_eq!(lockcheck::violations().len(), before);
}

/// A worker pool reporting results: the receiver takes the lock only after each receive, the
/// workers take it before they send. Silent.
#[test]
fn a_pool_whose_receiver_locks_after_receiving_is_silent() {
    let _s = serial();
    setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("recv.pool.state", 0u32));
        let (tx, rx) = mpsc::channel::<u32>();
        let workers: Vec<_> = (0..4)
            .map(|i| {
                let tx = tx.clone();
                let state = state.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let v = {
                            let mut g = state.lock();
                            *g += i;
                            *g
                        };
                        tx.send(v).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut n = 0;
        for _ in rx.iter() {
            let _g = state.lock();
            n += 1;
        }
        assert_eq!(n, 200);
        for w in workers {
            w.join().unwrap();
        }
    })
    .unwrap();
    assert_eq!(lockcheck::violations().len(), before);
}

/// Messages already queued when the receiver takes the lock: its receives do not wait. Silent.
#[test]
fn messages_queued_before_the_receiver_locks_are_silent() {
    let _s = serial();
    setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("recv.queued.state", 0u32));
        let (tx, rx) = mpsc::channel::<u32>();
        let s2 = state.clone();
        let sender = std::thread::spawn(move || {
            for _ in 0..3 {
                let v = *s2.lock();
                tx.send(v).unwrap();
            }
        });
        sender.join().unwrap();
        let _g = state.lock();
        assert_eq!(rx.iter().count(), 3);
    })
    .unwrap();
    assert_eq!(lockcheck::violations().len(), before);
}

// ---------------------------------------------------------------------------------------------
// A send's wait on a bounded channel (the wait-for graph's side).

/// A receiver moved to a consumer that has not used it yet, while a send under `state` waits on
/// the channel and the creator then takes `state`. The lock order has the creator's channel ->
/// `state` (taken while a send waits, at once, as for sled#1515: an inversion, under `warn` a
/// warning), but no deadlock: the consumer receives and the send ends. The wait-for graph must
/// not call it one (it did, taking the creator's unconfirmed hold for a real one, and made the
/// creator give up its locks under `warn`): a fresh channel's creator counts as its holder only
/// after the send's grace, and the holder is the channel's current one.
#[test]
fn a_send_waiting_for_a_moved_receiver_while_the_creator_takes_the_lock_is_no_deadlock() {
    let _s = serial();
    lockcheck::set_action(Action::Warn);
    let before = lockcheck::violations().len();
    watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.moved.fresh.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let consumer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            rx.recv().unwrap()
        });
        let (sending, wait_sending) = std::sync::mpsc::channel();
        let s2 = state.clone();
        let sender = std::thread::spawn(move || {
            let g = s2.lock();
            sending.send(()).unwrap();
            tx.send(*g + 1).unwrap(); // waits for the consumer
        });
        wait_sending.recv().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        *state.lock() += 1; // waits for the sender
        sender.join().unwrap();
        assert_eq!(consumer.join().unwrap(), 1);
    })
    .unwrap();
    let deadlocks: Vec<_> = lockcheck::violations()[before..]
        .iter()
        .filter(|v| v.kind == ViolationKind::Deadlock)
        .cloned()
        .collect();
    lockcheck::set_action(Action::Panic);
    assert!(deadlocks.is_empty(), "{deadlocks:#?}");
}

/// Look-alike of the classic shape: the only sender, its handle never used, is busy (not
/// blocked) for longer than the one-second grace, while a bystander that has no handle waits for
/// the receiver's lock. The unplaced handle is not with the bystander, and the sender delivers:
/// no deadlock. Handles never used are assumed stuck only past `UNPLACED_GRACE` (five seconds),
/// so a sender busy for 2.5 s is not taken for a stuck one (it was, with the one-second grace).
#[test]
fn a_never_used_sender_busy_past_a_second_while_a_bystander_waits_is_no_deadlock() {
    let _s = serial();
    setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("recv.busy.state", 0u32));
        let (tx, rx) = mpsc::channel::<u32>();
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let (go2, wait_go2) = std::sync::mpsc::channel::<()>();
        let sender = std::thread::spawn(move || {
            wait_go.recv().unwrap();
            std::thread::sleep(Duration::from_millis(2500)); // busy, holding nothing
            tx.send(7).unwrap();
        });
        let s2 = state.clone();
        let bystander = std::thread::spawn(move || {
            wait_go2.recv().unwrap();
            *s2.lock() += 1; // waits for the receiver until it has received
        });
        let g = state.lock();
        go.send(()).unwrap();
        go2.send(()).unwrap();
        assert_eq!(rx.recv(), Ok(7));
        drop(g);
        sender.join().unwrap();
        bystander.join().unwrap();
        assert_eq!(*state.lock(), 1);
    })
    .unwrap();
    assert_eq!(deadlocks_naming(before, "recv.busy.state"), 0);
    assert!(lockcheck::violations()[before..].is_empty());
}
