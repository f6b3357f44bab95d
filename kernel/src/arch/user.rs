//! Running code in ring 3: [`execute`] enters user mode with a
//! [`UserContext`] and returns to its caller, on the caller's kernel stack,
//! when user code makes a system call, raises an exception or is
//! interrupted — the "run the user until it needs the kernel" model of
//! Asterinas' `UserMode::execute`. The LibOS then handles the event in
//! ordinary Rust and calls `execute` again.
//!
//! Mechanics (per-CPU state in [`UserCpu`] slots, one per CPU):
//! - `enter_user` saves the kernel's callee-saved registers and stack
//!   pointer in the CPU's slot, loads every user register from the context
//!   and `sysretq`s
//!   when the context is a system call's (`rcx` = `rip`, `r11` = `rflags`,
//!   a canonical `rip`), `iretq`s otherwise;
//! - `SYSCALL` lands in the CPU's own entry stub (`IA32_LSTAR` differs per
//!   CPU: stub `n` names slot `n`, so no register or GS base is needed to
//!   find it) with interrupts off (`IA32_FMASK`); the common
//!   `syscall_entry` stores the user registers back into the context and
//!   returns from `enter_user`;
//! - an exception or interrupt in ring 3 arrives on the TSS `RSP0` stack;
//!   the common trap path hands the frame to [`trap_from_user`], which copies
//!   it into the context and returns from `enter_user` the same way.
//!
//! The kernel never loads user GS or FS bases, so user-set bases survive
//! every entry and exit untouched (no `swapgs` needed while nothing in the
//! kernel uses GS).

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::VirtAddr;
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;

use super::gdt;
use super::smp::MAX_CPUS;
use super::trap::TrapFrame;

/// User code selector (GDT index 4, RPL 3); checked against the GDT at init.
const USER_CS: u64 = 0x23;
/// User data selector (GDT index 3, RPL 3).
const USER_SS: u64 = 0x1b;
/// `UserContext::vector` after a system call.
pub const SYSCALL_VECTOR: u64 = 0x100;

/// The user's registers, saved and restored on every kernel entry and exit.
/// Field offsets are used by the assembly below.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
#[allow(missing_docs, reason = "register names speak for themselves")]
pub struct UserContext {
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
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    /// Why user mode was left: [`SYSCALL_VECTOR`] or a trap vector.
    pub vector: u64,
    /// The CPU error code of an exception.
    pub error_code: u64,
    /// CR2 at a page fault.
    pub cr2: u64,
}

/// Why [`execute`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnReason {
    /// A `syscall` instruction: number in `rax`, arguments in `rdi, rsi,
    /// rdx, r10, r8, r9`; put the result in `rax`.
    Syscall,
    /// A CPU exception (vector < 32) in user code.
    Exception {
        /// The vector (14 = page fault, 6 = invalid opcode, …).
        vector: u64,
        /// The CPU error code.
        error_code: u64,
        /// CR2 (the faulting address for a page fault).
        cr2: u64,
    },
    /// A device interrupt (already acknowledged), e.g. the timer tick.
    Interrupt(u64),
}

/// One CPU's user-mode entry state, read and written by the assembly
/// below at fixed offsets (32 bytes each).
#[derive(Debug)]
#[repr(C, align(32))]
pub struct UserCpu {
    /// The context `enter_user` runs and where the exits store registers
    /// (offset 0).
    context: AtomicU64,
    /// The kernel stack pointer to return to, saved by `enter_user`
    /// (offset 8).
    kernel_rsp: AtomicU64,
    /// Scratch for the user stack pointer in the syscall entry (offset 16).
    rsp_scratch: AtomicU64,
}

