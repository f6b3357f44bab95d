//! Decoding the instruction that accessed device memory, for MMIO
//! emulation (`#VC`, `#VE` and the native emulated-MMIO mode).
//!
//! A handler that caught a device-register access copies the instruction
//! bytes at RIP (at most [`MAX_INSN_BYTES`]) and calls [`decode`]. What
//! comes back is an [`MmioInsn`]: the access ([`MmioOp::Read`] or
//! [`MmioOp::Write`]), its [`Width`], and the instruction length, by which
//! the handler advances RIP once it has performed the access. The handler
//! then moves values between the access and the interrupted registers with
//! [`MmioInsn::write_value`] and [`MmioInsn::complete_read`], over any
//! [`RegisterFile`] (the kernel's trap frame, a GHCB or `#VE` register
//! set), which apply the CPU's rules: an 8- or 16-bit destination keeps the
//! rest of its register, a 32-bit one zero-extends into the 64-bit
//! register, `MOVZX`/`MOVSX`/`MOVSXD` extend the loaded value.
//!
//! Accepted: `MOV` between memory and a general register (including the
//! `moffs` forms and the high-byte registers `AH`..`BH`), `MOV` of an
//! immediate to memory, `MOVZX`, `MOVSX` and `MOVSXD` loads — what compilers
//! emit for volatile loads and stores of `u8`..`u64` — and the loads LLVM
//! folds into arithmetic: `CMP`/`TEST` with memory on either side (as in
//! virtio-drivers' `queue_used`: `cmp dword [rax+rcx*4+0x40], 0`) and
//! `ADD`/`SUB`/`AND`/`OR`/`XOR reg, [mem]`, whose result and flags
//! ([`alu`]) the handler computes. Anything else is a [`DecodeError`],
//! never a guess: string instructions, read-modify-write instructions on
//! memory (`OR [mem], reg`, `XCHG`, `INC [mem]`…), `ADC`/`SBB`,
//! `LOCK`/`REP` prefixes, SSE/AVX moves, segment-register moves. The bytes are decoded by
//! `iced-x86` (decoder only, `no_std`), as Asterinas's `tdx-guest` does.

use iced_x86::{Code, Decoder, DecoderError, DecoderOptions, Instruction, MemorySize, Mnemonic};
use iced_x86::{OpKind, Register};

mod address;
mod alu;

pub use address::{MemOperand, memory_operand};

#[cfg(test)]
use alu::{AF, CF, PF, SF, ZF};
pub use alu::{AluOp, STATUS_FLAGS, alu};

/// The longest x86 instruction: what a handler copies from RIP.
pub const MAX_INSN_BYTES: usize = 15;

/// Width of a device-register access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// 1 byte.
    U8 = 1,
    /// 2 bytes.
    U16 = 2,
    /// 4 bytes.
    U32 = 4,
    /// 8 bytes.
    U64 = 8,
}

impl Width {
    /// Bytes accessed.
    pub fn bytes(self) -> usize {
        self as usize
    }

    /// `value` cut to this width.
    pub fn truncate(self, value: u64) -> u64 {
        match self {
            Self::U64 => value,
            w => value & ((1u64 << (8 * w.bytes())) - 1),
        }
    }

    /// `value` (of this width) sign-extended to 64 bits.
    pub fn sign_extend(self, value: u64) -> u64 {
        let shift = 64 - 8 * self.bytes() as u32;
        (((value << shift) as i64) >> shift) as u64
    }
}

/// A general-purpose register, by its hardware number (`RAX` = 0 …
/// `R15` = 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "register names speak for themselves")]
pub enum Gpr {
    Rax = 0,
    Rcx,
    Rdx,
    Rbx,
    Rsp,
    Rbp,
    Rsi,
    Rdi,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
}

impl Gpr {
    const ALL: [Self; 16] = [
        Self::Rax,
        Self::Rcx,
        Self::Rdx,
        Self::Rbx,
        Self::Rsp,
        Self::Rbp,
        Self::Rsi,
        Self::Rdi,
        Self::R8,
        Self::R9,
        Self::R10,
        Self::R11,
        Self::R12,
        Self::R13,
        Self::R14,
        Self::R15,
    ];

    /// The register with hardware number `n` (0..=15).
    pub fn from_number(n: usize) -> Option<Self> {
        Self::ALL.get(n).copied()
    }

    /// Its hardware number.
    pub fn number(self) -> usize {
        self as usize
    }
}

