//! The runtime detector's scenarios as one program: `scenarios NAME` runs one of them, `scenarios
//! list` prints their names with what the runtime should report (`-` for a look-alike that must
//! stay silent). `tests/offline_equals_runtime.rs` runs each under `LOCKCHECK=panic` and `warn`
//! with `LOCKCHECK_TRACE` set, and checks that `lockcheck analyze` on the trace reports what the
//! runtime reported.
//!
//! The scenario runs on a worker thread; if it hangs (a self-deadlock under `warn` blocks for
//! real after its report), a watchdog gives up two seconds after the report and exits, which
//! writes the trace.
//!
//! `scenarios NAME --main` runs it on the main thread instead.
//!
//! Run: `LOCKCHECK=warn LOCKCHECK_TRACE=/tmp/t.json cargo run --example scenarios -- self-mutex`

use lockcheck::{Mutex, RwLock, Semaphore};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

/// Name, what the runtime reports (`-`: nothing; a trailing `?`: what the analyzer reports, the
/// runtime may too), and the body.
type Scenario = (&'static str, &'static str, fn());

const SCENARIOS: &[Scenario] = &[
    ("ab-ba", "lock-order-inversion", ab_ba),
    ("ab-ab", "-", ab_ab),
    ("gate", "-", gate),
    ("fork-join", "-", fork_join),
    ("fork-join-rounds", "lock-order-inversion", fork_join_rounds),
    ("fork-join-rounds-ordered", "-", fork_join_rounds_ordered),
    ("three-cycle", "lock-order-inversion", three_cycle),
    (
        "class-inversion",
        "class-lock-order-inversion",
        class_inversion,
    ),
    ("class-ordered", "-", class_ordered),
    ("read-read", "-", read_read),
    ("read-write", "lock-order-inversion", read_write),
    // The runtime re-checks cycles excused as read-read at the lock's first write; the analyzer
    // sees the write in the trace.
    ("late-writer", "lock-order-inversion", late_writer),
    ("try-closes-cycle", "-", try_closes_cycle),
    ("self-mutex", "self-deadlock", self_mutex),
    (
        "self-write-after-read",
        "self-deadlock",
        self_write_after_read,
    ),
    ("recursive-read", "recursive-read", recursive_read),
    (
        "upgrade-holding-read",
        "self-deadlock",
        upgrade_holding_read,
    ),
    ("upgrade", "-", upgrade),
    (
        "upgrade-under-read",
        "lock-order-inversion",
        upgrade_under_read,
    ),
    ("upgrade-after-read", "-", upgrade_after_read),
    (
        "callback-under-lock",
        "lock-order-inversion",
        callback_under_lock,
    ),
    ("callback-after-lock", "-", callback_after_lock),
    ("drop-under-lock", "self-deadlock", drop_under_lock),
    ("drop-after-lock", "-", drop_after_lock),
    ("std-self-mutex", "self-deadlock", std_self_mutex),
    ("std-ab-ba", "lock-order-inversion", std_ab_ba),
    ("read-recursive", "-", read_recursive),
    ("relock", "-", relock),
    ("try-lock-held", "-", try_lock_held),
    (
        "semaphore-all-permits",
        "self-deadlock",
        semaphore_all_permits,
    ),
    ("semaphore-free-permit", "-", semaphore_free_permit),
    (
        "semaphore-inversion",
        "lock-order-inversion",
        semaphore_inversion,
    ),
    ("dining", "lock-order-inversion", dining),
    ("dining-ordered", "-", dining_ordered),
    ("real-deadlock", "deadlock", real_deadlock),
    ("real-deadlock-mixed", "deadlock", real_deadlock_mixed),
    // Predicted before it hangs: the second thread requesting a permit holding one, with the
    // first doing so too, holds the pool's two permits (a permit nest, reported as an inversion
    // of the semaphore with itself); under `warn` the wait that follows is the `deadlock` too.
    ("semaphore-cycle", "lock-order-inversion", semaphore_cycle),
    (
        "semaphore-cycle-free-holder",
        "-",
        semaphore_cycle_free_holder,
    ),
    ("contention", "-", contention),
    ("condvar", "-", condvar),
    (
        "condvar-inversion",
        "lock-order-inversion",
        condvar_inversion,
    ),
    ("join-deadlock", "deadlock", join_deadlock),
    ("join-deadlock-late", "deadlock", join_deadlock_late),
    ("join-predicted", "lock-order-inversion?", join_predicted),
    ("join-after-release", "-", join_after_release),
    ("join-other-lock", "-", join_other_lock),
    ("join-read-read", "-", join_read_read),
    (
        "join-ordered-by-grandchild",
        "-",
        join_ordered_by_grandchild,
    ),
    ("scope-deadlock", "deadlock", scope_deadlock),
    ("scope-deadlock-late", "deadlock", scope_deadlock_late),
    ("scoped-join-deadlock", "deadlock", scoped_join_deadlock),
    ("scope-after-release", "-", scope_after_release),
    // rust-lang/rust#116179: a scope's end does not wait for its threads' thread-local
    // destructors, so what one does is not ordered before what follows the scope.
    (
        "scope-tls-destructor",
        "lock-order-inversion",
        scope_tls_destructor,
    ),
    (
        "scope-tls-destructor-joined",
        "-",
        scope_tls_destructor_joined,
    ),
    // Real bugs of `tests/real_bugs_round3.rs`, each with its fix.
    ("shard-ref-insert", "lock-order-inversion", shard_ref_insert),
    ("shard-copy-insert", "-", shard_copy_insert),
    ("once-reentry", "self-deadlock", once_reentry),
    ("once-log-after", "-", once_log_after),
    ("steal-under-lock", "self-deadlock", steal_under_lock),
    ("steal-after-release", "-", steal_after_release),
    ("panic-hook-relock", "self-deadlock", panic_hook_relock),
    ("panic-after-release", "-", panic_after_release),
    (
        "reread-writer-queued",
        "recursive-read",
        reread_writer_queued,
    ),
    ("read-once-writer-queued", "-", read_once_writer_queued),
    (
        "permits-arrival-order",
        "lock-order-inversion",
        permits_arrival_order,
    ),
    ("permits-seq-order", "-", permits_seq_order),
    // Real bugs of `tests/real_bugs_round4.rs`, each with its fix, and look-alikes.
    (
        "merge-left-sibling",
        "lock-order-inversion",
        merge_left_sibling,
    ),
    ("merge-right-neighbour", "-", merge_right_neighbour),
    (
        "read-guard-across-write",
        "lock-order-inversion",
        read_guard_across_write,
    ),
    ("read-guard-dropped", "-", read_guard_dropped),
    (
        "reentrant-inversion",
        "lock-order-inversion",
        reentrant_inversion,
    ),
    ("reentrant-reentered", "-", reentrant_reentered),
    (
        "lazy-statics-inversion",
        "lock-order-inversion",
        lazy_statics_inversion,
    ),
    ("lazy-statics-ordered", "-", lazy_statics_ordered),
    ("limiter-permits", "lock-order-inversion", limiter_permits),
    ("limiter-one-permit", "-", limiter_one_permit),
    ("scrutinee-reread", "recursive-read", scrutinee_reread),
    ("let-bound-reread", "-", let_bound_reread),
    (
        "storage-read-pending",
        "lock-order-inversion",
        storage_read_pending,
    ),
    ("storage-dropped-pending", "-", storage_dropped_pending),
    ("hash-set-order", "lock-order-inversion", hash_set_order),
    ("id-order", "-", id_order),
    ("upgradable-vs-read", "-", upgradable_vs_read),
    ("two-upgradables", "lock-order-inversion", two_upgradables),
    ("read-share-gate", "lock-order-inversion", read_share_gate),
    ("try-back-off", "-", try_back_off),
    ("coupling-one-way", "-", coupling_one_way),
    (
        "coupling-both-ways",
        "lock-order-inversion",
        coupling_both_ways,
    ),
    // A bounded channel is a lock held by its receiver's thread (spacejam/sled#1515).
    (
        "channel-send-under-lock",
        "lock-order-inversion",
        channel_send_under_lock,
    ),
    (
        "channel-receiver-dropped-first",
        "-",
        channel_receiver_dropped_first,
    ),
    ("channel-self-send", "self-deadlock", channel_self_send),
    ("channel-deadlock", "lock-order-inversion", channel_deadlock),
    // Round 5 (tests/real_bugs_round5.rs): registries, `Drop`s and temporaries that keep a guard,
    // one-time initializations.
    ("registry-relock", "self-deadlock", registry_relock),
    ("registry-reentry-flag", "-", registry_reentry_flag),
    (
        "callsite-once-reentry",
        "self-deadlock",
        callsite_once_reentry,
    ),
    ("callsite-state-reentry", "-", callsite_state_reentry),
    (
        "last-arc-under-write",
        "self-deadlock",
        last_arc_under_write,
    ),
    ("last-arc-after-write", "-", last_arc_after_write),
    (
        "intern-drop-under-lock",
        "self-deadlock",
        intern_drop_under_lock,
    ),
    ("intern-drop-after-lock", "-", intern_drop_after_lock),
    ("if-let-else-write", "self-deadlock", if_let_else_write),
    ("let-else-reads", "-", let_else_reads),
    ("tail-temporary", "self-deadlock", tail_temporary),
    ("tail-bound", "-", tail_bound),
    ("lazy-cycle", "self-deadlock", lazy_cycle),
    ("lazy-one-way", "-", lazy_one_way),
    ("init-joins-forcers", "deadlock", init_joins_forcers),
    ("init-joins-two-forcers", "deadlock", init_joins_two_forcers),
    ("init-joins-others", "-", init_joins_others),
    (
        "shard-entries-colocated",
        "self-deadlock",
        shard_entries_colocated,
    ),
    (
        "shard-entries-one-at-a-time",
        "-",
        shard_entries_one_at_a_time,
    ),
    // The message orders the receiver after the send that waited on it (channel.rs).
    ("channel-handover", "-", channel_handover),
    (
        "channel-lock-before-message",
        "lock-order-inversion",
        channel_lock_before_message,
    ),
    (
        "channel-handover-two-senders",
        "lock-order-inversion",
        channel_handover_two_senders,
    ),
    // A receive that waits holding a lock its only sender needs before it can send (channel.rs,
    // "A receive that waits for a message"): a hang, reported past the receive's grace; the
    // look-alikes: another sender free to deliver, a lock no sender needs.
    (
        "channel-recv-under-lock",
        "deadlock",
        channel_recv_under_lock,
    ),
    (
        "channel-recv-placed-sender",
        "deadlock",
        channel_recv_placed_sender,
    ),
    ("channel-recv-free-sender", "-", channel_recv_free_sender),
    (
        "channel-recv-unneeded-lock",
        "-",
        channel_recv_unneeded_lock,
    ),
    // A wait at a barrier holding a lock a missing participant needs before it arrives
    // (`checked/barrier.rs`): a hang, reported (the participant assumed, five seconds into the
    // wait; known from the previous generation, one second); the look-alikes: the lock released
    // before the wait, a lock no participant takes, the taker's lock after the generation opened.
    ("barrier-under-lock", "deadlock", barrier_under_lock),
    (
        "barrier-known-participant",
        "deadlock",
        barrier_known_participant,
    ),
    ("barrier-released-first", "-", barrier_released_first),
    ("barrier-unneeded-lock", "-", barrier_unneeded_lock),
    (
        "barrier-take-after-opening",
        "-",
        barrier_take_after_opening,
    ),
    // A wait at a barrier holding no lock: a known participant joins the waiter (a
    // `lockcheck::thread`, which holds its own end), or receives holding a lock what only the
    // waiter can send; the look-alike's participant arrives late, holding nothing.
    ("barrier-join-waiter", "deadlock", barrier_join_waiter),
    (
        "barrier-receive-from-waiter",
        "deadlock",
        barrier_receive_from_waiter,
    ),
    ("barrier-no-lock-late", "-", barrier_no_lock_late),
    // The opt-in prediction (`LOCKCHECK_CHANNEL_RECV=on`): a run that does not hang.
    (
        "channel-recv-predicted",
        "lock-order-inversion",
        channel_recv_predicted,
    ),
    (
        "channel-recv-predicted-lock-after",
        "-",
        channel_recv_predicted_lock_after,
    ),
    // Reads in both orders of RwLocks written only before the readers were spawned (section 11
    // of `tests/real_bugs_round4.rs`): no write can come between the reads. A writer thread
    // running meanwhile can: reported. A write after both readers are joined cannot: silent.
    ("config-before-spawn", "-", config_before_spawn),
    (
        "config-writer-thread",
        "lock-order-inversion",
        config_writer_thread,
    ),
    ("config-write-after-join", "-", config_write_after_join),
    // The read-read rule's queued writer (section 11b of `tests/real_bugs_round4.rs`): T1
    // read-locks L, spawns T3, locks M; T2 locks M, read-locks L; T3 write-locks L. After T3
    // joined T2 its write cannot be queued while T2 waits: silent. Not joined, it can: reported.
    (
        "queued-writer-joins-reader",
        "-",
        queued_writer_joins_reader,
    ),
    (
        "queued-writer-unjoined",
        "lock-order-inversion",
        queued_writer_unjoined,
    ),
    // Written more often than the writes noted one by one (8) before the spawn: from then on
    // the locks count as written concurrently with every read (the conservative side, on both
    // sides alike).
    (
        "config-written-often",
        "lock-order-inversion",
        config_written_often,
    ),
    // A permit requested holding one of the same semaphore (spkenv/spk#805), by as many threads
    // as it has permits; the fix gives the permit back first; fewer threads than permits.
    ("permit-nest", "lock-order-inversion", permit_nest),
    ("permit-given-back-first", "-", permit_given_back_first),
    ("permit-nest-fewer-threads", "-", permit_nest_fewer_threads),
    // Round 6 (tests/real_bugs_round6.rs): a lock given up and taken back inside a one-time
    // initializer, against a caller that holds it when it finds the initialization done
    // (rust-lang-nursery/lazy-static.rs#116, pyo3's GIL); `PartialEq` reading both sides
    // (sigp/lighthouse#1241 against itself, lightningdevkit/rust-lightning#2190 both ways with
    // a writer); a mutex against the read side of an `RwLock` closed by a writer
    // (gfx-rs/wgpu#5737); a `Debug` that logs under the appender's lock (estk/log4rs#443).
    (
        "gil-retaken-in-init",
        "lock-order-inversion",
        gil_retaken_in_init,
    ),
    ("gil-kept-in-init", "-", gil_kept_in_init),
    ("eq-itself", "recursive-read", eq_itself),
    ("eq-itself-ptr-first", "-", eq_itself_ptr_first),
    ("eq-both-ways", "lock-order-inversion", eq_both_ways),
    ("eq-by-address", "-", eq_by_address),
    (
        "snatch-read-writer",
        "lock-order-inversion",
        snatch_read_writer,
    ),
    ("snatch-read-first", "-", snatch_read_first),
    ("snatch-read-unwritten", "-", snatch_read_unwritten),
    ("log-under-appender", "self-deadlock", log_under_appender),
    ("log-under-reentrant", "-", log_under_reentrant),
    // Hand over hand then back (bevyengine/bevy#22017), a task run inline under the lock it takes
    // (bevyengine/bevy#15807), each with its fix; the task on a thread of its own is silent.
    (
        "infos-then-asset-back",
        "lock-order-inversion",
        infos_then_asset_back,
    ),
    ("asset-after-infos-dropped", "-", asset_after_infos_dropped),
    (
        "task-inline-under-lock",
        "self-deadlock",
        task_inline_under_lock,
    ),
    ("task-inline-after-drop", "-", task_inline_after_drop),
    ("task-thread-under-lock", "-", task_thread_under_lock),
    // Reads of two RwLocks in both orders, the locks then written only through upgrades (an
    // upgrade is a write: a queued upgrade makes a reader wait behind a reader), blocking or
    // `try_upgrade`; the look-alike takes upgradable reads and never upgrades them.
    (
        "upgrades-write-read-read",
        "lock-order-inversion",
        upgrades_write_read_read,
    ),
    (
        "try-upgrades-write-read-read",
        "lock-order-inversion",
        try_upgrades_write_read_read,
    ),
    ("upgradable-never-upgraded", "-", upgradable_never_upgraded),
    // A `try_lock` retried until it succeeds on a lock the thread holds (a spin lock re-entered
    // by its holder, PyO3/pyo3#916); the look-alike gives up after a few tries.
    ("spin-on-own-lock", "self-deadlock", spin_on_own_lock),
    ("bounded-try-of-own-lock", "-", bounded_try_of_own_lock),
    // A `try_lock` spun on while another thread holds the lock waits as `lock` does: its held
    // locks are ordered before it; the look-alike spins holding nothing.
    (
        "spin-under-lock-ab-ba",
        "lock-order-inversion",
        spin_under_lock_ab_ba,
    ),
    ("spin-holding-nothing", "-", spin_holding_nothing),
    // A million failed tries in a row holding a lock: the recorder writes the streak as a few
    // `fail` records with counts, which the analyzer counts as the failures they stand for (the
    // retry rule fires at the 1000th, as the runtime's); the look-alike's streaks stop at 999.
    (
        "spin-million-under-lock-ab-ba",
        "lock-order-inversion",
        spin_million_under_lock_ab_ba,
    ),
    ("spin-999-under-lock", "-", spin_999_under_lock),
    // The textbook back-off: hold A, try B, give A back when it fails and start over. Its tries
    // fail thousands of times at one site under the same held set, but over a new hold of A
    // each time: no retry loop, no wait for B while holding A.
    ("try-back-off-retried", "-", try_back_off_retried),
    // A blocking upgrade that closes a cycle while the other thread already waits: reported at
    // the upgrade, which then hangs (`warn`) or is stopped (`panic`); either way its `convert` is
    // in the trace (written before the wait). The look-alike's writer lets its read go first.
    (
        "upgrade-closes-cycle-and-hangs",
        "lock-order-inversion",
        upgrade_closes_cycle_and_hangs,
    ),
    (
        "upgrade-after-writer-let-go",
        "-",
        upgrade_after_writer_let_go,
    ),
    // Two threads joining each other, holding no lock (rust-lang/rust#34971): a thread started
    // by `lockcheck::thread` holds its own end, so its join is a wait of the graph and of the
    // trace; the look-alike joins in one direction.
    ("join-each-other", "deadlock", join_each_other),
    ("join-one-way", "-", join_one_way),
    // An explicit join holding a lock a thread-local destructor of the joined thread takes
    // (rust-lang/rust#116179, tests/real_bugs_round8.rs): the join waits for the destructors,
    // so the thread's end is written after them; the look-alike releases the lock first.
    (
        "tls-dtor-join-under-lock",
        "deadlock",
        tls_dtor_join_under_lock,
    ),
    (
        "tls-dtor-join-after-release",
        "-",
        tls_dtor_join_after_release,
    ),
    ("tls-dtor-scope-under-lock", "-", tls_dtor_scope_under_lock),
    (
        "scope-value-drop-under-lock",
        "deadlock",
        scope_value_drop_under_lock,
    ),
    // A condvar notified by a thread that never takes its waiters' mutex (the opt-in condvar
    // rule, `LOCKCHECK_CONDVAR`; `lockcheck analyze --condvar`: these are listed in
    // `CONDVAR_RULE`): parity-ethereum#3885's queue, its fix (#3903), and a timed wait, which a
    // lost notify only delays.
    (
        "lost-wakeup-notify-without-mutex",
        "condvar-lost-wakeup",
        lost_wakeup_notify_without_mutex,
    ),
    (
        "lost-wakeup-mutex-taken-first",
        "-",
        lost_wakeup_mutex_taken_first,
    ),
    ("lost-wakeup-timed-wait", "-", lost_wakeup_timed_wait),
    // A condvar wait holding a lock its notifier took in its window (the opt-in condvar rule;
    // cloud-hypervisor#8092, `tests/condvar_latch.rs`), the lock released before the wait, and a
    // notifier that never takes the waiter's lock.
    (
        "condvar-wait-holding-notifier-lock",
        "condvar-wait-holding-lock",
        condvar_wait_holding_notifier_lock,
    ),
    (
        "condvar-wait-lock-released-first",
        "-",
        condvar_wait_lock_released_first,
    ),
    (
        "condvar-wait-notifier-never-takes",
        "-",
        condvar_wait_notifier_never_takes,
    ),
    (
        "condvar-wait-notifier-took-it-before-its-wait",
        "-",
        condvar_wait_notifier_took_it_before_its_wait,
    ),
];

