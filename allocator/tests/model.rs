//! Model-based property test: random alloc/free/realloc/trim sequences run
//! against the slab allocator and a reference model (the list of live
//! blocks with the byte pattern each must hold).
//!
//! Checked after every step: non-null results (the arena is large enough),
//! alignment, no overlap with any live block, contents preserved (also
//! across realloc), and the live-byte statistic. After each sequence every
//! block is freed and the heap trimmed: then every page, the metadata's
//! included, must be back in the arena. One heap serves all cases, so each case
//! also starts from the state the previous one left.
#![allow(unsafe_code, reason = "the test drives the GlobalAlloc interface")]

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::sync::OnceLock;

use allocator::{ArenaPages, SingleCpu, SlabAllocator};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Alloc { size: usize, align_log: u32 },
    Free { pick: usize },
    Realloc { pick: usize, size: usize },
    Trim,
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 1..=256usize,
        4 => 257..=4096usize,
        1 => 4097..=20_000usize,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (size(), prop_oneof![6 => Just(0u32), 1 => 0..=12u32])
            .prop_map(|(size, align_log)| Op::Alloc { size, align_log }),
        4 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        2 => (any::<usize>(), size()).prop_map(|(pick, size)| Op::Realloc { pick, size }),
        1 => Just(Op::Trim),
    ]
}

struct Block {
    ptr: *mut u8,
    layout: Layout,
    tag: u8,
}

fn heap() -> (&'static SlabAllocator, &'static ArenaPages) {
    static HEAP: OnceLock<(usize, usize)> = OnceLock::new();
    let &(heap, pages) = HEAP.get_or_init(|| {
        let arena = Box::leak(Box::new_uninit_slice(32 << 20));
        let pages: &'static ArenaPages = Box::leak(Box::new(ArenaPages::new(arena)));
        let heap: &'static SlabAllocator = Box::leak(Box::new(SlabAllocator::new()));
        heap.init(pages, &SingleCpu).unwrap();
        (
            heap as *const SlabAllocator as usize,
            pages as *const ArenaPages as usize,
        )
    });
    // SAFETY: the address is of the leaked, never freed, allocator above.
    let heap = unsafe { &*(heap as *const SlabAllocator) };
    // SAFETY: the address is of the leaked, never freed, arena above.
    let pages = unsafe { &*(pages as *const ArenaPages) };
    (heap, pages)
}

fn fill(block: &Block) {
    // SAFETY: the block is live and `layout.size()` bytes long.
    unsafe { block.ptr.write_bytes(block.tag, block.layout.size()) }
}

fn intact(block: &Block, len: usize) -> bool {
    // SAFETY: the block is live and its first `len` bytes were written.
    let bytes = unsafe { std::slice::from_raw_parts(block.ptr, len) };
    bytes.iter().all(|&b| b == block.tag)
}

/// Registers a new block in the model, checking alignment and overlap.
fn admit(live: &mut BTreeMap<usize, Block>, block: Block) -> Result<(), TestCaseError> {
    let start = block.ptr as usize;
    let end = start + block.layout.size();
    prop_assert_eq!(
        start % block.layout.align(),
        0,
        "misaligned {:?}",
        block.layout
    );
    if let Some((&before, other)) = live.range(..=start).next_back() {
        prop_assert!(
            before + other.layout.size().max(1) <= start,
            "overlaps the block before"
        );
    }
    if let Some((&after, _)) = live.range(start..).next() {
        prop_assert!(end.max(start + 1) <= after, "overlaps the block after");
    }
    fill(&block);
    live.insert(start, block);
    Ok(())
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let (heap, pages) = heap();
    let mut live: BTreeMap<usize, Block> = BTreeMap::new();
    let mut next_tag = 1u8;
    for op in ops {
        next_tag = next_tag.wrapping_add(1).max(1);
        match *op {
            Op::Alloc { size, align_log } => {
                let layout = Layout::from_size_align(size, 1 << align_log).unwrap();
                // SAFETY: `size` ≥ 1.
                let ptr = unsafe { heap.alloc(layout) };
                prop_assert!(!ptr.is_null(), "null for {:?}", layout);
                admit(
                    &mut live,
                    Block {
                        ptr,
                        layout,
                        tag: next_tag,
                    },
                )?;
            }
            Op::Free { pick } if !live.is_empty() => {
                let key = *live.keys().nth(pick % live.len()).unwrap();
                let block = live.remove(&key).unwrap();
                prop_assert!(intact(&block, block.layout.size()), "contents lost");
                // SAFETY: live block, freed once with its layout.
                unsafe { heap.dealloc(block.ptr, block.layout) };
            }
            Op::Realloc { pick, size } if !live.is_empty() => {
                let key = *live.keys().nth(pick % live.len()).unwrap();
                let block = live.remove(&key).unwrap();
                // SAFETY: live block with its layout; `size` ≥ 1.
                let ptr = unsafe { heap.realloc(block.ptr, block.layout, size) };
                prop_assert!(!ptr.is_null(), "realloc to {} failed", size);
                let moved = Block {
                    ptr,
                    layout: Layout::from_size_align(size, block.layout.align()).unwrap(),
                    tag: block.tag,
                };
                prop_assert!(
                    intact(&moved, size.min(block.layout.size())),
                    "realloc lost contents"
                );
                let moved = Block {
                    tag: next_tag,
                    ..moved
                };
                admit(&mut live, moved)?;
            }
            Op::Trim => heap.trim(),
            Op::Free { .. } | Op::Realloc { .. } => {}
        }
        let expected: usize = live.values().map(|b| b.layout.size()).sum();
        prop_assert_eq!(heap.stats().live_bytes, expected);
    }
    for block in live.into_values() {
        prop_assert!(intact(&block, block.layout.size()), "contents lost");
        // SAFETY: live block, freed once with its layout.
        unsafe { heap.dealloc(block.ptr, block.layout) };
    }
    heap.trim();
    let stats = heap.stats();
    prop_assert_eq!(stats.live_bytes, 0);
    prop_assert_eq!(stats.slab_bytes + stats.large_bytes, 0, "{}", stats);
    prop_assert_eq!(stats.metadata_bytes, 0, "{}", stats);
    prop_assert_eq!(
        pages.free_pages(),
        pages.total_pages(),
        "pages not returned"
    );
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_sequences_match_the_model(
        ops in prop::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 400 })
    ) {
        run(&ops)?;
    }
}
