//! The user's floating-point, SSE and AVX registers.
//!
//! The kernel is built without SSE (the `x86_64-unknown-none` target uses
//! soft float), so it does not touch these registers itself: one thread's
//! state survives kernel entries untouched, and only a switch between user
//! threads saves and restores it ([`FpuState::save`]/[`FpuState::restore`],
//! with `xsave`/`xrstor` when the CPU has them, else `fxsave`/`fxrstor`).
//! The one exception is the audit log's BLAKE3 (AVX2 or SSE4.1) and its
//! block MAC's carry-less multiply, which run inside [`with_sse`]: that saves the XMM (and YMM) registers and MXCSR
//! on the stack first and puts them back after. [`init`] turns the units on: without
//! `CR4.OSFXSR` every SSE instruction in glibc would raise `#UD`.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

use super::cpu::cpuid;

/// x87, SSE and AVX state components (XCR0 bits 0–2).
const XCR0_WANTED: u64 = 0b111;

static USE_XSAVE: AtomicBool = AtomicBool::new(false);
static AREA_BYTES: AtomicUsize = AtomicUsize::new(512);
static XCR0: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Enables x87/SSE (and AVX through XSAVE when present). Returns the
/// enabled XCR0 (0 without XSAVE).
pub fn init() -> u64 {
    let (_, _, ecx1, _) = cpuid(1, 0);
    let has_xsave = ecx1 & (1 << 26) != 0;
    // SAFETY: clearing EM/TS and setting MP makes x87/SSE instructions run
    // instead of trapping; OSFXSR/OSXMMEXCPT declare that we save the SSE
    // state (fxsave/xsave) and handle #XM. Nothing in the kernel uses these
    // units, so enabling them changes no kernel behaviour.
    unsafe {
        Cr0::update(|c| {
            c.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            c.insert(Cr0Flags::MONITOR_COPROCESSOR);
        });
        Cr4::update(|c| c.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
    }
    if !has_xsave {
        return 0;
    }
    let (supported_lo, _, _, _) = cpuid(0xd, 0);
    let xcr0 = XCR0_WANTED & u64::from(supported_lo);
    // SAFETY: OSXSAVE enables XGETBV/XSETBV; XCR0 gets only components the
    // CPU reports in CPUID.(EAX=0xD,ECX=0):EAX and always includes x87
    // (bit 0, required) — writing an unsupported combination would #GP.
    unsafe {
        Cr4::update(|c| c.insert(Cr4Flags::OSXSAVE));
        core::arch::asm!(
            "xsetbv",
            in("ecx") 0,
            in("eax") xcr0 as u32,
            in("edx") (xcr0 >> 32) as u32,
            options(nostack, preserves_flags),
        );
    }
    // EBX now reports the save-area size for the enabled components.
    let (_, size, _, _) = cpuid(0xd, 0);
    AREA_BYTES.store(size as usize, Ordering::Relaxed);
    USE_XSAVE.store(true, Ordering::Relaxed);
    XCR0.store(xcr0, Ordering::Relaxed);
    xcr0
}

/// The legacy `fxsave` image: x87, MXCSR and XMM0–15 (512 bytes).
#[repr(C, align(16))]
struct LegacyArea([u8; 512]);

/// An `xsave` image of the SSE and AVX components in the standard layout:
/// the legacy area, the 64-byte header, the upper halves of YMM0–15 at
/// offset 576 (CPUID leaf 0xD fixes that offset for every CPU).
#[repr(C, align(64))]
struct VectorArea([u8; VECTOR_AREA_BYTES]);

const VECTOR_AREA_BYTES: usize = 576 + 256;
/// XCR0's SSE and AVX bits: what [`with_sse`] saves with `xsave`.
const SSE_AVX: u64 = 0b110;

/// Whether AVX is enabled in XCR0, so [`with_sse`] saves the YMM
/// registers and its closure may use AVX2 (when CPUID has it).
pub fn avx_enabled() -> bool {
    XCR0.load(Ordering::Relaxed) & SSE_AVX == SSE_AVX
}

/// Runs `f` with the SIMD registers free for kernel use: saves them to this
/// stack frame, runs `f`, and restores them. With AVX enabled
/// ([`avx_enabled`]) it saves the XMM and YMM registers and MXCSR with
/// `xsave64` (the SSE and AVX components only) and `f` may use AVX2;
/// without, the XMM registers and MXCSR with `fxsave64`, and `f` may use SSE
/// up to SSE4.1 but not AVX (`fxsave` does not cover the upper halves of
/// the YMM registers). Nests (an NMI that seals the audit log inside another
/// scope saves the outer scope's registers in its own frame). Requires
/// [`init`] on this CPU.
pub fn with_sse(f: &mut dyn FnMut()) {
    if avx_enabled() {
        with_vector_state(f);
        return;
    }
    let mut area = core::mem::MaybeUninit::<LegacyArea>::uninit();
    // SAFETY: `fxsave64` writes 512 bytes to a 16-byte-aligned buffer,
    // which `area` is; CR4.OSFXSR (set by `init`) makes it include the
    // XMM registers.
    unsafe {
        core::arch::asm!("fxsave64 [{}]", in(reg) area.as_mut_ptr(), options(nostack, preserves_flags));
    }
    f();
    // SAFETY: `area` holds the image `fxsave64` wrote above (a valid one:
    // the MXCSR it stored is the CPU's own), so `fxrstor64` cannot fault.
    unsafe {
        core::arch::asm!("fxrstor64 [{}]", in(reg) area.as_ptr(), options(nostack, preserves_flags));
    }
}

/// [`with_sse`] with AVX enabled: the SSE and AVX components through
/// `xsave64`/`xrstor64` in the standard (not compacted) form.
fn with_vector_state(f: &mut dyn FnMut()) {
    let mut area = core::mem::MaybeUninit::<VectorArea>::uninit();
    let p = area.as_mut_ptr().cast::<u8>();
    // `xsave` writes XSTATE_BV but not the rest of the header, and
    // `xrstor` faults unless XCOMP_BV and the reserved bytes are zero.
    // SAFETY: bytes 512..576 lie inside the 832-byte `area`.
    unsafe { core::ptr::write_bytes(p.add(512), 0, 64) };
    // SAFETY: `area` is 64-byte aligned and 832 bytes, what the SSE and AVX
    // components take in the standard layout; XCR0 enables both
    // (`avx_enabled`), so the mask asks for nothing the CPU lacks.
    unsafe {
        core::arch::asm!("xsave64 [{}]", in(reg) p, in("eax") SSE_AVX as u32, in("edx") 0, options(nostack, preserves_flags));
    }
    f();
    // SAFETY: `area` holds the image `xsave64` wrote above with a zeroed
    // header around its XSTATE_BV (a subset of the mask), so `xrstor64` of
    // the same components cannot fault.
    unsafe {
        core::arch::asm!("xrstor64 [{}]", in(reg) p, in("eax") SSE_AVX as u32, in("edx") 0, options(nostack, preserves_flags));
    }
}

/// A saved register file, 64-byte aligned as `xsave` requires.
#[derive(Debug)]
pub struct FpuState {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the buffer is owned exclusively by this value; moving it between
// (kernel) threads moves that ownership.
unsafe impl Send for FpuState {}
// SAFETY: `&FpuState` allows no access to the bytes (save/restore need the
// owner's `&mut`/`&`, and restore only reads).
unsafe impl Sync for FpuState {}

impl FpuState {
    /// The power-on state: x87 control word 0x37f, MXCSR 0x1f80, all
    /// registers zero. `None` when out of memory.
    pub fn initial() -> Option<Self> {
        let layout = Layout::from_size_align(AREA_BYTES.load(Ordering::Relaxed), 64).ok()?;
        // SAFETY: the layout has non-zero size (at least 512 bytes).
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            return None;
        }
        // The legacy area: FCW at offset 0, MXCSR at 24, MXCSR_MASK at 28.
        // SAFETY: the buffer is at least 512 bytes, freshly allocated and ours.
        unsafe {
            ptr.cast::<u16>().write(0x37f);
            ptr.add(24).cast::<u32>().write(0x1f80);
            ptr.add(28).cast::<u32>().write(0xffff);
        }
        // An all-zero XSAVE header (bytes 512..576) means "every component
        // in its initial configuration" except what XSTATE_BV marks; mark
        // x87 and SSE so the FCW/MXCSR above are loaded.
        if USE_XSAVE.load(Ordering::Relaxed) {
            // SAFETY: XSAVE areas are at least 576 bytes.
            unsafe { ptr.add(512).cast::<u64>().write(0b11) };
        }
        Some(Self { ptr, layout })
    }

    /// Saves the CPU's current user FPU state into this buffer.
    pub fn save(&mut self) {
        // SAFETY: the buffer is 64-byte aligned and as large as CPUID says
        // the enabled components need; the instructions only write it.
        unsafe {
            if USE_XSAVE.load(Ordering::Relaxed) {
                core::arch::asm!("xsave64 [{}]", in(reg) self.ptr, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack, preserves_flags));
            } else {
                core::arch::asm!("fxsave64 [{}]", in(reg) self.ptr, options(nostack, preserves_flags));
            }
        }
    }

    /// Loads this state into the CPU.
    pub fn restore(&self) {
        // SAFETY: the buffer holds a state produced by `save` or `initial`
        // (a valid image: reserved MXCSR bits clear, a valid XSAVE header),
        // so the restore cannot fault.
        unsafe {
            if USE_XSAVE.load(Ordering::Relaxed) {
                core::arch::asm!("xrstor64 [{}]", in(reg) self.ptr, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack, preserves_flags));
            } else {
                core::arch::asm!("fxrstor64 [{}]", in(reg) self.ptr, options(nostack, preserves_flags));
            }
        }
    }
}

