//! The big kernel lock: with threads on several CPUs, one CPU at a time
//! runs kernel code; only user mode runs in parallel (the design of Linux
//! 2.0 and early FreeBSD SMP).
//!
//! A CPU takes the lock on every entry from user mode
//! (`arch::user::execute` after the return from ring 3: system calls,
//! exceptions, interrupts) and before it picks a thread from an idle loop;
//! it lets go on the way back to user mode and while it halts. The lock
//! belongs to the CPU, not the thread: a thread switch inside the kernel
//! keeps it. Interrupts stay off while a CPU holds it; a CPU waiting spins
//! with interrupts off, answering TLB shootdowns ([`super::tlb::poll`]) so
//! the holder, which may be waiting for that answer, goes on — for
//! [`SPIN_NS`], then halts with interrupts on (the shootdown IPI's handler
//! answers then) until the holder's release sends it the wake IPI.
//!
//! Interrupt handlers do not take it: they only touch atomics and locks
//! taken with interrupts off (the tick, the card, the console, the IPIs).
//!
//! Until [`activate`] (user threads running on more than one CPU) both
//! calls cost one relaxed load: with one vCPU nothing changes.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::cpu_index;

/// Whether the lock is in use (threads run on APs).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The CPU holding it, plus one (0: free).
static OWNER: AtomicUsize = AtomicUsize::new(0);
/// Times a CPU found the lock held and waited (diagnostics).
static CONTENDED: AtomicU64 = AtomicU64::new(0);
/// CPUs halted waiting for it (bit per CPU index): its release wakes them.
static SLEEPERS: AtomicU32 = AtomicU32::new(0);
/// Times a waiting CPU halted (diagnostics).
static HALTS: AtomicU64 = AtomicU64::new(0);
/// How long a CPU spins for the lock before it halts until the holder lets
/// go (ns). On a host with fewer free cores than vCPUs (these shared
/// machines; TCG runs each vCPU on a host thread) a spinning vCPU takes host
/// time from the holder's; a halted one gives it back.
const SPIN_NS: u64 = 20_000;

/// Puts the lock in use, held by the calling CPU. Call with interrupts
/// off, before another CPU may run threads.
pub fn activate() {
    OWNER.store(cpu_index() + 1, Ordering::Relaxed);
    super::times::start();
    ACTIVE.store(true, Ordering::Release);
}

/// Whether the lock is in use.
#[inline(always)]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Whether this CPU holds it (always true while it is not in use).
pub fn held() -> bool {
    !active() || OWNER.load(Ordering::Relaxed) == cpu_index() + 1
}

/// Takes the lock for this CPU (nothing if it holds it). Call with
/// interrupts off. Inline: one vCPU pays one load and no call (under TCG
/// every call and return is a lookup).
#[inline(always)]
pub fn acquire() {
    if ACTIVE.load(Ordering::Relaxed) {
        acquire_slow();
    }
}

#[inline(never)]
fn acquire_slow() {
    let me = cpu_index() + 1;
    if OWNER.load(Ordering::Relaxed) == me {
        return;
    }
    // The TSC when the wait began (0: not waited).
    let mut waiting_since = 0;
    // How long to spin before halting (TSC cycles).
    let spin_cycles = crate::time::tsc_hz() / (1_000_000_000 / SPIN_NS);
    while OWNER
        .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        if waiting_since == 0 {
            CONTENDED.fetch_add(1, Ordering::Relaxed);
            waiting_since = crate::time::rdtsc().max(1);
        } else if crate::time::rdtsc().saturating_sub(waiting_since) > spin_cycles {
            halt_until_released(me - 1);
        }
        // The holder may be waiting for this CPU to flush its TLB.
        super::tlb::poll();
        core::hint::spin_loop();
    }
    if waiting_since != 0 {
        super::times::add_since(super::times::Span::LockWait, waiting_since);
    }
}

/// Halts CPU `cpu` (interrupts on: the shootdown IPI's handler flushes, as
/// the spin loop's poll does) until the holder lets go and sends the wake
/// IPI, or any other interrupt (its tick at the latest). Interrupts are off
/// again on return. No caller holds another lock: the call sites are the
/// return from user mode, the end of an idle halt and an idle AP's loop
/// (`ap::idle`), all places where interrupts may be on.
fn halt_until_released(cpu: usize) {
    let bit = 1u32 << (cpu % 32);
    SLEEPERS.fetch_or(bit, Ordering::SeqCst);
    // Let go meanwhile (the holder may have seen no sleeper): retry now.
    if OWNER.load(Ordering::SeqCst) != 0 {
        HALTS.fetch_add(1, Ordering::Relaxed);
        // `sti; hlt` is atomic: a wake IPI sent after the bit was set ends it.
        crate::platform::platform().wait_for_interrupt();
        crate::arch::interrupts::disable();
    }
    SLEEPERS.fetch_and(!bit, Ordering::SeqCst);
}

/// Lets the lock go if this CPU holds it. Call with interrupts off.
#[inline(always)]
pub fn release() {
    if ACTIVE.load(Ordering::Relaxed) {
        release_slow();
    }
}

#[inline(never)]
fn release_slow() {
    let me = cpu_index() + 1;
    // SeqCst against a waiter's: it sets its sleeper bit, then reads the
    // owner; this clears the owner, then reads the sleepers.
    if OWNER
        .compare_exchange(me, 0, Ordering::SeqCst, Ordering::Relaxed)
        .is_ok()
    {
        let sleepers = SLEEPERS.load(Ordering::SeqCst);
        if sleepers != 0 {
            wake(sleepers);
        }
    }
}

/// Sends the wake IPI to the CPUs in `sleepers` (halted for the lock).
#[cold]
fn wake(sleepers: u32) {
    for c in (0..32).filter(|c| sleepers & (1 << c) != 0) {
        if let Some(p) = super::cpu(c)
            && let Err(e) = crate::arch::apic::send_fixed(p.apic_id, super::WAKE_VECTOR)
        {
            log::warn!("smp: wake IPI to CPU {c} (kernel lock) failed: {e:?}");
        }
    }
}

/// Times a CPU had to wait for the lock.
pub fn contended() -> u64 {
    CONTENDED.load(Ordering::Relaxed)
}

/// Times a waiting CPU halted until the lock was let go.
pub fn halts() -> u64 {
    HALTS.load(Ordering::Relaxed)
}
