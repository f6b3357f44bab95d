//! Compares the slab allocator with `talc`, `rlsf`, `buddy_system_allocator`
//! and `linked_list_allocator`, each behind `GlobalAlloc` over the same
//! arena (one buffer, handed to each allocator in turn), single-threaded.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-alloc cargo bench -p allocator --bench compare`
//!
//! 1. latency of one alloc+free pair, sizes 16–1024 B: hot (nothing else
//!    live) and with a working set of 10 000 live objects; p50/p99/p99.9
//!    from per-pair `rdtsc` readings minus the timer's own median cost,
//!    plus the mean from timing whole batches (no timer in the loop);
//! 2. random actions: alloc / free / realloc in random order, sizes biased
//!    small (uniform in 1..=2^k, k uniform in 3..=13), for one second;
//! 3. heap efficiency: random allocs (70 %) and frees until the first
//!    failure, live bytes ÷ arena bytes (talc's definition), median of 3
//!    seeds, 16 MiB arena;
//! 4. footprint: a churn around 16 MiB (and 4 MiB) live for 10^7
//!    operations after the ramp-up; peak memory held ÷ peak live bytes,
//!    over the first and the last 10^6 operations (drift). For the slab
//!    allocator "held" is the pages taken from its page source (metadata
//!    included); the others cannot give memory back, so theirs is the
//!    high-water mark of the arena they have touched. An allocator too slow
//!    for 10^7 operations in 8 s stops early (the table says when).
//!
//! 5. (issue 16, `compare/workloads.rs`) growing one buffer by `realloc`
//!    one byte at a time to 1 MiB, and eight buffers interleaved to
//!    128 KiB each (ns per step, the byte written and checked); a
//!    key-value server's size mix (85 % 16–512 B, 14 % to 8 KiB, 1 % to
//!    64 KiB) freed and reallocated in a churn over 20 000 live values
//!    (operations per µs); fill a 16 MiB arena with 16–256 B objects, free
//!    them all, then take 8 KiB blocks until the first failure: blocks ÷
//!    the blocks a fresh allocator gives (and bytes ÷ arena). A second
//!    table, timings as the median and min–max of the runs, with the ratio
//!    to talc.
//!
//! `BENCH_ONLY_MEMORY=1` prints only the seeded columns (heap efficiency,
//! footprint, reuse) in one short table, for tuning.
//!
//! Timings (1, 2, 5) are the median of `BENCH_RUNS` (default 3) runs that
//! interleave the allocators; 3 and 4 are seeded and deterministic.
//! Prints a Markdown table; `docs/PERFORMANCE.md` carries the numbers.
#![allow(unsafe_code, reason = "a benchmark drives GlobalAlloc directly")]
#![allow(missing_docs, reason = "benchmark binary")]
#![allow(missing_debug_implementations, reason = "benchmark binary")]

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use allocator::{ArenaPages, SingleCpu, SlabAllocator};

#[path = "compare/workloads.rs"]
mod workloads;

const ARENA_BYTES: usize = 64 << 20;
const LATENCY_PAIRS: usize = 200_000;
const WORKING_SET: usize = 10_000;
const RANDOM_ACTIONS_TIME: Duration = Duration::from_millis(1000);
const EFFICIENCY_ARENA_BYTES: usize = 16 << 20;
const CHURN_OPS: usize = 10_000_000;
const CHURN_WINDOW: usize = 1_000_000;
const CHURN_TIME_LIMIT: Duration = Duration::from_secs(8);

// ---------------------------------------------------------------- helpers

/// xorshift64*: fast, seedable, good enough for picking sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in 1..=2^k with k uniform in 3..=13: biased small, ≤ 8 KiB.
    fn small_biased(&mut self) -> usize {
        let k = 3 + self.below(11);
        1 + self.below(1 << k)
    }
}

