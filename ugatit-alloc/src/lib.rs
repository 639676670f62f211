//! The binaries' global allocator: large blocks on transparent huge pages, and freed large
//! blocks kept for reuse. A crate of its own: its `mmap`, `madvise` and `munmap` are the only
//! `unsafe` code of the workspace outside the CPU kernels' matrix-product calls.
//!
//! A training step allocates and frees gigabytes of activations and gradients in blocks of
//! megabytes. glibc serves each from fresh `mmap`ed 4 KiB pages, so every block costs one page
//! fault per 4 KiB on first touch (6.6 million minor faults in three 256 x 256 light steps,
//! about 20% of the step's time in the kernel), the kernel zeroing each page, and a TLB
//! shoot-down when it is unmapped. Here blocks of [`THRESHOLD`] bytes or more are mapped by
//! this allocator, 2 MiB-aligned and advised `MADV_HUGEPAGE` before they are touched (as
//! glibc's `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` does), so the kernel backs them 2 MiB at a
//! time; and a freed one goes to a [`BlockCache`], from which the next request it is long
//! enough for (the next step's tensor of that shape) takes it without a fault, zeroing or
//! unmap. A request the cache cannot serve first unmaps cached blocks (the oldest first) of at
//! least its length, so the large blocks live plus cached never grow past the most that were
//! live at once (up to one block freed by another thread during that give-back): the cache
//! makes steps faster and the peak no higher (a light 256 step 28.5 -> 25.2 s,
//! the full step's peak 13172 -> 12533 MiB; docs/PERFORMANCE.md). Smaller blocks, and every
//! block on systems other than Linux, go to the system allocator unchanged; where transparent
//! huge pages are off (`/sys/kernel/mm/transparent_hugepage/enabled` = `never`) the advice is
//! a no-op. What the cache holds stays mapped until a request needs the room: a long-lived
//! process keeps its peak.

use std::alloc::{GlobalAlloc, Layout, System};

mod block_cache;

use block_cache::BlockCache;

/// Blocks this large or larger are mapped here (a huge page is 2 MiB on x86-64 and most arm64).
pub const THRESHOLD: usize = 4 << 20;

/// Bytes of freed large blocks kept for reuse by [`HugePageAlloc::new`].
pub const DEFAULT_CACHE: usize = 8 << 30;

/// The longest freed block kept by [`HugePageAlloc::new`].
pub const DEFAULT_CACHE_LARGEST: usize = 8 << 30;

const HUGE_PAGE: usize = 2 << 20;

/// The system allocator for small blocks; huge-page mappings and a cache of freed ones for
/// blocks of [`THRESHOLD`] bytes or more.
pub struct HugePageAlloc {
    cache: BlockCache,
}

impl HugePageAlloc {
    /// With a cache of [`DEFAULT_CACHE`] bytes.
    pub const fn new() -> Self {
        Self::with_cache(DEFAULT_CACHE, DEFAULT_CACHE_LARGEST)
    }

    /// With a cache of at most `bytes` bytes of freed blocks, none longer than `largest` (0:
    /// every freed block is unmapped).
    pub const fn with_cache(bytes: usize, largest: usize) -> Self {
        Self {
            cache: BlockCache::new(bytes, largest),
        }
    }

    /// Bytes of freed blocks held for reuse now.
    pub fn cached_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Whether a block of `layout` is mapped here rather than by the system allocator.
    fn is_large(layout: Layout) -> bool {
        cfg!(target_os = "linux") && layout.size() >= THRESHOLD && layout.align() <= HUGE_PAGE
    }

    /// The length mapped for a large block of `size` bytes: whole huge pages.
    fn mapped_len(size: usize) -> usize {
        size.next_multiple_of(HUGE_PAGE)
    }

