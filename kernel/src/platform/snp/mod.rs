//! The AMD SEV-SNP guest backend. **It has never run on SEV-SNP
//! hardware** (there is none where Cloister is built, and QEMU's TCG does
//! not emulate SNP); it compiles in every build and is chosen only when
//! the CPU reports SNP. The protocol logic it drives is host-tested in
//! `cvm::snp` (`cargo test -p cvm`); this file and [`hw`] only execute the
//! instructions. See docs/CVM.md, "AMD SEV-SNP backend".
//!
//! Detection follows AMD's programmer's manual (vol. 2, 15.34.1) and
//! Linux's `sme_enable`: CPUID `0x8000_001F` EAX bit 1 says the CPU
//! supports SEV; only then is the `SEV_STATUS` MSR (`0xC001_0131`) read,
//! whose bit 2 says SEV-SNP is active for this guest. (Under SNP that CPUID
//! raises `#VC`: the early IDT is loaded first and [`on_vc`] answers it
//! with the MSR protocol while no backend is chosen.)
//!
//! At boot ([`backend`], before the heap and the console) with the GHCB
//! MSR protocol only: negotiate the protocol version (SEV information
//! request), require the hypervisor's SNP feature, read the C-bit
//! position (CPUID `0x8000_001F` EBX through the MSR protocol, checked
//! against the SEV information's), make the GHCB page and the two
//! guest-request pages shared (rescind their validation, page-state
//! change by MSR) and register the GHCB's address. A failure terminates
//! with reason set 0 (the spec's codes). Afterwards every operation goes
//! through the GHCB ([`cvm::snp::calls::GhcbCaller`]).
//!
//! Not done here, and why:
//!
//! - The kernel's page tables do not apply [`PteMasks::private`] yet
//!   (paging is `arch::mm`'s): every page, the shared ones included, is
//!   mapped without the C-bit, which is not SNP-correct. When paging
//!   applies it, the pages in [`hw`] must stay without it.
//! - The trap path routes a kernel-mode `#VC` (vector 29) here
//!   ([`on_vc`]); MMIO under `#VC` waits for `cvm::insn` (device
//!   registers are trapped instead, through the emulated-MMIO fault path),
//!   and a user-mode `#VC` is not handled.
//! - The secrets page's and CPUID page's addresses come from the launch:
//!   an IGVM image from `cloister build --igvm` names them on its (measured)
//!   command line, `snp.secrets_page=` and `snp.cpuid_page=`
//!   ([`super::configure`] calls [`set_secrets_page`] and
//!   [`use_cpuid_page`]). A PVH boot has neither, and
//!   [`Platform::attestation_report`] then answers `Unsupported`.
//! - AP start-up (SNP AP creation with a VMSA) comes with SMP.

pub mod hw;

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use alloc::vec::Vec;
use cvm::snp::calls::GhcbCaller;
use cvm::snp::guest_msg::{self, GuestChannel, GuestRequest, MESSAGE_BYTES};
use cvm::snp::msr_protocol::{self, CpuidRegister, PageState};
use cvm::snp::secrets::SecretsPage;
use cvm::snp::vc::{self, VcRegisters};
use cvm::snp::{Error, MsrProtocol, psc};
use spin::Mutex;
use x86_64::instructions::interrupts::without_interrupts;

use super::{
    ApStart, CpuidResult, MmioAccess, Platform, PlatformError, PlatformKind, PteMasks,
    REPORT_DATA_BYTES, Result, Termination, Width,
};
use crate::arch::cpu::cpuid;
use hw::{Cpu, GhcbHost, MsrHost, SharedPage};

/// `SEV_STATUS`: which SEV features are active for this guest.
pub const MSR_SEV_STATUS: u32 = 0xc001_0131;
/// `SEV_STATUS` bit 0: SEV (memory encryption) active.
pub const SEV_STATUS_SEV: u64 = 1 << 0;
/// `SEV_STATUS` bit 2: SEV-SNP active.
pub const SEV_STATUS_SNP: u64 = 1 << 2;
/// The CPUID leaf describing memory encryption.
pub const CPUID_MEMORY_ENCRYPTION: u32 = 0x8000_001f;
/// The reason-code set of Cloister's own termination reasons
/// ([`super::FailureReason::code`]; 0 is success).
pub const REASON_SET_CLOISTER: u8 = 1;

