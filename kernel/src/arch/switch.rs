//! The kernel-stack switch between threads.

use core::arch::global_asm;

global_asm!(
    r#"
    .text
    .global task_switch
task_switch:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
    "#
);

unsafe extern "C" {
    /// Saves the callee-saved registers and stack pointer into `*save_rsp`
    /// and resumes the thread whose saved stack pointer is `next_rsp`.
    fn task_switch(save_rsp: *mut u64, next_rsp: u64);
}

/// Switches from the running kernel stack to `next_rsp`.
///
/// # Safety
/// `save_rsp` must stay valid until this thread is resumed, and `next_rsp`
/// must be a value saved by an earlier switch (or [`initial_frame`]) for a
/// thread that is not running.
pub unsafe fn switch(save_rsp: *mut u64, next_rsp: u64) {
    // SAFETY: the caller's contract; `task_switch` follows the C ABI.
    unsafe { task_switch(save_rsp, next_rsp) }
}

/// Prepares a fresh stack whose first switch "returns" into `entry` with a
/// call-aligned stack; returns the stack pointer to switch to.
///
/// # Safety
/// `top` must be the 16-byte-aligned top of a mapped stack of at least one
/// page that nothing else uses.
pub unsafe fn initial_frame(top: u64, entry: extern "C" fn() -> !) -> u64 {
    let words: [u64; 8] = [0, 0, 0, 0, 0, 0, entry as usize as u64, 0];
    let rsp = top - 8 * words.len() as u64;
    // SAFETY: the caller guarantees `rsp .. top` is mapped, writable and
    // unused. Layout (low to high): r15 r14 r13 r12 rbp rbx, the return
    // address, and a zero "return address" of `entry` itself so that `entry`
    // starts with rsp ≡ 8 (mod 16) as after a call.
    unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), rsp as *mut u64, words.len()) };
    rsp
}
