//! [`ElfFile::parse`]: validate an executable image and collect its
//! segments, interpreter, TLS template and stack flags.

use alloc::vec::Vec;

use super::error::ElfError;
use super::header::{
    ET_DYN, ElfHeader, PF_X, PT_DYNAMIC, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_PHDR, PT_TLS,
    ProgramHeader, field,
};
use super::{PAGE_SIZE, USER_SPACE_END};

/// Whether the image is loaded at a fixed address or anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// `ET_EXEC`: addresses are absolute; the load bias must be 0.
    Executable,
    /// `ET_DYN`: PIE or shared object (e.g. `ld-linux`); loaded at a bias.
    PositionIndependent,
}

/// A validated `PT_LOAD` segment (addresses unbiased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// `p_vaddr`
    pub vaddr: u64,
    /// `p_offset`
    pub offset: u64,
    /// `p_filesz`: bytes copied from the file.
    pub file_bytes: u64,
    /// `p_memsz`: bytes in memory; the excess over `file_bytes` is zeroed.
    pub mem_bytes: u64,
    /// `p_flags` (`PF_R | PF_W | PF_X`).
    pub flags: u32,
}

/// The `PT_TLS` initialisation image (addresses unbiased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsTemplate {
    /// Address of the `.tdata` image.
    pub vaddr: u64,
    /// Initialised bytes.
    pub file_bytes: u64,
    /// Total bytes including `.tbss`.
    pub mem_bytes: u64,
    /// Required alignment.
    pub align: u64,
}

/// A parsed, validated ELF executable borrowing the file image.
#[derive(Debug, Clone)]
pub struct ElfFile<'a> {
    /// The file's bytes: all of them, or its first ones (see
    /// [`ElfFile::file_size`]).
    pub image: &'a [u8],
    /// Size of the whole file (at least `image.len()`; larger when `image`
    /// is only its first bytes, see [`ElfFile::parse_head`]).
    pub file_size: u64,
    /// Fixed-address or position-independent.
    pub kind: ElfKind,
    /// `e_entry` (unbiased).
    pub entry: u64,
    /// `e_phoff`
    pub phoff: u64,
    /// `e_phnum`
    pub phnum: u16,
    /// `PT_LOAD` segments, ascending and non-overlapping.
    pub segments: Vec<Segment>,
    /// Address of the program headers in memory (from `PT_PHDR`, or the
    /// `PT_LOAD` segment that contains `e_phoff`), unbiased.
    pub phdr_vaddr: Option<u64>,
    /// The `PT_INTERP` path without its NUL (e.g. `/lib64/ld-linux-x86-64.so.2`).
    pub interpreter: Option<&'a [u8]>,
    /// `PT_TLS`, if any.
    pub tls: Option<TlsTemplate>,
    /// `PT_DYNAMIC` address, if any (unbiased).
    pub dynamic_vaddr: Option<u64>,
    /// `PT_GNU_STACK` asks for an executable stack (absent means no).
    pub executable_stack: bool,
}

impl<'a> ElfFile<'a> {
    /// Parses and validates `image`, a whole file.
    pub fn parse(image: &'a [u8]) -> Result<Self, ElfError> {
        Self::parse_head(image, image.len() as u64)
    }

    /// Parses and validates a file of `file_size` bytes from its first
    /// bytes `head`: the headers and the `PT_INTERP` path must lie in
    /// `head` (else `Truncated`: read more), the segments in the file.
    pub fn parse_head(image: &'a [u8], file_size: u64) -> Result<Self, ElfError> {
        let file_size = file_size.max(image.len() as u64);
        let header = ElfHeader::new_checked(image)?;
        let kind = if header.elf_type() == ET_DYN {
            ElfKind::PositionIndependent
        } else {
            ElfKind::Executable
        };
        // The table's bounds were checked by `new_checked`.
        let phoff = usize::try_from(header.phoff()).map_err(|_| ElfError::Truncated {
            what: "program header table",
        })?;
        let mut elf = ElfFile {
            image,
            file_size,
            kind,
            entry: header.entry(),
            phoff: header.phoff(),
            phnum: header.phnum(),
            segments: Vec::new(),
            phdr_vaddr: None,
            interpreter: None,
            tls: None,
            dynamic_vaddr: None,
            executable_stack: false,
        };
        for index in 0..usize::from(header.phnum()) {
            let start = phoff + index * field::phdr::LEN;
            let ph = ProgramHeader::new_checked(image.get(start..).unwrap_or(&[]))?;
            elf.add_program_header(index, &ph)?;
        }
        if elf.segments.is_empty() {
            return Err(ElfError::NoLoadSegment);
        }
        if elf.phdr_vaddr.is_none() {
            elf.phdr_vaddr = elf.file_offset_to_vaddr(elf.phoff);
        }
        Ok(elf)
    }