/// The scenarios run with the opt-in condvar rule on (`scenarios list` says `condvar` after
/// their expectation, and `tests/offline_equals_runtime.rs` analyzes them with `--condvar`).
const CONDVAR_RULE: &[&str] = &[
    "lost-wakeup-notify-without-mutex",
    "lost-wakeup-mutex-taken-first",
    "lost-wakeup-timed-wait",
    "condvar-wait-holding-notifier-lock",
    "condvar-wait-lock-released-first",
    "condvar-wait-notifier-never-takes",
    "condvar-wait-notifier-took-it-before-its-wait",
];

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "list".into());
    if name == "list" {
        for (n, expect, _) in SCENARIOS {
            if CONDVAR_RULE.contains(n) {
                println!("{n} {expect} condvar");
            } else {
                println!("{n} {expect}");
            }
        }
        return;
    }
    let Some(&(_, _, body)) = SCENARIOS.iter().find(|s| s.0 == name) else {
        eprintln!("unknown scenario `{name}`; `scenarios list` lists them");
        std::process::exit(2);
    };
    if CONDVAR_RULE.contains(&name.as_str()) {
        lockcheck::watchdog::set_condvar_check(true);
    }
    let on_main = std::env::args().nth(2).as_deref() == Some("--main");
    let (done_tx, done_rx) = mpsc::channel();
    if on_main {
        // The watchdog on a thread of its own; a report under `panic` ends the process through
        // the main thread's panic (the exit handler writes the trace).
        std::thread::spawn(move || watchdog(&done_rx));
        body();
        return println!("{name}: finished");
    }
    std::thread::Builder::new()
        .name("worker".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(body);
            let _ = done_tx.send(r.is_ok());
        })
        .expect("spawn");
    match watchdog(&done_rx) {
        true => println!("{name}: finished"),
        false => println!("{name}: panicked"),
    }
}

/// Waits for the scenario's end (whether it finished). One that hangs for real (a self-deadlock
/// under `warn` blocks after its report) is given up two seconds after its report, or after a
/// minute without one: `exit` then runs the trace's exit flush, the blocked thread stays blocked.
fn watchdog(done: &mpsc::Receiver<bool>) -> bool {
    let start = std::time::Instant::now();
    let mut reported_at = None;
    loop {
        match done.recv_timeout(Duration::from_millis(100)) {
            Ok(ok) => return ok,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // No sender (`--main`): only the deadline ends the wait.
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if reported_at.is_none() && !lockcheck::violations().is_empty() {
            reported_at = Some(std::time::Instant::now());
        }
        let give_up = match reported_at {
            Some(t) => t.elapsed() > Duration::from_secs(2),
            None => start.elapsed() > Duration::from_secs(60),
        };
        if give_up {
            println!("hung (gave up)");
            std::process::exit(3);
        }
    }
}

/// Runs each body on its own thread and waits for all; panics (the runtime's reports under
/// `LOCKCHECK=panic`) are expected and ignored.
fn run_all(bodies: Vec<Box<dyn FnOnce() + Send>>) {
    let handles: Vec<_> = bodies.into_iter().map(std::thread::spawn).collect();
    for h in handles {
        let _ = h.join();
    }
}

/// Runs the bodies one after the other, each on its own thread (concurrent as far as fork/join
/// knows: std threads), so that no real deadlock happens.
fn one_by_one(bodies: Vec<Box<dyn FnOnce() + Send>>) {
    let handles: Vec<_> = bodies
        .into_iter()
        .map(|b| {
            let (tx, rx) = mpsc::channel::<()>();
            let h = std::thread::spawn(move || {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(b));
                let _ = tx.send(());
                // Stay alive: the threads overlap in time, as far as anyone can tell.
                std::thread::sleep(Duration::from_millis(20));
            });
            let _ = rx.recv();
            h
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

fn pair(a: &'static str, b: &'static str) -> (Arc<Mutex<u32>>, Arc<Mutex<u32>>) {
    (Arc::new(Mutex::named(a, 0)), Arc::new(Mutex::named(b, 0)))
}

fn ab_ba() {
    let (a, b) = pair("abba.a", "abba.b");
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let _x = a.lock();
            let _y = b.lock();
        }),
        Box::new(move || {
            let _y = b2.lock();
            let _x = a2.lock();
        }),
    ]);
}

fn ab_ab() {
    let (a, b) = pair("abab.a", "abab.b");
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let _x = a.lock();
            let _y = b.lock();
        }),
        Box::new(move || {
            let _x = a2.lock();
            let _y = b2.lock();
        }),
    ]);
}

fn gate() {
    let (a, b) = pair("gate.a", "gate.b");
    let g = Arc::new(Mutex::named("gate.g", ()));
    let (a2, b2, g2) = (a.clone(), b.clone(), g.clone());
    one_by_one(vec![
        Box::new(move || {
            let _g = g.lock();
            let _x = a.lock();
            let _y = b.lock();
        }),
        Box::new(move || {
            let _g = g2.lock();
            let _y = b2.lock();
            let _x = a2.lock();
        }),
    ]);
}

fn fork_join() {
    let (a, b) = pair("fj.a", "fj.b");
    let (a2, b2) = (a.clone(), b.clone());
    let _ = lockcheck::thread::spawn(move || {
        let _x = a.lock();
        let _y = b.lock();
    })
    .join();
    let _ = lockcheck::thread::spawn(move || {
        let _y = b2.lock();
        let _x = a2.lock();
    })
    .join();
}

/// Twelve rounds of spawn and join, nesting `a -> b` in every round; in round `concurrent` the
/// child's `b -> a` overlaps the parent's round (a real inversion), in the others the child is
/// joined before the parent nests (ordered by fork/join: silent).
fn rounds(names: (&'static str, &'static str), concurrent: Option<usize>) {
    let (a, b) = pair(names.0, names.1);
    for i in 0..12 {
        let (a2, b2) = (a.clone(), b.clone());
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let child = lockcheck::thread::spawn(move || {
            let _ = go_rx.recv();
            {
                let _y = b2.lock();
                let _x = a2.lock();
            }
            let _ = done_tx.send(());
        });
        if concurrent == Some(i) {
            // The child is alive (not joined) while the parent nests: concurrent.
            let _ = go_tx.send(());
            let _ = done_rx.recv();
            {
                let _x = a.lock();
                let _y = b.lock();
            }
            let _ = child.join();
        } else {
            let _ = go_tx.send(());
            let _ = child.join();
            let _x = a.lock();
            let _y = b.lock();
        }
    }
}

fn fork_join_rounds() {
    rounds(("fjr.a", "fjr.b"), Some(6));
}

fn fork_join_rounds_ordered() {
    rounds(("fjro.a", "fjro.b"), None);
}

fn three_cycle() {
    let l: Vec<Arc<Mutex<u32>>> = ["tri.a", "tri.b", "tri.c"]
        .iter()
        .map(|n| Arc::new(Mutex::named(n, 0)))
        .collect();
    let bodies: Vec<Box<dyn FnOnce() + Send>> = (0..3)
        .map(|i| {
            let (x, y) = (l[i].clone(), l[(i + 1) % 3].clone());
            Box::new(move || {
                let _x = x.lock();
                let _y = y.lock();
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    one_by_one(bodies);
}

fn class_inversion() {
    // Two instances of each class; each thread uses its own pair, in opposite class orders.
    let (a1, b1) = pair("cls.a", "cls.b");
    let (a2, b2) = pair("cls.a", "cls.b");
    one_by_one(vec![
        Box::new(move || {
            let _x = a1.lock();
            let _y = b1.lock();
        }),
        Box::new(move || {
            let _y = b2.lock();
            let _x = a2.lock();
        }),
    ]);
}

fn class_ordered() {
    let (a1, b1) = pair("clo.a", "clo.b");
    let (a2, b2) = pair("clo.a", "clo.b");
    one_by_one(vec![
        Box::new(move || {
            let _x = a1.lock();
            let _y = b1.lock();
        }),
        Box::new(move || {
            let _x = a2.lock();
            let _y = b2.lock();
        }),
    ]);
}

fn read_read() {
    let a = Arc::new(RwLock::named("rr.a", 0));
    let b = Arc::new(RwLock::named("rr.b", 0));
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let _x = a.read();
            let _y = b.read();
        }),
        Box::new(move || {
            let _y = b2.read();
            let _x = a2.read();
        }),
    ]);
}

fn read_write() {
    let a = Arc::new(RwLock::named("rw.a", 0));
    let b = Arc::new(RwLock::named("rw.b", 0));
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let _x = a.read();
            let _y = b.write();
        }),
        Box::new(move || {
            let _y = b2.read();
            let _x = a2.write();
        }),
    ]);
}

