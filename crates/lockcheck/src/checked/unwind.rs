//! Raw stack captures, and a process-wide cache of unwind steps that makes them cheap.
//!
//! A never-seen edge captures the call stack ([`super::report::Trace`]). The system unwinder
//! (libgcc's `_Unwind_Backtrace`, through `backtrace::trace_unsynchronized`) costs about 1,800
//! instructions per frame: it finds the frame's FDE (the loaded objects' `.eh_frame_hdr` tables,
//! a binary search) and runs its CIE's and FDE's CFA programs up to the address, every time.
//! Yet the stacks that make new edges go through the same return addresses again and again (the
//! test harness, the user's helpers, lockcheck's own frames). So, on x86_64 Linux with glibc:
//!
//! - the outcome of that work for one return address is a small **rule** ("the caller's stack
//!   pointer (the CFA) is `rsp + 48`; the return address is at CFA - 8; `rbp` is unchanged"),
//!   kept in a fixed table ([`SLOTS`] entries, in `.bss`, never allocated, never freed);
//! - a capture reads `rip`, `rsp`, `rbp` and steps from frame to frame with the cached rules: a
//!   hash, two loads and a few additions per frame;
//! - a return address not in the table gets its rule from the same FDE libgcc would use
//!   (`_Unwind_Find_FDE`), evaluated by `gimli` (already compiled for `backtrace`'s
//!   symbolization: same version, same features, so nothing new in a user's build);
//! - anything that is not one of the plain rules (a CFA from an expression or from another
//!   register, a register restored from an expression, a signal frame, an address without FDE, a
//!   stack not within the thread's bounds, a full table) falls back to the system unwinder for
//!   the whole capture, so a capture is always the system unwinder's frames, only cheaper.
//!
//! Memory: every read of the walk (a return address, a saved `rbp`) is checked to lie within the
//! current thread's stack, between the capture's own stack pointer and the stack's top
//! (`pthread_getattr_np`, once per thread), and frames must move strictly upwards; a walk that
//! would leave it falls back. The table holds rules for at most [`SLOTS`] return addresses; when
//! a new one finds no free slot it is unwound by the system unwinder every time (the same frames,
//! slower), and this is said once on stderr. Rules are tagged with the number of objects the
//! dynamic loader has unloaded so far, so that code loaded at the address of an unloaded library
//! never uses the old library's rules. That count is read with `dl_iterate_phdr` (one call per
//! capture, stopped at the first object), which takes the loader's lock as libgcc's own FDE
//! lookup did before glibc 2.35's `_dl_find_object`: a program that takes an instrumented lock
//! inside a `dl_iterate_phdr` callback, while another thread makes a new edge under that lock,
//! could wait there, as it could with an older libgcc.
//!
//! Why not a crate: `framehop` (samply's unwinder, with a cache) and `unwinding` (a pure-Rust
//! libgcc) would add crates to every user's build and still need the glue to the loaded objects
//! and the stack bounds; what is needed here is a table of three numbers per address and a loop.

use super::report::TRACE_DEPTH;

/// The frames of one capture: return addresses, innermost first, starting at the caller of the
/// capturing function, as the system unwinder reports them.
pub(crate) struct Frames {
    pub(crate) ips: [usize; TRACE_DEPTH],
    pub(crate) n: usize,
    /// The stack went deeper than [`TRACE_DEPTH`].
    pub(crate) truncated: bool,
    /// The capture stopped early (the frames are its innermost ones): the thread had this many
    /// bytes of stack left, too few for the unwinder ([`REFERENCE_STACK`]).
    pub(crate) short_stack: Option<usize>,
}

impl Frames {
    pub(crate) fn new() -> Frames {
        Frames {
            ips: [0; TRACE_DEPTH],
            n: 0,
            truncated: false,
            short_stack: None,
        }
    }

    /// Appends a frame as the reference capture's callback does; false when full (and marked
    /// truncated).
    fn push(&mut self, ip: usize) -> bool {
        if self.n == TRACE_DEPTH {
            self.truncated = true;
            return false;
        }
        self.ips[self.n] = ip;
        self.n += 1;
        true
    }

    pub(crate) fn as_slice(&self) -> &[usize] {
        &self.ips[..self.n]
    }
}

