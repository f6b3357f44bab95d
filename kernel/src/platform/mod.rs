//! The hardware seam: every touch of the machine that a confidential VM
//! does differently — port I/O, device registers, CPUID, MSRs, halting,
//! page visibility, memory acceptance, the page-table encryption bit,
//! starting CPUs, termination and attestation — goes through one
//! [`Platform`] backend, chosen once at boot ([`init`]) and reached with
//! [`platform`].
//!
//! Backends:
//!
//! - [`native`]: plain QEMU/KVM (what runs on these machines), optionally
//!   with device MMIO emulated by instruction decode
//!   (`platform.mmio=emulate`), which exercises the same path a `#VC`/`#VE`
//!   handler takes;
//! - [`snp`]: an AMD SEV-SNP guest (detected by CPUID `0x8000_001F` and
//!   the `SEV_STATUS` MSR);
//! - [`tdx`]: an Intel TDX guest (detected by CPUID leaf `0x21`,
//!   `"IntelTDX    "`).
//!
//! The trait is deliberately low level (one method per hardware
//! operation, physical addresses, no policy): what to map where, which
//! memory to share and when is decided by the callers (`mm`, the shared
//! DMA pool, drivers). Design after COCONUT-SVSM's `SvsmPlatform`
//! (native/snp/tdp) and Asterinas's `ostd` arch split.
//!
//! Unsafe code of the kernel lives here and in [`crate::arch`] only.

pub mod dma;
#[cfg(feature = "ktest")]
mod ktests;
pub mod mmio;
pub mod mmio_emulation;
pub mod native;
pub mod pci;
pub mod port;
pub mod snp;
pub mod tdx;

use alloc::vec::Vec;

/// Which backend runs the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformKind {
    /// No memory encryption: plain QEMU/KVM or TCG.
    Native,
    /// AMD SEV-SNP guest.
    SevSnp,
    /// Intel TDX guest.
    Tdx,
}

impl PlatformKind {
    /// A short name for logs (`native`, `sev-snp`, `tdx`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::SevSnp => "sev-snp",
            Self::Tdx => "tdx",
        }
    }

    /// Whether the guest's private memory is closed to the host (encrypted
    /// and integrity-protected: SEV-SNP, TDX), so that memory shared with
    /// the host — the shared DMA pool ([`dma`]) — is weaker than private
    /// memory: the host may rewrite it at any moment, and data a device
    /// wrote there must be copied into private memory once before anything
    /// parses it. `false` natively, where the hypervisor reads and writes
    /// all guest memory anyway: a shared buffer is then no weaker than a
    /// private one, and a driver may let the network stack write into it
    /// directly (the virtio-net driver lends its transmit slots to
    /// smoltcp, `crate::net::virtio`).
    pub fn protects_private_memory(self) -> bool {
        match self {
            Self::Native => false,
            Self::SevSnp | Self::Tdx => true,
        }
    }
}

/// Width of a port or register access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// 1 byte.
    U8 = 1,
    /// 2 bytes.
    U16 = 2,
    /// 4 bytes.
    U32 = 4,
    /// 8 bytes (MMIO only; port I/O is at most 4 bytes wide).
    U64 = 8,
}

impl Width {
    /// Bytes accessed.
    pub fn bytes(self) -> usize {
        self as usize
    }

    /// The width of an access of `bytes` bytes, if there is one.
    pub fn from_bytes(bytes: usize) -> Option<Self> {
        match bytes {
            1 => Some(Self::U8),
            2 => Some(Self::U16),
            4 => Some(Self::U32),
            8 => Some(Self::U64),
            _ => None,
        }
    }

    /// `value` cut to this width.
    pub fn truncate(self, value: u64) -> u64 {
        match self {
            Self::U64 => value,
            w => value & ((1u64 << (8 * w.bytes())) - 1),
        }
    }
}

/// Why a platform operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformError {
    /// This backend does not offer the operation (like `ENOSYS`).
    Unsupported,
    /// An argument is out of range: a range not page aligned, a port
    /// access wider than 4 bytes, a buffer too small.
    InvalidArgument,
    /// The host or the security module refused; the value is its error code
    /// (GHCB `SW_EXITINFO2`, TDCALL/TDVMCALL status).
    HostError(u64),
    /// The host answered something the protocol does not allow.
    Protocol(&'static str),
}

