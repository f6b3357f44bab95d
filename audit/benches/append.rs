//! Append cost of the audit ring by record size, with and without sealing,
//! next to `memcpy` bandwidth measured in the same run.
//!
//! `cargo bench -p audit --bench append` (under a minute). Latencies are
//! read with `rdtsc` (its own overhead subtracted; converted to ns with a TSC
//! rate calibrated against `Instant`). "No seal" latencies are per append
//! over batches of up to 8 appends that sealed no block (the TSC of a VM ticks
//! too coarsely to time one 10 ns append). Throughputs are medians over
//! 128 KiB chunks of laps of a 1 MiB (cache-resident) and a 64 MiB ring,
//! seals, evictions and gap records included; the median discards chunks in
//! which the shared VM preempted the benchmark.

use std::hint::black_box;
use std::time::Instant;

use audit::{AuditLog, Config, Event, SyscallEvent};

const REGION_BYTES: usize = 64 << 20;
const SIZES: [usize; 6] = [32, 64, 128, 256, 512, 1024];
const SAMPLES: usize = 200_000;

fn ticks() -> u64 {
    // SAFETY: `rdtsc` reads the time-stamp counter; it has no memory-safety
    // preconditions and every x86_64 CPU implements it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// TSC ticks per nanosecond.
fn calibrate() -> f64 {
    let t0 = Instant::now();
    let c0 = ticks();
    while t0.elapsed().as_millis() < 100 {}
    let c1 = ticks();
    (c1 - c0) as f64 / t0.elapsed().as_nanos() as f64
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Median cost of an empty rdtsc pair, in ticks.
fn overhead() -> u64 {
    let mut v: Vec<u64> = (0..10_000)
        .map(|_| {
            let a = ticks();
            black_box(());
            ticks() - a
        })
        .collect();
    v.sort_unstable();
    percentile(&v, 0.5)
}

fn config() -> Config {
    Config::new([7; 32], [9; 16])
}

/// Text filling a `record_bytes` record: times here step by 1 ns, so the
/// header is the shortest (a block's first record takes a byte or two more).
fn text_of(record_bytes: usize) -> String {
    "a".repeat(record_bytes - audit::wire::RECORD_HEADER_MIN_BYTES)
}

/// (p50 ns, p99 ns) per append, from batches of `BATCH` appends that did
/// not seal a block (the hot path alone). `BATCH` is at most 8 and small
/// enough that most batches of `record_bytes` records seal nothing.
fn unsealed_latency(
    region: &mut [u8],
    event: &Event<'_>,
    record_bytes: usize,
    tpn: f64,
    oh: u64,
) -> (f64, f64) {
    let per_block = (4096 - audit::wire::BLOCK_HEADER_BYTES) / record_bytes;
    let batch = (per_block as u64 / 3).clamp(1, 8);
    let mut log = AuditLog::format(region, &config()).expect("format");
    let mut v = Vec::with_capacity(SAMPLES);
    let mut i = 0u64;
    while v.len() < SAMPLES / batch as usize && i < 4 * SAMPLES as u64 {
        let sealed = log.sealed_blocks();
        let a = ticks();
        for _ in 0..batch {
            black_box(log.append(black_box(event), i, 0)).ok();
            i += 1;
        }
        let b = ticks();
        if log.sealed_blocks() == sealed {
            v.push((b - a).saturating_sub(oh));
        }
    }
    v.sort_unstable();
    let per = |t: u64| t as f64 / tpn / batch as f64;
    (per(percentile(&v, 0.5)), per(percentile(&v, 0.99)))
}

/// (p50 ns, p99 ns) of an append followed by a forced seal (the path of a
/// security-critical event).
fn seal_each_latency(region: &mut [u8], event: &Event<'_>, tpn: f64, oh: u64) -> (f64, f64) {
    let mut log = AuditLog::format(region, &config()).expect("format");
    let mut v = Vec::with_capacity(SAMPLES / 4);
    for i in 0..(SAMPLES / 4) as u64 {
        let a = ticks();
        black_box(log.append(black_box(event), i, 0)).ok();
        log.seal();
        v.push((ticks() - a).saturating_sub(oh));
    }
    v.sort_unstable();
    (
        percentile(&v, 0.5) as f64 / tpn,
        percentile(&v, 0.99) as f64 / tpn,
    )
}

/// (p50 ns, p99 ns) of sealing a full 4 KiB block, and of keyed BLAKE3 over
/// 4 KiB alone.
fn block_seal(region: &mut [u8], tpn: f64, oh: u64) -> ((f64, f64), (f64, f64)) {
    let text = text_of(128);
    let ev = Event::Text { text: &text };
    let mut log = AuditLog::format(region, &config()).expect("format");
    let mut v = Vec::new();
    for i in 0..20_000u64 {
        for _ in 0..31 {
            log.append(&ev, i, 0).ok();
        }
        let a = ticks();
        log.seal();
        v.push((ticks() - a).saturating_sub(oh));
    }
    v.sort_unstable();
    let seal = (
        percentile(&v, 0.5) as f64 / tpn,
        percentile(&v, 0.99) as f64 / tpn,
    );
    let data = vec![5u8; 4096];
    let mut v = Vec::new();
    for _ in 0..20_000 {
        let a = ticks();
        let mut h = blake3::Hasher::new_keyed(&[1; 32]);
        h.update(black_box(&data));
        black_box(h.finalize());
        v.push((ticks() - a).saturating_sub(oh));
    }
    v.sort_unstable();
    (
        seal,
        (
            percentile(&v, 0.5) as f64 / tpn,
            percentile(&v, 0.99) as f64 / tpn,
        ),
    )
}

/// Bytes of records (or of copies) per timed chunk in the throughput runs:
/// short enough (tens of µs) that most chunks run without being preempted
/// on this shared VM, so the median chunk is the CPU cost.
const CHUNK_BYTES: usize = 128 << 10;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (ns per append amortised, GB/s of record bytes): median over chunks of
/// `laps` laps of `region` (64 MiB: DRAM-bound; 1 MiB: cache-resident),
/// seals, evictions and gap records included.
fn sustained(region: &mut [u8], event: &Event<'_>, record_bytes: usize, laps: usize) -> (f64, f64) {
    let per_chunk = CHUNK_BYTES / record_bytes;
    let chunks = laps * region.len() / CHUNK_BYTES;
    let mut log = AuditLog::format(region, &config()).expect("format");
    let mut ns = Vec::with_capacity(chunks);
    let mut i = 0u64;
    for _ in 0..chunks {
        let t = Instant::now();
        for _ in 0..per_chunk {
            log.append(black_box(event), i, 0).ok();
            i += 1;
        }
        ns.push(t.elapsed().as_nanos() as f64 / per_chunk as f64);
    }
    let m = median(ns);
    (m, record_bytes as f64 / m)
}

/// GB/s of copying `chunk`-byte pieces into consecutive offsets of `dst`
/// (median over chunks, as above).
fn memcpy_chunks(dst: &mut [u8], src: &[u8], chunk: usize, laps: usize) -> f64 {
    let per_chunk = CHUNK_BYTES / chunk;
    let chunks = dst.len() / CHUNK_BYTES;
    let mut rates = Vec::new();
    for _ in 0..laps {
        for c in 0..chunks {
            let t = Instant::now();
            for i in 0..per_chunk {
                let at = c * CHUNK_BYTES + i * chunk;
                dst[at..at + chunk].copy_from_slice(black_box(&src[..chunk]));
            }
            black_box(&mut *dst);
            rates.push(CHUNK_BYTES as f64 / t.elapsed().as_nanos() as f64);
        }
    }
    median(rates)
}

fn main() {
    let tpn = calibrate();
    let oh = overhead();
    let mut region = vec![0u8; REGION_BYTES];
    region.fill(1); // fault the pages in
    let src = vec![3u8; REGION_BYTES];

    let mut bulk = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        region.copy_from_slice(black_box(&src));
        bulk.push(REGION_BYTES as f64 / t.elapsed().as_nanos() as f64);
    }
    bulk.sort_by(f64::total_cmp);
    println!("tsc {tpn:.3} ticks/ns, rdtsc pair overhead {oh} ticks");
    println!(
        "memcpy bulk (1 MiB copies over 64 MiB, median): {:.2} GB/s",
        median(bulk)
    );
    println!();
    println!(
        "| record B | append p50 ns (no seal) | p99 ns (no seal) | amortised ns/rec incl. seals, 1 MiB ring | GB/s, 1 MiB ring | ns/rec, 64 MiB ring | GB/s, 64 MiB ring | append+seal p50 ns | memcpy same-size GB/s, 64 MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for size in SIZES {
        let text = text_of(size);
        let ev = Event::Text { text: &text };
        let (p50, p99) = unsealed_latency(&mut region, &ev, size, tpn, oh);
        let (s50, _) = seal_each_latency(&mut region, &ev, tpn, oh);
        let (hns, hgbs) = sustained(&mut region[..1 << 20], &ev, size, 64);
        let (ns, gbs) = sustained(&mut region, &ev, size, 2);
        let mc = memcpy_chunks(&mut region, &src, size, 2);
        println!(
            "| {size} | {p50:.1} | {p99:.1} | {hns:.1} | {hgbs:.2} | {ns:.1} | {gbs:.2} | {s50:.0} | {mc:.2} |"
        );
    }
    let ((b50, b99), (h50, h99)) = block_seal(&mut region, tpn, oh);
    println!();
    println!("seal of a full 4 KiB block: p50 {b50:.0} ns, p99 {b99:.0} ns");
    println!("keyed BLAKE3 of 4 KiB alone: p50 {h50:.0} ns, p99 {h99:.0} ns");
    let sc = Event::Syscall(SyscallEvent::new(1, [1, 2, 3, 4, 5, 6], 0, 7, 100));
    let (p50, p99) = unsealed_latency(&mut region, &sc, 96, tpn, oh);
    let (ns, gbs) = sustained(&mut region[..1 << 20], &sc, 96, 64);
    println!(
        "syscall event (96 B record): p50 {p50:.1} ns, p99 {p99:.1} ns, amortised {ns:.1} ns/rec, {gbs:.2} GB/s (1 MiB ring)"
    );
}
