//! Builds small synthetic ELF images for tests (header at 0, program
//! headers at 64, segment bytes filled with a pattern).

use alloc::vec::Vec;

use super::header::{EM_X86_64, ET_DYN, ET_EXEC, PT_INTERP, PT_LOAD, PT_PHDR, PT_TLS};

#[derive(Debug, Clone)]
pub(crate) struct ElfBuilder {
    pub elf_type: u16,
    pub machine: u16,
    pub class: u8,
    pub entry: u64,
    pub phdrs: Vec<[u64; 7]>, // type, flags, offset, vaddr, filesz, memsz, align
    pub extra: Vec<(u64, Vec<u8>)>,
}

impl ElfBuilder {
    pub fn pie() -> Self {
        Self {
            elf_type: ET_DYN,
            machine: EM_X86_64,
            class: 2,
            entry: 0x2000,
            phdrs: Vec::new(),
            extra: Vec::new(),
        }
    }

    pub fn exec() -> Self {
        Self {
            elf_type: ET_EXEC,
            entry: 0x400100,
            ..Self::pie()
        }
    }

    pub fn load(mut self, offset: u64, vaddr: u64, filesz: u64, memsz: u64, flags: u32) -> Self {
        self.phdrs.push([
            PT_LOAD.into(),
            flags.into(),
            offset,
            vaddr,
            filesz,
            memsz,
            0x1000,
        ]);
        self
    }

    pub fn phdr(mut self, vaddr: u64) -> Self {
        let size = 56 * (self.phdrs.len() as u64 + 1);
        self.phdrs
            .push([PT_PHDR.into(), 4, 64, vaddr, size, size, 8]);
        self
    }

    pub fn tls(mut self, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Self {
        self.phdrs
            .push([PT_TLS.into(), 4, offset, vaddr, filesz, memsz, 8]);
        self
    }

    /// Adds `PT_INTERP` with `bytes` (include the NUL) stored at `offset`.
    pub fn interp(mut self, offset: u64, bytes: &[u8]) -> Self {
        let len = bytes.len() as u64;
        self.phdrs
            .push([PT_INTERP.into(), 4, offset, offset, len, len, 1]);
        self.extra.push((offset, bytes.to_vec()));
        self
    }

    pub fn raw_phdr(mut self, ph: [u64; 7]) -> Self {
        self.phdrs.push(ph);
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let phend = 64 + 56 * self.phdrs.len() as u64;
        let mut len = phend;
        for ph in &self.phdrs {
            let end = ph[2].saturating_add(ph[4]);
            if ph[0] == u64::from(PT_LOAD) && end < 1 << 24 {
                len = len.max(end);
            }
        }
        for (off, bytes) in &self.extra {
            len = len.max(off + bytes.len() as u64);
        }
        let mut img: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        img[..64].fill(0);
        img[..4].copy_from_slice(b"\x7fELF");
        img[4] = self.class;
        img[5] = 1;
        img[6] = 1;
        img[16..18].copy_from_slice(&self.elf_type.to_le_bytes());
        img[18..20].copy_from_slice(&self.machine.to_le_bytes());
        img[20..24].copy_from_slice(&1u32.to_le_bytes());
        img[24..32].copy_from_slice(&self.entry.to_le_bytes());
        img[32..40].copy_from_slice(&64u64.to_le_bytes());
        img[52..54].copy_from_slice(&64u16.to_le_bytes());
        img[54..56].copy_from_slice(&56u16.to_le_bytes());
        img[56..58].copy_from_slice(&(self.phdrs.len() as u16).to_le_bytes());
        for (i, ph) in self.phdrs.iter().enumerate() {
            let b = 64 + 56 * i;
            img[b..b + 4].copy_from_slice(&(ph[0] as u32).to_le_bytes());
            img[b + 4..b + 8].copy_from_slice(&(ph[1] as u32).to_le_bytes());
            img[b + 8..b + 16].copy_from_slice(&ph[2].to_le_bytes());
            img[b + 16..b + 24].copy_from_slice(&ph[3].to_le_bytes());
            img[b + 24..b + 32].copy_from_slice(&ph[3].to_le_bytes());
            img[b + 32..b + 40].copy_from_slice(&ph[4].to_le_bytes());
            img[b + 40..b + 48].copy_from_slice(&ph[5].to_le_bytes());
            img[b + 48..b + 56].copy_from_slice(&ph[6].to_le_bytes());
        }
        for (off, bytes) in &self.extra {
            img[*off as usize..*off as usize + bytes.len()].copy_from_slice(bytes);
        }
        img
    }
}
