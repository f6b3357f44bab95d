//! [`ArenaPages`]: a buddy page allocator over one fixed arena, usable as a
//! [`PageSource`].
//!
//! Host tests, benchmarks and the fuzz target use it in place of the
//! kernel's frame allocator; it also shows the contract a page source
//! keeps. Blocks are powers of two pages, split and coalesced with their
//! buddy as usual; a request of `n` pages takes the smallest block that
//! fits and gives the tail beyond `n` back at once, so runs cost exactly
//! their page count. Free blocks are linked through their first two words;
//! one byte per page (at the arena's start) records the order of the free
//! block starting there.

use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::class::PAGE_SIZE;
use crate::raw;
use crate::source::PageSource;

const ORDERS: usize = 32;

/// A buddy allocator of 4 KiB pages over an arena it owns.
#[derive(Debug)]
pub struct ArenaPages {
    /// First page handed out.
    base: usize,
    /// Pages handed out from `base` on.
    pages: usize,
    /// One byte per page: `order + 1` of the free block starting there.
    orders: usize,
    heads: spin::Mutex<[usize; ORDERS]>,
    free_pages: AtomicUsize,
}

impl ArenaPages {
    /// Takes over `arena` (any alignment; the unaligned head and tail are
    /// not used, nor is the per-page table at its start).
    pub fn new(arena: &'static mut [MaybeUninit<u8>]) -> Self {
        let start = arena.as_mut_ptr().expose_provenance();
        let end = start + arena.len();
        let first = start.next_multiple_of(PAGE_SIZE);
        let total = end.saturating_sub(first) / PAGE_SIZE;
        // Solve table + pages ≤ total with one byte per page.
        let table_pages = total.div_ceil(PAGE_SIZE + 1);
        let pages = total - table_pages;
        let this = Self {
            base: first + table_pages * PAGE_SIZE,
            pages,
            orders: first,
            heads: spin::Mutex::new([0; ORDERS]),
            free_pages: AtomicUsize::new(0),
        };
        if pages > 0 {
            raw::zero(first, pages);
            this.free_range(&mut this.heads.lock(), 0, pages);
        }
        this
    }

    /// Pages the arena can hand out.
    pub fn total_pages(&self) -> usize {
        self.pages
    }

    /// Pages free now.
    pub fn free_pages(&self) -> usize {
        self.free_pages.load(Ordering::Relaxed)
    }

    fn order_at(&self, page: usize) -> Option<usize> {
        match raw::load_u8(self.orders + page) {
            0 => None,
            order => Some(order as usize - 1),
        }
    }

    fn push(&self, heads: &mut [usize; ORDERS], page: usize, order: usize) {
        let addr = self.base + page * PAGE_SIZE;
        let next = heads[order];
        raw::store(addr, next);
        raw::store(addr + 8, 0);
        if next != 0 {
            raw::store(next + 8, addr);
        }
        heads[order] = addr;
        raw::store_u8(self.orders + page, order as u8 + 1);
    }

    fn remove(&self, heads: &mut [usize; ORDERS], page: usize, order: usize) {
        let addr = self.base + page * PAGE_SIZE;
        let (next, prev) = (raw::load(addr), raw::load(addr + 8));
        if prev == 0 {
            heads[order] = next;
        } else {
            raw::store(prev, next);
        }
        if next != 0 {
            raw::store(next + 8, prev);
        }
        raw::store_u8(self.orders + page, 0);
    }

    /// Frees the aligned block of `1 << order` pages at `page`, merging it
    /// with free buddies.
    fn free_block(&self, heads: &mut [usize; ORDERS], mut page: usize, mut order: usize) {
        while order + 1 < ORDERS {
            let buddy = page ^ (1 << order);
            if buddy + (1 << order) > self.pages || self.order_at(buddy) != Some(order) {
                break;
            }
            self.remove(heads, buddy, order);
            page = page.min(buddy);
            order += 1;
        }
        self.push(heads, page, order);
    }

