//! The page map: a radix tree from a page's address to the slab descriptor
//! (or large-run record, or best-fit chunk) that owns it, for O(1)
//! metadata lookup from any object address.
//!
//! Four levels of 512 entries (9 bits each) cover the 36-bit page numbers
//! of a 48-bit address space, like x86-64 page tables. The root lives in
//! the allocator; the other nodes are single pages from the page source,
//! created on demand and given back as soon as they hold no entry (issue
//! 16, item 5: after a heap is emptied the whole tree goes back, so the
//! pages a leaf took — one 4 KiB leaf per 2 MiB of heap — serve large
//! runs again). An entry pointing at a node carries, in its low 12 bits,
//! how many non-zero entries that node holds (at most 512; nodes are
//! page-aligned), so a node is known to be empty without scanning it.
//!
//! Lookups ([`get`](PageMap::get)) take no lock: an entry a caller looks
//! up belongs to a block it holds, so every node on the way holds at
//! least that entry and cannot be given back meanwhile. Lookups of an
//! address that may not be mapped (the debug builds' checks of a pointer
//! being freed) use [`get_checked`](PageMap::get_checked), under the lock.
//! Changes take one spin lock, with interrupts masked; the page source is
//! never called under it: a missing node is allocated with the lock
//! dropped, then the change is retried. One node page given up (emptied,
//! or allocated by a CPU that lost the race) is kept as a spare for the
//! next node, so a leaf that empties and fills again does not go back and
//! forth to the page source; `trim` returns it.
//!
//! Before, nodes were never returned and came in two-page runs (a lone
//! metadata page that is never freed strands the page next to it in a buddy
//! page source); nodes that go back when empty strand nothing for longer
//! than the blocks around them. Large runs have no entry in release builds
//! (the layout gives their size), so a heap of large runs needs no node.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::class::PAGE_SIZE;
use crate::heap::Env;
use crate::raw;

const FANOUT: usize = 512;
const ADDRESS_MASK: usize = (1 << 48) - 1;
/// Low bits of an entry pointing at a node: the node's non-zero entries.
const COUNT_MASK: usize = PAGE_SIZE - 1;

const _: () = assert!(FANOUT <= COUNT_MASK);

/// Radix tree from page address to a non-zero tag (0 = not ours).
#[derive(Debug)]
pub(crate) struct PageMap {
    root: [AtomicUsize; FANOUT],
    /// Serialises every change (lookups take no lock).
    lock: spin::Mutex<()>,
    /// Pages holding interior and leaf nodes (the spare included).
    node_pages: AtomicUsize,
    /// The last node given up, zeroed, kept for the next one (0 = none);
    /// [`take_spare`](Self::take_spare) returns it.
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

/// Up to three fresh zeroed node pages, allocated with no lock held.
struct Fresh {
    pages: [usize; 3],
    count: usize,
}

impl Fresh {
    const fn new() -> Self {
        Self {
            pages: [0; 3],
            count: 0,
        }
    }

    fn pop(&mut self) -> usize {
        self.count -= 1;
        self.pages[self.count]
    }
}

impl PageMap {
    pub(crate) const fn new() -> Self {
        Self {
            root: [const { AtomicUsize::new(0) }; FANOUT],
            lock: spin::Mutex::new(()),
            node_pages: AtomicUsize::new(0),
            spare: AtomicUsize::new(0),
        }
    }

    /// Pages the tree's nodes occupy.
    pub(crate) fn node_pages(&self) -> usize {
        self.node_pages.load(Ordering::Relaxed)
    }

    /// The entry for the page holding `addr`, or 0, without the lock.
    ///
    /// The caller must hold a block on that page whose entry is set and
    /// stays set for the call (a live object, a free object of a slab it
    /// holds in a list, a chunk or run it owns): then no node on the way
    /// can be given back meanwhile. For any other address use
    /// [`get_checked`](Self::get_checked).
    #[inline]
    pub(crate) fn get(&self, addr: usize) -> usize {
        let [a, b, c, d] = indices(addr);
        let mut node = self.root[a].load(Ordering::Acquire) & !COUNT_MASK;
        for index in [b, c] {
            if node == 0 {
                return 0;
            }
            node = raw::atomic(node + index * 8).load(Ordering::Acquire) & !COUNT_MASK;
        }
        if node == 0 {
            return 0;
        }
        raw::atomic(node + d * 8).load(Ordering::Acquire)
    }

    /// The entry for the page holding any address, or 0: [`get`](Self::get)
    /// under the lock, so that no node goes back during the walk.
    pub(crate) fn get_checked(&self, env: &Env, addr: usize) -> usize {
        let irq = env.cpu.irq_save();
        let entry = {
            let _guard = self.lock.lock();
            self.get(addr)
        };
        env.cpu.irq_restore(irq);
        entry
    }

