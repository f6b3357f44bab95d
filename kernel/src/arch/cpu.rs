//! CPU feature detection and the protection bits Cloister turns on: NX
//! (EFER.NXE), write protection in ring 0 (CR0.WP), SMEP and SMAP (CR4) and
//! UMIP where the CPU has them.

use core::arch::x86_64::__cpuid_count;

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

/// The features Cloister cares about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// No-execute pages (CPUID 0x8000_0001 EDX bit 20).
    pub nx: bool,
    /// Supervisor-mode execution prevention (CPUID 7 EBX bit 7).
    pub smep: bool,
    /// Supervisor-mode access prevention (CPUID 7 EBX bit 20).
    pub smap: bool,
    /// User-mode instruction prevention (CPUID 7 ECX bit 2).
    pub umip: bool,
    /// 1 GiB pages (CPUID 0x8000_0001 EDX bit 26).
    pub page_1g: bool,
    /// RDRAND (CPUID 1 ECX bit 30).
    pub rdrand: bool,
    /// RDSEED (CPUID 7 EBX bit 18).
    pub rdseed: bool,
    /// Invariant TSC (CPUID 0x8000_0007 EDX bit 8).
    pub invariant_tsc: bool,
    /// x2APIC (CPUID 1 ECX bit 21).
    pub x2apic: bool,
}

