//! A generator of "planted" traces: threads that nest locks in one consistent global order, plus
//! K planted AB-BA inversions between threads. Dev-only (examples, tests, benchmarks): it is not
//! part of any crate's public API.
//!
//! Shape: `locks` locks ranked by a seeded random permutation (the order every thread obeys);
//! each round a worker thread takes 1 to 4 distinct locks in increasing rank and releases them in
//! reverse. Inversion `k` is a pair `(a, b)` with `rank(a) < rank(b)`: worker `2k mod threads`
//! takes `a` then `b` (with nothing else held) in a round now and then, worker `2k+1 mod threads`
//! takes `b` then `a` a few times over the whole trace. So the inverted edges `b -> a` are exactly
//! the K planted root causes, each closing many cycles with the forward paths of the order.
//!
//! Events are emitted as abstract [`Ev`]s; the writers turn them into RAPID STD text, RAPID binary
//! or lockcheck JSON Lines.

#![allow(dead_code)]

use std::io::{self, Write};

/// The shape of a planted trace.
#[derive(Debug, Clone, Copy)]
pub struct PlantedConfig {
    /// Number of acquire/release events (approximately: whole rounds are emitted).
    pub events: u64,
    /// Worker threads (besides the main thread, which forks and joins them).
    pub threads: u32,
    /// Locks.
    pub locks: u32,
    /// Planted inversions (distinct pairs; needs `locks >= 2 * inversions`).
    pub inversions: u32,
    /// How many times each inverted acquisition happens.
    pub inverted_occurrences: u32,
    /// PRNG seed.
    pub seed: u64,
}

impl Default for PlantedConfig {
    fn default() -> Self {
        PlantedConfig {
            events: 5_000_000,
            threads: 16,
            locks: 400,
            inversions: 3,
            inverted_occurrences: 3,
            seed: 1,
        }
    }
}

/// One abstract event: threads are `0` (main) and `1..=threads` (workers), locks `0..locks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    /// `t` takes lock `l` at location `loc`.
    Acq { t: u32, l: u32, loc: u32 },
    /// `t` releases lock `l`.
    Rel { t: u32, l: u32, loc: u32 },
    /// `t` starts thread `child`.
    Fork { t: u32, child: u32 },
    /// `t` joins thread `child`.
    Join { t: u32, child: u32 },
}

/// A planted inversion: the order is `first -> second`; the planted edge is `second -> first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inversion {
    /// The lock of lower rank.
    pub first: u32,
    /// The lock of higher rank.
    pub second: u32,
    /// The location of the inverted acquisition of `first` (distinct from every normal one).
    pub loc: u32,
}

