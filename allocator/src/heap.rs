//! [`SlabAllocator`]: the global allocator, tying the per-CPU caches, the
//! depots, the page map and the page source together.
//!
//! ```text
//! allocate(layout) ── class ──► CPU cache list ──hit──► object
//!        │                           │ empty
//!        │                           ▼
//!        │                 depot[class] (spin lock) ──► partial slab / reserve
//!        │                           │ none
//!        │                           ▼
//!        │                 PageSource::alloc_pages (no lock held)
//!        │ 1–8 KiB, align ≤ 16 (8 B granule)
//!        └──► region (spin lock): best fit ──► block │ none: new chunk
//!                                                      from the PageSource
//! ```

use core::alloc::Layout;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::bestfit::{CARVE_ALIGN, Region};
use crate::cache::{Claimed, CpuCache, FreeList};
use crate::class::{
    BATCH, CACHE_LIMIT, CLASS_BYTES, Kind, LEND_CLASSES, NUM_CLASSES, PAGE_SIZE, REFILL,
    SLAB_PAGES, can_lend, carves_first, kind_of,
};
use crate::descpool::DescPool;
use crate::pagemap::PageMap;
use crate::raw;
use crate::slab::{self, Chain, Depot, Desc};
use crate::source::{CpuLocal, PageSource};
use crate::stats::{AllocStats, ClassStats};

mod aligned;
mod checks;
mod mid;

/// CPU caches the allocator has; `cpu_id` is folded modulo this.
pub const MAX_CPUS: usize = 16;

/// Tag of a page-map entry for a large run: `pages << 1 | LARGE`.
/// Descriptor addresses are 64-byte aligned, so their low bit is 0.
const LARGE: usize = 1;

/// Tag of a page-map entry for a page of a best-fit chunk: `chunk | CHUNK`
/// (chunks are page-aligned; bit 0 clear tells it from a large run).
/// Debug builds only: release builds leave chunk pages unmapped.
const CHUNK: usize = 2;

/// Objects returned to the depot per lock acquisition at most.
const MAX_BATCH: usize = 32;

/// What `init` installs.
#[derive(Clone, Copy)]
pub(crate) struct Env {
    pub(crate) pages: &'static dyn PageSource,
    pub(crate) cpu: &'static dyn CpuLocal,
    /// The embedder vouched that CPU ids are exclusive (`init_exclusive`).
    exclusive: bool,
}

#[cfg(test)]
impl Env {
    /// An environment for unit tests of the parts below the heap.
    pub(crate) fn for_tests(pages: &'static dyn PageSource, cpu: &'static dyn CpuLocal) -> Self {
        Self {
            pages,
            cpu,
            exclusive: false,
        }
    }
}

impl core::fmt::Debug for Env {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Env")
    }
}

/// `init` was called a second time; the first page source stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyInitialized;

/// A slab allocator for objects up to 1 KiB, a best-fit region for 1–8 KiB
/// and page runs for larger requests; usable as `#[global_allocator]`.
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: SlabAllocator = SlabAllocator::new();
/// // at boot, once the frame allocator is up:
/// ALLOC.init(&FRAMES, &KERNEL_CPU).unwrap();
/// ```
///
/// Before `init` every allocation returns null.
#[derive(Debug)]
pub struct SlabAllocator {
    env: spin::Once<Env>,
    cpus: [CpuCache; MAX_CPUS],
    depots: [Depot; NUM_CLASSES],
    descs: DescPool,
    map: PageMap,
    /// The best-fit region for middle sizes.
    region: spin::Mutex<Region>,
    /// Live bytes counted outside the CPU caches and the best-fit region
    /// (large runs, depot path, realloc in place).
    other_live_bytes: AtomicUsize,
    large_pages: AtomicUsize,
    large_runs: AtomicUsize,
    slab_pages: AtomicUsize,
    /// Pages in the empty-slab reserves of all classes.
    reserve_pages: AtomicUsize,
    failed_allocs: AtomicUsize,
}

impl Default for SlabAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl SlabAllocator {
    /// An allocator with no page source yet.
    pub const fn new() -> Self {
        Self {
            env: spin::Once::new(),
            cpus: [const { CpuCache::new() }; MAX_CPUS],
            depots: [const { Depot::new() }; NUM_CLASSES],
            descs: DescPool::new(),
            map: PageMap::new(),
            region: spin::Mutex::new(Region::new()),
            other_live_bytes: AtomicUsize::new(0),
            large_pages: AtomicUsize::new(0),
            large_runs: AtomicUsize::new(0),
            slab_pages: AtomicUsize::new(0),
            reserve_pages: AtomicUsize::new(0),
            failed_allocs: AtomicUsize::new(0),
        }
    }

