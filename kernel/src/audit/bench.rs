//! `audit.bench=N`: what an append costs in this guest, sealing included.
//!
//! Appends `N` records of 128 bytes (header included) to a scratch 1 MiB
//! ring on the heap, formatted under a random key — not the audit region,
//! which it never touches — laps it (evicting the oldest blocks as the
//! kernel's log does) and prints the mean time per record from the TSC,
//! then the same for records of 32 and 512 bytes, and for the three system
//! call records of one unpipelined Redis request (`epoll_wait`, `read`,
//! `write`, with the arguments Redis passes). The in-guest counterpart
//! of `cargo bench -p audit --bench append` (docs/PERFORMANCE.md, "Audit
//! log"): `cargo cloister boot --append audit.bench=200000`.

use alloc::vec::Vec;

use ::audit::wire::{RECORD_FIXED_BYTES, byte_len, zigzag};
use ::audit::{AuditLog, Config, Event, SyscallEvent};
use libos::boot::cmdline::KernelArgs;

use crate::{kprintln, time};

/// Largest `N` taken (about a second per size on a fast machine).
const MAX_RECORDS: u64 = 20_000_000;
const RING_BYTES: usize = 1 << 20;
/// Time between two records, as on a busy server.
const STEP_NS: u64 = 10_000;

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
    config.block_bytes = super::BLOCK_BYTES;
    super::key::random_bytes(&mut config.key);
    super::key::random_bytes(&mut config.boot_id);
    let hz = time::tsc_hz().max(1);
    const FILL: [u8; 1024] = [b'a'; 1024];
    // A record's header at this spacing: the fixed part and the time (CPU
    // 0 takes no byte).
    let header = RECORD_FIXED_BYTES + byte_len(zigzag(STEP_NS as i64));
    for record_bytes in [128, 32, 512] {
        let Ok(text) = core::str::from_utf8(&FILL[..record_bytes - header]) else {
            return;
        };
        let what = alloc::format!("{record_bytes} B records");
        let Some(line) = measure(&mut region, &config, &[Event::Text { text }], &what, n, hz)
        else {
            ::log::warn!("audit.bench: cannot format the scratch ring");
            return;
        };
        kprintln!("{line}");
    }
    let request = redis_request();
    if let Some(line) = measure(&mut region, &config, &request, "Redis requests", n, hz) {
        kprintln!("{line}");
    }
    super::key::wipe(&mut config.key);
}

/// The three records of one unpipelined Redis GET as the kernel writes
/// them (arguments a call does not take are not stored).
fn redis_request() -> [Event<'static>; 3] {
    let call = |nr, args: [u64; 6], argc, result, duration_ns| {
        let mut s = SyscallEvent::new(nr, args, result, 1, duration_ns);
        s.arg_count = argc;
        Event::Syscall(s)
    };
    [
        call(232, [5, 0x7f3c_8a1f_2000, 10128, 100, 0, 0], 4, 1, 2_100),
        call(0, [8, 0x7f3c_89a0_c005, 16384, 0, 0, 0], 3, 33, 1_400),
        call(1, [8, 0x55d1_c3e8_a1b3, 5, 0, 0, 0], 3, 5, 3_900),
    ]
}

/// Appends `events` `n` times (timestamps 10 µs apart, as a busy server's
/// would be); the report line, per round of `events`.
fn measure(
    region: &mut [u8],
    config: &Config,
    events: &[Event<'_>],
    what: &str,
    n: u64,
    hz: u64,
) -> Option<alloc::string::String> {
    let mut log = AuditLog::format(region, config).ok()?;
    let (mut failed, start) = (0u64, time::rdtsc());
    let mut now = 1_000_000_000u64;
    for _ in 0..n {
        for event in events {
            now += STEP_NS;
            // Syscall records as the kernel appends them (`record_syscall`).
            let r = match event {
                Event::Syscall(s) => log.append_syscall(s, now, 0),
                _ => log.append(event, now, 0),
            };
            failed += u64::from(r.is_err());
        }
    }
    let cycles = time::rdtsc().wrapping_sub(start);
    let sealed = log.sealed_blocks();
    let per_block = log.next_seq() / sealed.max(1);
    // Tenths of a nanosecond per round.
    let tenths = u128::from(cycles) * 10_000_000_000 / (u128::from(hz) * u128::from(n));
    Some(alloc::format!(
        "audit bench: {what}, BLAKE3 {}, POLYVAL {}: {}.{} ns each with sealing \
         ({n} of them, {sealed} blocks sealed, {per_block} records per block, {failed} failed, \
         1 MiB ring, {} cycles each)",
        ::audit::simd::implementation(),
        ::audit::simd::mac_implementation(),
        tenths / 10,
        tenths % 10,
        u128::from(cycles) / u128::from(n),
    ))
}
