//! The address a device access goes to, computed from the instruction
//! (for `#VC` on SEV-SNP, which, unlike a page fault or TDX's `#VE`, does
//! not report the faulting address to the guest: the handler decodes the
//! memory operand and computes its linear address from the interrupted
//! registers, as Linux's `insn_get_addr_ref`).
//!
//! Supported: 64-bit addressing with any base and index register, scale
//! and displacement, `RIP`-relative operands and the absolute `moffs`
//! forms. Refused: an `FS`/`GS` override (the segment base would be
//! needed; kernel drivers never use one) and 32-bit address size (`0x67`).

use iced_x86::Register;

use super::{DecodeError, Gpr, RegisterFile};

/// The memory operand of a decoded instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemOperand {
    /// The base register, if any.
    pub base: Option<Gpr>,
    /// The index register and its scale (1, 2, 4 or 8), if any.
    pub index: Option<(Gpr, u8)>,
    /// The displacement, sign-extended (for `RIP`-relative operands, from
    /// the end of the instruction).
    pub displacement: u64,
    /// `RIP`-relative: the displacement counts from the next instruction.
    pub rip_relative: bool,
    /// The instruction's length.
    pub len: usize,
}

impl MemOperand {
    /// The operand's linear address when the instruction at `rip` runs
    /// with `regs` (the CPU's wrapping arithmetic).
    pub fn linear_address(&self, regs: &impl RegisterFile, rip: u64) -> u64 {
        let mut addr = self.displacement;
        if self.rip_relative {
            addr = addr.wrapping_add(rip).wrapping_add(self.len as u64);
        }
        if let Some(base) = self.base {
            addr = addr.wrapping_add(regs.gpr(base));
        }
        if let Some((index, scale)) = self.index {
            addr = addr.wrapping_add(regs.gpr(index).wrapping_mul(u64::from(scale)));
        }
        addr
    }
}

/// A 64-bit general register as [`Gpr`]; `None` for anything else.
fn gpr64(reg: Register) -> Result<Option<Gpr>, DecodeError> {
    if reg == Register::None {
        return Ok(None);
    }
    let (rax, r) = (Register::RAX as usize, reg as usize);
    if !(rax..rax + 16).contains(&r) {
        // 32-bit addressing (EAX-based), or a register no address uses.
        return Err(DecodeError::Unsupported);
    }
    Ok(Gpr::from_number(r - rax))
}

/// Decodes the memory operand of the first instruction of `bytes` (which
/// [`super::decode`] accepted as a device access).
pub fn memory_operand(bytes: &[u8]) -> Result<MemOperand, DecodeError> {
    let insn = super::decode_first(bytes)?;
    if !matches!(
        insn.segment_prefix(),
        Register::None | Register::DS | Register::ES | Register::SS | Register::CS
    ) {
        return Err(DecodeError::Unsupported);
    }
    let len = insn.len();
    if insn.is_ip_rel_memory_operand() {
        if insn.memory_base() == Register::EIP {
            return Err(DecodeError::Unsupported);
        }
        return Ok(MemOperand {
            base: None,
            index: None,
            displacement: insn.memory_displacement64().wrapping_sub(len as u64),
            rip_relative: true,
            len,
        });
    }
    let base = gpr64(insn.memory_base())?;
    let index = gpr64(insn.memory_index())?.map(|gpr| (gpr, insn.memory_index_scale() as u8));
    Ok(MemOperand {
        base,
        index,
        displacement: insn.memory_displacement64(),
        rip_relative: false,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Registers numbered 0..16 holding `0x1000 * (n + 1)`.
    struct Regs([u64; 16]);

    impl RegisterFile for Regs {
        fn gpr(&self, gpr: Gpr) -> u64 {
            self.0[gpr.number()]
        }
        fn set_gpr(&mut self, gpr: Gpr, value: u64) {
            self.0[gpr.number()] = value;
        }
        fn rflags(&self) -> u64 {
            0
        }
        fn set_rflags(&mut self, _: u64) {}
    }

    fn regs() -> Regs {
        Regs(core::array::from_fn(|n| 0x1000 * (n as u64 + 1)))
    }

    fn address(bytes: &[u8], rip: u64) -> u64 {
        let op = memory_operand(bytes).unwrap();
        assert_eq!(op.len, bytes.len(), "length of {bytes:02x?}");
        op.linear_address(&regs(), rip)
    }

    #[test]
    fn base_index_scale_and_displacement() {
        // mov eax, [rbx+rcx*4+0x10]: rbx = 0x4000, rcx = 0x2000.
        assert_eq!(
            address(&[0x8b, 0x44, 0x8b, 0x10], 0),
            0x4000 + 4 * 0x2000 + 0x10
        );
        // cmp dword [rax+rcx*4+0x40], 0 (virtio-drivers' queue_used).
        assert_eq!(
            address(&[0x83, 0x7c, 0x88, 0x40, 0x00], 0),
            0x1000 + 4 * 0x2000 + 0x40
        );
        // mov eax, [rbx-8]: a negative displacement.
        assert_eq!(address(&[0x8b, 0x43, 0xf8], 0), 0x4000 - 8);
        // mov r9d, [r12+r13*8]: REX.B and REX.X registers.
        assert_eq!(address(&[0x47, 0x8b, 0x0c, 0xec], 0), 0xd000 + 8 * 0xe000);
        // mov byte [rsp+0x20], 7: RSP as base (SIB without index).
        assert_eq!(address(&[0xc6, 0x44, 0x24, 0x20, 0x07], 0), 0x5000 + 0x20);
    }

    #[test]
    fn rip_relative_and_absolute_operands() {
        // mov [rip+0x100], edx at 0xffff_8000_0000_1000: from the next
        // instruction (6 bytes on).
        let rip = 0xffff_8000_0000_1000;
        assert_eq!(
            address(&[0x89, 0x15, 0x00, 0x01, 0x00, 0x00], rip),
            rip + 6 + 0x100
        );
        // movabs al, [0x1122334455667788]
        assert_eq!(
            address(&[0xa0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], 0),
            0x1122_3344_5566_7788
        );
    }

    #[test]
    fn segment_overrides_and_32_bit_addresses_are_refused() {
        // mov eax, fs:[rbx]
        assert_eq!(
            memory_operand(&[0x64, 0x8b, 0x03]),
            Err(DecodeError::Unsupported)
        );
        // mov eax, [ebx]
        assert_eq!(
            memory_operand(&[0x67, 0x8b, 0x03]),
            Err(DecodeError::Unsupported)
        );
        assert_eq!(memory_operand(&[0x8b]), Err(DecodeError::Truncated));
    }
}