fn late_writer() {
    let x = Arc::new(RwLock::named("late.x", 0));
    let y = Arc::new(Mutex::named("late.y", 0));
    let (x2, y2, x3) = (x.clone(), y.clone(), x.clone());
    // `y` lives until the write: a dropped lock leaves the runtime's instance graph (it can no
    // longer deadlock), so the runtime would then report the cycle at class level only, while
    // the analyzer, which sees the trace whole, reports the instances.
    let _keep = y.clone();
    one_by_one(vec![
        Box::new(move || {
            let _r = x.read();
            let _y = y.lock();
        }),
        Box::new(move || {
            let _y = y2.lock();
            let _r = x2.read();
        }),
        // Now a queued writer can block the second reader: the cycle is a deadlock.
        Box::new(move || {
            let _w = x3.write();
        }),
    ]);
}

fn try_closes_cycle() {
    let (a, b) = pair("try.a", "try.b");
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let _x = a.lock();
            let _y = b.lock();
        }),
        Box::new(move || {
            let _y = b2.lock();
            let _x = a2.try_lock();
        }),
    ]);
}

fn self_mutex() {
    let m = Mutex::named("self.mutex", 0);
    let _g = m.lock();
    let _h = m.lock();
}

fn self_write_after_read() {
    let l = RwLock::named("self.rw", 0);
    let _r = l.read();
    let _w = l.write();
}

fn recursive_read() {
    let l = RwLock::named("self.rread", 0);
    let _a = l.read();
    let _b = l.read();
}

fn upgrade_holding_read() {
    let l = RwLock::named("self.upgrade", 0);
    let _r = l.read_recursive();
    let u = l
        .try_upgradable_read()
        .expect("readers do not exclude an upgradable reader");
    let _w = lockcheck::RwLockUpgradableReadGuard::upgrade(u);
}

fn upgrade() {
    let l = RwLock::named("self.upgrade-alone", 0);
    let u = l.upgradable_read();
    let _w = lockcheck::RwLockUpgradableReadGuard::upgrade(u);
}

/// An upgrade waits for readers as a write does: ordered after the read share of another lock
/// (`tests/real_bugs_round2.rs`: the salsa pattern). The look-alike upgrades after dropping it.
fn upgrade_vs_writer(prefix: (&'static str, &'static str), release_first: bool) {
    let memo = Arc::new(RwLock::named(prefix.0, 0));
    let deps = Arc::new(RwLock::named(prefix.1, 0));
    let (m2, d2) = (memo.clone(), deps.clone());
    one_by_one(vec![
        Box::new(move || {
            let d = deps.read();
            let u = memo.upgradable_read();
            if release_first {
                drop(d);
            }
            let _w = lockcheck::RwLockUpgradableReadGuard::upgrade(u);
        }),
        Box::new(move || {
            let _m = m2.read();
            let _d = d2.write();
        }),
    ]);
}

fn upgrade_under_read() {
    upgrade_vs_writer(("upgrade-read.memo", "upgrade-read.deps"), false);
}

fn upgrade_after_read() {
    upgrade_vs_writer(("upgrade-after.memo", "upgrade-after.deps"), true);
}

/// A callback (`Arc<dyn Fn>`) run under a library's lock takes a user lock, whose holder calls
/// into the library (eclipse-zenoh/zenoh#1092). The look-alike calls it after the release.
fn callbacks(prefix: (&'static str, &'static str), after: bool) {
    type Callback = Arc<dyn Fn() + Send + Sync>;
    let tables: Arc<Mutex<Vec<Callback>>> = Arc::new(Mutex::named(prefix.0, Vec::new()));
    let user = Arc::new(Mutex::named(prefix.1, 0));
    let u = user.clone();
    tables.lock().push(Arc::new(move || *u.lock() += 1));
    let t2 = tables.clone();
    one_by_one(vec![
        Box::new(move || {
            if after {
                let cbs = tables.lock().clone();
                cbs.iter().for_each(|cb| cb());
            } else {
                tables.lock().iter().for_each(|cb| cb());
            }
        }),
        Box::new(move || {
            let _u = user.lock();
            let _t = t2.lock();
        }),
    ]);
}

fn callback_under_lock() {
    callbacks(("callback.tables", "callback.user"), false);
}

fn callback_after_lock() {
    callbacks(("callback-after.tables", "callback-after.user"), true);
}

/// A value dropped under a `std` mutex's guard whose `Drop` takes that mutex
/// (rust-lang-nursery/lazy-static.rs#56: `or_insert(vec![..])` drops its unused argument). The
/// look-alike drops it after the guard.
struct ReturnsToPool(Arc<lockcheck::sync::Mutex<Vec<u32>>>);

impl Drop for ReturnsToPool {
    fn drop(&mut self) {
        if let Ok(mut free) = self.0.lock() {
            free.push(1);
        }
    }
}

fn pool_drop(after: bool) {
    let pool = Arc::new(lockcheck::sync::Mutex::new(Vec::new()));
    let spare = ReturnsToPool(pool.clone());
    let guard = pool.lock();
    if after {
        drop(guard);
        drop(spare);
    } else {
        drop(spare);
        drop(guard);
    }
}

fn drop_under_lock() {
    pool_drop(false);
}

fn drop_after_lock() {
    pool_drop(true);
}

/// std's API (`lockcheck::sync`), whose classes are construction sites, not names.
fn std_self_mutex() {
    let m = lockcheck::sync::Mutex::new(0);
    let _g = m.lock();
    let _h = m.lock();
}

fn std_ab_ba() {
    let a = Arc::new(lockcheck::sync::Mutex::new(0));
    let b = Arc::new(lockcheck::sync::RwLock::new(0));
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let _x = a.lock();
            let _y = b.write();
        }),
        Box::new(move || {
            let _y = b2.read();
            let _x = a2.lock();
        }),
    ]);
}

fn read_recursive() {
    let l = RwLock::named("self.rrec", 0);
    let _a = l.read();
    let _b = l.read_recursive();
}

fn relock() {
    let m = Mutex::named("self.relock", 0);
    drop(m.lock());
    let _g = m.lock();
}

fn try_lock_held() {
    let m = Mutex::named("self.try", 0);
    let _g = m.lock();
    assert!(m.try_lock().is_none());
}

fn semaphore_all_permits() {
    let s = Semaphore::named("self.sem", 1);
    let _p = s.acquire();
    let _q = s.acquire();
}

fn semaphore_free_permit() {
    let s = Semaphore::named("self.sem2", 2);
    let _p = s.acquire();
    let _q = s.acquire();
}

fn semaphore_inversion() {
    let m = Arc::new(Mutex::named("seminv.m", 0));
    let s = Arc::new(Semaphore::named("seminv.s", 1));
    let (m2, s2) = (m.clone(), s.clone());
    one_by_one(vec![
        Box::new(move || {
            let _x = m.lock();
            let _p = s.acquire();
        }),
        Box::new(move || {
            let _p = s2.acquire();
            let _x = m2.lock();
        }),
    ]);
}

fn dine(prefix: &'static str, ordered: bool) {
    const N: usize = 5;
    let forks: Arc<Vec<Mutex<u32>>> = Arc::new((0..N).map(|_| Mutex::named(prefix, 0)).collect());
    let bodies: Vec<Box<dyn FnOnce() + Send>> = (0..N)
        .map(|i| {
            let forks = forks.clone();
            Box::new(move || {
                let (l, r) = (i, (i + 1) % N);
                let (first, second) = if ordered {
                    (l.min(r), l.max(r))
                } else {
                    (l, r)
                };
                let _a = forks[first].lock();
                let _b = forks[second].lock();
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    one_by_one(bodies);
}

fn dining() {
    dine("dine.fork", false);
}

fn dining_ordered() {
    dine("dineo.fork", true);
}

fn real_deadlock() {
    // Order checking off, so that the threads really block: the wait-for graph reports it.
    lockcheck::set_order_checking(false);
    let (a, b) = pair("dl.a", "dl.b");
    let barrier = Arc::new(Barrier::new(2));
    let (a2, b2, bar2) = (a.clone(), b.clone(), barrier.clone());
    run_all(vec![
        Box::new(move || {
            let _x = a.lock();
            barrier.wait();
            let _y = b.lock();
        }),
        Box::new(move || {
            let _y = b2.lock();
            bar2.wait();
            let _x = a2.lock();
        }),
    ]);
}

fn real_deadlock_mixed() {
    lockcheck::set_order_checking(false);
    let m = Arc::new(Mutex::named("mix.m", ()));
    let r = Arc::new(RwLock::named("mix.r", ()));
    let s = Arc::new(Semaphore::named("mix.s", 1));
    let b = Arc::new(Barrier::new(3));
    let (m1, r1, b1) = (m.clone(), r.clone(), b.clone());
    let (r2, s2, b2) = (r.clone(), s.clone(), b.clone());
    let (s3, m3, b3) = (s.clone(), m.clone(), b.clone());
    run_all(vec![
        Box::new(move || {
            let _m = m1.lock();
            b1.wait();
            let _w = r1.write();
        }),
        Box::new(move || {
            let _r = r2.read();
            b2.wait();
            let _p = s2.acquire();
        }),
        Box::new(move || {
            let _p = s3.acquire();
            b3.wait();
            let _m = m3.lock();
        }),
    ]);
}

/// A pool of two permits: two threads each hold one and ask for another, each waiting for the
/// other's (a wait cycle through one semaphore).
fn semaphore_cycle() {
    let s = Arc::new(Semaphore::named("semcycle.pool", 2));
    let b = Arc::new(Barrier::new(2));
    let bodies: Vec<Box<dyn FnOnce() + Send>> = (0..2)
        .map(|_| {
            let (s, b) = (s.clone(), b.clone());
            Box::new(move || {
                let _first = s.acquire();
                b.wait();
                let _second = s.acquire();
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    run_all(bodies);
}

/// The same pool, but the other holder asks for nothing more: it gives its permit back.
fn semaphore_cycle_free_holder() {
    let s = Arc::new(Semaphore::named("semcycleok.pool", 2));
    let b = Arc::new(Barrier::new(2));
    let (s2, b2) = (s.clone(), b.clone());
    run_all(vec![
        Box::new(move || {
            let _first = s.acquire();
            b.wait();
            let _second = s.acquire();
        }),
        Box::new(move || {
            let _first = s2.acquire();
            b2.wait();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }),
    ]);
}

fn contention() {
    let m = Arc::new(Mutex::named("cont.m", 0u64));
    let bodies: Vec<Box<dyn FnOnce() + Send>> = (0..4)
        .map(|_| {
            let m = m.clone();
            Box::new(move || {
                for _ in 0..1000 {
                    *m.lock() += 1;
                }
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    run_all(bodies);
}

/// A condvar wait releases its mutex: the notifier takes it while the waiter waits, no report.
fn condvar() {
    let pair = Arc::new((Mutex::named("cv.m", false), lockcheck::Condvar::new()));
    let p2 = pair.clone();
    let (locked_tx, locked_rx) = mpsc::channel::<()>();
    let notifier = std::thread::spawn(move || {
        // Only once the waiter holds the mutex: then this lock is granted only by its wait.
        let _ = locked_rx.recv();
        *p2.0.lock() = true;
        p2.1.notify_all();
    });
    let mut ready = pair.0.lock();
    let _ = locked_tx.send(());
    while !*ready {
        pair.1.wait(&mut ready);
    }
    drop(ready);
    let _ = notifier.join();
}

/// The retake of the mutex after a condvar wait, while holding another lock, is an acquisition
/// like any other: `outer -> m` there, `m -> outer` in another thread.
fn condvar_inversion() {
    let pair = Arc::new((Mutex::named("cvi.m", false), lockcheck::Condvar::new()));
    let outer = Arc::new(Mutex::named("cvi.outer", ()));
    let (p2, outer2) = (pair.clone(), outer.clone());
    // The reverse order comes only once the waiter is done (not after a sleep: on a loaded
    // machine the waiter could still hold `outer` then, and the two would really deadlock).
    let (done_tx, done_rx) = mpsc::channel::<()>();
    // Nor does the notice come after a sleep: on a loaded machine the notifier could set `ready`
    // before the waiter first looks, which then never waits, nor retakes the mutex under
    // `outer` (no inversion to report). It locks the mutex once the waiter holds it, and so
    // gets it only when the waiter's wait releases it.
    let (locked_tx, locked_rx) = mpsc::channel::<()>();
    let notifier = std::thread::spawn(move || {
        let _ = locked_rx.recv();
        let mut ready = p2.0.lock();
        *ready = true;
        p2.1.notify_all();
        drop(ready);
        // Later, the reverse order: the mutex, then `outer`.
        let _ = done_rx.recv();
        let _m = p2.0.lock();
        let _o = outer2.lock();
    });
    {
        let mut ready = pair.0.lock();
        let _o = outer.lock();
        let _ = locked_tx.send(());
        while !*ready {
            pair.1.wait(&mut ready);
        }
    }
    let _ = done_tx.send(());
    let _ = notifier.join();
}

/// A join made holding the lock the joined thread waits for (the joiner closes the cycle: it
/// registers its join after the thread blocked). A thread's end is a lock of the trace (kind
/// `end`): offline sees `m -> end` and `end -> m`.
fn join_deadlock() {
    let m = Arc::new(Mutex::named("join.m", 0));
    let g = m.lock();
    let m2 = m.clone();
    let child = lockcheck::thread::spawn(move || *m2.lock() += 1);
    std::thread::sleep(Duration::from_millis(100));
    let _ = child.join();
    drop(g);
}

/// The same, the joined thread closing the cycle: it blocks after the join started.
fn join_deadlock_late() {
    let m = Arc::new(Mutex::named("joinlate.m", 0));
    let g = m.lock();
    let m2 = m.clone();
    let child = lockcheck::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        *m2.lock() += 1;
    });
    let _ = child.join();
    drop(g);
}

/// The thread took the lock and was done with it before the joiner took it (a channel, which
/// fork/join does not see, orders them): no deadlock this run, the runtime is silent; in another
/// run the joiner takes it first and both hang. The analyzer predicts it.
fn join_predicted() {
    let m = Arc::new(Mutex::named("joinpred.m", 0));
    let m2 = m.clone();
    let (tx, rx) = mpsc::channel::<()>();
    let child = lockcheck::thread::spawn(move || {
        *m2.lock() += 1;
        let _ = tx.send(());
    });
    let _ = rx.recv();
    let g = m.lock();
    let _ = child.join();
    drop(g);
}

/// Look-alike: the joiner releases the lock before it joins.
fn join_after_release() {
    let m = Arc::new(Mutex::named("joinrel.m", 0));
    let g = m.lock();
    let m2 = m.clone();
    let child = lockcheck::thread::spawn(move || *m2.lock() += 1);
    std::thread::sleep(Duration::from_millis(50));
    drop(g);
    let _ = child.join();
}

/// Look-alike: the joined thread never takes the lock the joiner holds.
fn join_other_lock() {
    let (m, n) = pair("joinother.m", "joinother.n");
    let g = m.lock();
    let child = lockcheck::thread::spawn(move || *n.lock() += 1);
    let _ = child.join();
    drop(g);
}

/// Look-alike: the joiner holds a read lock the joined thread also reads (no writer anywhere).
fn join_read_read() {
    let r = Arc::new(RwLock::named("joinrr.r", 0));
    let g = r.read();
    let r2 = r.clone();
    let child = lockcheck::thread::spawn(move || {
        let _ = *r2.read();
    });
    std::thread::sleep(Duration::from_millis(50));
    let _ = child.join();
    drop(g);
}

/// Look-alike of `join-predicted`: the thread's use of the lock happens before the joiner takes
/// it by fork/join: the thread spawns a grandchild after it, and the joiner joins the grandchild
/// before it takes the lock. No schedule deadlocks.
fn join_ordered_by_grandchild() {
    let m = Arc::new(Mutex::named("joinhb.m", 0));
    let m2 = m.clone();
    let (tx, rx) = mpsc::channel::<lockcheck::thread::JoinHandle<()>>();
    let child = lockcheck::thread::spawn(move || {
        *m2.lock() += 1;
        let _ = tx.send(lockcheck::thread::spawn(|| {}));
    });
    if let Ok(grandchild) = rx.recv() {
        let _ = grandchild.join();
    }
    let g = m.lock();
    let _ = child.join();
    drop(g);
}

/// A scope that ends (its implicit join) holding, from outside it, the lock a scoped thread
/// waits for: the scope's side closes the cycle; the scoped thread gives up (a panic of the
/// joiner would hang in std's join of the thread), and the scope panics with the report.
fn scope_deadlock() {
    let m = Mutex::named("scope.m", 0);
    let g = m.lock();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lockcheck::thread::scope(|s| {
            s.spawn(|| *m.lock() += 1);
            std::thread::sleep(Duration::from_millis(100));
        })
    }));
    drop(g);
}

/// The same, the scoped thread closing the cycle (it blocks after the scope's end began).
fn scope_deadlock_late() {
    let m = Mutex::named("scopelate.m", 0);
    let g = m.lock();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lockcheck::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                *m.lock() += 1;
            });
        })
    }));
    drop(g);
}

