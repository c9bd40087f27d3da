//! A condvar wait holding a lock its notifier needs (opt-in, `lockcheck analyze --condvar`, the
//! runtime's `LOCKCHECK_CONDVAR`): a thread waits on a condition variable while holding a lock
//! that a notifier of that condvar held or took in its window before notifying. If the notifier
//! needs that lock again before its next notify, it blocks on it, and the wait never ends
//! (cloud-hypervisor/cloud-hypervisor#8092: the pause waits for the vCPUs' acknowledgement holding
//! the states their MMIO path locks).
//!
//! The runtime's rule (`checked::watch`, `check_condvar_wait` and `note_notifier`): a notify's
//! *window* is the locks the notifier holds and those it took since its last return from a wait
//! on that condvar or its last notify of it (on a condvar it has neither for, since its latest
//! such event of any condvar, or its start), as for the lost-wakeup rule
//! ([`crate::lost_wakeup`], whose tracker keeps both rules' logs). At every wait, timed or not,
//! the locks the waiter holds besides the wait's mutex, of any mode, are checked against the
//! windows of the condvar's notifies seen so far; with no notify seen yet, every such lock is
//! warned about (`notifier_seen: false`).
//!
//! Offline, from the same events (`cond_wait`, `notify`, and each thread's acquisitions), the
//! windows are exact (the runtime bounds what it keeps and reports its bounds). A trace does not
//! tell which notifies came before a wait (the streams interleave by block, not by time), so
//! every wait holding a lock is paired with every notify of its condvar by *another* thread whose
//! window held or took that lock: the runtime's findings with a notifier seen and, predicted,
//! those of the other orders of the run. A condvar that no other thread of the trace notified
//! (the runtime's `notifier_seen: false`, which it can only have said too) is reported for every
//! lock its waits hold; a condvar notified by another thread is reported only for the locks a
//! notifier's window had: the runtime's warning before any notify, which depends on the timing,
//! is not repeated offline when the trace shows that no notifier takes the lock. The waiter's own
//! notifies are not counted (it cannot notify while it waits), where the runtime counts them.

use crate::model::{LockId, Model, SiteId, ThreadId};
use crate::report::{fnv, lock_ref, EdgeReport, HeldRef, Violation};
use lockcheck_core::trace::{How, Mode};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

/// The finding's kind, as the runtime names it (`ViolationKind::CondvarWait`).
pub const KIND: &str = "condvar-wait-holding-lock";

/// A condvar of one trace: (trace index, its number there).
type CvKey = (u32, u64);

/// A lock held at a wait: the lock, its mode, where it was taken.
pub type Held = (LockId, Mode, Option<SiteId>);

/// A notifier whose window held or took the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Notifier {
    /// The notifying thread.
    pub thread: ThreadId,
    /// Where it notified.
    pub notify_site: Option<SiteId>,
    /// Where it took the lock (in its window, or held at the notify).
    pub took_at: Option<SiteId>,
}

/// A wait holding a lock that a notifier of its condvar held or took in its window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaitHolding {
    /// The mutex the waiter waits with.
    pub mutex: LockId,
    /// Where it waited (the site of its mutex's retaking; `None`: never retaken).
    pub wait_site: Option<SiteId>,
    /// The waiting thread.
    pub waiter: ThreadId,
    /// The lock it holds while it waits, its mode and where it took it.
    pub held: Held,
    /// The notifier that took it (`None`: no other thread of the trace notified the condvar).
    pub notifier: Option<Notifier>,
}

/// A wait holding a lock: (waiter, mutex, wait site, the lock).
type WaitHeld = (ThreadId, LockId, Option<SiteId>, Held);
/// A notifier's lock: the first (notify site, acquisition site) seen for it.
type Window = HashMap<(ThreadId, LockId), (Option<SiteId>, Option<SiteId>)>;

/// What the lost-wakeup tracker keeps for this rule (only with `--condvar`).
#[derive(Debug, Default)]
pub struct Sides {
    /// Per condvar, its waits holding other locks: (waiter, mutex, wait site, a held lock).
    waits: HashMap<CvKey, HashSet<WaitHeld>>,
    /// Per condvar, per (notifier, lock of one of its windows), the first notify and acquisition
    /// sites seen.
    windows: HashMap<CvKey, Window>,
    /// Per condvar, the threads that notified it.
    notifiers: HashMap<CvKey, HashSet<ThreadId>>,
}

impl Sides {
    /// A wait of `t` on `cv` with `mutex`, retaken at `site`, holding `held` (its other locks).
    pub(crate) fn wait(
        &mut self,
        cv: CvKey,
        t: ThreadId,
        mutex: LockId,
        site: Option<SiteId>,
        held: Vec<Held>,
    ) {
        if held.is_empty() {
            return;
        }
        let w = self.waits.entry(cv).or_default();
        for h in held {
            w.insert((t, mutex, site, h));
        }
    }

