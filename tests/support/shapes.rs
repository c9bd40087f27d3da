//! A second, independent generator of planted traces, written to check that `lockcheck analyze`
//! does not depend on the particular shape of `planted.rs`. Dev-only (examples and tests).
//!
//! What differs from `planted.rs`, as another author would plausibly write it:
//! - threads are interleaved event by event (a scheduler picks a live thread for every event),
//!   not round by round;
//! - nesting depth 1 to `max_depth` (up to 8), releases in reverse or in random order;
//! - the inverted acquisition is made once, a few times, or 1 % as often as the forward one, at
//!   a site of its own; the forward order of the pair is taken directly or only transitively
//!   (`a -> m` in one thread, `m -> b` in another); the pair is adjacent in the order or far
//!   apart, taken alone or under other held locks (never a common one), and the same inverted
//!   pair may be taken by two threads;
//! - 3-lock cycles across three threads (`A -> B`, `B -> C`, and the inverted `C -> A`);
//! - threads forked late and joined early, requests (`req`) before acquisitions;
//! - look-alikes that are no deadlock: an inversion under a common gate lock, the two orders in
//!   threads ordered by join and fork, both orders in one thread.
//!
//! The planted root causes are the inverted edges `held -> acquired`; [`Plan::planted`] lists
//! them with the site of the inverted acquisition, [`Plan::lookalikes`] the edges of the
//! look-alikes (never to be reported).

#![allow(dead_code)]

use std::io::{self, Write};

/// How often a planted inverted acquisition is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvRate {
    /// Once in the whole trace.
    Once,
    /// This many times.
    Times(u32),
    /// 1 % as often as the forward acquisition of the pair.
    Percent,
}

/// How lock names are spelled in STD text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// `L12`.
    Prefixed,
    /// `12` (the research traces' spelling).
    Bare,
    /// `mu_12`.
    Word,
}

/// The shape of a trace.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Events (approximately).
    pub events: u64,
    /// Worker threads (main, thread 0, forks and joins them).
    pub threads: u32,
    /// Locks.
    pub locks: u32,
    /// Deepest nesting of the background rounds (1 to 8).
    pub max_depth: u32,
    /// Planted AB-BA inversions.
    pub inversions: u32,
    /// Planted 3-lock cycles across three threads.
    pub cycles3: u32,
    /// How often each inverted acquisition is made.
    pub rate: InvRate,
    /// Inverted pairs adjacent in the order (else at least a quarter of the order apart).
    pub adjacent: bool,
    /// The inverted (and the forward) pair taken under other held locks, distinct per thread.
    pub nested: bool,
    /// The forward order of a pair only transitively, through a middle lock in two threads.
    pub transitive: bool,
    /// The same inverted pair also taken by a second thread (same site).
    pub two_threads: bool,
    /// Releases in random order instead of reverse order.
    pub out_of_order: bool,
    /// Workers forked at random times in the first third and joined in the last third.
    pub late_fork: bool,
    /// A request (`req`) before every acquisition made while holding a lock.
    pub requests: bool,
    /// The three look-alikes (gate lock, fork/join order, one thread).
    pub lookalikes: bool,
    /// Lock names in STD text.
    pub names: Names,
    /// PRNG seed.
    pub seed: u64,
}

impl Shape {
    /// The default shape, as a constant (for `..Shape::DEFAULT` in constants).
    pub const DEFAULT: Shape = Shape {
        events: 200_000,
        threads: 16,
        locks: 400,
        max_depth: 4,
        inversions: 3,
        cycles3: 0,
        rate: InvRate::Times(3),
        adjacent: false,
        nested: false,
        transitive: false,
        two_threads: false,
        out_of_order: false,
        late_fork: false,
        requests: false,
        lookalikes: false,
        names: Names::Prefixed,
        seed: 1,
    };
}

impl Default for Shape {
    fn default() -> Self {
        Shape::DEFAULT
    }
}

/// One event: threads `0` (main) and up, locks `0..locks`, sites `1..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    /// Request of lock `l` by `t` at `loc`.
    Req { t: u32, l: u32, loc: u32 },
    /// Acquisition.
    Acq { t: u32, l: u32, loc: u32 },
    /// Release.
    Rel { t: u32, l: u32 },
    /// `t` forks `child`.
    Fork { t: u32, child: u32 },
    /// `t` joins `child`.
    Join { t: u32, child: u32 },
}

