//! The best-fit region's side of [`SlabAllocator`]: middle-size requests
//! (1–8 KiB, see [`Kind::Mid`](crate::class::Kind::Mid)) go to the region
//! in `bestfit.rs` under its lock, with chunks from the page source mapped
//! in the page map (tag [`CHUNK`], debug builds only) and given back when
//! empty.

use super::{CHUNK, Env, LARGE, MAX_BATCH, SlabAllocator};
use crate::bestfit::{self, FreeError};
use crate::class::{CARVE_FIRST_BYTES, CLASS_BYTES, Kind, MID_MIN_BYTES};
use crate::raw;
use crate::slab::{Chain, Desc};

/// Smallest class [`SlabAllocator::carve`] serves from the region: from
/// 24 B a block (at least [`MIN_BLOCK`](bestfit::MIN_BLOCK), 32 B) costs at
/// most 16 B more than a slab slot; the 8 and 16 B classes would pay double.
const CARVE_MIN_BYTES: usize = 24;

/// Classes below this many bytes carve only from free blocks too small for
/// an object of this size (`block_bytes(TINY_CARVE_BYTES)`, 80 B), which
/// nothing else can use; larger holes they would only cut up at a
/// header's cost per object.
const TINY_CARVE_BYTES: usize = 64;

impl SlabAllocator {
    /// A block of the best-fit region for `size` bytes aligned to `align`
    /// (at most [`MID_ALIGN`](bestfit::MID_ALIGN)), with a new chunk if no
    /// free block is large enough.
    pub(super) fn alloc_mid(&self, env: &Env, size: usize, align: usize) -> usize {
        let need = bestfit::block_bytes(size);
        let irq = env.cpu.irq_save();
        let block = self.region.lock().alloc(need, size, align);
        env.cpu.irq_restore(irq);
        match block {
            Some(payload) => payload,
            None => self.alloc_mid_chunk(env, need, size, align),
        }
    }

    /// Adds a chunk to the region (a shorter one if the page source has
    /// no run of [`CHUNK_PAGES`](bestfit::CHUNK_PAGES)) and allocates
    /// `need` bytes from it; 0 when the page source is exhausted.
    #[cold]
    fn alloc_mid_chunk(&self, env: &Env, need: usize, size: usize, align: usize) -> usize {
        let least = bestfit::chunk_pages_for(need + bestfit::align_gap(align));
        let mut pages = bestfit::CHUNK_PAGES.max(least);
        let run = match env.pages.alloc_pages(pages) {
            Some(run) => run,
            None if pages > least => {
                pages = least;
                let Some(run) = env.pages.alloc_pages(pages) else {
                    return 0;
                };
                run
            }
            None => return 0,
        };
        let run = raw::expose(run);
        if !self.map_chunk(env, run, pages) {
            return 0;
        }
        let irq = env.cpu.irq_save();
        let (payload, unused) = self
            .region
            .lock()
            .add_chunk_and_alloc(run, pages, need, size, align);
        env.cpu.irq_restore(irq);
        if let Some(unused) = unused {
            self.release_chunk(env, unused);
        }
        payload.expect("a fresh chunk holds the block it was sized for")
    }

    /// Debug builds: points the page map at a new chunk for each of its
    /// pages (to check frees against it); on failure gives the run back.
    /// Release builds map no chunk page: an object whose page has no
    /// entry was carved from a chunk ([`desc_of`](SlabAllocator::desc_of)),
    /// which saves the page map's leaves for 2 MiB stretches of chunks
    /// (issue 16 item 5, eighth session).
    fn map_chunk(&self, env: &Env, chunk: usize, pages: usize) -> bool {
        if cfg!(debug_assertions) && !self.map.set(env, chunk, pages, chunk | CHUNK) {
            raw::free_pages(env.pages, chunk, pages);
            return false;
        }
        true
    }

    /// Gives an empty chunk, out of the region, back to the page source.
    pub(super) fn release_chunk(&self, env: &Env, empty: bestfit::Released) {
        if cfg!(debug_assertions) {
            self.map.clear(env, empty.chunk, empty.pages);
        }
        raw::free_pages(env.pages, empty.chunk, empty.pages);
    }

    /// Debug builds: panics unless `payload` lies in a best-fit chunk.
    pub(super) fn check_in_chunk(&self, env: &Env, payload: usize) {
        let entry = self.map.get_checked(env, payload);
        if entry & (LARGE | CHUNK) != CHUNK {
            self.foreign(payload, entry, "a best-fit block");
        }
    }

    /// Frees a block of the best-fit region; a chunk left empty (beyond
    /// the one spare) goes back to the page source.
    pub(super) fn free_mid(&self, env: &Env, payload: usize, size: usize) {
        if cfg!(debug_assertions) {
            self.check_in_chunk(env, payload);
        }
        let irq = env.cpu.irq_save();
        let freed = self.region.lock().free(payload, size);
        env.cpu.irq_restore(irq);
        match freed {
            Ok(released) => {
                if let Some(empty) = released {
                    self.release_chunk(env, empty);
                }
            }
            Err(error) => self.refused_free(payload, error),
        }
    }

