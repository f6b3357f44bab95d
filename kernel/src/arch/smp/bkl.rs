//! The big kernel lock: with threads on several CPUs, one CPU at a time
//! runs kernel code; only user mode runs in parallel (the design of Linux
//! 2.0 and early FreeBSD SMP).
//!
//! A CPU takes the lock on every entry from user mode
//! (`arch::user::execute` after the return from ring 3: system calls,
//! exceptions, interrupts) and before it picks a thread from an idle loop;
//! it lets go on the way back to user mode and while it halts. The lock
//! belongs to the CPU, not the thread: a thread switch inside the kernel
//! keeps it. Interrupts stay off while a CPU holds or waits for it; a CPU
//! waiting answers TLB shootdowns ([`super::tlb::poll`]) so the holder,
//! which may be waiting for that answer, goes on.
//!
//! Interrupt handlers do not take it: they only touch atomics and locks
//! taken with interrupts off (the tick, the card, the console, the IPIs).
//!
//! Until [`activate`] (user threads running on more than one CPU) both
//! calls cost one relaxed load: with one vCPU nothing changes.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::cpu_index;

/// Whether the lock is in use (threads run on APs).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The CPU holding it, plus one (0: free).
static OWNER: AtomicUsize = AtomicUsize::new(0);
/// Times a CPU found the lock held and waited (diagnostics).
static CONTENDED: AtomicU64 = AtomicU64::new(0);

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
    while OWNER
        .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        if waiting_since == 0 {
            CONTENDED.fetch_add(1, Ordering::Relaxed);
            waiting_since = crate::time::rdtsc().max(1);
        }
        // The holder may be waiting for this CPU to flush its TLB.
        super::tlb::poll();
        core::hint::spin_loop();
    }
    if waiting_since != 0 {
        super::times::add_since(super::times::Span::LockWait, waiting_since);
    }
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
    let _ = OWNER.compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
}

/// Times a CPU had to wait for the lock.
pub fn contended() -> u64 {
    CONTENDED.load(Ordering::Relaxed)
}