impl core::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unsupported => f.write_str("not supported on this platform"),
            Self::InvalidArgument => f.write_str("invalid argument"),
            Self::HostError(code) => write!(f, "the host refused (code {code:#x})"),
            Self::Protocol(what) => write!(f, "protocol violation: {what}"),
        }
    }
}

/// Result of a platform operation.
pub type Result<T> = core::result::Result<T, PlatformError>;

/// The four registers CPUID returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs, reason = "register names speak for themselves")]
pub struct CpuidResult {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// What to OR into the physical-address field of a page-table entry so
/// the page is private (encrypted, guest-owned) or shared with the host.
///
/// SEV-SNP: `private` is the C-bit, `shared` 0. TDX: `private` 0, `shared`
/// the GPA's top bit. Native: both 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PteMasks {
    /// OR-ed into every private (RAM) mapping.
    pub private: u64,
    /// OR-ed into every mapping of shared memory and device registers.
    pub shared: u64,
}

impl PteMasks {
    /// Both bits: what to clear from an entry's address to get the
    /// physical address back.
    pub fn all(&self) -> u64 {
        self.private | self.shared
    }
}

/// How device registers are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmioAccess {
    /// Mapped (uncached, with the shared mask); loads and stores reach the
    /// device, directly or through the backend's `#VC`/`#VE` handler.
    Mapped,
    /// Left unmapped: every access page-faults, and the fault handler
    /// decodes the instruction and performs it with
    /// [`Platform::mmio_read`]/[`Platform::mmio_write`] (native backend
    /// with `platform.mmio=emulate`).
    Trapped,
}

/// Why the guest ends: a code the host sees (isa-debug-exit's status
/// natively; the GHCB termination request's reason code on SEV-SNP; the
/// TDVMCALL `ReportFatalError` code on TDX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// All went well (QEMU exits with 33 natively).
    Success,
    /// A test failed, a panic, a fatal exception (QEMU exits with 35).
    Failure(FailureReason),
}

/// Why the guest failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// A kernel panic.
    Panic,
    /// A CPU exception nothing could handle.
    FatalException,
    /// The boot could not continue (bad boot information, no memory).
    Boot,
    /// An in-guest test failed.
    TestFailed,
    /// The host asked the guest to stop (NMI).
    HostStop,
    /// The platform itself failed (a protocol error with the host).
    Platform,
}

impl FailureReason {
    /// The reason code sent to the host (Cloister's own numbering; the
    /// SNP backend sends it in reason-code set 1, set 0 being the GHCB
    /// spec's general codes).
    pub fn code(self) -> u8 {
        match self {
            Self::Panic => 1,
            Self::FatalException => 2,
            Self::Boot => 3,
            Self::TestFailed => 4,
            Self::HostStop => 5,
            Self::Platform => 6,
        }
    }
}

/// What an application processor needs to start ([`Platform::start_cpu`],
/// called by `arch::smp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApStart {
    /// The local APIC id of the CPU to start.
    pub apic_id: u32,
    /// Physical address of its start-up code.
    pub entry_paddr: u64,
    /// The stack pointer it starts with.
    pub stack_top: u64,
}

/// Length of the `REPORT_DATA` bound into an attestation report (SNP's
/// `REPORT_DATA` and TDX's `REPORTDATA` are both 64 bytes).
pub const REPORT_DATA_BYTES: usize = 64;

/// The hardware seam. One backend runs per boot; see the module docs.
///
/// Addresses are physical unless named otherwise. Methods never panic on
/// what the host answers: a host that misbehaves gets an error (and the
/// caller usually terminates).
pub trait Platform: Sync {
    /// Which backend this is.
    fn kind(&self) -> PlatformKind;

    // -- Port I/O ---------------------------------------------------------

    /// Reads `width` (1, 2 or 4 bytes) from I/O port `port`.
    fn io_read(&self, port: u16, width: Width) -> Result<u32>;

    /// Writes the low `width` bytes of `value` to I/O port `port`.
    fn io_write(&self, port: u16, width: Width, value: u32) -> Result<()>;

    // -- Device registers -------------------------------------------------

    /// How device registers are reached on this boot (see [`MmioAccess`]).
    fn mmio_access(&self) -> MmioAccess;

    /// Reads `width` bytes of the device register at `paddr`. This is the
    /// emulation primitive: the `#VC`/`#VE` handlers and the emulated-MMIO
    /// fault handler perform a decoded access with it; drivers use the
    /// mappings of [`mmio::map_registers`] instead.
    fn mmio_read(&self, paddr: u64, width: Width) -> Result<u64>;

