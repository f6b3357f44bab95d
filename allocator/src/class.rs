//! Size classes: the table that maps a [`Layout`] to a slab class.
//!
//! 72 classes from 8 B to 16 KiB: eight 8-byte steps up to 64 B, then eight
//! classes per power of two (step = lower bound ÷ 8), as SLUB's kmalloc
//! caches and mimalloc's bins do. From 64 B up a request is rounded up by
//! less than one step, so the rounding waste is below 12.5 % of the class
//! size; below 64 B the 8-byte granule (the minimum alignment) bounds it.
//! Between [`ODD_FROM_BYTES`] and 1 KiB every class but the powers of two
//! is 8 bytes short of its step (264, 296, …, 480, 512, 568, …), so that
//! with the 8-byte header of a block carved from the best-fit region it
//! fills a whole number of 16-byte granules.
//!
//! Every class also has a slab size (a run of pages chosen so the tail that
//! no object fits in is at most 1/16 of the slab), and a batch size for the
//! per-CPU caches (how many objects move between a CPU and the depot at
//! once).

use core::alloc::Layout;

/// The page size the allocator works in, in bytes.
pub const PAGE_SIZE: usize = 4096;
/// Largest size class, in bytes (classes above [`MAX_SMALL_BYTES`] hold
/// one object per slab and only serve aligned requests that round up to
/// them).
pub(crate) const MAX_CLASS_BYTES: usize = 16 * 1024;
/// Number of size classes (72 until the eighth session, which made the
/// steps from 256 B to 1 KiB finer: see `classes_per_doubling`).
pub const NUM_CLASSES: usize = 104;
/// Most objects a slab can hold (bounds the debug bitmap in its descriptor).
pub(crate) const MAX_OBJECTS_PER_SLAB: usize = 512;
/// From here to 1 KiB the classes other than powers of two are odd
/// multiples of 8 bytes (8 bytes short of the usual step). Objects of
/// these sizes are carved from the best-fit region before any slab is
/// made ([`CARVE_FIRST_BYTES`]), where a block costs the object plus an
/// 8-byte header; the odd sizes date from its 16-byte granule (sixth
/// session, from 256 B; from 128 B in the eighth, with the classes from
/// 128 B carved first). Requests aligned to 16 bytes in this range, which
/// these classes do not serve, are cut to measure in the region instead
/// ([`Kind::Mid`]).
pub(crate) const ODD_FROM_BYTES: usize = 128;

/// Classes from this many bytes up to 1 KiB carve their objects from any
/// free block of the best-fit region (smallest first) before they borrow
/// from larger classes or make a slab, one object per refill, and their
/// CPU lists hold about 2 KiB worth ([`CACHE_LIMIT`]). A block costs such
/// an object 8 bytes of header and no rounding beyond its class, less
/// than a slab's free slots and tail; the small caches and single-object
/// refills keep blocks from being carved ahead of need and parked in CPU
/// lists, where no other size can use them (eighth session; 512 B in the
/// sixth, with batches and 4 KiB caches).
pub(crate) const CARVE_FIRST_BYTES: usize = 64;

/// Bytes' worth of objects a CPU list of a class that carves first holds.
const CARVE_FIRST_CACHE_BYTES: usize = 2 * 1024;

/// Whether `class` carves from any free block of the region before it
/// borrows or makes a slab (see [`CARVE_FIRST_BYTES`]).
#[inline]
pub(crate) const fn carves_first(class: usize) -> bool {
    CLASS_BYTES[class] >= CARVE_FIRST_BYTES && CLASS_BYTES[class] <= MID_MIN_BYTES
}

/// Classes from `lower` bytes to twice that: eight (steps of 1/8) but
/// sixteen from 256 B and thirty-two from 512 B (steps of 16 bytes), where
/// objects are carved to measure from the region and a finer step is all
/// the rounding there is (eighth session: with the carving policy of
/// [`CARVE_FIRST_BYTES`], heap efficiency +0.2 point).
const fn classes_per_doubling(lower: usize) -> usize {
    if lower == 256 {
        16
    } else if lower == 512 {
        32
    } else {
        8
    }
}

