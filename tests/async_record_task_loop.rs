//! A task that takes and releases an async lock in a loop, with nothing else held, while a trace
//! is being recorded (its own process: recording is process-wide). Each release leaves the task
//! holding nothing; the recorder must not open a new stream (a 40 KiB block) for the next
//! acquisition every time, or memory grows with the iterations between two writer passes.

#[path = "support/rt.rs"]
mod rt;
mod support;
#[path = "support/trace_file.rs"]
mod trace_file;

use lockcheck::tokio::Mutex;
use lockcheck_core::trace::Event;
use std::sync::Arc;

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[test]
#[cfg(target_os = "linux")]
fn a_task_locking_in_a_loop_keeps_one_stream_and_loses_nothing() {
    const N: u64 = 20_000;
    let path = trace_file::tmp("task-loop.json");
    lockcheck::record::start(&path).unwrap();
    let grown = Arc::new(std::sync::Mutex::new(0u64));
    let g2 = grown.clone();
    rt::run(rt::Flavor::CurrentThread, move || async move {
        // A spawned task (the root future's locks are its thread's, not a task's).
        lockcheck::tokio::spawn(async move {
            let m = Mutex::named("arec.loop", 0u64);
            let before = rss_kib();
            let mut peak = before;
            for i in 0..N {
                *m.lock().await += 1;
                if i % 1000 == 0 {
                    peak = peak.max(rss_kib());
                }
            }
            *g2.lock().unwrap() = peak.max(rss_kib()) - before;
        })
        .await
        .unwrap();
    })
    .unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    let grown = *grown.lock().unwrap();
    // A stream per iteration took a 40 KiB block each until the writer's next pass: 250 MiB
    // more resident over these 20,000 iterations on a 2-core machine (and a `thread` event
    // each in the trace). One stream: about 20 MiB, the runtime's and the trace's own.
    assert!(
        grown < 64 * 1024,
        "resident memory grew by {grown} KiB over {N} lock/unlock iterations"
    );
    let events = trace_file::events(&written);
    let lock = trace_file::lock_of(&events, "arec.loop");
    let acquired = events
        .iter()
        .filter(|e| matches!(e, Event::Acquire { l, .. } if *l == lock))
        .count() as u64;
    let released = events
        .iter()
        .filter(|e| matches!(e, Event::Release { l, .. } if *l == lock))
        .count() as u64;
    assert_eq!(
        (acquired, released),
        (N, N),
        "every acquisition and release written"
    );
    let streams = events
        .iter()
        .filter(|e| matches!(e, Event::Thread { name: Some(n), .. } if n.starts_with("task #")))
        .count();
    // One stream, or one more per writer pass that found the task idle and drained (a few in
    // the loop's fraction of a second); it was one per iteration.
    assert!(
        (1..100).contains(&streams),
        "{streams} streams for one task"
    );
}
