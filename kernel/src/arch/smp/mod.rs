//! Several CPUs: finding the application processors (APs), starting them,
//! and their per-CPU data. See docs/ARCHITECTURE.md ("CPUs") for what is
//! SMP-safe and what is not yet.
//!
//! - [`discover`] (at boot, before the kernel's page tables replace the
//!   boot ones, which map the firmware areas) lists the CPUs' local APIC
//!   ids with `libos::boot::cpus`: the ACPI MADT, else the MP table (what
//!   qboot gives `microvm,acpi=off`), else a CPUID count.
//! - [`start_aps`] (after the local APIC and the heap) installs the
//!   real-mode [`trampoline`], and for each AP allocates its stacks (a
//!   guard page below each), fills its [`PerCpu`] slot and starts it through
//!   the platform seam ([`crate::platform::Platform::start_cpu`]:
//!   INIT-SIPI-SIPI natively, not yet on SEV-SNP or TDX), waiting for it to
//!   report online before the next.
//! - Each AP then idles with `sti; hlt` ([`ap`]); [`run_on`] queues a
//!   closure for one and wakes it with an IPI ([`WAKE_VECTOR`]).
//!
//! Per-CPU data is a table indexed by the CPU index (0 = the boot CPU, APs
//! in table order); a CPU finds its own index in `IA32_TSC_AUX` with
//! `rdtscp` ([`cpu_index`]), which the kernel sets on every CPU once APs
//! run, or — where the hypervisor hides `rdtscp` — from which AP's stacks
//! hold its stack pointer. GS is left to user programs (the kernel never
//! uses `swapgs`).
//! Once the first program starts, APs run its threads too (where CPUs find
//! their index with `rdtscp`: a thread's kernel stack is no AP's own):
//! kernel code runs under the big kernel lock ([`bkl`]), user mode in
//! parallel; [`tlb`] shoots down stale translations; an idle CPU halts
//! ([`idle_halt`]) until its tick or a wake IPI ([`wake_idle`]).

mod ap;
pub mod bkl;
#[cfg(feature = "ktest")]
mod ktests;
pub mod times;
pub mod tlb;
pub mod trampoline;

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use libos::boot::cpus::{CpuList, CpuSource, CpuTableError};
use libos::boot::pvh::PhysReader;

use crate::platform::{ApStart, PlatformError, platform};

/// The most CPUs used: the heap's per-CPU caches (`allocator::MAX_CPUS`),
/// which must each belong to one CPU.
pub const MAX_CPUS: usize = allocator::MAX_CPUS;
/// The vector of the IPI that wakes an idle AP.
pub const WAKE_VECTOR: u8 = 0xf0;
/// The vector of the IPI that makes a CPU running user code enter the
/// kernel (its run loop then delivers signals, or ends the thread).
pub const KICK_VECTOR: u8 = 0xf2;
/// Pages of an AP's kernel stack (as the boot CPU's).
const STACK_PAGES: u64 = 16;
/// Pages of each IST stack.
const IST_PAGES: u64 = 4;
/// How long the boot CPU waits for a started AP to report (TSC time).
/// Generous: under TCG on a loaded host a vCPU thread may start late; only
/// a CPU that never comes is affected.
const START_TIMEOUT_NS: u64 = 10_000_000_000;

/// An AP's stacks (tops; each has an unmapped guard page below it).
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuStacks {
    /// Its kernel stack: `[bottom, top)`.
    pub bottom: u64,
    /// Its kernel stack's top (the initial `rsp`).
    pub top: u64,
    /// `RSP0`: where a trap from ring 3 would land.
    pub trap_top: u64,
    /// The double-fault IST stack.
    pub double_fault_top: u64,
    /// The NMI IST stack.
    pub nmi_top: u64,
    /// The machine-check IST stack.
    pub machine_check_top: u64,
}

/// The closure an AP is to run next.
struct Work(Option<Box<dyn FnOnce() + Send>>);

impl core::fmt::Debug for Work {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Work(queued)"
        } else {
            "Work(none)"
        })
    }
}

/// One CPU's slot in the per-CPU table.
#[derive(Debug)]
pub struct PerCpu {
    /// Its local APIC id, from the firmware's table.
    pub apic_id: u32,
    /// The id its own APIC reports, stored when it came up.
    pub apic_id_seen: AtomicU32,
    /// Its stacks (APs).
    pub stacks: CpuStacks,
    /// Set by the CPU itself once it runs Rust with its own tables.
    pub online: AtomicBool,
    /// Times its idle loop halted.
    pub halts: AtomicU64,
    /// Closures it finished ([`run_on`]).
    pub completed: AtomicU64,
    /// Times it switched to a user thread (with threads on APs).
    pub thread_runs: AtomicU64,
    /// The closure it is to run next.
    work: spin::Mutex<Work>,
}

