//! The emulated-MMIO fault path: with [`MmioAccess::Trapped`]
//! (`platform.mmio=emulate` on the native backend) device registers are
//! not present at the addresses drivers use, so every access page-faults
//! into [`handle_page_fault`], which
//!
//! 1. checks it is a kernel-mode data access to a not-present page inside a
//!    device range that [`super::mmio::map_registers`] recorded;
//! 2. copies the instruction bytes at RIP (at most 15, never past the end
//!    of `.text`) and decodes them with [`cvm::insn::decode`];
//! 3. performs the access with [`super::Platform::mmio_read`] /
//!    [`super::Platform::mmio_write`] on the physical address, moves the
//!    value between the device and the trap frame's registers as the CPU
//!    would, and advances RIP past the instruction.
//!
//! An instruction the decoder refuses, a direction that disagrees with the
//! CPU's error code, or an access the platform refuses (unaligned, outside
//! the device) is fatal: the bytes are logged and the trap path reports the
//! page fault and ends the guest — never a silent wrong value.
//!
//! The `#VC` handler of the SEV-SNP backend (a nested page fault on a
//! device register, which SNP maps shared) and the `#VE` handler of the
//! TDX backend (an EPT violation on a shared address) call the same
//! [`emulate`]; SNP's `#VC` reports no address, so it is computed from the
//! instruction's memory operand ([`cvm::insn::memory_operand`]). This path
//! runs it for real under plain QEMU.

use core::sync::atomic::{AtomicU64, Ordering};

use cvm::insn::{self, Gpr, MAX_INSN_BYTES, MmioInsn, MmioOp, RegisterFile};

use super::{MmioAccess, Width, platform};
use crate::arch::trap::TrapFrame;
use crate::mm::layout;

/// Page-fault error-code bits (Intel SDM vol. 3, 4.7).
mod pf {
    /// The page was present (a protection violation).
    pub const PRESENT: u64 = 1 << 0;
    /// The access was a write.
    pub const WRITE: u64 = 1 << 1;
    /// The access came from user mode.
    pub const USER: u64 = 1 << 2;
    /// A reserved bit was set in a paging entry.
    pub const RESERVED: u64 = 1 << 3;
    /// The access was an instruction fetch.
    pub const FETCH: u64 = 1 << 4;
}

/// Device-register accesses emulated since boot.
static EMULATED: AtomicU64 = AtomicU64::new(0);

/// How many device-register accesses this path emulated since boot.
pub fn emulated_accesses() -> u64 {
    EMULATED.load(Ordering::Relaxed)
}

/// A line for the kernel log saying that device registers are emulated
/// and how many accesses were, or `None` when they are mapped.
pub fn summary() -> Option<impl core::fmt::Display> {
    (platform().mmio_access() == MmioAccess::Trapped).then(|| {
        let n = emulated_accesses();
        EmulationSummary(n)
    })
}

struct EmulationSummary(u64);

impl core::fmt::Display for EmulationSummary {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "mmio: emulated device-register accesses (platform.mmio=emulate): {}",
            self.0
        )
    }
}

impl RegisterFile for TrapFrame {
    fn gpr(&self, gpr: Gpr) -> u64 {
        match gpr {
            Gpr::Rax => self.rax,
            Gpr::Rcx => self.rcx,
            Gpr::Rdx => self.rdx,
            Gpr::Rbx => self.rbx,
            Gpr::Rsp => self.rsp,
            Gpr::Rbp => self.rbp,
            Gpr::Rsi => self.rsi,
            Gpr::Rdi => self.rdi,
            Gpr::R8 => self.r8,
            Gpr::R9 => self.r9,
            Gpr::R10 => self.r10,
            Gpr::R11 => self.r11,
            Gpr::R12 => self.r12,
            Gpr::R13 => self.r13,
            Gpr::R14 => self.r14,
            Gpr::R15 => self.r15,
        }
    }

    fn set_gpr(&mut self, gpr: Gpr, value: u64) {
        let slot = match gpr {
            Gpr::Rax => &mut self.rax,
            Gpr::Rcx => &mut self.rcx,
            Gpr::Rdx => &mut self.rdx,
            Gpr::Rbx => &mut self.rbx,
            // The interrupted RSP, which `iretq` restores.
            Gpr::Rsp => &mut self.rsp,
            Gpr::Rbp => &mut self.rbp,
            Gpr::Rsi => &mut self.rsi,
            Gpr::Rdi => &mut self.rdi,
            Gpr::R8 => &mut self.r8,
            Gpr::R9 => &mut self.r9,
            Gpr::R10 => &mut self.r10,
            Gpr::R11 => &mut self.r11,
            Gpr::R12 => &mut self.r12,
            Gpr::R13 => &mut self.r13,
            Gpr::R14 => &mut self.r14,
            Gpr::R15 => &mut self.r15,
        };
        *slot = value;
    }

    fn rflags(&self) -> u64 {
        self.rflags
    }

    fn set_rflags(&mut self, value: u64) {
        self.rflags = value;
    }
}

