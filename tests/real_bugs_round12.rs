//! Real deadlocks from public Rust projects, twelfth round, each reproduced with lockcheck's
//! locks swapped in and its recorded trace analyzed offline (`lockcheck analyze` must find what
//! the runtime found): ByroRedux's three component storages locked in a cycle by three systems
//! (a lock-order cycle of three locks across three threads, which only the scheduler's stages
//! kept apart), mise's single job permit held by a parent task that waits for the sub-task
//! needing it (`MISE_JOBS=1`: a job waiting on a job queued behind it), zuban's workspaces read
//! twice on one stack while a writer queues (a recursive read), and BAML's heap permits, a spawn
//! requesting a second permit behind a garbage collector's `acquire_many` of all of them on a
//! fair semaphore (found at run time in the order that hangs, and offline since the request
//! says what the runtime saw of the permits, see section 4), rust-lightning's consistency lock read again by a completed monitor
//! update while the background processor's write queues (a recursive read), and Block-STM's
//! rayon worker stealing, while it waits inside a parallel native, a sibling task that reads the
//! transaction status the worker writes (a self-deadlock of a thread pool), and agatedb's
//! compaction picker reading a level under the compaction status against a filler that writes
//! the status under the level's read, closed by a writer queued on the level (three threads, two
//! locks), and bb8's `InternalsGuard` dropped, by a request's timeout, under the pool's internals
//! lock that its `Drop` takes (a self-deadlock). Projects no earlier round covered, but for mise
//! and rust-lightning (new bugs of them).
//!
//! Found: nothing to fix in the runtime; one gap offline, since closed: BAML's permit requested
//! behind the queued `acquire_many` was a `self-deadlock` at run time but silent in `lockcheck
//! analyze` (the trace did not say that the queued request had the free permits); the request
//! now carries what the runtime saw (`short`), and the offline test runs. No sourced bug was
//! found for a barrier wait holding a lock or for a `OnceLock`/`LazyLock` re-entered across
//! threads (the queries are in README's round-12 paragraph).
//!
//! Each is reduced to its locking skeleton (not the projects' code: their lines are paraphrased
//! in the comments), cites its source, and is paired with the project's fix or a look-alike,
//! which must stay silent on both sides (runtime and trace). Every scenario runs under a
//! watchdog, ordered by hand-shakes and `__private::waits()`, never by a sleep. Recording is
//! process-wide, so the tests of this file run one at a time (`setup_serial`).

#[path = "support/real_bugs.rs"]
mod real_bugs;
mod support;

use lockcheck::{Action, ViolationKind};
use real_bugs::{caught, of_kind, offline_kinds, recorded, setup_serial};
use std::sync::mpsc;
use std::sync::Arc;
use support::markers::Markers;
use support::{blocked_on, found, wait_until};

/// This file's marker comments.
const M: Markers = Markers::new("real_bugs_round12.rs", include_str!("real_bugs_round12.rs"));

// ---------------------------------------------------------------------------------------------
// 1. Three locks, three threads: ByroRedux's ECS checks its lock order at run time
//    (`BYRO_LOCK_ORDER_CHECK=1`), but its detector closed only cycles of two edges; an audit
//    found "a complete 3-cycle already exists in the live edge graph today": three systems each
//    write-lock one component storage and then read the next (A then B, B then C, C then A),
//    every edge legal alone, "unreachable only because the three producers happen to sit in
//    three different scheduler stages. Restaging any one of them springs the trap". Source:
//    matiaszanolli/ByroRedux#2675 (the excerpt the search tool returned does not name the three
//    storages: they are `a`, `b`, `c` here). `lockcheck::RwLock`.
//    Reported: the cycle predicted from a run whose three systems never overlap (std threads,
//    one after the other: nothing orders them for lockcheck, as a parallel scheduler would not),
//    and the real hang, refused at the request that closes it. Silent: the three systems in
//    three stages that `lockcheck::thread::scope` runs one after the other (what kept the trap
//    shut: each stage's threads are joined before the next is spawned), and the three systems
//    run at once but taking their storages through one helper that locks in a fixed order.

mod byro {
    use lockcheck::RwLock;

    /// Three component storages.
    pub struct World {
        pub a: RwLock<Vec<u32>>,
        pub b: RwLock<Vec<u32>>,
        pub c: RwLock<Vec<u32>>,
    }

    /// The first system: writes `a` from `b`. `between`: once it holds `a`.
    pub fn system_ab(w: &World, between: impl FnOnce()) {
        let mut a = w.a.write(); // BYRO_AB_WRITE
        between();
        let b = w.b.read(); // BYRO_AB_READ
        a.extend(b.iter().copied());
    }

    /// The second system: writes `b` from `c`.
    pub fn system_bc(w: &World, between: impl FnOnce()) {
        let mut b = w.b.write(); // BYRO_BC_WRITE
        between();
        let c = w.c.read(); // BYRO_BC_READ
        b.extend(c.iter().copied());
    }

    /// The third system: writes `c` from `a`.
    pub fn system_ca(w: &World, between: impl FnOnce()) {
        let mut c = w.c.write(); // BYRO_CA_WRITE
        between();
        let a = w.a.read(); // BYRO_CA_READ
        c.extend(a.iter().copied());
    }

    /// The look-alike's helper: every system takes the three storages in one order (`a`, `b`,
    /// `c`), its own for writing, and runs `f` on them.
    pub fn with_storages(w: &World, f: impl FnOnce(&mut Vec<u32>, &mut Vec<u32>, &mut Vec<u32>)) {
        let mut a = w.a.write();
        let mut b = w.b.write();
        let mut c = w.c.write();
        f(&mut a, &mut b, &mut c);
    }

