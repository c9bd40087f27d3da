//! The classic AB-BA: two transfers in opposite directions lock the two accounts in opposite
//! orders. The threads here never actually deadlock (the second transfer starts after the first
//! one is done), yet lockcheck reports the inversion the first time both orders have been seen.
//!
//! Threads are started with `lockcheck::thread` (std's API) so that lockcheck knows that `main`
//! reads the balances after joining them.
//!
//! Run: `cargo run --example bank_transfer` (LOCKCHECK=panic, the default in tests, would stop the
//! second thread at the bad line; this example sets `warn` to print the report and finish).

use lockcheck::Mutex;
use std::sync::{mpsc, Arc};

struct Bank {
    accounts: Vec<Mutex<i64>>,
}

impl Bank {
    fn new(n: usize) -> Bank {
        Bank {
            accounts: (0..n).map(|_| Mutex::named("account", 100)).collect(),
        }
    }

    /// Locks `from` then `to`: the bug. (Locking the lower index first would fix it.)
    fn transfer(&self, from: usize, to: usize, amount: i64) {
        let mut src = self.accounts[from].lock();
        let mut dst = self.accounts[to].lock();
        *src -= amount;
        *dst += amount;
    }
}

fn main() {
    lockcheck::set_action(lockcheck::Action::Warn);
    let bank = Arc::new(Bank::new(2));
    let (first_done, wait_first) = mpsc::channel();
    let (second_done, wait_second) = mpsc::channel::<()>();

    let b = bank.clone();
    let alice = lockcheck::thread::Builder::new()
        .name("alice".into())
        .spawn(move || {
            b.transfer(0, 1, 10);
            first_done.send(()).unwrap();
            // Stay alive while bob runs: the two threads are concurrent.
            wait_second.recv().unwrap();
        })
        .unwrap();
    wait_first.recv().unwrap();
    let b = bank.clone();
    let bob = lockcheck::thread::Builder::new()
        .name("bob".into())
        .spawn(move || {
            b.transfer(1, 0, 20);
            second_done.send(()).unwrap();
        })
        .unwrap();
    bob.join().unwrap();
    alice.join().unwrap();

    let found = lockcheck::violations();
    // One lock at a time: formatting both guards in one `println!` would hold both at once.
    let a = *bank.accounts[0].lock();
    let b = *bank.accounts[1].lock();
    println!(
        "balances: {a} and {b}; lockcheck found {} violation(s){}",
        found.len(),
        if lockcheck::ENABLED {
            ""
        } else {
            " (instrumentation is compiled out in this build)"
        }
    );
}
