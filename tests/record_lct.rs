//! Recording in lockcheck's binary `.lct` format: the same program recorded as JSON Lines and as
//! `.lct` (by the extension, or `LOCKCHECK_TRACE_FORMAT=lct`) gives the same analysis, and a
//! crashed process leaves an `.lct` trace readable up to its last complete record. The recorder
//! writes version 4 (raw record blocks, `lockcheck_core::lct::raw`), version 2 when
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
    std::fs::read(path).unwrap().starts_with(&raw::MAGIC_V5)
}

/// A version-5 trace as version 4 wrote it: every short raw record as the 40-byte record it
/// stands for; and how many were short.
fn as_version_4(v5: &[u8]) -> (Vec<u8>, usize) {
    assert!(v5.starts_with(&raw::MAGIC_V5));
    let mut out = raw::MAGIC_V4.to_vec();
    let (mut at, mut short) = (4, 0);
    let word = |b: &[u8], i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
    while at < v5.len() {
        let (len, n) = lct::read_varint(&v5[at..]).unwrap();
        let end = at + n + len as usize;
        let body = &v5[at + n..end];
        if body[0] != raw::TAG_BLOCK {
            out.extend_from_slice(&v5[at..end]);
        } else {
            let (t, tn) = lct::read_varint(&body[1..]).unwrap();
            let mut rest = &body[1 + tn..];
            let mut recs: Vec<u64> = Vec::new();
            while !rest.is_empty() {
                let w0 = word(rest, 0);
                let shape = w0 >> raw::SHAPE_SHIFT;
                let size = raw::shape_bytes(shape).expect("a known shape");
                let (l, c) = (w0 & ((1 << 40) - 1), (w0 >> 40) & ((1 << 21) - 1));
                match shape {
                    0 => recs.extend((0..5).map(|i| word(rest, i))),
                    raw::SHORT_RELEASE => {
                        recs.extend([u64::from(raw::K_RELEASE) | c << 32, l, 0, 0, word(rest, 1)])
                    }
                    _ => {
                        let w1 = word(rest, 1);
                        let mut head = u64::from(raw::K_ACQUIRE) | (w1 & 7) << 8 | c << 32;
                        if shape == raw::SHORT_REQUESTED {
                            head |= raw::REQUESTED;
                        }
                        recs.extend([head, l, w1 & !7, 0, word(rest, 2)]);
                    }
                }
                short += usize::from(shape != 0);
                rest = &rest[size..];
            }
            raw::encode_block_head(&mut out, t, recs.len() / 5);
            out.extend(recs.iter().flat_map(|w| w.to_le_bytes()));
        }
        at = end;
    }
    (out, short)
}

/// A version-4 trace as version 3 wrote it: every acquisition with its request folded in
/// (`raw::REQUESTED`) as the request's own raw record, then the acquisition's; and how many.
fn as_version_3(v4: &[u8]) -> (Vec<u8>, usize) {
    assert!(v4.starts_with(&raw::MAGIC_V4));
    let mut out = raw::MAGIC_V3.to_vec();
    let (mut at, mut folded) = (4, 0);
    while at < v4.len() {
        let (len, n) = lct::read_varint(&v4[at..]).unwrap();
        let end = at + n + len as usize;
        let body = &v4[at + n..end];
        if body[0] != raw::TAG_BLOCK {
            out.extend_from_slice(&v4[at..end]);
        } else {
            let (t, tn) = lct::read_varint(&body[1..]).unwrap();
            let mut recs = Vec::new();
            for r in body[1 + tn..].chunks_exact(raw::RECORD_BYTES) {
                let head = u64::from_le_bytes(r[..8].try_into().unwrap());
                if head as u8 == raw::K_ACQUIRE && head & raw::REQUESTED != 0 {
                    folded += 1;
                    // The request: kind, the same mode and class, blocking; lock and site; no
                    // permits count, no reading.
                    let request =
                        head & !(raw::REQUESTED | 0xff | 0xff << 16) | u64::from(raw::K_REQUEST);
                    recs.extend_from_slice(&request.to_le_bytes());
                    recs.extend_from_slice(&r[8..24]);
                    recs.extend_from_slice(&[0; 16]);
                    recs.extend_from_slice(&(head & !raw::REQUESTED).to_le_bytes());
                    recs.extend_from_slice(&r[8..]);
                } else {
                    recs.extend_from_slice(r);
                }
            }
            raw::encode_block_head(&mut out, t, recs.len() / raw::RECORD_BYTES);
            out.extend(recs);
        }
        at = end;
    }
    (out, folded)
}

/// Acquisitions per class in the trace's `stats` events (in versions 3 and 4 summed up by the reader).
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