/// The per-CPU table, written once per slot before that CPU starts.
static CPUS: [spin::Once<PerCpu>; MAX_CPUS] = [const { spin::Once::new() }; MAX_CPUS];
/// Slots filled (boot CPU included).
static CPU_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Whether any AP was started: until then every CPU index is 0 without
/// reading `IA32_TSC_AUX`.
static SMP_ACTIVE: AtomicBool = AtomicBool::new(false);
/// Whether [`cpu_index`] reads `IA32_TSC_AUX` with `rdtscp` (else it
/// finds the CPU from its stack pointer).
static USE_RDTSCP: AtomicBool = AtomicBool::new(false);
/// What [`discover`] found.
static FOUND: spin::Once<Result<CpuList, CpuTableError>> = spin::Once::new();
/// How long [`discover`] took, in TSC nanoseconds (reported at start-up:
/// it runs on every boot, one vCPU included).
static DISCOVER_NS: AtomicU64 = AtomicU64::new(0);

/// CPU `index`'s slot.
pub fn cpu(index: usize) -> Option<&'static PerCpu> {
    CPUS.get(index)?.get()
}

/// How many CPUs have a slot (1 until [`start_aps`]).
pub fn cpu_count() -> usize {
    CPU_COUNT.load(Ordering::Acquire).max(1)
}

/// This CPU's index: 0 on the boot CPU, `1..` on APs in start order.
/// Inline: with one vCPU one load and no call.
#[inline(always)]
pub fn cpu_index() -> usize {
    if !SMP_ACTIVE.load(Ordering::Relaxed) {
        return 0;
    }
    cpu_index_smp()
}

#[inline(never)]
fn cpu_index_smp() -> usize {
    if !USE_RDTSCP.load(Ordering::Relaxed) {
        return index_from_stack();
    }
    let aux: u32;
    // SAFETY: `rdtscp` (checked present before SMP_ACTIVE was set) reads
    // the TSC and IA32_TSC_AUX into registers; no memory is touched.
    unsafe {
        core::arch::asm!("rdtscp", out("eax") _, out("edx") _, out("ecx") aux,
            options(nomem, nostack, preserves_flags));
    }
    aux as usize
}

/// Without `rdtscp` (some hypervisors hide it): the AP whose stacks hold
/// the stack pointer, else 0. An AP only ever runs on its own stacks (its
/// kernel stack, which its interrupts use too, and its IST stacks); the
/// boot CPU never runs on them.
fn index_from_stack() -> usize {
    let probe = 0u8;
    let sp = core::ptr::addr_of!(probe) as u64;
    (1..cpu_count())
        .find(|&i| cpu(i).is_some_and(|c| c.stacks.contains(sp)))
        .unwrap_or(0)
}

/// Reads firmware memory through the boot page tables' direct map.
struct EarlyPhys;

impl PhysReader for EarlyPhys {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> bool {
        crate::mm::read_early_phys(paddr, buf)
    }
}

/// Lists the CPUs from the firmware's tables (`rsdp_paddr`: the PVH start
/// info's, 0 when none). Call before `mm::paging::init`.
pub fn discover(rsdp_paddr: u64) {
    let start = crate::time::now_ns();
    FOUND.call_once(|| libos::boot::cpus::discover(&EarlyPhys, rsdp_paddr));
    DISCOVER_NS.store(crate::time::now_ns() - start, Ordering::Relaxed);
}

/// The CPUs the machine has: the firmware's list, or without one the
/// CPUID count (leaf 1, EBX\[23:16\] with HTT; ids assumed `0..n`).
pub fn found_cpus() -> CpuList {
    match FOUND.get() {
        Some(Ok(list)) => list.clone(),
        _ => {
            let (_, ebx, _, edx) = crate::arch::cpu::cpuid(1, 0);
            let count = if edx & (1 << 28) != 0 {
                (ebx >> 16) & 0xff
            } else {
                1
            };
            CpuList::contiguous(count.max(1))
        }
    }
}

/// Why an AP did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// The platform cannot start CPUs (SEV-SNP, TDX: not yet).
    Platform(PlatformError),
    /// The trampoline could not be installed.
    Trampoline(trampoline::TrampolineError),
    /// No memory for its stacks.
    NoMemory,
    /// It never reported online.
    Timeout,
}

