//! [`DmaArena`]: the bookkeeping of the shared DMA pool — which bytes of one
//! fixed region are handed out — as plain logic over offsets, so that it is
//! tested on the host. The kernel (`kernel/src/platform/dma.rs`) owns the
//! memory itself: it makes the region shared with the host, maps it and
//! turns the offsets given here into addresses.
//!
//! The region is cut into blocks of [`DMA_BLOCK_BYTES`]; an allocation is a
//! run of whole blocks, found first-fit, starting at a block whose offset
//! is a multiple of the requested alignment (so with a page-aligned region,
//! a page-aligned request gets a page-aligned address: virtqueues; a
//! 2 KiB request gets a 2 KiB slot: packet buffers). Two bitmaps: blocks in
//! use, and blocks that start an allocation — so a free must name exactly
//! an allocation (offset and length), and a double free or a free of the
//! wrong length is refused instead of corrupting the pool.
//!
//! Every failure is an error ([`DmaError`]): running out is
//! [`DmaError::Exhausted`], which a driver turns into a dropped packet or
//! `ENOBUFS`, never a panic.

use core::fmt;

/// Bytes of one block: the allocation granule.
pub const DMA_BLOCK_BYTES: usize = 256;

/// Bits in one bitmap word.
const WORD_BITS: usize = u64::BITS as usize;

/// Why an arena operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaError {
    /// No free run of the size and alignment asked for.
    Exhausted,
    /// A size of 0, or larger than the region.
    BadSize,
    /// An alignment that is not a power of two.
    BadAlign,
    /// A free at an offset where no allocation starts (a double free, or
    /// an address that was never handed out).
    NotAllocated,
    /// A free whose length differs from the allocation's.
    WrongLength,
    /// The bitmap storage is too small for the region.
    StorageTooSmall,
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exhausted => "the shared DMA pool is exhausted",
            Self::BadSize => "a DMA size of 0 or larger than the pool",
            Self::BadAlign => "a DMA alignment that is not a power of two",
            Self::NotAllocated => "freeing DMA memory that is not allocated (double free?)",
            Self::WrongLength => "freeing DMA memory with a length other than allocated",
            Self::StorageTooSmall => "the DMA bitmap storage is too small",
        })
    }
}

/// Bookkeeping of a region of `region_bytes` (see the module docs).
#[derive(Debug)]
pub struct DmaArena<'a> {
    /// Blocks in the region.
    blocks: usize,
    /// One bit per block: in use.
    used: &'a mut [u64],
    /// One bit per block: the first block of an allocation.
    starts: &'a mut [u64],
    /// Blocks in use now.
    used_blocks: usize,
    /// The most blocks ever in use at once.
    peak_blocks: usize,
}

/// Bitmap words the arena needs for a region of `region_bytes` (for each
/// of its two bitmaps; [`DmaArena::new`] takes twice this many).
pub const fn bitmap_words(region_bytes: usize) -> usize {
    (region_bytes / DMA_BLOCK_BYTES).div_ceil(WORD_BITS)
}

fn bit(map: &[u64], i: usize) -> bool {
    map[i / WORD_BITS] & (1 << (i % WORD_BITS)) != 0
}

fn set(map: &mut [u64], i: usize, on: bool) {
    if on {
        map[i / WORD_BITS] |= 1 << (i % WORD_BITS);
    } else {
        map[i / WORD_BITS] &= !(1 << (i % WORD_BITS));
    }
}

impl<'a> DmaArena<'a> {
    /// An empty arena over a region of `region_bytes` (whole blocks; a
    /// partial last block is not used), keeping its bitmaps in `storage`
    /// (at least `2 * bitmap_words(region_bytes)` words; zeroed here).
    pub fn new(region_bytes: usize, storage: &'a mut [u64]) -> Result<Self, DmaError> {
        let words = bitmap_words(region_bytes);
        if storage.len() < 2 * words {
            return Err(DmaError::StorageTooSmall);
        }
        let (used, rest) = storage.split_at_mut(words);
        let starts = &mut rest[..words];
        used.fill(0);
        starts.fill(0);
        Ok(Self {
            blocks: region_bytes / DMA_BLOCK_BYTES,
            used,
            starts,
            used_blocks: 0,
            peak_blocks: 0,
        })
    }

