//! A fan-in: many clones of one channel's sender, each sending once, then dropped. lockcheck
//! keeps each live handle's slot (for a receive's wait, see `checked::channel`); a clone, a
//! first send and a drop each cost O(1) however many handles live. They used to scan the
//! channel's live handles (a drop retained all but one, a send searched its own): 100,000
//! clones were quadratic, minutes in a debug build, far past the watchdog.

mod support;

use lockcheck::sync::mpsc;
use std::time::Instant;
use support::watchdog;

/// Handles per channel: past the point where a scan per clone, send and drop would show.
const CLONES: usize = 100_000;

#[test]
fn thousands_of_sender_clones_cost_linear_time() {
    watchdog(60, || {
        let start = Instant::now();
        let (tx, rx) = mpsc::channel::<usize>();
        let clones: Vec<mpsc::Sender<usize>> = (0..CLONES).map(|_| tx.clone()).collect();
        for (i, c) in clones.iter().enumerate() {
            c.send(i).unwrap();
        }
        drop(clones);
        drop(tx);
        assert_eq!(rx.iter().count(), CLONES);
        eprintln!("unbounded: {CLONES} clones in {:?}", start.elapsed());

        let start = Instant::now();
        let (tx, rx) = mpsc::sync_channel::<usize>(CLONES);
        let clones: Vec<mpsc::SyncSender<usize>> = (0..CLONES).map(|_| tx.clone()).collect();
        for (i, c) in clones.iter().enumerate() {
            c.send(i).unwrap();
        }
        drop(clones);
        drop(tx);
        assert_eq!(rx.iter().count(), CLONES);
        eprintln!("bounded: {CLONES} clones in {:?}", start.elapsed());
    })
    .unwrap();
}
