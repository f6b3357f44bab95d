//! In-guest tests of the platform seam: device registers reached through
//! a trapped mapping (`platform.mmio=emulate`) give what a direct access
//! gives, and writes through it reach the device.

use super::mmio::{self, DeviceRegisters};
use super::mmio_emulation::emulated_accesses;
use super::{MmioAccess, Width, platform};
use crate::arch::{apic, ioapic};
use crate::ktest;

/// Local APIC version register.
const APIC_VERSION: u64 = 0x30;
/// Local APIC id register.
const APIC_ID: u64 = 0x20;
/// Local APIC task-priority register (read/write, no side effect with
/// interrupts off).
const APIC_TPR: u64 = 0x80;

fn direct(paddr: u64) -> u32 {
    platform()
        .mmio_read(paddr, Width::U32)
        .expect("a register of a mapped device") as u32
}

/// Reads the register at `offset` of `regs` through its (trapped)
/// mapping, checking that exactly one access was emulated.
fn trapped_read(regs: &DeviceRegisters, offset: u64) -> u32 {
    let before = emulated_accesses();
    let value = regs.read32(offset);
    assert_eq!(emulated_accesses(), before + 1, "the read was not emulated");
    value
}

fn trapped_write(regs: &DeviceRegisters, offset: u64, value: u32) {
    let before = emulated_accesses();
    regs.write32(offset, value);
    assert_eq!(
        emulated_accesses(),
        before + 1,
        "the write was not emulated"
    );
}

ktest!(
    #[ignore]
    fn emulated_mmio_matches_direct_access() {
        assert_eq!(
            platform().mmio_access(),
            MmioAccess::Trapped,
            "boot with platform.mmio=emulate"
        );
        x86_64::instructions::interrupts::without_interrupts(|| {
            // The local APIC: id and version read through the trapped
            // mapping equal the direct reads; a TPR write reaches it.
            let base = apic::physical_base();
            let regs = mmio::map_registers(base, crate::mm::PAGE_BYTES).expect("APIC");
            let version = trapped_read(&regs, APIC_VERSION);
            assert_eq!(version, direct(base + APIC_VERSION));
            assert_ne!(version & 0xff, 0, "APIC version {version:#x}");
            assert_eq!(trapped_read(&regs, APIC_ID), direct(base + APIC_ID));
            let tpr = direct(base + APIC_TPR);
            trapped_write(&regs, APIC_TPR, 0x20);
            assert_eq!(direct(base + APIC_TPR) & 0xff, 0x20);
            assert_eq!(trapped_read(&regs, APIC_TPR) & 0xff, 0x20);
            trapped_write(&regs, APIC_TPR, tpr);
            assert_eq!(direct(base + APIC_TPR), tpr);

            // The I/O APIC: select the version register through the trapped
            // mapping, read the window directly, and the other way round.
            let io = mmio::map_registers(ioapic::IOAPIC_PADDR, 0x20).expect("I/O APIC");
            trapped_write(&io, 0x00, 0x01);
            let io_version = direct(ioapic::IOAPIC_PADDR + 0x10);
            assert_ne!(io_version, 0);
            assert_ne!(io_version, u32::MAX);
            platform()
                .mmio_write(ioapic::IOAPIC_PADDR, Width::U32, 0x01)
                .expect("IOREGSEL");
            assert_eq!(trapped_read(&io, 0x10), io_version);

            // The cost of one access each way (informational, not a
            // verdict): the median of batches of reads of the APIC version.
            let trapped_ns = per_read_ns(|| regs.read32(APIC_VERSION));
            let direct_ns = per_read_ns(|| direct(base + APIC_VERSION));
            crate::kprintln!(
                "mmio cost: trapped read {trapped_ns} ns, direct read {direct_ns} ns (median of {BATCHES} batches of {READS})"
            );
        });
    }
);

const BATCHES: usize = 9;
const READS: u64 = 200;

/// Nanoseconds per call of `read`, the median of [`BATCHES`] batches of
/// [`READS`] calls.
fn per_read_ns(read: impl Fn() -> u32) -> u64 {
    let mut ns = [0u64; BATCHES];
    for slot in &mut ns {
        let start = crate::time::now_ns();
        for _ in 0..READS {
            core::hint::black_box(read());
        }
        *slot = (crate::time::now_ns() - start) / READS;
    }
    ns.sort_unstable();
    ns[BATCHES / 2]
}
