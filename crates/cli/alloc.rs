//! The CLI's allocator: the system allocator, with large blocks mapped on their own and backed by
//! transparent huge pages where the kernel gives them (Linux only).
//!
//! The replay's tables (the held-set tries, the dependency records, their hash indexes) are tens
//! of megabytes touched at random, one dependent cache miss after another: with 4 KiB pages each
//! miss is also a TLB miss, and each first touch a page fault (55k of them on the planted
//! 5M-event trace, about 0.15 s of system time). A block of [`MAP_MIN`] bytes or more gets a
//! mapping of its own, as glibc gave it (`main` fixes glibc's threshold there); from
//! [`HUGE_MIN`] bytes on the mapping is rounded up to whole huge pages and, while the analyzer
//! replays a trace ([`lockcheck_analyze::model::replaying`]), marked `MADV_HUGEPAGE` (machines
//! commonly set THP to `madvise`, so nothing else would get them). A vector that grows is moved
//! by `mremap`, which keeps the mark, instead of copied. Smaller blocks go to glibc.
//!
//! Memory: a huge page is given whole on first touch, so a block may hold up to 2 MiB more than
//! it touched (at its end); the mapping's rounding is address space only.
//!
//! System time on a VM (session 22, the AMD EPYC host): a run's system time went from 0.09 to
//! 0.55 s on the planted 5M-event trace, and the huge pages are why, through the hypervisor: the
//! guest's balloon device reports free blocks of 2 MiB and more to the host (`free page
//! reporting`, `page_reporting_order` 9, about 2 s after they are freed), which takes their memory
//! back, and a huge page is such a block, so zeroing it on its first touch faults in the host
//! page by page (`clear_page_erms`: 13 to 22 % of the CPU samples of such a run, 3 % in session
//! 21's profile). A run started within about 2 s of the previous one gets the blocks that one
//! freed, still backed; a run after a pause, or beside other busy processes, does not. Base
//! pages come first from smaller free blocks, never reported: without the mark the system time
//! is steady (0.17 to 0.19 s at the median against 0.08 to 0.39 s, for 45k more faults) but the
//! user time is higher (RAPID 0.43 to 0.46 s against 0.36 s). Not direct compaction:
//! `compact_stall` did not move in any run. The mark stays: it wins the planted trace's user
//! time (not the hostile one's), and the system time too on a machine without free page
//! reporting (BENCHMARKS.md, "System time on this VM").
//!
//! Elsewhere: on a kernel without THP, or with THP `never`, `madvise` fails or is ignored and the
//! blocks have base pages (the rounding to [`HUGE_PAGE`] is address space only); where the huge
//! page is larger than 2 MiB (aarch64 with 16 or 64 KiB base pages) the same holds for blocks
//! smaller than one, and larger ones get them where a whole aligned huge page falls inside.

use std::alloc::{GlobalAlloc, Layout, System};

/// The size of a transparent huge page on x86_64 and aarch64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// Blocks of at least this many bytes get a mapping of their own, and may get huge pages.
const HUGE_MIN: usize = HUGE_PAGE;

/// Blocks of at least this many bytes get a mapping of their own: glibc's threshold as `main`
/// fixes it (`fix_malloc_threshold`), so that a vector growing past [`HUGE_MIN`] is moved by
/// `mremap` as before, not copied from a glibc block into a mapping of ours.
const MAP_MIN: usize = 128 << 10;

/// The base page size assumed for mappings (Linux on x86_64 and aarch64's common 4 KiB; a
/// larger one rounds mappings up further, which `mmap` does by itself).
const PAGE: usize = 4096;

/// [`System`], with blocks of [`MAP_MIN`] bytes or more in mappings of their own, marked
/// `MADV_HUGEPAGE` from [`HUGE_MIN`] bytes on during a replay.
#[derive(Debug)]
pub(crate) struct HugePages;

/// Whether a block of this layout is mapped on its own (page alignment at most: a mapping is
/// page-aligned, not more).
#[inline]
fn mapped(size: usize, align: usize) -> bool {
    size >= MAP_MIN && align <= PAGE
}

/// The length of the mapping of a block of `size` bytes: whole pages, and whole huge pages from
/// [`HUGE_MIN`] bytes on, so that the kernel may place it on a huge-page boundary and back all
/// of it with huge pages.
#[inline]
fn map_len(size: usize) -> usize {
    if size >= HUGE_MIN {
        size.next_multiple_of(HUGE_PAGE)
    } else {
        size.next_multiple_of(PAGE)
    }
}

/// Marks the mapping `p` of `len` bytes for huge pages while the analyzer replays a trace
/// ([`lockcheck_analyze::model::replaying`]: the replay's tables are read at random, the later
/// phases' mostly in order, and some of those touch few of their pages).
unsafe fn advise(p: *mut libc::c_void, len: usize) {
    if len >= HUGE_MIN && lockcheck_analyze::model::replaying() {
        // SAFETY: `madvise` only sets a hint on a whole mapping of ours (a failure, as on a
        // kernel without THP, leaves it with base pages).
        unsafe {
            libc::madvise(p, len, libc::MADV_HUGEPAGE);
        }
    }
}

