//! The best-fit region: middle-sized blocks (above [`MID_MIN_BYTES`], 1 KiB,
//! up to [`MID_MAX_BYTES`], 8 KiB, alignment ≤ 16, not a whole number of
//! pages) cut to measure from chunks of pages, so they cost their size
//! rounded to 8 bytes plus an 8-byte header instead of a size class's
//! rounding (up to 12.5 %) or a page run's, and the free slots of partial
//! slabs (which held only 2–10 objects each at these sizes).
//!
//! A two-level segregated-fit allocator (TLSF, as in rlsf and talc) with
//! boundary tags:
//!
//! ```text
//!  chunk (CHUNK_PAGES pages from the PageSource, fewer when it runs dry;
//!  each page's page-map entry is chunk | 2 in debug builds, none in
//!  release builds):
//!  ┌───────┬─────────────────────┬────────────────────────┬─────┬──────────┐
//!  │ pages │ hdr │ payload (used)│ hdr │ next prev … footer│ …   │ sentinel │
//!  └───────┴─────────────────────┴────────────────────────┴─────┴──────────┘
//!   8 B     blocks of multiples of 8 B, payloads 8-aligned     8 B, size 0
//!  header = size | FREE | PREV_FREE | FIRST (low bits) | PARKED (bit 62)
//!  footer (free) = size
//!
//!  a request aligned to 16 whose payload would land 8 bytes off leaves a
//!  40-byte free block in front of it (the chunk's first payload is
//!  16-aligned, so a fresh chunk never needs one).
//!
//!  free lists: heads[fl][sl], fl = power of two of the size (one level
//!  for everything below 512 B), sl = which 32nd of it; a bit per
//!  non-empty list (fl_bitmap, sl_bitmap[fl]).
//! ```
//!
//! An allocation scans the list of its own size's bucket for the smallest
//! block that fits (a few entries at most), else takes the head of the
//! next non-empty bucket up (every block there fits), and splits off the
//! rest when at least [`MIN_BLOCK`] is left. A free merges the block with
//! free neighbours on either side (the header says whether the previous
//! block is free; its footer gives its size). A chunk whose blocks are all
//! free becomes one free block flagged `FIRST` and followed by the
//! sentinel: one such chunk is kept as a spare, any other goes back to the
//! page source (after the lock is dropped). `realloc` grows a block into a
//! free block right after it, with 1/8 slack so that a buffer growing a
//! byte at a time takes the lock once per eighth; a size that still fits
//! the block needs no lock at all (the header's size bits change only
//! under the lock, by the block's owner).
//!
//! Small objects (24 B – 1 KiB classes) are carved from the region too
//! ([`Region::carve`], issue 16 item 5): a class with no free object takes
//! blocks of its object size (8-byte aligned, as every payload, or at the
//! class's alignment for a request aligned beyond that), out of free
//! blocks smaller than any middle block ([`DEAD_HOLE_BYTES`]) before it
//! makes a slab (out of any free block from 512 B classes up), and out of
//! any free block once the page source is exhausted; classes of 24–56 B only out of free blocks under 80 B, which
//! no larger class fits. Such a block serves its class through the CPU
//! caches like a slab object and comes back here, when the caches flush
//! it, through [`Region::free_carved`]; its page-map entry (the chunk's;
//! none in release builds) tells it from a slab object.
//!
//! A chunk added for a request that a block freed meanwhile (by another
//! CPU, while the lock was dropped) served instead stays wholly free: it
//! becomes the spare or goes back ([`Region::add_chunk_and_alloc`]).
//!
//! Header words are accessed atomically (relaxed): a neighbour's free sets
//! or clears `PREV_FREE` in a used block's header under the lock while the
//! owner may read its size without it (and, in debug builds, flip the
//! `PARKED` flag of a carved block). Every other word (links, footers,
//! the chunk's page count) lies in a free block or chunk header and is only
//! touched under the lock.
//!
//! Neighbours: `heap.rs` routes requests here by [`Kind::Mid`] and calls
//! the page source; `raw.rs` does the memory access.
//!
//! [`Kind::Mid`]: crate::class::Kind::Mid
//! [`MID_MAX_BYTES`]: crate::class::MID_MAX_BYTES