/// Whether this is an SEV-SNP guest.
pub fn detect() -> bool {
    let max_extended = cpuid(0x8000_0000, 0).0;
    if max_extended < CPUID_MEMORY_ENCRYPTION {
        return false;
    }
    let (eax, ..) = cpuid(CPUID_MEMORY_ENCRYPTION, 0);
    if eax & (1 << 1) == 0 {
        // No SEV on this CPU: `SEV_STATUS` may not exist (reading it
        // would raise #GP).
        return false;
    }
    crate::arch::cpu::read_msr(MSR_SEV_STATUS) & SEV_STATUS_SNP != 0
}

/// The SEV-SNP backend.
#[derive(Debug)]
pub struct SnpPlatform {
    /// The C-bit position, once [`backend`] read it.
    c_bit: AtomicU8,
    /// The GHCB (one: the boot CPU's).
    ghcb: Mutex<GhcbCaller<GhcbHost>>,
    /// The guest-request channel, opened on first use.
    channel: Mutex<Option<GuestChannel>>,
    /// Physical address of the secrets page (0: unknown).
    secrets_paddr: AtomicU64,
}

static SNP: SnpPlatform = SnpPlatform {
    c_bit: AtomicU8::new(0),
    ghcb: Mutex::new(GhcbCaller::new(GhcbHost, msr_protocol::PROTOCOL_MIN)),
    channel: Mutex::new(None),
    secrets_paddr: AtomicU64::new(0),
};

/// Sets up the backend (see the module docs) and returns it; terminates
/// the guest if the hypervisor does not speak SNP's GHCB protocol.
pub fn backend() -> &'static dyn Platform {
    match setup() {
        Ok(()) => &SNP,
        Err((set, code)) => terminate_with(set, code),
    }
}

fn setup() -> core::result::Result<(), (u8, u8)> {
    use msr_protocol::{REASON_PROTOCOL_UNSUPPORTED, REASON_SET_GENERAL, REASON_SNP_UNSUPPORTED};
    let general = |code| (REASON_SET_GENERAL, code);
    let mut msr = MsrHost;
    let (version, c_bit) =
        msr_protocol::negotiate(&mut msr).map_err(|_| general(REASON_PROTOCOL_UNSUPPORTED))?;
    msr_protocol::hypervisor_features(&mut msr).map_err(|_| general(REASON_SNP_UNSUPPORTED))?;
    let request = msr_protocol::cpuid_request(CPUID_MEMORY_ENCRYPTION, CpuidRegister::Ebx);
    let ebx = msr_protocol::decode_cpuid_response(msr.msr_exchange(request), CpuidRegister::Ebx)
        .map_err(|_| general(REASON_SNP_UNSUPPORTED))?;
    if (ebx & 0x3f) as u8 != c_bit || !(32..=63).contains(&c_bit) {
        return Err(general(REASON_SNP_UNSUPPORTED));
    }
    let platform = (REASON_SET_CLOISTER, super::FailureReason::Platform.code());
    for page in [&hw::GHCB_PAGE, &hw::REQUEST_PAGE, &hw::RESPONSE_PAGE] {
        share_image_page(&mut msr, page).map_err(|_| platform)?;
    }
    msr_protocol::register_ghcb(&mut msr, hw::GHCB_PAGE.paddr() / psc::PAGE_4K)
        .map_err(|_| platform)?;
    SNP.c_bit.store(c_bit, Ordering::Relaxed);
    without_interrupts(|| SNP.ghcb.lock().set_version(version));
    Ok(())
}

/// Once the kernel's page tables are built (they map the image private,
/// with the C-bit): maps the backend's shared pages shared again, so the
/// hypervisor reads what the guest writes there. Never run on SNP
/// hardware.
pub fn tables_ready() -> Result<()> {
    if super::platform().kind() != super::PlatformKind::SevSnp {
        return Ok(());
    }
    for page in [&hw::GHCB_PAGE, &hw::REQUEST_PAGE, &hw::RESPONSE_PAGE] {
        crate::arch::mm::paging::share_kernel_page(page.vaddr())
            .map_err(|_| PlatformError::Protocol("cannot map a shared page"))?;
    }
    Ok(())
}