    /// The free block `(start, order)` that holds `page`, if `page` is free.
    fn free_block_at(&self, page: usize) -> Option<(usize, usize)> {
        (0..ORDERS).find_map(|order| {
            let start = page & !((1 << order) - 1);
            (start + (1 << order) <= self.pages && self.order_at(start) == Some(order))
                .then_some((start, order))
        })
    }

    /// Takes pages `from..to` out of the free blocks that hold them, if all
    /// of them are free; the parts of those blocks past `to` stay free.
    fn take_range(&self, heads: &mut [usize; ORDERS], from: usize, to: usize) -> bool {
        if to > self.pages {
            return false;
        }
        // Check first, change nothing unless every page is free. A free
        // block never holds an allocated page, so the block holding `from`
        // starts at `from` or later only if `from` is its start; blocks
        // never straddle `from` because `from - 1` is allocated.
        let mut page = from;
        while page < to {
            match self.free_block_at(page) {
                Some((start, order)) if start == page => page = start + (1 << order),
                _ => return false,
            }
        }
        let end = page;
        let mut page = from;
        while page < end {
            let (_, order) = self.free_block_at(page).expect("checked free above");
            self.remove(heads, page, order);
            page += 1 << order;
        }
        self.free_pages.fetch_sub(end - from, Ordering::Relaxed);
        if end > to {
            self.free_range(heads, to, end - to);
        }
        true
    }

    /// Frees pages `page..page + count`, as maximal aligned blocks.
    fn free_range(&self, heads: &mut [usize; ORDERS], mut page: usize, mut count: usize) {
        self.free_pages.fetch_add(count, Ordering::Relaxed);
        while count > 0 {
            let by_alignment = if page == 0 {
                ORDERS - 1
            } else {
                page.trailing_zeros() as usize
            };
            let order = by_alignment.min(count.ilog2() as usize);
            self.free_block(heads, page, order);
            page += 1 << order;
            count -= 1 << order;
        }
    }
}

// SAFETY: `ArenaPages` owns its arena (it took a `&'static mut`); a run is
// handed out only while its pages are in no free list, so runs never
// overlap, and the lock serialises all list updates. It has no interrupt
// masking, so it is for the host, or for a guest whose interrupt handlers
// do not allocate.
#[expect(unsafe_code, reason = "implementing the unsafe PageSource contract")]
unsafe impl PageSource for ArenaPages {
    fn alloc_pages(&self, count: usize) -> Option<NonNull<u8>> {
        if count == 0 || count > self.pages {
            return None;
        }
        let order = count.next_power_of_two().trailing_zeros() as usize;
        let mut heads = self.heads.lock();
        let mut found = (order..ORDERS).find(|&o| heads[o] != 0)?;
        let page = (heads[found] - self.base) / PAGE_SIZE;
        self.remove(&mut heads, page, found);
        while found > order {
            found -= 1;
            self.push(&mut heads, page + (1 << found), found);
        }
        self.free_pages.fetch_sub(1 << order, Ordering::Relaxed);
        if count < 1 << order {
            self.free_range(&mut heads, page + count, (1 << order) - count);
        }
        NonNull::new(raw::pointer(self.base + page * PAGE_SIZE))
    }

    #[expect(unsafe_code, reason = "implementing the unsafe PageSource contract")]
    unsafe fn free_pages(&self, ptr: NonNull<u8>, count: usize) {
        let addr = raw::expose(ptr);
        debug_assert!(addr >= self.base && (addr - self.base).is_multiple_of(PAGE_SIZE));
        let page = (addr - self.base) / PAGE_SIZE;
        assert!(
            page + count <= self.pages,
            "ArenaPages: freed run outside the arena"
        );
        self.free_range(&mut self.heads.lock(), page, count);
    }