use core::sync::atomic::Ordering;

use crate::class::{MID_MIN_BYTES, PAGE_SIZE};
use crate::raw;
use crate::slab::Chain;

/// Pages of a chunk, when the page source has a run that long: 32 since
/// the eighth session (16 before; with most small objects carved from
/// the region, fewer chunk ends leave fewer unusable tails: heap
/// efficiency 98.05 → 98.13 % over 36 runs, footprint at 4 MiB live
/// 1.192 → 1.210 becoming 1.199 → 1.201; 64 pages gave 98.17 % but
/// 1.215 → 1.217, within 0.005 of talc's, and 24 pages 97.85 %).
pub(crate) const CHUNK_PAGES: usize = 32;
/// Bytes of a block header (the payload starts right after it).
pub(crate) const HEADER: usize = 8;
/// Block sizes are multiples of this, and payloads aligned to it (16 B
/// until the eighth session: a granule of 8 costs a block 4 B less on
/// average; heap efficiency +0.09 point over 36 runs).
pub(crate) const GRANULE: usize = 8;
/// Alignment of every carved payload, and so of every object a CPU list
/// may hold: requests aligned to more take the aligned path
/// ([`Kind::Aligned`](crate::class::Kind::Aligned)).
pub(crate) const CARVE_ALIGN: usize = GRANULE;
/// Smallest block: header, two links, footer.
pub(crate) const MIN_BLOCK: usize = 32;
/// Largest alignment a region block can be asked for
/// ([`Region::alloc`]'s `align`): a 16-aligned block whose payload would
/// land 8 bytes off leaves a free block of [`ALIGN_GAP`] bytes in front.
pub(crate) const MID_ALIGN: usize = 16;
/// Free block left in front of a 16-aligned block that needs moving (the
/// smallest whole free block that moves the payload by 8 bytes mod 16).
const ALIGN_GAP: usize = MIN_BLOCK + GRANULE;

const FREE: usize = 1;
const PREV_FREE: usize = 2;
const FIRST: usize = 4;
/// A block carved for a small object ([`Region::carve`]) that is not in a
/// caller's hands (debug builds keep it up to date, to catch double frees).
/// A high bit: the three low bits are all an 8-byte granule leaves.
const PARKED: usize = 1 << (usize::BITS - 2);
/// Every flag of a header word (the rest is the block's size).
const FLAGS: usize = (GRANULE - 1) | PARKED;

/// Free blocks smaller than this hold no middle-size block (the smallest
/// is `block_bytes(MID_MIN_BYTES + 1)`): [`Region::carve`] takes small
/// objects from them.
pub(crate) const DEAD_HOLE_BYTES: usize = block_bytes(MID_MIN_BYTES + 1);

const SL_LOG: u32 = 5;
const SL: usize = 1 << SL_LOG;
/// First-level buckets: fl 0 holds sizes below 512 B (16-byte steps, two
/// block sizes a list),
/// fl k ≥ 1 sizes in [2^(k+8), 2^(k+9)). Thirty-two second-level lists
/// (rather than sixteen) gave 94.9 % heap efficiency instead of 94.7 %.
const FL: usize = 12;
/// Entries of a bucket's list an allocation looks at for a best fit.
const SCAN: usize = 8;
/// Largest block a chunk holds (its pages less the chunk header and the
/// sentinel).
const MAX_BLOCK: usize = CHUNK_PAGES * PAGE_SIZE - 2 * HEADER;
/// Free blocks one [`Region::carve`] looks at, at most.
const CARVE_SCAN: usize = 64;

const _: () = assert!(CHUNK_PAGES * PAGE_SIZE < 1 << (FL + SL_LOG as usize + 3));
const _: () = assert!(MID_MIN_BYTES >= MIN_BLOCK);

