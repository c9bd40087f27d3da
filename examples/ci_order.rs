//! Takes two locks in the order given on the command line: `ci_order ab` locks `accounts` then
//! `ledger`, `ci_order ba` the reverse. One run alone has one order and nothing to report; two
//! runs recording into one directory hold both orders, and `lockcheck analyze DIR` finds the
//! inversion, as it does for two tests of a suite that each take one order (`docs/ci.md`).
//!
//! ```sh
//! LOCKCHECK_TRACE="$PWD/target/lockcheck/{pid}.json" cargo run --example ci_order -- ab
//! LOCKCHECK_TRACE="$PWD/target/lockcheck/{pid}.json" cargo run --example ci_order -- ba
//! cargo run -- analyze target/lockcheck/     # exit code 1: the inversion
//! ```

use lockcheck::Mutex;

fn main() {
    let order = std::env::args().nth(1).unwrap_or_else(|| "ab".into());
    let accounts = Mutex::named("accounts", 0u64);
    let ledger = Mutex::named("ledger", Vec::<u64>::new());
    match order.as_str() {
        "ab" => {
            let mut a = accounts.lock();
            let mut l = ledger.lock();
            *a += 1;
            l.push(*a);
        }
        "ba" => {
            let mut l = ledger.lock();
            let mut a = accounts.lock();
            *a += 1;
            l.push(*a);
        }
        other => {
            eprintln!("usage: ci_order ab|ba (got {other:?})");
            std::process::exit(2);
        }
    }
    println!("ci_order: took the locks in order {order}");
}
