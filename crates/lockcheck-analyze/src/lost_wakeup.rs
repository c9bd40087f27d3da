//! Lost wakeups (opt-in, `lockcheck analyze --condvar`, the runtime's `LOCKCHECK_CONDVAR`): a
//! condition variable notified by a thread that did not take the mutex its waiters wait with.
//! A waiter checks its condition under the mutex, then waits (releasing it); a notify that does
//! not take the mutex can come between the check and the wait, and is lost: the wait may never
//! end (salsa-rs/salsa#473, openethereum/parity-ethereum#3885).
//!
//! The runtime's rule (`checked::watch`, `lost_wakeup_at_notify`): a notify's *window* is the
//! locks the notifier holds and those it took since its last return from a wait on that condvar
//! or its last notify of it (on a condvar it has neither for, since its latest such event of any
//! condvar, or its start). A notify whose window lacks the mutex of an untimed wait in progress
//! by another thread is a possible lost wakeup, and so is an untimed wait whose condvar's latest
//! notify, by another thread, lacked its mutex.
//!
//! Offline, from the `cond_wait` and `notify` events of each thread's stream (the held and taken
//! locks are its own events), the same windows are computed exactly (the runtime bounds what it
//! keeps and checks nothing past its bounds). A trace does not tell which wait was in progress
//! at a notify (the streams of threads interleave by block, not by time), so every untimed wait
//! of a condvar is paired with every notify of it by another thread: the runtime's findings and,
//! predicted, those of the other orders of the same run (one finding per notify site, wait site
//! and mutex class, as the runtime's).

use crate::model::{LockId, Model, SiteId, ThreadId};
use crate::report::{fnv, lock_ref, EdgeReport, HeldRef, Violation};
use lockcheck_core::trace::{How, Mode};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The finding's kind, as the runtime names it (`ViolationKind::LostWakeup`).
pub const KIND: &str = "condvar-lost-wakeup";

/// A condvar of one trace: (trace index, its number there).
type CvKey = (u32, u64);

/// A possible lost wakeup: a notify whose window lacked the mutex of a wait on its condvar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LostWakeup {
    /// The mutex the waiter waits with.
    pub mutex: LockId,
    /// Where it notified.
    pub notify_site: Option<SiteId>,
    /// Where the waiter waited (the site of its mutex's retaking; `None`: never retaken).
    pub wait_site: Option<SiteId>,
    /// The notifying thread.
    pub notifier: ThreadId,
    /// The waiting thread.
    pub waiter: ThreadId,
}

/// A distinct untimed wait: (thread, mutex, site).
type Wait = (ThreadId, LockId, Option<SiteId>);
/// A distinct notify: (thread, site, window, sorted).
type Notify = (ThreadId, Option<SiteId>, Vec<LockId>);

/// One thread's window log (see the module's text).
#[derive(Debug, Default)]
struct ThreadLog {
    /// Acquisitions counted.
    seq: u64,
    /// Per lock, the `seq` and the site of its latest acquisition (the site for the condvar
    /// rule's notifier side, [`crate::condvar_wait`]).
    taken: HashMap<LockId, (u64, Option<SiteId>)>,
    /// Per condvar, the `seq` at the start of the thread's window on it.
    starts: HashMap<CvKey, u64>,
    /// The `seq` of the thread's latest condvar event (a return from a wait, a notify).
    last_any: u64,
    /// A wait begun and not yet over: its condvar, mutex, and whether it is untimed.
    waiting: Option<(CvKey, LockId, bool)>,
    /// The locks other than its mutex that the wait begun and not yet over holds (the condvar
    /// rule's waiter side).
    waiting_held: Vec<crate::condvar_wait::Held>,
}

impl ThreadLog {
    fn restart(&mut self, cv: CvKey) {
        self.last_any = self.seq;
        self.starts.insert(cv, self.seq);
    }
}

/// What the model builder keeps for the rule while it reads (only with the rule on).
#[derive(Debug, Default)]
pub struct Tracker {
    threads: HashMap<ThreadId, ThreadLog>,
    waits: HashMap<CvKey, HashSet<Wait>>,
    notifies: HashMap<CvKey, HashSet<Notify>>,
    /// The condvar rule's side ([`crate::condvar_wait`]): the waits holding other locks, and
    /// what each notifier's windows held or took.
    holding: crate::condvar_wait::Sides,
}

