//! The Intel TDX guest backend: detection only so far.
//!
//! Detection follows Intel's TDX guest-host communication interface
//! (GHCI, 2.4.1) and Linux's `tdx_early_init`: CPUID leaf `0x21`, sub-leaf
//! 0, returns the vendor string `"IntelTDX    "` in EBX, EDX, ECX inside a
//! trust domain. CPUID leaf `0x21` is answered by the TDX module without a
//! `#VE`, so detection is safe before any handler exists.
//!
//! The backend itself (TDCALL/TDVMCALL wrappers, the `#VE` handler, page
//! acceptance, `MapGPA` for shared memory, `TDG.MR.REPORT`) is written
//! against [`super::Platform`] in this file by the CVM-protocol work; until
//! then a detected TD stops at boot.

use super::Platform;
use crate::arch::cpu::cpuid;

/// The CPUID leaf that identifies a trust domain.
pub const CPUID_TDX_GUEST: u32 = 0x21;

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

/// The TDX backend. Not written yet: stops the boot (there is no console
/// to say why — port I/O needs TDVMCALLs).
pub fn backend() -> &'static dyn Platform {
    crate::arch::cpu::halt_forever()
}