/// Copies the instruction bytes at `rip` into `buf`: as many as fit, but
/// none past the end of the kernel's `.text`. `None` if `rip` is not in
/// `.text` (kernel code runs nowhere else).
fn instruction_bytes(rip: u64, buf: &mut [u8; MAX_INSN_BYTES]) -> Option<usize> {
    let (start, end) = (layout::text_start(), layout::text_end());
    if !(start..end).contains(&rip) {
        return None;
    }
    let n = usize::try_from(end - rip).map_or(MAX_INSN_BYTES, |left| left.min(MAX_INSN_BYTES));
    // SAFETY: `[rip, rip + n)` lies inside the kernel's `.text`, which is
    // mapped readable for the kernel's whole life and never written; `buf`
    // holds at least `n` bytes and does not overlap code.
    unsafe { core::ptr::copy_nonoverlapping(rip as *const u8, buf.as_mut_ptr(), n) };
    Some(n)
}

/// The emulation of a kernel page fault at `cr2` (see the module docs):
/// `true` if it was a device access, now performed, with the frame past
/// the instruction; `false` if it is not one of ours, or cannot be
/// emulated (logged; the trap path then treats the fault as fatal).
pub fn handle_page_fault(frame: &mut TrapFrame, cr2: u64) -> bool {
    let not_ours = pf::PRESENT | pf::USER | pf::RESERVED | pf::FETCH;
    if frame.cs & 3 != 0 || frame.error_code & not_ours != 0 {
        return false;
    }
    if platform().mmio_access() != MmioAccess::Trapped {
        return false;
    }
    if super::mmio::device_paddr(cr2).is_none() {
        return false;
    }
    emulate(
        frame,
        Target::Known(cr2),
        Some(frame.error_code & pf::WRITE != 0),
    )
}

/// Where the access went.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The CPU or the TDX module reported the linear address.
    Known(u64),
    /// Nothing reported it (SEV-SNP's `#VC` for a nested page fault): the
    /// address is computed from the instruction's memory operand and the
    /// interrupted registers.
    FromInstruction,
}

/// Emulates the kernel's device access that trapped at `frame.rip`: to
/// `target`, a write if `is_write` says so (checked against the decoded
/// instruction when known). `true` when done, with the frame past the
/// instruction; `false` (logged) when the address is not a device register
/// or the instruction cannot be emulated. The page-fault path, the SNP
/// `#VC` and the TDX `#VE` handlers share it.
pub fn emulate(frame: &mut TrapFrame, target: Target, is_write: Option<bool>) -> bool {
    let reported = match target {
        Target::Known(vaddr) => vaddr,
        Target::FromInstruction => 0,
    };
    let mut bytes = [0u8; MAX_INSN_BYTES];
    let Some(n) = instruction_bytes(frame.rip, &mut bytes) else {
        refuse(frame, reported, &[], "RIP outside the kernel's code");
        return false;
    };
    let bytes = &bytes[..n];
    let insn = match insn::decode(bytes) {
        Ok(insn) => insn,
        Err(e) => {
            refuse(frame, reported, bytes, e);
            return false;
        }
    };
    // The operand's address, computed as SEV-SNP's #VC must; where the
    // address was reported (a page fault's CR2, TDX's GPA) the two must
    // agree, so every emulated access under plain QEMU also checks the
    // computation.
    let computed = match insn::memory_operand(bytes) {
        Ok(op) => op.linear_address(frame, frame.rip),
        Err(e) => {
            refuse(frame, reported, bytes, e);
            return false;
        }
    };
    let vaddr = match target {
        Target::Known(vaddr) if vaddr != computed => {
            refuse(
                frame,
                vaddr,
                bytes,
                format_args!("the operand's address computes to {computed:#x}"),
            );
            return false;
        }
        Target::Known(vaddr) => vaddr,
        Target::FromInstruction => computed,
    };
    let Some(paddr) = super::mmio::device_paddr(vaddr) else {
        refuse(frame, vaddr, bytes, "not a device register");
        return false;
    };
    let decoded_write = matches!(insn.op, MmioOp::Write { .. });
    if is_write.is_some_and(|w| w != decoded_write) {
        refuse(
            frame,
            vaddr,
            bytes,
            "the decoded direction differs from the CPU's",
        );
        return false;
    }
    if let Err(e) = perform(frame, paddr, &insn) {
        refuse(frame, vaddr, bytes, e);
        return false;
    }
    frame.rip = frame.rip.wrapping_add(insn.len as u64);
    EMULATED.fetch_add(1, Ordering::Relaxed);
    true
}

/// Performs the decoded access on the device and completes a load into
/// the frame's registers.
fn perform(frame: &mut TrapFrame, paddr: u64, insn: &MmioInsn) -> super::Result<()> {
    let width = match insn.width() {
        insn::Width::U8 => Width::U8,
        insn::Width::U16 => Width::U16,
        insn::Width::U32 => Width::U32,
        insn::Width::U64 => Width::U64,
    };
    match insn.write_value(frame) {
        Some(value) => platform().mmio_write(paddr, width, value),
        None => {
            let value = platform().mmio_read(paddr, width)?;
            insn.complete_read(frame, value);
            Ok(())
        }
    }
}

/// Logs why a device access could not be emulated (the trap path then
/// reports the fault and ends the guest).
fn refuse(frame: &TrapFrame, vaddr: u64, bytes: &[u8], why: impl core::fmt::Display) {
    crate::console::emergency_write(format_args!(
        "\nFATAL: cannot emulate the device access at RIP {:#018x} to {vaddr:#x}: {why}; instruction bytes {bytes:02x?}\n",
        frame.rip
    ));
}
