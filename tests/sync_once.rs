//! std's one-time initialization in `lockcheck::sync` (`Once`, `OnceLock`, `LazyLock`) as locks
//! held by the initializing thread, and `Condvar::wait_timeout_ms`.

mod support;

use lockcheck::sync::{Condvar, LazyLock, Mutex, Once, OnceLock};
use lockcheck::ViolationKind;
use std::sync::Arc;
use std::time::Duration;
use support::{two_threads, watchdog};

#[test]
fn once_lock_initializer_reentering_its_cell_is_reported_not_hung() {
    let r = watchdog(10, || {
        let cell: OnceLock<u32> = OnceLock::new();
        let _ = cell.get_or_init(|| *cell.get_or_init(|| 1) + 1);
    });
    let msg = r.expect_err("reported instead of hanging");
    assert!(
        msg.contains("self-deadlock") && msg.contains("tests/sync_once.rs:"),
        "{msg}"
    );
}

#[test]
fn lazy_lock_forcing_itself_is_reported_not_hung() {
    static LAZY: LazyLock<u32> = LazyLock::new(|| *LAZY + 1);
    let r = watchdog(10, || {
        let _ = *LAZY;
    });
    let msg = r.expect_err("reported instead of hanging");
    assert!(msg.contains("self-deadlock"), "{msg}");
}

#[test]
fn std_once_reentered_is_reported_and_a_plain_call_is_not() {
    let r = watchdog(10, || {
        let once = Once::new();
        once.call_once(|| once.call_once(|| ()));
    });
    assert!(r.expect_err("reported").contains("self-deadlock"));
    let r = watchdog(10, || {
        let once = Once::new();
        let mut n = 0;
        once.call_once(|| n += 1);
        once.call_once(|| n += 1);
        once.call_once_force(|_| n += 1);
        assert!(once.is_completed());
        assert_eq!(n, 1);
    });
    assert!(r.is_ok(), "{r:?}");
}

/// Per-object cells of one class (one construction site, the line of `OnceLock::new()`).
const CELL_LINE: u32 = line!() + 2;
fn cell() -> OnceLock<u32> {
    OnceLock::new()
}

#[test]
fn lock_held_around_get_or_init_against_an_initializer_taking_it_is_reported() {
    let l = Arc::new(Mutex::new(()));
    let l2 = l.clone();
    let (r1, r2) = two_threads(
        move || {
            let c = cell();
            c.get_or_init(|| {
                drop(l.lock().unwrap());
                1
            });
        },
        move || {
            let c = cell();
            let _l = l2.lock().unwrap();
            c.get_or_init(|| 2);
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("the inversion is reported");
    assert!(msg.contains("inversion"), "{msg}");
    let v: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| v.involves(&format!("tests/sync_once.rs:{CELL_LINE}:5")))
        .collect();
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    assert_eq!(v[0].kind, ViolationKind::ClassInversion);
}

const QUIET_LINE: u32 = line!() + 2;
fn quiet_cell() -> OnceLock<u32> {
    OnceLock::new()
}

#[test]
fn once_lock_in_a_consistent_order_is_silent() {
    let l = Arc::new(Mutex::new(()));
    let l2 = l.clone();
    let (r1, r2) = two_threads(
        move || {
            let c = quiet_cell();
            c.get_or_init(|| {
                drop(l.lock().unwrap());
                1
            });
        },
        move || {
            let c = quiet_cell();
            assert_eq!(c.set(5), Ok(()));
            assert_eq!(c.set(6), Err(6));
            // Reading an initialized cell while holding L is no dependency.
            let _l = l2.lock().unwrap();
            assert_eq!(c.get_or_init(|| 7), &5);
        },
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    let v: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| v.involves(&format!("tests/sync_once.rs:{QUIET_LINE}:5")))
        .collect();
    assert!(v.is_empty(), "{v:#?}");
}

const READ_UNDER_LINE: u32 = line!() + 2;
fn read_under_cell() -> Arc<OnceLock<u32>> {
    Arc::new(OnceLock::new())
}

/// A cell initialized by another thread, found initialized by a thread holding L, is read in the
/// order L, then the cell, as a wait for it would have been had the initialization still been
/// running: against its initializer, which took L, an inversion, predicted although the reader
/// came after the initialization. (Before, a call that found the cell initialized checked
/// nothing: silent.)
#[test]
fn an_initialized_cell_read_under_the_lock_its_initializer_took_is_reported() {
    let l = Arc::new(Mutex::new(()));
    let l2 = l.clone();
    let c = read_under_cell();
    let c2 = c.clone();
    let (r1, r2) = two_threads(
        move || {
            c.get_or_init(|| {
                drop(l.lock().unwrap());
                1
            });
        },
        move || {
            let _l = l2.lock().unwrap();
            assert_eq!(c2.get_or_init(|| 7), &1);
        },
    );
    assert!(r1.is_ok(), "{r1:?}");
    let msg = r2.expect_err("the inversion is reported");
    assert!(msg.contains("inversion"), "{msg}");
    let v: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| v.involves(&format!("tests/sync_once.rs:{READ_UNDER_LINE}:14")))
        .collect();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::LockOrderInversion);
}

#[test]
fn once_lock_and_lazy_lock_keep_std_api() {
    let mut c = OnceLock::from(3);
    assert_eq!(c.get(), Some(&3));
    *c.get_mut().unwrap() += 1;
    let d = c.clone();
    assert_eq!(c, d);
    assert_eq!(c.take(), Some(4));
    assert_eq!(c.into_inner(), None);
    assert_eq!(format!("{:?}", OnceLock::from(1)), "OnceLock(1)");
    let lazy = LazyLock::new(|| 40 + 2);
    assert_eq!(*LazyLock::force(&lazy), 42);
    assert_eq!(*lazy, 42);
    let def: LazyLock<Vec<u8>> = LazyLock::default();
    assert!(def.is_empty());
    #[allow(deprecated)]
    let old = lockcheck::sync::ONCE_INIT;
    old.call_once(|| ());
    assert!(old.is_completed());
}

#[test]
#[allow(deprecated)]
fn condvar_wait_timeout_ms_reports_whether_notified() {
    let m = Mutex::new(0);
    let cv = Condvar::new();
    let g = m.lock().unwrap();
    let (g, notified) = cv.wait_timeout_ms(g, 10).unwrap();
    assert!(!notified, "nobody notified: the time elapsed");
    drop(g);
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = pair.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        *p2.0.lock().unwrap() = true;
        p2.1.notify_all();
    });
    let mut g = pair.0.lock().unwrap();
    let mut notified = false;
    while !*g {
        let (g2, n) = pair.1.wait_timeout_ms(g, 10_000).unwrap();
        g = g2;
        notified |= n;
    }
    assert!(notified);
    drop(g);
    t.join().unwrap();
}