#[inline(always)]
fn ticks() -> u64 {
    // SAFETY: `lfence` and `rdtsc` exist on every x86-64 CPU.
    unsafe { core::arch::x86_64::_mm_lfence() };
    // SAFETY: as above.
    let t = unsafe { core::arch::x86_64::_rdtsc() };
    // SAFETY: as above.
    unsafe { core::arch::x86_64::_mm_lfence() };
    t
}

/// TSC ticks per nanosecond.
fn tsc_per_ns() -> f64 {
    let (t0, i0) = (ticks(), Instant::now());
    while i0.elapsed() < Duration::from_millis(100) {}
    (ticks() - t0) as f64 / i0.elapsed().as_nanos() as f64
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// One arena, reused by every allocator in turn.
struct Arena {
    base: *mut u8,
}

impl Arena {
    fn new() -> Self {
        let layout = Layout::from_size_align(ARENA_BYTES, 4096).unwrap();
        // SAFETY: non-zero size.
        let base = unsafe { std::alloc::alloc(layout) };
        assert!(!base.is_null());
        Self { base }
    }

    /// The first `bytes` of the arena, for one allocator. The previous
    /// allocator over it is never used again.
    fn take(&self, bytes: usize) -> &'static mut [MaybeUninit<u8>] {
        assert!(bytes <= ARENA_BYTES);
        // SAFETY: the buffer is leaked (never freed) and only the allocator
        // currently under test touches it.
        unsafe { std::slice::from_raw_parts_mut(self.base.cast(), bytes) }
    }
}

// ---------------------------------------------------------------- subjects

/// An allocator under test, built over the first `bytes` of the arena.
trait Subject: GlobalAlloc + Sized + 'static {
    const NAME: &'static str;
    fn build(memory: &'static mut [MaybeUninit<u8>]) -> &'static Self;
    /// Bytes taken from the arena's page source, if the allocator has one.
    fn claimed_bytes(&self) -> Option<usize> {
        None
    }
    /// Prints the allocator's own statistics to stderr, if it keeps any.
    fn report(&self, _when: &str) {}
}

/// The slab allocator with the page source it was built over; `EXCLUSIVE`
/// picks `init_exclusive` (plain per-CPU flag) over `init` (atomic swap).
struct Slab<const EXCLUSIVE: bool> {
    heap: SlabAllocator,
    pages: &'static ArenaPages,
}

// SAFETY: delegates to `SlabAllocator`.
unsafe impl<const EXCLUSIVE: bool> GlobalAlloc for Slab<EXCLUSIVE> {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.heap.alloc(layout) }
    }
    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
    #[inline(always)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.heap.realloc(ptr, layout, new_size) }
    }
}

impl<const EXCLUSIVE: bool> Subject for Slab<EXCLUSIVE> {
    const NAME: &'static str = if EXCLUSIVE {
        "cloister slab, init_exclusive"
    } else {
        "cloister slab, init"
    };
    fn build(memory: &'static mut [MaybeUninit<u8>]) -> &'static Self {
        let pages: &'static ArenaPages = Box::leak(Box::new(ArenaPages::new(memory)));
        let this: &'static Self = Box::leak(Box::new(Slab {
            heap: SlabAllocator::new(),
            pages,
        }));
        if EXCLUSIVE {
            // SAFETY: the benchmark runs on one thread: CPU id 0 is only
            // ever used by it.
            unsafe { this.heap.init_exclusive(pages, &SingleCpu) }.unwrap();
        } else {
            this.heap.init(pages, &SingleCpu).unwrap();
        }
        this
    }
    fn claimed_bytes(&self) -> Option<usize> {
        Some((self.pages.total_pages() - self.pages.free_pages()) * 4096)
    }
    fn report(&self, when: &str) {
        if std::env::var_os("BENCH_STATS").is_some() {
            eprintln!("{} {when}:\n{}", Self::NAME, self.heap.stats());
        }
    }
}

type TalcHeap = talc::Talck<spin09::Mutex<()>, talc::ErrOnOom>;
struct Talc(TalcHeap);

