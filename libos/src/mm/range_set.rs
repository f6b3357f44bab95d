//! [`RangeSet`]: a set of disjoint, non-adjacent `u64` ranges. The [`Vm`](super::Vm)
//! uses one for the pages that belong to an area but are not present in
//! the page tables yet (`PROT_NONE` reservations, the stack below its
//! initial pages).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Range;

/// Disjoint ranges keyed by start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// An empty set.
    pub const fn new() -> Self {
        Self {
            ranges: BTreeMap::new(),
        }
    }

    /// Adds `r`, coalescing with touching ranges.
    pub fn insert(&mut self, r: Range<u64>) {
        if r.is_empty() {
            return;
        }
        let (mut start, mut end) = (r.start, r.end);
        self.remove(start..end);
        if let Some((&s, &e)) = self.ranges.range(..start).next_back()
            && e == start
        {
            self.ranges.remove(&s);
            start = s;
        }
        if let Some(e) = self.ranges.remove(&end) {
            end = e;
        }
        self.ranges.insert(start, end);
    }

    /// Removes `r` and returns the parts of the set that were in it,
    /// ascending.
    pub fn remove(&mut self, r: Range<u64>) -> Vec<Range<u64>> {
        let mut out = Vec::new();
        if r.is_empty() {
            return out;
        }
        let first = self
            .ranges
            .range(..r.start)
            .next_back()
            .map_or(r.start, |(&s, _)| s);
        let hit: Vec<(u64, u64)> = self
            .ranges
            .range(first..r.end)
            .map(|(&s, &e)| (s, e))
            .filter(|&(_, e)| e > r.start)
            .collect();
        for (s, e) in hit {
            self.ranges.remove(&s);
            if s < r.start {
                self.ranges.insert(s, r.start);
            }
            if e > r.end {
                self.ranges.insert(r.end, e);
            }
            out.push(s.max(r.start)..e.min(r.end));
        }
        out
    }

    /// Whether `addr` is in the set.
    pub fn contains(&self, addr: u64) -> bool {
        self.ranges
            .range(..=addr)
            .next_back()
            .is_some_and(|(_, &e)| addr < e)
    }

    /// Every range, ascending.
    pub fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.ranges.iter().map(|(&s, &e)| s..e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init, reason = "lists of ranges")]
    fn insert_coalesces_and_remove_splits() {
        let mut s = RangeSet::new();
        s.insert(10..20);
        s.insert(30..40);
        s.insert(20..30);
        assert_eq!(s.iter().collect::<Vec<_>>(), [10..40]);
        assert_eq!(s.remove(15..25), [15..25]);
        assert_eq!(s.iter().collect::<Vec<_>>(), [10..15, 25..40]);
        assert!(s.contains(14) && !s.contains(15) && s.contains(25));
        assert_eq!(s.remove(0..100), [10..15, 25..40]);
        assert!(s.iter().next().is_none());
        s.insert(5..8);
        s.insert(1..6);
        assert_eq!(s.iter().collect::<Vec<_>>(), [1..8]);
    }
}
