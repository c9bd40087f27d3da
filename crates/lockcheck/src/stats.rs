//! Per-class lock statistics: acquisitions, contended acquisitions, wait and hold times.
//!
//! Off by default (counting costs a little on every acquisition); switched on by
//! `LOCKCHECK_STATS=1` or [`enable`]. Recorded traces carry the same figures (`stats` events),
//! which `lockcheck analyze` uses for its timeout suggestions.

pub use lockcheck_core::trace::ClassStats;

/// The statistics of one lock class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassStat {
    /// The class: its name, or `file:line:col` of its construction site.
    pub class: String,
    /// Mutex, RwLock or Semaphore.
    pub kind: crate::LockKind,
    /// The figures.
    pub stats: ClassStats,
}

/// Starts counting (from now on) on every thread.
pub fn enable() {
    crate::checked::watch::enable_stats();
}

/// The statistics so far, one entry per class that was acquired, sorted by class.
pub fn stats() -> Vec<ClassStat> {
    let mut out: Vec<ClassStat> = crate::checked::watch::collect_stats()
        .into_iter()
        .map(|(c, stats)| {
            let info = crate::checked::class::class_info(c);
            ClassStat {
                class: info.key,
                kind: info.kind,
                stats,
            }
        })
        .collect();
    out.sort_by(|a, b| a.class.cmp(&b.class));
    out
}
