//! Real deadlocks from public Rust projects, tenth round, each reproduced with lockcheck's locks
//! swapped in and **its recorded trace analyzed offline** (`lockcheck analyze` must find what the
//! runtime found): a completion that read-locks again the shared WAL its caller still reads while
//! a writer queues (turso), a connector callback that write-locks the inputs its controller loop
//! reads (feldera), a window callback re-entered by the platform call it makes under the app's
//! lock (zed's gpui), a `Drop` that locks the tree its last owner's `poison` holds (propolis), a
//! kernel allocator's `dealloc` relocking the free-frame list whose growth freed memory (a hobby
//! OS), three lazy cells initialized in a cycle through the first (mise), a tokio `Mutex` locked
//! twice in one task (ROCm's spur), a condvar's guard kept across a join of the thread that
//! signals it (rust-lang/rust#67457), an `RwLock` upgrade waiting for a reader that waits for the
//! upgrader's transaction and a recursive `read()` behind a queued writer (nimiq). Kinds or
//! projects the first nine rounds did not cover.
//!
//! Found: a blocking upgrade's wait for the readers was no wait of the wait-for graph, so
//! nimiq's cycle hung unreported when its lock order was not reported first (order checking off,
//! or that order reported already); now it waits as a write does (see section 9).
//!
//! Each is reduced to its locking skeleton (not the projects' code: their lines are paraphrased
//! in the comments), cites its source, and is paired with the project's fix or a look-alike,
//! which must stay silent on both sides (runtime and trace). Every scenario runs under a
//! watchdog, ordered by hand-shakes and `__private::waits()`, never by a sleep. Recording is
//! process-wide, so the tests of this file run one at a time (`serial`).

#[path = "support/real_bugs.rs"]
mod real_bugs;
mod support;

use lockcheck::ViolationKind;
use real_bugs::{of_kind, of_kind_at, offline_kinds, recorded, setup_serial};
use std::sync::mpsc;
use support::markers::Markers;
use support::{blocked_on, found, wait_until};

/// This file's marker comments.
const M: Markers = Markers::new("real_bugs_round10.rs", include_str!("real_bugs_round10.rs"));

// ---------------------------------------------------------------------------------------------
// 1. A completion that read-locks the shared WAL again while its caller's read guard is alive,
//    a writer queued between: turso's WAL read path took the `SharedWalFile` read lock, handed a
//    reference into it to `begin_read_wal_frame`, and the read's completion, run on the same
//    thread, read-locked the shared WAL again. parking_lot's `RwLock` is task-fair: a reader
//    blocks while a writer waits, and the writer (another connection checkpointing or
//    appending) waits for the first read. The `write-throughput` benchmark hung with two
//    threads or more. Source: tursodatabase/turso#3132 ("Fix SharedWalFile deadlock in
//    multithreaded context": "thread 1: takes readlock ...; thread 2: tries to acquire write lock
//    elsewhere; thread 1: tries to re-acquire read lock in the completion"); the same rule broken
//    again in tursodatabase/turso#4509 ("avoid recursive read locks": `WalFile::new` under the
//    `shared_wal` read lock, read-locking it again). `lockcheck::RwLock` (parking_lot's).
//    Look-alike: the fix, the shared lock not held beyond the frame's lookup.

mod turso {
    use lockcheck::RwLock;

    /// The WAL shared by connections: its frames.
    pub struct SharedWal {
        pub frames: Vec<u64>,
    }

    /// The completion of a frame read: checks the frame against the shared WAL.
    fn complete(shared: &RwLock<SharedWal>, frame: u64) -> u64 {
        let wal = shared.read(); // TURSO_COMPLETION_READ
        frame + wal.frames.len() as u64
    }

    /// A connection's frame read. `between`: what happens after the lookup, before the
    /// completion runs (the test lets the writer queue there).
    pub fn read_frame(shared: &RwLock<SharedWal>, fixed: bool, between: impl FnOnce()) -> u64 {
        if fixed {
            let frame = shared.read().frames[0];
            between();
            return complete(shared, frame);
        }
        let wal = shared.read(); // TURSO_READ
        let frame = wal.frames[0];
        between();
        // `wal` is still alive: the reference into it went to the read.
        let r = complete(shared, frame);
        drop(wal);
        r
    }
}

/// A reader and a writer of the shared WAL named `name`: the writer comes once the reader holds
/// (or, fixed, has looked up) its frame, and the completion runs once the writer is queued (or,
/// fixed, done). Returns the reader's outcome.
fn turso_scenario(name: &'static str, fixed: bool) -> Result<u64, String> {
    use lockcheck::RwLock;
    use std::sync::Arc;
    let shared = Arc::new(RwLock::named(name, turso::SharedWal { frames: vec![7, 8] }));
    let (looked_up_tx, looked_up_rx) = mpsc::channel::<()>();
    let writer_shared = shared.clone();
    let writer = std::thread::spawn(move || {
        looked_up_rx.recv().unwrap();
        writer_shared.write().frames.push(9); // TURSO_WRITE
    });
    let reader = std::thread::spawn(move || {
        let seen = shared.clone();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            turso::read_frame(&shared, fixed, move || {
                looked_up_tx.send(()).unwrap();
                if fixed {
                    wait_until("the writer is done", || seen.read().frames.len() == 3);
                } else {
                    wait_until("the writer is queued", || blocked_on(name) == 1);
                }
            })
        }))
        .map_err(|e| support::panic_message(&*e))
    });
    let outcome = reader.join().unwrap();
    writer.join().unwrap();
    outcome
}

