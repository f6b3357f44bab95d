//! Host tests of the MMIO instruction decoder: the encodings rustc emits
//! for volatile accesses in the kernel (taken from `objdump -d` of the
//! release kernel: virtio-mmio transport, local APIC EOI), the register
//! rules of the CPU, and refusals.

use super::*;
use proptest::prelude::*;

/// A register file for tests: 16 registers, hardware order, and RFLAGS.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Regs([u64; 16], u64);

impl RegisterFile for Regs {
    fn gpr(&self, gpr: Gpr) -> u64 {
        self.0[gpr.number()]
    }
    fn set_gpr(&mut self, gpr: Gpr, value: u64) {
        self.0[gpr.number()] = value;
    }
    fn rflags(&self) -> u64 {
        self.1
    }
    fn set_rflags(&mut self, value: u64) {
        self.1 = value;
    }
}

fn reg(gpr: Gpr, part: RegPart) -> RegOperand {
    RegOperand { gpr, part }
}

fn read(width: Width, dest: RegOperand, extend: Extend, len: usize) -> MmioInsn {
    MmioInsn {
        op: MmioOp::Read {
            width,
            dest,
            extend,
        },
        len,
    }
}

fn write(width: Width, source: Source, len: usize) -> MmioInsn {
    MmioInsn {
        op: MmioOp::Write { width, source },
        len,
    }
}

#[test]
fn insn_rustc_volatile_u32_accesses() {
    use Gpr::*;
    use RegPart::*;
    // virtio-mmio `ack_interrupt`: mov eax, [rcx+0x60]; mov [rcx+0x64], eax
    assert_eq!(
        decode(&[0x8b, 0x41, 0x60]),
        Ok(read(Width::U32, reg(Rax, Low32), Extend::None, 3))
    );
    assert_eq!(
        decode(&[0x89, 0x41, 0x64]),
        Ok(write(Width::U32, Source::Register(reg(Rax, Low32)), 3))
    );
    // `read_config_generation`: mov eax, [rax+0xfc]
    assert_eq!(
        decode(&[0x8b, 0x80, 0xfc, 0, 0, 0]),
        Ok(read(Width::U32, reg(Rax, Low32), Extend::None, 6))
    );
    // `queue_unset`: mov dword [rax+0x44], 0 and mov dword [rax+rsi], 0
    assert_eq!(
        decode(&[0xc7, 0x40, 0x44, 0, 0, 0, 0]),
        Ok(write(Width::U32, Source::Immediate(0), 7))
    );
    assert_eq!(
        decode(&[0xc7, 0x04, 0x30, 0, 0, 0, 0]),
        Ok(write(Width::U32, Source::Immediate(0), 7))
    );
    // `read_device_features`: mov dword [rax+0x14], 1
    assert_eq!(
        decode(&[0xc7, 0x40, 0x14, 1, 0, 0, 0]),
        Ok(write(Width::U32, Source::Immediate(1), 7))
    );
    // The local APIC EOI: mov dword [rax+0xb0], 0
    assert_eq!(
        decode(&[0xc7, 0x80, 0xb0, 0, 0, 0, 0, 0, 0, 0]),
        Ok(write(Width::U32, Source::Immediate(0), 10))
    );
    // `set_status`: mov [rax+0x70], esi
    assert_eq!(
        decode(&[0x89, 0x70, 0x70]),
        Ok(write(Width::U32, Source::Register(reg(Rsi, Low32)), 3))
    );
}

