//! The physical frame allocator: one bit per 4 KiB frame over the span of
//! physical memory, with single-frame allocation in amortised O(1) (a
//! next-fit hint over 64-frame words) and contiguous, aligned runs for DMA
//! buffers and page-level allocations.
//!
//! It owns no memory: the kernel hands it the bitmap storage (carved from RAM
//! before any allocator exists) and marks usable ranges free. Every frame
//! starts as used, so memory nobody declared usable is never handed out.

/// Bytes in a frame.
pub const FRAME_BYTES: u64 = 4096;

/// Words of bitmap storage needed for `frame_count` frames.
pub const fn bitmap_words(frame_count: usize) -> usize {
    frame_count.div_ceil(64)
}

/// Why a free or a range operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The address is not 4 KiB aligned.
    Unaligned(u64),
    /// The range is outside the span this allocator covers.
    OutOfSpan {
        /// Start of the offending range.
        paddr: u64,
        /// Frames in it.
        frame_count: usize,
    },
    /// A frame in the range was already free: a double free.
    AlreadyFree(u64),
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unaligned(a) => write!(f, "physical address {a:#x} is not frame-aligned"),
            Self::OutOfSpan { paddr, frame_count } => {
                write!(
                    f,
                    "{frame_count} frames at {paddr:#x} lie outside the managed span"
                )
            }
            Self::AlreadyFree(a) => write!(f, "frame {a:#x} freed twice"),
        }
    }
}

/// A bitmap frame allocator over `[base, base + frame_count * 4 KiB)`.
/// A set bit means "in use".
#[derive(Debug)]
pub struct FrameAllocator<'a> {
    bits: &'a mut [u64],
    base_paddr: u64,
    frame_count: usize,
    free_count: usize,
    /// Word index where the next single-frame search starts.
    hint: usize,
}

impl<'a> FrameAllocator<'a> {
    /// An allocator with every frame in use. `storage` must hold at least
    /// [`bitmap_words`]`(frame_count)` words; `base_paddr` is rounded down to
    /// a frame.
    ///
    /// # Panics
    /// If `storage` is too small (a kernel bug, not an input error).
    pub fn new(storage: &'a mut [u64], base_paddr: u64, frame_count: usize) -> Self {
        let words = bitmap_words(frame_count);
        assert!(storage.len() >= words, "frame bitmap storage too small");
        let bits = &mut storage[..words];
        bits.fill(u64::MAX);
        Self {
            bits,
            base_paddr: base_paddr & !(FRAME_BYTES - 1),
            frame_count,
            free_count: 0,
            hint: 0,
        }
    }

    /// Frames currently free.
    pub fn free_frames(&self) -> usize {
        self.free_count
    }

    /// Frames in the managed span (used or free).
    pub fn span_frames(&self) -> usize {
        self.frame_count
    }

    fn index_of(&self, paddr: u64, frame_count: usize) -> Result<usize, FrameError> {
        if !paddr.is_multiple_of(FRAME_BYTES) {
            return Err(FrameError::Unaligned(paddr));
        }
        let out = FrameError::OutOfSpan { paddr, frame_count };
        let first = paddr.checked_sub(self.base_paddr).ok_or(out)? / FRAME_BYTES;
        let first = usize::try_from(first).map_err(|_| out)?;
        match first.checked_add(frame_count) {
            Some(end) if end <= self.frame_count => Ok(first),
            _ => Err(out),
        }
    }

    fn is_used(&self, index: usize) -> bool {
        self.bits[index / 64] & (1 << (index % 64)) != 0
    }

    fn set(&mut self, index: usize, used: bool) {
        let (w, b) = (index / 64, 1u64 << (index % 64));
        if used {
            self.bits[w] |= b;
        } else {
            self.bits[w] &= !b;
        }
    }

    /// Declares `[paddr, paddr + frame_count * 4 KiB)` usable RAM. Frames
    /// already free stay free (adding twice is harmless).
    pub fn add_free(&mut self, paddr: u64, frame_count: usize) -> Result<(), FrameError> {
        let first = self.index_of(paddr, frame_count)?;
        for i in first..first + frame_count {
            if self.is_used(i) {
                self.set(i, false);
                self.free_count += 1;
            }
        }
        Ok(())
    }

