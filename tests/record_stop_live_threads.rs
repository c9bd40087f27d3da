//! `record::stop()` while the threads that recorded are still alive must write every event they
//! recorded before it. The writer's background pass used to drop the streams of a generation that
//! had just ended (`stop` moves the generation on before it takes the writer), so a pass running
//! at that moment discarded live threads' pending records and `stop` found nothing to drain: a
//! third of the acquisitions could be missing, silently.

#[path = "support/scratch.rs"]
mod scratch;

use lockcheck_core::trace::Event;
use scratch::Scratch;
use std::sync::{Arc, Barrier};

const THREADS: usize = 3;
const ROUNDS: usize = 3000;

#[test]
fn stop_writes_what_live_threads_recorded_before_it() {
    let dir = Scratch::new("stop-live");
    for round in 0..20 {
        let path = dir.join(format!("stop{round}.jsonl"));
        lockcheck::record::start(&path).unwrap();
        // Every thread records its acquisitions, then waits (alive) until the recording stopped.
        let recorded = Arc::new(Barrier::new(THREADS + 1));
        let stopped = Arc::new(Barrier::new(THREADS + 1));
        let threads: Vec<_> = (0..THREADS)
            .map(|i| {
                let (recorded, stopped) = (recorded.clone(), stopped.clone());
                std::thread::spawn(move || {
                    let m = lockcheck::Mutex::named("stop.live", i);
                    for _ in 0..ROUNDS {
                        drop(m.lock());
                    }
                    recorded.wait();
                    stopped.wait();
                })
            })
            .collect();
        recorded.wait();
        // Give the background writer passes to run into the stop.
        if round % 2 == 1 {
            std::thread::sleep(std::time::Duration::from_millis(round as u64 * 3));
        }
        let written = lockcheck::record::stop()
            .unwrap()
            .expect("a recording was on");
        stopped.wait();
        for t in threads {
            t.join().unwrap();
        }
        let acquisitions = lockcheck_analyze::read::TraceReader::open(&written, None)
            .unwrap()
            .filter(|e| matches!(e, Ok(Event::Acquire { .. })))
            .count();
        assert_eq!(
            acquisitions,
            THREADS * ROUNDS,
            "round {round}: acquisitions missing from {}",
            written.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
