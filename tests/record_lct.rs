//! Recording in lockcheck's binary `.lct` format: the same program recorded as JSON Lines and as
//! `.lct` (by the extension, or `LOCKCHECK_TRACE_FORMAT=lct`) gives the same analysis, and a
//! crashed process leaves an `.lct` trace readable up to its last complete record. The recorder
//! writes version 3 (raw record blocks, `lockcheck_core::lct::raw`), version 2 when
//! `LOCKCHECK_TRACE_FORMAT=lct2`.

mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::Mutex;
use lockcheck_analyze::read::TraceReader;
use lockcheck_core::lct::{self, raw};
use lockcheck_core::trace::Event;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use trace_file::{events, tmp};

/// An AB-BA inversion between two threads (reported) and two locks always taken in one order by
/// two threads (silent).
fn program(tag: &str) {
    let name = |n: &str| -> &'static str { Box::leak(format!("{tag}.{n}").into_boxed_str()) };
    let a = Arc::new(Mutex::named(name("a"), 0));
    let b = Arc::new(Mutex::named(name("b"), 0));
    let (a2, b2) = (a.clone(), b.clone());
    let _ = support::two_threads(
        move || {
            let _a = a.lock();
            let _b = b.lock();
        },
        move || {
            let _b = b2.lock();
            let _a = a2.lock();
        },
    );
    let c = Arc::new(Mutex::named(name("c"), 0));
    let d = Arc::new(Mutex::named(name("d"), 0));
    let (c2, d2) = (c.clone(), d.clone());
    let _ = support::two_threads(
        move || {
            let _c = c.lock();
            let _d = d.lock();
        },
        move || {
            let _c = c2.lock();
            let _d = d2.lock();
        },
    );
}

fn report(path: &Path, allow_truncated: bool) -> lockcheck_analyze::report::Report {
    let opts = lockcheck_analyze::Options {
        allow_truncated,
        ..Default::default()
    };
    lockcheck_analyze::analyze(&[path.to_path_buf()], &opts).unwrap_or_else(|e| panic!("{e}"))
}

/// What must not depend on the trace format: the violations (by id and locks) and the counts.
fn essence(r: &lockcheck_analyze::report::Report) -> (Vec<(String, Vec<String>)>, u64, u64, u64) {
    let mut v: Vec<(String, Vec<String>)> = r
        .violations
        .iter()
        .map(|v| {
            (
                v.id.clone(),
                v.locks.iter().map(|l| l.name.clone()).collect(),
            )
        })
        .collect();
    v.sort();
    (v, r.summary.events, r.summary.dependencies, r.summary.locks)
}

fn is_lct(path: &Path) -> bool {
    std::fs::read(path).unwrap().starts_with(&raw::MAGIC_V3)
}

/// Acquisitions per class in the trace's `stats` events (in version 3 summed up by the reader).
fn acquisitions(ev: &[Event]) -> BTreeMap<u32, u64> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Stats { c, stats } => Some((*c, stats.acquisitions)),
            _ => None,
        })
        .collect()
}

/// The events of `path` cut after `k` bytes, read with truncation allowed.
fn events_cut(path: &Path, bytes: &[u8], k: usize) -> Vec<Event> {
    std::fs::write(path, &bytes[..k]).unwrap();
    TraceReader::open(path, None)
        .unwrap()
        .allow_truncated(true)
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("cut at {k}: {e}"))
}

/// A version-3 trace cut anywhere reads as a prefix of its events, and a cut inside a `block`
/// keeps the block's complete raw records.
fn cut_anywhere(whole_path: &Path) {
    let bytes = std::fs::read(whole_path).unwrap();
    let whole = events(whole_path);
    let cut = tmp("cut-v3.lct");
    for k in 4..bytes.len() {
        let got = events_cut(&cut, &bytes, k);
        assert_eq!(&whole[..got.len()], &got[..], "cut at {k}");
    }
    // The first block of at least two raw records, cut inside its second record.
    let mut pos = 4;
    let block = loop {
        let (len, n) = lct::read_varint(&bytes[pos..]).unwrap();
        let (len, body) = (len as usize, pos + n);
        if bytes[body] == raw::TAG_BLOCK {
            let (_, tn) = lct::read_varint(&bytes[body + 1..]).unwrap();
            let recs = body + 1 + tn;
            if body + len - recs >= 2 * raw::RECORD_BYTES {
                break (pos, recs);
            }
        }
        pos = body + len;
        assert!(pos < bytes.len(), "a block of two records");
    };
    let before = events_cut(&cut, &bytes, block.0).len();
    let inside = events_cut(&cut, &bytes, block.1 + raw::RECORD_BYTES + 20).len();
    assert_eq!(
        inside,
        before + 1,
        "the block's first record, not its cut second"
    );
}