    /// Installs the page source and the CPU hooks; allocation works from
    /// then on. Only the first call has an effect.
    ///
    /// CPU caches are claimed with an atomic swap, so any `cpu_id` is safe
    /// (even one shared by several threads, as [`SingleCpu`] on the host).
    ///
    /// [`SingleCpu`]: crate::SingleCpu
    pub fn init(
        &self,
        pages: &'static dyn PageSource,
        cpu: &'static dyn CpuLocal,
    ) -> Result<(), AlreadyInitialized> {
        self.install(Env {
            pages,
            cpu,
            exclusive: false,
        })
    }

    /// Like [`init`](Self::init), with the faster claim of CPU caches (a
    /// plain load and store of a flag instead of an atomic swap, about 5 ns
    /// less per call), which relies on CPU ids being exclusive.
    ///
    /// # Safety
    ///
    /// While the allocator is in use, `cpu.cpu_id()` must return, on each
    /// CPU (or thread) that can be inside the allocator at the same time, a
    /// value that no other of them gets modulo [`MAX_CPUS`], and the same
    /// value for the whole of each call: no preemption that migrates a
    /// caller in the middle of an allocator call. Interrupt handlers on the
    /// same CPU are fine (they find the cache claimed and use the depot).
    /// A kernel on one vCPU, or one with per-CPU ids and no preemption
    /// inside the allocator, meets this.
    #[expect(unsafe_code, reason = "the caller vouches that CPU ids are exclusive")]
    pub unsafe fn init_exclusive(
        &self,
        pages: &'static dyn PageSource,
        cpu: &'static dyn CpuLocal,
    ) -> Result<(), AlreadyInitialized> {
        self.install(Env {
            pages,
            cpu,
            exclusive: true,
        })
    }

    fn install(&self, env: Env) -> Result<(), AlreadyInitialized> {
        let mut installed = false;
        self.env.call_once(|| {
            installed = true;
            env
        });
        if installed {
            Ok(())
        } else {
            Err(AlreadyInitialized)
        }
    }

    /// Allocates a block for `layout`; null when out of memory, before
    /// `init`, or for an alignment above 4 KiB.
    #[inline]
    pub fn allocate(&self, layout: Layout) -> *mut u8 {
        let Some(env) = self.env.get() else {
            return ptr::null_mut();
        };
        let kind = kind_of(layout);
        let mut object = self.alloc_kind(env, kind, layout);
        if object == 0 {
            object = self.alloc_after_trim(env, kind, layout);
        }
        raw::pointer(object)
    }

    #[inline(always)]
    fn alloc_kind(&self, env: &Env, kind: Kind, layout: Layout) -> usize {
        let size = layout.size();
        match kind {
            Kind::Small(class) => self.alloc_small(env, class, size),
            Kind::Aligned(class) => self.alloc_aligned(env, class, size),
            Kind::Mid => self.alloc_mid(env, size, layout.align()),
            Kind::Large(pages) => self.alloc_large(env, pages, size),
            Kind::Unsupported => 0,
        }
    }

    /// The page source ran dry: give back what the caches and reserves hold
    /// and try once more.
    #[cold]
    fn alloc_after_trim(&self, env: &Env, kind: Kind, layout: Layout) -> usize {
        if kind == Kind::Unsupported {
            self.failed_allocs.fetch_add(1, Ordering::Relaxed);
            return 0;
        }
        self.trim();
        let object = self.alloc_kind(env, kind, layout);
        if object == 0 {
            self.failed_allocs.fetch_add(1, Ordering::Relaxed);
        }
        object
    }

