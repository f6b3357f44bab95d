//! [`RingArena`]: byte ranges of one buffer handed out in turn, as in a
//! ring: each range follows the last one handed out, wrapping to the
//! start when the end has no room, and the room of a returned range comes
//! back once every range handed out before it has come back too.
//!
//! The virtio-net driver takes the bytes of its long frames to send
//! (frames the card cuts into segments) from one in the shared DMA pool.
//! A device finishes its sends in the order it got them, so ranges come
//! back in order and a frame takes just its own length, whatever the mix
//! of lengths: a fixed slot per frame would hold a 4 KiB reply in room
//! for 62 KiB. A range returned early waits for those before it.
//!
//! At most `N` ranges are out (or returned but not yet reclaimed) at
//! once; the bookkeeping is a fixed array, so nothing allocates.

/// A range handed out, oldest first in [`RingArena`]'s queue.
#[derive(Debug, Clone, Copy, Default)]
struct Range {
    start: usize,
    end: usize,
    /// Not yet returned.
    out: bool,
}

/// Ranges of `size` bytes handed out in turn, at most `N` at once.
#[derive(Debug)]
pub struct RingArena<const N: usize> {
    size: usize,
    align: usize,
    /// A circular queue of `len` ranges from `first`, oldest first.
    ranges: [Range; N],
    first: usize,
    len: usize,
}

impl<const N: usize> RingArena<N> {
    /// An arena of `size` bytes whose ranges start at multiples of `align`
    /// (a power of two).
    pub const fn new(size: usize, align: usize) -> Self {
        assert!(align.is_power_of_two());
        Self {
            size,
            align,
            ranges: [Range {
                start: 0,
                end: 0,
                out: false,
            }; N],
            first: 0,
            len: 0,
        }
    }

    /// Ranges out or waiting to be reclaimed.
    pub fn ranges(&self) -> usize {
        self.len
    }

    fn at(&self, i: usize) -> &Range {
        &self.ranges[(self.first + i) % N]
    }

    /// Hands out `len` bytes: their offset, or `None` if there is no room
    /// now (until older ranges come back), `N` ranges are out, or `len`
    /// is 0 or over the arena's size.
    pub fn alloc(&mut self, len: usize) -> Option<usize> {
        if len == 0 || len > self.size || self.len == N {
            return None;
        }
        let start = if self.len == 0 {
            0
        } else {
            let oldest = *self.at(0);
            let newest = *self.at(self.len - 1);
            let head = newest.end.checked_next_multiple_of(self.align)?;
            if newest.start >= oldest.start {
                // Not wrapped: free from the head to the end, and from the
                // start to the oldest range.
                if head.checked_add(len)? <= self.size {
                    head
                } else if len <= oldest.start {
                    0
                } else {
                    return None;
                }
            } else if head.checked_add(len)? <= oldest.start {
                // Wrapped: free between the newest range and the oldest.
                head
            } else {
                return None;
            }
        };
        let slot = (self.first + self.len) % N;
        self.ranges[slot] = Range {
            start,
            end: start + len,
            out: true,
        };
        self.len += 1;
        Some(start)
    }

    /// Returns the range handed out at `offset`; `false` (nothing
    /// changed) if none is out there.
    pub fn free(&mut self, offset: usize) -> bool {
        let Some(i) = (0..self.len).find(|&i| {
            let r = self.at(i);
            r.out && r.start == offset
        }) else {
            return false;
        };
        self.ranges[(self.first + i) % N].out = false;
        while self.len > 0 && !self.at(0).out {
            self.first = (self.first + 1) % N;
            self.len -= 1;
        }
        true
    }
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;
