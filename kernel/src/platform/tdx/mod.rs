//! The Intel TDX guest backend: [`super::Platform`] for a trust domain.
//!
//! Detection follows Intel's TDX guest-host communication interface
//! (GHCI, 2.4.1) and Linux's `tdx_early_init`: CPUID leaf `0x21`, sub-leaf
//! 0, returns the vendor string `"IntelTDX    "` in EBX, EDX, ECX inside a
//! trust domain. CPUID leaf `0x21` is answered by the TDX module without a
//! `#VE`, so detection is safe before any handler exists.
//!
//! At boot [`backend`] asks the module for `TDG.VP.INFO` and takes the
//! shared bit from the GPA width (bit `GPAW - 1`). Then:
//!
//! - port I/O, device registers (`#VE.RequestMMIO`, at the register's GPA
//!   with the shared bit), halting and the hypervisor CPUID range go to the
//!   host with `TDG.VP.VMCALL`; device registers are mapped *trapped*
//!   ([`MmioAccess::Trapped`]), so each access page-faults and the fault
//!   path's instruction decoding (the emulated-MMIO work, outside this
//!   file) performs it with [`Platform::mmio_read`]/`mmio_write` here,
//!   without a `#VE`;
//! - other CPUID leaves and MSRs are the instructions themselves (the TDX
//!   module answers them; those it leaves to the host raise `#VE`, see
//!   [`on_ve`]);
//! - memory: [`Platform::accept_memory`] is `TDG.MEM.PAGE.ACCEPT`;
//!   `make_shared`/`make_private` are `MapGPA` (and acceptance on the way
//!   back to private); the PTE masks carry the shared bit;
//! - termination: success writes QEMU's debug-exit port, failure is
//!   `ReportFatalError` with the reason code;
//! - attestation: `TDG.MR.REPORT` into a private frame.
//!
//! The logic (register conventions, retries, checks of the host's answers)
//! is `cvm::tdx`, host-tested; this file only joins it to the seam and
//! `hw` executes `TDCALL`. **None of it has run in a trust domain**:
//! there is no TDX hardware where Cloister is built (docs/CVM.md).

mod hw;

use core::sync::atomic::{AtomicU64, Ordering};

use alloc::vec::Vec;
use cvm::tdx::memory::{self, ConvertError};
use cvm::tdx::report;
use cvm::tdx::tdcall::{self, Module, TdcallError};
use cvm::tdx::tdvmcall::{self, VmcallError};
use cvm::tdx::ve::{self, Gprs, VeError};
use x86_64::registers::model_specific::Msr;

use super::{
    ApStart, CpuidResult, MmioAccess, Platform, PlatformError, PlatformKind, PteMasks,
    REPORT_DATA_BYTES, Result, Termination, Width,
};
use crate::arch::cpu::cpuid;
use hw::Hw;

/// The CPUID leaf that identifies a trust domain.
pub const CPUID_TDX_GUEST: u32 = 0x21;
/// QEMU's `isa-debug-exit` port and the value that means success (as the
/// native backend).
const DEBUG_EXIT_PORT: u16 = 0xf4;
const DEBUG_EXIT_SUCCESS: u32 = 0x10;

/// Whether this is a TDX guest (a trust domain).
pub fn detect() -> bool {
    if cpuid(0, 0).0 < CPUID_TDX_GUEST {
        return false;
    }
    let (_, ebx, ecx, edx) = cpuid(CPUID_TDX_GUEST, 0);
    let mut vendor = [0u8; 12];
    vendor[..4].copy_from_slice(&ebx.to_le_bytes());
    vendor[4..8].copy_from_slice(&edx.to_le_bytes());
    vendor[8..].copy_from_slice(&ecx.to_le_bytes());
    &vendor == b"IntelTDX    "
}

/// The TDX backend's state: the shared bit and the TD's attributes.
#[derive(Debug)]
pub struct TdxPlatform {
    shared_bit: AtomicU64,
    attributes: AtomicU64,
}

static TDX: TdxPlatform = TdxPlatform {
    shared_bit: AtomicU64::new(0),
    attributes: AtomicU64::new(0),
};

