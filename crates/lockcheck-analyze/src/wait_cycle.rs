//! Wait cycles through a semaphore (found by [`crate::model::ModelBuilder`] as the runtime's
//! wait-for graph finds them: see [`crate::model::WaitCycle`]): reported as an instance-level
//! `lock-order-inversion`, the analyzer's name for the runtime's `deadlock`, unless the
//! lock-order graph already reports a cycle of the same locks.

use crate::model::{Model, WaitCycle};
use crate::report::{fnv, merge_by_id, EdgeReport, HeldRef, LockRef, Violation};
use lockcheck_core::trace::How;
use std::collections::BTreeSet;

/// The findings of `model` that `found` (the findings so far) does not already have: one per
/// distinct cycle (its locks' classes and sites).
pub fn violations(model: &Model, found: &[Violation]) -> Vec<Violation> {
    let classes =
        |v: &Violation| -> BTreeSet<String> { v.locks.iter().map(|l| l.class.clone()).collect() };
    let known: Vec<BTreeSet<String>> = found
        .iter()
        .filter(|v| v.kind == "lock-order-inversion")
        .map(classes)
        .collect();
    let mut out: Vec<Violation> = Vec::new();
    for c in &model.wait_cycles {
        let v = violation(model, c);
        if known.contains(&classes(&v)) {
            continue;
        }
        merge_by_id(&mut out, v);
    }
    out
}

fn violation(model: &Model, c: &WaitCycle) -> Violation {
    let site = |s: Option<u32>| s.map(|s| model.site_loc(s).to_string());
    let mut locks: Vec<LockRef> = Vec::new();
    let mut key = vec!["wait-cycle".to_string()];
    let mut parts: Vec<String> = Vec::new();
    let edges = c
        .waits
        .iter()
        .map(|w| {
            let name = model.lock_name(w.lock);
            let class = &model.classes[model.locks[w.lock as usize].class as usize];
            if !locks.iter().any(|l| l.name == name) {
                locks.push(LockRef {
                    name: name.clone(),
                    class: class.key.clone(),
                    kind: format!("{:?}", class.kind).to_lowercase(),
                });
            }
            let held = model.lock_name(w.held);
            let held_class = &model.classes[model.locks[w.held as usize].class as usize];
            parts.push(format!(
                "{} {} {} {}",
                class.key,
                site(w.site).unwrap_or_default(),
                held_class.key,
                site(w.held_site).unwrap_or_default()
            ));
            EdgeReport {
                thread: model.thread_name(w.thread),
                from: held.clone(),
                acquired: name,
                mode: w.mode.name().to_string(),
                how: How::Blocking,
                site: site(w.site),
                held: vec![HeldRef {
                    lock: held.into(),
                    mode: w.held_mode.name().into(),
                    site: site(w.held_site).map(Into::into),
                }],
                frames: w
                    .site
                    .map(|s| model.sites[s as usize].frames.clone())
                    .unwrap_or_default(),
                count: c.count,
                waiting_at_end: false,
                retried_try: false,
            }
        })
        .collect();
    // Thread-independent and in no particular order: the same cycle of other threads is one.
    parts.sort();
    key.extend(parts);
    let kind = "lock-order-inversion";
    Violation {
        id: fnv(&key),
        kind: kind.to_string(),
        rule: crate::rules::rule_id(kind, "instance").to_string(),
        level: "instance".into(),
        locks,
        edges,
        class_cycle: None,
        root_cause: None,
        combinations: c.count,
        declared_levels: None,
        baselined: false,
    }
}