/// Which part of a general register an instruction names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegPart {
    /// Bits 7:0 (`AL`, `SIL`, `R8B`…).
    Low8,
    /// Bits 15:8 (`AH`, `CH`, `DH`, `BH`).
    High8,
    /// Bits 15:0 (`AX`…).
    Low16,
    /// Bits 31:0 (`EAX`…); writing it zeroes bits 63:32.
    Low32,
    /// All 64 bits (`RAX`…).
    Full,
}

impl RegPart {
    /// Bits the part holds.
    pub fn width(self) -> Width {
        match self {
            Self::Low8 | Self::High8 => Width::U8,
            Self::Low16 => Width::U16,
            Self::Low32 => Width::U32,
            Self::Full => Width::U64,
        }
    }
}

/// A register operand: which register, which part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegOperand {
    /// The 64-bit register.
    pub gpr: Gpr,
    /// The part of it the instruction names.
    pub part: RegPart,
}

impl RegOperand {
    /// The operand's value, given the whole register `full`.
    pub fn read(self, full: u64) -> u64 {
        match self.part {
            RegPart::High8 => (full >> 8) & 0xff,
            part => part.width().truncate(full),
        }
    }

    /// The whole register after the instruction writes `value` to the
    /// operand, given its value `full` before, as the CPU does: 8- and
    /// 16-bit writes keep the other bits, a 32-bit write zero-extends.
    pub fn write(self, full: u64, value: u64) -> u64 {
        match self.part {
            RegPart::Low8 => (full & !0xff) | (value & 0xff),
            RegPart::High8 => (full & !0xff00) | ((value & 0xff) << 8),
            RegPart::Low16 => (full & !0xffff) | (value & 0xffff),
            RegPart::Low32 => value & 0xffff_ffff,
            RegPart::Full => value,
        }
    }

    fn from_iced(reg: Register) -> Option<Self> {
        let r = reg as usize;
        let (al, ax, eax, rax) = (
            Register::AL as usize,
            Register::AX as usize,
            Register::EAX as usize,
            Register::RAX as usize,
        );
        let (n, part) = if (al..ax).contains(&r) {
            // AL CL DL BL AH CH DH BH SPL BPL SIL DIL R8L..R15L
            match r - al {
                i @ 0..=3 => (i, RegPart::Low8),
                i @ 4..=7 => (i - 4, RegPart::High8),
                i => (i - 4, RegPart::Low8),
            }
        } else if (ax..eax).contains(&r) {
            (r - ax, RegPart::Low16)
        } else if (eax..rax).contains(&r) {
            (r - eax, RegPart::Low32)
        } else if (rax..rax + 16).contains(&r) {
            (r - rax, RegPart::Full)
        } else {
            return None;
        };
        Some(Self {
            gpr: Gpr::from_number(n)?,
            part,
        })
    }
}

/// How a load's value reaches its (wider) destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extend {
    /// `MOV`: same width as the destination.
    None,
    /// `MOVZX`: zero-extended.
    Zero,
    /// `MOVSX`/`MOVSXD`: sign-extended.
    Sign,
}

/// What a store writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A register operand.
    Register(RegOperand),
    /// An immediate, already sign-extended as the instruction does
    /// (`MOV qword [m], imm32`), cut to the access width.
    Immediate(u64),
}

/// The device access an instruction makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmioOp {
    /// A load of `width` bytes into `dest`.
    Read {
        /// Bytes read from the device.
        width: Width,
        /// The destination register.
        dest: RegOperand,
        /// How the value is extended to the destination's width.
        extend: Extend,
    },
    /// A load of `width` bytes combined with an operation: `other op
    /// [mem]` (or `[mem] op other` when `memory_first`), the result going
    /// to `other`'s register unless the operation is `CMP`/`TEST`, the
    /// flags to RFLAGS.
    ReadAlu {
        /// Bytes read from the device.
        width: Width,
        /// The operation.
        op: AluOp,
        /// The other operand (a register, or for `CMP`/`TEST` an
        /// immediate).
        other: Source,
        /// The memory operand is the first (`cmp [mem], imm`).
        memory_first: bool,
    },
    /// A store of `width` bytes.
    Write {
        /// Bytes written to the device.
        width: Width,
        /// Where the value comes from.
        source: Source,
    },
}

/// A decoded device-register access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioInsn {
    /// The access.
    pub op: MmioOp,
    /// The instruction's length in bytes: RIP advances by it.
    pub len: usize,
}

/// Why an instruction cannot be emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the instruction does.
    Truncated,
    /// Not a valid x86-64 instruction.
    Invalid,
    /// A `LOCK`, `REP` or `REPNE` prefix.
    Prefix,
    /// A valid instruction that is not a plain load or store to memory of
    /// a general register or an immediate (string, read-modify-write,
    /// SSE/AVX, segment-register moves…).
    Unsupported,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "the instruction bytes end early",
            Self::Invalid => "not a valid instruction",
            Self::Prefix => "a LOCK or REP prefix",
            Self::Unsupported => "not a plain MOV/MOVZX/MOVSX between memory and a register",
        })
    }
}