/// How a capture is made (tests compare the two).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Method {
    /// The cached rules, falling back to the system unwinder.
    Fast,
    /// The system unwinder only (`backtrace::trace_unsynchronized`).
    Reference,
    /// The cached rules only: `None` where [`Method::Fast`] would fall back (tests).
    #[cfg(test)]
    FastOnly,
}

/// Stack a capture may use below its own frame to compute a new unwind rule (gimli's CFA
/// evaluation, its context on the stack so that nothing is allocated), with a margin: a capture
/// with less room left uses the rules already in the table and the system unwinder for the rest.
/// Measured in a debug build, whose frames are the largest (about 26 KiB there:
/// `tests::the_stack_a_capture_needs_is_within_its_bounds`); the same bound in any build.
pub(crate) const RULE_STACK: usize = 64 << 10;

/// Stack the system unwinder (libgcc's `_Unwind_Backtrace` through `backtrace`) may use below a
/// capture's frame, with a margin (about 7 KiB measured in a debug build): a capture with less
/// room left keeps the frames the table's rules reach and stops there, saying so
/// ([`Frames::short_stack`]).
pub(crate) const REFERENCE_STACK: usize = 16 << 10;

/// Captures the stack of the caller of this function, by `method`. `None` only for
/// `Method::FastOnly` (tests) when the fast walk cannot do it.
///
/// A thread whose stack is nearly used up (x86_64 Linux with glibc, where its bounds are known)
/// must not overflow it here: with less than [`RULE_STACK`] left no new rule is computed (the
/// system unwinder takes a path the table does not know), and with less than
/// [`REFERENCE_STACK`] left the capture keeps the frames the table knows and stops, marked
/// [`Frames::short_stack`] and said once on stderr.
#[inline(never)]
pub(crate) fn capture(method: Method) -> Option<Frames> {
    // A local of this frame: the system unwinder's frames whose stack pointer is at or below it
    // are this function's and its callees', the first one above is the caller's.
    let marker = 0u8;
    let here = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
    let mut frames = Frames::new();
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    if method != Method::Reference {
        let regs = fast::registers();
        let room = fast::headroom(regs.sp);
        let compute = room.is_none_or(|r| r >= RULE_STACK);
        // SAFETY: `regs` are this function's registers, read by the instruction at `regs.pc`;
        // this frame is live during the walk.
        if unsafe { fast::walk(regs, &mut frames, compute) } {
            return Some(frames);
        }
        if let Some(left) = room.filter(|&r| r < REFERENCE_STACK) {
            // The frames pushed so far are the walk's, each checked: the innermost ones.
            frames.short_stack = Some(left);
            said_short(left);
            return Some(frames);
        }
        frames = Frames::new();
    }
    #[cfg(test)]
    if method == Method::FastOnly {
        return None;
    }
    let _ = method;
    reference(here, &mut frames);
    Some(frames)
}

/// The stack left below the caller's frame on this thread, where its bounds are known (x86_64
/// Linux with glibc; `None` elsewhere, or on a stack that is not the thread's own).
#[inline(never)]
pub(crate) fn stack_left() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    {
        let marker = 0u8;
        fast::headroom(std::hint::black_box(std::ptr::addr_of!(marker)) as usize)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64")))]
    None
}

/// Says once on stderr that a capture was cut short for want of stack (`notice.rs`).
#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
#[cold]
fn said_short(left: usize) {
    super::notice::once(super::notice::Limit::ShortBacktrace, &(left >> 10));
}

/// The system unwinder's frames above the frame whose locals include `here` (that frame
/// excluded).
#[inline(never)]
fn reference(here: usize, frames: &mut Frames) {
    let mut keep = |frame: &backtrace::Frame| {
        // `sp` is the frame's stack pointer (libgcc's CFA of its callee): at or below `here`
        // for the capturing frame and the unwinder's own. An unwinder that gives no stack
        // pointer (0) keeps them all, as before.
        let sp = frame.sp() as usize;
        if frames.n == 0 && sp != 0 && sp <= here {
            return true;
        }
        frames.push(frame.ip() as usize)
    };
    // `backtrace::trace` takes the crate's process-wide lock, which symbolization holds too
    // (for milliseconds when it first loads debug information): a capture on one thread would
    // wait for a report being printed, or for the recorder's writer declaring a site, on
    // another. The lock is there for Windows' dbghelp; the unwinders elsewhere
    // (libgcc/libunwind's `_Unwind_Backtrace`) are thread-safe, so no lock there.
    #[cfg(not(windows))]
    // SAFETY: `trace_unsynchronized` is `trace` without the lock; on these platforms the
    // unwinder it calls is safe to run on several threads at once, and `keep` never panics.
    unsafe {
        backtrace::trace_unsynchronized(&mut keep)
    };
    #[cfg(windows)]
    backtrace::trace(&mut keep);
}

