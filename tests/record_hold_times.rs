//! `LOCKCHECK_TRACE_HOLD_TIMES=0`: the recorder takes no clock readings, so releases carry no hold
//! time, and the trace is otherwise the same (the same events, the same findings; only the
//! timeout advice, which uses hold times, has less to go on). By default hold times are measured.

#[path = "support/trace_file.rs"]
mod trace_file;
use lockcheck::Mutex;
use std::path::Path;
use std::time::Duration;
use trace_file::tmp;

/// Records a nested pair held for 2 ms, ten times, into `path`.
fn record(path: &Path) {
    let a = Mutex::named("hold.a", 0);
    let b = Mutex::named("hold.b", 0);
    lockcheck::record::start(path).unwrap();
    for _ in 0..10 {
        let _a = a.lock();
        let mut b = b.lock();
        *b += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    lockcheck::record::stop().unwrap();
}

/// The events of the trace's lock `release` lines: (lock, hold_ns), and the kinds of all lines.
fn releases(path: &Path) -> (Vec<(u64, u64)>, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut rel = Vec::new();
    let mut kinds = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let e = v["e"].as_str().unwrap().to_owned();
        if e == "release" {
            rel.push((v["l"].as_u64().unwrap(), v["hold_ns"].as_u64().unwrap_or(0)));
        }
        kinds.push(e);
    }
    (rel, kinds)
}

#[test]
fn without_hold_times_releases_carry_none_and_nothing_else_changes() {
    // One test: the variable is process-wide, read when a recording starts.
    let (on, off) = (tmp("on.json"), tmp("off.json"));
    record(&on);
    std::env::set_var("LOCKCHECK_TRACE_HOLD_TIMES", "0");
    record(&off);
    std::env::remove_var("LOCKCHECK_TRACE_HOLD_TIMES");
    let (rel_on, kinds_on) = releases(&on);
    let (rel_off, kinds_off) = releases(&off);
    assert_eq!(rel_on.len(), 20, "two releases per round: {rel_on:?}");
    assert!(
        rel_on.iter().all(|&(_, h)| h >= 1_000_000),
        "measured by default (2 ms holds): {rel_on:?}"
    );
    assert_eq!(rel_off.len(), 20, "{rel_off:?}");
    assert!(
        rel_off.iter().all(|&(_, h)| h == 0),
        "none measured: {rel_off:?}"
    );
    assert_eq!(kinds_on, kinds_off, "the same events otherwise");
    let report = |p: &Path| {
        let r = lockcheck_analyze::analyze(&[p.to_path_buf()], &Default::default()).unwrap();
        let s = &r.summary;
        (
            r.violations.len(),
            s.events,
            s.threads,
            s.locks,
            s.classes,
            s.dependencies,
        )
    };
    assert_eq!(
        report(&on),
        report(&off),
        "the same analysis (but for timeout advice)"
    );
    let _ = std::fs::remove_dir_all(on.parent().unwrap());
}