#[test]
fn a_completion_rereading_the_shared_wal_while_a_writer_queues_is_a_recursive_read() {
    let _g = setup_serial();
    const N: &str = "turso.wal.bug";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("turso.json", move || {
        tx.send(turso_scenario(N, false)).unwrap();
    });
    outcome.unwrap();
    let msg = rx.recv().unwrap().expect_err("reported before it hangs");
    assert!(msg.contains("recursive read"), "{msg}");
    let v = of_kind(ViolationKind::RecursiveRead, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["TURSO_COMPLETION_READ", "TURSO_READ"]);
    // (A realized cycle may be reported beside it: the same hazard, the writer in it.)
    for v in found(N) {
        assert!(
            matches!(
                v.kind,
                ViolationKind::RecursiveRead | ViolationKind::Deadlock
            ),
            "{v:#?}"
        );
    }
    let offline = offline_kinds(&trace, N);
    assert!(offline.iter().any(|k| k == "recursive-read"), "{offline:?}");
}

#[test]
fn the_shared_wal_released_before_the_completion_is_silent() {
    let _g = setup_serial();
    const N: &str = "turso.wal.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("turso-fixed.lct", move || {
        tx.send(turso_scenario(N, true)).unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap(), Ok(7 + 3));
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 2. A callback that write-locks what its caller read-holds: feldera's controller thread took
//    the read lock of `ControllerStatus::inputs` and called `InputReader::queue` on each input
//    connector; a connector that pushed its last records called `ControllerStats::completed`,
//    which found it finished and called `start_dependencies` to unpause the connectors waiting
//    for it, and `start_input_endpoint` took the *write* lock of `inputs` to clear their
//    `paused` flag: std's `RwLock` blocks that writer behind the thread's own read, forever.
//    Source: feldera/feldera#3656 ("Deadlock with connector orchestration": "the same thread
//    took a read lock and then attempted to take a write lock on ControllerStatus::inputs");
//    feldera/feldera#3307 and #3308 were an earlier read after a write of a manager's `RwLock`.
//    std's API (`lockcheck::sync::RwLock`).
//    Look-alike: the flag turned into an `AtomicBool` (the fix's type), here set through the
//    read guard the loop already holds. (The fix itself took a second *read* lock there: a
//    recursive read, which lockcheck reports when a writer exists, as feldera's do when
//    connectors are created or destroyed.)

mod feldera {
    use lockcheck::sync::RwLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// An input endpoint: paused until the endpoint it depends on has finished.
    pub struct Endpoint {
        pub paused: bool,
        pub paused_flag: AtomicBool,
        pub depends_on: Option<usize>,
    }

    /// The controller's status: its inputs.
    pub struct Status {
        pub inputs: RwLock<Vec<Endpoint>>,
    }

    impl Status {
        /// `start_input_endpoint`, the bug's way: write-locks the inputs to unpause one.
        fn start_input_endpoint(&self, ep: usize) {
            self.inputs.write().unwrap()[ep].paused = false; // FELDERA_WRITE
        }

        /// `ControllerStats::completed` of endpoint `done`: starts its dependents.
        fn completed(&self, done: usize, inputs: Option<&[Endpoint]>) {
            match inputs {
                // The look-alike: through the guard the caller holds.
                Some(eps) => {
                    for ep in eps.iter().filter(|e| e.depends_on == Some(done)) {
                        ep.paused_flag.store(false, Ordering::SeqCst);
                    }
                }
                None => {
                    // The bug: the dependents found, then each started by index.
                    let dependents: Vec<usize> = (0..2).filter(|&i| i != done).collect();
                    for ep in dependents {
                        self.start_input_endpoint(ep);
                    }
                }
            }
        }

        /// The controller loop's pass: queues every connector under the read lock; the first
        /// connector finishes there.
        pub fn flush_inputs(&self, fixed: bool) {
            let inputs = self.inputs.read().unwrap(); // FELDERA_READ
            for (i, _ep) in inputs.iter().enumerate() {
                // `InputReader::queue`: the connector pushes its records; the first is done.
                if i == 0 {
                    self.completed(i, fixed.then_some(&inputs[..]));
                }
            }
        }
    }

    /// Two inputs, the second waiting for the first.
    pub fn status() -> Status {
        let ep = |depends_on: Option<usize>| Endpoint {
            paused: depends_on.is_some(),
            paused_flag: AtomicBool::new(depends_on.is_some()),
            depends_on,
        };
        Status {
            inputs: RwLock::new(vec![ep(None), ep(Some(0))]), // FELDERA_INPUTS
        }
    }

    /// The look-alike's status (a class of its own).
    pub fn fixed_status() -> Status {
        let ep = |depends_on: Option<usize>| Endpoint {
            paused: depends_on.is_some(),
            paused_flag: AtomicBool::new(depends_on.is_some()),
            depends_on,
        };
        Status {
            inputs: RwLock::new(vec![ep(None), ep(Some(0))]), // FELDERA_FIXED_INPUTS
        }
    }
}

#[test]
fn a_connector_callback_write_locking_the_inputs_its_loop_reads_is_a_self_deadlock() {
    let _g = setup_serial();
    let (outcome, trace) = recorded("feldera.lct", || feldera::status().flush_inputs(false));
    let msg = outcome.expect_err("reported before it hangs");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = of_kind_at(&M, ViolationKind::SelfDeadlock, "FELDERA_INPUTS");
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["FELDERA_WRITE", "FELDERA_READ"]);
    let offline = offline_kinds(&trace, &M.at("FELDERA_INPUTS"));
    assert_eq!(offline, ["self-deadlock"], "{offline:?}");
}