    #[expect(unsafe_code, reason = "implementing the unsafe PageSource contract")]
    unsafe fn grow_pages(&self, ptr: NonNull<u8>, count: usize, new_count: usize) -> bool {
        let addr = raw::expose(ptr);
        debug_assert!(addr >= self.base && (addr - self.base).is_multiple_of(PAGE_SIZE));
        let page = (addr - self.base) / PAGE_SIZE;
        let (Some(from), Some(to)) = (page.checked_add(count), page.checked_add(new_count)) else {
            return false;
        };
        from < to && self.take_range(&mut self.heads.lock(), from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;
    use std::vec::Vec;

    fn arena(bytes: usize) -> &'static mut [MaybeUninit<u8>] {
        Box::leak(Box::new_uninit_slice(bytes))
    }

    #[test]
    fn hands_out_exact_runs_and_takes_them_back() {
        let pages = ArenaPages::new(arena(64 * PAGE_SIZE + 100));
        let total = pages.total_pages();
        assert!(total >= 60);
        assert_eq!(pages.free_pages(), total);
        let a = pages.alloc_pages(3).unwrap();
        let b = pages.alloc_pages(5).unwrap();
        assert_eq!(pages.free_pages(), total - 8);
        assert_eq!(a.as_ptr() as usize % PAGE_SIZE, 0);
        let (a0, b0) = (a.as_ptr() as usize, b.as_ptr() as usize);
        assert!(a0 + 3 * PAGE_SIZE <= b0 || b0 + 5 * PAGE_SIZE <= a0);
        raw::free_pages(&pages, raw::expose(a), 3);
        raw::free_pages(&pages, raw::expose(b), 5);
        assert_eq!(pages.free_pages(), total);
        // Everything merged back: the whole arena is one run again.
        let largest = 1 << total.ilog2();
        let all = pages.alloc_pages(largest).unwrap();
        raw::free_pages(&pages, raw::expose(all), largest);
    }

    fn grow(pages: &ArenaPages, run: NonNull<u8>, count: usize, new_count: usize) -> bool {
        #[expect(unsafe_code, reason = "the PageSource method under test")]
        // SAFETY: `run` is a live run of `count` pages from `pages`.
        unsafe {
            pages.grow_pages(run, count, new_count)
        }
    }

    #[test]
    fn runs_grow_exactly_when_the_next_pages_are_free() {
        let pages = ArenaPages::new(arena(256 * PAGE_SIZE + 100));
        let total = pages.total_pages();
        let mut runs: Vec<(NonNull<u8>, usize)> = (1..=12)
            .map(|n| (pages.alloc_pages(n).unwrap(), n))
            .collect();
        // Free every third run, to leave holes of several sizes.
        for i in (0..runs.len()).rev().step_by(3) {
            let (run, n) = runs.remove(i);
            raw::free_pages(&pages, raw::expose(run), n);
        }
        let (mut grown, mut refused) = (0, 0);
        for extra in [1, 2, 5, 9] {
            for (run, n) in &mut runs {
                let first = (raw::expose(*run) - pages.base) / PAGE_SIZE;
                let (from, to) = (first + *n, first + *n + extra);
                let free = to <= total && (from..to).all(|p| pages.free_block_at(p).is_some());
                let before = pages.free_pages();
                assert_eq!(grow(&pages, *run, *n, *n + extra), free, "run at {first}");
                if free {
                    *n += extra;
                    grown += 1;
                    assert_eq!(pages.free_pages(), before - extra);
                } else {
                    refused += 1;
                    assert_eq!(pages.free_pages(), before);
                }
            }
        }
        assert!(grown > 0 && refused > 0, "{grown} grown, {refused} refused");
        for (run, n) in runs {
            raw::free_pages(&pages, raw::expose(run), n);
        }
        assert_eq!(pages.free_pages(), total);
        let largest = 1 << total.ilog2();
        let all = pages.alloc_pages(largest).unwrap();
        raw::free_pages(&pages, raw::expose(all), largest);
    }

    #[test]
    fn runs_out_and_recovers() {
        let pages = ArenaPages::new(arena(16 * PAGE_SIZE));
        let total = pages.total_pages();
        let mut runs = Vec::new();
        while let Some(run) = pages.alloc_pages(1) {
            runs.push(run);
        }
        assert_eq!(runs.len(), total);
        assert!(pages.alloc_pages(1).is_none());
        for run in runs {
            raw::free_pages(&pages, raw::expose(run), 1);
        }
        assert!(pages.alloc_pages(1 << total.ilog2()).is_some());
    }
}
