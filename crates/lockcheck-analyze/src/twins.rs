//! Dependencies that differ only by their thread ("twins"), and those of them the root-cause
//! search may leave out without changing what it finds.
//!
//! Why: a successor list names every dependency of another thread on the next edge, so a ring
//! of 20 locks taken by 100,000 threads (each nesting three locks of the ring) made lists of
//! 10,000 entries, and the search read or built one per dependency it extended: 11.8 s, and
//! 48 s at 200,000 threads. Most of those dependencies are interchangeable. Two blocking
//! dependencies with the same lock, mode and held set (modes included) pass every rule of the
//! search alike (held sets, gates, modes; a held lock that no other thread holds or requests,
//! a lock of the thread's own, is left out of the comparison: no link of a cycle from another
//! thread enters there and no other thread shares it as a gate) and differ only by thread and
//! clock; when their clocks order them with no other thread that matters, every rule that
//! reads threads and clocks answers alike too, but for the rule that a cycle's threads are
//! distinct. A dependency is such a *free* one when
//!
//! - no clock of a dependency that can be on a cycle (one of its edges within a strongly
//!   connected component) or of a write knows its thread together with another thread that
//!   has such a dependency or writes (its clock knows no such thread, and no such thread's
//!   clock knows it: threads forked, joined or messaged only by threads that take no lock, or
//!   only locks on no cycle, as a test harness's, stay free; a dependency on no cycle is in
//!   no cycle the search can find, so its order with the others decides nothing), and
//! - its thread wrote no lock whose writes are kept by thread (whether a write can come between
//!   two reads asks whether the writer is one of the two readers' threads, the only other rule
//!   that reads a thread).
//!
//! A cycle passes through each lock (each node of the graph) once, so it holds at most one of
//! a group of free dependencies with the same lock, mode and held set, and at most as many
//! dependencies as the strongly connected component of that lock has nodes, `n`. So keeping the
//! dependencies of `n` distinct threads of each group loses no cycle: in a valid cycle through
//! a member left out, the other `n - 1` dependencies at most take `n - 1` of the kept threads,
//! and a member of one of the others takes its place; member after member, a cycle of kept
//! dependencies only, through the same locks, remains. The search then runs as on a trace of
//! the kept dependencies: the same root causes, the same cycles by their locks, fewer steps.
//! Nothing is approximated but the count of combinations, which covers the kept threads only
//! and says so (`combinations_exhaustive`); how many were left out, `LOCKCHECK_PHASES` says.
//!
//! Each group keeps at least [`KEPT_AT_LEAST`] threads, so that the count of combinations a
//! violation shows stays exact where a few threads take a pair of locks each way; beyond, the
//! count is said to be a lower bound. Not more: the twins kept are as many branches that the
//! depth-first search may try in turn where a chain dead-ends, at every lock of it (with 64 kept
//! of each group, a ring of 20 locks nested three deep under a lock of each thread's own lost
//! one of its three root causes to `--max-steps`; with 20, none). Only a
//! trace with more threads than that and than its largest component has nodes can have a
//! group larger than its bound; any other trace is left whole without a pass over its
//! dependencies.

use std::collections::HashMap;

use lockcheck_core::trace::How;

use crate::cycles::{node_of, GraphLevel};
use crate::graph::LockGraph;
use crate::model::{Model, TrieItem};

/// The fewest threads a group keeps, whatever its component's size (see the module's
/// documentation).
pub(crate) const KEPT_AT_LEAST: u32 = 8;

/// The dependencies a root-cause search leaves out ([`left_out`]).
#[derive(Debug, Clone)]
pub(crate) struct LeftOut {
    /// By dependency index, whether it is left out.
    pub(crate) deps: Vec<bool>,
    /// How many are.
    pub(crate) count: usize,
}

