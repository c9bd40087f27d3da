//! The detector must never be the bug, with a trace recorded: a thread's first record (its
//! stream), a full block (handed to the writer, a fresh one taken), a new site (its backtrace)
//! allocate, and must not happen while the lock just acquired is held (or the lock being
//! released, whose record precedes the raw unlock): a global allocator that takes that lock would
//! take it again on the same thread. The allocator: `support/stats_alloc.rs`.

#[path = "support/stats_alloc.rs"]
mod stats_alloc;

use lockcheck::Mutex;
use stats_alloc::{guarded, use_lock};

/// Thousands of acquisitions of the allocator's lock on fresh threads (their streams start
/// with it), an odd number of other records in between now and then, so that an acquisition and a
/// release both fall on a block's end; new sites.
#[test]
fn recording_the_allocators_lock_does_not_deadlock() {
    let dir = std::env::temp_dir().join(format!("lockcheck-alloc-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.jsonl");
    lockcheck::record::start(&path).unwrap();
    static OTHER: Mutex<u32> = Mutex::new(0);
    for round in 0..3u64 {
        let m: &'static Mutex<u64> = Box::leak(Box::new(Mutex::new(0)));
        use_lock(m);
        let n = guarded(120, move || {
            let mut n = 0;
            for i in 0..3000u64 {
                // The program's use: no allocation inside.
                n += *m.lock();
                if i % 7 == round {
                    drop(OTHER.try_lock());
                }
            }
            n
        })
        .expect("no violation, no hang");
        assert!(n > 0, "the allocator counted");
    }
    use_lock(&stats_alloc::STATS);
    let written = lockcheck::record::stop().unwrap().expect("a trace");
    let text = std::fs::read_to_string(&written).unwrap();
    let acquires = text.lines().filter(|l| l.contains("\"acquire\"")).count();
    assert!(acquires >= 9000, "every acquisition recorded: {acquires}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        lockcheck::violations().is_empty(),
        "nothing to report: {:?}",
        lockcheck::violations()
    );
}