    /// Frees a block (crate-private: [`GlobalAlloc::dealloc`] is the public
    /// entry, whose caller vouches for `ptr` and `layout`).
    ///
    /// [`GlobalAlloc::dealloc`]: core::alloc::GlobalAlloc::dealloc
    #[inline]
    pub(crate) fn deallocate(&self, ptr: *mut u8, layout: Layout) {
        let Some(env) = self.env.get() else {
            panic!("slab allocator: dealloc of {ptr:p} before init (foreign pointer)");
        };
        let object = ptr.expose_provenance();
        match kind_of(layout) {
            Kind::Small(class) | Kind::Aligned(class) => {
                self.free_small(env, class, object, layout.size())
            }
            Kind::Mid => self.free_mid(env, object, layout.size()),
            Kind::Large(pages) => self.free_large(env, object, pages, layout.size()),
            Kind::Unsupported => panic!(
                "slab allocator: dealloc of {ptr:p} with {layout:?}, which it never allocates"
            ),
        }
    }

    /// Resizes a block in place when the new size keeps its class (or page
    /// count), when a best-fit block can shrink or grow into the free block
    /// after it, or when a large run can grow into the free pages right
    /// after it (if the page source supports that); else moves it.
    pub(crate) fn reallocate(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        let old_kind = kind_of(layout);
        let new_kind = kind_of(new_layout);
        if old_kind == Kind::Mid && new_kind == Kind::Mid {
            if self.resize_mid(ptr.expose_provenance(), new_size) {
                let delta = new_size.wrapping_sub(layout.size());
                self.other_live_bytes.fetch_add(delta, Ordering::Relaxed);
                return ptr;
            }
        } else if old_kind == new_kind {
            if cfg!(debug_assertions)
                && let Some(env) = self.env.get()
            {
                self.check_live(env, ptr.expose_provenance(), old_kind);
            }
            let delta = new_size.wrapping_sub(layout.size());
            self.other_live_bytes.fetch_add(delta, Ordering::Relaxed);
            return ptr;
        }
        if let (Kind::Large(old), Kind::Large(new)) = (old_kind, new_kind)
            && new > old
            && self.grow_large(ptr.expose_provenance(), old, new)
        {
            let delta = new_size.wrapping_sub(layout.size());
            self.other_live_bytes.fetch_add(delta, Ordering::Relaxed);
            return ptr;
        }
        let fresh = self.allocate(new_layout);
        if !fresh.is_null() {
            raw::copy(ptr, fresh, layout.size().min(new_size));
            self.deallocate(ptr, layout);
        }
        fresh
    }

    #[inline(always)]
    fn cache(&self, env: &Env) -> &CpuCache {
        &self.cpus[env.cpu.cpu_id() % MAX_CPUS]
    }

    #[inline(always)]
    fn alloc_small(&self, env: &Env, class: usize, size: usize) -> usize {
        let object = match self.cache(env).claim(env.exclusive) {
            Some(claimed) => {
                let cache = claimed.cache();
                let object = match cache.lists[class].pop() {
                    Some(object) => object,
                    None => self.refill(env, &claimed, class),
                };
                if object != 0 {
                    cache.add_live(&claimed, size);
                }
                object
            }
            None => self.alloc_from_depot(env, class, size, CARVE_ALIGN),
        };
        if cfg!(debug_assertions) && object != 0 {
            self.debug_mark_allocated(object);
        }
        object
    }

    /// Refills an empty CPU list with a batch ([`REFILL`]) and returns one
    /// object of it.
    #[cold]
    fn refill(&self, env: &Env, claimed: &Claimed<'_>, class: usize) -> usize {
        let chain = self.take(env, class, REFILL[class], CARVE_ALIGN);
        if chain.count == 0 {
            return 0;
        }
        let list = &claimed.cache().lists[class];
        if chain.count > 1 {
            list.fill(raw::load(chain.head), chain.count - 1);
        }
        chain.head
    }

    /// The cache is taken (re-entry): one object straight from the depot.
    #[cold]
    fn alloc_from_depot(&self, env: &Env, class: usize, size: usize, align: usize) -> usize {
        let chain = self.take(env, class, 1, align);
        if chain.count == 0 {
            return 0;
        }
        self.other_live_bytes.fetch_add(size, Ordering::Relaxed);
        chain.head
    }