/// An explicit join of a scoped thread, holding (from outside the scope) the lock it waits for.
fn scoped_join_deadlock() {
    let m = Mutex::named("scopedjoin.m", 0);
    let g = m.lock();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lockcheck::thread::scope(|s| {
            let h = s.spawn(|| *m.lock() += 1);
            std::thread::sleep(Duration::from_millis(100));
            let _ = h.join();
        })
    }));
    drop(g);
}

/// Look-alike: the lock is released before the scope ends.
fn scope_after_release() {
    let m = Mutex::named("scoperel.m", 0);
    lockcheck::thread::scope(|s| {
        let g = m.lock();
        s.spawn(|| *m.lock() += 1);
        std::thread::sleep(Duration::from_millis(50));
        drop(g);
    });
}

/// A value whose drop (in a thread-local destructor) takes `A` then `B`.
struct TakesAb(
    Arc<(Mutex<u32>, Mutex<u32>)>,
    Arc<std::sync::atomic::AtomicBool>,
);

impl Drop for TakesAb {
    fn drop(&mut self) {
        let _a = self.0 .0.lock();
        let _b = self.0 .1.lock();
        self.1.store(true, std::sync::atomic::Ordering::Release);
    }
}

thread_local! {
    static TAKES_AB: std::cell::RefCell<Option<TakesAb>> = const { std::cell::RefCell::new(None) };
}

/// A scoped thread's thread-local destructor takes `A` then `B`; after the scope, its owner takes
/// `B` then `A`. The scope's implicit join waits for the thread's closure only
/// (rust-lang/rust#116179), so the destructor may still run, holding `A`, when the owner holds
/// `B`: an inversion. (The owner waits for the destructor through an atomic, which lockcheck does
/// not see, so that this run does not hang.)
fn scope_tls_destructor() {
    tls_destructor("scopetls.a", "scopetls.b", false);
}

/// Look-alike: the scoped thread is joined explicitly, which waits for its thread-local
/// destructors too (std joins the native thread).
fn scope_tls_destructor_joined() {
    tls_destructor("scopetlsjoined.a", "scopetlsjoined.b", true);
}

fn tls_destructor(a: &'static str, b: &'static str, explicit: bool) {
    let locks = Arc::new((Mutex::named(a, 0), Mutex::named(b, 0)));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    lockcheck::thread::scope(|s| {
        let value = TakesAb(Arc::clone(&locks), Arc::clone(&done));
        let h = s.spawn(move || TAKES_AB.with(|d| *d.borrow_mut() = Some(value)));
        if explicit {
            h.join().unwrap();
        }
    });
    for _ in 0..2000 {
        if done.load(std::sync::atomic::Ordering::Acquire) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _b = locks.1.lock();
    let _a = locks.0.lock();
}

/// A sharded map's reference into one shard held across an insert into another, while another
/// thread does the reverse (xacrimon/dashmap#369); the look-alike copies the value out first.
fn shards(prefix: &'static str, copy_out: bool) {
    let shards: Arc<Vec<RwLock<u32>>> =
        Arc::new((0..2).map(|_| RwLock::named(prefix, 0)).collect());
    let body = |from: usize, to: usize| -> Box<dyn FnOnce() + Send> {
        let s = shards.clone();
        Box::new(move || {
            if copy_out {
                let v = *s[from].read();
                *s[to].write() = v;
            } else {
                let r = s[from].read();
                *s[to].write() = *r;
            }
        })
    };
    one_by_one(vec![body(0, 1), body(1, 0)]);
}

fn shard_ref_insert() {
    shards("shardref.shard", false);
}

fn shard_copy_insert() {
    shards("shardcopy.shard", true);
}

/// A `OnceLock`'s initializer logging the value whose `Debug` asks for the same cell
/// (jdx/mise#1851); the look-alike logs after the initialization.
fn once_log(in_init: bool) {
    let env = lockcheck::sync::OnceLock::new();
    let get = |log: &dyn Fn() -> usize| *env.get_or_init(|| if in_init { log() + 1 } else { 1 });
    // `Debug for Config`: reads the cell.
    let debug = || *env.get_or_init(|| 0);
    let n = get(&debug);
    assert!(n > 0 && debug() > 0);
}

fn once_reentry() {
    once_log(true);
}

fn once_log_after() {
    once_log(false);
}

/// A lock held across a work-stealing fork-join whose waiting thread runs a stolen job that
/// takes it (rayon-rs/rayon#592); the look-alike releases it before the fork-join.
fn steal(release_first: bool) {
    let driver = Mutex::named(
        if release_first {
            "stealrel.driver"
        } else {
            "steal.driver"
        },
        0,
    );
    let stolen = || *driver.lock() += 1;
    if release_first {
        let n = *driver.lock();
        stolen();
        *driver.lock() += n;
    } else {
        let mut g = driver.lock();
        stolen();
        *g += 1;
    }
}

fn steal_under_lock() {
    steal(false);
}

fn steal_after_release() {
    steal(true);
}

/// A panic raised under a write guard whose panic hook reads the same lock
/// (getsentry/sentry-rust#536): reported from inside the hook; the thread is already panicking,
/// so lockcheck flushes the trace and aborts the process rather than let it hang. The
/// look-alike panics after the guard is dropped.
fn panic_hook(after: bool) {
    let hub = Arc::new(lockcheck::sync::RwLock::new(vec![1u32, 2]));
    let h = hub.clone();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _depth = h.read().map(|s| s.len());
        prev(info)
    }));
    let pop = |expected: u32| {
        if after {
            let top = hub.write().unwrap().pop();
            assert_eq!(top, Some(expected), "Tried to pop guards out of order");
        } else {
            let mut stack = hub.write().unwrap();
            assert_eq!(
                stack.last(),
                Some(&expected),
                "Tried to pop guards out of order"
            );
            stack.pop();
        }
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pop(1)));
    assert!(r.is_err());
}

fn panic_hook_relock() {
    panic_hook(false);
}

fn panic_after_release() {
    panic_hook(true);
}

/// A read guard of a writer-preferring lock held while the same thread reads it again, a writer
/// queued in between (apollographql/router#7142); the look-alike reads once at a time.
fn reread(prefix: &'static str, once: bool) {
    let ext = Arc::new(RwLock::named(prefix, 1u64));
    let queued = Arc::new(Barrier::new(2));
    let (e2, q2) = (ext.clone(), queued.clone());
    let writer = std::thread::spawn(move || {
        q2.wait();
        *e2.write() += 1;
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if once {
            let a = *ext.read();
            queued.wait();
            std::thread::sleep(Duration::from_millis(50));
            a + *ext.read()
        } else {
            let a = ext.read();
            queued.wait();
            std::thread::sleep(Duration::from_millis(50));
            let b = ext.read();
            *a + *b
        }
    }));
    let _ = writer.join();
    assert!(r.is_ok() || !once);
}

fn reread_writer_queued() {
    reread("reread.ext", false);
}

fn read_once_writer_queued() {
    reread("readonce.ext", true);
}

/// Two one-permit semaphores taken in the order requests arrive, opposite in two threads
/// (databendlabs/databend#17986); the look-alike takes them in sequence order.
fn permits(prefix: (&'static str, &'static str), seq_order: bool) {
    let a = Arc::new(Semaphore::named(prefix.0, 1));
    let b = Arc::new(Semaphore::named(prefix.1, 1));
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let _a = a.acquire();
            let _b = b.acquire();
        }),
        Box::new(move || {
            if seq_order {
                let _a = a2.acquire();
                let _b = b2.acquire();
            } else {
                let _b = b2.acquire();
                let _a = a2.acquire();
            }
        }),
    ]);
}

fn permits_arrival_order() {
    permits(("permarr.a", "permarr.b"), false);
}

fn permits_seq_order() {
    permits(("permseq.a", "permseq.b"), true);
}

/// Two locks of one class (pages), taken in ascending order by one thread and, by a merge into
/// the left sibling, in descending order by another (spacejam/sled#1520); the look-alike merges
/// into the right neighbour.
fn merge_pages(prefix: &'static str, into_right: bool) {
    let pages: Arc<Vec<Mutex<u32>>> = Arc::new((0..3).map(|_| Mutex::named(prefix, 0)).collect());
    let p2 = pages.clone();
    one_by_one(vec![
        Box::new(move || {
            let _a = pages[1].lock();
            let _b = pages[2].lock();
        }),
        Box::new(move || {
            let (empty, other) = if into_right { (1, 2) } else { (2, 1) };
            let _e = p2[empty].lock();
            let _n = p2[other].lock();
        }),
    ]);
}

fn merge_left_sibling() {
    merge_pages("mergeleft.page", false);
}

fn merge_right_neighbour() {
    merge_pages("mergeright.page", true);
}

/// A read guard alive across a call that write-locks another RwLock, against the two written in
/// the other order (openethereum/openethereum#665); the look-alike drops the guard first.
fn read_guard_call(prefix: (&'static str, &'static str), drop_first: bool) {
    let secrets = Arc::new(RwLock::named(prefix.0, 0));
    let unlocked = Arc::new(RwLock::named(prefix.1, 0));
    let (s2, u2) = (secrets.clone(), unlocked.clone());
    one_by_one(vec![
        Box::new(move || {
            let s = secrets.read();
            if drop_first {
                drop(s);
            }
            *unlocked.write() += 1;
        }),
        Box::new(move || {
            let _u = u2.write();
            *s2.write() += 1;
        }),
    ]);
}

fn read_guard_across_write() {
    read_guard_call(("guardacross.secrets", "guardacross.unlocked"), false);
}

fn read_guard_dropped() {
    read_guard_call(("guarddropped.secrets", "guarddropped.unlocked"), true);
}

/// A re-entrant lock and a mutex in opposite orders (ouch-org/ouch#642); the look-alike takes
/// the re-entrant lock first everywhere and re-enters it under the mutex.
fn reentrant_stdio(prefix: (&'static str, &'static str), fixed: bool) {
    let stderr = Arc::new(lockcheck::ReentrantMutex::named(prefix.0, ()));
    let stdin = Arc::new(Mutex::named(prefix.1, ()));
    let ask = |e: &lockcheck::ReentrantMutex<()>, i: &Mutex<()>| {
        let _e = e.lock();
        let _i = i.lock();
        let _again = e.lock();
    };
    let (e2, i2) = (stderr.clone(), stdin.clone());
    one_by_one(vec![
        Box::new(move || ask(&stderr, &stdin)),
        Box::new(move || {
            if fixed {
                ask(&e2, &i2);
            } else {
                let _i = i2.lock();
                let _e = e2.lock();
            }
        }),
    ]);
}

fn reentrant_inversion() {
    reentrant_stdio(("reentinv.stderr", "reentinv.stdin"), false);
}

fn reentrant_reentered() {
    reentrant_stdio(("reentok.stderr", "reentok.stdin"), true);
}

/// Two `LazyLock` statics holding std-style RwLocks, written in opposite orders
/// (valeriansaliou/sonic#213); the look-alike writes them in one order, the second static
/// initialized under the first's lock.
fn lazy_statics(fixed: bool) {
    use lockcheck::sync::{LazyLock, RwLock as StdRwLock};
    static POOL: LazyLock<StdRwLock<u32>> = LazyLock::new(|| StdRwLock::new(0));
    static CONSOLIDATE: LazyLock<StdRwLock<u32>> = LazyLock::new(|| StdRwLock::new(0));
    one_by_one(vec![
        Box::new(|| {
            let _p = POOL.write().unwrap();
            *CONSOLIDATE.write().unwrap() += 1;
        }),
        Box::new(move || {
            if fixed {
                let _p = POOL.write().unwrap();
                *CONSOLIDATE.write().unwrap() += 1;
            } else {
                let _c = CONSOLIDATE.write().unwrap();
                *POOL.write().unwrap() += 1;
            }
        }),
    ]);
}

fn lazy_statics_inversion() {
    lazy_statics(false);
}

fn lazy_statics_ordered() {
    lazy_statics(true);
}

/// Two jobs holding a permit each of a semaphore that limits concurrency, locking two mutexes in
/// opposite orders: a semaphore of several permits is no gate; one of one permit is.
fn limiter(prefix: (&'static str, &'static str, &'static str), permits: usize) {
    let jobs = Arc::new(Semaphore::named(prefix.0, permits));
    let (a, b) = pair(prefix.1, prefix.2);
    let (j2, a2, b2) = (jobs.clone(), a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let _p = jobs.acquire();
            let _a = a.lock();
            let _b = b.lock();
        }),
        Box::new(move || {
            let _p = j2.acquire();
            let _b = b2.lock();
            let _a = a2.lock();
        }),
    ]);
}

