//! [`LoadPlan`]: the mappings an ELF image needs at a given load bias.
//!
//! Pure arithmetic over a parsed [`ElfFile`]: the kernel allocates each
//! [`Mapping::pages`] range, copies [`Mapping::file_bytes`] bytes from
//! [`Mapping::file_offset`] to [`Mapping::file_vaddr`], leaves the rest
//! zero, then applies the permissions from [`LoadPlan::page_protections`]
//! (which merges a page shared by two segments, as a union).

use alloc::vec::Vec;
use core::ops::Range;

use super::error::ElfError;
use super::header::{PF_R, PF_W, PF_X};
use super::parse::{ElfFile, ElfKind, align_down, align_up};
use super::{PAGE_SIZE, USER_SPACE_END};

/// Page permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

impl Perms {
    /// From ELF `p_flags`.
    pub const fn from_flags(flags: u32) -> Self {
        Self {
            read: flags & PF_R != 0,
            write: flags & PF_W != 0,
            execute: flags & PF_X != 0,
        }
    }

    /// Permissions allowing everything either allows.
    pub const fn union(self, other: Self) -> Self {
        Self {
            read: self.read || other.read,
            write: self.write || other.write,
            execute: self.execute || other.execute,
        }
    }
}

/// One segment to materialise (addresses biased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Page-aligned range to allocate; every byte not copied from the file
    /// is zero (this covers `.bss`).
    pub pages: Range<u64>,
    /// Where the file bytes go (`p_vaddr + bias`).
    pub file_vaddr: u64,
    /// Offset of the bytes in the file (`p_offset`).
    pub file_offset: u64,
    /// How many bytes to copy (`p_filesz`).
    pub file_bytes: u64,
    /// The segment's end in memory (`p_vaddr + p_memsz + bias`); the bytes
    /// `file_vaddr + file_bytes .. mem_end` must read as zero.
    pub mem_end: u64,
    /// Page permissions requested by the segment.
    pub perms: Perms,
}

/// Everything needed to map one ELF image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan<'a> {
    /// The bias added to every address (0 for `ET_EXEC`).
    pub bias: u64,
    /// Segments to map, ascending.
    pub mappings: Vec<Mapping>,
    /// Entry point (`e_entry + bias`).
    pub entry: u64,
    /// Address of the program headers in memory, for `AT_PHDR`.
    pub phdr_addr: Option<u64>,
    /// Number of program headers, for `AT_PHNUM`.
    pub phnum: u16,
    /// Interpreter path from `PT_INTERP`.
    pub interpreter: Option<&'a [u8]>,
    /// End of the highest segment, page-aligned: where `brk` starts.
    pub brk_start: u64,
}

impl<'a> LoadPlan<'a> {
    /// Plans `elf` at `bias`. `ET_EXEC` requires `bias == 0`; `ET_DYN`
    /// requires a page-aligned bias that keeps the image in user space.
    pub fn new(elf: &ElfFile<'a>, bias: u64) -> Result<Self, ElfError> {
        if !bias.is_multiple_of(PAGE_SIZE) || (elf.kind == ElfKind::Executable && bias != 0) {
            return Err(ElfError::BadLoadBias);
        }
        let mut mappings = Vec::with_capacity(elf.segments.len());
        for (index, seg) in elf.segments.iter().enumerate() {
            let overflow = ElfError::AddressOverflow { index };
            let file_vaddr = seg.vaddr.checked_add(bias).ok_or(overflow)?;
            let mem_end = file_vaddr
                .checked_add(seg.mem_bytes)
                .filter(|&e| e <= USER_SPACE_END)
                .ok_or(overflow)?;
            mappings.push(Mapping {
                pages: align_down(file_vaddr)..align_up(mem_end),
                file_vaddr,
                file_offset: seg.offset,
                file_bytes: seg.file_bytes,
                mem_end,
                perms: Perms::from_flags(seg.flags),
            });
        }
        let biased = |addr: u64| addr.checked_add(bias).ok_or(ElfError::BadLoadBias);
        Ok(Self {
            bias,
            entry: biased(elf.entry)?,
            phdr_addr: elf.phdr_vaddr.map(biased).transpose()?,
            phnum: elf.phnum,
            interpreter: elf.interpreter,
            brk_start: mappings.last().map_or(0, |m| m.pages.end),
            mappings,
        })
    }