    /// Bytes the arena manages.
    pub fn region_bytes(&self) -> usize {
        self.blocks * DMA_BLOCK_BYTES
    }

    /// Bytes handed out now (whole blocks).
    pub fn used_bytes(&self) -> usize {
        self.used_blocks * DMA_BLOCK_BYTES
    }

    /// The most bytes ever handed out at once.
    pub fn peak_bytes(&self) -> usize {
        self.peak_blocks * DMA_BLOCK_BYTES
    }

    /// Reserves `bytes` (rounded up to whole blocks) at an offset that is a
    /// multiple of `align` (a power of two; anything up to
    /// [`DMA_BLOCK_BYTES`] is met by every block) and returns the offset.
    pub fn alloc(&mut self, bytes: usize, align: usize) -> Result<usize, DmaError> {
        if !align.is_power_of_two() {
            return Err(DmaError::BadAlign);
        }
        if bytes == 0 || bytes > self.region_bytes() {
            return Err(DmaError::BadSize);
        }
        let count = bytes.div_ceil(DMA_BLOCK_BYTES);
        let step = (align / DMA_BLOCK_BYTES).max(1);
        let mut first = 0;
        while first + count <= self.blocks {
            match self.last_used(first, first + count) {
                None => {
                    for i in first..first + count {
                        set(self.used, i, true);
                    }
                    set(self.starts, first, true);
                    self.used_blocks += count;
                    self.peak_blocks = self.peak_blocks.max(self.used_blocks);
                    return Ok(first * DMA_BLOCK_BYTES);
                }
                // Skip past the obstacle, to the next aligned block.
                Some(busy) => first = (busy + 1).next_multiple_of(step),
            }
        }
        Err(DmaError::Exhausted)
    }

    /// Gives back the allocation of `bytes` at `offset`, exactly as
    /// [`DmaArena::alloc`] returned it and asked for it.
    pub fn free(&mut self, offset: usize, bytes: usize) -> Result<(), DmaError> {
        if bytes == 0 || bytes > self.region_bytes() {
            return Err(DmaError::BadSize);
        }
        if !offset.is_multiple_of(DMA_BLOCK_BYTES) || offset >= self.region_bytes() {
            return Err(DmaError::NotAllocated);
        }
        let first = offset / DMA_BLOCK_BYTES;
        let count = bytes.div_ceil(DMA_BLOCK_BYTES);
        if !bit(self.starts, first) {
            return Err(DmaError::NotAllocated);
        }
        let end = first + count;
        let body_ok = end <= self.blocks
            && (first + 1..end).all(|i| bit(self.used, i) && !bit(self.starts, i));
        let ends_here = end == self.blocks || !bit(self.used, end) || bit(self.starts, end);
        if !body_ok || !ends_here {
            return Err(DmaError::WrongLength);
        }
        for i in first..end {
            set(self.used, i, false);
        }
        set(self.starts, first, false);
        self.used_blocks -= count;
        Ok(())
    }

    /// The last block in use in `[from, to)`, if any (the last, so a
    /// search skips as far as possible).
    fn last_used(&self, from: usize, to: usize) -> Option<usize> {
        let mut i = to;
        while i > from {
            let word = (i - 1) / WORD_BITS;
            let word_start = (word * WORD_BITS).max(from);
            // Bits [word_start, i) of this word.
            let lo = word_start % WORD_BITS;
            let hi = i - word * WORD_BITS;
            let mask = if hi - lo == WORD_BITS {
                u64::MAX
            } else {
                ((1u64 << (hi - lo)) - 1) << lo
            };
            let busy = self.used[word] & mask;
            if busy != 0 {
                return Some(word * WORD_BITS + (WORD_BITS - 1 - busy.leading_zeros() as usize));
            }
            i = word_start;
        }
        None
    }
}

#[cfg(test)]
#[path = "dma_tests.rs"]
mod tests;
