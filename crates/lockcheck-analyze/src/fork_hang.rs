//! Locks a `fork` left held: `fork(2)` copies only the calling thread, so a lock another thread
//! of the parent held at that moment stays held in the child by a thread that does not exist
//! there. The lockcheck runtime (Linux) reports a blocking acquisition of such a lock by the
//! child's only thread as a `deadlock` of one thread and writes a `left_held` event into the
//! child's own trace (`docs/trace-format.md`); this turns those events into the same finding,
//! one per (lock class, site).

use crate::model::{LeftHeld, Model};
use crate::report::{fnv, lock_ref, merge_by_id, EdgeReport, HeldRef, Violation};
use lockcheck_core::trace::{How, Mode};

/// The finding's kind, as the runtime names it.
pub const KIND: &str = "deadlock";

/// Who holds the lock, as the runtime says it.
pub const GONE: &str = "a thread of the parent process, which fork() did not copy";

/// The findings of `model`.
pub fn violations(model: &Model) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    for f in &model.left_held {
        merge_by_id(&mut out, violation(model, f));
    }
    out
}

fn violation(model: &Model, f: &LeftHeld) -> Violation {
    let site = f.site.map(|s| model.site_loc(s).to_string());
    let acquired = lock_ref(model, f.lock);
    let id = fnv(&[
        KIND.to_string(),
        "fork".to_string(),
        acquired.class.clone(),
        site.clone().unwrap_or_default(),
    ]);
    let parent = if f.parent == 0 {
        String::new()
    } else {
        format!(" (process {})", f.parent)
    };
    let mut held = vec![HeldRef {
        lock: format!("{} (held by {GONE}{parent})", acquired.name).into(),
        mode: Mode::Exclusive.name().into(),
        site: None,
    }];
    held.extend(f.held.iter().map(|&l| HeldRef {
        lock: model.lock_name(l).into(),
        mode: Mode::Exclusive.name().into(),
        site: None,
    }));
    let edge = EdgeReport {
        thread: model.thread_name(f.thread),
        from: acquired.name.clone(),
        acquired: acquired.name.clone(),
        mode: f.mode.name().to_string(),
        how: How::Blocking,
        site: site.clone(),
        held,
        frames: f
            .site
            .map(|s| model.sites[s as usize].frames.clone())
            .unwrap_or_default(),
        count: f.count,
        waiting_at_end: true,
        retried_try: false,
    };
    Violation {
        id,
        kind: KIND.to_string(),
        rule: crate::rules::rule_id(KIND, "instance").to_string(),
        level: "instance".into(),
        locks: vec![acquired],
        edges: vec![edge],
        class_cycle: None,
        root_cause: None,
        combinations: f.count,
        declared_levels: None,
        baselined: false,
    }
}