/// Block size (header included) for a request of `size` bytes.
#[inline]
pub(crate) const fn block_bytes(size: usize) -> usize {
    let bytes = (size + HEADER).next_multiple_of(GRANULE);
    if bytes < MIN_BLOCK { MIN_BLOCK } else { bytes }
}

/// Room [`Region::alloc`] looks for beyond a block's size to give its
/// payload the alignment `align`.
pub(crate) const fn align_gap(align: usize) -> usize {
    if align > GRANULE { ALIGN_GAP } else { 0 }
}

/// Pages of a chunk able to hold a block of `need` bytes on its own.
pub(crate) const fn chunk_pages_for(need: usize) -> usize {
    (need + 2 * HEADER).div_ceil(PAGE_SIZE)
}

/// Bucket `(fl, sl)` whose size range holds `size`.
#[inline]
fn bucket(size: usize) -> (usize, usize) {
    if size < 1 << (SL_LOG + 4) {
        return (0, size / 16);
    }
    let log = usize::BITS - 1 - size.leading_zeros();
    let fl = (log - (SL_LOG + 4) + 1) as usize;
    let sl = (size >> (log - SL_LOG)) & (SL - 1);
    (fl, sl)
}

fn header(block: usize) -> usize {
    raw::atomic(block).load(Ordering::Relaxed)
}

fn set_header(block: usize, value: usize) {
    raw::atomic(block).store(value, Ordering::Relaxed);
}

/// Sets `PREV_FREE` in the header of a block that may be used. Debug
/// builds do it with one atomic read-modify-write, because the block's
/// owner may meanwhile flip [`PARKED`] without the lock; release builds
/// never change a used block's header outside the lock, so a load and a
/// store suffice (and spare a locked instruction).
fn set_prev_free(block: usize) {
    if cfg!(debug_assertions) {
        raw::atomic(block).fetch_or(PREV_FREE, Ordering::Relaxed);
    } else {
        set_header(block, header(block) | PREV_FREE);
    }
}

/// Clears `PREV_FREE` in the header of a block that may be used (see
/// [`set_prev_free`]).
fn clear_prev_free(block: usize) {
    if cfg!(debug_assertions) {
        raw::atomic(block).fetch_and(!PREV_FREE, Ordering::Relaxed);
    } else {
        set_header(block, header(block) & !PREV_FREE);
    }
}

/// Size of the block at `block` (header included), read without the lock:
/// only the block's owner changes it.
pub(crate) fn size_of(block: usize) -> usize {
    header(block) & !FLAGS
}

/// A chunk that became empty and must go back to the page source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Released {
    pub(crate) chunk: usize,
    pub(crate) pages: usize,
}

/// Why a free was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FreeError {
    /// The block is already free.
    DoubleFree,
    /// The layout's size needs a larger block than the one at the pointer.
    WrongSize,
}

/// The region's free lists and counters, behind the region lock.
#[derive(Debug)]
pub(crate) struct Region {
    fl_bitmap: u32,
    sl_bitmap: [u32; FL],
    heads: [[usize; SL]; FL],
    /// The free block of the one empty chunk kept (0 = none).
    spare: usize,
    /// Chunks held and their pages.
    pub(crate) chunks: usize,
    pub(crate) pages: usize,
    /// Bytes in free blocks.
    pub(crate) free_bytes: usize,
    /// Bytes in blocks carved for small objects.
    pub(crate) carved_bytes: usize,
    /// Bytes requested by the blocks allocated, less those freed (wrapping:
    /// `realloc` in place counts its difference outside, in the heap's
    /// atomic counter, so this alone can go "negative"). Counted here,
    /// under the lock, to spare each call an atomic add.
    pub(crate) live_bytes: usize,
}

