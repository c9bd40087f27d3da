//! Lock identity: instance ids (a global counter, never an address) and classes (construction
//! site or user-given name), assigned lazily on first use because `const fn new` cannot.

use lockcheck_core::trace::LockKind;
use parking_lot::Mutex as PlMutex;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a lock's class comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ClassSrc {
    /// The construction site (`#[track_caller]` on `new`).
    Site(&'static Location<'static>),
    /// A name the user gave.
    Named(&'static str),
    /// Built through `lock_api`'s `INIT` directly: no class, checked at instance level only.
    Anonymous,
}

/// Class number meaning "no class" (anonymous locks).
pub(crate) const NO_CLASS: u32 = (1 << CLASS_BITS) - 1;

const INST_BITS: u32 = 40;
const CLASS_BITS: u32 = 22;
const INST_MASK: u64 = (1 << INST_BITS) - 1;
const CLASS_MASK: u64 = ((1 << CLASS_BITS) - 1) << INST_BITS;
/// The instance has a node in the global graph: dropping it must remove the node.
const IN_GRAPH: u64 = 1 << 62;
/// The lock was ever write-locked (for the read-read rule).
const WRITTEN: u64 = 1 << 63;

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// A fresh instance number (for objects that are not locks but appear in traces: condvars).
pub(crate) fn new_instance_id() -> u64 {
    NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed) & INST_MASK
}

/// Per-lock bookkeeping embedded in every instrumented raw lock.
#[derive(Debug)]
pub(crate) struct Meta {
    /// 0 until first use; then instance id | class id << 40 | flags.
    ids: AtomicU64,
    src: ClassSrc,
}

/// A lock's identity, once assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ids {
    pub inst: u64,
    pub class: u32,
}

impl Meta {
    pub(crate) const fn new(src: ClassSrc) -> Meta {
        Meta {
            ids: AtomicU64::new(0),
            src,
        }
    }

    #[inline]
    pub(crate) fn ids(&self, kind: LockKind) -> Ids {
        let v = self.ids.load(Ordering::Acquire);
        if v != 0 {
            unpack(v)
        } else {
            self.assign(kind)
        }
    }

    #[cold]
    fn assign(&self, kind: LockKind) -> Ids {
        let inst = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed) & INST_MASK;
        let class = intern(self.src, kind);
        let packed = inst | (u64::from(class) << INST_BITS);
        match self
            .ids
            .compare_exchange(0, packed, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => unpack(packed),
            Err(cur) => unpack(cur),
        }
    }

    /// Marks the instance as present in the graph (dropping it must then remove its node).
    pub(crate) fn mark_in_graph(&self) {
        if self.ids.load(Ordering::Relaxed) & IN_GRAPH == 0 {
            self.ids.fetch_or(IN_GRAPH, Ordering::Relaxed);
        }
    }

    /// Marks the lock as write-locked; returns true the first time.
    #[inline]
    pub(crate) fn mark_written(&self) -> bool {
        self.ids.load(Ordering::Relaxed) & WRITTEN == 0
            && self.ids.fetch_or(WRITTEN, Ordering::Relaxed) & WRITTEN == 0
    }

    /// Whether the lock was ever write-locked (its first write, which may decide a report, is
    /// behind it).
    #[inline]
    pub(crate) fn was_written(&self) -> bool {
        self.ids.load(Ordering::Relaxed) & WRITTEN != 0
    }

    /// The instance id if one was ever assigned and the instance is in the graph.
    pub(crate) fn graph_instance(&self) -> Option<u64> {
        let v = self.ids.load(Ordering::Relaxed);
        (v & IN_GRAPH != 0).then_some(v & INST_MASK)
    }

    /// The instance id, if assigned.
    pub(crate) fn assigned(&self) -> Option<Ids> {
        let v = self.ids.load(Ordering::Acquire);
        (v != 0).then(|| unpack(v))
    }
}

fn unpack(v: u64) -> Ids {
    Ids {
        inst: v & INST_MASK,
        class: ((v & CLASS_MASK) >> INST_BITS) as u32,
    }
}

/// What the process knows about one class.
#[derive(Clone, Debug)]
pub(crate) struct ClassInfo {
    /// Stable identity: the name, or `file:line:col` of the construction site.
    pub key: String,
    /// The kind of lock.
    pub kind: LockKind,
}

#[derive(Default)]
struct ClassTable {
    by_key: HashMap<(String, u8), u32>,
    info: Vec<ClassInfo>,
}

static CLASSES: PlMutex<Option<ClassTable>> = PlMutex::new(None);

fn kind_tag(kind: LockKind) -> u8 {
    kind as u8
}

fn intern(src: ClassSrc, kind: LockKind) -> u32 {
    let key = match src {
        ClassSrc::Site(loc) => format!("{}:{}:{}", loc.file(), loc.line(), loc.column()),
        ClassSrc::Named(name) => name.to_owned(),
        ClassSrc::Anonymous => return NO_CLASS,
    };
    let mut guard = CLASSES.lock();
    let table = guard.get_or_insert_with(ClassTable::default);
    if let Some(&c) = table.by_key.get(&(key.clone(), kind_tag(kind))) {
        return c;
    }
    let c = table.info.len() as u32;
    if c >= NO_CLASS {
        // More than four million distinct construction sites: treat the rest as anonymous.
        return NO_CLASS;
    }
    table.info.push(ClassInfo {
        key: key.clone(),
        kind,
    });
    table.by_key.insert((key, kind_tag(kind)), c);
    c
}

/// Information about a class (a placeholder for [`NO_CLASS`]).
pub(crate) fn class_info(c: u32) -> ClassInfo {
    let guard = CLASSES.lock();
    guard
        .as_ref()
        .and_then(|t| t.info.get(c as usize).cloned())
        .unwrap_or(ClassInfo {
            key: "<anonymous>".into(),
            kind: LockKind::Unknown,
        })
}
