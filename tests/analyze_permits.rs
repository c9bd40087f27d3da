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
    // request counted as one permit, so no wait cycle is claimed from what the trace cannot
    // say. What it does say is a permit nest: `main` and two tasks each requested a permit
    // holding one of the 3 (a task's request is ordered with nothing: its clock is unknown).
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
        let run = analyze_json(&[path], &["--no-config"]);
        let found = run.json()["violations"].as_array().unwrap().clone();
        assert_eq!(found.len(), 1, "{name}: {found:#?}");
        let edges = found[0]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 3, "{name}: main and the two tasks");
        assert!(
            edges
                .iter()
                .all(|e| e["from"] == "pool" && e["acquired"] == "pool"),
            "{name}: a permit nest of pool alone: {found:#?}"
        );
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

#[test]
fn a_semaphore_shrunk_to_one_permit_after_the_dependencies_stays_no_gate() {
    // The same two jobs under the semaphore of 4, then 3 of its permits forgotten (tokio's
    // `forget_permits`): the dependencies were made while both jobs could be inside at once,
    // so the cycle stays a deadlock, as the runtime reports it (its note that the semaphore has
    // several permits lasts as long as the semaphore). Before, the count left at the end (1)
    // made it a gate offline.
    let text = std::fs::read_to_string(fixture("semaphore-gate-several.json")).unwrap();
    let shrunk = format!("{text}{}\n", r#"{"e":"forget","l":1,"n":3}"#);
    let dir = Scratch::new("permits");
    let path = dir.join("semaphore-gate-shrunk.json");
    std::fs::write(&path, shrunk).unwrap();
    assert_eq!(kinds(path), ["lock-order-inversion"]);
}

/// A trace where `holders` (thread or task numbers) each take a permit of a semaphore of 2 and
/// request another, one after the other.
fn permit_nest_trace(holders: [u64; 2]) -> String {
    let mut t = String::from(
        r#"{"e":"header","version":1,"pid":100,"program":"fixture"}
{"e":"class","c":1,"key":"pool","kind":"semaphore"}
{"e":"lock","l":1,"c":1,"permits":2}
{"e":"site","s":1,"loc":"src/pool.rs:10:5"}
{"e":"site","s":2,"loc":"src/pool.rs:11:5"}
"#,
    );
    for h in holders {
        t += &format!(
            r#"{{"e":"request","t":{h},"l":1,"m":"p","s":1}}
{{"e":"acquire","t":{h},"l":1,"m":"p","s":1}}
{{"e":"request","t":{h},"l":1,"m":"p","s":2}}
{{"e":"acquire","t":{h},"l":1,"m":"p","s":2}}
{{"e":"release","t":{h},"l":1}}
{{"e":"release","t":{h},"l":1}}
"#
        );
    }
    t
}

/// `analyze`'s text report of `trace`.
fn text_of(name: &str, trace: &str) -> String {
    let dir = Scratch::new("permits");
    let path = dir.join(name);
    std::fs::write(&path, trace).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lockcheck"))
        .args(["analyze", "--no-config"])
        .arg(&path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_permit_nest_is_named_as_one_semaphore_whose_permits_the_holders_request_holding_some() {
    // Threads, and tasks (bit 62 of their number: the rule covers them too, as the runtime).
    let task = |n: u64| (1u64 << 62) | n;
    for (holders, who) in [([1, 2], "2 threads"), ([task(1), task(2)], "2 tasks")] {
        let text = text_of("permit-nest.json", &permit_nest_trace(holders));
        let want = format!(
            "lock-order inversion (permits): {who} each request permits of pool while holding some of its permits: each can wait for permits only the others give back"
        );
        assert!(text.contains(&want), "{want}\n{text}");
        assert!(!text.contains("between pool, pool"), "{text}");
    }
}
