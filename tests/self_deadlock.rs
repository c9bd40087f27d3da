//! Self-deadlocks are reported before the thread blocks (here: a panic instead of a hang), and the
//! look-alikes that do not block stay silent.

mod support;

use lockcheck::{Mutex, RwLock, Semaphore, ViolationKind};
use support::{found, watchdog};

fn expect_self_deadlock(
    class: &'static str,
    kind: ViolationKind,
    f: impl FnOnce() + Send + 'static,
) {
    let r = watchdog(10, f);
    let msg = r.expect_err("must panic instead of hanging");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = found(class);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, kind);
    assert!(
        v[0].edges[0].site.starts_with("tests/self_deadlock.rs:"),
        "{:?}",
        v[0].edges[0]
    );
    assert!(v[0].edges[0]
        .held_site
        .starts_with("tests/self_deadlock.rs:"));
}

#[test]
fn mutex_locked_twice() {
    expect_self_deadlock("sd.mutex", ViolationKind::SelfDeadlock, || {
        let m = Mutex::named("sd.mutex", 0);
        let _g = m.lock();
        let _h = m.lock();
    });
}

#[test]
fn if_let_scrutinee_keeps_the_guard_alive() {
    // Edition 2021: the temporary guard of the scrutinee lives until the end of the `else` block.
    expect_self_deadlock("sd.iflet", ViolationKind::SelfDeadlock, || {
        let m = Mutex::named("sd.iflet", vec![1]);
        if let Some(x) = m.lock().first().copied() {
            let _ = x;
        } else {
            m.lock().push(0);
        }
        // The `Some` branch also holds it:
        if let Some(_x) = m.lock().first() {
            m.lock().push(2);
        };
    });
}

#[test]
fn match_temporary_keeps_the_guard_alive() {
    expect_self_deadlock("sd.match", ViolationKind::SelfDeadlock, || {
        let m = Mutex::named("sd.match", vec![1u32]);
        match m.lock().len() {
            0 => {}
            _ => m.lock().clear(),
        };
    });
}

#[test]
fn write_after_read_on_one_rwlock() {
    expect_self_deadlock("sd.rw", ViolationKind::SelfDeadlock, || {
        let l = RwLock::named("sd.rw", 0);
        let _r = l.read();
        let _w = l.write();
    });
}

#[test]
fn upgrade_while_holding_a_read() {
    expect_self_deadlock("sd.upg", ViolationKind::SelfDeadlock, || {
        let l = RwLock::named("sd.upg", 0);
        let _r = l.read_recursive();
        let u = l
            .try_upgradable_read()
            .expect("readers do not exclude an upgradable reader");
        let _w = lockcheck::RwLockUpgradableReadGuard::upgrade(u);
    });
}

#[test]
fn recursive_read_is_a_hazard() {
    let r = watchdog(10, || {
        let l = RwLock::named("sd.rread", 0);
        let _a = l.read();
        let _b = l.read();
    });
    let msg = r.expect_err("reported");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = found("sd.rread");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, ViolationKind::RecursiveRead);
    assert!(v[0].message.contains("read_recursive"));
}

#[test]
fn read_recursive_is_fine() {
    watchdog(10, || {
        let l = RwLock::named("sd.rrec", 0);
        let _a = l.read();
        let _b = l.read_recursive();
        let _c = l.read_recursive();
    })
    .unwrap();
    assert!(found("sd.rrec").is_empty());
}

#[test]
fn try_lock_on_a_held_mutex_is_fine() {
    watchdog(10, || {
        let m = Mutex::named("sd.try", 0);
        let _g = m.lock();
        assert!(m.try_lock().is_none());
        assert!(m
            .try_lock_for(std::time::Duration::from_millis(5))
            .is_none());
    })
    .unwrap();
    assert!(found("sd.try").is_empty());
}

#[test]
fn relocking_after_release_is_fine() {
    watchdog(10, || {
        let m = Mutex::named("sd.relock", 0);
        *m.lock() += 1;
        *m.lock() += 1;
        let g = m.lock();
        drop(g);
        let _g = m.lock();
    })
    .unwrap();
    assert!(found("sd.relock").is_empty());
}

#[test]
fn semaphore_holding_every_permit() {
    expect_self_deadlock("sd.sem", ViolationKind::SelfDeadlock, || {
        let s = Semaphore::named("sd.sem", 2);
        let _a = s.acquire();
        let _b = s.acquire();
        let _c = s.acquire();
    });
}

#[test]
fn semaphore_with_a_free_permit_is_fine() {
    watchdog(10, || {
        let s = Semaphore::named("sd.sem2", 3);
        let _a = s.acquire();
        let _b = s.acquire();
        assert!(s.try_acquire().is_some());
        assert_eq!(s.available_permits(), 1);
    })
    .unwrap();
    assert!(found("sd.sem2").is_empty());
}

