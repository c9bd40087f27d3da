//! `lockcheck::sync::mpsc`: std's channel API, with a bounded channel a lock held by the thread
//! that owns its receiver and requested by a send that finds it full. Each deadlock is paired
//! with look-alikes that must stay silent (normal uses of channels); everything that could hang
//! runs under a watchdog.

mod support;

use lockcheck::sync::mpsc;
use lockcheck::{Action, LockKind, Mutex, ViolationKind};
use std::sync::Arc;
use std::time::Duration;
use support::{found, watchdog};

fn setup() {
    lockcheck::set_action(Action::Panic);
}

// ---------------------------------------------------------------------------------------------
// std's API.

/// Code written against std's types compiles against these, and the error types are std's.
#[test]
fn the_api_is_std_s() {
    fn std_send_error(e: std::sync::mpsc::SendError<u32>) -> u32 {
        e.0
    }
    fn std_try_send_error(e: std::sync::mpsc::TrySendError<u32>) -> bool {
        matches!(e, std::sync::mpsc::TrySendError::Full(_))
    }
    fn is_send<T: Send>() {}
    fn is_sync<T: Sync>() {}
    fn is_clone<T: Clone>() {}
    is_send::<mpsc::Sender<u32>>();
    is_send::<mpsc::SyncSender<u32>>();
    is_sync::<mpsc::SyncSender<u32>>();
    is_send::<mpsc::Receiver<u32>>();
    is_clone::<mpsc::Sender<u32>>();
    is_clone::<mpsc::SyncSender<u32>>();

    // The unbounded sender is std's, wrapped: lockcheck notes which thread sends through it
    // (for a receive that waits, `tests/channel_recv.rs`).
    assert!(format!("{:?}", mpsc::channel::<u32>().0).contains("Sender"));
    let (tx, rx): (mpsc::Sender<u32>, mpsc::Receiver<u32>) = mpsc::channel();
    tx.send(1).unwrap();
    tx.clone().send(2).unwrap();
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(1)),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout)
    );
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
    tx.send(7).unwrap();
    drop(tx);
    assert_eq!(rx.iter().collect::<Vec<_>>(), vec![7]);
    assert_eq!(rx.recv(), Err(std::sync::mpsc::RecvError));
    assert_eq!(
        rx.try_recv(),
        Err(std::sync::mpsc::TryRecvError::Disconnected)
    );

    let (tx, rx) = mpsc::sync_channel::<u32>(1);
    assert!(format!("{tx:?} {rx:?} {:?}", rx.iter()).contains("SyncSender"));
    tx.send(1).unwrap();
    let full = tx.try_send(2).unwrap_err();
    assert!(std_try_send_error(full));
    let _: mpsc::TrySendError<u32> = mpsc::SendError(3).into();
    let tx2 = tx.clone();
    assert_eq!(rx.recv(), Ok(1));
    tx2.send(4).unwrap();
    drop((tx, tx2));
    assert_eq!((&rx).into_iter().collect::<Vec<_>>(), vec![4]);
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    drop(rx);
    assert_eq!(std_send_error(tx.send(5).unwrap_err()), 5);
    assert!(matches!(
        tx.try_send(6),
        Err(std::sync::mpsc::TrySendError::Disconnected(6))
    ));
}