#[test]
fn dependents_unpaused_through_the_held_guard_are_silent() {
    let _g = setup_serial();
    let (outcome, trace) = recorded("feldera-fixed.json", || {
        let st = feldera::fixed_status();
        st.flush_inputs(true);
        let inputs = st.inputs.read().unwrap();
        // (The bool of the bug's way untouched; the flag cleared.)
        assert!(inputs[1].paused);
        assert!(!inputs[1]
            .paused_flag
            .load(std::sync::atomic::Ordering::SeqCst));
    });
    outcome.unwrap();
    assert!(M.found_at("FELDERA_FIXED_INPUTS").is_empty());
    assert_eq!(
        offline_kinds(&trace, &M.at("FELDERA_FIXED_INPUTS")),
        Vec::<String>::new()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A platform callback re-entered by the platform call made under the app's lock: gpui's
//    macOS `window_did_change_key_status` (the delegate callback AppKit calls when a window
//    becomes or resigns key) took a parking_lot mutex and, holding it, went on into AppKit:
//    making one window key makes AppKit resign the previous one, which calls the same callback
//    synchronously, on the same thread, and its lock blocks for ever on the mutex the first call
//    holds (the sample: `window_did_change_key_status` -> `resignKeyWindow` ->
//    `window_did_change_key_status` -> `RawMutex::lock_slow`). Zed froze when a window opened
//    from a popup, when switching between windows, and at window restoration. Sources:
//    zed-industries/zed#50151 ("UI deadlock in window_did_change_key_status during window
//    activation"), #42821, fixed by #51035 ("Fix deadlock during re-entrant key status
//    changes"); the rule it broke was written down in zed-industries/zed#4027 ("Don't hold
//    platform lock while calling user callbacks") and #6456 ("run cocoa methods while we're not
//    holding our internal locks"). `lockcheck::Mutex` (parking_lot's).
//    Look-alike: that rule, the lock released before the call into the platform.

mod gpui {
    use lockcheck::Mutex;

    /// The key window and the events seen (window, became key).
    pub type State = (Option<usize>, Vec<(usize, bool)>);

    /// The app's state behind the platform lock.
    pub struct App {
        pub state: Mutex<State>,
    }

    /// AppKit's `makeKeyAndOrderFront:`: resigns the previous key window first, calling its
    /// delegate synchronously.
    fn make_key(app: &App, previous: Option<usize>, fixed: bool) {
        if let Some(prev) = previous {
            key_status_changed(app, prev, false, fixed);
        }
    }

    /// The delegate callback: `window` became key (`is_key`) or resigned.
    pub fn key_status_changed(app: &App, window: usize, is_key: bool, fixed: bool) {
        if fixed {
            let previous = {
                let mut st = app.state.lock(); // GPUI_FIXED_LOCK
                st.1.push((window, is_key));
                if is_key {
                    st.0.replace(window)
                } else {
                    None
                }
            };
            if is_key {
                make_key(app, previous, true);
            }
            return;
        }
        let mut st = app.state.lock(); // GPUI_KEY_STATUS_LOCK
        st.1.push((window, is_key));
        if is_key {
            let previous = st.0.replace(window);
            // Into AppKit with the lock held.
            make_key(app, previous, false);
        }
    }
}

/// Window 1 is key; window 2 becomes key. Returns the events seen.
fn gpui_scenario(name: &'static str, fixed: bool) -> Vec<(usize, bool)> {
    let app = gpui::App {
        state: lockcheck::Mutex::named(name, (Some(1), Vec::new())),
    };
    gpui::key_status_changed(&app, 2, true, fixed);
    let events = app.state.lock().1.clone();
    events
}

#[test]
fn a_key_status_callback_reentered_by_the_platform_call_it_makes_under_the_lock_is_a_self_deadlock()
{
    let _g = setup_serial();
    const N: &str = "gpui.app.bug";
    let (outcome, trace) = recorded("gpui.json", || {
        gpui_scenario(N, false);
    });
    let msg = outcome.expect_err("reported before it hangs");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = of_kind(ViolationKind::SelfDeadlock, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    // The callback's one lock site, reached twice (the outer call and the re-entered one).
    M.assert_sites(&v[0], &["GPUI_KEY_STATUS_LOCK"]);
    assert_eq!(offline_kinds(&trace, N), ["self-deadlock"]);
}

#[test]
fn the_lock_released_before_calling_into_the_platform_is_silent() {
    let _g = setup_serial();
    const N: &str = "gpui.app.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("gpui-fixed.lct", move || {
        tx.send(gpui_scenario(N, true)).unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap(), [(2, true), (1, false)]);
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 4. A `Drop` that takes the lock its caller holds, the last reference handed over by a race:
//    propolis's accessor tree keeps its nodes under a mutex; `Accessor::poison` (run when a VM
//    is destroyed) took that mutex and, holding it, let go of the accessor's `Arc<Node>`; a
//    `Node`'s `Drop` locks the tree's mutex to unlink itself. Usually another owner still holds
//    the node and nothing is dropped there, but when the other owner's drop raced ahead, the
//    poison's was the last reference, and `Node::drop` waited for the mutex its own thread held
//    (the stack: `Machine::drop` -> `do_destroy` -> `Accessor::poison` -> `Arc::drop_slow` ->
//    `Node::drop` -> `mutex_lock`). Source: oxidecomputer/propolis#675 ("accessor Node::poison
//    deadlocks with racing drop"). `lockcheck::Mutex`.
//    Look-alike: the reference taken out under the lock and dropped after it is released.

mod propolis {
    use lockcheck::Mutex;
    use std::sync::Arc;

    /// The accessor tree: the names of its live nodes.
    pub struct Tree {
        pub nodes: Mutex<Vec<&'static str>>,
    }

    /// A node: unlinks itself from its tree when the last reference goes.
    pub struct Node {
        pub tree: Arc<Tree>,
        pub name: &'static str,
    }

    impl Drop for Node {
        fn drop(&mut self) {
            let name = self.name;
            self.tree.nodes.lock().retain(|n| *n != name); // PROPOLIS_NODE_DROP
        }
    }

    /// An accessor: its node, until poisoned.
    pub struct Accessor {
        pub tree: Arc<Tree>,
        pub node: Option<Arc<Node>>,
    }

    impl Accessor {
        /// `poison`: marks the tree poisoned and lets go of the node.
        pub fn poison(&mut self, fixed: bool) {
            let mut nodes = self.tree.nodes.lock(); // PROPOLIS_POISON_LOCK
            nodes.push("poisoned");
            let node = self.node.take();
            if fixed {
                drop(nodes);
                drop(node);
            } else {
                drop(node);
                drop(nodes);
            }
        }
    }
}

/// A node owned by an accessor and by another thread, whose drop comes first; then the
/// accessor is poisoned. Returns the tree's nodes left.
fn propolis_scenario(name: &'static str, fixed: bool) -> Vec<&'static str> {
    use std::sync::Arc;
    let tree = Arc::new(propolis::Tree {
        nodes: lockcheck::Mutex::named(name, vec!["vcpu0"]),
    });
    let node = Arc::new(propolis::Node {
        tree: tree.clone(),
        name: "vcpu0",
    });
    let mut accessor = propolis::Accessor {
        tree: tree.clone(),
        node: Some(node.clone()),
    };
    // The other owner's drop wins the race (joined: it is done before the poison).
    std::thread::spawn(move || drop(node)).join().unwrap();
    accessor.poison(fixed);
    let left = tree.nodes.lock().clone();
    left
}

#[test]
fn a_node_drop_locking_the_tree_its_last_owners_poison_holds_is_a_self_deadlock() {
    let _g = setup_serial();
    const N: &str = "propolis.tree.bug";
    let (outcome, trace) = recorded("propolis.lct", || {
        propolis_scenario(N, false);
    });
    let msg = outcome.expect_err("reported before it hangs");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = of_kind(ViolationKind::SelfDeadlock, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["PROPOLIS_NODE_DROP", "PROPOLIS_POISON_LOCK"]);
    assert_eq!(offline_kinds(&trace, N), ["self-deadlock"]);
}

#[test]
fn the_node_dropped_after_the_tree_is_released_is_silent() {
    let _g = setup_serial();
    const N: &str = "propolis.tree.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("propolis-fixed.json", move || {
        tx.send(propolis_scenario(N, true)).unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap(), ["poisoned"]);
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 5. An allocator's `dealloc` that locks what the allocation it runs under holds: a hobby
//    kernel's frame allocator kept its free frames in a `Vec` behind a spin `Mutex`; freeing a
//    frame pushed onto it, and a push that outgrew the vector reallocated it on the kernel heap,
//    freeing the old buffer; the heap's `dealloc` handed the freed memory's frames back to the
//    same free list, locking it again on the thread that held it. Source: nikofil/rust-os#2
//    ("Try locking free_frames to avoid a deadlock case": "If free_frames is being resized its
//    mutex is locked, which causes its old memory to be freed, calling dealloc and causing a
//    deadlock"; issue nikofil/rust-os#1). `lockcheck::Mutex`.
//    Look-alike: the fix, `dealloc` only tries the lock (and, when it is held, keeps the frames
//    aside for the next free).

mod frames {
    use lockcheck::Mutex;

    /// The frame allocator: its free frames, and the frames the heap freed while the list was
    /// busy (the look-alike's).
    pub struct Frames {
        pub free: Mutex<Vec<u64>>,
        pub deferred: std::sync::Mutex<Vec<u64>>,
    }

    impl Frames {
        /// The kernel heap's `dealloc` of a buffer whose frame is `frame`.
        fn dealloc(&self, frame: u64, fixed: bool) {
            if fixed {
                match self.free.try_lock() {
                    Some(mut free) => free.push(frame),
                    None => self.deferred.lock().unwrap().push(frame),
                }
            } else {
                self.free.lock().push(frame); // FRAMES_DEALLOC_LOCK
            }
        }

        /// Frees `frame`: a push that outgrows the list moves it to a new buffer and frees the
        /// old one (`old_buffer` is its frame).
        pub fn free_frame(&self, frame: u64, old_buffer: u64, fixed: bool) {
            let mut free = self.free.lock(); // FRAMES_FREE_LOCK
            if free.len() == free.capacity() {
                let mut grown = Vec::with_capacity(free.capacity() * 2 + 1);
                grown.extend(free.drain(..));
                *free = grown;
                // The old buffer goes back to the heap, the list still locked.
                self.dealloc(old_buffer, fixed);
            }
            free.push(frame);
        }
    }
}

/// A full free list of one frame; one more freed. Returns the free and the deferred frames.
fn frames_scenario(name: &'static str, fixed: bool) -> (Vec<u64>, Vec<u64>) {
    // Full: its capacity is its length.
    let mut v = vec![1];
    v.shrink_to_fit();
    let f = frames::Frames {
        free: lockcheck::Mutex::named(name, v),
        deferred: std::sync::Mutex::new(Vec::new()),
    };
    f.free_frame(2, 99, fixed);
    let free = f.free.lock().clone();
    let deferred = f.deferred.lock().unwrap().clone();
    (free, deferred)
}

#[test]
fn a_dealloc_relocking_the_free_list_whose_growth_freed_memory_is_a_self_deadlock() {
    let _g = setup_serial();
    const N: &str = "frames.free.bug";
    let (outcome, trace) = recorded("frames.json", || {
        frames_scenario(N, false);
    });
    let msg = outcome.expect_err("reported before it hangs");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = of_kind(ViolationKind::SelfDeadlock, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["FRAMES_DEALLOC_LOCK", "FRAMES_FREE_LOCK"]);
    assert_eq!(offline_kinds(&trace, N), ["self-deadlock"]);
}

#[test]
fn a_dealloc_that_only_tries_the_free_list_is_silent() {
    let _g = setup_serial();
    const N: &str = "frames.free.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("frames-fixed.lct", move || {
        tx.send(frames_scenario(N, true)).unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap(), (vec![1, 2], vec![99]));
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 6. Lazy cells initialized in a cycle through the first: mise's toolset is built lazily; with
//    `python.uv_venv_auto` set, building it loaded the npm or go backends' dependency
//    environment, which needs the config's environment, whose uv virtualenv directive resolved
//    the path to `uv`, which needs the toolset: the toolset's `LazyLock` forced from inside its
//    own initializer, on the same thread, waits for itself ("toolset -> (npm/go dep env) ->
//    config -> (uv path) -> toolset"). Sources: jdx/mise#4600 (mise hangs with `uv_venv_auto`
//    and an npm or go tool), fixed by jdx/mise#4900 ("fix deadlocks caused by uv_venv_auto":
//    "returning None or default values instead of trying to acquire the lock" while the cell is
//    being initialized; an earlier attempt, jdx/mise#4609, wrapped the value in a `Mutex` inside
//    the `LazyLock` and did not help). `lockcheck::sync::LazyLock`.
//    Look-alike: the fix, the uv path lookup answers `None` while the toolset is being built.

mod mise {
    use lockcheck::sync::LazyLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The toolset: its tools and the dependency environment.
    pub static TOOLSET: LazyLock<Vec<String>> = LazyLock::new(|| toolset(false)); // MISE_TOOLSET
    static DEP_ENV: LazyLock<Vec<String>> = LazyLock::new(|| config_env(false)); // MISE_CONFIG_ENV

    pub static FIXED_TOOLSET: LazyLock<Vec<String>> = LazyLock::new(|| toolset(true)); // MISE_FIXED_TOOLSET
    static FIXED_DEP_ENV: LazyLock<Vec<String>> = LazyLock::new(|| config_env(true)); // MISE_FIXED_CONFIG_ENV
    /// The fix's flag: the toolset is being built.
    static BUILDING: AtomicBool = AtomicBool::new(false);

    fn toolset(fixed: bool) -> Vec<String> {
        let mut tools = vec!["node@20".to_string(), "npm:prettier".to_string()];
        // The npm backend's dependency environment.
        if fixed {
            BUILDING.store(true, Ordering::SeqCst);
            tools.extend(FIXED_DEP_ENV.iter().cloned());
            BUILDING.store(false, Ordering::SeqCst);
        } else {
            tools.extend(DEP_ENV.iter().cloned());
        }
        tools
    }

    /// The config's environment: with `uv_venv_auto`, the virtualenv of `uv`.
    fn config_env(fixed: bool) -> Vec<String> {
        match uv_path(fixed) {
            Some(uv) => vec![format!("VIRTUAL_ENV from {uv}")],
            None => Vec::new(),
        }
    }

    /// Where `uv` is: a tool of the toolset.
    fn uv_path(fixed: bool) -> Option<String> {
        if fixed {
            if BUILDING.load(Ordering::SeqCst) {
                return None;
            }
            return FIXED_TOOLSET.iter().find(|t| t.starts_with("uv")).cloned();
        }
        TOOLSET.iter().find(|t| t.starts_with("uv")).cloned() // MISE_UV_PATH
    }
}

#[test]
fn a_toolset_forced_again_by_its_own_initializer_through_the_config_is_a_self_deadlock() {
    let _g = setup_serial();
    let (outcome, trace) = recorded("mise.lct", || {
        let _ = mise::TOOLSET.len();
    });
    let msg = outcome.expect_err("reported before it hangs");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = of_kind_at(&M, ViolationKind::SelfDeadlock, "MISE_TOOLSET");
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["MISE_UV_PATH"]);
    let offline = offline_kinds(&trace, &M.at("MISE_TOOLSET"));
    assert_eq!(offline, ["self-deadlock"], "{offline:?}");
}

#[test]
fn a_uv_path_lookup_that_answers_none_while_the_toolset_is_built_is_silent() {
    let _g = setup_serial();
    let (outcome, trace) = recorded("mise-fixed.json", || {
        assert_eq!(mise::FIXED_TOOLSET.len(), 2);
    });
    outcome.unwrap();
    for m in ["MISE_FIXED_TOOLSET", "MISE_FIXED_CONFIG_ENV"] {
        assert!(M.found_at(m).is_empty(), "{:#?}", M.found_at(m));
        assert_eq!(offline_kinds(&trace, &M.at(m)), Vec::<String>::new());
    }
}

// ---------------------------------------------------------------------------------------------
// 7. A tokio `Mutex` locked twice in one task: spur's node agent (`spurd`) kept its running jobs
//    in a `tokio::sync::Mutex<HashMap<..>>`; `exec_in_job` locked it to find the job's pid and,
//    the guard still alive, locked it again to read `has_pid_namespace`. tokio's `Mutex` is not
//    re-entrant: the task waits for itself, and the monitor loop, launches, cancels and streams,
//    all needing the running map, block behind it. Source: ROCm/spur#120 ("deadlock in
//    exec_in_job due to double mutex acquisition"; the fix: "a single lock scope that extracts
//    both pid and has_pid_namespace, then drops the guard before spawning the nsenter
//    subprocess"). `lockcheck::tokio::Mutex`, on a current-thread runtime.
//    Look-alike: the fix.

mod spur {
    use lockcheck::tokio::Mutex;
    use std::collections::HashMap;

    /// A running job.
    pub struct Job {
        pub pid: u32,
        pub has_pid_namespace: bool,
    }

    /// `exec_in_job`: what `nsenter` needs of job `id`.
    pub async fn exec_in_job(
        running: &Mutex<HashMap<u32, Job>>,
        id: u32,
        fixed: bool,
    ) -> Option<(u32, bool)> {
        if fixed {
            let (pid, ns) = {
                let r = running.lock().await;
                let job = r.get(&id)?;
                (job.pid, job.has_pid_namespace)
            };
            // (`nsenter` is spawned here, the map released.)
            return Some((pid, ns));
        }
        let r = running.lock().await; // SPUR_FIRST_LOCK
        let pid = r.get(&id)?.pid;
        let ns = running.lock().await.get(&id)?.has_pid_namespace; // SPUR_SECOND_LOCK
        drop(r);
        Some((pid, ns))
    }
}

/// One running job, and `exec_in_job` of it in a task on a current-thread runtime. Returns the
/// scenario's outcome (`Err`: the panic message) and `exec_in_job`'s answer.
fn spur_scenario(name: &'static str, fixed: bool) -> Result<Option<(u32, bool)>, String> {
    use std::collections::HashMap;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let (tx, rx) = mpsc::channel();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async move {
            let running = std::sync::Arc::new(lockcheck::tokio::Mutex::named(
                name,
                HashMap::from([(
                    7,
                    spur::Job {
                        pid: 4242,
                        has_pid_namespace: true,
                    },
                )]),
            ));
            let task =
                lockcheck::tokio::spawn(async move { spur::exec_in_job(&running, 7, fixed).await });
            tx.send(task.await).unwrap();
        })
    }));
    r.map_err(|e| support::panic_message(&*e))?;
    rx.recv()
        .unwrap()
        .map_err(|e| support::panic_message(&*e.into_panic()))
}

