//! Corrupted and truncated traces of every format given to `lockcheck analyze`: a byte changed at
//! (pseudo-)random positions, and every cut of the formats `tests/bad_inputs.rs` does not cut
//! (`.lct` versions 2 and 4, and a JSON Lines trace holding every kind of event). Each input
//! either analyzes, or is refused with its file and a position (exit code 2); none panics; the
//! memory allocated while analyzing one stays bounded (a counting global allocator); and a trace
//! cut inside a record, read with `--allow-truncated`, gives the report of its complete records.

#[path = "support/scratch.rs"]
mod scratch;

use lockcheck_analyze::report::Report;
use lockcheck_analyze::{analyze, Options};
use scratch::Scratch;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the bytes allocated now and at the peak since the last [`reset_peak`].
struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The largest peak of one analysis so far (printed by the tests).
static MAX_PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = NOW.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let now = NOW.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                NOW.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The tests of this file measure allocations one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one analysis may allocate beyond what was live before it: six times the largest peak
/// seen on these inputs (1.3 MB, 2026-12-02), far below what a length or count field can claim
/// (a `.lct` record may declare up to `lockcheck_core::lct::MAX_RECORD_LEN`, 16 MiB).
const BUDGET: usize = 8 << 20;

/// The outcome of analyzing `path`: the report, or the error's text (checked to name the file
/// and a position). Panics (the test fails) if the analysis panicked or went over [`BUDGET`].
fn outcome(path: &Path, allow_truncated: bool, what: &str) -> Result<Report, String> {
    let opts = Options {
        allow_truncated,
        ..Options::default()
    };
    let base = NOW.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = std::panic::catch_unwind(|| analyze(&[path.to_path_buf()], &opts));
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    MAX_PEAK.fetch_max(peak, Ordering::Relaxed);
    assert!(
        peak <= BUDGET,
        "{what}: {peak} bytes allocated at the peak (budget {BUDGET})"
    );
    match r {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => {
            let shown = e.to_string();
            assert!(
                shown.contains(&*path.to_string_lossy()),
                "{what}: the error does not name the file: {shown}"
            );
            assert!(
                e.pos.is_some() || shown.contains("empty"),
                "{what}: the error has no position: {shown}"
            );
            Err(shown)
        }
        Err(_) => panic!("{what}: analyze panicked"),
    }
}

/// A deterministic stream of positions (xorshift).
fn positions(len: usize, max: usize, seed: u64) -> Vec<usize> {
    if len <= max {
        return (0..len).collect();
    }
    let mut x = seed | 1;
    (0..max)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % len as u64) as usize
        })
        .collect()
}

/// Changes one byte at each of (up to `max`) positions of `bytes` to each of a few values, and
/// analyzes each result (strict, then lenient).
fn corrupt_everywhere(name: &str, bytes: &[u8], max: usize) -> (usize, usize) {
    let s = Scratch::new("hostile-corrupt");
    let (mut refused, mut analyzed) = (0, 0);
    for k in positions(bytes.len(), max, bytes.len() as u64) {
        let orig = bytes[k];
        let text = !name.ends_with(".lct") && !name.ends_with(".data");
        let mut values = vec![0x00, 0xff, orig ^ 0x01, orig ^ 0x80];
        if text {
            values.extend_from_slice(b"\n\"9{|");
        }
        for v in values {
            if v == orig {
                continue;
            }
            let mut b = bytes.to_vec();
            b[k] = v;
            let p = s.file(name, &b);
            for lenient in [false, true] {
                let what = format!("{name} with byte {k} = {v:#04x} (lenient: {lenient})");
                match outcome(&p, lenient, &what) {
                    Ok(_) => analyzed += 1,
                    Err(_) => refused += 1,
                }
            }
        }
    }
    (refused, analyzed)
}

/// A JSON Lines trace with every kind of event.
fn all_events() -> Vec<u8> {
    std::fs::read("fixtures/json/all-events.jsonl").unwrap()
}

/// `all_events` in `.lct` version 2 (what `lockcheck convert` writes), with the end offset of
/// each record.
fn lct_v2() -> (Vec<u8>, Vec<usize>) {
    let s = Scratch::new("hostile-lct2");
    let p = s.file("all.jsonl", &all_events());
    let events: Vec<_> = lockcheck_analyze::read::TraceReader::open(&p, None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = lockcheck_core::lct::MAGIC.to_vec();
    let mut ends = vec![out.len()];
    for ev in &events {
        lockcheck_core::lct::encode(ev, &mut out);
        ends.push(out.len());
    }
    (out, ends)
}

/// A recording of this process in the recorder's own `.lct` version (5 today): an AB-BA between two
/// threads. Recorded once per process.
fn lct_recorded() -> Vec<u8> {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES
        .get_or_init(|| {
            let s = Scratch::new("hostile-lct4");
            let p = s.path().join("run.lct");
            lockcheck::set_action(lockcheck::Action::Warn);
            lockcheck::record::start(&p).unwrap();
            let a = std::sync::Arc::new(lockcheck::Mutex::named("hostile.a", 0));
            let b = std::sync::Arc::new(lockcheck::Mutex::named("hostile.b", 0));
            let (a2, b2) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                let _a = a2.lock();
                let _b = b2.lock();
            })
            .join()
            .unwrap();
            std::thread::spawn(move || {
                let _b = b.lock();
                let _a = a.lock();
            })
            .join()
            .unwrap();
            lockcheck::record::stop().unwrap();
            let bytes = std::fs::read(&p).unwrap();
            assert!(bytes.starts_with(b"LCT\x05"), "a version-5 recording");
            bytes
        })
        .clone()
}

