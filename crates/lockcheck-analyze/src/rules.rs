//! What every finding, filter and timeout flag means, and how to fix it: the text of
//! `lockcheck explain <rule>` and the SARIF rules' help.
//!
//! Findings have stable rule ids (`lockcheck/lock-order-inversion`,
//! `lockcheck/class-lock-order-inversion`, `lockcheck/hierarchy-violation`,
//! `lockcheck/self-deadlock`, `lockcheck/recursive-read`); filters and timeout
//! flags are known by the names the report prints (`gate-lock`, `livelock-risk`, ...).

/// What a name in [`RULES`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// A finding: a violation, exit code 1 (a SARIF rule).
    Finding,
    /// A filter that removes a candidate cycle as infeasible.
    Filter,
    /// A flag on a class in the timeout table.
    TimeoutFlag,
}

/// One explained name.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The id (`lockcheck/...` for findings, the bare name for filters and flags).
    pub id: &'static str,
    /// A short CamelCase name (SARIF `name`).
    pub name: &'static str,
    /// One sentence.
    pub short: &'static str,
    /// What it means, in a paragraph.
    pub what: &'static str,
    /// How to fix it (findings), or what to do about it.
    pub fix: &'static str,
    /// What kind of name this is.
    pub category: Category,
}

/// Rule id of a lock-order inversion at instance level.
pub const LOCK_ORDER_INVERSION: &str = "lockcheck/lock-order-inversion";
/// Rule id of a lock-order inversion at class level.
pub const CLASS_LOCK_ORDER_INVERSION: &str = "lockcheck/class-lock-order-inversion";
/// Rule id of an acquisition against the declared hierarchy.
pub const HIERARCHY_VIOLATION: &str = "lockcheck/hierarchy-violation";
/// Rule id of a thread acquiring a lock it already holds.
pub const SELF_DEADLOCK: &str = "lockcheck/self-deadlock";
/// Rule id of a thread read-locking an RwLock it already read-holds.
pub const RECURSIVE_READ: &str = "lockcheck/recursive-read";
/// Rule id of a sync lock held by a task suspended at an `.await`.
pub const HELD_ACROSS_AWAIT: &str = "lockcheck/held-across-await";
/// A lock a `fork` left held, requested by the child's only thread.
pub const FORK_LEFT_HELD: &str = "lockcheck/fork-left-held";
/// Rule id of a condvar notified without its waiters' mutex (opt-in: `--condvar`).
pub const CONDVAR_LOST_WAKEUP: &str = "lockcheck/condvar-lost-wakeup";
/// Rule id of a condvar wait holding a lock its notifier takes (opt-in: `--condvar`).
pub const CONDVAR_WAIT_HOLDING_LOCK: &str = "lockcheck/condvar-wait-holding-lock";

/// The rule id of a finding of `kind` (`lock-order-inversion`, `hierarchy-violation`) at `level`
/// (`instance`, `class`).
pub fn rule_id(kind: &str, level: &str) -> &'static str {
    match (kind, level) {
        ("hierarchy-violation", _) => HIERARCHY_VIOLATION,
        ("self-deadlock", _) => SELF_DEADLOCK,
        ("recursive-read", _) => RECURSIVE_READ,
        ("held-across-await", _) => HELD_ACROSS_AWAIT,
        ("deadlock", _) => FORK_LEFT_HELD,
        ("condvar-lost-wakeup", _) => CONDVAR_LOST_WAKEUP,
        ("condvar-wait-holding-lock", _) => CONDVAR_WAIT_HOLDING_LOCK,
        (_, "class") => CLASS_LOCK_ORDER_INVERSION,
        _ => LOCK_ORDER_INVERSION,
    }
}