impl Region {
    pub(crate) const fn new() -> Self {
        Self {
            fl_bitmap: 0,
            sl_bitmap: [0; FL],
            heads: [[0; SL]; FL],
            spare: 0,
            chunks: 0,
            pages: 0,
            free_bytes: 0,
            carved_bytes: 0,
            live_bytes: 0,
        }
    }

    fn insert(&mut self, block: usize, size: usize) {
        let (fl, sl) = bucket(size);
        let head = self.heads[fl][sl];
        raw::store(block + 8, head);
        raw::store(block + 16, 0);
        if head != 0 {
            raw::store(head + 16, block);
        }
        self.heads[fl][sl] = block;
        self.fl_bitmap |= 1 << fl;
        self.sl_bitmap[fl] |= 1 << sl;
        self.free_bytes += size;
    }

    fn remove(&mut self, block: usize, size: usize) {
        let (fl, sl) = bucket(size);
        let next = raw::load(block + 8);
        let prev = raw::load(block + 16);
        if prev == 0 {
            self.heads[fl][sl] = next;
            if next == 0 {
                self.sl_bitmap[fl] &= !(1 << sl);
                if self.sl_bitmap[fl] == 0 {
                    self.fl_bitmap &= !(1 << fl);
                }
            }
        } else {
            raw::store(prev + 8, next);
        }
        if next != 0 {
            raw::store(next + 16, prev);
        }
        if block == self.spare {
            self.spare = 0;
        }
        self.free_bytes -= size;
    }

    /// The first non-empty bucket at or after `(fl, sl)` (`sl` may be
    /// [`SL`]: the next first level), found with the bitmaps.
    fn first_listed(&self, fl: usize, sl: usize) -> Option<(usize, usize)> {
        let here = self.sl_bitmap[fl] & u32::MAX.checked_shl(sl as u32).unwrap_or(0);
        if here != 0 {
            return Some((fl, here.trailing_zeros() as usize));
        }
        let fls = self.fl_bitmap & u32::MAX.checked_shl(fl as u32 + 1).unwrap_or(0);
        if fls == 0 {
            return None;
        }
        let fl = fls.trailing_zeros() as usize;
        Some((fl, self.sl_bitmap[fl].trailing_zeros() as usize))
    }

    /// A free block of at least `need` bytes, taken out of its list.
    fn find(&mut self, need: usize) -> Option<usize> {
        let (fl, sl) = bucket(need);
        // Best fit among the first entries of the request's own bucket.
        let mut best = 0;
        let mut best_size = usize::MAX;
        let mut block = self.heads[fl][sl];
        for _ in 0..SCAN {
            if block == 0 {
                break;
            }
            let size = size_of(block);
            if size >= need && size < best_size {
                (best, best_size) = (block, size);
                if size == need {
                    break;
                }
            }
            block = raw::load(block + 8);
        }
        if best != 0 {
            self.remove(best, best_size);
            return Some(best);
        }
        // Any block of a larger bucket fits.
        let (fl, sl) = self.first_listed(fl, sl + 1)?;
        let block = self.heads[fl][sl];
        self.remove(block, size_of(block));
        Some(block)
    }

    /// Adds a fresh chunk of `pages` pages at `chunk` as one free block.
    pub(crate) fn add_chunk(&mut self, chunk: usize, pages: usize) {
        let bytes = pages * PAGE_SIZE;
        raw::store(chunk, pages);
        let block = chunk + HEADER;
        let size = bytes - 2 * HEADER;
        set_header(block, size | FREE | FIRST);
        raw::store(block + size - 8, size);
        set_header(block + size, PREV_FREE);
        self.chunks += 1;
        self.pages += pages;
        self.insert(block, size);
    }