/// A dependency edge `held -> acquired`, with the site of the acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The held lock.
    pub from: u32,
    /// The acquired lock.
    pub to: u32,
    /// The site of the acquisition of `to`.
    pub loc: u32,
}

/// What was planted.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The planted root causes: one inverted edge each.
    pub planted: Vec<Edge>,
    /// The edges of the look-alikes, both directions (never part of a violation).
    pub lookalikes: Vec<Edge>,
    /// Threads in all (main and workers and look-alike threads).
    pub threads: u32,
    /// Sites in all (`1..=sites`).
    pub sites: u32,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*, seeded through splitmix so that small seeds differ.
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Sites: normal acquisitions at `1 + (lock * 31 + depth) % NORMAL_SITES` (shared by many locks),
/// planted and look-alike acquisitions at `NORMAL_SITES + 1 + i`.
const NORMAL_SITES: u32 = 997;

/// A scripted sequence of one thread, released in the order given.
#[derive(Clone)]
struct Script {
    thread: u32,
    /// Locks with their sites, acquired in order.
    acq: Vec<(u32, u32)>,
    /// Earliest event number.
    not_before: u64,
}

struct Planner {
    rng: Rng,
    rank: Vec<u32>,
    order: Vec<u32>,
    /// Locks not for the background rounds (look-alikes, gates).
    reserved: Vec<bool>,
    next_site: u32,
    plan: Plan,
    scripts: Vec<Script>,
}

impl Planner {
    fn site(&mut self) -> u32 {
        self.next_site += 1;
        self.next_site
    }
    /// A lock of rank in `lo..hi`, not reserved, not in `avoid`.
    fn lock_in(&mut self, lo: u32, hi: u32, avoid: &[u32]) -> Option<u32> {
        for _ in 0..1000 {
            if hi <= lo {
                return None;
            }
            let r = lo + self.rng.below((hi - lo) as u64) as u32;
            let l = self.order[r as usize];
            if !self.reserved[l as usize] && !avoid.contains(&l) {
                return Some(l);
            }
        }
        None
    }
    fn reserve(&mut self, l: u32) {
        self.reserved[l as usize] = true;
    }
}