#[test]
fn insn_u8_u16_u64_accesses() {
    use Gpr::*;
    use RegPart::*;
    // Config-space bytes: movzx ecx, byte [r13+2] (REX.B), mov al, [rdi]
    assert_eq!(
        decode(&[0x41, 0x0f, 0xb6, 0x4d, 0x02]),
        Ok(read(Width::U8, reg(Rcx, Low32), Extend::Zero, 5))
    );
    assert_eq!(
        decode(&[0x8a, 0x07]),
        Ok(read(Width::U8, reg(Rax, Low8), Extend::None, 2))
    );
    assert_eq!(
        decode(&[0x88, 0x07]),
        Ok(write(Width::U8, Source::Register(reg(Rax, Low8)), 2))
    );
    assert_eq!(
        decode(&[0xc6, 0x07, 0x85]),
        Ok(write(Width::U8, Source::Immediate(0x85), 3))
    );
    // 0x66: 16-bit operand size.
    assert_eq!(
        decode(&[0x66, 0x8b, 0x07]),
        Ok(read(Width::U16, reg(Rax, Low16), Extend::None, 3))
    );
    assert_eq!(
        decode(&[0x0f, 0xb7, 0x07]),
        Ok(read(Width::U16, reg(Rax, Low32), Extend::Zero, 3))
    );
    assert_eq!(
        decode(&[0x66, 0x89, 0x17]),
        Ok(write(Width::U16, Source::Register(reg(Rdx, Low16)), 3))
    );
    assert_eq!(
        decode(&[0x66, 0xc7, 0x07, 0x34, 0x12]),
        Ok(write(Width::U16, Source::Immediate(0x1234), 5))
    );
    // REX.W: 64-bit.
    assert_eq!(
        decode(&[0x48, 0x8b, 0x07]),
        Ok(read(Width::U64, reg(Rax, Full), Extend::None, 3))
    );
    assert_eq!(
        decode(&[0x48, 0x89, 0x07]),
        Ok(write(Width::U64, Source::Register(reg(Rax, Full)), 3))
    );
    // mov qword [rdi], -1: the imm32 is sign-extended to 64 bits.
    assert_eq!(
        decode(&[0x48, 0xc7, 0x07, 0xff, 0xff, 0xff, 0xff]),
        Ok(write(Width::U64, Source::Immediate(u64::MAX), 7))
    );
    // mov eax, [moffs64]
    assert_eq!(
        decode(&[0xa1, 0x20, 0, 0xe0, 0xfe, 0, 0, 0, 0]),
        Ok(read(Width::U32, reg(Rax, Low32), Extend::None, 9))
    );
}

#[test]
fn insn_rex_registers_and_high_bytes() {
    use Gpr::*;
    use RegPart::*;
    // mov r9d, [r15+0x20]; mov [rdi], r8; mov [rdi], r8b; mov r15w, [rax]
    assert_eq!(
        decode(&[0x45, 0x8b, 0x4f, 0x20]),
        Ok(read(Width::U32, reg(R9, Low32), Extend::None, 4))
    );
    assert_eq!(
        decode(&[0x4c, 0x89, 0x07]),
        Ok(write(Width::U64, Source::Register(reg(R8, Full)), 3))
    );
    assert_eq!(
        decode(&[0x44, 0x88, 0x07]),
        Ok(write(Width::U8, Source::Register(reg(R8, Low8)), 3))
    );
    assert_eq!(
        decode(&[0x66, 0x44, 0x8b, 0x38]),
        Ok(read(Width::U16, reg(R15, Low16), Extend::None, 4))
    );
    // Without REX, register 6 of a byte operation is DH; with any REX, SIL.
    assert_eq!(
        decode(&[0x88, 0x37]),
        Ok(write(Width::U8, Source::Register(reg(Rdx, High8)), 2))
    );
    assert_eq!(
        decode(&[0x40, 0x88, 0x37]),
        Ok(write(Width::U8, Source::Register(reg(Rsi, Low8)), 3))
    );
    assert_eq!(
        decode(&[0x8a, 0x27]),
        Ok(read(Width::U8, reg(Rax, High8), Extend::None, 2))
    );
    // movsx rax, byte [rdi]; movsxd rax, dword [rdi]; movsx r10w, byte [rdi]
    assert_eq!(
        decode(&[0x48, 0x0f, 0xbe, 0x07]),
        Ok(read(Width::U8, reg(Rax, Full), Extend::Sign, 4))
    );
    assert_eq!(
        decode(&[0x48, 0x63, 0x07]),
        Ok(read(Width::U32, reg(Rax, Full), Extend::Sign, 3))
    );
    assert_eq!(
        decode(&[0x66, 0x44, 0x0f, 0xbe, 0x17]),
        Ok(read(Width::U8, reg(R10, Low16), Extend::Sign, 5))
    );
}

#[test]
fn insn_length_ignores_following_bytes() {
    let mut bytes = [0x90u8; 20];
    bytes[..3].copy_from_slice(&[0x8b, 0x41, 0x60]);
    assert_eq!(decode(&bytes).map(|i| i.len), Ok(3));
}

