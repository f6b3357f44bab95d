//! The kernel ELF as the IGVM image needs it: its `PT_LOAD` segments at
//! their physical addresses (`p_paddr`, as the PVH loader places them) and
//! the physical address of the 64-bit entry symbol. Parsing is the `object`
//! crate's; the checks here are what a launch needs (x86-64, segments that
//! do not overlap, an entry inside an identity-linked segment).

use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Object, ObjectSymbol, elf};

use super::{ENTRY_SYMBOL, IgvmError};

/// One loadable segment.
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    /// `p_paddr`.
    pub paddr: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// The file bytes (`p_filesz` of them).
    pub data: &'a [u8],
    /// `p_memsz` (at least `data.len()`; the rest is zero).
    pub mem_bytes: u64,
}

/// The parts of the kernel ELF the image loads.
#[derive(Debug, Clone)]
pub struct KernelImage<'a> {
    /// `PT_LOAD` segments with a size, ascending by `paddr`, disjoint.
    pub segments: Vec<Segment<'a>>,
    /// Physical address of [`ENTRY_SYMBOL`].
    pub entry: u64,
}

impl<'a> KernelImage<'a> {
    /// Parses and checks `file`.
    pub fn parse(file: &'a [u8]) -> Result<Self, IgvmError> {
        let not_elf = |e: object::Error| IgvmError::NotElf(e.to_string());
        let elf = ElfFile64::<object::LittleEndian>::parse(file).map_err(not_elf)?;
        let endian = elf.endian();
        if elf.elf_header().e_machine(endian) != elf::EM_X86_64 {
            return Err(IgvmError::NotElf("not for x86-64".into()));
        }
        let mut segments = Vec::new();
        for ph in elf.elf_program_headers() {
            if ph.p_type(endian) != elf::PT_LOAD || ph.p_memsz(endian) == 0 {
                continue;
            }
            let data = ph.data(endian, file).map_err(|()| {
                IgvmError::NotElf("a segment's file bytes lie outside the file".into())
            })?;
            let (paddr, mem_bytes) = (ph.p_paddr(endian), ph.p_memsz(endian));
            if (data.len() as u64) > mem_bytes || paddr.checked_add(mem_bytes).is_none() {
                return Err(IgvmError::NotElf(
                    "a segment's sizes are inconsistent".into(),
                ));
            }
            segments.push(Segment {
                paddr,
                vaddr: ph.p_vaddr(endian),
                data,
                mem_bytes,
            });
        }
        if segments.is_empty() {
            return Err(IgvmError::NotElf("no loadable segment".into()));
        }
        segments.sort_by_key(|s| s.paddr);
        for pair in segments.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.paddr + a.mem_bytes > b.paddr {
                return Err(IgvmError::Overlap(
                    a.paddr,
                    a.paddr + a.mem_bytes,
                    b.paddr,
                    b.paddr + b.mem_bytes,
                ));
            }
        }
        let entry = elf
            .symbols()
            .find(|s| s.name() == Ok(ENTRY_SYMBOL))
            .map(|s| s.address())
            .ok_or(IgvmError::NoEntry)?;
        // The VMSA starts at a physical address on identity-mapped tables:
        // the entry must lie in a segment linked where it is loaded.
        let identity = segments.iter().any(|s| {
            s.vaddr == s.paddr && (s.paddr..s.paddr + s.data.len() as u64).contains(&entry)
        });
        if !identity {
            return Err(IgvmError::NotElf(format!(
                "`{ENTRY_SYMBOL}` at {entry:#x} is not in a segment loaded at its link address"
            )));
        }
        Ok(Self { segments, entry })
    }
}