    /// Adds the fresh chunk of `pages` pages at `chunk` (see
    /// [`add_chunk`](Self::add_chunk)) and allocates a block of `need`
    /// bytes for a request of `size` bytes, as [`alloc`](Self::alloc).
    ///
    /// The block may come from another chunk: between the failed `alloc`
    /// that called for the chunk and this call (made without the lock),
    /// another CPU may have freed a block that fits better. The fresh chunk
    /// is then still wholly free; it becomes the spare, or is returned for
    /// the caller to give back if there already is one (before, it stayed
    /// in the region, empty and never given back).
    pub(crate) fn add_chunk_and_alloc(
        &mut self,
        chunk: usize,
        pages: usize,
        need: usize,
        size: usize,
        align: usize,
    ) -> (Option<usize>, Option<Released>) {
        self.add_chunk(chunk, pages);
        let payload = self.alloc(need, size, align);
        let block = chunk + HEADER;
        let word = header(block);
        let bytes = word & !FLAGS;
        if word & FREE == 0 || size_of(block + bytes) != 0 || self.spare == block {
            return (payload, None);
        }
        (payload, self.spare_or_release(block, bytes))
    }

    /// Allocates a block of `need` bytes (from [`block_bytes`]) for a
    /// request of `size` bytes, its payload aligned to `align` (8 or
    /// [`MID_ALIGN`]); returns the payload address, or `None` if no free
    /// block is large enough.
    pub(crate) fn alloc(&mut self, need: usize, size: usize, align: usize) -> Option<usize> {
        let aligned = align > GRANULE;
        let mut block = self.find(need + align_gap(align))?;
        self.live_bytes = self.live_bytes.wrapping_add(size);
        let mut size = size_of(block);
        let mut flags = header(block) & FIRST;
        if aligned && !(block + HEADER).is_multiple_of(align) {
            // The piece in front stays free (its previous block is used).
            set_header(block, ALIGN_GAP | FREE | flags);
            raw::store(block + ALIGN_GAP - 8, ALIGN_GAP);
            self.insert(block, ALIGN_GAP);
            (block, size, flags) = (block + ALIGN_GAP, size - ALIGN_GAP, PREV_FREE);
        }
        if size - need >= MIN_BLOCK {
            self.put_free(block + need, size - need, 0);
            set_header(block, need | flags);
        } else {
            set_header(block, size | flags);
            let next = block + size;
            clear_prev_free(next);
        }
        Some(block + HEADER)
    }

    /// Makes `block` a free block of `size` bytes (its previous block is
    /// used; `first` is its `FIRST` flag), marks it in the next header and
    /// lists it. The next block must not be free.
    fn put_free(&mut self, block: usize, size: usize, first: usize) {
        set_header(block, size | FREE | first);
        raw::store(block + size - 8, size);
        let next = block + size;
        set_prev_free(next);
        self.insert(block, size);
    }

    /// Frees the block whose payload is at `payload`, for a request of
    /// `size` bytes. A chunk left with no used block is kept as the spare
    /// or returned for the caller to give back.
    pub(crate) fn free(
        &mut self,
        payload: usize,
        size: usize,
    ) -> Result<Option<Released>, FreeError> {
        let block = payload - HEADER;
        let word = header(block);
        if word & FREE != 0 {
            return Err(FreeError::DoubleFree);
        }
        if block_bytes(size) > word & !FLAGS {
            return Err(FreeError::WrongSize);
        }
        self.live_bytes = self.live_bytes.wrapping_sub(size);
        Ok(self.release_block(block, word))
    }

    /// Gives a used block (header word `word`) back to the free lists,
    /// merged with its free neighbours; a chunk left with no used block is
    /// kept as the spare or returned for the caller to give back.
    fn release_block(&mut self, mut block: usize, word: usize) -> Option<Released> {
        let mut bytes = word & !FLAGS;
        let mut first = word & FIRST;
        let next = block + bytes;
        let next_word = header(next);
        if next_word & FREE != 0 {
            let next_bytes = next_word & !FLAGS;
            self.remove(next, next_bytes);
            bytes += next_bytes;
        }
        if word & PREV_FREE != 0 {
            let prev_bytes = raw::load(block - 8);
            block -= prev_bytes;
            self.remove(block, prev_bytes);
            bytes += prev_bytes;
            first = header(block) & FIRST;
        }
        self.put_free(block, bytes, first);
        if first == 0 || size_of(block + bytes) != 0 {
            return None;
        }
        // The whole chunk is free.
        self.spare_or_release(block, bytes)
    }