// SAFETY: delegates to `Talck`.
unsafe impl GlobalAlloc for Talc {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.alloc(layout) }
    }
    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.0.dealloc(ptr, layout) }
    }
    #[inline(always)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

impl Subject for Talc {
    const NAME: &'static str = "talc 4.4";
    fn build(memory: &'static mut [MaybeUninit<u8>]) -> &'static Self {
        let this: &'static Talc = Box::leak(Box::new(Talc(talc::Talc::new(talc::ErrOnOom).lock())));
        let span = talc::Span::from_base_size(memory.as_mut_ptr().cast(), memory.len());
        // SAFETY: the memory is this allocator's alone from now on.
        unsafe { this.0.lock().claim(span) }.unwrap();
        this
    }
}

type Tlsf = rlsf::Tlsf<'static, u32, u32, 24, 16>;
struct Rlsf(spin09::Mutex<Tlsf>);

// SAFETY: `Tlsf` hands out disjoint blocks of the requested layout.
unsafe impl GlobalAlloc for Rlsf {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate(layout)
            .map_or(std::ptr::null_mut(), NonNull::as_ptr)
    }
    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let ptr = NonNull::new(ptr).expect("GlobalAlloc never frees null");
        // SAFETY: `ptr` came from `allocate` with this alignment.
        unsafe { self.0.lock().deallocate(ptr, layout.align()) }
    }
    #[inline(always)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align(new_size, layout.align()).unwrap();
        let ptr = NonNull::new(ptr).expect("GlobalAlloc never reallocates null");
        // SAFETY: `ptr` came from `allocate`.
        let moved = unsafe { self.0.lock().reallocate(ptr, new_layout) };
        moved.map_or(std::ptr::null_mut(), NonNull::as_ptr)
    }
}

impl Subject for Rlsf {
    const NAME: &'static str = "rlsf 0.2";
    fn build(memory: &'static mut [MaybeUninit<u8>]) -> &'static Self {
        let this: &'static Rlsf = Box::leak(Box::new(Rlsf(spin09::Mutex::new(Tlsf::new()))));
        let block = NonNull::new(std::ptr::slice_from_raw_parts_mut(
            memory.as_mut_ptr().cast::<u8>(),
            memory.len(),
        ))
        .unwrap();
        // SAFETY: the memory is this allocator's alone from now on.
        unsafe { this.0.lock().insert_free_block_ptr(block) }.unwrap();
        this
    }
}

struct Buddy(buddy_system_allocator::LockedHeap<32>);

// SAFETY: delegates to `LockedHeap`.
unsafe impl GlobalAlloc for Buddy {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.alloc(layout) }
    }
    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

impl Subject for Buddy {
    const NAME: &'static str = "buddy_system_allocator 0.11";
    fn build(memory: &'static mut [MaybeUninit<u8>]) -> &'static Self {
        let this: &'static Buddy =
            Box::leak(Box::new(Buddy(buddy_system_allocator::LockedHeap::new())));
        // SAFETY: the memory is this allocator's alone from now on.
        unsafe {
            this.0
                .lock()
                .init(memory.as_mut_ptr() as usize, memory.len())
        };
        this
    }
}

struct LinkedList(linked_list_allocator::LockedHeap);

// SAFETY: delegates to `LockedHeap`.
unsafe impl GlobalAlloc for LinkedList {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.alloc(layout) }
    }
    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

impl Subject for LinkedList {
    const NAME: &'static str = "linked_list_allocator 0.10";
    fn build(memory: &'static mut [MaybeUninit<u8>]) -> &'static Self {
        let this: &'static LinkedList = Box::leak(Box::new(LinkedList(
            linked_list_allocator::LockedHeap::empty(),
        )));
        this.0.lock().init_from_slice(memory);
        this
    }
}

// ---------------------------------------------------------------- workloads

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