    /// A large block: the shortest cached one long enough (its surplus tail unmapped), else a
    /// fresh mapping (zero already).
    fn alloc_large(&self, size: usize, zeroed: bool) -> *mut u8 {
        let len = Self::mapped_len(size);
        match self.cache.take(len) {
            Some((addr, cached)) => {
                let ptr = addr as *mut u8;
                if cached > len {
                    // A longer block: its head serves, its tail goes back to the system.
                    unmap(ptr.wrapping_add(len), cached - len);
                }
                if zeroed {
                    // SAFETY: the cached block is `len >= size` bytes, mapped and owned here.
                    unsafe { ptr.write_bytes(0, size) };
                }
                ptr
            }
            None => {
                // Give back at least as much as is mapped, so the process's memory (live plus
                // cached) never grows past its largest live total.
                let mut freed = 0;
                while freed < len {
                    let Some(l) = self.release_oldest() else {
                        break;
                    };
                    freed += l;
                }
                map_huge(len)
            }
        }
    }

    /// Unmaps the cached block freed longest ago; its length, or none when the cache is empty.
    fn release_oldest(&self) -> Option<usize> {
        let (addr, len) = self.cache.take_oldest()?;
        unmap(addr as *mut u8, len);
        Some(len)
    }

    fn dealloc_large(&self, ptr: *mut u8, size: usize) {
        let len = Self::mapped_len(size);
        if !self.cache.put(ptr as usize, len) {
            unmap(ptr, len);
        }
    }
}

impl Drop for HugePageAlloc {
    /// Gives what the cache holds back to the system (an allocator that is not the global one,
    /// as in tests).
    fn drop(&mut self) {
        while self.release_oldest().is_some() {}
    }
}

impl Default for HugePageAlloc {
    fn default() -> Self {
        Self::new()
    }
}

/// A fresh anonymous mapping of `len` bytes (a multiple of [`HUGE_PAGE`]) starting on a huge
/// page boundary and advised `MADV_HUGEPAGE`; null when the system refuses.
#[cfg(target_os = "linux")]
fn map_huge(len: usize) -> *mut u8 {
    // Map one huge page more than asked, then unmap the ragged head and tail: mmap only
    // promises 4 KiB alignment, and a huge page needs its 2 MiB one.
    // SAFETY: a new private anonymous mapping; only its own parts are unmapped or advised.
    unsafe {
        let raw = libc::mmap(
            std::ptr::null_mut(),
            len + HUGE_PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if raw == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        let raw = raw as usize;
        let start = raw.next_multiple_of(HUGE_PAGE);
        if start > raw {
            libc::munmap(raw as *mut libc::c_void, start - raw);
        }
        let tail = raw + len + HUGE_PAGE - (start + len);
        if tail > 0 {
            libc::munmap((start + len) as *mut libc::c_void, tail);
        }
        // A failure (huge pages unsupported) leaves ordinary pages.
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        start as *mut u8
    }
}

#[cfg(target_os = "linux")]
fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: `[ptr, ptr + len)` is a whole mapping made by `map_huge` and no longer used.
    unsafe {
        libc::munmap(ptr as *mut libc::c_void, len);
    }
}

// Never called elsewhere: `is_large` is false off Linux.
#[cfg(not(target_os = "linux"))]
fn map_huge(_: usize) -> *mut u8 {
    std::ptr::null_mut()
}

#[cfg(not(target_os = "linux"))]
fn unmap(_: *mut u8, _: usize) {}

// SAFETY: a block of `is_large(layout)` is mapped by `alloc_large`, 2 MiB-aligned (so any
// alignment up to 2 MiB holds) and at least `layout.size()` long, and goes back through
// `dealloc_large` with the same layout, so to the same mapped length; every other block comes
// from `System` and goes back to it. A cached block is owned by the cache alone until handed
// out again.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::is_large(layout) {
            self.alloc_large(layout.size(), false)
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::is_large(layout) {
            self.alloc_large(layout.size(), true)
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::is_large(layout) {
            self.dealloc_large(ptr, layout.size());
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `realloc`'s contract makes `new_layout` valid for the same alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Self::is_large(layout), Self::is_large(new_layout)) {
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) if Self::mapped_len(layout.size()) == Self::mapped_len(new_size) => ptr,
            _ => {
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are live, distinct, and at least this long.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}