/// The registers of the interrupted context, as the handler keeps them.
pub trait RegisterFile {
    /// The value of `gpr`.
    fn gpr(&self, gpr: Gpr) -> u64;
    /// Sets `gpr` to `value`.
    fn set_gpr(&mut self, gpr: Gpr, value: u64);
    /// RFLAGS.
    fn rflags(&self) -> u64;
    /// Sets RFLAGS.
    fn set_rflags(&mut self, value: u64);
}

impl MmioInsn {
    /// Bytes the device access touches.
    pub fn width(&self) -> Width {
        match self.op {
            MmioOp::Read { width, .. }
            | MmioOp::ReadAlu { width, .. }
            | MmioOp::Write { width, .. } => width,
        }
    }

    /// The value a store writes (cut to its width), read from `regs`;
    /// `None` for a load.
    pub fn write_value(&self, regs: &impl RegisterFile) -> Option<u64> {
        match self.op {
            MmioOp::Read { .. } | MmioOp::ReadAlu { .. } => None,
            MmioOp::Write { width, source } => Some(width.truncate(match source {
                Source::Register(r) => r.read(regs.gpr(r.gpr)),
                Source::Immediate(v) => v,
            })),
        }
    }

    /// Puts `value`, which a load read from the device, into its
    /// destination register in `regs` (extended and merged as the CPU
    /// does), or for an operation computes it and sets the result and
    /// the flags. Does nothing for a store.
    pub fn complete_read(&self, regs: &mut impl RegisterFile, value: u64) {
        if let MmioOp::ReadAlu {
            width,
            op,
            other,
            memory_first,
        } = self.op
        {
            let other_value = match other {
                Source::Register(r) => r.read(regs.gpr(r.gpr)),
                Source::Immediate(v) => v,
            };
            let (a, b) = if memory_first {
                (value, other_value)
            } else {
                (other_value, value)
            };
            let (result, flags) = alu(op, width, a, b);
            if let (Source::Register(dest), false) = (other, matches!(op, AluOp::Cmp | AluOp::Test))
            {
                let old = regs.gpr(dest.gpr);
                regs.set_gpr(dest.gpr, dest.write(old, result));
            }
            regs.set_rflags((regs.rflags() & !STATUS_FLAGS) | flags);
        }
        if let MmioOp::Read {
            width,
            dest,
            extend,
        } = self.op
        {
            let value = width.truncate(value);
            let value = match extend {
                Extend::Sign => width.sign_extend(value),
                Extend::None | Extend::Zero => value,
            };
            let old = regs.gpr(dest.gpr);
            regs.set_gpr(dest.gpr, dest.write(old, value));
        }
    }
}

/// Decodes the first instruction of `bytes` (64-bit mode) as a device
/// access. `bytes` may be longer than the instruction.
pub fn decode(bytes: &[u8]) -> Result<MmioInsn, DecodeError> {
    let insn = decode_first(bytes)?;
    if insn.code() == Code::INVALID {
        return Err(DecodeError::Invalid);
    }
    if insn.has_lock_prefix() || insn.has_rep_prefix() || insn.has_repne_prefix() {
        return Err(DecodeError::Prefix);
    }
    let op = match insn.mnemonic() {
        Mnemonic::Mov => mov(&insn)?,
        Mnemonic::Movzx => load(&insn, Extend::Zero)?,
        Mnemonic::Movsx | Mnemonic::Movsxd => load(&insn, Extend::Sign)?,
        Mnemonic::Add => read_alu(&insn, AluOp::Add)?,
        Mnemonic::Sub => read_alu(&insn, AluOp::Sub)?,
        Mnemonic::And => read_alu(&insn, AluOp::And)?,
        Mnemonic::Or => read_alu(&insn, AluOp::Or)?,
        Mnemonic::Xor => read_alu(&insn, AluOp::Xor)?,
        Mnemonic::Cmp => read_alu(&insn, AluOp::Cmp)?,
        Mnemonic::Test => read_alu(&insn, AluOp::Test)?,
        _ => return Err(DecodeError::Unsupported),
    };
    Ok(MmioInsn {
        op,
        len: insn.len(),
    })
}