/// Makes a page of the kernel image shared: rescind its validation, then
/// a page-state change to shared by MSR (no GHCB yet).
fn share_image_page(msr: &mut MsrHost, page: &SharedPage) -> cvm::snp::Result<()> {
    // SAFETY: the page is one of `hw`'s shared pages, mapped by the kernel
    // image; nothing holds a reference to it and its contents are not used
    // before the backend writes them whole.
    let outcome = unsafe { hw::pvalidate(page.vaddr(), psc::PageSize::Size4K, false) };
    if outcome.code != psc::PVALIDATE_SUCCESS {
        return Err(Error::HostError(outcome.code.into()));
    }
    msr_protocol::change_page_state(msr, page.paddr() / psc::PAGE_4K, 1, PageState::Shared)
}

/// Tells the backend where the launch put the secrets page (the IGVM
/// image's `snp.secrets_page=` command-line word, see
/// [`super::configure`]).
pub fn set_secrets_page(paddr: u64) {
    SNP.secrets_paddr.store(paddr, Ordering::Relaxed);
}

/// Takes the launch's CPUID page at `paddr` (the IGVM image's
/// `snp.cpuid_page=`): the C-bit position it reports — checked by the PSP
/// at launch, unlike the hypervisor's answers — must equal the one
/// [`backend`] negotiated and the page tables use; otherwise the guest
/// terminates (set 0, code 2: SNP unusable). Never run on SNP hardware.
pub fn use_cpuid_page(paddr: u64) {
    let mut page = [0u8; cvm::snp::cpuid_page::PAGE_BYTES];
    let c_bit = if crate::mm::read_early_phys(paddr, &mut page) {
        cvm::snp::cpuid_page::c_bit(&page).ok()
    } else {
        None
    };
    if c_bit != Some(SNP.c_bit.load(Ordering::Relaxed)) {
        terminate_with(
            msr_protocol::REASON_SET_GENERAL,
            msr_protocol::REASON_SNP_UNSUPPORTED,
        );
    }
}

/// A kernel-mode `#VC` before any backend is chosen: the boot's first
/// `CPUID`s, in platform detection (an IGVM launch enters with no other
/// handler; the early IDT is loaded before detection for this). Answered
/// with the GHCB MSR protocol's CPUID request, one register per exchange
/// (sub-leaf 0 only, which is what detection asks); the answers are the
/// hypervisor's, and the C-bit is checked against the launch's CPUID page
/// later ([`use_cpuid_page`]). Anything else is not handled. Never run on
/// SNP hardware.
fn early_cpuid(frame: &mut crate::arch::trap::TrapFrame) -> bool {
    if frame.error_code != cvm::snp::ghcb::exit_code::CPUID {
        return false;
    }
    let leaf = frame.rax as u32;
    let mut msr = MsrHost;
    let mut out = [0u64; 4];
    let registers = [
        CpuidRegister::Eax,
        CpuidRegister::Ebx,
        CpuidRegister::Ecx,
        CpuidRegister::Edx,
    ];
    for (slot, register) in out.iter_mut().zip(registers) {
        let answer = msr.msr_exchange(msr_protocol::cpuid_request(leaf, register));
        match msr_protocol::decode_cpuid_response(answer, register) {
            Ok(value) => *slot = u64::from(value),
            Err(_) => return false,
        }
    }
    // `CPUID` is `0F A2`.
    (frame.rax, frame.rbx, frame.rcx, frame.rdx) = (out[0], out[1], out[2], out[3]);
    frame.rip += 2;
    true
}