fn limiter_permits() {
    limiter(("limitn.jobs", "limitn.a", "limitn.b"), 3);
}

fn limiter_one_permit() {
    limiter(("limit1.jobs", "limit1.a", "limit1.b"), 1);
}

/// A read guard kept alive by a `match` scrutinee and read again in an arm (tikv/tikv#16340);
/// the look-alike binds the check's result with a `let` first (tikv/tikv#16342).
fn reread_in_match(locks: &RwLock<Vec<u32>>, bound_first: bool) -> usize {
    if bound_first {
        let first = locks.read().first().copied();
        match first {
            Some(_) => locks.read().len(),
            None => 0,
        }
    } else {
        match locks.read().first().copied() {
            Some(_) => locks.read().len(),
            None => 0,
        }
    }
}

fn scrutinee_reread() {
    let locks = RwLock::named("scrutinee.locks", vec![1]);
    reread_in_match(&locks, false);
}

fn let_bound_reread() {
    let locks = RwLock::named("letbound.locks", vec![1]);
    reread_in_match(&locks, true);
}

/// A storage's read guard held across a mutex, against the mutex then the storage's write lock
/// (gfx-rs/wgpu#418); the look-alike drops the read guard first.
fn storage_pending(prefix: (&'static str, &'static str), drop_first: bool) {
    let buffers = Arc::new(RwLock::named(prefix.0, 1));
    let pending = Arc::new(Mutex::named(prefix.1, 0));
    let (b2, p2) = (buffers.clone(), pending.clone());
    one_by_one(vec![
        Box::new(move || {
            let b = buffers.read();
            let id = *b;
            if drop_first {
                drop(b);
            }
            *pending.lock() += id;
        }),
        Box::new(move || {
            let _p = p2.lock();
            *b2.write() = 0;
        }),
    ]);
}

fn storage_read_pending() {
    storage_pending(("storageread.buffers", "storageread.pending"), false);
}

fn storage_dropped_pending() {
    storage_pending(("storagedrop.buffers", "storagedrop.pending"), true);
}

/// Locks of one class taken in the iteration orders of two hash sets (GaloyMoney/cala#532); the
/// look-alike sorts the ids.
fn account_order(prefix: &'static str, sorted: bool) {
    let accounts: Arc<Vec<Mutex<u32>>> =
        Arc::new((0..3).map(|_| Mutex::named(prefix, 0)).collect());
    let body = |ids: [usize; 2]| -> Box<dyn FnOnce() + Send> {
        let a = accounts.clone();
        Box::new(move || {
            let mut ids = ids;
            if sorted {
                ids.sort_unstable();
            }
            let _x = a[ids[0]].lock();
            let _y = a[ids[1]].lock();
        })
    };
    one_by_one(vec![body([2, 0]), body([0, 2])]);
}

fn hash_set_order() {
    account_order("hashorder.account", false);
}

fn id_order() {
    account_order("idorder.account", true);
}

/// An upgradable read then a lock, against the lock then a plain read (no writer: silent), or
/// then an upgradable read (upgradable reads exclude each other: an inversion).
fn upgradables(prefix: (&'static str, &'static str), both: bool) {
    let map = Arc::new(RwLock::named(prefix.0, 0));
    let log = Arc::new(Mutex::named(prefix.1, 0));
    let (m2, l2) = (map.clone(), log.clone());
    one_by_one(vec![
        Box::new(move || {
            let _u = map.upgradable_read();
            *log.lock() += 1;
        }),
        Box::new(move || {
            let _l = l2.lock();
            if both {
                let _u = m2.upgradable_read();
            } else {
                let _r = m2.read();
            }
        }),
    ]);
}

fn upgradable_vs_read() {
    upgradables(("upgread.map", "upgread.log"), false);
}

fn two_upgradables() {
    upgradables(("upgtwo.map", "upgtwo.log"), true);
}

/// Opposite orders under a read share of an RwLock: a read share serializes nothing (the
/// exclusive gate's look-alike is the `gate` scenario).
fn read_share_gate() {
    let gate = Arc::new(RwLock::named("readgate.gate", ()));
    let (a, b) = pair("readgate.a", "readgate.b");
    let (g2, a2, b2) = (gate.clone(), a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let _g = gate.read();
            let _a = a.lock();
            let _b = b.lock();
        }),
        Box::new(move || {
            let _g = g2.read();
            let _b = b2.lock();
            let _a = a2.lock();
        }),
    ]);
}

/// The other order by `try_lock`, backing off (everything released) when it fails.
fn try_back_off() {
    let (a, b) = pair("backoff.a", "backoff.b");
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let _a = a.lock();
            let _b = b.lock();
        }),
        Box::new(move || loop {
            let g = b2.lock();
            if a2.try_lock().is_some() {
                break;
            }
            drop(g);
            std::thread::sleep(Duration::from_millis(1));
        }),
    ]);
}

/// Lock coupling (hand over hand) down a list: in one direction only, or in both.
fn coupling(prefix: &'static str, both_ways: bool) {
    let nodes: Arc<Vec<Mutex<u32>>> = Arc::new((0..3).map(|_| Mutex::named(prefix, 0)).collect());
    let walk = |path: [usize; 3]| -> Box<dyn FnOnce() + Send> {
        let n = nodes.clone();
        Box::new(move || {
            let mut g = n[path[0]].lock();
            for &i in &path[1..] {
                let next = n[i].lock();
                *g += 1;
                g = next;
            }
        })
    };
    let back = if both_ways { [2, 1, 0] } else { [0, 1, 2] };
    one_by_one(vec![walk([0, 1, 2]), walk(back)]);
}

fn coupling_one_way() {
    coupling("couplone.node", false);
}

fn coupling_both_ways() {
    coupling("couplboth.node", true);
}

/// A rendezvous send made holding a lock that the receiving thread takes before it receives
/// (the shape of spacejam/sled#1515: the channel waits for its receiver's thread, which waits for
/// the lock); the look-alike drops the receiver before it takes the lock.
fn channel_lock(prefix: &'static str, drop_first: bool) {
    let state = Arc::new(Mutex::named(prefix, 0u32));
    let (tx, rx) = lockcheck::sync::mpsc::sync_channel::<u32>(0);
    let (ready, wait_ready) = mpsc::channel();
    let s2 = state.clone();
    let receiver = std::thread::spawn(move || {
        let _ = rx.try_recv();
        if drop_first {
            drop(rx);
            *s2.lock() += 1;
            let _ = ready.send(());
        } else {
            *s2.lock() += 1;
            let _ = ready.send(());
            until_send_waits_under(&s2);
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
    });
    let _ = wait_ready.recv();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let g = state.lock();
        let _ = tx.send(*g);
    }));
    let _ = receiver.join();
}

/// Waits until a send made holding `lock` waits (a send that finds the receiver waiting is no
/// wait): once `lock` is held and a channel wait is in the wait-for graph, or a report stopped the
/// send as it began to (at most 60 s). A 100 ms sleep did not make sure of it on a loaded machine.
fn until_send_waits_under(lock: &Mutex<u32>) {
    let start = std::time::Instant::now();
    while !((lock.is_locked()
        && lockcheck::__private::waits()
            .iter()
            .any(|(_, k)| *k == lockcheck::LockKind::Channel))
        || !lockcheck::violations().is_empty())
        && start.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn channel_send_under_lock() {
    channel_lock("chan.sendlock", false);
}

fn channel_receiver_dropped_first() {
    channel_lock("chan.dropfirst", true);
}

/// The receiving thread sends into its own full channel: it waits for itself.
fn channel_self_send() {
    let (tx, rx) = lockcheck::sync::mpsc::sync_channel::<u32>(1);
    let _ = rx.try_recv();
    let _ = tx.send(1);
    let _ = tx.send(2);
    drop(rx);
}

/// spacejam/sled#1515 as it hangs: the publisher waits in a send into the full channel holding
/// the registry's read lock, the subscriber write-locks the registry before it drops its
/// receiver. Under `warn` the inversion is reported and the write waits: a real deadlock, whose
/// victim gives up (the write panics, which drops the receiver and ends the send).
fn channel_deadlock() {
    let registry = Arc::new(RwLock::named("chan.deadlock.registry", 0u32));
    let rx = {
        let _w = registry.write();
        let (tx, rx) = lockcheck::sync::mpsc::sync_channel::<u32>(1);
        let r2 = registry.clone();
        let (sent, wait_sent) = mpsc::channel();
        let publisher = std::thread::spawn(move || {
            let _r = r2.read();
            let _ = tx.send(1);
            let _ = sent.send(());
            let _ = tx.send(2);
        });
        drop(_w);
        let _ = wait_sent.recv();
        (rx, publisher)
    };
    std::thread::sleep(Duration::from_millis(100));
    let (rx, publisher) = rx;
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _rx = rx;
        *registry.write() += 1;
    }));
    let _ = publisher.join();
}

// ---------------------------------------------------------------------------------------------
// Round 5 (tests/real_bugs_round5.rs, with the sources).

/// A registry locked across a plug-in that registers again (tokio-rs/tracing#2020); the fix
/// turns the nested registration away with a thread-local flag before the lock.
fn registry(fixed: bool) {
    thread_local! {
        static IN_REGISTER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    fn register(reg: &Mutex<Vec<u32>>, id: u32, fixed: bool, nested: bool) {
        if fixed && IN_REGISTER.with(|r| r.replace(true)) {
            return;
        }
        let mut g = reg.lock();
        g.push(id);
        if nested {
            register(reg, id + 1, fixed, false);
        }
        drop(g);
        if fixed {
            IN_REGISTER.with(|r| r.set(false));
        }
    }
    let reg = Mutex::named(
        if fixed { "registry.fixed" } else { "registry" },
        Vec::new(),
    );
    register(&reg, 1, fixed, true);
}

fn registry_relock() {
    registry(false);
}

fn registry_reentry_flag() {
    registry(true);
}

/// A callsite's `Once` re-entered from the collector (tokio-rs/tracing#2634); the fix is an
/// atomic registration state (no lock at all).
fn callsite_once_reentry() {
    let once = lockcheck::sync::Once::new();
    once.call_once(|| once.call_once(|| {}));
}

fn callsite_state_reentry() {
    use std::sync::atomic::{AtomicU8, Ordering};
    let state = AtomicU8::new(0);
    let register = |inner: &dyn Fn()| {
        if state
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            inner();
            state.store(2, Ordering::Release);
        }
    };
    register(&|| register(&|| {}));
    // The registry's lock, taken once the registration is over.
    let reg = Mutex::named("callsite.state.registry", 0);
    *reg.lock() += 1;
}

/// The last `Arc` of a layer dropped under the dispatcher list's write lock, its `Drop` reading
/// the list (tokio-rs/tracing#3269); the fix drops the upgraded `Arc`s after the guard.
fn last_arc(class: &'static str, fixed: bool) {
    struct Layer(Arc<RwLock<Vec<std::sync::Weak<Layer>>>>);
    impl Drop for Layer {
        fn drop(&mut self) {
            let _ = self.0.read().len();
        }
    }
    let list = Arc::new(RwLock::named(class, Vec::new()));
    let layer = Arc::new(Layer(list.clone()));
    list.write().push(Arc::downgrade(&layer));
    let (drop_tx, drop_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let other = lockcheck::thread::spawn(move || {
        drop_rx.recv().unwrap();
        drop(layer);
        done_tx.send(()).unwrap();
    });
    let g = list.write();
    let upgraded: Vec<_> = g.iter().filter_map(|w| w.upgrade()).collect();
    drop_tx.send(()).unwrap();
    done_rx.recv().unwrap();
    if fixed {
        drop(g);
        drop(upgraded);
    } else {
        drop(upgraded);
        drop(g);
    }
    other.join().unwrap();
}

fn last_arc_under_write() {
    last_arc("dispatchers", false);
}

fn last_arc_after_write() {
    last_arc("dispatchers.fixed", true);
}

/// A recursive value dropped under its interner's lock (droundy/internment#7); the fix drops
/// the removed value after the guard.
fn intern_drop(class: &'static str, fixed: bool) {
    /// The interned values (a handle's value holds another handle, or none), and `fixed`.
    type Table = (Mutex<Vec<(u32, Option<Handle>)>>, bool);
    struct Handle(u32, Arc<Table>);
    impl Drop for Handle {
        fn drop(&mut self) {
            let (table, fixed) = &*self.1;
            let mut t = table.lock();
            let removed = t
                .iter()
                .position(|(id, _)| *id == self.0)
                .map(|i| t.swap_remove(i));
            if *fixed {
                drop(t);
            }
            drop(removed);
        }
    }
    let interner = Arc::new((Mutex::named(class, Vec::new()), fixed));
    interner.0.lock().push((0, None));
    let zero = Handle(0, interner.clone());
    interner.0.lock().push((1, Some(zero)));
    drop(Handle(1, interner));
}

fn intern_drop_under_lock() {
    intern_drop("interner", false);
}

fn intern_drop_after_lock() {
    intern_drop("interner.fixed", true);
}

/// A write in the `else` of an `if let` on a read guard (rust-lang/rust#61228).
fn if_let_else_write() {
    let cache = RwLock::named("iflet", vec![1u32]);
    let n = if let Some(v) = cache.read().get(1) {
        *v
    } else {
        cache.write().push(2);
        0
    };
    assert!(n < 10);
}

/// Look-alike: successive `let ... else` reads, then the write (rust-lang/rust#87335).
fn let_else_reads() {
    let cache = RwLock::named("letelse", vec![1u32, 2]);
    let Some(a) = cache.read().first().copied() else {
        return;
    };
    let Some(b) = cache.read().last().copied() else {
        return;
    };
    cache.write().push(a + b);
}

/// A guard temporary of a block's tail expression, alive to the end of the statement
/// (rust-lang/rust#143224).
fn tail(class: &'static str, bound: bool) {
    let lock = Mutex::named(class, Some(1u32));
    let relock = |v: u32| *lock.lock() = Some(v);
    if bound {
        let v = {
            let mut g = lock.lock();
            g.take()
        };
        relock(v.unwrap());
    } else {
        relock({ lock.lock().take() }.unwrap());
    }
}

fn tail_temporary() {
    tail("tail", false);
}

fn tail_bound() {
    tail("tail.bound", true);
}

/// Two lazy cells whose initializers force each other (rust-lang-nursery/lazy-static.rs#37).
fn lazy_cells(cycle: bool) {
    let map = lockcheck::sync::OnceLock::<Vec<u32>>::new();
    let count = lockcheck::sync::OnceLock::<usize>::new();
    let count_of = || {
        *count.get_or_init(|| {
            if cycle {
                map.get().map_or(0, Vec::len) + map.get_or_init(|| vec![0]).len()
            } else {
                1
            }
        })
    };
    let m = map.get_or_init(|| vec![0, count_of() as u32]);
    assert_eq!(m.len(), 2);
}

fn lazy_cycle() {
    lazy_cells(true);
}

fn lazy_one_way() {
    lazy_cells(false);
}

/// An initializer that joins scoped threads which force the same cell (SauersML/gam#1253); with
/// two, the first report's panic (through `join().unwrap()`) leaves the second to the scope's
/// implicit join, made while the panic unwinds.
fn init_joins(force: bool, workers: usize) {
    let cell = lockcheck::sync::OnceLock::<Vec<u32>>::new();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cell.get_or_init(|| {
            lockcheck::thread::scope(|s| {
                let handles: Vec<_> = (0..workers)
                    .map(|_| {
                        s.spawn(|| {
                            if force {
                                cell.get_or_init(Vec::new).len() as u32
                            } else {
                                1
                            }
                        })
                    })
                    .collect();
                std::thread::sleep(Duration::from_millis(50));
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        })
        .len()
    }));
}