    /// A wholly free chunk, its one free block `block` of `bytes`: kept as
    /// the spare if there is none, else taken out of the region for the
    /// caller to give back.
    fn spare_or_release(&mut self, block: usize, bytes: usize) -> Option<Released> {
        if self.spare == 0 {
            self.spare = block;
            return None;
        }
        Some(self.unlink_chunk(block, bytes))
    }

    /// Carves up to `want` blocks for small objects of `object_bytes`
    /// bytes, their payloads aligned to `align` (a power of two), out of
    /// free blocks smaller than `hole_bytes` (the smallest first):
    /// [`DEAD_HOLE_BYTES`] for blocks no middle-size request could use,
    /// more once the page source is exhausted. The objects are chained
    /// through their first word (the last one holds 0) and flagged
    /// [`PARKED`]; each goes back with [`free_carved`](Self::free_carved).
    pub(crate) fn carve(
        &mut self,
        object_bytes: usize,
        align: usize,
        want: usize,
        hole_bytes: usize,
    ) -> Chain {
        let need = block_bytes(object_bytes);
        let mut chain = Chain::EMPTY;
        let (first_fl, first_sl) = bucket(need);
        let last = bucket((hole_bytes - GRANULE).min(MAX_BLOCK));
        let mut budget = CARVE_SCAN;
        let mut at = self.first_listed(first_fl, first_sl);
        while let Some((fl, sl)) = at
            && chain.count < want
            && budget > 0
            && (fl, sl) <= last
        {
            let mut block = self.heads[fl][sl];
            while block != 0 && chain.count < want && budget > 0 {
                // Blocks carved into go back to lists at or below this one,
                // at their heads: `next` is still ahead and still listed.
                let next = raw::load(block + 8);
                if size_of(block) < hole_bytes {
                    self.carve_from(block, need, align, want, &mut chain);
                }
                block = next;
                budget -= 1;
            }
            at = self.first_listed(fl, sl + 1);
        }
        if chain.count > 0 {
            raw::store(chain.tail, 0);
        }
        chain
    }

    /// Carves as many blocks of `need` bytes (payloads aligned to `align`)
    /// as fit from the free block `block`, up to `want` in `chain`; the
    /// pieces left over stay free.
    fn carve_from(
        &mut self,
        block: usize,
        need: usize,
        align: usize,
        want: usize,
        chain: &mut Chain,
    ) {
        let mut hole = block;
        let mut hole_bytes = size_of(block);
        let end = block + hole_bytes;
        let first = header(block) & FIRST;
        let mut listed = true;
        while chain.count < want {
            // The first payload address aligned to `align` that leaves
            // either nothing or a whole free block in front of it.
            let mut payload = (hole + HEADER).next_multiple_of(align);
            let mut gap = payload - HEADER - hole;
            if gap != 0 && gap < MIN_BLOCK {
                payload += align.max(MIN_BLOCK).next_multiple_of(align);
                gap = payload - HEADER - hole;
            }
            let carved = payload - HEADER;
            if carved + need > end {
                break;
            }
            let mut bytes = need;
            if end - (carved + need) < MIN_BLOCK {
                bytes = end - carved;
            }
            if listed {
                self.remove(hole, hole_bytes);
                listed = false;
            }
            let hole_first = if hole == block { first } else { 0 };
            if gap != 0 {
                // The piece in front stays free (its previous block is used).
                set_header(hole, gap | FREE | hole_first);
                raw::store(hole + gap - 8, gap);
                self.insert(hole, gap);
                set_header(carved, bytes | PREV_FREE | PARKED);
            } else {
                set_header(carved, bytes | hole_first | PARKED);
            }
            self.carved_bytes += bytes;
            let link = carved + HEADER;
            if chain.count == 0 {
                chain.head = link;
            } else {
                raw::store(chain.tail, link);
            }
            chain.tail = link;
            chain.count += 1;
            hole = carved + bytes;
            hole_bytes = end - hole;
            if hole_bytes == 0 {
                // The block after the hole is used and now follows a used one.
                clear_prev_free(end);
                return;
            }
        }
        if !listed {
            // The rest (a whole free block: its next header still says
            // PREV_FREE) goes back to its list.
            let hole_first = if hole == block { first } else { 0 };
            set_header(hole, hole_bytes | FREE | hole_first);
            raw::store(hole + hole_bytes - 8, hole_bytes);
            self.insert(hole, hole_bytes);
        }
    }

