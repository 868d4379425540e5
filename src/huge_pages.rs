//! A global allocator that backs large buffers with transparent huge pages.
//!
//! Why: a full-tile run streams tens of GB of strip buffers (a few MB each)
//! through fresh memory: glibc serves them with mmap (see
//! [`crate::run::tune_allocator`]) and the kernel faults them in 4 KiB page by
//! page, zeroing each. On a full tile the sites step alone spent 11 s of its
//! 46 CPU s in the kernel. Debian's default THP mode is `madvise`, so the
//! buffers must ask: with MADV_HUGEPAGE on every allocation of 4 MB or more
//! the same step spent 7 s there and ran about 10% faster. Small allocations
//! are left alone (huge pages would waste memory on them).

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are advised.
const LARGE: usize = 4 << 20;
const PAGE: usize = 4096;

/// [`System`], plus MADV_HUGEPAGE on large allocations (Linux only).
pub struct HugePages;

#[inline]
fn advise(p: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    if !p.is_null() && size >= LARGE {
        // madvise needs a page-aligned start; the kernel uses huge pages for
        // the 2 MB-aligned parts of the range.
        let start = (p as usize).next_multiple_of(PAGE);
        let end = (p as usize + size) & !(PAGE - 1);
        // SAFETY: the range lies inside an allocation we own; MADV_HUGEPAGE
        // changes only how its pages are backed, never their contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

// SAFETY: every call is forwarded to `System`; `advise` does not touch the
// memory's contents.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        advise(p, layout.size());
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        advise(p, layout.size());
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout)
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new_size);
        if new_size > layout.size() {
            advise(q, new_size);
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_allocations_keep_their_contents() {
        let a = HugePages;
        for size in [8, LARGE - 1, LARGE, 3 * LARGE + 123] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            unsafe {
                let p = a.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
                p.write_bytes(7, size);
                let q = a.realloc(p, layout, 2 * size);
                assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 7));
                a.dealloc(q, Layout::from_size_align(2 * size, 8).unwrap());
            }
        }
    }
}