#[inline(always)]
fn alloc<A: GlobalAlloc>(a: &A, layout: Layout) -> *mut u8 {
    // SAFETY: every layout here has a non-zero size.
    unsafe { a.alloc(layout) }
}

#[inline(always)]
fn free<A: GlobalAlloc>(a: &A, ptr: *mut u8, layout: Layout) {
    // SAFETY: the workloads free each block once, with its layout.
    unsafe { a.dealloc(ptr, layout) }
}

#[inline(always)]
fn realloc<A: GlobalAlloc>(a: &A, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
    // SAFETY: live block with its layout, non-zero new size.
    unsafe { a.realloc(ptr, layout, size) }
}

/// Touches a block, as a caller would.
#[inline(always)]
fn touch(ptr: *mut u8) {
    // SAFETY: `ptr` is a live block of at least one byte.
    unsafe { ptr.write_volatile(1) }
}

struct Latency {
    p50: f64,
    p99: f64,
    p999: f64,
    mean: f64,
}

fn summarize(mut samples: Vec<u64>, overhead: u64, tsc: f64, mean: f64) -> Latency {
    samples.sort_unstable();
    let ns = |t: u64| t.saturating_sub(overhead) as f64 / tsc;
    Latency {
        p50: ns(percentile(&samples, 0.5)),
        p99: ns(percentile(&samples, 0.99)),
        p999: ns(percentile(&samples, 0.999)),
        mean,
    }
}

/// Median cost of the timer itself, in ticks.
fn timer_overhead() -> u64 {
    let mut samples: Vec<u64> = (0..100_000)
        .map(|_| {
            let t0 = ticks();
            ticks() - t0
        })
        .collect();
    samples.sort_unstable();
    percentile(&samples, 0.5)
}

fn latency_hot<A: Subject>(a: &A, tsc: f64, overhead: u64) -> Latency {
    let mut rng = Rng(0x1234_5678);
    let sizes: Vec<Layout> = (0..4096).map(|_| layout(16 + rng.below(1009))).collect();
    // Warm up, then time each pair.
    for l in &sizes {
        let p = alloc(a, *l);
        free(a, p, *l);
    }
    let mut samples = Vec::with_capacity(LATENCY_PAIRS);
    for i in 0..LATENCY_PAIRS {
        let l = sizes[i % sizes.len()];
        let t0 = ticks();
        let p = alloc(a, l);
        touch(p);
        free(a, black_box(p), l);
        samples.push(ticks() - t0);
    }
    let start = Instant::now();
    for i in 0..LATENCY_PAIRS {
        let l = sizes[i % sizes.len()];
        let p = alloc(a, l);
        touch(p);
        free(a, black_box(p), l);
    }
    let mean = start.elapsed().as_nanos() as f64 / LATENCY_PAIRS as f64;
    summarize(samples, overhead, tsc, mean)
}

fn latency_working_set<A: Subject>(a: &A, tsc: f64, overhead: u64) -> Latency {
    let mut rng = Rng(0x9e37_79b9);
    let mut live: Vec<(*mut u8, Layout)> = (0..WORKING_SET)
        .map(|_| {
            let l = layout(16 + rng.below(1009));
            let p = alloc(a, l);
            assert!(!p.is_null());
            (p, l)
        })
        .collect();
    let plan: Vec<(usize, Layout)> = (0..LATENCY_PAIRS)
        .map(|_| (rng.below(WORKING_SET), layout(16 + rng.below(1009))))
        .collect();
    let mut samples = Vec::with_capacity(LATENCY_PAIRS);
    for &(slot, l) in &plan {
        let (old, old_layout) = live[slot];
        let t0 = ticks();
        free(a, old, old_layout);
        let p = alloc(a, l);
        touch(p);
        samples.push(ticks() - t0);
        live[slot] = (p, l);
    }
    let start = Instant::now();
    for &(slot, l) in &plan {
        let (old, old_layout) = live[slot];
        free(a, old, old_layout);
        let p = alloc(a, l);
        touch(p);
        live[slot] = (p, l);
    }
    let mean = start.elapsed().as_nanos() as f64 / LATENCY_PAIRS as f64;
    for (p, l) in live {
        free(a, p, l);
    }
    summarize(samples, overhead, tsc, mean)
}

