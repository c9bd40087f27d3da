//! Dining philosophers, twice: first every philosopher takes the lower-numbered fork first (a
//! lock hierarchy: no cycle, no report), then each takes the left fork first (a cycle of five
//! locks over five threads: reported, although the schedule here never deadlocks).
//!
//! Run: `cargo run --example dining_philosophers`

use lockcheck::Mutex;
use std::sync::{mpsc, Arc, Barrier};

const N: usize = 5;

fn dine(forks: Arc<Vec<Mutex<u32>>>, hierarchy: bool) {
    let everyone_ate = Arc::new(Barrier::new(N));
    // A turn passed from one philosopher to the next: they eat one at a time, so this run never
    // deadlocks, but all five are alive at once, as at a real dinner.
    let (turn_tx, turn_rx): (Vec<_>, Vec<_>) = (0..N).map(|_| mpsc::channel::<()>()).unzip();
    let mut turn_tx: Vec<Option<mpsc::Sender<()>>> = turn_tx.into_iter().map(Some).collect();
    let start = turn_tx[0].take().unwrap();
    let mut handles = Vec::new();
    for (i, my_turn) in turn_rx.into_iter().enumerate() {
        let pass = turn_tx.get_mut(i + 1).and_then(Option::take);
        let forks = forks.clone();
        let everyone_ate = everyone_ate.clone();
        let h = std::thread::Builder::new()
            .name(format!("philosopher {i}"))
            .spawn(move || {
                my_turn.recv().unwrap();
                let (left, right) = (i, (i + 1) % N);
                let (first, second) = if hierarchy {
                    (left.min(right), left.max(right))
                } else {
                    (left, right)
                };
                {
                    let mut a = forks[first].lock();
                    let mut b = forks[second].lock();
                    *a += 1;
                    *b += 1;
                }
                if let Some(pass) = pass {
                    pass.send(()).unwrap();
                }
                everyone_ate.wait();
            })
            .unwrap();
        handles.push(h);
    }
    start.send(()).unwrap();
    for h in handles {
        h.join().unwrap();
    }
}

fn main() {
    lockcheck::set_action(lockcheck::Action::Warn);
    let ordered: Arc<Vec<Mutex<u32>>> =
        Arc::new((0..N).map(|_| Mutex::named("fork (ordered)", 0)).collect());
    dine(ordered, true);
    println!(
        "with a hierarchy (lower fork first): {} violation(s)",
        lockcheck::violations().len()
    );

    let naive: Arc<Vec<Mutex<u32>>> = Arc::new(
        (0..N)
            .map(|_| Mutex::named("fork (left first)", 0))
            .collect(),
    );
    dine(naive, false);
    let found = lockcheck::violations();
    println!("left fork first: {} violation(s) in total", found.len());
    if let Some(v) = found.first() {
        println!("the cycle has {} locks", v.edges.len());
    }
}