fn init_joins_forcers() {
    init_joins(true, 1);
}

fn init_joins_two_forcers() {
    init_joins(true, 2);
}

fn init_joins_others() {
    init_joins(false, 2);
}

/// Two entries of a sharded map held at once, their keys in one shard (xacrimon/dashmap#74).
fn shard_entries(class: &'static str, one_at_a_time: bool) {
    let shards: Vec<RwLock<Vec<u32>>> = (0..4).map(|_| RwLock::named(class, Vec::new())).collect();
    let get_mut = |key: usize| shards[key % shards.len()].write();
    if one_at_a_time {
        get_mut(1).push(1);
        get_mut(5).push(5);
    } else {
        let mut a = get_mut(1);
        let mut b = get_mut(5);
        a.push(1);
        b.push(5);
    }
}

fn shard_entries_colocated() {
    shard_entries("dashmap.entries", false);
}

fn shard_entries_one_at_a_time() {
    shard_entries("dashmap.entries.fixed", true);
}

/// A one-shot rendezvous hand-over made under a lock that the receiver takes only after it has
/// received that very value: no schedule deadlocks (the message orders the receiver's lock after
/// the send), on both sides.
fn channel_handover() {
    let state = Arc::new(Mutex::named("chan.handover.state", 0u32));
    let (tx, rx) = lockcheck::sync::mpsc::sync_channel::<u32>(0);
    let (ready, wait_ready) = mpsc::channel();
    let s2 = state.clone();
    let receiver = std::thread::spawn(move || {
        let _ = rx.try_recv();
        let _ = ready.send(());
        until_send_waits_under(&s2);
        if let Ok(v) = rx.recv() {
            *s2.lock() += v;
        }
    });
    let _ = wait_ready.recv();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let g = state.lock();
        let _ = tx.send(*g + 1);
    }));
    drop(tx);
    let _ = receiver.join();
}

/// The receiver takes the lock after message 0 and before message 1, which a send under that
/// lock then waits on: with the send first, the receiver would wait for the lock and the send for
/// the receiver. Reported on both sides (the message orders only what follows it).
fn channel_lock_before_message() {
    let state = Arc::new(Mutex::named("chan.beforemsg.state", 0u32));
    let (tx, rx) = lockcheck::sync::mpsc::sync_channel::<u32>(0);
    let (ready, wait_ready) = mpsc::channel();
    let s2 = state.clone();
    let (started, wait_started) = mpsc::channel();
    let receiver = std::thread::spawn(move || {
        // The receiver is this thread's before the first send (else the creator holds it, and
        // its send could outwait the self-send grace on a loaded machine).
        let _ = rx.try_recv();
        let _ = started.send(());
        let _ = rx.recv();
        *s2.lock() += 1;
        let _ = ready.send(());
        until_send_waits_under(&s2);
        let _ = rx.recv();
    });
    let _ = wait_started.recv();
    let _ = tx.send(0);
    let _ = wait_ready.recv();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let g = state.lock();
        let _ = tx.send(*g + 1);
    }));
    drop(tx);
    let _ = receiver.join();
}

/// The hand-over with a second sender alive (a clone, sending later): in another schedule its
/// message comes first and the receiver takes the lock while the send under it waits. Reported on
/// both sides (no order through the message: nothing in the trace either).
fn channel_handover_two_senders() {
    let state = Arc::new(Mutex::named("chan.twosenders.state", 0u32));
    let (tx, rx) = lockcheck::sync::mpsc::sync_channel::<u32>(0);
    let other = tx.clone();
    let (ready, wait_ready) = mpsc::channel();
    let s2 = state.clone();
    let receiver = std::thread::spawn(move || {
        let _ = rx.try_recv();
        let _ = ready.send(());
        until_send_waits_under(&s2);
        if let Ok(v) = rx.recv() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                *s2.lock() += v;
            }));
        }
        let _ = rx.recv();
    });
    let _ = wait_ready.recv();
    {
        let g = state.lock();
        let _ = tx.send(*g + 1);
    }
    let _ = other.send(7);
    drop((tx, other));
    let _ = receiver.join();
}

/// Two RwLocks written `writes` times each before two readers are spawned (through
/// `lockcheck::thread`), read in both orders; `writer_thread`: a thread spawned before the
/// readers and joined after them writes both too; `after_join`: written again once both readers
/// are joined.
fn config(
    prefix: (&'static str, &'static str),
    writes: u32,
    writer_thread: bool,
    after_join: bool,
) {
    let net = Arc::new(RwLock::named(prefix.0, 0));
    let disk = Arc::new(RwLock::named(prefix.1, 0));
    for i in 0..writes {
        *net.write() = i;
        *disk.write() = i;
    }
    let writer = writer_thread.then(|| {
        let (n, d) = (net.clone(), disk.clone());
        let (written, wait_written) = mpsc::channel();
        let w = lockcheck::thread::spawn(move || {
            *n.write() += 1;
            *d.write() += 1;
            let _ = written.send(());
        });
        let _ = wait_written.recv();
        w
    });
    let (n1, d1, n2, d2) = (net.clone(), disk.clone(), net.clone(), disk.clone());
    let (first_done, wait_first) = mpsc::channel();
    let r1 = lockcheck::thread::spawn(move || {
        let _n = n1.read();
        let _d = d1.read();
        drop((_n, _d));
        let _ = first_done.send(());
        std::thread::sleep(Duration::from_millis(20));
    });
    let r2 = lockcheck::thread::spawn(move || {
        let _ = wait_first.recv();
        let _d = d2.read();
        let _n = n2.read();
    });
    let _ = r1.join();
    let _ = r2.join();
    if let Some(w) = writer {
        let _ = w.join();
    }
    if after_join {
        *net.write() += 1;
        *disk.write() += 1;
    }
}

fn config_before_spawn() {
    config(("cfgbefore.net", "cfgbefore.disk"), 2, false, false);
}

fn config_writer_thread() {
    config(("cfgwriter.net", "cfgwriter.disk"), 1, true, false);
}

fn config_write_after_join() {
    config(("cfgjoin.net", "cfgjoin.disk"), 1, false, true);
}

fn config_written_often() {
    config(("cfgoften.net", "cfgoften.disk"), 20, false, false);
}

/// T1 read-locks L, spawns T3 and locks M under L; T2 (after T1's section) locks M and read-locks
/// L; T3 write-locks L once T2 is done: after joining T2 (`join`), else after a signal that
/// lockcheck does not see. The threads run one after the other: no real deadlock.
fn queued_writer(prefix: (&'static str, &'static str), join: bool) {
    let l = Arc::new(RwLock::named(prefix.0, 0));
    let m = Arc::new(Mutex::named(prefix.1, 0));
    let (t1_done, wait_t1) = mpsc::channel::<()>();
    let (t2_done, wait_t2) = mpsc::channel::<()>();
    let (l2, m2) = (l.clone(), m.clone());
    let t2 = lockcheck::thread::spawn(move || {
        let _ = wait_t1.recv();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _m = m2.lock();
            let _l = l2.read();
        }));
        let _ = t2_done.send(());
        drop(r);
    });
    let (t2_for_t3, t2_for_main) = if join {
        (Some(t2), None)
    } else {
        (None, Some(t2))
    };
    let l3 = l.clone();
    let t3 = move || {
        match t2_for_t3 {
            Some(t2) => drop(t2.join()),
            None => drop(wait_t2.recv()),
        }
        *l3.write() += 1;
    };
    // The locks stay alive until every thread is done (a dropped lock leaves the instance graph).
    let (l1, m1) = (l.clone(), m.clone());
    let t1 = lockcheck::thread::spawn(move || {
        let r = l1.read();
        let t3 = lockcheck::thread::spawn(t3);
        let g = m1.lock();
        drop((g, r));
        let _ = t1_done.send(());
        t3
    });
    if let Ok(t3) = t1.join() {
        let _ = t3.join();
    }
    if let Some(t2) = t2_for_main {
        let _ = t2.join();
    }
    drop((l, m));
}

fn queued_writer_joins_reader() {
    queued_writer(("qwjoin.l", "qwjoin.m"), true);
}

fn queued_writer_unjoined() {
    queued_writer(("qwfree.l", "qwfree.m"), false);
}

/// `threads` threads (one after the other) each take a permit of a semaphore of `permits`, then
/// another (`give_back`: after giving the first back).
fn permit_render(class: &'static str, permits: usize, threads: usize, give_back: bool) {
    let sem = Arc::new(Semaphore::named(class, permits));
    let bodies: Vec<Box<dyn FnOnce() + Send>> = (0..threads)
        .map(|_| {
            let s = sem.clone();
            Box::new(move || {
                let p = s.acquire();
                if give_back {
                    drop(p);
                }
                let _q = s.acquire();
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    one_by_one(bodies);
}

fn permit_nest() {
    permit_render("permitnest.render", 2, 2, false);
}

fn permit_given_back_first() {
    permit_render("permitback.render", 2, 2, true);
}

fn permit_nest_fewer_threads() {
    permit_render("permitfew.render", 3, 2, false);
}

// ---------------------------------------------------------------------------------------------
// A receive that waits (crates/lockcheck/src/checked/channel.rs).

/// The receiver holds `state` across `recv`; its only sender takes `state` before it sends
/// (`placed`: after a first send, else the handle's first use). The receive gives up its lock
/// after the report (under `panic` and `warn` alike), which lets the sender go on.
fn channel_recv(class: &'static str, placed: bool) {
    let state = Arc::new(Mutex::named(class, 0u32));
    let (tx, rx) = lockcheck::sync::mpsc::channel::<u32>();
    let (go, wait_go) = mpsc::channel::<()>();
    let s2 = state.clone();
    let sender = std::thread::spawn(move || {
        if placed {
            let _ = tx.send(0);
        }
        let _ = wait_go.recv();
        let v = *s2.lock();
        let _ = tx.send(v);
    });
    if placed {
        let _ = rx.recv();
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = state.lock();
        let _ = go.send(());
        let _ = rx.recv();
    }));
    let _ = sender.join();
}

fn channel_recv_under_lock() {
    channel_recv("chan.recv.state", false);
}

fn channel_recv_placed_sender() {
    channel_recv("chan.recv.placed.state", true);
}

/// Two senders: one waits for the receiver's lock, the other, free, delivers past the receive's
/// grace. No deadlock.
fn channel_recv_free_sender() {
    let state = Arc::new(Mutex::named("chan.recv.free.state", 0u32));
    let (tx, rx) = lockcheck::sync::mpsc::channel::<u32>();
    let tx2 = tx.clone();
    let (go, wait_go) = mpsc::channel::<()>();
    let s2 = state.clone();
    let blocked = std::thread::spawn(move || {
        let _ = tx.send(1);
        let _ = wait_go.recv();
        let v = *s2.lock();
        let _ = tx.send(v);
    });
    let free = std::thread::spawn(move || {
        let _ = tx2.send(2);
        std::thread::sleep(Duration::from_millis(1500));
        let _ = tx2.send(3);
    });
    let _ = (rx.recv(), rx.recv());
    {
        let _g = state.lock();
        let _ = go.send(());
        let _ = rx.recv();
    }
    let _ = rx.recv();
    let _ = (blocked.join(), free.join());
}

/// The receiver holds a lock no sender needs while it waits (past its grace) for a slow sender.
fn channel_recv_unneeded_lock() {
    let results = Mutex::named("chan.recv.unneeded.results", Vec::new());
    let (tx, rx) = lockcheck::sync::mpsc::sync_channel::<u32>(0);
    let worker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let _ = tx.send(7);
    });
    {
        let mut r = results.lock();
        r.extend(rx.iter());
    }
    let _ = worker.join();
}

/// With the opt-in prediction: a sender takes `state` between two sends; the receiver, later,
/// waits for the second message holding `state` (`predicted`), or takes `state` only after it.
fn channel_recv_predict(class: &'static str, under: bool) {
    lockcheck::watchdog::set_channel_recv_check(true);
    let state = Arc::new(Mutex::named(class, 0u32));
    let (tx, rx) = lockcheck::sync::mpsc::channel::<u32>();
    let (done, wait_done) = mpsc::channel::<()>();
    let s2 = state.clone();
    let sender = std::thread::spawn(move || {
        let _ = tx.send(0);
        *s2.lock() += 1;
        let _ = done.send(());
        std::thread::sleep(Duration::from_millis(200));
        let _ = tx.send(1);
    });
    let _ = rx.recv();
    let _ = wait_done.recv();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if under {
            let _g = state.lock();
            let _ = rx.recv();
        } else {
            let _ = rx.recv();
            *state.lock() += 1;
        }
    }));
    let _ = sender.join();
}

fn channel_recv_predicted() {
    channel_recv_predict("chan.recv.predicted.state", true);
}

fn channel_recv_predicted_lock_after() {
    channel_recv_predict("chan.recv.predicted.after.state", false);
}

/// A one-time initializer that gives up the lock its caller held and takes it back (the GIL
/// released by Python code), then, on another thread, a caller holding that lock that finds the
/// initialization done (`keeps`: the initializer keeps the lock).
fn gil_in_init(class: &'static str, keeps: bool) {
    let gil = Arc::new(Mutex::named(class, ()));
    let api = Arc::new(lockcheck::sync::Once::new());
    let (gil2, api2) = (gil.clone(), api.clone());
    one_by_one(vec![
        Box::new(move || {
            let mut held = Some(gil.lock());
            api.call_once(|| {
                if !keeps {
                    drop(held.take());
                    held = Some(gil.lock());
                }
            });
        }),
        Box::new(move || {
            let _gil = gil2.lock();
            api2.call_once(|| {});
        }),
    ]);
}