    /// Takes up to `want` objects from the depot, creating a slab if it has
    /// none; an empty chain means out of memory. Objects carved from the
    /// best-fit region are aligned to `align` (slab and borrowed objects
    /// always have the class's natural alignment).
    ///
    /// When the class has no free object, it borrows free objects from the
    /// partial slabs of the next larger classes that may lend
    /// ([`can_lend`]): before creating a slab if such a class has a slab's
    /// worth of free objects scattered over its slabs, and from any of
    /// their partial slabs once the page source is exhausted. Borrowed
    /// objects serve this class (its CPU list hands them out again) until
    /// they go back to the depot, where [`give_back`](Self::give_back)
    /// returns them to the slab they belong to. Free slots of neighbouring
    /// classes are thus shared instead of each class holding its own peak.
    fn take(&self, env: &Env, class: usize, want: usize, align: usize) -> Chain {
        loop {
            let irq = env.cpu.irq_save();
            let chain =
                self.depots[class]
                    .inner
                    .lock()
                    .take(class, want, &self.reserve_pages, true);
            env.cpu.irq_restore(irq);
            if chain.count > 0 {
                return chain;
            }
            // Classes that carve first (`CARVE_FIRST_BYTES`) skip the
            // lenders' locks when the region has room.
            let first = carves_first(class);
            if first {
                let chain = self.carve(env, class, want, align, false);
                if chain.count > 0 {
                    return chain;
                }
            }
            let chain = self.borrow(env, class, want, true);
            if chain.count > 0 {
                return chain;
            }
            if !first {
                let chain = self.carve(env, class, want, align, false);
                if chain.count > 0 {
                    return chain;
                }
            }
            let Some(desc) = slab::create_slab(env, &self.map, &self.descs, class) else {
                let chain = self.borrow(env, class, want, false);
                if chain.count > 0 {
                    return chain;
                }
                return self.carve(env, class, want, align, true);
            };
            self.slab_pages
                .fetch_add(SLAB_PAGES[class], Ordering::Relaxed);
            let irq = env.cpu.irq_save();
            self.depots[class]
                .inner
                .lock()
                .add_slab(desc, &self.reserve_pages);
            env.cpu.irq_restore(irq);
        }
    }

    /// Up to `want` free objects of the next larger classes that may lend
    /// to `class` (see [`DepotInner::lend`](slab::DepotInner::lend)).
    #[cold]
    fn borrow(&self, env: &Env, class: usize, want: usize, surplus_only: bool) -> Chain {
        for lender in class + 1..=(class + LEND_CLASSES).min(NUM_CLASSES - 1) {
            if !can_lend(lender, class) {
                continue;
            }
            let irq = env.cpu.irq_save();
            let chain = self.depots[lender].inner.lock().lend(
                lender,
                want,
                &self.reserve_pages,
                surplus_only,
            );
            env.cpu.irq_restore(irq);
            if chain.count > 0 {
                return chain;
            }
        }
        Chain::EMPTY
    }

    #[inline(always)]
    fn free_small(&self, env: &Env, class: usize, object: usize, size: usize) {
        if cfg!(debug_assertions) {
            self.debug_check_free(env, object, class);
        }
        match self.cache(env).claim(env.exclusive) {
            Some(claimed) => {
                let cache = claimed.cache();
                cache.add_live(&claimed, size.wrapping_neg());
                let list = &cache.lists[class];
                if list.push(object) > CACHE_LIMIT[class] {
                    self.flush(env, list, class, BATCH[class]);
                }
            }
            None => {
                self.other_live_bytes.fetch_sub(size, Ordering::Relaxed);
                let desc = self.desc_of(object);
                self.give_back(env, class, &[(object, desc)]);
            }
        }
    }

    /// Returns `count` objects of a claimed CPU list to the depot.
    #[cold]
    fn flush(&self, env: &Env, list: &FreeList, class: usize, count: usize) {
        let mut batch = [(0usize, Desc(0)); MAX_BATCH];
        let mut left = count;
        while left > 0 {
            let n = left.min(MAX_BATCH);
            // Neighbours often share a page: look each page up once.
            let (mut page, mut desc) = (usize::MAX, Desc(0));
            for slot in batch.iter_mut().take(n) {
                let object = list.pop().expect("flushing no more than the list holds");
                if object / PAGE_SIZE != page {
                    page = object / PAGE_SIZE;
                    desc = self.desc_of(object);
                }
                *slot = (object, desc);
            }
            self.give_back(env, class, &batch[..n]);
            left -= n;
        }
    }