/// Random alloc/free/realloc for a fixed time; returns actions per µs.
fn random_actions<A: Subject>(a: &A) -> f64 {
    let mut rng = Rng(0xdead_beef);
    let mut live: Vec<(*mut u8, Layout)> = Vec::with_capacity(1 << 16);
    let mut actions = 0u64;
    let start = Instant::now();
    while start.elapsed() < RANDOM_ACTIONS_TIME {
        for _ in 0..256 {
            let roll = rng.below(10);
            if live.is_empty() || (roll < 4 && live.len() < 50_000) {
                let l = layout(rng.small_biased());
                let p = alloc(a, l);
                if !p.is_null() {
                    touch(p);
                    live.push((p, l));
                }
            } else if roll < 8 {
                let (p, l) = live.swap_remove(rng.below(live.len()));
                free(a, p, l);
            } else {
                let i = rng.below(live.len());
                let (p, l) = live[i];
                let size = rng.small_biased();
                let q = realloc(a, p, l, size);
                if !q.is_null() {
                    live[i] = (q, layout(size));
                }
            }
            actions += 1;
        }
    }
    let per_us = actions as f64 / start.elapsed().as_micros() as f64;
    for (p, l) in live {
        free(a, p, l);
    }
    per_us
}

/// Live bytes at the first failed allocation ÷ arena bytes.
fn heap_efficiency<A: Subject>(arena: &Arena, seed: u64) -> f64 {
    let a = A::build(arena.take(EFFICIENCY_ARENA_BYTES));
    let mut rng = Rng(seed);
    let mut live: Vec<(*mut u8, Layout)> = Vec::new();
    let mut live_bytes = 0;
    loop {
        if live.is_empty() || rng.below(10) < 7 {
            let l = layout(rng.small_biased());
            let p = alloc(a, l);
            if p.is_null() {
                a.report(&format!("at the first failure ({} B)", l.size()));
                break;
            }
            live_bytes += l.size();
            live.push((p, l));
        } else {
            let (p, l) = live.swap_remove(rng.below(live.len()));
            live_bytes -= l.size();
            free(a, p, l);
        }
    }
    live_bytes as f64 / EFFICIENCY_ARENA_BYTES as f64
}

struct Footprint {
    ops: usize,
    first: f64,
    last: f64,
}

/// Churn around a live target; peak held ÷ peak live in the first and the
/// last window of operations.
fn footprint<A: Subject>(a: &A, base: usize, target: usize) -> Footprint {
    let mut rng = Rng(0xf00d);
    let mut live: Vec<(*mut u8, Layout)> = Vec::new();
    let mut live_bytes = 0usize;
    let mut high_water = 0usize;
    let held = |a: &A, high_water: usize| a.claimed_bytes().unwrap_or(high_water);
    // (peak held, peak live) per window of CHURN_WINDOW operations.
    let mut windows: Vec<(usize, usize)> = vec![(0, 0)];
    let start = Instant::now();
    let mut ops = 0;
    // Ramp up to the target before measuring.
    while live_bytes < target {
        let l = layout(rng.small_biased());
        let p = alloc(a, l);
        live_bytes += l.size();
        high_water = high_water.max(p as usize + l.size() - base);
        live.push((p, l));
    }
    while ops < CHURN_OPS {
        if ops % 65_536 == 0 && start.elapsed() > CHURN_TIME_LIMIT {
            break;
        }
        let grow = if live_bytes < target { 6 } else { 4 };
        if rng.below(10) < grow {
            let l = layout(rng.small_biased());
            let p = alloc(a, l);
            assert!(!p.is_null(), "{} ran out during churn", A::NAME);
            live_bytes += l.size();
            high_water = high_water.max(p as usize + l.size() - base);
            live.push((p, l));
        } else {
            let (p, l) = live.swap_remove(rng.below(live.len()));
            live_bytes -= l.size();
            free(a, p, l);
        }
        let window = windows.last_mut().expect("one window at least");
        window.0 = window.0.max(held(a, high_water));
        window.1 = window.1.max(live_bytes);
        ops += 1;
        if ops % CHURN_WINDOW == 0 {
            windows.push((0, 0));
        }
    }
    a.report("at the end of the churn");
    for (p, l) in live {
        free(a, p, l);
    }
    let ratio = |(held, live): (usize, usize)| {
        if live == 0 {
            f64::NAN
        } else {
            held as f64 / live as f64
        }
    };
    // The last complete window (the first, if the time limit hit early).
    let last = windows.len().saturating_sub(2);
    Footprint {
        ops,
        first: ratio(windows[0]),
        last: ratio(windows[last]),
    }
}