/// Plans the trace of `s`: what is planted, and the scripted acquisitions.
fn plan(s: &Shape) -> (Planner, Vec<Script>) {
    let mut rng = Rng(s.seed.wrapping_mul(0x1000_0000_01b3) ^ 0xcbf2_9ce4_8422_2325);
    let mut order: Vec<u32> = (0..s.locks).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let mut rank = vec![0u32; s.locks as usize];
    for (p, &l) in order.iter().enumerate() {
        rank[l as usize] = p as u32;
    }
    let mut p = Planner {
        rng,
        rank,
        order,
        reserved: vec![false; s.locks as usize],
        next_site: NORMAL_SITES,
        plan: Plan::default(),
        scripts: Vec::new(),
    };
    let n = s.locks;
    let w = s.threads;
    let mut extra_threads = 0;
    let window = if s.late_fork {
        (s.events / 3 + 1, 2 * s.events / 3)
    } else {
        (1, s.events)
    };
    let at = |p: &mut Planner, i: u64, of: u64| {
        window.0 + (window.1 - window.0) * (2 * i + 1) / (2 * of.max(1)) + p.rng.below(50)
    };
    // Look-alikes first, on reserved locks of their own.
    if s.lookalikes {
        // Gate: G, c, d in one thread and G, d, c in another: gated by G.
        let g = p.lock_in(0, n, &[]).unwrap();
        p.reserve(g);
        let c = p.lock_in(0, n, &[]).unwrap();
        p.reserve(c);
        let d = p.lock_in(0, n, &[]).unwrap();
        p.reserve(d);
        let (sg, sc, sd, sd2, sc2) = (p.site(), p.site(), p.site(), p.site(), p.site());
        let (t1, t2) = (1 + p.rng.below(w as u64) as u32, 0);
        let t2 = if t2 == 0 { 1 + (t1 % w) } else { t2 };
        for i in 0..6 {
            let nb = at(&mut p, i, 6);
            p.scripts.push(Script {
                thread: t1,
                acq: vec![(g, sg), (c, sc), (d, sd)],
                not_before: nb,
            });
            p.scripts.push(Script {
                thread: t2,
                acq: vec![(g, sg), (d, sd2), (c, sc2)],
                not_before: nb,
            });
        }
        p.plan.lookalikes.push(Edge {
            from: c,
            to: d,
            loc: sd,
        });
        p.plan.lookalikes.push(Edge {
            from: d,
            to: c,
            loc: sc2,
        });
        // One thread: e, f and later f, e in the same worker.
        let e = p.lock_in(0, n, &[]).unwrap();
        p.reserve(e);
        let f = p.lock_in(0, n, &[]).unwrap();
        p.reserve(f);
        let (se, sf, sf2, se2) = (p.site(), p.site(), p.site(), p.site());
        let t = 1 + p.rng.below(w as u64) as u32;
        for i in 0..4 {
            let nb = at(&mut p, i, 4);
            p.scripts.push(Script {
                thread: t,
                acq: vec![(e, se), (f, sf)],
                not_before: nb,
            });
            p.scripts.push(Script {
                thread: t,
                acq: vec![(f, sf2), (e, se2)],
                not_before: nb + 10,
            });
        }
        p.plan.lookalikes.push(Edge {
            from: e,
            to: f,
            loc: sf,
        });
        p.plan.lookalikes.push(Edge {
            from: f,
            to: e,
            loc: se2,
        });
        // Fork/join order: thread U1 takes x, y and is joined; then U2 is forked and takes y, x.
        let x = p.lock_in(0, n, &[]).unwrap();
        p.reserve(x);
        let y = p.lock_in(0, n, &[]).unwrap();
        p.reserve(y);
        let (sx, sy, sy2, sx2) = (p.site(), p.site(), p.site(), p.site());
        let (u1, u2) = (w + 1, w + 2);
        extra_threads = 2;
        // U1 runs before everything (see `generate`), U2 after it with these scripts.
        p.scripts.push(Script {
            thread: u1,
            acq: vec![(x, sx), (y, sy)],
            not_before: 0,
        });
        for _ in 0..3 {
            p.scripts.push(Script {
                thread: u2,
                acq: vec![(y, sy2), (x, sx2)],
                not_before: 0,
            });
        }
        p.plan.lookalikes.push(Edge {
            from: x,
            to: y,
            loc: sy,
        });
        p.plan.lookalikes.push(Edge {
            from: y,
            to: x,
            loc: sx2,
        });
    }
    // How often the forward order of a pair is taken, and the inverted one.
    let forward = (s.events / 400).clamp(20, 5000);
    let inverted = match s.rate {
        InvRate::Once => 1,
        InvRate::Times(k) => k as u64,
        InvRate::Percent => (forward / 100).max(1),
    };
    let mut used: Vec<u32> = Vec::new();
    for _ in 0..s.inversions {
        // a below b in the order; adjacent or far apart. Outer locks (nested) need room below a.
        let room = if s.nested { 4.min(n / 8) } else { 0 };
        let (a, b) = loop {
            let (ra, rb) = if s.adjacent {
                let ra = room + p.rng.below((n - room - 1) as u64) as u32;
                (ra, ra + 1)
            } else {
                let gap = (n / 4).max(2);
                let ra = room + p.rng.below((n - room - gap) as u64) as u32;
                (ra, ra + gap + p.rng.below((n - ra - gap) as u64) as u32)
            };
            let (a, b) = (p.order[ra as usize], p.order[rb as usize]);
            if !p.reserved[a as usize]
                && !p.reserved[b as usize]
                && !used.contains(&a)
                && !used.contains(&b)
            {
                break (a, b);
            }
        };
        used.extend([a, b]);
        let (ra, rb) = (p.rank[a as usize], p.rank[b as usize]);
        let tf = 1 + p.rng.below(w as u64) as u32;
        let ti = 1 + (tf + p.rng.below(w as u64 - 1) as u32) % w;
        let ti2 = (1..=w).find(|&t| t != tf && t != ti).unwrap_or(ti);
        // Outer locks below a, distinct per thread; the forward ones use ordinary sites.
        let outer = |p: &mut Planner, avoid: &[u32]| -> Vec<(u32, u32)> {
            if !s.nested {
                return Vec::new();
            }
            let mut v: Vec<u32> = Vec::new();
            let k = 1 + p.rng.below(2) as u32;
            for _ in 0..k {
                let mut av = avoid.to_vec();
                av.extend(&v);
                if let Some(l) = p.lock_in(0, ra, &av) {
                    v.push(l);
                }
            }
            v.sort_by_key(|&l| p.rank[l as usize]);
            v.into_iter().map(|l| (l, normal_site(l, 0))).collect()
        };
        let inv_site = p.site();
        let fwd_outer = outer(&mut p, &[a, b]);
        let avoid: Vec<u32> = fwd_outer.iter().map(|&(l, _)| l).chain([a, b]).collect();
        let inv_outer = outer(&mut p, &avoid);
        let mut avoid2 = avoid.clone();
        avoid2.extend(inv_outer.iter().map(|&(l, _)| l));
        let inv_outer2 = outer(&mut p, &avoid2);
        let fwd_a = (a, normal_site(a, 1));
        let fwd_b = (b, normal_site(b, 2));
        // The middle locks of a transitive order: between a and b, never a look-alike's (a
        // look-alike lock nested among the others would make its inverted pair part of real
        // cycles with the planted ones: a deadlock the plan would not list).
        let mids: Vec<u32> = (ra + 1..rb)
            .map(|r| p.order[r as usize])
            .filter(|&l| !p.reserved[l as usize])
            .collect();
        for i in 0..forward {
            let nb = at(&mut p, i, forward);
            if s.transitive && !mids.is_empty() {
                let m = mids[p.rng.below(mids.len() as u64) as usize];
                let tm = 1 + (tf % w);
                let mut acq = fwd_outer.clone();
                acq.extend([fwd_a, (m, normal_site(m, 2))]);
                p.scripts.push(Script {
                    thread: tf,
                    acq,
                    not_before: nb,
                });
                p.scripts.push(Script {
                    thread: tm,
                    acq: vec![(m, normal_site(m, 1)), fwd_b],
                    not_before: nb,
                });
            } else {
                let mut acq = fwd_outer.clone();
                acq.extend([fwd_a, fwd_b]);
                p.scripts.push(Script {
                    thread: tf,
                    acq,
                    not_before: nb,
                });
            }
        }
        for i in 0..inverted {
            let nb = at(&mut p, i, inverted);
            let mut acq = inv_outer.clone();
            acq.extend([(b, normal_site(b, 1)), (a, inv_site)]);
            p.scripts.push(Script {
                thread: ti,
                acq,
                not_before: nb,
            });
            if s.two_threads {
                let mut acq = inv_outer2.clone();
                acq.extend([(b, normal_site(b, 1)), (a, inv_site)]);
                p.scripts.push(Script {
                    thread: ti2,
                    acq,
                    not_before: nb + 7,
                });
            }
        }
        p.plan.planted.push(Edge {
            from: b,
            to: a,
            loc: inv_site,
        });
    }
    for _ in 0..s.cycles3 {
        // A < B < C in the order: A -> B and B -> C often in two threads, C -> A rarely in a third.
        let (a, b, c) = loop {
            let ra = p.rng.below((n - 2) as u64) as u32;
            let rb = ra + 1 + p.rng.below((n - ra - 2) as u64) as u32;
            let rc = rb + 1 + p.rng.below((n - rb - 1) as u64) as u32;
            let (a, b, c) = (
                p.order[ra as usize],
                p.order[rb as usize],
                p.order[rc as usize],
            );
            if [a, b, c]
                .iter()
                .all(|&l| !p.reserved[l as usize] && !used.contains(&l))
            {
                break (a, b, c);
            }
        };
        used.extend([a, b, c]);
        let t1 = 1 + p.rng.below(w as u64) as u32;
        let t2 = 1 + (t1 % w);
        let t3 = 1 + (t2 % w);
        let inv_site = p.site();
        for i in 0..forward {
            let nb = at(&mut p, i, forward);
            p.scripts.push(Script {
                thread: t1,
                acq: vec![(a, normal_site(a, 1)), (b, normal_site(b, 2))],
                not_before: nb,
            });
            p.scripts.push(Script {
                thread: t2,
                acq: vec![(b, normal_site(b, 1)), (c, normal_site(c, 2))],
                not_before: nb + 3,
            });
        }
        for i in 0..inverted {
            let nb = at(&mut p, i, inverted);
            p.scripts.push(Script {
                thread: t3,
                acq: vec![(c, normal_site(c, 1)), (a, inv_site)],
                not_before: nb,
            });
        }
        p.plan.planted.push(Edge {
            from: c,
            to: a,
            loc: inv_site,
        });
    }
    p.plan.threads = 1 + w + extra_threads;
    p.plan.sites = p.next_site;
    let mut scripts = std::mem::take(&mut p.scripts);
    scripts.sort_by_key(|sc| sc.not_before);
    (p, scripts)
}