    /// Gives back to the page source all it can: the free objects in the
    /// CPU caches, then every empty slab in reserve, the best-fit region's
    /// spare chunk, every descriptor page with no descriptor in use and
    /// the page map's spare node. After freeing everything and trimming,
    /// every page is back with the page source.
    ///
    /// After [`init`](Self::init) this flushes every CPU cache not in use
    /// at the moment; after [`init_exclusive`](Self::init_exclusive) only
    /// the calling CPU's (the others are not safe to touch without the
    /// atomic claim): call it on each CPU to trim them all.
    pub fn trim(&self) {
        let Some(env) = self.env.get() else {
            return;
        };
        let own = core::slice::from_ref(self.cache(env));
        let caches = if env.exclusive { own } else { &self.cpus[..] };
        for cache in caches {
            let Some(claimed) = cache.claim(env.exclusive) else {
                continue;
            };
            for (class, list) in claimed.cache().lists.iter().enumerate() {
                self.flush(env, list, class, list.len());
            }
        }
        for (class, depot) in self.depots.iter().enumerate() {
            loop {
                let irq = env.cpu.irq_save();
                let empty = depot.inner.lock().take_empty(&self.reserve_pages);
                env.cpu.irq_restore(irq);
                let Some(desc) = empty else {
                    break;
                };
                self.slab_pages
                    .fetch_sub(SLAB_PAGES[class], Ordering::Relaxed);
                slab::release_slab(env, &self.map, &self.descs, desc);
            }
        }
        let irq = env.cpu.irq_save();
        let spare = self.region.lock().take_spare();
        env.cpu.irq_restore(irq);
        if let Some(spare) = spare {
            self.release_chunk(env, spare);
        }
        self.descs.release_free_pages(env);
        self.map.take_spare(env);
    }

    /// Puts objects back into their slabs and returns emptied slabs beyond
    /// the reserve to the page source (after dropping the depot lock).
    /// Objects `class` borrowed from a larger class go back to that class's
    /// depot, one lock each (the rare case); objects carved from the
    /// best-fit region (their page has a chunk's entry, or none in release
    /// builds) go back to it, without the depot's lock when all are
    /// carved (the usual case for the classes that carve first).
    fn give_back(&self, env: &Env, class: usize, objects: &[(usize, Desc)]) {
        if objects.iter().all(|&(_, desc)| desc.0 & CHUNK != 0) {
            self.free_carved(env, objects);
            return;
        }
        let mut released = [Desc(0); MAX_BATCH];
        let mut count = 0;
        let mut borrowed = false;
        let mut carved = false;
        let irq = env.cpu.irq_save();
        {
            let mut depot = self.depots[class].inner.lock();
            for &(object, desc) in objects {
                if desc.0 & CHUNK != 0 {
                    carved = true;
                    continue;
                }
                if desc.class() != class {
                    borrowed = true;
                    continue;
                }
                if let Some(empty) = depot.give(desc, object, &self.reserve_pages) {
                    released[count] = empty;
                    count += 1;
                }
            }
        }
        env.cpu.irq_restore(irq);
        if carved {
            self.free_carved(env, objects);
        }
        if borrowed {
            for &(object, desc) in objects {
                if desc.0 & CHUNK != 0 || desc.class() == class {
                    continue;
                }
                let lender = desc.class();
                let irq = env.cpu.irq_save();
                let empty =
                    self.depots[lender]
                        .inner
                        .lock()
                        .give(desc, object, &self.reserve_pages);
                env.cpu.irq_restore(irq);
                if let Some(empty) = empty {
                    self.release(env, empty);
                }
            }
        }
        for &desc in &released[..count] {
            self.release(env, desc);
        }
    }

    /// Returns an empty slab, in no depot list, to the page source.
    fn release(&self, env: &Env, desc: Desc) {
        self.slab_pages
            .fetch_sub(SLAB_PAGES[desc.class()], Ordering::Relaxed);
        slab::release_slab(env, &self.map, &self.descs, desc);
    }

    /// The descriptor of a free small object's slab, or (tag [`CHUNK`])
    /// the chunk it was carved from: debug builds map chunk pages as
    /// `chunk | CHUNK`, release builds leave them unmapped, and a small
    /// object on an unmapped page can only be a carved one (every slab
    /// page is mapped before its objects are handed out).
    fn desc_of(&self, object: usize) -> Desc {
        let entry = self.map.get(object);
        debug_assert!(entry != 0 && entry & LARGE == 0);
        if entry == 0 { Desc(CHUNK) } else { Desc(entry) }
    }

