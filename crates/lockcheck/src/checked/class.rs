//! Lock identity: instance ids (a global counter, never an address) and classes (construction
//! site or user-given name), assigned lazily on first use because `const fn new` cannot.

use super::state::internal;
use lockcheck_core::trace::LockKind;
use parking_lot::Mutex as PlMutex;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
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
/// 21 bits: the identity word's bit 61 stays clear, for the held stack's shared entries
/// (`state::word::FLIPPED`).
const CLASS_BITS: u32 = 21;
const INST_MASK: u64 = (1 << INST_BITS) - 1;
const CLASS_MASK: u64 = ((1 << CLASS_BITS) - 1) << INST_BITS;
/// The one bit an identity word never has: a held shared entry stores the identity's
/// complement, which has it (see `state::entry`).
pub(crate) const NEVER_SET: u64 = 1 << 61;
const _: () = assert!(NEVER_SET & (INST_MASK | CLASS_MASK | IN_GRAPH | WRITTEN) == 0);
/// The instance has a node in the global graph: dropping it must remove the node.
const IN_GRAPH: u64 = 1 << 62;
/// An RwLock's writes need no more noting one by one (for the read-read rule: the graph counts
/// it as written between every two reads, see `graph::WRITE_NOTES`); until then its writes take
/// the full path. A semaphore's: it was seen (its permits declared).
pub(crate) const WRITTEN: u64 = 1 << 63;

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// A fresh instance number (for objects that are not locks but appear in traces: condvars).
pub(crate) fn new_instance_id() -> u64 {
    let (inst, wrapped) = next_instance();
    if wrapped {
        report_limit(
            ClassSrc::Anonymous,
            LockKind::Condvar,
            inst,
            "instances",
            INST_MASK + 1,
        );
    }
    inst
}

/// A fresh instance number, and whether numbering just wrapped around (2^40 instances: the first
/// time only). Past that point a new lock may share its number with a live one, so findings
/// about either may be wrong or missing: reported as `Incomplete` (limit `instances`).
fn next_instance() -> (u64, bool) {
    next_from(&NEXT_INSTANCE)
}

/// [`next_instance`] on a given counter. Never 0: with class 0 it would make the identity word
/// 0, which reads as "not assigned yet" (the number after a wrap is taken instead).
fn next_from(counter: &AtomicU64) -> (u64, bool) {
    let raw = counter.fetch_add(1, Ordering::Relaxed);
    if raw & INST_MASK != 0 {
        return (raw & INST_MASK, false);
    }
    let next = counter.fetch_add(1, Ordering::Relaxed);
    (next & INST_MASK, raw == INST_MASK + 1)
}

/// Per-lock bookkeeping embedded in every instrumented raw lock.
#[derive(Debug)]
pub(crate) struct Meta {
    /// 0 until first use; then instance id | class id << 40 | flags (bits 62 and 63; bit 61,
    /// [`NEVER_SET`], stays clear).
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
        let (inst, wrapped) = next_instance();
        let (class, full) = intern(self.src, kind);
        if full {
            report_limit(self.src, kind, inst, "classes", u64::from(CLASS_LIMIT));
        }
        if wrapped {
            report_limit(self.src, kind, inst, "instances", INST_MASK + 1);
        }
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

    /// Sets [`WRITTEN`]; returns true the first time.
    #[inline]
    pub(crate) fn mark_written(&self) -> bool {
        self.ids.load(Ordering::Relaxed) & WRITTEN == 0
            && self.ids.fetch_or(WRITTEN, Ordering::Relaxed) & WRITTEN == 0
    }

    /// Whether [`Meta::mark_written`] was called (an RwLock written, a semaphore seen with
    /// several permits): what the recorder may have noted of the lock for a later trace.
    pub(crate) fn was_written(&self) -> bool {
        self.ids.load(Ordering::Relaxed) & WRITTEN != 0
    }

    /// The instance id if one was ever assigned and the instance is in the graph.
    pub(crate) fn graph_instance(&self) -> Option<u64> {
        let v = self.ids.load(Ordering::Relaxed);
        (v & IN_GRAPH != 0).then_some(v & INST_MASK)
    }

    /// The packed identity word (0 until assigned; see [`Ids::from_word`]): the fast paths'
    /// one load.
    #[inline(always)]
    pub(crate) fn word(&self) -> u64 {
        self.ids.load(Ordering::Acquire)
    }

    /// The instance id, if assigned.
    pub(crate) fn assigned(&self) -> Option<Ids> {
        let v = self.ids.load(Ordering::Acquire);
        (v != 0).then(|| unpack(v))
    }
}

impl Ids {
    /// The identity in a non-zero [`Meta::word`].
    #[inline(always)]
    pub(crate) fn from_word(w: u64) -> Ids {
        unpack(w)
    }

    /// The packed word of this identity (without [`Meta`]'s flags): `Ids::from_word` inverts it.
    #[inline]
    pub(crate) fn word(self) -> u64 {
        self.inst | (u64::from(self.class) << INST_BITS)
    }
}

