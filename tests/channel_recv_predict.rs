//! The opt-in prediction of a receive's deadlock (`LOCKCHECK_CHANNEL_RECV=on`,
//! `lockcheck::watchdog::set_channel_recv_check`): a thread that sends through a channel's
//! handle holds the channel's senders from then on, so a lock it takes before its next send and
//! a receive that waits holding that lock are an inversion, reported the first time both orders
//! are seen, in a run that does not hang. The correct patterns it must leave silent are pinned
//! here, and so are the known false alarms that make it opt-in.

mod support;

use lockcheck::sync::mpsc;
use lockcheck::{Action, LockKind, Mutex, ViolationKind};
use std::sync::Arc;
use std::time::Duration;
use support::watchdog;

/// The test threads of this file share the process's report list: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn setup() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    lockcheck::set_action(Action::Warn);
    lockcheck::watchdog::set_channel_recv_check(true);
    g
}

/// Reports (any kind) naming the class `lock`, made since `before` reports.
fn reports_naming(before: usize, lock: &str) -> Vec<ViolationKind> {
    lockcheck::violations()[before..]
        .iter()
        .filter(|v| {
            v.edges
                .iter()
                .any(|e| e.held.class == lock || e.acquired.class == lock)
        })
        .map(|v| v.kind)
        .collect()
}

/// A sender that takes `state` between two sends, and a receiver that later waits for the
/// second message holding `state`: this run does not hang (the sender was done with `state`
/// first), another schedule does. Reported as an inversion `state -> senders -> state`.
#[test]
fn a_lock_between_two_sends_and_a_receive_waiting_under_it_is_an_inversion() {
    let _s = setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("predict.between.state", 0u32));
        let (tx, rx) = mpsc::channel::<u32>();
        let (done, wait_done) = std::sync::mpsc::channel::<()>();
        let s2 = state.clone();
        let sender = std::thread::spawn(move || {
            tx.send(0).unwrap();
            {
                *s2.lock() += 1;
            }
            done.send(()).unwrap();
            // The receive of message 1 waits holding `state` before it is sent (a 200 ms sleep
            // let the send come first on a loaded machine: no wait, no report).
            support::wait_until("the receive waits holding state", || {
                s2.is_locked() && support::blocked_kind(LockKind::Channel) == 1
            });
            tx.send(1).unwrap();
        });
        assert_eq!(rx.recv(), Ok(0));
        wait_done.recv().unwrap();
        {
            let _g = state.lock();
            assert_eq!(rx.recv(), Ok(1)); // waits, holding `state`
        }
        sender.join().unwrap();
    })
    .unwrap();
    let kinds = reports_naming(before, "predict.between.state");
    assert_eq!(kinds, vec![ViolationKind::LockOrderInversion], "{kinds:?}");
}

/// A worker pool: each worker takes `state` before each send, the receiver takes `state` only
/// after each receive. Silent.
#[test]
fn a_pool_whose_receiver_locks_after_receiving_is_silent() {
    let _s = setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("predict.pool.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(2);
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (tx, state) = (tx.clone(), state.clone());
                std::thread::spawn(move || {
                    for _ in 0..30 {
                        let v = {
                            let mut g = state.lock();
                            *g += 1;
                            *g
                        };
                        tx.send(v).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for _ in rx.iter() {
            *state.lock() += 0;
        }
        for w in workers {
            w.join().unwrap();
        }
    })
    .unwrap();
    assert_eq!(reports_naming(before, "predict.pool.state"), vec![]);
}

/// The sender releases `state` before its sends; the receiver waits for them while not holding
/// `state`, and takes `state` only between receives. Silent.
#[test]
fn a_receive_that_waits_without_the_lock_is_silent() {
    let _s = setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("predict.free.state", 0u32));
        let (tx, rx) = mpsc::channel::<u32>();
        let s2 = state.clone();
        let sender = std::thread::spawn(move || {
            for _ in 0..5 {
                let v = *s2.lock();
                std::thread::sleep(Duration::from_millis(5));
                tx.send(v).unwrap();
            }
        });
        while let Ok(v) = rx.recv() {
            *state.lock() += v;
        }
        sender.join().unwrap();
    })
    .unwrap();
    assert_eq!(reports_naming(before, "predict.free.state"), vec![]);
}

/// Messages already queued when the receiver takes `state`: its receives do not wait. Silent.
#[test]
fn messages_queued_before_the_receiver_locks_are_silent() {
    let _s = setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("predict.queued.state", 0u32));
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
        assert_eq!(rx.try_iter().count(), 3);
        assert!(rx.recv().is_err());
    })
    .unwrap();
    assert_eq!(reports_naming(before, "predict.queued.state"), vec![]);
}

/// A thread that sends into its own channel, then waits in a receive of it holding a lock (for
/// another thread's message): it does not wait for itself. Silent.
#[test]
fn a_thread_that_sends_into_its_own_channel_and_receives_is_silent() {
    let _s = setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("predict.own.state", 0u32));
        let (tx, rx) = mpsc::channel::<u32>();
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        let other = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            tx2.send(2).unwrap();
        });
        let _g = state.lock();
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2)); // waits, holding `state`
        tx.send(3).unwrap();
        other.join().unwrap();
    })
    .unwrap();
    assert_eq!(reports_naming(before, "predict.own.state"), vec![]);
}

/// Known false alarm (why the rule is opt-in): two senders, one takes `state` between its sends,
/// the other never does and delivers what the receiver waits for under `state`. The receive was
/// never stuck, but the lock order has the cycle.
#[test]
fn known_false_alarm_another_sender_free_to_deliver() {
    let _s = setup();
    let before = lockcheck::violations().len();
    watchdog(30, || {
        let state = Arc::new(Mutex::named("predict.two.state", 0u32));
        let (tx, rx) = mpsc::channel::<u32>();
        let tx2 = tx.clone();
        let (done, wait_done) = std::sync::mpsc::channel::<()>();
        let s2 = state.clone();
        let locker = std::thread::spawn(move || {
            tx.send(0).unwrap();
            *s2.lock() += 1;
            done.send(()).unwrap();
        });
        let (locking, wait_locking) = std::sync::mpsc::channel::<()>();
        let s3 = state.clone();
        let free = std::thread::spawn(move || {
            // The receive waits holding `state` before this send (a 300 ms sleep let the send
            // come first on a loaded machine: no wait, no report).
            wait_locking.recv().unwrap();
            support::wait_until("the receive waits holding state", || {
                s3.is_locked() && support::blocked_kind(LockKind::Channel) == 1
            });
            tx2.send(1).unwrap();
        });
        assert_eq!(rx.recv(), Ok(0));
        wait_done.recv().unwrap();
        locking.send(()).unwrap();
        {
            let _g = state.lock();
            assert_eq!(rx.recv(), Ok(1));
        }
        locker.join().unwrap();
        free.join().unwrap();
    })
    .unwrap();
    assert_eq!(
        reports_naming(before, "predict.two.state"),
        vec![ViolationKind::LockOrderInversion]
    );
}
