//! Host tests: images built from a small hand-made ELF and from the real
//! kernel, parsed back with the `igvm` crate and checked page by page; bad
//! inputs give errors, never a panic.

use std::collections::BTreeMap;

use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmPlatformHeader, IsolationType};
use igvm_defs::IgvmPageDataType;
use libos::boot::pvh::{MemoryType, PhysReader, StartInfo};

use super::tables::{CODE_SELECTOR, DATA_SELECTOR, LARGE_PAGE_FLAGS, TABLE_FLAGS};
use super::*;

/// A minimal x86-64 executable: `segments` as (paddr, vaddr, bytes,
/// memsz), and a symbol table with `symbol` when given.
fn test_elf(segments: &[(u64, u64, &[u8], u64)], symbol: Option<(&str, u64)>) -> Vec<u8> {
    let phoff = 64u64;
    let mut data_at = 0x1000u64;
    let mut out = vec![0u8; 0x1000];
    let mut phdrs = Vec::new();
    for &(paddr, vaddr, bytes, memsz) in segments {
        let mut ph = Vec::new();
        ph.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        ph.extend_from_slice(&7u32.to_le_bytes()); // RWX
        ph.extend_from_slice(&data_at.to_le_bytes());
        ph.extend_from_slice(&vaddr.to_le_bytes());
        ph.extend_from_slice(&paddr.to_le_bytes());
        ph.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        ph.extend_from_slice(&memsz.to_le_bytes());
        ph.extend_from_slice(&0x1000u64.to_le_bytes());
        phdrs.push(ph);
        out.extend_from_slice(bytes);
        data_at += bytes.len() as u64;
    }
    // Section headers: null, .symtab, .strtab, .shstrtab.
    let strtab_at = out.len() as u64;
    let name = symbol.map_or("", |s| s.0);
    let mut strtab = vec![0u8];
    strtab.extend_from_slice(name.as_bytes());
    strtab.push(0);
    out.extend_from_slice(&strtab);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let symtab_at = out.len() as u64;
    let mut symtab = vec![0u8; 24];
    if let Some((_, value)) = symbol {
        let mut sym = Vec::new();
        sym.extend_from_slice(&1u32.to_le_bytes()); // name
        sym.push(0x10); // GLOBAL NOTYPE
        sym.push(0);
        sym.extend_from_slice(&0xfff1u16.to_le_bytes()); // SHN_ABS
        sym.extend_from_slice(&value.to_le_bytes());
        sym.extend_from_slice(&0u64.to_le_bytes());
        symtab.extend_from_slice(&sym);
    }
    out.extend_from_slice(&symtab);
    let shstrtab_at = out.len() as u64;
    let shstrtab = b"\0.symtab\0.strtab\0.shstrtab\0";
    out.extend_from_slice(shstrtab);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let shoff = out.len() as u64;
    let section = |name: u32, kind: u32, at: u64, size: u64, link: u32, info: u32, entsize: u64| {
        let mut sh = Vec::new();
        sh.extend_from_slice(&name.to_le_bytes());
        sh.extend_from_slice(&kind.to_le_bytes());
        sh.extend_from_slice(&0u64.to_le_bytes()); // flags
        sh.extend_from_slice(&0u64.to_le_bytes()); // addr
        sh.extend_from_slice(&at.to_le_bytes());
        sh.extend_from_slice(&size.to_le_bytes());
        sh.extend_from_slice(&link.to_le_bytes());
        sh.extend_from_slice(&info.to_le_bytes());
        sh.extend_from_slice(&1u64.to_le_bytes()); // align
        sh.extend_from_slice(&entsize.to_le_bytes());
        sh
    };
    out.extend_from_slice(&[0u8; 64]);
    out.extend_from_slice(&section(1, 2, symtab_at, symtab.len() as u64, 2, 1, 24));
    out.extend_from_slice(&section(9, 3, strtab_at, strtab.len() as u64, 0, 0, 0));
    out.extend_from_slice(&section(17, 3, shstrtab_at, shstrtab.len() as u64, 0, 0, 0));
    // The ELF header.
    let mut h = Vec::new();
    h.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    h.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h.extend_from_slice(&62u16.to_le_bytes()); // x86-64
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&segments.first().map_or(0, |s| s.1).to_le_bytes());
    h.extend_from_slice(&phoff.to_le_bytes());
    h.extend_from_slice(&shoff.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&56u16.to_le_bytes());
    h.extend_from_slice(&(phdrs.len() as u16).to_le_bytes());
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&3u16.to_le_bytes());
    out[..64].copy_from_slice(&h);
    for (i, ph) in phdrs.iter().enumerate() {
        let at = phoff as usize + i * 56;
        out[at..at + 56].copy_from_slice(ph);
    }
    out
}