    /// Sets the entries of the `pages` pages from `start` to `value` (≠ 0),
    /// creating nodes as needed. Returns `false` (and changes nothing
    /// visible) if a node could not be allocated: the entries set so far
    /// are cleared again, so they must have been 0 before, unless their
    /// nodes existed (then no allocation can fail). Call with no lock held.
    pub(crate) fn set(&self, env: &Env, start: usize, pages: usize, value: usize) -> bool {
        debug_assert!(value != 0);
        let mut fresh = Fresh::new();
        let mut done = 0;
        while done < pages {
            let irq = env.cpu.irq_save();
            let missing = {
                let _guard = self.lock.lock();
                loop {
                    if done == pages {
                        break 0;
                    }
                    match self.set_locked(start + done * PAGE_SIZE, value, &mut fresh) {
                        0 => done += 1,
                        missing => break missing,
                    }
                }
            };
            env.cpu.irq_restore(irq);
            while fresh.count < missing {
                let spare = self.spare.swap(0, Ordering::Acquire);
                if spare != 0 {
                    fresh.pages[fresh.count] = spare;
                    fresh.count += 1;
                    continue;
                }
                let Some(page) = env.pages.alloc_pages(1) else {
                    self.release_fresh(env, &mut fresh);
                    self.clear(env, start, done);
                    return false;
                };
                let page = raw::expose(page);
                raw::zero(page, PAGE_SIZE);
                self.node_pages.fetch_add(1, Ordering::Relaxed);
                fresh.pages[fresh.count] = page;
                fresh.count += 1;
            }
        }
        self.release_fresh(env, &mut fresh);
        true
    }

    /// Sets one entry under the lock, installing nodes from `fresh`.
    /// Returns 0, or (changing nothing) how many nodes the path lacks when
    /// `fresh` has fewer.
    fn set_locked(&self, addr: usize, value: usize, fresh: &mut Fresh) -> usize {
        let [a, b, c, d] = indices(addr);
        // Count the missing nodes first, so that nothing is installed
        // unless the whole path can be.
        let mut missing = 0;
        let mut node = self.root[a].load(Ordering::Relaxed) & !COUNT_MASK;
        for index in [b, c] {
            if node == 0 {
                missing += 1;
            } else {
                node = raw::atomic(node + index * 8).load(Ordering::Relaxed) & !COUNT_MASK;
            }
        }
        if node == 0 {
            missing += 1;
        }
        if missing > fresh.count {
            return missing;
        }
        let s0 = &self.root[a];
        let s1 = raw::atomic(Self::child(s0, None, fresh) + b * 8);
        let s2 = raw::atomic(Self::child(s1, Some(s0), fresh) + c * 8);
        let leaf = Self::child(s2, Some(s1), fresh);
        if raw::atomic(leaf + d * 8).swap(value, Ordering::AcqRel) == 0 {
            s2.store(s2.load(Ordering::Relaxed) + 1, Ordering::Release);
        }
        0
    }

    /// The node `slot` points to, installed from `fresh` if absent (and
    /// then counted in `parent`, the entry pointing at the node that holds
    /// `slot`; the root is not counted). Under the lock.
    fn child(slot: &AtomicUsize, parent: Option<&AtomicUsize>, fresh: &mut Fresh) -> usize {
        let entry = slot.load(Ordering::Relaxed);
        if entry != 0 {
            return entry & !COUNT_MASK;
        }
        let node = fresh.pop();
        // Zeroed before the lock was taken; the release store publishes
        // it to lock-free lookups. Every later change of a count is a
        // release store too, so a lookup that reads it also sees the
        // zeroed node.
        slot.store(node, Ordering::Release);
        if let Some(parent) = parent {
            parent.store(parent.load(Ordering::Relaxed) + 1, Ordering::Release);
        }
        node
    }

    /// Clears the entries of the `pages` pages from `start` (absent ones are
    /// skipped) and gives back the nodes left empty. Call with no lock held.
    pub(crate) fn clear(&self, env: &Env, start: usize, pages: usize) {
        let mut emptied = 0;
        let irq = env.cpu.irq_save();
        {
            let _guard = self.lock.lock();
            for page in 0..pages {
                self.clear_locked(start + page * PAGE_SIZE, &mut emptied);
            }
        }
        env.cpu.irq_restore(irq);
        while emptied != 0 {
            let next = raw::load(emptied);
            raw::store(emptied, 0);
            self.give_up(env, emptied);
            emptied = next;
        }
    }