/// The TDX backend, after `TDG.VP.INFO`. If the module refuses that, there
/// is no shared bit to reach the host with: the TD reports a fatal error
/// and stops.
pub fn backend() -> &'static dyn Platform {
    match tdcall::vp_info_result(&Hw.tdcall(tdcall::vp_info())) {
        Ok(info) => {
            TDX.shared_bit.store(info.shared_bit(), Ordering::Relaxed);
            TDX.attributes.store(info.attributes, Ordering::Relaxed);
            &TDX
        }
        Err(_) => fatal(super::FailureReason::Platform.code().into()),
    }
}

/// `ReportFatalError`, repeated; halts with interrupts blocked between.
fn fatal(code: u64) -> ! {
    x86_64::instructions::interrupts::disable();
    loop {
        Hw.tdcall(tdvmcall::report_fatal_error(code));
        stop_once();
    }
}

/// One `Instruction.HLT` with interrupts blocked.
fn stop_once() {
    Hw.tdcall(tdvmcall::hlt(true));
}

fn vmcall_error(e: VmcallError) -> PlatformError {
    match e {
        VmcallError::Tdcall(status) | VmcallError::Host(status) => PlatformError::HostError(status),
    }
}

fn tdcall_error(e: TdcallError) -> PlatformError {
    match e {
        TdcallError::Status(status) => PlatformError::HostError(status),
        TdcallError::Protocol(what) => PlatformError::Protocol(what),
    }
}

fn convert_error(e: ConvertError) -> PlatformError {
    match e {
        ConvertError::InvalidRange => PlatformError::InvalidArgument,
        ConvertError::Map(e) => vmcall_error(e),
        ConvertError::Accept(e) => tdcall_error(e),
    }
}

impl TdxPlatform {
    fn shared_bit(&self) -> u64 {
        self.shared_bit.load(Ordering::Relaxed)
    }

    /// The GPA of device register `paddr`: in the shared half.
    fn mmio_gpa(&self, paddr: u64) -> Result<u64> {
        let bit = self.shared_bit();
        if paddr >= bit {
            return Err(PlatformError::InvalidArgument);
        }
        Ok(paddr | bit)
    }

    /// The TD's `ATTRIBUTES` from `TDG.VP.INFO` (bit 0: debuggable).
    pub fn attributes(&self) -> u64 {
        self.attributes.load(Ordering::Relaxed)
    }
}