#[test]
fn a_tokio_mutex_locked_again_by_the_task_that_holds_it_is_a_self_deadlock() {
    let _g = setup_serial();
    const N: &str = "spur.running.bug";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("spur.json", move || {
        tx.send(spur_scenario(N, false)).unwrap();
    });
    outcome.unwrap();
    let msg = rx.recv().unwrap().expect_err("reported before it hangs");
    assert!(msg.contains("self-deadlock"), "{msg}");
    let v = of_kind(ViolationKind::SelfDeadlock, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["SPUR_SECOND_LOCK", "SPUR_FIRST_LOCK"]);
    assert_eq!(offline_kinds(&trace, N), ["self-deadlock"]);
}

#[test]
fn one_lock_scope_for_both_fields_is_silent() {
    let _g = setup_serial();
    const N: &str = "spur.running.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("spur-fixed.lct", move || {
        tx.send(spur_scenario(N, true)).unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap(), Ok(Some((4242, true))));
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 8. A condvar's guard kept after the wait, across a join of the thread that signals it: a
//    program's main thread waited on a condition variable that its SIGTERM handler (a future on
//    a tokio runtime) set under the condvar's mutex, and, the guard still alive after the wait,
//    shut the runtime down, which waits for the handler's task; a second SIGTERM arriving before
//    that made the handler lock the mutex again, which the main thread held while it waited for
//    the handler: neither moved. Source: rust-lang/rust#67457 ("Example CondVar code should
//    explicitly drop the MutexGuard after it's done with it", the reporter's real-world case:
//    "the second instance of the signal handler would block on the mutex, which would never get
//    released because the main thread was in turn blocked ... waiting for the signal handler
//    future's poll() method to return"); std's docs were changed by rust-lang/rust#73104 to show
//    the guard dropped early. The runtime's shutdown is a join of the handler's thread here.
//    `lockcheck::sync::{Mutex, Condvar}`, `lockcheck::thread`.
//    Look-alike: the guard dropped after the wait, before the shutdown.