const KERNEL_VIRT: u64 = 0xffff_ffff_8000_0000;
const PHYS_OFFSET: u64 = 0xffff_8000_0000_0000;

/// A kernel shaped like Cloister's: an identity `.boot` with the entry, a
/// high text segment, and a `.bss`.
fn small_kernel() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let boot: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let text: Vec<u8> = (0..9000u32).map(|i| (i * 13 + 1) as u8).collect();
    let elf = test_elf(
        &[
            (0x20_0000, 0x20_0000, &boot, boot.len() as u64),
            (0x40_0000, KERNEL_VIRT + 0x40_0000, &text, text.len() as u64),
            (0x40_4000, KERNEL_VIRT + 0x40_4000, &[], 0x3000),
        ],
        Some((ENTRY_SYMBOL, 0x20_0010)),
    );
    (elf, boot, text)
}

fn input<'a>(elf: &'a [u8], initrd: &'a [u8]) -> IgvmInput<'a> {
    IgvmInput {
        kernel_elf: elf,
        initrd,
        cmdline: "log=info -- /bin/true",
        memory_mib: 512,
        c_bit: 51,
    }
}

/// What an image says, parsed back.
struct Parsed {
    file: IgvmFile,
    /// Normal page data by GPA.
    pages: BTreeMap<u64, Vec<u8>>,
    /// Page data of other types by GPA.
    special: BTreeMap<u64, IgvmPageDataType>,
    cpuid_data: Vec<u8>,
}

impl Parsed {
    fn new(bytes: &[u8]) -> Self {
        let file = IgvmFile::new_from_binary(bytes, Some(IsolationType::Snp)).expect("parses");
        let mut pages = BTreeMap::new();
        let mut special = BTreeMap::new();
        let mut cpuid_data = Vec::new();
        for d in file.directives() {
            if let IgvmDirectiveHeader::PageData {
                gpa,
                compatibility_mask,
                data_type,
                data,
                ..
            } = d
            {
                assert_eq!(*compatibility_mask, SNP_MASK);
                if *data_type == IgvmPageDataType::NORMAL {
                    let mut page = data.clone();
                    page.resize(PAGE as usize, 0);
                    assert!(pages.insert(*gpa, page).is_none(), "page {gpa:#x} twice");
                } else {
                    if *data_type == IgvmPageDataType::CPUID_DATA {
                        cpuid_data = data.clone();
                    }
                    assert!(special.insert(*gpa, *data_type).is_none());
                }
            }
        }
        Self {
            file,
            pages,
            special,
            cpuid_data,
        }
    }

    fn vmsa(&self) -> &Vmsa {
        let mut found = self.file.directives().iter().filter_map(|d| match d {
            IgvmDirectiveHeader::SnpVpContext {
                vmsa,
                vp_index: 0,
                compatibility_mask: SNP_MASK,
                gpa: VMSA_GPA,
            } => Some(vmsa.as_ref()),
            _ => None,
        });
        let vmsa = found.next().expect("a VMSA for VP 0");
        assert!(found.next().is_none());
        vmsa
    }

    fn u64_at(&self, paddr: u64) -> Option<u64> {
        let page = self.pages.get(&(paddr & !(PAGE - 1)))?;
        let at = (paddr % PAGE) as usize;
        Some(u64::from_le_bytes(page[at..at + 8].try_into().unwrap()))
    }

    fn read(&self, paddr: u64, len: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(len);
        for a in paddr..paddr + len as u64 {
            out.push(self.pages.get(&(a & !(PAGE - 1)))?[(a % PAGE) as usize]);
        }
        Some(out)
    }