#[test]
fn insn_register_rules_of_loads() {
    let old = 0x1111_2222_3333_4444u64;
    let mut regs = Regs::default();
    let mut load = |bytes: &[u8], value: u64| {
        regs.0 = [old; 16];
        decode(bytes).unwrap().complete_read(&mut regs, value);
        regs.0[0]
    };
    // 32-bit destination: zero-extends into RAX.
    assert_eq!(load(&[0x8b, 0x07], 0xdead_beef), 0xdead_beef);
    // 8- and 16-bit destinations keep the rest.
    assert_eq!(load(&[0x8a, 0x07], 0xab), 0x1111_2222_3333_44ab);
    assert_eq!(load(&[0x8a, 0x27], 0xab), 0x1111_2222_3333_ab44);
    assert_eq!(load(&[0x66, 0x8b, 0x07], 0xbeef), 0x1111_2222_3333_beef);
    assert_eq!(load(&[0x48, 0x8b, 0x07], u64::MAX), u64::MAX);
    // movzx eax, byte: zero-extended, upper half cleared.
    assert_eq!(load(&[0x0f, 0xb6, 0x07], 0x80), 0x80);
    // movsx rax, byte / movsx eax, byte / movsxd rax, dword.
    assert_eq!(load(&[0x48, 0x0f, 0xbe, 0x07], 0x80), 0xffff_ffff_ffff_ff80);
    assert_eq!(load(&[0x0f, 0xbe, 0x07], 0x80), 0xffff_ff80);
    assert_eq!(
        load(&[0x48, 0x63, 0x07], 0x8000_0000),
        0xffff_ffff_8000_0000
    );
    // movsx ax, byte: 16-bit destination, the rest kept.
    assert_eq!(load(&[0x66, 0x0f, 0xbe, 0x07], 0xff), 0x1111_2222_3333_ffff);
    // A device value wider than the access is cut to it.
    assert_eq!(load(&[0x8a, 0x07], 0x1234), 0x1111_2222_3333_4434);
}

#[test]
fn insn_store_values() {
    let mut regs = Regs::default();
    regs.0[Gpr::Rax.number()] = 0x1122_3344_5566_7788;
    regs.0[Gpr::Rdx.number()] = 0xaabb;
    regs.0[Gpr::R8.number()] = 0x0102_0304_0506_0708;
    let value = |bytes: &[u8]| decode(bytes).unwrap().write_value(&regs);
    assert_eq!(value(&[0x89, 0x07]), Some(0x5566_7788));
    assert_eq!(value(&[0x88, 0x07]), Some(0x88));
    assert_eq!(value(&[0x88, 0x37]), Some(0xaa)); // DH
    assert_eq!(value(&[0x66, 0x89, 0x07]), Some(0x7788));
    assert_eq!(value(&[0x4c, 0x89, 0x07]), Some(0x0102_0304_0506_0708));
    assert_eq!(value(&[0xc6, 0x07, 0xfe]), Some(0xfe));
    assert_eq!(value(&[0x8b, 0x07]), None);
    // A store leaves the registers alone.
    let before = regs.clone();
    decode(&[0x89, 0x07]).unwrap().complete_read(&mut regs, 5);
    assert_eq!(regs, before);
}