    /// Allocates one frame and returns its physical address.
    pub fn alloc(&mut self) -> Option<u64> {
        let words = self.bits.len();
        for step in 0..words {
            let w = (self.hint + step) % words;
            let word = self.bits[w];
            if word != u64::MAX {
                let index = w * 64 + word.trailing_ones() as usize;
                if index >= self.frame_count {
                    continue;
                }
                self.set(index, true);
                self.free_count -= 1;
                self.hint = w;
                return Some(self.base_paddr + index as u64 * FRAME_BYTES);
            }
        }
        None
    }

    /// Allocates `frame_count` physically contiguous frames whose start is a
    /// multiple of `align_frames` frames (a power of two; 1 for none).
    ///
    /// First fit, scanning whole 64-frame words where it can, so a search
    /// costs O(span / 64) word operations.
    pub fn alloc_contiguous(&mut self, frame_count: usize, align_frames: usize) -> Option<u64> {
        if frame_count == 0 || !align_frames.is_power_of_two() || frame_count > self.free_count {
            return None;
        }
        if frame_count == 1 && align_frames == 1 {
            return self.alloc();
        }
        // Alignment is of the physical address, so account for the base.
        let base_frame = usize::try_from(self.base_paddr / FRAME_BYTES).ok()?;
        let align_up = |i: usize| (base_frame + i).next_multiple_of(align_frames) - base_frame;
        let mut start = align_up(0);
        while start.checked_add(frame_count)? <= self.frame_count {
            start = align_up(self.next_free(start)?);
            let end = start.checked_add(frame_count)?;
            if end > self.frame_count {
                return None;
            }
            match self.last_used_in(start, end) {
                None => {
                    self.set_range(start, end, true);
                    self.free_count -= frame_count;
                    return Some(self.base_paddr + start as u64 * FRAME_BYTES);
                }
                // Skip past the used frame, to the next aligned start.
                Some(used) => start = align_up(used + 1),
            }
        }
        None
    }

    /// The first free frame at or after `from`.
    fn next_free(&self, from: usize) -> Option<usize> {
        let mut w = from / 64;
        let mut word = self.bits.get(w)? | ((1u64 << (from % 64)) - 1);
        while word == u64::MAX {
            w += 1;
            word = *self.bits.get(w)?;
        }
        let index = w * 64 + word.trailing_ones() as usize;
        (index < self.frame_count).then_some(index)
    }

    /// Mask of bits `[lo, hi)` within one word (`hi` ≤ 64).
    fn mask(lo: usize, hi: usize) -> u64 {
        let upper = if hi == 64 { u64::MAX } else { (1u64 << hi) - 1 };
        upper & !((1u64 << lo) - 1)
    }

    /// The highest used frame in `[start, end)`, if any.
    fn last_used_in(&self, start: usize, end: usize) -> Option<usize> {
        let (first_w, last_w) = (start / 64, (end - 1) / 64);
        (first_w..=last_w).rev().find_map(|w| {
            let lo = if w == first_w { start % 64 } else { 0 };
            let hi = if w == last_w { (end - 1) % 64 + 1 } else { 64 };
            let used = self.bits[w] & Self::mask(lo, hi);
            (used != 0).then(|| w * 64 + 63 - used.leading_zeros() as usize)
        })
    }

    /// Marks `[start, end)` used or free, a word at a time.
    fn set_range(&mut self, start: usize, end: usize, used: bool) {
        let (first_w, last_w) = (start / 64, (end - 1) / 64);
        for w in first_w..=last_w {
            let lo = if w == first_w { start % 64 } else { 0 };
            let hi = if w == last_w { (end - 1) % 64 + 1 } else { 64 };
            if used {
                self.bits[w] |= Self::mask(lo, hi);
            } else {
                self.bits[w] &= !Self::mask(lo, hi);
            }
        }
    }