    /// Panics for a best-fit free the region refused.
    #[cold]
    fn refused_free(&self, payload: usize, error: FreeError) -> ! {
        match error {
            FreeError::DoubleFree => {
                panic!("slab allocator: double free of {payload:#x} (a best-fit block)")
            }
            FreeError::WrongSize => panic!(
                "slab allocator: dealloc of {payload:#x} with a layout that does not match its allocation (wrong layout)"
            ),
        }
    }

    /// Resizes a best-fit block in place if it can: without the lock
    /// when the block already holds `new_size` bytes and would not give
    /// back a quarter of itself, else under the lock.
    #[cold]
    pub(super) fn resize_mid(&self, payload: usize, new_size: usize) -> bool {
        let Some(env) = self.env.get() else {
            return false;
        };
        if cfg!(debug_assertions) {
            self.check_live(env, payload, Kind::Mid);
        }
        let bytes = bestfit::size_of(payload - bestfit::HEADER);
        let need = bestfit::block_bytes(new_size);
        if need <= bytes && (bytes - need) * 4 < bytes {
            return true;
        }
        let irq = env.cpu.irq_save();
        let resized = self.region.lock().resize(payload, new_size);
        env.cpu.irq_restore(irq);
        resized
    }

    /// Up to `want` objects of small `class` carved from the region's free
    /// blocks too small for any middle-size request (`Region::carve`), so
    /// that the space left between middle blocks serves small objects
    /// instead of new slabs (classes from [`CARVE_FIRST_BYTES`] up: any free
    /// block, smallest first). Classes below [`CARVE_MIN_BYTES`] bytes are
    /// not served: a block's header and granule would cost them more than
    /// a slab's slot; those below [`TINY_CARVE_BYTES`] take only the dead
    /// holes no larger class fits (at the first failure of the benchmark's
    /// random mix, ~1400 free blocks of 32–64 B held 0.4 % of the arena).
    /// Payloads are aligned to `align`: [`CARVE_ALIGN`](bestfit::CARVE_ALIGN)
    /// (no gap, as every payload) for the CPU lists, which serve requests
    /// aligned to at most that; the class's natural alignment for an
    /// aligned request ([`Kind::Aligned`](crate::class::Kind::Aligned)).
    pub(super) fn carve(
        &self,
        env: &Env,
        class: usize,
        want: usize,
        align: usize,
        exhausted: bool,
    ) -> Chain {
        let bytes = CLASS_BYTES[class];
        if !(CARVE_MIN_BYTES..=MID_MIN_BYTES).contains(&bytes) {
            return Chain::EMPTY;
        }
        let irq = env.cpu.irq_save();
        let hole_bytes = if bytes < TINY_CARVE_BYTES {
            bestfit::block_bytes(TINY_CARVE_BYTES)
        } else if exhausted || bytes >= CARVE_FIRST_BYTES {
            usize::MAX
        } else {
            bestfit::DEAD_HOLE_BYTES
        };
        let chain = self.region.lock().carve(bytes, align, want, hole_bytes);
        env.cpu.irq_restore(irq);
        chain
    }

    /// Gives the carved objects among `objects` (their entry is a chunk's)
    /// back to the region, under one lock; chunks left empty go back to
    /// the page source after it.
    pub(super) fn free_carved(&self, env: &Env, objects: &[(usize, Desc)]) {
        let mut emptied = [None; MAX_BATCH];
        let irq = env.cpu.irq_save();
        {
            let mut region = self.region.lock();
            for (&(object, desc), slot) in objects.iter().zip(emptied.iter_mut()) {
                if desc.0 & CHUNK != 0 {
                    *slot = region.free_carved(object);
                }
            }
        }
        env.cpu.irq_restore(irq);
        for empty in emptied.into_iter().flatten() {
            self.release_chunk(env, empty);
        }
    }

    /// Debug builds: whether `object`, freed or kept as a small object of
    /// `class`, was carved from the region (panics if it lies in a chunk
    /// but is no such block).
    pub(super) fn is_carved(&self, env: &Env, object: usize, class: usize) -> bool {
        let entry = self.map.get_checked(env, object);
        if entry & (LARGE | CHUNK) != CHUNK {
            return false;
        }
        let bytes = bestfit::size_of(object - bestfit::HEADER);
        let need = bestfit::block_bytes(CLASS_BYTES[class]);
        if !object.is_multiple_of(bestfit::CARVE_ALIGN)
            || !(need..need + bestfit::MIN_BLOCK).contains(&bytes)
        {
            panic!(
                "slab allocator: dealloc of {object:#x} as a {} B object, but it lies in a best-fit chunk and is no such object (wrong layout or foreign pointer)",
                CLASS_BYTES[class]
            );
        }
        true
    }
}
