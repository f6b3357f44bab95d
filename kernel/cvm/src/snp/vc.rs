//! The `#VC` handler's logic (GHCB spec #56421, "Non-automatic exits", and the
//! AMD APM vol. 2, the `#VC` exception of SEV-ES): under SEV-SNP, instructions the
//! hypervisor must see (CPUID, port I/O, MSR accesses, RDTSC/RDTSCP,
//! device memory) raise `#VC` with the exit code as error code; the
//! handler asks the hypervisor through the GHCB ([`GhcbCaller`]), writes
//! the answer into the interrupted context's registers and steps over the
//! instruction.
//!
//! The kernel's handler reads up to [`MAX_INSN_BYTES`] at the faulting
//! `RIP` (kernel code only) and hands them here with the register file
//! ([`VcRegisters`]). The instruction bytes are checked against the exit
//! code: a mismatch is an error, never a guess.
//!
//! MMIO (`#VC` with a nested-page-fault exit code) is not handled here:
//! the kernel's `#VC` entry sends it to its emulated-MMIO path, which
//! decodes the instruction ([`crate::insn::decode`]), computes the operand's
//! address ([`crate::insn::memory_operand`]: a `#VC` reports none) and
//! makes the access with [`GhcbCaller::mmio_read`]/[`GhcbCaller::mmio_write`].
//! [`handle`] refuses the exit code.

use super::calls::GhcbCaller;
use super::ghcb::exit_code;
use super::{Error, GhcbProtocol, Result};

/// The longest x86 instruction.
pub const MAX_INSN_BYTES: usize = 15;

/// The registers of the interrupted context the handled instructions read
/// or write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs, reason = "register names speak for themselves")]
pub struct VcRegisters {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rip: u64,
    /// `XCR0` (for CPUID leaf `0xD`), read by the kernel with `XGETBV`.
    pub xcr0: u64,
}

/// A decoded `IN`/`OUT` (non-string forms only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortInsn {
    /// `true` for `IN`.
    pub is_in: bool,
    /// Operand size: 1, 2 or 4.
    pub size_bytes: u8,
    /// The port: the immediate, or `None` for the `DX` forms.
    pub immediate_port: Option<u8>,
    /// Instruction length.
    pub len: usize,
}

/// Decodes `IN`/`OUT` at the start of `insn`: an optional operand-size
/// prefix (`0x66`), then `E4`/`E5`/`E6`/`E7` with an 8-bit port or
/// `EC`/`ED`/`EE`/`EF` with the port in `DX`. String forms (`INS`/`OUTS`)
/// and other prefixes are refused.
pub fn decode_port_insn(insn: &[u8]) -> Result<PortInsn> {
    let (operand16, rest) = match insn {
        [0x66, rest @ ..] => (true, rest),
        _ => (false, insn),
    };
    let prefix = usize::from(operand16);
    let wide = if operand16 { 2 } else { 4 };
    let (is_in, size_bytes, imm) = match rest.first() {
        Some(0xe4) => (true, 1, true),
        Some(0xe5) => (true, wide, true),
        Some(0xe6) => (false, 1, true),
        Some(0xe7) => (false, wide, true),
        Some(0xec) => (true, 1, false),
        Some(0xed) => (true, wide, false),
        Some(0xee) => (false, 1, false),
        Some(0xef) => (false, wide, false),
        Some(0x6c..=0x6f) => return Err(Error::Unsupported("INS/OUTS under #VC")),
        _ => {
            return Err(Error::Protocol(
                "#VC IOIO on an instruction that is not IN/OUT",
            ));
        }
    };
    let immediate_port = if imm {
        Some(*rest.get(1).ok_or(Error::InvalidArgument)?)
    } else {
        None
    };
    Ok(PortInsn {
        is_in,
        size_bytes,
        immediate_port,
        len: prefix + 1 + usize::from(imm),
    })
}

