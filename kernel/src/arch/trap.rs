//! Interrupt and exception entry: 256 assembly stubs that build a uniform
//! [`TrapFrame`] and call [`trap_dispatch`].
//!
//! Each stub is 16 bytes at `trap_stubs + 16 * vector`; stubs for vectors
//! without a CPU error code push a zero so the frame has one shape. The
//! common path saves every general register, calls Rust with the frame, and
//! restores from the frame, so a handler may redirect execution by editing
//! it (fault recovery in [`super::catch`], and later context switches).

use core::arch::global_asm;

use super::irq;

/// Saved state at a trap, in the order the stubs push it.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
#[allow(missing_docs, reason = "register names speak for themselves")]
pub struct TrapFrame {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    /// Interrupt vector.
    pub vector: u64,
    /// CPU error code, or 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Vectors for which the CPU pushes an error code.
const ERROR_CODE_VECTORS: [u64; 9] = [8, 10, 11, 12, 13, 14, 17, 21, 29];

global_asm!(
    r#"
    .text
    .p2align 4
    .global trap_stubs
trap_stubs:
    .set vec, 0
    .rept 256
    .p2align 4
    .if vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30
    .else
    push 0
    .endif
    push vec
    jmp trap_common
    .set vec, vec + 1
    .endr

trap_common:
    push r15
    push r14
    push r13
    push r12
    push r11
    push r10
    push r9
    push r8
    push rbp
    push rdi
    push rsi
    push rdx
    push rcx
    push rbx
    push rax
    mov rdi, rsp
    cld
    call {dispatch}
    pop rax
    pop rbx
    pop rcx
    pop rdx
    pop rsi
    pop rdi
    pop rbp
    pop r8
    pop r9
    pop r10
    pop r11
    pop r12
    pop r13
    pop r14
    pop r15
    add rsp, 16
    iretq
    "#,
    dispatch = sym trap_dispatch,
);

unsafe extern "C" {
    /// The first of the 256 16-byte stubs.
    static trap_stubs: [u8; 4096];
}

/// Address of the stub for `vector`.
pub fn stub_address(vector: u8) -> u64 {
    // `addr_of!` takes the address without reading the (code) bytes.
    core::ptr::addr_of!(trap_stubs) as u64 + 16 * u64::from(vector)
}

/// The timer interrupt vector.
pub const TIMER_VECTOR: u8 = 32;
/// The network card's interrupt vector (routed through the I/O APIC).
pub const NET_VECTOR: u8 = 33;
/// The program console's receive interrupt (COM2, ISA IRQ 3, through the
/// I/O APIC): only wakes a CPU waiting for stdin.
pub const CONSOLE_VECTOR: u8 = 34;
/// The APIC spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 255;

/// Human-readable names of the CPU exceptions.
pub fn exception_name(vector: u64) -> &'static str {
    const NAMES: [&str; 32] = [
        "divide error (#DE)",
        "debug (#DB)",
        "non-maskable interrupt",
        "breakpoint (#BP)",
        "overflow (#OF)",
        "bound range exceeded (#BR)",
        "invalid opcode (#UD)",
        "device not available (#NM)",
        "double fault (#DF)",
        "coprocessor segment overrun",
        "invalid TSS (#TS)",
        "segment not present (#NP)",
        "stack-segment fault (#SS)",
        "general protection (#GP)",
        "page fault (#PF)",
        "reserved",
        "x87 floating point (#MF)",
        "alignment check (#AC)",
        "machine check (#MC)",
        "SIMD floating point (#XM)",
        "virtualization (#VE)",
        "control protection (#CP)",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "hypervisor injection (#HV)",
        "VMM communication (#VC)",
        "security (#SX)",
        "reserved",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("interrupt")
}

/// Whether the CPU pushed an error code for `vector`.
pub fn has_error_code(vector: u64) -> bool {
    ERROR_CODE_VECTORS.contains(&vector) || vector == 30
}

extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    if frame.cs & 3 == 3 {
        if super::smp::is_quiet_ipi(frame.vector) {
            // A wake or TLB shootdown IPI: handled here, and user mode
            // goes on without entering the kernel (or its lock).
            device_interrupt(frame.vector);
            return;
        }
        from_user(frame);
    }
    match frame.vector {
        0..=31 => handle_exception(frame),
        v if v == u64::from(SPURIOUS_VECTOR) => {}
        v => device_interrupt(v),
    }
}

