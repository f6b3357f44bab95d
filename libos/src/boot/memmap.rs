//! Physical memory map arithmetic: the set of usable, page-aligned RAM ranges
//! after the kernel, boot structures and modules are carved out.
//!
//! Fixed capacity and no allocation: the kernel builds this before it has a
//! heap. Ranges are half-open `[start, end)` in bytes.

/// The page size the map aligns to.
pub const PAGE_BYTES: u64 = 4096;
/// How many disjoint usable ranges the map holds.
pub const MAX_RANGES: usize = 128;

/// A half-open physical range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl PhysRange {
    /// Bytes in the range.
    pub fn len_bytes(&self) -> u64 {
        self.end - self.start
    }
}

/// The map ran out of slots; the range that did not fit is lost, which the
/// kernel reports (it only costs usable memory, never safety).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapFull;

/// Sorted, disjoint, page-aligned usable ranges.
#[derive(Debug, Clone)]
pub struct MemoryMap {
    ranges: [PhysRange; MAX_RANGES],
    len: usize,
}

impl Default for MemoryMap {
    fn default() -> Self {
        Self::new()
    }
}

fn align_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE_BYTES - 1).map(|v| v & !(PAGE_BYTES - 1))
}

fn align_down(x: u64) -> u64 {
    x & !(PAGE_BYTES - 1)
}