    /// Walks the tables from CR3: every present entry carries the C-bit,
    /// only the expected flags and an address inside RAM (tables: a page
    /// of the image). Returns the 2 MiB mappings as (virtual, physical).
    fn walk(&self, c_bit: u8, memory_bytes: u64) -> BTreeMap<u64, u64> {
        let c = 1u64 << c_bit;
        let addr_mask = 0x000f_ffff_ffff_f000 & !c;
        let mut leaves = BTreeMap::new();
        let cr3 = self.vmsa().cr3;
        let mut stack = vec![(cr3, 4u32, 0u64)];
        while let Some((table, level, base)) = stack.pop() {
            assert!(
                self.pages.contains_key(&table),
                "table {table:#x} not in the image"
            );
            for slot in 0..512u64 {
                let entry = self.u64_at(table + slot * 8).unwrap();
                if entry & 1 == 0 {
                    assert_eq!(entry, 0, "a non-present entry with bits set");
                    continue;
                }
                assert_ne!(
                    entry & c,
                    0,
                    "entry {entry:#x} (level {level}) lacks the C-bit"
                );
                let flags = entry & !addr_mask & !c;
                let target = entry & addr_mask;
                assert!(target < memory_bytes, "entry {entry:#x} points outside RAM");
                let mut va = base | (slot << (12 + 9 * (level - 1)));
                if level == 4 && slot >= 256 {
                    va |= 0xffff_0000_0000_0000;
                }
                if level == 2 {
                    assert_eq!(flags, LARGE_PAGE_FLAGS, "leaf {entry:#x}");
                    leaves.insert(va, target);
                } else {
                    assert_eq!(flags, TABLE_FLAGS, "table entry {entry:#x}");
                    stack.push((target, level - 1, va));
                }
            }
        }
        leaves
    }
}

fn translate(leaves: &BTreeMap<u64, u64>, va: u64) -> Option<u64> {
    leaves
        .get(&(va & !0x1f_ffff))
        .map(|pa| pa + (va & 0x1f_ffff))
}

impl PhysReader for Parsed {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> bool {
        match self.read(paddr, buf.len()) {
            Some(bytes) => {
                buf.copy_from_slice(&bytes);
                true
            }
            None => false,
        }
    }
}