    /// A notify of `cv` by `t` at `site`, its window's locks with their acquisition sites.
    pub(crate) fn notify(
        &mut self,
        cv: CvKey,
        t: ThreadId,
        site: Option<SiteId>,
        window: impl IntoIterator<Item = (LockId, Option<SiteId>)>,
    ) {
        self.notifiers.entry(cv).or_default().insert(t);
        let w = self.windows.entry(cv).or_default();
        for (l, took_at) in window {
            w.entry((t, l)).or_insert((site, took_at));
        }
    }

    /// Every wait holding a lock paired with every notifier of its condvar (another thread)
    /// whose window had it, in a stable order.
    pub(crate) fn findings(&self) -> Vec<WaitHolding> {
        let mut out: BTreeSet<WaitHolding> = BTreeSet::new();
        let none = HashMap::new();
        for (cv, waits) in &self.waits {
            let windows = self.windows.get(cv).unwrap_or(&none);
            let notifiers = self.notifiers.get(cv);
            for &(waiter, mutex, wait_site, held) in waits {
                let others = notifiers.is_some_and(|n| n.iter().any(|&n| n != waiter));
                let f = |notifier| WaitHolding {
                    mutex,
                    wait_site,
                    waiter,
                    held,
                    notifier,
                };
                if !others {
                    out.insert(f(None));
                    continue;
                }
                for (&(thread, l), &(notify_site, took_at)) in windows {
                    if thread != waiter && l == held.0 {
                        out.insert(f(Some(Notifier {
                            thread,
                            notify_site,
                            took_at,
                        })));
                    }
                }
            }
        }
        out.into_iter().collect()
    }
}

/// The findings of `model` (empty unless the rule was on while it was built): one per wait site,
/// held lock's class and site, and mutex class, as the runtime reports them; the first notifier
/// shown, the others counted in `combinations`.
pub fn violations(model: &Model) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    for f in &model.condvar_waits {
        let mutex = lock_ref(model, f.mutex);
        let (held_lock, held_mode, held_site) = f.held;
        let held = lock_ref(model, held_lock);
        let site = |s: Option<SiteId>| s.map(|s| model.site_loc(s).to_string());
        let frames = |s: Option<SiteId>| {
            s.map(|s| model.sites[s as usize].frames.clone())
                .unwrap_or_default()
        };
        let id = fnv(&[
            KIND.to_string(),
            mutex.class.clone(),
            held.class.clone(),
            site(f.wait_site).unwrap_or_default(),
            site(held_site).unwrap_or_default(),
        ]);
        if let Some(o) = out.iter_mut().find(|o| o.id == id) {
            o.combinations += 1;
            continue;
        }
        let mut edges = vec![EdgeReport {
            thread: model.thread_name(f.waiter),
            from: held.name.clone(),
            acquired: mutex.name.clone(),
            mode: Mode::Exclusive.name().to_string(),
            how: How::Blocking,
            site: site(f.wait_site),
            held: vec![HeldRef {
                lock: held.name.clone().into(),
                mode: held_mode.name().into(),
                site: site(held_site).map(Into::into),
            }],
            frames: frames(f.wait_site),
            count: 1,
            waiting_at_end: f.wait_site.is_none(),
            retried_try: false,
        }];
        if let Some(n) = f.notifier {
            edges.push(EdgeReport {
                thread: model.thread_name(n.thread),
                from: held.name.clone(),
                acquired: held.name.clone(),
                mode: Mode::Exclusive.name().to_string(),
                how: How::Blocking,
                site: site(n.took_at),
                held: vec![HeldRef {
                    lock: (format!(
                        "then notifies the condvar {} waits on with {}",
                        model.thread_name(f.waiter),
                        mutex.name
                    ))
                    .into(),
                    mode: Mode::Exclusive.name().into(),
                    site: site(n.notify_site).map(Into::into),
                }],
                frames: frames(n.took_at),
                count: 1,
                waiting_at_end: false,
                retried_try: false,
            });
        }
        out.push(Violation {
            id,
            kind: KIND.to_string(),
            rule: crate::rules::rule_id(KIND, "instance").to_string(),
            level: "instance".into(),
            locks: vec![held, mutex],
            edges,
            class_cycle: None,
            root_cause: None,
            combinations: 1,
            declared_levels: None,
            baselined: false,
        });
    }
    out
}

