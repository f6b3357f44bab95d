//! The arithmetic of the loads LLVM folds into `CMP`/`TEST`/`ADD`/`SUB`/
//! `AND`/`OR`/`XOR`: the result and the status flags the CPU would set
//! (Intel SDM vol. 1, 3.4.3.1), checked against the host CPU in the tests.

use super::Width;

/// An arithmetic or logic operation that reads its memory operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AluOp {
    /// `ADD reg, [mem]`.
    Add,
    /// `SUB reg, [mem]`.
    Sub,
    /// `AND reg, [mem]`.
    And,
    /// `OR reg, [mem]`.
    Or,
    /// `XOR reg, [mem]`.
    Xor,
    /// `CMP` (a subtraction for the flags only).
    Cmp,
    /// `TEST` (an AND for the flags only).
    Test,
}

/// The status flags an [`AluOp`] sets: CF, PF, AF, ZF, SF, OF.
pub const STATUS_FLAGS: u64 = 0x8d5;
pub(crate) const CF: u64 = 1 << 0;
pub(crate) const PF: u64 = 1 << 2;
pub(crate) const AF: u64 = 1 << 4;
pub(crate) const ZF: u64 = 1 << 6;
pub(crate) const SF: u64 = 1 << 7;
pub(crate) const OF: u64 = 1 << 11;

/// `a op b` at `width`: the result (cut to the width) and the status
/// flags ([`STATUS_FLAGS`] bits) as the CPU sets them. For the logic
/// operations CF and OF are cleared and AF, which the CPU leaves
/// undefined, is cleared too.
pub fn alu(op: AluOp, width: Width, a: u64, b: u64) -> (u64, u64) {
    let (a, b) = (width.truncate(a), width.truncate(b));
    let sign = 1u64 << (8 * width.bytes() - 1);
    let (r, mut flags) = match op {
        AluOp::Add => {
            let r = width.truncate(a.wrapping_add(b));
            let mut f = 0;
            if r < a {
                f |= CF;
            }
            if !(a ^ b) & (a ^ r) & sign != 0 {
                f |= OF;
            }
            if (a ^ b ^ r) & 0x10 != 0 {
                f |= AF;
            }
            (r, f)
        }
        AluOp::Sub | AluOp::Cmp => {
            let r = width.truncate(a.wrapping_sub(b));
            let mut f = 0;
            if a < b {
                f |= CF;
            }
            if (a ^ b) & (a ^ r) & sign != 0 {
                f |= OF;
            }
            if (a ^ b ^ r) & 0x10 != 0 {
                f |= AF;
            }
            (r, f)
        }
        AluOp::And | AluOp::Test => (a & b, 0),
        AluOp::Or => (a | b, 0),
        AluOp::Xor => (a ^ b, 0),
    };
    if r == 0 {
        flags |= ZF;
    }
    if r & sign != 0 {
        flags |= SF;
    }
    if (r as u8).count_ones().is_multiple_of(2) {
        flags |= PF;
    }
    (r, flags)
}