impl MemoryMap {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            ranges: [PhysRange { start: 0, end: 0 }; MAX_RANGES],
            len: 0,
        }
    }

    /// The usable ranges, ascending.
    pub fn ranges(&self) -> &[PhysRange] {
        &self.ranges[..self.len]
    }

    /// Total usable bytes.
    pub fn usable_bytes(&self) -> u64 {
        self.ranges().iter().map(PhysRange::len_bytes).sum()
    }

    /// One past the highest usable byte (0 when empty).
    pub fn end(&self) -> u64 {
        self.ranges().last().map_or(0, |r| r.end)
    }

    /// Adds RAM `[start, start + size_bytes)`, shrunk inwards to whole pages,
    /// merging with neighbours. Empty or overflowing ranges are ignored.
    pub fn add_usable(&mut self, start: u64, size_bytes: u64) -> Result<(), MapFull> {
        let Some(end) = start.checked_add(size_bytes) else {
            return Ok(());
        };
        let (Some(start), end) = (align_up(start), align_down(end)) else {
            return Ok(());
        };
        if start >= end {
            return Ok(());
        }
        // Insert at the sorted position, then merge overlapping or touching
        // neighbours.
        let pos = self.ranges().partition_point(|r| r.start < start);
        if self.len == MAX_RANGES {
            return Err(MapFull);
        }
        self.ranges.copy_within(pos..self.len, pos + 1);
        self.ranges[pos] = PhysRange { start, end };
        self.len += 1;
        self.merge();
        Ok(())
    }

    fn merge(&mut self) {
        let mut out = 0;
        for i in 0..self.len {
            let r = self.ranges[i];
            if out > 0 && r.start <= self.ranges[out - 1].end {
                let prev = &mut self.ranges[out - 1];
                prev.end = prev.end.max(r.end);
            } else {
                self.ranges[out] = r;
                out += 1;
            }
        }
        self.len = out;
    }

    /// Removes `[start, start + size_bytes)`, grown outwards to whole pages.
    pub fn reserve(&mut self, start: u64, size_bytes: u64) -> Result<(), MapFull> {
        let end = start.saturating_add(size_bytes);
        let (start, end) = (align_down(start), align_up(end).unwrap_or(u64::MAX));
        if start >= end {
            return Ok(());
        }
        let mut i = 0;
        while i < self.len {
            let r = self.ranges[i];
            if r.end <= start || r.start >= end {
                i += 1;
                continue;
            }
            let left = PhysRange {
                start: r.start,
                end: start,
            };
            let right = PhysRange {
                start: end,
                end: r.end,
            };
            match (left.start < left.end, right.start < right.end) {
                (true, true) => {
                    if self.len == MAX_RANGES {
                        // Keep the larger half rather than fail open.
                        self.ranges[i] = if left.len_bytes() >= right.len_bytes() {
                            left
                        } else {
                            right
                        };
                        return Err(MapFull);
                    }
                    self.ranges.copy_within(i + 1..self.len, i + 2);
                    self.ranges[i] = left;
                    self.ranges[i + 1] = right;
                    self.len += 1;
                    i += 2;
                }
                (true, false) => {
                    self.ranges[i] = left;
                    i += 1;
                }
                (false, true) => {
                    self.ranges[i] = right;
                    i += 1;
                }
                (false, false) => {
                    self.ranges.copy_within(i + 1..self.len, i);
                    self.len -= 1;
                }
            }
        }
        Ok(())
    }

    /// Takes `size_bytes` (rounded up to pages) from the lowest usable range
    /// that fits entirely below `limit`, removing it from the map.
    pub fn take_below(&mut self, size_bytes: u64, limit: u64) -> Option<u64> {
        let size = align_up(size_bytes)?;
        let found = self
            .ranges()
            .iter()
            .find(|r| {
                r.len_bytes() >= size && r.start.checked_add(size).is_some_and(|e| e <= limit)
            })?
            .start;
        self.reserve(found, size).ok()?;
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(m: &MemoryMap) -> Vec<(u64, u64)> {
        m.ranges().iter().map(|r| (r.start, r.end)).collect()
    }

    #[test]
    fn aligns_inwards_and_merges() {
        let mut m = MemoryMap::new();
        m.add_usable(0x1001, 0x3000).unwrap();
        assert_eq!(spans(&m), [(0x2000, 0x4000)]);
        m.add_usable(0x4000, 0x1000).unwrap();
        m.add_usable(0x10_0000, 0x1000).unwrap();
        m.add_usable(0, 0x800).unwrap();
        assert_eq!(spans(&m), [(0x2000, 0x5000), (0x10_0000, 0x10_1000)]);
        assert_eq!(m.usable_bytes(), 0x4000);
        m.add_usable(u64::MAX - 10, 100).unwrap();
        assert_eq!(m.ranges().len(), 2);
    }

    #[test]
    fn reserve_splits_trims_and_removes() {
        let mut m = MemoryMap::new();
        m.add_usable(0, 0x10_0000).unwrap();
        m.reserve(0x2800, 0x100).unwrap();
        assert_eq!(spans(&m), [(0, 0x2000), (0x3000, 0x10_0000)]);
        m.reserve(0, 0x1000).unwrap();
        m.reserve(0xf_f000, 0x5000).unwrap();
        assert_eq!(spans(&m), [(0x1000, 0x2000), (0x3000, 0xf_f000)]);
        m.reserve(0, u64::MAX).unwrap();
        assert!(m.ranges().is_empty());
    }

    #[test]
    fn take_below_respects_limit() {
        let mut m = MemoryMap::new();
        m.add_usable(0x1000, 0x1000).unwrap();
        m.add_usable(0x10_0000, 0x10_0000).unwrap();
        assert_eq!(m.take_below(0x2000, 0x20_0000), Some(0x10_0000));
        assert_eq!(m.take_below(0x1000, 0x2000), Some(0x1000));
        assert_eq!(m.take_below(0x10_0000, u64::MAX), None);
        assert_eq!(spans(&m), [(0x10_2000, 0x20_0000)]);
    }

    #[test]
    fn full_map_reports_instead_of_losing_silently() {
        let mut m = MemoryMap::new();
        for i in 0..MAX_RANGES as u64 {
            m.add_usable(i * 0x2000, 0x1000).unwrap();
        }
        assert_eq!(m.add_usable(0x1000_0000, 0x1000), Err(MapFull));
        assert_eq!(
            m.reserve(0x800, 0x100),
            Ok(()),
            "no split needed at a range start"
        );
        assert_eq!(m.reserve(0x2000 + 0x1000 - 0x1000, 0x1000), Ok(()));
    }

    #[test]
    fn model_check_against_a_page_bitmap() {
        // Random adds and reserves compared with a plain per-page model.
        let pages = 256u64;
        let mut model = vec![false; pages as usize];
        let mut m = MemoryMap::new();
        let mut seed = 0x1234_5678_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let start = next() % (pages * PAGE_BYTES);
            let len = next() % (16 * PAGE_BYTES);
            let end = (start + len).min(pages * PAGE_BYTES);
            if next() % 3 == 0 {
                m.reserve(start, end - start).unwrap();
                for p in start / PAGE_BYTES..end.div_ceil(PAGE_BYTES) {
                    model[p as usize] = false;
                }
            } else {
                m.add_usable(start, end - start).unwrap();
                for p in start.div_ceil(PAGE_BYTES)..end / PAGE_BYTES {
                    model[p as usize] = true;
                }
            }
            let mut got = vec![false; pages as usize];
            for r in m.ranges() {
                for p in r.start / PAGE_BYTES..r.end / PAGE_BYTES {
                    got[p as usize] = true;
                }
            }
            assert_eq!(got, model);
            assert!(m.ranges().windows(2).all(|w| w[0].end < w[1].start));
        }
    }
}