    fn add_program_header(
        &mut self,
        index: usize,
        ph: &ProgramHeader<&[u8]>,
    ) -> Result<(), ElfError> {
        match ph.p_type() {
            PT_LOAD => self.add_load(index, ph),
            PT_INTERP => {
                if self.interpreter.is_some() {
                    return Err(ElfError::MultipleInterpreters);
                }
                let bytes = file_range(self.image, ph.offset(), ph.filesz()).ok_or(
                    ElfError::Truncated {
                        what: "PT_INTERP path",
                    },
                )?;
                match bytes.split_last() {
                    Some((0, path)) if !path.is_empty() && !path.contains(&0) => {
                        self.interpreter = Some(path);
                        Ok(())
                    }
                    _ => Err(ElfError::BadInterpreterPath),
                }
            }
            PT_PHDR => {
                self.phdr_vaddr = Some(ph.vaddr());
                Ok(())
            }
            PT_TLS => {
                if ph.filesz() > ph.memsz() {
                    return Err(ElfError::FileszExceedsMemsz { index });
                }
                self.tls = Some(TlsTemplate {
                    vaddr: ph.vaddr(),
                    file_bytes: ph.filesz(),
                    mem_bytes: ph.memsz(),
                    align: ph.align(),
                });
                Ok(())
            }
            PT_DYNAMIC => {
                self.dynamic_vaddr = Some(ph.vaddr());
                Ok(())
            }
            PT_GNU_STACK => {
                self.executable_stack = ph.flags() & PF_X != 0;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn add_load(&mut self, index: usize, ph: &ProgramHeader<&[u8]>) -> Result<(), ElfError> {
        let seg = Segment {
            vaddr: ph.vaddr(),
            offset: ph.offset(),
            file_bytes: ph.filesz(),
            mem_bytes: ph.memsz(),
            flags: ph.flags(),
        };
        if seg.file_bytes > seg.mem_bytes {
            return Err(ElfError::FileszExceedsMemsz { index });
        }
        if seg
            .offset
            .checked_add(seg.file_bytes)
            .is_none_or(|end| end > self.file_size)
        {
            return Err(ElfError::SegmentBeyondFile { index });
        }
        let align = ph.align();
        if (align > 1 && !align.is_power_of_two())
            || seg.vaddr % PAGE_SIZE != seg.offset % PAGE_SIZE
        {
            return Err(ElfError::UnalignedSegment { index });
        }
        seg.vaddr
            .checked_add(seg.mem_bytes)
            .filter(|&end| end <= USER_SPACE_END)
            .ok_or(ElfError::AddressOverflow { index })?;
        if let Some(prev) = self.segments.last()
            && seg.vaddr < prev.vaddr + prev.mem_bytes
        {
            return Err(ElfError::OverlappingSegments { index });
        }
        self.segments.push(seg);
        Ok(())
    }

    /// The in-memory address of file offset `offset`, if a `PT_LOAD`
    /// segment maps it.
    pub fn file_offset_to_vaddr(&self, offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| offset >= s.offset && offset - s.offset < s.file_bytes)
            .map(|s| s.vaddr + (offset - s.offset))
    }

    /// The page-aligned address range the segments span (unbiased), used to
    /// choose a bias for `ET_DYN` images.
    pub fn load_span(&self) -> core::ops::Range<u64> {
        let first = self.segments.first().map_or(0, |s| s.vaddr);
        let last_end = self.segments.last().map_or(0, |s| s.vaddr + s.mem_bytes);
        align_down(first)..align_up(last_end)
    }
}

/// `image[offset..offset + len]`, or `None` if it overflows or lies outside.
fn file_range(image: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    image.get(start..end)
}

/// Rounds down to a page boundary.
pub const fn align_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

/// Rounds up to a page boundary (saturating at the last page).
pub const fn align_up(addr: u64) -> u64 {
    match addr.checked_add(PAGE_SIZE - 1) {
        Some(v) => v & !(PAGE_SIZE - 1),
        None => !(PAGE_SIZE - 1),
    }
}
