//! Host tests of CPU discovery over byte fixtures: the MP table qboot wrote
//! for a 4-vCPU `microvm` (captured with QEMU's monitor, `xp /400xb
//! 0x9fc00`), hand-built ACPI tables (RSDT and XSDT paths), and random
//! corruptions of both, which must give a list or an error, never a panic.

use alloc::vec;
use alloc::vec::Vec;

use super::*;

/// Fake guest memory: the first MiB, zero but for what a test writes.
struct LowMem(Vec<u8>);

impl LowMem {
    fn new() -> Self {
        Self(vec![0u8; 0x10_0000])
    }
    fn put(&mut self, paddr: usize, bytes: &[u8]) {
        self.0[paddr..paddr + bytes.len()].copy_from_slice(bytes);
    }
}

impl PhysReader for LowMem {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> bool {
        let Ok(start) = usize::try_from(paddr) else {
            return false;
        };
        match self.0.get(start..start.saturating_add(buf.len())) {
            Some(src) if start.checked_add(buf.len()).is_some() => {
                buf.copy_from_slice(src);
                true
            }
            _ => false,
        }
    }
}

/// qboot's floating pointer and configuration table for `-smp 4`
/// (QEMU 7.2), as found at 0x9fc00.
const QBOOT_SMP4: &str = "5f4d505f10fc090001048b000000000050434d501401042e51424f4f5420202030303030303030303030303000000000000000000000e0fe0000000000001403b10f0600fdfbcb1f000000000000000000011401b10f0600fdfbcb1f000000000000000000021401b10f0600fdfbcb1f000000000000000000031401b10f0600fdfbcb1f00000000000000000100495341202020020514010000c0fe03000000000005020300000000010501030000000003050303000000000405040300000000050505030000000006050603000000000705070300000000080508030000000009050903000000000a050a03000000000b050b03000000000c050c03000000000d050d03000000000e050e03000000000f050f0403000000000000040100000000ff01";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn qboot_memory() -> LowMem {
    let mut mem = LowMem::new();
    mem.put(0x9_fc00, &unhex(QBOOT_SMP4));
    mem
}

fn fix_checksum(b: &mut [u8], at: usize) {
    b[at] = 0;
    let sum = b.iter().fold(0u8, |s, &x| s.wrapping_add(x));
    b[at] = 0u8.wrapping_sub(sum);
}

fn sdt(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; acpi::SDT_HEADER_BYTES];
    t[..4].copy_from_slice(signature);
    t.extend_from_slice(body);
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t[8] = 1;
    fix_checksum(&mut t, 9);
    t
}

/// A MADT with local APICs 0 and 2 enabled, 1 disabled, an I/O APIC entry,
/// and x2APIC 300 enabled.
fn madt() -> Vec<u8> {
    let mut body = vec![0, 0, 0xe0, 0xfe, 1, 0, 0, 0];
    for (uid, id, flags) in [(0u8, 0u8, 1u32), (1, 1, 0), (2, 2, 1)] {
        body.extend_from_slice(&[0, 8, uid, id]);
        body.extend_from_slice(&flags.to_le_bytes());
    }
    body.extend_from_slice(&[1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0]);
    body.extend_from_slice(&[9, 16, 0, 0]);
    body.extend_from_slice(&300u32.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&3u32.to_le_bytes());
    sdt(b"APIC", &body)
}

/// RSDP (revision `rev`) at 0xf0000 → RSDT or XSDT at 0x1000 (after a FACP
/// stand-in at 0x3000) → MADT at 0x2000.
fn acpi_memory(rev: u8) -> LowMem {
    let mut mem = LowMem::new();
    mem.put(0x2000, &madt());
    mem.put(0x3000, &sdt(b"FACP", &[0; 8]));
    let mut rsdp = vec![0u8; acpi::RSDP_V2_BYTES];
    rsdp[..8].copy_from_slice(b"RSD PTR ");
    rsdp[15] = rev;
    if rev >= 2 {
        let mut xsdt_body = 0x3000u64.to_le_bytes().to_vec();
        xsdt_body.extend_from_slice(&0x2000u64.to_le_bytes());
        mem.put(0x1000, &sdt(b"XSDT", &xsdt_body));
        rsdp[20..24].copy_from_slice(&36u32.to_le_bytes());
        rsdp[24..32].copy_from_slice(&0x1000u64.to_le_bytes());
    } else {
        let mut rsdt_body = 0x3000u32.to_le_bytes().to_vec();
        rsdt_body.extend_from_slice(&0x2000u32.to_le_bytes());
        mem.put(0x1000, &sdt(b"RSDT", &rsdt_body));
        rsdp[16..20].copy_from_slice(&0x1000u32.to_le_bytes());
    }
    fix_checksum(&mut rsdp[..20], 8);
    if rev >= 2 {
        fix_checksum(&mut rsdp, 32);
    }
    mem.put(0xf_0000, &rsdp);
    mem
}