/// Kernel command-line keys read here: `smp.index=stack` makes CPUs find
/// their index from their stack pointer even where `rdtscp` exists (the
/// fallback's test).
pub const CMDLINE_KEYS: &[&str] = &["smp.index"];

/// Starts every AP the firmware lists, one at a time; returns how many
/// came up. With one CPU it does nothing at all.
pub fn start_aps(args: &libos::boot::cmdline::KernelArgs<'_>) -> usize {
    if let Some(Err(e)) = FOUND.get()
        && *e != CpuTableError::NotFound
    {
        log::warn!("smp: firmware CPU table unusable: {e}");
    }
    let list = found_cpus();
    let bsp = crate::arch::apic::id();
    let boot_slot = PerCpu::new(bsp, CpuStacks::default());
    boot_slot.online.store(true, Ordering::Relaxed);
    CPUS[0].call_once(|| boot_slot);
    CPU_COUNT.store(1, Ordering::Release);
    let aps: alloc::vec::Vec<u32> = list.ids().iter().copied().filter(|&id| id != bsp).collect();
    crate::kprintln!(
        "cpus: {} found ({}) in {} us, boot CPU APIC id {bsp}",
        list.len(),
        list.source.name(),
        DISCOVER_NS.load(Ordering::Relaxed) / 1000
    );
    if aps.is_empty() {
        return 0;
    }
    if list.source == CpuSource::Cpuid {
        log::warn!(
            "smp: no firmware CPU table; assuming APIC ids 0..{}",
            list.len()
        );
    }
    let force_stack_index = match args.get("smp.index") {
        None | Some("auto") => false,
        Some("stack") => true,
        Some(other) => {
            log::warn!("ignoring smp.index={other}: expected auto or stack");
            false
        }
    };
    if let Err(e) = prepare(force_stack_index) {
        log::warn!("smp: application processors left off: {e:?}");
        return 0;
    }
    let mut started = 0;
    for (n, &apic_id) in aps.iter().enumerate() {
        let index = n + 1;
        if index >= MAX_CPUS {
            log::warn!(
                "smp: only {MAX_CPUS} CPUs are used; {} left off",
                aps.len() - n
            );
            break;
        }
        match start_one(index, apic_id) {
            Ok(()) => started += 1,
            Err(StartError::Platform(PlatformError::Unsupported)) if started == 0 => {
                // SEV-SNP, TDX: no AP was touched, so every CPU index is
                // 0 again and the heap's per-CPU promise holds as before.
                SMP_ACTIVE.store(false, Ordering::Release);
                CPU_COUNT.store(1, Ordering::Release);
                crate::kprintln!(
                    "cpus: the {} platform does not start CPUs yet (docs/CVM.md): running on the boot CPU",
                    platform().kind().name()
                );
                return 0;
            }
            Err(e) => {
                // An AP that timed out may still come up later: CPU
                // indices stay on (IA32_TSC_AUX) so it cannot share the
                // boot CPU's heap cache.
                log::warn!("smp: CPU with APIC id {apic_id} did not start: {e:?}");
                break;
            }
        }
    }
    crate::kprintln!("cpus: {} application processors online", started);
    started
}

/// Installs the trampoline and chooses how CPUs find their index:
/// `IA32_TSC_AUX` with `rdtscp` where the CPU has it (and the platform lets
/// the kernel set it), else the stack pointer.
fn prepare(force_stack_index: bool) -> Result<(), StartError> {
    trampoline::install().map_err(StartError::Trampoline)?;
    crate::arch::irq::register(WAKE_VECTOR, ap::on_wake);
    crate::arch::irq::register(tlb::SHOOTDOWN_VECTOR, tlb::poll);
    crate::arch::irq::register(KICK_VECTOR, ap::on_wake);
    let (_, _, _, edx) = crate::arch::cpu::cpuid(0x8000_0001, 0);
    // SAFETY: IA32_TSC_AUX only feeds `rdtscp`/`rdpid` (a program's
    // `getcpu` sees CPU 0, which it is on); 0 is the boot CPU's index.
    let rdtscp = !force_stack_index
        && edx & (1 << 27) != 0
        && unsafe { platform().write_msr(ap::IA32_TSC_AUX, 0) }.is_ok();
    if !rdtscp {
        crate::kprintln!("cpus: no rdtscp used: CPUs find their index from their stack");
    }
    USE_RDTSCP.store(rdtscp, Ordering::Relaxed);
    SMP_ACTIVE.store(true, Ordering::Release);
    Ok(())
}

fn alloc_stack(pages: u64) -> Result<crate::mm::stack::KernelStack, StartError> {
    crate::mm::stack::alloc(pages).ok_or(StartError::NoMemory)
}

