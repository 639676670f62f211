//! The binaries' allocator advises large blocks `MADV_HUGEPAGE` and leaves small ones alone: the
//! kernel records the advice as the `hg` flag of the block's mapping in /proc/self/smaps (set
//! whether or not huge pages are then available, so this does not depend on free memory).

#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout};

use ugatit_io::huge_pages::{HugePageAlloc, THRESHOLD};

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
    if !thp_enabled() {
        eprintln!("transparent huge pages are off here: nothing to check");
        return;
    }
    let alloc = HugePageAlloc;
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
