//! The native backend: no memory encryption (plain QEMU/KVM, TCG). Every
//! operation is the bare instruction: `in`/`out`, volatile loads and
//! stores on device registers, `cpuid`, `rdmsr`/`wrmsr`, `hlt`; memory is
//! all "private" and visible to the host anyway, so the visibility and
//! acceptance calls do nothing, and the PTE masks are 0.
//!
//! With `platform.mmio=emulate` on the command line ([`set_mmio_emulated`])
//! device registers are left unmapped at the addresses drivers use: every
//! access faults and is emulated by decoding the instruction — the path a `#VC`/`#VE` handler takes on SEV-SNP or
//! TDX, run for real under plain QEMU. The emulation performs the decoded
//! access through [`Platform::mmio_read`]/[`Platform::mmio_write`], which
//! here use the registers' mapping in the platform's own window
//! ([`super::mmio::window_address`]).

use core::sync::atomic::{AtomicBool, Ordering};

use alloc::vec::Vec;
use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

use super::{
    ApStart, CpuidResult, MmioAccess, Platform, PlatformError, PlatformKind, PteMasks,
    REPORT_DATA_BYTES, Result, Termination, Width,
};

/// QEMU's `isa-debug-exit` device: writing `v` makes QEMU exit with
/// `(v << 1) | 1`.
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Written to [`DEBUG_EXIT_PORT`] on success (QEMU exits with 33).
const DEBUG_EXIT_SUCCESS: u32 = 0x10;
/// Written on failure (QEMU exits with 35).
const DEBUG_EXIT_FAILURE: u32 = 0x11;

/// The native backend.
#[derive(Debug)]
pub struct NativePlatform {
    /// `platform.mmio=emulate`: device registers trap and are emulated.
    mmio_emulated: AtomicBool,
}

/// The one instance.
pub static NATIVE: NativePlatform = NativePlatform {
    mmio_emulated: AtomicBool::new(false),
};

/// Switches device-register access to emulation by instruction decode
/// (`platform.mmio=emulate`). Call before any device is mapped.
pub fn set_mmio_emulated(on: bool) {
    NATIVE.mmio_emulated.store(on, Ordering::Relaxed);
}