/// The parts of a report a cut may not change: events, violations and their ids.
fn essence(r: &Report) -> (u64, Vec<String>) {
    let mut ids: Vec<String> = r.violations.iter().map(|v| v.id.clone()).collect();
    ids.sort();
    (r.summary.events, ids)
}

#[test]
fn a_byte_changed_anywhere_in_any_format_is_analyzed_or_refused_with_its_position() {
    let _s = serial();
    let std_trace = std::fs::read("fixtures/std/Bensalem.std").unwrap();
    let rapid = std::fs::read("fixtures/rapidbin/Deadlock.data").unwrap();
    let (v2, _) = lct_v2();
    let recorded = lct_recorded();
    let mut seen = Vec::new();
    for (name, bytes, max) in [
        ("all.jsonl", all_events(), 250),
        ("t.std", std_trace, 200),
        ("t.data", rapid, 400),
        ("v2.lct", v2, 400),
        ("recorded.lct", recorded, 400),
    ] {
        let (refused, analyzed) = corrupt_everywhere(name, &bytes, max);
        assert!(refused > 0, "{name}: some corruption must be refused");
        seen.push((name, refused, analyzed));
    }
    eprintln!(
        "refused, analyzed: {seen:?}; largest peak of one analysis: {} bytes",
        MAX_PEAK.load(Ordering::Relaxed)
    );
}

/// Cuts `bytes` at every offset: strictly, a cut off an event boundary is refused with its
/// position; leniently, every cut reads as the complete records before it (`ends`: the record
/// boundaries, or `None` when records are not all self-delimiting).
fn cut_everywhere(name: &str, bytes: &[u8], ends: Option<&[usize]>) {
    let s = Scratch::new("hostile-cut");
    let whole = essence(&outcome(&s.file(name, bytes), false, name).expect("the whole trace"));
    let mut last_events = 0;
    for k in 1..bytes.len() {
        let p = s.file(name, &bytes[..k]);
        let what = format!("{name} cut at {k}");
        let strict = outcome(&p, false, &format!("{what} (strict)"));
        let lenient = outcome(&p, true, &format!("{what} (lenient)"));
        let Some(ends) = ends else {
            // Monotone: a longer prefix reads at least the events of a shorter one.
            if let Ok(r) = &lenient {
                assert!(r.summary.events >= last_events, "{what}: fewer events");
                last_events = r.summary.events;
            }
            continue;
        };
        let boundary = ends.contains(&k);
        if boundary {
            let r = strict.unwrap_or_else(|e| panic!("{what}: a record boundary refused: {e}"));
            assert_eq!(essence(&r), essence(&lenient.unwrap()), "{what}");
        } else {
            assert!(
                strict.is_err(),
                "{what}: a cut record accepted without --allow-truncated"
            );
            // The complete records before the cut.
            let before = ends.iter().rev().find(|&&e| e < k).copied().unwrap_or(0);
            let prefix = s.file(&format!("prefix-{name}"), &bytes[..before]);
            let want = outcome(&prefix, false, &format!("{what}, its complete prefix"));
            match (want, lenient) {
                (Ok(w), Ok(l)) => assert_eq!(essence(&l), essence(&w), "{what}"),
                (Err(_), Err(_)) => {}
                (w, l) => panic!(
                    "{what}: complete prefix {:?}, lenient {:?}",
                    w.map(|r| essence(&r)),
                    l.map(|r| essence(&r))
                ),
            }
        }
    }
    assert_eq!(
        whole,
        essence(&outcome(&s.file(name, bytes), true, name).unwrap())
    );
}

#[test]
fn every_cut_of_an_lct_version_2_trace_is_refused_or_read_up_to_its_last_record() {
    let _s = serial();
    let (bytes, ends) = lct_v2();
    cut_everywhere("v2.lct", &bytes, Some(&ends));
}

#[test]
fn every_cut_of_an_lct_recording_reads_a_growing_prefix() {
    let _s = serial();
    let bytes = lct_recorded();
    cut_everywhere("recorded.lct", &bytes, None);
}

#[test]
fn every_cut_of_a_json_lines_trace_with_every_event_is_refused_or_read_up_to_its_last_line() {
    let _s = serial();
    let bytes = all_events();
    // A line is complete at its newline, or (the last one) at the end of the file.
    let mut ends: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, &c)| c == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    // A cut just before a newline leaves a whole last line without its newline.
    let before_newline: Vec<usize> = ends.iter().map(|e| e - 1).collect();
    ends.extend(before_newline);
    ends.sort();
    cut_everywhere("all.jsonl", &bytes, Some(&ends));
}