/// Runs CPUID: `(eax, ebx, ecx, edx)`.
pub fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    // CPUID is unprivileged, always present in long mode, and has no side
    // effects beyond its outputs; the intrinsic is safe in current Rust.
    let r = __cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Reads MSR `msr` with `rdmsr` (the native instruction; the platform
/// seam's `read_msr` is what the rest of the kernel uses). The MSR must
/// exist: a missing one raises `#GP`.
pub fn read_msr(msr: u32) -> u64 {
    // SAFETY: reading an MSR changes no state; an MSR that does not exist
    // raises #GP, which the trap handler reports (a kernel bug, not memory
    // unsafety).
    unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
}

/// Disables interrupts and halts the CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Reads the CPUID feature bits.
pub fn features() -> Features {
    let (max_basic, ..) = cpuid(0, 0);
    let (max_ext, ..) = cpuid(0x8000_0000, 0);
    let (_, _, ecx1, _) = cpuid(1, 0);
    let (_, ebx7, ecx7, _) = if max_basic >= 7 {
        cpuid(7, 0)
    } else {
        (0, 0, 0, 0)
    };
    let (_, _, _, edx_e1) = if max_ext >= 0x8000_0001 {
        cpuid(0x8000_0001, 0)
    } else {
        (0, 0, 0, 0)
    };
    let (_, _, _, edx_e7) = if max_ext >= 0x8000_0007 {
        cpuid(0x8000_0007, 0)
    } else {
        (0, 0, 0, 0)
    };
    let bit = |v: u32, b: u32| v & (1 << b) != 0;
    Features {
        nx: bit(edx_e1, 20),
        smep: bit(ebx7, 7),
        smap: bit(ebx7, 20),
        umip: bit(ecx7, 2),
        page_1g: bit(edx_e1, 26),
        rdrand: bit(ecx1, 30),
        rdseed: bit(ebx7, 18),
        invariant_tsc: bit(edx_e7, 8),
        x2apic: bit(ecx1, 21),
    }
}

/// Enables NX before page tables with NX bits are loaded.
pub fn enable_nx(f: &Features) {
    if f.nx {
        // SAFETY: setting EFER.NXE only makes the NX bit in page-table entries
        // meaningful; the live early tables have no NX bits set.
        unsafe { Efer::update(|e| e.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    }
}

/// Turns on CR0.WP, and SMEP/SMAP/UMIP where supported. Returns what is on.
pub fn enable_protections(f: &Features) -> Features {
    // SAFETY: WP makes ring 0 honour read-only pages; the kernel's page tables
    // mark writable everything it writes (checked by tests). SMEP/SMAP forbid
    // ring 0 from executing/accessing user pages, of which there are none yet;
    // user-memory access will bracket itself with stac/clac. UMIP only
    // restricts ring 3.
    unsafe {
        Cr0::update(|c| c.insert(Cr0Flags::WRITE_PROTECT));
        Cr4::update(|c| {
            if f.smep {
                c.insert(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION);
            }
            if f.smap {
                c.insert(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION);
            }
            if f.umip {
                c.insert(Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION);
            }
        });
    }
    let cr4 = Cr4::read();
    Features {
        smep: cr4.contains(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION),
        smap: cr4.contains(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION),
        umip: cr4.contains(Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION),
        nx: Efer::read().contains(EferFlags::NO_EXECUTE_ENABLE),
        ..*f
    }
}

const IA32_MTRR_DEF_TYPE: u32 = 0x2ff;
/// MTRRs enabled (bit 11), default memory type write-back (6).
const MTRR_ENABLED_WRITE_BACK: u64 = (1 << 11) | 6;

/// Makes RAM cacheable when no firmware has set up the MTRRs.
///
/// A PVH boot through qboot leaves `IA32_MTRR_DEF_TYPE` at 0 (MTRRs off),
/// which makes *all* memory uncacheable; TCG ignores that, but KVM honours
/// it and the guest runs hundreds of times slower. With MTRRs on and
/// write-back as the default, device pages stay uncached through their
/// page-table attributes (PCD/PWT), which win over a write-back MTRR.
/// Returns whether it changed anything.
pub fn enable_write_back_memory() -> bool {
    let (_, _, _, edx1) = cpuid(1, 0);
    if edx1 & (1 << 12) == 0 {
        return false;
    }
    let mut msr = x86_64::registers::model_specific::Msr::new(IA32_MTRR_DEF_TYPE);
    // SAFETY: the CPU has MTRRs (CPUID.1:EDX[12]), so the MSR exists; the
    // caches hold nothing yet (all memory was uncacheable), so no flush
    // sequence is needed before turning write-back on; the `wbinvd` after is
    // belt and braces.
    unsafe {
        if msr.read() & (1 << 11) != 0 {
            return false;
        }
        msr.write(MTRR_ENABLED_WRITE_BACK);
        core::arch::asm!("wbinvd", options(nostack, preserves_flags));
    }
    true
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` only reads the counter; CR4.TSD is clear, and the
    // kernel runs at CPL 0 anyway.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// One 64-bit value from RDSEED (or RDRAND if `seed` is false), retried as
/// Intel recommends; `None` if the instruction keeps failing. The caller
/// checks [`Features`] for the instruction first.
pub fn hw_random(seed: bool) -> Option<u64> {
    let f = features();
    if (seed && !f.rdseed) || (!seed && !f.rdrand) {
        return None;
    }
    for _ in 0..100 {
        let value: u64;
        let ok: u8;
        // SAFETY: CPUID says the CPU has the instruction (checked above); it
        // only writes the output register and CF.
        unsafe {
            if seed {
                core::arch::asm!("rdseed {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok, options(nomem, nostack));
            } else {
                core::arch::asm!("rdrand {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok, options(nomem, nostack));
            }
        }
        if ok != 0 {
            return Some(value);
        }
        core::hint::spin_loop();
    }
    None
}

/// Raises an invalid-opcode exception (`ud2`) on purpose: for the crash
/// tests, whose fatal path records it and ends the guest (or a catch armed
/// by an in-guest test recovers).
pub fn raise_invalid_opcode() {
    // SAFETY: `ud2` touches no memory; the exception is handled by the
    // trap path like any other.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
}

/// A kernel address no page table maps: the direct map of physical
/// 32 TiB, never RAM.
pub const UNMAPPED_KERNEL_ADDRESS: u64 = super::mm::PHYS_OFFSET + (1 << 45);

/// Reads [`UNMAPPED_KERNEL_ADDRESS`] on purpose: a page fault the crash
/// tests' fatal path records.
pub fn fault_on_unmapped_read() {
    // SAFETY: nothing is mapped there (see the constant), so no memory is
    // read: the access faults and the trap path takes over.
    unsafe { core::ptr::read_volatile(UNMAPPED_KERNEL_ADDRESS as *const u64) };
}

/// Loads an empty IDT and raises `#UD`: no handler can be found, so the CPU
/// triple-faults (QEMU with `-no-reboot` stops). For the in-guest test of
/// that path only.
pub fn triple_fault() {
    let empty = x86_64::structures::DescriptorTablePointer {
        limit: 0,
        base: x86_64::VirtAddr::new(0),
    };
    // SAFETY: deliberately breaks interrupt handling for good; nothing runs
    // after the fault.
    unsafe {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::tables::lidt(&empty);
        core::arch::asm!("ud2");
    }
}

/// Loads the FS base register (the user's thread pointer, switched with
/// the thread).
pub fn set_fs_base(base: u64) {
    x86_64::registers::model_specific::FsBase::write(x86_64::VirtAddr::new_truncate(base));
}
