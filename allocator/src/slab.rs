//! Slabs: their descriptors, the descriptor pool, and the per-class depot
//! of partial and empty slabs behind the per-CPU caches.
//!
//! A slab is a run of `SLAB_PAGES[class]` pages cut into equal objects
//! starting at the (page-aligned) first byte. Its descriptor lives in the
//! slab's tail, past its last object, when the tail has room for one
//! ([`DESC_IN_TAIL`]; about half the classes), else apart, in a descriptor
//! page; either way objects keep their natural alignment. The page map
//! points each of the slab's pages at it. Inside the slab, free objects
//! form a singly linked list through their first word, and objects never
//! handed out yet are carved lazily from a bump index.
//!
//! The [`Depot`] of a class, behind a spin lock, keeps the partial slabs
//! (some objects free) in eight lists by occupancy (objects out ÷ slab
//! capacity, in eighths), with a bit mask of the non-empty ones; refills
//! take from the fullest, so allocation fills nearly full slabs and nearly
//! empty ones drain. A slab that becomes empty goes back to the page
//! source unless the reserve of empty slabs (at most [`RESERVE_PAGES`]
//! pages over all classes) has room for it. A depot also lends free
//! objects of its partial slabs to the classes just below it
//! ([`DepotInner::lend`]); they come back to it through `give`.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::descpool::DescPool;

use crate::class::{
    CLASS_BYTES, MAX_OBJECTS_PER_SLAB, NUM_CLASSES, PAGE_SIZE, SLAB_OBJECTS, SLAB_PAGES,
};
use crate::heap::Env;
use crate::pagemap::PageMap;
use crate::raw;

/// Pages of empty slabs kept over all classes instead of returning them to
/// the page source (cheap refills when a class hovers at a slab boundary).
pub(crate) const RESERVE_PAGES: usize = 8;

/// Bytes per descriptor: 8 words, plus a 512-bit allocated-object bitmap in
/// debug builds (for double-free detection).
pub(crate) const DESC_BYTES: usize = if cfg!(debug_assertions) { 128 } else { 64 };

// Word offsets in a descriptor.
const BASE: usize = 0;
const CLASS: usize = 8;
const FREE: usize = 16;
const CARVED: usize = 24;
const IN_USE: usize = 32;
const NEXT: usize = 40;
const PREV: usize = 48;
const STATE: usize = 56;
const BITMAP: usize = 64;

// A slab's state (`STATE`), which is also the index of its list in the
// depot. In no list: every object is out (in CPU caches or with callers).
const FULL: usize = 0;
/// In the empty reserve.
const EMPTY: usize = 1;
/// Partial, in the list of occupancy bucket `STATE - PARTIAL`.
const PARTIAL: usize = 2;
/// Occupancy buckets of partial slabs.
const BUCKETS: usize = 8;
const LISTS: usize = PARTIAL + BUCKETS;

/// Whether the slabs of each class keep their descriptor in their tail (the
/// bytes no object fits in, at the slab's end) instead of in a descriptor
/// page. At the heap-efficiency workload's first failure about 360 slabs
/// were in use: half of them carry their own descriptor this way, and the
/// descriptor pages went from six to three.
pub(crate) const DESC_IN_TAIL: [bool; NUM_CLASSES] = {
    let mut out = [false; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        let tail = SLAB_PAGES[c] * PAGE_SIZE - SLAB_OBJECTS[c] * CLASS_BYTES[c];
        out[c] = tail >= DESC_BYTES;
        c += 1;
    }
    out
};

/// A slab descriptor, by address (a word in the page map points at it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Desc(pub(crate) usize);

impl Desc {
    fn get(self, field: usize) -> usize {
        raw::load(self.0 + field)
    }
    fn set(self, field: usize, value: usize) {
        raw::store(self.0 + field, value);
    }
    /// First byte of the slab.
    pub(crate) fn base(self) -> usize {
        self.get(BASE)
    }
    /// Size class of the slab.
    pub(crate) fn class(self) -> usize {
        self.get(CLASS)
    }

    /// Debug builds: marks object `index` as handed to a caller; returns
    /// whether it already was.
    pub(crate) fn mark_allocated(self, index: usize) -> bool {
        let word = raw::atomic(self.0 + BITMAP + index / 64 * 8);
        word.fetch_or(1 << (index % 64), Ordering::Relaxed) & (1 << (index % 64)) != 0
    }

