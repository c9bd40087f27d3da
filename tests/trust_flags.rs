//! Two threads changing switches at once must not leave the fast path's switch byte stale (it used
//! to be recomputed and stored without synchronization, so the setter that computed from older
//! switches could store last). Its own binary: it toggles lock-order checking.

use std::sync::{Arc, Barrier};

#[test]
fn concurrent_switch_changes_are_not_lost() {
    let rounds = 20_000;
    let barrier = Arc::new(Barrier::new(3));
    let setters: Vec<_> = (0..2)
        .map(|who| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                for round in 0..rounds {
                    barrier.wait();
                    let on = round % 2 == 0;
                    if who == 0 {
                        lockcheck::set_order_checking(on);
                    } else {
                        lockcheck::watchdog::set_condvar_check(on);
                    }
                    barrier.wait();
                }
            })
        })
        .collect();
    let mut stale = 0;
    for _ in 0..rounds {
        barrier.wait();
        barrier.wait();
        if !lockcheck::__private::flags_match_switches() {
            stale += 1;
        }
    }
    for s in setters {
        s.join().unwrap();
    }
    lockcheck::set_order_checking(true);
    lockcheck::watchdog::set_condvar_check(false);
    assert_eq!(stale, 0, "rounds that left the switch byte stale");
}