/// Whether the rule table was full once (a return address unwound by the system unwinder for
/// want of a slot).
#[cfg(test)]
pub(crate) fn table_was_full() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    return fast::table_was_full();
    #[cfg(not(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64")))]
    false
}

/// Return addresses the table holds rules for, at most.
pub(crate) const SLOTS: usize = 4096;

#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
mod fast {
    use super::{Frames, SLOTS};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

    /// The registers a walk starts from.
    pub(super) struct Registers {
        pc: usize,
        pub(super) sp: usize,
        bp: usize,
    }

    /// This function's caller's `rip` (just after the read), `rsp` and `rbp`.
    #[inline(always)]
    pub(super) fn registers() -> Registers {
        let (pc, sp, bp): (usize, usize, usize);
        // SAFETY: reads three registers, touches no memory.
        unsafe {
            std::arch::asm!(
                "lea {pc}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                pc = out(reg) pc,
                sp = out(reg) sp,
                bp = out(reg) bp,
                options(nomem, nostack, preserves_flags),
            );
        }
        Registers { pc, sp, bp }
    }

    // A rule, packed in one word (0: no rule yet):
    // bits 0-2 the kind, bit 3 "rbp is restored from CFA + bp_off", bits 4-23 the generation
    // (objects unloaded so far, low 20 bits), bits 24-39 bp_off (i16), bits 40-63 the CFA's
    // offset from its register (i24).
    const KIND: u64 = 0b111;
    /// CFA = rsp + offset; the return address at CFA - 8.
    const STEP_SP: u64 = 1;
    /// CFA = rbp + offset; the return address at CFA - 8.
    const STEP_BP: u64 = 2;
    /// The return address is undefined: the outermost frame (`_start`, a thread's `clone3`).
    const END: u64 = 3;
    /// Anything else: the system unwinder.
    const COMPLEX: u64 = 4;
    const BP_SAVED: u64 = 1 << 3;
    const GEN_SHIFT: u32 = 4;
    const GEN_MASK: u64 = (1 << 20) - 1;

    fn pack(kind: u64, cfa_off: i64, bp_off: Option<i64>, gen: u64) -> u64 {
        let fits = (-(1 << 23)..(1 << 23)).contains(&cfa_off)
            && bp_off.is_none_or(|o| (i16::MIN as i64..=i16::MAX as i64).contains(&o));
        if !fits {
            return COMPLEX | (gen & GEN_MASK) << GEN_SHIFT;
        }
        let mut r = kind | (gen & GEN_MASK) << GEN_SHIFT | ((cfa_off as u64) << 40);
        if let Some(o) = bp_off {
            r |= BP_SAVED | (o as i16 as u16 as u64) << 24;
        }
        r
    }

    fn cfa_off(rule: u64) -> isize {
        (rule as i64 >> 40) as isize
    }

    fn bp_off(rule: u64) -> isize {
        (rule >> 24) as u16 as i16 as isize
    }

    struct Slot {
        /// A return address; 0 while free. Written once.
        pc: AtomicUsize,
        /// Its rule; 0 until computed. Every thread computes the same rule for one address and
        /// generation, so racing writers agree.
        rule: AtomicU64,
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const FREE: Slot = Slot {
        pc: AtomicUsize::new(0),
        rule: AtomicU64::new(0),
    };

    /// Rules for at most `N` return addresses (a power of two), open addressing.
    pub(super) struct Table<const N: usize> {
        slots: [Slot; N],
        /// A return address found no slot (said once on stderr).
        full: AtomicBool,
    }