/// The finding's one-line title (text report, SARIF message).
pub fn title(v: &Violation) -> String {
    let unknown = "an unknown site";
    let (w, n) = (v.edges.first(), v.edges.get(1));
    let held = v.locks.first().map_or("?", |l| l.name.as_str());
    let mutex = v.locks.get(1).map_or("?", |l| l.name.as_str());
    format!(
        "condvar wait holding a lock: {} waits on a condvar (mutex {mutex}) at {} while holding {held}, {}",
        w.map_or("?", |e| e.thread.as_str()),
        w.and_then(|e| e.site.as_deref()).unwrap_or(unknown),
        match n {
            Some(n) => format!(
                "which {} took at {} before notifying it at {}",
                n.thread,
                n.site.as_deref().unwrap_or(unknown),
                n.held
                    .first()
                    .and_then(|h| h.site.as_deref())
                    .unwrap_or(unknown)
            ),
            None => "and no other thread of the trace notified that condvar".to_string(),
        }
    )
}

/// The finding's text body (after its title).
pub fn text(out: &mut String, v: &Violation) {
    let unknown = "an unknown site";
    let held = v.locks.first().map_or("?", |l| l.name.as_str());
    if let Some(h) = v.edges.first().and_then(|e| e.held.first()) {
        let _ = writeln!(
            out,
            "\n   {held} was taken at {}.",
            h.site.as_deref().unwrap_or(unknown)
        );
    }
    if v.edges.len() > 1 {
        let _ = writeln!(out, "   A notifier of this condvar took it in its window (since its last wait on or notify of it):\n   if it needs it again to notify, it blocks, and this wait never ends.");
    } else {
        let _ = writeln!(out, "   If the thread that notifies needs that lock, it blocks on it, and this wait never ends.");
    }
    if v.combinations > 1 {
        let _ = writeln!(
            out,
            "   ({} waiter and notifier pairs over these locks; one shown)",
            v.combinations
        );
    }
    let _ = writeln!(
        out,
        "   Release other locks before waiting, or notify without taking them.\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lost_wakeup::Tracker;

    const H: Held = (20, Mode::Exclusive, Some(9));

    /// The runtime's scenarios and look-alikes, on the tracker alone.
    #[test]
    fn a_wait_holding_a_lock_a_notifier_took_in_its_window_is_paired_with_that_notify() {
        // Thread 2 takes 20, then notifies cv 7; thread 1 waits on it holding 20: found.
        let mut tr = Tracker::default();
        tr.taken(2, 20, Some(4));
        tr.notify(0, 2, 7, Some(5), std::iter::empty());
        tr.taken(1, 20, Some(9));
        tr.taken(1, 10, Some(1));
        tr.cond_wait(
            0,
            1,
            7,
            10,
            true,
            [H, (10, Mode::Exclusive, Some(1))].into_iter(),
        );
        tr.taken(1, 10, Some(3));
        let f = tr.waits_holding();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].mutex, f[0].waiter, f[0].held, f[0].wait_site),
            (10, 1, H, Some(3))
        );
        let n = f[0].notifier.unwrap();
        assert_eq!((n.thread, n.notify_site, n.took_at), (2, Some(5), Some(4)));

        // The notifier took 20 before its previous wait on the condvar: silent.
        let mut tr = Tracker::default();
        tr.taken(2, 20, Some(4));
        tr.cond_wait(0, 2, 7, 10, true, std::iter::empty());
        tr.taken(2, 10, Some(3));
        tr.notify(0, 2, 7, Some(5), [(10, Some(3))].into_iter());
        tr.cond_wait(0, 1, 7, 10, true, [H].into_iter());
        assert!(tr.waits_holding().is_empty());

        // A notifier that never takes 20 (another lock): silent; the waiter's own notify: silent.
        let mut tr = Tracker::default();
        tr.taken(2, 21, Some(4));
        tr.notify(0, 2, 7, Some(5), std::iter::empty());
        tr.taken(1, 20, Some(9));
        tr.notify(0, 1, 7, Some(6), std::iter::empty());
        tr.cond_wait(0, 1, 7, 10, true, [H].into_iter());
        assert!(tr.waits_holding().is_empty());

        // No other thread notified the condvar: reported, no notifier (the runtime's
        // `notifier_seen: false`). No lock held besides the mutex: silent.
        let mut tr = Tracker::default();
        tr.notify(0, 1, 7, Some(6), std::iter::empty());
        tr.cond_wait(0, 1, 7, 10, true, [H].into_iter());
        tr.cond_wait(0, 3, 7, 10, false, std::iter::empty());
        let f = tr.waits_holding();
        assert_eq!((f.len(), f[0].notifier, f[0].wait_site), (1, None, None));
    }
}
