//! Self-deadlock findings: a thread requested a lock it already held, in a mode that waits for
//! its own hold (found by [`crate::model::ModelBuilder`] from `request` events, or from
//! `acquire` events in traces without requests). Named and grouped as the runtime reports them:
//! `self-deadlock` (blocks forever) and `recursive-read` (blocks when a writer queues between).

use crate::model::{Model, SelfDeadlock};
use crate::report::{fnv, EdgeReport, HeldRef, LockRef, Violation};
use lockcheck_core::trace::How;

/// The findings of `model`, one per (kind, lock class, request site, hold site).
pub fn violations(model: &Model) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    for f in &model.self_deadlocks {
        let v = violation(model, f);
        match out.iter_mut().find(|o| o.id == v.id) {
            // The same code in several processes (or on several instances of one class).
            Some(o) => {
                o.combinations += v.combinations;
                o.edges[0].count += v.edges[0].count;
                o.edges[0].waiting_at_end &= v.edges[0].waiting_at_end;
            }
            None => out.push(v),
        }
    }
    out
}

fn violation(model: &Model, f: &SelfDeadlock) -> Violation {
    let lock = &model.locks[f.lock as usize];
    let class = &model.classes[lock.class as usize];
    let name = model.lock_name(f.lock);
    let site = f.site.map(|s| model.site_loc(s).to_string());
    let held_site = f.held_site.map(|s| model.site_loc(s).to_string());
    let kind = f.kind.name();
    let id = fnv(&[
        kind.to_string(),
        class.key.clone(),
        site.clone().unwrap_or_default(),
        held_site.clone().unwrap_or_default(),
    ]);
    let edge = EdgeReport {
        thread: model.thread_name(f.thread),
        from: name.clone(),
        acquired: name.clone(),
        mode: f.mode.name().to_string(),
        how: How::Blocking,
        site: site.clone(),
        held: vec![HeldRef {
            lock: name.clone().into(),
            mode: f.held_mode.name().into(),
            site: held_site.map(Into::into),
        }],
        frames: f
            .site
            .map(|s| model.sites[s as usize].frames.clone())
            .unwrap_or_default(),
        count: f.count,
        waiting_at_end: f.pending,
        retried_try: f.retried,
    };
    Violation {
        id,
        kind: kind.to_string(),
        rule: crate::rules::rule_id(kind, "instance").to_string(),
        level: "instance".into(),
        locks: vec![LockRef {
            name,
            class: class.key.clone(),
            kind: format!("{:?}", class.kind).to_lowercase(),
        }],
        edges: vec![edge],
        class_cycle: None,
        root_cause: None,
        combinations: f.count,
        declared_levels: None,
        baselined: false,
    }
}

/// The nested permit requests of [`Model::permit_nests`], named as the runtime names them: a
/// `lock-order-inversion` whose every edge holds and requests the one semaphore (a cycle of one
/// lock through as many threads as it takes to hold every permit). One per semaphore class and
/// sites, as the self-deadlocks.
pub fn permit_nest_violations(model: &Model) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    for f in &model.permit_nests {
        let v = permit_nest(model, f);
        match out.iter_mut().find(|o| o.id == v.id) {
            Some(o) => o.combinations += 1,
            None => out.push(v),
        }
    }
    out
}

fn permit_nest(model: &Model, f: &crate::model::PermitNest) -> Violation {
    let lock = &model.locks[f.lock as usize];
    let class = &model.classes[lock.class as usize];
    let name = model.lock_name(f.lock);
    let loc = |s: Option<u32>| s.map(|s| model.site_loc(s).to_string());
    let kind = "lock-order-inversion";
    let mut sites: Vec<String> = f
        .requests
        .iter()
        .flat_map(|r| [loc(r.2).unwrap_or_default(), loc(r.3).unwrap_or_default()])
        .collect();
    sites.sort();
    sites.dedup();
    let mut parts = vec![kind.to_string(), "permits".to_string(), class.key.clone()];
    parts.extend(sites);
    let edges: Vec<EdgeReport> = f
        .requests
        .iter()
        .map(|&(t, _, site, held_site)| EdgeReport {
            thread: model.thread_name(t),
            from: name.clone(),
            acquired: name.clone(),
            mode: lockcheck_core::trace::Mode::Permit.name().to_string(),
            how: How::Blocking,
            site: loc(site),
            held: vec![HeldRef {
                lock: name.clone().into(),
                mode: lockcheck_core::trace::Mode::Permit.name().into(),
                site: loc(held_site).map(Into::into),
            }],
            frames: site
                .map(|s| model.sites[s as usize].frames.clone())
                .unwrap_or_default(),
            count: 1,
            waiting_at_end: false,
            retried_try: false,
        })
        .collect();
    let lock_ref = LockRef {
        name: name.clone(),
        class: class.key.clone(),
        kind: format!("{:?}", class.kind).to_lowercase(),
    };
    Violation {
        id: fnv(&parts),
        kind: kind.to_string(),
        rule: crate::rules::rule_id(kind, "instance").to_string(),
        level: "instance".into(),
        // One lock per edge, as a cycle's (`edges[i]` holds `locks[i]`): the one semaphore.
        locks: vec![lock_ref; edges.len()],
        edges,
        class_cycle: None,
        root_cause: None,
        combinations: 1,
        declared_levels: None,
        baselined: false,
    }
}