    static TABLE: Table<SLOTS> = Table::new();
    /// Slots probed from an address's home slot before the table counts as full for it.
    const PROBES: usize = 16;
    /// Steps taken from an rbp-based CFA (tests: the rule is exercised).
    #[cfg(test)]
    pub(super) static BP_STEPS: AtomicUsize = AtomicUsize::new(0);

    /// Whether the process-wide table was ever full.
    #[cfg(test)]
    pub(super) fn table_was_full() -> bool {
        TABLE.was_full()
    }

    impl<const N: usize> Table<N> {
        pub(super) const fn new() -> Self {
            Table {
                slots: [FREE; N],
                full: AtomicBool::new(false),
            }
        }

        #[cfg(test)]
        pub(super) fn was_full(&self) -> bool {
            self.full.load(Ordering::Relaxed)
        }

        fn home(pc: usize) -> usize {
            (pc as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as usize >> (64 - N.trailing_zeros())
        }

        /// The rule for `pc` of this generation, computing and storing it if needed and
        /// `may_compute` (else 0: not known yet); `None` when the table has no slot for it.
        #[inline]
        pub(super) fn rule_for(&self, pc: usize, gen: u64, may_compute: bool) -> Option<u64> {
            let h = Self::home(pc);
            for i in 0..PROBES.min(N) {
                let slot = &self.slots[(h + i) & (N - 1)];
                let mut key = slot.pc.load(Ordering::Acquire);
                if key == 0 {
                    key = match slot
                        .pc
                        .compare_exchange(0, pc, Ordering::AcqRel, Ordering::Acquire)
                    {
                        Ok(_) => pc,
                        Err(other) => other,
                    };
                }
                if key != pc {
                    continue;
                }
                let rule = slot.rule.load(Ordering::Acquire);
                if rule != 0 && (rule >> GEN_SHIFT) & GEN_MASK == gen & GEN_MASK {
                    return Some(rule);
                }
                if !may_compute {
                    return Some(0);
                }
                let rule = compute(pc, gen);
                slot.rule.store(rule, Ordering::Release);
                return Some(rule);
            }
            if !self.full.swap(true, Ordering::Relaxed) {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "lockcheck: the unwind cache is full ({N} return addresses): backtraces \
                     through new call paths are now taken by the system unwinder (the same \
                     frames, slower)"
                );
            }
            None
        }
    }

    /// The generation a rule was computed for (tests).
    #[cfg(test)]
    pub(super) fn generation(rule: u64) -> u64 {
        (rule >> GEN_SHIFT) & GEN_MASK
    }

    /// `_Unwind_Find_FDE`'s `struct dwarf_eh_bases`.
    #[repr(C)]
    struct EhBases {
        tbase: usize,
        dbase: usize,
        /// The function's start: written by the lookup, not needed here.
        #[allow(dead_code)]
        func: usize,
    }

    extern "C" {
        /// libgcc's (and LLVM libunwind's) lookup of the FDE covering `pc`: the one its
        /// `_Unwind_Backtrace` uses, registered frames included.
        fn _Unwind_Find_FDE(pc: usize, bases: *mut EhBases) -> *const u8;
    }

    /// Inline storage for gimli's CFA evaluation: no allocation.
    struct OnStack;
    impl gimli::UnwindContextStorage<usize> for OnStack {
        type Rules = [(gimli::Register, gimli::RegisterRule<usize>); 32];
        type Stack = [gimli::UnwindTableRow<usize, Self>; 4];
    }

    const RSP: gimli::Register = gimli::Register(7);
    const RBP: gimli::Register = gimli::Register(6);
    const RA: gimli::Register = gimli::Register(16);

