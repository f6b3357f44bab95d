//! The x86-64 Linux signal frame: what the kernel pushes on the user stack
//! to run a handler, and what `rt_sigreturn` reads back.
//!
//! Layout (`arch/x86/include/asm/sigframe.h`, `uapi/asm/sigcontext.h`), from
//! the new stack pointer upwards:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 8 | `pretcode`: the handler's return address (`sa_restorer`) |
//! | 8 | 8 | `uc_flags` |
//! | 16 | 8 | `uc_link` |
//! | 24 | 24 | `uc_stack` (`ss_sp`, `ss_flags`, `ss_size`) |
//! | 48 | 256 | `uc_mcontext`: r8–r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags, cs/gs/fs/ss, err, trapno, oldmask, cr2, fpstate pointer, 8 reserved |
//! | 304 | 8 | `uc_sigmask` |
//! | 312 | 128 | `siginfo` |
//!
//! The FPU state (`xsave` image, 64-byte aligned) sits above the frame;
//! `uc_mcontext.fpstate` points at it.

use alloc::vec;
use alloc::vec::Vec;

use crate::arch::user::UserContext;

/// Bytes of the frame below the FPU area.
pub const FRAME_BYTES: u64 = 440;
const UC: usize = 8;
const MCONTEXT: usize = UC + 40;
const SIGMASK: usize = UC + 296;
const SIGINFO: usize = UC + 304;
/// `uc_flags`: the frame carries extended (xsave) FPU state.
const UC_FP_XSTATE: u64 = 1;

/// What the frame records besides the registers.
#[derive(Debug, Clone, Copy)]
pub struct FrameInfo {
    /// Signal number.
    pub signo: u32,
    /// `si_code` (e.g. `SI_KERNEL` 0x80, `SEGV_MAPERR` 1, `SI_TKILL` -6).
    pub code: i32,
    /// `si_addr` for faults, `si_pid` for kills (stored at the same offset
    /// as Linux's union does for each kind); for a POSIX timer, `si_tid`
    /// (the timer id) in the low and `si_overrun` in the high half.
    pub addr: u64,
    /// The union's second word: `si_value` of a POSIX timer's signal.
    pub value: u64,
    /// The signal mask to restore on return.
    pub old_mask: u64,
    /// The exception's error code and vector, for faults.
    pub err: u64,
    /// Trap number.
    pub trapno: u64,
    /// CR2 at a page fault.
    pub cr2: u64,
    /// `uc_stack` contents (the alternate stack), `(sp, flags, size)`.
    pub altstack: (u64, u32, u64),
}

fn put(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn get(buf: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[off..off + 8]);
    u64::from_le_bytes(b)
}

/// The register order of `struct sigcontext`'s first 18 words.
fn regs(ctx: &UserContext) -> [u64; 18] {
    [
        ctx.r8, ctx.r9, ctx.r10, ctx.r11, ctx.r12, ctx.r13, ctx.r14, ctx.r15, ctx.rdi, ctx.rsi,
        ctx.rbp, ctx.rbx, ctx.rdx, ctx.rax, ctx.rcx, ctx.rsp, ctx.rip, ctx.rflags,
    ]
}

/// Builds the frame bytes for `ctx` with the restorer `pretcode` and the
/// FPU area at user address `fpstate`.
pub fn build(ctx: &UserContext, info: &FrameInfo, pretcode: u64, fpstate: u64) -> Vec<u8> {
    let mut f = vec![0u8; FRAME_BYTES as usize];
    put(&mut f, 0, pretcode);
    put(&mut f, UC, UC_FP_XSTATE);
    put(&mut f, UC + 16, info.altstack.0);
    put(&mut f, UC + 24, u64::from(info.altstack.1));
    put(&mut f, UC + 32, info.altstack.2);
    for (i, r) in regs(ctx).iter().enumerate() {
        put(&mut f, MCONTEXT + 8 * i, *r);
    }
    // cs, gs, fs, ss as four u16: user code 0x33 (what Linux reports), ss 0x2b.
    put(&mut f, MCONTEXT + 144, 0x33 | (0x2b << 48));
    put(&mut f, MCONTEXT + 152, info.err);
    put(&mut f, MCONTEXT + 160, info.trapno);
    put(&mut f, MCONTEXT + 168, info.old_mask);
    put(&mut f, MCONTEXT + 176, info.cr2);
    put(&mut f, MCONTEXT + 184, fpstate);
    put(&mut f, SIGMASK, info.old_mask);
    // siginfo: si_signo, si_errno, si_code (ints), then the union at 16.
    f[SIGINFO..SIGINFO + 4].copy_from_slice(&info.signo.to_le_bytes());
    f[SIGINFO + 8..SIGINFO + 12].copy_from_slice(&info.code.to_le_bytes());
    put(&mut f, SIGINFO + 16, info.addr);
    put(&mut f, SIGINFO + 24, info.value);
    f
}

/// Registers, mask and FPU-area address read back from a frame whose
/// `uc` starts at byte `UC` of `frame` (`rt_sigreturn`). `rflags` is
/// returned as the user left it; the caller filters it.
pub fn parse(frame: &[u8], ctx: &mut UserContext) -> (u64, u64) {
    let r = |i: usize| get(frame, MCONTEXT + 8 * i);
    ctx.r8 = r(0);
    ctx.r9 = r(1);
    ctx.r10 = r(2);
    ctx.r11 = r(3);
    ctx.r12 = r(4);
    ctx.r13 = r(5);
    ctx.r14 = r(6);
    ctx.r15 = r(7);
    ctx.rdi = r(8);
    ctx.rsi = r(9);
    ctx.rbp = r(10);
    ctx.rbx = r(11);
    ctx.rdx = r(12);
    ctx.rax = r(13);
    ctx.rcx = r(14);
    ctx.rsp = r(15);
    ctx.rip = r(16);
    ctx.rflags = r(17);
    (get(frame, SIGMASK), get(frame, MCONTEXT + 184))
}
