//! [`AllocStats`]: a plain snapshot of the allocator's counters, printable
//! with `Display`.

use core::fmt;

use crate::class::NUM_CLASSES;

/// Counters of one size class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Object size of the class, in bytes.
    pub object_bytes: usize,
    /// Slabs of the class held from the page source (including the empty
    /// reserve).
    pub slabs: usize,
    /// Of those, empty slabs kept in reserve.
    pub empty_slabs: usize,
    /// Objects one slab holds.
    pub objects_per_slab: usize,
    /// Objects of the class's slabs handed out to callers: those lent to
    /// a smaller class count here, as objects out of these slabs, less
    /// those parked in this class's CPU lists (so the count of a class
    /// that borrowed can be a little low, and its lender's a little high).
    pub live_objects: usize,
    /// Free objects parked in the class's per-CPU lists (borrowed ones
    /// and ones carved from the best-fit region included; carved objects
    /// out with callers count nowhere here, so `live_objects` can be low).
    pub cached_objects: usize,
}

/// A snapshot of the allocator (taken without stopping it, so the fields
/// may disagree slightly while other CPUs allocate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocStats {
    /// Bytes callers asked for and have not freed (sum of `layout.size()`).
    pub live_bytes: usize,
    /// Bytes in slabs held from the page source.
    pub slab_bytes: usize,
    /// Bytes in page runs serving large requests.
    pub large_bytes: usize,
    /// Large blocks outstanding.
    pub large_blocks: usize,
    /// Bytes in chunks of the best-fit region (middle sizes).
    pub region_bytes: usize,
    /// Of those, bytes in free blocks.
    pub region_free_bytes: usize,
    /// Of those, bytes in blocks carved for small objects (live, or free
    /// in a CPU cache).
    pub region_small_bytes: usize,
    /// Bytes of the allocator's own metadata pages (page map, descriptors).
    pub metadata_bytes: usize,
    /// Allocation requests that returned null.
    pub failed_allocs: usize,
    /// Per-class counters, smallest class first.
    pub classes: [ClassStats; NUM_CLASSES],
}

impl AllocStats {
    /// All bytes held from the page source.
    pub fn claimed_bytes(&self) -> usize {
        self.slab_bytes + self.large_bytes + self.region_bytes + self.metadata_bytes
    }

    /// Fragmentation: claimed ÷ live, in thousandths (1000 = no overhead);
    /// `None` while nothing is live.
    pub fn fragmentation_permille(&self) -> Option<usize> {
        if self.live_bytes == 0 {
            return None;
        }
        Some((self.claimed_bytes() as u128 * 1000 / self.live_bytes as u128) as usize)
    }

    /// Fragmentation as a ratio (claimed ÷ live); `None` while nothing is
    /// live.
    pub fn fragmentation(&self) -> Option<f64> {
        if self.live_bytes == 0 {
            return None;
        }
        Some(self.claimed_bytes() as f64 / self.live_bytes as f64)
    }
}

impl fmt::Display for AllocStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "heap: live {} B, claimed {} B (slabs {} B, best-fit {} B with {} B free and {} B small objects, large {} B in {} blocks, metadata {} B), ",
            self.live_bytes,
            self.claimed_bytes(),
            self.slab_bytes,
            self.region_bytes,
            self.region_free_bytes,
            self.region_small_bytes,
            self.large_bytes,
            self.large_blocks,
            self.metadata_bytes
        )?;
        match self.fragmentation_permille() {
            Some(permille) => write!(
                f,
                "fragmentation {}.{:03}",
                permille / 1000,
                permille % 1000
            )?,
            None => write!(f, "fragmentation -")?,
        }
        writeln!(f, ", failed allocs {}", self.failed_allocs)?;
        for class in self.classes.iter().filter(|c| c.slabs > 0) {
            writeln!(
                f,
                "  {:>5} B: {:>7} live, {:>5} cached, {:>5} slabs ({} empty) of {} objects",
                class.object_bytes,
                class.live_objects,
                class.cached_objects,
                class.slabs,
                class.empty_slabs,
                class.objects_per_slab
            )?;
        }
        Ok(())
    }
}