    /// Frees `frame_count` frames at `paddr`. Refuses, changing nothing, if
    /// any of them is already free or outside the span.
    pub fn free(&mut self, paddr: u64, frame_count: usize) -> Result<(), FrameError> {
        let first = self.index_of(paddr, frame_count)?;
        if let Some(i) = (first..first + frame_count).find(|&i| !self.is_used(i)) {
            return Err(FrameError::AlreadyFree(
                self.base_paddr + i as u64 * FRAME_BYTES,
            ));
        }
        for i in first..first + frame_count {
            self.set(i, false);
        }
        self.free_count += frame_count;
        self.hint = self.hint.min(first / 64);
        Ok(())
    }

    /// Extends the used run of `frame_count` frames at `paddr` by `extra`
    /// frames in place if the frames right after it are all free (for
    /// [`PageSource::grow_pages`](crate::PageSource::grow_pages)); returns
    /// whether it did. Changes nothing otherwise, nor for a run that is not
    /// used or not inside the span.
    pub fn try_extend(&mut self, paddr: u64, frame_count: usize, extra: usize) -> bool {
        let Some(total) = frame_count.checked_add(extra) else {
            return false;
        };
        let Ok(first) = self.index_of(paddr, total) else {
            return false;
        };
        let (end, new_end) = (first + frame_count, first + total);
        if extra == 0 || (first..end).any(|i| !self.is_used(i)) {
            return false;
        }
        if self.last_used_in(end, new_end).is_some() {
            return false;
        }
        self.set_range(end, new_end, true);
        self.free_count -= extra;
        true
    }