/// The handler's thread signals twice (the second once the main thread has woken); the main
/// thread waits for the first, then joins the handler. Returns the main thread's outcome.
fn sigterm_scenario(fixed: bool) -> Result<u32, String> {
    use lockcheck::sync::{Condvar, Mutex};
    use std::sync::Arc;
    #[allow(clippy::if_same_then_else)]
    let state = if fixed {
        Arc::new((Mutex::new(0u32), Condvar::new())) // SIGTERM_FIXED_STATE
    } else {
        Arc::new((Mutex::new(0u32), Condvar::new())) // SIGTERM_STATE
    };
    let (woken_tx, woken_rx) = mpsc::channel::<()>();
    let handler_state = state.clone();
    let handler = lockcheck::thread::spawn(move || {
        let (m, cv) = &*handler_state;
        for signal in 0..2 {
            if signal == 1 {
                // The second SIGTERM, once the main thread is past its wait.
                woken_rx.recv().unwrap();
            }
            // (A report that stopped the main thread poisoned the mutex: go on.)
            let mut n = m.lock().unwrap_or_else(|e| e.into_inner()); // SIGTERM_HANDLER_LOCK
            *n += 1;
            cv.notify_all();
        }
    });
    let main = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (m, cv) = &*state;
        let mut n = m.lock().unwrap(); // SIGTERM_MAIN_LOCK
        while *n == 0 {
            n = cv.wait(n).unwrap(); // SIGTERM_WAIT
        }
        woken_tx.send(()).unwrap();
        if fixed {
            let seen = *n;
            drop(n);
            handler.join().unwrap();
            return seen;
        }
        // The handler is blocked on the mutex before the shutdown waits for it.
        wait_until("the handler waits for the mutex", || {
            lockcheck::__private::waits()
                .iter()
                .any(|(c, _)| c.contains(&M.at("SIGTERM_STATE")))
        });
        handler.join().unwrap(); // SIGTERM_SHUTDOWN_JOIN
        *n
    }))
    .map_err(|e| support::panic_message(&*e));
    main
}

