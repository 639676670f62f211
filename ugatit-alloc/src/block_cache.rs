//! A bounded cache of freed large blocks, for the global allocator in [`crate`].
//!
//! A training step allocates and frees the same tensor sizes in the same order every
//! iteration. Returning each freed block to the kernel and mapping a fresh one for the next
//! tensor of that size costs a page fault per huge page, the kernel zeroing every page, and a
//! TLB shoot-down on each unmap: a quarter of a 256 x 256 light step's CPU time was system
//! time (docs/PERFORMANCE.md). Freed blocks are kept here instead, up to a byte budget, and
//! handed out again to the next request they are long enough for (the shortest such block,
//! cut to length by the caller).
//!
//! The cache lives inside the global allocator, so it never allocates: a fixed array of slots
//! behind a mutex (a futex on Linux, no allocation).

use std::sync::Mutex;

/// How many freed blocks the cache holds at most.
const SLOTS: usize = 1024;

/// Freed blocks by length, at most `budget` bytes of them.
pub struct BlockCache {
    budget: usize,
    largest: usize,
    inner: Mutex<Slots>,
}

struct Slots {
    /// `(length, address, when freed)`; length 0 marks a free slot.
    blocks: [(usize, usize, u64); SLOTS],
    bytes: usize,
    clock: u64,
}

impl BlockCache {
    /// An empty cache that holds at most `budget` bytes of freed blocks, none longer than
    /// `largest` bytes.
    pub const fn new(budget: usize, largest: usize) -> Self {
        Self {
            budget,
            largest,
            inner: Mutex::new(Slots {
                blocks: [(0, 0, 0); SLOTS],
                bytes: 0,
                clock: 0,
            }),
        }
    }

    /// The shortest cached block of at least `len` bytes, `(address, length)`, removed from the
    /// cache.
    pub fn take(&self, len: usize) -> Option<(usize, usize)> {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let i = (0..SLOTS)
            .filter(|&i| s.blocks[i].0 >= len)
            .min_by_key(|&i| s.blocks[i].0)?;
        Some(s.remove(i))
    }

    /// The block freed longest ago, `(address, length)`, removed from the cache.
    pub fn take_oldest(&self) -> Option<(usize, usize)> {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let i = (0..SLOTS)
            .filter(|&i| s.blocks[i].0 > 0)
            .min_by_key(|&i| s.blocks[i].2)?;
        Some(s.remove(i))
    }

    /// Keeps the freed block `[addr, addr + len)` for reuse; false when it does not fit the
    /// budget or no slot is free (the caller then returns it to the system).
    pub fn put(&self, addr: usize, len: usize) -> bool {
        if len == 0 || len > self.largest {
            return false;
        }
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if len > self.budget - s.bytes {
            return false;
        }
        let Some(i) = s.blocks.iter().position(|&(l, _, _)| l == 0) else {
            return false;
        };
        s.clock += 1;
        s.blocks[i] = (len, addr, s.clock);
        s.bytes += len;
        true
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

impl Slots {
    /// Empties slot `i`, returning its `(address, length)`.
    fn remove(&mut self, i: usize) -> (usize, usize) {
        let (len, addr, _) = std::mem::take(&mut self.blocks[i]);
        self.bytes -= len;
        (addr, len)
    }
}
