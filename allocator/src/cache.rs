//! Per-CPU caches: the lock-free fast path.
//!
//! Each CPU has, per size class, a LIFO list of free objects linked through
//! their first word, with a count. `alloc` pops, `free` pushes; when a list
//! is empty it is refilled with a batch from the class's depot, and when it
//! grows past two batches one batch goes back. No lock is shared with other
//! CPUs: the cache is claimed with a try-lock flag only its own CPU (or an
//! interrupt handler on it) ever contends for, and a caller that finds the
//! flag taken uses the depot directly. The fields are atomics accessed with
//! `Relaxed` ordering (plain moves on x86); the flag's acquire/release
//! orders them.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering, compiler_fence};

use crate::class::NUM_CLASSES;
use crate::raw;

/// One class's free list in a CPU cache.
#[derive(Debug)]
pub(crate) struct FreeList {
    head: AtomicUsize,
    count: AtomicUsize,
}

impl FreeList {
    const fn new() -> Self {
        Self {
            head: AtomicUsize::new(0),
            count: AtomicUsize::new(0),
        }
    }

    /// Objects in the list.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Pops an object (owner only).
    #[inline(always)]
    pub(crate) fn pop(&self) -> Option<usize> {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return None;
        }
        let object = self.head.load(Ordering::Relaxed);
        self.head.store(raw::load(object), Ordering::Relaxed);
        self.count.store(count - 1, Ordering::Relaxed);
        Some(object)
    }

    /// Pushes an object; returns the new length (owner only).
    #[inline(always)]
    pub(crate) fn push(&self, object: usize) -> usize {
        raw::store(object, self.head.load(Ordering::Relaxed));
        self.head.store(object, Ordering::Relaxed);
        let count = self.count.load(Ordering::Relaxed) + 1;
        self.count.store(count, Ordering::Relaxed);
        count
    }

    /// Replaces an empty list with `count` objects starting at `head`.
    pub(crate) fn fill(&self, head: usize, count: usize) {
        debug_assert_eq!(self.len(), 0);
        self.head.store(head, Ordering::Relaxed);
        self.count.store(count, Ordering::Relaxed);
    }
}

/// The cache of one CPU.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct CpuCache {
    busy: AtomicBool,
    /// Live bytes allocated minus freed through this cache (wrapping: a
    /// block freed on another CPU makes one cache go "negative").
    live_bytes: AtomicUsize,
    pub(crate) lists: [FreeList; NUM_CLASSES],
}

/// Proof that the caller holds a CPU cache; releases it on drop.
#[derive(Debug)]
pub(crate) struct Claimed<'a>(&'a CpuCache);

impl Drop for Claimed<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

impl<'a> Claimed<'a> {
    /// The claimed cache.
    #[inline(always)]
    pub(crate) fn cache(&self) -> &'a CpuCache {
        self.0
    }
}

impl CpuCache {
    pub(crate) const fn new() -> Self {
        Self {
            busy: AtomicBool::new(false),
            live_bytes: AtomicUsize::new(0),
            lists: [const { FreeList::new() }; NUM_CLASSES],
        }
    }

    /// Claims the cache, or `None` if it is in use (re-entry from an
    /// interrupt handler, or another CPU given the same id).
    ///
    /// With `exclusive` the embedder has promised that no other CPU uses
    /// this cache at the same time (`SlabAllocator::init_exclusive`), so
    /// the only contender is an interrupt handler on this CPU, which runs
    /// between two instructions: a plain load and store of the flag, kept in
    /// order by compiler fences, suffice. Otherwise it is an atomic swap.
    #[inline(always)]
    pub(crate) fn claim(&self, exclusive: bool) -> Option<Claimed<'_>> {
        if exclusive {
            if self.busy.load(Ordering::Relaxed) {
                return None;
            }
            self.busy.store(true, Ordering::Relaxed);
            compiler_fence(Ordering::SeqCst);
            return Some(Claimed(self));
        }
        if self.busy.swap(true, Ordering::Acquire) {
            None
        } else {
            Some(Claimed(self))
        }
    }

    /// Adds `delta` (two's complement for a decrease) to the live bytes.
    #[inline(always)]
    pub(crate) fn add_live(&self, _claimed: &Claimed<'_>, delta: usize) {
        let live = self.live_bytes.load(Ordering::Relaxed);
        self.live_bytes
            .store(live.wrapping_add(delta), Ordering::Relaxed);
    }

    /// Live-bytes contribution of this cache (wrapping).
    pub(crate) fn live_bytes(&self) -> usize {
        self.live_bytes.load(Ordering::Relaxed)
    }
}
