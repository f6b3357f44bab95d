//! Time: the TSC-based monotonic clock and the timer tick count.
//!
//! The TSC frequency is measured once at boot against the PIT (and replaced
//! by the host's `tsc_khz=` when it agrees, `libos::boot::tsc`)
//! ([`crate::arch::pit`]); `now_ns` converts with a precomputed 32.32 fixed
//! point multiplier, so reading the clock costs one `rdtsc`, one multiply.

use core::sync::atomic::{AtomicU64, Ordering};

static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC cycle, 32.32 fixed point.
static NS_PER_CYCLE_FP32: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    crate::arch::cpu::rdtsc()
}

/// Records the boot TSC value (call first thing).
pub fn mark_boot() {
    TSC_AT_BOOT.store(rdtsc(), Ordering::Relaxed);
}

/// Whether the TSC frequency set last is the host's (`tsc_khz=`, taken
/// after the check of `libos::boot::tsc`): the clock then runs at the
/// host's rate. Set together with the frequency by [`set_tsc_hz`].
static TSC_FROM_HOST: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether the TSC frequency is the host's.
pub fn tsc_from_host() -> bool {
    TSC_FROM_HOST.load(Ordering::Relaxed)
}

/// Sets the TSC frequency and where it came from (measured against the
/// PIT, or the host's).
pub fn set_tsc_hz(hz: u64, source: libos::boot::tsc::TscSource) {
    TSC_HZ.store(hz, Ordering::Relaxed);
    let fp = ((1_000_000_000u128 << 32) / u128::from(hz.max(1))) as u64;
    NS_PER_CYCLE_FP32.store(fp, Ordering::Relaxed);
    TSC_FROM_HOST.store(
        source == libos::boot::tsc::TscSource::Host,
        Ordering::Relaxed,
    );
}

/// `now_ns`'s parameters: the TSC at monotonic 0 and nanoseconds per
/// cycle in 32.32 fixed point (the vDSO computes the same).
pub fn tsc_scale() -> (u64, u64) {
    (
        TSC_AT_BOOT.load(Ordering::Relaxed),
        NS_PER_CYCLE_FP32.load(Ordering::Relaxed),
    )
}

/// The TSC frequency in Hz (0 before calibration).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Nanoseconds since boot (0 before calibration).
pub fn now_ns() -> u64 {
    let cycles = rdtsc().wrapping_sub(TSC_AT_BOOT.load(Ordering::Relaxed));
    let fp = NS_PER_CYCLE_FP32.load(Ordering::Relaxed);
    ((u128::from(cycles) * u128::from(fp)) >> 32) as u64
}

/// Busy-waits for `ns` nanoseconds on the TSC.
pub fn spin_ns(ns: u64) {
    let start = now_ns();
    while now_ns().wrapping_sub(start) < ns {
        core::hint::spin_loop();
    }
}

/// Counts one timer interrupt.
pub fn tick() {
    // Every CPU ticks once programs run on APs: the count is the boot
    // CPU's.
    if crate::arch::smp::cpu_index() == 0 {
        TICKS.fetch_add(1, Ordering::Relaxed);
    }
    // Time moved: waits with a deadline or on the clock re-check.
    crate::task::bump_epoch();
}

/// Timer interrupts since the timer started.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}