#[inline(always)]
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
    /// The recording generation at the first write of an RwLock of the class, plus one (0:
    /// never written): see `recorder::note_written`.
    pub written: u64,
}

#[derive(Default)]
struct ClassTable {
    by_key: HashMap<(String, u8), u32>,
    /// The same classes by the address of their source (see [`src_addr`]): a lock built at a
    /// known site or with a known name finds its class without formatting its key.
    by_src: HashMap<((usize, usize), u8), u32, BuildHasherDefault<super::graph::IdHasher>>,
    info: Vec<ClassInfo>,
    /// [`CLASS_LIMIT`] was hit (and reported).
    full: bool,
}

static CLASSES: PlMutex<Option<ClassTable>> = PlMutex::new(None);

fn kind_tag(kind: LockKind) -> u8 {
    kind as u8
}

/// Classes the table can number: class ids have [`CLASS_BITS`] bits, and the last one means
/// "no class".
const CLASS_LIMIT: u32 = NO_CLASS;

/// A class source's address: the `Location`'s (length `usize::MAX`), or the name's pointer and
/// length. Static data never changes, so one address always means one key; two addresses may
/// still mean one key (then the key decides).
fn src_addr(src: ClassSrc) -> Option<(usize, usize)> {
    match src {
        ClassSrc::Site(loc) => Some((std::ptr::from_ref(loc) as usize, usize::MAX)),
        ClassSrc::Named(name) => Some((name.as_ptr() as usize, name.len())),
        ClassSrc::Anonymous => None,
    }
}

/// The class of a lock built from `src`, and whether this call found the table full for the
/// first time (the caller reports it, outside the table's lock: rendering a report reads it).
fn intern(src: ClassSrc, kind: LockKind) -> (u32, bool) {
    let Some(addr) = src_addr(src) else {
        return (NO_CLASS, false);
    };
    let tag = kind_tag(kind);
    if let Some(&c) = internal(&CLASSES)
        .as_ref()
        .and_then(|t| t.by_src.get(&(addr, tag)))
    {
        return (c, false);
    }
    // Formatted outside the table's lock.
    let key = match src {
        // A channel is no lock in the user's eyes: its class says what it is.
        ClassSrc::Site(loc) if kind == LockKind::Channel => format!(
            "channel created at {}:{}:{}",
            loc.file(),
            loc.line(),
            loc.column()
        ),
        ClassSrc::Site(loc) if kind == LockKind::Barrier => format!(
            "barrier created at {}:{}:{}",
            loc.file(),
            loc.line(),
            loc.column()
        ),
        ClassSrc::Site(loc) => format!("{}:{}:{}", loc.file(), loc.line(), loc.column()),
        ClassSrc::Named(name) => name.to_owned(),
        ClassSrc::Anonymous => return (NO_CLASS, false),
    };
    let mut guard = internal(&CLASSES);
    let table = guard.get_or_insert_with(ClassTable::default);
    let found = table.intern(key, kind, CLASS_LIMIT);
    if found.0 != NO_CLASS {
        table.by_src.insert((addr, tag), found.0);
    }
    found
}

impl ClassTable {
    /// Past `limit` classes the rest are anonymous (checked at instance level only); the first
    /// time that happens returns `true`.
    fn intern(&mut self, key: String, kind: LockKind, limit: u32) -> (u32, bool) {
        if let Some(&c) = self.by_key.get(&(key.clone(), kind_tag(kind))) {
            return (c, false);
        }
        let c = self.info.len() as u32;
        if c >= limit {
            return (NO_CLASS, !std::mem::replace(&mut self.full, true));
        }
        self.info.push(ClassInfo {
            key: key.clone(),
            kind,
            written: 0,
        });
        self.by_key.insert((key, kind_tag(kind)), c);
        (c, false)
    }
}

/// A limit of lock identity was hit with the lock `inst` (built from `src`), reported once by
/// the caller's logic (`ViolationKind::Incomplete`): `classes` (the class table is full: this
/// lock and every later one of a new site or name is checked at instance level only, so
/// class-level inversions through them may go unreported) or `instances` (instance numbers
/// wrapped). Not a violation to act on.
#[cold]
#[inline(never)]
fn report_limit(src: ClassSrc, kind: LockKind, inst: u64, limit: &'static str, bound: u64) {
    use super::report::{publish, EdgeInfo, LockRef, Violation, ViolationKind};
    let site = match src {
        ClassSrc::Site(loc) => loc.to_string(),
        ClassSrc::Named(name) => name.to_owned(),
        ClassSrc::Anonymous => String::new(),
    };
    let published = super::state::as_busy(|s| {
        let thread = s.id();
        let lock = LockRef {
            kind,
            ..LockRef::new(inst, NO_CLASS)
        };
        let edge = EdgeInfo {
            thread: super::state::thread_name(thread),
            thread_id: thread,
            held: lock.clone(),
            held_mode: lockcheck_core::trace::Mode::Exclusive,
            held_site: site.clone(),
            acquired: lock,
            mode: lockcheck_core::trace::Mode::Exclusive,
            site,
            other_held: Vec::new(),
            backtrace: None,
            retried: false,
        };
        publish(Violation::inversion(
            ViolationKind::Incomplete { limit, bound },
            vec![edge],
        ))
    });
    if published.is_none() && limit == "classes" {
        // This thread is inside lockcheck's own work (or exiting): the next lock of a new class
        // reports it instead.
        if let Some(t) = internal(&CLASSES).as_mut() {
            t.full = false;
        }
    }
}