/// The location of a normal acquisition of lock `l`.
pub fn normal_loc(l: u32) -> u32 {
    l + 1
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The planted inversions of `cfg` (deterministic in the seed).
pub fn inversions(cfg: &PlantedConfig) -> Vec<Inversion> {
    plan(cfg).1
}

fn plan(cfg: &PlantedConfig) -> (Vec<u32>, Vec<Inversion>) {
    let mut rng = Rng(cfg.seed);
    // rank[l]: position of lock l in the global order.
    let mut order: Vec<u32> = (0..cfg.locks).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let mut rank = vec![0u32; cfg.locks as usize];
    for (p, &l) in order.iter().enumerate() {
        rank[l as usize] = p as u32;
    }
    let mut used = std::collections::HashSet::new();
    let mut inv = Vec::new();
    while (inv.len() as u32) < cfg.inversions {
        let a = rng.below(cfg.locks as u64) as u32;
        let b = rng.below(cfg.locks as u64) as u32;
        if a == b || used.contains(&a) || used.contains(&b) {
            continue;
        }
        used.insert(a);
        used.insert(b);
        let (first, second) = if rank[a as usize] < rank[b as usize] {
            (a, b)
        } else {
            (b, a)
        };
        inv.push(Inversion {
            first,
            second,
            loc: cfg.locks + 1 + inv.len() as u32,
        });
    }
    (rank, inv)
}

/// Calls `emit` for every event of the planted trace of `cfg`.
pub fn generate(cfg: &PlantedConfig, mut emit: impl FnMut(Ev)) {
    assert!(cfg.threads >= 2 && cfg.locks >= 4 && cfg.locks >= 2 * cfg.inversions);
    let (rank, inv) = plan(cfg);
    let mut rng = Rng(cfg.seed ^ 0x5555_5555);
    for t in 1..=cfg.threads {
        emit(Ev::Fork { t: 0, child: t });
    }
    // Rounds of ~2 * 2.5 events; the inverted rounds are spread evenly.
    let rounds = (cfg.events / 5).max(1);
    let every = (rounds / (cfg.inverted_occurrences as u64 + 1)).max(1);
    let mut events = 0u64;
    let mut round = 0u64;
    let mut held: Vec<u32> = Vec::with_capacity(4);
    while events < cfg.events {
        round += 1;
        let t = 1 + (round % cfg.threads as u64) as u32;
        // Planted rounds: the forward order often, the inverted order rarely.
        let k = (round % 97) as usize;
        if k < inv.len() && (round / 97) % 7 == 0 {
            let i = inv[k];
            let t = 1 + ((2 * k as u32) % cfg.threads);
            emit(Ev::Acq {
                t,
                l: i.first,
                loc: normal_loc(i.first),
            });
            emit(Ev::Acq {
                t,
                l: i.second,
                loc: normal_loc(i.second),
            });
            emit(Ev::Rel {
                t,
                l: i.second,
                loc: normal_loc(i.second),
            });
            emit(Ev::Rel {
                t,
                l: i.first,
                loc: normal_loc(i.first),
            });
            events += 4;
            continue;
        }
        if round % every == 0 && round / every <= cfg.inverted_occurrences as u64 {
            for (k, i) in inv.iter().enumerate() {
                let t = 1 + ((2 * k as u32 + 1) % cfg.threads);
                emit(Ev::Acq {
                    t,
                    l: i.second,
                    loc: normal_loc(i.second),
                });
                emit(Ev::Acq {
                    t,
                    l: i.first,
                    loc: i.loc,
                });
                emit(Ev::Rel {
                    t,
                    l: i.first,
                    loc: i.loc,
                });
                emit(Ev::Rel {
                    t,
                    l: i.second,
                    loc: normal_loc(i.second),
                });
                events += 4;
            }
            continue;
        }
        let depth = 1 + rng.below(4) as usize;
        held.clear();
        while held.len() < depth {
            let l = rng.below(cfg.locks as u64) as u32;
            if !held.contains(&l) {
                held.push(l);
            }
        }
        held.sort_by_key(|&l| rank[l as usize]);
        for &l in &held {
            emit(Ev::Acq {
                t,
                l,
                loc: normal_loc(l),
            });
        }
        for &l in held.iter().rev() {
            emit(Ev::Rel {
                t,
                l,
                loc: normal_loc(l),
            });
        }
        events += 2 * depth as u64;
    }
    for t in 1..=cfg.threads {
        emit(Ev::Join { t: 0, child: t });
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

impl Format {
    /// By name: `std`, `rapidbin`/`data`, `jsonl`/`json`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "std" => Some(Format::Std),
            "rapidbin" | "data" | "rapid-bin" => Some(Format::RapidBin),
            "jsonl" | "json" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// Writes the planted trace of `cfg` to `out` in `format`; returns the number of events written.
pub fn write(cfg: &PlantedConfig, format: Format, out: &mut dyn Write) -> io::Result<u64> {
    let mut n = 0u64;
    let mut err = None;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    match format {
        Format::Std => {
            generate(cfg, |e| {
                use std::io::Write as _;
                let _ = match e {
                    Ev::Acq { t, l, loc } => writeln!(buf, "T{t}|acq(L{l})|{loc}"),
                    Ev::Rel { t, l, loc } => writeln!(buf, "T{t}|rel(L{l})|{loc}"),
                    Ev::Fork { t, child } => writeln!(buf, "T{t}|fork(T{child})|0"),
                    Ev::Join { t, child } => writeln!(buf, "T{t}|join(T{child})|0"),
                };
                n += 1;
                if buf.len() > (1 << 16) - 64 && err.is_none() {
                    err = out.write_all(&buf).err();
                    buf.clear();
                }
            });
        }
        Format::RapidBin => {
            // Header: i16 threads, i32 locks, i32 variables, i64 events (counted first).
            let mut count = 0u64;
            generate(cfg, |_| count += 1);
            out.write_all(&((cfg.threads + 1) as i16).to_be_bytes())?;
            out.write_all(&(cfg.locks as i32).to_be_bytes())?;
            out.write_all(&0i32.to_be_bytes())?;
            out.write_all(&(count as i64).to_be_bytes())?;
            generate(cfg, |e| {
                let (t, op, operand, loc) = match e {
                    Ev::Acq { t, l, loc } => (t, 0u64, l as u64, loc),
                    Ev::Rel { t, l, loc } => (t, 1, l as u64, loc),
                    Ev::Fork { t, child } => (t, 4, child as u64, 0),
                    Ev::Join { t, child } => (t, 5, child as u64, 0),
                };
                let word = t as u64 | op << 10 | operand << 14 | ((loc as u64) & 0x7fff) << 48;
                buf.extend_from_slice(&word.to_be_bytes());
                n += 1;
                if buf.len() > (1 << 16) - 64 && err.is_none() {
                    err = out.write_all(&buf).err();
                    buf.clear();
                }
            });
        }
        Format::Jsonl => {
            use std::io::Write as _;
            writeln!(
                buf,
                r#"{{"e":"header","version":1,"pid":1,"program":"planted"}}"#
            )?;
            for l in 0..cfg.locks {
                writeln!(
                    buf,
                    r#"{{"e":"class","c":{},"key":"L{l}","kind":"mutex"}}"#,
                    l + 1
                )?;
                writeln!(buf, r#"{{"e":"lock","l":{},"c":{}}}"#, l + 1, l + 1)?;
            }
            for loc in 1..=cfg.locks + 1 + cfg.inversions {
                writeln!(
                    buf,
                    r#"{{"e":"site","s":{loc},"loc":"planted.rs:{loc}:1"}}"#
                )?;
            }
            generate(cfg, |e| {
                let _ = match e {
                    Ev::Acq { t, l, loc } => writeln!(
                        buf,
                        r#"{{"e":"acquire","t":{t},"l":{},"m":"w","s":{loc}}}"#,
                        l + 1
                    ),
                    Ev::Rel { t, l, .. } => {
                        writeln!(buf, r#"{{"e":"release","t":{t},"l":{}}}"#, l + 1)
                    }
                    Ev::Fork { t, child } => {
                        writeln!(buf, r#"{{"e":"fork","t":{t},"child":{child}}}"#)
                    }
                    Ev::Join { t, child } => {
                        writeln!(buf, r#"{{"e":"join","t":{t},"child":{child}}}"#)
                    }
                };
                n += 1;
                if buf.len() > (1 << 16) - 256 && err.is_none() {
                    err = out.write_all(&buf).err();
                    buf.clear();
                }
            });
        }
    }
    if let Some(e) = err {
        return Err(e);
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(n)
}

/// Writes a hostile random STD trace: `events` uniformly random `acq`, `rel`, `req`, `fork` and
/// `join` events over `threads` threads and `locks` locks, with no attempt at balance (releases
/// of locks never taken, held sets that only grow, joins of threads never forked).
pub fn write_random_std(
    seed: u64,
    events: u64,
    threads: u32,
    locks: u32,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut rng = Rng(seed);
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    for _ in 0..events {
        let t = rng.below(threads as u64);
        let op = rng.below(5);
        let arg = match op {
            3 | 4 => format!("T{}", rng.below(threads as u64)),
            _ => format!("L{}", rng.below(locks as u64)),
        };
        let name = ["acq", "rel", "req", "fork", "join"][op as usize];
        writeln!(buf, "T{t}|{name}({arg})|{}", rng.below(1000))?;
        if buf.len() > (1 << 16) - 64 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}