#[test]
fn a_condvar_guard_kept_across_the_join_of_its_signalling_thread_is_a_deadlock() {
    let _g = setup_serial();
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("sigterm.lct", move || {
        tx.send(sigterm_scenario(false)).unwrap();
    });
    outcome.unwrap();
    let msg = rx.recv().unwrap().expect_err("reported before it hangs");
    assert!(msg.contains("deadlock"), "{msg}");
    let v = of_kind_at(&M, ViolationKind::Deadlock, "SIGTERM_STATE");
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["SIGTERM_SHUTDOWN_JOIN", "SIGTERM_HANDLER_LOCK"]);
    // (The analyzer names a cycle of lock instances and a thread's end by its rule: the join
    // is an edge of it, as the runtime's `deadlock` is in `tests/offline_equals_runtime.rs`.)
    let offline = offline_kinds(&trace, &M.at("SIGTERM_STATE"));
    assert_eq!(offline, ["lock-order-inversion"], "{offline:?}");
}

#[test]
fn the_guard_dropped_before_the_shutdown_is_silent() {
    let _g = setup_serial();
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("sigterm-fixed.json", move || {
        tx.send(sigterm_scenario(true)).unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap(), Ok(1));
    assert!(
        M.found_at("SIGTERM_FIXED_STATE").is_empty(),
        "{:#?}",
        M.found_at("SIGTERM_FIXED_STATE")
    );
    assert_eq!(
        offline_kinds(&trace, &M.at("SIGTERM_FIXED_STATE")),
        Vec::<String>::new()
    );
}

// ---------------------------------------------------------------------------------------------
// 9. An upgrade waiting for a reader that waits for the upgrader's other lock: nimiq's
//    `Blockchain::extend` held the blockchain's upgradable read lock and the database's write
//    transaction, then upgraded to the write lock; the mempool's `push_transaction` held a read
//    lock of the blockchain and asked for a write transaction. The upgrade waits for the
//    mempool's read guard, the mempool waits for the transaction `extend` holds. Source:
//    nimiq/core-rs-albatross#346 ("Deadlock detected": "`Blockchain::extend` holding a
//    `RwLockUpgradableReadGuard<Blockchain>` and a `WriteTransaction`; `Mempool` holding a
//    `RwLockReadGuard<Blockchain>` and trying to acquire `WriteTransaction`"; the fix:
//    "reordering the lock upgrade to happen before the transaction acquisition"). The write
//    transaction is a `lockcheck::Mutex` here, the blockchain a `lockcheck::RwLock`.
//    Look-alike: the fix, the upgrade before the transaction.
//
//    FOUND: lockcheck reported the lock order (the upgrade is ordered after the transaction, the
//    mempool's read before it), but the upgrade's wait for the readers was no wait of the
//    wait-for graph: with order checking off (or that order reported once already), the real
//    deadlock hung unreported, and `__private::waits()` did not show the upgrade waiting. A
//    blocking upgrade now waits as a write does (`hooks::upgrade_wait`): the cycle is a
//    `deadlock`, reported by the request that closes it.

mod nimiq_extend {
    use lockcheck::{Mutex, RwLock, RwLockUpgradableReadGuard};

    /// The blockchain and the database's write transaction.
    pub struct Chain {
        pub blockchain: RwLock<Vec<u32>>,
        pub txn: Mutex<u32>,
    }

    /// `Blockchain::extend`: `between` runs once it holds the upgradable read and the
    /// transaction (bug) or the upgradable read only (fixed), before the upgrade.
    pub fn extend(c: &Chain, fixed: bool, between: impl FnOnce()) {
        let bc = c.blockchain.upgradable_read(); // NIMIQ_EXTEND_UPGRADABLE
        if fixed {
            between();
            let mut bc = RwLockUpgradableReadGuard::upgrade(bc);
            let mut txn = c.txn.lock();
            bc.push(1);
            *txn += 1;
            return;
        }
        let mut txn = c.txn.lock(); // NIMIQ_EXTEND_TXN
        between();
        let mut bc = RwLockUpgradableReadGuard::upgrade(bc); // NIMIQ_EXTEND_UPGRADE
        bc.push(1);
        *txn += 1;
    }

    /// `Mempool::push_transaction`: reads the blockchain, then writes the transaction.
    /// `between`: once it holds the read lock.
    pub fn push_transaction(c: &Chain, between: impl FnOnce()) {
        let bc = c.blockchain.read(); // NIMIQ_MEMPOOL_READ
        between();
        let mut txn = c.txn.lock(); // NIMIQ_MEMPOOL_TXN
        *txn += bc.len() as u32;
    }
}

/// `extend` and `push_transaction` on two threads, the mempool's read taken once `extend`
/// holds what it holds before its upgrade, the transaction asked for once the upgrade waits
/// (fixed: once the upgrade is done or waiting). Returns each side's outcome.
fn nimiq_extend_scenario(
    name: &'static str,
    txn: &'static str,
    fixed: bool,
) -> (Result<(), String>, Result<(), String>) {
    use std::sync::Arc;
    let chain = Arc::new(nimiq_extend::Chain {
        blockchain: lockcheck::RwLock::named(name, Vec::new()),
        txn: lockcheck::Mutex::named(txn, 0),
    });
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (read_tx, read_rx) = mpsc::channel::<()>();
    let c = chain.clone();
    let extend = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            nimiq_extend::extend(&c, fixed, || {
                held_tx.send(()).unwrap();
                read_rx.recv().unwrap();
            })
        }))
        .map_err(|e| support::panic_message(&*e))
    });
    let mempool = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            held_rx.recv().unwrap();
            nimiq_extend::push_transaction(&chain, || {
                read_tx.send(()).unwrap();
                wait_until("the upgrade waits for the mempool's read", || {
                    blocked_on(name) == 1
                });
            })
        }))
        .map_err(|e| support::panic_message(&*e))
    });
    (extend.join().unwrap(), mempool.join().unwrap())
}

