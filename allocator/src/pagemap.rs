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
//!
//! Nodes are taken from the page source two pages at a time (one run, the
//! second page kept as the next node): a lone metadata page that is never
//! freed would otherwise strand the page next to it in a buddy page source,
//! which then cannot serve a two-page run there again (after a fill and
//! free-all of small objects, 8 KiB blocks could not use those pages).

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
    /// Pages holding interior and leaf nodes (the spare included).
    node_pages: AtomicUsize,
    /// A zeroed page for the next node (0 = none).
    spare: AtomicUsize,
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
            spare: AtomicUsize::new(0),
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
        let fresh = self.node_page(pages)?;
        match slot.compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Some(fresh),
            Err(winner) => {
                self.put_spare(fresh);
                Some(winner)
            }
        }
    }

    /// A zeroed page for a node: the spare, or the first of a fresh
    /// two-page run whose second page becomes the spare (one page if the
    /// source has no two-page run).
    fn node_page(&self, pages: &dyn PageSource) -> Option<usize> {
        let spare = self.spare.swap(0, Ordering::Acquire);
        if spare != 0 {
            return Some(spare);
        }
        if let Some(run) = pages.alloc_pages(2) {
            let run = raw::expose(run);
            raw::zero(run, 2 * PAGE_SIZE);
            self.node_pages.fetch_add(2, Ordering::Relaxed);
            self.put_spare(run + PAGE_SIZE);
            return Some(run);
        }
        let page = raw::expose(pages.alloc_pages(1)?);
        raw::zero(page, PAGE_SIZE);
        self.node_pages.fetch_add(1, Ordering::Relaxed);
        Some(page)
    }

    /// Keeps a zeroed node page for later. If another spare got there first
    /// (two CPUs growing the tree at once) the page stays unused: nodes
    /// are never freed (half of a run cannot be), and it is counted.
    fn put_spare(&self, page: usize) {
        let _ = self
            .spare
            .compare_exchange(0, page, Ordering::Release, Ordering::Relaxed);
    }
}