/// The `#VC` handler's body: `exit_code` is the exception's error code,
/// `regs` the interrupted registers; the instruction is read at `regs.rip`
/// (kernel code). Returns the error that makes the caller terminate.
///
/// # Safety
///
/// `regs.rip` must point at the kernel instruction that raised the `#VC`
/// (at least [`vc::MAX_INSN_BYTES`] readable bytes, which holds for any
/// instruction in the kernel's text except the last 15 bytes of it).
pub unsafe fn handle_vc(exit_code: u64, regs: &mut VcRegisters) -> cvm::snp::Result<()> {
    let mut insn = [0u8; vc::MAX_INSN_BYTES];
    // SAFETY: the caller's contract.
    unsafe {
        core::ptr::copy_nonoverlapping(regs.rip as *const u8, insn.as_mut_ptr(), insn.len());
    }
    without_interrupts(|| vc::handle(exit_code, regs, &insn, &mut SNP.ghcb.lock()))
}

/// Ends the guest with a termination request (MSR protocol, which works
/// whatever state the GHCB is in).
fn terminate_with(set: u8, code: u8) -> ! {
    MsrHost.msr_exchange(msr_protocol::terminate_request(set, code));
    crate::arch::cpu::halt_forever()
}

/// A `cvm` error as the seam's error.
fn to_platform(e: Error) -> PlatformError {
    match e {
        Error::HostError(code) => PlatformError::HostError(code),
        Error::Exception { .. } => PlatformError::Protocol("the hypervisor injected an exception"),
        Error::Protocol(what) | Error::MessageRejected(what) => PlatformError::Protocol(what),
        Error::InvalidArgument => PlatformError::InvalidArgument,
        Error::Unsupported(_) => PlatformError::Unsupported,
    }
}

/// MSRs held in the encrypted VMSA (swapped by hardware, never
/// intercepted): read and written natively, not through the hypervisor.
fn msr_in_vmsa(msr: u32) -> bool {
    matches!(
        msr,
        0x277 // PAT
            | 0xc000_0080 // EFER
            | 0xc000_0081..=0xc000_0084 // STAR, LSTAR, CSTAR, SFMASK
            | 0xc000_0100..=0xc000_0103 // FS/GS/KERNEL_GS base, TSC_AUX
    )
}

/// Guest requests through the shared request and response pages.
struct RequestPages<'a>(&'a mut GhcbCaller<GhcbHost>);

impl GuestRequest for RequestPages<'_> {
    fn guest_request(
        &mut self,
        request: &[u8; MESSAGE_BYTES],
        response: &mut [u8; MESSAGE_BYTES],
    ) -> cvm::snp::Result<()> {
        hw::REQUEST_PAGE.copy_in(request);
        self.0
            .guest_request(hw::REQUEST_PAGE.paddr(), hw::RESPONSE_PAGE.paddr())?;
        hw::RESPONSE_PAGE.copy_out(response);
        Ok(())
    }
}

impl SnpPlatform {
    /// Runs `f` with the GHCB, interrupts off (an interrupt handler doing
    /// port I/O must not find the GHCB locked).
    fn with_ghcb<T>(&self, f: impl FnOnce(&mut GhcbCaller<GhcbHost>) -> T) -> T {
        without_interrupts(|| f(&mut self.ghcb.lock()))
    }

    /// A failure the guest cannot go on from (the hypervisor broke the
    /// protocol on an infallible operation).
    fn fatal(&self) -> ! {
        self.terminate(Termination::Failure(super::FailureReason::Platform))
    }
}