/// Everything the module docs promise, checked on the parsed image of
/// `elf` with `initrd`.
fn check_image(elf: &[u8], initrd: &[u8], c_bit: u8) {
    let mut input = input(elf, initrd);
    input.c_bit = c_bit;
    let image = build(&input).expect("builds");
    let parsed = Parsed::new(&image.bytes);
    let memory_bytes = input.memory_mib << 20;

    let [IgvmPlatformHeader::SupportedPlatform(platform)] = parsed.file.platforms() else {
        panic!("one platform header");
    };
    assert_eq!(platform.compatibility_mask, SNP_MASK);
    assert_eq!(platform.platform_type, igvm_defs::IgvmPlatformType::SEV_SNP);

    // The VMSA: what `cloister_start64` expects.
    let kernel = KernelImage::parse(elf).unwrap();
    let v = parsed.vmsa();
    assert_eq!(v.rip, kernel.entry);
    assert_eq!(v.rip, image.entry_gpa);
    assert_eq!(v.rsi, START_INFO_GPA);
    assert_eq!(v.cr3, PAGE_TABLES_GPA);
    assert_eq!(v.cr0 & 0x8000_0001, 0x8000_0001, "paging and protection on");
    assert_ne!(v.cr4 & 0x20, 0, "PAE");
    assert_eq!(v.efer & 0x1500, 0x1500, "SVME, LMA, LME");
    assert!(v.sev_features.snp());
    assert_eq!(v.cs.selector, CODE_SELECTOR);
    assert_eq!(v.cs.attrib & 0x2ff, 0x29b, "present, executable, long mode");
    assert_eq!(v.cs.attrib & 0x400, 0, "L with D clear");
    for seg in [v.ds, v.es, v.ss] {
        assert_eq!(seg.selector, DATA_SELECTOR);
        assert_eq!(seg.attrib & 0x9f, 0x93);
    }
    assert_eq!((v.gdtr.base, v.gdtr.limit), (GDT_GPA, 23));
    let gdt = parsed.read(GDT_GPA, 24).unwrap();
    let code = u64::from_le_bytes(gdt[8..16].try_into().unwrap());
    assert_eq!((code >> 40) & 0xff, u64::from(v.cs.attrib & 0xff));
    assert_eq!((code >> 52) & 0xf, u64::from(v.cs.attrib >> 8));
    assert!(parsed.pages.contains_key(&(v.rsp - PAGE)), "the stack page");

    // Page tables: C-bit everywhere; the three windows translate.
    let leaves = parsed.walk(c_bit, memory_bytes);
    assert_eq!(leaves.len() as u64, 3 * (memory_bytes >> 21));
    assert_eq!(translate(&leaves, v.rip), Some(v.rip), "identity entry");
    assert_eq!(
        translate(&leaves, PHYS_OFFSET + 0x1234_5678),
        Some(0x1234_5678)
    );
    for seg in &kernel.segments {
        assert_eq!(translate(&leaves, seg.vaddr), Some(seg.paddr));
        if seg.vaddr >= KERNEL_VIRT {
            assert_eq!(translate(&leaves, KERNEL_VIRT + seg.paddr), Some(seg.paddr));
        }
    }

    // The kernel's bytes, `.bss` zero.
    for seg in &kernel.segments {
        let loaded = parsed.read(seg.paddr, seg.mem_bytes as usize).unwrap();
        assert_eq!(
            &loaded[..seg.data.len()],
            seg.data,
            "segment {:#x}",
            seg.paddr
        );
        assert!(loaded[seg.data.len()..].iter().all(|&b| b == 0));
    }

    // The SNP pages at the advertised addresses.
    assert_eq!(
        parsed.special.get(&SECRETS_GPA),
        Some(&IgvmPageDataType::SECRETS)
    );
    assert_eq!(
        parsed.special.get(&CPUID_GPA),
        Some(&IgvmPageDataType::CPUID_DATA)
    );
    assert_eq!(parsed.special.len(), 2);
    let leaves_listed: Vec<_> = cvm::snp::cpuid_page::entries(&parsed.cpuid_data)
        .unwrap()
        .map(|e| (e.leaf, e.subleaf))
        .collect();
    assert_eq!(leaves_listed, CPUID_LEAVES);
    for gpa in parsed.special.keys() {
        assert!(!parsed.pages.contains_key(gpa));
    }

    // The start info, read with the kernel's own parser.
    let info = StartInfo::read(&parsed, START_INFO_GPA).unwrap();
    let mut buf = [0u8; libos::boot::pvh::MAX_CMDLINE_BYTES];
    let len = info.read_cmdline(&parsed, &mut buf).unwrap();
    let cmdline = std::str::from_utf8(&buf[..len]).unwrap();
    assert_eq!(cmdline, image.cmdline);
    assert!(cmdline.ends_with(" log=info -- /bin/true"));
    let args = libos::boot::cmdline::KernelArgs::parse(cmdline);
    assert_eq!(args.get("snp.secrets_page"), Some("0x4000"));
    assert_eq!(args.get("snp.cpuid_page"), Some("0x5000"));
    let map: Vec<_> = (0..info.memmap_count)
        .map(|i| info.memory_entry(&parsed, i).unwrap())
        .collect();
    let ram_end = map
        .iter()
        .filter(|e| e.kind == MemoryType::Ram)
        .map(|e| e.paddr + e.size_bytes)
        .max();
    assert_eq!(ram_end, Some(memory_bytes));
    for gpa in [SECRETS_GPA, CPUID_GPA] {
        assert!(
            map.iter()
                .any(|e| e.kind == MemoryType::Ram
                    && (e.paddr..e.paddr + e.size_bytes).contains(&gpa))
        );
    }
    if initrd.is_empty() {
        assert_eq!(info.module_count, 0);
    } else {
        assert_eq!(info.module_count, 1);
        let m = info.module(&parsed, 0).unwrap();
        assert_eq!(
            (m.paddr, m.size_bytes),
            (image.initrd_gpa, initrd.len() as u64)
        );
        assert_eq!(parsed.read(m.paddr, initrd.len()).unwrap(), initrd);
        let kernel_end = kernel.segments.iter().map(|s| s.paddr + s.mem_bytes).max();
        assert!(m.paddr >= kernel_end.unwrap());
    }
    // Nothing of the image outside RAM (the VMSA is not page data).
    assert!(parsed.pages.keys().all(|&gpa| gpa + PAGE <= memory_bytes));

    // Nothing the launch validated is in what the kernel accepts
    // (`PVALIDATE`s) at boot — validating a page twice is fatal on SNP.
    // The RAM the kernel keeps free, computed as `kernel::boot_info`
    // does: RAM entries less the first 2 MiB, the kernel image, the start
    // info, the command line and the modules.
    let mut usable = libos::boot::memmap::MemoryMap::new();
    for e in map.iter().filter(|e| e.kind == MemoryType::Ram) {
        usable.add_usable(e.paddr, e.size_bytes).unwrap();
    }
    let kernel_start = kernel.segments.iter().map(|s| s.paddr).min().unwrap();
    let kernel_end = kernel
        .segments
        .iter()
        .map(|s| s.paddr + s.mem_bytes)
        .max()
        .unwrap();
    usable.reserve(0, 2 << 20).unwrap();
    usable
        .reserve(kernel_start, kernel_end - kernel_start)
        .unwrap();
    usable.reserve(START_INFO_GPA, 64).unwrap();
    usable.reserve(info.cmdline_paddr, len as u64 + 1).unwrap();
    if !initrd.is_empty() {
        usable
            .reserve(image.initrd_gpa, initrd.len() as u64)
            .unwrap();
    }
    assert!(usable.usable_bytes() > 0);
    let validated = parsed.pages.keys().chain(parsed.special.keys());
    for &gpa in validated {
        assert!(
            !usable
                .ranges()
                .iter()
                .any(|r| gpa < r.end && r.start < gpa + PAGE),
            "page {gpa:#x} is in the image and in the RAM the kernel accepts"
        );
    }
}

