//! `audit.bench=N`: what an append costs in this guest, sealing included.
//!
//! Appends `N` records of 128 bytes (header included) to a scratch 1 MiB
//! ring on the heap, formatted under a random key — not the audit region,
//! which it never touches — laps it (evicting the oldest blocks as the
//! kernel's log does) and prints the mean time per record from the TSC,
//! then the same for records of 32 and 512 bytes. The in-guest counterpart
//! of `cargo bench -p audit --bench append` (docs/PERFORMANCE.md, "Audit
//! log"): `cargo cloister boot --append audit.bench=200000`.

use alloc::vec::Vec;

use ::audit::wire::RECORD_HEADER_BYTES;
use ::audit::{AuditLog, Config, Event};
use libos::boot::cmdline::KernelArgs;

use crate::{kprintln, time};

/// Largest `N` taken (about a second per size on a fast machine).
const MAX_RECORDS: u64 = 20_000_000;
const RING_BYTES: usize = 1 << 20;

/// Runs the benchmark if the command line asks for it.
pub(super) fn run(args: &KernelArgs<'_>) {
    let Some(value) = args.get("audit.bench") else {
        return;
    };
    let Ok(n) = value.parse::<u64>() else {
        ::log::warn!("audit.bench={value}: expected a number of records");
        return;
    };
    let n = n.clamp(1, MAX_RECORDS);
    let mut region = Vec::new();
    if region.try_reserve_exact(RING_BYTES).is_err() {
        ::log::warn!("audit.bench: no memory for a 1 MiB ring");
        return;
    }
    region.resize(RING_BYTES, 0u8);
    let mut config = Config::new([0; 32], [0; 16]);
    super::key::random_bytes(&mut config.key);
    super::key::random_bytes(&mut config.boot_id);
    let hz = time::tsc_hz().max(1);
    for record_bytes in [128, 32, 512] {
        let Some(line) = measure(&mut region, &config, record_bytes, n, hz) else {
            ::log::warn!("audit.bench: cannot format the scratch ring");
            return;
        };
        kprintln!("{line}");
    }
    super::key::wipe(&mut config.key);
}

/// One size: appends `n` records of `record_bytes`; the report line.
fn measure(
    region: &mut [u8],
    config: &Config,
    record_bytes: usize,
    n: u64,
    hz: u64,
) -> Option<alloc::string::String> {
    const FILL: [u8; 1024] = [b'a'; 1024];
    let text = core::str::from_utf8(&FILL[..record_bytes - RECORD_HEADER_BYTES]).ok()?;
    let event = Event::Text { text };
    let mut log = AuditLog::format(region, config).ok()?;
    let (mut failed, start) = (0u64, time::rdtsc());
    for i in 0..n {
        failed += u64::from(log.append(&event, i, 0).is_err());
    }
    let cycles = time::rdtsc().wrapping_sub(start);
    let sealed = log.sealed_blocks();
    // Tenths of a nanosecond per record.
    let tenths = u128::from(cycles) * 10_000_000_000 / (u128::from(hz) * u128::from(n));
    Some(alloc::format!(
        "audit bench: {record_bytes} B records, BLAKE3 {}: {}.{} ns per record with sealing \
         ({n} records, {sealed} blocks sealed, {failed} failed, 1 MiB ring, {} cycles per record)",
        ::audit::simd::implementation(),
        tenths / 10,
        tenths % 10,
        u128::from(cycles) / u128::from(n),
    ))
}