    /// The rule for the frame returning to `pc` (looked up at `pc - 1`, inside the call, as
    /// libgcc does for every frame but a signal frame's caller, which never gets here).
    #[cold]
    #[inline(never)]
    pub(super) fn compute(pc: usize, gen: u64) -> u64 {
        let complex = COMPLEX | (gen & GEN_MASK) << GEN_SHIFT;
        let mut bases = EhBases {
            tbase: 0,
            dbase: 0,
            func: 0,
        };
        // SAFETY: a lookup in the loaded objects' unwind tables; `bases` is written.
        let fde = unsafe { _Unwind_Find_FDE(pc - 1, &mut bases) };
        if fde.is_null() {
            return complex;
        }
        // SAFETY: `fde` points at an FDE in a loaded `.eh_frame`: a 32-bit length (0xffffffff
        // for the 64-bit form, not handled), then the distance back to its CIE, which lies
        // before it in the same section; CIE to FDE end is mapped.
        let (cie, end) = unsafe {
            let len = (fde as *const u32).read_unaligned();
            let back = (fde.add(4) as *const u32).read_unaligned();
            if len == 0xffff_ffff || back == 0 || back as usize > fde as usize + 4 {
                return complex;
            }
            let cie = fde.add(4).sub(back as usize);
            (cie, fde.add(4 + len as usize))
        };
        // SAFETY: see above.
        let section = unsafe { std::slice::from_raw_parts(cie, end as usize - cie as usize) };
        let eh = gimli::EhFrame::new(section, gimli::LittleEndian);
        let gimli_bases = gimli::BaseAddresses::default()
            .set_eh_frame(cie as u64)
            .set_text(bases.tbase as u64)
            .set_got(bases.dbase as u64);
        use gimli::UnwindSection;
        let Ok(fde) = eh.fde_from_offset(
            &gimli_bases,
            gimli::EhFrameOffset(fde as usize - cie as usize),
            gimli::EhFrame::cie_from_offset,
        ) else {
            return complex;
        };
        if fde.is_signal_trampoline() {
            return complex;
        }
        let mut ctx = gimli::UnwindContext::<usize, OnStack>::new_in();
        let Ok(row) = fde.unwind_info_for_address(&eh, &gimli_bases, &mut ctx, pc as u64 - 1)
        else {
            return complex;
        };
        let (kind, cfa_off) = match *row.cfa() {
            gimli::CfaRule::RegisterAndOffset { register, offset } if register == RSP => {
                (STEP_SP, offset)
            }
            gimli::CfaRule::RegisterAndOffset { register, offset } if register == RBP => {
                (STEP_BP, offset)
            }
            _ => return complex,
        };
        // The caller's rsp is the CFA (libgcc's rule for the stack pointer column).
        if row.register(RSP).is_some() {
            return complex;
        }
        let bp_off = match row.register(RBP) {
            None | Some(gimli::RegisterRule::SameValue) | Some(gimli::RegisterRule::Undefined) => {
                None
            }
            Some(gimli::RegisterRule::Offset(o)) => Some(o),
            Some(_) => return complex,
        };
        match row.register(RA) {
            Some(gimli::RegisterRule::Offset(-8)) => pack(kind, cfa_off, bp_off, gen),
            Some(gimli::RegisterRule::Undefined) => END | (gen & GEN_MASK) << GEN_SHIFT,
            _ => complex,
        }
    }

    thread_local! {
        /// This thread's stack, `[low, high)`; `(0, 0)` before the first capture, `(1, 0)`
        /// if unknown.
        static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    /// The stack left below `sp` on this thread (`None` if `sp` is not within its known stack).
    pub(super) fn headroom(sp: usize) -> Option<usize> {
        let (low, high) = stack_bounds();
        (low <= sp && sp < high).then(|| sp - low)
    }

    pub(super) fn stack_bounds() -> (usize, usize) {
        let known = STACK.with(Cell::get);
        if known != (0, 0) {
            return known;
        }
        let bounds = read_stack_bounds().unwrap_or((1, 0));
        STACK.with(|s| s.set(bounds));
        bounds
    }

    fn read_stack_bounds() -> Option<(usize, usize)> {
        // SAFETY: the attributes are initialised by `pthread_getattr_np` before use and
        // destroyed after.
        unsafe {
            let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
            if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
                return None;
            }
            let (mut addr, mut size) = (std::ptr::null_mut(), 0);
            let ok = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size) == 0;
            libc::pthread_attr_destroy(attr.as_mut_ptr());
            (ok && !addr.is_null()).then(|| (addr as usize, addr as usize + size))
        }
    }

