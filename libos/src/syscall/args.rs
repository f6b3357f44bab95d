//! [`SyscallArgs`]: the six argument registers of a syscall (`rdi`, `rsi`,
//! `rdx`, `r10`, `r8`, `r9`) with typed accessors that interpret them as
//! Linux does (an `int` argument is the low 32 bits, sign-extended).

use crate::user::{Pod, UserPtr};

/// A syscall's number and raw arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallArgs {
    /// The syscall number (`rax` at entry).
    pub nr: usize,
    /// `rdi, rsi, rdx, r10, r8, r9`.
    pub raw: [u64; 6],
}

impl SyscallArgs {
    /// Arguments for syscall `nr`.
    pub const fn new(nr: usize, raw: [u64; 6]) -> Self {
        Self { nr, raw }
    }

    /// Argument `i` as a 64-bit value.
    pub const fn u64(&self, i: usize) -> u64 {
        self.raw[i]
    }

    /// Argument `i` as a C `int` (low 32 bits, signed): fds, flags, modes.
    pub const fn i32(&self, i: usize) -> i32 {
        self.raw[i] as u32 as i32
    }

    /// Argument `i` as a C `unsigned int`.
    pub const fn u32(&self, i: usize) -> u32 {
        self.raw[i] as u32
    }

    /// Argument `i` as `size_t`.
    pub const fn usize(&self, i: usize) -> usize {
        self.raw[i] as usize
    }

    /// Argument `i` as `off_t`/`ssize_t`.
    pub const fn i64(&self, i: usize) -> i64 {
        self.raw[i] as i64
    }

    /// Argument `i` as a typed user pointer.
    pub const fn ptr<T: Pod>(&self, i: usize) -> UserPtr<T> {
        UserPtr::new(self.raw[i])
    }
}
