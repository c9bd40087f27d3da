//! The watchdog (long waits and holds), per-class timeout policies and statistics.

#[path = "support/scratch.rs"]
mod scratch;
mod support;

use lockcheck::{Mutex, ViolationKind};
use scratch::ScratchFile;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use support::{found, watchdog};

/// Holds `m` (named `name`) for `hold`, while another thread locks it; returns the other
/// thread's result.
fn contend(m: Arc<Mutex<()>>, name: &'static str, hold: Duration) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let m2 = m.clone();
    let holder = std::thread::spawn(move || {
        let _g = m2.lock();
        tx.send(()).unwrap();
        // `hold` counted from the waiter's block, not from the take: a waiter that came late
        // on a loaded machine found the lock free (no wait, no timeout, 1 of 1 runs on one
        // core shared with two busy loops).
        // On this very lock (another test's waiter on a mutex does not count).
        support::wait_until("the waiter blocks", || support::blocked_on(name) == 1);
        std::thread::sleep(hold);
    });
    rx.recv().unwrap();
    let r = watchdog(20, move || {
        let _g = m.lock();
    });
    holder.join().unwrap();
    r
}

#[test]
fn the_watchdog_reports_a_long_wait_and_not_a_short_one() {
    lockcheck::watchdog::set_wait_warn(Some(Duration::from_millis(100)));
    contend(
        Arc::new(Mutex::named("wd.long", ())),
        "wd.long",
        Duration::from_millis(600),
    )
    .unwrap();
    contend(
        Arc::new(Mutex::named("wd.short", ())),
        "wd.short",
        Duration::from_millis(5),
    )
    .unwrap();
    let long: Vec<_> = found("wd.long")
        .into_iter()
        .filter(|v| matches!(v.kind, ViolationKind::LongWait { .. }))
        .collect();
    assert_eq!(long.len(), 1, "{long:#?}");
    let msg = &long[0].message;
    assert!(msg.starts_with("lockcheck: long wait"), "{msg}");
    assert!(msg.contains("held by thread"), "names the holder: {msg}");
    assert!(
        long[0].edges.len() >= 2 && long[0].edges[1].held_site.starts_with("tests/watchdog.rs:"),
        "{msg}"
    );
    assert!(found("wd.short").is_empty());
}

#[test]
fn the_watchdog_reports_a_long_hold() {
    lockcheck::watchdog::set_hold_warn(Some(Duration::from_millis(150)));
    {
        let m = Mutex::named("wd.hold", ());
        let _g = m.lock();
        std::thread::sleep(Duration::from_millis(600));
    }
    let v: Vec<_> = found("wd.hold")
        .into_iter()
        .filter(|v| matches!(v.kind, ViolationKind::LongHold { .. }))
        .collect();
    assert_eq!(v.len(), 1, "reported once while held: {v:#?}");
    assert!(v[0].message.contains("long hold"));
}

/// A bounded channel's receiver kept for long is no long hold (the channel is "held" by the thread
/// that owns its receiver, see `lockcheck::sync::mpsc`).
#[test]
fn a_channel_s_receiver_kept_long_is_no_long_hold() {
    lockcheck::watchdog::set_hold_warn(Some(Duration::from_millis(150)));
    let (tx, rx) = lockcheck::sync::mpsc::sync_channel::<u32>(1); // WD_CHANNEL
    tx.send(1).unwrap();
    assert_eq!(rx.recv(), Ok(1));
    std::thread::sleep(Duration::from_millis(600));
    drop(rx);
    let line = format!("channel created at tests/watchdog.rs:{}:", line!() - 5);
    let v: Vec<_> = lockcheck::violations()
        .into_iter()
        .filter(|v| v.edges.iter().any(|e| e.held.class.starts_with(&line)))
        .collect();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn a_per_class_timeout_fires() {
    lockcheck::watchdog::set_wait_timeout("to.m", Some(Duration::from_millis(50)));
    let r = contend(
        Arc::new(Mutex::named("to.m", ())),
        "to.m",
        Duration::from_millis(800),
    );
    let msg = r.expect_err("the waiter panics at the timeout");
    assert!(msg.contains("wait timeout"), "{msg}");
    let v: Vec<_> = found("to.m")
        .into_iter()
        .filter(|v| matches!(v.kind, ViolationKind::WaitTimeout { .. }))
        .collect();
    assert_eq!(v.len(), 1);
    // Another class is not bounded.
    contend(
        Arc::new(Mutex::named("to.other", ())),
        "to.other",
        Duration::from_millis(200),
    )
    .unwrap();
    // (Other tests of this binary switch the watchdog on: only a timeout report would be wrong.)
    assert!(found("to.other")
        .iter()
        .all(|v| !matches!(v.kind, ViolationKind::WaitTimeout { .. })));
}

#[test]
fn a_policy_file_sets_timeouts() {
    let path = ScratchFile::new("policy", "policy.toml");
    std::fs::write(
        &path,
        "[wait_timeout]\n\"pf.m\" = \"40ms\"\n\"pf.n\" = 2000\n",
    )
    .unwrap();
    assert_eq!(lockcheck::watchdog::load_policy_file(&path).unwrap(), 2);
    let r = contend(
        Arc::new(Mutex::named("pf.m", ())),
        "pf.m",
        Duration::from_millis(600),
    );
    assert!(r.unwrap_err().contains("wait timeout"));
    std::fs::write(&path, "[wait_timeout]\n\"pf.x\" = \"soon\"\n").unwrap();
    assert!(lockcheck::watchdog::load_policy_file(&path)
        .unwrap_err()
        .contains("pf.x"));
}

#[test]
fn statistics_count_acquisitions_and_contention() {
    lockcheck::stats::enable();
    let m = Arc::new(Mutex::named("st.m", ()));
    for _ in 0..10 {
        drop(m.lock());
    }
    contend(m.clone(), "st.m", Duration::from_millis(50)).unwrap();
    let s = lockcheck::stats()
        .into_iter()
        .find(|s| s.class == "st.m")
        .expect("class counted");
    assert_eq!(s.stats.acquisitions, 12);
    assert!(s.stats.contended >= 1);
    assert!(s.stats.wait_max_ns >= 10_000_000, "{s:?}");
    assert!(s.stats.hold_max_ns >= 40_000_000, "{s:?}");
}
