//! The page map: a radix tree from a page's address to the slab descriptor
//! (or large-run record) that owns it, for O(1) metadata lookup from any
//! object address.
//!
//! Four levels of 512 entries (9 bits each) cover the 36-bit page numbers
//! of a 48-bit address space, like x86-64 page tables. The root lives in
//! the allocator; the other nodes are pages from the page source, created
//! on demand and never freed (one 4 KiB leaf covers 2 MiB of heap). Entries
//! are atomics, so lookups take no lock; nodes are installed with a
//! compare-and-swap.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::class::PAGE_SIZE;
use crate::raw;
use crate::source::PageSource;

const FANOUT: usize = 512;
const ADDRESS_MASK: usize = (1 << 48) - 1;

/// Radix tree from page address to a non-zero tag (0 = not ours).
#[derive(Debug)]
pub(crate) struct PageMap {
    root: [AtomicUsize; FANOUT],
    /// Pages holding interior and leaf nodes.
    node_pages: AtomicUsize,
}

#[inline(always)]
fn indices(addr: usize) -> [usize; 4] {
    let page = (addr & ADDRESS_MASK) / PAGE_SIZE;
    [
        (page >> 27) % FANOUT,
        (page >> 18) % FANOUT,
        (page >> 9) % FANOUT,
        page % FANOUT,
    ]
}

impl PageMap {
    pub(crate) const fn new() -> Self {
        Self {
            root: [const { AtomicUsize::new(0) }; FANOUT],
            node_pages: AtomicUsize::new(0),
        }
    }

    /// Pages the tree's nodes occupy.
    pub(crate) fn node_pages(&self) -> usize {
        self.node_pages.load(Ordering::Relaxed)
    }

    /// The entry for the page holding `addr`, or 0.
    #[inline]
    pub(crate) fn get(&self, addr: usize) -> usize {
        let [a, b, c, d] = indices(addr);
        let mut node = self.root[a].load(Ordering::Acquire);
        for index in [b, c] {
            if node == 0 {
                return 0;
            }
            node = raw::atomic(node + index * 8).load(Ordering::Acquire);
        }
        if node == 0 {
            return 0;
        }
        raw::atomic(node + d * 8).load(Ordering::Acquire)
    }

    /// Sets the entry for the page holding `addr`, creating nodes from
    /// `pages` as needed. Returns `false` (and changes nothing visible) if a
    /// node could not be allocated. Call with no lock held.
    pub(crate) fn set(&self, pages: &dyn PageSource, addr: usize, value: usize) -> bool {
        let [a, b, c, d] = indices(addr);
        let mut slot = &self.root[a];
        for index in [b, c] {
            let node = match self.child(pages, slot) {
                Some(node) => node,
                None => return false,
            };
            slot = raw::atomic(node + index * 8);
        }
        let Some(leaf) = self.child(pages, slot) else {
            return false;
        };
        raw::atomic(leaf + d * 8).store(value, Ordering::Release);
        true
    }

    /// Clears the entry for the page holding `addr` (a no-op if absent).
    pub(crate) fn clear(&self, addr: usize) {
        let [a, b, c, d] = indices(addr);
        let mut node = self.root[a].load(Ordering::Acquire);
        for index in [b, c] {
            if node == 0 {
                return;
            }
            node = raw::atomic(node + index * 8).load(Ordering::Acquire);
        }
        if node != 0 {
            raw::atomic(node + d * 8).store(0, Ordering::Release);
        }
    }

    /// The node `slot` points to, created if absent.
    fn child(&self, pages: &dyn PageSource, slot: &AtomicUsize) -> Option<usize> {
        let node = slot.load(Ordering::Acquire);
        if node != 0 {
            return Some(node);
        }
        let fresh = raw::expose(pages.alloc_pages(1)?);
        raw::zero(fresh, PAGE_SIZE);
        match slot.compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                self.node_pages.fetch_add(1, Ordering::Relaxed);
                Some(fresh)
            }
            Err(winner) => {
                raw::free_pages(pages, fresh, 1);
                Some(winner)
            }
        }
    }
}