    /// Writes the low `width` bytes of `value` to the device register at
    /// `paddr` (see [`Platform::mmio_read`]).
    fn mmio_write(&self, paddr: u64, width: Width, value: u64) -> Result<()>;

    // -- CPU --------------------------------------------------------------

    /// CPUID leaf `leaf`, sub-leaf `subleaf`, as this platform answers it
    /// (SNP: the CPUID page or the GHCB; TDX: the TDX module or a
    /// TDVMCALL).
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult;

    /// Reads MSR `msr`. It must exist (natively a missing MSR raises
    /// `#GP`); a backend that has to ask the host returns its error.
    fn read_msr(&self, msr: u32) -> Result<u64>;

    /// Writes `value` to MSR `msr`.
    ///
    /// # Safety
    ///
    /// MSRs control the CPU (paging, system-call entry, the APIC): the
    /// caller must make sure the write does not break the assumptions
    /// the kernel's memory safety rests on.
    unsafe fn write_msr(&self, msr: u32, value: u64) -> Result<()>;

    /// Halts until the next interrupt with interrupts as they are (with
    /// interrupts off, for good).
    fn halt(&self);

    /// Enables interrupts and halts, atomically (no interrupt is lost
    /// between the two), returning after the next interrupt with
    /// interrupts *enabled*. The idle loop's wait.
    fn wait_for_interrupt(&self);

    /// Starts application processor `ap`. Native: INIT-SIPI-SIPI through
    /// the local APIC into the real-mode trampoline at `entry_paddr`.
    /// SEV-SNP (a VMSA per AP and the GHCB's AP-creation request) and TDX
    /// (the ACPI multiprocessor-wakeup mailbox) answer
    /// [`PlatformError::Unsupported`] for now, and the kernel then runs on
    /// the boot CPU alone.
    fn start_cpu(&self, ap: &ApStart) -> Result<()>;

    // -- Memory -----------------------------------------------------------

    /// What to OR into private and shared page-table entries.
    fn pte_masks(&self) -> PteMasks;

    /// Makes the page-aligned physical range `[paddr, paddr + bytes)`
    /// visible to the host (SNP: page-state change to shared; TDX:
    /// `MapGPA` to the shared half). Its contents are lost; the caller maps
    /// it with [`PteMasks::shared`] afterwards.
    fn make_shared(&self, paddr: u64, bytes: u64) -> Result<()>;

    /// Makes a range that [`Platform::make_shared`] shared private again
    /// (and accepted/validated), contents lost.
    fn make_private(&self, paddr: u64, bytes: u64) -> Result<()>;

    /// Accepts (TDX `TDG.MEM.PAGE.ACCEPT`) or validates (SNP `PVALIDATE`)
    /// the RAM range before its first use. Native: nothing to do.
    fn accept_memory(&self, paddr: u64, bytes: u64) -> Result<()>;

    // -- Leaving and attesting --------------------------------------------

    /// Ends the guest. Never returns (halts for good if the host ignores
    /// the request).
    fn terminate(&self, how: Termination) -> !;

    /// An attestation report binding `report_data` (SNP `MSG_REPORT_REQ`,
    /// TDX `TDG.MR.REPORT`; native: an unsigned report marked as such).
    fn attestation_report(&self, report_data: &[u8; REPORT_DATA_BYTES]) -> Result<Vec<u8>>;
}

/// Kernel command-line keys the platform reads: `platform.mmio=emulate`
/// traps and emulates device registers (native backend, see [`native`]);
/// `snp.secrets_page=` and `snp.cpuid_page=` (physical addresses, `0x…`)
/// say where an SEV-SNP launch put those pages (an IGVM image from
/// `cloister build --igvm` writes them; docs/CVM.md).
pub const CMDLINE_KEYS: &[&str] = &["platform.mmio", "snp.secrets_page", "snp.cpuid_page"];

/// A page address on the command line: `0x` and hex digits, page aligned,
/// not 0.
fn page_address(value: &str) -> Option<u64> {
    let digits = value.strip_prefix("0x")?;
    u64::from_str_radix(digits, 16)
        .ok()
        .filter(|&a| a != 0 && a % 4096 == 0)
}