/// Every CPU's slot, indexed by `smp::cpu_index`.
#[unsafe(no_mangle)]
static USER_CPUS: [UserCpu; MAX_CPUS] = [const {
    UserCpu {
        context: AtomicU64::new(0),
        kernel_rsp: AtomicU64::new(0),
        rsp_scratch: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// This CPU's slot.
#[inline(always)]
fn this_cpu() -> &'static UserCpu {
    &USER_CPUS[super::smp::cpu_index() % MAX_CPUS]
}

global_asm!(
    r#"
    .text
    // Every user register but rsp and rdi, from the context at rdi.
    .macro cloister_load_user_gprs
    mov rax, [rdi + 0]
    mov rbx, [rdi + 8]
    mov rcx, [rdi + 16]
    mov rdx, [rdi + 24]
    mov rsi, [rdi + 32]
    mov rbp, [rdi + 48]
    mov r8, [rdi + 56]
    mov r9, [rdi + 64]
    mov r10, [rdi + 72]
    mov r11, [rdi + 80]
    mov r12, [rdi + 88]
    mov r13, [rdi + 96]
    mov r14, [rdi + 104]
    mov r15, [rdi + 112]
    .endm

    // enter_user(ctx = rdi, slot = rsi)
    .global enter_user
enter_user:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov [rsi + 8], rsp
    mov [rsi + 0], rdi
    // The fast way back from a system call: SYSRET, when the context is
    // what SYSCALL left (rcx = rip, r11 = rflags) and rip is a canonical
    // user address (SYSRET to a non-canonical one faults in ring 0 on
    // Intel CPUs). Everything else (traps, signal frames) takes IRETQ.
    mov rax, [rdi + 16]
    cmp rax, [rdi + 120]
    jne 2f
    mov rax, [rdi + 80]
    cmp rax, [rdi + 136]
    jne 2f
    mov rax, {sysret_limit}
    cmp [rdi + 120], rax
    jae 2f
    cloister_load_user_gprs
    mov rsp, [rdi + 128]
    mov rdi, [rdi + 40]
    sysretq
2:
    push {user_ss}
    push qword ptr [rdi + 128]
    push qword ptr [rdi + 136]
    push {user_cs}
    push qword ptr [rdi + 120]
    cloister_load_user_gprs
    mov rdi, [rdi + 40]
    iretq

    // Every user register but rax and rsp into the context at rsp, with
    // rip = rcx and rflags = r11 (what SYSCALL left) and the syscall vector.
    .macro cloister_save_syscall_gprs
    mov [rsp + 8], rbx
    mov [rsp + 16], rcx
    mov [rsp + 24], rdx
    mov [rsp + 32], rsi
    mov [rsp + 40], rdi
    mov [rsp + 48], rbp
    mov [rsp + 56], r8
    mov [rsp + 64], r9
    mov [rsp + 72], r10
    mov [rsp + 80], r11
    mov [rsp + 88], r12
    mov [rsp + 96], r13
    mov [rsp + 104], r14
    mov [rsp + 112], r15
    mov [rsp + 120], rcx
    mov [rsp + 136], r11
    mov qword ptr [rsp + 144], {syscall_vector}
    .endm

    // One 32-byte stub per CPU (IA32_LSTAR of CPU n = stub n, n > 0): the
    // user rsp into slot n's scratch, rsp = slot n's context, rax saved
    // there, then rax = slot n's address for the common part.
    .p2align 5
    .global syscall_entry_stubs
syscall_entry_stubs:
    .set cpu, 0
    .rept {max_cpus}
    .p2align 5
    mov [rip + USER_CPUS + 32 * cpu + 16], rsp
    mov rsp, [rip + USER_CPUS + 32 * cpu]
    mov [rsp + 0], rax
    lea rax, [rip + USER_CPUS + 32 * cpu]
    jmp syscall_entry
    .set cpu, cpu + 1
    .endr

syscall_entry:
    cloister_save_syscall_gprs
    mov rcx, [rax + 16]
    mov [rsp + 128], rcx
    mov rsi, [rax + 8]
    xor edi, edi
    jmp return_to_kernel

    // The boot CPU's own entry (CPU 0, the only one with one vCPU): its
    // slot's fields by address, no slot register, and it falls through
    // into return_to_kernel.
    .p2align 5
    .global syscall_entry_boot_cpu
syscall_entry_boot_cpu:
    mov [rip + USER_CPUS + 16], rsp
    mov rsp, [rip + USER_CPUS]
    mov [rsp + 0], rax
    cloister_save_syscall_gprs
    mov rcx, [rip + USER_CPUS + 16]
    mov [rsp + 128], rcx
    mov rsi, [rip + USER_CPUS + 8]
    xor edi, edi

    // return_to_kernel(code = rdi, kernel_rsp = rsi)
    .global return_to_kernel
return_to_kernel:
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    mov rax, rdi
    ret
    "#,
    user_ss = const USER_SS,
    user_cs = const USER_CS,
    syscall_vector = const SYSCALL_VECTOR,
    sysret_limit = const SYSRET_LIMIT,
    max_cpus = const MAX_CPUS,
);

/// The first user `rip` SYSRET is not used for: the top page below the
/// canonical boundary, as Linux (a `syscall` in the last bytes of that
/// page would leave `rip` non-canonical).
const SYSRET_LIMIT: u64 = 0x0000_7fff_ffff_f000;

unsafe extern "C" {
    fn enter_user(ctx: *mut UserContext, slot: *const UserCpu) -> u64;
    /// The first of the per-CPU 32-byte syscall entry stubs.
    static syscall_entry_stubs: [u8; 32];
    /// CPU 0's entry, which falls through into the common part.
    static syscall_entry_boot_cpu: [u8; 32];
    fn return_to_kernel(code: u64, kernel_rsp: u64) -> !;
}

/// RFLAGS bits user code may hold: arithmetic flags, TF, DF, OF, AC, ID.
const USER_RFLAGS: u64 = 0x0000_0000_0025_4dd5;

/// Enables `SYSCALL`/`SYSRET` on the boot CPU and points `SYSCALL` at its
/// entry. Requires the GDT from [`gdt::init`].
pub fn init() {
    init_cpu(0);
}

/// [`init`] for CPU `index` (each AP calls it for itself, after loading
/// its GDT): its `IA32_LSTAR` names its own entry stub.
pub fn init_cpu(index: usize) {
    assert!(index < MAX_CPUS, "CPU index {index} beyond the entry stubs");
    let entry = if index == 0 {
        core::ptr::addr_of!(syscall_entry_boot_cpu) as u64
    } else {
        core::ptr::addr_of!(syscall_entry_stubs) as u64 + 32 * index as u64
    };
    let sel = gdt::selectors().expect("GDT loaded before user mode");
    assert_eq!(
        (u64::from(sel.user_code.0), u64::from(sel.user_data.0)),
        (USER_CS, USER_SS)
    );
    // SAFETY: STAR's selectors are the GDT's, in the order SYSRET needs
    // (checked by `Star::write`); LSTAR points at this CPU's entry stub,
    // which saves the user state in this CPU's slot before touching
    // anything; FMASK clears IF, TF,
    // DF and AC on entry so the entry path runs with interrupts off and
    // string ops forward; SCE turns the instructions on.
    unsafe {
        Star::write(
            sel.user_code,
            sel.user_data,
            sel.kernel_code,
            sel.kernel_data,
        )
        .expect("GDT layout suits SYSRET");
        LStar::write(VirtAddr::new(entry));
        SFMask::write(
            RFlags::INTERRUPT_FLAG
                | RFlags::TRAP_FLAG
                | RFlags::DIRECTION_FLAG
                | RFlags::ALIGNMENT_CHECK,
        );
        Efer::update(|e| e.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
    }
}

/// Runs `ctx` in ring 3 until it needs the kernel. Interrupts are enabled
/// in user mode and disabled when this returns.
pub fn execute(ctx: &mut UserContext) -> ReturnReason {
    if super::smp::bkl::active() {
        execute_on::<true>(ctx)
    } else {
        execute_on::<false>(ctx)
    }
}

/// [`execute`] for a caller that knows whether the big kernel lock is in
/// use (`SMP`, fixed once threads start: `task::start`), so that one vCPU
/// pays no check of it: the run loop is compiled once for each case.
#[inline(always)]
pub fn execute_on<const SMP: bool>(ctx: &mut UserContext) -> ReturnReason {
    debug_assert_eq!(SMP, super::smp::bkl::active());
    ctx.rflags = (ctx.rflags & USER_RFLAGS) | RFlags::INTERRUPT_FLAG.bits() | 0x2;
    x86_64::instructions::interrupts::disable();
    // Only user mode runs in parallel: the big kernel lock is let go on the
    // way out and taken back on the way in (with one CPU: slot 0, no lock).
    let slot = if SMP { this_cpu() } else { &USER_CPUS[0] };
    if SMP {
        super::smp::bkl::release();
    }
    let entered_at = if SMP { crate::time::rdtsc() } else { 0 };
    // SAFETY: `enter_user` saves the callee-saved registers and our stack
    // pointer, and every way back (`syscall_entry`, `trap_from_user`)
    // restores them and returns here as from a C function; `ctx` stays
    // borrowed for the whole call, so the exit paths write into live memory.
    // The user code runs in ring 3 with only user pages accessible and
    // cannot touch kernel memory (SMEP/SMAP and supervisor-only pages).
    let code = unsafe { enter_user(ctx, slot) };
    slot.context.store(0, Ordering::Relaxed);
    if SMP {
        super::smp::times::add_since(super::smp::times::Span::User, entered_at);
        super::smp::bkl::acquire();
    }
    if code == 0 {
        ReturnReason::Syscall
    } else {
        trap_reason(ctx)
    }
}

/// Why [`execute`] returned with `ctx` when it was not for a system call:
/// the exception or interrupt the trap path stored in `ctx` (its vector,
/// error code and CR2), until the next `execute`.
pub fn trap_reason(ctx: &UserContext) -> ReturnReason {
    match ctx.vector {
        v if v < 32 => ReturnReason::Exception {
            vector: v,
            error_code: ctx.error_code,
            cr2: ctx.cr2,
        },
        v => ReturnReason::Interrupt(v),
    }
}

/// Called by the trap dispatcher for a trap taken in ring 3 (after any
/// acknowledgement): stores the user state and returns from [`execute`].
pub(super) fn trap_from_user(frame: &TrapFrame, cr2: u64) -> ! {
    let slot = this_cpu();
    let ctx = slot.context.load(Ordering::Relaxed) as *mut UserContext;
    assert!(!ctx.is_null(), "trap from ring 3 with no user context");
    // SAFETY: a trap from ring 3 can only happen inside `execute`, whose
    // `&mut UserContext` is the pointer `enter_user` stored; nothing else
    // accesses it until `execute` resumes.
    let ctx = unsafe { &mut *ctx };
    *ctx = UserContext {
        rax: frame.rax,
        rbx: frame.rbx,
        rcx: frame.rcx,
        rdx: frame.rdx,
        rsi: frame.rsi,
        rdi: frame.rdi,
        rbp: frame.rbp,
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rip: frame.rip,
        rsp: frame.rsp,
        rflags: frame.rflags,
        vector: frame.vector,
        error_code: frame.error_code,
        cr2,
    };
    // SAFETY: `execute` is waiting below us on the stack this CPU's slot
    // names; returning there abandons only this trap's frame on the RSP0
    // stack, which holds nothing else.
    unsafe { return_to_kernel(1, slot.kernel_rsp.load(Ordering::Relaxed)) }
}