#[test]
fn reads_qboots_mp_table_for_four_cpus() {
    let mem = qboot_memory();
    assert_eq!(mptable::find_floating(&mem), Some(0x9_fc00));
    let list = discover(&mem, 0).unwrap();
    assert_eq!(list.source, CpuSource::MpTable);
    assert_eq!(list.ids(), &[0, 1, 2, 3]);
    assert_eq!(list.boot_cpu, Some(0));
}

#[test]
fn reads_the_madt_through_the_rsdt_and_the_xsdt() {
    for rev in [0, 2] {
        let mem = acpi_memory(rev);
        let list = discover(&mem, 0).unwrap();
        assert_eq!(list.source, CpuSource::AcpiMadt, "revision {rev}");
        assert_eq!(list.ids(), &[0, 2, 300], "revision {rev}");
        // The loader's hint finds the same RSDP without a scan.
        assert_eq!(acpi::find_rsdp(&mem, 0xf_0000), Some(0xf_0000));
    }
}

#[test]
fn the_madt_wins_over_the_mp_table() {
    let mut mem = acpi_memory(0);
    mem.put(0x9_fc00, &unhex(QBOOT_SMP4));
    assert_eq!(discover(&mem, 0).unwrap().source, CpuSource::AcpiMadt);
}

#[test]
fn no_tables_is_not_found() {
    assert_eq!(discover(&LowMem::new(), 0), Err(CpuTableError::NotFound));
    // A bad hint falls back to the scan, which finds nothing either.
    assert_eq!(acpi::find_rsdp(&LowMem::new(), 0x1234), None);
}

#[test]
fn bad_checksums_and_lengths_are_errors() {
    let mut mem = qboot_memory();
    mem.0[0x9_fc10 + 60] ^= 0x40; // a processor entry's byte
    assert_eq!(
        discover(&mem, 0),
        Err(CpuTableError::BadChecksum("MP configuration table"))
    );

    let mut table = unhex(QBOOT_SMP4)[16..].to_vec();
    table.truncate(table.len() - 4); // the last entry cut short
    table[4] -= 4;
    fix_checksum(&mut table, 7);
    assert_eq!(
        mptable::parse_config(&table),
        Err(CpuTableError::Malformed("MP table entry"))
    );
    table[44] = 7; // unknown entry type
    fix_checksum(&mut table, 7);
    assert_eq!(
        mptable::parse_config(&table),
        Err(CpuTableError::Malformed("MP table entry type"))
    );

    let mut m = madt();
    let zero_length_entry = acpi::SDT_HEADER_BYTES + 8 + 1;
    m[zero_length_entry] = 0;
    assert_eq!(
        acpi::parse_madt(&m),
        Err(CpuTableError::Malformed("MADT entry length"))
    );
    let mut mem = acpi_memory(2);
    mem.0[0x2000 + 40] ^= 1; // the MADT's checksum no longer holds
    // A broken MADT with no MP table: the MADT's error.
    assert_eq!(discover(&mem, 0), Err(CpuTableError::BadChecksum("MADT")));
    // ... and with one, the MP table is used.
    mem.put(0x9_fc00, &unhex(QBOOT_SMP4));
    assert_eq!(discover(&mem, 0).unwrap().source, CpuSource::MpTable);
}

#[test]
fn the_list_keeps_at_most_max_cpus_and_no_duplicates() {
    let mut list = CpuList::contiguous(MAX_CPUS as u32 + 3);
    assert_eq!(list.len(), MAX_CPUS);
    assert_eq!(list.dropped, 3);
    list.push(0);
    assert_eq!(list.dropped, 3, "a duplicate is neither kept nor dropped");
    assert_eq!(CpuList::contiguous(2).ids(), &[0, 1]);
}

#[test]
fn mutated_tables_never_panic() {
    // Firmware tables corrupted at random: a list or a clean error.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut lists, mut errors) = (0, 0);
    for round in 0..4_000 {
        let (mut mem, area) = if round % 2 == 0 {
            (qboot_memory(), (0x9_fc00usize, 0x120usize))
        } else {
            (acpi_memory((round % 4) as u8), (0x1000, 0x2100))
        };
        for _ in 0..(next() % 6 + 1) {
            let at = area.0 + (next() % area.1 as u64) as usize;
            mem.0[at] = next() as u8;
        }
        if round % 4 == 1 {
            // Also corrupt the RSDP, where the pointers live.
            let at = 0xf_0000 + (next() % 36) as usize;
            mem.0[at] = next() as u8;
        }
        match discover(&mem, next() % 0x10_0000) {
            Ok(list) => {
                assert!(list.len() <= MAX_CPUS);
                lists += 1;
            }
            Err(_) => errors += 1,
        }
        // The parsers on their own, over arbitrary bytes.
        let junk: Vec<u8> = (0..(next() % 200)).map(|_| next() as u8).collect();
        let _ = mptable::parse_config(&junk);
        let _ = acpi::parse_madt(&junk);
    }
    assert!(lists > 0 && errors > 0, "{lists} lists, {errors} errors");
}
