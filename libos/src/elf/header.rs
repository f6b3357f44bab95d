//! ELF64 file and program headers in wire style, and the constants used.
//!
//! [`ElfHeader::new_checked`] validates the identification bytes, type,
//! machine and program header table geometry; [`ProgramHeader`] is a view
//! of one 56-byte entry. All multi-byte fields are little-endian.

use super::error::ElfError;

/// Byte ranges of `Elf64_Ehdr` fields.
pub mod field {
    use core::ops::Range;

    /// `\x7fELF`
    pub const MAGIC: Range<usize> = 0..4;
    /// `EI_CLASS`
    pub const CLASS: usize = 4;
    /// `EI_DATA`
    pub const DATA: usize = 5;
    /// `EI_VERSION`
    pub const IDENT_VERSION: usize = 6;
    /// `e_type`
    pub const TYPE: Range<usize> = 16..18;
    /// `e_machine`
    pub const MACHINE: Range<usize> = 18..20;
    /// `e_version`
    pub const VERSION: Range<usize> = 20..24;
    /// `e_entry`
    pub const ENTRY: Range<usize> = 24..32;
    /// `e_phoff`
    pub const PHOFF: Range<usize> = 32..40;
    /// `e_phentsize`
    pub const PHENTSIZE: Range<usize> = 54..56;
    /// `e_phnum`
    pub const PHNUM: Range<usize> = 56..58;
    /// Size of `Elf64_Ehdr`.
    pub const HEADER_LEN: usize = 64;

    /// Byte ranges of `Elf64_Phdr` fields.
    pub mod phdr {
        use core::ops::Range;
        /// `p_type`
        pub const TYPE: Range<usize> = 0..4;
        /// `p_flags`
        pub const FLAGS: Range<usize> = 4..8;
        /// `p_offset`
        pub const OFFSET: Range<usize> = 8..16;
        /// `p_vaddr`
        pub const VADDR: Range<usize> = 16..24;
        /// `p_filesz`
        pub const FILESZ: Range<usize> = 32..40;
        /// `p_memsz`
        pub const MEMSZ: Range<usize> = 40..48;
        /// `p_align`
        pub const ALIGN: Range<usize> = 48..56;
        /// Size of `Elf64_Phdr`.
        pub const LEN: usize = 56;
    }
}

/// `ELFCLASS64`
pub const ELFCLASS64: u8 = 2;
/// `ELFDATA2LSB`
pub const ELFDATA2LSB: u8 = 1;
/// `ET_EXEC`: fixed-address executable.
pub const ET_EXEC: u16 = 2;
/// `ET_DYN`: position-independent executable or shared object.
pub const ET_DYN: u16 = 3;
/// `EM_X86_64`
pub const EM_X86_64: u16 = 62;

/// `PT_NULL`
pub const PT_NULL: u32 = 0;
/// `PT_LOAD`
pub const PT_LOAD: u32 = 1;
/// `PT_DYNAMIC`
pub const PT_DYNAMIC: u32 = 2;
/// `PT_INTERP`
pub const PT_INTERP: u32 = 3;
/// `PT_PHDR`
pub const PT_PHDR: u32 = 6;
/// `PT_TLS`
pub const PT_TLS: u32 = 7;
/// `PT_GNU_STACK`
pub const PT_GNU_STACK: u32 = 0x6474_e551;

/// `PF_X`
pub const PF_X: u32 = 1;
/// `PF_W`
pub const PF_W: u32 = 2;
/// `PF_R`
pub const PF_R: u32 = 4;

/// Largest program header table Linux accepts (`ELF_MIN_ALIGN`-bounded
/// 64 KiB in `load_elf_phdrs`).
pub const MAX_PHDR_TABLE_BYTES: usize = 65536;

/// A short name for common `e_machine` values, for error messages.
pub const fn machine_name(machine: u16) -> Option<&'static str> {
    Some(match machine {
        3 => "i386",
        8 => "mips",
        20 => "powerpc",
        21 => "powerpc64",
        22 => "s390",
        40 => "arm",
        62 => "x86-64",
        183 => "aarch64",
        243 => "riscv",
        258 => "loongarch",
        _ => return None,
    })
}

fn le16(b: &[u8], r: core::ops::Range<usize>) -> u16 {
    b.get(r)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}

