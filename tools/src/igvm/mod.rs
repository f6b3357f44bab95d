//! `cloister build --igvm FILE`: an IGVM image (Independent Guest Virtual
//! Machine format, built and parsed with Microsoft's `igvm` crate) that
//! launches Cloister as an AMD SEV-SNP guest — QEMU 10.1+'s
//! `-object igvm-cfg`, docs/CVM.md "Launching on an SNP or TDX host".
//! **Never booted**: the QEMU here (7.2) cannot load IGVM, and there is no
//! SNP hardware. The host tests (`cargo test -p tools igvm`) parse every
//! image back and check it.
//!
//! What the image holds, all measured (page data), compatibility mask
//! [`SNP_MASK`] for SEV-SNP:
//!
//! | GPA | what |
//! |---|---|
//! | [`START_INFO_GPA`] | PVH `hvm_start_info` v1 (the layout the PVH boot already parses), its memory map and module list |
//! | [`CMDLINE_GPA`] | the command line, after `snp.secrets_page=` and `snp.cpuid_page=` (kernel words, so in front of any `--`) |
//! | [`GDT_GPA`] | a GDT: null, 64-bit code (0x08), data (0x10) |
//! | [`SECRETS_GPA`] | the SNP secrets page (page type `SECRETS`, the PSP fills it) |
//! | [`CPUID_GPA`] | the SNP CPUID page (`CPUID_DATA`, the leaves the kernel asks; the hypervisor fills, the PSP checks) |
//! | [`STACK_GPA`] | one page of stack (`RSP` at its end; the kernel switches to its own at once) |
//! | [`PAGE_TABLES_GPA`] | the initial 4-level tables ([`tables`]) |
//! | the ELF's `p_paddr` | the kernel's loadable segments (`.bss` as zero pages) |
//! | the next 2 MiB boundary after the kernel | the initramfs |
//! | [`VMSA_GPA`] | the boot CPU's VMSA ([`tables::vmsa`]): long mode, `RIP` the kernel's `cloister_start64`, `RSI` = [`START_INFO_GPA`] |
//!
//! The memory map the start info gives is RAM `[0, 0xA0000)`, reserved
//! `[0xA0000, 1 MiB)`, RAM `[1 MiB, memory)`: it must agree with QEMU's
//! `-m`, which is why the image records the memory size it was built for.
//! Everything of the image below 2 MiB is outside what the kernel accepts
//! (`PVALIDATE`s) at boot, and the kernel and initramfs are reserved from
//! it, so nothing validated at launch is validated twice.

mod elf;
pub mod tables;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use igvm::snp_defs::SevVmsa;
use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmInitializationHeader, IgvmPlatformHeader};
use igvm_defs::{
    IGVM_VHS_SUPPORTED_PLATFORM, IgvmPageDataFlags, IgvmPageDataType, IgvmPlatformType, SnpPolicy,
};

pub use elf::KernelImage;