const fn build_sizes() -> [usize; NUM_CLASSES] {
    let mut out = [0; NUM_CLASSES];
    let mut i = 0;
    while i < 8 {
        out[i] = (i + 1) * 8;
        i += 1;
    }
    let mut lower = 64;
    while lower < MAX_CLASS_BYTES {
        let per = classes_per_doubling(lower);
        let step = lower / per;
        let odd = lower >= ODD_FROM_BYTES && lower < MID_MIN_BYTES;
        let mut k = 1;
        while k <= per {
            out[i] = lower + k * step - if odd && k < per { 8 } else { 0 };
            i += 1;
            k += 1;
        }
        lower *= 2;
    }
    assert!(i == NUM_CLASSES);
    out
}

/// Object size of each class, in bytes.
pub(crate) const CLASS_BYTES: [usize; NUM_CLASSES] = build_sizes();

/// Class of every size in 8-byte granules: `LOOKUP[(size + 7) / 8]`.
const LOOKUP: [u8; MAX_CLASS_BYTES / 8 + 1] = {
    let mut out = [0u8; MAX_CLASS_BYTES / 8 + 1];
    let mut granules = 0;
    let mut class = 0;
    while granules <= MAX_CLASS_BYTES / 8 {
        while CLASS_BYTES[class] < granules * 8 {
            class += 1;
        }
        out[granules] = class as u8;
        granules += 1;
    }
    out
};

const fn build_slab_pages() -> [usize; NUM_CLASSES] {
    let mut out = [0; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        let size = CLASS_BYTES[c];
        // Smallest run with at most 1/16 tail waste; else the least wasteful.
        let mut best = 1;
        let mut best_waste_per_page = PAGE_SIZE;
        let mut pages = 1;
        while pages <= 8 {
            let bytes = pages * PAGE_SIZE;
            let waste = bytes % size;
            if bytes < size {
                pages += 1;
                continue;
            }
            if waste * 32 <= bytes {
                best = pages;
                break;
            }
            if waste / pages < best_waste_per_page {
                best = pages;
                best_waste_per_page = waste / pages;
            }
            pages += 1;
        }
        assert!(best * PAGE_SIZE / size <= MAX_OBJECTS_PER_SLAB);
        out[c] = best;
        c += 1;
    }
    out
}

/// Pages per slab of each class.
pub(crate) const SLAB_PAGES: [usize; NUM_CLASSES] = build_slab_pages();

/// Objects per slab of each class.
pub(crate) const SLAB_OBJECTS: [usize; NUM_CLASSES] = {
    let mut out = [0; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        out[c] = SLAB_PAGES[c] * PAGE_SIZE / CLASS_BYTES[c];
        c += 1;
    }
    out
};

/// Largest request served from slabs, in bytes (7 KiB) — since the
/// best-fit region (issue 16, item 5) only requests with an alignment above
/// 16, or of exactly one page, use the classes above 1 KiB
/// (`MID_MIN_BYTES`). It is the largest
/// class below 8 KiB whose slab holds more than one object; the classes
/// from 7.5 KiB up hold a single object per slab (8 KiB in two pages, 9 KiB
/// in three, …). Larger aligned requests go to the page source directly, as whole pages: a
/// one-object slab would cost the same pages plus a descriptor, and its
/// descriptor page would sit between page runs (after a fill and free-all
/// of small objects, such pages broke up the runs 8 KiB blocks need), and
/// a page run can grow in place.
pub const MAX_SMALL_BYTES: usize = {
    let mut c = 0;
    while CLASS_BYTES[c + 1] < 8 * 1024 {
        c += 1;
    }
    while SLAB_OBJECTS[c] == 1 {
        c -= 1;
    }
    CLASS_BYTES[c]
};

