//! `LOCKCHECK=off` (here set from code): no checking, no report, the locks still work.

mod support;

#[test]
fn off_means_no_checking() {
    lockcheck::set_action(lockcheck::Action::Off);
    assert_eq!(lockcheck::action(), lockcheck::Action::Off);
    let a = std::sync::Arc::new(lockcheck::Mutex::named("off.a", 0));
    let b = std::sync::Arc::new(lockcheck::Mutex::named("off.b", 0));
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
    assert!(r1.is_ok() && r2.is_ok());
    assert!(lockcheck::violations().is_empty());
}
