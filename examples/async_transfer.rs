//! The AB-BA between tasks: two async transfers in opposite directions lock the two accounts
//! (tokio mutexes, held across the `.await` of an audit call) in opposite orders. The tasks here
//! never actually deadlock (the second transfer starts after the first one is done), yet
//! lockcheck reports the inversion, naming both tasks and their `.await` lines, the first time
//! both orders have been seen.
//!
//! The only change from plain tokio is the import: `use lockcheck::tokio::Mutex` for
//! `use tokio::sync::Mutex` (feature `tokio` of lockcheck).
//!
//! Run: `cargo run --example async_transfer` (LOCKCHECK=panic, the default in tests, would stop
//! the second task at the bad line; this example sets `warn` to print the report and finish).

use lockcheck::tokio::Mutex;
use std::sync::Arc;

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
    async fn transfer(&self, from: usize, to: usize, amount: i64) {
        let mut src = self.accounts[from].lock().await;
        audit(from).await; // tokio locks may be held across an `.await`: that is what they are for
        let mut dst = self.accounts[to].lock().await;
        *src -= amount;
        *dst += amount;
    }
}

async fn audit(_account: usize) {
    tokio::task::yield_now().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    lockcheck::set_action(lockcheck::Action::Warn);
    let bank = Arc::new(Bank::new(2));

    let b = bank.clone();
    lockcheck::tokio::spawn(async move { b.transfer(0, 1, 10).await })
        .await
        .unwrap();
    let b = bank.clone();
    lockcheck::tokio::spawn(async move { b.transfer(1, 0, 20).await })
        .await
        .unwrap();

    let found = lockcheck::violations();
    let a = *bank.accounts[0].lock().await;
    let b = *bank.accounts[1].lock().await;
    println!(
        "balances: {a} and {b}; lockcheck found {} violation(s)",
        found.len()
    );
    for v in &found {
        println!("  {}: {}", v.kind.name(), v.sites().join(", "));
    }
}