    /// Debug builds: marks object `index` free; returns whether it was
    /// allocated.
    pub(crate) fn mark_free(self, index: usize) -> bool {
        let word = raw::atomic(self.0 + BITMAP + index / 64 * 8);
        word.fetch_and(!(1 << (index % 64)), Ordering::Relaxed) & (1 << (index % 64)) != 0
    }
}

/// A run of objects linked through their first words, `count` long; lists
/// are bounded by their count, and the last link is 0 once `take` returns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chain {
    pub(crate) head: usize,
    pub(crate) tail: usize,
    pub(crate) count: usize,
}

impl Chain {
    pub(crate) const EMPTY: Chain = Chain {
        head: 0,
        tail: 0,
        count: 0,
    };

    fn append(&mut self, head: usize, tail: usize, count: usize) {
        if self.count == 0 {
            self.head = head;
        } else {
            raw::store(self.tail, head);
        }
        self.tail = tail;
        self.count += count;
    }
}

/// Creates a slab of `class`: pages, descriptor, page-map entries. Call with
/// no lock held. `None` (with everything undone) when out of memory.
pub(crate) fn create_slab(
    env: &Env,
    map: &PageMap,
    descs: &DescPool,
    class: usize,
) -> Option<Desc> {
    let pages = SLAB_PAGES[class];
    let base = raw::expose(env.pages.alloc_pages(pages)?);
    let desc = if DESC_IN_TAIL[class] {
        // The last DESC_BYTES of the slab (64-byte aligned, as the slab
        // ends on a page boundary), past the last object.
        Desc(base + pages * PAGE_SIZE - DESC_BYTES)
    } else {
        let Some(desc) = descs.alloc(env) else {
            raw::free_pages(env.pages, base, pages);
            return None;
        };
        desc
    };
    for field in [FREE, CARVED, IN_USE, NEXT, PREV] {
        desc.set(field, 0);
    }
    desc.set(BASE, base);
    desc.set(CLASS, class);
    desc.set(STATE, FULL);
    if cfg!(debug_assertions) {
        for word in 0..MAX_OBJECTS_PER_SLAB / 64 {
            raw::atomic(desc.0 + BITMAP + word * 8).store(0, Ordering::Relaxed);
        }
    }
    if !map.set(env, base, pages, desc.0) {
        if !DESC_IN_TAIL[class] {
            descs.free(env, desc);
        }
        raw::free_pages(env.pages, base, pages);
        return None;
    }
    Some(desc)
}

/// Returns an empty slab, no longer in any depot list, to the page source.
/// Call with no lock held.
pub(crate) fn release_slab(env: &Env, map: &PageMap, descs: &DescPool, desc: Desc) {
    let base = desc.base();
    let class = desc.class();
    let pages = SLAB_PAGES[class];
    map.clear(env, base, pages);
    if !DESC_IN_TAIL[class] {
        descs.free(env, desc);
    }
    raw::free_pages(env.pages, base, pages);
}

/// The slabs of one class that are not wholly out in CPU caches and
/// callers' hands.
#[derive(Debug)]
pub(crate) struct Depot {
    pub(crate) inner: spin::Mutex<DepotInner>,
}

impl Depot {
    pub(crate) const fn new() -> Self {
        Self {
            inner: spin::Mutex::new(DepotInner {
                lists: [0; LISTS],
                filled: 0,
                empty_slabs: 0,
                slabs: 0,
                in_use: 0,
            }),
        }
    }
}

/// The lists and counters of a depot.
#[derive(Debug)]
pub(crate) struct DepotInner {
    /// Heads of the lists, indexed by state: `EMPTY` is the reserve,
    /// `PARTIAL + b` the partial slabs of occupancy bucket `b` (0 = none).
    lists: [usize; LISTS],
    /// Bit `b` set: the partial list of bucket `b` is not empty.
    filled: u32,
    /// Slabs in the empty reserve.
    pub(crate) empty_slabs: usize,
    /// Slabs of this class in existence.
    pub(crate) slabs: usize,
    /// Objects out of their slabs (in CPU caches or with callers).
    pub(crate) in_use: usize,
}

