//! Host tests of [`DmaArena`]: exhaustion is an error, double and
//! mismatched frees are refused, alignment is honoured, and a random
//! sequence of allocations and frees never overlaps.

use proptest::prelude::*;

use super::*;

const POOL: usize = 64 * 1024;

fn storage() -> Vec<u64> {
    vec![u64::MAX; 2 * bitmap_words(POOL)]
}

#[test]
fn exhaustion_is_an_error_and_freeing_makes_room() {
    let mut s = storage();
    let mut a = DmaArena::new(POOL, &mut s).unwrap();
    let mut slots = Vec::new();
    for _ in 0..POOL / 2048 {
        slots.push(a.alloc(2048, 2048).unwrap());
    }
    assert_eq!(a.used_bytes(), POOL);
    assert_eq!(a.alloc(2048, 2048), Err(DmaError::Exhausted));
    assert_eq!(a.alloc(1, 1), Err(DmaError::Exhausted));
    a.free(slots[3], 2048).unwrap();
    assert_eq!(a.alloc(2048, 2048), Ok(slots[3]));
    assert_eq!(a.peak_bytes(), POOL);
}

#[test]
fn double_free_and_wrong_frees_are_refused() {
    let mut s = storage();
    let mut a = DmaArena::new(POOL, &mut s).unwrap();
    let x = a.alloc(1000, 1).unwrap();
    let y = a.alloc(4096, 4096).unwrap();
    assert_eq!(
        a.free(x + DMA_BLOCK_BYTES, 256),
        Err(DmaError::NotAllocated)
    );
    assert_eq!(a.free(x + 1, 256), Err(DmaError::NotAllocated));
    assert_eq!(a.free(POOL, 256), Err(DmaError::NotAllocated));
    // Shorter or longer than allocated.
    assert_eq!(a.free(x, 256), Err(DmaError::WrongLength));
    assert_eq!(a.free(y, 8192), Err(DmaError::WrongLength));
    assert_eq!(a.free(x, 0), Err(DmaError::BadSize));
    a.free(x, 1000).unwrap();
    assert_eq!(a.free(x, 1000), Err(DmaError::NotAllocated));
    a.free(y, 4096).unwrap();
    assert_eq!(a.free(y, 4096), Err(DmaError::NotAllocated));
    assert_eq!(a.used_bytes(), 0);
}

#[test]
fn alignment_is_honoured() {
    let mut s = storage();
    let mut a = DmaArena::new(POOL, &mut s).unwrap();
    // A small allocation first, so the next aligned one must skip ahead.
    assert_eq!(a.alloc(10, 1), Ok(0));
    for align in [512, 2048, 4096, 16384] {
        let off = a.alloc(100, align).unwrap();
        assert_eq!(off % align, 0, "align {align}: offset {off}");
    }
    assert_eq!(a.alloc(10, 3), Err(DmaError::BadAlign));
    assert_eq!(a.alloc(10, 0), Err(DmaError::BadAlign));
    assert_eq!(a.alloc(0, 1), Err(DmaError::BadSize));
    assert_eq!(a.alloc(POOL + 1, 1), Err(DmaError::BadSize));
}

#[test]
fn page_runs_and_slots_share_the_region() {
    let mut s = storage();
    let mut a = DmaArena::new(POOL, &mut s).unwrap();
    let queue = a.alloc(2 * 4096, 4096).unwrap();
    let slot = a.alloc(2048, 2048).unwrap();
    let header = a.alloc(12, 16).unwrap();
    let queue2 = a.alloc(4096, 4096).unwrap();
    assert_eq!((queue, slot, header, queue2), (0, 8192, 10240, 12288));
    // A whole-region request fits only in an empty arena.
    for (off, len) in [(queue, 8192), (slot, 2048), (header, 12), (queue2, 4096)] {
        a.free(off, len).unwrap();
    }
    assert_eq!(a.alloc(POOL, 4096), Ok(0));
}

#[test]
fn small_storage_is_refused() {
    let mut s = vec![0; 1];
    assert_eq!(
        DmaArena::new(POOL, &mut s).unwrap_err(),
        DmaError::StorageTooSmall
    );
}

proptest! {
    #[test]
    fn allocations_never_overlap(ops in prop::collection::vec((1usize..9000, 0u32..14, any::<bool>()), 1..200)) {
        let mut s = storage();
        let mut a = DmaArena::new(POOL, &mut s).unwrap();
        let mut live: Vec<(usize, usize)> = Vec::new();
        for (bytes, align_log, free) in ops {
            if free && !live.is_empty() {
                let (off, len) = live.swap_remove(bytes % live.len());
                a.free(off, len).unwrap();
                prop_assert_eq!(a.free(off, len), Err(DmaError::NotAllocated));
                continue;
            }
            let align = 1usize << align_log;
            match a.alloc(bytes, align) {
                Ok(off) => {
                    prop_assert_eq!(off % align, 0);
                    prop_assert!(off + bytes <= POOL);
                    let end = off + bytes.div_ceil(DMA_BLOCK_BYTES) * DMA_BLOCK_BYTES;
                    for &(o, l) in &live {
                        let e = o + l.div_ceil(DMA_BLOCK_BYTES) * DMA_BLOCK_BYTES;
                        prop_assert!(end <= o || e <= off, "[{off},{end}) overlaps [{o},{e})");
                    }
                    live.push((off, bytes));
                }
                Err(e) => prop_assert_eq!(e, DmaError::Exhausted),
            }
            let sum: usize = live.iter().map(|&(_, l)| l.div_ceil(DMA_BLOCK_BYTES) * DMA_BLOCK_BYTES).sum();
            prop_assert_eq!(a.used_bytes(), sum);
        }
    }
}