/// A rendezvous channel hands each message over, and a full bounded channel's send waits for
/// the receiver, as std's do (the waits here involve no lock: nothing to report).
#[test]
fn sends_wait_for_the_receiver_as_std_s_do() {
    setup();
    watchdog(20, || {
        for bound in [0, 1, 3] {
            let (tx, rx) = mpsc::sync_channel::<u32>(bound);
            let producer = std::thread::spawn(move || {
                for i in 0..200 {
                    tx.send(i).unwrap();
                }
            });
            let got: Vec<u32> = rx.into_iter().collect();
            assert_eq!(got, (0..200).collect::<Vec<_>>());
            producer.join().unwrap();
        }
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Reported.

/// A rendezvous send under a lock that the receiving thread takes before it receives: an
/// inversion `lock -> channel -> lock`, reported though this run never hangs.
#[test]
fn a_rendezvous_send_under_a_lock_the_receiver_takes_first_is_an_inversion() {
    setup();
    let r = watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.rendezvous.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let created = line!() - 1;
        let (ready, wait_ready) = std::sync::mpsc::channel();
        let s2 = state.clone();
        let receiver = std::thread::spawn(move || {
            let _ = rx.try_recv(); // the receiver is this thread's
            *s2.lock() += 1; // RECEIVER_LOCKS
            ready.send(()).unwrap();
            // The send waits (under `state`) before this receive, or was stopped as it began
            // to: a sleep did not make sure of it on a loaded machine, and a send that finds
            // the receiver waiting is no wait.
            support::wait_until("the send waits for the receiver", || {
                (s2.is_locked() && support::blocked_on_channel(file!(), created) == 1)
                    || !support::found("chan.rendezvous.state").is_empty()
            });
            let _ = rx.recv_timeout(Duration::from_secs(5));
        });
        wait_ready.recv().unwrap();
        let g = state.lock();
        let _ = tx.send(*g); // SENDER_SENDS
        drop(g);
        receiver.join().unwrap();
    });
    let msg = r.expect_err("the send is stopped");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = found("chan.rendezvous.state");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
    let kinds: Vec<LockKind> = v[0].edges.iter().map(|e| e.acquired.kind).collect();
    assert!(kinds.contains(&LockKind::Channel), "{v:#?}");
    assert!(
        v[0].message
            .contains("`channel created at tests/channels.rs:"),
        "{}",
        v[0].message
    );
}

/// The receiving thread sends into its own full channel: it would wait for itself forever.
/// Reported as a self-deadlock after the grace a moved receiver gets.
#[test]
fn a_send_into_its_own_full_channel_is_a_self_deadlock_instead_of_a_hang() {
    setup();
    let r = watchdog(20, || {
        let (tx, rx) = mpsc::sync_channel::<u32>(1);
        tx.send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        tx.send(2).unwrap();
        let _ = tx.send(3); // would hang
        drop(rx);
    });
    let msg = r.expect_err("reported instead of hanging");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| {
            v.edges
                .iter()
                .any(|e| e.site.contains("channels.rs") && e.acquired.kind == LockKind::Channel)
        })
        .filter(|v| v.kind == ViolationKind::SelfDeadlock)
        .collect();
    assert_eq!(v.len(), 1, "{v:#?}");
}

// ---------------------------------------------------------------------------------------------
// Silent look-alikes.

/// A worker pool fed through a bounded channel: the workers share the receiver behind a mutex
/// and take a lock in their jobs; the producer sends holding nothing.
#[test]
fn a_worker_pool_fed_through_a_channel_is_silent() {
    setup();
    watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.pool.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(2);
        let rx = Arc::new(Mutex::named("chan.pool.rx", rx));
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (rx, state) = (rx.clone(), state.clone());
                std::thread::spawn(move || loop {
                    let job = rx.lock().recv();
                    match job {
                        Ok(n) => *state.lock() += n,
                        Err(_) => break,
                    }
                })
            })
            .collect();
        for i in 0..300 {
            tx.send(i).unwrap();
        }
        drop(tx);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(*state.lock(), (0..300).sum::<u32>());
    })
    .unwrap();
    assert!(found("chan.pool.state").is_empty());
    assert!(found("chan.pool.rx").is_empty());
}

/// Sends that wait, under a lock the receiving thread never takes.
#[test]
fn a_send_under_a_lock_the_receiver_never_takes_is_silent() {
    setup();
    watchdog(20, || {
        let producer_lock = Mutex::named("chan.own.producer", ());
        let consumer_lock = Arc::new(Mutex::named("chan.own.consumer", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(1);
        let c2 = consumer_lock.clone();
        let consumer = std::thread::spawn(move || {
            for n in rx {
                std::thread::sleep(Duration::from_millis(1));
                *c2.lock() += n;
            }
        });
        for i in 0..20 {
            let _g = producer_lock.lock();
            tx.send(i).unwrap();
        }
        drop(tx);
        consumer.join().unwrap();
    })
    .unwrap();
    assert!(found("chan.own.producer").is_empty());
    assert!(found("chan.own.consumer").is_empty());
}

/// Sends under a lock the receiving thread takes, into a channel that always has room: no send
/// ever waits, so nothing waits for the receiver.
#[test]
fn sends_that_never_wait_under_a_lock_the_receiver_takes_are_silent() {
    setup();
    watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.room.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(64);
        for i in 0..10 {
            let g = state.lock();
            tx.send(*g + i).unwrap();
        }
        let s2 = state.clone();
        std::thread::spawn(move || {
            for n in rx.try_iter() {
                *s2.lock() += n;
            }
        })
        .join()
        .unwrap();
    })
    .unwrap();
    assert!(found("chan.room.state").is_empty());
}