/// Information about a class (a placeholder for [`NO_CLASS`]).
/// Notes the first write of an RwLock of class `c` (`stamp`: the recording generation, plus
/// one), kept with the class for a trace that starts later (`class_written`).
pub(crate) fn note_class_written(c: u32, stamp: u64) {
    let mut guard = internal(&CLASSES);
    if let Some(info) = guard.as_mut().and_then(|t| t.info.get_mut(c as usize)) {
        if info.written == 0 {
            info.written = stamp;
        }
    }
}

pub(crate) fn class_info(c: u32) -> ClassInfo {
    let guard = internal(&CLASSES);
    guard
        .as_ref()
        .and_then(|t| t.info.get(c as usize).cloned())
        .unwrap_or(ClassInfo {
            key: "<anonymous>".into(),
            kind: LockKind::Unknown,
            written: 0,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_makes_new_classes_anonymous_and_says_so_once() {
        let mut t = ClassTable::default();
        assert_eq!(t.intern("a".into(), LockKind::Mutex, 2), (0, false));
        assert_eq!(t.intern("b".into(), LockKind::Mutex, 2), (1, false));
        // Known classes still resolve when the table is full.
        assert_eq!(t.intern("a".into(), LockKind::Mutex, 2), (0, false));
        assert_eq!(t.intern("c".into(), LockKind::Mutex, 2), (NO_CLASS, true));
        assert_eq!(t.intern("d".into(), LockKind::Mutex, 2), (NO_CLASS, false));
        assert_eq!(t.intern("b".into(), LockKind::Mutex, 2), (1, false));
    }

    /// The cache by address answers as the key does: one name at two addresses is one class, a
    /// name and a site are two, and a site is found again by its `Location`.
    #[test]
    fn classes_by_address_agree_with_classes_by_key() {
        let name = "class.tests.by_addr";
        let copy: &'static str = Box::leak(name.to_owned().into_boxed_str());
        assert_ne!(name.as_ptr(), copy.as_ptr());
        let (a, _) = intern(ClassSrc::Named(name), LockKind::Mutex);
        assert_eq!(intern(ClassSrc::Named(name), LockKind::Mutex).0, a);
        assert_eq!(intern(ClassSrc::Named(copy), LockKind::Mutex).0, a);
        assert_ne!(intern(ClassSrc::Named(name), LockKind::Rwlock).0, a);
        let loc = Location::caller();
        let (b, _) = intern(ClassSrc::Site(loc), LockKind::Mutex);
        assert_ne!(a, b);
        assert_eq!(intern(ClassSrc::Site(loc), LockKind::Mutex).0, b);
        let key: &'static str =
            Box::leak(format!("{}:{}:{}", loc.file(), loc.line(), loc.column()).into_boxed_str());
        assert_eq!(intern(ClassSrc::Named(key), LockKind::Mutex).0, b);
    }

    #[test]
    fn hitting_the_class_limit_is_an_incomplete_finding() {
        let loc = Location::caller();
        report_limit(
            ClassSrc::Site(loc),
            LockKind::Mutex,
            7,
            "classes",
            u64::from(CLASS_LIMIT),
        );
        let v = crate::violations();
        let v = v
            .iter()
            .find(|v| {
                v.kind
                    == crate::ViolationKind::Incomplete {
                        limit: "classes",
                        bound: u64::from(CLASS_LIMIT),
                    }
            })
            .expect("reported");
        assert!(v.message.contains("class"), "{}", v.message);
        assert_eq!(v.edges[0].site, loc.to_string());
    }

    #[test]
    fn instance_numbers_wrap_once_reported_and_never_give_0() {
        let counter = AtomicU64::new(INST_MASK - 1);
        assert_eq!(next_from(&counter), (INST_MASK - 1, false));
        assert_eq!(next_from(&counter), (INST_MASK, false));
        // 2^40: the wrap, reported, and 0 (unassigned) skipped.
        assert_eq!(next_from(&counter), (1, true));
        assert_eq!(next_from(&counter), (2, false));
        // A second wrap is not reported again (the first said numbers may be shared), nor 0 given.
        counter.store(2 * (INST_MASK + 1), Ordering::Relaxed);
        assert_eq!(next_from(&counter), (1, false));
    }
}
