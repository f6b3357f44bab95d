//! The AMD SEV-SNP guest backend: detection only so far.
//!
//! Detection follows AMD's programmer's manual (vol. 2, 15.34.1) and
//! Linux's `sme_enable`: CPUID `0x8000_001F` EAX bit 1 says the CPU
//! supports SEV; only then is the `SEV_STATUS` MSR (`0xC001_0131`) read,
//! whose bit 2 says SEV-SNP is active for this guest. Under SNP, CPUID
//! itself raises `#VC` unless it is answered from the CPUID page, so the
//! backend has to have its early `#VC` handling in place before this runs
//! on real hardware (not yet: nothing here has run on SNP hardware).
//!
//! The backend itself (GHCB MSR protocol, `#VC` handler, `PVALIDATE`,
//! page-state changes, the guest-request path for attestation) is written
//! against [`super::Platform`] in this file by the CVM-protocol work; until
//! then a detected SNP guest stops at boot with a clear reason.

use super::Platform;
use crate::arch::cpu::cpuid;

/// `SEV_STATUS`: which SEV features are active for this guest.
pub const MSR_SEV_STATUS: u32 = 0xc001_0131;
/// `SEV_STATUS` bit 0: SEV (memory encryption) active.
pub const SEV_STATUS_SEV: u64 = 1 << 0;
/// `SEV_STATUS` bit 2: SEV-SNP active.
pub const SEV_STATUS_SNP: u64 = 1 << 2;
/// The CPUID leaf describing memory encryption.
pub const CPUID_MEMORY_ENCRYPTION: u32 = 0x8000_001f;

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

/// The C-bit position (CPUID `0x8000_001F` EBX bits 5:0): the physical
/// address bit that marks a page private (encrypted).
pub fn c_bit_position() -> u32 {
    cpuid(CPUID_MEMORY_ENCRYPTION, 0).1 & 0x3f
}

/// The SEV-SNP backend. Not written yet: stops the boot (there is no
/// console to say why — port I/O needs the GHCB).
pub fn backend() -> &'static dyn Platform {
    crate::arch::cpu::halt_forever()
}
