//! The binaries' allocator advises large blocks `MADV_HUGEPAGE` and leaves small ones alone: the
//! kernel records the advice as the `hg` flag of the block's mapping in /proc/self/smaps (set
//! whether or not huge pages are then available, so this does not depend on free memory). Freed
//! large blocks are reused, within the cache's budget, and a request the cache cannot serve
//! first gives cached memory back.

#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout};

use ugatit_alloc::{HugePageAlloc, THRESHOLD};

const MIB: usize = 1 << 20;

/// The tests look at this process's mappings: one at a time, so that no other test maps what
/// one has just given back.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `VmFlags` of the mapping that holds `addr`.
fn vm_flags(addr: usize) -> Vec<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
                continue;
            }
        }
        if inside {
            if let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.split_whitespace().map(str::to_string).collect();
            }
        }
    }
    panic!("no mapping holds {addr:#x}");
}

fn thp_enabled() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|s| !s.contains("[never]"))
}

#[test]
fn large_blocks_are_advised_huge_pages_small_ones_are_not() {
    let _serial = one_at_a_time();
    if !thp_enabled() {
        eprintln!("transparent huge pages are off here: nothing to check");
        return;
    }
    let alloc = HugePageAlloc::new();
    let big = Layout::from_size_align(4 * THRESHOLD, 64).unwrap();
    let small = Layout::from_size_align(64 << 10, 64).unwrap();
    // SAFETY: the layouts are non-zero; each block is written within its size and freed once.
    unsafe {
        let p = alloc.alloc(big);
        assert!(!p.is_null());
        p.write_bytes(1, big.size());
        let middle = p as usize + big.size() / 2;
        assert!(
            vm_flags(middle).iter().any(|f| f == "hg"),
            "a {} MiB block is not advised: {:?}",
            big.size() >> 20,
            vm_flags(middle)
        );
        // The data survives a realloc that grows it, and the grown block is advised too.
        let q = alloc.realloc(p, big, 2 * big.size());
        assert_eq!(*q.add(big.size() - 1), 1);
        assert!(vm_flags(q as usize + big.size()).iter().any(|f| f == "hg"));
        alloc.dealloc(q, Layout::from_size_align(2 * big.size(), 64).unwrap());

        let s = alloc.alloc(small);
        s.write_bytes(2, small.size());
        assert!(!vm_flags(s as usize).iter().any(|f| f == "hg"));
        alloc.dealloc(s, small);
    }
}

fn layout(bytes: usize) -> Layout {
    Layout::from_size_align(bytes, 64).unwrap()
}

/// Whether `addr` lies in a mapping of this allocator's (advised `hg`): a block given back is
/// unmapped, or its addresses already reused by some other, unadvised mapping (a thread's
/// stack, say).
fn ours(addr: usize) -> bool {
    mapped(addr) && vm_flags(addr).iter().any(|f| f == "hg")
}

/// Whether `addr` is mapped at all.
fn mapped(addr: usize) -> bool {
    let smaps = std::fs::read_to_string("/proc/self/maps").unwrap();
    smaps.lines().any(|line| {
        let range = line.split_whitespace().next().unwrap_or("");
        range.split_once('-').is_some_and(|(lo, hi)| {
            let (lo, hi) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16));
            matches!((lo, hi), (Ok(lo), Ok(hi)) if (lo..hi).contains(&addr))
        })
    })
}

#[test]
fn a_freed_block_serves_the_next_request_of_its_size_zeroed_when_asked() {
    let _serial = one_at_a_time();
    let alloc = HugePageAlloc::new();
    let l = layout(8 * MIB + 5);
    // SAFETY: blocks are written within their size and freed once, with their layout.
    unsafe {
        let p = alloc.alloc(l);
        assert_eq!(
            p as usize % (2 * MIB),
            0,
            "large blocks start on a huge page"
        );
        p.write_bytes(7, l.size());
        alloc.dealloc(p, l);
        assert_eq!(alloc.cached_bytes(), 10 * MIB, "kept whole huge pages");
        let q = alloc.alloc_zeroed(l);
        assert_eq!(q, p, "the cached block is handed out again");
        assert!(std::slice::from_raw_parts(q, l.size())
            .iter()
            .all(|&b| b == 0));
        assert_eq!(alloc.cached_bytes(), 0);
        alloc.dealloc(q, l);
    }
}