/// The receiver moved to another thread, which used it before the creating thread takes the
/// lock that a sender holds while it waits: the creator no longer holds the channel.
#[test]
fn a_receiver_moved_to_another_thread_before_the_lock_is_taken_is_silent() {
    setup();
    watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.moved.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(1);
        let (first, wait_first) = std::sync::mpsc::channel();
        let consumer = std::thread::spawn(move || {
            let n = rx.recv().unwrap();
            first.send(n).unwrap();
            for _ in rx {
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        tx.send(0).unwrap();
        wait_first.recv().unwrap();
        // The creator takes the lock: it holds the channel no more.
        *state.lock() += 1;
        let (s2, tx2) = (state.clone(), tx.clone());
        std::thread::spawn(move || {
            for i in 0..10 {
                let _g = s2.lock();
                tx2.send(i).unwrap();
            }
        })
        .join()
        .unwrap();
        drop(tx);
        consumer.join().unwrap();
    })
    .unwrap();
    assert!(found("chan.moved.state").is_empty());
}

/// The creating thread sends into the full channel it made before the thread it moved the
/// receiver to starts receiving (the usual producer): no self-deadlock, the send waits.
#[test]
fn the_creator_filling_the_channel_before_its_consumer_starts_is_silent() {
    setup();
    watchdog(20, || {
        let marker = Mutex::named("chan.early.marker", ());
        let (tx, rx) = mpsc::sync_channel::<u32>(1);
        let consumer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            rx.iter().count()
        });
        let _g = marker.lock();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        drop(tx);
        assert_eq!(consumer.join().unwrap(), 5);
    })
    .unwrap();
    assert!(found("chan.early.marker").is_empty());
}

/// Fork/join ordered: the creating thread takes the lock holding the channel, then spawns (through
/// `lockcheck::thread`) the thread that sends under the lock, and receives: the two orders can
/// never overlap.
#[test]
fn orders_separated_by_spawn_are_silent() {
    setup();
    watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.fork.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(1);
        *state.lock() += 1;
        let s2 = state.clone();
        let sender = lockcheck::thread::spawn(move || {
            let _g = s2.lock();
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(rx.iter().collect::<Vec<_>>(), vec![1, 2]);
        sender.join().unwrap();
    })
    .unwrap();
    assert!(found("chan.fork.state").is_empty());
}

/// The receiver moved to another thread that has not used it yet when the creating thread takes
/// the lock: lockcheck still counts the creator as the channel's owner, so the creator's lock is
/// ordered after the channel, and a later send waiting under that lock is reported although the
/// receiving thread never takes it.
#[test]
fn a_receiver_moved_but_not_yet_used_when_the_creator_takes_the_lock_is_silent() {
    setup();
    watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.unused.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(1);
        let consumer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            for _ in rx {
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        // Before the consumer's first receive.
        *state.lock() += 1;
        let s2 = state.clone();
        let r = std::thread::spawn(move || {
            for i in 0..10 {
                let _g = s2.lock();
                tx.send(i).unwrap();
            }
        })
        .join();
        consumer.join().unwrap();
        r.unwrap();
    })
    .unwrap();
    assert!(found("chan.unused.state").is_empty());
}

/// A one-shot rendezvous hand-over made under a lock that the receiver takes only after it has
/// received the value: no deadlock in any schedule (the receiver's lock comes after the message
/// the send waited on). The receiving thread owns the channel throughout, so `state -> channel`
/// (the send) and `channel -> state` (the lock after the receive) look like a cycle; the message
/// orders them (channel.rs, "Happens-before through the message"): the receiver took the lock
/// after 1 receive, the send waited on message 0.
#[test]
fn a_one_shot_handover_then_the_receivers_lock_is_silent() {
    setup();
    watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.oneshot.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let created = line!() - 1;
        let (ready, wait_ready) = std::sync::mpsc::channel();
        let s2 = state.clone();
        let receiver = std::thread::spawn(move || {
            let _ = rx.try_recv(); // the receiver is this thread's
            ready.send(()).unwrap();
            // The send waits (under `state`) before this receive: a sleep did not make sure
            // of it on a loaded machine, and a send that finds the receiver waiting is no wait.
            support::wait_until("the send waits for the receiver", || {
                s2.is_locked() && support::blocked_on_channel(file!(), created) == 1
            });
            let v = rx.recv().unwrap();
            *s2.lock() += v;
        });
        wait_ready.recv().unwrap();
        let g = state.lock();
        tx.send(*g + 1).unwrap();
        drop(g);
        receiver.join().unwrap();
    })
    .unwrap();
    let v = found("chan.oneshot.state");
    assert!(v.is_empty(), "{v:#?}");
}