/// A new mapping of `len` bytes (zeroed by the kernel), marked for huge pages during a replay;
/// null on failure.
unsafe fn map(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's choice touches no
    // memory of the program; `advise` only sets a hint on it.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        advise(p, len);
        p.cast()
    }
}

// SAFETY: every block is either [`System`]'s (when `mapped` is false for its layout) or a
// mapping of `map_len(size)` bytes of its own, page-aligned, and each function tells the two
// apart by the same test on the layout it is given, which `GlobalAlloc`'s contract makes the
// block's layout (for `realloc`, the old layout, and the new size for the new block).
unsafe impl GlobalAlloc for HugePages {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(layout.size(), layout.align()) {
            // SAFETY: see `map`.
            unsafe { map(map_len(layout.size())) }
        } else {
            // SAFETY: `layout` is the caller's, passed on.
            unsafe { System.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(layout.size(), layout.align()) {
            // SAFETY: see `map` (its pages come zeroed).
            unsafe { map(map_len(layout.size())) }
        } else {
            // SAFETY: `layout` is the caller's, passed on.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(layout.size(), layout.align()) {
            // SAFETY: `ptr` is a mapping of `map_len(layout.size())` bytes made by `map` (or moved
            // by `realloc`'s `mremap`), unmapped once, as the caller gives it back once.
            unsafe {
                libc::munmap(ptr.cast(), map_len(layout.size()));
            }
        } else {
            // SAFETY: a block of `System`'s, given back with its layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        match (mapped(layout.size(), align), mapped(new_size, align)) {
            (false, false) => {
                // SAFETY: a block of `System`'s with its layout, as the caller gives it.
                unsafe { System.realloc(ptr, layout, new_size) }
            }
            (true, true) => {
                let (old_len, new_len) = (map_len(layout.size()), map_len(new_size));
                if old_len == new_len {
                    return ptr;
                }
                // SAFETY: `ptr` is a whole mapping of `old_len` bytes (one of `map`'s, whose
                // mark `mremap` keeps); the kernel moves it if it cannot grow in place.
                unsafe {
                    let p = libc::mremap(ptr.cast(), old_len, new_len, libc::MREMAP_MAYMOVE);
                    if p == libc::MAP_FAILED {
                        std::ptr::null_mut()
                    } else {
                        // A table made before the replay and grown by it.
                        advise(p, new_len);
                        p.cast()
                    }
                }
            }
            _ => {
                // From one kind of block to the other: a new block, the contents copied.
                // SAFETY: the new layout is valid (the caller's contract for `new_size`); both
                // blocks hold at least `min(old, new)` bytes and do not overlap; the old one is
                // given back with its own layout.
                unsafe {
                    let new_layout = Layout::from_size_align_unchecked(new_size, align);
                    let p = self.alloc(new_layout);
                    if !p.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    p
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks crossing the threshold both ways keep their contents, through `mremap` and
    /// through the copies between the two kinds of block.
    #[test]
    fn blocks_keep_their_contents_through_every_kind_of_realloc() {
        let a = HugePages;
        let sizes = [
            100,
            MAP_MIN - 1,
            MAP_MIN,
            MAP_MIN + 5000,
            HUGE_MIN - 1,
            HUGE_MIN,
            HUGE_MIN + 1,
            3 * HUGE_PAGE + 5,
            10 * HUGE_PAGE,
            64,
        ];
        // SAFETY: each block is used within its size and given back with its layout.
        unsafe {
            let mut layout = Layout::from_size_align(sizes[0], 8).unwrap();
            let mut p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            for i in 0..layout.size() {
                assert_eq!(*p.add(i), 0);
                *p.add(i) = (i % 251) as u8;
            }
            for &size in &sizes[1..] {
                p = a.realloc(p, layout, size);
                assert!(!p.is_null());
                let kept = layout.size().min(size);
                for i in (0..kept).step_by(997).chain(kept.saturating_sub(1)..kept) {
                    assert_eq!(*p.add(i), (i % 251) as u8, "byte {i} at size {size}");
                }
                layout = Layout::from_size_align(size, 8).unwrap();
                for i in kept..size {
                    *p.add(i) = (i % 251) as u8;
                }
            }
            a.dealloc(p, layout);
            let big = Layout::from_size_align(5 * HUGE_PAGE, 4096).unwrap();
            let z = a.alloc_zeroed(big);
            assert!(!z.is_null() && (z as usize) % 4096 == 0);
            assert!((0..big.size()).step_by(4096).all(|i| *z.add(i) == 0));
            a.dealloc(z, big);
        }
    }
}