impl Platform for SnpPlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::SevSnp
    }

    fn io_read(&self, port: u16, width: Width) -> Result<u32> {
        if width == Width::U64 {
            return Err(PlatformError::InvalidArgument);
        }
        self.with_ghcb(|g| g.io_in(port, width.bytes() as u8))
            .map_err(to_platform)
    }

    fn io_write(&self, port: u16, width: Width, value: u32) -> Result<()> {
        if width == Width::U64 {
            return Err(PlatformError::InvalidArgument);
        }
        self.with_ghcb(|g| g.io_out(port, width.bytes() as u8, value))
            .map_err(to_platform)
    }

    fn mmio_access(&self) -> MmioAccess {
        MmioAccess::Mapped
    }

    fn mmio_read(&self, paddr: u64, width: Width) -> Result<u64> {
        self.with_ghcb(|g| g.mmio_read(paddr, width.bytes() as u8))
            .map_err(to_platform)
    }

    fn mmio_write(&self, paddr: u64, width: Width, value: u64) -> Result<()> {
        self.with_ghcb(|g| g.mmio_write(paddr, width.bytes() as u8, value))
            .map_err(to_platform)
    }

    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        // XCR0 as Linux sends it when it cannot read it: x87 only.
        match self.with_ghcb(|g| g.cpuid(leaf, subleaf, 1)) {
            Ok(r) => CpuidResult {
                eax: r.eax,
                ebx: r.ebx,
                ecx: r.ecx,
                edx: r.edx,
            },
            Err(_) => self.fatal(),
        }
    }

    fn read_msr(&self, msr: u32) -> Result<u64> {
        if msr_in_vmsa(msr) {
            return Ok(crate::arch::cpu::read_msr(msr));
        }
        self.with_ghcb(|g| g.rdmsr(msr)).map_err(to_platform)
    }

    unsafe fn write_msr(&self, msr: u32, value: u64) -> Result<()> {
        if msr_in_vmsa(msr) {
            // SAFETY: the caller guarantees the write keeps the kernel's
            // memory-safety assumptions (this method's contract).
            unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value) };
            return Ok(());
        }
        self.with_ghcb(|g| g.wrmsr(msr, value)).map_err(to_platform)
    }

    fn halt(&self) {
        // HLT is an automatic exit under SNP: no #VC, no GHCB.
        x86_64::instructions::hlt();
    }

    fn wait_for_interrupt(&self) {
        x86_64::instructions::interrupts::enable_and_hlt();
    }

    fn start_cpu(&self, _ap: &ApStart) -> Result<()> {
        // Not yet: SNP starts an AP from a VMSA page of its own (VMPL0,
        // the AP's initial registers) with the GHCB's AP-creation request
        // (VMGEXIT 0x8000_0013); INIT-SIPI-SIPI is not honoured. The
        // kernel stays on the boot CPU (docs/CVM.md).
        Err(PlatformError::Unsupported)
    }

    fn pte_masks(&self) -> PteMasks {
        PteMasks {
            private: 1u64 << self.c_bit.load(Ordering::Relaxed),
            shared: 0,
        }
    }

    fn make_shared(&self, paddr: u64, bytes: u64) -> Result<()> {
        psc::validate_range(&mut Cpu, paddr, bytes, false).map_err(to_platform)?;
        self.with_ghcb(|g| g.page_state_change(paddr, bytes, PageState::Shared))
            .map_err(to_platform)
    }

    fn make_private(&self, paddr: u64, bytes: u64) -> Result<()> {
        self.accept_memory(paddr, bytes)
    }

    fn accept_memory(&self, paddr: u64, bytes: u64) -> Result<()> {
        self.with_ghcb(|g| g.page_state_change(paddr, bytes, PageState::Private))
            .map_err(to_platform)?;
        psc::validate_range(&mut Cpu, paddr, bytes, true).map_err(to_platform)
    }

    fn terminate(&self, how: Termination) -> ! {
        let code = match how {
            Termination::Success => 0,
            Termination::Failure(reason) => reason.code(),
        };
        terminate_with(REASON_SET_CLOISTER, code)
    }

    fn attestation_report(&self, report_data: &[u8; REPORT_DATA_BYTES]) -> Result<Vec<u8>> {
        let secrets_paddr = self.secrets_paddr.load(Ordering::Relaxed);
        if secrets_paddr == 0 {
            return Err(PlatformError::Unsupported);
        }
        without_interrupts(|| {
            let mut channel = self.channel.lock();
            if channel.is_none() {
                let mut page = alloc::vec![0u8; 4096];
                if !crate::mm::read_early_phys(secrets_paddr, &mut page) {
                    return Err(PlatformError::InvalidArgument);
                }
                let secrets = SecretsPage::parse(&page).map_err(to_platform)?;
                page.fill(0);
                // Cloister runs at VMPL 0 and talks to the PSP with VMPCK0.
                *channel = Some(GuestChannel::new(&secrets, 0).map_err(to_platform)?);
            }
            let channel = channel.as_mut().ok_or(PlatformError::Unsupported)?;
            let mut ghcb = self.ghcb.lock();
            let report =
                guest_msg::request_report(channel, &mut RequestPages(&mut ghcb), report_data, 0)
                    .map_err(to_platform)?;
            Ok(report.as_bytes().to_vec())
        })
    }
}

