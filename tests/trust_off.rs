//! `LOCKCHECK=off` does nothing, also on a real deadlock: no report, no panic (the program hangs
//! as it would without lockcheck). Run in a child process, killed after a while.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const CHILD: &str = "LOCKCHECK_TRUST_OFF_CHILD";

#[test]
fn off_reports_nothing_even_on_a_real_deadlock() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "off_reports_nothing_even_on_a_real_deadlock",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("LOCKCHECK", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut finished = None;
    while start.elapsed() < Duration::from_millis(1500) {
        if let Some(status) = c.try_wait().unwrap() {
            finished = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(
        finished.is_none(),
        "off: the deadlock hangs as without lockcheck, no panic: {finished:?}\n{err}"
    );
    assert!(!err.contains("lockcheck:"), "off: no report\n{err}");
}

fn child() {
    lockcheck::set_action(lockcheck::Action::Off);
    let a = Arc::new(lockcheck::Mutex::named("off.a", ()));
    let b = Arc::new(lockcheck::Mutex::named("off.b", ()));
    let barrier = Arc::new(Barrier::new(2));
    let t = {
        let (a, b, barrier) = (a.clone(), b.clone(), barrier.clone());
        std::thread::spawn(move || {
            let _b = b.lock();
            barrier.wait();
            let _a = a.lock();
        })
    };
    let _a = a.lock();
    barrier.wait();
    let _b = b.lock();
    drop(t);
}
