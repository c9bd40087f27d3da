//! The opt-in condvar rule: waiting on a condvar while holding a lock its notifier takes.

mod support;

use lockcheck::{Condvar, Mutex};
use std::time::Duration;
use support::found;

#[test]
fn waiting_while_holding_a_lock_the_notifier_takes_is_a_warning() {
    lockcheck::watchdog::set_condvar_check(true);
    let config = Mutex::named("cvc.config", ());
    let state = Mutex::named("cvc.state", false);
    let cv = Condvar::new();
    // A notifier seen holding `config` while notifying.
    {
        let _c = config.lock();
        *state.lock() = true;
        cv.notify_all();
    }
    // The hazard: waiting (with a timeout here, so the test ends) while holding `config`.
    {
        let _c = config.lock();
        let mut g = state.lock();
        let r = cv.wait_for(&mut g, Duration::from_millis(5));
        assert!(r.timed_out());
    }
    let v: Vec<_> = support::condvar_warnings("cvc.config")
        .into_iter()
        .filter(support::notifier_seen)
        .collect();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].message.contains("warning"), "{}", v[0].message);

    // The look-alike: only the condvar's own mutex held while waiting.
    let m = Mutex::named("cvc.alone", 0);
    let cv2 = Condvar::new();
    let mut g = m.lock();
    cv2.wait_for(&mut g, Duration::from_millis(5));
    drop(g);
    assert!(found("cvc.alone").is_empty());
}