    /// Frees a block [`carve`](Self::carve) handed out (for a small object
    /// the CPU caches gave back); an emptied chunk as for
    /// [`free`](Self::free).
    pub(crate) fn free_carved(&mut self, payload: usize) -> Option<Released> {
        let block = payload - HEADER;
        let word = header(block);
        debug_assert!(word & FREE == 0, "a carved block freed twice");
        self.carved_bytes -= word & !FLAGS;
        self.release_block(block, word & !PARKED)
    }

    /// Takes the empty chunk whose only (free) block is `block` out of the
    /// region.
    fn unlink_chunk(&mut self, block: usize, bytes: usize) -> Released {
        self.remove(block, bytes);
        let chunk = block - HEADER;
        let pages = raw::load(chunk);
        self.chunks -= 1;
        self.pages -= pages;
        Released { chunk, pages }
    }

    /// The spare empty chunk, taken out of the region (for `trim`).
    pub(crate) fn take_spare(&mut self) -> Option<Released> {
        let block = self.spare;
        if block == 0 {
            return None;
        }
        Some(self.unlink_chunk(block, size_of(block)))
    }

    /// Resizes the used block at `payload` in place to hold `size` bytes:
    /// a shrink gives the tail back (merged with a free next block), a
    /// grow takes the free block right after it, with 1/8 slack when there
    /// is room. Returns whether the block now holds `size` bytes.
    pub(crate) fn resize(&mut self, payload: usize, size: usize) -> bool {
        let block = payload - HEADER;
        let word = header(block);
        let flags = word & (FIRST | PREV_FREE);
        let bytes = word & !FLAGS;
        let need = block_bytes(size);
        let next = block + bytes;
        let next_word = header(next);
        let next_free = if next_word & FREE != 0 {
            next_word & !FLAGS
        } else {
            0
        };
        if need <= bytes {
            if bytes - need + next_free >= MIN_BLOCK {
                if next_free != 0 {
                    self.remove(next, next_free);
                }
                set_header(block, need | flags);
                self.put_free(block + need, bytes - need + next_free, 0);
            }
            return true;
        }
        let total = bytes + next_free;
        if total < need {
            return false;
        }
        self.remove(next, next_free);
        let mut take = (need + need / 8).next_multiple_of(GRANULE).min(total);
        if total - take < MIN_BLOCK {
            take = if total - need >= MIN_BLOCK {
                need
            } else {
                total
            };
        }
        set_header(block, take | flags);
        if take < total {
            self.put_free(block + take, total - take, 0);
        } else {
            let after = block + total;
            clear_prev_free(after);
        }
        true
    }

    /// Debug builds: marks the carved block at `payload` as handed out;
    /// false if it already was (or is no carved block in a CPU list).
    pub(crate) fn unpark(payload: usize) -> bool {
        raw::atomic(payload - HEADER).fetch_and(!PARKED, Ordering::Relaxed) & (PARKED | FREE)
            == PARKED
    }

    /// Debug builds: marks the carved block at `payload` as given back by
    /// its caller; false if it already was (a double free) or is free.
    pub(crate) fn park(payload: usize) -> bool {
        raw::atomic(payload - HEADER).fetch_or(PARKED, Ordering::Relaxed) & (PARKED | FREE) == 0
    }

