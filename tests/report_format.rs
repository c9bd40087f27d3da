//! How a violation names things: `{:?}` is short and structured, `{}` is the report, and threads
//! are named by their std name and `ThreadId`, or, unnamed, by the function that spawned them.

use lockcheck::{RwLock, Violation, ViolationKind};

/// The recursive-read report about the lock named `class`.
fn report_on(class: &str) -> Violation {
    lockcheck::violations()
        .into_iter()
        .find(|v| v.kind == ViolationKind::RecursiveRead && v.involves(class))
        .expect("the recursive read is reported")
}

/// Reads `rw` twice on a thread it spawns through lockcheck (a hazard: reported, goes on).
/// Returns the handle and the line of the `spawn` call. Never inlined: the report names it as
/// the spawning function, also in a release build.
#[inline(never)]
fn spawn_reader(rw: &'static RwLock<u32>) -> (lockcheck::thread::JoinHandle<()>, u32) {
    let line = line!() + 1;
    let h = lockcheck::thread::spawn(move || {
        let _a = rw.read();
        let _b = rw.read();
    });
    (h, line)
}

#[test]
fn reports_name_threads_and_debug_is_short() {
    if !lockcheck::ENABLED {
        return;
    }
    lockcheck::set_action(lockcheck::Action::Warn);

    // An unnamed thread: `<unnamed>`, its ThreadId, and who spawned it where.
    static UNNAMED: RwLock<u32> = RwLock::named("report_format::unnamed", 0);
    let (h, spawn_line) = spawn_reader(&UNNAMED);
    let id = h.thread().id();
    h.join().unwrap();
    let v = report_on("report_format::unnamed");
    let name = &v.edges[0].thread;
    let want = format!(
        "<unnamed> ({id:?}, spawned by report_format::spawn_reader at {}:{spawn_line}:",
        file!()
    );
    assert!(name.starts_with(&want), "{name:?}\nwant {want:?}...");
    assert!(v.to_string().contains(&want), "{v}");

    // A named thread: its name and its ThreadId.
    static NAMED: RwLock<u32> = RwLock::named("report_format::named", 0);
    let h = lockcheck::thread::Builder::new()
        .name("reader".into())
        .spawn(|| {
            let _a = NAMED.read();
            let _b = NAMED.read();
        })
        .unwrap();
    let id = h.thread().id();
    h.join().unwrap();
    let v = report_on("report_format::named");
    assert_eq!(v.edges[0].thread, format!("reader ({id:?})"));

    // A std thread: unnamed, no spawn site known, still its ThreadId.
    static STD: RwLock<u32> = RwLock::named("report_format::std", 0);
    let h = std::thread::spawn(|| {
        let _a = STD.read();
        let _b = STD.read();
    });
    let id = h.thread().id();
    h.join().unwrap();
    let v = report_on("report_format::std");
    assert_eq!(v.edges[0].thread, format!("<unnamed> ({id:?})"));

    // `{:?}`: short, structured, no backtrace frames; `{}`: the report.
    let debug = format!("{v:?}");
    for part in [
        "Violation {",
        "kind: RecursiveRead",
        "thread: \"<unnamed> (ThreadId(",
        "thread_id: ",
        "held: RwLock `report_format::std`",
        "acquired: RwLock `report_format::std`",
        file!(),
    ] {
        assert!(debug.contains(part), "{part:?} not in {debug}");
    }
    for absent in ["<unknown>", "backtrace", "frames", "message", "hint"] {
        assert!(!debug.contains(absent), "{absent:?} in {debug}");
    }
    assert!(debug.len() < 600, "{} chars: {debug}", debug.len());
    assert!(format!("{v:#?}").lines().count() < 20, "{v:#?}");
    assert_eq!(v.to_string(), v.message);
    assert!(v
        .to_string()
        .starts_with("lockcheck: possible self-deadlock"));
}
