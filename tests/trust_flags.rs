//! Two threads changing switches at once must not leave the fast path's switch byte stale (it used
//! to be recomputed and stored without synchronization, so the setter that computed from older
//! switches could store last). Its own binary: it toggles lock-order checking.

use std::sync::{Arc, Barrier};

/// The tests of this binary change process-wide switches: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn concurrent_switch_changes_are_not_lost() {
    let _serial = serial();
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

/// The race made certain: the first setter's refresh pauses between computing and storing; a
/// second setter changes another switch meanwhile. Whoever stores last must have computed after
/// both switches changed.
#[test]
fn a_slow_refresh_does_not_overwrite_a_later_one() {
    let _serial = serial();
    let _ = lockcheck::__private::flags_match_switches();
    lockcheck::set_order_checking(true);
    lockcheck::__private::delay_next_refresh(std::time::Duration::from_millis(200));
    let slow = std::thread::spawn(|| lockcheck::set_order_checking(false));
    std::thread::sleep(std::time::Duration::from_millis(50));
    lockcheck::set_order_checking(true);
    slow.join().unwrap();
    // Both setters done; whichever order they ran in, the byte must match the switches.
    assert!(lockcheck::__private::flags_match_switches());
}