fn le32(b: &[u8], r: core::ops::Range<usize>) -> u32 {
    b.get(r)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn le64(b: &[u8], r: core::ops::Range<usize>) -> u64 {
    b.get(r)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// A view of the ELF header at the start of a file image.
#[derive(Debug, Clone, Copy)]
pub struct ElfHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ElfHeader<T> {
    /// Wraps `buffer` unchecked; out-of-range fields read as 0.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`ElfHeader::check`].
    pub fn new_checked(buffer: T) -> Result<Self, ElfError> {
        let h = Self::new_unchecked(buffer);
        h.check()?;
        Ok(h)
    }

    /// Checks magic, class, byte order, version, type, machine and that the
    /// program header table lies within the buffer.
    pub fn check(&self) -> Result<(), ElfError> {
        let b = self.buffer.as_ref();
        if b.get(field::MAGIC) != Some(b"\x7fELF".as_slice()) {
            return Err(ElfError::NotElf);
        }
        if b.len() < field::HEADER_LEN {
            return Err(ElfError::Truncated { what: "ELF header" });
        }
        if b[field::CLASS] != ELFCLASS64 {
            return Err(ElfError::WrongClass(b[field::CLASS]));
        }
        if b[field::DATA] != ELFDATA2LSB {
            return Err(ElfError::WrongEndianness(b[field::DATA]));
        }
        if b[field::IDENT_VERSION] != 1 || le32(b, field::VERSION) != 1 {
            return Err(ElfError::BadVersion);
        }
        if self.machine() != EM_X86_64 {
            return Err(ElfError::WrongMachine(self.machine()));
        }
        let ty = self.elf_type();
        if ty != ET_EXEC && ty != ET_DYN {
            return Err(ElfError::NotExecutable(ty));
        }
        if usize::from(self.phentsize()) != field::phdr::LEN {
            return Err(ElfError::BadPhentsize(self.phentsize()));
        }
        let phnum = usize::from(self.phnum());
        let table_len = phnum * field::phdr::LEN;
        if phnum == 0 || table_len > MAX_PHDR_TABLE_BYTES {
            return Err(ElfError::BadPhnum(self.phnum()));
        }
        let end = usize::try_from(self.phoff())
            .ok()
            .and_then(|off| off.checked_add(table_len));
        match end {
            Some(end) if end <= b.len() => Ok(()),
            _ => Err(ElfError::Truncated {
                what: "program header table",
            }),
        }
    }

    /// `e_type`
    pub fn elf_type(&self) -> u16 {
        le16(self.buffer.as_ref(), field::TYPE)
    }
    /// `e_machine`
    pub fn machine(&self) -> u16 {
        le16(self.buffer.as_ref(), field::MACHINE)
    }
    /// `e_entry`
    pub fn entry(&self) -> u64 {
        le64(self.buffer.as_ref(), field::ENTRY)
    }
    /// `e_phoff`
    pub fn phoff(&self) -> u64 {
        le64(self.buffer.as_ref(), field::PHOFF)
    }
    /// `e_phentsize`
    pub fn phentsize(&self) -> u16 {
        le16(self.buffer.as_ref(), field::PHENTSIZE)
    }
    /// `e_phnum`
    pub fn phnum(&self) -> u16 {
        le16(self.buffer.as_ref(), field::PHNUM)
    }
}

/// A view of one 56-byte program header.
#[derive(Debug, Clone, Copy)]
pub struct ProgramHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ProgramHeader<T> {
    /// Wraps `buffer` after checking it holds a whole entry.
    pub fn new_checked(buffer: T) -> Result<Self, ElfError> {
        if buffer.as_ref().len() < field::phdr::LEN {
            return Err(ElfError::Truncated {
                what: "program header",
            });
        }
        Ok(Self { buffer })
    }

    /// `p_type`
    pub fn p_type(&self) -> u32 {
        le32(self.buffer.as_ref(), field::phdr::TYPE)
    }
    /// `p_flags` (`PF_R | PF_W | PF_X`)
    pub fn flags(&self) -> u32 {
        le32(self.buffer.as_ref(), field::phdr::FLAGS)
    }
    /// `p_offset`
    pub fn offset(&self) -> u64 {
        le64(self.buffer.as_ref(), field::phdr::OFFSET)
    }
    /// `p_vaddr`
    pub fn vaddr(&self) -> u64 {
        le64(self.buffer.as_ref(), field::phdr::VADDR)
    }
    /// `p_filesz`
    pub fn filesz(&self) -> u64 {
        le64(self.buffer.as_ref(), field::phdr::FILESZ)
    }
    /// `p_memsz`
    pub fn memsz(&self) -> u64 {
        le64(self.buffer.as_ref(), field::phdr::MEMSZ)
    }
    /// `p_align`
    pub fn align(&self) -> u64 {
        le64(self.buffer.as_ref(), field::phdr::ALIGN)
    }
}
