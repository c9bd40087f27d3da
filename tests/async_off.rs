//! `lockcheck::tokio` with checking off (`LOCKCHECK=off`, here `set_action(Off)`): the locks work,
//! nothing is reported.

#[path = "support/rt.rs"]
mod rt;
mod support;

use lockcheck::tokio::{Mutex, RwLock};
use rt::{run, Flavor};
use std::sync::Arc;

#[test]
fn nothing_is_reported_with_checking_off() {
    lockcheck::set_action(lockcheck::Action::Off);
    for fl in [Flavor::CurrentThread, Flavor::MultiThread] {
        run(fl, || async {
            let a = Arc::new(Mutex::new(0));
            let b = Arc::new(Mutex::new(0));
            let (a1, b1) = (a.clone(), b.clone());
            tokio::spawn(async move {
                let _a = a1.lock().await;
                let _b = b1.lock().await;
            })
            .await
            .unwrap();
            tokio::spawn(async move {
                let _b = b.lock().await;
                let _a = a.lock().await;
            })
            .await
            .unwrap();
            let rw = RwLock::new(1);
            let r1 = rw.read().await;
            let r2 = rw.read().await;
            assert_eq!(*r1 + *r2, 2);
        })
        .unwrap();
    }
    assert!(lockcheck::violations().is_empty());
}
