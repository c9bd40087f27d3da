//! Synthetic traces for benchmarks and load tests: a deterministic stream of events of a program
//! whose threads nest locks mostly in one global order, with a rare inversion.
//!
//! ```
//! use lockcheck_analyze::synth::{Synth, SynthConfig};
//! let events: Vec<_> = Synth::new(SynthConfig { events: 1_000, ..Default::default() }).collect();
//! assert!(events.len() >= 1_000);
//! ```

use lockcheck_core::trace::{Event, How, LockKind, Mode, FORMAT_VERSION};

/// The shape of a synthetic trace.
#[derive(Debug, Clone, Copy)]
pub struct SynthConfig {
    /// Approximate number of events (the stream ends at the first acquisition round after it).
    pub events: u64,
    /// Worker threads.
    pub threads: u64,
    /// Lock classes.
    pub classes: u32,
    /// Instances per class.
    pub instances_per_class: u64,
    /// One acquisition round in this many takes two locks in the reverse order.
    pub inversion_every: u64,
    /// PRNG seed.
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            events: 100_000,
            threads: 8,
            classes: 64,
            instances_per_class: 4,
            inversion_every: 50_000,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

/// An iterator of synthetic events (see the module docs).
#[derive(Debug)]
pub struct Synth {
    cfg: SynthConfig,
    rng: u64,
    emitted: u64,
    queue: std::collections::VecDeque<Event>,
    round: u64,
    joined: bool,
}

impl Synth {
    /// A generator for `cfg`.
    pub fn new(cfg: SynthConfig) -> Self {
        let mut s = Synth {
            cfg,
            rng: cfg.seed | 1,
            emitted: 0,
            queue: Default::default(),
            round: 0,
            joined: false,
        };
        s.prologue();
        s
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: deterministic and fast; quality is irrelevant here.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn prologue(&mut self) {
        let c = self.cfg;
        self.queue.push_back(Event::Header {
            version: FORMAT_VERSION,
            pid: 1,
            program: "synth".into(),
            start_unix_ms: 0,
            hold_resolution_ns: 0,
        });
        self.queue.push_back(Event::Thread {
            t: 0,
            name: Some("main".into()),
        });
        for k in 0..c.classes {
            self.queue.push_back(Event::Class {
                c: k,
                key: format!("src/synth.rs:{}:9", 100 + k),
                kind: if k % 4 == 3 {
                    LockKind::Rwlock
                } else {
                    LockKind::Mutex
                },
            });
            self.queue.push_back(Event::Site {
                s: k,
                loc: format!("src/worker.rs:{}:13", 10 + k),
                frames: vec![],
            });
            for i in 0..c.instances_per_class {
                self.queue.push_back(Event::Lock {
                    l: k as u64 * c.instances_per_class + i,
                    c: k,
                    permits: None,
                });
            }
        }
        for t in 1..=c.threads {
            self.queue.push_back(Event::Thread {
                t,
                name: Some(format!("worker-{t}")),
            });
            self.queue.push_back(Event::Fork { t: 0, child: t });
        }
    }

    fn round(&mut self) {
        let c = self.cfg;
        self.round += 1;
        let t = 1 + self.next_rand() % c.threads.max(1);
        let depth = 1 + self.next_rand() % 3;
        let mut classes: Vec<u32> = (0..depth)
            .map(|_| (self.next_rand() % c.classes.max(1) as u64) as u32)
            .collect();
        classes.sort_unstable();
        classes.dedup();
        if c.inversion_every > 0 && self.round % c.inversion_every == 0 && classes.len() >= 2 {
            classes.reverse();
        }
        let mut held = Vec::new();
        for &k in &classes {
            let l =
                k as u64 * c.instances_per_class + self.next_rand() % c.instances_per_class.max(1);
            let m = if k % 4 == 3 && self.next_rand() % 2 == 0 {
                Mode::Shared
            } else {
                Mode::Exclusive
            };
            let wait_ns = if self.next_rand() % 8 == 0 {
                self.next_rand() % 200_000
            } else {
                0
            };
            self.queue.push_back(Event::Acquire {
                t,
                l,
                m,
                how: How::Blocking,
                s: Some(k),
                wait_ns,
            });
            held.push(l);
        }
        while let Some(l) = held.pop() {
            let hold_ns = 500 + self.next_rand() % 50_000;
            self.queue.push_back(Event::Release { t, l, hold_ns });
        }
    }
}

impl Iterator for Synth {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                self.emitted += 1;
                return Some(e);
            }
            if self.emitted < self.cfg.events {
                self.round();
            } else if !self.joined {
                self.joined = true;
                for t in 1..=self.cfg.threads {
                    self.queue.push_back(Event::Join {
                        t: 0,
                        child: t,
                        scope: false,
                    });
                }
            } else {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelBuilder;

    #[test]
    fn synthetic_traces_have_their_inversions() {
        let mut b = ModelBuilder::new();
        for e in Synth::new(SynthConfig {
            events: 200_000,
            inversion_every: 10_000,
            ..Default::default()
        }) {
            b.event(&e);
        }
        let m = b.finish();
        assert!(m.events() >= 200_000);
        // Random instances of 64 classes make a dense graph: bound the search, short cycles are
        // found first.
        let limits = crate::cycles::SearchLimits {
            max_steps: 200_000,
            ..Default::default()
        };
        let r = crate::analyze_model(
            &m,
            &crate::Options {
                limits,
                ..Default::default()
            },
        );
        assert!(!r.violations.is_empty());
        assert!(r.violations.iter().any(|v| v.locks.len() == 2));
    }
}
