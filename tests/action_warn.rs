//! `LOCKCHECK=warn` (here set from code): report and go on.

mod support;

#[test]
fn warn_reports_and_continues() {
    lockcheck::set_action(lockcheck::Action::Warn);
    let a = std::sync::Arc::new(lockcheck::Mutex::named("warn.a", 0));
    let b = std::sync::Arc::new(lockcheck::Mutex::named("warn.b", 0));
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2) = support::two_threads(
        move || {
            let _a = a.lock();
            let _b = b.lock();
        },
        move || {
            let _b = b2.lock();
            let _a = a2.lock();
        },
    );
    assert!(r1.is_ok() && r2.is_ok(), "warn does not panic");
    let v = lockcheck::take_violations();
    assert_eq!(v.len(), 1);
    assert!(v[0].message.starts_with("lockcheck: lock order inversion"));
    assert!(
        lockcheck::violations().is_empty(),
        "take_violations empties the list"
    );
}
