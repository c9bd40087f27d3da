//! Sync locks held across an `.await` (feature `tokio` of the runtime): a task (or a runtime's
//! root future) suspended with a sync guard, seen when another holder on the same thread, or the
//! task itself waiting for an async lock, requested a lock. The runtime reports it as
//! `held across await` and writes a `held_across_await` event; this turns those events into the
//! same finding, one per (requested lock class, held lock class, sites).

use crate::model::{HeldAcrossAwait, Model};
use crate::report::{fnv, lock_ref, merge_by_id, EdgeReport, HeldRef, Violation};
use lockcheck_core::trace::{How, Mode};

/// The finding's kind, as the runtime names it.
pub const KIND: &str = "held-across-await";

/// The findings of `model`.
pub fn violations(model: &Model) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    for f in &model.held_across_await {
        merge_by_id(&mut out, violation(model, f));
    }
    out
}

fn violation(model: &Model, f: &HeldAcrossAwait) -> Violation {
    let site = f.site.map(|s| model.site_loc(s).to_string());
    let held_site = f.held_site.map(|s| model.site_loc(s).to_string());
    let held = lock_ref(model, f.held);
    let acquired = lock_ref(model, f.lock);
    let id = fnv(&[
        KIND.to_string(),
        held.class.clone(),
        acquired.class.clone(),
        site.clone().unwrap_or_default(),
        held_site.clone().unwrap_or_default(),
    ]);
    let holder = match f.holder {
        Some(t) => model.thread_name(t),
        None => "the runtime's root future".to_string(),
    };
    let edge = EdgeReport {
        thread: model.thread_name(f.thread),
        from: held.name.clone(),
        acquired: acquired.name.clone(),
        mode: f.mode.name().to_string(),
        how: How::Blocking,
        site: site.clone(),
        held: vec![HeldRef {
            lock: (format!("{} (held by {holder}, suspended at an .await)", held.name)).into(),
            mode: Mode::Exclusive.name().into(),
            site: held_site.map(Into::into),
        }],
        frames: f
            .site
            .map(|s| model.sites[s as usize].frames.clone())
            .unwrap_or_default(),
        count: f.count,
        waiting_at_end: false,
        retried_try: false,
    };
    let mut locks = vec![held];
    if f.lock != f.held {
        locks.push(acquired);
    }
    Violation {
        id,
        kind: KIND.to_string(),
        rule: crate::rules::rule_id(KIND, "instance").to_string(),
        level: "instance".into(),
        locks,
        edges: vec![edge],
        class_cycle: None,
        root_cause: None,
        combinations: f.count,
        declared_levels: None,
        baselined: false,
    }
}
