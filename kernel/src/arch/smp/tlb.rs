//! TLB shootdown: when a mapping of a user address space is removed or
//! restricted (munmap, mprotect, a copy-on-write break, a fork taking the
//! write right, an exec), every other CPU that has the space loaded drops
//! its cached translations before the change is relied on.
//!
//! The CPU changing the tables (holding the big kernel lock, [`super::bkl`],
//! so one request is out at a time) flushes its own TLB, notes the pages
//! ([`note_page`], [`note_all`]); when the page-table lock is let go
//! ([`finish`]) it posts one request, sends [`SHOOTDOWN_VECTOR`] to each
//! other CPU whose loaded space ([`note_loaded`]) is the one changed, and
//! waits until each acknowledged. A CPU acknowledges in the IPI's handler
//! (user mode, or halted) or, when it waits for the big kernel lock with
//! interrupts off, from that wait ([`poll`]).
//!
//! Before a space is freed, [`leave`] makes every CPU that still has it in
//! CR3 (one halted on a thread that exited) load the kernel's instead.
//!
//! Without threads on APs (one vCPU) nothing is sent: [`finish`] costs
//! one relaxed load.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{MAX_CPUS, cpu, cpu_count, cpu_index};

/// The IPI vector that asks a CPU to flush.
pub const SHOOTDOWN_VECTOR: u8 = 0xf1;
/// Past this many pages a CPU reloads CR3 rather than `invlpg` each.
const MAX_PAGES_ONE_BY_ONE: u64 = 32;
/// How long the initiator waits for an answer before it logs and goes on.
const ANSWER_TIMEOUT_NS: u64 = 10_000_000_000;

/// The space (PML4 address) each CPU has in CR3.
static LOADED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Set by the initiator for each target; cleared by the target when done.
static PENDING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// The request: the space, the pages `[start, end)` (`end` = `u64::MAX`:
/// all), and whether to leave the space.
static REQ_ROOT: AtomicU64 = AtomicU64::new(0);
static REQ_START: AtomicU64 = AtomicU64::new(0);
static REQ_END: AtomicU64 = AtomicU64::new(0);
static REQ_LEAVE: AtomicBool = AtomicBool::new(false);
/// The pages flushed locally since the last [`finish`] (under the
/// page-table lock): `[BATCH_START, BATCH_END)`, empty when equal.
static BATCH_START: AtomicU64 = AtomicU64::new(u64::MAX);
static BATCH_END: AtomicU64 = AtomicU64::new(0);
/// Requests sent, and IPIs acknowledged (diagnostics and tests).
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static ANSWERS: AtomicU64 = AtomicU64::new(0);

/// Records that this CPU loaded space `root` into CR3.
pub fn note_loaded(root: u64) {
    LOADED[cpu_index() % MAX_CPUS].store(root, Ordering::Release);
}

/// Notes that the page at `vaddr` of the loaded space lost or changed its
/// mapping (flushed locally by the caller).
#[inline(always)]
pub fn note_page(vaddr: u64) {
    if super::bkl::active() {
        note_range(vaddr, vaddr.saturating_add(crate::mm::PAGE_BYTES));
    }
}

#[inline(never)]
fn note_range(start: u64, end: u64) {
    BATCH_START.fetch_min(start, Ordering::Relaxed);
    BATCH_END.fetch_max(end, Ordering::Relaxed);
}

/// Notes that any page of the loaded space may have changed.
pub fn note_all() {
    if !super::bkl::active() {
        return;
    }
    BATCH_START.store(0, Ordering::Relaxed);
    BATCH_END.store(u64::MAX, Ordering::Relaxed);
}

/// Sends what was noted since the last call to the other CPUs that have
/// the loaded space, and waits for them. Call before the page-table lock
/// is let go. Inline: one load with one vCPU.
#[inline(always)]
pub fn finish() {
    if super::bkl::active() {
        finish_slow();
    }
}

#[inline(never)]
fn finish_slow() {
    let (start, end) = (
        BATCH_START.swap(u64::MAX, Ordering::Relaxed),
        BATCH_END.swap(0, Ordering::Relaxed),
    );
    if start >= end {
        return;
    }
    request(crate::mm::space::current(), start, end, false);
}

/// Makes every other CPU that has `root` loaded load the kernel's space
/// (before `root` is freed).
pub fn leave(root: u64) {
    if super::bkl::active() {
        request(root, 0, 0, true);
    }
}

/// Requests sent and acknowledgements received so far.
pub fn counts() -> (u64, u64) {
    (
        REQUESTS.load(Ordering::Relaxed),
        ANSWERS.load(Ordering::Relaxed),
    )
}

fn request(root: u64, start: u64, end: u64, leave: bool) {
    let me = cpu_index();
    let targets = (0..cpu_count()).filter(|&c| {
        c != me
            && cpu(c).is_some_and(|p| p.online.load(Ordering::Acquire))
            && LOADED[c].load(Ordering::Acquire) == root
    });
    REQ_ROOT.store(root, Ordering::Relaxed);
    REQ_START.store(start, Ordering::Relaxed);
    REQ_END.store(end, Ordering::Relaxed);
    REQ_LEAVE.store(leave, Ordering::Relaxed);
    let mut sent = [false; MAX_CPUS];
    for c in targets {
        PENDING[c].store(true, Ordering::Release);
        let apic_id = cpu(c).map_or(0, |p| p.apic_id);
        match crate::arch::apic::send_fixed(apic_id, SHOOTDOWN_VECTOR) {
            Ok(()) => sent[c] = true,
            Err(e) => {
                PENDING[c].store(false, Ordering::Release);
                log::error!("tlb: shootdown IPI to CPU {c} failed: {e:?}");
            }
        }
    }
    if !sent.contains(&true) {
        return;
    }
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    let deadline = crate::time::now_ns().saturating_add(ANSWER_TIMEOUT_NS);
    for (c, _) in sent.iter().enumerate().filter(|(_, s)| **s) {
        while PENDING[c].load(Ordering::Acquire) {
            if crate::time::now_ns() > deadline {
                log::error!("tlb: CPU {c} did not answer a shootdown");
                PENDING[c].store(false, Ordering::Release);
                break;
            }
            core::hint::spin_loop();
        }
    }
}

/// Carries out a request addressed to this CPU, if one is pending (the
/// IPI's handler, and CPUs waiting for the big kernel lock).
pub fn poll() {
    let me = cpu_index() % MAX_CPUS;
    if !PENDING[me].load(Ordering::Acquire) {
        return;
    }
    let root = REQ_ROOT.load(Ordering::Relaxed);
    // A CPU that loaded another space since flushed with that CR3 load.
    if LOADED[me].load(Ordering::Acquire) == root {
        if REQ_LEAVE.load(Ordering::Relaxed) {
            crate::mm::space::activate(0);
        } else {
            let (start, end) = (
                REQ_START.load(Ordering::Relaxed),
                REQ_END.load(Ordering::Relaxed),
            );
            let pages = (end - start) / crate::mm::PAGE_BYTES;
            if pages <= MAX_PAGES_ONE_BY_ONE {
                for p in 0..pages {
                    x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(
                        start + p * crate::mm::PAGE_BYTES,
                    ));
                }
            } else {
                x86_64::instructions::tlb::flush_all();
            }
        }
    }
    ANSWERS.fetch_add(1, Ordering::Relaxed);
    PENDING[me].store(false, Ordering::Release);
}