/// The same hand-over with a sender that was cloned and whose clone is gone before the send
/// (one live handle, one sending thread): as silent.
#[test]
fn a_one_shot_handover_through_a_clone_whose_original_is_gone_is_silent() {
    setup();
    watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.clone.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let created = line!() - 1;
        let tx2 = tx.clone();
        drop(tx);
        let (ready, wait_ready) = std::sync::mpsc::channel();
        let s2 = state.clone();
        let receiver = std::thread::spawn(move || {
            let _ = rx.try_recv();
            ready.send(()).unwrap();
            // The send waits (under `state`) before this receive: a sleep did not make sure
            // of it on a loaded machine, and a send that finds the receiver waiting is no wait.
            support::wait_until("the send waits for the receiver", || {
                s2.is_locked() && support::blocked_on_channel(file!(), created) == 1
            });
            let v = rx.recv().unwrap();
            *s2.lock() += v;
        });
        wait_ready.recv().unwrap();
        let g = state.lock();
        tx2.send(*g + 1).unwrap();
        drop(g);
        receiver.join().unwrap();
    })
    .unwrap();
    let v = found("chan.clone.state");
    assert!(v.is_empty(), "{v:#?}");
}

/// Two senders: one sends under the lock (and waits), the other holding nothing; the receiver
/// takes the lock after one receive. In this run that receive got the waiting send's value, but
/// in another the other sender's message comes first and the receiver takes the lock while the
/// send under it still waits: a deadlock. Reported (the message order is one schedule's).
#[test]
fn a_hand_over_with_a_second_sender_is_still_an_inversion() {
    setup();
    watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.two.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let created = line!() - 1;
        let other = tx.clone();
        let (ready, wait_ready) = std::sync::mpsc::channel();
        let s2 = state.clone();
        let receiver = std::thread::spawn(move || {
            let _ = rx.try_recv();
            ready.send(()).unwrap();
            // The send waits (under `state`) before this receive: a sleep did not make sure
            // of it on a loaded machine, and a send that finds the receiver waiting is no wait.
            support::wait_until("the send waits for the receiver", || {
                s2.is_locked() && support::blocked_on_channel(file!(), created) == 1
            });
            let v = rx.recv().unwrap();
            *s2.lock() += v; // after one receive
            let _ = rx.recv_timeout(Duration::from_secs(5));
        });
        wait_ready.recv().unwrap();
        {
            let g = state.lock();
            tx.send(*g + 1).unwrap(); // waits for the receive
        }
        // The second sender, after the first's send in this run.
        std::thread::spawn(move || {
            let _ = other.send(7);
        })
        .join()
        .unwrap();
        // The receiver's lock is stopped (its thread panics).
        assert!(receiver.join().is_err());
    })
    .unwrap();
    let v = found("chan.two.state");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
}

/// A receiver that takes the lock after message 0 and before message 1, the one a later send
/// under the lock waits on (receive count 1 <= 1): reported. No hang in this run (the receiver
/// took and released the lock before the send), but with the send first the receiver would wait
/// for the lock while the send waits for the receiver.
#[test]
fn a_receiver_that_locks_before_the_awaited_message_is_an_inversion() {
    setup();
    let r = watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.before.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let created = line!() - 1;
        let (ready, wait_ready) = std::sync::mpsc::channel();
        let s2 = state.clone();
        let receiver = std::thread::spawn(move || {
            let _ = rx.recv(); // message 0
            *s2.lock() += 1; // RECEIVER_LOCKS, after 1 receive
            ready.send(()).unwrap();
            // The send waits (under `state`) before this receive, or was stopped as it began
            // to: a sleep did not make sure of it on a loaded machine, and a send that finds
            // the receiver waiting is no wait.
            support::wait_until("the send waits for the receiver", || {
                (s2.is_locked() && support::blocked_on_channel(file!(), created) == 1)
                    || !support::found("chan.before.state").is_empty()
            });
            let _ = rx.recv_timeout(Duration::from_secs(5)); // message 1
        });
        tx.send(0).unwrap();
        wait_ready.recv().unwrap();
        let g = state.lock();
        let _ = tx.send(*g + 1); // message 1: waits for the receive
        drop(g);
        receiver.join().unwrap();
    });
    let msg = r.expect_err("the send is stopped");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = found("chan.before.state");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
}