/// Every finding, filter and flag, findings first.
pub const RULES: &[Rule] = &[
    Rule {
        id: LOCK_ORDER_INVERSION,
        name: "LockOrderInversion",
        short: "Two or more threads take the same locks in opposite orders: they can deadlock.",
        what: "Thread 1 acquired lock B while holding lock A, and thread 2 acquired A while holding B \
(or a longer cycle over three or more locks and threads). Run at the wrong moment, each thread holds \
the lock the other waits for, and both wait forever. The run that was traced did not need to deadlock: \
the order of acquisitions is enough. lockcheck already removed the cycles that cannot deadlock (one \
thread alone, a common gate lock, spawn/join ordering, read-read, try_lock and timed acquisitions), so \
this cycle is feasible.",
        fix: "Pick one global order for these locks and acquire them in that order everywhere: change \
the acquisitions listed under \"change these acquisitions\" in the suggested hierarchy (the lighter \
side of the inversion). Other fixes: take both locks through one outer lock, release the first lock \
before taking the second, merge the two locks into one, or use try_lock / try_lock_for and back off \
on failure. Two locks of one class (two accounts) are usually ordered by a key (lower id first).",
        category: Category::Finding,
    },
    Rule {
        id: CLASS_LOCK_ORDER_INVERSION,
        name: "ClassLockOrderInversion",
        short: "Lock classes are taken in opposite orders: some pair of instances can deadlock.",
        what: "A lock class is the construction site of a lock, or its name (Mutex::named). Some \
thread acquired a lock of class B while holding one of class A, and another acquired an A while \
holding a B. The instances differ (or the orders were seen in different processes, e.g. two test \
binaries), so this run could not deadlock, but when the same two objects meet in both orders, it \
will. This is how an inversion split across two tests is found.",
        fix: "Same as lockcheck/lock-order-inversion: choose an order between the classes and change \
the acquisitions that break it (listed in the suggested hierarchy). If the two classes really never \
share instances, give the locks distinct names so that they are distinct classes, or suppress the \
finding in lockcheck.toml with the reason.",
        category: Category::Finding,
    },
    Rule {
        id: HIERARCHY_VIOLATION,
        name: "HierarchyViolation",
        short: "A lock was acquired against the hierarchy declared in lockcheck.toml.",
        what: "lockcheck.toml's [hierarchy] gives each lock class a level: acquire locks in strictly \
increasing level. This acquisition took a lock of a lower or equal level while holding one of a \
higher (or the same) level. No cycle is needed: the declared order is the contract, and breaking it \
anywhere is how cycles start.",
        fix: "Acquire the lower-level lock first (restructure the code so that the outer lock is the \
one with the lower level), or release the higher-level lock before acquiring. If the declared levels \
are wrong, change [hierarchy].",
        category: Category::Finding,
    },
    Rule {
        id: SELF_DEADLOCK,
        name: "SelfDeadlock",
        short: "A thread acquires a lock it already holds: it waits for itself forever.",
        what: "The thread holds the lock (a mutex, a write or upgradable lock, or every permit of a \
semaphore) and asks for it again in a mode that waits for that hold. Nobody else can release it, so \
the thread blocks forever. The runtime stops such an acquisition with this report; the trace keeps \
the request, so the analyzer reports it too.",
        fix: "Drop the first guard before acquiring again. A guard kept alive by an `if let` or \
`match` scrutinee, or bound with `let`, lives to the end of its block: end the block, call \
`drop(guard)`, or pass the guarded data down instead of re-locking.",
        category: Category::Finding,
    },
    Rule {
        id: RECURSIVE_READ,
        name: "RecursiveRead",
        short: "A thread read-locks an RwLock it already read-holds: a queued writer deadlocks it.",
        what: "Two read locks of one RwLock by one thread do not block each other, until a writer \
queues between them: the writer waits for the first read, and the second read waits behind the \
writer (parking_lot's and std's RwLocks prefer writers). Then the thread waits for itself.",
        fix: "Drop the first read guard before reading again, pass the guarded data down, or use \
`read_recursive()`, which does not queue behind writers.",
        category: Category::Finding,
    },
    Rule {
        id: FORK_LEFT_HELD,
        name: "ForkLeftHeld",
        short: "A forked child waits for a lock that a thread of its parent held at the fork.",
        what: "fork() copies only the calling thread: a lock another thread of the parent held at \
that moment stays held in the child by a thread that does not exist there. The child's only thread \
asked for it in a mode that waits for that hold: nothing can ever release it, so the child hangs \
(daboross/fern#59). The lockcheck runtime (Linux) stops such an acquisition with a `deadlock` \
report and writes a `left_held` event into the child's own trace.",
        fix: "Fork while holding the locks the child needs (so that no other thread holds them at \
that moment, and the child's copy is held by its own thread, which releases it), fork before \
starting other threads, or exec at once in the child.",
        category: Category::Finding,
    },
    Rule {
        id: HELD_ACROSS_AWAIT,
        name: "HeldAcrossAwait",
        short: "A sync lock is held by an async task suspended at an `.await`.",
        what: "A task (or a runtime's root future) took a sync lock (`lockcheck::Mutex`, `RwLock`, \
`sync::Mutex`) and was suspended at an `.await` with the guard alive. The thread then runs other \
tasks: one that needs that lock blocks the thread, and the holder, which would run on that same \
thread, never resumes to release it. The lockcheck runtime (feature `tokio`) saw it when another \
task on the thread, or the holder itself waiting for an async lock, requested a lock.",
        fix: "Drop the guard before the `.await` (end its block, or `drop(guard)`), or use an async \
lock (`lockcheck::tokio::Mutex`) if it must stay held across the `.await`.",
        category: Category::Finding,
    },
    Rule {
        id: CONDVAR_LOST_WAKEUP,
        name: "CondvarLostWakeup",
        short: "A condvar is notified by a thread that did not take the mutex its waiters wait with.",
        what: "A waiter checks its condition under the mutex, then waits on the condvar (which \
releases the mutex). A notifier that changes the condition and notifies without taking that mutex \
can notify between the waiter's check and its wait: the notify is lost, and the wait may never end. \
Found from a notify whose window (the locks the notifier held, or took since its last wait on or \
notify of the condvar) lacks the mutex of an untimed wait on that condvar by another thread. Opt-in \
(`lockcheck analyze --condvar`, the runtime's `LOCKCHECK_CONDVAR`): a notifier that knows the \
waiter's check is made under another lock it holds is correct, and warned about.",
        fix: "Take the waiters' mutex between changing the condition and notifying (or change the \
condition under it), as salsa#474 and parity-ethereum#3903 did.",
        category: Category::Finding,
    },
    Rule {
        id: CONDVAR_WAIT_HOLDING_LOCK,
        name: "CondvarWaitHoldingLock",
        short: "A thread waits on a condvar while holding a lock a notifier of that condvar takes.",
        what: "The waiter holds a lock while it waits; a notifier of the condvar held that lock or \
took it in its window (since its last wait on or notify of the condvar) before notifying. If the \
notifier needs the lock again before its next notify, it blocks on it, and the wait never ends. \
Every wait (timed or not) is paired with every notify of its condvar by another thread whose \
window had one of the locks the waiter holds; a condvar no other thread of the trace notified is \
reported for every lock its waits hold. Opt-in (`lockcheck analyze --condvar`, the runtime's \
`LOCKCHECK_CONDVAR`).",
        fix: "Release the other locks before waiting (keep only the condvar's mutex), or have the \
notifier notify without taking them, as cloud-hypervisor#8092's fix releases the vCPU states \
before waiting for the acknowledgement.",
        category: Category::Finding,
    },
    Rule {
        id: "same-thread",
        name: "SameThread",
        short: "Filter: every edge of the cycle comes from one thread.",
        what: "One thread cannot wait for itself across a cycle of locks it takes in sequence: each \
acquisition completed before the next began. The cycle is listed (with --verbose) but is no \
violation until another thread makes one of its edges.",
        fix: "Nothing to do. If other threads will run this code path, the order is still worth making \
consistent.",
        category: Category::Filter,
    },
    Rule {
        id: "gate-lock",
        name: "GateLock",
        short: "Filter: two acquisitions of the cycle hold a common lock in conflicting modes.",
        what: "A gate (guard) lock held around both acquisitions lets only one thread into the \
inverted region at a time, so the threads cannot each hold one lock of the cycle.",
        fix: "Nothing to do; the gate lock is what makes this safe. Keep it, and keep it held around \
both paths.",
        category: Category::Filter,
    },
    Rule {
        id: "fork-join",
        name: "ForkJoin",
        short: "Filter: two acquisitions of the cycle are ordered by thread spawn or join.",
        what: "One side of the cycle happened before the other thread was spawned, or after it was \
joined (vector clocks over fork/join events). They can never overlap, so they cannot deadlock.",
        fix: "Nothing to do. lockcheck sees spawn and join only through lockcheck::thread.",
        category: Category::Filter,
    },
    Rule {
        id: "read-read",
        name: "ReadRead",
        short: "Filter: a read request of the cycle waits for a read hold that no writer can queue \
behind.",
        what: "A read request on an RwLock held for reading by another thread waits only behind a \
queued writer. No write of the lock in the traces can be one: it was never write-locked, or each \
write was made by one of the two readers' threads, or ordered by spawn/join before one of the \
two acquisitions (granted before they wait) or after one (never made while it waits for good).",
        fix: "Nothing to do. If a writer appears that can run while both readers wait (another \
thread, not ordered with them), readers queue behind it and the cycle becomes a violation.",
        category: Category::Filter,
    },
    Rule {
        id: "try-lock",
        name: "TryLock",
        short: "Filter: an acquisition of the cycle is a try_lock, which never waits.",
        what: "A try_* acquisition returns immediately when the lock is taken, so it cannot be the \
wait that closes a deadlock.",
        fix: "Nothing to do; make sure the failure path releases what it holds and retries later.",
        category: Category::Filter,
    },
    Rule {
        id: "timed-lock",
        name: "TimedLock",
        short: "Filter: an acquisition of the cycle has a timeout.",
        what: "A try_lock_for / timed acquisition gives up after its timeout, so a deadlock would end \
in a timeout instead of a hang.",
        fix: "Make sure the timeout path backs off (releases its locks) rather than retrying while \
holding them, or the threads livelock.",
        category: Category::Filter,
    },
    Rule {
        id: "long-hold",
        name: "LongHold",
        short: "Timeout flag: the class's p99 hold time is long.",
        what: "Above 100 ms, or more than 10x the median class's p99 (with at least 3 timed classes). \
Every other thread that wants the lock waits that long.",
        fix: "Do less while holding the lock: move I/O, allocation and callbacks out of the critical \
section, or split the lock.",
        category: Category::TimeoutFlag,
    },
    Rule {
        id: "long-wait",
        name: "LongWait",
        short: "Timeout flag: the class's p99 wait time is long.",
        what: "Above 100 ms, or more than 10x the median class's p99 (with at least 3 timed classes): \
the lock is contended.",
        fix: "Shorten the holds (see long-hold), shard the data behind several locks, or use a \
read-write lock for read-mostly data.",
        category: Category::TimeoutFlag,
    },
    Rule {
        id: "livelock-risk",
        name: "LivelockRisk",
        short: "Timeout flag: the suggested timeout rests on one outlier wait or hold.",
        what: "The suggestion was set by 2x the longest wait or the longest hold, and that longest \
one is more than 5x its p99: a heavy tail, seen once. The next unlucky run (a slower or busier \
machine) stretches it past the 2x margin, the timeout fires in normal operation, and threads that \
retry after a timeout can keep failing together (a livelock).",
        fix: "Find what makes that one wait or hold so long (the long-hold / long-wait flags and the \
hold column point at it) and fix it first, or use a larger timeout than suggested for this class.",
        category: Category::TimeoutFlag,
    },
    Rule {
        id: "timeouts-fired",
        name: "TimeoutsFired",
        short: "Timeout flag: timed acquisitions of this class already failed in the trace.",
        what: "The timeout currently in use is below waits that happen in normal operation.",
        fix: "Raise the timeout to the suggested one (--timeouts-toml writes it), or fix the waits.",
        category: Category::TimeoutFlag,
    },
];