/// The occupancy bucket of a partial slab of `class` with `in_use`
/// objects out: `in_use × BUCKETS ÷ capacity` rounded down, so a slab with
/// one object out of four is in bucket 2 of 8. Computed with a multiply by
/// [`BUCKET_SCALE`] instead of a division (this runs for every object
/// that goes back to the depot).
#[inline]
fn bucket(in_use: usize, class: usize) -> usize {
    ((in_use * BUCKET_SCALE[class]) >> BUCKET_SHIFT).min(BUCKETS - 1)
}

const BUCKET_SHIFT: u32 = 20;

/// `BUCKETS × 2^BUCKET_SHIFT ÷ capacity`, rounded up: for `in_use` up to
/// 512 the error stays below `1 ÷ 2048`, less than the gap (at least
/// `1 ÷ capacity`) between `in_use × BUCKETS ÷ capacity` and the next
/// integer when it is not one, so the product rounds down the same way.
const BUCKET_SCALE: [usize; NUM_CLASSES] = {
    let mut out = [0; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        out[c] = (BUCKETS << BUCKET_SHIFT).div_ceil(SLAB_OBJECTS[c]);
        c += 1;
    }
    out
};

impl DepotInner {
    fn push_front(&mut self, list: usize, desc: Desc) {
        let head = self.lists[list];
        desc.set(NEXT, head);
        desc.set(PREV, 0);
        if head != 0 {
            Desc(head).set(PREV, desc.0);
        }
        self.lists[list] = desc.0;
        if list >= PARTIAL {
            self.filled |= 1 << (list - PARTIAL);
        }
        desc.set(STATE, list);
    }

    fn unlink(&mut self, desc: Desc) {
        let list = desc.get(STATE);
        let (next, prev) = (desc.get(NEXT), desc.get(PREV));
        if prev == 0 {
            self.lists[list] = next;
            if next == 0 && list >= PARTIAL {
                self.filled &= !(1 << (list - PARTIAL));
            }
        } else {
            Desc(prev).set(NEXT, next);
        }
        if next != 0 {
            Desc(next).set(PREV, prev);
        }
        desc.set(STATE, FULL);
    }

    /// Files a slab of `class` with `in_use` objects out (fewer than its
    /// capacity) under its occupancy bucket, moving it if it is in another
    /// list.
    fn file_partial(&mut self, desc: Desc, in_use: usize, class: usize) {
        let list = PARTIAL + bucket(in_use, class);
        let state = desc.get(STATE);
        if state == list {
            return;
        }
        if state != FULL {
            self.unlink(desc);
        }
        self.push_front(list, desc);
    }

    /// The partial slab to take objects from: one of the fullest bucket.
    fn fullest(&self) -> Option<Desc> {
        (self.filled != 0).then(|| {
            let top = (u32::BITS - 1 - self.filled.leading_zeros()) as usize;
            Desc(self.lists[PARTIAL + top])
        })
    }

    /// Adds a freshly created slab. It joins the empty list (counted in the
    /// reserve, which may exceed its bound for a moment): the `take` that
    /// follows moves it to the partial list, and if another CPU's slab
    /// served that `take` first, it stays where `trim` finds it, instead of
    /// idling in the partial list where no free would ever release it.
    pub(crate) fn add_slab(&mut self, desc: Desc, reserve: &AtomicUsize) {
        self.slabs += 1;
        self.empty_slabs += 1;
        reserve.fetch_add(SLAB_PAGES[desc.class()], Ordering::Relaxed);
        self.push_front(EMPTY, desc);
    }