#[test]
fn a_shorter_request_takes_the_head_of_a_longer_block_and_its_tail_is_given_back() {
    let _serial = one_at_a_time();
    let alloc = HugePageAlloc::new();
    let (long, short) = (layout(16 * MIB), layout(6 * MIB));
    // SAFETY: as above.
    unsafe {
        let p = alloc.alloc(long);
        p.write_bytes(1, long.size());
        alloc.dealloc(p, long);
        let q = alloc.alloc(short);
        assert_eq!(q, p);
        assert_eq!(alloc.cached_bytes(), 0);
        assert!(mapped(q as usize + short.size() - 1));
        assert!(!ours(q as usize + short.size()), "the tail is unmapped");
        q.write_bytes(2, short.size());
        alloc.dealloc(q, short);
        assert_eq!(alloc.cached_bytes(), 6 * MIB, "freed at its new length");
    }
}

#[test]
fn a_request_the_cache_cannot_serve_gives_cached_memory_back_first() {
    let _serial = one_at_a_time();
    let alloc = HugePageAlloc::new();
    let (small, big) = (layout(4 * MIB), layout(12 * MIB));
    // SAFETY: as above.
    unsafe {
        let a = alloc.alloc(small);
        let b = alloc.alloc(small);
        alloc.dealloc(a, small);
        alloc.dealloc(b, small);
        assert_eq!(alloc.cached_bytes(), 8 * MIB);
        // Nothing cached is 12 MiB long: both blocks are unmapped before 12 MiB are mapped, so
        // live plus cached memory does not grow past what was live at most.
        let c = alloc.alloc(big);
        assert_eq!(alloc.cached_bytes(), 0);
        for freed in [a, b] {
            let inside_c = (c as usize..c as usize + big.size()).contains(&(freed as usize));
            assert!(
                !mapped(freed as usize) || inside_c,
                "a cached block is still mapped"
            );
        }
        c.write_bytes(3, big.size());
        alloc.dealloc(c, big);
    }
}

#[test]
fn the_cache_keeps_to_its_budget_and_its_longest_block() {
    let _serial = one_at_a_time();
    let alloc = HugePageAlloc::with_cache(8 * MIB, 4 * MIB);
    let (small, big) = (layout(4 * MIB), layout(8 * MIB));
    // SAFETY: as above.
    unsafe {
        let blocks: Vec<*mut u8> = (0..3).map(|_| alloc.alloc(small)).collect();
        for &p in &blocks {
            alloc.dealloc(p, small);
        }
        assert_eq!(
            alloc.cached_bytes(),
            8 * MIB,
            "the third block is over budget"
        );
        assert!(!ours(blocks[2] as usize));
        let p = alloc.alloc(big);
        alloc.dealloc(p, big);
        assert!(
            !mapped(p as usize),
            "8 MiB is longer than the longest block kept"
        );
    }
}

#[test]
fn realloc_moves_data_between_small_and_large_blocks() {
    let _serial = one_at_a_time();
    let alloc = HugePageAlloc::with_cache(0, 0);
    let (small, large) = (layout(MIB), layout(5 * MIB));
    // SAFETY: as above; each realloc's result replaces the block it was given.
    unsafe {
        let p = alloc.alloc(small);
        p.write_bytes(4, small.size());
        let q = alloc.realloc(p, small, large.size());
        assert_eq!(q as usize % (2 * MIB), 0);
        assert!(std::slice::from_raw_parts(q, small.size())
            .iter()
            .all(|&b| b == 4));
        q.add(small.size())
            .write_bytes(5, large.size() - small.size());
        // Within the same whole huge pages the block stays where it is.
        let r = alloc.realloc(q, large, 6 * MIB);
        assert_eq!(r, q);
        let s = alloc.realloc(r, layout(6 * MIB), small.size());
        assert!(std::slice::from_raw_parts(s, small.size())
            .iter()
            .all(|&b| b == 4));
        assert!(!ours(r as usize), "the large block is given back");
        alloc.dealloc(s, small);
    }
}
