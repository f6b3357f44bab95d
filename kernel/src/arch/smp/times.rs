//! Where each CPU's time goes while threads run on several CPUs: in user
//! mode, halted idle, or spinning for the big kernel lock (TSC cycles,
//! counted only while the lock is in use — one vCPU pays nothing). The
//! rest is kernel work under the lock. Printed at exit with the `smp:`
//! summary ([`super::summary`]): the scaling figure's check that both CPUs
//! ran the program (docs/PERFORMANCE.md, "Threads on two vCPUs").

use core::sync::atomic::{AtomicU64, Ordering};

use super::{MAX_CPUS, cpu_index};

/// One CPU's counts, in TSC cycles.
#[derive(Debug)]
struct CpuTimes {
    /// In ring 3 (from the entry into user mode to the return).
    user: AtomicU64,
    /// Halted in `idle_halt`.
    idle: AtomicU64,
    /// Spinning for the big kernel lock.
    lock_wait: AtomicU64,
}

static TIMES: [CpuTimes; MAX_CPUS] = [const {
    CpuTimes {
        user: AtomicU64::new(0),
        idle: AtomicU64::new(0),
        lock_wait: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// The TSC when the lock came into use (the start of the accounting).
static SINCE: AtomicU64 = AtomicU64::new(0);

/// What a span is counted as.
#[derive(Debug, Clone, Copy)]
pub enum Span {
    /// User mode.
    User,
    /// Halted idle.
    Idle,
    /// Waiting for the big kernel lock.
    LockWait,
}

/// Starts the accounting (when the lock comes into use).
pub fn start() {
    SINCE.store(crate::time::rdtsc(), Ordering::Relaxed);
}

/// Adds the cycles from `since` (a TSC reading) to now to this CPU's `span`.
pub fn add_since(span: Span, since: u64) {
    let cycles = crate::time::rdtsc().saturating_sub(since);
    let t = &TIMES[cpu_index() % MAX_CPUS];
    let counter = match span {
        Span::User => &t.user,
        Span::Idle => &t.idle,
        Span::LockWait => &t.lock_wait,
    };
    counter.fetch_add(cycles, Ordering::Relaxed);
}

/// Writes ` CPU n user U ms, idle I ms, lock L ms, kernel K ms;` for each
/// of `cpus` CPUs (kernel: the rest of the time since [`start`]).
pub fn write_summary(out: &mut impl core::fmt::Write, cpus: usize) -> core::fmt::Result {
    let hz = crate::time::tsc_hz().max(1);
    let total = crate::time::rdtsc().saturating_sub(SINCE.load(Ordering::Relaxed));
    let ms = |cycles: u64| u128::from(cycles) * 1000 / u128::from(hz);
    for (c, t) in TIMES.iter().enumerate().take(cpus) {
        let user = t.user.load(Ordering::Relaxed);
        let idle = t.idle.load(Ordering::Relaxed);
        let lock = t.lock_wait.load(Ordering::Relaxed);
        let kernel = total.saturating_sub(user + idle + lock);
        write!(
            out,
            " CPU {c} user {} ms, idle {} ms, lock {} ms, kernel {} ms;",
            ms(user),
            ms(idle),
            ms(lock),
            ms(kernel)
        )?;
    }
    Ok(())
}
