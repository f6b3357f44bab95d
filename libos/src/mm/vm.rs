//! [`Vm`]: the bookkeeping of a process's address space — the sorted,
//! non-overlapping [`Vma`]s, the `brk` area and the `mmap` placement
//! policy. Pure data: the operations that also change page tables are in
//! [`super::ops`].

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use super::range_set::RangeSet;
use super::vma::Vma;
use super::{MMAP_MIN_ADDR, page_up};
use crate::elf::{PAGE_SIZE, USER_SPACE_END};
use crate::exec::AddressLayout;

/// Gap Linux keeps between the top of the mmap area and the stack top
/// at least (`MIN_GAP` in `mm/util.c`).
const MIN_MMAP_GAP: u64 = 128 << 20;
/// Linux's `stack_guard_gap` (256 pages).
pub const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

/// A process's areas and heap.
#[derive(Debug, Clone)]
pub struct Vm {
    areas: BTreeMap<u64, Vma>,
    /// Where the heap starts (`start_brk`).
    pub(crate) brk_start: u64,
    /// The current break, as the program set it (not page aligned).
    pub(crate) brk: u64,
    /// Top-down `mmap` placement starts below this.
    pub(crate) mmap_base: u64,
    /// Top of the main stack (exclusive).
    pub(crate) stack_top: u64,
    /// How far below `stack_top` the stack may grow (`RLIMIT_STACK`).
    pub(crate) stack_limit: u64,
    /// Pages inside areas that are not in the page tables yet: mapped on
    /// first access (`handle_page_fault`) or when `mprotect` makes them
    /// accessible.
    pub(crate) unpopulated: RangeSet,
    /// Bytes of the areas charged to the commit ([`Vma::accounted`]),
    /// kept in step by every change to the map.
    committed: u64,
}

impl Default for Vm {
    fn default() -> Self {
        Self::new(AddressLayout::default().stack_top, 8 << 20)
    }
}

impl Vm {
    /// An empty address space whose stack ends at `stack_top`; the mmap
    /// area starts below the stack's reservation (`stack_limit_bytes` plus
    /// the guard gap, at least 128 MiB), as Linux places it without
    /// randomisation.
    pub fn new(stack_top: u64, stack_limit_bytes: u64) -> Self {
        let gap = stack_limit_bytes
            .saturating_add(STACK_GUARD_GAP)
            .clamp(MIN_MMAP_GAP, stack_top / 6 * 5);
        let mmap_base = (stack_top - gap) & !(PAGE_SIZE - 1);
        Self {
            areas: BTreeMap::new(),
            brk_start: 0,
            brk: 0,
            mmap_base,
            stack_top,
            stack_limit: stack_limit_bytes,
            unpopulated: RangeSet::new(),
            committed: 0,
        }
    }

    /// Bytes charged to the commit: the sum of the accounted areas
    /// (Linux's `Committed_AS` for this process).
    pub fn committed_bytes(&self) -> u64 {
        self.committed
    }

    /// Bytes the accounted areas in `start..end` charge.
    pub fn charged_in(&self, start: u64, end: u64) -> u64 {
        self.overlapping(start, end)
            .filter(|v| v.accounted)
            .map(|v| v.end.min(end) - v.start.max(start))
            .sum()
    }

    /// Adds an area to the map (no merging), charging it.
    fn put(&mut self, vma: Vma) {
        self.committed += vma.charged_bytes();
        if let Some(old) = self.areas.insert(vma.start, vma) {
            // Callers only put areas over free ranges.
            self.committed -= old.charged_bytes();
        }
    }

    /// Takes the area starting at `key` out of the map, uncharging it.
    fn take(&mut self, key: u64) -> Option<Vma> {
        let v = self.areas.remove(&key)?;
        self.committed -= v.charged_bytes();
        Some(v)
    }

    /// Every area, ascending.
    pub fn areas(&self) -> impl Iterator<Item = &Vma> {
        self.areas.values()
    }

