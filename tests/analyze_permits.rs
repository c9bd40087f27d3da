//! Semaphore permits counted exactly offline: a request of `acquire_many(n)` says `n`, and
//! `forget_permits` says how many permits left the semaphore (`forget`), so that `lockcheck
//! analyze` finds the wait cycles of a pool that counting one permit per request, or the permits
//! the semaphore started with, misses; and stays silent when the permits suffice.
//! (`tests/async_offline_equals_runtime.rs` checks the same on traces of real runs.)

mod common;

#[path = "support/scratch.rs"]
mod scratch;

use common::{analyze_json, fixture};
use scratch::Scratch;

/// The kinds of the violations `analyze` reports on `name`.
fn kinds(path: std::path::PathBuf) -> Vec<String> {
    let run = analyze_json(&[path], &["--no-config"]);
    assert!(run.code == Some(0) || run.code == Some(1), "{}", run.stderr);
    run.json()["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_pool_deadlock_through_acquire_many_is_reported() {
    // A pool of 3: two tasks hold one each and ask for 2 more at once; one is free.
    assert_eq!(
        kinds(fixture("semaphore-many.json")),
        ["lock-order-inversion"]
    );
}

#[test]
fn acquire_many_with_enough_permits_is_silent() {
    // A pool of 6: 1 + 2 each fit.
    assert!(kinds(fixture("semaphore-many-enough.json")).is_empty());
}

#[test]
fn forgotten_permits_make_a_pool_deadlock_real() {
    // A pool of 3 of which 1 is forgotten after the trace learnt it: 1 + 1 each do not fit.
    assert_eq!(
        kinds(fixture("semaphore-forget.json")),
        ["lock-order-inversion"]
    );
}

#[test]
fn forgotten_permits_leaving_enough_are_silent() {
    // A pool of 5 of which 1 is forgotten: 1 + 1 each fit in the 4 left.
    assert!(kinds(fixture("semaphore-forget-enough.json")).is_empty());
}

#[test]
fn traces_of_older_writers_still_read_one_permit_per_request() {
    // The same run as an older writer traced it (no `n`, no `forget`): read without error, each
    // request counted as one permit, so no cycle is claimed from what the trace cannot say.
    for name in ["semaphore-many.json", "semaphore-forget.json"] {
        let text = std::fs::read_to_string(fixture(name)).unwrap();
        let old: String = text
            .lines()
            .filter(|l| !l.contains(r#""e":"forget""#))
            .map(|l| l.replace(r#","n":2"#, "") + "\n")
            .collect();
        assert_ne!(old, text);
        let dir = Scratch::new("permits");
        let path = dir.join(name);
        std::fs::write(&path, old).unwrap();
        assert!(kinds(path).is_empty(), "{name}");
    }
}

#[test]
fn a_semaphore_of_several_permits_is_no_gate() {
    // Two jobs hold a permit each of a semaphore of 4 and lock two mutexes in opposite orders:
    // both can be inside at once, so the cycle is a deadlock.
    assert_eq!(
        kinds(fixture("semaphore-gate-several.json")),
        ["lock-order-inversion"]
    );
}

#[test]
fn a_semaphore_of_one_permit_is_a_gate() {
    // The same under a semaphore of 1: one job at a time, filtered as `gate-lock`.
    assert!(kinds(fixture("semaphore-gate-one.json")).is_empty());
    // Permits the trace does not give: a gate, as the runtime's rule (which learns them where
    // the trace declares them).
    let text = std::fs::read_to_string(fixture("semaphore-gate-several.json")).unwrap();
    let unknown = text.replace(r#","permits":4"#, "");
    assert_ne!(unknown, text);
    let dir = Scratch::new("permits");
    let path = dir.join("semaphore-gate-unknown.json");
    std::fs::write(&path, unknown).unwrap();
    assert!(kinds(path).is_empty());
}