/// Applies the platform's command-line options (before any device is
/// mapped): `platform.mmio=emulate` on the native backend. Unknown values,
/// or the option on a CVM backend (whose registers trap anyway), are
/// logged and ignored.
pub fn configure(args: &libos::boot::cmdline::KernelArgs<'_>) {
    match args.get("platform.mmio") {
        None | Some("map") => {}
        Some("emulate") if platform().kind() == PlatformKind::Native => {
            native::set_mmio_emulated(true);
            log::info!("platform: device registers trapped and emulated (platform.mmio=emulate)");
        }
        Some(other) => log::warn!(
            "ignoring platform.mmio={other} on the {} platform: expected map or emulate (native only)",
            platform().kind().name()
        ),
    }
    for key in ["snp.secrets_page", "snp.cpuid_page"] {
        let Some(value) = args.get(key) else { continue };
        let Some(paddr) = page_address(value) else {
            log::warn!("ignoring {key}={value}: expected a page-aligned 0x address");
            continue;
        };
        if platform().kind() != PlatformKind::SevSnp {
            log::info!(
                "ignoring {key}={value} on the {} platform (SEV-SNP only)",
                platform().kind().name()
            );
        } else if key == "snp.secrets_page" {
            snp::set_secrets_page(paddr);
            log::info!("platform: SNP secrets page at {paddr:#x}");
        } else {
            snp::use_cpuid_page(paddr);
            log::info!("platform: SNP CPUID page at {paddr:#x} agrees on the C-bit");
        }
    }
}

/// Accepts every range of `usable` (page-aligned RAM the kernel is about
/// to use) with [`Platform::accept_memory`]: `PVALIDATE` on SEV-SNP,
/// `TDG.MEM.PAGE.ACCEPT` on TDX, a check of the ranges natively. A range
/// the platform refuses (on SEV-SNP a page already validated, which a
/// host could use to swap contents) stops the boot, so nothing unaccepted
/// is ever used. Returns the bytes accepted.
pub fn accept_ram(usable: &libos::boot::memmap::MemoryMap) -> Result<u64> {
    let platform = platform();
    let mut total = 0u64;
    for r in usable.ranges() {
        platform.accept_memory(r.start, r.len_bytes())?;
        total = total.saturating_add(r.len_bytes());
    }
    Ok(total)
}

/// A confidential VM's exception raised by the program (`#VE`, vector 20,
/// on TDX; `#VC`, vector 29, on SEV-SNP): performs what the host must do
/// for an unprivileged instruction (`CPUID`; on SEV-SNP also `RDTSC`,
/// `RDTSCP`), updating the program's registers. `false` when it is not
/// such an exception or not one a program may cause: the run loop then
/// treats it as a fault.
pub fn user_exception(
    vector: u64,
    error_code: u64,
    ctx: &mut crate::arch::user::UserContext,
) -> bool {
    match vector {
        20 => tdx::on_user_ve(ctx),
        29 => snp::on_user_vc(error_code, ctx),
        _ => false,
    }
}

/// The backend, once [`init`] chose it.
static PLATFORM: spin::Once<&'static dyn Platform> = spin::Once::new();

/// Chooses the backend from what the CPU says (see the module docs) and
/// makes it the one [`platform`] returns. Call first thing at boot, before
/// the console; later calls return the first choice.
pub fn init() -> &'static dyn Platform {
    *PLATFORM.call_once(|| match detect() {
        PlatformKind::SevSnp => snp::backend(),
        PlatformKind::Tdx => tdx::backend(),
        PlatformKind::Native => &native::NATIVE,
    })
}

/// Whether [`init`] has chosen the backend (before, a `#VC` can only be
/// detection's own `CPUID` on SEV-SNP: `snp::on_vc`).
pub fn chosen() -> bool {
    PLATFORM.get().is_some()
}

/// Which platform the CPU reports: TDX by CPUID leaf `0x21`, SEV-SNP by
/// CPUID `0x8000_001F` and `SEV_STATUS`, native otherwise.
pub fn detect() -> PlatformKind {
    if tdx::detect() {
        PlatformKind::Tdx
    } else if snp::detect() {
        PlatformKind::SevSnp
    } else {
        PlatformKind::Native
    }
}

/// The running backend. Before [`init`] (nothing should run then but the
/// emergency console path), the native one.
pub fn platform() -> &'static dyn Platform {
    match PLATFORM.get() {
        Some(p) => *p,
        None => &native::NATIVE,
    }
}
