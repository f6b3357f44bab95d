//! Fuzz the firmware tables that list the CPUs (`libos::boot::cpus`): the
//! MP configuration table and the ACPI MADT parsed from raw bytes, and the
//! whole discovery (RSDP, RSDT/XSDT, MADT, MP floating pointer) over guest
//! memory where the input appears both in the last KiB of base memory
//! (where qboot puts its MP table) and in the BIOS area (where an RSDP is
//! searched), with the RSDP hint from its first bytes. Any input must give
//! a list or a clean error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libos::boot::cpus::{acpi, discover, mptable};
use libos::boot::pvh::PhysReader;

/// Low memory: the input at 0x9fc00 and at 0xf0000, zeros elsewhere below
/// 4 GiB.
struct Mem<'a>(&'a [u8]);

impl PhysReader for Mem<'_> {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> bool {
        if paddr.saturating_add(buf.len() as u64) > 1 << 32 {
            return false;
        }
        for (i, b) in buf.iter_mut().enumerate() {
            let a = paddr + i as u64;
            *b = [0x9_fc00u64, 0xf_0000]
                .iter()
                .find_map(|&base| {
                    let off = usize::try_from(a.checked_sub(base)?).ok()?;
                    self.0.get(off).copied()
                })
                .unwrap_or(0);
        }
        true
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = mptable::parse_config(data);
    let _ = acpi::parse_madt(data);
    let hint = data
        .get(..4)
        .map_or(0, |b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    if let Ok(list) = discover(&Mem(data), hint) {
        assert!(list.len() <= libos::boot::cpus::MAX_CPUS);
    }
});
