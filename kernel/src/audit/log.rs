//! The kernel's one audit log and the functions that record into it.
//!
//! The log sits behind a spin lock taken with interrupts disabled. Ordinary
//! callers ([`record_event`], [`record_syscall`], …) wait for the lock; the
//! exception and panic paths ([`record_exception`], [`record_panic`]) only
//! *try* it a bounded number of times, because they may have interrupted the
//! very code that holds it (a fault inside `append`). A record that could
//! not be written for that reason is counted in [`missed_events`], and the
//! next record that gets the lock first writes a text record saying how many
//! were missed — never silent.
//!
//! Every function is a single relaxed load and a return while auditing is
//! off.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::interrupts::without_interrupts;
use ::audit::{AppendError, AuditLog, Event, SyscallEvent, TextKind};
use spin::{Mutex, MutexGuard};

static LOG: Mutex<Option<AuditLog<'static>>> = Mutex::new(None);
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Events not recorded because the lock was held when an exception or a
/// panic tried to record.
static MISSED: AtomicU64 = AtomicU64::new(0);
/// How many of `MISSED` have been written to the log as a text record
/// (changed only under the lock).
static MISSED_RECORDED: AtomicU64 = AtomicU64::new(0);
/// Appends that failed (dropped under drop-newest, counted by the log
/// itself too; or sequence numbers exhausted).
static FAILED: AtomicU64 = AtomicU64::new(0);

/// How many times the exception and panic paths try the lock before giving
/// up (a few microseconds: on one CPU a held lock is never released while
/// we spin, so this only matters with SMP).
const TRY_LOCK_SPINS: u32 = 1000;

/// The CPU number recorded: the CPU's index (0 = the boot CPU).
fn cpu() -> u16 {
    crate::arch::smp::cpu_index() as u16
}

/// Installs `log` and turns recording on. Called once by [`super::init`].
pub(super) fn install(log: AuditLog<'static>) {
    without_interrupts(|| *LOG.lock() = Some(log));
    ENABLED.store(true, Ordering::Release);
}

/// Removes the log and turns recording off (the crash test, after a torn
/// append, so the panic that follows writes nothing).
#[cfg(feature = "ktest")]
pub(super) fn uninstall() -> Option<AuditLog<'static>> {
    ENABLED.store(false, Ordering::Release);
    without_interrupts(|| LOG.lock().take())
}

/// Whether auditing is on.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Events the exception and panic paths could not record because the log
/// was busy.
pub fn missed_events() -> u64 {
    MISSED.load(Ordering::Relaxed)
}

/// Appends that failed (the log counts drops in its `lost` counter too).
pub fn failed_appends() -> u64 {
    FAILED.load(Ordering::Relaxed)
}

/// How to get the lock.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Wait for it (ordinary callers).
    Block,
    /// Give up after [`TRY_LOCK_SPINS`] tries and count a miss.
    Bounded,
}