#[test]
fn an_upgrade_ordered_after_the_transaction_a_reader_takes_under_its_read_is_an_inversion() {
    let _g = setup_serial();
    const N: &str = "nimiq.blockchain.bug";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("nimiq-extend.json", move || {
        tx.send(nimiq_extend_scenario(N, "nimiq.txn.bug", false))
            .unwrap();
    });
    outcome.unwrap();
    let (extend, mempool) = rx.recv().unwrap();
    // The mempool's request closes the cycle (the upgrade waits, seen by the wait-for graph
    // now): it is the one stopped, by the lock order it completes.
    assert_eq!(extend, Ok(()));
    let msg = mempool.expect_err("reported before it hangs");
    assert!(msg.contains("lock order inversion"), "{msg}");
    let v = of_kind(ViolationKind::LockOrderInversion, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(
        &v[0],
        &[
            "NIMIQ_MEMPOOL_TXN",
            "NIMIQ_MEMPOOL_READ",
            "NIMIQ_EXTEND_UPGRADE",
            "NIMIQ_EXTEND_TXN",
        ],
    );
    assert_eq!(found(N).len(), 1, "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), ["lock-order-inversion"]);
}

#[test]
fn an_upgrade_waiting_for_a_reader_that_waits_for_the_upgraders_transaction_is_a_deadlock() {
    // Fails without `hooks::upgrade_wait`: the scenario does not form (the upgrade's wait is not
    // in `waits()`), and without the hand-shake the cycle hangs unreported.
    let _g = setup_serial();
    const N: &str = "nimiq.blockchain.wait";
    let was = lockcheck::order_checking();
    // The wait-for graph alone: the lock order is not checked.
    lockcheck::set_order_checking(false);
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("nimiq-extend-wait.lct", move || {
        tx.send(nimiq_extend_scenario(N, "nimiq.txn.wait", false))
            .unwrap();
    });
    lockcheck::set_order_checking(was);
    outcome.unwrap();
    let (extend, mempool) = rx.recv().unwrap();
    assert_eq!(extend, Ok(()));
    let msg = mempool.expect_err("reported before it hangs");
    assert!(msg.contains("deadlock"), "{msg}");
    let v = of_kind(ViolationKind::Deadlock, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(
        &v[0],
        &[
            "NIMIQ_MEMPOOL_TXN",
            "NIMIQ_EXTEND_UPGRADE",
            "NIMIQ_MEMPOOL_READ",
        ],
    );
    assert_eq!(found(N).len(), 1, "{:#?}", found(N));
    // The trace's order is the analyzer's, checked or not at run time.
    assert_eq!(offline_kinds(&trace, N), ["lock-order-inversion"]);
}

#[test]
fn the_upgrade_before_the_transaction_is_silent() {
    let _g = setup_serial();
    const N: &str = "nimiq.blockchain.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("nimiq-extend-fixed.lct", move || {
        tx.send(nimiq_extend_scenario(N, "nimiq.txn.fix", true))
            .unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap(), (Ok(()), Ok(())));
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 10. A recursive `read()` in `extend` while a block push queues a writer: nimiq's blockchain
//    (a parking_lot `RwLock`) was read again, inside `extend`, by code that already held its
//    read guard; a writer queued in between (another push) blocks the second read, and waits
//    for the first. Source: nimiq/core-rs-albatross#34 ("Deadlock in `Blockchain::push_block`":
//    "We also removed a bunch of recursive `read()` calls in the `extend` part of the
//    blockchain ... #40 replaced such occurrences by `read_recursive()` or by dropping the read
//    lock first"; the first report of the hang is nimiq/core-rs-albatross#6).
//    `lockcheck::RwLock`.
//    Look-alike: the fix's `read_recursive()`, which a queued writer does not block (the writer
//    queues here too).

/// `extend` reading the chain again (`read_recursive` when `fixed`) once a writer is queued.
/// Returns the reader's outcome (the chain's length read twice).
fn nimiq_reread_scenario(name: &'static str, fixed: bool) -> Result<usize, String> {
    use std::sync::Arc;
    let chain = Arc::new(lockcheck::RwLock::named(name, vec![1u32]));
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let w = chain.clone();
    let writer = std::thread::spawn(move || {
        held_rx.recv().unwrap();
        w.write().push(2); // NIMIQ_PUSH_WRITE
    });
    let reader = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let bc = chain.read(); // NIMIQ_PUSH_READ
            held_tx.send(()).unwrap();
            wait_until("the writer is queued", || blocked_on(name) == 1);
            let again = if fixed {
                chain.read_recursive().len()
            } else {
                chain.read().len() // NIMIQ_EXTEND_READ
            };
            again + bc.len()
        }))
        .map_err(|e| support::panic_message(&*e))
    });
    let outcome = reader.join().unwrap();
    writer.join().unwrap();
    outcome
}