impl Platform for TdxPlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Tdx
    }

    fn io_read(&self, port: u16, width: Width) -> Result<u32> {
        let bytes = width.bytes() as u8;
        let regs = tdvmcall::io(port, bytes, false, 0).ok_or(PlatformError::InvalidArgument)?;
        tdvmcall::io_result(&Hw.tdcall(regs), bytes).map_err(vmcall_error)
    }

    fn io_write(&self, port: u16, width: Width, value: u32) -> Result<()> {
        let bytes = width.bytes() as u8;
        let value = width.truncate(value.into()) as u32;
        let regs = tdvmcall::io(port, bytes, true, value).ok_or(PlatformError::InvalidArgument)?;
        tdvmcall::check(&Hw.tdcall(regs)).map_err(vmcall_error)
    }

    fn mmio_access(&self) -> MmioAccess {
        // The page-fault path decodes the access and calls mmio_read/write
        // below; the EPT-violation #VE path (ve::is_mmio) needs the
        // decoder connected to the #VE entry, not done yet.
        MmioAccess::Trapped
    }

    fn mmio_read(&self, paddr: u64, width: Width) -> Result<u64> {
        let gpa = self.mmio_gpa(paddr)?;
        let regs = tdvmcall::mmio(gpa, width.bytes() as u8, false, 0)
            .ok_or(PlatformError::InvalidArgument)?;
        let answer = Hw.tdcall(regs);
        tdvmcall::check(&answer).map_err(vmcall_error)?;
        Ok(width.truncate(answer.r11))
    }

    fn mmio_write(&self, paddr: u64, width: Width, value: u64) -> Result<()> {
        let gpa = self.mmio_gpa(paddr)?;
        let regs = tdvmcall::mmio(gpa, width.bytes() as u8, true, width.truncate(value))
            .ok_or(PlatformError::InvalidArgument)?;
        tdvmcall::check(&Hw.tdcall(regs)).map_err(vmcall_error)
    }

    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        let [eax, ebx, ecx, edx] = if ve::host_cpuid_leaf(leaf) {
            // The hypervisor range always raises #VE: ask directly. A host
            // that fails answers nothing.
            tdvmcall::cpuid_result(&Hw.tdcall(tdvmcall::cpuid(leaf, subleaf))).unwrap_or([0; 4])
        } else {
            let (a, b, c, d) = cpuid(leaf, subleaf);
            [a, b, c, d]
        };
        CpuidResult { eax, ebx, ecx, edx }
    }

    fn read_msr(&self, msr: u32) -> Result<u64> {
        // SAFETY: reading an MSR has no effect on memory; the TDX module
        // answers it or raises #VE (see the module docs).
        Ok(unsafe { Msr::new(msr).read() })
    }

    unsafe fn write_msr(&self, msr: u32, value: u64) -> Result<()> {
        // SAFETY: the caller upholds `Platform::write_msr`'s contract.
        unsafe { Msr::new(msr).write(value) };
        Ok(())
    }

    fn halt(&self) {
        let blocked = !x86_64::instructions::interrupts::are_enabled();
        Hw.tdcall(tdvmcall::hlt(blocked));
    }

    fn wait_for_interrupt(&self) {
        // A failed halt returns at once: the idle loop asks again.
        hw::sti_tdcall(tdvmcall::hlt(false));
    }

    fn start_cpu(&self, _ap: &ApStart) -> Result<()> {
        // Not yet: TDX APs wait in the TDX module's reset state and are
        // woken through the ACPI multiprocessor-wakeup mailbox (MADT
        // entry type 0x10), not INIT-SIPI-SIPI. The kernel stays on the
        // boot CPU (docs/CVM.md).
        Err(PlatformError::Unsupported)
    }

    fn pte_masks(&self) -> PteMasks {
        PteMasks {
            private: 0,
            shared: self.shared_bit(),
        }
    }

    fn make_shared(&self, paddr: u64, bytes: u64) -> Result<()> {
        memory::map_gpa_range(&mut Hw, paddr, bytes, self.shared_bit(), true).map_err(convert_error)
    }

    fn make_private(&self, paddr: u64, bytes: u64) -> Result<()> {
        memory::make_private(&mut Hw, paddr, bytes, self.shared_bit()).map_err(convert_error)
    }

    fn accept_memory(&self, paddr: u64, bytes: u64) -> Result<()> {
        tdcall::accept_range(&mut Hw, paddr, bytes).map_err(tdcall_error)
    }

    fn terminate(&self, how: Termination) -> ! {
        match how {
            Termination::Success => {
                let _ = self.io_write(DEBUG_EXIT_PORT, Width::U32, DEBUG_EXIT_SUCCESS);
                // Without the device (another VMM) the TD halts for good:
                // nothing failed, so no fatal error is reported.
                x86_64::instructions::interrupts::disable();
                loop {
                    stop_once();
                }
            }
            Termination::Failure(reason) => fatal(reason.code().into()),
        }
    }

    fn attestation_report(&self, report_data: &[u8; REPORT_DATA_BYTES]) -> Result<Vec<u8>> {
        attestation_report(report_data)
    }
}

/// Offset of `REPORTDATA` in the frame (64-aligned, after the report).
const DATA_OFFSET: usize = report::REPORT_BYTES;

/// `TDG.MR.REPORT` into one private frame: the report at its start
/// (1024-aligned), the report data after it.
fn attestation_report(report_data: &[u8; REPORT_DATA_BYTES]) -> Result<Vec<u8>> {
    let paddr = crate::mm::frames::alloc().ok_or(PlatformError::Protocol("no memory"))?;
    let frame = crate::mm::phys_to_virt(paddr) as *mut u8;
    // SAFETY: the frame was just allocated (4 KiB, ours until freed below)
    // and the direct map maps it read-write; the data lands at bytes
    // 1024..1088, inside it; nothing else refers to it.
    unsafe {
        core::ptr::copy_nonoverlapping(
            report_data.as_ptr(),
            frame.add(DATA_OFFSET),
            REPORT_DATA_BYTES,
        );
    }
    // The module writes the report at `paddr`; no reference to the frame
    // is alive across the call.
    let result = match tdcall::mr_report(paddr, paddr + DATA_OFFSET as u64) {
        None => Err(PlatformError::InvalidArgument),
        Some(regs) => match Hw.tdcall(regs).rax {
            0 => {
                // SAFETY: as above; the module finished writing the report.
                let bytes = unsafe { core::slice::from_raw_parts(frame, report::REPORT_BYTES) };
                report::parse(bytes)
                    .map(|_| bytes.to_vec())
                    .map_err(|_| PlatformError::Protocol("malformed TDREPORT"))
            }
            status => Err(PlatformError::HostError(status)),
        },
    };
    let _ = crate::mm::frames::free(paddr, 1);
    result
}