fn normal_site(l: u32, depth: u32) -> u32 {
    1 + (l.wrapping_mul(31).wrapping_add(depth)) % NORMAL_SITES
}

/// What [`generate`] plants for `s`.
pub fn plan_of(s: &Shape) -> Plan {
    plan(s).0.plan
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Req(u32, u32),
    Acq(u32, u32),
    Rel(u32),
}

/// Calls `emit` for every event of the trace of `s`; returns the plan.
pub fn generate(s: &Shape, mut emit: impl FnMut(Ev)) -> Plan {
    assert!(s.threads >= 3 && s.locks >= 24 && (1..=8).contains(&s.max_depth));
    let (p, scripts) = plan(s);
    let w = s.threads;
    let mut rng = Rng(s.seed ^ 0xdead_beef_0bad_cafe);
    let mut queue: Vec<std::collections::VecDeque<Step>> =
        vec![Default::default(); (w + 3) as usize];
    let mut pending: Vec<std::collections::VecDeque<Script>> =
        vec![Default::default(); (w + 3) as usize];
    let mut u2_scripts = Vec::new();
    let mut count = 0u64;
    let mut out = |e: Ev, count: &mut u64| {
        *count += 1;
        emit(e)
    };
    let to_steps = |sc: &Script, rng: &mut Rng, out_of_order: bool, requests: bool| {
        let mut v = Vec::new();
        for (i, &(l, loc)) in sc.acq.iter().enumerate() {
            if requests && i > 0 {
                v.push(Step::Req(l, loc));
            }
            v.push(Step::Acq(l, loc));
        }
        let mut rel: Vec<u32> = sc.acq.iter().rev().map(|&(l, _)| l).collect();
        if out_of_order {
            for i in (1..rel.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                rel.swap(i, j);
            }
        }
        v.extend(rel.into_iter().map(Step::Rel));
        v
    };
    // The fork/join look-alike's first thread runs alone before anything else.
    let u1 = w + 1;
    for sc in scripts {
        if s.lookalikes && sc.thread == u1 {
            out(Ev::Fork { t: 0, child: u1 }, &mut count);
            for st in to_steps(&sc, &mut rng, false, s.requests) {
                out(step_ev(u1, st), &mut count);
            }
            out(Ev::Join { t: 0, child: u1 }, &mut count);
        } else if s.lookalikes && sc.thread == w + 2 {
            u2_scripts.push(sc);
        } else {
            pending[sc.thread as usize].push_back(sc);
        }
    }
    // Fork times and join times.
    let mut fork_at = vec![0u64; (w + 3) as usize];
    let mut join_at = vec![u64::MAX; (w + 3) as usize];
    if s.late_fork {
        for t in 1..=w {
            fork_at[t as usize] = rng.below(s.events / 3);
            join_at[t as usize] = 2 * s.events / 3 + rng.below(s.events / 3);
        }
    }
    let mut alive: Vec<u32> = Vec::new();
    let mut forked = vec![false; (w + 3) as usize];
    if s.lookalikes {
        let u2 = w + 2;
        out(Ev::Fork { t: 0, child: u2 }, &mut count);
        forked[u2 as usize] = true;
        alive.push(u2);
        for sc in &u2_scripts {
            queue[u2 as usize].extend(to_steps(sc, &mut rng, false, s.requests));
        }
    }
    let start = count;
    let mut events = 0u64;
    loop {
        // Forks due.
        for t in 1..=w {
            if !forked[t as usize] && fork_at[t as usize] <= events {
                forked[t as usize] = true;
                out(Ev::Fork { t: 0, child: t }, &mut count);
                alive.push(t);
            }
        }
        // Joins due: a thread is joined once it holds nothing and owes no planted script.
        let mut i = 0;
        while i < alive.len() {
            let t = alive[i];
            let due = join_at[t as usize] <= events || events >= s.events;
            let idle = queue[t as usize].is_empty() && pending[t as usize].is_empty();
            if due && idle {
                out(Ev::Join { t: 0, child: t }, &mut count);
                alive.swap_remove(i);
                join_at[t as usize] = 0;
            } else {
                i += 1;
            }
        }
        if alive.is_empty() && (1..=w).all(|t| forked[t as usize]) {
            break;
        }
        if alive.is_empty() {
            events += 1;
            continue;
        }
        let t = alive[rng.below(alive.len() as u64) as usize];
        if queue[t as usize].is_empty() {
            // A planted script when due, else a background round (unless past the end).
            let due = pending[t as usize]
                .front()
                .is_some_and(|sc| sc.not_before <= events || events >= s.events);
            if due {
                let sc = pending[t as usize].pop_front().unwrap();
                let st = to_steps(&sc, &mut rng, s.out_of_order, s.requests);
                queue[t as usize].extend(st);
            } else if events < s.events && t <= w {
                let depth = 1 + rng.below(s.max_depth as u64) as usize;
                let mut held: Vec<u32> = Vec::with_capacity(depth);
                while held.len() < depth {
                    let l = rng.below(s.locks as u64) as u32;
                    if !p.reserved[l as usize] && !held.contains(&l) {
                        held.push(l);
                    }
                }
                held.sort_by_key(|&l| p.rank[l as usize]);
                let sc = Script {
                    thread: t,
                    acq: held
                        .iter()
                        .enumerate()
                        .map(|(d, &l)| (l, normal_site(l, d as u32)))
                        .collect(),
                    not_before: 0,
                };
                let st = to_steps(&sc, &mut rng, s.out_of_order, s.requests);
                queue[t as usize].extend(st);
            } else {
                // Nothing more for this thread until it is joined.
                join_at[t as usize] = join_at[t as usize].min(events);
                events += 1;
                continue;
            }
        }
        let st = queue[t as usize].pop_front().unwrap();
        out(step_ev(t, st), &mut count);
        events += 1;
    }
    let _ = start;
    p.plan.clone()
}