    /// Objects the dynamic loader has unloaded so far (`dlpi_subs`).
    pub(super) fn unloaded() -> u64 {
        unsafe extern "C" fn first(
            info: *mut libc::dl_phdr_info,
            size: libc::size_t,
            out: *mut libc::c_void,
        ) -> libc::c_int {
            let has = size
                >= std::mem::offset_of!(libc::dl_phdr_info, dlpi_subs)
                    + std::mem::size_of::<libc::c_ulonglong>();
            // SAFETY: `info` is valid for the call, `dlpi_subs` within the `size` it gives.
            unsafe { *(out as *mut u64) = if has { (*info).dlpi_subs } else { u64::MAX } };
            1 // one object is enough: every one carries the counters
        }
        let mut subs = u64::MAX;
        // SAFETY: `first` writes a u64 through its argument, which points at `subs`.
        unsafe { libc::dl_iterate_phdr(Some(first), &mut subs as *mut u64 as *mut libc::c_void) };
        subs
    }

    /// Walks the stack from `regs` (the capturing function's frame, not kept) with the cached
    /// rules into `frames`, exactly as the reference capture would; a rule not in the table is
    /// computed if `compute`. False when the walk needs the system unwinder (`frames` then holds
    /// the frames walked so far, the reference capture's first ones).
    ///
    /// # Safety
    /// `regs` must be the registers of a frame that is live for the whole call, read at
    /// `regs.pc`, on the current thread's stack.
    pub(super) unsafe fn walk(regs: Registers, frames: &mut Frames, compute: bool) -> bool {
        let (low, high) = stack_bounds();
        let start = regs.sp;
        if start < low || start >= high {
            return false; // an alternate signal stack, a coroutine's stack, unknown bounds
        }
        let gen = unloaded();
        if gen == u64::MAX {
            return false;
        }
        let Registers {
            mut pc,
            mut sp,
            mut bp,
        } = regs;
        let mut own = true;
        loop {
            if pc == 0 {
                // After an undefined return address libgcc reports one last frame, at 0.
                frames.push(0);
                return true;
            }
            let Some(rule) = TABLE.rule_for(pc, gen, compute) else {
                return false;
            };
            let kind = rule & KIND;
            if kind == COMPLEX || rule == 0 {
                return false;
            }
            if !own && !frames.push(pc) {
                return true;
            }
            own = false;
            if kind == END {
                pc = 0;
                continue;
            }
            let base = if kind == STEP_SP { sp } else { bp };
            #[cfg(test)]
            if kind == STEP_BP {
                BP_STEPS.fetch_add(1, Ordering::Relaxed);
            }
            let cfa = base.wrapping_add_signed(cfa_off(rule));
            // The caller's frame is above this one and within the stack, and so is every word
            // read below.
            if cfa <= sp || cfa > high || cfa - 8 < start {
                return false;
            }
            // SAFETY: `cfa - 8 .. cfa` lies within `[start, high)`, the live part of this
            // thread's stack above the capturing frame.
            let ra = unsafe { ((cfa - 8) as *const usize).read_unaligned() };
            if rule & BP_SAVED != 0 {
                let at = cfa.wrapping_add_signed(bp_off(rule));
                if at < start || at > high - 8 {
                    return false;
                }
                // SAFETY: `at .. at + 8` lies within `[start, high)`, as above.
                bp = unsafe { (at as *const usize).read_unaligned() };
            }
            sp = cfa;
            pc = ra;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// Captures by every method from one call site (a loop the compiler cannot unroll), so that
    /// all of them see the same frames: (fast, fast only, reference).
    #[inline(never)]
    fn site() -> (Frames, Option<Frames>, Frames) {
        let mut out: Vec<Option<Frames>> = Vec::new();
        for m in black_box(vec![Method::Fast, Method::FastOnly, Method::Reference]) {
            out.push(capture(m));
        }
        let r = out.pop().unwrap().unwrap();
        let fo = out.pop().unwrap();
        let f = out.pop().unwrap().unwrap();
        (f, fo, r)
    }

    /// The fast captures equal the reference one (frames and truncation), twice (the second
    /// time through the filled table); on x86_64 Linux the walk needs no fallback.
    #[track_caller]
    fn check(path: &str, got: (Frames, Option<Frames>, Frames)) -> usize {
        let (f, fo, r) = got;
        assert!(r.n > 0, "{path}: the reference capture found no frame");
        assert_eq!(f.as_slice(), r.as_slice(), "{path}: fast != reference");
        assert_eq!(f.truncated, r.truncated, "{path}: truncation differs");
        if cfg!(all(
            target_os = "linux",
            target_env = "gnu",
            target_arch = "x86_64"
        )) {
            let fo = fo.unwrap_or_else(|| panic!("{path}: the fast walk fell back"));
            assert_eq!(
                fo.as_slice(),
                r.as_slice(),
                "{path}: fast only != reference"
            );
            assert_eq!(fo.truncated, r.truncated, "{path}: truncation differs");
        }
        r.n
    }

    #[inline(never)]
    fn recurse(n: usize) -> (Frames, Option<Frames>, Frames) {
        if n == 0 {
            return site();
        }
        black_box(recurse(black_box(n - 1)))
    }

    #[inline(always)]
    fn inlined_a() -> (Frames, Option<Frames>, Frames) {
        inlined_b()
    }

    #[inline(always)]
    fn inlined_b() -> (Frames, Option<Frames>, Frames) {
        black_box(site())
    }

    #[inline(never)]
    fn generic<T: std::fmt::Debug>(t: T, depth: usize) -> (Frames, Option<Frames>, Frames) {
        if depth == 0 {
            black_box(format!("{t:?}"));
            return site();
        }
        black_box(generic(black_box(t), depth - 1))
    }

    /// Over-aligned locals: the compiler realigns the stack and addresses the frame from rbp,
    /// so the CFA is rbp-based here.
    #[inline(never)]
    fn realigned(n: usize) -> (Frames, Option<Frames>, Frames) {
        #[repr(align(256))]
        struct Big([u8; 512]);
        let mut big = Big([n as u8; 512]);
        black_box(&mut big);
        let r = if n == 0 { site() } else { realigned(n - 1) };
        black_box(big.0[n % 512]);
        black_box(r)
    }

    /// Closures, `dyn FnMut`, an iterator adapter.
    #[inline(never)]
    fn through_closures(n: usize) -> (Frames, Option<Frames>, Frames) {
        let mut once = Some(move || recurse(n));
        let mut call = || (once.take().unwrap())();
        let f: &mut dyn FnMut() -> (Frames, Option<Frames>, Frames) = &mut call;
        black_box((0..1).map(|_| f()).next().unwrap())
    }

    #[test]
    fn fast_captures_equal_the_system_unwinders_on_varied_paths() {
        for round in 0..2 {
            let at = |p: &str| format!("{p} (round {round})");
            for n in [0, 1, 5, 20, TRACE_DEPTH, 2 * TRACE_DEPTH] {
                check(&at(&format!("recursion {n}")), recurse(n));
            }
            check(&at("inlined"), inlined_a());
            check(&at("generic u8"), generic(7u8, 3));
            check(&at("generic String"), generic(String::from("x"), 9));
            check(&at("realigned"), realigned(3));
            check(&at("closures"), through_closures(4));
            let n = check(&at("catch_unwind"), {
                std::panic::catch_unwind(|| recurse(2)).expect("no panic")
            });
            assert!(n > 3);
            // Threads: the walk reaches the bottom of a thread's stack (clone's undefined return
            // address) when it fits in the depth.
            let from_thread = std::thread::spawn(|| check("spawned thread", recurse(1)))
                .join()
                .expect("thread");
            assert!(from_thread > 2);
            std::thread::scope(|s| {
                for i in 0..4 {
                    s.spawn(move || check("scoped thread", generic(i, i)));
                }
            });
            // A small stack, with room for computing rules (`RULE_STACK`): the fast walk is
            // exercised there. A smaller one takes the system unwinder for new paths
            // (`tests/small_stack_capture.rs`).
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(|| check("small stack", realigned(2)))
                .unwrap()
                .join()
                .expect("thread");
        }
        assert!(!table_was_full());
        #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
        assert!(
            fast::BP_STEPS.load(std::sync::atomic::Ordering::Relaxed) > 0,
            "no frame with an rbp-based CFA was walked (the realigned frames)"
        );
    }

    /// Fills this thread's free stack (below this function's frame, down to a page above the
    /// stack's low end) with a pattern, for [`stack_used`].
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    #[inline(never)]
    fn paint() {
        let (low, _) = fast::stack_bounds();
        let sp = fast::registers().sp;
        let mut at = low + 4096;
        while at < sp - 1024 {
            // SAFETY: free stack of this thread, below every live frame (and the red zone).
            unsafe { (at as *mut u64).write_volatile(PAINT) };
            at += 8;
        }
    }

    const PAINT: u64 = 0xa5a5_5a5a_a5a5_5a5a;

    /// The bytes of stack `f` used below this function's frame, by [`paint`]'s pattern.
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    #[inline(never)]
    fn stack_used(f: &mut dyn FnMut()) -> usize {
        let marker = 0u8;
        let here = black_box(std::ptr::addr_of!(marker)) as usize;
        paint();
        f();
        let (low, _) = fast::stack_bounds();
        let mut at = low + 4096;
        // SAFETY: this thread's stack, below this frame.
        while at < here && unsafe { (at as *const u64).read_volatile() } == PAINT {
            at += 8;
        }
        here - at
    }

    /// What a capture uses of the stack below its frame stays within the bounds it checks
    /// before using it: computing a new rule within [`RULE_STACK`] (the rule computed alone,
    /// added to a capture through known rules), the system unwinder within [`REFERENCE_STACK`].
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    #[test]
    fn the_stack_a_capture_needs_is_within_its_bounds() {
        std::thread::Builder::new()
            .stack_size(4 << 20)
            .spawn(|| {
                let mut known = || {
                    black_box(capture(Method::Fast));
                };
                // Twice from one call site: the second time every rule is in the table.
                let mut warm = 0;
                for _ in 0..2 {
                    warm = stack_used(&mut known);
                }
                // An address in a function of this binary, after its prologue: a rule to compute.
                let pc = the_stack_a_capture_needs_is_within_its_bounds as *const () as usize + 64;
                let rule = stack_used(&mut || {
                    black_box(fast::compute(black_box(pc), 0));
                });
                let reference = stack_used(&mut || {
                    black_box(capture(Method::Reference));
                });
                eprintln!(
                    "capture through known rules {warm} B, a rule computed {rule} B, the system \
                     unwinder {reference} B; bounds {RULE_STACK} B and {REFERENCE_STACK} B"
                );
                assert!(rule > 1024, "the measure saw the computation ({rule} B)");
                assert!(warm + rule <= RULE_STACK, "{warm} + {rule} > {RULE_STACK}");
                assert!(
                    reference <= REFERENCE_STACK,
                    "{reference} > {REFERENCE_STACK}"
                );
            })
            .unwrap()
            .join()
            .expect("thread");
    }

    /// A full table refuses new addresses (their captures go to the system unwinder), says so,
    /// and keeps answering for the addresses it holds; a new generation recomputes in place.
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    #[test]
    fn a_full_table_says_so_and_keeps_its_rules() {
        let t = fast::Table::<16>::new();
        let (mut held, mut refused) = (Vec::new(), 0);
        // Addresses in no loaded object: no FDE, so "use the system unwinder" rules.
        for i in 1..=64usize {
            let pc = i * 4096 + 1;
            match t.rule_for(pc, 7, true) {
                Some(rule) => held.push((pc, rule)),
                None => refused += 1,
            }
        }
        assert_eq!((held.len(), refused), (16, 48));
        assert!(t.was_full());
        for &(pc, rule) in &held {
            assert_eq!(t.rule_for(pc, 7, true), Some(rule));
            assert_eq!(fast::generation(rule), 7);
            let again = t.rule_for(pc, 8, true).expect("its slot is still its own");
            assert_eq!(fast::generation(again), 8);
        }
    }

    /// The captured frames start at the capturing function's caller.
    #[test]
    fn a_capture_starts_at_its_callers_frame() {
        let (f, _, _) = recurse(0);
        let mut names = Vec::new();
        backtrace::resolve(f.ips[0] as *mut std::ffi::c_void, |s| {
            names.push(s.name().map(|n| format!("{n:#}")).unwrap_or_default());
        });
        assert!(
            names.iter().any(|n| n.ends_with("unwind::tests::site")),
            "{names:?}"
        );
    }
}