/// A version-5 trace cut anywhere reads as a prefix of its events, and a cut inside a `block`
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
            let first = u64::from_le_bytes(bytes[recs..recs + 8].try_into().unwrap());
            let size = raw::shape_bytes(first >> raw::SHAPE_SHIFT).unwrap();
            if body + len - recs >= size + 16 {
                // The first record's events: two for a request folded in.
                let folded = first >> raw::SHAPE_SHIFT == raw::SHORT_REQUESTED
                    || first & raw::REQUESTED != 0 && first as u8 == raw::K_ACQUIRE;
                break (pos, recs, size, 1 + usize::from(folded));
            }
        }
        pos = body + len;
        assert!(pos < bytes.len(), "a block of two records");
    };
    let before = events_cut(&cut, &bytes, block.0).len();
    // (Inside the second record: every record takes 16 bytes at least.)
    let inside = events_cut(&cut, &bytes, block.1 + block.2 + 12).len();
    assert_eq!(
        inside,
        before + block.3,
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
    // A nested acquisition of a known dependency is recorded as one raw record with its request
    // folded in (version 4); version 3 wrote the request as its own record and still reads: the
    // same recording rewritten that way reads as the same events.
    let nested = tmp("nested.lct");
    // (Checking on: the recorded fast way is the checked one.)
    lockcheck::set_action(lockcheck::Action::Panic);
    lockcheck::record::start(&nested).unwrap();
    let (a, b) = (Mutex::named("v3.a", 0), Mutex::named("v3.b", 0));
    for _ in 0..3 {
        let _a = a.lock();
        *b.lock() += 1;
    }
    lockcheck::record::stop().unwrap().expect("was recording");
    lockcheck::set_action(lockcheck::Action::Off);
    // Version 5 writes the usual acquisitions and releases short; as version 4 wrote them they
    // read as the same events.
    let (v4_bytes, short) = as_version_4(&std::fs::read(&nested).unwrap());
    // (The rounds after the first, whose new locks and edge take the full path.)
    assert!(short >= 8, "{short} short records");
    let v4 = tmp("nested.v4.lct");
    std::fs::write(&*v4, &v4_bytes).unwrap();
    let (v3_bytes, folded) = as_version_3(&v4_bytes);
    assert!(folded > 0, "a known nested acquisition's request is folded");
    let v3 = tmp("nested.v3.lct");
    std::fs::write(&*v3, v3_bytes).unwrap();
    let ev = events(&nested);
    let requests = ev.iter().filter(|e| matches!(e, Event::Request { .. }));
    assert_eq!(requests.count(), 3, "{ev:#?}");
    assert_eq!(events(&v4), ev);
    assert_eq!(events(&v3), ev);
    // Many blocks of short records (a block holds 128 recorded pairs): every handoff comes at
    // some record, short ones included (`push_short_cold`); the same events as JSON Lines, in
    // order.
    let many = |path: &Path| {
        lockcheck::set_action(lockcheck::Action::Panic);
        lockcheck::record::start(path).unwrap();
        let (a, b) = (Mutex::named("many.a", 0), Mutex::named("many.b", 0));
        for _ in 0..2000 {
            let _a = a.lock();
            *b.lock() += 1;
        }
        lockcheck::record::stop().unwrap().expect("was recording");
        lockcheck::set_action(lockcheck::Action::Off);
        // The operations on the two locks, without numbers or times: (kind, lock's order).
        let ev = events(path);
        let mut locks = Vec::new();
        ev.iter()
            .filter_map(|e| {
                let (k, l) = match e {
                    Event::Request { l, .. } => ('q', *l),
                    Event::Acquire { l, .. } => ('a', *l),
                    Event::Release { l, .. } => ('r', *l),
                    _ => return None,
                };
                let i = locks.iter().position(|&x| x == l).unwrap_or_else(|| {
                    locks.push(l);
                    locks.len() - 1
                });
                Some((k, i))
            })
            .collect::<Vec<_>>()
    };
    let (many_json, many_lct) = (tmp("many.json"), tmp("many.lct"));
    let ops = many(&many_json);
    assert!(ops.len() >= 2000 * 5, "{}", ops.len());
    assert_eq!(many(&many_lct), ops);
    let (_, short) = as_version_4(&std::fs::read(&many_lct).unwrap());
    assert!(short >= 4 * 1900, "{short} short records");
    // A short release that finds a new recording goes the cold way (`push_short_cold`: a new
    // stream): it is in the new trace.
    let (first, second) = (tmp("restart1.lct"), tmp("restart2.lct"));
    lockcheck::set_action(lockcheck::Action::Panic);
    let held = Mutex::named("restart.a", 0);
    drop(held.lock());
    lockcheck::record::start(&first).unwrap();
    let guard = held.lock();
    lockcheck::record::start(&second).unwrap();
    drop(guard);
    lockcheck::record::stop().unwrap().expect("was recording");
    lockcheck::set_action(lockcheck::Action::Off);
    let (_, short) = as_version_4(&std::fs::read(&first).unwrap());
    assert_eq!(short, 1, "the acquisition is a short record");
    let ev = events(&second);
    let class = ev.iter().find_map(|e| match e {
        Event::Class { c, key, .. } if key.contains("restart.a") => Some(*c),
        _ => None,
    });
    let lock = ev.iter().find_map(|e| match e {
        Event::Lock { l, c, .. } if Some(*c) == class => Some(*l),
        _ => None,
    });
    let ops: Vec<char> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Acquire { l, .. } if Some(*l) == lock => Some('a'),
            Event::Release { l, .. } if Some(*l) == lock => Some('r'),
            _ => None,
        })
        .collect();
    // (Not shown held first: the release's own lock has left the held stack when its record is
    // made, as with `Rec`s before version 5.)
    assert_eq!(ops, ['r'], "{ev:#?}");
    // `lockcheck convert` reads version 4: to JSON Lines and to version 2, the same events.
    // (`nested`: with folded requests.)
    for (from, tag) in [(&lct, "converted"), (&nested, "nested.converted")] {
        let whole = events(from);
        let converted = [tmp(&format!("{tag}.json")), tmp(&format!("{tag}.lct"))];
        for out in &converted {
            let run = std::process::Command::new(env!("CARGO_BIN_EXE_lockcheck"))
                .arg("convert")
                .args([&**from, &**out])
                .output()
                .unwrap();
            assert!(run.status.success(), "{run:?}");
            assert_eq!(events(out), whole, "{}", out.display());
        }
        assert!(std::fs::read(&*converted[1])
            .unwrap()
            .starts_with(&lct::MAGIC));
    }

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
