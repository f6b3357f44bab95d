//! Catching an expected CPU exception in kernel code, setjmp/longjmp style:
//! [`catch_fault`] runs a function; if it raises an exception, the trap
//! handler returns to the point after the call with the original stack and
//! callee-saved registers, and `catch_fault` returns the fault.
//!
//! Used by tests that must see a fault happen (a write to read-only memory,
//! executing a data page, overflowing a guarded stack). User-memory copies
//! will use an exception table instead, which needs no per-call set-up.

use core::arch::global_asm;
use core::sync::atomic::{AtomicPtr, Ordering};

use super::trap::TrapFrame;

/// What a caught exception looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Fault {
    /// Exception vector (14 = page fault, 8 = double fault, …).
    pub vector: u64,
    /// Error code pushed by the CPU (0 if none).
    pub error_code: u64,
    /// Instruction pointer at the fault.
    pub rip: u64,
    /// CR2 at the fault (the faulting address for a page fault).
    pub cr2: u64,
}

/// The state `catch_fault_raw` saves before calling, read by the trap
/// handler to resume. Layout shared with the assembly below.
#[repr(C)]
#[derive(Debug)]
struct CatchContext {
    rsp: u64,
    landing_rip: u64,
    fault: Fault,
}

/// The armed context, or null. One CPU for now; per-CPU with SMP.
static ARMED: AtomicPtr<CatchContext> = AtomicPtr::new(core::ptr::null_mut());

global_asm!(
    r#"
    .text
    .global catch_fault_raw
catch_fault_raw:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov [rdx], rsp
    lea rax, [rip + 2f]
    mov [rdx + 8], rax
    mov [rip + {armed}], rdx
    mov rax, rdi
    mov rdi, rsi
    sub rsp, 8
    call rax
    add rsp, 8
    xor eax, eax
    jmp 3f
2:
    mov eax, 1
3:
    mov qword ptr [rip + {armed}], 0
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
    "#,
    armed = sym ARMED,
);

unsafe extern "C" {
    /// Calls `f(arg)` with `ctx` armed; returns 0 normally, 1 after a fault.
    fn catch_fault_raw(f: extern "C" fn(usize), arg: usize, ctx: *mut CatchContext) -> u64;
}

/// Runs `f(arg)`; returns the first CPU exception it raised, if any.
///
/// `f` must not hold locks or own heap memory when it faults: nothing it
/// owns is dropped, its frames are simply abandoned.
pub fn catch_fault(f: extern "C" fn(usize), arg: usize) -> Option<Fault> {
    let mut ctx = CatchContext {
        rsp: 0,
        landing_rip: 0,
        fault: Fault {
            vector: 0,
            error_code: 0,
            rip: 0,
            cr2: 0,
        },
    };
    // SAFETY: `catch_fault_raw` follows the C ABI: it saves and restores all
    // callee-saved registers itself (also on the fault path, from its own
    // stack frame), and `ctx` outlives the call. `f` is a valid function.
    let faulted = unsafe { catch_fault_raw(f, arg, &mut ctx) };
    (faulted != 0).then_some(ctx.fault)
}

/// Called by the trap handler for CPU exceptions: if a catch is armed,
/// records the fault, rewrites `frame` to resume at the landing point and
/// returns `true`.
pub(super) fn recover(frame: &mut TrapFrame, cr2: u64) -> bool {
    let ctx = ARMED.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if ctx.is_null() {
        return false;
    }
    // SAFETY: a non-null ARMED points at the `CatchContext` in the frame of
    // the `catch_fault` call that is still running below us on this CPU (it
    // clears ARMED before returning), and we took sole use by swapping null.
    let ctx = unsafe { &mut *ctx };
    ctx.fault = Fault {
        vector: frame.vector,
        error_code: frame.error_code,
        rip: frame.rip,
        cr2,
    };
    frame.rip = ctx.landing_rip;
    frame.rsp = ctx.rsp;
    true
}
