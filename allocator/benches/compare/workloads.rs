//! The workloads issue 16 added to the comparison: growing buffers by
//! `realloc` one byte at a time (one buffer to 1 MiB, and eight buffers
//! interleaved to 128 KiB each), a key-value server's size mix in a churn,
//! and fill / free all / reuse as 8 KiB blocks.

use std::alloc::Layout;
use std::time::{Duration, Instant};

use super::{ARENA_BYTES, EFFICIENCY_ARENA_BYTES};
use super::{Arena, Rng, Subject, alloc, free, layout, realloc, touch};

/// Size one buffer grows to, and the eight interleaved ones together.
pub(crate) const GROW_ONE_BYTES: usize = 1 << 20;
/// Buffers grown interleaved.
pub(crate) const GROW_MANY: usize = 8;
/// An allocator that copies on every step cannot reach 1 MiB in time;
/// it stops here (the table says how far it got).
const GROW_TIME_LIMIT: Duration = Duration::from_secs(3);
/// Live values in the key-value churn, and operations timed.
const KV_LIVE: usize = 20_000;
const KV_OPS: usize = 1_000_000;
/// Grows `buffers` buffers round-robin by `realloc`, one byte per step,
/// writing the new byte, up to `target` bytes each (or until the time
/// limit); returns (ns per step, bytes reached per buffer).
fn grow<A: Subject>(a: &A, buffers: usize, target: usize) -> (f64, usize) {
    let mut bufs: Vec<*mut u8> = (0..buffers)
        .map(|_| {
            let p = alloc(a, layout(1));
            touch(p);
            p
        })
        .collect();
    let mut size = 1;
    let mut steps = 0u64;
    let start = Instant::now();
    while size < target {
        if size % 4096 == 0 && start.elapsed() > GROW_TIME_LIMIT {
            break;
        }
        for b in &mut bufs {
            let q = realloc(a, *b, layout(size), size + 1);
            assert!(!q.is_null(), "{} ran out while growing", A::NAME);
            // SAFETY: `q` is a live block of `size + 1` bytes.
            unsafe { q.add(size).write_volatile(size as u8) };
            *b = q;
        }
        size += 1;
        steps += buffers as u64;
    }
    let ns = start.elapsed().as_nanos() as f64 / steps as f64;
    for b in bufs {
        // SAFETY: each buffer holds `size` bytes, the last one written.
        assert_eq!(unsafe { b.add(size - 1).read_volatile() }, (size - 1) as u8);
        free(a, b, layout(size));
    }
    (ns, size)
}

/// A key-value server's size mix: 85 % uniform in 16..=512 B, 14 %
/// log-uniform in 512 B..8 KiB, 1 % log-uniform in 8..64 KiB.
fn kv_size(rng: &mut Rng) -> usize {
    let roll = rng.below(100);
    let (lo, hi) = match roll {
        0..85 => return 16 + rng.below(497),
        85..99 => (9, 13),
        _ => (13, 16),
    };
    let k = lo + rng.below(hi - lo);
    (1 << k) + rng.below(1 << k)
}

/// Churn over `KV_LIVE` live values of the key-value mix: each operation
/// frees a random value and allocates its replacement (a `SET` over an
/// existing key), touching it. Returns operations per µs.
fn kv_churn<A: Subject>(a: &A) -> f64 {
    let mut rng = Rng(0x5eed_cafe);
    let mut live: Vec<(*mut u8, Layout)> = (0..KV_LIVE)
        .map(|_| {
            let l = layout(kv_size(&mut rng));
            let p = alloc(a, l);
            assert!(!p.is_null());
            (p, l)
        })
        .collect();
    let plan: Vec<(usize, Layout)> = (0..KV_OPS)
        .map(|_| (rng.below(KV_LIVE), layout(kv_size(&mut rng))))
        .collect();
    let start = Instant::now();
    for &(slot, l) in &plan {
        let (old, old_layout) = live[slot];
        free(a, old, old_layout);
        let p = alloc(a, l);
        assert!(!p.is_null(), "{} ran out in the key-value churn", A::NAME);
        touch(p);
        live[slot] = (p, l);
    }
    let per_us = KV_OPS as f64 / start.elapsed().as_micros() as f64;
    for (p, l) in live {
        free(a, p, l);
    }
    per_us
}