    /// Clears one entry under the lock; nodes it leaves empty are unlinked
    /// and chained onto `emptied` through their first word.
    fn clear_locked(&self, addr: usize, emptied: &mut usize) {
        let [a, b, c, d] = indices(addr);
        let s0 = &self.root[a];
        let mut node = s0.load(Ordering::Relaxed) & !COUNT_MASK;
        let mut slots = [s0; 3];
        for (level, index) in [b, c].into_iter().enumerate() {
            if node == 0 {
                return;
            }
            slots[level + 1] = raw::atomic(node + index * 8);
            node = slots[level + 1].load(Ordering::Relaxed) & !COUNT_MASK;
        }
        if node == 0 || raw::atomic(node + d * 8).swap(0, Ordering::AcqRel) == 0 {
            return;
        }
        // One entry less in the leaf, then upwards: a node whose count
        // reaches 0 is unlinked, and its parent counts one entry less.
        for slot in slots.into_iter().rev() {
            let entry = slot.load(Ordering::Relaxed);
            debug_assert!(entry & COUNT_MASK != 0, "page map: count out of step");
            if entry & COUNT_MASK != 1 {
                slot.store(entry - 1, Ordering::Release);
                return;
            }
            // The node holds no entry, so no lock-free lookup can be
            // walking it (a lookup holds an entry below): it may go.
            slot.store(0, Ordering::Release);
            let node = entry & !COUNT_MASK;
            raw::store(node, *emptied);
            *emptied = node;
        }
    }

    /// Gives back fresh node pages a change did not use (another CPU
    /// installed the node first, or the change failed).
    fn release_fresh(&self, env: &Env, fresh: &mut Fresh) {
        while fresh.count > 0 {
            let page = fresh.pop();
            self.give_up(env, page);
        }
    }

    /// A zeroed node page no longer in the tree: kept as the spare, or
    /// given back if there is one.
    fn give_up(&self, env: &Env, page: usize) {
        if self
            .spare
            .compare_exchange(0, page, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.node_pages.fetch_sub(1, Ordering::Relaxed);
            raw::free_pages(env.pages, page, 1);
        }
    }

    /// Gives the spare node page back (for `trim`).
    pub(crate) fn take_spare(&self, env: &Env) {
        let spare = self.spare.swap(0, Ordering::Acquire);
        if spare != 0 {
            self.node_pages.fetch_sub(1, Ordering::Relaxed);
            raw::free_pages(env.pages, spare, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::ArenaPages;
    use crate::source::{PageSource, SingleCpu};
    use std::boxed::Box;

    /// A page source over `pages` pages (and its table page) that start on
    /// a 2 MiB boundary, so that they all lie under one leaf: the tests
    /// count nodes, and an arena the host placed across a boundary took a
    /// second leaf (a flaky failure, more likely as other tests changed
    /// the host heap's layout).
    fn env(pages: usize) -> (Env, &'static ArenaPages) {
        const LEAF_SPAN: usize = FANOUT * PAGE_SIZE;
        let bytes = (pages + 1) * PAGE_SIZE;
        assert!(bytes <= LEAF_SPAN);
        let buffer = Box::leak(Box::new_uninit_slice(bytes + LEAF_SPAN));
        let start = buffer.as_ptr().addr();
        let skip = start.next_multiple_of(LEAF_SPAN) - start;
        let arena = &mut buffer[skip..skip + bytes];
        let source: &'static ArenaPages = Box::leak(Box::new(ArenaPages::new(arena)));
        (Env::for_tests(source, &SingleCpu), source)
    }

    fn run(source: &ArenaPages, pages: usize) -> usize {
        raw::expose(source.alloc_pages(pages).unwrap())
    }

    #[test]
    fn nodes_go_back_when_their_last_entry_is_cleared() {
        let (env, source) = env(64);
        let map = PageMap::new();
        let (a, b) = (run(source, 2), run(source, 1));
        let free = source.free_pages();
        // An address in another leaf under the same interior nodes (the
        // map never touches the pages it maps).
        let far = a ^ (1 << 21);
        assert!(map.set(&env, a, 2, 8));
        assert!(map.set(&env, b, 1, 16));
        assert_eq!(map.node_pages(), 3, "two interior nodes and a leaf");
        assert!(map.set(&env, far, 1, 24));
        assert_eq!(map.node_pages(), 4, "a second leaf");
        assert_eq!(
            (map.get(a + PAGE_SIZE), map.get(b), map.get(far)),
            (8, 16, 24)
        );
        // Clearing the far page empties its leaf, kept as the spare.
        map.clear(&env, far, 1);
        assert_eq!(map.get(far), 0);
        assert_eq!(map.node_pages(), 4, "three in use and the spare");
        map.clear(&env, a, 2);
        assert_eq!(map.node_pages(), 4, "`b` still holds the leaf");
        assert_eq!(map.get(b), 16);
        map.clear(&env, b, 1);
        assert_eq!(map.node_pages(), 1, "only the spare is left");
        assert_eq!(map.get_checked(&env, b), 0);
        map.take_spare(&env);
        assert_eq!(map.node_pages(), 0);
        assert_eq!(source.free_pages(), free);
    }

    #[test]
    fn a_set_that_runs_out_of_pages_changes_nothing() {
        let (env, source) = env(8);
        let map = PageMap::new();
        let a = run(source, 2);
        while source.free_pages() > 2 {
            run(source, 1);
        }
        let free = source.free_pages();
        // Three nodes are needed and two pages are left.
        assert!(!map.set(&env, a, 2, 8));
        assert_eq!(map.get_checked(&env, a), 0);
        map.take_spare(&env);
        assert_eq!((map.node_pages(), source.free_pages()), (0, free));
    }
}