#[test]
fn a_small_kernel_image_parses_back_as_built() {
    let (elf, boot, text) = small_kernel();
    assert_eq!(boot.len(), 5000);
    assert_eq!(text.len(), 9000);
    let initrd: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    check_image(&elf, &initrd, 51);
    check_image(&elf, &[], 47);
}

#[test]
fn the_real_kernel_image_parses_back_as_built() {
    let kernel = crate::build::build_kernel(crate::build::KernelBuild {
        release: false,
        ktest: true,
    })
    .expect("the kernel builds");
    let elf = std::fs::read(kernel).unwrap();
    check_image(&elf, b"070701 a cpio would be here", 51);
}

#[test]
fn bad_inputs_are_errors() {
    let (elf, ..) = small_kernel();
    let err = |input: &IgvmInput<'_>| build(input).expect_err("refused").to_string();

    assert!(err(&input(b"#!/bin/sh\n", &[])).contains("not an x86-64 ELF"));
    assert!(err(&input(&elf[..100], &[])).contains("not an x86-64 ELF"));
    assert!(err(&input(&[], &[])).contains("not an x86-64 ELF"));

    let overlapping = test_elf(
        &[
            (0x20_0000, 0x20_0000, &[1; 0x2000], 0x2000),
            (0x20_1000, 0x20_1000, &[2; 16], 16),
        ],
        Some((ENTRY_SYMBOL, 0x20_0000)),
    );
    assert!(err(&input(&overlapping, &[])).contains("overlap"));

    let no_entry = test_elf(&[(0x20_0000, 0x20_0000, &[1; 64], 64)], None);
    assert!(err(&input(&no_entry, &[])).contains(ENTRY_SYMBOL));
    let high_entry = test_elf(
        &[(0x20_0000, KERNEL_VIRT + 0x20_0000, &[1; 64], 64)],
        Some((ENTRY_SYMBOL, KERNEL_VIRT + 0x20_0000)),
    );
    assert!(err(&input(&high_entry, &[])).contains("link address"));
    let low = test_elf(
        &[(0x1000, 0x1000, &[1; 64], 64)],
        Some((ENTRY_SYMBOL, 0x1000)),
    );
    assert!(err(&input(&low, &[])).contains("outside the guest RAM"));

    let huge = vec![0u8; 600 << 20];
    assert!(err(&input(&elf, &huge)).contains("does not fit in 512 MiB"));

    for c_bit in [0, 31, 64, 255] {
        let mut bad = input(&elf, &[]);
        bad.c_bit = c_bit;
        assert!(err(&bad).contains("out of range"), "c-bit {c_bit}");
    }
    for memory_mib in [0, 3, 513, 4096] {
        let mut bad = input(&elf, &[]);
        bad.memory_mib = memory_mib;
        assert!(err(&bad).contains("multiple of 2 MiB"), "{memory_mib} MiB");
    }
    let long = "x".repeat(5000);
    let mut bad = input(&elf, &[]);
    bad.cmdline = &long;
    assert!(err(&bad).contains("command line"));
}

#[test]
fn random_bytes_as_a_kernel_never_panic() {
    let (elf, ..) = small_kernel();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..300 {
        let mut bytes = elf.clone();
        for _ in 0..(1 + round % 16) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % 0x1100;
            bytes[at] = (state >> 32) as u8;
        }
        let _ = build(&input(&bytes, &[]));
    }
}