/// The `#VC` entry of the trap path (vector 29, kernel mode): runs
/// [`handle_vc`] on the trap frame's registers and writes them back.
/// `false` if this is not an SNP guest or the exit cannot be handled (the
/// trap path then reports a fatal exception). A nested page fault (MMIO)
/// goes to the emulated-MMIO path's [`super::mmio_emulation::emulate`]. A `#VC` from user mode is
/// not handled here (the program gets the exception as a signal).
pub fn on_vc(frame: &mut crate::arch::trap::TrapFrame) -> bool {
    if frame.cs & 3 != 0 {
        return false;
    }
    if !super::chosen() {
        return early_cpuid(frame);
    }
    if super::platform().kind() != super::PlatformKind::SevSnp {
        return false;
    }
    if frame.error_code == cvm::snp::ghcb::exit_code::NPF {
        // A device register (mapped shared, `MmioAccess::Mapped`): the
        // instruction is decoded, its address computed from the operand
        // (a #VC reports none) and the access made through the GHCB.
        return super::mmio_emulation::emulate(
            frame,
            super::mmio_emulation::Target::FromInstruction,
            None,
        );
    }
    let mut regs = vc_registers([frame.rax, frame.rbx, frame.rcx, frame.rdx], frame.rip);
    // SAFETY: a kernel-mode #VC: `frame.rip` is the kernel instruction
    // that raised it, inside the kernel's text (handle_vc's contract).
    match unsafe { handle_vc(frame.error_code, &mut regs) } {
        Ok(()) => {
            (frame.rax, frame.rbx, frame.rcx, frame.rdx, frame.rip) =
                (regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rip);
            true
        }
        Err(e) => {
            crate::console::emergency_write(format_args!(
                "#VC exit {:#x} at {:#x} not handled: {e:?}\n",
                frame.error_code, frame.rip
            ));
            false
        }
    }
}

/// The registers a `#VC` handler reads and writes (`rax`–`rdx`, `rip`),
/// with XCR0 for CPUID leaf 0xD.
fn vc_registers([rax, rbx, rcx, rdx]: [u64; 4], rip: u64) -> VcRegisters {
    let osxsave = x86_64::registers::control::Cr4::read()
        .contains(x86_64::registers::control::Cr4Flags::OSXSAVE);
    VcRegisters {
        rax,
        rbx,
        rcx,
        rdx,
        rip,
        xcr0: if osxsave {
            x86_64::registers::xcontrol::XCr0::read_raw()
        } else {
            0
        },
    }
}

/// A `#VC` raised by the program (vector 29 in ring 3), for the run loop:
/// `CPUID`, `RDTSC` and `RDTSCP` are answered through the GHCB as for the
/// kernel ([`vc::user_mode_allowed`]); `false` for anything else, or if
/// the instruction cannot be read from user memory (the program then gets
/// the signal for the fault). The instruction is fetched with a user copy
/// and checked against the exit code, so a program cannot make the kernel
/// act on bytes it does not execute.
pub fn on_user_vc(exit_code: u64, ctx: &mut crate::arch::user::UserContext) -> bool {
    if super::platform().kind() != super::PlatformKind::SevSnp || !vc::user_mode_allowed(exit_code)
    {
        return false;
    }
    // The longest allowed instruction is RDTSCP (3 bytes); CPUID (2) may
    // end a page whose successor is unmapped.
    let mut insn = [0u8; 3];
    let fetched = [3usize, 2]
        .into_iter()
        .find(|&n| crate::arch::uaccess::copy_from_user(ctx.rip, &mut insn[..n]).is_ok());
    let Some(n) = fetched else {
        return false;
    };
    let mut regs = vc_registers([ctx.rax, ctx.rbx, ctx.rcx, ctx.rdx], ctx.rip);
    let done =
        without_interrupts(|| vc::handle(exit_code, &mut regs, &insn[..n], &mut SNP.ghcb.lock()));
    if done.is_err() {
        return false;
    }
    (ctx.rax, ctx.rbx, ctx.rcx, ctx.rdx, ctx.rip) =
        (regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rip);
    true
}