/// The first instruction of `bytes` (64-bit mode, at IP 0: a
/// `RIP`-relative operand's `memory_displacement64` is then the
/// instruction's length plus its displacement).
fn decode_first(bytes: &[u8]) -> Result<Instruction, DecodeError> {
    let bytes = bytes.get(..MAX_INSN_BYTES).unwrap_or(bytes);
    let mut decoder = Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE);
    let insn = decoder.decode();
    match decoder.last_error() {
        DecoderError::None => Ok(insn),
        DecoderError::NoMoreBytes => Err(DecodeError::Truncated),
        _ => Err(DecodeError::Invalid),
    }
}

/// The width of the instruction's memory operand, if it is a plain
/// integer of 1, 2, 4 or 8 bytes.
fn memory_width(insn: &Instruction) -> Result<Width, DecodeError> {
    match insn.memory_size() {
        MemorySize::UInt8 | MemorySize::Int8 => Ok(Width::U8),
        MemorySize::UInt16 | MemorySize::Int16 => Ok(Width::U16),
        MemorySize::UInt32 | MemorySize::Int32 => Ok(Width::U32),
        MemorySize::UInt64 | MemorySize::Int64 => Ok(Width::U64),
        _ => Err(DecodeError::Unsupported),
    }
}

fn register(insn: &Instruction, operand: u32) -> Result<RegOperand, DecodeError> {
    RegOperand::from_iced(insn.op_register(operand)).ok_or(DecodeError::Unsupported)
}

fn mov(insn: &Instruction) -> Result<MmioOp, DecodeError> {
    if insn.op_count() != 2 {
        return Err(DecodeError::Unsupported);
    }
    match (insn.op0_kind(), insn.op1_kind()) {
        (OpKind::Register, OpKind::Memory) => load(insn, Extend::None),
        (OpKind::Memory, OpKind::Register) => {
            let width = memory_width(insn)?;
            let source = register(insn, 1)?;
            if source.part.width() != width {
                return Err(DecodeError::Unsupported);
            }
            Ok(MmioOp::Write {
                width,
                source: Source::Register(source),
            })
        }
        (OpKind::Memory, OpKind::Immediate8 | OpKind::Immediate16)
        | (OpKind::Memory, OpKind::Immediate32 | OpKind::Immediate32to64) => {
            let width = memory_width(insn)?;
            let imm = insn
                .try_immediate(1)
                .map_err(|_| DecodeError::Unsupported)?;
            Ok(MmioOp::Write {
                width,
                source: Source::Immediate(width.truncate(imm)),
            })
        }
        _ => Err(DecodeError::Unsupported),
    }
}

/// `reg op [mem]`, or for `CMP`/`TEST` also `[mem] op reg/imm`; an
/// operation that writes memory is refused.
fn read_alu(insn: &Instruction, op: AluOp) -> Result<MmioOp, DecodeError> {
    if insn.op_count() != 2 {
        return Err(DecodeError::Unsupported);
    }
    let compare = matches!(op, AluOp::Cmp | AluOp::Test);
    let width = memory_width(insn)?;
    let (memory_first, other) = match (insn.op0_kind(), insn.op1_kind()) {
        (OpKind::Register, OpKind::Memory) => (false, Source::Register(register(insn, 0)?)),
        (OpKind::Memory, OpKind::Register) if compare => {
            (true, Source::Register(register(insn, 1)?))
        }
        (OpKind::Memory, _) if compare => {
            let imm = insn
                .try_immediate(1)
                .map_err(|_| DecodeError::Unsupported)?;
            (true, Source::Immediate(width.truncate(imm)))
        }
        _ => return Err(DecodeError::Unsupported),
    };
    if let Source::Register(r) = other
        && r.part.width() != width
    {
        return Err(DecodeError::Unsupported);
    }
    Ok(MmioOp::ReadAlu {
        width,
        op,
        other,
        memory_first,
    })
}

fn load(insn: &Instruction, extend: Extend) -> Result<MmioOp, DecodeError> {
    if insn.op_count() != 2 || insn.op0_kind() != OpKind::Register {
        return Err(DecodeError::Unsupported);
    }
    if insn.op1_kind() != OpKind::Memory {
        return Err(DecodeError::Unsupported);
    }
    let width = memory_width(insn)?;
    let dest = register(insn, 0)?;
    let fits = match extend {
        Extend::None => dest.part.width() == width,
        // MOVSXD r32, m32 is legal (a plain 32-bit load).
        Extend::Zero | Extend::Sign => dest.part.width().bytes() >= width.bytes(),
    };
    if !fits {
        return Err(DecodeError::Unsupported);
    }
    Ok(MmioOp::Read {
        width,
        dest,
        extend,
    })
}

#[cfg(test)]
#[path = "insn_tests.rs"]
mod tests;