/// Checks that `insn` starts with `expected`, returning its length.
fn expect_insn(insn: &[u8], expected: &[u8]) -> Result<u64> {
    if insn.starts_with(expected) {
        Ok(expected.len() as u64)
    } else {
        Err(Error::Protocol(
            "#VC exit code does not match the instruction",
        ))
    }
}

/// Handles a `#VC` with error code `exit_code` raised by the instruction
/// whose bytes start `insn`, updating `regs` (results and `RIP`).
pub fn handle<H: GhcbProtocol>(
    exit_code: u64,
    regs: &mut VcRegisters,
    insn: &[u8],
    caller: &mut GhcbCaller<H>,
) -> Result<()> {
    let len = match exit_code {
        exit_code::CPUID => {
            let len = expect_insn(insn, &[0x0f, 0xa2])?;
            let r = caller.cpuid(regs.rax as u32, regs.rcx as u32, regs.xcr0)?;
            regs.rax = r.eax.into();
            regs.rbx = r.ebx.into();
            regs.rcx = r.ecx.into();
            regs.rdx = r.edx.into();
            len
        }
        exit_code::IOIO => {
            let d = decode_port_insn(insn)?;
            let port = d.immediate_port.map_or(regs.rdx as u16, u16::from);
            if d.is_in {
                let value = u64::from(caller.io_in(port, d.size_bytes)?);
                regs.rax = match d.size_bytes {
                    1 => (regs.rax & !0xff) | value,
                    2 => (regs.rax & !0xffff) | value,
                    // A 32-bit write to EAX clears the upper half of RAX.
                    _ => value,
                };
            } else {
                caller.io_out(port, d.size_bytes, regs.rax as u32)?;
            }
            d.len as u64
        }
        exit_code::MSR => {
            if insn.starts_with(&[0x0f, 0x32]) {
                let value = caller.rdmsr(regs.rcx as u32)?;
                regs.rax = value & 0xffff_ffff;
                regs.rdx = value >> 32;
            } else {
                expect_insn(insn, &[0x0f, 0x30])?;
                let value = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
                caller.wrmsr(regs.rcx as u32, value)?;
            }
            2
        }
        exit_code::RDTSC => {
            let len = expect_insn(insn, &[0x0f, 0x31])?;
            let tsc = caller.rdtsc()?;
            regs.rax = tsc & 0xffff_ffff;
            regs.rdx = tsc >> 32;
            len
        }
        exit_code::RDTSCP => {
            let len = expect_insn(insn, &[0x0f, 0x01, 0xf9])?;
            let (tsc, aux) = caller.rdtscp()?;
            regs.rax = tsc & 0xffff_ffff;
            regs.rdx = tsc >> 32;
            regs.rcx = aux.into();
            len
        }
        exit_code::NPF => {
            return Err(Error::Unsupported(
                "MMIO under #VC is decoded by the kernel's emulated-MMIO path",
            ));
        }
        _ => {
            return Err(Error::Unsupported(
                "#VC for an exit this handler does not emulate",
            ));
        }
    };
    regs.rip = regs.rip.wrapping_add(len);
    Ok(())
}

/// Whether a `#VC` raised in user mode (ring 3) with `exit_code` may be
/// handled for the program: only what an unprivileged instruction can
/// cause and the host must answer — `CPUID` (glibc runs it at start-up),
/// `RDTSC` and `RDTSCP` when intercepted. Port I/O, MSRs and `HLT` fault
/// with `#GP` in ring 3 before any `#VC`; anything else (a nested page
/// fault on memory the program maps) is not emulated for user code, and
/// the program gets the signal its fault means.
pub fn user_mode_allowed(exit_code: u64) -> bool {
    matches!(
        exit_code,
        exit_code::CPUID | exit_code::RDTSC | exit_code::RDTSCP
    )
}

#[cfg(test)]
#[path = "vc_tests.rs"]
mod tests;