impl Tracker {
    /// An acquisition of `l` by `t` at `site`: into its window log; the retaking of the mutex of
    /// its wait ends that wait (its window on the condvar starts again, as the runtime's does
    /// once the mutex is held again).
    pub fn taken(&mut self, t: ThreadId, l: LockId, site: Option<SiteId>) {
        let log = self.threads.entry(t).or_default();
        log.seq += 1;
        log.taken.insert(l, (log.seq, site));
        if let Some((cv, mutex, untimed)) = log.waiting {
            if mutex == l {
                log.waiting = None;
                log.restart(cv);
                let held = std::mem::take(&mut log.waiting_held);
                self.holding.wait(cv, t, l, site, held);
                if untimed {
                    self.waits.entry(cv).or_default().insert((t, l, site));
                }
            }
        }
    }

    /// A wait of `t` on condvar `cv` (of trace `trace`) with mutex `l`, holding `held` (its
    /// other locks, for the condvar rule: timed or not, as the runtime's).
    pub fn cond_wait(
        &mut self,
        trace: u32,
        t: ThreadId,
        cv: u64,
        l: LockId,
        timed: bool,
        held: impl Iterator<Item = crate::condvar_wait::Held>,
    ) {
        let log = self.threads.entry(t).or_default();
        // A wait never seen retaking its mutex (a thread unwound) is a wait still.
        if let Some((cv, mutex, untimed)) = log.waiting.take() {
            let held = std::mem::take(&mut log.waiting_held);
            self.holding.wait(cv, t, mutex, None, held);
            if untimed {
                self.waits.entry(cv).or_default().insert((t, mutex, None));
            }
        }
        let log = self.threads.entry(t).or_default();
        log.waiting = Some(((trace, cv), l, !timed));
        log.waiting_held = held.filter(|h| h.0 != l).collect();
    }

    /// A notify of condvar `cv` (of trace `trace`) by `t` at `site`, holding `held`.
    pub fn notify(
        &mut self,
        trace: u32,
        t: ThreadId,
        cv: u64,
        site: Option<SiteId>,
        held: impl Iterator<Item = (LockId, Option<SiteId>)>,
    ) {
        let cv = (trace, cv);
        let log = self.threads.entry(t).or_default();
        let start = log.starts.get(&cv).copied().unwrap_or(log.last_any);
        let mut sited: Vec<(LockId, Option<SiteId>)> = held.collect();
        sited.extend(
            log.taken
                .iter()
                .filter(|&(_, &(seq, _))| seq > start)
                .map(|(&l, &(_, site))| (l, site)),
        );
        let window: BTreeSet<LockId> = sited.iter().map(|&(l, _)| l).collect();
        self.holding.notify(cv, t, site, sited);
        log.restart(cv);
        self.notifies
            .entry(cv)
            .or_default()
            .insert((t, site, window.into_iter().collect()));
    }

    /// The end of a trace: waits never over are waits still; thread numbers are not reused
    /// across traces, so the logs go.
    pub fn end_trace(&mut self) {
        for (t, mut log) in self.threads.drain() {
            if let Some((cv, mutex, untimed)) = log.waiting {
                let held = std::mem::take(&mut log.waiting_held);
                self.holding.wait(cv, t, mutex, None, held);
                if untimed {
                    self.waits.entry(cv).or_default().insert((t, mutex, None));
                }
            }
        }
    }

    /// The condvar rule's findings ([`crate::condvar_wait`]), before [`Tracker::finish`].
    pub fn waits_holding(&mut self) -> Vec<crate::condvar_wait::WaitHolding> {
        self.end_trace();
        self.holding.findings()
    }

    /// The findings: every untimed wait paired with every notify of its condvar by another
    /// thread whose window lacked the wait's mutex, in a stable order.
    pub fn finish(mut self) -> Vec<LostWakeup> {
        self.end_trace();
        let mut out: BTreeSet<LostWakeup> = BTreeSet::new();
        for (cv, waits) in &self.waits {
            let Some(notifies) = self.notifies.get(cv) else {
                continue;
            };
            for &(waiter, mutex, wait_site) in waits {
                for (notifier, notify_site, window) in notifies {
                    if *notifier != waiter && window.binary_search(&mutex).is_err() {
                        out.insert(LostWakeup {
                            mutex,
                            notify_site: *notify_site,
                            wait_site,
                            notifier: *notifier,
                            waiter,
                        });
                    }
                }
            }
        }
        out.into_iter().collect()
    }
}

