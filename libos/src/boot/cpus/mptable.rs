//! The Intel MultiProcessor Specification (1.4) tables: the floating
//! pointer structure (`_MP_`) and the configuration table (`PCMP`) it
//! points to, whose processor entries give each CPU's local APIC id.
//!
//! qboot, QEMU `microvm`'s firmware, writes one at `0x9fc00` (the last KiB
//! of base memory) when the machine runs without ACPI. The spec's search
//! areas: the first KiB of the EBDA, the last KiB of base memory, and the
//! BIOS ROM `0xf0000..0x100000`. Entries are read up to the table's
//! length (qboot's header counts 0 entries).

use super::{
    CpuList, CpuSource, CpuTableError, PhysReader, checksum_ok, read_table, scan, u16_at, u32_at,
};

/// Bytes of the floating pointer structure.
pub const FLOATING_BYTES: usize = 16;
/// Bytes of the configuration table's header.
pub const HEADER_BYTES: usize = 44;
/// Bytes of a processor entry (type 0); every other base entry is 8.
pub const PROCESSOR_ENTRY_BYTES: usize = 20;

/// Entry types of the base table.
const ENTRY_PROCESSOR: u8 = 0;
/// Processor flags: usable, and the boot processor.
const CPU_ENABLED: u8 = 1;
const CPU_BOOT: u8 = 2;

/// The search areas the spec names, as (start, length).
fn search_areas(mem: &dyn PhysReader) -> [(u64, usize); 3] {
    // The BIOS data area's EBDA segment (0x40e) and base memory size in KiB
    // (0x413); standard values when unreadable or implausible.
    let mut bda = [0u8; 8];
    let (ebda, base_kib) = if mem.read_phys(0x40e, &mut bda) {
        (u64::from(u16_at(&bda, 0)) << 4, u64::from(u16_at(&bda, 5)))
    } else {
        (0, 0)
    };
    let ebda = if (0x8_0000..0xa_0000).contains(&ebda) {
        ebda
    } else {
        0x9_fc00
    };
    let base_top = if (512..=640).contains(&base_kib) {
        base_kib * 1024 - 1024
    } else {
        0x9_fc00
    };
    [(ebda, 1024), (base_top, 1024), (0xf_0000, 0x1_0000)]
}

/// Whether a valid floating pointer structure sits at `paddr`.
fn floating_valid(mem: &dyn PhysReader, paddr: u64) -> bool {
    let mut b = [0u8; FLOATING_BYTES];
    // Length in 16-byte units must be 1; the checksum covers all of it.
    mem.read_phys(paddr, &mut b) && &b[..4] == b"_MP_" && b[8] == 1 && checksum_ok(&b)
}

/// Finds the floating pointer structure; returns its address.
pub fn find_floating(mem: &dyn PhysReader) -> Option<u64> {
    search_areas(mem)
        .into_iter()
        .find_map(|(start, len)| scan(mem, start, len, b"_MP_", |p| floating_valid(mem, p)))
}

/// Finds the MP tables and lists the enabled processors.
pub fn find_cpus(mem: &dyn PhysReader) -> Result<CpuList, CpuTableError> {
    let floating = find_floating(mem).ok_or(CpuTableError::NotFound)?;
    let f = read_table(mem, "MP floating pointer", floating, FLOATING_BYTES)?;
    if f[11] != 0 {
        // A "default configuration" (feature byte 1): no table, two CPUs
        // with fixed ids. No VMM uses it; say so rather than guess.
        return Err(CpuTableError::Malformed(
            "MP floating pointer (default configurations are not supported)",
        ));
    }
    let config = u64::from(u32_at(&f, 4));
    if config == 0 {
        return Err(CpuTableError::Malformed("MP floating pointer (no table)"));
    }
    let header = read_table(mem, "MP configuration table", config, HEADER_BYTES)?;
    let len = usize::from(u16_at(&header, 4));
    if &header[..4] != b"PCMP" || len < HEADER_BYTES {
        return Err(CpuTableError::Malformed("MP configuration table header"));
    }
    let table = read_table(mem, "MP configuration table", config, len)?;
    parse_config(&table)
}

/// Parses a whole configuration table (`PCMP` header and base entries).
pub fn parse_config(table: &[u8]) -> Result<CpuList, CpuTableError> {
    if table.len() < HEADER_BYTES || &table[..4] != b"PCMP" {
        return Err(CpuTableError::Malformed("MP configuration table header"));
    }
    let len = usize::from(u16_at(table, 4));
    let table = table
        .get(..len)
        .ok_or(CpuTableError::Malformed("MP configuration table length"))?;
    if !checksum_ok(table) {
        return Err(CpuTableError::BadChecksum("MP configuration table"));
    }
    // Entries run to the table's length, as Linux reads them: qboot leaves
    // the header's entry count at 0.
    let mut list = CpuList::new(CpuSource::MpTable);
    let mut off = HEADER_BYTES;
    while let Some(&kind) = table.get(off) {
        let size = match kind {
            ENTRY_PROCESSOR => PROCESSOR_ENTRY_BYTES,
            1..=4 => 8,
            _ => return Err(CpuTableError::Malformed("MP table entry type")),
        };
        let entry = table
            .get(off..off + size)
            .ok_or(CpuTableError::Malformed("MP table entry"))?;
        if kind == ENTRY_PROCESSOR && entry[3] & CPU_ENABLED != 0 {
            let id = u32::from(entry[1]);
            list.push(id);
            if entry[3] & CPU_BOOT != 0 {
                list.boot_cpu = Some(id);
            }
        }
        off += size;
    }
    Ok(list)
}