#[test]
fn insn_refusals() {
    use DecodeError::*;
    let cases: &[(&[u8], DecodeError)] = &[
        (&[], Truncated),
        (&[0x8b], Truncated),
        (&[0x48], Truncated),
        (&[0xc7, 0x40, 0x44, 0, 0], Truncated),
        (&[0x8b, 0x80, 0xfc], Truncated),
        (&[0xff, 0xff], Invalid),
        (&[0x09, 0x07], Unsupported), // or [rdi], eax (read-modify-write)
        (&[0x83, 0x0f, 0x01], Unsupported), // or dword [rdi], 1
        (&[0xf0, 0x09, 0x07], Prefix), // lock or [rdi], eax
        (&[0x87, 0x07], Unsupported), // xchg [rdi], eax
        (&[0xa5], Unsupported),       // movsd (string)
        (&[0xf3, 0xa5], Prefix),      // rep movsd
        (&[0xf3, 0xab], Prefix),      // rep stosd
        (&[0xac], Unsupported),       // lodsb
        (&[0x0f, 0x28, 0x07], Unsupported), // movaps xmm0, [rdi]
        (&[0xc5, 0xf9, 0x6f, 0x07], Unsupported), // vmovdqa xmm0, [rdi]
        (&[0x8c, 0x1f], Unsupported), // mov [rdi], ds
        (&[0x8e, 0x1f], Unsupported), // mov ds, [rdi]
        (&[0x89, 0xc0], Unsupported), // mov eax, eax (no memory)
        (&[0xb8, 1, 0, 0, 0], Unsupported), // mov eax, 1
        (&[0x0f, 0x0b], Unsupported), // ud2
        (&[0x13, 0x07], Unsupported), // adc eax, [rdi]
        (&[0x01, 0x07], Unsupported), // add [rdi], eax
        (&[0x83, 0x2f, 0x01], Unsupported), // sub dword [rdi], 1
        (&[0xff, 0x07], Unsupported), // inc dword [rdi]
        (&[0xff, 0x37], Unsupported), // push qword [rdi]
    ];
    for (bytes, want) in cases {
        assert_eq!(decode(bytes), Err(*want), "{bytes:02x?}");
    }
}

fn alu_insn(width: Width, op: AluOp, other: Source, memory_first: bool, len: usize) -> MmioInsn {
    MmioInsn {
        op: MmioOp::ReadAlu {
            width,
            op,
            other,
            memory_first,
        },
        len,
    }
}

#[test]
fn insn_loads_folded_into_compare_and_arithmetic() {
    use Gpr::*;
    use RegPart::*;
    // virtio-drivers `queue_used` (release kernel): cmp dword [rax+rcx*4+0x40], 0
    assert_eq!(
        decode(&[0x83, 0x7c, 0x88, 0x40, 0x00]),
        Ok(alu_insn(
            Width::U32,
            AluOp::Cmp,
            Source::Immediate(0),
            true,
            5
        ))
    );
    // cmp eax, [rdi]; test [rdi], cl; test dword [rdi], 0x80000000
    assert_eq!(
        decode(&[0x3b, 0x07]),
        Ok(alu_insn(
            Width::U32,
            AluOp::Cmp,
            Source::Register(reg(Rax, Low32)),
            false,
            2
        ))
    );
    assert_eq!(
        decode(&[0x84, 0x0f]),
        Ok(alu_insn(
            Width::U8,
            AluOp::Test,
            Source::Register(reg(Rcx, Low8)),
            true,
            2
        ))
    );
    assert_eq!(
        decode(&[0xf7, 0x07, 0, 0, 0, 0x80]),
        Ok(alu_insn(
            Width::U32,
            AluOp::Test,
            Source::Immediate(0x8000_0000),
            true,
            6
        ))
    );
    // cmp qword [rdi], -1 (imm8 sign-extended)
    assert_eq!(
        decode(&[0x48, 0x83, 0x3f, 0xff]),
        Ok(alu_insn(
            Width::U64,
            AluOp::Cmp,
            Source::Immediate(u64::MAX),
            true,
            4
        ))
    );
    // and ecx, [rsi+0x20]; or r9, [rdi]
    assert_eq!(
        decode(&[0x23, 0x4e, 0x20]),
        Ok(alu_insn(
            Width::U32,
            AluOp::And,
            Source::Register(reg(Rcx, Low32)),
            false,
            3
        ))
    );
    assert_eq!(
        decode(&[0x4c, 0x0b, 0x0f]),
        Ok(alu_insn(
            Width::U64,
            AluOp::Or,
            Source::Register(reg(R9, Full)),
            false,
            3
        ))
    );
    // The result goes to the register (32-bit: zero-extended), the flags
    // to RFLAGS; CMP leaves the register alone.
    let mut regs = Regs::default();
    regs.0[Rcx.number()] = 0xffff_ffff_0000_00f0;
    regs.1 = 0x202 | STATUS_FLAGS;
    decode(&[0x23, 0x4e, 0x20])
        .unwrap()
        .complete_read(&mut regs, 0x0f);
    assert_eq!(regs.0[Rcx.number()], 0);
    assert_eq!(regs.1, 0x202 | ZF | PF);
    regs.0[Rax.number()] = 5;
    decode(&[0x3b, 0x07]).unwrap().complete_read(&mut regs, 7);
    assert_eq!(regs.0[Rax.number()], 5);
    assert_eq!(regs.1 & (CF | ZF | SF), CF | SF);
}