/// Finds a rule by id or name: `lockcheck/lock-order-inversion`, `lock-order-inversion`,
/// `LockOrderInversion`, `gate-lock` (case-insensitive).
pub fn lookup(name: &str) -> Option<&'static Rule> {
    let name = name.trim();
    let bare = name.strip_prefix("lockcheck/").unwrap_or(name);
    RULES.iter().find(|r| {
        let id = r.id.strip_prefix("lockcheck/").unwrap_or(r.id);
        id.eq_ignore_ascii_case(bare) || r.name.eq_ignore_ascii_case(bare)
    })
}

/// The findings' rules (the SARIF rules).
pub fn findings() -> impl Iterator<Item = &'static Rule> {
    RULES.iter().filter(|r| r.category == Category::Finding)
}

/// The text `lockcheck explain` prints for a rule.
pub fn explain(rule: &Rule) -> String {
    let kind = match rule.category {
        Category::Finding => "finding (a violation: exit code 1)",
        Category::Filter => "filter (a candidate cycle it removes is not a violation)",
        Category::TimeoutFlag => "timeout flag (a note in the timeout table, not a violation)",
    };
    let heading = match rule.category {
        Category::Finding => "How to fix it",
        _ => "What to do",
    };
    format!(
        "{id}: {short}\n\nKind: {kind}\n\nWhat it means\n{what}\n\n{heading}\n{fix}\n",
        id = rule.id,
        short = rule.short,
        what = wrap(rule.what, 78),
        fix = wrap(rule.fix, 78),
    )
}

