//! Gathers what the PVH loader tells us (memory map, command line, modules)
//! into kernel-owned copies, before anything can overwrite the loader's
//! structures, and computes the usable RAM.

use libos::boot::memmap::{MemoryMap, PhysRange};
use libos::boot::pvh::{
    MAX_CMDLINE_BYTES, MemoryEntry, MemoryType, Module, PhysReader, PvhError, StartInfo,
};

use crate::mm::layout;

/// Most memory-map entries kept for display.
pub const MAX_E820: usize = 128;
/// Most modules kept.
pub const MAX_MODULES: usize = 8;
/// Memory below this is left alone: real-mode structures and firmware in
/// the first MiB, and the first 2 MiB block as a whole, which the boot page
/// table maps with one large page over the firmware ROM (slow to write to
/// under a shadow-paging hypervisor).
const LOW_MEMORY_BYTES: u64 = 2 << 20;

/// Reads physical memory through the boot page table's direct map.
struct EarlyPhys;

impl PhysReader for EarlyPhys {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> bool {
        crate::mm::read_early_phys(paddr, buf)
    }
}

/// What the kernel keeps from the loader.
#[derive(Debug)]
pub struct BootInfo {
    cmdline: [u8; MAX_CMDLINE_BYTES],
    cmdline_len: usize,
    /// The loader's memory map, as given.
    pub e820: [Option<MemoryEntry>; MAX_E820],
    /// Every RAM range (page aligned), reserved or not: the direct map.
    pub ram: MemoryMap,
    /// RAM free for the frame allocator.
    pub usable: MemoryMap,
    /// Loaded modules (the initramfs).
    pub modules: [Option<Module>; MAX_MODULES],
    /// Entries the memory map had beyond what we keep, or that did not fit.
    pub dropped_entries: u32,
    /// The ACPI RSDP's physical address the loader gave (0: none).
    pub rsdp_paddr: u64,
}

impl BootInfo {
    /// The command line (lossy: invalid UTF-8 yields an empty line).
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }
}

fn reserve(map: &mut MemoryMap, start: u64, size: u64, dropped: &mut u32) {
    if map.reserve(start, size).is_err() {
        *dropped += 1;
    }
}

/// Reads the start info at `paddr` and computes the usable RAM.
pub fn gather(paddr: u64, out: &mut BootInfo) -> Result<(), PvhError> {
    let mem = EarlyPhys;
    let info = StartInfo::read(&mem, paddr)?;
    out.cmdline_len = info.read_cmdline(&mem, &mut out.cmdline)?;
    out.rsdp_paddr = info.rsdp_paddr;

    for i in 0..info.memmap_count {
        let e = info.memory_entry(&mem, i)?;
        if let Some(slot) = out.e820.get_mut(i as usize) {
            *slot = Some(e);
        } else {
            out.dropped_entries += 1;
        }
        // qboot reports a trailing all-zero entry; add_usable ignores it.
        if matches!(e.kind, MemoryType::Ram) {
            if out.ram.add_usable(e.paddr, e.size_bytes).is_err() {
                out.dropped_entries += 1;
            }
            if out.usable.add_usable(e.paddr, e.size_bytes).is_err() {
                out.dropped_entries += 1;
            }
        }
    }

    let usable = &mut out.usable;
    let dropped = &mut out.dropped_entries;
    reserve(usable, 0, LOW_MEMORY_BYTES, dropped);
    let (k0, k1) = (layout::kernel_phys_start(), layout::kernel_phys_end());
    reserve(usable, k0, k1 - k0, dropped);
    reserve(usable, paddr, 64, dropped);
    if info.cmdline_paddr != 0 {
        reserve(
            usable,
            info.cmdline_paddr,
            out.cmdline_len as u64 + 1,
            dropped,
        );
    }
    for i in 0..info.module_count {
        let m = info.module(&mem, i)?;
        reserve(usable, m.paddr, m.size_bytes, dropped);
        if let Some(slot) = out.modules.get_mut(i as usize) {
            *slot = Some(m);
        }
    }
    Ok(())
}

impl BootInfo {
    /// An empty record, to be filled by [`gather`].
    pub const fn empty() -> Self {
        Self {
            cmdline: [0; MAX_CMDLINE_BYTES],
            cmdline_len: 0,
            e820: [None; MAX_E820],
            ram: MemoryMap::new(),
            usable: MemoryMap::new(),
            modules: [None; MAX_MODULES],
            dropped_entries: 0,
            rsdp_paddr: 0,
        }
    }

    /// Every RAM range, for the direct map.
    pub fn ram_ranges(&self) -> &[PhysRange] {
        self.ram.ranges()
    }
}