/// The findings of `model` (empty unless the rule was on while it was built): one per notify
/// site, wait site and mutex class, as the runtime reports them.
pub fn violations(model: &Model) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    for f in &model.lost_wakeups {
        let mutex = lock_ref(model, f.mutex);
        let notify_site = f.notify_site.map(|s| model.site_loc(s).to_string());
        let wait_site = f.wait_site.map(|s| model.site_loc(s).to_string());
        let id = fnv(&[
            KIND.to_string(),
            mutex.class.clone(),
            notify_site.clone().unwrap_or_default(),
            wait_site.clone().unwrap_or_default(),
        ]);
        if let Some(o) = out.iter_mut().find(|o| o.id == id) {
            o.combinations += 1;
            o.edges[0].count += 1;
            continue;
        }
        let edge = EdgeReport {
            thread: model.thread_name(f.notifier),
            from: mutex.name.clone(),
            acquired: mutex.name.clone(),
            mode: Mode::Exclusive.name().to_string(),
            how: How::Blocking,
            site: notify_site,
            held: vec![HeldRef {
                lock: (format!(
                    "{} (not taken by the notifier; {} waits with it)",
                    mutex.name,
                    model.thread_name(f.waiter)
                ))
                .into(),
                mode: Mode::Exclusive.name().into(),
                site: wait_site.map(Into::into),
            }],
            frames: f
                .notify_site
                .map(|s| model.sites[s as usize].frames.clone())
                .unwrap_or_default(),
            count: 1,
            waiting_at_end: false,
            retried_try: false,
        };
        out.push(Violation {
            id,
            kind: KIND.to_string(),
            rule: crate::rules::rule_id(KIND, "instance").to_string(),
            level: "instance".into(),
            locks: vec![mutex],
            edges: vec![edge],
            class_cycle: None,
            root_cause: None,
            combinations: 1,
            declared_levels: None,
            baselined: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime's two orders and its look-alikes, on the tracker alone.
    #[test]
    fn a_notify_without_the_waiters_mutex_is_paired_with_every_untimed_wait() {
        // Thread 1 waits on cv 7 with mutex 10; thread 2 notifies holding nothing: found.
        let mut tr = Tracker::default();
        tr.taken(1, 10, Some(1));
        tr.cond_wait(0, 1, 7, 10, false, std::iter::empty());
        tr.notify(0, 2, 7, Some(2), std::iter::empty());
        tr.taken(1, 10, Some(3));
        let f = tr.finish();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].mutex, f[0].notifier, f[0].waiter), (10, 2, 1));
        assert_eq!((f[0].notify_site, f[0].wait_site), (Some(2), Some(3)));

        // The notifier took the mutex in its window (released since): silent.
        let mut tr = Tracker::default();
        tr.taken(1, 10, Some(1));
        tr.cond_wait(0, 1, 7, 10, false, std::iter::empty());
        tr.taken(2, 10, Some(4));
        tr.notify(0, 2, 7, Some(2), std::iter::empty());
        tr.taken(1, 10, Some(3));
        assert!(tr.finish().is_empty());

        // ... but before its previous notify of the same condvar: not in this window.
        let mut tr = Tracker::default();
        tr.taken(2, 10, Some(4));
        tr.notify(0, 2, 7, Some(2), std::iter::empty());
        tr.notify(0, 2, 7, Some(5), std::iter::empty());
        tr.cond_wait(0, 1, 7, 10, false, std::iter::empty());
        tr.taken(1, 10, Some(3));
        let f = tr.finish();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].notify_site, Some(5));

        // Held at the notify: silent. A timed wait: silent. The waiter's own notify: silent.
        let mut tr = Tracker::default();
        tr.cond_wait(0, 1, 7, 10, false, std::iter::empty());
        tr.notify(0, 2, 7, Some(2), [(10, None)].into_iter());
        tr.cond_wait(0, 3, 7, 11, true, std::iter::empty());
        tr.notify(0, 3, 7, Some(6), std::iter::empty());
        tr.taken(3, 11, Some(8));
        assert_eq!(
            tr.finish().len(),
            1,
            "only thread 3's notify lacks mutex 10"
        );

        // A wait never over (the hang) still counts; another trace's condvar 7 is another.
        let mut tr = Tracker::default();
        tr.cond_wait(0, 1, 7, 10, false, std::iter::empty());
        tr.end_trace();
        tr.notify(1, 2, 7, Some(2), std::iter::empty());
        assert!(tr.finish().is_empty());
        let mut tr = Tracker::default();
        tr.notify(0, 2, 7, Some(2), std::iter::empty());
        tr.cond_wait(0, 1, 7, 10, false, std::iter::empty());
        let f = tr.finish();
        assert_eq!((f.len(), f[0].wait_site), (1, None));
    }
}