#[test]
fn a_recursive_read_in_extend_while_a_push_queues_a_writer_is_a_recursive_read() {
    let _g = setup_serial();
    const N: &str = "nimiq.chain.bug";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("nimiq-reread.lct", move || {
        tx.send(nimiq_reread_scenario(N, false)).unwrap();
    });
    outcome.unwrap();
    let msg = rx.recv().unwrap().expect_err("reported before it hangs");
    assert!(msg.contains("recursive read"), "{msg}");
    let v = of_kind(ViolationKind::RecursiveRead, N);
    assert_eq!(v.len(), 1, "{:#?}", lockcheck::violations());
    M.assert_sites(&v[0], &["NIMIQ_EXTEND_READ", "NIMIQ_PUSH_READ"]);
    let offline = offline_kinds(&trace, N);
    assert!(offline.iter().any(|k| k == "recursive-read"), "{offline:?}");
}

#[test]
fn read_recursive_past_a_queued_writer_is_silent() {
    let _g = setup_serial();
    const N: &str = "nimiq.chain.fix";
    let (tx, rx) = mpsc::channel();
    let (outcome, trace) = recorded("nimiq-reread-fixed.json", move || {
        tx.send(nimiq_reread_scenario(N, true)).unwrap();
    });
    outcome.unwrap();
    assert_eq!(rx.recv().unwrap(), Ok(2));
    assert!(found(N).is_empty(), "{:#?}", found(N));
    assert_eq!(offline_kinds(&trace, N), Vec::<String>::new());
}
