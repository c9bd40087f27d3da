//! A real deadlock, caught: two threads each take one lock, meet at a barrier, then each asks for
//! the other's lock. Without lockcheck this program hangs forever. With it, the thread that closes
//! the wait-for cycle gets a `deadlock` report and panics (LOCKCHECK=panic, the default), which
//! releases its lock and lets the other thread finish.
//!
//! Lock-order checking would report the inversion before anyone blocks; it is switched off here
//! (`LOCKCHECK_ORDER=off` does the same) to show the last line of defence.
//!
//! Run: `cargo run --example real_deadlock`

use lockcheck::Mutex;
use std::sync::{Arc, Barrier};

fn main() {
    lockcheck::set_order_checking(false);
    let a = Arc::new(Mutex::named("inventory", 0));
    let b = Arc::new(Mutex::named("orders", 0));
    let barrier = Arc::new(Barrier::new(2));

    let spawn = |first: Arc<Mutex<i32>>, second: Arc<Mutex<i32>>, name: &str| {
        let barrier = barrier.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut x = first.lock();
                barrier.wait(); // both threads now hold one lock each
                let mut y = second.lock(); // ...and wait for the other's: deadlock
                *x += 1;
                *y += 1;
            })
            .unwrap()
    };
    let t1 = spawn(a.clone(), b.clone(), "restock");
    let t2 = spawn(b.clone(), a.clone(), "checkout");
    let r1 = t1.join();
    let r2 = t2.join();
    println!(
        "restock {}, checkout {}; the program ended instead of hanging",
        if r1.is_ok() { "finished" } else { "panicked" },
        if r2.is_ok() { "finished" } else { "panicked" },
    );
}
