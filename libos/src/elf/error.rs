//! [`ElfError`]: every way an executable can be rejected, with a message
//! naming the problem.

use core::fmt;

use super::header::machine_name;
use crate::error::{Errno, Error};

/// Why an ELF image cannot be loaded. `index` is a program header index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    /// The first four bytes are not `\x7fELF`.
    NotElf,
    /// The file ends inside the named structure.
    Truncated {
        /// What is cut short.
        what: &'static str,
    },
    /// `EI_CLASS` is not ELFCLASS64 (the value found).
    WrongClass(u8),
    /// `EI_DATA` is not little-endian (the value found).
    WrongEndianness(u8),
    /// `EI_VERSION` or `e_version` is not 1.
    BadVersion,
    /// `e_type` is not `ET_EXEC` or `ET_DYN` (the value found).
    NotExecutable(u16),
    /// `e_machine` is not `EM_X86_64` (the value found).
    WrongMachine(u16),
    /// `e_phentsize` is not 56 (the value found).
    BadPhentsize(u16),
    /// `e_phnum` is zero or the table is larger than 64 KiB.
    BadPhnum(u16),
    /// There is no `PT_LOAD` segment.
    NoLoadSegment,
    /// A segment's `p_filesz` exceeds its `p_memsz`.
    FileszExceedsMemsz {
        /// Program header index.
        index: usize,
    },
    /// A segment's file range lies beyond the end of the file.
    SegmentBeyondFile {
        /// Program header index.
        index: usize,
    },
    /// `p_vaddr` and `p_offset` differ modulo the page size, or `p_align`
    /// is not a power of two.
    UnalignedSegment {
        /// Program header index.
        index: usize,
    },
    /// A `PT_LOAD` segment overlaps or precedes the previous one.
    OverlappingSegments {
        /// Program header index.
        index: usize,
    },
    /// Address arithmetic overflowed or left the user half.
    AddressOverflow {
        /// Program header index.
        index: usize,
    },
    /// More than one `PT_INTERP`.
    MultipleInterpreters,
    /// The `PT_INTERP` path is empty, not NUL-terminated or contains NUL.
    BadInterpreterPath,
    /// A load bias was given for an `ET_EXEC` image, or is not page-aligned.
    BadLoadBias,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotElf => f.write_str("not an ELF file (bad magic)"),
            Self::Truncated { what } => write!(f, "truncated ELF: {what} extends past end of file"),
            Self::WrongClass(1) => f.write_str("ELF32 file, expected ELF64"),
            Self::WrongClass(c) => write!(f, "bad ELF class {c}, expected ELF64"),
            Self::WrongEndianness(_) => f.write_str("big-endian ELF, expected little-endian"),
            Self::BadVersion => f.write_str("bad ELF version, expected 1"),
            Self::NotExecutable(1) => f.write_str("ELF relocatable object, not an executable"),
            Self::NotExecutable(4) => f.write_str("ELF core dump, not an executable"),
            Self::NotExecutable(t) => write!(f, "ELF type {t} is not ET_EXEC or ET_DYN"),
            Self::WrongMachine(m) => match machine_name(m) {
                Some(name) => write!(f, "ELF for {name}, expected x86-64"),
                None => write!(f, "ELF for machine {m}, expected x86-64"),
            },
            Self::BadPhentsize(s) => write!(f, "program header size {s}, expected 56"),
            Self::BadPhnum(n) => write!(f, "bad program header count {n}"),
            Self::NoLoadSegment => f.write_str("ELF has no PT_LOAD segment"),
            Self::FileszExceedsMemsz { index } => {
                write!(f, "program header {index}: p_filesz > p_memsz")
            }
            Self::SegmentBeyondFile { index } => {
                write!(
                    f,
                    "program header {index}: segment extends past end of file"
                )
            }
            Self::UnalignedSegment { index } => write!(
                f,
                "program header {index}: p_vaddr and p_offset not congruent modulo page size or bad p_align"
            ),
            Self::OverlappingSegments { index } => write!(
                f,
                "program header {index}: PT_LOAD overlaps or precedes the previous segment"
            ),
            Self::AddressOverflow { index } => write!(
                f,
                "program header {index}: address overflows or leaves user space"
            ),
            Self::MultipleInterpreters => f.write_str("more than one PT_INTERP"),
            Self::BadInterpreterPath => {
                f.write_str("PT_INTERP path is empty or not NUL-terminated")
            }
            Self::BadLoadBias => {
                f.write_str("load bias must be 0 for ET_EXEC and page-aligned for ET_DYN")
            }
        }
    }
}

impl From<ElfError> for Error {
    fn from(e: ElfError) -> Self {
        let msg = match e {
            ElfError::NotElf => "not an ELF file",
            ElfError::Truncated { .. } => "truncated ELF",
            ElfError::WrongClass(_) => "ELF32 or bad class, expected ELF64",
            ElfError::WrongEndianness(_) => "big-endian ELF",
            ElfError::BadVersion => "bad ELF version",
            ElfError::NotExecutable(_) => "ELF is not ET_EXEC or ET_DYN",
            ElfError::WrongMachine(m) => wrong_machine_message(m),
            ElfError::BadPhentsize(_) => "bad e_phentsize",
            ElfError::BadPhnum(_) => "bad e_phnum",
            ElfError::NoLoadSegment => "no PT_LOAD segment",
            ElfError::FileszExceedsMemsz { .. } => "p_filesz > p_memsz",
            ElfError::SegmentBeyondFile { .. } => "segment extends past end of file",
            ElfError::UnalignedSegment { .. } => "unaligned segment",
            ElfError::OverlappingSegments { .. } => "overlapping segments",
            ElfError::AddressOverflow { .. } => "segment address overflow",
            ElfError::MultipleInterpreters => "more than one PT_INTERP",
            ElfError::BadInterpreterPath => "bad PT_INTERP path",
            ElfError::BadLoadBias => "bad load bias",
        };
        Error::with_message(Errno::ENOEXEC, msg)
    }
}

fn wrong_machine_message(machine: u16) -> &'static str {
    match machine_name(machine) {
        Some("aarch64") => "ELF for aarch64, expected x86-64",
        Some("i386") => "ELF for i386, expected x86-64",
        Some("arm") => "ELF for arm, expected x86-64",
        Some("riscv") => "ELF for riscv, expected x86-64",
        _ => "ELF for another machine, expected x86-64",
    }
}
