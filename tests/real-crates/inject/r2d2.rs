//! Injected by `tests/real-crates/swap.sh` into r2d2's tests, with r2d2's locks swapped: an AB-BA
//! made through r2d2's public API only. Each pool's timeout handler runs while the pool holds its
//! internal mutex (`get_timeout`), and peeks at the other pool's `state()`, which takes that
//! pool's mutex: pool A then B on one thread, B then A on another. lockcheck must report it once,
//! at r2d2's own lines, without the threads ever meeting.
use r2d2::event::TimeoutEvent;
use r2d2::{HandleEvent, ManageConnection, Pool};
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug)]
struct Mgr;

impl ManageConnection for Mgr {
    type Connection = ();
    type Error = std::io::Error;
    fn connect(&self) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn is_valid(&self, _: &mut ()) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn has_broken(&self, _: &mut ()) -> bool {
        false
    }
}

static A: OnceLock<Pool<Mgr>> = OnceLock::new();
static B: OnceLock<Pool<Mgr>> = OnceLock::new();

/// A timeout handler that looks at the other pool.
#[derive(Debug)]
struct Peek(&'static OnceLock<Pool<Mgr>>);

impl HandleEvent for Peek {
    fn handle_timeout(&self, _: TimeoutEvent) {
        if let Some(other) = self.0.get() {
            let _ = other.state();
        }
    }
}

fn pool(peek: &'static OnceLock<Pool<Mgr>>) -> Pool<Mgr> {
    Pool::builder()
        .max_size(1)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_millis(50))
        .event_handler(Box::new(Peek(peek)))
        .build(Mgr)
        .unwrap()
}

/// Times out on `p` (its only connection is held), so its handler runs under its mutex.
fn time_out(p: &'static OnceLock<Pool<Mgr>>) {
    std::thread::spawn(move || {
        let p = p.get().unwrap();
        let _held = p.get().unwrap();
        assert!(p.get_timeout(Duration::from_millis(20)).is_err());
    })
    .join()
    .unwrap();
}

#[test]
fn lockcheck_reports_pools_peeking_at_each_other_in_timeout_handlers() {
    lockcheck::set_action(lockcheck::Action::Warn);
    A.set(pool(&B)).unwrap();
    B.set(pool(&A)).unwrap();
    time_out(&A);
    assert!(lockcheck::violations().is_empty(), "one order alone is fine");
    time_out(&B);
    let found = lockcheck::violations();
    assert_eq!(found.len(), 1, "reported once: {:#?}", found);
    let v = &found[0];
    assert_eq!(v.kind, lockcheck::ViolationKind::LockOrderInversion, "{}", v);
    for e in &v.edges {
        // r2d2 is edition 2015: explicit format arguments.
        assert!(e.site.starts_with("src/lib.rs:"), "the acquisition is r2d2's: {}", v);
        assert!(e.held_site.starts_with("src/lib.rs:"), "so is the held one: {}", v);
    }
}
