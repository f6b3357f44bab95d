//! The image's CPU state: the initial page tables, the GDT and the SNP
//! VMSA that enters the kernel's `cloister_start64` in long mode.
//!
//! The tables map what the PVH path's boot tables map (kernel
//! `arch/boot.rs`), but only guest RAM, with 2 MiB pages and the C-bit in
//! every entry (all of it is private): the first [`super::MAX_MEMORY_MIB`]
//! at most, identity (PML4 slot 0), at the direct map (slot 256,
//! `0xffff_8000_0000_0000`) and at the kernel's link address (slot 511,
//! PDPT slots 510–511, `0xffff_ffff_8000_0000`). Pages: PML4, the low PDPT
//! (shared by slots 0 and 256), the high PDPT, one page directory per GiB.

use igvm::snp_defs::{SevFeatures, SevSelector, SevVmsa};
use zerocopy::FromZeros;

use super::{GDT_GPA, PAGE, PAGE_TABLES_GPA, STACK_GPA, START_INFO_GPA};

/// Present, writable.
pub const TABLE_FLAGS: u64 = 0x3;
/// Present, writable, 2 MiB page.
pub const LARGE_PAGE_FLAGS: u64 = 0x83;
/// The GDT's selectors.
pub const CODE_SELECTOR: u16 = 0x08;
/// Data selector.
pub const DATA_SELECTOR: u16 = 0x10;
/// `CR0`: paging, numeric error, extension type, protection.
pub const CR0: u64 = 0x8000_0031;
/// `CR4`: PAE, machine check.
pub const CR4: u64 = 0x60;
/// `EFER`: SVME (required in an SEV-ES/SNP VMSA), LMA, LME.
pub const EFER: u64 = 0x1d00;

/// The table pages, in order from [`PAGE_TABLES_GPA`].
pub fn page_tables(memory_bytes: u64, c_bit: u8) -> Vec<[u8; PAGE as usize]> {
    let c = 1u64 << c_bit;
    let gib = memory_bytes.div_ceil(1 << 30) as usize;
    let pml4 = PAGE_TABLES_GPA;
    let pdpt_low = pml4 + PAGE;
    let pdpt_high = pml4 + 2 * PAGE;
    let pd = |i: usize| pml4 + (3 + i as u64) * PAGE;
    let mut pages = vec![[0u8; PAGE as usize]; 3 + gib];
    let mut set = |page: usize, slot: usize, value: u64| {
        pages[page][slot * 8..slot * 8 + 8].copy_from_slice(&value.to_le_bytes());
    };
    set(0, 0, pdpt_low | TABLE_FLAGS | c);
    set(0, 256, pdpt_low | TABLE_FLAGS | c);
    set(0, 511, pdpt_high | TABLE_FLAGS | c);
    for i in 0..gib {
        set(1, i, pd(i) | TABLE_FLAGS | c);
        set(2, 510 + i, pd(i) | TABLE_FLAGS | c);
        for slot in 0..512 {
            let paddr = ((i as u64) << 30) + ((slot as u64) << 21);
            if paddr < memory_bytes {
                set(3 + i, slot, paddr | LARGE_PAGE_FLAGS | c);
            }
        }
    }
    pages
}

/// The GDT page's descriptors: null, 64-bit code, data (the kernel's own
/// boot GDT has the same layout and replaces it at once).
pub fn gdt() -> [u8; 24] {
    let mut out = [0u8; 24];
    out[8..16].copy_from_slice(&0x00af_9b00_0000_ffffu64.to_le_bytes());
    out[16..24].copy_from_slice(&0x00cf_9300_0000_ffffu64.to_le_bytes());
    out
}

fn selector(selector: u16, attrib: u16, limit: u32, base: u64) -> SevSelector {
    SevSelector {
        selector,
        attrib,
        limit,
        base,
    }
}

/// The boot CPU's VMSA: long mode on the image's tables, at `entry`, with
/// `RSI` the start info. Segment attributes are the VMSA's packed form
/// (descriptor bits 40–47 and 52–55): code `0xA9B`, data `0xC93`.
pub fn vmsa(entry: u64) -> SevVmsa {
    let mut v = SevVmsa::new_zeroed();
    let code = selector(CODE_SELECTOR, 0xa9b, 0xffff_ffff, 0);
    let data = selector(DATA_SELECTOR, 0xc93, 0xffff_ffff, 0);
    v.cs = code;
    v.ds = data;
    v.es = data;
    v.ss = data;
    v.fs = data;
    v.gs = data;
    v.gdtr = selector(0, 0, 23, GDT_GPA);
    v.idtr = selector(0, 0, 0, 0);
    v.ldtr = selector(0, 0x82, 0xffff, 0);
    v.tr = selector(0, 0x8b, 0xffff, 0);
    v.cr0 = CR0;
    v.cr4 = CR4;
    v.efer = EFER;
    // The PML4's physical address; table walks are private under SNP
    // whatever CR3's C-bit says.
    v.cr3 = PAGE_TABLES_GPA;
    v.rip = entry;
    v.rsp = STACK_GPA + PAGE;
    v.rsi = START_INFO_GPA;
    v.rflags = 0x2;
    v.dr6 = 0xffff_0ff0;
    v.dr7 = 0x400;
    v.xcr0 = 1;
    v.pat = 0x0007_0406_0007_0406;
    v.mxcsr = 0x1f80;
    v.x87_fcw = 0x37f;
    v.sev_features = SevFeatures::new().with_snp(true);
    v
}