/// Starts the AP `apic_id` as CPU `index` and waits for it.
fn start_one(index: usize, apic_id: u32) -> Result<(), StartError> {
    let main = alloc_stack(STACK_PAGES)?;
    let stacks = CpuStacks {
        bottom: main.bottom,
        top: main.top,
        trap_top: alloc_stack(STACK_PAGES)?.top,
        double_fault_top: alloc_stack(IST_PAGES)?.top,
        nmi_top: alloc_stack(IST_PAGES)?.top,
        machine_check_top: alloc_stack(IST_PAGES)?.top,
    };
    let me = CPUS[index].call_once(|| PerCpu::new(apic_id, stacks));
    CPU_COUNT.store(index + 1, Ordering::Release);
    trampoline::set_next(stacks.top, index as u64);
    core::sync::atomic::fence(Ordering::SeqCst);
    platform()
        .start_cpu(&ApStart {
            apic_id,
            entry_paddr: trampoline::TRAMPOLINE_PADDR,
            stack_top: stacks.top,
        })
        .map_err(StartError::Platform)?;
    let deadline = crate::time::now_ns().saturating_add(START_TIMEOUT_NS);
    while !me.online.load(Ordering::Acquire) {
        if crate::time::now_ns() > deadline {
            return Err(StartError::Timeout);
        }
        core::hint::spin_loop();
    }
    Ok(())
}

impl CpuStacks {
    /// Whether `addr` lies in one of these stacks.
    fn contains(&self, addr: u64) -> bool {
        let ist = IST_PAGES * crate::mm::PAGE_BYTES;
        let trap = STACK_PAGES * crate::mm::PAGE_BYTES;
        (self.bottom..self.top).contains(&addr)
            || [
                (self.trap_top, trap),
                (self.double_fault_top, ist),
                (self.nmi_top, ist),
                (self.machine_check_top, ist),
            ]
            .iter()
            .any(|&(top, bytes)| (top.saturating_sub(bytes)..top).contains(&addr))
    }
}

impl PerCpu {
    fn new(apic_id: u32, stacks: CpuStacks) -> Self {
        Self {
            apic_id,
            apic_id_seen: AtomicU32::new(u32::MAX),
            stacks,
            online: AtomicBool::new(false),
            halts: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            thread_runs: AtomicU64::new(0),
            work: spin::Mutex::new(Work(None)),
        }
    }
}

/// Why [`run_on`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOnError {
    /// No such AP online (or it is the boot CPU, which runs no queued work).
    NoSuchCpu,
    /// It has work queued that it has not taken yet.
    Busy,
    /// The wake IPI could not be sent.
    Ipi(crate::arch::apic::IpiError),
}

/// Queues `work` on AP `index` and wakes it; returns the AP's
/// [`PerCpu::completed`] count the work will bring it to.
pub fn run_on(index: usize, work: impl FnOnce() + Send + 'static) -> Result<u64, RunOnError> {
    let target = cpu(index)
        .filter(|c| index != 0 && c.online.load(Ordering::Acquire))
        .ok_or(RunOnError::NoSuchCpu)?;
    let ticket = crate::arch::interrupts::without_interrupts(|| {
        let mut slot = target.work.lock();
        if slot.0.is_some() {
            return Err(RunOnError::Busy);
        }
        slot.0 = Some(Box::new(work));
        Ok(target.completed.load(Ordering::Acquire) + 1)
    })?;
    crate::arch::apic::send_fixed(target.apic_id, WAKE_VECTOR).map_err(RunOnError::Ipi)?;
    Ok(ticket)
}

/// Waits (spinning: the boot CPU has nothing else to do in the callers,
/// in-guest tests) until AP `index` has completed `ticket` closures.
pub fn wait_for(index: usize, ticket: u64) {
    if let Some(c) = cpu(index) {
        while c.completed.load(Ordering::Acquire) < ticket {
            core::hint::spin_loop();
        }
    }
}

/// CPUs halted in [`idle_halt`] (bit = CPU index).
static IDLE: AtomicU32 = AtomicU32::new(0);

/// Whether user threads may run on the APs: more than one CPU online and
/// each finds its index with `rdtscp` (the stack-pointer fallback only
/// knows an AP on its own stacks, not on a thread's).
pub fn threads_on_aps() -> bool {
    cpu_count() > 1 && USE_RDTSCP.load(Ordering::Relaxed)
}

/// The CPUs that run user threads: all when [`threads_on_aps`], else the
/// boot CPU.
pub fn thread_cpus() -> usize {
    if threads_on_aps() { cpu_count() } else { 1 }
}