fn step_ev(t: u32, st: Step) -> Ev {
    match st {
        Step::Req(l, loc) => Ev::Req { t, l, loc },
        Step::Acq(l, loc) => Ev::Acq { t, l, loc },
        Step::Rel(l) => Ev::Rel { t, l },
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RAPID STD text.
    Std,
    /// RAPID binary.
    RapidBin,
    /// lockcheck JSON Lines.
    Jsonl,
}

/// The name of lock `l` in the analyzer's reports of a trace written in `format`.
pub fn lock_name(s: &Shape, format: Format, l: u32) -> String {
    match (format, s.names) {
        (Format::Std, Names::Bare) => format!("{l}"),
        (Format::Std, Names::Word) => format!("mu_{l}"),
        (Format::Jsonl, _) => format!("m{l}"),
        _ => format!("L{l}"),
    }
}

/// The spelling of site `loc` in the analyzer's reports of a trace written in `format`.
pub fn site_name(format: Format, loc: u32) -> String {
    match format {
        Format::Jsonl => format!("src/shapes.rs:{loc}:9"),
        _ => format!("loc {loc}"),
    }
}

/// Writes the trace of `s` in `format` to `out`; returns the plan.
pub fn write(s: &Shape, format: Format, out: &mut dyn Write) -> io::Result<Plan> {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut err: Option<io::Error> = None;
    let flush = |buf: &mut Vec<u8>, err: &mut Option<io::Error>, out: &mut dyn Write| {
        if buf.len() > (1 << 16) - 256 {
            if err.is_none() {
                *err = out.write_all(buf).err();
            }
            buf.clear();
        }
    };
    let plan = match format {
        Format::Std => {
            let name = |l: u32| match s.names {
                Names::Prefixed => format!("L{l}"),
                Names::Bare => format!("{l}"),
                Names::Word => format!("mu_{l}"),
            };
            generate(s, |e| {
                let _ = match e {
                    Ev::Req { t, l, loc } => writeln!(buf, "T{t}|req({})|{loc}", name(l)),
                    Ev::Acq { t, l, loc } => writeln!(buf, "T{t}|acq({})|{loc}", name(l)),
                    Ev::Rel { t, l } => writeln!(buf, "T{t}|rel({})|{}", name(l), 2000 + l % 7),
                    Ev::Fork { t, child } => writeln!(buf, "T{t}|fork(T{child})|0"),
                    Ev::Join { t, child } => writeln!(buf, "T{t}|join(T{child})|0"),
                };
                flush(&mut buf, &mut err, out);
            })
        }
        Format::RapidBin => {
            let mut n = 0u64;
            let plan = generate(s, |_| n += 1);
            out.write_all(&(plan.threads as i16).to_be_bytes())?;
            out.write_all(&(s.locks as i32).to_be_bytes())?;
            out.write_all(&0i32.to_be_bytes())?;
            out.write_all(&(n as i64).to_be_bytes())?;
            generate(s, |e| {
                let (t, op, operand, loc) = match e {
                    Ev::Acq { t, l, loc } => (t, 0u64, l as u64, loc),
                    Ev::Rel { t, l } => (t, 1, l as u64, 0),
                    Ev::Fork { t, child } => (t, 4, child as u64, 0),
                    Ev::Join { t, child } => (t, 5, child as u64, 0),
                    Ev::Req { t, l, loc } => (t, 8, l as u64, loc),
                };
                let word = t as u64 | op << 10 | operand << 14 | ((loc as u64) & 0x7fff) << 48;
                buf.extend_from_slice(&word.to_be_bytes());
                flush(&mut buf, &mut err, out);
            })
        }
        Format::Jsonl => {
            let plan = plan_of(s);
            writeln!(
                buf,
                r#"{{"e":"header","version":1,"pid":7,"program":"shapes"}}"#
            )?;
            for l in 0..s.locks {
                // Locks numbered from 100, classes from 1: no accidental identity.
                writeln!(
                    buf,
                    r#"{{"e":"class","c":{},"key":"m{l}","kind":"mutex"}}"#,
                    l + 1
                )?;
                writeln!(buf, r#"{{"e":"lock","l":{},"c":{}}}"#, l + 100, l + 1)?;
            }
            for loc in 1..=plan.sites {
                writeln!(
                    buf,
                    r#"{{"e":"site","s":{loc},"loc":"src/shapes.rs:{loc}:9"}}"#
                )?;
            }
            generate(s, |e| {
                let _ = match e {
                    Ev::Req { t, l, loc } => writeln!(
                        buf,
                        r#"{{"e":"request","t":{t},"l":{},"m":"w","s":{loc}}}"#,
                        l + 100
                    ),
                    Ev::Acq { t, l, loc } => writeln!(
                        buf,
                        r#"{{"e":"acquire","t":{t},"l":{},"m":"w","s":{loc}}}"#,
                        l + 100
                    ),
                    Ev::Rel { t, l } => {
                        writeln!(buf, r#"{{"e":"release","t":{t},"l":{}}}"#, l + 100)
                    }
                    Ev::Fork { t, child } => {
                        writeln!(buf, r#"{{"e":"fork","t":{t},"child":{child}}}"#)
                    }
                    Ev::Join { t, child } => {
                        writeln!(buf, r#"{{"e":"join","t":{t},"child":{child}}}"#)
                    }
                };
                flush(&mut buf, &mut err, out);
            })
        }
    };
    if let Some(e) = err {
        return Err(e);
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(plan)
}