/// A device interrupt: its registered handler ([`irq::register`]), then
/// the end of interrupt.
fn device_interrupt(vector: u64) {
    match irq::handler(vector) {
        Some(handle) => handle(),
        None => log::warn!("unexpected interrupt vector {vector}"),
    }
    super::apic::end_of_interrupt();
}

/// A trap taken in ring 3: acknowledge interrupts, then hand everything to
/// the LibOS through [`super::user::execute`]'s return.
fn from_user(frame: &TrapFrame) -> ! {
    if frame.vector == NMI_VECTOR {
        host_stop();
    }
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    match frame.vector {
        v if v == u64::from(SPURIOUS_VECTOR) || v < 32 => {}
        v => device_interrupt(v),
    }
    super::user::trap_from_user(frame, cr2)
}

/// Non-maskable interrupt: the host's stop request.
const NMI_VECTOR: u64 = 2;

fn host_stop() {
    if let Some(h) = irq::hooks() {
        (h.host_stop)();
    }
}

fn handle_exception(frame: &mut TrapFrame) {
    if frame.vector == NMI_VECTOR {
        host_stop();
    }
    // A confidential VM's exceptions for what the host must do (a CPUID,
    // port I/O, an MSR): the platform performs it and execution goes on.
    let handled = match frame.vector {
        20 => crate::platform::tdx::on_ve(frame),
        29 => crate::platform::snp::on_vc(frame),
        _ => false,
    };
    if handled {
        return;
    }
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    let hooks = irq::hooks();
    if frame.vector == 14 && crate::platform::mmio_emulation::handle_page_fault(frame, cr2) {
        // A trapped device register (`platform.mmio=emulate`): emulated.
        return;
    }
    if frame.vector == 14 && hooks.is_some_and(|h| (h.kernel_page_fault)(cr2, frame.error_code)) {
        // A kernel access to a lazy user page (a user copy): retry it.
        return;
    }
    if super::uaccess::fixup(frame) || super::catch::recover(frame, cr2) {
        return;
    }
    if let Some(h) = hooks {
        // Not the lazy user-page faults, user-copy fix-ups or test catches
        // resolved above, which are routine (and, for user copies,
        // application-driven). Fatal user-mode exceptions are recorded
        // where the program is killed (`run::fault::kill`).
        let cr2 = if frame.vector == 14 { cr2 } else { 0 };
        (h.fatal_exception)(frame.vector as u8, frame.error_code, frame.rip, cr2);
    }
    crate::console::emergency_write(format_args!(
        "\nFATAL: CPU exception {} {}: error code {:#x}, RIP {:#018x}, CR2 {:#018x}, RSP {:#018x}, CS {:#x}, RFLAGS {:#x}\n",
        frame.vector,
        exception_name(frame.vector),
        frame.error_code,
        frame.rip,
        cr2,
        frame.rsp,
        frame.cs,
        frame.rflags,
    ));
    if frame.vector == 14 {
        crate::console::emergency_write(format_args!(
            "page fault: {} {} access to {:#x} in {} mode\n",
            if frame.error_code & 1 != 0 {
                "protection violation on"
            } else {
                "non-present page on"
            },
            if frame.error_code & 16 != 0 {
                "instruction fetch"
            } else if frame.error_code & 2 != 0 {
                "write"
            } else {
                "read"
            },
            cr2,
            if frame.error_code & 4 != 0 {
                "user"
            } else {
                "kernel"
            },
        ));
    }
    match hooks {
        Some(h) => {
            (h.before_fatal_exit)();
            (h.fatal_exit)()
        }
        // Before the kernel installed its hooks: end through the platform.
        None => crate::platform::platform().terminate(crate::platform::Termination::Failure(
            crate::platform::FailureReason::FatalException,
        )),
    }
}
