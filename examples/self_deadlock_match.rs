//! A self-deadlock through a `match` temporary: the guard created in the scrutinee lives until the
//! end of the whole `match`, so locking again in an arm waits for itself forever. lockcheck
//! reports it before blocking; under `LOCKCHECK=panic` (the default) the thread panics at that
//! line instead of hanging.
//!
//! Run: `cargo run --example self_deadlock_match`

use lockcheck::Mutex;

struct Cache {
    entries: Mutex<Vec<String>>,
}

impl Cache {
    fn get_or_insert(&self, key: &str) -> usize {
        match self.entries.lock().iter().position(|e| e == key) {
            Some(i) => i,
            // The scrutinee's guard is still alive here.
            None => {
                let mut entries = self.entries.lock();
                entries.push(key.to_owned());
                entries.len() - 1
            }
        }
    }
}

fn main() {
    lockcheck::set_action(lockcheck::Action::Panic);
    let worker = std::thread::spawn(|| {
        let cache = Cache {
            entries: Mutex::named("cache.entries", Vec::new()),
        };
        cache.get_or_insert("a")
    });
    match worker.join() {
        Ok(i) => println!(
            "inserted at {i} (instrumentation compiled out: this would hang in a real build)"
        ),
        Err(_) => println!(
            "the worker panicked at the second lock instead of hanging; {} violation(s) recorded",
            lockcheck::violations().len()
        ),
    }
}