/// Largest request with an alignment up to 8 served by the size classes
/// (1 KiB); larger ones up to [`MID_MAX_BYTES`] with an alignment up to
/// 16 are cut to measure in the best-fit region (`bestfit.rs`).
pub(crate) const MID_MIN_BYTES: usize = 1024;
/// Largest request served by the best-fit region (8 KiB; requests of
/// whole pages stay page runs, which fit them exactly). Above it, page
/// runs: taking the 7–8 KiB requests into the region brought the 4 MiB
/// footprint from 1.230 to 1.192 (two-page runs had rounded them up).
pub(crate) const MID_MAX_BYTES: usize = 8 * 1024;

/// Most objects a CPU cache holds of each class: about 4 KiB worth (2 KiB
/// for the classes that carve first, [`CARVE_FIRST_BYTES`]), at least
/// one, at most 64. Bounding the cache by bytes keeps the memory parked in
/// caches small next to the live set.
pub(crate) const CACHE_LIMIT: [usize; NUM_CLASSES] = {
    let mut out = [0; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        let bytes = if carves_first(c) {
            CARVE_FIRST_CACHE_BYTES
        } else {
            4 * 1024
        };
        let n = bytes / CLASS_BYTES[c];
        out[c] = if n > 64 {
            64
        } else if n < 1 {
            1
        } else {
            n
        };
        c += 1;
    }
    out
};

/// Objects moved between a CPU cache and the depot at once: half the
/// cache limit (at least one).
pub(crate) const BATCH: [usize; NUM_CLASSES] = {
    let mut out = [0; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        out[c] = if CACHE_LIMIT[c] > 1 {
            CACHE_LIMIT[c] / 2
        } else {
            1
        };
        c += 1;
    }
    out
};

/// Objects an empty CPU list takes from the depot at once: one for the
/// classes that carve first (a batch carved ahead of need would sit in the
/// list, out of every other size's reach), else [`BATCH`].
pub(crate) const REFILL: [usize; NUM_CLASSES] = {
    let mut out = BATCH;
    let mut c = 0;
    while c < NUM_CLASSES {
        if carves_first(c) {
            out[c] = 1;
        }
        c += 1;
    }
    out
};

/// How many classes up a class may borrow free objects from (see
/// [`can_lend`]): four classes up are at most 50 % larger from 64 B up.
/// (Measured on the footprint churn: two classes up did worse at both
/// live sizes; six or eight lost heap efficiency to rounding.)
pub(crate) const LEND_CLASSES: usize = 4;

/// Whether free objects of class `lender` may serve requests of class
/// `borrower`: `lender` is one of the next [`LEND_CLASSES`] classes up and
/// its object size is a multiple of every power of two that divides the
/// borrower's (objects of both start at multiples of their size from a
/// page boundary, so the borrower's alignment guarantee holds).
#[inline]
pub(crate) const fn can_lend(lender: usize, borrower: usize) -> bool {
    lender > borrower
        && lender - borrower <= LEND_CLASSES
        && lender < NUM_CLASSES
        && CLASS_BYTES[lender].trailing_zeros() >= CLASS_BYTES[borrower].trailing_zeros()
}

/// Alignment of every slab object of `class`: the largest power of two
/// dividing its size (objects sit at multiples of it from a page boundary).
#[inline]
pub(crate) const fn natural_align(class: usize) -> usize {
    let bytes = CLASS_BYTES[class];
    bytes & bytes.wrapping_neg()
}

/// Where a request is served from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A slab object of this class (alignment ≤ 8: any object in the
    /// class's CPU lists will do, carved ones included).
    Small(usize),
    /// An object of this class for a request aligned to more than 8
    /// bytes: it needs the class's natural alignment ([`natural_align`]),
    /// which a block carved from the best-fit region may lack.
    Aligned(usize),
    /// A block of the best-fit region (middle sizes, alignment ≤ 16; also
    /// requests over [`ODD_FROM_BYTES`] aligned to 16, which the odd
    /// classes there cannot serve).
    Mid,
    /// A run of this many whole pages from the page source.
    Large(usize),
    /// Alignment above the page size: not supported, the request fails.
    Unsupported,
}

/// Classifies a layout. `dealloc` classifies its layout the same way, so the
/// class never has to be looked up from the pointer on the fast path.
#[inline(always)]
pub(crate) fn kind_of(layout: Layout) -> Kind {
    let size = layout.size();
    if size <= MID_MIN_BYTES && layout.align() <= 8 {
        return Kind::Small(LOOKUP[size.div_ceil(8)] as usize);
    }
    kind_of_other(size, layout.align())
}

