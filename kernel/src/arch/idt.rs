//! The interrupt descriptor table: every one of the 256 vectors points at its
//! stub in [`super::trap`]; the double fault, NMI and machine check run on
//! their own IST stacks so they work even when the kernel stack is gone.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::structures::idt::InterruptDescriptorTable;

use super::gdt::{DOUBLE_FAULT_IST, MACHINE_CHECK_IST, NMI_IST};
use super::trap::stub_address;

static IDT: Once<InterruptDescriptorTable> = Once::new();
static EARLY_IDT: Once<InterruptDescriptorTable> = Once::new();

fn build(use_ist: bool) -> InterruptDescriptorTable {
    let ist = |i: u16| if use_ist { Some(i) } else { None };
    let mut idt = InterruptDescriptorTable::new();
    // SAFETY: for each `set_handler_addr` below, the address is that of our
    // assembly stub for exactly this vector, which saves all state, calls the
    // dispatcher and returns with `iretq`, as an IDT handler must.
    unsafe {
        macro_rules! set {
            ($field:ident, $vec:expr) => {
                idt.$field
                    .set_handler_addr(VirtAddr::new(stub_address($vec)))
            };
        }
        set!(divide_error, 0);
        set!(debug, 1);
        let nmi = set!(non_maskable_interrupt, 2);
        if let Some(i) = ist(NMI_IST) {
            nmi.set_stack_index(i);
        }
        // `int3` from user mode is a breakpoint (SIGTRAP), as on Linux: the
        // gate must allow ring 3, or the CPU raises #GP instead.
        set!(breakpoint, 3).set_privilege_level(x86_64::PrivilegeLevel::Ring3);
        set!(overflow, 4);
        set!(bound_range_exceeded, 5);
        set!(invalid_opcode, 6);
        set!(device_not_available, 7);
        let df = set!(double_fault, 8);
        if let Some(i) = ist(DOUBLE_FAULT_IST) {
            df.set_stack_index(i);
        }
        set!(invalid_tss, 10);
        set!(segment_not_present, 11);
        set!(stack_segment_fault, 12);
        set!(general_protection_fault, 13);
        set!(page_fault, 14);
        set!(x87_floating_point, 16);
        set!(alignment_check, 17);
        let mc = set!(machine_check, 18);
        if let Some(i) = ist(MACHINE_CHECK_IST) {
            mc.set_stack_index(i);
        }
        set!(simd_floating_point, 19);
        set!(virtualization, 20);
        set!(cp_protection_exception, 21);
        set!(hv_injection_exception, 28);
        set!(vmm_communication_exception, 29);
        set!(security_exception, 30);
        for vector in 32..=255u8 {
            idt[vector].set_handler_addr(VirtAddr::new(stub_address(vector)));
        }
    }
    idt
}

/// Loads an IDT without IST stacks, for the boot before the TSS exists:
/// exceptions then are reported instead of triple-faulting silently.
pub fn init_early() {
    EARLY_IDT.call_once(|| build(false)).load();
}

/// Loads the final IDT. Its IST indices refer to the stacks that
/// [`super::gdt::init`] installs, which must have run.
pub fn init() {
    IDT.call_once(|| build(true)).load();
}

/// Loads the final IDT (built by [`init`] on the boot CPU) on an
/// application processor: every CPU shares it.
pub fn load_on_ap() {
    match IDT.get() {
        Some(idt) => idt.load(),
        None => init(),
    }
}