/// The creating thread takes the lock before its first receive, with no sender waiting yet: the
/// dependency `channel -> lock` waits for the receiver's first use. Here the creator receives
/// itself, so it held the channel all along: at that receive the dependency joins the graph and
/// closes the cycle with the send that waited under the lock. Reported then, after the fact,
/// without panicking anyone (with the lock taken while the send waits, it would deadlock).
#[test]
fn the_creators_lock_before_its_own_first_receive_is_reported_at_that_receive() {
    setup();
    watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.late.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        *state.lock() += 1; // deferred: nobody used the receiver yet
        let s2 = state.clone();
        let sender = std::thread::spawn(move || {
            let g = s2.lock();
            let _ = tx.send(*g); // waits for the creator's receive
        });
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(rx.recv(), Ok(1)); // the creator's first use
        sender
            .join()
            .expect("nobody panics: the cycle is found after the fact");
    })
    .unwrap();
    let v = found("chan.late.state");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
}

/// The dependencies a fresh channel keeps aside are bounded: past `DEFERRED_LIMIT` the next go to
/// the graph at once, and the bound is reported once (no silent cap).
#[test]
fn the_bound_on_a_fresh_channels_deferred_dependencies_is_reported_once() {
    setup();
    watchdog(60, || {
        let (_tx, rx) = mpsc::sync_channel::<u32>(1);
        for _ in 0..4096 + 10 {
            // `DEFERRED_LIMIT` + 10, new locks: each one a new dependency.
            let m = Mutex::named("chan.bound.lock", ());
            drop(m.lock());
        }
        drop(rx);
    })
    .unwrap();
    let hits: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| {
            matches!(
                v.kind,
                ViolationKind::Incomplete {
                    limit: "deferred-channel-dependencies",
                    ..
                }
            )
        })
        .collect();
    assert_eq!(hits.len(), 1, "{hits:#?}");
}

/// The one-shot hand-over through a `SyncSender` shared by reference (`Arc`): the receive joins
/// the waiting send's order (one handle, one sending thread so far); a second thread's first
/// send through that same handle comes after. In another schedule its message could have taken
/// the waiting one's place: the applied order may hide an inversion, which lockcheck cannot
/// undo. It says so, once: an `incomplete` finding `channel-message-order`. Without the second
/// thread's send, nothing (the test above).
#[test]
fn a_shared_sync_sender_used_by_a_second_thread_after_the_order_was_applied_is_said() {
    setup();
    let before = lockcheck::violations().len();
    watchdog(20, || {
        let state = Arc::new(Mutex::named("chan.shared.state", 0u32));
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let created = line!() - 1;
        let tx = Arc::new(tx);
        let (ready, wait_ready) = std::sync::mpsc::channel();
        let s2 = state.clone();
        let receiver = std::thread::spawn(move || {
            let _ = rx.try_recv();
            ready.send(()).unwrap();
            // The send waits (under `state`) before this receive: a sleep did not make sure
            // of it on a loaded machine, and a send that finds the receiver waiting is no wait.
            support::wait_until("the send waits for the receiver", || {
                s2.is_locked() && support::blocked_on_channel(file!(), created) == 1
            });
            let v = rx.recv().unwrap();
            *s2.lock() += v;
            rx.recv().unwrap()
        });
        wait_ready.recv().unwrap();
        let g = state.lock();
        tx.send(*g + 1).unwrap();
        drop(g);
        std::thread::sleep(Duration::from_millis(100));
        let tx2 = tx.clone();
        std::thread::spawn(move || tx2.send(5).unwrap())
            .join()
            .unwrap();
        assert_eq!(receiver.join().unwrap(), 5);
    })
    .unwrap();
    let said: Vec<_> = lockcheck::violations()[before..]
        .iter()
        .filter(|v| {
            v.kind
                == ViolationKind::Incomplete {
                    limit: "channel-message-order",
                    bound: 1,
                }
        })
        .cloned()
        .collect();
    assert_eq!(said.len(), 1, "{said:#?}");
    let v = found("chan.shared.state");
    assert!(v.is_empty(), "{v:#?}");
}