    /// Marks `[paddr, paddr + frame_count * 4 KiB)` used whatever its state
    /// (for ranges discovered to be reserved after [`Self::add_free`]).
    pub fn reserve(&mut self, paddr: u64, frame_count: usize) -> Result<(), FrameError> {
        let first = self.index_of(paddr, frame_count)?;
        for i in first..first + frame_count {
            if !self.is_used(i) {
                self.set(i, true);
                self.free_count -= 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const BASE: u64 = 0x10_0000;

    #[test]
    fn starts_all_used_until_ranges_are_added() {
        let mut storage = vec![0u64; bitmap_words(100)];
        let mut fa = FrameAllocator::new(&mut storage, BASE, 100);
        assert_eq!(fa.alloc(), None);
        fa.add_free(BASE + 10 * FRAME_BYTES, 5).unwrap();
        fa.add_free(BASE + 10 * FRAME_BYTES, 5).unwrap();
        assert_eq!(fa.free_frames(), 5);
        let got: BTreeSet<_> = std::iter::from_fn(|| fa.alloc()).collect();
        assert_eq!(got.len(), 5);
        assert!(
            got.iter()
                .all(|&a| (BASE + 10 * FRAME_BYTES..BASE + 15 * FRAME_BYTES).contains(&a))
        );
        assert_eq!(fa.free_frames(), 0);
    }

    #[test]
    fn runs_extend_only_into_free_frames() {
        let mut storage = [0u64; 1];
        let mut frames = FrameAllocator::new(&mut storage, 0x10_0000, 64);
        frames.add_free(0x10_0000, 64).unwrap();
        let a = frames.alloc_contiguous(4, 1).unwrap();
        let b = frames.alloc_contiguous(2, 1).unwrap();
        assert_eq!(b, a + 4 * FRAME_BYTES, "next fit");
        assert!(!frames.try_extend(a, 4, 1), "the next frame is `b`'s");
        assert!(frames.try_extend(b, 2, 10));
        assert_eq!(frames.free_frames(), 64 - 16);
        assert!(!frames.try_extend(b, 12, 64), "past the span");
        assert!(
            !frames.try_extend(b + 12 * FRAME_BYTES, 1, 1),
            "not a used run"
        );
        assert_eq!(frames.free_frames(), 64 - 16);
        frames.free(a, 4).unwrap();
        frames.free(b, 12).unwrap();
        assert_eq!(frames.free_frames(), 64);
    }

    #[test]
    fn frame_past_the_span_end_is_never_returned() {
        // 70 frames: the second word has 58 padding bits that must stay used.
        let mut storage = vec![0u64; bitmap_words(70)];
        let mut fa = FrameAllocator::new(&mut storage, BASE, 70);
        fa.add_free(BASE, 70).unwrap();
        let n = std::iter::from_fn(|| fa.alloc()).count();
        assert_eq!(n, 70);
        assert_eq!(
            fa.add_free(BASE, 71),
            Err(FrameError::OutOfSpan {
                paddr: BASE,
                frame_count: 71
            })
        );
    }

    #[test]
    fn double_free_and_bad_addresses_are_refused_without_change() {
        let mut storage = vec![0u64; 1];
        let mut fa = FrameAllocator::new(&mut storage, BASE, 64);
        fa.add_free(BASE, 64).unwrap();
        let a = fa.alloc().unwrap();
        let b = fa.alloc().unwrap();
        fa.free(a, 1).unwrap();
        assert_eq!(fa.free(a, 1), Err(FrameError::AlreadyFree(a)));
        // A run that includes a free frame is refused as a whole.
        assert_eq!(fa.free(a.min(b), 2), Err(FrameError::AlreadyFree(a)));
        assert_eq!(fa.free_frames(), 63);
        assert_eq!(fa.free(BASE + 1, 1), Err(FrameError::Unaligned(BASE + 1)));
        assert!(matches!(
            fa.free(BASE - FRAME_BYTES, 1),
            Err(FrameError::OutOfSpan { .. })
        ));
        assert!(matches!(
            fa.free(!0xfff, 1),
            Err(FrameError::OutOfSpan { .. })
        ));
    }

    #[test]
    fn contiguous_runs_are_aligned_and_skip_holes() {
        // Base at an odd frame so alignment must account for it.
        let base = BASE + FRAME_BYTES;
        let mut storage = vec![0u64; bitmap_words(600)];
        let mut fa = FrameAllocator::new(&mut storage, base, 600);
        fa.add_free(base, 600).unwrap();
        fa.reserve(base + 20 * FRAME_BYTES, 1).unwrap();
        let run = fa.alloc_contiguous(16, 16).unwrap();
        assert_eq!((run / FRAME_BYTES) % 16, 0);
        let run2 = fa.alloc_contiguous(300, 1).unwrap();
        assert!(
            run2 >= base + 21 * FRAME_BYTES || run2 + 300 * FRAME_BYTES <= base + 20 * FRAME_BYTES
        );
        assert_eq!(fa.alloc_contiguous(1000, 1), None);
        assert_eq!(
            fa.alloc_contiguous(4, 3),
            None,
            "alignment must be a power of two"
        );
        fa.free(run2, 300).unwrap();
        fa.free(run, 16).unwrap();
        assert_eq!(fa.free_frames(), 599);
    }

    #[test]
    fn random_operations_match_a_set_model() {
        let frames = 1000;
        let mut storage = vec![0u64; bitmap_words(frames)];
        let mut fa = FrameAllocator::new(&mut storage, BASE, frames);
        fa.add_free(BASE, frames).unwrap();
        let mut live: Vec<(u64, usize)> = Vec::new();
        let mut used = BTreeSet::new();
        let mut seed = 42u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..20_000 {
            if rnd() % 2 == 0 && !live.is_empty() {
                let (a, n) = live.swap_remove(rnd() % live.len());
                fa.free(a, n).unwrap();
                for i in 0..n as u64 {
                    assert!(used.remove(&(a + i * FRAME_BYTES)));
                }
            } else {
                // Mostly small runs, sometimes runs spanning several words.
                let n = if rnd() % 8 == 0 {
                    1 + rnd() % 200
                } else {
                    1 + rnd() % 8
                };
                let align = 1 << (rnd() % 7);
                if let Some(a) = fa.alloc_contiguous(n, align) {
                    assert_eq!((a / FRAME_BYTES) % align as u64, 0);
                    for i in 0..n as u64 {
                        assert!(used.insert(a + i * FRAME_BYTES), "frame handed out twice");
                    }
                    live.push((a, n));
                }
            }
            assert_eq!(fa.free_frames(), frames - used.len());
        }
    }
}