    /// A system: runs on the world, `between` once it holds its first storage.
    pub type System = fn(&World, &mut dyn FnMut());

    /// The three systems.
    pub const SYSTEMS: [System; 3] = [
        |w, f| system_ab(w, f),
        |w, f| system_bc(w, f),
        |w, f| system_ca(w, f),
    ];
}

fn byro_world(names: [&'static str; 3]) -> Arc<byro::World> {
    Arc::new(byro::World {
        a: lockcheck::RwLock::named(names[0], vec![1]),
        b: lockcheck::RwLock::named(names[1], vec![2]),
        c: lockcheck::RwLock::named(names[2], vec![3]),
    })
}

/// The three systems on three std threads, one after the other (each joined before the next is
/// spawned: lockcheck does not see std's spawns and joins, so nothing orders them).
fn byro_sequential(names: [&'static str; 3]) -> usize {
    let w = byro_world(names);
    for system in byro::SYSTEMS {
        let w = w.clone();
        std::thread::spawn(move || system(&w, &mut || {}))
            .join()
            .unwrap();
    }
    let n = w.a.read().len();
    n
}

/// The three systems at once, each holding its first storage before any asks for its second;
/// the third's request closes the cycle. Returns each thread's outcome.
fn byro_hang(names: [&'static str; 3]) -> Vec<Result<(), String>> {
    let w = byro_world(names);
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let mut go = Vec::new();
    let mut threads = Vec::new();
    for system in byro::SYSTEMS {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        go.push(go_tx);
        let (w, held_tx) = (w.clone(), held_tx.clone());
        threads.push(caught(move || {
            system(&w, &mut || {
                held_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            })
        }));
    }
    for _ in 0..3 {
        held_rx.recv().unwrap();
    }
    // The first two ask for their second storage and block; then the third asks.
    go[0].send(()).unwrap();
    wait_until("the first system blocked on b", || {
        blocked_on(names[1]) == 1
    });
    go[1].send(()).unwrap();
    wait_until("the second system blocked on c", || {
        blocked_on(names[2]) == 1
    });
    go[2].send(()).unwrap();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// The six sites of the cycle.
const BYRO_SITES: [&str; 6] = [
    "BYRO_AB_WRITE",
    "BYRO_AB_READ",
    "BYRO_BC_WRITE",
    "BYRO_BC_READ",
    "BYRO_CA_WRITE",
    "BYRO_CA_READ",
];

#[test]
fn three_systems_locking_three_storages_in_a_cycle_are_an_inversion_seen_without_a_hang() {
    let _g = setup_serial();
    const N: [&str; 3] = ["byro.a.seq", "byro.b.seq", "byro.c.seq"];
    // Reported, not panicking: the third system completes the cycle after the fact.
    lockcheck::set_action(Action::Warn);
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("byro-sequential.json", move || {
        tx.send(byro_sequential(N)).unwrap();
    });
    lockcheck::set_action(Action::Panic);
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap(), 2);
    let v = of_kind(ViolationKind::LockOrderInversion, N[0]);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    assert_eq!(v[0].edges.len(), 3, "{:#?}", v[0]);
    M.assert_sites(&v[0], &BYRO_SITES);
    assert_eq!(found(N[1]).len(), 1, "{:#?}", found(N[1]));
    assert_eq!(offline_kinds(&trace, N[0]), ["lock-order-inversion"]);
}

#[test]
fn three_systems_at_once_in_a_cycle_are_refused_at_the_request_that_closes_it() {
    let _g = setup_serial();
    const N: [&str; 3] = ["byro.a.hang", "byro.b.hang", "byro.c.hang"];
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("byro-hang.lct", move || {
        tx.send(byro_hang(N)).unwrap();
    });
    outcome.unwrap();
    let outcomes = rx.recv().unwrap();
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok(), "{outcomes:?}");
    let msg = outcomes[2]
        .as_ref()
        .expect_err("the closing request is refused");
    assert!(msg.contains("inversion"), "{msg}");
    let v = of_kind(ViolationKind::LockOrderInversion, N[0]);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &BYRO_SITES);
    assert_eq!(offline_kinds(&trace, N[0]), ["lock-order-inversion"]);
}

#[test]
fn the_three_systems_in_stages_joined_one_after_the_other_are_silent() {
    let _g = setup_serial();
    const N: [&str; 3] = ["byro.a.stages", "byro.b.stages", "byro.c.stages"];
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("byro-stages.lct", move || {
        let w = byro_world(N);
        // The scheduler: one scope per stage, so each stage's systems are joined before the
        // next stage's are spawned (two threads per stage, the second system with nothing to
        // do but a read of its own storage, as a stage runs several systems).
        for system in byro::SYSTEMS {
            lockcheck::thread::scope(|s| {
                s.spawn(|| system(&w, &mut || {}));
                s.spawn(|| w.a.read().len());
            });
        }
        tx.send(w.a.read().len()).unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap(), 2);
    for n in N {
        assert!(found(n).is_empty(), "{:#?}", found(n));
    }
    assert_eq!(offline_kinds(&trace, N[0]), Vec::<String>::new());
}

#[test]
fn the_three_systems_at_once_through_one_ordered_helper_are_silent() {
    let _g = setup_serial();
    const N: [&str; 3] = ["byro.a.ordered", "byro.b.ordered", "byro.c.ordered"];
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("byro-ordered.json", move || {
        let w = byro_world(N);
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let w = w.clone();
                std::thread::spawn(move || {
                    byro::with_storages(&w, |a, b, c| match i {
                        0 => a.extend(b.iter().copied()),
                        1 => b.extend(c.iter().copied()),
                        _ => c.extend(a.iter().copied()),
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        tx.send(w.a.read().len()).unwrap();
    });
    outcome.unwrap();
    assert!(rx.recv().unwrap() >= 2);
    for n in N {
        assert!(found(n).is_empty(), "{:#?}", found(n));
    }
    assert_eq!(offline_kinds(&trace, N[0]), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 2. A job waiting for a job queued behind it: mise runs tasks under a semaphore of `MISE_JOBS`
//    permits; a task whose `run` list mixes scripts and sub-task references (`{ task = "foo" }`)
//    held its permit while it injected the sub-task into the scheduler and waited for it
//    (`inject_and_wait`), and the sub-task needs a permit to run. With `MISE_JOBS=1` that is
//    "classic deadlock": the parent holds the only permit and waits for the sub-task that waits
//    for it. Source: jdx/mise#8976 (fixes jdx/mise#8967: "temporarily release the parent's
//    permit before `inject_and_wait`, re-acquire afterward"). mise's scheduler is tokio's; here
//    `lockcheck::Semaphore` of one permit, the sub-task a `lockcheck::thread` the parent joins.
//    Reported: a `deadlock` of the join and the permit, raised at the parent's join.
//    Look-alike: the fix, the permit given back for the wait.

mod mise_jobs {
    use lockcheck::Semaphore;

    /// A sub-task: runs under a permit of the scheduler's semaphore.
    pub fn sub_task(jobs: &Semaphore) -> u32 {
        let _permit = jobs.acquire(); // MISE_SUB_TASK_PERMIT
        7
    }

    /// The parent task: a script under its permit, then the sub-task injected and waited for
    /// (`wait_blocked`: called once the sub-task is spawned, returns once it waits). `fixed`:
    /// the permit given back for the wait and taken again after it.
    pub fn run_task(jobs: &'static Semaphore, fixed: bool, wait_blocked: impl FnOnce()) -> u32 {
        let mut permit = Some(jobs.acquire()); // MISE_PARENT_PERMIT
        let sub = lockcheck::thread::spawn(move || sub_task(jobs));
        if fixed {
            drop(permit.take());
        }
        wait_blocked();
        let n = sub.join().unwrap(); // MISE_INJECT_AND_WAIT
        if fixed {
            permit = Some(jobs.acquire());
        }
        drop(permit);
        n
    }
}

static MISE_JOBS_BUG: lockcheck::Semaphore = lockcheck::Semaphore::named("mise.jobs.bug", 1);
static MISE_JOBS_FIX: lockcheck::Semaphore = lockcheck::Semaphore::named("mise.jobs.fix", 1);

#[test]
fn a_parent_task_waiting_for_its_sub_task_under_the_only_job_permit_is_a_deadlock() {
    let _g = setup_serial();
    const N: &str = "mise.jobs.bug";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("mise-jobs.json", move || {
        let parent = caught(|| {
            mise_jobs::run_task(&MISE_JOBS_BUG, false, || {
                wait_until("the sub-task waits for the permit", || blocked_on(N) == 1)
            })
        });
        tx.send(parent.join().unwrap()).unwrap();
        // The parent's report gave the permit back: the sub-task runs and ends.
        wait_until("the sub-task ran", || {
            MISE_JOBS_BUG.available_permits() == 1
        });
    });
    outcome.unwrap();
    let msg = rx.recv().unwrap().expect_err("the join is refused");
    assert!(msg.contains("deadlock"), "{msg}");
    let v = of_kind(ViolationKind::Deadlock, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["MISE_PARENT_PERMIT", "MISE_SUB_TASK_PERMIT"]);
    // Offline, the analyzer's `lock-order-inversion` of the permit and the thread's end (a
    // join is a request of the end: docs/trace-format.md, "Thread ends and joins").
    assert_eq!(offline_kinds(&trace, N), ["lock-order-inversion"]);
}

#[test]
fn the_permit_given_back_for_the_wait_is_silent() {
    let _g = setup_serial();
    const N: &str = "mise.jobs.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("mise-jobs-fixed.lct", move || {
        tx.send(mise_jobs::run_task(&MISE_JOBS_FIX, true, || {}))
            .unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap(), 7);
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 3. A recursive read behind a queued writer: zuban, a Python language server, hung on Django
//    projects; after "looking at the Gist/code for hours" its author found "a case where
//    something reads workspaces twice" on one stack, while another thread write-locks the
//    workspaces between the two reads (std's `RwLock` documents that the second read may
//    deadlock then). Source: zubanls/zuban#314 ("Deadlock in Django projects"). Here the
//    first read is held across a lookup that reads the workspaces again.
//    `lockcheck::RwLock` (parking_lot's: a reader waits behind a queued writer).
//    Look-alike: the lookup handed the guard its caller holds (one read).

mod zuban {
    use lockcheck::RwLock;

    /// The workspaces: their root paths.
    pub struct Workspaces(pub RwLock<Vec<String>>);

    /// Whether `path` is inside a workspace (reads them itself, or uses `held`).
    pub fn in_workspace(ws: &Workspaces, path: &str, held: Option<&[String]>) -> bool {
        match held {
            Some(roots) => roots.iter().any(|r| path.starts_with(r.as_str())),
            None => {
                let roots = ws.0.read(); // ZUBAN_SECOND_READ
                roots.iter().any(|r| path.starts_with(r.as_str()))
            }
        }
    }

    /// Diagnostics of a file: the workspaces read, then a lookup under that read. `between`:
    /// once the first read is held.
    pub fn diagnostics(ws: &Workspaces, path: &str, fixed: bool, between: impl FnOnce()) -> bool {
        let roots = ws.0.read(); // ZUBAN_FIRST_READ
        between();
        let held = if fixed { Some(&roots[..]) } else { None };
        !roots.is_empty() && in_workspace(ws, path, held)
    }
}

/// The diagnostics thread and a thread adding a workspace, which queues its write between the
/// diagnostics' reads. Returns (diagnostics, writer).
fn zuban_scenario(name: &'static str, fixed: bool) -> (Result<bool, String>, Result<(), String>) {
    let ws = Arc::new(zuban::Workspaces(lockcheck::RwLock::named(
        name,
        vec!["/src/app".to_string()],
    )));
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let wd = ws.clone();
    let diagnostics = caught(move || {
        zuban::diagnostics(&wd, "/src/app/models.py", fixed, || {
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        })
    });
    held_rx.recv().unwrap();
    let ww = ws.clone();
    let writer = caught(move || ww.0.write().push("/src/lib".to_string())); // ZUBAN_WRITE
    wait_until("the writer queued", || blocked_on(name) == 1);
    go_tx.send(()).unwrap();
    (diagnostics.join().unwrap(), writer.join().unwrap())
}

#[test]
fn workspaces_read_twice_on_one_stack_while_a_writer_queues_are_a_recursive_read() {
    let _g = setup_serial();
    const N: &str = "zuban.workspaces.bug";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("zuban.json", move || {
        tx.send(zuban_scenario(N, false)).unwrap();
    });
    outcome.unwrap();
    let (diagnostics, writer) = rx.recv().unwrap();
    let msg = diagnostics.expect_err("the second read is refused");
    assert!(msg.contains("recursive"), "{msg}");
    writer.unwrap();
    let v = of_kind(ViolationKind::RecursiveRead, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["ZUBAN_FIRST_READ", "ZUBAN_SECOND_READ"]);
    assert_eq!(offline_kinds(&trace, N), ["recursive-read"]);
}

#[test]
fn the_lookup_handed_the_callers_guard_is_silent() {
    let _g = setup_serial();
    const N: &str = "zuban.workspaces.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("zuban-fixed.lct", move || {
        tx.send(zuban_scenario(N, true)).unwrap();
    });
    outcome.unwrap();
    let (diagnostics, writer) = rx.recv().unwrap();
    assert!(diagnostics.unwrap());
    writer.unwrap();
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 4. A permit requested behind an `acquire_many` of every permit, on a fair semaphore: BAML's
//    engine hands out heap permits from a tokio semaphore; a task's `spawn` allocated the
//    child's future under a second, fresh permit while the parent task still held its own,
//    and the garbage collector parks every task with `acquire_many(MAX_PERMITS)`. tokio's
//    semaphore is fair (first come, first served, `acquire_many` included): the collector,
//    queued first, waits for the parent's permit, and the parent's second `acquire`, for which
//    permits are free, is queued behind the collector. Flaky under heap pressure, every time
//    under a forced GC. Source: BoundaryML/baml#3635 ("Fix baml_tests hang: ... spawn/GC permit
//    deadlock"; the fix deletes the second acquisition: the child is allocated under the
//    parent's permit). `lockcheck::tokio::Semaphore`, its `blocking_*` acquisitions on threads.
//    Reported, in the order that hangs: tokio hands the free permits to the collector queued at
//    the head (it waits for the last one), so the parent's request finds none available and no
//    other holder of any: only its own permit can complete the collector, whose permits it
//    waits behind, a `self-deadlock` of the parent at its second `acquire` (the report says
//    "acquires a lock it already holds": the permits it lacks are the queued collector's).
//    Not predicted from a run whose collector came after the parent's second permit (one
//    thread holding two of four permits is silent; README, "does not catch"). Found offline
//    too, with the same sites: the parent's `request` says what the runtime saw, the
//    semaphore short of permits with no other holder holding any (`"short":"alone"`, see
//    docs/trace-format.md), and the analyzer applies the runtime's rule to the parent's own
//    permits as its stream replays them.
//    Look-alike: the fix, the child allocated under the parent's permit, silent (and checked).

/// The heap's permits.
const BAML_PERMITS: u32 = 4;

/// The parent task (holding one permit, it allocates its child: under a second permit, or,
/// `fixed`, under its own) and the collector (`acquire_many` of every permit), which queues
/// once the parent holds its permit. Returns (parent, collector): the permits each saw.
fn baml_scenario(name: &'static str, fixed: bool) -> (Result<u32, String>, Result<u32, String>) {
    let heap = Arc::new(lockcheck::tokio::Semaphore::named(
        name,
        BAML_PERMITS as usize,
    ));
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let hp = heap.clone();
    let parent = caught(move || {
        let main = hp.blocking_acquire().unwrap(); // BAML_PARENT_PERMIT
        held_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        let child = if fixed {
            None
        } else {
            Some(hp.blocking_acquire().unwrap()) // BAML_SPAWN_PERMIT
        };
        let n = 1 + child.map_or(0, |c| c.num_permits() as u32);
        drop(main);
        n
    });
    held_rx.recv().unwrap();
    let hc = heap.clone();
    let collector = caught(move || {
        let all = hc.blocking_acquire_many(BAML_PERMITS).unwrap(); // BAML_GC_PARK
        all.num_permits() as u32
    });
    wait_until("the collector queued", || blocked_on(name) == 1);
    go_tx.send(()).unwrap();
    (parent.join().unwrap(), collector.join().unwrap())
}

#[test]
fn a_second_permit_requested_behind_a_collectors_acquire_many_of_all_is_a_self_deadlock() {
    let _g = setup_serial();
    const N: &str = "baml.heap.bug";
    let (tx, rx) = mpsc::channel();
    let (outcome, _trace) = recorded("baml.json", move || {
        tx.send(baml_scenario(N, false)).unwrap();
    });
    outcome.unwrap();
    let (parent, collector) = rx.recv().unwrap();
    let msg = parent.expect_err("the second permit is refused");
    assert!(msg.contains("self-deadlock"), "{msg}");
    // The parent's permit given back by its panic, the collector parks every permit.
    assert_eq!(collector.unwrap(), BAML_PERMITS);
    let v = of_kind(ViolationKind::SelfDeadlock, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["BAML_PARENT_PERMIT", "BAML_SPAWN_PERMIT"]);
}

#[test]
fn the_second_permit_behind_the_collector_is_found_offline_too() {
    let _g = setup_serial();
    const N: &str = "baml.heap.offline";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("baml-offline.lct", move || {
        tx.send(baml_scenario(N, false)).unwrap();
    });
    outcome.unwrap();
    let (parent, _) = rx.recv().unwrap();
    assert!(parent.is_err());
    assert_eq!(offline_kinds(&trace, N), ["self-deadlock"]);
    // The runtime's sites: the second permit requested, the parent's own held.
    let report = lockcheck_analyze::analyze(&[trace.to_path_buf()], &Default::default()).unwrap();
    let v = report
        .violations
        .iter()
        .find(|v| v.locks.iter().any(|l| l.class.contains(N)))
        .expect("found offline");
    let e = &v.edges[0];
    let site = e.site.as_deref().unwrap_or_default();
    assert!(site.contains(&M.at("BAML_SPAWN_PERMIT")), "{site}");
    let held: Vec<_> = e.held.iter().filter_map(|h| h.site.as_deref()).collect();
    assert!(
        held.iter().any(|h| h.contains(&M.at("BAML_PARENT_PERMIT"))),
        "{held:?}"
    );
}

#[test]
fn the_child_allocated_under_the_parents_permit_is_silent() {
    let _g = setup_serial();
    const N: &str = "baml.heap.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("baml-fixed.lct", move || {
        tx.send(baml_scenario(N, true)).unwrap();
    });
    outcome.unwrap();
    let (parent, collector) = rx.recv().unwrap();
    assert_eq!(parent.unwrap(), 1);
    assert_eq!(collector.unwrap(), BAML_PERMITS);
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 5. A recursive read of a fair lock: rust-lightning's `ChannelManager` guards its persistence
//    with `total_consistency_lock`, a `FairRwLock` (a reader waits behind a queued writer, on
//    every platform). `get_and_clear_pending_msg_events` read-locked it and called
//    `process_pending_monitor_events`; a `MonitorEvent::Completed` among them (async monitor
//    persistence) called `ChannelManager::channel_monitor_updated`, which read-locked it again.
//    The background processor persisting the manager write-locks it (`write()`); queued between
//    the two reads, it hung both ("on Linux machines, we get random hangs"). Source:
//    lightningdevkit/rust-lightning#2000 ("Deadlock when using async monitor persistence"); its
//    follow-up, lightningdevkit/rust-lightning#2006 ("Refuse recursive read locks"), made the
//    project's own lock-order checks refuse a second read on one thread. An earlier round cited
//    rust-lightning#2190, another bug. `lockcheck::RwLock` (parking_lot's, fair as `FairRwLock`).
//    Look-alike: the completed update handled by a helper that runs under the caller's read (not
//    necessarily the project's fix, which the search tool's excerpt does not show).

mod ldk {
    use lockcheck::RwLock;

    /// The manager: its consistency lock, and the channels' pending monitor updates.
    pub struct ChannelManager {
        pub total_consistency_lock: RwLock<()>,
        pub updated: lockcheck::Mutex<Vec<u64>>,
    }

    /// `channel_monitor_updated`, the public entry: takes the consistency lock's read itself.
    pub fn channel_monitor_updated(cm: &ChannelManager, channel: u64) {
        let _persistence = cm.total_consistency_lock.read(); // LDK_SECOND_READ
        monitor_updated_locked(cm, channel);
    }

    /// The update's work, under a read its caller holds.
    pub fn monitor_updated_locked(cm: &ChannelManager, channel: u64) {
        cm.updated.lock().push(channel);
    }

    /// `get_and_clear_pending_msg_events`: under the consistency lock's read, the pending monitor
    /// events processed (one completed update). `between`: once the read is held.
    pub fn get_and_clear_pending_msg_events(
        cm: &ChannelManager,
        fixed: bool,
        between: impl FnOnce(),
    ) {
        let _persistence = cm.total_consistency_lock.read(); // LDK_FIRST_READ
        between();
        // `process_pending_monitor_events`: a `MonitorEvent::Completed` for channel 42.
        if fixed {
            monitor_updated_locked(cm, 42);
        } else {
            channel_monitor_updated(cm, 42);
        }
    }

    /// The background processor's `persist_manager`: the manager written under the write lock.
    pub fn persist_manager(cm: &ChannelManager) -> usize {
        let _persistence = cm.total_consistency_lock.write(); // LDK_PERSIST_WRITE
        cm.updated.lock().len()
    }
}

/// The event handler and the background processor, which queues its write between the handler's
/// two reads. Returns (handler, persister).
fn ldk_scenario(name: &'static str, fixed: bool) -> (Result<(), String>, Result<usize, String>) {
    let cm = Arc::new(ldk::ChannelManager {
        total_consistency_lock: lockcheck::RwLock::named(name, ()),
        updated: lockcheck::Mutex::new(Vec::new()),
    });
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let ch = cm.clone();
    let handler = caught(move || {
        ldk::get_and_clear_pending_msg_events(&ch, fixed, || {
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        })
    });
    held_rx.recv().unwrap();
    let cp = cm.clone();
    let persister = caught(move || ldk::persist_manager(&cp));
    wait_until("the persister queued", || blocked_on(name) == 1);
    go_tx.send(()).unwrap();
    (handler.join().unwrap(), persister.join().unwrap())
}

#[test]
fn a_completed_monitor_update_reading_the_consistency_lock_again_is_a_recursive_read() {
    let _g = setup_serial();
    const N: &str = "ldk.total_consistency_lock.bug";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("ldk.lct", move || {
        tx.send(ldk_scenario(N, false)).unwrap();
    });
    outcome.unwrap();
    let (handler, persister) = rx.recv().unwrap();
    let msg = handler.expect_err("the second read is refused");
    assert!(msg.contains("recursive"), "{msg}");
    assert_eq!(persister.unwrap(), 0);
    let v = of_kind(ViolationKind::RecursiveRead, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["LDK_FIRST_READ", "LDK_SECOND_READ"]);
    assert_eq!(offline_kinds(&trace, N), ["recursive-read"]);
}

#[test]
fn the_update_handled_under_the_callers_read_is_silent() {
    let _g = setup_serial();
    const N: &str = "ldk.total_consistency_lock.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("ldk-fixed.json", move || {
        tx.send(ldk_scenario(N, true)).unwrap();
    });
    outcome.unwrap();
    let (handler, persister) = rx.recv().unwrap();
    handler.unwrap();
    assert_eq!(persister.unwrap(), 1);
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 6. A pool's worker that blocks is not idle: Block-STM's workers ran on a rayon pool, and "a
//    worker that blocks inside a Move native's nested `par_iter()` ... can pick up a sibling
//    worker task, and that stolen task can then block on state the original task still holds:
//    the writer-preferring `RwLock` over per-txn status in `scheduler.rs`": the thread waits for
//    itself. Source: movement-network/aptos-core#422 ("Fix deadlock in rayon pool": "This makes
//    Block-STM workers plain OS threads via `std::thread::scope`"). The same mechanism as
//    rayon-rs/rayon#592 (round 3, a `Mutex`); here an `RwLock` written by the executing task and
//    read by the stolen one, and the fix's scoped threads. `lockcheck::RwLock`; the pool's wait
//    is a loop that runs the queued sibling on the waiting thread, as rayon's `wait_until` does.
//    Look-alike: the fix, each worker on a thread of its own (`lockcheck::thread::scope`): the
//    sibling waits for the status on its own thread, and nothing is nested.

mod block_stm {
    use lockcheck::RwLock;

    /// Per-transaction status (the scheduler's `txn_status`).
    pub struct Scheduler {
        pub txn_status: RwLock<Vec<u8>>,
    }

    /// Executing transaction `i`: its status written for the whole execution, and a native that
    /// forks a parallel part (`par`: what the pool does while it waits for the part).
    pub fn execute(s: &Scheduler, i: usize, par: impl FnOnce()) {
        let mut status = s.txn_status.write(); // STM_EXECUTING_WRITE
        par();
        status[i] = 2;
    }

    /// A sibling worker task: validates transaction `i` by reading its status.
    pub fn validate(s: &Scheduler, i: usize) -> u8 {
        s.txn_status.read()[i] // STM_VALIDATE_READ
    }
}

/// Transaction 0 executed while its sibling (validating it) is queued. `fixed`: each task on a
/// scoped thread of its own (the sibling waits for the status there); else the sibling is
/// stolen by the executing worker while it waits for its parallel part. Returns the validated
/// status.
fn block_stm_scenario(name: &'static str, fixed: bool) -> Result<u8, String> {
    let s = Arc::new(block_stm::Scheduler {
        txn_status: lockcheck::RwLock::named(name, vec![1, 1]),
    });
    if fixed {
        let s = &*s;
        return Ok(lockcheck::thread::scope(|scope| {
            let (started_tx, started_rx) = mpsc::channel::<()>();
            let executor = scope.spawn(move || {
                block_stm::execute(s, 0, || {
                    started_tx.send(()).unwrap();
                    wait_until("the sibling waits for the status", || blocked_on(name) == 1);
                })
            });
            started_rx.recv().unwrap();
            let validator = scope.spawn(move || block_stm::validate(s, 0));
            executor.join().unwrap();
            validator.join().unwrap()
        }));
    }
    let (tx, rx) = mpsc::channel();
    let sibling: Box<dyn FnOnce() + Send> = {
        let s = s.clone();
        Box::new(move || tx.send(block_stm::validate(&s, 0)).unwrap())
    };
    let worker = caught(move || {
        block_stm::execute(&s, 0, || {
            // The native's `par_iter` waits for its stolen half and, meanwhile, runs the
            // sibling queued on this worker.
            sibling();
        })
    });
    worker.join().unwrap()?;
    Ok(rx.recv().unwrap())
}

#[test]
fn a_stolen_sibling_reading_the_status_its_worker_writes_is_a_self_deadlock() {
    let _g = setup_serial();
    const N: &str = "stm.txn_status.bug";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("block-stm.json", move || {
        tx.send(block_stm_scenario(N, false)).unwrap();
    });
    outcome.unwrap();
    let msg = rx.recv().unwrap().expect_err("the stolen read is refused");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = of_kind(ViolationKind::SelfDeadlock, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["STM_EXECUTING_WRITE", "STM_VALIDATE_READ"]);
    assert_eq!(offline_kinds(&trace, N), ["self-deadlock"]);
}

#[test]
fn workers_on_scoped_threads_of_their_own_are_silent() {
    let _g = setup_serial();
    const N: &str = "stm.txn_status.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("block-stm-fixed.lct", move || {
        tx.send(block_stm_scenario(N, true)).unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap().unwrap(), 2);
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 7. Three compactors, two locks and a queued writer: agatedb's `LevelsController` keeps each
//    level of the LSM tree under an `RwLock` and the compaction status under another.
//    `fill_tables_l0_to_lbase` read-locks L0 and the base level and then write-locks the
//    status (`compare_and_add`); `pick_compact_levels` read-locked the status and, under it,
//    each level. Two read locks against a write: a third compactor replacing the base level's
//    tables (`run_compact_def`) queues its write behind the first compactor's read, the picker's
//    read of the level waits behind that writer, and the first compactor's status write waits
//    for the picker's read. ThreadSanitizer reported the inversion in agatedb's CI. Source:
//    tikv/agatedb#61 ("lock order inversion in LevelsController": the level's read acquired in
//    `pick_compact_levels` while holding the status, against the write in
//    `fill_tables_l0_to_lbase`); the code since reads the status in a scope of its own ("We must
//    ensure lock order, by only obtain one lock at a time"). `lockcheck::RwLock` (agatedb's is
//    std's: on Linux both block a new reader behind a waiting writer).
//    Look-alike: the fix, the status read and released before the level is read.

mod agate {
    use lockcheck::RwLock;

    /// The compaction status and the base level (its tables' sizes).
    pub struct Core {
        pub cpt_status: RwLock<Vec<u64>>,
        pub base_level: RwLock<Vec<u64>>,
    }

    /// `fill_tables_l0_to_lbase`: the level read, then the status written. `between`: once the
    /// level's read is held.
    pub fn fill_tables_l0_to_lbase(c: &Core, between: impl FnOnce()) {
        let level = c.base_level.read(); // AGATE_FILL_LEVEL_READ
        between();
        let mut status = c.cpt_status.write(); // AGATE_FILL_STATUS_WRITE
        status.push(level.len() as u64);
    }

    /// `pick_compact_levels`: the level's size less what is being deleted from it. `fixed`: one
    /// lock at a time. `between`: once the status's read is held (bug), or read (fix).
    pub fn pick_compact_levels(c: &Core, fixed: bool, between: impl FnOnce()) -> u64 {
        if fixed {
            let del_size = { c.cpt_status.read().len() as u64 };
            between();
            let level = c.base_level.read();
            return level.iter().sum::<u64>().saturating_sub(del_size);
        }
        let status = c.cpt_status.read(); // AGATE_PICK_STATUS_READ
        between();
        let level = c.base_level.read(); // AGATE_PICK_LEVEL_READ
        level
            .iter()
            .sum::<u64>()
            .saturating_sub(status.len() as u64)
    }

    /// `run_compact_def`: the level's tables replaced.
    pub fn replace_tables(c: &Core) {
        c.base_level.write().push(8); // AGATE_REPLACE_LEVEL_WRITE
    }
}

/// The three compactors: the filler holding the level's read, the picker holding (bug) the
/// status's read, the replacer queued on the level; then the filler asks for the status (it
/// waits, bug) and the picker for the level. Returns (filler, picker, replacer).
fn agate_scenario(
    status: &'static str,
    level: &'static str,
    fixed: bool,
) -> (Result<(), String>, Result<u64, String>, Result<(), String>) {
    let c = Arc::new(agate::Core {
        cpt_status: lockcheck::RwLock::named(status, Vec::new()),
        base_level: lockcheck::RwLock::named(level, vec![4, 4]),
    });
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (fill_go_tx, fill_go_rx) = mpsc::channel::<()>();
    let (pick_go_tx, pick_go_rx) = mpsc::channel::<()>();
    let (cf, fill_held) = (c.clone(), held_tx.clone());
    let filler = caught(move || {
        agate::fill_tables_l0_to_lbase(&cf, || {
            fill_held.send(()).unwrap();
            fill_go_rx.recv().unwrap();
        })
    });
    held_rx.recv().unwrap();
    let cp = c.clone();
    let picker = caught(move || {
        agate::pick_compact_levels(&cp, fixed, || {
            held_tx.send(()).unwrap();
            pick_go_rx.recv().unwrap();
        })
    });
    held_rx.recv().unwrap();
    let cr = c.clone();
    let replacer = caught(move || agate::replace_tables(&cr));
    wait_until("the replacer queued on the level", || {
        blocked_on(level) == 1
    });
    fill_go_tx.send(()).unwrap();
    if !fixed {
        wait_until("the filler waits for the status", || {
            blocked_on(status) == 1
        });
    }
    pick_go_tx.send(()).unwrap();
    (
        filler.join().unwrap(),
        picker.join().unwrap(),
        replacer.join().unwrap(),
    )
}

#[test]
fn a_picker_reading_a_level_under_the_status_against_a_filler_and_a_queued_writer_is_an_inversion()
{
    let _g = setup_serial();
    const S: &str = "agate.cpt_status.bug";
    const L: &str = "agate.base_level.bug";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("agate.json", move || {
        tx.send(agate_scenario(S, L, false)).unwrap();
    });
    outcome.unwrap();
    let (filler, picker, replacer) = rx.recv().unwrap();
    // The picker's request closes the cycle: stopped, its status read released, the filler and
    // then the replacer go on.
    let msg = picker.expect_err("reported before it hangs");
    assert!(
        msg.contains("lock order inversion") || msg.contains("deadlock"),
        "{msg}"
    );
    filler.unwrap();
    replacer.unwrap();
    let v = of_kind(ViolationKind::LockOrderInversion, S);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(
        &v[0],
        &[
            "AGATE_FILL_LEVEL_READ",
            "AGATE_FILL_STATUS_WRITE",
            "AGATE_PICK_STATUS_READ",
            "AGATE_PICK_LEVEL_READ",
        ],
    );
    let offline = offline_kinds(&trace, S);
    assert!(
        offline.iter().any(|k| k == "lock-order-inversion"),
        "{offline:?}"
    );
}

#[test]
fn the_status_read_and_released_before_the_level_is_silent() {
    let _g = setup_serial();
    const S: &str = "agate.cpt_status.fix";
    const L: &str = "agate.base_level.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("agate-fixed.lct", move || {
        tx.send(agate_scenario(S, L, true)).unwrap();
    });
    outcome.unwrap();
    let (filler, picker, replacer) = rx.recv().unwrap();
    filler.unwrap();
    assert_eq!(picker.unwrap(), 16);
    replacer.unwrap();
    assert!(found(S).is_empty(), "{:#?}", found(S));
    assert!(found(L).is_empty(), "{:#?}", found(L));
    assert_eq!(offline_kinds(&trace, S), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 8. A pool's guard dropped under the lock its `Drop` takes: bb8 returned a connection to its
//    pool under the pool's internals lock (a `parking_lot::Mutex`), building an
//    `InternalsGuard` for it there; with requests run under a timeout on tokio, the timeout
//    dropped everything while the guard was on the stack, and `InternalsGuard::drop` locked the
//    internals again: "we hit a deadlock since the lock is not reentrant". Source: djc/bb8#154
//    ("Reentrant deadlock", bb8 0.8.0; attempted fixes djc/bb8#164 and djc/bb8#186).
//    `lockcheck::Mutex`.
//    Look-alike: the guard dropped once the internals are released (not necessarily the
//    project's fix).

mod bb8 {
    use lockcheck::Mutex;
    use std::sync::Arc;

    /// The pool's internals: its idle connections.
    pub struct Pool {
        pub internals: Mutex<Vec<u32>>,
    }

    /// A connection on its way back, which gives it back to the idle list when dropped.
    pub struct InternalsGuard {
        pub conn: Option<u32>,
        pub pool: Arc<Pool>,
    }

    impl Drop for InternalsGuard {
        fn drop(&mut self) {
            if let Some(conn) = self.conn.take() {
                self.pool.internals.lock().push(conn); // BB8_GUARD_DROP_LOCK
            }
        }
    }

    /// Returning `conn` to the pool; `cancelled`: the request's timeout fires meanwhile, and
    /// the guard is dropped where it stands. `fixed`: the guard outlives the internals' lock.
    pub fn put_back(pool: &Arc<Pool>, conn: u32, fixed: bool) -> usize {
        let guard;
        let idle = {
            let internals = pool.internals.lock(); // BB8_PUT_BACK_LOCK
            guard = InternalsGuard {
                conn: Some(conn),
                pool: pool.clone(),
            };
            if !fixed {
                // The timeout: everything on the stack is dropped, the guard first.
                drop(guard);
                return internals.len();
            }
            internals.len()
        };
        drop(guard);
        idle + 1
    }
}

fn bb8_scenario(name: &'static str, fixed: bool) -> Result<usize, String> {
    let pool = Arc::new(bb8::Pool {
        internals: lockcheck::Mutex::named(name, vec![1]),
    });
    caught(move || bb8::put_back(&pool, 2, fixed))
        .join()
        .unwrap()
}

#[test]
fn a_pool_guard_dropped_under_the_internals_lock_its_drop_takes_is_a_self_deadlock() {
    let _g = setup_serial();
    const N: &str = "bb8.internals.bug";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("bb8.json", move || {
        tx.send(bb8_scenario(N, false)).unwrap();
    });
    outcome.unwrap();
    let msg = rx.recv().unwrap().expect_err("the relock is refused");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = of_kind(ViolationKind::SelfDeadlock, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["BB8_PUT_BACK_LOCK", "BB8_GUARD_DROP_LOCK"]);
    assert_eq!(offline_kinds(&trace, N), ["self-deadlock"]);
}

#[test]
fn the_guard_dropped_after_the_internals_are_released_is_silent() {
    let _g = setup_serial();
    const N: &str = "bb8.internals.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("bb8-fixed.lct", move || {
        tx.send(bb8_scenario(N, true)).unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap().unwrap(), 2);
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}