    /// Takes up to `want` objects of `class`, from the fullest partial
    /// slabs first and then the empty reserve.
    ///
    /// When the first slab's free list is no longer than what is wanted, it
    /// is taken whole in O(1) (it is already linked and 0-terminated) and
    /// the batch ends there: a refill then touches no object at all, which
    /// keeps the slow path short. Otherwise objects are unlinked one by one.
    ///
    /// With `use_reserve` false only partial slabs serve.
    pub(crate) fn take(
        &mut self,
        class: usize,
        want: usize,
        reserve: &AtomicUsize,
        use_reserve: bool,
    ) -> Chain {
        let size = CLASS_BYTES[class];
        let capacity = SLAB_OBJECTS[class];
        let mut chain = Chain::EMPTY;
        let mut terminated = false;
        while chain.count < want {
            let desc = match self.fullest() {
                Some(desc) => desc,
                None => {
                    if !use_reserve {
                        break;
                    }
                    let Some(desc) = self.take_reserve(reserve) else {
                        break;
                    };
                    self.push_front(PARTIAL, desc);
                    desc
                }
            };
            let before = chain.count;
            // Objects freed back into the slab, already linked.
            let first = desc.get(FREE);
            let listed = desc.get(CARVED) - desc.get(IN_USE);
            if first != 0 && chain.count == 0 && listed <= want {
                desc.set(FREE, 0);
                chain = Chain {
                    head: first,
                    tail: 0,
                    count: listed,
                };
                terminated = true;
            } else if first != 0 {
                let mut last = first;
                let mut taken = 1;
                let mut next = raw::load(last);
                while taken < want - chain.count && next != 0 {
                    last = next;
                    next = raw::load(last);
                    taken += 1;
                }
                desc.set(FREE, next);
                chain.append(first, last, taken);
            }
            // Objects never handed out yet.
            let mut carved = desc.get(CARVED);
            let base = desc.base();
            while !terminated && chain.count < want && carved < capacity {
                let object = base + carved * size;
                chain.append(object, object, 1);
                carved += 1;
            }
            desc.set(CARVED, carved);
            let in_use = desc.get(IN_USE) + chain.count - before;
            desc.set(IN_USE, in_use);
            if in_use == capacity {
                self.unlink(desc);
            } else {
                self.file_partial(desc, in_use, class);
            }
            if terminated {
                break;
            }
        }
        if chain.count > 0 && !terminated {
            // Terminate the chain, so that every link a CPU list can read is
            // initialised (a freshly carved object's is not).
            raw::store(chain.tail, 0);
        }
        self.in_use += chain.count;
        chain
    }

    /// Lends up to `want` objects of `class` from its partial slabs (never
    /// its empty reserve) to a smaller class. With `surplus_only`, only
    /// while the partial slabs have at least a whole slab's worth of free
    /// objects: a class that is merely growing keeps its free objects, and
    /// a class left with many scattered free objects by frees shares them.
    pub(crate) fn lend(
        &mut self,
        class: usize,
        want: usize,
        reserve: &AtomicUsize,
        surplus_only: bool,
    ) -> Chain {
        let capacity = SLAB_OBJECTS[class];
        let free = (self.slabs - self.empty_slabs) * capacity - self.in_use;
        if surplus_only && free < capacity {
            return Chain::EMPTY;
        }
        self.take(class, want, reserve, false)
    }

    /// Unlinks a slab from the empty reserve (still counted in `slabs`).
    fn take_reserve(&mut self, reserve: &AtomicUsize) -> Option<Desc> {
        let head = self.lists[EMPTY];
        if head == 0 {
            return None;
        }
        let desc = Desc(head);
        self.unlink(desc);
        self.empty_slabs -= 1;
        reserve.fetch_sub(SLAB_PAGES[desc.class()], Ordering::Relaxed);
        Some(desc)
    }

    /// Removes one slab from the empty reserve, to be released.
    pub(crate) fn take_empty(&mut self, reserve: &AtomicUsize) -> Option<Desc> {
        let desc = self.take_reserve(reserve)?;
        self.slabs -= 1;
        Some(desc)
    }

    /// Puts `object` back into its slab `desc`. Returns the slab if it
    /// became empty and must go back to the page source (the caller does
    /// that after dropping the lock).
    pub(crate) fn give(
        &mut self,
        desc: Desc,
        object: usize,
        reserve: &AtomicUsize,
    ) -> Option<Desc> {
        raw::store(object, desc.get(FREE));
        desc.set(FREE, object);
        let in_use = desc.get(IN_USE) - 1;
        desc.set(IN_USE, in_use);
        self.in_use -= 1;
        let state = desc.get(STATE);
        let class = desc.class();
        if in_use == 0 {
            if state != FULL {
                self.unlink(desc);
            }
            desc.set(FREE, 0);
            desc.set(CARVED, 0);
            let pages = SLAB_PAGES[class];
            let kept = reserve.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held + pages <= RESERVE_PAGES).then_some(held + pages)
            });
            if kept.is_ok() {
                self.empty_slabs += 1;
                self.push_front(EMPTY, desc);
                return None;
            }
            self.slabs -= 1;
            return Some(desc);
        }
        self.file_partial(desc, in_use, class);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_divide_exactly() {
        for (class, &capacity) in SLAB_OBJECTS.iter().enumerate() {
            for in_use in 0..capacity {
                assert_eq!(bucket(in_use, class), in_use * BUCKETS / capacity);
            }
        }
    }
}
