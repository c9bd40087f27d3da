//! Section 7 of `tests/real_bugs_round6.rs` (gfx-rs/wgpu#5737) as the real hang, with the
//! lock-order graph off (its own test binary: `set_order_checking` is process-wide): the device
//! maintenance thread reads the snatch lock, a destroy queues a write on it, `write_texture`
//! holds the trackers and reads the snatch lock (it waits behind the queued writer), and the
//! maintenance thread waits for the trackers. No two threads wait for each other directly: the
//! reader waits for the queued writer, which waits for the first reader. The wait-for graph
//! must see that a read waits for a writer queued ahead of it.

mod support;

use lockcheck::{Action, Mutex, RwLock, ViolationKind};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::{found, watchdog};

#[test]
fn a_read_waiting_behind_a_queued_writer_closes_a_real_deadlock() {
    lockcheck::set_action(Action::Panic);
    lockcheck::set_order_checking(false);
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let r = results.clone();
    watchdog(30, move || {
        let snatch = Arc::new(RwLock::named("hang.snatchable", ()));
        let trackers = Arc::new(Mutex::named("hang.trackers", 0u32));
        let (read_tx, read_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (s1, t1, r1) = (snatch.clone(), trackers.clone(), r.clone());
        let maintain = std::thread::spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _s = s1.read();
                read_tx.send(()).unwrap();
                // Waits until `write_texture` holds the trackers: then every thread is where
                // the hang needs it, whatever the machine's load (a sleep was not enough).
                go_rx.recv().unwrap();
                *t1.lock() += 1;
            }));
            r1.lock().unwrap().push(out.is_err());
        });
        read_rx.recv().unwrap();
        let (s3, r3) = (snatch.clone(), r.clone());
        let destroy = std::thread::spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                drop(s3.write());
            }));
            r3.lock().unwrap().push(out.is_err());
        });
        // The destroy's write is queued once its bit is in the lock's word (it then waits for
        // the maintenance thread's read to leave); a read taken before that would pass.
        while !snatch.is_locked_exclusive() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let (s2, t2, r2) = (snatch.clone(), trackers.clone(), r.clone());
        let write_texture = std::thread::spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut t = t2.lock();
                go_tx.send(()).unwrap();
                let _s = s2.read();
                *t += 1;
            }));
            r2.lock().unwrap().push(out.is_err());
        });
        for h in [maintain, destroy, write_texture] {
            h.join().unwrap();
        }
    })
    .expect("the deadlock is reported and its threads go on");
    assert!(
        results.lock().unwrap().iter().any(|&p| p),
        "one thread panicked"
    );
    let v = found("hang.snatchable");
    assert!(
        v.iter().any(|v| v.kind == ViolationKind::Deadlock),
        "{v:#?}"
    );
}