/// The one platform of the image: SEV-SNP.
pub const SNP_MASK: u32 = 1;
/// Page size.
pub const PAGE: u64 = 4096;
/// `hvm_start_info`, its memory map (+64) and module list (+256).
pub const START_INFO_GPA: u64 = 0x1000;
/// The NUL-terminated command line.
pub const CMDLINE_GPA: u64 = 0x2000;
/// The GDT.
pub const GDT_GPA: u64 = 0x3000;
/// The SNP secrets page.
pub const SECRETS_GPA: u64 = 0x4000;
/// The SNP CPUID page.
pub const CPUID_GPA: u64 = 0x5000;
/// The boot stack page.
pub const STACK_GPA: u64 = 0x6000;
/// The first page-table page (the PML4).
pub const PAGE_TABLES_GPA: u64 = 0x10000;
/// Where the VMSA is measured (the address the SNP tools use for the boot
/// CPU's VMSA; the page is not guest memory).
pub const VMSA_GPA: u64 = 0xffff_ffff_f000;
/// Kernel segments must lie at or above this (the boot pages and the
/// legacy hole are below).
pub const KERNEL_MIN_GPA: u64 = 0x10_0000;
/// The most guest memory an image describes (q35 keeps up to 2 GiB below
/// the PCI hole whatever `-m` is).
pub const MAX_MEMORY_MIB: u64 = 2048;
/// The symbol of the kernel's 64-bit entry (`kernel/src/arch/boot.rs`).
pub const ENTRY_SYMBOL: &str = "cloister_start64";
/// Offsets in the start-info page.
const MEMMAP_OFFSET: u64 = 64;
const MODLIST_OFFSET: u64 = 256;
/// The kernel's command-line buffer (`libos::boot::pvh::MAX_CMDLINE_BYTES`),
/// NUL included.
const MAX_CMDLINE_BYTES: usize = libos::boot::pvh::MAX_CMDLINE_BYTES;
/// The SNP guest policy: SMT allowed, the must-be-one bit, ABI 0.0, no
/// debugging, no migration agent (QEMU's default `policy=0x30000`).
pub fn snp_policy() -> u64 {
    SnpPolicy::new().with_smt(1).into()
}
/// CPUID leaves of the CPUID page (leaf, sub-leaf): what the kernel and
/// glibc ask at start-up.
pub const CPUID_LEAVES: &[(u32, u32)] = &[
    (0x0, 0),
    (0x1, 0),
    (0x6, 0),
    (0x7, 0),
    (0x7, 1),
    (0xb, 0),
    (0xb, 1),
    (0xd, 0),
    (0xd, 1),
    (0x8000_0000, 0),
    (0x8000_0001, 0),
    (0x8000_0002, 0),
    (0x8000_0003, 0),
    (0x8000_0004, 0),
    (0x8000_0007, 0),
    (0x8000_0008, 0),
    (0x8000_001f, 0),
];

/// Why no image was built. Messages say what to change.
#[derive(Debug, thiserror::Error)]
pub enum IgvmError {
    /// The kernel file is not a usable x86-64 ELF.
    #[error("the kernel is not an x86-64 ELF executable: {0}")]
    NotElf(String),
    /// No `cloister_start64` symbol.
    #[error(
        "the kernel has no `{ENTRY_SYMBOL}` symbol: build it from this tree (the 64-bit entry is new) and do not strip it"
    )]
    NoEntry,
    /// Two segments share bytes.
    #[error("kernel segments overlap: [{0:#x}, {1:#x}) and [{2:#x}, {3:#x})")]
    Overlap(u64, u64, u64, u64),
    /// A segment outside `[KERNEL_MIN_GPA, memory)`.
    #[error(
        "kernel segment [{0:#x}, {1:#x}) lies outside the guest RAM the image gives the kernel ([{KERNEL_MIN_GPA:#x}, {2:#x}))"
    )]
    SegmentOutsideRam(u64, u64, u64),
    /// The initramfs does not fit.
    #[error(
        "the initramfs ({bytes} bytes at {at:#x}) does not fit in {memory_mib} MiB of guest memory: raise the memory (manifest `memory`) or shrink it"
    )]
    InitrdTooLarge {
        /// Its size.
        bytes: u64,
        /// Where it would start.
        at: u64,
        /// The guest memory.
        memory_mib: u64,
    },
    /// `--cbit` outside 32..=63.
    #[error("C-bit position {0} is out of range: SEV-SNP CPUs report 32..=63 (51 on EPYC)")]
    CbitOutOfRange(u8),
    /// Memory size unusable.
    #[error(
        "guest memory of {0} MiB: the image needs a multiple of 2 MiB, from 4 to {MAX_MEMORY_MIB}"
    )]
    BadMemory(u64),
    /// The command line is too long.
    #[error("the kernel command line is {0} bytes: the kernel reads at most {max}", max = MAX_CMDLINE_BYTES - 1)]
    CmdlineTooLong(usize),
    /// The `igvm` crate refused the headers (a bug here).
    #[error("the igvm crate refused the image: {0}")]
    Igvm(#[from] igvm::Error),
}

