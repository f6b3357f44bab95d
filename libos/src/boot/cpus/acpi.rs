//! ACPI's Multiple APIC Description Table (MADT, signature `APIC`), found
//! through the RSDP and the RSDT or XSDT (ACPI 6.5, sections 5.2.5–5.2.12).
//! Only what lists CPUs is read: processor local APIC entries (type 0) and
//! processor local x2APIC entries (type 9), enabled ones.

use super::{
    CpuList, CpuSource, CpuTableError, PhysReader, checksum_ok, read_table, scan, u32_at, u64_at,
};

/// Bytes of an ACPI 1.0 RSDP (the checksum covers these).
pub const RSDP_V1_BYTES: usize = 20;
/// Bytes of an ACPI 2.0+ RSDP (the extended checksum covers these).
pub const RSDP_V2_BYTES: usize = 36;
/// Bytes of a system description table's header.
pub const SDT_HEADER_BYTES: usize = 36;
/// The MADT's fixed fields after the header (local APIC address, flags).
const MADT_FIXED_BYTES: usize = 8;

const MADT_LOCAL_APIC: u8 = 0;
const MADT_LOCAL_X2APIC: u8 = 9;
/// Local APIC flags: enabled.
const LAPIC_ENABLED: u32 = 1;

/// Whether a valid RSDP sits at `paddr`.
fn rsdp_valid(mem: &dyn PhysReader, paddr: u64) -> bool {
    let mut b = [0u8; RSDP_V2_BYTES];
    if !mem.read_phys(paddr, &mut b[..RSDP_V1_BYTES]) {
        return false;
    }
    if &b[..8] != b"RSD PTR " || !checksum_ok(&b[..RSDP_V1_BYTES]) {
        return false;
    }
    // Revision 2+: the extended structure must check too.
    b[15] < 2 || (mem.read_phys(paddr, &mut b) && checksum_ok(&b))
}

/// Finds the RSDP: `hint` (the PVH start info's `rsdp_paddr`) when non-zero
/// and valid, else the first KiB of the EBDA and `0xe0000..0x100000`.
pub fn find_rsdp(mem: &dyn PhysReader, hint: u64) -> Option<u64> {
    if hint != 0 && rsdp_valid(mem, hint) {
        return Some(hint);
    }
    let mut seg = [0u8; 2];
    let ebda = if mem.read_phys(0x40e, &mut seg) {
        u64::from(u16::from_le_bytes(seg)) << 4
    } else {
        0
    };
    let mut areas = [(0xe_0000u64, 0x2_0000usize), (0, 0)];
    if (0x8_0000..0xa_0000).contains(&ebda) {
        areas[1] = (ebda, 1024);
    }
    areas
        .into_iter()
        .filter(|&(_, len)| len > 0)
        .find_map(|(start, len)| scan(mem, start, len, b"RSD PTR ", |p| rsdp_valid(mem, p)))
}

/// Reads the whole table at `paddr` (header, then the length it claims),
/// checking its checksum.
fn read_sdt(
    mem: &dyn PhysReader,
    what: &'static str,
    paddr: u64,
) -> Result<super::TableBuf, CpuTableError> {
    let header = read_table(mem, what, paddr, SDT_HEADER_BYTES)?;
    let len = u32_at(&header, 4) as usize;
    if len < SDT_HEADER_BYTES {
        return Err(CpuTableError::Malformed(what));
    }
    let table = read_table(mem, what, paddr, len)?;
    if !checksum_ok(&table) {
        return Err(CpuTableError::BadChecksum(what));
    }
    Ok(table)
}

/// Finds the MADT through the RSDP and lists the enabled CPUs.
pub fn find_cpus(mem: &dyn PhysReader, rsdp_hint: u64) -> Result<CpuList, CpuTableError> {
    let rsdp_paddr = find_rsdp(mem, rsdp_hint).ok_or(CpuTableError::NotFound)?;
    let rsdp = read_table(mem, "RSDP", rsdp_paddr, RSDP_V1_BYTES)?;
    let xsdt = if rsdp[15] >= 2 {
        u64_at(&read_table(mem, "RSDP", rsdp_paddr, RSDP_V2_BYTES)?, 24)
    } else {
        0
    };
    let (root, what, entry_bytes) = if xsdt != 0 {
        (xsdt, "XSDT", 8)
    } else {
        (u64::from(u32_at(&rsdp, 16)), "RSDT", 4)
    };
    let root = read_sdt(mem, what, root)?;
    for entry in root[SDT_HEADER_BYTES..].chunks_exact(entry_bytes) {
        let paddr = if entry_bytes == 8 {
            u64_at(entry, 0)
        } else {
            u64::from(u32_at(entry, 0))
        };
        let mut sig = [0u8; 4];
        if mem.read_phys(paddr, &mut sig) && &sig == b"APIC" {
            return parse_madt(&read_sdt(mem, "MADT", paddr)?);
        }
    }
    Err(CpuTableError::NotFound)
}

/// Parses a whole MADT (header included; its checksum is not checked here).
pub fn parse_madt(table: &[u8]) -> Result<CpuList, CpuTableError> {
    if table.len() < SDT_HEADER_BYTES + MADT_FIXED_BYTES || &table[..4] != b"APIC" {
        return Err(CpuTableError::Malformed("MADT header"));
    }
    let len = u32_at(table, 4) as usize;
    let table = table
        .get(..len)
        .filter(|t| t.len() >= SDT_HEADER_BYTES + MADT_FIXED_BYTES)
        .ok_or(CpuTableError::Malformed("MADT length"))?;
    let mut list = CpuList::new(CpuSource::AcpiMadt);
    let mut off = SDT_HEADER_BYTES + MADT_FIXED_BYTES;
    while off < table.len() {
        let (kind, size) = match table.get(off..off + 2) {
            Some(&[kind, size]) => (kind, usize::from(size)),
            _ => return Err(CpuTableError::Malformed("MADT entry header")),
        };
        if size < 2 {
            return Err(CpuTableError::Malformed("MADT entry length"));
        }
        let entry = table
            .get(off..off + size)
            .ok_or(CpuTableError::Malformed("MADT entry"))?;
        // (APIC id, flags) of a processor entry.
        let cpu = match kind {
            MADT_LOCAL_APIC if size >= 8 => Some((u32::from(entry[3]), u32_at(entry, 4))),
            MADT_LOCAL_X2APIC if size >= 16 => Some((u32_at(entry, 4), u32_at(entry, 8))),
            MADT_LOCAL_APIC | MADT_LOCAL_X2APIC => {
                return Err(CpuTableError::Malformed("MADT processor entry length"));
            }
            _ => None,
        };
        if let Some((id, flags)) = cpu
            && flags & LAPIC_ENABLED != 0
        {
            list.push(id);
        }
        off += size;
    }
    Ok(list)
}
