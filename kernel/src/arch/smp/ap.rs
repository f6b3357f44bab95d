//! An application processor's life after the trampoline: its own GDT, TSS
//! and IST stacks, the shared IDT, the same CPU features as the boot CPU,
//! its local APIC, `IA32_TSC_AUX` = its CPU index (what [`super::cpu_index`]
//! reads), its `SYSCALL` MSRs, then the idle loop — `sti; hlt` until an IPI
//! brings work ([`super::run_on`]) or, once programs run on APs, a thread
//! to run (its periodic tick then runs too, for preemption), never
//! spinning.

use core::sync::atomic::Ordering;

use super::{PerCpu, WAKE_VECTOR, cpu};
use crate::arch::{apic, cpu as features, fpu, gdt, idt, interrupts};

/// `IA32_TSC_AUX`, read by `rdtscp`/`rdpid`.
pub(super) const IA32_TSC_AUX: u32 = 0xc000_0103;

/// The Rust entry of an application processor, called by
/// `cloister_ap_long_mode_entry` on the AP's own stack with the kernel's
/// page tables loaded and interrupts off.
pub(super) extern "C" fn ap_rust_entry(index: u64) -> ! {
    let Some(me) = cpu(index as usize) else {
        crate::arch::cpu::halt_forever()
    };
    // First, before anything allocates: the heap's per-CPU cache is chosen
    // by `cpu_index`, which must not answer the boot CPU's 0 here.
    if super::USE_RDTSCP.load(Ordering::Relaxed) {
        // SAFETY: IA32_TSC_AUX only feeds `rdtscp`/`rdpid`; the kernel
        // reads it as this CPU's index, which is what it is set to (the
        // boot CPU checked that the CPU has it).
        unsafe { x86_64::registers::model_specific::Msr::new(IA32_TSC_AUX).write(index) };
    }
    // Per-CPU state the boot CPU set on itself at boot: caching (MTRRs are
    // per CPU), NX/WP/SMEP/SMAP/UMIP, the FPU/SSE/XSAVE control bits.
    features::enable_write_back_memory();
    let f = features::features();
    features::enable_nx(&f);
    features::enable_protections(&f);
    fpu::init();
    gdt::init_ap(
        me.stacks.trap_top,
        me.stacks.double_fault_top,
        me.stacks.nmi_top,
        me.stacks.machine_check_top,
    );
    idt::load_on_ap();
    crate::arch::user::init_cpu(index as usize);
    apic::init_ap();
    super::tlb::note_loaded(crate::mm::space::current());
    me.apic_id_seen.store(apic::id(), Ordering::Relaxed);
    me.online.store(true, Ordering::Release);
    idle(me)
}

/// Runs queued work, else a thread that may run (once programs run on
/// APs: this stack is then left for good), else halts until an interrupt
/// (the wake IPI, or its tick).
fn idle(me: &'static PerCpu) -> ! {
    let mut ticking = false;
    loop {
        interrupts::disable();
        let work = me.work.lock().0.take();
        match work {
            Some(work) => {
                interrupts::enable();
                work();
                me.completed.fetch_add(1, Ordering::Release);
            }
            None if super::bkl::active() => {
                if !ticking {
                    // Preemption of the threads it will run.
                    apic::start_periodic(apic::tick_hz().max(1));
                    ticking = true;
                }
                super::bkl::acquire();
                crate::task::run_here();
                super::idle_halt();
                super::bkl::release();
            }
            None => {
                me.halts.fetch_add(1, Ordering::Relaxed);
                // `sti; hlt` is atomic: a wake IPI sent after the check
                // above ends this halt.
                crate::platform::platform().wait_for_interrupt();
            }
        }
    }
}

/// The wake IPI's handler: nothing to do, the interrupt only ends `hlt`
/// (the dispatcher signals the end of interrupt).
pub(super) fn on_wake() {
    let _ = WAKE_VECTOR;
}
