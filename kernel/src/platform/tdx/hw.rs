//! The one TDX instruction: `TDCALL` (encoded as bytes `66 0F 01 CC`, which
//! every assembler accepts), executed on a [`cvm::tdx::tdcall::Regs`]
//! register file. Everything above it — what to put in the registers and what the
//! answer means — is in `cvm::tdx`.
//!
//! Compiled in every build, executed only inside a trust domain: it has
//! never run (there is no TDX hardware here; outside a TD, `TDCALL` raises
//! `#UD`).

use cvm::tdx::tdcall::{Module, Regs};
use cvm::tdx::ve::Host;

/// `TDCALL` executed by this CPU. Only [`super`] makes one, after
/// detection said this is a trust domain.
#[derive(Debug)]
pub(super) struct Hw;

impl Module for Hw {
    fn tdcall(&mut self, regs: Regs) -> Regs {
        let mut regs = regs;
        // SAFETY:
        // 1. This runs only in a trust domain (`super::backend` is reached
        //    after `super::detect`), where `TDCALL` is defined.
        // 2. `TDCALL` reads and writes only the registers named here (RSI
        //    and RDI declared clobbered for safety; RBX and RBP are neither
        //    inputs nor outputs of the leaves Cloister calls, and
        //    `TDG.VP.VMCALL` passes only R10–R15 to the host, see
        //    `cvm::tdx::tdvmcall::EXPOSED`, so the TDX module preserves the
        //    others); it does not touch the stack.
        // 3. Memory it writes (`TDG.MR.REPORT`'s report, memory accepted or
        //    converted) is memory the caller owns and named by physical
        //    address in the registers; the asm is not `nomem`, so the
        //    compiler assumes memory may change.
        unsafe {
            core::arch::asm!(
                ".byte 0x66, 0x0f, 0x01, 0xcc",
                inout("rax") regs.rax,
                inout("rcx") regs.rcx,
                inout("rdx") regs.rdx,
                out("rsi") _,
                out("rdi") _,
                inout("r8") regs.r8,
                inout("r9") regs.r9,
                inout("r10") regs.r10,
                inout("r11") regs.r11,
                inout("r12") regs.r12,
                inout("r13") regs.r13,
                inout("r14") regs.r14,
                inout("r15") regs.r15,
                options(nostack),
            );
        }
        regs
    }
}

impl Host for Hw {
    fn vmcall(&mut self, regs: Regs) -> Regs {
        self.tdcall(regs)
    }
}

/// `STI` then `TDCALL` on `regs` (a `TDG.VP.VMCALL<Instruction.HLT>` with
/// interrupts not blocked): the STI shadow covers the `TDCALL`, so no
/// interrupt slips in between enabling and halting — the same guarantee
/// `sti; hlt` gives natively. Interrupts are enabled on return.
pub(super) fn sti_tdcall(mut regs: Regs) -> Regs {
    // SAFETY: as for `Hw::tdcall` (same registers, no stack, runs in a TD
    // only); enabling interrupts is what the caller (the idle wait) asks
    // for, and its handlers are installed before the idle loop runs.
    unsafe {
        core::arch::asm!(
            "sti",
            ".byte 0x66, 0x0f, 0x01, 0xcc",
            inout("rax") regs.rax,
            inout("rcx") regs.rcx,
            inout("rdx") regs.rdx,
            out("rsi") _,
            out("rdi") _,
            inout("r8") regs.r8,
            inout("r9") regs.r9,
            inout("r10") regs.r10,
            inout("r11") regs.r11,
            inout("r12") regs.r12,
            inout("r13") regs.r13,
            inout("r14") regs.r14,
            inout("r15") regs.r15,
            options(nostack),
        );
    }
    regs
}