/// The free dependencies beyond the bound of their group (see the module's documentation): the
/// threads of each group past the size of its component and past `at_least`. `None` when no
/// group can pass its bound (no more threads than that) or none does.
pub(crate) fn left_out(
    model: &Model,
    graph: &LockGraph,
    level: GraphLevel,
    at_least: u32,
) -> Option<LeftOut> {
    let threads = model.threads.len();
    if threads <= 2 || threads <= at_least as usize || threads <= cyclic_nodes(graph) {
        return None;
    }
    let sccs = graph.sccs(&|_| true);
    if threads <= sccs.iter().map(Vec::len).max().unwrap_or(0) {
        return None;
    }
    // The bound of a group, by the node its dependencies request: the size of that node's
    // component (1 outside any: such a dependency is on no cycle at all), `at_least` at least.
    let mut bound = vec![at_least.max(1); graph.nodes()];
    // The component of each node on a cycle (`u32::MAX`: on none).
    let mut comp = vec![u32::MAX; graph.nodes()];
    for (i, c) in sccs.iter().enumerate() {
        for &n in c {
            bound[n as usize] = (c.len() as u32).max(at_least);
            if c.len() > 1 {
                comp[n as usize] = i as u32;
            }
        }
    }
    drop(sccs);
    // The threads whose order matters: those with a dependency that can be on a cycle (one of
    // its edges within a component: every dependency of a cycle is), and the writers (whether
    // a write comes between two reads reads the writer's clock and theirs). A thread is tied
    // when a clock of such a dependency or of a write knows it together with another such
    // thread, and every writer of a lock whose writes are kept by thread is. A thread whose
    // dependencies are on no cycle (a main thread that forks the others and takes locks of its
    // own between the forks) orders no two dependencies of a cycle: its clock does not tie.
    let mut relevant = vec![false; threads];
    let mut asked = vec![false; model.clocks.len()];
    crate::cycles::each_edge_inside(graph, &comp, |e| {
        for &d in graph.deps(e) {
            let r = &model.deps[d as usize];
            relevant[r.thread as usize] = true;
            asked[r.clock as usize] = true;
        }
    });
    let writes = || {
        model
            .locks
            .iter()
            .map(|l| &l.writes)
            .chain(model.classes.iter().map(|c| &c.writes))
            .flat_map(|w| w.clocks.iter().copied())
    };
    for (t, c) in writes() {
        if let Some(x) = relevant.get_mut(t as usize) {
            *x = true;
        }
        asked[c as usize] = true;
    }
    let ids = (0..asked.len() as u32).filter(|&c| asked[c as usize]);
    let mut tied = model.clocks.known_together(ids, &relevant);
    for (t, _) in writes() {
        if let Some(x) = tied.get_mut(t as usize) {
            *x = true;
        }
    }
    // A free dependency's clock knows no other thread with a dependency, and no dependency of
    // another thread knows it: it is concurrent with every dependency of another thread.
    let free = |r: &crate::model::DepRecord| {
        r.how == How::Blocking && !tied.get(r.thread as usize).copied().unwrap_or(true)
    };
    // A group's dependencies request one lock: where no lock has more free dependencies than
    // its bound, no group has either (one pass over the records, no held set read).
    let mut per_lock = vec![0u32; model.locks.len()];
    for r in model.deps.iter().filter(|r| free(r)) {
        per_lock[r.lock as usize] += 1;
    }
    let bound_of = |lock: u32| {
        let v = node_of(model, level, lock) as usize;
        bound.get(v).copied().unwrap_or(u32::MAX)
    };
    if (0..per_lock.len() as u32).all(|l| per_lock[l as usize] <= bound_of(l)) {
        return None;
    }
    drop(per_lock);
    type Fast<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
    // The held sets by their content: each thread's lists have nodes of their own in the
    // model's trie (its own root), so equal sets of two threads have distinct ids there. A
    // list's id is that of (its parent's id, its last item), each node's found once.
    //
    // A held lock whose node only one thread's dependencies hold or request is left out of the
    // content (a lock of the thread's own): no dependency of another thread requests it (no
    // link of a cycle enters the thread there) nor holds it (no gate), so it tells the
    // thread's dependencies apart from no other thread's.
    let own = own_nodes(model, level, graph.nodes());
    let mut ids = HeldIds::default();
    let mut set_id = |held: u32| {
        ids.of(model, held, &|item| {
            let (l, _) = <(u32, lockcheck_core::trace::Mode) as TrieItem>::unpack(item);
            !own[node_of(model, level, l) as usize]
        })
    };
    // Per group (lock, mode, held set), the threads kept so far.
    let mut kept: Fast<u64, u32> = Fast::default();
    let mut member: Fast<(u64, u32), ()> = Fast::default();
    let mut deps = vec![false; model.deps.len()];
    let mut count = 0usize;
    for (i, r) in model.deps.iter().enumerate() {
        if !free(r) {
            continue;
        }
        let group = u64::from(r.lock) << 35 | (r.mode as u64) << 32 | u64::from(set_id(r.held));
        if member.contains_key(&(group, r.thread)) {
            // Another free dependency of a kept thread in the group (its clock's own epoch
            // differs): kept too.
            continue;
        }
        let n = kept.entry(group).or_insert(0);
        if *n < bound_of(r.lock) {
            *n += 1;
            member.insert((group, r.thread), ());
        } else {
            deps[i] = true;
            count += 1;
        }
    }
    (count > 0).then_some(LeftOut { deps, count })
}