/// Runs `f` on the log with interrupts off; `None` when auditing is off or
/// (for [`Wait::Bounded`]) the lock is held.
fn with_log<R>(wait: Wait, f: impl FnOnce(&mut AuditLog<'static>, u64, u16) -> R) -> Option<R> {
    if !is_enabled() {
        return None;
    }
    without_interrupts(|| {
        let mut guard = match wait {
            Wait::Block => LOG.lock(),
            Wait::Bounded => match try_lock_bounded() {
                Some(g) => g,
                None => {
                    MISSED.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            },
        };
        let log = guard.as_mut()?;
        let now = crate::time::now_ns();
        record_missed(log, now);
        Some(f(log, now, cpu()))
    })
}

fn try_lock_bounded() -> Option<MutexGuard<'static, Option<AuditLog<'static>>>> {
    for _ in 0..TRY_LOCK_SPINS {
        if let Some(g) = LOG.try_lock() {
            return Some(g);
        }
        core::hint::spin_loop();
    }
    None
}

/// Writes a text record for misses not yet on record (under the lock).
#[inline(always)]
fn record_missed(log: &mut AuditLog<'static>, now: u64) {
    let missed = MISSED.load(Ordering::Relaxed);
    let recorded = MISSED_RECORDED.load(Ordering::Relaxed);
    if missed != recorded {
        record_missed_slow(log, now, missed, recorded);
    }
}

/// The rare half of [`record_missed`], out of line: the syscall record
/// path runs the check for every call.
#[cold]
#[inline(never)]
fn record_missed_slow(log: &mut AuditLog<'static>, now: u64, missed: u64, recorded: u64) {
    let r = log.append_fmt(
        TextKind::Text,
        format_args!(
            "audit: {} exception/panic events not recorded: the log was busy",
            missed - recorded
        ),
        now,
        cpu(),
    );
    count(r);
    MISSED_RECORDED.store(missed, Ordering::Relaxed);
}

fn count(r: Result<u64, AppendError>) -> Option<u64> {
    match r {
        Ok(seq) => Some(seq),
        Err(_) => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Records `event`; returns its sequence number, or `None` when auditing is
/// off or the record was dropped (ring full under drop-newest: counted and
/// named later by a gap record). Gap and checkpoint events are the log's
/// own and are refused.
pub fn record_event(event: &Event<'_>) -> Option<u64> {
    with_log(Wait::Block, |log, now, cpu| {
        count(log.append(event, now, cpu))
    })
    .flatten()
}

/// Records a syscall of the hosted application: its number, the argument
/// registers it takes, the result (`-errno` on failure), the thread id and
/// how long it took. Numbers and durations beyond `u32` are saturated.
pub fn record_syscall(nr: u64, args: &[u64; 6], ret: i64, tid: u32, duration_ns: u64) {
    // Restores the interrupt flag that `record_syscall_at` leaves masked.
    without_interrupts(|| record_syscall_at(nr, args, ret, tid, duration_ns, None, None));
}

/// [`record_syscall`] for the run loop, which read the clock as the call
/// returned (`ended_ns` becomes the record's time, saving a clock read)
/// and may know its CPU's index (`on_cpu`: the one-CPU run loop's is 0,
/// which then needs no lookup and, as a constant, no sizing in the
/// record's header). Masks interrupts and leaves them masked: the run
/// loop enters user mode next, which masks them first anyway (and most
/// calls return with them masked), so saving and restoring the flag would
/// be wasted. Inlined into the run loop's audited path: a call, a frame
/// and the arguments' moves less per system call (20 instructions under
/// -icount).
#[inline(always)]
pub fn record_syscall_at(
    nr: u64,
    args: &[u64; 6],
    ret: i64,
    tid: u32,
    duration_ns: u64,
    ended_ns: Option<u64>,
    on_cpu: Option<u16>,
) {
    crate::arch::interrupts::disable();
    if !is_enabled() {
        return;
    }
    // Only the registers the call takes (all six for a number Linux does
    // not assign): half the bytes to write and seal for most calls.
    let arg_count = usize::try_from(nr)
        .ok()
        .and_then(libos::syscall::arity::syscall_arg_count)
        .unwrap_or(6);
    let nr = u32::try_from(nr).unwrap_or(u32::MAX);
    let duration_ns = u32::try_from(duration_ns).unwrap_or(u32::MAX);
    // The registers past `arg_count` are not stored (they read back as 0).
    let mut event = SyscallEvent::new(nr, *args, ret, tid, duration_ns);
    event.arg_count = arg_count;
    // What `with_log` does (with the caller's time), written out: through
    // it the closure stayed out of line on this path, run for every call
    // (13 instructions more per call under -icount).
    debug_assert!(on_cpu.is_none_or(|c| c == cpu()), "the caller's CPU index");
    if let Some(log) = LOG.lock().as_mut() {
        let now = ended_ns.unwrap_or_else(crate::time::now_ns);
        record_missed(log, now);
        count(log.append_syscall(&event, now, on_cpu.unwrap_or_else(cpu)));
    }
}

/// Records free-form text, formatted in place (no allocation).
pub fn record_text(args: fmt::Arguments<'_>) -> Option<u64> {
    with_log(Wait::Block, |log, now, cpu| {
        count(log.append_fmt(TextKind::Text, args, now, cpu))
    })
    .flatten()
}

/// Records a CPU exception and seals the block. For trap handlers: never
/// waits for a held lock (counts a miss instead).
pub fn record_exception(vector: u8, error_code: u64, rip: u64, cr2: u64) -> Option<u64> {
    let event = Event::CpuException {
        vector,
        error_code,
        rip,
        cr2,
    };
    with_log(Wait::Bounded, |log, now, cpu| {
        count(log.append(&event, now, cpu))
    })
    .flatten()
}

/// Records a panic (message and location) and seals the block. For the
/// panic handler: never waits for a held lock (counts a miss instead).
pub fn record_panic(info: &core::panic::PanicInfo<'_>) -> Option<u64> {
    with_log(Wait::Bounded, |log, now, cpu| {
        let r = match info.location() {
            Some(l) => log.append_fmt(
                TextKind::Panic,
                format_args!(
                    "{} at {}:{}:{}",
                    info.message(),
                    l.file(),
                    l.line(),
                    l.column()
                ),
                now,
                cpu,
            ),
            None => log.append_fmt(
                TextKind::Panic,
                format_args!("{}", info.message()),
                now,
                cpu,
            ),
        };
        count(r)
    })
    .flatten()
}

/// Records that the host asked the guest to stop (an NMI from the VMM, as
/// `cloister run` sends at its timeout) and seals. For the NMI handler:
/// never waits for a held lock (counts a miss instead).
pub fn record_host_stop() -> Option<u64> {
    with_log(Wait::Bounded, |log, now, cpu| {
        count(log.append_fmt(
            TextKind::Text,
            format_args!("stopped by the host (NMI)"),
            now,
            cpu,
        ));
        log.seal()
    })
    .flatten()
}

/// Seals the open block now (e.g. before a clean power-off). Returns the
/// sealed block's number.
pub fn seal() -> Option<u64> {
    with_log(Wait::Block, |log, _, _| log.seal()).flatten()
}

/// Runs `f` with the log locked, the time and the CPU (attestation).
pub(super) fn with_log_now<R>(f: impl FnOnce(&mut AuditLog<'static>, u64, u16) -> R) -> Option<R> {
    with_log(Wait::Block, f)
}

/// Runs `f` with the log locked (ktests and the crash test).
#[cfg(feature = "ktest")]
pub(super) fn with_locked<R>(f: impl FnOnce(&mut AuditLog<'static>, u64) -> R) -> Option<R> {
    with_log(Wait::Block, |log, now, _| f(log, now))
}

/// Holds the lock while `f` runs, to test the exception path's behaviour
/// with a busy log.
#[cfg(feature = "ktest")]
pub(super) fn while_locked<R>(f: impl FnOnce() -> R) -> R {
    without_interrupts(|| {
        let _guard = LOG.lock();
        f()
    })
}