/// [`kind_of`] beyond the common case (small, alignment ≤ 8).
#[inline]
fn kind_of_other(size: usize, align: usize) -> Kind {
    if (size > MID_MIN_BYTES || (size > ODD_FROM_BYTES && align > 8))
        && size <= MID_MAX_BYTES
        && align <= crate::bestfit::MID_ALIGN
        && !size.is_multiple_of(PAGE_SIZE)
    {
        return Kind::Mid;
    }
    if size <= MAX_SMALL_BYTES {
        if align <= crate::bestfit::CARVE_ALIGN {
            return Kind::Small(aligned_class(size, align));
        }
        if align <= PAGE_SIZE {
            return Kind::Aligned(aligned_class(size, align));
        }
    } else if align <= PAGE_SIZE {
        return Kind::Large(size.div_ceil(PAGE_SIZE));
    }
    Kind::Unsupported
}

/// Smallest class that fits `size` whose object size is a multiple of
/// `align`; slabs start on a page boundary, so every object in it is then
/// `align`-aligned. 4096 is a multiple of every alignment up to a page.
#[cold]
fn aligned_class(size: usize, align: usize) -> usize {
    let mut class = LOOKUP[size.div_ceil(8)] as usize;
    while !CLASS_BYTES[class].is_multiple_of(align) {
        class += 1;
    }
    class
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_increase_and_end_at_max() {
        assert_eq!(CLASS_BYTES[0], 8);
        assert_eq!(CLASS_BYTES[NUM_CLASSES - 1], MAX_CLASS_BYTES);
        assert_eq!(MAX_SMALL_BYTES, 7168);
        assert!(SLAB_OBJECTS[LOOKUP[MAX_SMALL_BYTES / 8] as usize] > 1);
        assert_eq!(SLAB_OBJECTS[LOOKUP[8192 / 8] as usize], 1);
        // Past the classes an aligned request is a page run; with an
        // alignment up to 16 the best-fit region takes it up to 8 KiB,
        // except whole pages, which are runs.
        assert_eq!(
            kind_of(Layout::from_size_align(MAX_SMALL_BYTES + 1, 32).unwrap()),
            Kind::Large(2)
        );
        let align8 = |size| kind_of(Layout::from_size_align(size, 8).unwrap());
        assert_eq!(
            align8(MID_MIN_BYTES),
            Kind::Small(LOOKUP[MID_MIN_BYTES / 8] as usize)
        );
        assert_eq!(align8(MID_MIN_BYTES + 1), Kind::Mid);
        assert_eq!(align8(MAX_SMALL_BYTES + 1), Kind::Mid);
        assert_eq!(align8(MID_MAX_BYTES - 1), Kind::Mid);
        assert_eq!(align8(MID_MAX_BYTES), Kind::Large(2));
        assert_eq!(align8(MID_MAX_BYTES + 1), Kind::Large(3));
        assert_eq!(
            align8(PAGE_SIZE),
            Kind::Small(LOOKUP[PAGE_SIZE / 8] as usize)
        );
        assert!(CLASS_BYTES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn rounding_waste_is_below_one_eighth_from_64_bytes() {
        for size in 57..=MAX_SMALL_BYTES {
            // Middle sizes with a small alignment go to the best-fit
            // region; the classes still serve them at larger alignments.
            let c = match kind_of(Layout::from_size_align(size, 1).unwrap()) {
                Kind::Small(c) => c,
                Kind::Mid if size > MID_MIN_BYTES => LOOKUP[size.div_ceil(8)] as usize,
                other => panic!("size {size} is {other:?}"),
            };
            let class = CLASS_BYTES[c];
            assert!(class >= size);
            assert!((class - size) * 8 < class, "size {size} -> class {class}");
            if c > 0 {
                assert!(
                    CLASS_BYTES[c - 1] < size,
                    "size {size} not in smallest class"
                );
            }
        }
    }

    #[test]
    fn aligned_requests_get_aligned_classes() {
        for align_log in 0..=12 {
            let align = 1 << align_log;
            for size in [0, 1, 7, 8, 9, 100, 1000, 4000, 4096, 7000, MAX_SMALL_BYTES] {
                let layout = Layout::from_size_align(size, align).unwrap();
                if (size > MID_MIN_BYTES || (size > ODD_FROM_BYTES && align == 16))
                    && align <= crate::bestfit::MID_ALIGN
                    && !size.is_multiple_of(PAGE_SIZE)
                {
                    assert_eq!(kind_of(layout), Kind::Mid);
                    continue;
                }
                let c = match kind_of(layout) {
                    Kind::Small(c) if align <= crate::bestfit::CARVE_ALIGN => c,
                    Kind::Aligned(c) if align > crate::bestfit::CARVE_ALIGN => c,
                    other => panic!("size {size} align {align} is {other:?}"),
                };
                assert!(CLASS_BYTES[c] >= size);
                assert_eq!(CLASS_BYTES[c] % align, 0);
                assert!(natural_align(c) >= align);
            }
        }
        let big = Layout::from_size_align(MAX_CLASS_BYTES + 1, 4096).unwrap();
        assert_eq!(kind_of(big), Kind::Large(5));
        let too_aligned = Layout::from_size_align(8, 8192).unwrap();
        assert_eq!(kind_of(too_aligned), Kind::Unsupported);
    }

    #[test]
    fn lenders_are_larger_and_keep_the_alignment() {
        for (borrower, &small) in CLASS_BYTES.iter().enumerate() {
            let align = 1 << small.trailing_zeros();
            for (lender, &large) in CLASS_BYTES.iter().enumerate() {
                if can_lend(lender, borrower) {
                    assert!(large > small);
                    assert!(lender - borrower <= LEND_CLASSES);
                    assert_eq!(large % align, 0, "{large} B lends to {small} B");
                }
            }
        }
        let class_of = |size: usize| LOOKUP[size / 8] as usize;
        assert!(can_lend(class_of(80), class_of(72)));
        assert!(!can_lend(class_of(72), class_of(64)));
        assert!(!can_lend(class_of(80), class_of(64)));
        assert!(can_lend(class_of(104), class_of(72)));
        assert!(!can_lend(class_of(112), class_of(72)));
    }

    #[test]
    fn classes_from_128_b_to_1_kib_are_odd_multiples_of_8_but_powers_of_two() {
        for &bytes in &CLASS_BYTES {
            let odd = bytes > ODD_FROM_BYTES && bytes < MID_MIN_BYTES && !bytes.is_power_of_two();
            assert_eq!(
                bytes % 16 == 8,
                odd || bytes < 128 && bytes % 16 == 8,
                "{bytes}"
            );
        }
        let class = |size: usize| CLASS_BYTES[LOOKUP[size.div_ceil(8)] as usize];
        assert_eq!(class(129), 136);
        assert_eq!(class(257), 264);
        assert_eq!(class(512), 512);
        assert_eq!(class(513), 520);
        assert_eq!(class(1000), 1000);
        assert_eq!(class(1001), 1024);
        // Steps of 16 bytes from 256 B: 16 classes to 512, 32 to 1 KiB.
        let between =
            |lo: usize, hi: usize| CLASS_BYTES.iter().filter(|&&b| b > lo && b <= hi).count();
        assert_eq!(between(256, 512), 16);
        assert_eq!(between(512, 1024), 32);
    }

    #[test]
    fn slab_tails_are_small() {
        for c in 0..NUM_CLASSES {
            let bytes = SLAB_PAGES[c] * PAGE_SIZE;
            let tail = bytes - SLAB_OBJECTS[c] * CLASS_BYTES[c];
            assert!(tail * 8 <= bytes, "class {} tail {tail}", CLASS_BYTES[c]);
            assert!(SLAB_OBJECTS[c] >= 1 && SLAB_OBJECTS[c] <= MAX_OBJECTS_PER_SLAB);
        }
    }
}