/// The pending `#VE`'s information (`TDG.VP.VEINFO.GET`).
fn virtualization_exception_info() -> core::result::Result<ve::VeInfo, VeError> {
    // VEINFO.GET fails only with a status (no #VE pending).
    ve::veinfo(&Hw.tdcall(tdcall::veinfo_get())).map_err(|e| {
        VeError::Host(VmcallError::Tdcall(match e {
            TdcallError::Status(status) => status,
            TdcallError::Protocol(_) => u64::MAX,
        }))
    })
}

/// The `#VE` entry of the trap path (vector 20, kernel mode): reads the
/// `#VE` information; an EPT violation on a shared address (a device
/// register: [`ve::mmio_access`]) goes to the emulated-MMIO path's
/// decoder ([`super::mmio_emulation::emulate`], at the reported address
/// and direction); anything else to `cvm::tdx::ve::handle` on the trap
/// frame's registers (CPUID, HLT, port I/O, MSRs through the host). `false`
/// if this is not a TD or the exception cannot be handled (the trap path
/// then reports a fatal exception). Device registers are mapped trapped on
/// TDX (`MmioAccess::Trapped`), so they normally fault as page faults
/// into the same decoder; an EPT violation reaches it only for a shared
/// mapping of device memory.
pub fn on_ve(frame: &mut crate::arch::trap::TrapFrame) -> bool {
    if super::platform().kind() != super::PlatformKind::Tdx || frame.cs & 3 != 0 {
        return false;
    }
    let result = virtualization_exception_info().and_then(|info| {
        if let Some((paddr, is_write)) = ve::mmio_access(&info, TDX.shared_bit()) {
            let target = super::mmio_emulation::Target::Known(crate::mm::phys_to_virt(paddr));
            return if super::mmio_emulation::emulate(frame, target, Some(is_write)) {
                Ok(())
            } else {
                Err(VeError::NeedsDecode)
            };
        }
        let mut gprs = Gprs {
            rax: frame.rax,
            rbx: frame.rbx,
            rcx: frame.rcx,
            rdx: frame.rdx,
            rip: frame.rip,
        };
        ve::handle(&mut Hw, &info, &mut gprs)?;
        (frame.rax, frame.rbx, frame.rcx, frame.rdx, frame.rip) =
            (gprs.rax, gprs.rbx, gprs.rcx, gprs.rdx, gprs.rip);
        Ok(())
    });
    match result {
        Ok(()) => true,
        Err(e) => {
            crate::console::emergency_write(format_args!(
                "#VE at {:#x} not handled: {e:?}\n",
                frame.rip
            ));
            false
        }
    }
}

/// A `#VE` raised by the program (vector 20 in ring 3), for the run loop:
/// only `CPUID` is answered ([`ve::user_mode_allowed`]), as for the kernel;
/// `false` for anything else (the program then gets the signal for the
/// fault).
pub fn on_user_ve(ctx: &mut crate::arch::user::UserContext) -> bool {
    if super::platform().kind() != super::PlatformKind::Tdx {
        return false;
    }
    let Ok(info) = ve::veinfo(&Hw.tdcall(tdcall::veinfo_get())) else {
        return false;
    };
    if !ve::user_mode_allowed(&info) {
        return false;
    }
    let mut gprs = Gprs {
        rax: ctx.rax,
        rbx: ctx.rbx,
        rcx: ctx.rcx,
        rdx: ctx.rdx,
        rip: ctx.rip,
    };
    if ve::handle(&mut Hw, &info, &mut gprs).is_err() {
        return false;
    }
    (ctx.rax, ctx.rbx, ctx.rcx, ctx.rdx, ctx.rip) =
        (gprs.rax, gprs.rbx, gprs.rcx, gprs.rdx, gprs.rip);
    true
}