struct Row {
    name: &'static str,
    hot: Latency,
    set: Latency,
    actions: f64,
    efficiency: f64,
    footprint: [Footprint; 2],
}

struct Timing {
    hot: Latency,
    set: Latency,
    actions: f64,
}

/// The timing-dependent measurements, on fresh allocators.
fn timing<A: Subject>(arena: &Arena, tsc: f64, overhead: u64) -> Timing {
    eprintln!("timing {}", A::NAME);
    Timing {
        hot: latency_hot(A::build(arena.take(ARENA_BYTES)), tsc, overhead),
        set: latency_working_set(A::build(arena.take(ARENA_BYTES)), tsc, overhead),
        actions: random_actions(A::build(arena.take(ARENA_BYTES))),
    }
}

/// The deterministic (seeded) memory measurements.
fn memory<A: Subject>(arena: &Arena) -> (f64, [Footprint; 2]) {
    eprintln!("memory {}", A::NAME);
    let mut efficiency: Vec<f64> = [1, 2, 3]
        .iter()
        .map(|&seed| heap_efficiency::<A>(arena, seed))
        .collect();
    efficiency.sort_by(f64::total_cmp);
    let base = arena.base as usize;
    let large = footprint(A::build(arena.take(ARENA_BYTES)), base, 16 << 20);
    let small = footprint(A::build(arena.take(ARENA_BYTES)), base, 4 << 20);
    (efficiency[1], [large, small])
}

struct Entry {
    name: &'static str,
    timing: fn(&Arena, f64, u64) -> Timing,
    memory: fn(&Arena) -> (f64, [Footprint; 2]),
    extra: fn(&Arena) -> workloads::Extra,
    reuse: fn(&Arena) -> (f64, f64),
}

