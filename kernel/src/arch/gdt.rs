//! The GDT and TSS. Layout (selectors) is fixed for `SYSCALL`/`SYSRET`:
//! kernel code 0x08, kernel data 0x10, user data 0x1b, user code 0x23, TSS
//! 0x28. The TSS carries the IST stacks for the double fault, NMI and machine
//! check handlers.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, FS, GS, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot of the double-fault stack.
pub const DOUBLE_FAULT_IST: u16 = 0;
/// IST slot of the NMI stack.
pub const NMI_IST: u16 = 1;
/// IST slot of the machine-check stack.
pub const MACHINE_CHECK_IST: u16 = 2;

/// Segment selectors.
#[derive(Debug, Clone, Copy)]
pub struct Selectors {
    /// Ring-0 code.
    pub kernel_code: SegmentSelector,
    /// Ring-0 data/stack.
    pub kernel_data: SegmentSelector,
    /// Ring-3 data/stack.
    pub user_data: SegmentSelector,
    /// Ring-3 64-bit code.
    pub user_code: SegmentSelector,
    /// The TSS.
    pub tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

/// Builds and loads the GDT and TSS with the given stack tops.
/// `user_trap_stack_top` is `RSP0`: where the CPU switches for a trap taken
/// in ring 3.
pub fn init(
    user_trap_stack_top: u64,
    double_fault_stack_top: u64,
    nmi_stack_top: u64,
    machine_check_stack_top: u64,
) {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.privilege_stack_table[0] = VirtAddr::new(user_trap_stack_top);
        tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST)] =
            VirtAddr::new(double_fault_stack_top);
        tss.interrupt_stack_table[usize::from(NMI_IST)] = VirtAddr::new(nmi_stack_top);
        tss.interrupt_stack_table[usize::from(MACHINE_CHECK_IST)] =
            VirtAddr::new(machine_check_stack_top);
        tss
    });
    let (gdt, sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        let sel = Selectors {
            kernel_code,
            kernel_data,
            user_data,
            user_code,
            tss,
        };
        (gdt, sel)
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, with the descriptors
    // they name (64-bit code for CS, data for the others, a valid TSS).
    unsafe {
        CS::set_reg(sel.kernel_code);
        SS::set_reg(sel.kernel_data);
        DS::set_reg(sel.kernel_data);
        ES::set_reg(sel.kernel_data);
        FS::set_reg(SegmentSelector(0));
        GS::set_reg(SegmentSelector(0));
        load_tss(sel.tss);
    }
}

/// The selectors, once [`init`] has run.
pub fn selectors() -> Option<Selectors> {
    GDT.get().map(|(_, s)| *s)
}

/// Builds and loads a GDT and TSS of its own for an application processor
/// (same layout and selectors as the boot CPU's, so the IDT and the
/// `SYSCALL` MSRs agree), with that CPU's `RSP0` and IST stacks. Both
/// tables live as long as the kernel (each AP starts once).
pub fn init_ap(
    user_trap_stack_top: u64,
    double_fault_stack_top: u64,
    nmi_stack_top: u64,
    machine_check_stack_top: u64,
) {
    let mut tss = TaskStateSegment::new();
    tss.privilege_stack_table[0] = VirtAddr::new(user_trap_stack_top);
    tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST)] =
        VirtAddr::new(double_fault_stack_top);
    tss.interrupt_stack_table[usize::from(NMI_IST)] = VirtAddr::new(nmi_stack_top);
    tss.interrupt_stack_table[usize::from(MACHINE_CHECK_IST)] =
        VirtAddr::new(machine_check_stack_top);
    let tss: &'static TaskStateSegment = alloc::boxed::Box::leak(alloc::boxed::Box::new(tss));
    let mut gdt = GlobalDescriptorTable::new();
    let kernel_code = gdt.append(Descriptor::kernel_code_segment());
    let kernel_data = gdt.append(Descriptor::kernel_data_segment());
    gdt.append(Descriptor::user_data_segment());
    gdt.append(Descriptor::user_code_segment());
    let tss_sel = gdt.append(Descriptor::tss_segment(tss));
    let gdt: &'static GlobalDescriptorTable = alloc::boxed::Box::leak(alloc::boxed::Box::new(gdt));
    gdt.load();
    // SAFETY: as in `init`: the selectors index the GDT just loaded, with
    // the descriptors they name; the TSS is this CPU's own (a TSS in use by
    // two CPUs would fault on `ltr`, it is marked busy).
    unsafe {
        CS::set_reg(kernel_code);
        SS::set_reg(kernel_data);
        DS::set_reg(kernel_data);
        ES::set_reg(kernel_data);
        FS::set_reg(SegmentSelector(0));
        GS::set_reg(SegmentSelector(0));
        load_tss(tss_sel);
    }
}