    /// The area containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.areas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.contains(addr))
    }

    /// The first area ending above `addr` (`find_vma` in Linux).
    pub fn first_above(&self, addr: u64) -> Option<&Vma> {
        self.find(addr)
            .or_else(|| self.areas.range(addr..).next().map(|(_, v)| v))
    }

    /// The last area starting below `addr`.
    pub fn last_below(&self, addr: u64) -> Option<&Vma> {
        self.areas.range(..addr).next_back().map(|(_, v)| v)
    }

    /// Areas overlapping `start..end`, ascending.
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        let first = self.last_below(start).map_or(start, |v| v.start.min(start));
        self.areas
            .range(first..end)
            .map(|(_, v)| v)
            .filter(move |v| v.end > start)
    }

    /// Whether nothing is mapped in `start..end`.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end).next().is_none()
    }

    /// Whether `start..end` is mapped without holes.
    pub fn is_covered(&self, start: u64, end: u64) -> bool {
        let mut cur = start;
        for v in self.overlapping(start, end) {
            if v.start > cur {
                return false;
            }
            cur = v.end;
        }
        cur >= end
    }

    /// Removes `start..end` from the map, splitting areas at the ends, and
    /// returns the removed pieces (clipped to the range), ascending.
    pub fn carve(&mut self, start: u64, end: u64) -> Vec<Vma> {
        let hit: Vec<u64> = self.overlapping(start, end).map(|v| v.start).collect();
        let mut removed = Vec::with_capacity(hit.len());
        for key in hit {
            let Some(v) = self.take(key) else {
                continue;
            };
            if v.start < start {
                self.put(v.slice(v.start, start));
            }
            if v.end > end {
                self.put(v.slice(end, v.end));
            }
            removed.push(v.slice(v.start.max(start), v.end.min(end)));
        }
        removed
    }

    /// Adds `vma` over a free range and merges it with its neighbours.
    pub fn insert(&mut self, vma: Vma) {
        debug_assert!(vma.start < vma.end && self.is_free(vma.start, vma.end));
        let (start, end) = (vma.start, vma.end);
        self.put(vma);
        self.merge_at(end);
        self.merge_at(start);
    }

    /// Merges the area ending at `addr` with the one starting there.
    fn merge_at(&mut self, addr: u64) {
        let Some(next) = self.areas.get(&addr) else {
            return;
        };
        let Some((&prev_start, prev)) = self.areas.range(..addr).next_back() else {
            return;
        };
        if prev.can_merge(next) {
            // Both are charged alike (`can_merge`): the sum is unchanged.
            let next_end = next.end;
            self.areas.remove(&addr);
            if let Some(p) = self.areas.get_mut(&prev_start) {
                p.end = next_end;
            }
        }
    }

    /// Replaces the pieces of `start..end` with `f` applied to each
    /// (areas must exist there), then merges.
    pub fn update(&mut self, start: u64, end: u64, mut f: impl FnMut(&mut Vma)) {
        for mut piece in self.carve(start, end) {
            f(&mut piece);
            self.put(piece);
        }
        let keys: Vec<u64> = self.overlapping(start, end).map(|v| v.start).collect();
        for k in keys.into_iter().rev() {
            self.merge_at(k);
        }
        self.merge_at(end);
    }

    /// Removes every area.
    pub fn clear(&mut self) {
        self.areas.clear();
        self.unpopulated = RangeSet::new();
        self.committed = 0;
    }

    /// Highest free range of `len` bytes ending at or below `mmap_base`
    /// and starting at or above [`MMAP_MIN_ADDR`] (Linux's top-down
    /// `vm_unmapped_area`).
    pub fn find_free(&self, len: u64) -> Option<u64> {
        self.find_free_below(len, self.mmap_base)
    }

    /// Highest free range of `len` bytes ending at or below `ceiling`.
    pub fn find_free_below(&self, len: u64, ceiling: u64) -> Option<u64> {
        let mut hi = ceiling;
        for v in self.areas.range(..ceiling).rev().map(|(_, v)| v) {
            if hi >= len && hi - len >= v.end.max(MMAP_MIN_ADDR) {
                return Some(hi - len);
            }
            hi = hi.min(v.start);
        }
        (hi >= MMAP_MIN_ADDR && hi - MMAP_MIN_ADDR >= len).then(|| hi - len)
    }

    /// Where a non-fixed `mmap` of `len` bytes goes: the page-aligned
    /// `hint` when that range is free and in bounds, else [`Vm::find_free`].
    pub fn place(&self, hint: u64, len: u64) -> Option<u64> {
        if hint != 0
            && let Some(hint) = page_up(hint)
            && hint >= MMAP_MIN_ADDR
            && hint
                .checked_add(len)
                .is_some_and(|end| end <= USER_SPACE_END && self.is_free(hint, end))
        {
            return Some(hint);
        }
        self.find_free(len)
    }

    /// The parts of `start..end` not populated yet, ascending.
    pub fn unpopulated_in(&self, start: u64, end: u64) -> Vec<core::ops::Range<u64>> {
        self.unpopulated
            .iter()
            .filter(|r| r.end > start && r.start < end)
            .map(|r| r.start.max(start)..r.end.min(end))
            .collect()
    }

    /// The current break.
    pub fn brk(&self) -> u64 {
        self.brk
    }

    /// Where the heap starts.
    pub fn brk_start(&self) -> u64 {
        self.brk_start
    }

    /// The text of `/proc/self/maps`.
    pub fn maps_text(&self) -> Vec<u8> {
        let mut out = String::new();
        for v in self.areas() {
            v.maps_line(&mut out);
        }
        out.into_bytes()
    }
}