fn entry<A: Subject>() -> Entry {
    Entry {
        name: A::NAME,
        timing: timing::<A>,
        memory: memory::<A>,
        extra: workloads::extra::<A>,
        reuse: workloads::reuse_8k::<A>,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` probe
    }
    let arena = Arena::new();
    let tsc = tsc_per_ns();
    let overhead = timer_overhead();
    eprintln!("tsc {tsc:.3} ticks/ns, timer overhead {overhead} ticks");
    // BENCH_ONLY_SLAB=1 measures the slab allocator alone (for tuning).
    let mut entries = vec![entry::<Slab<true>>(), entry::<Slab<false>>()];
    if std::env::var_os("BENCH_ONLY_SLAB").is_none() {
        entries.push(entry::<Talc>());
        entries.push(entry::<Rlsf>());
        entries.push(entry::<Buddy>());
        entries.push(entry::<LinkedList>());
    }
    // Timing runs interleave the allocators, so a burst of noise from the
    // machine's other tenants does not land on one of them only; every
    // timing cell is the median of the runs.
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    // BENCH_ONLY_NEW=1 runs only the issue-16 workloads (second table).
    let only_new = std::env::var_os("BENCH_ONLY_NEW").is_some();
    // BENCH_ONLY_MEMORY=1 prints only the seeded, deterministic columns
    // (heap efficiency, footprint, reuse): seconds instead of minutes.
    if std::env::var_os("BENCH_ONLY_MEMORY").is_some() {
        print_memory_only(&entries, &arena);
        return;
    }
    let mut timings: Vec<Vec<Timing>> = entries.iter().map(|_| Vec::new()).collect();
    let mut extras: Vec<Vec<workloads::Extra>> = entries.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for ((e, t), x) in entries.iter().zip(&mut timings).zip(&mut extras) {
            if !only_new {
                t.push((e.timing)(&arena, tsc, overhead));
            }
            x.push((e.extra)(&arena));
        }
    }
    let reuse: Vec<(f64, f64)> = entries.iter().map(|e| (e.reuse)(&arena)).collect();
    let names: Vec<&'static str> = entries.iter().map(|e| e.name).collect();
    if !only_new {
        print_main_table(&entries, timings, &arena);
        println!();
    }
    workloads::print_table(&names, &extras, &reuse);
}

fn print_memory_only(entries: &[Entry], arena: &Arena) {
    println!(
        "| allocator | heap efficiency | footprint, 16 MiB live | footprint, 4 MiB live | 8 KiB again ÷ fresh | bytes ÷ arena |"
    );
    println!("|---|---|---|---|---|---|");
    for e in entries {
        let (efficiency, [large, small]) = (e.memory)(arena);
        let (blocks, bytes) = (e.reuse)(arena);
        println!(
            "| {} | {:.1} % | {:.3} → {:.3} | {:.3} → {:.3} | {:.2} % | {:.2} % |",
            e.name,
            efficiency * 100.0,
            large.first,
            large.last,
            small.first,
            small.last,
            blocks * 100.0,
            bytes * 100.0,
        );
    }
}

fn print_main_table(entries: &[Entry], timings: Vec<Vec<Timing>>, arena: &Arena) {
    let rows: Vec<Row> = entries
        .iter()
        .zip(timings)
        .map(|(e, t)| {
            let cell = |f: fn(&Timing) -> f64| median(t.iter().map(f).collect());
            let (efficiency, footprint) = (e.memory)(arena);
            Row {
                name: e.name,
                hot: Latency {
                    p50: cell(|t| t.hot.p50),
                    p99: cell(|t| t.hot.p99),
                    p999: cell(|t| t.hot.p999),
                    mean: cell(|t| t.hot.mean),
                },
                set: Latency {
                    p50: cell(|t| t.set.p50),
                    p99: cell(|t| t.set.p99),
                    p999: cell(|t| t.set.p999),
                    mean: cell(|t| t.set.mean),
                },
                actions: cell(|t| t.actions),
                efficiency,
                footprint,
            }
        })
        .collect();
    println!(
        "| allocator | hot p50 / p99 / p99.9 (mean) ns | 10k live p50 / p99 / p99.9 (mean) ns | random actions per µs | heap efficiency | footprint, 16 MiB live: first → last 10^6 ops | footprint, 4 MiB live: first → last 10^6 ops |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let fp = |f: &Footprint| {
            let ops = if f.ops < CHURN_OPS {
                format!(" ({:.1e} ops)", f.ops as f64)
            } else {
                String::new()
            };
            format!("{:.3} → {:.3}{ops}", f.first, f.last)
        };
        println!(
            "| {} | {:.1} / {:.1} / {:.1} ({:.1}) | {:.1} / {:.1} / {:.1} ({:.1}) | {:.1} | {:.1} % | {} | {} |",
            r.name,
            r.hot.p50,
            r.hot.p99,
            r.hot.p999,
            r.hot.mean,
            r.set.p50,
            r.set.p99,
            r.set.p999,
            r.set.mean,
            r.actions,
            r.efficiency * 100.0,
            fp(&r.footprint[0]),
            fp(&r.footprint[1]),
        );
    }
}