fn gil_retaken_in_init() {
    gil_in_init("gilretaken.gil", false);
}

fn gil_kept_in_init() {
    gil_in_init("gilkept.gil", true);
}

/// A value compared with itself by a `PartialEq` that read-locks both sides (`ptr_first`: an
/// identity check first), then with another value of its class.
fn eq_self(class: &'static str, ptr_first: bool) {
    let pool = Arc::new(RwLock::named(class, 1u32));
    let eq = |a: &RwLock<u32>, b: &RwLock<u32>| {
        if ptr_first && std::ptr::eq(a, b) {
            return true;
        }
        *a.read() == *b.read()
    };
    assert!(eq(&pool, &pool.clone()));
    // And two values compared (one read of each, nested).
    let other = RwLock::named(class, 1u32);
    assert!(eq(&pool, &other));
}

fn eq_itself() {
    eq_self("eqitself.pool", false);
}

fn eq_itself_ptr_first() {
    eq_self("eqptr.pool", true);
}

/// Two values of one class compared both ways on two threads, read-locking both sides, after a
/// writer thread (`by_address`: each comparison locks the lower address first).
fn eq_two(class: &'static str, by_address: bool) {
    let a = Arc::new(RwLock::named(class, 1u32));
    let b = Arc::new(RwLock::named(class, 1u32));
    let (a1, b1) = (a.clone(), b.clone());
    std::thread::spawn(move || {
        *a1.write() += 1;
        *b1.write() += 1;
    })
    .join()
    .unwrap();
    let eq = move |x: &RwLock<u32>, y: &RwLock<u32>| {
        let (x, y) = if by_address && (y as *const _) < (x as *const _) {
            (y, x)
        } else {
            (x, y)
        };
        let gx = x.read();
        let gy = y.read();
        *gx == *gy
    };
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || assert!(eq(&a, &b))),
        Box::new(move || assert!(eq(&b2, &a2))),
    ]);
}

fn eq_both_ways() {
    eq_two("eqboth.graph", false);
}

fn eq_by_address() {
    eq_two("eqaddr.graph", true);
}

/// wgpu's snatch lock (an `RwLock`, read by both sides) and trackers (a mutex) in opposite
/// orders (`fixed`: the snatch lock first on both); `writer`: a resource destroyed (a write).
fn snatch(prefix: (&'static str, &'static str), fixed: bool, writer: bool) {
    let snatchable = Arc::new(RwLock::named(prefix.0, ()));
    let trackers = Arc::new(Mutex::named(prefix.1, 0u32));
    if writer {
        let s = snatchable.clone();
        std::thread::spawn(move || drop(s.write())).join().unwrap();
    }
    let (s2, t2) = (snatchable.clone(), trackers.clone());
    one_by_one(vec![
        Box::new(move || {
            let _s = snatchable.read();
            *trackers.lock() += 1;
        }),
        Box::new(move || {
            if fixed {
                let _s = s2.read();
                *t2.lock() += 1;
            } else {
                let mut t = t2.lock();
                let _s = s2.read();
                *t += 1;
            }
        }),
    ]);
}

fn snatch_read_writer() {
    snatch(("snatchw.snatchable", "snatchw.trackers"), false, true);
}

fn snatch_read_first() {
    snatch(("snatchf.snatchable", "snatchf.trackers"), true, true);
}

fn snatch_read_unwritten() {
    snatch(("snatchu.snatchable", "snatchu.trackers"), false, false);
}

/// A record whose `Debug` logs, appended under the appender's mutex (`reentrant`: a re-entrant
/// lock, the nested record written first).
fn log_appender(class: &'static str, reentrant: bool) {
    if reentrant {
        let w = lockcheck::ReentrantMutex::named(class, std::cell::RefCell::new(0u32));
        let append = |nested: bool| {
            let g = w.lock();
            if nested {
                let inner = w.lock();
                *inner.borrow_mut() += 1;
            }
            *g.borrow_mut() += 1;
        };
        append(true);
    } else {
        let w = Mutex::named(class, 0u32);
        let mut g = w.lock();
        *w.lock() += 1;
        *g += 1;
    }
}

fn log_under_appender() {
    log_appender("logplain.appender", false);
}

fn log_under_reentrant() {
    log_appender("logreent.appender", true);
}

/// bevy's asset processor: `asset_infos` read, an asset's lock taken under it, `asset_infos`
/// dropped, then (first thread) `asset_infos` written under the asset's lock for a nested asset
/// (`fixed`: the asset's lock taken after `asset_infos` is dropped).
fn asset_processor(prefix: (&'static str, &'static str), fixed: bool) {
    let asset = Arc::new(RwLock::named(prefix.1, 0u32));
    let infos = Arc::new(RwLock::named(prefix.0, vec![asset]));
    let process = move |infos: &RwLock<Vec<Arc<RwLock<u32>>>>, nested: bool| {
        let lock: Arc<RwLock<u32>>;
        let guard;
        if fixed {
            lock = infos.read()[0].clone();
            guard = lock.write();
        } else {
            let i = infos.read();
            lock = i[0].clone();
            guard = lock.write();
            drop(i);
        }
        if nested {
            let n = infos.read()[0].clone();
            infos.write().push(n);
        }
        drop(guard);
    };
    let infos2 = infos.clone();
    one_by_one(vec![
        Box::new(move || process(&infos, true)),
        Box::new(move || process(&infos2, false)),
    ]);
}

fn infos_then_asset_back() {
    asset_processor(("infosback.infos", "infosback.asset"), false);
}

fn asset_after_infos_dropped() {
    asset_processor(("infosdropped.infos", "infosdropped.asset"), true);
}

/// A task that takes `infos`, spawned while the spawner holds it: run inline (single-threaded
/// pool) or on a thread of its own; `dropped_first`: the guard is dropped before the spawn.
fn task_under_lock(class: &'static str, inline: bool, dropped_first: bool) {
    let infos = Arc::new(RwLock::named(class, 0u32));
    let guard = infos.write();
    let i2 = infos.clone();
    let task = move || *i2.write() += 1;
    if dropped_first {
        drop(guard);
        task();
    } else if inline {
        task();
        drop(guard);
    } else {
        let h = lockcheck::thread::spawn(task);
        drop(guard);
        h.join().unwrap();
    }
}

fn task_inline_under_lock() {
    task_under_lock("taskinline.infos", true, false);
}

fn task_inline_after_drop() {
    task_under_lock("taskdropped.infos", true, true);
}

fn task_thread_under_lock() {
    task_under_lock("taskthread.infos", false, false);
}

/// Two threads read two RwLocks in opposite orders; then a third takes an upgradable read of
/// each and (`how`) upgrades it or not.
fn read_read_then_upgrades(prefix: (&'static str, &'static str), how: Upgrade) {
    let a = Arc::new(RwLock::named(prefix.0, 0));
    let b = Arc::new(RwLock::named(prefix.1, 0));
    let (a2, b2, a3, b3) = (a.clone(), b.clone(), a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let _x = a.read();
            let _y = b.read();
        }),
        Box::new(move || {
            let _y = b2.read();
            let _x = a2.read();
        }),
        Box::new(move || {
            // By reference: the locks live on (a dropped lock leaves the runtime's instance
            // graph, which would then see the cycle at class level only).
            for l in [&a3, &b3] {
                let u = l.upgradable_read();
                match how {
                    Upgrade::Blocking => {
                        let _w = lockcheck::RwLockUpgradableReadGuard::upgrade(u);
                    }
                    Upgrade::Try => {
                        let w = lockcheck::RwLockUpgradableReadGuard::try_upgrade(u);
                        assert!(w.is_ok(), "no other reader: the upgrade succeeds");
                    }
                    Upgrade::Never => drop(u),
                }
            }
        }),
    ]);
}

/// How [`read_read_then_upgrades`] upgrades.
#[derive(Clone, Copy)]
enum Upgrade {
    Blocking,
    Try,
    Never,
}

fn upgrades_write_read_read() {
    read_read_then_upgrades(("upgw.a", "upgw.b"), Upgrade::Blocking);
}

fn try_upgrades_write_read_read() {
    read_read_then_upgrades(("tryupgw.a", "tryupgw.b"), Upgrade::Try);
}

fn upgradable_never_upgraded() {
    read_read_then_upgrades(("upgnever.a", "upgnever.b"), Upgrade::Never);
}

/// A spin lock (a `try_lock` retried until it succeeds) re-entered by the thread that holds it.
fn spin_on_own_lock() {
    let m = Mutex::named("spin.own", 0);
    let _g = m.lock();
    let _again = loop {
        if let Some(g) = m.try_lock() {
            break g;
        }
        std::hint::spin_loop();
    };
}

/// A try of a held lock that gives up after a few failures: no wait.
fn bounded_try_of_own_lock() {
    let m = Mutex::named("spin.bounded", 0);
    let _g = m.lock();
    for _ in 0..10 {
        assert!(m.try_lock().is_none());
    }
}

/// Holds `b` on another thread for a while, so that a try of it fails many times in a row.
fn hold_for_a_while(b: Arc<Mutex<u32>>) -> std::thread::JoinHandle<()> {
    let (held_tx, held_rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let _g = b.lock();
        held_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    });
    held_rx.recv().unwrap();
    h
}

/// Spins on `b` (a `try_lock` retried until it succeeds) while another thread holds it, and
/// lets that thread go (drops `go`) once the spin failed `TRY_RETRIES` times in a row: a retry
/// loop whatever the machine's speed (a holder that let go after 300 ms could do so before the
/// thousandth failure on a loaded machine).
fn spin_on(b: &Mutex<u32>, go: mpsc::Sender<()>) -> lockcheck::MutexGuard<'_, u32> {
    let mut go = Some(go);
    let mut failed = 0;
    loop {
        if let Some(g) = b.try_lock() {
            return g;
        }
        failed += 1;
        if failed == lockcheck_core::trace::TRY_RETRIES {
            drop(go.take());
        }
        std::hint::spin_loop();
    }
}

/// One thread spins on `b` holding `a` (while a third holds `b`), another takes `b` then `a`.
fn spin_ab_ba(prefix: (&'static str, &'static str), holding: bool) {
    let (a, b) = pair(prefix.0, prefix.1);
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let (go, holder) = hold_until_told(b.clone());
            let x = holding.then(|| a.lock());
            let _y = spin_on(&b, go);
            drop(x);
            holder.join().unwrap();
        }),
        Box::new(move || {
            let _y = b2.lock();
            let _x = a2.lock();
        }),
    ]);
}

fn spin_under_lock_ab_ba() {
    spin_ab_ba(("spin.a", "spin.b"), true);
}

fn spin_holding_nothing() {
    spin_ab_ba(("spinfree.a", "spinfree.b"), false);
}

/// Holds `b` on another thread until told to let go (the returned sender, dropped or sent to).
fn hold_until_told(b: Arc<Mutex<u32>>) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (held_tx, held_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        let _g = b.lock();
        held_tx.send(()).unwrap();
        let _ = go_rx.recv();
    });
    held_rx.recv().unwrap();
    (go_tx, h)
}

/// One thread holds `a` and fails `tries` tries of `b` in a row (held by a third thread), in
/// `streaks` streaks (`a` released and taken again between two); another takes `b` then `a`.
fn tries_ab_ba(prefix: (&'static str, &'static str), streaks: u32, tries: u32) {
    let (a, b) = pair(prefix.0, prefix.1);
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let (go, holder) = hold_until_told(b.clone());
            for _ in 0..streaks {
                let _x = a.lock();
                for _ in 0..tries {
                    assert!(b.try_lock().is_none());
                }
            }
            drop(go);
            holder.join().unwrap();
        }),
        Box::new(move || {
            let _y = b2.lock();
            let _x = a2.lock();
        }),
    ]);
}

fn spin_million_under_lock_ab_ba() {
    tries_ab_ba(("spinm.a", "spinm.b"), 1, 1_000_000);
}

fn spin_999_under_lock() {
    tries_ab_ba(
        ("spin999.a", "spin999.b"),
        3,
        lockcheck_core::trace::TRY_RETRIES - 1,
    );
}

fn try_back_off_retried() {
    let (a, b) = pair("backoff2.a", "backoff2.b");
    let (a2, b2) = (a.clone(), b.clone());
    one_by_one(vec![
        Box::new(move || {
            let holder = hold_for_a_while(b.clone());
            loop {
                let x = a.lock();
                if let Some(y) = b.try_lock() {
                    drop((y, x));
                    break;
                }
                drop(x);
                std::hint::spin_loop();
            }
            holder.join().unwrap();
        }),
        Box::new(move || {
            let _y = b2.lock();
            let _x = a2.lock();
        }),
    ]);
}

/// Waits until a thread is blocked on a lock of class `class` in the wait-for graph (at most
/// 60 s): a sleep orders nothing on a loaded machine.
fn until_blocked_on(class: &str) {
    let start = std::time::Instant::now();
    while !lockcheck::__private::waits()
        .iter()
        .any(|(c, _)| c == class)
        && start.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One thread reads `deps` and holds `memo` upgradable; another reads `memo` and then (unless
/// `let_go`, which releases that read first) waits to write `deps`; then the first upgrades
/// `memo`, which waits for the other's read of it to leave: with the read kept, both wait for
/// good. The writer is waiting (it wrote its `request`) before the upgrade starts.
fn upgrade_while_writer_waits(prefix: (&'static str, &'static str), let_go: bool) {
    let memo = Arc::new(RwLock::named(prefix.0, 0));
    let deps = Arc::new(RwLock::named(prefix.1, 0));
    let (m2, d2) = (memo.clone(), deps.clone());
    let d = deps.read();
    let u = memo.upgradable_read();
    let (read_tx, read_rx) = mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let m = m2.read();
        let _ = read_tx.send(());
        if let_go {
            drop(m);
            let _d = d2.write();
        } else {
            let _d = d2.write();
            drop(m);
        }
    });
    read_rx.recv().expect("the writer read");
    // The writer waits for `deps` (a 200 ms sleep did not make sure of it on a loaded machine).
    until_blocked_on(prefix.1);
    let w = lockcheck::RwLockUpgradableReadGuard::upgrade(u);
    drop(w);
    drop(d);
    writer.join().expect("the writer finishes");
}

fn upgrade_closes_cycle_and_hangs() {
    upgrade_while_writer_waits(("upghang.memo", "upghang.deps"), false);
}