/// 8 KiB blocks an allocator hands out until its first failure; frees them.
fn blocks_8k<A: Subject>(a: &A) -> usize {
    let l = layout(8192);
    let mut blocks = Vec::new();
    loop {
        let p = alloc(a, l);
        if p.is_null() {
            break;
        }
        touch(p);
        blocks.push(p);
    }
    let n = blocks.len();
    for p in blocks {
        free(a, p, l);
    }
    n
}

/// Fill, free all, reuse: 8 KiB blocks to be had after the heap was filled
/// with small objects (16–256 B) and all of them were freed, ÷ 8 KiB
/// blocks a fresh allocator over the same arena hands out; and the same
/// bytes ÷ the arena.
pub(crate) fn reuse_8k<A: Subject>(arena: &Arena) -> (f64, f64) {
    let fresh = blocks_8k(A::build(arena.take(EFFICIENCY_ARENA_BYTES)));
    let a = A::build(arena.take(EFFICIENCY_ARENA_BYTES));
    let mut rng = Rng(0xf111);
    let mut live = Vec::new();
    loop {
        let l = layout(16 + rng.below(241));
        let p = alloc(a, l);
        if p.is_null() {
            break;
        }
        live.push((p, l));
    }
    for (p, l) in live {
        free(a, p, l);
    }
    let again = blocks_8k(a);
    a.report("after fill, free all and 8 KiB reuse");
    (
        again as f64 / fresh as f64,
        (again * 8192) as f64 / EFFICIENCY_ARENA_BYTES as f64,
    )
}

/// The timing runs of the issue-16 workloads on fresh allocators.
pub(crate) struct Extra {
    pub(crate) grow_one: (f64, usize),
    pub(crate) grow_many: (f64, usize),
    pub(crate) kv: f64,
}

pub(crate) fn extra<A: Subject>(arena: &Arena) -> Extra {
    eprintln!("timing (grow, key-value) {}", A::NAME);
    Extra {
        grow_one: grow(A::build(arena.take(ARENA_BYTES)), 1, GROW_ONE_BYTES),
        grow_many: grow(
            A::build(arena.take(ARENA_BYTES)),
            GROW_MANY,
            GROW_ONE_BYTES / GROW_MANY,
        ),
        kv: kv_churn(A::build(arena.take(ARENA_BYTES))),
    }
}

/// Median and min–max of `values`.
fn spread(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Prints the second table: per allocator, each timing as median (min–max)
/// and its ratio to talc's median (> 1 = better than talc), and the reuse
/// figures.
pub(crate) fn print_table(names: &[&str], extras: &[Vec<Extra>], reuse: &[(f64, f64)]) {
    let talc = names.iter().position(|n| n.starts_with("talc"));
    type Pick = fn(&Extra) -> f64;
    let picks: [(Pick, bool); 3] = [
        (|x| x.grow_one.0, false),
        (|x| x.grow_many.0, false),
        (|x| x.kv, true),
    ];
    let medians: Vec<Vec<f64>> = extras
        .iter()
        .map(|runs| {
            picks
                .iter()
                .map(|(f, _)| spread(runs.iter().map(f)).0)
                .collect()
        })
        .collect();
    println!(
        "| allocator | grow 1 buffer to 1 MiB, ns/step (min–max) | × talc | grow 8 buffers to 128 KiB, ns/step (min–max) | × talc | key-value churn, ops/µs (min–max) | × talc | fill, free all, 8 KiB blocks again ÷ fresh | same, bytes ÷ arena |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        let mut row = format!("| {name} |");
        for (k, (pick, higher_better)) in picks.iter().enumerate() {
            let (med, lo, hi) = spread(extras[i].iter().map(pick));
            let reached = match k {
                0 => extras[i].iter().map(|x| x.grow_one.1).min(),
                1 => extras[i].iter().map(|x| x.grow_many.1).min(),
                _ => None,
            };
            let short = match (k, reached) {
                (0, Some(r)) if r < GROW_ONE_BYTES => format!(", stopped at {} KiB", r >> 10),
                (1, Some(r)) if r < GROW_ONE_BYTES / GROW_MANY => {
                    format!(", stopped at {} KiB", r >> 10)
                }
                _ => String::new(),
            };
            let ratio = talc.map_or(f64::NAN, |t| {
                let base = medians[t][k];
                if *higher_better {
                    med / base
                } else {
                    base / med
                }
            });
            row += &format!(" {med:.1} ({lo:.1}–{hi:.1}){short} | {ratio:.2} |");
        }
        row += &format!(
            " {:.2} % | {:.2} % |",
            reuse[i].0 * 100.0,
            reuse[i].1 * 100.0
        );
        println!("{row}");
    }
}