/// What goes into an image.
#[derive(Debug, Clone)]
pub struct IgvmInput<'a> {
    /// The kernel ELF file's bytes.
    pub kernel_elf: &'a [u8],
    /// The initramfs (may be empty: no module).
    pub initrd: &'a [u8],
    /// The kernel command line (the launch words go in front).
    pub cmdline: &'a str,
    /// Guest memory in MiB (QEMU's `-m`).
    pub memory_mib: u64,
    /// The C-bit position (`sev-snp-guest,cbitpos=`).
    pub c_bit: u8,
}

/// A built image: the file's bytes and what a user needs to know.
#[derive(Debug, Clone)]
pub struct IgvmImage {
    /// The serialized IGVM file.
    pub bytes: Vec<u8>,
    /// Where the initramfs lies (0 if none).
    pub initrd_gpa: u64,
    /// The kernel's 64-bit entry.
    pub entry_gpa: u64,
    /// The command line as the kernel reads it.
    pub cmdline: String,
}

/// Guest pages by GPA, the unit of the image's page data.
type Pages = BTreeMap<u64, Vec<u8>>;

fn put(pages: &mut Pages, gpa: u64, bytes: &[u8]) {
    let mut at = gpa;
    let mut rest = bytes;
    loop {
        let page = at & !(PAGE - 1);
        let offset = (at - page) as usize;
        let n = rest.len().min(PAGE as usize - offset);
        let data = pages.entry(page).or_insert_with(|| vec![0; PAGE as usize]);
        data[offset..offset + n].copy_from_slice(&rest[..n]);
        rest = &rest[n..];
        at += n as u64;
        if rest.is_empty() {
            break;
        }
    }
}

/// Builds the image for `input` (see the module docs).
pub fn build(input: &IgvmInput<'_>) -> Result<IgvmImage, IgvmError> {
    if !(32..=63).contains(&input.c_bit) {
        return Err(IgvmError::CbitOutOfRange(input.c_bit));
    }
    let memory_mib = input.memory_mib;
    if !(4..=MAX_MEMORY_MIB).contains(&memory_mib) || !memory_mib.is_multiple_of(2) {
        return Err(IgvmError::BadMemory(memory_mib));
    }
    let memory_bytes = memory_mib << 20;
    let kernel = KernelImage::parse(input.kernel_elf)?;
    let mut pages = Pages::new();
    let mut kernel_end = 0;
    for seg in &kernel.segments {
        let end = seg.paddr + seg.mem_bytes;
        if seg.paddr < KERNEL_MIN_GPA || end > memory_bytes {
            return Err(IgvmError::SegmentOutsideRam(seg.paddr, end, memory_bytes));
        }
        let mut bytes = seg.data.to_vec();
        bytes.resize(seg.mem_bytes as usize, 0);
        put(&mut pages, seg.paddr, &bytes);
        kernel_end = kernel_end.max(end);
    }

    let initrd_bytes = input.initrd.len() as u64;
    let initrd_gpa = if initrd_bytes == 0 {
        0
    } else {
        let at = kernel_end.next_multiple_of(2 << 20);
        if at
            .checked_add(initrd_bytes)
            .is_none_or(|end| end > memory_bytes)
        {
            return Err(IgvmError::InitrdTooLarge {
                bytes: initrd_bytes,
                at,
                memory_mib,
            });
        }
        put(&mut pages, at, input.initrd);
        at
    };

    // In front: words after `--` are the program's, not the kernel's.
    let cmdline = format!(
        "snp.secrets_page={SECRETS_GPA:#x} snp.cpuid_page={CPUID_GPA:#x} {}",
        input.cmdline.trim()
    )
    .trim_end()
    .to_string();
    if cmdline.len() >= MAX_CMDLINE_BYTES || cmdline.contains('\0') {
        return Err(IgvmError::CmdlineTooLong(cmdline.len()));
    }
    put(&mut pages, CMDLINE_GPA, cmdline.as_bytes());
    put(
        &mut pages,
        START_INFO_GPA,
        &start_info(initrd_gpa, initrd_bytes, memory_bytes),
    );
    put(&mut pages, GDT_GPA, &tables::gdt());
    put(&mut pages, STACK_GPA, &[0; PAGE as usize]);
    for (i, table) in tables::page_tables(memory_bytes, input.c_bit)
        .iter()
        .enumerate()
    {
        put(&mut pages, PAGE_TABLES_GPA + i as u64 * PAGE, table);
    }

    let mut directives: Vec<IgvmDirectiveHeader> = pages
        .into_iter()
        .map(|(gpa, data)| page_data(gpa, IgvmPageDataType::NORMAL, data))
        .collect();
    directives.push(page_data(
        SECRETS_GPA,
        IgvmPageDataType::SECRETS,
        Vec::new(),
    ));
    let cpuid = cvm::snp::cpuid_page::encode_template(CPUID_LEAVES)
        .expect("the fixed leaf list fits in a CPUID page");
    directives.push(page_data(
        CPUID_GPA,
        IgvmPageDataType::CPUID_DATA,
        cpuid.to_vec(),
    ));
    directives.push(IgvmDirectiveHeader::SnpVpContext {
        gpa: VMSA_GPA,
        compatibility_mask: SNP_MASK,
        vp_index: 0,
        vmsa: Box::new(tables::vmsa(kernel.entry)),
    });
    let file = IgvmFile::new(
        igvm::IgvmRevision::V1,
        vec![IgvmPlatformHeader::SupportedPlatform(
            IGVM_VHS_SUPPORTED_PLATFORM {
                compatibility_mask: SNP_MASK,
                highest_vtl: 0,
                platform_type: IgvmPlatformType::SEV_SNP,
                platform_version: igvm_defs::IGVM_SEV_SNP_PLATFORM_VERSION,
                shared_gpa_boundary: 0,
            },
        )],
        vec![IgvmInitializationHeader::GuestPolicy {
            policy: snp_policy(),
            compatibility_mask: SNP_MASK,
        }],
        directives,
    )?;
    let mut bytes = Vec::new();
    file.serialize(&mut bytes)?;
    Ok(IgvmImage {
        bytes,
        initrd_gpa,
        entry_gpa: kernel.entry,
        cmdline,
    })
}