/// Whether `vector` is an IPI whose handler is all there is to do (user
/// mode goes on without entering the kernel).
pub fn is_quiet_ipi(vector: u64) -> bool {
    vector == u64::from(WAKE_VECTOR) || vector == u64::from(tlb::SHOOTDOWN_VECTOR)
}

/// Run by [`idle_halt`] before a CPU halts (the network card's held-back
/// doorbell).
static BEFORE_HALT: spin::Once<fn()> = spin::Once::new();

/// Sets what a CPU runs before it halts in [`idle_halt`].
pub fn set_before_halt(hook: fn()) {
    BEFORE_HALT.call_once(|| hook);
}

/// Halts this CPU until an interrupt (its tick, a device, a wake IPI),
/// marked idle and without the big kernel lock meanwhile. Call with
/// interrupts off; they are off again, and the lock held, on return.
pub fn idle_halt() {
    if let Some(hook) = BEFORE_HALT.get() {
        hook();
    }
    if !bkl::active() {
        platform().wait_for_interrupt();
        crate::arch::interrupts::disable();
        return;
    }
    let bit = 1u32 << (cpu_index() % MAX_CPUS);
    IDLE.fetch_or(bit, Ordering::SeqCst);
    bkl::release();
    if let Some(me) = cpu(cpu_index()) {
        me.halts.fetch_add(1, Ordering::Relaxed);
    }
    // `sti; hlt` is atomic: a wake IPI sent after the bit was set ends it.
    let halted_at = crate::time::rdtsc();
    platform().wait_for_interrupt();
    crate::arch::interrupts::disable();
    times::add_since(times::Span::Idle, halted_at);
    IDLE.fetch_and(!bit, Ordering::SeqCst);
    bkl::acquire();
}

/// Whether some other CPU is halted in [`idle_halt`].
#[inline(always)]
pub fn any_idle() -> bool {
    bkl::active() && IDLE.load(Ordering::SeqCst) & !(1u32 << (cpu_index() % MAX_CPUS)) != 0
}

/// Sends the wake IPI to every other idle CPU (a thread may run there).
pub fn wake_idle() {
    let me = cpu_index();
    let idle = IDLE.load(Ordering::SeqCst);
    for c in (0..cpu_count()).filter(|&c| c != me && idle & (1 << c) != 0) {
        if let Some(p) = cpu(c)
            && let Err(e) = crate::arch::apic::send_fixed(p.apic_id, WAKE_VECTOR)
        {
            log::warn!("smp: wake IPI to CPU {c} failed: {e:?}");
        }
    }
}

/// Counts a switch to a user thread on this CPU (with threads on APs).
pub fn note_thread_run() {
    if bkl::active()
        && let Some(me) = cpu(cpu_index())
    {
        me.thread_runs.fetch_add(1, Ordering::Relaxed);
    }
}

/// With threads on APs, a line for the end of the run: the switches to a
/// thread on each CPU, TLB shootdowns, waits for the kernel lock, and each
/// CPU's time in user mode, halted, waiting for the lock and in the kernel
/// ([`times`]).
pub fn summary() -> Option<alloc::string::String> {
    use core::fmt::Write;
    if !bkl::active() {
        return None;
    }
    let mut line = alloc::string::String::from("smp: thread runs per CPU");
    for c in 0..cpu_count() {
        let runs = cpu(c).map_or(0, |p| p.thread_runs.load(Ordering::Relaxed));
        let _ = write!(line, " {runs}");
    }
    let (requests, answers) = tlb::counts();
    let _ = write!(
        line,
        "; TLB shootdowns {requests} ({answers} answers); kernel lock waits {} ({} halted);",
        bkl::contended(),
        bkl::halts()
    );
    let _ = times::write_summary(&mut line, cpu_count());
    Some(line)
}

/// Sends the kick IPI to every other CPU that is not idle (it runs a
/// thread, in user mode or waiting for the kernel lock): a signal or exit
/// for its thread then takes effect at once rather than at its next tick.
pub fn kick_running() {
    let me = cpu_index();
    let idle = IDLE.load(Ordering::SeqCst);
    for c in (0..cpu_count()).filter(|&c| c != me && idle & (1 << c) == 0) {
        if let Some(p) = cpu(c)
            && p.online.load(Ordering::Acquire)
            && let Err(e) = crate::arch::apic::send_fixed(p.apic_id, KICK_VECTOR)
        {
            log::warn!("smp: kick IPI to CPU {c} failed: {e:?}");
        }
    }
}