/// Runs `op a, b` on this CPU at `width`: the result and the status flags.
#[allow(unsafe_code, reason = "the host CPU as the reference for the flags")]
fn cpu_alu(op: AluOp, width: Width, a: u64, b: u64) -> (u64, u64) {
    use core::arch::asm;
    macro_rules! run {
        ($insn:literal, $ty:ty, $m:literal) => {{
            let mut r: u64 = a;
            let flags: u64;
            // SAFETY: register-only arithmetic and a push/pop of RFLAGS on
            // this function's stack.
            unsafe {
                asm!(
                    concat!($insn, " {r:", $m, "}, {b:", $m, "}"),
                    "pushfq",
                    "pop {f}",
                    r = inout(reg) r,
                    b = in(reg) b,
                    f = out(reg) flags,
                );
            }
            (r as $ty as u64, flags & STATUS_FLAGS)
        }};
    }
    macro_rules! by_width {
        ($insn:literal) => {
            match width {
                Width::U8 => run!($insn, u8, "l"),
                Width::U16 => run!($insn, u16, "x"),
                Width::U32 => run!($insn, u32, "e"),
                Width::U64 => run!($insn, u64, "r"),
            }
        };
    }
    match op {
        AluOp::Add => by_width!("add"),
        AluOp::Sub => by_width!("sub"),
        AluOp::Cmp => by_width!("cmp"),
        AluOp::And => by_width!("and"),
        AluOp::Test => by_width!("test"),
        AluOp::Or => by_width!("or"),
        AluOp::Xor => by_width!("xor"),
    }
}

proptest! {
    /// The results and flags of [`alu`] are the host CPU's (AF left out
    /// for the logic operations, where the CPU leaves it undefined).
    #[test]
    fn insn_alu_flags_match_the_cpu(
        a in any::<u64>(),
        b in any::<u64>(),
        w in 0usize..4,
        o in 0usize..7,
        small in any::<bool>(),
    ) {
        let width = [Width::U8, Width::U16, Width::U32, Width::U64][w];
        let ops = [AluOp::Add, AluOp::Sub, AluOp::And, AluOp::Or, AluOp::Xor, AluOp::Cmp, AluOp::Test];
        let op = ops[o];
        // Small values reach the carry, overflow and zero edges often.
        let (a, b) = if small { (a % 3, b % 3) } else { (a, b) };
        let (want_r, want_f) = cpu_alu(op, width, a, b);
        let (r, f) = alu(op, width, a, b);
        if !matches!(op, AluOp::Cmp | AluOp::Test) {
            prop_assert_eq!(r, width.truncate(want_r));
        }
        let logic = !matches!(op, AluOp::Add | AluOp::Sub | AluOp::Cmp);
        let mask = if logic { STATUS_FLAGS & !AF } else { STATUS_FLAGS };
        prop_assert_eq!(f & mask, want_f & mask, "{:?} {:?} {:#x} {:#x}", op, width, a, b);
    }

    /// Whatever the bytes, the decoder answers without panicking, and an
    /// accepted instruction fits in the bytes and in 15.
    #[test]
    fn insn_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
        if let Ok(insn) = decode(&bytes) {
            prop_assert!(insn.len >= 1 && insn.len <= bytes.len().min(MAX_INSN_BYTES));
            let mut regs = Regs::default();
            let _ = insn.write_value(&regs);
            insn.complete_read(&mut regs, u64::MAX);
        }
    }

    /// Every accepted instruction stays accepted with the same meaning
    /// when followed by other bytes.
    #[test]
    fn insn_prefix_of_longer_buffer(bytes in proptest::collection::vec(any::<u8>(), 1..15),
                                    tail in proptest::collection::vec(any::<u8>(), 0..8)) {
        if let Ok(insn) = decode(&bytes) {
            let mut longer = bytes[..insn.len].to_vec();
            longer.extend_from_slice(&tail);
            prop_assert_eq!(decode(&longer), Ok(insn));
        }
    }
}