/// Ids of held sets by content, whatever the thread whose trie nodes hold them (0: empty).
#[derive(Default)]
struct HeldIds {
    /// `(parent's id, packed item) -> id`.
    by_content: HashMap<(u32, u32), u32, foldhash::fast::RandomState>,
    /// Trie node -> id, for the nodes met.
    by_node: HashMap<u32, u32, foldhash::fast::RandomState>,
    /// Scratch: the nodes walked up, with their items.
    path: Vec<(u32, u32)>,
}

impl HeldIds {
    /// The id of the held set of trie node `held`, of its items that `counts` (packed) only.
    fn of(&mut self, model: &Model, held: u32, counts: &dyn Fn(u32) -> bool) -> u32 {
        // Up to the first node whose id is known (or the empty list), then down.
        let mut n = held;
        let mut id = loop {
            if let Some(&id) = self.by_node.get(&n) {
                break id;
            }
            match model.held_sets.parent(n) {
                Some((parent, item)) => {
                    self.path.push((n, item));
                    n = parent;
                }
                None => break 0,
            }
        };
        while let Some((node, item)) = self.path.pop() {
            if counts(item) {
                let next = self.by_content.len() as u32 + 1;
                id = *self.by_content.entry((id, item)).or_insert(next);
            }
            self.by_node.insert(node, id);
        }
        id
    }
}

/// By node of the graph (`nodes` of them), whether the dependencies that hold or request it
/// are all of one thread. One walk up each held set's trie nodes, each node walked once: a
/// trie node belongs to one thread's lists (each thread has its own root).
fn own_nodes(model: &Model, level: GraphLevel, nodes: usize) -> Vec<bool> {
    const NONE: u32 = u32::MAX;
    const MANY: u32 = u32::MAX - 1;
    let mut owner = vec![NONE; nodes];
    let mut note = |l: u32, t: u32| {
        let o = &mut owner[node_of(model, level, l) as usize];
        *o = if *o == NONE || *o == t { t } else { MANY };
    };
    let mut walked = vec![false; model.held_sets.len()];
    for r in model.deps.iter() {
        note(r.lock, r.thread);
        let mut n = r.held;
        while !std::mem::replace(&mut walked[n as usize], true) {
            let Some((parent, item)) = model.held_sets.parent(n) else {
                break;
            };
            note(
                <(u32, lockcheck_core::trace::Mode) as TrieItem>::unpack(item).0,
                r.thread,
            );
            n = parent;
        }
    }
    owner.into_iter().map(|o| o != MANY).collect()
}