    /// Debug builds: whether the carved block at `payload` is not in a
    /// caller's hands.
    pub(crate) fn is_parked(payload: usize) -> bool {
        header(payload - HEADER) & PARKED != 0
    }

    /// Debug builds: whether the block at `payload` is in use.
    pub(crate) fn is_used(payload: usize) -> bool {
        header(payload - HEADER) & FREE == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_sizes_in_order() {
        let mut last = (0, 0);
        for size in (MIN_BLOCK..CHUNK_PAGES * PAGE_SIZE).step_by(GRANULE) {
            let b = bucket(size);
            assert!(b >= last, "{size}: {b:?} after {last:?}");
            assert!(b.0 < FL && b.1 < SL);
            last = b;
        }
        assert_eq!(bucket(511), (0, 31));
        assert_eq!(bucket(512), (1, 0));
        assert_eq!(bucket(1024 + 32), (2, 1));
    }

    /// A page-aligned run of `pages` pages, leaked.
    fn run(pages: usize) -> usize {
        let layout = std::alloc::Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).unwrap();
        // SAFETY: a non-zero size; the memory is leaked, so it stays valid.
        #[expect(unsafe_code, reason = "memory for a region under test")]
        let ptr = unsafe { std::alloc::alloc(layout) };
        assert!(!ptr.is_null());
        ptr.expose_provenance()
    }

    #[test]
    fn a_fresh_chunk_left_unused_becomes_the_spare_or_goes_back() {
        let mut region = Region::new();
        let a = run(CHUNK_PAGES);
        region.add_chunk(a, CHUNK_PAGES);
        let x = region.alloc(block_bytes(8000), 8000, 8).unwrap();
        assert_eq!(x, a + 2 * HEADER);
        // Chunk b arrives for a request that a's rest (in a smaller size
        // bucket than a whole chunk) now fits better (as when another CPU
        // freed a block meanwhile): b stays free, as the spare.
        let b = run(CHUNK_PAGES);
        let (y, released) = region.add_chunk_and_alloc(b, CHUNK_PAGES, block_bytes(1500), 1500, 8);
        let y = y.unwrap();
        assert!((a..a + CHUNK_PAGES * PAGE_SIZE).contains(&y));
        assert_eq!(released, None);
        assert_eq!(region.spare, b + HEADER);
        // With the spare taken, a third unused chunk goes back.
        let c = run(CHUNK_PAGES);
        let (z, released) = region.add_chunk_and_alloc(c, CHUNK_PAGES, block_bytes(1500), 1500, 8);
        assert!((a..a + CHUNK_PAGES * PAGE_SIZE).contains(&z.unwrap()));
        assert_eq!(
            released,
            Some(Released {
                chunk: c,
                pages: CHUNK_PAGES
            })
        );
        assert_eq!((region.chunks, region.pages), (2, 2 * CHUNK_PAGES));
        // A chunk the block does come from is neither (a's rest is too
        // small for it; d, listed last, is taken before the spare b).
        let d = run(CHUNK_PAGES);
        let big = CHUNK_PAGES * PAGE_SIZE - 6000;
        let (w, released) = region.add_chunk_and_alloc(d, CHUNK_PAGES, block_bytes(big), big, 8);
        assert_eq!(w, Some(d + 2 * HEADER));
        assert_eq!(released, None);
        assert_eq!(region.spare, b + HEADER);
        assert_eq!(region.chunks, 3);
    }

    #[test]
    fn block_sizes_round_to_the_granule() {
        assert_eq!(block_bytes(1), MIN_BLOCK);
        assert_eq!(block_bytes(1024), 1032);
        assert_eq!(block_bytes(1032), 1040);
        assert_eq!(block_bytes(1033), 1048);
        assert_eq!(chunk_pages_for(block_bytes(4096 - 24)), 1);
        assert_eq!(chunk_pages_for(block_bytes(4096 - 23)), 2);
    }
}