    /// A large run of `pages` pages. Only debug builds record it in the
    /// page map (to check its free); release builds keep no metadata for
    /// it: the layout gives its page count.
    fn alloc_large(&self, env: &Env, pages: usize, size: usize) -> usize {
        let Some(run) = env.pages.alloc_pages(pages) else {
            return 0;
        };
        let run = raw::expose(run);
        if cfg!(debug_assertions) && !self.map.set(env, run, 1, pages << 1 | LARGE) {
            raw::free_pages(env.pages, run, pages);
            return 0;
        }
        self.large_pages.fetch_add(pages, Ordering::Relaxed);
        self.large_runs.fetch_add(1, Ordering::Relaxed);
        self.other_live_bytes.fetch_add(size, Ordering::Relaxed);
        run
    }

    /// Extends the large run at `run` from `old` to `new` pages in place if
    /// the page source can; in debug builds the page map entry then records
    /// `new`.
    #[cold]
    fn grow_large(&self, run: usize, old: usize, new: usize) -> bool {
        let Some(env) = self.env.get() else {
            return false;
        };
        if cfg!(debug_assertions) {
            self.check_large(env, run, old);
        }
        if !raw::grow_pages(env.pages, run, old, new) {
            return false;
        }
        if cfg!(debug_assertions) {
            // The leaf for `run` exists (it holds the old entry): no allocation.
            let updated = self.map.set(env, run, 1, new << 1 | LARGE);
            debug_assert!(updated, "overwriting an existing page-map entry");
        }
        self.large_pages.fetch_add(new - old, Ordering::Relaxed);
        true
    }

    /// Frees a large run; debug builds check it against the page map
    /// first (release builds trust the layout, as for slab objects).
    fn free_large(&self, env: &Env, run: usize, pages: usize, size: usize) {
        if cfg!(debug_assertions) {
            self.check_large(env, run, pages);
            self.map.clear(env, run, 1);
        }
        self.large_pages.fetch_sub(pages, Ordering::Relaxed);
        self.large_runs.fetch_sub(1, Ordering::Relaxed);
        self.other_live_bytes.fetch_sub(size, Ordering::Relaxed);
        raw::free_pages(env.pages, run, pages);
    }

    /// Descriptor pages held (tests tell them from page-map nodes, which
    /// `AllocStats::metadata_bytes` counts with them).
    #[cfg(test)]
    pub(crate) fn desc_pages(&self) -> usize {
        self.descs.pages()
    }

    /// A snapshot of the allocator's counters (not atomic as a whole).
    pub fn stats(&self) -> AllocStats {
        let mut live = self.other_live_bytes.load(Ordering::Relaxed);
        for cache in &self.cpus {
            live = live.wrapping_add(cache.live_bytes());
        }
        let mut classes = [ClassStats::default(); NUM_CLASSES];
        let irq = self.env.get().map(|env| (env, env.cpu.irq_save()));
        for (class, stats) in classes.iter_mut().enumerate() {
            let cached: usize = self.cpus.iter().map(|c| c.lists[class].len()).sum();
            let depot = self.depots[class].inner.lock();
            *stats = ClassStats {
                object_bytes: CLASS_BYTES[class],
                slabs: depot.slabs,
                empty_slabs: depot.empty_slabs,
                objects_per_slab: crate::class::SLAB_OBJECTS[class],
                live_objects: depot.in_use.saturating_sub(cached),
                cached_objects: cached,
            };
        }
        if let Some((env, saved)) = irq {
            env.cpu.irq_restore(saved);
        }
        let (region_pages, region_free_bytes, region_small_bytes) = {
            let region = self.region.lock();
            live = live.wrapping_add(region.live_bytes);
            (region.pages, region.free_bytes, region.carved_bytes)
        };
        let metadata_pages = self.map.node_pages() + self.descs.pages();
        AllocStats {
            live_bytes: live,
            slab_bytes: self.slab_pages.load(Ordering::Relaxed) * PAGE_SIZE,
            large_bytes: self.large_pages.load(Ordering::Relaxed) * PAGE_SIZE,
            large_blocks: self.large_runs.load(Ordering::Relaxed),
            region_bytes: region_pages * PAGE_SIZE,
            region_free_bytes,
            region_small_bytes,
            metadata_bytes: metadata_pages * PAGE_SIZE,
            failed_allocs: self.failed_allocs.load(Ordering::Relaxed),
            classes,
        }
    }
}