#[test]
fn std_api_mutex_locked_twice() {
    // The mutex's class is its construction site: this test's own line, so that another
    // test's self-deadlock in this file, reported at the same time, is not counted.
    let class = format!("tests/self_deadlock.rs:{}:", line!() + 2);
    let r = watchdog(10, || {
        let m = lockcheck::sync::Mutex::new(0);
        let _g = m.lock().unwrap();
        let _h = m.lock().unwrap();
    });
    assert!(r.expect_err("must panic").contains("self-deadlock"));
    let v: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| v.kind == ViolationKind::SelfDeadlock)
        .filter(|v| v.edges[0].acquired.class.starts_with(&class))
        .collect();
    assert_eq!(v.len(), 1, "{v:#?}");
}

/// A value whose `Drop` locks the mutex: run by the unwinding of a panic while a guard of that
/// mutex is still alive, it is a certain self-deadlock on a thread that cannot panic again.
struct LockOnDrop<'a>(&'a Mutex<u32>);

impl Drop for LockOnDrop<'_> {
    fn drop(&mut self) {
        let _g = self.0.lock();
    }
}

/// `held`: the bug (the guard, declared first, is dropped after `LockOnDrop` by the unwinding);
/// else the look-alike (declared the other way round, the guard is dropped first).
fn relock_while_unwinding(held: bool) {
    let m = Mutex::named("sd.unwind", 0);
    let _r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if held {
            let _g = m.lock();
            let _d = LockOnDrop(&m);
            panic!("unwinding with the guard held");
        } else {
            let _d = LockOnDrop(&m);
            let _g = m.lock();
            panic!("unwinding, the guard dropped first");
        }
    }));
}

/// Runs `scenario` in a child process (this test binary on one test) and returns its status and
/// output; the child exits by itself after 20 s if it hangs.
fn child(test: &str, scenario: &str) -> std::process::Output {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("SELF_DEADLOCK_CHILD", scenario)
        .env("LOCKCHECK", "panic")
        .output()
        .unwrap()
}

fn child_side() {
    let Some(s) = std::env::var_os("SELF_DEADLOCK_CHILD") else {
        return;
    };
    let held = s == "held";
    // The child's own watchdog, at the suites' floor (`support::WATCHDOG_FLOOR_SECS`): 20 s was
    // passed by five of `async_abort.rs`'s children, alike, in one run on one core shared with
    // two busy loops and other builds.
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(120));
        println!("child: hung");
        std::process::exit(3);
    });
    relock_while_unwinding(held);
    println!("child: finished");
    std::process::exit(0);
}

#[test]
fn a_drop_relocking_during_unwinding_aborts_with_the_report_instead_of_hanging() {
    child_side();
    let out = child(
        "a_drop_relocking_during_unwinding_aborts_with_the_report_instead_of_hanging",
        "held",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(6), "{stdout}\n{stderr}");
    }
    assert!(!stdout.contains("child: hung"), "{stdout}\n{stderr}");
    assert!(stderr.contains("self-deadlock"), "{stderr}");
    assert!(stderr.contains("`sd.unwind`"), "{stderr}");
    assert!(stderr.contains("already panicking"), "{stderr}");
}

#[test]
fn a_drop_locking_during_unwinding_after_the_guard_is_gone_is_silent() {
    child_side();
    let out = child(
        "a_drop_locking_during_unwinding_after_the_guard_is_gone_is_silent",
        "free",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("child: finished"), "{stdout}\n{stderr}");
    assert!(!stderr.contains("self-deadlock"), "{stderr}");
}

/// A `try_write` retried until it succeeds while the thread holds a read of the same lock (an
/// upgrade spun for): it can never succeed, and is a self-deadlock once it failed
/// `TRY_RETRIES` times in a row (one try that gives up is silent: `upgrade`-less code may
/// probe).
#[test]
fn try_write_spun_on_under_a_read_of_the_same_lock() {
    expect_self_deadlock("sd.spin.rw", ViolationKind::SelfDeadlock, || {
        let l = RwLock::named("sd.spin.rw", 0);
        let _r = l.read();
        while l.try_write().is_none() {
            std::hint::spin_loop();
        }
    });
}

/// The same through `lockcheck::sync` (std's API: `try_lock` returns `WouldBlock`).
#[test]
fn std_try_lock_spun_on_by_its_holder() {
    let r = watchdog(10, || {
        let m = lockcheck::sync::Mutex::new(0);
        let _g = m.lock().unwrap();
        while m.try_lock().is_err() {
            std::hint::spin_loop();
        }
    });
    let msg = r.expect_err("must panic instead of spinning for ever");
    assert!(msg.contains("self-deadlock"), "{msg}");
    assert!(msg.contains("tests/self_deadlock.rs:"), "{msg}");
}

/// Fewer failures than `TRY_RETRIES` in a row, or a success in between, are no spin.
#[test]
fn tries_that_give_up_or_succeed_in_between_are_silent() {
    watchdog(10, || {
        let l = RwLock::named("sd.spin.fewer", 0);
        // Twice the same failures, at the same site and under the same read: a success in
        // between ends the first streak (without it, the second would pass the count).
        for _ in 0..2 {
            let r = l.read();
            for _ in 0..lockcheck_core::trace::TRY_RETRIES - 1 {
                assert!(l.try_write().is_none());
            }
            drop(r);
            drop(l.try_write().expect("free"));
        }
    })
    .unwrap();
    assert!(
        found("sd.spin.fewer").is_empty(),
        "{:#?}",
        found("sd.spin.fewer")
    );
}
