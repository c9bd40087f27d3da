//! `Once`, `OnceLock` and `LazyLock` are a lock kind of their own in reports and traces (`Once`,
//! trace kind `once`), not a `Mutex`, and still self-deadlock like one.

#[path = "support/scratch.rs"]
mod scratch;
mod support;

use lockcheck::LockKind;
use scratch::Scratch;
use std::sync::Arc;
use support::{found, watchdog};

fn assert_once_self_deadlock(class: &str, r: Result<(), String>) {
    let msg = r.expect_err("reported instead of hanging");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = found(class);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].edges[0].held.kind, LockKind::Once, "{v:#?}");
    assert!(
        v[0].message.contains(&format!("Once `{class}`")),
        "{}",
        v[0].message
    );
    assert!(!v[0].message.contains("Mutex"), "{}", v[0].message);
}

#[test]
fn parking_lot_once_reentered_is_reported_as_a_once() {
    let r = watchdog(10, || {
        let once = lockcheck::Once::named("ok.pl");
        once.call_once(|| once.call_once(|| ()));
    });
    assert_once_self_deadlock("ok.pl", r);
}

#[test]
fn std_once_lock_and_lazy_lock_are_reported_as_a_once() {
    let r = watchdog(10, || {
        let cell: lockcheck::sync::OnceLock<u32> = lockcheck::sync::OnceLock::new();
        let _ = cell.get_or_init(|| *cell.get_or_init(|| 1) + 1);
    });
    let msg = r.expect_err("reported instead of hanging");
    assert!(msg.contains("self-deadlock"), "{msg}");
    // Unnamed: find it by kind and by this file.
    let once_found = lockcheck::violations().into_iter().any(|v| {
        v.kind == lockcheck::ViolationKind::SelfDeadlock
            && v.edges[0].held.kind == LockKind::Once
            && v.edges[0].held.class.starts_with("tests/once_kind.rs:")
    });
    assert!(once_found, "{:#?}", lockcheck::violations());
}

#[test]
fn a_mutex_is_still_reported_as_a_mutex() {
    let r = watchdog(10, || {
        let m = lockcheck::Mutex::named("ok.mutex", ());
        let _g = m.lock();
        let _h = m.lock();
    });
    assert!(r.expect_err("reported").contains("self-deadlock"));
    let v = found("ok.mutex");
    assert_eq!(v[0].edges[0].held.kind, LockKind::Mutex);
}

#[test]
fn a_recorded_once_is_kind_once_in_the_trace_and_the_analyzer() {
    let dir = Scratch::new("once-kind");
    let path = dir.join("once.json");
    lockcheck::record::start(&path).unwrap();
    // Checking is on: the class-level inversion (an initializer taking L, L held around another
    // `Once` of that class) is reported at runtime, and must be found offline too.
    let l = Arc::new(lockcheck::Mutex::named("ok.rec.l", ()));
    let l2 = l.clone();
    let _ = support::two_threads(
        move || lockcheck::Once::named("ok.rec.once").call_once(|| drop(l.lock())),
        move || {
            let _l = l2.lock();
            lockcheck::Once::named("ok.rec.once").call_once(|| ());
        },
    );
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"key\":\"ok.rec.once\"") && l.contains("\"kind\":\"once\"")),
        "{text}"
    );
    let report = lockcheck_analyze::analyze(&[written.to_path_buf()], &Default::default()).unwrap();
    let v = report
        .violations
        .iter()
        .find(|v| v.locks.iter().any(|l| l.class == "ok.rec.once"))
        .expect("the inversion is found offline");
    let once_ref = v.locks.iter().find(|l| l.class == "ok.rec.once").unwrap();
    assert_eq!(once_ref.kind, "once");
    let _ = std::fs::remove_dir_all(&dir);
}