/// One recording at a time in this process: the steps run in sequence inside one test.
#[test]
fn lct_recording_end_to_end() {
    match std::env::var("LOCKCHECK_LCT_CHILD").as_deref() {
        Ok("exit") => return program("child"),
        Ok("crash") => {
            program("crash");
            // No stop(), no exit handlers: only the periodic background flush saves the events.
            std::thread::sleep(std::time::Duration::from_millis(300));
            std::process::abort();
        }
        _ => {}
    }
    lockcheck::set_action(lockcheck::Action::Off);
    let json = tmp("same.json");
    let lct = tmp("same.lct");
    lockcheck::record::start(&json).unwrap();
    program("same");
    lockcheck::record::stop().unwrap().expect("was recording");
    lockcheck::record::start(&lct).unwrap();
    program("same");
    lockcheck::record::stop().unwrap().expect("was recording");
    assert!(!is_lct(&json));
    assert!(is_lct(&lct), "a .lct path is recorded in .lct");
    let (rj, rl) = (report(&json, false), report(&lct, false));
    assert_eq!(rj.violations.len(), 1, "{rj:#?}");
    assert_eq!(essence(&rj), essence(&rl));
    let stats = acquisitions(&events(&json));
    assert!(!stats.is_empty());
    assert_eq!(
        stats,
        acquisitions(&events(&lct)),
        "the reader's statistics"
    );
    cut_anywhere(&lct);
    // `lockcheck convert` reads version 3: to JSON Lines and to version 2, the same events.
    let whole = events(&lct);
    let converted = [tmp("converted.json"), tmp("converted.lct")];
    for out in &converted {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_lockcheck"))
            .arg("convert")
            .args([&*lct, &**out])
            .output()
            .unwrap();
        assert!(run.status.success(), "{run:?}");
        assert_eq!(events(out), whole, "{}", out.display());
    }
    assert!(std::fs::read(&*converted[1])
        .unwrap()
        .starts_with(&lct::MAGIC));

    // Version 2 on request, with the same analysis.
    let v2 = tmp("same.v2.lct");
    std::env::set_var("LOCKCHECK_TRACE_FORMAT", "lct2");
    lockcheck::record::start(&v2).unwrap();
    std::env::remove_var("LOCKCHECK_TRACE_FORMAT");
    program("same");
    lockcheck::record::stop().unwrap().expect("was recording");
    assert!(std::fs::read(&v2).unwrap().starts_with(&lct::MAGIC));
    assert_eq!(essence(&rj), essence(&report(&v2, false)));
    assert_eq!(stats, acquisitions(&events(&v2)));

    // The switch, whatever the extension, in a process recording from the environment.
    let switched = tmp("switched.trace");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lct_recording_end_to_end", "--test-threads=1"])
        .env("LOCKCHECK_LCT_CHILD", "exit")
        .env("LOCKCHECK_TRACE", &switched)
        .env("LOCKCHECK_TRACE_FORMAT", "lct")
        .env("LOCKCHECK", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    assert!(is_lct(&switched), "LOCKCHECK_TRACE_FORMAT=lct");
    let r = report(&switched, false);
    assert_eq!(r.violations.len(), 1, "{r:#?}");

    // A crash: the trace is read up to its last complete record.
    let crashed = tmp("crash.lct");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lct_recording_end_to_end", "--test-threads=1"])
        .env("LOCKCHECK_LCT_CHILD", "crash")
        .env("LOCKCHECK_TRACE", &crashed)
        .env("LOCKCHECK", "warn")
        .status()
        .unwrap();
    assert!(!status.success(), "the child aborts");
    assert!(is_lct(&crashed));
    let r = report(&crashed, true);
    assert_eq!(r.violations.len(), 1, "recorded before the crash: {r:#?}");
    // Cut in the middle of its last record, it still is.
    let mut bytes = std::fs::read(&crashed).unwrap();
    bytes.pop();
    let cut = tmp("cut.lct");
    std::fs::write(&cut, &bytes).unwrap();
    let r = report(&cut, true);
    assert_eq!(r.violations.len(), 1, "{r:#?}");
}