/// A bound of the largest component's node count without computing the components (one pass
/// over the edges' targets): the nodes with an edge in and an edge out.
fn cyclic_nodes(graph: &LockGraph) -> usize {
    let mut has_in = vec![false; graph.nodes()];
    for e in 0..graph.edge_count() as u32 {
        has_in[graph.target(e) as usize] = true;
    }
    (0..graph.nodes() as u32)
        .filter(|&n| has_in[n as usize] && !graph.out_edges(n).is_empty())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycles::{find_root_causes_keeping, SearchLimits};
    use crate::model::tests::model_of;

    /// JSON Lines of `(thread, what)` steps: `"+A"` acquires A (`"+A:r"` for reading), `"-A"`
    /// releases it, `"fork N"` and `"join N"`.
    fn trace(steps: &[(u32, &str)]) -> String {
        // A is an RwLock, the others mutexes.
        let mut out = String::new();
        for l in 0..26 {
            let kind = if l == 0 { "rwlock" } else { "mutex" };
            out += &format!(
                "{{\"e\":\"class\",\"c\":{l},\"key\":\"{}\",\"kind\":\"{kind}\"}}\n",
                char::from(b'A' + l as u8)
            );
            out += &format!("{{\"e\":\"lock\",\"l\":{l},\"c\":{l}}}\n");
        }
        let id = |name: &str| u32::from(name.as_bytes()[0] - b'A');
        for (t, s) in steps {
            let line = if let Some(c) = s.strip_prefix("fork ") {
                format!(r#"{{"e":"fork","t":{t},"child":{c}}}"#)
            } else if let Some(c) = s.strip_prefix("join ") {
                format!(r#"{{"e":"join","t":{t},"child":{c}}}"#)
            } else if let Some(l) = s.strip_prefix('+') {
                let (l, m) = l.split_once(':').unwrap_or((l, "w"));
                format!(r#"{{"e":"acquire","t":{t},"l":{},"m":"{m}"}}"#, id(l))
            } else {
                format!(r#"{{"e":"release","t":{t},"l":{}}}"#, id(&s[1..]))
            };
            out += &line;
            out.push('\n');
        }
        out
    }

    /// `holder` takes `a` then `b` (released in reverse).
    fn nest(t: u32, a: &'static str, b: &'static str) -> [(u32, &'static str); 4] {
        [(t, a), (t, b), (t, "-"), (t, "-")]
    }

    /// The root causes found at instance level, as their edges, and how many dependencies the
    /// search left out, keeping no more threads of a group than its component has locks (the
    /// traces below are small).
    fn found(steps: &[(u32, &str)]) -> (Vec<Vec<(u32, u32)>>, usize) {
        let m = model_of(&[("t", &trace(steps))]);
        let graph = LockGraph::build(&m, GraphLevel::Instance);
        let left = left_out(&m, &graph, GraphLevel::Instance, 0).map_or(0, |l| l.count);
        let r = find_root_causes_keeping(&m, GraphLevel::Instance, &SearchLimits::default(), 0);
        (r.root_causes.into_iter().map(|c| c.edges).collect(), left)
    }

    /// One root cause with every step of `s`, none once thread `t`'s are taken out: `t` is the
    /// only thread that can close the cycle (the look-alike without it is silent).
    fn found_only_with(s: Vec<(u32, &'static str)>, t: u32) {
        let (causes, _) = found(&s);
        assert_eq!(causes.len(), 1, "{causes:?}");
        let without: Vec<_> = s.into_iter().filter(|&(u, _)| u != t).collect();
        assert!(found(&without).0.is_empty(), "without thread {t}");
    }

    fn steps(parts: &[&[(u32, &'static str)]]) -> Vec<(u32, &'static str)> {
        let mut v: Vec<(u32, &'static str)> = Vec::new();
        for p in parts {
            for &(t, s) in p.iter() {
                // A bare "-" releases what the step before the matching acquisition took.
                v.push((t, s));
            }
        }
        // Fill in the releases of `nest`: the last two acquisitions of the thread, newest first.
        let mut held: std::collections::HashMap<u32, Vec<&'static str>> = Default::default();
        for (t, s) in &mut v {
            if let Some(l) = s.strip_prefix('+') {
                held.entry(*t).or_default().push(&l[..1]);
            } else if *s == "-" {
                let l = held
                    .get_mut(t)
                    .and_then(Vec::pop)
                    .expect("a release of a hold");
                *s = ["-A", "-B", "-C", "-D", "-E", "-F", "-G", "-H", "-I"]
                    [usize::from(l.as_bytes()[0] - b'A')];
            }
        }
        v
    }

    // In the tests below, the dependency of the group that matters is the middle one of a
    // cycle of three locks, which the search takes from a successor list (it skips those left
    // out when it closes a cycle too). Thread 5 closes it twice, so that the change is thread
    // 1's edge.

    /// Threads 2, 3, 5 and 4, in this order, take C while holding B. Thread 1 joins 2 and 3
    /// and then takes B while holding D; thread 5 takes D while holding C (three mutexes).
    /// Only thread 4 can be the middle of the cycle (2 and 3 are ordered before thread 1, 5
    /// closes it): the three kept of the group (the component has three locks) must not count
    /// the joined two.
    #[test]
    fn a_twin_ordered_by_a_join_does_not_stand_for_one_that_is_not() {
        let s = steps(&[
            &nest(2, "+B", "+C"),
            &nest(3, "+B", "+C"),
            &nest(5, "+B", "+C"),
            &nest(4, "+B", "+C"),
            &nest(5, "+C", "+D"),
            &nest(5, "+C", "+D"),
            &[(1, "join 2"), (1, "join 3")],
            &nest(1, "+D", "+B"),
        ]);
        // Without thread 4, the look-alike.
        found_only_with(s, 4);
    }

    /// As above, with thread 1 taking B while holding D first and then forking threads 2 and
    /// 3: their dependencies are ordered after its own (their clocks know thread 1).
    #[test]
    fn a_twin_ordered_by_a_fork_does_not_stand_for_one_that_is_not() {
        let s = steps(&[
            &nest(1, "+D", "+B"),
            &[(1, "fork 2"), (1, "fork 3")],
            &nest(2, "+B", "+C"),
            &nest(3, "+B", "+C"),
            &nest(5, "+B", "+C"),
            &nest(4, "+B", "+C"),
            &nest(5, "+C", "+D"),
            &nest(5, "+C", "+D"),
        ]);
        found_only_with(s, 4);
    }

    /// A harness thread (0) that takes no lock forks every thread and joins them: the threads
    /// are free all the same (their clocks know no other thread with a dependency), and the
    /// groups beyond the component's size are left out, the cycle found.
    #[test]
    fn threads_forked_and_joined_by_a_thread_without_locks_are_twins() {
        let mut s: Vec<(u32, &'static str)> = Vec::new();
        let forks = ["fork 1", "fork 2", "fork 3", "fork 4", "fork 5", "fork 6"];
        let joins = ["join 1", "join 2", "join 3", "join 4", "join 5", "join 6"];
        s.extend(forks.iter().map(|&f| (0, f)));
        for t in 1..=5 {
            s.extend(steps(&[&nest(t, "+B", "+C")]));
        }
        s.extend(steps(&[&nest(6, "+C", "+B")]));
        s.extend(joins.iter().map(|&j| (0, j)));
        let (causes, left) = found(&s);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(left, 3, "threads 3, 4 and 5 of the five taking B then C");
        // Thread 0 taking locks of the cycle after its joins ties them all: nothing is left
        // out.
        let mut tied = s.clone();
        tied.extend(steps(&[&nest(0, "+C", "+B")]));
        let (causes, left) = found(&tied);
        assert_eq!((causes.len(), left), (1, 0), "{causes:?}");
        // Locks on no cycle (D then B: nothing leads back to D; E then F), between its forks
        // and after its joins, tie nothing: its dependencies are on no cycle, so its order
        // with the others decides none.
        let mut own = vec![(0, "fork 1"), (0, "fork 2"), (0, "fork 3")];
        own.extend(steps(&[&nest(0, "+E", "+F")]));
        own.extend([(0, "fork 4"), (0, "fork 5"), (0, "fork 6")]);
        own.extend(s.iter().skip(6).copied());
        own.extend(steps(&[&nest(0, "+D", "+B")]));
        let (causes, left) = found(&own);
        assert_eq!((causes.len(), left), (1, 3), "{causes:?}");
    }

    /// Threads 1 to 5 each hold a lock of their own (E to I) while they take B then C, thread 6
    /// takes C then B: the own locks make five distinct held sets, but no other thread holds or
    /// requests them, so the five are one group all the same (one per dependency: B, then C
    /// while holding B), three of each left out (the component has two locks), and the
    /// inversion is found.
    #[test]
    fn a_lock_of_the_thread_s_own_does_not_set_its_dependencies_apart() {
        let own = ["+E", "+F", "+G", "+H", "+I"];
        let mut parts: Vec<Vec<(u32, &'static str)>> = Vec::new();
        for (t, l) in (1..=5).zip(own) {
            parts.push(vec![
                (t, l),
                (t, "+B"),
                (t, "+C"),
                (t, "-"),
                (t, "-"),
                (t, "-"),
            ]);
        }
        parts.push(nest(6, "+C", "+B").to_vec());
        let parts: Vec<&[(u32, &'static str)]> = parts.iter().map(Vec::as_slice).collect();
        let s = steps(&parts);
        let (causes, left) = found(&s);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(
            left, 6,
            "three of five taking B, three of five taking C while holding B"
        );
        // Thread 6 holding thread 1's lock E too: E is no thread's own any more (a gate
        // between threads 1 and 6), and thread 1's dependencies are groups of their own.
        let mut gated = vec![(6, "+E")];
        gated.extend(steps(&[&nest(6, "+C", "+B")]));
        gated.push((6, "-E"));
        let mut s2 = steps(&parts[..5]);
        s2.extend(gated);
        let (causes, left) = found(&s2);
        assert_eq!((causes.len(), left), (1, 4), "{causes:?}");
    }

    /// Threads 1, 2, 5 and 3, in this order, take B while reading A; thread 2 alone writes A.
    /// Thread 1 then reads A while holding C, and thread 5 takes C while holding B. A read
    /// behind a read waits only if a third thread's write can come between them: thread 2's
    /// cannot between its own read and thread 1's, so only thread 3 can be the middle of the
    /// cycle (1 and 5 are its ends), and the three kept of the group must not count the writer.
    #[test]
    fn a_writer_does_not_stand_for_a_reader_that_is_not() {
        let s = steps(&[
            &nest(1, "+A:r", "+B"),
            &nest(2, "+A:r", "+B"),
            &nest(5, "+A:r", "+B"),
            &nest(3, "+A:r", "+B"),
            &[(2, "+A"), (2, "-")],
            &nest(5, "+B", "+C"),
            &nest(5, "+B", "+C"),
            &nest(1, "+C", "+A:r"),
        ]);
        // Thread 3 gone: no write can come between the reads of the middle and of thread 1.
        found_only_with(s, 3);
    }

    /// The group of "C while holding B" has thread 1's dependency first, then thread 2's: a
    /// cycle of the two locks needs two distinct threads of it, thread 1 being the other, so
    /// the component's size (two) is kept, not one. Thread 3 and 4 add two more members.
    #[test]
    fn a_group_keeps_as_many_threads_as_its_component_has_locks() {
        let s = steps(&[
            &nest(1, "+B", "+C"),
            &nest(2, "+B", "+C"),
            &nest(3, "+B", "+C"),
            &nest(4, "+B", "+C"),
            &nest(1, "+C", "+B"),
        ]);
        let (causes, left) = found(&s);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(left, 2, "threads 3 and 4 left out");
        let mut s = s;
        s.retain(|&(t, _)| t == 1);
        assert!(found(&s).0.is_empty(), "one thread alone");
    }
}