fn page_data(gpa: u64, data_type: IgvmPageDataType, data: Vec<u8>) -> IgvmDirectiveHeader {
    IgvmDirectiveHeader::PageData {
        gpa,
        compatibility_mask: SNP_MASK,
        flags: IgvmPageDataFlags::new(),
        data_type,
        data,
    }
}

/// The start-info page: `hvm_start_info` v1 with one module (the initramfs,
/// if any), no RSDP, and the three-entry memory map of the module docs.
fn start_info(initrd_gpa: u64, initrd_bytes: u64, memory_bytes: u64) -> Vec<u8> {
    let mut page = vec![0u8; PAGE as usize];
    let mut w = |offset: u64, bytes: &[u8]| {
        let at = offset as usize;
        page[at..at + bytes.len()].copy_from_slice(bytes);
    };
    w(0, &libos::boot::pvh::START_INFO_MAGIC.to_le_bytes());
    w(4, &1u32.to_le_bytes());
    let modules = u32::from(initrd_bytes != 0);
    w(12, &modules.to_le_bytes());
    w(16, &(START_INFO_GPA + MODLIST_OFFSET).to_le_bytes());
    w(24, &CMDLINE_GPA.to_le_bytes());
    w(40, &(START_INFO_GPA + MEMMAP_OFFSET).to_le_bytes());
    let map: [(u64, u64, u32); 3] = [
        (0, 0xa_0000, 1),
        (0xa_0000, 0x6_0000, 2),
        (0x10_0000, memory_bytes - 0x10_0000, 1),
    ];
    w(48, &(map.len() as u32).to_le_bytes());
    for (i, (start, size, kind)) in map.iter().enumerate() {
        let at = MEMMAP_OFFSET + i as u64 * 24;
        w(at, &start.to_le_bytes());
        w(at + 8, &size.to_le_bytes());
        w(at + 16, &kind.to_le_bytes());
    }
    w(MODLIST_OFFSET, &initrd_gpa.to_le_bytes());
    w(MODLIST_OFFSET + 8, &initrd_bytes.to_le_bytes());
    page
}

/// The VMSA type, for the tests and the docs.
pub type Vmsa = SevVmsa;