impl FpuState {
    /// The saved image (for a signal frame).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points at `layout.size()` initialised bytes we own.
        unsafe { core::slice::from_raw_parts(self.ptr, self.layout.size()) }
    }

    /// Replaces the image with `bytes` from user memory (`rt_sigreturn`),
    /// after checking every field `xrstor`/`fxrstor` would fault on: MXCSR
    /// reserved bits, XSTATE_BV outside XCR0, a compacted or non-zero
    /// header. Returns `false` (image unchanged) for a bad image.
    pub fn load_checked(&mut self, bytes: &[u8]) -> bool {
        let size = self.layout.size();
        if bytes.len() < size.min(512) {
            return false;
        }
        let word = |off: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[off..off + 8]);
            u64::from_le_bytes(b)
        };
        let mxcsr = word(24) & 0xffff_ffff;
        if mxcsr & !0xffff != 0 {
            return false;
        }
        let n = if USE_XSAVE.load(Ordering::Relaxed) {
            if bytes.len() < size {
                return false;
            }
            let xcr0 = XCR0.load(Ordering::Relaxed);
            if word(512) & !xcr0 != 0 || word(520) != 0 || bytes[528..576].iter().any(|&b| b != 0) {
                return false;
            }
            size
        } else {
            512
        };
        // SAFETY: `n` ≤ the buffer's size; the source is a distinct slice.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr, n) };
        true
    }
}

impl Drop for FpuState {
    fn drop(&mut self) {
        // SAFETY: allocated in `initial` with this layout and not freed since.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}