    /// Non-overlapping page ranges with their final permissions, ascending.
    /// A page shared by two adjacent segments gets the union of both.
    pub fn page_protections(&self) -> Vec<(Range<u64>, Perms)> {
        let mut out: Vec<(Range<u64>, Perms)> = Vec::new();
        for m in &self.mappings {
            let mut start = m.pages.start;
            if let Some((prev, prev_perms)) = out.last_mut()
                && prev.end > start
            {
                // Segments are ascending and disjoint, so at most the last
                // page of the previous mapping is shared.
                let shared = start..prev.end;
                let union = prev_perms.union(m.perms);
                prev.end = shared.start;
                if prev.start == prev.end {
                    out.pop();
                }
                start = shared.end;
                out.push((shared, union));
            }
            if start < m.pages.end {
                out.push((start..m.pages.end, m.perms));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::test_util::ElfBuilder;

    #[test]
    fn plans_pie_at_bias() {
        let image = ElfBuilder::pie()
            .load(0, 0, 0x1290, 0x1290, PF_R)
            .load(0x2000, 0x2000, 0x100, 0x100, PF_R | PF_X)
            .load(0x3d70, 0x4d70, 0x470, 0x608, PF_R | PF_W)
            .build();
        let elf = ElfFile::parse(&image).unwrap();
        let plan = LoadPlan::new(&elf, 0x5555_5555_4000).unwrap();
        assert_eq!(plan.entry, 0x5555_5555_4000 + 0x2000);
        assert_eq!(plan.mappings.len(), 3);
        let data = &plan.mappings[2];
        assert_eq!(data.pages, 0x5555_5555_8000..0x5555_5555_a000);
        assert_eq!(data.file_vaddr, 0x5555_5555_8d70);
        assert_eq!(data.file_offset, 0x3d70);
        assert_eq!(data.file_bytes, 0x470);
        assert_eq!(data.mem_end, 0x5555_5555_8d70 + 0x608);
        assert!(data.perms.write && !data.perms.execute);
        assert_eq!(plan.brk_start, 0x5555_5555_a000);
        assert_eq!(plan.phdr_addr, Some(0x5555_5555_4000 + 64));
        assert!(LoadPlan::new(&elf, 0x123).is_err());
    }

    #[test]
    fn exec_needs_zero_bias() {
        let image = ElfBuilder::exec()
            .load(0, 0x400000, 0x200, 0x200, PF_R | PF_X)
            .build();
        let elf = ElfFile::parse(&image).unwrap();
        assert_eq!(
            LoadPlan::new(&elf, 0x1000).unwrap_err(),
            ElfError::BadLoadBias
        );
        let plan = LoadPlan::new(&elf, 0).unwrap();
        assert_eq!(plan.mappings[0].pages, 0x400000..0x401000);
    }

    #[test]
    fn shared_page_gets_union_of_permissions() {
        let image = ElfBuilder::exec()
            .load(0, 0x400000, 0x1800, 0x1800, PF_R | PF_X)
            .load(0x1800, 0x401800, 0x100, 0x2000, PF_R | PF_W)
            .build();
        let elf = ElfFile::parse(&image).unwrap();
        let plan = LoadPlan::new(&elf, 0).unwrap();
        let rx = Perms::from_flags(PF_R | PF_X);
        let rw = Perms::from_flags(PF_R | PF_W);
        assert_eq!(
            plan.page_protections(),
            alloc::vec![
                (0x400000..0x401000, rx),
                (0x401000..0x402000, rx.union(rw)),
                (0x402000..0x404000, rw),
            ]
        );
    }
}