/// The list `lockcheck explain` prints without an argument.
pub fn list() -> String {
    let mut s = String::new();
    for (cat, title) in [
        (Category::Finding, "Findings (rule ids):"),
        (Category::Filter, "Filters:"),
        (Category::TimeoutFlag, "Timeout flags:"),
    ] {
        s.push_str(title);
        s.push('\n');
        for r in RULES.iter().filter(|r| r.category == cat) {
            let short = r
                .short
                .strip_prefix("Filter: ")
                .or_else(|| r.short.strip_prefix("Timeout flag: "))
                .unwrap_or(r.short);
            s.push_str(&format!("  {:<38} {}\n", r.id, short));
        }
        s.push('\n');
    }
    s.push_str("lockcheck explain <NAME> explains one.\n");
    s
}

/// Wraps `text` at `width` columns, on spaces.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.chars().count() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.chars().count();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_and_flag_is_explained() {
        for f in crate::report::FILTER_ORDER {
            assert!(lookup(f).is_some(), "{f}");
        }
        for f in ["long-hold", "long-wait", "livelock-risk", "timeouts-fired"] {
            assert!(lookup(f).is_some(), "{f}");
        }
        assert_eq!(
            lookup("lock-order-inversion").unwrap().id,
            LOCK_ORDER_INVERSION
        );
        assert_eq!(
            lookup("HierarchyViolation").unwrap().id,
            HIERARCHY_VIOLATION
        );
        assert!(lookup("nope").is_none());
    }

    #[test]
    fn wrapping_keeps_words() {
        let w = wrap("a bb ccc dddd", 6);
        assert_eq!(w, "a bb\nccc\ndddd");
    }
}