fn upgrade_after_writer_let_go() {
    upgrade_while_writer_waits(("upgletgo.memo", "upgletgo.deps"), true);
}

/// The waiter holds `state` at the barrier; the other participant takes `state` before it
/// arrives, after `rounds` generations passed holding nothing. The waiter gives up (its
/// arrival counted) and the other goes on.
fn barrier_hang(name: &'static str, rounds: usize) {
    let state = Arc::new(Mutex::named(name, 0u32));
    let barrier = Arc::new(lockcheck::sync::Barrier::new(2));
    let (go, wait_go) = mpsc::channel::<()>();
    let (s2, b2) = (state.clone(), barrier.clone());
    let other = std::thread::spawn(move || {
        for _ in 0..rounds {
            b2.wait();
        }
        let _ = wait_go.recv();
        *s2.lock() += 1;
        b2.wait();
    });
    for _ in 0..rounds {
        barrier.wait();
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = state.lock();
        let _ = go.send(());
        barrier.wait();
    }));
    let _ = other.join();
}

fn barrier_under_lock() {
    barrier_hang("barrier.first.state", 0);
}

fn barrier_known_participant() {
    barrier_hang("barrier.known.state", 2);
}

/// A barrier of two between a waiter holding nothing (started by `lockcheck::thread`) and a
/// participant that passes one generation with it, then joins it before arriving: the waiter
/// gives up (its arrival counted), the join ends, the participant arrives.
fn barrier_join_waiter() {
    let barrier = Arc::new(lockcheck::sync::Barrier::new(2));
    let joiner = lockcheck::thread::spawn(move || {
        let b = barrier.clone();
        let waiter = lockcheck::thread::spawn(move || {
            b.wait();
            b.wait();
        });
        barrier.wait();
        std::thread::sleep(Duration::from_millis(100));
        let _ = waiter.join();
        barrier.wait();
    });
    let _ = joiner.join();
}

/// The waiter (started by `lockcheck::thread`) holds nothing but the only sender of a channel;
/// the other participant receives from it holding a lock before arriving.
fn barrier_receive_from_waiter() {
    let barrier = Arc::new(lockcheck::sync::Barrier::new(2));
    let (tx, rx) = lockcheck::sync::mpsc::channel::<u32>();
    let b = barrier.clone();
    let feeder = lockcheck::thread::spawn(move || {
        let _ = tx.send(1);
        b.wait();
        b.wait();
        let _ = tx.send(2);
    });
    let state = Mutex::named("barrier.recv.state", ());
    let _ = rx.recv();
    barrier.wait();
    std::thread::sleep(Duration::from_millis(100));
    {
        let _g = state.lock();
        let _ = rx.recv();
    }
    barrier.wait();
    let _ = feeder.join();
}

/// A wait at a barrier holding nothing; the other participant arrives 100 ms later.
fn barrier_no_lock_late() {
    let barrier = Arc::new(lockcheck::sync::Barrier::new(2));
    let b = barrier.clone();
    let waiter = lockcheck::thread::spawn(move || {
        b.wait();
    });
    std::thread::sleep(Duration::from_millis(100));
    barrier.wait();
    let _ = waiter.join();
}

/// The lock is released before the wait; the other participant takes it, then arrives.
fn barrier_released_first() {
    let state = Arc::new(Mutex::named("barrier.released.state", 0u32));
    let barrier = Arc::new(lockcheck::sync::Barrier::new(2));
    let (s2, b2) = (state.clone(), barrier.clone());
    let other = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        *s2.lock() += 1;
        b2.wait();
    });
    drop(state.lock());
    barrier.wait();
    let _ = other.join();
}

/// A lock held at the barrier that no participant takes (a bystander waits for it, past the
/// one-second grace, while the participant is busy): everybody goes on.
fn barrier_unneeded_lock() {
    let state = Arc::new(Mutex::named("barrier.unneeded.state", 0u32));
    let barrier = Arc::new(lockcheck::sync::Barrier::new(2));
    let b2 = barrier.clone();
    let participant = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        b2.wait();
    });
    let s3 = state.clone();
    let (go, wait_go) = mpsc::channel::<()>();
    let bystander = std::thread::spawn(move || {
        let _ = wait_go.recv();
        *s3.lock() += 1;
    });
    {
        let _g = state.lock();
        let _ = go.send(());
        barrier.wait();
    }
    let _ = (participant.join(), bystander.join());
}

/// Hold `L` and wait at the barrier; the other waits at the barrier, then takes `L`: after the
/// generation opened, so it never kept it from opening. Over generations, `L` held at every
/// other one only.
fn barrier_take_after_opening() {
    let state = Arc::new(Mutex::named("barrier.after.state", 0u32));
    let barrier = Arc::new(lockcheck::sync::Barrier::new(2));
    let (s2, b2) = (state.clone(), barrier.clone());
    let taker = std::thread::spawn(move || {
        for round in 0..20 {
            b2.wait();
            if round % 2 == 0 {
                *s2.lock() += 1;
            }
        }
    });
    for round in 0..20 {
        if round % 2 == 0 {
            let _g = state.lock();
            barrier.wait();
        } else {
            barrier.wait();
        }
    }
    let _ = taker.join();
}

/// Two `lockcheck::thread`s, each joining the handle it receives; `mutual`: the second gets the
/// first's, else the spawning thread joins the first. Waits until both are done.
fn joins(mutual: bool) {
    type Handle = lockcheck::thread::JoinHandle<()>;
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let joiner = |rx: mpsc::Receiver<Option<Handle>>, done: mpsc::Sender<()>| {
        move || {
            if let Ok(Some(other)) = rx.recv() {
                // The deadlock's victim panics out of its join; the other's join then ends.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| other.join()));
            }
            let _ = done.send(());
        }
    };
    let (to_first, first_rx) = mpsc::channel();
    let (to_second, second_rx) = mpsc::channel();
    let first = lockcheck::thread::spawn(joiner(first_rx, done_tx.clone()));
    let second = lockcheck::thread::spawn(joiner(second_rx, done_tx));
    let _ = to_first.send(Some(second));
    if mutual {
        let _ = to_second.send(Some(first));
    } else {
        let _ = to_second.send(None);
        let _ = first.join();
    }
    for _ in 0..2 {
        let _ = done_rx.recv();
    }
}

fn join_each_other() {
    joins(true);
}

fn join_one_way() {
    joins(false);
}

/// A thread-local whose destructor takes a registry's lock (a per-thread cache flushed at the
/// thread's exit).
struct FlushAtExit(Arc<Mutex<u32>>);

impl Drop for FlushAtExit {
    fn drop(&mut self) {
        *self.0.lock() += 1;
    }
}

thread_local! {
    static EXIT_CACHE: std::cell::RefCell<Option<FlushAtExit>> =
        const { std::cell::RefCell::new(None) };
}

/// A worker fills its thread-local cache; the owner joins it holding the registry's lock
/// (`hold`), or after releasing it.
fn tls_dtor_join(class: &'static str, hold: bool) {
    let registry = Arc::new(Mutex::named(class, 0u32));
    let r = registry.clone();
    let (go, wait_go) = mpsc::channel::<()>();
    let worker = lockcheck::thread::spawn(move || {
        EXIT_CACHE.with(|c| *c.borrow_mut() = Some(FlushAtExit(r)));
        let _ = wait_go.recv();
    });
    let g = registry.lock();
    let _ = go.send(());
    if !hold {
        drop(g);
        let _ = worker.join();
        return;
    }
    // The join waits for the destructor, which waits for `g`: a hang, reported; the joiner
    // gives up its locks (a destructor cannot panic).
    let _ = worker.join();
    drop(g);
}

/// rust-lang/rust#116179: an explicit join holding the lock the joined thread's thread-local
/// destructor takes.
fn tls_dtor_join_under_lock() {
    tls_dtor_join("tlsjoin.registry", true);
}

/// Look-alike: the lock released before the join.
fn tls_dtor_join_after_release() {
    tls_dtor_join("tlsjoin.fixed.registry", false);
}

/// Look-alike: the scope's implicit join, holding the lock the scoped thread's thread-local
/// destructor takes, waits for the thread's closure only (rust-lang/rust#116179): the destructor
/// waits for the owner, which lets go after the scope. No hang, at runtime or offline.
fn tls_dtor_scope_under_lock() {
    let registry = Arc::new(Mutex::named("tlsscope.registry", 0u32));
    let g = registry.lock();
    lockcheck::thread::scope(|s| {
        let r = registry.clone();
        s.spawn(move || EXIT_CACHE.with(|c| *c.borrow_mut() = Some(FlushAtExit(r))));
    });
    drop(g);
    // The destructor's turn, before the scenario ends.
    while *registry.lock() == 0 {
        std::thread::yield_now();
    }
}

/// A scoped thread's value whose drop takes a lock (a registration that removes itself).
struct Unregisters<'a>(&'a Mutex<u32>);

impl Drop for Unregisters<'_> {
    fn drop(&mut self) {
        *self.0.lock() += 1;
    }
}

/// A scope ending while holding the lock its thread's value takes when dropped: with the handle
/// gone, std drops the value in the thread after its closure, and the scope's implicit join
/// waits for that drop (unlike the thread-local destructors): a hang, reported.
fn scope_value_drop_under_lock() {
    let registry = Mutex::named("scopevalue.registry", 0u32);
    let (go, wait_go) = mpsc::channel::<()>();
    let g = registry.lock();
    let r = &registry;
    lockcheck::thread::scope(|s| {
        s.spawn(move || {
            let _ = wait_go.recv();
            Unregisters(r)
        });
        let _ = go.send(());
    });
    drop(g);
}

/// parity-ethereum's verification queue (openethereum/parity-ethereum#3885): a verifier waits
/// on `more` with its mutex while the state is not `exit`; the owner sets `exit` under the state
/// lock and notifies `more`, taking its mutex in between only when `take_mutex` (the fix,
/// #3903). The notify comes once the verifier is in its wait (an observer thread took the
/// mutex, which the wait released): this run ends, and the rule predicts the order that hangs
/// (the notify between the verifier's check and its wait). `timed`: the verifier waits with a
/// timeout (a lost notify only delays it).
fn verification_queue(
    state_class: &'static str,
    more_class: &'static str,
    take_mutex: bool,
    timed: bool,
) {
    let state = Arc::new(Mutex::named(state_class, false));
    let more = Arc::new((Mutex::named(more_class, ()), lockcheck::Condvar::new()));
    let (s, m) = (state.clone(), more.clone());
    let (waiting_tx, waiting_rx) = mpsc::channel::<()>();
    let verifier = std::thread::spawn(move || {
        let mut g = m.0.lock();
        while !*s.lock() {
            let _ = waiting_tx.send(());
            if timed {
                m.1.wait_for(&mut g, Duration::from_secs(30));
            } else {
                m.1.wait(&mut g);
            }
        }
    });
    let _ = waiting_rx.recv();
    let m = more.clone();
    let _ = std::thread::spawn(move || drop(m.0.lock())).join();
    *state.lock() = true;
    if take_mutex {
        drop(more.0.lock());
    }
    more.1.notify_all();
    let _ = verifier.join();
}

/// The state changed under another lock, then a notify without the waiters' mutex.
fn lost_wakeup_notify_without_mutex() {
    verification_queue("lostwake.state", "lostwake.more", false, false);
}

/// Look-alike: parity-ethereum#3903's fix, the mutex taken between the change and the notify.
fn lost_wakeup_mutex_taken_first() {
    verification_queue("lostwake.fixed.state", "lostwake.fixed.more", true, false);
}

/// Look-alike: the same notify, but the verifier waits with a timeout.
fn lost_wakeup_timed_wait() {
    verification_queue("lostwake.timed.state", "lostwake.timed.more", false, true);
}

/// A worker takes `taken` (and releases it), then notifies a condvar, before the waiter waits on
/// it (the worker is joined first: the runtime has seen the notify, whatever the timing); the
/// waiter then waits (timed: nobody notifies again) holding `held` until the wait or not.
fn condvar_wait_holding(
    classes: [&'static str; 3],
    waiter_takes_notifiers_lock: bool,
    release_before_wait: bool,
) {
    let [lock_class, other_class, mutex_class] = classes;
    let lock = Arc::new(Mutex::named(lock_class, 0u32));
    let other = Arc::new(Mutex::named(other_class, 0u32));
    let pair = Arc::new((Mutex::named(mutex_class, false), lockcheck::Condvar::new()));
    let (l, p) = (lock.clone(), pair.clone());
    let _ = std::thread::spawn(move || {
        *l.lock() += 1;
        *p.0.lock() = true;
        p.1.notify_all();
    })
    .join();
    let held = if waiter_takes_notifiers_lock {
        &lock
    } else {
        &other
    };
    let h = held.lock();
    if release_before_wait {
        drop(h);
        let mut g = pair.0.lock();
        let _ = pair.1.wait_for(&mut g, Duration::from_millis(5));
    } else {
        let mut g = pair.0.lock();
        let _ = pair.1.wait_for(&mut g, Duration::from_millis(5));
        drop(g);
        drop(h);
    }
}

/// cloud-hypervisor#8092's shape: the wait holds the lock the notifier took before notifying.
fn condvar_wait_holding_notifier_lock() {
    condvar_wait_holding(["cvwait.l", "cvwait.other", "cvwait.m"], true, false);
}

/// Look-alike: its fix, the lock released before the wait.
fn condvar_wait_lock_released_first() {
    condvar_wait_holding(
        ["cvwait.fixed.l", "cvwait.fixed.other", "cvwait.fixed.m"],
        true,
        true,
    );
}

/// Look-alike: the wait holds a lock the notifier never takes.
fn condvar_wait_notifier_never_takes() {
    condvar_wait_holding(
        ["cvwait.never.l", "cvwait.never.other", "cvwait.never.m"],
        false,
        false,
    );
}

/// Look-alike: the notifier took the waiter's lock before its own wait on the condvar, which
/// starts its window again (`tests/condvar_latch.rs`): not in the window of its notify.
fn condvar_wait_notifier_took_it_before_its_wait() {
    let lock = Arc::new(Mutex::named("cvwait.before.l", 0u32));
    let pair = Arc::new((
        Mutex::named("cvwait.before.m", false),
        lockcheck::Condvar::new(),
    ));
    let (l, p) = (lock.clone(), pair.clone());
    let _ = std::thread::spawn(move || {
        *l.lock() += 1;
        let mut g = p.0.lock();
        let _ = p.1.wait_for(&mut g, Duration::from_millis(1));
        *g = true;
        p.1.notify_all();
    })
    .join();
    let _h = lock.lock();
    let mut g = pair.0.lock();
    let _ = pair.1.wait_for(&mut g, Duration::from_millis(5));
}