impl Platform for NativePlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Native
    }

    fn io_read(&self, port: u16, width: Width) -> Result<u32> {
        // SAFETY: reading an I/O port has no memory-safety effect on this
        // kernel (no device it reads can write RAM by being read: DMA is
        // set up through registers and the shared pool only); the caller
        // chose the port and owns the device behind it.
        unsafe {
            match width {
                Width::U8 => Ok(u32::from(Port::<u8>::new(port).read())),
                Width::U16 => Ok(u32::from(Port::<u16>::new(port).read())),
                Width::U32 => Ok(Port::<u32>::new(port).read()),
                Width::U64 => Err(PlatformError::InvalidArgument),
            }
        }
    }

    fn io_write(&self, port: u16, width: Width, value: u32) -> Result<()> {
        // SAFETY: as in `io_read`: the ports Cloister writes (UARTs, PIT,
        // PIC masks, CMOS index, PCI configuration, debug exit) cannot make
        // a device write guest memory without a DMA address, and DMA
        // addresses are only ever given out of the shared pool.
        unsafe {
            match width {
                Width::U8 => Port::<u8>::new(port).write(value as u8),
                Width::U16 => Port::<u16>::new(port).write(value as u16),
                Width::U32 => Port::<u32>::new(port).write(value),
                Width::U64 => return Err(PlatformError::InvalidArgument),
            }
        }
        Ok(())
    }

    fn mmio_access(&self) -> MmioAccess {
        if self.mmio_emulated.load(Ordering::Relaxed) {
            MmioAccess::Trapped
        } else {
            MmioAccess::Mapped
        }
    }

    fn mmio_read(&self, paddr: u64, width: Width) -> Result<u64> {
        let vaddr = super::mmio::window_address(paddr, width)?;
        // SAFETY: `window_address` returned the uncached mapping of a
        // device register range registered by `mmio::map_registers`,
        // `width` bytes inside it and naturally aligned; device registers
        // are not Rust objects, so a volatile access aliases nothing.
        unsafe {
            Ok(match width {
                Width::U8 => u64::from((vaddr as *const u8).read_volatile()),
                Width::U16 => u64::from((vaddr as *const u16).read_volatile()),
                Width::U32 => u64::from((vaddr as *const u32).read_volatile()),
                Width::U64 => (vaddr as *const u64).read_volatile(),
            })
        }
    }

    fn mmio_write(&self, paddr: u64, width: Width, value: u64) -> Result<()> {
        let vaddr = super::mmio::window_address(paddr, width)?;
        // SAFETY: as in `mmio_read`.
        unsafe {
            match width {
                Width::U8 => (vaddr as *mut u8).write_volatile(value as u8),
                Width::U16 => (vaddr as *mut u16).write_volatile(value as u16),
                Width::U32 => (vaddr as *mut u32).write_volatile(value as u32),
                Width::U64 => (vaddr as *mut u64).write_volatile(value),
            }
        }
        Ok(())
    }

    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        let (eax, ebx, ecx, edx) = crate::arch::cpu::cpuid(leaf, subleaf);
        CpuidResult { eax, ebx, ecx, edx }
    }

    fn read_msr(&self, msr: u32) -> Result<u64> {
        Ok(crate::arch::cpu::read_msr(msr))
    }

    unsafe fn write_msr(&self, msr: u32, value: u64) -> Result<()> {
        // SAFETY: the caller guarantees the write keeps the kernel's
        // memory-safety assumptions (this method's contract).
        unsafe { Msr::new(msr).write(value) };
        Ok(())
    }

    fn halt(&self) {
        x86_64::instructions::hlt();
    }

    fn wait_for_interrupt(&self) {
        x86_64::instructions::interrupts::enable_and_hlt();
    }

    /// INIT-SIPI-SIPI through the local APIC: the AP starts in real mode
    /// at `entry_paddr`, which must be page aligned and below 1 MiB (the
    /// SIPI vector is its page number). The trampoline there finds its
    /// stack in its own parameter block (`arch::smp::trampoline`), so
    /// `stack_top` is not used here.
    fn start_cpu(&self, ap: &ApStart) -> Result<()> {
        if !ap.entry_paddr.is_multiple_of(crate::mm::PAGE_BYTES) || ap.entry_paddr >= 0x10_0000 {
            return Err(PlatformError::InvalidArgument);
        }
        let vector = (ap.entry_paddr >> 12) as u8;
        crate::arch::apic::start_ap(ap.apic_id, vector).map_err(|e| match e {
            crate::arch::apic::IpiError::DestinationOutOfRange(_) => PlatformError::InvalidArgument,
            crate::arch::apic::IpiError::Stuck => {
                PlatformError::Protocol("the local APIC never sent the IPI")
            }
        })
    }

    fn pte_masks(&self) -> PteMasks {
        PteMasks::default()
    }

    fn make_shared(&self, paddr: u64, bytes: u64) -> Result<()> {
        check_pages(paddr, bytes)
    }

    fn make_private(&self, paddr: u64, bytes: u64) -> Result<()> {
        check_pages(paddr, bytes)
    }

    fn accept_memory(&self, paddr: u64, bytes: u64) -> Result<()> {
        check_pages(paddr, bytes)
    }

    fn terminate(&self, how: Termination) -> ! {
        let value = match how {
            Termination::Success => DEBUG_EXIT_SUCCESS,
            Termination::Failure(_) => DEBUG_EXIT_FAILURE,
        };
        // Without the device (another VMM) the write goes nowhere and the
        // CPU halts below.
        let _ = self.io_write(DEBUG_EXIT_PORT, Width::U32, value);
        crate::arch::cpu::halt_forever()
    }

    /// The unsigned native report (`audit::attest::NativeReport`, magic
    /// `CLOISTER-UNSIGNED-REPORT`): no hardware signs it, so it is **not**
    /// an attestation; it lets the binding flow run without CVM hardware.
    /// No measurement (marked absent).
    fn attestation_report(&self, report_data: &[u8; REPORT_DATA_BYTES]) -> Result<Vec<u8>> {
        let report = audit::attest::NativeReport {
            measurement: None,
            report_data: *report_data,
        };
        Ok(report.to_bytes().to_vec())
    }
}

/// Native memory needs no state change; the range must still be page
/// aligned, as every backend requires.
fn check_pages(paddr: u64, bytes: u64) -> Result<()> {
    let page = crate::mm::PAGE_BYTES;
    if !paddr.is_multiple_of(page)
        || !bytes.is_multiple_of(page)
        || paddr.checked_add(bytes).is_none()
    {
        return Err(PlatformError::InvalidArgument);
    }
    Ok(())
}
